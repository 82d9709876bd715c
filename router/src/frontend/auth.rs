//! Password logins against the catalog's roles (`CREATE ROLE ... PASSWORD`): SCRAM-SHA-256, as
//! PostgreSQL 10 and later ask for it, or md5 for old clients. The router only ever holds the
//! verifiers the catalog keeps (`tessera_types::auth`), never a password.

use pgwire::api::auth::sasl::scram::{ScramSecret, ScramServerAuth, ScramServerAuthWaitingForClientFinal};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{Authentication, PasswordMessageFamily};
use serde::Deserialize;
use tessera_types::auth::{md5_response, parse_scram, SCRAM_ITERATIONS};
use tessera_types::schema::Role;

const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// How the router checks who a client is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum AuthMethod {
    /// Anyone may connect under any name, as PostgreSQL's `trust`: for development only.
    #[serde(rename = "trust")]
    Trust,
    /// The role's password, checked by SCRAM-SHA-256.
    #[default]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// The role's password, checked by md5 when the role has an md5 verifier (SCRAM
    /// otherwise, as PostgreSQL's `md5` method does).
    #[serde(rename = "md5")]
    Md5,
}

/// A login under way: what the router waits for next.
pub enum Login {
    Md5 {
        expected: Option<String>,
    },
    ScramFirst {
        secret: ScramSecret,
        genuine: bool,
    },
    ScramFinal {
        waiting: Box<ScramServerAuthWaitingForClientFinal>,
        genuine: bool,
    },
}

/// What to do after a client's password message.
pub enum Step {
    /// Send this and wait for the next message.
    Continue(Authentication, Login),
    /// The password is right: send this (if any), then let the client in.
    Done(Option<Authentication>),
}

/// A FATAL error of the startup phase.
pub fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message)))
}

fn wrong_password(user: &str) -> PgWireError {
    fatal("28P01", format!("password authentication failed for user \"{user}\""))
}

/// The challenge for `user`, whose role is `role` (`None` if there is none). An unknown role or
/// one without a password is challenged like any other, so that a client cannot tell which
/// names exist; its login fails at the end.
pub fn challenge(method: AuthMethod, user: &str, role: Option<&Role>) -> (Authentication, Login) {
    let password = role.map(|r| &r.password);
    if method == AuthMethod::Md5 {
        if let Some(md5) = password.and_then(|p| p.md5.as_deref()) {
            let salt: [u8; 4] = rand::random();
            let expected = Some(md5_response(md5, &salt));
            return (Authentication::MD5Password(salt.to_vec()), Login::Md5 { expected });
        }
        if password.is_none_or(|p| p.scram.is_none()) {
            let salt: [u8; 4] = rand::random();
            return (
                Authentication::MD5Password(salt.to_vec()),
                Login::Md5 { expected: None },
            );
        }
    }
    let verifier = password.and_then(|p| p.scram.as_deref()).and_then(parse_scram);
    let genuine = verifier.is_some();
    let secret = match verifier {
        Some(v) => ScramSecret::Verifier {
            salt: v.salt,
            iterations: v.iterations as usize,
            stored_key: v.stored_key,
            server_key: v.server_key,
        },
        // Keys no proof matches, and a salt that stays the same for the name, as a real
        // role's does.
        None => ScramSecret::Verifier {
            salt: mock_salt(user),
            iterations: SCRAM_ITERATIONS as usize,
            stored_key: rand::random::<[u8; 32]>().to_vec(),
            server_key: rand::random::<[u8; 32]>().to_vec(),
        },
    };
    (
        Authentication::SASL(vec![SCRAM_SHA_256.to_string()]),
        Login::ScramFirst { secret, genuine },
    )
}

/// The salt offered for a name that has no SCRAM verifier: derived from the name with a key
/// of this process, so that asking twice does not tell such a name from a role's.
fn mock_salt(user: &str) -> Vec<u8> {
    static KEY: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(rand::random);
    tessera_types::auth::keyed_digest(key, user.as_bytes())[..16].to_vec()
}

/// Whether a SASLInitialResponse's body can be decoded: a mechanism name ended by NUL, then
/// the length of the data that follows (-1 for none). pgwire's decoder trusts both.
fn well_formed_sasl_initial(message: &PasswordMessageFamily) -> bool {
    let PasswordMessageFamily::Raw(body) = message else {
        return true;
    };
    let Some(nul) = body.iter().position(|b| *b == 0) else {
        return false;
    };
    match body.get(nul + 1..nul + 5) {
        Some(&[a, b, c, d]) => {
            let len = i32::from_be_bytes([a, b, c, d]);
            len == -1 || usize::try_from(len).is_ok_and(|n| n <= body.len() - nul - 5)
        }
        _ => false,
    }
}

/// Checks the client's answer to the last challenge.
pub fn respond(login: Login, user: &str, message: PasswordMessageFamily) -> PgWireResult<Step> {
    match login {
        Login::Md5 { expected } => {
            let answer = message.into_password()?;
            match expected {
                Some(e) if tessera_types::auth::same_secret(e.as_bytes(), answer.password.as_bytes()) => {
                    Ok(Step::Done(None))
                }
                _ => Err(wrong_password(user)),
            }
        }
        Login::ScramFirst { secret, genuine } => {
            if !well_formed_sasl_initial(&message) {
                return Err(fatal("08P01", "malformed SASL initial response".into()));
            }
            let initial = message.into_sasl_initial_response()?;
            if initial.auth_method != SCRAM_SHA_256 {
                return Err(fatal(
                    "08P01",
                    format!(
                        "client selected an invalid SASL authentication mechanism \"{}\" (this server offers {SCRAM_SHA_256})",
                        initial.auth_method
                    ),
                ));
            }
            let data = initial
                .data
                .ok_or_else(|| fatal("08P01", "the SASL initial response carries no data".into()))?;
            let (server_first, waiting) = ScramServerAuth::new().on_client_first_message_with_secret(&data, secret)?;
            Ok(Step::Continue(
                Authentication::SASLContinue(server_first.into_bytes().into()),
                Login::ScramFinal {
                    waiting: Box::new(waiting),
                    genuine,
                },
            ))
        }
        Login::ScramFinal { waiting, genuine } => {
            let response = message.into_sasl_response()?;
            match waiting.on_client_final_message(&response.data) {
                Ok(server_final) if genuine => Ok(Step::Done(Some(Authentication::SASLFinal(
                    server_final.into_bytes().into(),
                )))),
                Ok(_) | Err(PgWireError::InvalidPassword(_)) => Err(wrong_password(user)),
                Err(e) => Err(e),
            }
        }
    }
}
