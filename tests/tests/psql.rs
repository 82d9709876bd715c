//! psql, the client people use first. A script run with `psql -f` and a query string of
//! several statements run with `psql -c` print every statement's result exactly as they do
//! against PostgreSQL (which depends on the command tags and the column types the server
//! reports), and an error makes psql fail and say why.

use tessera_tests::{psql, psql_file, Cluster};

/// A script as people write them: comments, statements over several lines.
const SCRIPT: &str = "\
-- A script as people write them: comments, statements over several lines.
CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT)
  PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
INSERT INTO studt VALUES (1, 'alice', 90), (4096, 'bob', NULL), (2, 'carol', 75);
SELECT stud_id, stud_name, stud_marks
  FROM studt
  ORDER BY stud_id;
";

/// What psql 15 prints for [`SCRIPT`] against PostgreSQL.
const SCRIPT_OUTPUT: &str = "\
CREATE TABLE
CREATE TABLE
CREATE TABLE
INSERT 0 3
 stud_id | stud_name | stud_marks 
---------+-----------+------------
       1 | alice     |         90
       2 | carol     |         75
    4096 | bob       |           
(3 rows)

";

/// Several statements in one query string: psql 15 prints the result of each.
const MULTI_STATEMENT: &str = "INSERT INTO studt VALUES (3, 'dave', 60); \
                               UPDATE studt SET stud_marks = stud_marks + 1 WHERE stud_id < 4096; \
                               SELECT stud_name, stud_marks FROM studt WHERE stud_id < 4096 ORDER BY stud_id";

/// What psql 15 prints for [`MULTI_STATEMENT`] against PostgreSQL.
const MULTI_STATEMENT_OUTPUT: &str = "\
INSERT 0 1
UPDATE 3
 stud_name | stud_marks 
-----------+------------
 alice     |         91
 carol     |         76
 dave      |         61
(3 rows)

";

#[tokio::test(flavor = "multi_thread")]
async fn psql_runs_scripts_and_prints_what_postgres_prints() {
    let cluster = Cluster::start(3).await;
    let script = cluster.dir().join("script.sql");
    std::fs::write(&script, SCRIPT).expect("cannot write the script");

    let output = psql_file(cluster.router_addr(), &script).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "psql -f failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    assert_eq!(
        stdout, SCRIPT_OUTPUT,
        "psql -f prints otherwise than against PostgreSQL; stderr:\n{stderr}"
    );

    let output = psql(cluster.router_addr(), MULTI_STATEMENT).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "psql -c failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    assert_eq!(
        stdout, MULTI_STATEMENT_OUTPUT,
        "psql -c prints otherwise than against PostgreSQL; stderr:\n{stderr}"
    );

    // An aggregate, each column aligned by its type.
    let output = psql(
        cluster.router_addr(),
        "SELECT count(*) AS n, sum(stud_marks) AS total, max(stud_name) AS last FROM studt",
    )
    .await;
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        " n | total | last \n---+-------+------\n 4 |   228 | dave\n(1 row)\n\n"
    );

    // An error: psql exits non-zero and prints the server's error.
    let output = psql(cluster.router_addr(), "SELECT * FROM nosuch").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "psql succeeded on a missing table");
    assert!(
        stderr.contains("ERROR:") && stderr.contains("nosuch"),
        "psql should print the error: {stderr}"
    );
}
