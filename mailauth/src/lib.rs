//! Domain authentication for minimail, on the `mail-auth` crate (which
//! does the cryptography, canonicalization and record parsing): DKIM keys
//! ([`keys`]: generation and the DNS TXT record to publish, RFC 6376
//! §3.6.1, RFC 8463) and signing ([`sign`]: the mail of authenticated
//! users, RFC 6376 §5) and checking what other hosts send ([`verify`]:
//! SPF, DKIM, ARC, DMARC into an Authentication-Results field). Which mail is signed, with which key, and what
//! happens on failure are decided here and by the callers.

pub mod keys;
pub mod policy;
pub mod reports;
pub mod sign;
pub mod verify;

pub use keys::{dns_record, generate, Algorithm};
pub use policy::{Action, DomainPolicy, PolicyMap};
pub use sign::Signer;
pub use verify::{
    strip_forged_results, Disposition, Envelope, Findings, Published, Verdict, Verifier,
};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Key generation, loading or signing failed in the crypto library.
    #[error("DKIM: {0}")]
    Dkim(String),
    /// An algorithm name we do not know.
    #[error("unknown DKIM algorithm {0:?} (want ed25519 or rsa)")]
    Algorithm(String),
}

impl From<mail_auth::Error> for Error {
    fn from(e: mail_auth::Error) -> Self {
        Error::Dkim(e.to_string())
    }
}
