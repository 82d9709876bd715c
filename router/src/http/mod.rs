//! The router's HTTP server (`--http ADDR`): the course's JSON API (`course.rs`) over the same
//! engine as SQL. This module owns the listener, the routes, the one mapping from errors to
//! HTTP statuses and JSON error bodies, and [`Engine`], which runs a SQL statement for a request
//! in a session of its own, exactly as a PostgreSQL client's statement runs. It knows nothing
//! of the course's payloads.

mod course;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info};

use tessera_types::{DataType, Row, Value};

use crate::dispatch::Dispatcher;
use crate::error::{error_fields, Error};
use crate::exec::Output;
use crate::session::Session;
use crate::sql::expr::Params;
use crate::sql::OutputColumn;

/// The largest request body accepted: as large as one SQL statement may be.
const MAX_BODY_BYTES: usize = 64 << 20;

/// Runs SQL for HTTP requests through the router's dispatcher, each statement in a fresh
/// session with the defaults a PostgreSQL client gets (linearizable reads, autocommit).
pub struct Engine {
    pub dispatcher: Dispatcher,
}

/// What one statement returned: its columns and rows (empty for commands without RETURNING).
pub struct Answer {
    pub columns: Vec<OutputColumn>,
    pub rows: Vec<Row>,
}

impl Engine {
    /// Runs one SQL statement with typed parameters (`$1`...) and collects its rows.
    pub async fn run(&self, sql: &str, params: Vec<(Value, DataType)>) -> Result<Answer, Error> {
        let statements = crate::sql::statement::parse(sql)?;
        let [statement] = statements.as_slice() else {
            return Err(Error::Internal(format!(
                "expected one statement, got {}",
                statements.len()
            )));
        };
        let mut session = Session::new("tessera".into(), "tessera".into());
        let ran = self
            .dispatcher
            .run(&mut session, statement, &Params::Values(params))
            .await?;
        match ran.output {
            Output::Rows { columns, mut rows, .. } => {
                let mut collected = Vec::new();
                while let Some(row) = rows.next().await {
                    collected.push(row?);
                }
                Ok(Answer {
                    columns,
                    rows: collected,
                })
            }
            _ => Ok(Answer {
                columns: Vec::new(),
                rows: Vec::new(),
            }),
        }
    }

    /// The cluster map the router currently routes by.
    pub fn map(&self) -> Arc<tessera_types::schema::ClusterMap> {
        self.dispatcher.executor.routing.current()
    }
}

/// An HTTP error: its status and a message a person can act on, sent as
/// `{"status": "error", "message": ...}` (plus `sqlstate` when the engine refused).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub sqlstate: Option<&'static str>,
}

impl ApiError {
    /// A request the client must change: HTTP 400.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            sqlstate: None,
        }
    }

    pub fn with_status(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            sqlstate: None,
        }
    }
}

impl From<Error> for ApiError {
    /// The engine's refusal, with the status its SQLSTATE class calls for: the request's fault
    /// (data, constraint, syntax, unsupported) is 400; a cluster that cannot serve it now is
    /// 503; anything else 500.
    fn from(e: Error) -> ApiError {
        let fields = error_fields(&e);
        let status = match &fields.code[..2] {
            "22" | "23" | "42" | "0A" | "54" | "2B" => StatusCode::BAD_REQUEST,
            "08" | "40" | "53" | "57" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut message = fields.message;
        if let Some(detail) = fields.detail {
            message = format!("{message} ({detail})");
        }
        ApiError {
            status,
            message,
            sqlstate: Some(fields.code),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"status": "error", "message": self.message});
        if let Some(code) = self.sqlstate {
            body["sqlstate"] = code.into();
        }
        json_response(self.status, &body)
    }
}

/// A JSON body with its content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub type ApiResult = Result<Response, ApiError>;

/// A running HTTP server.
pub struct HttpServer {
    /// The address it listens on (the real port when asked for port 0).
    pub addr: String,
    pub task: tokio::task::JoinHandle<()>,
}

/// Binds `listen` and serves the course's API until `stop` turns true.
pub async fn start(listen: &str, engine: Arc<Engine>, mut stop: watch::Receiver<bool>) -> std::io::Result<HttpServer> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?.to_string();
    let app = axum::Router::new()
        .route("/heartbeat", get(heartbeat))
        .route("/init", post(course::init))
        .route("/status", get(course::status))
        .route("/add", post(course::add))
        .route("/rm", delete(course::rm))
        .route("/read", post(course::read))
        .route("/write", post(course::write))
        .route("/update", put(course::update))
        .route("/del", delete(course::del))
        .fallback(unknown_endpoint)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(engine);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            debug!(error = %e, "the HTTP server stopped with an error");
        }
    });
    info!(%addr, "router serving the HTTP API");
    Ok(HttpServer { addr, task })
}

/// `GET /heartbeat`: 200 with an empty body while the router runs.
async fn heartbeat() -> StatusCode {
    StatusCode::OK
}

async fn unknown_endpoint(method: Method, uri: Uri) -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {method} {}; the API has GET /heartbeat, POST /init, GET /status, POST /add, DELETE /rm, POST /read, POST /write, PUT /update and DELETE /del",
            uri.path()
        ),
    )
}

/// The state every handler gets.
type Api = State<Arc<Engine>>;

/// Parses a request body as a JSON object, with a message saying where it is malformed.
pub fn json_object(body: &Bytes) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::bad(format!(
            "the request body must be a JSON object, not {}",
            json_kind(&other)
        ))),
        Err(e) if body.is_empty() => Err(ApiError::bad(format!("the request needs a JSON body ({e})"))),
        Err(e) => Err(ApiError::bad(format!("the request body is not valid JSON: {e}"))),
    }
}

/// "a string", "an array"...: what a JSON value is, for messages.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
