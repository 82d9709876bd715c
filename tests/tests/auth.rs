//! Logins with passwords: roles made with `CREATE ROLE ... PASSWORD`, kept by the catalog and
//! checked by routers started with `--auth scram-sha-256` and `--auth md5`, from
//! tokio-postgres and from psql (libpq). The catalog's `--pwfile` makes the first superuser.
//!
//! The test checks that
//!
//! - the superuser `tessera` of `--pwfile` logs in with its password, over SCRAM and md5, and
//!   a wrong password or an unknown role is refused with 28P01, a role without LOGIN with 28000;
//! - a role made by the superuser logs in, reads and writes; it may change its own password
//!   (the old one then fails) but not make roles (42501);
//! - CREATE ROLE of an existing role is refused with 42710, options there are not (CREATEDB)
//!   and CREATE USER with 0A000, DROP ROLE of a missing one with
//!   42704 (IF EXISTS: a notice), and a dropped role can no longer log in;
//! - a role with only an md5 verifier logs in over md5 but not SCRAM; a session's rights
//!   follow its role's changes;
//! - pg_roles and psql's `\\du` list the roles, and the roles survive a restart of the catalog;
//! - ALTER USER changes a password; a rename clears the md5 verifier (md5 logins of the
//!   renamed role then go through SCRAM, and a role that had only md5 has no password left);
//! - pg_user lists the roles that may log in; an unknown name is offered the same SCRAM salt
//!   every time; a `--auth trust` router lets a role in without a password but still refuses
//!   one without LOGIN (28000);
//! - a malformed answer to the SCRAM challenge gets 08P01, and the router goes on;
//! - asyncpg (its own SCRAM and md5) and psycopg 3 (libpq) log in over both methods and get
//!   28P01 for a wrong password (`tests/python/password_test.py`, run with `$TESSERA_PYTHON`).

use std::net::SocketAddr;
use std::time::Duration;

use tessera_tests::binaries::tessera_bin;
use tessera_tests::client::connect_as;
use tessera_tests::net::{free_local_addr, wait_for_tcp};
use tessera_tests::process::ManagedProcess;
use tessera_tests::psql::psql_conninfo;
use tessera_tests::script::{client_program, python_with, run_checked, SCRIPT_TIMEOUT};
use tessera_tests::wire;
use tessera_tests::{describe_error, retry_until, sqlstate, Cluster, ClusterOptions};
use tokio_postgres::Client;

const SUPERUSER_PASSWORD: &str = "first secret";

fn fail(message: &str) -> ! {
    panic!("{message}")
}

/// Connects as `user` with `password`; the error's SQLSTATE (or its description) if refused.
async fn login(addr: SocketAddr, user: &str, password: &str) -> Result<Client, String> {
    connect_as(addr, user, Some(password), "tessera")
        .await
        .map_err(|e| sqlstate(&e).map(String::from).unwrap_or_else(|| describe_error(&e)))
}

/// Runs `sql`, failing the test if it is refused.
async fn run(client: &Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| fail(&format!("{sql}: {}", describe_error(&e))));
}

/// Runs `sql` until it is accepted (a change the routers have yet to see), for up to 30 s.
async fn run_soon(client: &Client, what: &str, sql: &str) {
    retry_until(what, Duration::from_secs(30), || async {
        client.batch_execute(sql).await.map_err(|e| describe_error(&e))
    })
    .await
    .unwrap_or_else(|e| fail(&e));
}

/// The SQLSTATE of a refused statement.
async fn refused(client: &Client, sql: &str) -> String {
    match client.simple_query(sql).await {
        Ok(_) => fail(&format!("{sql} was accepted")),
        Err(e) => sqlstate(&e).map(String::from).unwrap_or_else(|| describe_error(&e)),
    }
}

/// A router of the test's cluster checking passwords with `method`.
fn password_router(cluster: &Cluster, method: &str) -> (ManagedProcess, SocketAddr) {
    let addr = free_local_addr();
    let args = [
        "router",
        "--listen",
        &addr.to_string(),
        "--catalog",
        &cluster.catalog_addr().to_string(),
        "--auth",
        method,
    ];
    let process = ManagedProcess::tied_to_test(
        format!("router ({method})"),
        tessera_bin(),
        args.iter().map(Into::into).collect(),
        cluster.dir().join(format!("router-{method}.log")),
    );
    (process, addr)
}

async fn start(process: &mut ManagedProcess, addr: SocketAddr) {
    process.start().unwrap_or_else(|e| fail(&e));
    wait_for_tcp(addr, Duration::from_secs(30), || process.check_alive())
        .await
        .unwrap_or_else(|e| fail(&e));
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_log_in_with_their_passwords_over_scram_and_md5() {
    let pwfile_dir = tempfile::tempdir().unwrap_or_else(|e| fail(&e.to_string()));
    let pwfile = pwfile_dir.path().join("pwfile");
    std::fs::write(&pwfile, format!("{SUPERUSER_PASSWORD}\n")).unwrap_or_else(|e| fail(&e.to_string()));
    let mut options = ClusterOptions::new(1);
    options.catalog_flags = vec!["--pwfile".into(), pwfile.to_string_lossy().into_owned()];
    let mut cluster = Cluster::start_with(options).await;
    let (mut scram, scram_addr) = password_router(&cluster, "scram-sha-256");
    let (mut md5, md5_addr) = password_router(&cluster, "md5");
    start(&mut scram, scram_addr).await;
    start(&mut md5, md5_addr).await;

    // The superuser of --pwfile, once the routers have the catalog's roles.
    let admin = retry_until("the superuser's login", Duration::from_secs(30), || {
        login(scram_addr, "tessera", SUPERUSER_PASSWORD)
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    let who = admin
        .query_one(
            "SELECT current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .unwrap_or_else(|e| fail(&describe_error(&e)));
    assert_eq!(
        (who.get::<_, String>(0), who.get::<_, bool>(1)),
        ("tessera".into(), true)
    );
    login(md5_addr, "tessera", SUPERUSER_PASSWORD)
        .await
        .unwrap_or_else(|e| fail(&format!("md5 login: {e}")));
    for (addr, method) in [(scram_addr, "scram"), (md5_addr, "md5")] {
        assert_eq!(
            login(addr, "tessera", "wrong").await.err().as_deref(),
            Some("28P01"),
            "{method}"
        );
        assert_eq!(
            login(addr, "nobody", "wrong").await.err().as_deref(),
            Some("28P01"),
            "{method}"
        );
    }

    // Roles made by the superuser.
    run(
        &admin,
        "CREATE ROLE alice LOGIN PASSWORD 'alice-1';
         CREATE ROLE bob PASSWORD 'bob-1';
         CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
    )
    .await;
    assert_eq!(refused(&admin, "CREATE ROLE zoe, zoe").await, "42710", "one name twice");
    assert_eq!(refused(&admin, "CREATE ROLE alice").await, "42710");
    assert_eq!(refused(&admin, "DROP ROLE nobody").await, "42704");
    assert_eq!(refused(&admin, "CREATE USER carol WITH PASSWORD 'c'").await, "0A000");
    assert_eq!(refused(&admin, "CREATE ROLE carol CREATEDB").await, "0A000");
    run(&admin, "DROP ROLE IF EXISTS nobody").await;
    assert_eq!(
        login(scram_addr, "bob", "bob-1").await.err().as_deref(),
        Some("28000"),
        "no LOGIN"
    );

    let alice = login(scram_addr, "alice", "alice-1")
        .await
        .unwrap_or_else(|e| fail(&format!("alice over SCRAM: {e}")));
    alice
        .execute("INSERT INTO notes VALUES ($1, $2)", &[&1i32, &"from alice"])
        .await
        .unwrap_or_else(|e| fail(&describe_error(&e)));
    let body: String = alice
        .query_one("SELECT body FROM notes WHERE id = $1", &[&1i32])
        .await
        .unwrap_or_else(|e| fail(&describe_error(&e)))
        .get(0);
    assert_eq!(body, "from alice");
    for (client, expected) in [(&admin, "on"), (&alice, "off")] {
        let shown: String = client
            .query_one("SHOW is_superuser", &[])
            .await
            .unwrap_or_else(|e| fail(&describe_error(&e)))
            .get(0);
        assert_eq!(shown, expected);
    }
    assert_eq!(refused(&alice, "CREATE ROLE mallory LOGIN").await, "42501");
    assert_eq!(refused(&alice, "ALTER ROLE alice SUPERUSER").await, "42501");
    assert_eq!(refused(&alice, "DROP ROLE bob").await, "42501");
    login(md5_addr, "alice", "alice-1")
        .await
        .unwrap_or_else(|e| fail(&format!("alice over md5: {e}")));

    // A role given an md5 verifier only: md5 lets it in, SCRAM cannot.
    let md5_only = format!("md5{:x}", md5::compute("dave-1dave"));
    run(&admin, &format!("CREATE ROLE dave LOGIN PASSWORD '{md5_only}'")).await;
    login(md5_addr, "dave", "dave-1")
        .await
        .unwrap_or_else(|e| fail(&format!("dave over md5: {e}")));
    assert_eq!(
        login(scram_addr, "dave", "dave-1").await.err().as_deref(),
        Some("28P01")
    );

    // Rights follow the role as it is now, also in a session opened before the change.
    run(&admin, "ALTER ROLE alice SUPERUSER").await;
    run_soon(&alice, "alice's new right", "CREATE ROLE erin").await;
    run(&admin, "ALTER ROLE alice NOSUPERUSER").await;
    retry_until("alice's right taken back", Duration::from_secs(10), || async {
        match alice.batch_execute("DROP ROLE erin").await {
            Err(e) if sqlstate(&e) == Some("42501") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));

    // psql (libpq) over SCRAM.
    let out = psql_conninfo(
        &format!("host=127.0.0.1 port={} user=alice password=alice-1", scram_addr.port()),
        "SELECT count(*) FROM notes",
    )
    .await;
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains('1'),
        "psql as alice: {out:?}"
    );

    // A role changes its own password.
    run(&alice, "ALTER ROLE alice PASSWORD 'alice-2'").await;
    retry_until("the new password", Duration::from_secs(10), || async {
        match (
            login(scram_addr, "alice", "alice-1").await.err(),
            login(scram_addr, "alice", "alice-2").await,
        ) {
            (Some(code), Ok(_)) if code == "28P01" => Ok(()),
            (old, new) => Err(format!("old password: {old:?}, new: {:?}", new.err())),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));

    let roles: Vec<(String, bool, bool)> = admin
        .query(
            "SELECT rolname, rolsuper, rolcanlogin FROM pg_roles ORDER BY rolname",
            &[],
        )
        .await
        .unwrap_or_else(|e| fail(&describe_error(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        roles,
        vec![
            ("alice".into(), false, true),
            ("bob".into(), false, false),
            ("dave".into(), false, true),
            ("erin".into(), false, false),
            ("tessera".into(), true, true)
        ]
    );

    let du = psql_conninfo(
        &format!(
            "host=127.0.0.1 port={} user=tessera password='{SUPERUSER_PASSWORD}'",
            scram_addr.port()
        ),
        "\\du",
    )
    .await;
    let listed = String::from_utf8_lossy(&du.stdout);
    assert!(
        du.status.success()
            && ["alice", "bob", "Cannot login", "Superuser"]
                .iter()
                .all(|w| listed.contains(w)),
        "psql's \\du: {du:?}"
    );

    // ALTER USER is ALTER ROLE. A rename clears the md5 verifier, which is salted with the
    // name: the renamed role logs in through md5 routers by SCRAM (its only verifier now), and
    // a role that had only an md5 verifier has no password left.
    run(
        &admin,
        "CREATE ROLE frank LOGIN PASSWORD 'frank-1';
         ALTER USER frank PASSWORD 'frank-2';
         ALTER ROLE frank RENAME TO grace;
         ALTER ROLE dave RENAME TO dan",
    )
    .await;
    retry_until("the renamed roles' logins", Duration::from_secs(10), || async {
        // Both renames are seen (an unknown name would get 28P01 too).
        let renamed: i64 = admin
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname IN ('grace', 'dan')", &[])
            .await
            .map_err(|e| describe_error(&e))?
            .get(0);
        let seen = (
            renamed,
            login(scram_addr, "grace", "frank-2").await.err(),
            login(md5_addr, "grace", "frank-2").await.err(),
            login(scram_addr, "frank", "frank-2").await.err(),
            login(md5_addr, "dan", "dave-1").await.err(),
            login(scram_addr, "dan", "dave-1").await.err(),
        );
        match &seen {
            (2, None, None, Some(gone), Some(md5), Some(scram))
                if gone == "28P01" && md5 == "28P01" && scram == "28P01" =>
            {
                Ok(())
            }
            _ => Err(format!(
                "roles renamed, grace over SCRAM, grace over md5, frank, dan over md5, dan over SCRAM: {seen:?}"
            )),
        }
    })
    .await
    .unwrap_or_else(|e| fail(&e));

    // pg_user lists the roles that may log in.
    let users: Vec<(String, bool)> = admin
        .query("SELECT usename, usesuper FROM pg_user ORDER BY usename", &[])
        .await
        .unwrap_or_else(|e| fail(&describe_error(&e)))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        users,
        vec![
            ("alice".into(), false),
            ("dan".into(), false),
            ("grace".into(), false),
            ("tessera".into(), true)
        ]
    );

    // An unknown name is offered the same salt every time, as a real role is, so that the
    // challenge does not tell which names exist.
    let (first, again) = (
        scram_salt(scram_addr, "nobody").await,
        scram_salt(scram_addr, "nobody").await,
    );
    assert_eq!(first, again, "the salt offered to an unknown name");
    assert_ne!(
        first,
        scram_salt(scram_addr, "somebody").await,
        "salts of two unknown names"
    );
    assert_eq!(
        scram_salt(scram_addr, "grace").await,
        scram_salt(scram_addr, "grace").await,
        "a real role's salt"
    );

    // A trust router asks for no password, but still refuses a role without LOGIN.
    let (mut trust, trust_addr) = password_router(&cluster, "trust");
    start(&mut trust, trust_addr).await;
    let grace = retry_until("grace through the trust router", Duration::from_secs(30), || async {
        connect_as(trust_addr, "grace", None, "tessera")
            .await
            .map_err(|e| describe_error(&e))
    })
    .await
    .unwrap_or_else(|e| fail(&e));
    let user: String = grace
        .query_one("SELECT current_user", &[])
        .await
        .unwrap_or_else(|e| fail(&describe_error(&e)))
        .get(0);
    assert_eq!(user, "grace");
    let bob = connect_as(trust_addr, "bob", None, "tessera").await;
    assert_eq!(
        bob.err().and_then(|e| sqlstate(&e).map(String::from)).as_deref(),
        Some("28000"),
        "bob has no LOGIN"
    );

    // Roles are the catalog's: they survive its restart; a dropped one no longer logs in.
    cluster.kill_catalog(0);
    cluster.restart_catalog(0).await;
    let admin = retry_until(
        "the superuser after the catalog's restart",
        Duration::from_secs(30),
        || login(scram_addr, "tessera", SUPERUSER_PASSWORD),
    )
    .await
    .unwrap_or_else(|e| fail(&e));
    run_soon(&admin, "DROP ROLE alice after the restart", "DROP ROLE alice").await;
    assert_eq!(
        login(scram_addr, "alice", "alice-2").await.err().as_deref(),
        Some("28P01")
    );
    assert_eq!(refused(&admin, "DROP ROLE tessera").await, "55006", "dropping oneself");

    // A malformed answer to the SCRAM challenge is a protocol violation, not a crash.
    assert_eq!(malformed_sasl_answer(scram_addr).await, "08P01");
    login(scram_addr, "tessera", SUPERUSER_PASSWORD)
        .await
        .unwrap_or_else(|e| fail(&format!("a login after the malformed one: {e}")));

    // Drivers with SCRAM and md5 code of their own (asyncpg) and libpq's (psycopg 3).
    let python = python_with(&["asyncpg", "psycopg"]).await;
    let mut command = tokio::process::Command::new(&python);
    command
        .arg("-u")
        .arg(client_program("python", "password_test.py"))
        .env("TESSERA_ROUTER_ADDR", scram_addr.to_string())
        .env("TESSERA_MD5_ROUTER_ADDR", md5_addr.to_string())
        .env("TESSERA_USER", "tessera")
        .env("TESSERA_PASSWORD", SUPERUSER_PASSWORD);
    run_checked(command, "tests/python/password_test.py", SCRIPT_TIMEOUT).await;
}

async fn read_message(stream: &mut tokio::net::TcpStream) -> (u8, Vec<u8>) {
    wire::read_message(stream)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()))
}

/// Connects, sends the startup message of a login as `user`, and checks that the router asks
/// for SASL.
async fn sasl_requested(addr: SocketAddr, user: &str) -> tokio::net::TcpStream {
    let mut stream = wire::start(addr, user).await.unwrap_or_else(|e| fail(&e.to_string()));
    let (kind, body) = read_message(&mut stream).await;
    assert_eq!(
        (kind, body.get(..4)),
        (b'R', Some(&10i32.to_be_bytes()[..])),
        "an AuthenticationSASL request"
    );
    stream
}

/// Starts a SCRAM login as `user` and returns the salt of the server's first message.
async fn scram_salt(addr: SocketAddr, user: &str) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = sasl_requested(addr, user).await;
    let client_first = b"n,,n=,r=0123456789abcdefghijklmn";
    let mut body = b"SCRAM-SHA-256\0".to_vec();
    body.extend_from_slice(&(client_first.len() as i32).to_be_bytes());
    body.extend_from_slice(client_first);
    stream
        .write_all(&wire::message(b'p', &body))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let (kind, body) = read_message(&mut stream).await;
    assert_eq!(
        (kind, body.get(..4)),
        (b'R', Some(&11i32.to_be_bytes()[..])),
        "an AuthenticationSASLContinue: {body:?}"
    );
    let server_first = String::from_utf8_lossy(&body[4..]).into_owned();
    server_first
        .split(',')
        .find_map(|part| part.strip_prefix("s="))
        .map(String::from)
        .unwrap_or_else(|| fail(&format!("no salt in {server_first}")))
}

/// Starts a login as `tessera`, answers the SASL challenge with a plain password message, and
/// returns the SQLSTATE of the error the router sends back.
async fn malformed_sasl_answer(addr: SocketAddr) -> String {
    use tokio::io::AsyncWriteExt;
    let mut stream = sasl_requested(addr, "tessera").await;
    stream
        .write_all(&[b'p', 0, 0, 0, 7, b'p', b'w', 0])
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let (kind, body) = read_message(&mut stream).await;
    assert_eq!(kind, b'E', "an ErrorResponse: {body:?}");
    body.split(|b| *b == 0)
        .find_map(|field| field.strip_prefix(b"C"))
        .map(|code| String::from_utf8_lossy(code).into_owned())
        .unwrap_or_else(|| fail(&format!("no SQLSTATE in {body:?}")))
}
