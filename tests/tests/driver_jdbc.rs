//! pgjdbc, the PostgreSQL JDBC driver (Java), against a Tessera cluster: a value of every
//! supported type round-trips through PreparedStatement setters and ResultSet getters, before
//! and after pgjdbc switches a statement to a named server-side one with binary results;
//! addBatch/executeBatch; setAutoCommit(false) with commit and rollback; SQLException's
//! SQLSTATE for a duplicate key (23505) and for statements after an error in a transaction
//! (25P02) on a connection that stays usable; and DatabaseMetaData's getTables, getColumns,
//! getPrimaryKeys and getIndexInfo, which run pgjdbc's own queries on pg_catalog.
//!
//! The checks live in `tests/java/TesseraJdbcTest.java`. This test compiles it with javac into
//! a temporary directory, starts a cluster, runs it with the router's address in
//! `TESSERA_ROUTER_ADDR` and fails, printing its output, when it does (see
//! [`tessera_tests::script`]). The driver is the jar `$TESSERA_JDBC_JAR` and the JDK's `javac`
//! and `java` come from `$JAVA_HOME/bin` or the PATH; scripts/test.sh installs Debian's
//! libpostgresql-jdbc-java and default-jdk-headless when they are missing and exports
//! TESSERA_JDBC_JAR. Without them the test fails and says so; it never skips.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tessera_tests::script::{client_program, run_against, run_checked};
use tessera_tests::Cluster;
use tokio::process::Command;

/// How long javac may take for the one file.
const COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// What to do when the JDK or the driver is missing.
const SETUP_HINT: &str = "run scripts/test.sh, which installs a JDK (default-jdk-headless) and pgjdbc \
     (libpostgresql-jdbc-java) when they are missing and exports TESSERA_JDBC_JAR=/usr/share/java/postgresql.jar; \
     to run this test alone afterwards, export TESSERA_JDBC_JAR=/usr/share/java/postgresql.jar";

/// The pgjdbc jar, `$TESSERA_JDBC_JAR`.
fn jdbc_jar() -> PathBuf {
    let jar = match std::env::var_os("TESSERA_JDBC_JAR") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!("TESSERA_JDBC_JAR is not set, so there is no JDBC driver to test: {SETUP_HINT}"),
    };
    assert!(
        jar.is_file(),
        "TESSERA_JDBC_JAR={} is not a file: {SETUP_HINT}",
        jar.display()
    );
    jar
}

/// The JDK program `name` (`javac`, `java`): `$JAVA_HOME/bin/<name>` when JAVA_HOME is set,
/// otherwise `name` from the PATH, checked to run `-version`.
async fn jdk_program(name: &str) -> PathBuf {
    let program = match std::env::var_os("JAVA_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home).join("bin").join(name),
        _ => PathBuf::from(name),
    };
    let check = Command::new(&program)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {SETUP_HINT}", program.display()));
    assert!(
        check.status.success(),
        "{} -version failed ({}):\n{}\n{SETUP_HINT}",
        program.display(),
        check.status,
        String::from_utf8_lossy(&check.stderr)
    );
    program
}

#[tokio::test(flavor = "multi_thread")]
async fn jdbc_prepared_statements_transactions_errors_and_metadata() {
    let jar = jdbc_jar();
    let javac = jdk_program("javac").await;
    let java = jdk_program("java").await;
    let source = client_program("java", "TesseraJdbcTest.java");

    let classes = tempfile::tempdir().expect("cannot create a temp dir for the compiled classes");
    let mut compile = Command::new(&javac);
    compile
        .args(["-encoding", "UTF-8", "-cp"])
        .arg(&jar)
        .arg("-d")
        .arg(classes.path())
        .arg(&source);
    run_checked(compile, &format!("javac {}", source.display()), COMPILE_TIMEOUT).await;

    let classpath = std::env::join_paths([jar.as_path(), classes.path()])
        .unwrap_or_else(|e| panic!("cannot make a class path of {} and the temp dir: {e}", jar.display()));
    let cluster = Cluster::start(3).await;
    let mut run = Command::new(&java);
    run.arg("-cp").arg(&classpath).arg("TesseraJdbcTest");
    run_against(&cluster, run, &format!("java TesseraJdbcTest ({})", source.display())).await;
}
