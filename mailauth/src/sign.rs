//! DKIM signing (RFC 6376 §5) with each domain's active key.

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};
use std::collections::HashMap;

use crate::keys::Algorithm;
use crate::Error;

/// The header fields signed (RFC 6376 §5.4.1's recommendations). A listed
/// field absent from a message is signed as absent, so one added in
/// transit breaks the signature, as intended.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "Subject",
    "Date",
    "To",
    "Cc",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// The active key of each domain that has one.
pub struct Signer {
    keys: HashMap<String, DkimSigner<DkimKey, Done>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut domains: Vec<&String> = self.keys.keys().collect();
        domains.sort();
        f.debug_struct("Signer").field("domains", &domains).finish()
    }
}

impl Signer {
    /// A signer from the store's keys (only the active ones are used).
    ///
    /// # Errors
    /// A stored key the crypto library cannot load, naming it.
    pub fn new(stored: &[mailstore::DkimKey]) -> Result<Signer, Error> {
        let mut keys = HashMap::new();
        for k in stored.iter().filter(|k| k.active) {
            let algorithm: Algorithm = k.algorithm.parse()?;
            let key = match algorithm {
                Algorithm::Ed25519 => DkimKey::from(Ed25519Key::from_pkcs8_der(&k.private_key)?),
                Algorithm::Rsa => DkimKey::from(RsaKey::<Sha256>::from_key_der(
                    PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(k.private_key.clone())),
                )?),
            };
            let domain = k.domain.to_ascii_lowercase();
            let signer = DkimSigner::from_key(key)
                .domain(domain.clone())
                .selector(k.selector.clone())
                .headers(SIGNED_HEADERS.iter().copied());
            keys.insert(domain, signer);
        }
        Ok(Signer { keys })
    }

    /// True when no domain has a key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `domain` has an active key.
    pub fn signs_for(&self, domain: &str) -> bool {
        self.keys.contains_key(&domain.to_ascii_lowercase())
    }

    /// The `DKIM-Signature:` header field (with its CRLF) for `message`
    /// signed as `domain`, or `None` when the domain has no key.
    ///
    /// # Errors
    /// The crypto library failing.
    pub fn sign(&self, domain: &str, message: &[u8]) -> Result<Option<String>, Error> {
        let Some(signer) = self.keys.get(&domain.to_ascii_lowercase()) else {
            return Ok(None);
        };
        let signature = signer.sign(message)?;
        Ok(Some(signature.to_header()))
    }
}
