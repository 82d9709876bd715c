//! Restart behaviour of the write-ahead log: what a reopened log holds after a clean shutdown,
//! after a torn write at the tail, after damage to a segment, and across segment rotation.

mod common;

use std::future::Future;
use std::path::Path;
use std::task::{Context, Waker};

use common::{
    append, append_bytes, entries, entry, file_len, flip_byte, log_id, newest_segment, observe, record_frames,
    segments, set_len, sized_entry, tempdir, Observed, TestRaft,
};
use openraft::storage::{LogState, RaftLogStorage, RaftLogStorageExt};
use openraft::Vote;
use tessera_wal::{SyncMode, Wal, WalError};

fn open(dir: &Path) -> Wal<TestRaft> {
    Wal::open_with_segment_bytes(dir, SyncMode::Durable, 64 << 20).expect("open the write-ahead log")
}

/// Group 1 with entries `1..=n` (one record each) and a vote, then a clean shutdown.
async fn write_and_close(dir: &Path, n: u64) -> Observed {
    let wal = open(dir);
    let mut log = wal.group(1);
    for i in 1..=n {
        append(&mut log, vec![entry(1, i)]).await;
    }
    log.save_vote(&Vote::new_committed(1, 1)).await.expect("save_vote");
    let seen = observe(&mut log).await;
    wal.shutdown();
    seen
}

/// Reopens `dir` and returns what group 1 holds, closing the log again.
async fn reopen_group_1(dir: &Path) -> Observed {
    let wal = open(dir);
    let seen = observe(&mut wal.group(1)).await;
    wal.shutdown();
    seen
}

/// After a cut-off tail the log must accept new writes at the cut and keep them on restart.
async fn check_writes_continue_after_the_cut(dir: &Path, mut expected: Observed) {
    let next = expected.state.last_log_id.map_or(1, |l| l.index + 1);
    {
        let wal = open(dir);
        let mut log = wal.group(1);
        append(&mut log, vec![entry(2, next)]).await;
        wal.shutdown();
    }
    expected.entries.push(entry(2, next));
    expected.state.last_log_id = Some(log_id(2, next));
    assert_eq!(
        reopen_group_1(dir).await,
        expected,
        "an entry written after the torn tail was cut off must survive the next restart"
    );
}

#[tokio::test]
async fn every_group_recovers_exactly_its_durable_state() {
    let dir = tempdir();
    let (before1, before2) = {
        let wal = open(dir.path());
        let mut g1 = wal.group(1);
        let mut g2 = wal.group(2);
        let mut g3 = wal.group(3);
        append(&mut g1, entries(1, 1, 10)).await;
        append(&mut g2, entries(1, 1, 5)).await;
        append(&mut g3, entries(1, 1, 3)).await;
        g1.save_vote(&Vote::new(2, 1)).await.expect("save_vote");
        g2.save_vote(&Vote::new_committed(3, 2)).await.expect("save_vote");

        // Group 1: a snapshot covers 1..=3, and a new leader replaces 8.. with its own entries.
        g1.purge(log_id(1, 3)).await.expect("purge");
        g1.truncate(log_id(1, 8)).await.expect("truncate");
        append(&mut g1, entries(2, 8, 9)).await;
        // Group 2: an installed snapshot reaches past the whole log.
        g2.purge(log_id(1, 7)).await.expect("purge");
        // Group 3: its replica was deleted.
        wal.drop_group(3).await.expect("drop_group");
        // Not waited for: only the shutdown flush makes it durable.
        g1.save_committed(Some(log_id(1, 6))).await.expect("save_committed");

        let before1 = observe(&mut g1).await;
        let before2 = observe(&mut g2).await;
        wal.shutdown();
        (before1, before2)
    };

    let mut expected1: Vec<_> = entries(1, 4, 7);
    expected1.extend(entries(2, 8, 9));
    assert_eq!(
        before1,
        Observed {
            state: LogState {
                last_purged_log_id: Some(log_id(1, 3)),
                last_log_id: Some(log_id(2, 9))
            },
            vote: Some(Vote::new(2, 1)),
            committed: Some(log_id(1, 6)),
            entries: expected1,
        },
        "group 1 before the restart"
    );
    assert_eq!(
        before2,
        Observed {
            state: LogState {
                last_purged_log_id: Some(log_id(1, 7)),
                last_log_id: Some(log_id(1, 7))
            },
            vote: Some(Vote::new_committed(3, 2)),
            committed: None,
            entries: Vec::new(),
        },
        "group 2 before the restart"
    );

    {
        let wal = open(dir.path());
        assert_eq!(
            wal.groups(),
            vec![1, 2],
            "a dropped group must stay dropped after a restart"
        );
        assert_eq!(observe(&mut wal.group(1)).await, before1, "group 1 after the restart");
        let mut g2 = wal.group(2);
        assert_eq!(observe(&mut g2).await, before2, "group 2 after the restart");
        // Appending continues after the purge point.
        append(&mut g2, entries(3, 8, 9)).await;
        wal.shutdown();
    }

    let wal = open(dir.path());
    assert_eq!(
        observe(&mut wal.group(1)).await,
        before1,
        "group 1 after a second restart"
    );
    let after2 = observe(&mut wal.group(2)).await;
    assert_eq!(
        after2.state,
        LogState {
            last_purged_log_id: Some(log_id(1, 7)),
            last_log_id: Some(log_id(3, 9))
        }
    );
    assert_eq!(after2.entries, entries(3, 8, 9));
    assert_eq!(after2.vote, Some(Vote::new_committed(3, 2)));
}

/// Bytes to leave behind the last whole record of a segment.
type MakeGarbage = fn(&Path) -> Vec<u8>;

#[tokio::test]
async fn garbage_after_the_last_record_is_cut_off() {
    // What a crash in the middle of a write can leave behind the last whole record.
    let cases: [(&str, MakeGarbage); 4] = [
        ("three stray bytes", |_| vec![7, 7, 7]),
        ("a header announcing a record longer than the file", |_| {
            let mut b = 4096u32.to_le_bytes().to_vec();
            b.extend([0xab; 12]);
            b
        }),
        ("a header of zeros followed by zeros", |_| vec![0; 64]),
        ("a whole record whose payload did not reach the disk", |seg: &Path| {
            let data = std::fs::read(seg).expect("read segment");
            let (off, len) = *record_frames(seg).last().expect("a record");
            let mut rec = data[off..off + len].to_vec();
            rec[len - 1] ^= 0x55;
            rec
        }),
    ];
    for (what, garbage) in cases {
        let dir = tempdir();
        let before = write_and_close(dir.path(), 5).await;
        let seg = newest_segment(dir.path());
        let clean_len = file_len(&seg);
        append_bytes(&seg, &garbage(&seg));

        assert_eq!(
            reopen_group_1(dir.path()).await,
            before,
            "{what} at the tail: everything before it must be intact"
        );
        assert_eq!(
            file_len(&seg),
            clean_len,
            "{what} at the tail must be cut off the segment"
        );
        check_writes_continue_after_the_cut(dir.path(), before).await;
    }
}

#[tokio::test]
async fn a_half_written_last_record_is_cut_off() {
    for (what, keep) in [("half of its payload", 0.5), ("part of its header", 0.0)] {
        let dir = tempdir();
        let before = write_and_close(dir.path(), 5).await;
        // One more record, which the crash will tear.
        {
            let wal = open(dir.path());
            append(&mut wal.group(1), vec![entry(1, 6)]).await;
            wal.shutdown();
        }
        let seg = newest_segment(dir.path());
        let (off, len) = *record_frames(&seg).last().expect("a record");
        let cut = if keep == 0.0 {
            off + 3
        } else {
            off + (len as f64 * keep) as usize
        };
        set_len(&seg, cut as u64);

        assert_eq!(
            reopen_group_1(dir.path()).await,
            before,
            "a last record torn after {what}: the log must hold exactly what preceded it"
        );
        assert_eq!(file_len(&seg), off as u64, "the torn record ({what}) must be cut off");
        check_writes_continue_after_the_cut(dir.path(), before).await;
    }
}

/// Builds a log of two segments by hand: segment 1 holds group 1 (written by one log), segment 2
/// holds group 2 (written by another), as after a rotation whose old segment was not yet deleted.
async fn two_segment_log(dir: &Path) -> (Observed, Observed) {
    let (a, b) = (tempdir(), tempdir());
    let g1 = write_and_close(a.path(), 8).await;
    let g2 = {
        let wal = open(b.path());
        let mut log = wal.group(2);
        append(&mut log, entries(1, 1, 4)).await;
        let seen = observe(&mut log).await;
        wal.shutdown();
        seen
    };
    let (sa, sb) = (segments(a.path()), segments(b.path()));
    assert_eq!((sa.len(), sb.len()), (1, 1), "a fresh log has one segment");
    std::fs::copy(&sa[0], dir.join("0000000000000001.wal")).expect("copy segment");
    std::fs::copy(&sb[0], dir.join("0000000000000002.wal")).expect("copy segment");
    (g1, g2)
}

#[tokio::test]
async fn a_damaged_older_segment_is_reported_as_corrupt() {
    let dir = tempdir();
    let (g1, g2) = two_segment_log(dir.path()).await;
    {
        let wal = open(dir.path());
        assert_eq!(
            observe(&mut wal.group(1)).await,
            g1,
            "sanity: the undamaged two-segment log replays"
        );
        assert_eq!(observe(&mut wal.group(2)).await, g2);
        wal.shutdown();
    }
    let old = dir.path().join("0000000000000001.wal");
    let frames = record_frames(&old);
    let (off, len) = frames[frames.len() / 2];
    flip_byte(&old, off + len / 2);
    let old_len = file_len(&old);

    match Wal::<TestRaft>::open(dir.path(), SyncMode::Durable) {
        Err(WalError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, old, "the error must name the damaged segment");
            assert_eq!(offset, off as u64, "the error must point at the damaged record");
        }
        Err(e) => panic!("expected WalError::Corrupt, got {e}"),
        Ok(_) => panic!("a damaged record in an older segment was accepted"),
    }
    assert_eq!(file_len(&old), old_len, "a corrupt older segment must be left as it is");
}

#[tokio::test]
async fn a_truncated_older_segment_is_reported_as_corrupt() {
    let dir = tempdir();
    two_segment_log(dir.path()).await;
    let old = dir.path().join("0000000000000001.wal");
    let (off, len) = *record_frames(&old).last().expect("a record");
    set_len(&old, (off + len / 2) as u64);

    match Wal::<TestRaft>::open(dir.path(), SyncMode::Durable) {
        Err(WalError::Corrupt { path, offset, .. }) => {
            assert_eq!(path, old);
            assert_eq!(offset, off as u64);
        }
        Err(e) => panic!("expected WalError::Corrupt, got {e}"),
        Ok(_) => panic!("a torn record in an older segment (not the tail of the log) was accepted"),
    }
}

/// The module documentation promises that only a torn record at the tail is cut off and that a
/// bad checksum anywhere else is reported as corruption. A record with a bad checksum that is
/// followed by whole, valid records cannot be a torn write (the writes after it reached the disk),
/// so cutting there would silently drop acknowledged entries and votes.
#[tokio::test]
async fn a_damaged_record_followed_by_intact_records_is_not_treated_as_a_torn_tail() {
    let dir = tempdir();
    let before = write_and_close(dir.path(), 10).await;
    let seg = newest_segment(dir.path());
    let frames = record_frames(&seg);
    // One record per append, then the vote (a checkpoint may open the segment).
    assert!(frames.len() >= 11, "one record per append plus the vote");
    let damaged = frames.len() - 10; // entry 2; entries 3..=10 and the vote follow
    let (off, len) = frames[damaged];
    flip_byte(&seg, off + len - 1);

    match Wal::<TestRaft>::open(dir.path(), SyncMode::Durable) {
        Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, off as u64),
        Err(e) => panic!("expected WalError::Corrupt, got {e}"),
        Ok(wal) => {
            let after = observe(&mut wal.group(1)).await;
            assert!(
                after == before,
                "a bad checksum in the middle of the newest segment, followed by {} intact records, \
                 was treated as a torn tail: the log reopened without error but lost acknowledged \
                 state (entries before: {:?}, after: {:?}; vote before: {:?}, after: {:?}); \
                 record::replay must report WalError::Corrupt when valid records follow the bad one",
                frames.len() - 1 - damaged,
                before.entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
                after.entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
                before.vote,
                after.vote,
            );
        }
    }
}

/// Entries big enough that one append pushes the segment past its 64 MiB limit.
fn over_one_segment(first_index: u64) -> Vec<common::TestEntry> {
    (first_index..first_index + 66)
        .map(|i| sized_entry(1, i, 1 << 20))
        .collect()
}

#[tokio::test]
async fn rotation_carries_every_group_into_the_new_segment() {
    let dir = tempdir();
    let (before1, before2) = {
        let wal = open(dir.path());
        let mut g1 = wal.group(1);
        let mut g2 = wal.group(2);
        append(&mut g1, entries(1, 1, 10)).await;
        g1.save_vote(&Vote::new_committed(1, 1)).await.expect("save_vote");
        g1.purge(log_id(1, 4)).await.expect("purge");
        g1.save_committed(Some(log_id(1, 9))).await.expect("save_committed");
        append(&mut g2, over_one_segment(1)).await;
        // Written after the rotation, into the new segment.
        append(&mut g1, entries(1, 11, 12)).await;
        g2.save_vote(&Vote::new(4, 2)).await.expect("save_vote");
        let seen = (observe(&mut g1).await, observe(&mut g2).await);
        wal.shutdown();
        seen
    };
    let segs = segments(dir.path());
    assert_eq!(
        segs.len(),
        1,
        "the old segment is deleted once the checkpoint is durable: {segs:?}"
    );
    assert!(
        segs[0].ends_with("0000000000000002.wal"),
        "a rotation happened: {segs:?}"
    );

    let wal = open(dir.path());
    assert_eq!(
        observe(&mut wal.group(1)).await,
        before1,
        "group 1 after rotation and restart"
    );
    assert_eq!(
        observe(&mut wal.group(2)).await,
        before2,
        "group 2 after rotation and restart"
    );
}

/// `Wal`'s docs say the writer is flushed and stopped when the last handle is dropped. If that
/// happens while a write that fills the segment is still queued, the writer rotates after writing
/// it, and the checkpoint that opens the new segment must still hold every group's state: the old
/// segment is deleted right after.
#[test]
fn dropping_the_last_handle_while_a_rotation_is_due_keeps_acknowledged_entries() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempdir();
    let before = {
        let wal = open(dir.path());
        let mut log = wal.group(1);
        let before = rt.block_on(async {
            append(&mut log, entries(1, 1, 10)).await;
            log.save_vote(&Vote::new_committed(1, 1)).await.expect("save_vote");
            observe(&mut log).await
        });
        {
            // Queue the big write (the first poll submits it), then let go of everything.
            let mut pending = std::pin::pin!(log.blocking_append(over_one_segment(11)));
            let _ = pending.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        }
        drop(log);
        drop(wal); // the last handle: waits for the writer to finish and stop
        before
    };

    let wal = open(dir.path());
    let after = rt.block_on(observe(&mut wal.group(1)));
    let indexes = |o: &Observed| o.entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>();
    assert!(
        after.entries.starts_with(&before.entries) && after.vote == before.vote,
        "acknowledged state was lost when the last Wal handle was dropped while a rotation was due: \
         before the drop group 1 held entries {:?} and vote {:?}; after reopening it holds entries \
         {:?} and vote {:?} (segments now: {:?}). The checkpoint closure in Wal::open upgrades a \
         Weak<Shared> that is already dead during Shared's drop and returns an empty checkpoint; \
         writer::rotate then writes it and deletes the older segments",
        indexes(&before),
        before.vote,
        indexes(&after),
        after.vote,
        segments(dir.path()),
    );
}
