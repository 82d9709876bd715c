//! One client connection: the pgwire handlers for startup, the simple query protocol (a string
//! of statements run in order, in an implicit transaction when there are several, stopping at
//! the first error) and the extended protocol (Parse / Bind / Describe / Execute / Sync, with
//! parameter types inferred at Parse), and cancel requests.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, ServerParameterProvider,
    StartupHandler,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    CopyResponse, DescribePortalResponse, DescribeStatementResponse, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type, DEFAULT_NAME, METADATA_DATABASE,
    METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::cancel::CancelRequest;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail, CopyInResponse, CopyOutResponse};
use pgwire::messages::data::{FieldDescription, NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, BindComplete, Describe, Execute, Parse, ParseComplete, Sync as PgSync, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{CommandComplete, EmptyQueryResponse, ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{ParameterStatus, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use sqlparser::ast;
use tessera_types::DataType;
use tokio::sync::watch;

use crate::copy::format::Format as CopyFormat;
use crate::copy::load::Loader;
use crate::dispatch::Dispatcher;
use crate::error::{error_fields, Error};
use crate::exec::Output;
use crate::frontend::auth::{self, AuthMethod, Login, Step};
use crate::frontend::encode::{binary_columns, check_formats, data_row, decode_params, fields, pg_type};
use crate::frontend::held::HeldAnswer;
use crate::session::{Session, TxnStatus, DEFAULT_SETTINGS, REPORTED_SETTINGS};
use crate::sql::expr::Params;
use crate::sql::statement::parse;
use crate::sql::OutputColumn;

/// State shared by every connection of a router.
pub struct Shared {
    pub dispatcher: Dispatcher,
    /// Running sessions by (process id, secret key), for cancel requests.
    pub cancels: Mutex<HashMap<i32, (i32, watch::Sender<u64>)>>,
    pub next_pid: std::sync::atomic::AtomicI32,
    pub auth: AuthMethod,
}

/// A prepared statement: the parsed statement, its parameter types and result columns.
#[derive(Debug)]
pub struct Prepared {
    pub stmt: Option<ast::Statement>,
    pub params: Vec<DataType>,
    pub columns: Vec<OutputColumn>,
}

pub struct Conn {
    shared: Arc<Shared>,
    session: tokio::sync::Mutex<Session>,
    /// Cancel requests bump this counter; running statements watch it.
    cancel: watch::Sender<u64>,
    pid: std::sync::atomic::AtomicI32,
    /// Set when the connection is over the limit: startup refuses it.
    refuse: Option<String>,
    /// The COPY FROM STDIN in progress.
    copy: tokio::sync::Mutex<Option<Loader>>,
    /// When the connection was opened, and when it last served the client, in milliseconds
    /// since then (for `idle_in_transaction_session_timeout`).
    opened: std::time::Instant,
    last_active_ms: std::sync::atomic::AtomicU64,
    /// The password login under way, between the startup phase's messages.
    login: std::sync::Mutex<Option<Login>>,
}

/// How often a connection checks whether it has been idle in a transaction for too long.
const IDLE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// Marks a connection active while a handler serves a client message: when it is made and
/// when it is dropped, at the handler's end.
struct Active<'a>(&'a Conn);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.touch();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let pid = self.pid.load(std::sync::atomic::Ordering::Relaxed);
        self.shared
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
    }
}

/// A PostgreSQL ErrorResponse message of severity FATAL, encoded for the wire.
fn fatal_message(code: &str, message: &str) -> Vec<u8> {
    let mut fields = Vec::new();
    for (tag, value) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', message)] {
        fields.push(tag);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    out.extend_from_slice(&fields);
    out
}

fn user_error(e: &Error) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(e)))
}

fn error_info(e: &Error) -> ErrorInfo {
    let f = error_fields(e);
    let mut info = ErrorInfo::new("ERROR".into(), f.code.into(), f.message);
    info.detail = f.detail;
    info.hint = f.hint;
    info
}

/// The notice a command with tag `tag` sends with its completion: a transaction command out of
/// place is a warning with PostgreSQL's code, anything else a plain notice.
fn notice(message: String, tag: &str) -> PgWireBackendMessage {
    let (severity, code) = match tag {
        "BEGIN" => ("WARNING", "25001"),
        "COMMIT" | "ROLLBACK" => ("WARNING", "25P01"),
        _ => ("NOTICE", "00000"),
    };
    PgWireBackendMessage::NoticeResponse(ErrorInfo::new(severity.into(), code.into(), message).into())
}

fn status_byte(s: &Session) -> TransactionStatus {
    match s.txn.status {
        TxnStatus::Idle => TransactionStatus::Idle,
        TxnStatus::InBlock => TransactionStatus::Transaction,
        TxnStatus::Failed => TransactionStatus::Error,
    }
}

struct Params15 {
    /// Whether the session's role is a superuser (`is_superuser`).
    superuser: bool,
}

impl ServerParameterProvider for Params15 {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let mut p: HashMap<String, String> = HashMap::new();
        for (k, v) in DEFAULT_SETTINGS {
            if REPORTED_SETTINGS.contains(k) {
                p.insert(crate::session::reported_name(k).to_string(), v.to_string());
            }
        }
        p.insert("is_superuser".into(), on_off(self.superuser).into());
        let md = client.metadata();
        p.insert(
            "application_name".into(),
            md.get("application_name").cloned().unwrap_or_default(),
        );
        p.insert(
            "session_authorization".into(),
            md.get(METADATA_USER).cloned().unwrap_or_default(),
        );
        Some(p)
    }
}

impl Conn {
    pub fn new(shared: Arc<Shared>, refuse: Option<String>) -> Conn {
        let (cancel, _) = watch::channel(0);
        Conn {
            shared,
            session: tokio::sync::Mutex::new(Session::new("tessera".into(), "tessera".into())),
            cancel,
            pid: std::sync::atomic::AtomicI32::new(0),
            refuse,
            copy: tokio::sync::Mutex::new(None),
            opened: std::time::Instant::now(),
            last_active_ms: std::sync::atomic::AtomicU64::new(0),
            login: std::sync::Mutex::new(None),
        }
    }

    fn touch(&self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        self.last_active_ms.store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Marks the connection active until the returned guard is dropped.
    fn active(&self) -> Active<'_> {
        self.touch();
        Active(self)
    }

    /// Ends a session left idle inside a transaction block for longer than its
    /// `idle_in_transaction_session_timeout`, as PostgreSQL does: it sends FATAL 25P03 through
    /// `writer` (a second handle on the client's socket) and returns, and the caller closes
    /// the connection. Its open transaction is then never committed.
    pub async fn end_when_idle_in_transaction(&self, mut writer: Option<std::net::TcpStream>) {
        loop {
            tokio::time::sleep(IDLE_CHECK).await;
            let Ok(session) = self.session.try_lock() else {
                // A statement is running.
                self.touch();
                continue;
            };
            if session.txn.status == TxnStatus::Idle {
                continue;
            }
            let Some(limit) = session
                .setting("idle_in_transaction_session_timeout")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|ms| *ms > 0)
            else {
                continue;
            };
            let last = self.last_active_ms.load(std::sync::atomic::Ordering::Relaxed);
            if (self.opened.elapsed().as_millis() as u64).saturating_sub(last) < limit {
                continue;
            }
            let message = fatal_message("25P03", "terminating connection due to idle-in-transaction timeout");
            if let Some(writer) = &mut writer {
                if let Err(e) = std::io::Write::write_all(writer, &message) {
                    tracing::debug!(error = %e, "could not tell an idle client why its session ends");
                }
            }
            return;
        }
    }

    /// The output's rows, cut off with "canceling statement due to user request" if a cancel
    /// request for this session arrives while they stream.
    fn until_cancelled(&self, output: Output) -> Output {
        let mut rx = self.cancel.subscribe();
        rx.borrow_and_update();
        let cancelled = async move {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        crate::dispatch::output_until(output, cancelled, Error::Cancelled)
    }

    /// Runs `fut` unless a cancel request for this session arrives first.
    /// Runs a statement until a cancel request arrives; a COMMIT is not cancelled (once its
    /// shards begin to commit, the outcome must be the client's answer).
    async fn cancellable<T>(
        &self,
        stmt: &ast::Statement,
        fut: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        if crate::dispatch::is_commit(stmt) {
            return fut.await;
        }
        let mut rx = self.cancel.subscribe();
        rx.borrow_and_update();
        tokio::select! {
            r = fut => r,
            _ = rx.changed() => Err(Error::Cancelled),
        }
    }

    /// Sends a statement's output in the simple protocol (row description, rows, tag).
    async fn send_output<C>(&self, client: &mut C, output: Output) -> Result<(), SendError>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match output {
            Output::Empty => client
                .feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()))
                .await
                .map_err(SendError::wire)?,
            Output::Command { tag, notice: n } => {
                if let Some(n) = n {
                    client.feed(notice(n, &tag)).await.map_err(SendError::wire)?;
                }
                client
                    .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag)))
                    .await
                    .map_err(SendError::wire)?;
            }
            Output::CopyIn(_) => {
                return Err(SendError::Statement(Error::Unsupported(
                    "COPY FROM STDIN must be the only statement of its query string".into(),
                )))
            }
            Output::CopyOut { columns, rows, options } => {
                let format = i8::from(options.format == CopyFormat::Binary);
                let response =
                    CopyOutResponse::new(format, columns.len() as i16, vec![i16::from(format); columns.len()]);
                client
                    .feed(PgWireBackendMessage::CopyOutResponse(response))
                    .await
                    .map_err(SendError::wire)?;
                let mut data = copy_data(columns, rows, options.clone());
                let mut n = 0u64;
                let mut rx = self.cancel.subscribe();
                rx.borrow_and_update();
                loop {
                    let next = tokio::select! {
                        r = data.next() => r,
                        _ = rx.changed() => Some(Err(Error::Cancelled)),
                    };
                    let Some(chunk) = next else { break };
                    let (bytes, rows) = chunk.map_err(SendError::Statement)?;
                    n += rows;
                    client
                        .feed(PgWireBackendMessage::CopyData(CopyData::new(bytes.into())))
                        .await
                        .map_err(SendError::wire)?;
                }
                if options.format == CopyFormat::Binary {
                    let trailer = crate::copy::format::binary_trailer();
                    client
                        .feed(PgWireBackendMessage::CopyData(CopyData::new(trailer.into())))
                        .await
                        .map_err(SendError::wire)?;
                }
                client
                    .feed(PgWireBackendMessage::CopyDone(CopyDone::new()))
                    .await
                    .map_err(SendError::wire)?;
                client
                    .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(format!(
                        "COPY {n}"
                    ))))
                    .await
                    .map_err(SendError::wire)?;
            }
            Output::Rows { columns, mut rows, tag } => {
                let descs: Vec<FieldDescription> = fields(&columns, None).iter().map(FieldDescription::from).collect();
                client
                    .feed(PgWireBackendMessage::RowDescription(RowDescription::new(descs)))
                    .await
                    .map_err(SendError::wire)?;
                let binary = vec![false; columns.len()];
                let mut n = 0usize;
                let mut rx = self.cancel.subscribe();
                rx.borrow_and_update();
                loop {
                    let next = tokio::select! {
                        r = rows.next() => r,
                        _ = rx.changed() => Some(Err(Error::Cancelled)),
                    };
                    let Some(row) = next else { break };
                    let row = row.map_err(SendError::Statement)?;
                    let dr = data_row(&row, &columns, &binary).map_err(SendError::Statement)?;
                    client
                        .feed(PgWireBackendMessage::DataRow(dr))
                        .await
                        .map_err(SendError::wire)?;
                    n += 1;
                }
                let tag = if tag == "SHOW" || tag == "EXPLAIN" {
                    tag
                } else {
                    format!("{tag} {n}")
                };
                client
                    .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(tag)))
                    .await
                    .map_err(SendError::wire)?;
            }
        }
        Ok(())
    }
}

/// Why sending a statement's output stopped: the statement failed (report it) or the client
/// went away (give up).
enum SendError {
    Statement(Error),
    Wire(PgWireError),
}

impl SendError {
    fn wire<E>(e: E) -> SendError
    where
        PgWireError: From<E>,
    {
        SendError::Wire(PgWireError::from(e))
    }
}

#[async_trait]
impl StartupHandler for Conn {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if let Some(why) = &self.refuse {
                    return Err(auth::fatal("53300", why.clone()));
                }
                let user = startup_user(client)?;
                if self.shared.auth == AuthMethod::Trust {
                    // Anyone, under any name, without a password; a role still needs LOGIN.
                    if self.role(&user).is_some_and(|r| !r.login) {
                        return Err(not_permitted(&user));
                    }
                    return self.begin_session(client, user, true, None).await;
                }
                let (ask, login) = auth::challenge(self.shared.auth, &user, self.role(&user).as_ref());
                *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Some(login);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client.send(PgWireBackendMessage::Authentication(ask)).await?;
                Ok(())
            }
            PgWireFrontendMessage::PasswordMessageFamily(answer) => {
                let user = startup_user(client)?;
                let Some(login) = self.login.lock().unwrap_or_else(|p| p.into_inner()).take() else {
                    return Err(auth::fatal(
                        "08P01",
                        "a password message arrived, but none was asked for".into(),
                    ));
                };
                match auth::respond(login, &user, answer)? {
                    Step::Continue(ask, login) => {
                        *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Some(login);
                        client.send(PgWireBackendMessage::Authentication(ask)).await?;
                        Ok(())
                    }
                    Step::Done(last) => {
                        // The role may have changed while the client answered.
                        let Some(role) = self.role(&user) else {
                            return Err(auth::fatal(
                                "28P01",
                                format!("password authentication failed for user \"{user}\""),
                            ));
                        };
                        if !role.login {
                            return Err(not_permitted(&user));
                        }
                        self.begin_session(client, user, false, last).await
                    }
                }
            }
            // Anything else before the login is done: the client does not follow the protocol.
            _ if self.login.lock().unwrap_or_else(|p| p.into_inner()).is_some() => Err(auth::fatal(
                "08P01",
                "expected a password message during authentication".into(),
            )),
            _ => Ok(()),
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

fn not_permitted(user: &str) -> PgWireError {
    auth::fatal("28000", format!("role \"{user}\" is not permitted to log in"))
}

/// The user name of the startup packet.
fn startup_user<C: ClientInfo>(client: &C) -> PgWireResult<String> {
    client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .ok_or_else(|| auth::fatal("28000", "no PostgreSQL user name specified in startup packet".into()))
}

impl Conn {
    /// The role clients log in as under this name, as the router's map has it.
    fn role(&self, name: &str) -> Option<tessera_types::schema::Role> {
        self.shared
            .dispatcher
            .executor
            .routing
            .current()
            .roles
            .get(name)
            .cloned()
    }

    /// Lets the client in (`trusted` when no password was asked): its session, its cancel key,
    /// then (after `last`, the end of a password exchange) AuthenticationOk, the parameters and
    /// ReadyForQuery.
    async fn begin_session<C>(
        &self,
        client: &mut C,
        user: String,
        trusted: bool,
        last: Option<pgwire::messages::startup::Authentication>,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let md = client.metadata();
        let database = md.get(METADATA_DATABASE).cloned().unwrap_or_else(|| user.clone());
        let superuser = {
            let mut s = self.session.lock().await;
            *s = Session::new(user, database);
            s.trusted = trusted;
            let superuser = s.superuser(&self.shared.dispatcher.executor.routing.current());
            s.set_reported("is_superuser", on_off(superuser));
            // Settings in the startup packet (application_name, DateStyle, extra_float_digits...).
            for (name, value) in md.iter() {
                if DEFAULT_SETTINGS.iter().any(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    s.set_at_startup(name, value.clone());
                }
            }
            superuser
        };
        if let Some(last) = last {
            client.send(PgWireBackendMessage::Authentication(last)).await?;
        }
        let pid = self.shared.next_pid.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let secret: i32 = rand::random();
        self.pid.store(pid, std::sync::atomic::Ordering::Relaxed);
        self.shared
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, (secret, self.cancel.clone()));
        client.set_pid_and_secret_key(pid, SecretKey::I32(secret));
        finish_authentication(client, &Params15 { superuser }).await
    }
}

#[async_trait]
impl SimpleQueryHandler for Conn {
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        let mut session = self.session.lock().await;
        let statements = match parse(&query.query) {
            Ok(s) => s,
            Err(e) => {
                session.fail();
                client
                    .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                    .await?;
                return finish_query(client, &session).await;
            }
        };
        if statements.is_empty() {
            client
                .feed(PgWireBackendMessage::EmptyQueryResponse(EmptyQueryResponse::new()))
                .await?;
            return finish_query(client, &session).await;
        }
        let implicit = statements.len() > 1 && !session.in_block();
        if implicit {
            session.begin(true, crate::dispatch::now_micros());
        }
        let mut failed = false;
        for stmt in &statements {
            let ran = self
                .cancellable(stmt, self.shared.dispatcher.run(&mut session, stmt, &Params::none()))
                .await;
            let ran = match ran {
                Ok(r) => r,
                Err(e) => {
                    session.fail();
                    client
                        .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                        .await?;
                    failed = true;
                    break;
                }
            };
            let mut ran = ran;
            ran.output = self.until_cancelled(ran.output);
            if let Some((name, value)) = ran.report {
                client
                    .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name, value)))
                    .await?;
            }
            if let (Output::CopyIn(plan), 1) = (&ran.output, statements.len()) {
                let (columns, format) = self.start_copy(plan.as_ref().clone()).await;
                let response = CopyInResponse::new(format, columns as i16, vec![i16::from(format); columns]);
                client.send(PgWireBackendMessage::CopyInResponse(response)).await?;
                client.set_state(PgWireConnectionState::CopyInProgress(false));
                return Ok(());
            }
            match self.send_output(client, ran.output).await {
                Ok(()) => {}
                Err(SendError::Wire(e)) => return Err(e),
                Err(SendError::Statement(e)) => {
                    session.fail();
                    client
                        .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                        .await?;
                    failed = true;
                    break;
                }
            }
        }
        if implicit {
            if let Err(e) = self.shared.dispatcher.finish_implicit(&mut session, failed).await {
                client
                    .feed(PgWireBackendMessage::ErrorResponse(error_info(&e).into()))
                    .await?;
            }
        }
        finish_query(client, &session).await
    }

    async fn do_query<C>(&self, _client: &mut C, _query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // on_query is overridden and never calls this.
        Err(PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "XX000".into(),
            "internal: unexpected call".into(),
        ))))
    }
}

async fn finish_query<C>(client: &mut C, session: &Session) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let st = status_byte(session);
    client.set_transaction_status(st);
    client
        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(st)))
        .await?;
    Ok(())
}

/// Parses and describes statements for the extended protocol.
pub struct StatementParser {
    shared: Arc<Shared>,
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Arc<Prepared>>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let mut stmts = parse(sql).map_err(|e| user_error(&e))?;
        if stmts.len() > 1 {
            return Err(user_error(&Error::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            )));
        }
        let Some(stmt) = stmts.pop() else { return Ok(None) };
        let given: Vec<Option<DataType>> = types
            .iter()
            .map(|t| match t {
                None => Ok(None),
                Some(t) => DataType::from_oid(t.oid()).map(Some).ok_or_else(|| {
                    user_error(&Error::Unsupported(format!(
                        "parameter type {} is not supported",
                        t.name()
                    )))
                }),
            })
            .collect::<PgWireResult<_>>()?;
        let params = Params::Infer(std::sync::Mutex::new(given));
        let md = client.metadata();
        let session = Session::new(
            md.get(METADATA_USER).cloned().unwrap_or_default(),
            md.get(METADATA_DATABASE).cloned().unwrap_or_default(),
        );
        let bound = self
            .shared
            .dispatcher
            .bind(&session, &stmt, &params)
            .map_err(|e| user_error(&e))?;
        let Params::Infer(types) = params else { return Ok(None) };
        let params: Vec<DataType> = types
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|t| t.unwrap_or(DataType::Text))
            .collect();
        Ok(Some(Arc::new(Prepared {
            stmt: Some(stmt),
            params,
            columns: bound.output_columns(),
        })))
    }

    fn get_parameter_types(&self, stmt: &Arc<Prepared>) -> PgWireResult<Vec<Type>> {
        Ok(stmt.params.iter().map(|t| pg_type(*t)).collect())
    }

    fn get_result_schema(&self, stmt: &Arc<Prepared>, column_format: Option<&Format>) -> PgWireResult<Vec<FieldInfo>> {
        Ok(fields(&stmt.columns, column_format))
    }
}

#[async_trait]
impl ExtendedQueryHandler for Conn {
    type Statement = Arc<Prepared>;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        Arc::new(StatementParser {
            shared: self.shared.clone(),
        })
    }

    /// Parses and stores a statement. A statement that does not parse or bind fails the
    /// transaction block, as any failing statement does; a named statement may not be
    /// replaced (42P05) until it is closed.
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        let name = message.name.clone().unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let result = if name != DEFAULT_NAME && client.portal_store().get_statement(&name).is_some() {
            Err(user_error(&Error::Exec(tessera_types::ExecError::other(
                "42P05",
                format!("prepared statement \"{name}\" already exists"),
            ))))
        } else {
            StoredStatement::parse(client, &message, self.query_parser()).await
        };
        let stored = match result {
            Ok(s) => s,
            Err(e) => {
                self.session.lock().await.fail();
                return Err(e);
            }
        };
        match stored {
            Some(stmt) => client.portal_store().put_statement(Arc::new(stmt)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(pgwire::api::store::Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let params: Vec<u32> = stmt.statement.params.iter().map(|t| t.oid()).collect();
                client
                    .feed(PgWireBackendMessage::ParameterDescription(ParameterDescription::new(
                        params,
                    )))
                    .await?;
                let msg = if stmt.statement.columns.is_empty() {
                    PgWireBackendMessage::NoData(NoData::new())
                } else {
                    let descs = fields(&stmt.statement.columns, None)
                        .iter()
                        .map(FieldDescription::from)
                        .collect();
                    PgWireBackendMessage::RowDescription(RowDescription::new(descs))
                };
                client.send(msg).await?;
                return Ok(());
            }
        }
        self._on_describe(client, message).await
    }

    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        // The answer goes out with the Sync's ReadyForQuery, in one packet (see `held`).
        let result = self._on_execute(&mut HeldAnswer::new(client), message).await;
        let st = status_byte(&*self.session.lock().await);
        client.set_transaction_status(st);
        result
    }

    /// As pgwire's, but BindComplete is queued rather than flushed: the client's Sync (or
    /// Flush) sends it together with the rest of the answer, saving a packet per statement.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        let wrong_count = |needed: usize| {
            user_error(&Error::Protocol(format!(
                "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires {needed}",
                message.parameters.len()
            )))
        };
        let bound = match client.portal_store().get_statement(statement_name) {
            Some(pgwire::api::store::Entry::Value(statement)) => {
                let needed = statement.statement.params.len();
                if message.parameters.len() != needed {
                    Err(wrong_count(needed))
                } else {
                    Portal::try_new(&message, statement)
                        .map(|portal| client.portal_store().put_portal(Arc::new(portal)))
                }
            }
            Some(pgwire::api::store::Entry::Empty) if !message.parameters.is_empty() => Err(wrong_count(0)),
            Some(pgwire::api::store::Entry::Empty) => {
                client.portal_store().put_empty_portal(portal_name);
                Ok(())
            }
            None => Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        };
        if let Err(e) = bound {
            self.session.lock().await.fail();
            return Err(e);
        }
        client
            .feed(PgWireBackendMessage::BindComplete(BindComplete::new()))
            .await?;
        Ok(())
    }

    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        client.portal_store().rm_portal(DEFAULT_NAME);
        let session = self.session.lock().await;
        finish_query(client, &session).await
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        target: &StoredStatement<Self::Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let params = target.statement.params.iter().map(|t| pg_type(*t)).collect();
        Ok(DescribeStatementResponse::new(
            params,
            fields(&target.statement.columns, None),
        ))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        target: &Portal<Self::Statement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let columns = &target.statement.statement.columns;
        check_formats(&target.result_column_format, columns.len()).map_err(|e| user_error(&e))?;
        Ok(DescribePortalResponse::new(fields(
            columns,
            Some(&target.result_column_format),
        )))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = portal.statement.statement.clone();
        let Some(stmt) = &prepared.stmt else {
            return Ok(Response::EmptyQuery);
        };
        let mut session = self.session.lock().await;
        let values = match decode_params(&portal.parameters, &portal.parameter_format, &prepared.params) {
            Ok(v) => v,
            Err(e) => {
                session.fail();
                return Err(user_error(&e));
            }
        };
        let ran = self
            .cancellable(
                stmt,
                self.shared.dispatcher.run(&mut session, stmt, &Params::Values(values)),
            )
            .await;
        let mut ran = match ran {
            Ok(r) => r,
            Err(e) => {
                session.fail();
                return Err(user_error(&e));
            }
        };
        ran.output = self.until_cancelled(ran.output);
        drop(session);
        if let Some((name, value)) = ran.report {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(name, value)))
                .await?;
        }
        Ok(match ran.output {
            Output::CopyIn(plan) => {
                let (columns, format) = self.start_copy(*plan).await;
                Response::CopyIn(CopyResponse::new(format, columns, futures::stream::empty()))
            }
            Output::CopyOut { columns, rows, options } => {
                let format = i8::from(options.format == CopyFormat::Binary);
                let n = columns.len();
                let data = copy_data(columns, rows, options).map(|chunk| match chunk {
                    Ok((bytes, _)) => Ok(CopyData::new(bytes.into())),
                    Err(e) => Err(user_error(&e)),
                });
                Response::CopyOut(CopyResponse::new(format, n, data))
            }
            Output::Empty => Response::EmptyQuery,
            Output::Command { tag, notice: n } => {
                if let Some(n) = n {
                    client.feed(notice(n, &tag)).await?;
                }
                Response::Execution(Tag::new(&tag))
            }
            Output::Rows { columns, rows, tag } => {
                check_formats(&portal.result_column_format, columns.len()).map_err(|e| user_error(&e))?;
                let schema = Arc::new(fields(&columns, Some(&portal.result_column_format)));
                let binary = binary_columns(Some(&portal.result_column_format), columns.len());
                let data = rows.map(move |r| match r {
                    Ok(row) => data_row(&row, &columns, &binary).map_err(|e| user_error(&e)),
                    Err(e) => Err(user_error(&e)),
                });
                let mut qr = QueryResponse::new(schema, data);
                qr.set_command_tag(&tag);
                Response::Query(qr)
            }
        })
    }
}

impl Conn {
    /// Readies the loader of a COPY FROM STDIN; returns its column count and format code.
    async fn start_copy(&self, plan: crate::copy::CopyIn) -> (usize, i8) {
        let loader = Loader::new(self.shared.dispatcher.executor.clone(), plan);
        let shape = loader.shape();
        *self.copy.lock().await = Some(loader);
        shape
    }
}

/// COPY data as the client receives it: one message per row, each paired with the rows it
/// holds. The binary header or CSV header line travels with the first row (alone when there
/// are no rows). The binary trailer is not included.
type CopyDataStream = std::pin::Pin<Box<dyn futures::Stream<Item = Result<(Vec<u8>, u64), Error>> + Send>>;

fn copy_data(
    columns: Vec<OutputColumn>,
    rows: crate::exec::RowStream,
    options: crate::copy::format::Options,
) -> CopyDataStream {
    use crate::copy::format::{binary_header, csv_header, encode_row};
    let types: Vec<DataType> = columns.iter().map(|c| c.ty).collect();
    let prefix = match options.format {
        CopyFormat::Binary => binary_header(),
        CopyFormat::Csv if options.header => {
            let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
            csv_header(&names, &options)
        }
        _ => Vec::new(),
    };
    let state = (rows, prefix, types, options);
    Box::pin(futures::stream::unfold(Some(state), |state| async move {
        let (mut rows, mut prefix, types, options) = state?;
        match rows.next().await {
            Some(Ok(row)) => {
                let mut out = std::mem::take(&mut prefix);
                encode_row(&row, &types, &options, &mut out);
                Some((Ok((out, 1)), Some((rows, prefix, types, options))))
            }
            Some(Err(e)) => Some((Err(e), None)),
            None if !prefix.is_empty() => Some((Ok((prefix, 0)), None)),
            None => None,
        }
    }))
}

#[async_trait]
impl CopyHandler for Conn {
    async fn on_copy_data<C>(&self, _client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        let mut copy = self.copy.lock().await;
        if let Some(loader) = copy.as_mut() {
            let mut session = self.session.lock().await;
            loader.data(&copy_data.data, &mut session).await;
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        let Some(mut loader) = self.copy.lock().await.take() else {
            return Ok(());
        };
        let mut session = self.session.lock().await;
        let result = loader.done(&mut session).await;
        if result.is_err() {
            session.fail();
        }
        client.set_transaction_status(status_byte(&session));
        match result {
            Ok(n) => {
                client
                    .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(format!(
                        "COPY {n}"
                    ))))
                    .await?;
                Ok(())
            }
            Err(e) => Err(user_error(&e)),
        }
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _active = self.active();
        let error = match self.copy.lock().await.take() {
            Some(mut loader) => loader.abort(&fail.message).await,
            None => Error::Exec(tessera_types::ExecError::other(
                "57014",
                format!("COPY from stdin failed: {}", fail.message),
            )),
        };
        let mut session = self.session.lock().await;
        session.fail();
        client.set_transaction_status(status_byte(&session));
        user_error(&error)
    }
}

/// Cancel requests: find the session by process id and check its secret.
pub struct Canceller {
    pub shared: Arc<Shared>,
}

#[async_trait]
impl CancelHandler for Canceller {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let target = self
            .shared
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&request.pid)
            .cloned();
        if let Some((secret, tx)) = target {
            if request.secret_key.eq_value(&SecretKey::I32(secret)) {
                tx.send_modify(|n| *n += 1);
            }
        }
    }
}

/// The handlers of one connection.
pub struct Handlers {
    pub conn: Arc<Conn>,
    pub canceller: Arc<Canceller>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.conn.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.conn.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.conn.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.canceller.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.conn.clone()
    }
}
