//! The store's health: [`Health`] records the first damage SQLite reports
//! while serving (`SQLITE_CORRUPT`, `SQLITE_NOTADB`, on the writer or a
//! reader), logs it loudly once, and from then on makes every write fail
//! with [`StoreError::Damaged`] while reads go on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::{Fault, StoreError};
use crate::jobs::BatchFailure;

/// The store's degraded state: set by the first damage SQLite reports,
/// never cleared while the process runs.
pub(crate) struct Health {
    path: PathBuf,
    pub(crate) damaged: OnceLock<String>,
}

impl Health {
    pub(crate) fn new(path: &Path) -> Arc<Health> {
        Arc::new(Health {
            path: path.to_path_buf(),
            damaged: OnceLock::new(),
        })
    }

    /// Note what an operation failed with: damage degrades the store.
    pub(crate) fn saw(&self, e: &StoreError) {
        if let StoreError::Damaged(why) = e {
            self.mark(why);
        }
    }

    pub(crate) fn mark(&self, why: &str) {
        if self.damaged.set(why.to_string()).is_ok() {
            log::error!(
                "MAIL STORE DAMAGED: {}: {why}. From now on every write (deliveries, \
                 APPEND, flag changes) is refused with a temporary error, so no mail is \
                 acknowledged that the store may not give back; reads go on. Stop the \
                 servers and run `minimail store check --db {}`",
                self.path.display(),
                self.path.display()
            );
        }
    }

    pub(crate) fn is_damaged(&self) -> bool {
        self.damaged.get().is_some()
    }

    /// What a write is told once the store is degraded.
    pub(crate) fn refusal(&self) -> Option<BatchFailure> {
        self.damaged.get().map(|why| BatchFailure {
            fault: Fault::Damaged,
            msg: format!(
                "{}: writes refused since SQLite reported damage ({why})",
                self.path.display()
            ),
        })
    }
}
