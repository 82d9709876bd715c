//! COPY through real clients: tokio-postgres's copy-in and copy-out (text, CSV and binary,
//! over the extended protocol) and psql's `\copy` (the simple protocol), into a table of four
//! shards. Loaded rows land in their shards exactly once; a malformed row fails the COPY with
//! its line and column, after writing exactly the rows before it; a COPY in a transaction
//! block is undone by ROLLBACK.

use bytes::Bytes;
use futures::{pin_mut, SinkExt, StreamExt, TryStreamExt};
use tessera_tests::fixtures::create_studt;
use tessera_tests::{execute, query_count, query_rows, sqlstate, Cluster};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::Type;
use tokio_postgres::Client;

/// Sends `data` as one COPY and returns the row count it reports.
async fn copy_in(client: &Client, statement: &str, data: &[u8]) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(statement).await?;
    pin_mut!(sink);
    // Cut the data in uneven pieces, as a network would.
    for chunk in data.chunks(777) {
        sink.send(Bytes::copy_from_slice(chunk)).await?;
    }
    sink.finish().await
}

async fn copy_out(client: &Client, statement: &str) -> Vec<u8> {
    let stream = client.copy_out(statement).await.expect("COPY TO STDOUT starts");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("COPY TO STDOUT streams");
    chunks.concat()
}

#[tokio::test(flavor = "multi_thread")]
async fn text_and_csv_copies_round_trip_over_every_shard() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;

    // 16,384 rows over the four shards, with NULLs, tabs, newlines and backslashes escaped.
    let mut text = String::new();
    for i in 0..16_384 {
        // 7919 is odd, so this is a permutation of 0..16384.
        let id = (i * 7919) % 16_384;
        let marks = if i % 5 == 0 {
            "\\N".to_string()
        } else {
            (i % 100).to_string()
        };
        text.push_str(&format!("{id}\tname\\t{i}\\\\x\\n\t{marks}\n"));
    }
    let expected_rows = text.lines().count() as u64;
    let n = copy_in(&client, "COPY studt FROM STDIN", text.as_bytes())
        .await
        .expect("the text COPY succeeds");
    assert_eq!(n, expected_rows);
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt").await,
        expected_rows as i64
    );
    for (lo, hi) in [(0, 4096), (4096, 8192), (8192, 12288), (12288, 16384)] {
        let in_shard = query_count(
            &client,
            &format!("SELECT count(*) FROM studt WHERE stud_id >= {lo} AND stud_id < {hi}"),
        )
        .await;
        assert!(in_shard > 1000, "shard [{lo}, {hi}) holds {in_shard} rows");
    }
    let row = query_rows(&client, "SELECT stud_name, stud_marks FROM studt WHERE stud_id = 7919").await;
    assert_eq!(row, vec![vec![Some("name\t1\\x\n".to_string()), Some("1".to_string())]]);

    // COPY TO in text format gives back exactly what went in (as a set of lines).
    let out = String::from_utf8(copy_out(&client, "COPY studt TO STDOUT").await).expect("UTF-8");
    let mut sent: Vec<&str> = text.lines().collect();
    let mut got: Vec<&str> = out.lines().collect();
    sent.sort_unstable();
    got.sort_unstable();
    assert_eq!(got.len(), sent.len());
    assert!(got == sent, "COPY TO STDOUT differs from what was loaded");

    // CSV with a header, quoted fields with commas, quotes and newlines, into a column list:
    // the other column takes its default (NULL here).
    execute(&client, "DELETE FROM studt").await;
    let csv = "id,name\n1,\"Smith, \"\"Jo\"\"\nline two\"\n2,plain\n4097,\n";
    let n = copy_in(
        &client,
        "COPY studt (stud_id, stud_name) FROM STDIN WITH (FORMAT csv, HEADER true)",
        csv.as_bytes(),
    )
    .await
    .expect("the CSV COPY succeeds");
    assert_eq!(n, 3);
    let rows = query_rows(
        &client,
        "SELECT stud_id, stud_name, stud_marks FROM studt ORDER BY stud_id",
    )
    .await;
    assert_eq!(
        rows,
        vec![
            vec![Some("1".into()), Some("Smith, \"Jo\"\nline two".into()), None],
            vec![Some("2".into()), Some("plain".into()), None],
            vec![Some("4097".into()), None, None],
        ]
    );
    let out = String::from_utf8(
        copy_out(
            &client,
            "COPY (SELECT stud_id, stud_name FROM studt ORDER BY stud_id) TO STDOUT WITH CSV HEADER",
        )
        .await,
    )
    .expect("UTF-8");
    assert_eq!(
        out,
        "stud_id,stud_name\n1,\"Smith, \"\"Jo\"\"\nline two\"\n2,plain\n4097,\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_copy_round_trips_typed_values() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    execute(
        &client,
        "CREATE TABLE events (id BIGINT PRIMARY KEY, label TEXT, flag BOOLEAN, score DOUBLE PRECISION) \
         PARTITION BY HASH (id)",
    )
    .await;
    execute(
        &client,
        "CREATE TABLE events0 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 0)",
    )
    .await;
    execute(
        &client,
        "CREATE TABLE events1 PARTITION OF events FOR VALUES WITH (MODULUS 2, REMAINDER 1)",
    )
    .await;

    let types = [Type::INT8, Type::TEXT, Type::BOOL, Type::FLOAT8];
    let sink = client
        .copy_in("COPY events FROM STDIN (FORMAT binary)")
        .await
        .expect("binary COPY starts");
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for i in 0..5_000i64 {
        let label = (i % 3 != 0).then(|| format!("event {i}"));
        writer
            .as_mut()
            .write(&[&i, &label, &(i % 2 == 0), &(i as f64 / 4.0)])
            .await
            .expect("a binary row is written");
    }
    assert_eq!(writer.finish().await.expect("binary COPY finishes"), 5_000);

    let stream = client
        .copy_out("COPY events TO STDOUT (FORMAT binary)")
        .await
        .expect("binary COPY TO starts");
    let rows = BinaryCopyOutStream::new(stream, &types);
    pin_mut!(rows);
    let mut seen = 0;
    while let Some(row) = rows.next().await {
        let row = row.expect("a binary row is read");
        let id: i64 = row.get(0);
        let label: Option<String> = row.get(1);
        assert_eq!(label, (id % 3 != 0).then(|| format!("event {id}")));
        assert_eq!(row.get::<bool>(2), id % 2 == 0);
        assert_eq!(row.get::<f64>(3), id as f64 / 4.0);
        seen += 1;
    }
    assert_eq!(seen, 5_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_row_stops_the_copy_after_writing_every_row_before_it() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;

    // Line 4 has a mark that is not an integer.
    let data = "1\ta\t10\n5000\tb\t20\n9000\tc\t30\n13000\td\tlots\n2\te\t40\n";
    let e = copy_in(&client, "COPY studt FROM STDIN", data.as_bytes())
        .await
        .expect_err("the COPY must fail");
    assert_eq!(sqlstate(&e), Some("22P02"), "{e}");
    let db = e.as_db_error().expect("a server error");
    let detail = db.detail().unwrap_or_default();
    assert!(
        detail.contains("line 4") && detail.contains("stud_marks") && detail.contains("The 3 rows before line 4"),
        "the error says where and what was written: {detail}"
    );
    let rows = query_rows(&client, "SELECT stud_id FROM studt ORDER BY stud_id").await;
    assert_eq!(
        rows,
        vec![
            vec![Some("1".into())],
            vec![Some("5000".into())],
            vec![Some("9000".into())]
        ]
    );

    // A row with a field missing, and one that fits no partition.
    let e = copy_in(&client, "COPY studt FROM STDIN", b"3\tf\n")
        .await
        .expect_err("a missing field fails");
    assert_eq!(sqlstate(&e), Some("22P04"), "{e}");
    let e = copy_in(&client, "COPY studt FROM STDIN", b"99999\tg\t1\n")
        .await
        .expect_err("a row of no partition fails");
    assert_eq!(sqlstate(&e), Some("23514"), "{e}");
    // A duplicate key inside a batch: nothing of that batch is written.
    let e = copy_in(&client, "COPY studt FROM STDIN", b"4\th\t1\n1\tdup\t1\n")
        .await
        .expect_err("a duplicate key fails");
    assert_eq!(sqlstate(&e), Some("23505"), "{e}");
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 3);
    // The connection is usable after every failure.
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt WHERE stud_id < 4096").await,
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_in_a_transaction_block_is_undone_by_rollback() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let data = "10\ta\t1\n11\tb\t2\n12\tc\t3\n";

    execute(&client, "BEGIN").await;
    assert_eq!(
        copy_in(&client, "COPY studt FROM STDIN", data.as_bytes())
            .await
            .expect("COPY in a block"),
        3
    );
    assert_eq!(
        query_count(&client, "SELECT count(*) FROM studt WHERE stud_id < 4096").await,
        3
    );
    execute(&client, "ROLLBACK").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 0);

    execute(&client, "BEGIN").await;
    copy_in(&client, "COPY studt FROM STDIN", data.as_bytes())
        .await
        .expect("COPY in a block");
    execute(&client, "COMMIT").await;
    assert_eq!(query_count(&client, "SELECT count(*) FROM studt").await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn psql_copy_loads_and_unloads_files() {
    let cluster = Cluster::start(3).await;
    let client = cluster.client().await;
    create_studt(&client).await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let input = dir.path().join("in.csv");
    let mut csv = String::from("stud_id,stud_name,stud_marks\n");
    for i in 0..3_000 {
        csv.push_str(&format!("{},\"n, {i}\",{}\n", i * 5, i % 10));
    }
    std::fs::write(&input, &csv).expect("write the CSV");
    let out = tessera_tests::psql(
        cluster.router_addr(),
        &format!("\\copy studt from '{}' with (format csv, header true)", input.display()),
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "COPY 3000\n");

    let output = dir.path().join("out.csv");
    let out = tessera_tests::psql(
        cluster.router_addr(),
        &format!(
            "\\copy (SELECT * FROM studt ORDER BY stud_id) to '{}' with (format csv, header true)",
            output.display()
        ),
    )
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_to_string(&output).expect("read the output"), csv);
}
