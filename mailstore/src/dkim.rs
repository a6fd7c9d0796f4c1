//! DKIM signing keys (RFC 6376 §3.6.1): per domain, any number of
//! selectors, one active (the one that signs). The store keeps the key
//! material as given (DER bytes) and knows nothing of DKIM itself;
//! generating keys and signing are the caller's business.

use rusqlite::params;

use crate::error::Result;
use crate::reader::Reader;
use crate::tx::Tx;

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector (`s=`).
    pub selector: String,
    /// `ed25519` or `rsa`.
    pub algorithm: String,
    /// Private key, DER (PKCS#8 for ed25519, PKCS#1 for RSA).
    pub private_key: Vec<u8>,
    /// Public key, DER (raw 32 bytes for ed25519, PKCS#1 for RSA).
    pub public_key: Vec<u8>,
    /// When it was made (Unix seconds).
    pub created: i64,
    /// The one that signs for its domain.
    pub active: bool,
}

const COLUMNS: &str = "domain, selector, algorithm, private_key, public_key, created, active";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DkimKey> {
    Ok(DkimKey {
        domain: r.get(0)?,
        selector: r.get(1)?,
        algorithm: r.get(2)?,
        private_key: r.get(3)?,
        public_key: r.get(4)?,
        created: r.get(5)?,
        active: r.get::<_, i64>(6)? != 0,
    })
}

impl Tx<'_> {
    /// Store `key` and make it its domain's active key (the others stay,
    /// inactive, so mail signed with them still verifies while their DNS
    /// records are published). False if the domain already has that
    /// selector (nothing changed).
    ///
    /// # Errors
    /// SQLite errors.
    pub fn add_dkim_key(&mut self, key: &DkimKey) -> Result<bool> {
        if let Some(pg) = self.pg {
            return pg.add_dkim_key(key);
        }
        let added = self.conn().execute(
            "INSERT OR IGNORE INTO dkim_keys(domain, selector, algorithm, private_key, public_key, created, active)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            params![
                key.domain,
                key.selector,
                key.algorithm,
                key.private_key,
                key.public_key,
                key.created
            ],
        )?;
        if added == 0 {
            return Ok(false);
        }
        self.conn().execute(
            "UPDATE dkim_keys SET active = (selector = ?2) WHERE domain = ?1",
            params![key.domain, key.selector],
        )?;
        Ok(true)
    }
}

impl Reader {
    /// The keys of `domain` (all domains if `None`), active first, then
    /// newest first.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn dkim_keys(&self, domain: Option<&str>) -> Result<Vec<DkimKey>> {
        if let Some(pg) = self.pg() {
            return pg.dkim_keys(domain);
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM dkim_keys WHERE ?1 IS NULL OR domain = ?1
             ORDER BY domain, active DESC, created DESC, selector"
        );
        let mut st = self.conn().prepare(&sql)?;
        let keys = st
            .query_map([domain], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(keys)
    }
}
