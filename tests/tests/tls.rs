//! TLS between clients and the router, with psql and psycopg (libpq and OpenSSL, as users have
//! them):
//!
//! - `tessera dev --tls` makes a self-signed certificate for localhost in its data directory and
//!   says where; `sslmode=verify-full` with it as the root certificate connects, and psql's
//!   `\conninfo` shows an SSL connection; `sslmode=require` and plain connections work too;
//!   psycopg inserts and selects with parameters over `sslmode=require`, and gets an error as an
//!   error.
//! - `tessera router --tls-cert --tls-key` with a certificate made by `openssl`: verify-full
//!   against the right root connects, against another root is refused by the client.
//! - A key without a certificate is refused at start, naming the field; a key that does not go
//!   with the certificate too.

use std::path::Path;
use std::time::{Duration, Instant};

use tessera_tests::net::free_local_addr;
use tessera_tests::process::run_to_completion;
use tessera_tests::psql::psql_conninfo;
use tessera_tests::script::{python_with, run_checked};
use tessera_tests::{Cluster, ClusterOptions, DevServer};

fn fail(message: &str) -> ! {
    panic!("{message}")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs psql with `conninfo`; returns its stdout, or fails with what it printed.
async fn psql_ok(conninfo: &str, sql: &str) -> String {
    let out = psql_conninfo(conninfo, sql).await;
    if !out.status.success() {
        fail(&format!(
            "psql \"{conninfo}\" -c {sql:?} failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        ));
    }
    text(&out.stdout)
}

/// A certificate for localhost and its key, made by `openssl` in `dir`.
async fn openssl_certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = run_to_completion(
        Path::new("openssl"),
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            key.to_str().unwrap_or_default(),
            "-out",
            cert.to_str().unwrap_or_default(),
        ],
        Duration::from_secs(60),
    )
    .await
    .unwrap_or_else(|e| {
        fail(&format!(
            "openssl (Debian's openssl package) is needed to make a test certificate: {e}"
        ))
    });
    assert!(out.status.success(), "openssl req failed: {}", text(&out.stderr));
    (cert, key)
}

#[tokio::test(flavor = "multi_thread")]
async fn dev_with_tls_serves_verified_and_required_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listen = free_local_addr();
    let mut dev = DevServer::start_with(dir.path(), listen, 1, &["--tls"])
        .await
        .unwrap_or_else(|e| fail(&e));
    let cert = dir.path().join("data").join("tls").join("cert.pem");
    assert!(cert.is_file(), "no certificate at {}", cert.display());
    let deadline = Instant::now() + Duration::from_secs(5);
    let hint = loop {
        if let Some(line) = dev.stdout().into_iter().find(|l| l.starts_with("TLS:")) {
            break line;
        }
        if Instant::now() > deadline {
            fail(&format!("no TLS line on stdout:\n{}", dev.diagnostics()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(hint.contains(&format!("sslrootcert={}", cert.display())), "{hint}");

    let port = listen.port();
    let verified = format!(
        "host=localhost port={port} sslmode=verify-full sslrootcert={}",
        cert.display()
    );
    let info = psql_ok(&verified, "\\conninfo").await;
    assert!(info.contains("SSL connection"), "{info}");
    let made = psql_ok(
        &verified,
        "CREATE TABLE secrets (id INT PRIMARY KEY, v TEXT); INSERT INTO secrets VALUES (1, 'over tls'); SELECT v FROM secrets",
    )
    .await;
    assert!(made.contains("over tls"), "{made}");
    let required = psql_ok(&format!("host=127.0.0.1 port={port} sslmode=require"), "\\conninfo").await;
    assert!(required.contains("SSL connection"), "{required}");
    let plain = psql_ok(
        &format!("host=127.0.0.1 port={port} sslmode=disable"),
        "SELECT count(*) FROM secrets",
    )
    .await;
    assert!(plain.contains(" 1"), "{plain}");
    assert!(
        !psql_ok(&format!("host=127.0.0.1 port={port} sslmode=disable"), "\\conninfo")
            .await
            .contains("SSL")
    );

    // A driver over TLS: parameters both ways, and an error that arrives as one.
    let python = python_with(&["psycopg"]).await;
    let script = format!(
        r#"
import psycopg
with psycopg.connect("host=localhost port={port} user=tessera dbname=tessera sslmode=verify-full sslrootcert={cert}") as conn:
    assert conn.info.pgconn.ssl_in_use, "not over TLS"
    conn.execute("INSERT INTO secrets VALUES (%s, %s)", (2, "from psycopg"))
    row = conn.execute("SELECT v FROM secrets WHERE id = %s", (2,)).fetchone()
    assert row == ("from psycopg",), row
    try:
        conn.execute("INSERT INTO secrets VALUES (%s, %s)", (2, "again"))
        raise SystemExit("a duplicate key was accepted")
    except psycopg.errors.UniqueViolation:
        conn.rollback()
print("ok")
"#,
        cert = cert.display()
    );
    let mut command = tokio::process::Command::new(&python);
    command.arg("-c").arg(script);
    run_checked(command, "psycopg over TLS", Duration::from_secs(60)).await;

    assert!(dev
        .interrupt(Duration::from_secs(30))
        .await
        .is_some_and(|s| s.success()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_offers_the_certificate_it_is_given() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = openssl_certificate(certs.path()).await;
    let other = tempfile::tempdir().expect("temp dir");
    let (other_cert, _) = openssl_certificate(other.path()).await;
    let mut options = ClusterOptions::new(1);
    options.router_flags = vec![
        "--tls-cert".into(),
        cert.display().to_string(),
        "--tls-key".into(),
        key.display().to_string(),
    ];
    let cluster = Cluster::start_with(options).await;
    let port = cluster.router_addr().port();

    let right = format!(
        "host=localhost port={port} sslmode=verify-full sslrootcert={}",
        cert.display()
    );
    assert!(psql_ok(&right, "\\conninfo").await.contains("SSL connection"));
    let wrong = format!(
        "host=localhost port={port} sslmode=verify-full sslrootcert={}",
        other_cert.display()
    );
    let refused = psql_conninfo(&wrong, "SELECT 1").await;
    assert!(
        !refused.status.success(),
        "verify-full accepted a certificate of another root"
    );
    let why = text(&refused.stderr);
    assert!(why.contains("certificate verify failed"), "{why}");
}

/// Runs `tessera router` with `flags` (and a catalog that is not there) to its exit.
async fn router_start(flags: &[&str]) -> std::process::Output {
    let listen = free_local_addr().to_string();
    let mut args = vec!["router", "--listen", &listen, "--catalog", "127.0.0.1:1"];
    args.extend_from_slice(flags);
    run_to_completion(&tessera_tests::binaries::tessera_bin(), &args, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| fail(&e))
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_tls_settings_are_refused_at_start() {
    let certs = tempfile::tempdir().expect("temp dir");
    let (cert, key) = openssl_certificate(certs.path()).await;
    let other = tempfile::tempdir().expect("temp dir");
    let (_, other_key) = openssl_certificate(other.path()).await;
    let key_only = router_start(&["--tls-key", key.to_str().unwrap_or_default()]).await;
    assert_eq!(key_only.status.code(), Some(2), "{}", text(&key_only.stderr));
    assert!(
        text(&key_only.stderr).contains("tls_cert: needed with tls_key"),
        "{}",
        text(&key_only.stderr)
    );
    let mismatched = router_start(&[
        "--tls-cert",
        cert.to_str().unwrap_or_default(),
        "--tls-key",
        other_key.to_str().unwrap_or_default(),
    ])
    .await;
    assert_eq!(mismatched.status.code(), Some(1), "{}", text(&mismatched.stderr));
    assert!(
        text(&mismatched.stderr).contains("tls_key"),
        "{}",
        text(&mismatched.stderr)
    );
}
