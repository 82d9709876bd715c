//! psql's meta-commands (`\dt`, `\d studt`, `\d+ studt`...): psql answers them with queries on
//! `pg_catalog`, so they work only if Tessera answers those queries as PostgreSQL does. The
//! same tables are created on Tessera and on a real PostgreSQL, and each command must print
//! exactly the same thing on both. Commands whose output names things only PostgreSQL has
//! (its template databases, its built-in roles) must work and show Tessera's own objects.

use tessera_tests::{psql, Cluster, Postgres};

/// The same schema on both servers: range, hash and unpartitioned tables, composite keys,
/// every kind of column type, NOT NULL and DEFAULT.
const SCHEMA: &[&str] = &[
    "CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id)",
    "CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096)",
    "CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192)",
    "CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (MAXVALUE)",
    "CREATE TABLE kv (k TEXT, n BIGINT NOT NULL, v VARCHAR(20) DEFAULT 'none', PRIMARY KEY (k, n)) PARTITION BY HASH (k)",
    "CREATE TABLE kv0 PARTITION OF kv FOR VALUES WITH (MODULUS 2, REMAINDER 0)",
    "CREATE TABLE kv1 PARTITION OF kv FOR VALUES WITH (MODULUS 2, REMAINDER 1)",
    "CREATE TABLE typed (id SMALLINT PRIMARY KEY, price NUMERIC(10,2) DEFAULT 0, ratio DOUBLE PRECISION, \
     score REAL DEFAULT 1.5, code CHAR(3), flag BOOLEAN NOT NULL DEFAULT false, born DATE, \
     seen TIMESTAMP, at TIMESTAMPTZ DEFAULT now(), ref UUID, raw BYTEA, note TEXT DEFAULT 'n/a')",
    "CREATE TABLE nokey (a INT, b TEXT)",
];

/// Commands whose whole output must match PostgreSQL's.
const SAME_AS_POSTGRES: &[&str] = &[
    "\\dt",
    "\\d",
    "\\di",
    "\\d studt",
    "\\d+ studt",
    "\\d sh2",
    "\\d+ sh2",
    "\\d+ sh3",
    "\\d kv",
    "\\d kv0",
    "\\d typed",
    "\\d nokey",
    "\\d studt_pkey",
    "\\dt sh*",
    "\\d+ kv",
];

async fn run_ok(addr: std::net::SocketAddr, command: &str, server: &str) -> String {
    let out = psql(addr, command).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{command}` failed on {server}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn meta_commands_print_what_they_print_against_postgres() {
    let (postgres, cluster) = tokio::join!(Postgres::start(), Cluster::start(3));
    let (pg, tessera) = (postgres.client().await, cluster.client().await);
    for statement in SCHEMA {
        pg.simple_query(statement)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL refused `{statement}`: {e}"));
        tessera
            .simple_query(statement)
            .await
            .unwrap_or_else(|e| panic!("Tessera refused `{statement}`: {}", tessera_tests::describe_error(&e)));
    }
    let mut differences = Vec::new();
    for command in SAME_AS_POSTGRES {
        let expected = run_ok(postgres.addr(), command, "PostgreSQL").await;
        let got = run_ok(cluster.router_addr(), command, "Tessera").await;
        if got != expected {
            differences.push(format!("`{command}`\n--- PostgreSQL:\n{expected}--- Tessera:\n{got}"));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_wide_meta_commands_show_tessera_objects() {
    let cluster = Cluster::start(1).await;
    let client = cluster.client().await;
    client
        .simple_query(SCHEMA[0])
        .await
        .unwrap_or_else(|e| panic!("{}", tessera_tests::describe_error(&e)));
    let addr = cluster.router_addr();
    let databases = run_ok(addr, "\\l", "Tessera").await;
    assert!(
        databases.contains(" tessera ") && databases.contains("UTF8"),
        "{databases}"
    );
    let schemas = run_ok(addr, "\\dn", "Tessera").await;
    assert!(
        schemas.contains(" public ") && schemas.contains(" tessera "),
        "{schemas}"
    );
    let roles = run_ok(addr, "\\du", "Tessera").await;
    assert!(roles.contains(" tessera ") && roles.contains("Superuser"), "{roles}");
    for empty in ["\\df", "\\dv", "\\ds", "\\dT", "\\dx", "\\dp studt"] {
        run_ok(addr, empty, "Tessera").await;
    }
    // Expanded display and timing are psql's own; they wrap ordinary queries.
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("expanded.sql");
    std::fs::write(&script, "\\x on\n\\timing on\nSELECT 1 AS one, 'a' AS letter;\n").expect("write script");
    let out = tessera_tests::psql_file(addr, &script).await;
    let expanded = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        expanded.contains("one    | 1") && expanded.contains("letter | a") && expanded.contains("Time: "),
        "{expanded}"
    );
}
