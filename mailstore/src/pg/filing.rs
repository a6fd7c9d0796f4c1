//! Sieve filing on PostgreSQL: the message rows without an entry, which
//! `Tx::insert_prepared` stores before `deliver_filed` (sieve.rs, on
//! PostgreSQL `pg/tx.rs`'s `pg_deliver_filed`) adds one entry per
//! `fileinto`/`keep` target.

use crate::error::Result;
use crate::pg::PgConn;
use crate::tx::Tx;
use crate::tx_deliver::PreparedMessage;
use crate::types::MessageId;

impl Tx<'_> {
    /// `insert_prepared` on PostgreSQL: the message's rows (raw bytes,
    /// headers, folded search text, thread), no entry yet.
    pub(crate) fn pg_insert_prepared(
        &mut self,
        pg: &PgConn,
        msg: &PreparedMessage,
    ) -> Result<MessageId> {
        self.pg_insert_message(pg, msg.raw(), msg.internal_date(), msg.meta(), None, false)
            .map(|(id, _)| id)
    }
}
