//! The writer thread: the only code that touches segment files after start-up. It takes every
//! queued write, appends them all, flushes once, and only then reports each write durable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use crate::record::{list_segments, segment_path};
use crate::SyncMode;

/// A segment is rotated past this size (or twice the live state, if larger). Rotation copies
/// the live state (every unpurged entry) into the new segment while appends wait to be made
/// durable, so segments are big enough that a load of a million rows does not rotate.
pub(crate) const SEGMENT_BYTES: u64 = 256 << 20;

/// What to do once a write is durable.
pub(crate) enum Completion {
    None,
    Callback(Box<dyn FnOnce(std::io::Result<()>) + Send>),
    Notify(tokio::sync::oneshot::Sender<std::io::Result<()>>),
}

impl Completion {
    fn complete(self, result: &std::io::Result<()>) {
        let r = match result {
            Ok(()) => Ok(()),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        match self {
            Completion::None => {}
            Completion::Callback(f) => f(r),
            Completion::Notify(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

enum Msg {
    Write { bytes: Vec<u8>, done: Completion },
    Stop(mpsc::Sender<()>),
}

/// Produces the checkpoint that opens a new segment, or `None` when the log's state is gone.
pub(crate) type CheckpointFn = Box<dyn Fn() -> Option<Vec<u8>> + Send>;

/// Counters a benchmark or metrics endpoint can read.
#[derive(Debug, Clone, Copy, Default)]
pub struct WalStats {
    pub bytes: u64,
    pub fsyncs: u64,
    pub writes: u64,
}

#[derive(Default)]
struct Counters {
    bytes: AtomicU64,
    fsyncs: AtomicU64,
    writes: AtomicU64,
}

pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    counters: Arc<Counters>,
}

impl Writer {
    pub fn start(
        dir: PathBuf,
        segments: Vec<u64>,
        sync: SyncMode,
        segment_bytes: u64,
        checkpoint: CheckpointFn,
    ) -> Writer {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("wal-writer".into())
            .spawn(move || {
                if let Err(e) = run(&dir, segments, sync, segment_bytes, checkpoint, rx, &c) {
                    tracing::error!(dir = %dir.display(), error = %e, "write-ahead log writer failed; no further writes can be made durable");
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the write-ahead log writer"));
        Writer {
            tx: Mutex::new(Some(tx)),
            counters,
        }
    }

    pub fn submit(&self, bytes: Vec<u8>, done: Completion) {
        let guard = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let failed = match guard.as_ref() {
            Some(tx) => tx.send(Msg::Write { bytes, done }).map_err(|e| match e.0 {
                Msg::Write { done, .. } => done,
                Msg::Stop(_) => Completion::None,
            }),
            None => Err(done),
        };
        if let Err(done) = failed {
            done.complete(&Err(std::io::Error::other("the write-ahead log is closed")));
        }
    }

    pub fn stop(&self) {
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(tx) = tx {
            let (ack_tx, ack_rx) = mpsc::channel();
            if tx.send(Msg::Stop(ack_tx)).is_ok() {
                let _ = ack_rx.recv();
            }
        }
    }

    pub fn stats(&self) -> WalStats {
        WalStats {
            bytes: self.counters.bytes.load(Ordering::Relaxed),
            fsyncs: self.counters.fsyncs.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

struct Segment {
    seq: u64,
    file: File,
    size: u64,
}

fn open_segment(dir: &Path, seq: u64) -> std::io::Result<Segment> {
    let path = segment_path(dir, seq);
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    let size = file.metadata()?.len();
    Ok(Segment { seq, file, size })
}

/// Starts segment `seq` with a checkpoint, makes it durable, then deletes older segments.
/// Returns `None` (and changes nothing) when no checkpoint can be taken.
fn rotate(dir: &Path, seq: u64, checkpoint: &CheckpointFn) -> std::io::Result<Option<Segment>> {
    let Some(bytes) = checkpoint() else { return Ok(None) };
    let mut seg = open_segment(dir, seq)?;
    seg.file.write_all(&bytes)?;
    seg.file.sync_all()?;
    sync_dir(dir)?;
    seg.size += bytes.len() as u64;
    for old in list_segments(dir).map_err(|e| std::io::Error::other(e.to_string()))? {
        if old < seq {
            std::fs::remove_file(segment_path(dir, old))?;
        }
    }
    sync_dir(dir)?;
    Ok(Some(seg))
}

fn run(
    dir: &Path,
    segments: Vec<u64>,
    sync: SyncMode,
    segment_bytes: u64,
    checkpoint: CheckpointFn,
    rx: mpsc::Receiver<Msg>,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut seg = match segments.last() {
        Some(seq) => open_segment(dir, *seq)?,
        None => match rotate(dir, 1, &checkpoint)? {
            Some(seg) => seg,
            None => open_segment(dir, 1)?,
        },
    };
    let mut limit = segment_bytes;
    let mut batch: Vec<Completion> = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut last_write = std::time::Instant::now();
    loop {
        let first = match rx.recv() {
            Ok(m) => m,
            Err(_) => {
                // Every handle is gone: what is still held in memory goes to the file.
                if !buf.is_empty() {
                    seg.file.write_all(&buf)?;
                    if sync == SyncMode::Durable {
                        seg.file.sync_data()?;
                    }
                }
                return Ok(());
            }
        };
        let mut stop: Option<mpsc::Sender<()>> = None;
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write { bytes, done } => {
                    buf.extend_from_slice(&bytes);
                    batch.push(done);
                }
                Msg::Stop(ack) => {
                    stop = Some(ack);
                    break;
                }
            }
            if buf.len() < (8 << 20) {
                next = rx.try_recv().ok();
            }
        }
        // Records nobody waits for (commit points, purges, truncations) ride along with the
        // next flush instead of costing one of their own: a later durable record lies after them
        // in the file, so its flush covers them too. In the unsafe mode writes are acknowledged
        // while still in memory and reach the file at most once a second, so a crash of the
        // process loses up to a second of them, as a crash of the machine would without fsync.
        let awaited = batch.iter().any(|done| !matches!(done, Completion::None));
        let write_now = (sync == SyncMode::Durable && awaited)
            || stop.is_some()
            || buf.len() >= (8 << 20)
            || last_write.elapsed() >= std::time::Duration::from_secs(1);
        let result = (|| {
            if !buf.is_empty() && write_now {
                seg.file.write_all(&buf)?;
                if sync == SyncMode::Durable {
                    seg.file.sync_data()?;
                    counters.fsyncs.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        })();
        counters.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if write_now {
            seg.size += buf.len() as u64;
            counters.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            buf.clear();
            last_write = std::time::Instant::now();
        }
        for done in batch.drain(..) {
            done.complete(&result);
        }
        result?;
        if let Some(ack) = stop {
            let _ = ack.send(());
            return Ok(());
        }
        if seg.size > limit && buf.is_empty() {
            if let Some(next) = rotate(dir, seg.seq + 1, &checkpoint)? {
                seg = next;
                limit = segment_bytes.max(2 * seg.size);
            }
        }
    }
}
