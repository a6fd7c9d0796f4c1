//! DKIM key pairs: made here, kept in the store ([`mailstore::DkimKey`]),
//! published by the operator as a TXT record at
//! `SELECTOR._domainkey.DOMAIN`.

use base64::Engine as _;
use mail_auth::dkim::generate::DkimKeyPair;

use crate::Error;

/// RSA keys are made this long (RFC 8301 §3.2 recommends 2048 bits).
pub const RSA_BITS: usize = 2048;

/// A signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ed25519-sha256 (RFC 8463): short keys, fast; not every verifier
    /// knows it yet, so domains often publish an RSA key beside it.
    Ed25519,
    /// rsa-sha256 (RFC 6376), 2048 bits.
    Rsa,
}

impl Algorithm {
    /// The name stored and shown (`ed25519`, `rsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::Rsa => "rsa",
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Algorithm::Ed25519),
            "rsa" => Ok(Algorithm::Rsa),
            _ => Err(Error::Algorithm(s.to_owned())),
        }
    }
}

/// A new key pair: (private key DER, public key DER) as the store keeps
/// them (PKCS#8 and the raw 32 bytes for ed25519; PKCS#1 for RSA).
///
/// # Errors
/// The crypto library failing.
pub fn generate(algorithm: Algorithm) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let pair = match algorithm {
        Algorithm::Ed25519 => DkimKeyPair::generate_ed25519()?,
        Algorithm::Rsa => DkimKeyPair::generate_rsa(RSA_BITS)?,
    };
    Ok(pair.into_inner())
}

/// The TXT record's text for a public key (RFC 6376 §3.6.1):
/// `v=DKIM1; k=ed25519; p=BASE64`.
pub fn dns_record(algorithm: Algorithm, public_key: &[u8]) -> String {
    format!(
        "v=DKIM1; k={}; p={}",
        algorithm.as_str(),
        base64::engine::general_purpose::STANDARD.encode(public_key)
    )
}
