//! `minimail dkim keygen|show`: DKIM signing keys in the store, and the
//! DNS TXT records to publish for them (issue 17).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use mailstore::{DkimKey, Store};
use netloop::cli::DbArg;
use std::time::{SystemTime, UNIX_EPOCH};

/// `minimail dkim ...`
#[derive(Subcommand, Debug)]
pub enum DkimCmd {
    /// Make a signing key for DOMAIN, store it as the domain's active key
    /// (earlier ones stay for rotation) and print the TXT record to publish.
    Keygen {
        /// The signing domain (d=).
        domain: String,
        /// The selector (s=); the record goes at SELECTOR._domainkey.DOMAIN.
        /// Default: the algorithm and the date, e.g. ed25519-20261206.
        #[arg(long)]
        selector: Option<String>,
        /// ed25519 (RFC 8463) or rsa (2048 bits).
        #[arg(long, default_value = "ed25519")]
        algorithm: String,
        #[command(flatten)]
        db: DbArg,
    },
    /// Print DOMAIN's keys (all domains without one) as the TXT records to
    /// publish, the active one first.
    Show {
        /// The signing domain.
        domain: Option<String>,
        #[command(flatten)]
        db: DbArg,
    },
}

fn open(db: &DbArg) -> Result<Store> {
    Store::open(&db.db).with_context(|| format!("cannot open the store {}", db.db.display()))
}

/// A selector is one or more DNS labels (RFC 6376 §3.1).
fn valid_selector(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
        })
}

/// `SELECTOR._domainkey.DOMAIN. IN TXT "..."`, split into strings of at
/// most 255 octets (RFC 1035 §3.3.14) as zone files want for RSA keys.
fn print_record(k: &DkimKey) -> Result<()> {
    let algorithm: mailauth::Algorithm = k.algorithm.parse()?;
    let text = mailauth::dns_record(algorithm, &k.public_key);
    let strings: Vec<String> = text
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect();
    println!(
        "{}._domainkey.{}. IN TXT {}{}",
        k.selector,
        k.domain,
        strings.join(" "),
        if k.active { "  ; active" } else { "" }
    );
    Ok(())
}

/// Run a dkim command.
pub fn run(cmd: DkimCmd) -> Result<()> {
    match cmd {
        DkimCmd::Keygen {
            domain,
            selector,
            algorithm,
            db,
        } => {
            let algorithm: mailauth::Algorithm = algorithm.parse()?;
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if domain.is_empty() || !domain.contains('.') && domain != "localhost" {
                bail!("{domain:?} is not a domain");
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let selector = selector.unwrap_or_else(|| {
                let (y, m, d) = mailstore::date::civil_from_days(now.div_euclid(86_400));
                format!("{}-{y:04}{m:02}{d:02}", algorithm.as_str())
            });
            if !valid_selector(&selector) {
                bail!("{selector:?} is not a valid selector (DNS labels)");
            }
            let (private_key, public_key) = mailauth::generate(algorithm)?;
            let key = DkimKey {
                domain: domain.clone(),
                selector: selector.clone(),
                algorithm: algorithm.as_str().to_owned(),
                private_key,
                public_key,
                created: now,
                active: true,
            };
            let store = open(&db)?;
            let stored = key.clone();
            let added = store.write_sync(move |tx| tx.add_dkim_key(&stored));
            store.shutdown();
            if !added? {
                bail!("{domain} already has a key with selector {selector}; choose another --selector");
            }
            eprintln!(
                "minimail: new {} key for {domain}, selector {selector}, now the active one; publish (then reload minimail up: kill -HUP):",
                algorithm.as_str()
            );
            print_record(&key)
        }
        DkimCmd::Show { domain, db } => {
            let store = open(&db)?;
            let keys = store.read_sync(move |r| r.dkim_keys(domain.as_deref()));
            store.shutdown();
            let keys = keys?;
            if keys.is_empty() {
                bail!("no DKIM keys (make one with `minimail dkim keygen DOMAIN`)");
            }
            for k in &keys {
                print_record(k)?;
            }
            Ok(())
        }
    }
}
