//! Role passwords as the catalog keeps them: never the password itself, only what a login is
//! checked against, in PostgreSQL's own formats (those of `pg_authid.rolpassword`):
//! `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5802 and 7677, base64)
//! and `md5<hex of md5(password || user name)>` for old clients.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};
use serde::{Deserialize, Serialize};

/// PBKDF2 rounds of a new SCRAM verifier (PostgreSQL's `scram_iterations` default).
pub const SCRAM_ITERATIONS: u32 = 4096;

/// What a role's password is checked against; both absent for a role without a password,
/// which cannot log in with one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolePassword {
    pub scram: Option<String>,
    pub md5: Option<String>,
}

/// The parts of a SCRAM-SHA-256 verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

impl RolePassword {
    /// What `PASSWORD 'text'` stores for `user`. A verifier given already hashed (a SCRAM
    /// verifier, or `md5` and 32 hex digits) is kept as it is, as PostgreSQL does; a password
    /// in clear gets both verifiers, the SCRAM one with a fresh random salt.
    pub fn new(user: &str, text: &str) -> RolePassword {
        if parse_scram(text).is_some() {
            return RolePassword {
                scram: Some(text.to_string()),
                md5: None,
            };
        }
        if is_md5_verifier(text) {
            return RolePassword {
                scram: None,
                md5: Some(text.to_string()),
            };
        }
        let salt: [u8; 16] = rand::random();
        RolePassword {
            scram: Some(scram_verifier(text, &salt, SCRAM_ITERATIONS)),
            md5: Some(md5_verifier(user, text)),
        }
    }

    pub fn is_set(&self) -> bool {
        self.scram.is_some() || self.md5.is_some()
    }
}

/// HMAC-SHA-256 of `data` under `key`.
pub fn keyed_digest(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// Whether two secrets are equal, in a time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A SCRAM-SHA-256 verifier of `password` with this salt and iteration count. The password is
/// normalized with SASLprep first, as clients do (RFC 5802), or used as it is when it cannot
/// be, as PostgreSQL does.
pub fn scram_verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let prepared = stringprep::saslprep(password).map(|p| p.into_owned());
    let password = prepared.as_deref().unwrap_or(password);
    let mut salted = [0u8; digest::SHA256_OUTPUT_LEN];
    let rounds = std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        password.as_bytes(),
        &mut salted,
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, &salted);
    let client_key = hmac::sign(&key, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, client_key.as_ref());
    let server_key = hmac::sign(&key, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key.as_ref()),
        STANDARD.encode(server_key.as_ref())
    )
}

/// The parts of a SCRAM-SHA-256 verifier, or `None` if `text` is not one.
pub fn parse_scram(text: &str) -> Option<ScramVerifier> {
    let rest = text.strip_prefix("SCRAM-SHA-256$")?;
    let (params, keys) = rest.split_once('$')?;
    let (iterations, salt) = params.split_once(':')?;
    let (stored, server) = keys.split_once(':')?;
    let verifier = ScramVerifier {
        iterations: iterations.parse().ok().filter(|i| *i > 0)?,
        salt: STANDARD.decode(salt).ok()?,
        stored_key: STANDARD.decode(stored).ok()?,
        server_key: STANDARD.decode(server).ok()?,
    };
    let key_len = digest::SHA256_OUTPUT_LEN;
    (verifier.stored_key.len() == key_len && verifier.server_key.len() == key_len).then_some(verifier)
}

/// The md5 verifier of `password` for `user`: `md5` and the hex of md5(password || user).
pub fn md5_verifier(user: &str, password: &str) -> String {
    format!("md5{:x}", md5::compute(format!("{password}{user}")))
}

fn is_md5_verifier(text: &str) -> bool {
    text.len() == 35 && text.starts_with("md5") && text[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a client answers to an md5 challenge with this salt, for a role with this md5
/// verifier: `md5` and the hex of md5(verifier's hex || salt).
pub fn md5_response(verifier: &str, salt: &[u8]) -> String {
    let mut bytes = verifier.strip_prefix("md5").unwrap_or(verifier).as_bytes().to_vec();
    bytes.extend_from_slice(salt);
    format!("md5{:x}", md5::compute(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scram_verifier_matches_rfc_7677s_example() {
        // RFC 7677, section 3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==.
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = scram_verifier("pencil", &salt, 4096);
        let parts = parse_scram(&verifier).expect("a verifier parses");
        assert_eq!(parts.iterations, 4096);
        assert_eq!(parts.salt, salt);
        // The server signature of the RFC's exchange follows from ServerKey and AuthMessage.
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let key = hmac::Key::new(hmac::HMAC_SHA256, &parts.server_key);
        let signature = STANDARD.encode(hmac::sign(&key, auth_message.as_bytes()).as_ref());
        assert_eq!(signature, "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn passwords_are_normalized_as_clients_normalize_them() {
        // SASLprep maps a no-break space to a space (RFC 4013).
        let salt = [7u8; 16];
        assert_eq!(
            scram_verifier("a\u{00A0}b", &salt, 4096),
            scram_verifier("a b", &salt, 4096)
        );
        assert!(same_secret(b"md5ab", b"md5ab") && !same_secret(b"md5ab", b"md5ac") && !same_secret(b"a", b"ab"));
    }

    #[test]
    fn md5_verifiers_are_postgresqls() {
        // SELECT 'md5' || md5('secret' || 'alice') in PostgreSQL.
        assert_eq!(
            md5_verifier("alice", "secret"),
            format!("md5{:x}", md5::compute("secretalice"))
        );
        let verifier = md5_verifier("alice", "secret");
        assert!(is_md5_verifier(&verifier));
        let mut inner = verifier.as_bytes()[3..].to_vec();
        inner.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            md5_response(&verifier, &[1, 2, 3, 4]),
            format!("md5{:x}", md5::compute(inner))
        );
    }

    #[test]
    fn a_password_in_clear_gets_both_verifiers_and_a_hashed_one_is_kept() {
        let p = RolePassword::new("alice", "secret");
        assert!(parse_scram(p.scram.as_deref().unwrap()).is_some());
        assert_eq!(p.md5.as_deref(), Some(md5_verifier("alice", "secret").as_str()));
        assert_ne!(
            RolePassword::new("alice", "secret").scram,
            p.scram,
            "a fresh salt each time"
        );
        let kept = RolePassword::new("bob", p.scram.as_deref().unwrap());
        assert_eq!((kept.scram.as_deref(), kept.md5), (p.scram.as_deref(), None));
        let md5 = md5_verifier("bob", "x");
        assert_eq!(RolePassword::new("bob", &md5).md5, Some(md5));
        assert!(parse_scram("SCRAM-SHA-256$0:c2FsdA==$a:b").is_none());
        assert!(!RolePassword::default().is_set());
    }
}
