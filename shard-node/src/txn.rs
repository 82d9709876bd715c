//! Transactions on a shard's primary: each open transaction keeps its uncommitted writes in an
//! overlay (key → new row, with the version the row had when first touched). Reads inside the
//! transaction see the overlay over the committed rows; COMMIT proposes the overlay as one write
//! set, which applies only if none of the rows it read changed meanwhile.
//!
//! A transaction belongs to the router connection that opened it and dies with it.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tessera_types::key::KeyRange;
use tessera_types::rpc::{ConnId, TxnId};
use tessera_types::Row;

use crate::store::{RowsReader, StoreError};

/// An uncommitted write of one row.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Version of the committed row when the write was computed (`None`: it did not exist).
    pub expected: Option<u64>,
    /// The new row (`None`: deleted).
    pub row: Option<Row>,
}

/// Uncommitted writes, by encoded key.
pub type Overlay = BTreeMap<Vec<u8>, Pending>;

/// A row as a transaction sees it: key, the version a write set must expect, values.
pub type VisibleRow = (Vec<u8>, Option<u64>, Row);

/// Rows in key order.
pub type RowIter<'a> = Box<dyn Iterator<Item = Result<VisibleRow, StoreError>> + 'a>;

/// Open transactions by id, with the connection that opened each.
type TxnMap = HashMap<TxnId, (ConnId, Arc<tokio::sync::Mutex<Txn>>)>;

/// Rows in key order as a transaction sees them: the committed rows with `overlay` on top.
pub fn merged_range<'a>(
    reader: &'a RowsReader,
    overlay: Option<&'a Overlay>,
    range: &KeyRange,
) -> Result<RowIter<'a>, StoreError> {
    let base = reader.range(range)?.map(|r| r.map(|(k, v, row)| (k, Some(v), row)));
    let Some(overlay) = overlay.filter(|o| !o.is_empty()) else {
        return Ok(Box::new(base));
    };
    let bounds: (Bound<Vec<u8>>, Bound<Vec<u8>>) = (range.start.clone(), range.end.clone());
    let over: Vec<(Vec<u8>, Pending)> = if range.is_empty() {
        Vec::new()
    } else {
        overlay.range(bounds).map(|(k, p)| (k.clone(), p.clone())).collect()
    };
    Ok(Box::new(MergeIter {
        base: base.peekable(),
        over: over.into_iter().peekable(),
    }))
}

struct MergeIter<B: Iterator<Item = Result<VisibleRow, StoreError>>> {
    base: std::iter::Peekable<B>,
    over: std::iter::Peekable<std::vec::IntoIter<(Vec<u8>, Pending)>>,
}

impl<B: Iterator<Item = Result<VisibleRow, StoreError>>> Iterator for MergeIter<B> {
    type Item = Result<VisibleRow, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let base_key = match self.base.peek() {
                Some(Ok((k, _, _))) => Some(k.clone()),
                Some(Err(_)) => return self.base.next(),
                None => None,
            };
            let over_key = self.over.peek().map(|(k, _)| k.clone());
            match (base_key, over_key) {
                (None, None) => return None,
                (Some(_), None) => return self.base.next(),
                (b, Some(o)) if b.as_ref().is_none_or(|b| o <= *b) => {
                    if b.as_ref() == Some(&o) {
                        self.base.next(); // the overlay replaces the committed row
                    }
                    let (key, pending) = self.over.next()?;
                    if let Some(row) = pending.row {
                        return Some(Ok((key, pending.expected, row)));
                    }
                }
                _ => return self.base.next(),
            }
        }
    }
}

/// One open transaction.
pub struct Txn {
    pub overlay: Overlay,
    /// The placement epoch it began at: its commit is refused if a split fenced the shard
    /// since.
    pub epoch: u64,
    pub last_used: Instant,
    /// How its commit ended, once it has: a retried commit waits for the first and gets this.
    pub committed: Option<Result<(), tessera_types::rpc::RpcError>>,
}

/// The open transactions of one replica.
#[derive(Default)]
pub struct TxnRegistry {
    txns: Mutex<TxnMap>,
}

impl TxnRegistry {
    /// The transaction, opened (empty) if it does not exist yet.
    pub fn open(&self, id: TxnId, conn: ConnId, epoch: u64) -> Arc<tokio::sync::Mutex<Txn>> {
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        txns.entry(id)
            .or_insert_with(|| {
                (
                    conn,
                    Arc::new(tokio::sync::Mutex::new(Txn {
                        overlay: Overlay::new(),
                        epoch,
                        last_used: Instant::now(),
                        committed: None,
                    })),
                )
            })
            .1
            .clone()
    }

    pub fn get(&self, id: TxnId) -> Option<Arc<tokio::sync::Mutex<Txn>>> {
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .map(|(_, t)| t.clone())
    }

    pub fn remove(&self, id: TxnId) -> Option<Arc<tokio::sync::Mutex<Txn>>> {
        self.txns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
            .map(|(_, t)| t)
    }

    /// Drops every transaction opened through a connection that closed.
    pub fn drop_connection(&self, conn: ConnId) {
        let mut txns = self.txns.lock().unwrap_or_else(|p| p.into_inner());
        txns.retain(|_, (c, _)| *c != conn);
    }

    pub fn len(&self) -> usize {
        self.txns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
