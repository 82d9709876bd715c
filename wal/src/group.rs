//! One group's view of the shared log: openraft's `RaftLogStorage` for that group.

use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError, Vote};

use crate::record::{encode, Record};
use crate::writer::Completion;
use crate::{GroupId, GroupState, Shared};

pub struct GroupLog<C: RaftTypeConfig> {
    shared: Arc<Shared<C>>,
    group: GroupId,
}

impl<C: RaftTypeConfig> Clone for GroupLog<C> {
    fn clone(&self) -> Self {
        GroupLog {
            shared: self.shared.clone(),
            group: self.group,
        }
    }
}

impl<C: RaftTypeConfig> GroupLog<C>
where
    C::Entry: Clone,
{
    pub(crate) fn new(shared: Arc<Shared<C>>, group: GroupId) -> Self {
        GroupLog { shared, group }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut GroupState<C>) -> T) -> T {
        let mut groups = self.shared.groups.lock().unwrap_or_else(|p| p.into_inner());
        f(groups.entry(self.group).or_default())
    }

    /// Applies `record` in memory and queues it for the disk; `done` runs once it is durable.
    fn write(&self, record: Record<C>, done: Completion) {
        let bytes = encode::<C>(&record);
        {
            let mut groups = self.shared.groups.lock().unwrap_or_else(|p| p.into_inner());
            crate::record::apply(&mut groups, record);
            // Submitting under the lock keeps the disk order equal to the memory order.
            self.shared.writer.submit(bytes, done);
        }
    }

    async fn write_durably(&self, record: Record<C>) -> Result<(), std::io::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.write(record, Completion::Notify(tx));
        rx.await
            .unwrap_or_else(|_| Err(std::io::Error::other("write-ahead log writer stopped")))
    }

    /// The group's last log index, if any (for status tables).
    pub fn last_index(&self) -> Option<u64> {
        self.with_state(|st| {
            st.entries
                .keys()
                .next_back()
                .copied()
                .or(st.last_purged.as_ref().map(|p| p.index))
        })
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for GroupLog<C>
where
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        Ok(self.with_state(|st| st.entries.range(range).map(|(_, e)| e.clone()).collect()))
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for GroupLog<C>
where
    C::Entry: Clone,
{
    type LogReader = GroupLog<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        Ok(self.with_state(|st| {
            let last = st.entries.values().next_back().map(|e| e.get_log_id().clone());
            LogState {
                last_purged_log_id: st.last_purged.clone(),
                last_log_id: last.or(st.last_purged.clone()),
            }
        }))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write_durably(Record::Vote {
            group: self.group,
            vote: vote.clone(),
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.with_state(|st| st.vote.clone()))
    }

    async fn save_committed(&mut self, committed: Option<LogId<C::NodeId>>) -> Result<(), StorageError<C::NodeId>> {
        // Made durable by the next flush; losing it only means re-applying a little more.
        self.write(
            Record::Committed {
                group: self.group,
                committed,
            },
            Completion::None,
        );
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.with_state(|st| st.committed.clone()))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<C>) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<C::Entry> = entries.into_iter().collect();
        if entries.is_empty() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        self.write(
            Record::Entries {
                group: self.group,
                entries,
            },
            Completion::Callback(Box::new(move |r| callback.log_io_completed(r))),
        );
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write(
            Record::Truncate {
                group: self.group,
                since: log_id.index,
            },
            Completion::None,
        );
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.write(
            Record::Purge {
                group: self.group,
                upto: log_id,
            },
            Completion::None,
        );
        Ok(())
    }
}
