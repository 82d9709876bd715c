//! Golden test for routing decisions: for each statement in `golden/routing.sql`, the shards
//! it reaches and what is pushed down to them (EXPLAIN), compared with `golden/routing.out`.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p tessera-router --test routing_golden` and
//! review the diff.

use tessera_router::explain::explain;
use tessera_router::session::Session;
use tessera_router::sql::expr::{Ctx, Params};
use tessera_router::sql::statement::{bind, parse};
use tessera_types::schema::{
    ClusterMap, ColumnDef, NodeInfo, NodeState, PartitionMethod, Partitioning, ReplicaInfo, Shard, ShardBounds, Table,
};
use tessera_types::{DataType, Value};

fn column(name: &str, ty: DataType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        ty,
        not_null: false,
        default: None,
    }
}

/// studt: range-partitioned in four shards of 4096 ids; hashed: four hash partitions; plain:
/// one shard. Three nodes.
fn fixture() -> ClusterMap {
    let mut map = ClusterMap {
        version: 1,
        ..Default::default()
    };
    for n in 1..=3u64 {
        map.nodes.insert(
            n,
            NodeInfo {
                id: n,
                addr: format!("node{n}:7000"),
                state: NodeState::Alive,
                last_heartbeat_ms: 0,
            },
        );
    }
    let tables = [
        Table {
            id: 1,
            name: "studt".into(),
            columns: vec![
                column("stud_id", DataType::Int4),
                column("stud_name", DataType::Text),
                column("stud_marks", DataType::Int4),
            ],
            primary_key: vec![0],
            partitioning: Some(Partitioning {
                method: PartitionMethod::Range,
                column: 0,
            }),
            replicas: 1,
        },
        Table {
            id: 2,
            name: "hashed".into(),
            columns: vec![column("k", DataType::Int8), column("v", DataType::Text)],
            primary_key: vec![0],
            partitioning: Some(Partitioning {
                method: PartitionMethod::Hash,
                column: 0,
            }),
            replicas: 1,
        },
        Table {
            id: 3,
            name: "plain".into(),
            columns: vec![column("a", DataType::Int4), column("b", DataType::Text)],
            primary_key: vec![0],
            partitioning: None,
            replicas: 1,
        },
    ];
    for t in tables {
        map.tables.insert(t.id, t);
    }
    let mut id = 10;
    let mut shard = |map: &mut ClusterMap, table: u64, name: String, bounds: ShardBounds| {
        id += 1;
        let node = id % 3 + 1;
        map.shards.insert(
            id,
            Shard {
                id,
                table,
                name,
                bounds,
                replicas: vec![ReplicaInfo { id: id * 10, node }],
                epoch: 1,
            },
        );
    };
    for i in 0..4 {
        let bounds = ShardBounds::Range {
            from: Some(Value::Int4(4096 * i)),
            to: Some(Value::Int4(4096 * (i + 1))),
        };
        shard(&mut map, 1, format!("sh{}", i + 1), bounds);
    }
    for r in 0..4 {
        shard(
            &mut map,
            2,
            format!("hashed_{r}"),
            ShardBounds::Hash {
                modulus: 4,
                remainder: r,
            },
        );
    }
    shard(&mut map, 3, "plain".into(), ShardBounds::All);
    map
}

#[test]
fn routing_decisions_match_the_golden_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let input = std::fs::read_to_string(dir.join("routing.sql")).expect("golden/routing.sql");
    let map = fixture();
    let session = Session::new("tessera".into(), "tessera".into());
    let params = Params::none();
    let ctx = Ctx {
        map: &map,
        params: &params,
        now: 0,
        user: "tessera",
        superuser: true,
        database: "tessera",
        settings: &[],
    };
    let mut out = String::new();
    for sql in input
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
    {
        out.push_str(&format!("> {sql}\n"));
        let result = parse(sql).and_then(|stmts| {
            let stmt = stmts.first().cloned().expect("one statement per line");
            bind(&ctx, &stmt).and_then(|b| explain(&map, &session, &b))
        });
        match result {
            Ok(lines) => lines.iter().for_each(|l| out.push_str(&format!("{l}\n"))),
            Err(e) => out.push_str(&format!("ERROR: {e}\n")),
        }
        out.push('\n');
    }
    let golden = dir.join("routing.out");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &out).expect("write golden/routing.out");
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    if expected != out {
        let first_diff = expected
            .lines()
            .zip(out.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(out.lines().count()));
        panic!(
            "routing decisions changed (first difference at line {}); review and regenerate with UPDATE_GOLDEN=1\n--- got ---\n{out}",
            first_diff + 1
        );
    }
}
