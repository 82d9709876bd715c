//! The course's HTTP API on a real cluster: the course's own example payloads (the /init of 4
//! shards of 4096 on 6 servers holding 2 shards each, its /write, /read, /update and /del),
//! what psql sees of the same table and the other way round, and malformed payloads, each
//! refused with HTTP 400 and `{"status": "error", "message": ...}` and nothing applied.

use serde_json::{json, Value as Json};
use tessera_tests::http::{request, Reply};
use tessera_tests::{query_count, query_rows, Cluster, ClusterOptions};

/// The course's /init payload: 4 shards, 6 servers, every shard on 3 of them.
const INIT: &str = r#"{
    "N": 6,
    "schema": {"columns": ["Stud_id", "Stud_name", "Stud_marks"], "dtypes": ["Number", "String", "String"]},
    "shards": [
        {"Stud_id_low": 0, "Shard_id": "sh1", "Shard_size": 4096},
        {"Stud_id_low": 4096, "Shard_id": "sh2", "Shard_size": 4096},
        {"Stud_id_low": 8192, "Shard_id": "sh3", "Shard_size": 4096},
        {"Stud_id_low": 12288, "Shard_id": "sh4", "Shard_size": 4096}
    ],
    "servers": {
        "Server0": ["sh1", "sh2"],
        "Server1": ["sh3", "sh4"],
        "Server3": ["sh1", "sh3"],
        "Server4": ["sh4", "sh2"],
        "Server5": ["sh1", "sh4"],
        "Server6": ["sh3", "sh2"]
    }
}"#;

struct Api {
    cluster: Cluster,
}

impl Api {
    async fn call(&self, method: &str, path: &str, body: &str) -> Reply {
        match request(self.cluster.http_addr(), method, path, body).await {
            Ok(reply) => reply,
            Err(e) => panic!("{e}"),
        }
    }

    /// A request that must succeed with 200; its JSON body.
    async fn ok(&self, method: &str, path: &str, body: &str) -> Json {
        let reply = self.call(method, path, body).await;
        assert_eq!(reply.status, 200, "{method} {path} {body} answered {reply:?}");
        reply.json()
    }

    /// A request that must be refused with `status`; its error message.
    async fn refused(&self, status: u16, method: &str, path: &str, body: &str) -> String {
        let reply = self.call(method, path, body).await;
        assert_eq!(reply.status, status, "{method} {path} {body} answered {reply:?}");
        let json = reply.json();
        assert_eq!(json["status"], "error", "{method} {path} {body}: {json}");
        let message = json["message"].as_str().unwrap_or_default().to_string();
        assert!(!message.is_empty(), "{method} {path} {body}: no message in {json}");
        message
    }
}

fn row(id: i64, name: &str, marks: &str) -> Json {
    json!({"Stud_id": id, "Stud_name": name, "Stud_marks": marks})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_course_payloads_work_and_share_the_table_with_sql() {
    let api = Api {
        cluster: Cluster::start_with(ClusterOptions::new(6)).await,
    };
    let sql = api.cluster.client().await;

    let beat = api.call("GET", "/heartbeat", "").await;
    assert_eq!((beat.status, beat.body.as_str()), (200, ""), "heartbeat: {beat:?}");
    let message = api.refused(400, "GET", "/status", "").await;
    assert!(message.contains("POST /init"), "status before init: {message}");

    assert_eq!(
        api.ok("POST", "/init", INIT).await,
        json!({"message": "Configured Database", "status": "success"})
    );
    let again = api.call("POST", "/init", INIT).await;
    assert_eq!(again.status, 400, "a second /init: {again:?}");
    assert_eq!(again.json()["sqlstate"], "42P07", "a second /init: {again:?}");

    let status = api.ok("GET", "/status", "").await;
    assert_eq!(status["N"], 6, "{status}");
    assert_eq!(
        status["schema"],
        json!({"columns": ["Stud_id", "Stud_name", "Stud_marks"], "dtypes": ["Number", "String", "String"]})
    );
    assert_eq!(
        status["shards"],
        json!([
            {"Stud_id_low": 0, "Shard_id": "sh1", "Shard_size": 4096},
            {"Stud_id_low": 4096, "Shard_id": "sh2", "Shard_size": 4096},
            {"Stud_id_low": 8192, "Shard_id": "sh3", "Shard_size": 4096},
            {"Stud_id_low": 12288, "Shard_id": "sh4", "Shard_size": 4096}
        ])
    );
    // Three replicas of each shard, each on a node of its own.
    let servers = status["servers"].as_object().expect("servers is an object");
    for shard in ["sh1", "sh2", "sh3", "sh4"] {
        let holders = servers
            .values()
            .filter(|held| held.as_array().is_some_and(|h| h.iter().any(|s| s == shard)))
            .count();
        assert_eq!(holders, 3, "{shard} in {status}");
    }

    // The course's /write, then what psql sees.
    let written = api
        .ok(
            "POST",
            "/write",
            r#"{"data": [{"Stud_id": 2255, "Stud_name": "GHI", "Stud_marks": 27},
                        {"Stud_id": 3524, "Stud_name": "JKBFSFS", "Stud_marks": 56},
                        {"Stud_id": 1005, "Stud_name": "YUBAAD", "Stud_marks": 100}]}"#,
        )
        .await;
    assert_eq!(written, json!({"message": "3 Data entries added", "status": "success"}));
    assert_eq!(query_count(&sql, "SELECT count(*) FROM studt").await, 3);
    assert_eq!(
        query_rows(&sql, "SELECT stud_name, stud_marks FROM studt WHERE stud_id = 2255").await,
        vec![vec![Some("GHI".to_string()), Some("27".to_string())]]
    );
    // A row written through SQL is read through HTTP.
    sql.simple_query("INSERT INTO studt VALUES (5000, 'SQL', '77')")
        .await
        .expect("INSERT through SQL");

    let read = api
        .ok("POST", "/read", r#"{"Stud_id": {"low": 1000, "high": 8889}}"#)
        .await;
    assert_eq!(
        read,
        json!({
            "shards_queried": ["sh1", "sh2", "sh3"],
            "data": [row(1005, "YUBAAD", "100"), row(2255, "GHI", "27"), row(3524, "JKBFSFS", "56"), row(5000, "SQL", "77")],
            "status": "success"
        })
    );
    let narrow = api
        .ok("POST", "/read", r#"{"Stud_id": {"low": 0, "high": 2000}}"#)
        .await;
    assert_eq!(narrow["shards_queried"], json!(["sh1"]));
    assert_eq!(narrow["data"], json!([row(1005, "YUBAAD", "100")]));

    // /update, including one that moves the row to another shard.
    assert_eq!(
        api.ok(
            "PUT",
            "/update",
            r#"{"Stud_id": 2255, "data": {"Stud_id": 2255, "Stud_name": "GHI", "Stud_marks": 28}}"#
        )
        .await,
        json!({"message": "Data entry for Stud_id:2255 updated", "status": "success"})
    );
    assert_eq!(
        query_rows(&sql, "SELECT stud_marks FROM studt WHERE stud_id = 2255").await,
        vec![vec![Some("28".to_string())]]
    );
    api.ok("PUT", "/update", r#"{"Stud_id": 3524, "data": {"Stud_id": 9000}}"#)
        .await;
    assert_eq!(
        query_rows(&sql, "SELECT stud_id, stud_name FROM sh3").await,
        vec![vec![Some("9000".to_string()), Some("JKBFSFS".to_string())]]
    );
    let message = api
        .refused(404, "PUT", "/update", r#"{"Stud_id": 4242, "data": {"Stud_marks": 1}}"#)
        .await;
    assert!(message.contains("4242"), "{message}");

    // /del, twice.
    assert_eq!(
        api.ok("DELETE", "/del", r#"{"Stud_id": 2255}"#).await,
        json!({"message": "Data entry with Stud_id:2255 removed from all replicas", "status": "success"})
    );
    api.refused(404, "DELETE", "/del", r#"{"Stud_id": 2255}"#).await;
    assert_eq!(query_count(&sql, "SELECT count(*) FROM studt").await, 3);

    // /add with new shards only (n = 0): the new range takes writes.
    let added = api
        .ok(
            "POST",
            "/add",
            r#"{"n": 0, "new_shards": [{"Stud_id_low": 16384, "Shard_id": "sh5", "Shard_size": 4096}], "servers": {}}"#,
        )
        .await;
    assert_eq!(added["status"], "successful", "{added}");
    api.ok(
        "POST",
        "/write",
        r#"{"data": [{"Stud_id": 17000, "Stud_name": "NEW", "Stud_marks": "5"}]}"#,
    )
    .await;
    let status = api.ok("GET", "/status", "").await;
    assert_eq!(status["shards"].as_array().map(Vec::len), Some(5), "{status}");
    assert_eq!(query_count(&sql, "SELECT count(*) FROM sh5").await, 1);

    // /rm of a named server: it is drained (its replicas move to the others) and leaves.
    let message = api
        .refused(400, "DELETE", "/rm", r#"{"n": 1, "servers": ["node99"]}"#)
        .await;
    assert!(message.contains("not a live server"), "{message}");
    let message = api.refused(400, "DELETE", "/rm", r#"{"n": 4}"#).await;
    assert!(message.contains("must stay"), "{message}");
    let removed = api.ok("DELETE", "/rm", r#"{"n": 1, "servers": ["node6"]}"#).await;
    assert_eq!(
        removed,
        json!({"message": {"N": 5, "servers": ["node6"]}, "status": "successful"})
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let status = api.ok("GET", "/status", "").await;
        if status["servers"].get("node6").is_none() && status["N"] == 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node6 still holds replicas a minute after /rm: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(query_count(&sql, "SELECT count(*) FROM studt").await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_payloads_are_refused_and_change_nothing() {
    let api = Api {
        cluster: Cluster::start(3).await,
    };
    let sql = api.cluster.client().await;
    let small_init = r#"{"N": 3, "schema": {"columns": ["Stud_id", "Stud_name", "Stud_marks"], "dtypes": ["Number", "String", "Number"]},
        "shards": [{"Stud_id_low": 0, "Shard_id": "sh1", "Shard_size": 4096}, {"Stud_id_low": 4096, "Shard_id": "sh2", "Shard_size": 4096}],
        "servers": {"Server0": ["sh1", "sh2"], "Server1": ["sh1", "sh2"]}}"#;

    // Refused /init payloads leave no table behind.
    for (body, says) in [
        ("not json", "not valid JSON"),
        ("", "JSON body"),
        ("[1, 2]", "JSON object"),
        (r#"{"schema": {}}"#, "\"N\""),
        (
            r#"{"N": 1, "schema": {"columns": ["Stud_id"], "dtypes": ["Float"]}, "shards": [], "servers": {}}"#,
            "Float",
        ),
        (
            r#"{"N": 1, "schema": {"columns": ["name"], "dtypes": ["String"]}, "shards": [], "servers": {}}"#,
            "Stud_id",
        ),
        (
            r#"{"N": 1, "schema": {"columns": ["Stud_id"], "dtypes": ["Number"]},
                "shards": [{"Stud_id_low": 0, "Shard_id": "sh1", "Shard_size": 10}], "servers": {"S0": ["sh9"]}}"#,
            "sh9",
        ),
        (
            r#"{"N": 1, "schema": {"columns": ["Stud_id"], "dtypes": ["Number"]},
                "shards": [{"Stud_id_low": 0, "Shard_id": "sh1", "Shard_size": -5}], "servers": {"S0": ["sh1"]}}"#,
            "Shard_size",
        ),
        (
            r#"{"N": 1, "schema": {"columns": ["Stud_id"], "dtypes": ["Number"]},
                "shards": [{"Stud_id_low": 0, "Shard_id": "sh1", "Shard_size": 10}, {"Stud_id_low": 5, "Shard_id": "sh2", "Shard_size": 10}],
                "servers": {"S0": ["sh1", "sh2"]}}"#,
            "overlap",
        ),
    ] {
        let message = api.refused(400, "POST", "/init", body).await;
        assert!(
            message.contains(says),
            "/init {body}: {message:?} does not mention {says:?}"
        );
    }
    // Four replicas on three nodes: refused by placement, the table dropped again.
    let too_many = small_init
        .replace(
            r#""Server1": ["sh1", "sh2"]"#,
            r#""Server1": ["sh1", "sh2"], "Server2": ["sh1"], "Server3": ["sh1"]"#,
        )
        .replace(r#""N": 3"#, r#""N": 4"#);
    let reply = api.call("POST", "/init", &too_many).await;
    assert_ne!(reply.status, 200, "4 replicas on 3 nodes: {reply:?}");
    let tables = query_count(
        &sql,
        "SELECT count(*) FROM pg_catalog.pg_class WHERE relname IN ('studt', 'sh1', 'sh2')",
    )
    .await;
    assert_eq!(tables, 0, "a refused /init left tables behind");

    api.ok("POST", "/init", small_init).await;
    api.ok(
        "POST",
        "/write",
        r#"{"data": [{"Stud_id": 1, "Stud_name": "A", "Stud_marks": 10}]}"#,
    )
    .await;

    for (method, path, body, says) in [
        ("POST", "/read", r#"{"Stud_id": {"low": 10, "high": 5}}"#, "greater"),
        ("POST", "/read", r#"{"Stud": {"low": 1, "high": 5}}"#, "Stud_id"),
        ("POST", "/read", r#"{"Stud_id": {"low": "a", "high": 5}}"#, "integer"),
        ("POST", "/write", r#"{"data": {"Stud_id": 2}}"#, "array"),
        ("POST", "/write", r#"{"data": []}"#, "at least one"),
        ("POST", "/write", r#"{"data": [{"Stud_id": 2, "Grade": "A"}]}"#, "Grade"),
        (
            "POST",
            "/write",
            r#"{"data": [{"Stud_id": "two", "Stud_name": "B"}]}"#,
            "integer",
        ),
        (
            "POST",
            "/write",
            r#"{"data": [{"Stud_id": 3, "Stud_marks": 7.5}]}"#,
            "integer",
        ),
        (
            "POST",
            "/write",
            r#"{"data": [{"Stud_id": 4, "Stud_name": ["x"]}]}"#,
            "single value",
        ),
        ("PUT", "/update", r#"{"Stud_id": 1, "data": {}}"#, "at least one"),
        ("PUT", "/update", r#"{"data": {"Stud_marks": 1}}"#, "Stud_id"),
        ("DELETE", "/del", r#"{"Stud_id": 1.5}"#, "integer"),
        (
            "POST",
            "/add",
            r#"{"n": 3, "servers": {"Server9": ["sh1"]}}"#,
            "greater than newly added",
        ),
        (
            "DELETE",
            "/rm",
            r#"{"n": 1, "servers": ["Server1", "Server2"]}"#,
            "more than removable",
        ),
    ] {
        let message = api.refused(400, method, path, body).await;
        assert!(
            message.contains(says),
            "{method} {path} {body}: {message:?} does not mention {says:?}"
        );
    }
    // Rows that break a constraint: the whole payload is refused, the other row not written.
    let dup = api
        .call(
            "POST",
            "/write",
            r#"{"data": [{"Stud_id": 5000, "Stud_name": "NEW"}, {"Stud_id": 1, "Stud_name": "DUP"}]}"#,
        )
        .await;
    assert_eq!(dup.status, 400, "{dup:?}");
    assert_eq!(dup.json()["sqlstate"], "23505", "{dup:?}");
    let outside = api
        .call("POST", "/write", r#"{"data": [{"Stud_id": 9000, "Stud_name": "FAR"}]}"#)
        .await;
    assert_eq!(
        (outside.status, outside.json()["sqlstate"].clone()),
        (400, json!("23514")),
        "{outside:?}"
    );
    assert_eq!(
        query_rows(&sql, "SELECT stud_id, stud_name FROM studt ORDER BY stud_id").await,
        vec![vec![Some("1".to_string()), Some("A".to_string())]]
    );

    // What needs a node provisioner says so; unknown endpoints are named.
    let message = api
        .refused(
            501,
            "POST",
            "/add",
            r#"{"n": 1, "new_shards": [], "servers": {"Server9": ["sh1"]}}"#,
        )
        .await;
    assert!(message.contains("provisioner"), "{message}");
    let message = api.refused(404, "GET", "/nowhere", "").await;
    assert!(message.contains("/nowhere"), "{message}");
}
