//! The shard state machine's own promises, beyond openraft's suite: optimistic write sets apply
//! all or nothing, a retried request id applies once and answers as the first time did, and
//! snapshots (durable flush, exported state) carry exactly the rows and request memory.

use std::path::Path;
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use tessera_shard_node::raft::{ApplyOutcome, Control, KeyWrite, Piece, ShardRaft, WriteBatch, WriteSet};
use tessera_shard_node::store::{StateMachine, Store};
use tessera_types::fragment::WriteOutcome;
use tessera_types::key::KeyRange;
use tessera_types::{Row, Value};

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tessera-shard-sm")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("tempdir")
}

fn open_sm(dir: &Path) -> StateMachine {
    StateMachine::new(Store::open(&dir.join("replica.redb")).expect("open store"), 1)
}

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn normal(index: u64, ws: WriteSet) -> Entry<ShardRaft> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(WriteBatch::new(vec![ws])),
    }
}

fn row(id: i64, name: &str) -> Row {
    vec![Value::Int8(id), Value::Text(name.to_string())]
}

fn put(key: &[u8], expected: Option<u64>, row: Row) -> KeyWrite {
    KeyWrite {
        key: key.to_vec(),
        expected,
        row: Some(row),
    }
}

fn delete(key: &[u8], expected: Option<u64>) -> KeyWrite {
    KeyWrite {
        key: key.to_vec(),
        expected,
        row: None,
    }
}

fn ws(request_id: u128, writes: Vec<KeyWrite>) -> WriteSet {
    let outcome = WriteOutcome {
        count: writes.len() as u64,
        ..WriteOutcome::default()
    };
    WriteSet {
        request_id,
        epoch: 1,
        writes,
        outcome,
        piece: Piece::Whole,
        control: None,
    }
}

/// Every row with its version, in key order.
fn rows(store: &Arc<Store>) -> Vec<(Vec<u8>, u64, Row)> {
    let reader = store.reader().expect("reader");
    let all = reader
        .range(&KeyRange::all())
        .expect("range")
        .collect::<Result<Vec<_>, _>>()
        .expect("rows");
    all
}

async fn apply(sm: &mut StateMachine, entries: Vec<Entry<ShardRaft>>) -> Vec<ApplyOutcome> {
    sm.apply(entries).await.expect("apply").into_iter().flatten().collect()
}

#[tokio::test]
async fn a_write_set_with_a_stale_expected_version_writes_nothing() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    let outcomes = apply(
        &mut sm,
        vec![normal(
            1,
            ws(1, vec![put(b"a", None, row(1, "a1")), put(b"b", None, row(2, "b1"))]),
        )],
    )
    .await;
    assert_eq!(outcomes, vec![ApplyOutcome::Applied]);
    let before = rows(&sm.store);
    assert_eq!(
        before,
        vec![(b"a".to_vec(), 1, row(1, "a1")), (b"b".to_vec(), 1, row(2, "b1"))],
        "rows carry the index of the entry that wrote them as their version"
    );

    // The first write matches, the second was computed from an older version of "b", the third
    // expects a row that does not exist: the whole set is refused, including the matching write.
    let stale = ws(
        2,
        vec![
            put(b"a", Some(1), row(1, "a2")),
            put(b"b", Some(0), row(2, "b2")),
            put(b"c", None, row(3, "c2")),
        ],
    );
    let missing = ws(3, vec![delete(b"zz", Some(1))]);
    let exists = ws(4, vec![put(b"c", None, row(3, "c4")), put(b"a", None, row(1, "a4"))]);
    let outcomes = apply(&mut sm, vec![normal(2, stale), normal(3, missing), normal(4, exists)]).await;
    assert_eq!(
        outcomes,
        vec![ApplyOutcome::Conflict; 3],
        "stale version, delete of a missing row, insert over an existing row"
    );
    assert_eq!(rows(&sm.store), before, "a conflicting write set must write nothing");
    let (applied, _) = sm.applied_state().await.expect("applied_state");
    assert_eq!(
        applied,
        Some(log_id(4)),
        "conflicting entries are still applied entries"
    );

    // A write set with the right versions goes through, deletes included.
    let fresh = ws(5, vec![put(b"a", Some(1), row(1, "a5")), delete(b"b", Some(1))]);
    assert_eq!(
        apply(&mut sm, vec![normal(5, fresh)]).await,
        vec![ApplyOutcome::Applied]
    );
    assert_eq!(rows(&sm.store), vec![(b"a".to_vec(), 5, row(1, "a5"))]);

    // A matching delete, then a mismatch: the deleted row is put back.
    let undone = ws(6, vec![delete(b"a", Some(5)), put(b"b", Some(1), row(2, "b6"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(6, undone)]).await,
        vec![ApplyOutcome::Conflict]
    );
    assert_eq!(
        rows(&sm.store),
        vec![(b"a".to_vec(), 5, row(1, "a5"))],
        "a refused set's delete must be undone"
    );
}

#[tokio::test]
async fn a_retried_request_applies_once_and_answers_as_the_first_time() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    let insert = ws(42, vec![put(b"k", None, row(1, "first"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(1, insert.clone())]).await,
        vec![ApplyOutcome::Applied]
    );
    assert_eq!(
        sm.store.request_outcome(42).expect("request_outcome").map(|o| o.count),
        Some(1),
        "the statement's outcome is remembered with its request id"
    );

    // The same request again, in a later entry (a client retry after a failover): it is
    // recognised and nothing is written again.
    assert_eq!(
        apply(&mut sm, vec![normal(2, insert.clone())]).await,
        vec![ApplyOutcome::Duplicate],
        "a retry must be recognised"
    );
    assert_eq!(
        rows(&sm.store),
        vec![(b"k".to_vec(), 1, row(1, "first"))],
        "a retry must not write again"
    );

    // A retry that now carries different writes is still the same request: nothing happens.
    let altered = ws(42, vec![put(b"k", Some(1), row(1, "second"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(3, altered)]).await,
        vec![ApplyOutcome::Duplicate]
    );
    assert_eq!(rows(&sm.store), vec![(b"k".to_vec(), 1, row(1, "first"))]);

    // A request that conflicted is not remembered: recomputed against the current rows, the
    // same request may apply.
    let late = ws(43, vec![put(b"k", Some(99), row(1, "late"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(4, late)]).await,
        vec![ApplyOutcome::Conflict]
    );
    assert_eq!(sm.store.request_outcome(43).expect("request_outcome"), None);
    let late_fixed = ws(43, vec![put(b"k", Some(1), row(1, "late"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(5, late_fixed)]).await,
        vec![ApplyOutcome::Applied]
    );
    assert_eq!(rows(&sm.store), vec![(b"k".to_vec(), 5, row(1, "late"))]);

    // Twice in one batch (both copies committed in the same log batch).
    let twice = ws(44, vec![put(b"m", None, row(2, "m"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(6, twice.clone()), normal(7, twice)]).await,
        vec![ApplyOutcome::Applied, ApplyOutcome::Duplicate]
    );
    assert_eq!(
        rows(&sm.store),
        vec![(b"k".to_vec(), 5, row(1, "late")), (b"m".to_vec(), 6, row(2, "m"))],
        "the copy in the same batch must not apply again"
    );
}

#[tokio::test]
async fn request_ids_are_remembered_across_a_snapshot_transfer_and_a_restart() {
    let leader_dir = tempdir();
    let follower_dir = tempdir();
    let insert = ws(7, vec![put(b"k", None, row(1, "v"))]);
    {
        let mut leader = open_sm(leader_dir.path());
        apply(&mut leader, vec![normal(1, insert.clone())]).await;
        let built = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build_snapshot");
        assert_eq!(built.meta.last_log_id, Some(log_id(1)));
        // Applied after the build: the current snapshot is the current state (by design).
        apply(&mut leader, vec![normal(2, ws(8, vec![put(b"j", None, row(2, "w"))]))]).await;
        let current = leader
            .get_current_snapshot()
            .await
            .expect("get_current_snapshot")
            .expect("a snapshot was built");
        assert_eq!(
            current.meta.last_log_id,
            Some(log_id(2)),
            "the exported snapshot's meta must describe the data it carries"
        );

        let mut follower = open_sm(follower_dir.path());
        let mut receiving = follower
            .begin_receiving_snapshot()
            .await
            .expect("begin_receiving_snapshot");
        *receiving = *current.snapshot;
        follower
            .install_snapshot(&current.meta, receiving)
            .await
            .expect("install_snapshot");
        assert_eq!(rows(&follower.store), rows(&leader.store));
        assert_eq!(
            follower.applied_state().await.expect("applied_state"),
            (current.meta.last_log_id, current.meta.last_membership.clone())
        );
        assert_eq!(
            follower
                .get_current_snapshot()
                .await
                .expect("get_current_snapshot")
                .expect("installed snapshot")
                .meta,
            current.meta
        );
        // The follower must recognise a retry of a request the leader applied before the snapshot.
        assert_eq!(
            apply(&mut follower, vec![normal(3, insert.clone())]).await,
            vec![ApplyOutcome::Duplicate]
        );
        assert_eq!(rows(&follower.store), rows(&leader.store));
    }

    // A snapshot install is durable: a restarted follower still has the rows and request ids.
    let mut follower = open_sm(follower_dir.path());
    let (applied, _) = follower.applied_state().await.expect("applied_state");
    assert!(applied >= Some(log_id(2)), "applied {applied:?} after a restart");
    assert_eq!(
        apply(&mut follower, vec![normal(4, insert)]).await,
        vec![ApplyOutcome::Duplicate]
    );
    assert_eq!(
        rows(&follower.store)
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect::<Vec<_>>(),
        vec![(b"j".to_vec(), 2), (b"k".to_vec(), 1)]
    );
}

#[tokio::test]
async fn a_built_snapshot_is_durable() {
    let dir = tempdir();
    {
        let mut sm = open_sm(dir.path());
        apply(
            &mut sm,
            (1..=20)
                .map(|i| normal(i, ws(i as u128, vec![put(&i.to_be_bytes(), None, row(i as i64, "r"))])))
                .collect(),
        )
        .await;
        let built = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build_snapshot");
        assert_eq!(built.meta.last_log_id, Some(log_id(20)));
    }
    // openraft purges the log up to a built snapshot, so what it covers must survive a restart.
    let mut sm = open_sm(dir.path());
    let (applied, _) = sm.applied_state().await.expect("applied_state");
    assert_eq!(applied, Some(log_id(20)));
    assert_eq!(rows(&sm.store).len(), 20);
}

#[tokio::test]
async fn applying_an_empty_batch_changes_nothing() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    apply(&mut sm, vec![normal(1, ws(1, vec![put(b"k", None, row(1, "v"))]))]).await;
    let before = sm.applied_state().await.expect("applied_state");
    assert_eq!(apply(&mut sm, Vec::new()).await, Vec::new());
    assert_eq!(
        sm.applied_state().await.expect("applied_state"),
        before,
        "Store::apply_batch wrote last_applied = None for an empty batch, moving the applied \
         log id backwards (store.rs: `meta.insert(\"applied\", ...)` runs even when no entry \
         was applied; openraft 0.9.25 itself never applies an empty batch, so this is latent)"
    );
}

/// Set in the child process of `a_crash_keeps_the_built_snapshot_and_rows_match_applied`.
const CRASH_CHILD_DIR: &str = "TESSERA_TEST_SM_CRASH_DIR";
const CRASH_CHILD_EXIT: i32 = 17;

/// In the child: applies 1..=20, builds a snapshot, applies 21..=30 without a flush, and exits
/// at once (no destructors run, as in a crash of the process).
fn crash_child(dir: &Path) -> ! {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut sm = open_sm(dir);
        let insert = |i: u64| normal(i, ws(i as u128, vec![put(&i.to_be_bytes(), None, row(i as i64, "r"))]));
        apply(&mut sm, (1..=20).map(insert).collect()).await;
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build_snapshot");
        apply(&mut sm, (21..=30).map(insert).collect()).await;
    });
    std::process::exit(CRASH_CHILD_EXIT);
}

#[test]
fn a_crash_keeps_the_built_snapshot_and_rows_match_applied() {
    if let Some(dir) = std::env::var_os(CRASH_CHILD_DIR) {
        crash_child(Path::new(&dir));
    }
    let dir = tempdir();
    let status = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "a_crash_keeps_the_built_snapshot_and_rows_match_applied",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run the crashing child");
    assert_eq!(
        status.code(),
        Some(CRASH_CHILD_EXIT),
        "the child did not get to its crash"
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut sm = open_sm(dir.path());
        let (applied, _) = sm.applied_state().await.expect("applied_state");
        let applied = applied.map_or(0, |l| l.index);
        // openraft purges the log up to a built snapshot, so what it covers must survive; what
        // was applied after it may be lost (the log re-applies it), but rows and the applied
        // log id must still agree. (A process crash cannot lose what the OS already holds, so
        // this checks redb's recovery and the one-transaction batch, not an fsync ordering.)
        assert!(
            (20..=30).contains(&applied),
            "after a crash the store reports applied index {applied}; the snapshot built at 20 was lost"
        );
        assert_eq!(
            rows(&sm.store).len() as u64,
            applied,
            "rows and the applied log id are committed in one transaction and must agree after a crash"
        );
    });
}

/// Concurrent writes to a shard travel as one entry (`proposer`): each write set in it is
/// checked against the rows as the sets before it left them, and answered on its own.
#[tokio::test]
async fn the_write_sets_of_one_entry_apply_in_order_each_with_its_own_outcome() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    let first = ws(1, vec![put(b"a", None, row(1, "a1"))]);
    let other_key = ws(2, vec![put(b"b", None, row(2, "b1"))]);
    // Computed before `first` applied, so it expected "a" not to exist: a conflict.
    let same_key = ws(3, vec![put(b"a", None, row(1, "a3"))]);
    let retry_of_first = ws(1, vec![put(b"a", None, row(1, "a1"))]);
    let entry = Entry {
        log_id: log_id(1),
        payload: EntryPayload::Normal(WriteBatch::new(vec![first, other_key, same_key, retry_of_first])),
    };
    let outcomes = sm.apply(vec![entry]).await.expect("apply");
    assert_eq!(
        outcomes,
        vec![vec![
            ApplyOutcome::Applied,
            ApplyOutcome::Applied,
            ApplyOutcome::Conflict,
            ApplyOutcome::Duplicate
        ]],
        "one entry, one outcome per write set, in order"
    );
    assert_eq!(
        rows(&sm.store),
        vec![(b"a".to_vec(), 1, row(1, "a1")), (b"b".to_vec(), 1, row(2, "b1"))],
        "the conflicting and the repeated set wrote nothing"
    );
    assert_eq!(sm.store.request_outcome(3).expect("request_outcome"), None);

    // A blank entry carries no write sets and reports no outcomes.
    let blank = Entry {
        log_id: log_id(2),
        payload: EntryPayload::Blank,
    };
    assert_eq!(
        sm.apply(vec![blank]).await.expect("apply"),
        vec![Vec::<ApplyOutcome>::new()]
    );
}

fn piece(request_id: u128, piece: Piece, writes: Vec<KeyWrite>) -> WriteSet {
    WriteSet {
        piece,
        ..ws(request_id, writes)
    }
}

#[tokio::test]
async fn a_write_set_in_pieces_applies_when_its_last_piece_does_and_all_or_nothing() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    // Two staged pieces write nothing visible; the last applies all three at once, with the
    // versions of the last piece's entry.
    let outcomes = apply(
        &mut sm,
        vec![
            normal(1, piece(7, Piece::Staged(0), vec![put(b"a", None, row(1, "a"))])),
            normal(2, piece(7, Piece::Staged(1), vec![put(b"b", None, row(2, "b"))])),
        ],
    )
    .await;
    assert_eq!(outcomes, vec![ApplyOutcome::Applied; 2]);
    assert!(rows(&sm.store).is_empty(), "staged pieces are not visible");
    let last = piece(7, Piece::Last(2), vec![put(b"c", None, row(3, "c"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(3, last.clone())]).await,
        vec![ApplyOutcome::Applied]
    );
    assert_eq!(
        rows(&sm.store),
        vec![
            (b"a".to_vec(), 3, row(1, "a")),
            (b"b".to_vec(), 3, row(2, "b")),
            (b"c".to_vec(), 3, row(3, "c")),
        ]
    );
    // The same request again, in pieces or whole, applies nothing.
    let again = vec![
        normal(4, piece(7, Piece::Staged(0), vec![put(b"z", None, row(9, "z"))])),
        normal(5, last),
    ];
    assert_eq!(apply(&mut sm, again).await, vec![ApplyOutcome::Duplicate; 2]);
    assert_eq!(rows(&sm.store).len(), 3);

    // A staged piece whose version is stale makes the last piece refuse the whole set.
    let stale = vec![
        normal(6, piece(8, Piece::Staged(0), vec![put(b"a", Some(1), row(1, "stale"))])),
        normal(7, piece(8, Piece::Last(1), vec![put(b"d", None, row(4, "d"))])),
    ];
    assert_eq!(
        apply(&mut sm, stale).await,
        vec![ApplyOutcome::Applied, ApplyOutcome::Conflict]
    );
    // A last piece whose staged pieces are missing is refused too (a retry stages them anew).
    let missing = piece(9, Piece::Last(1), vec![put(b"e", None, row(5, "e"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(8, missing)]).await,
        vec![ApplyOutcome::Conflict]
    );
    assert_eq!(rows(&sm.store).len(), 3, "refused pieces write nothing");
    // Request 8's staged piece went with its refusal: retried, it must be staged again.
    let retried_last = piece(8, Piece::Last(1), vec![put(b"d", None, row(4, "d"))]);
    assert_eq!(
        apply(&mut sm, vec![normal(9, retried_last)]).await,
        vec![ApplyOutcome::Conflict]
    );
}

#[tokio::test]
async fn a_split_fence_refuses_write_sets_computed_before_it_even_after_a_restart() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    let fence = WriteSet {
        epoch: 3,
        control: Some(Control::Fence),
        ..ws(10, Vec::new())
    };
    let before_fence = ws(11, vec![put(b"a", None, row(1, "old epoch"))]);
    let after_fence = WriteSet {
        epoch: 3,
        ..ws(12, vec![put(b"b", None, row(2, "new epoch"))])
    };
    let outcomes = apply(
        &mut sm,
        vec![
            normal(1, fence.clone()),
            normal(2, before_fence.clone()),
            normal(3, after_fence),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![ApplyOutcome::Applied, ApplyOutcome::Stale, ApplyOutcome::Applied]
    );
    assert_eq!(sm.store.epoch(), 3);
    assert_eq!(sm.store.reader().expect("reader").epoch, 3, "a reader sees the fence");
    assert_eq!(rows(&sm.store), vec![(b"b".to_vec(), 3, row(2, "new epoch"))]);
    assert_eq!(
        sm.store.request_outcome(11).expect("outcome"),
        None,
        "a refused set is not remembered: its retry may apply on the right shard"
    );
    drop(sm);
    let mut sm = open_sm(dir.path());
    assert_eq!(sm.store.epoch(), 3, "the fence is durable state of the replica");
    assert_eq!(
        apply(
            &mut sm,
            vec![normal(
                4,
                WriteSet {
                    request_id: 13,
                    ..before_fence
                }
            )]
        )
        .await,
        vec![ApplyOutcome::Stale]
    );
    assert_eq!(
        apply(&mut sm, vec![normal(5, fence)]).await,
        vec![ApplyOutcome::Duplicate],
        "a repeated fence is recognised"
    );
}

#[tokio::test]
async fn requests_carried_to_a_split_off_shard_are_answered_from_memory() {
    let dir = tempdir();
    let mut sm = open_sm(dir.path());
    let remembered = WriteOutcome {
        count: 7,
        ..WriteOutcome::default()
    };
    let ingest = WriteSet {
        control: Some(Control::Remember(vec![(500, remembered.clone())])),
        ..ws(20, vec![put(b"k", None, row(1, "copied"))])
    };
    assert_eq!(
        apply(&mut sm, vec![normal(1, ingest)]).await,
        vec![ApplyOutcome::Applied]
    );
    assert_eq!(
        sm.store.request_outcome(500).expect("outcome"),
        Some(remembered.clone())
    );
    assert_eq!(
        apply(
            &mut sm,
            vec![normal(2, ws(500, vec![put(b"z", None, row(9, "again"))]))]
        )
        .await,
        vec![ApplyOutcome::Duplicate],
        "a retry of a request the source applied is not applied again"
    );
    let requests = sm.store.requests().expect("requests");
    assert!(requests.contains(&(500, remembered)) && requests.iter().any(|(id, _)| *id == 20));
}
