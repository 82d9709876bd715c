//! Scans of a replica's rows: the store's rows (with a transaction's overlay) fed through the
//! shared scan executor (`tessera_types::scan`), and the errors a scan or write computation
//! can end with.

use tessera_types::ExecError;

use crate::store::StoreError;

pub use tessera_types::scan::Batch;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Store(#[from] StoreError),
}
