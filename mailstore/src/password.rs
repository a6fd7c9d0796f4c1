//! Password hashing: argon2id with the crate's default parameters, stored as
//! a PHC string. Hashing is deliberately slow: never on the writer thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{Result, StoreError};

/// Hash `pw` with argon2id and a random 16-byte salt.
///
/// # Errors
/// [`StoreError::Password`] if argon2 rejects the input (e.g. absurd length).
pub fn hash_password(pw: &str) -> Result<String> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt =
        SaltString::encode_b64(&salt_bytes).map_err(|e| StoreError::Password(e.to_string()))?;
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Password(e.to_string()))
}

/// Whether `pw` matches the PHC string (false for a malformed string).
pub fn verify_password(phc: &str, pw: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salts_differ_and_both_verify() {
        let (Ok(a), Ok(b)) = (hash_password("pw"), hash_password("pw")) else {
            panic!("hashing failed");
        };
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$v=19$"));
        // (argon2 is slow in debug builds: keep the number of runs small.)
        assert!(verify_password(&b, "pw"));
        assert!(!verify_password(&a, "PW"));
    }

    #[test]
    fn malformed_phc_never_verifies() {
        for phc in ["", "$argon2id$", "plain", "$argon2id$dummy"] {
            assert!(!verify_password(phc, ""), "{phc}");
        }
    }
}
