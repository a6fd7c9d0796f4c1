//! Password hashing: argon2id with the crate's default parameters, stored as
//! a PHC string. Hashing is deliberately slow: never on the writer thread.
//!
//! Verification maps its argon2 work area (19 MiB with the default
//! parameters) straight from the kernel and unmaps it afterwards, outside
//! the allocator: allocating it with malloc made glibc keep every freed
//! area in its heaps (its mmap threshold grows to fit), so a server's
//! memory grew by hundreds of MiB after a few thousand logins; keeping one
//! area per thread instead pinned 19 MiB to every store reader that ever
//! verified a password (58 MiB of a 107 MiB server). The mapping is
//! populated in one call (`MAP_POPULATE`), cheaper than faulting it in.
//!
//! Successful verifications are remembered for [`CACHE_TTL`] (like
//! Dovecot's `auth_cache`): the cache maps a stored PHC string to a keyed
//! BLAKE2b digest of the password that matched it, under a random key made
//! at start-up and kept only in memory. A repeated login (clients reconnect
//! often) then costs one BLAKE2b instead of an argon2 run; a wrong password
//! still pays the full argon2 price, and a password change (a new PHC
//! string, new salt) never matches an old entry.

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use blake2::{Blake2b512, Digest};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a successful verification is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most (the cache is emptied when full).
const CACHE_MAX: usize = 100_000;

struct AuthCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, ([u8; 64], Instant)>>,
}

fn cache() -> &'static AuthCache {
    static CACHE: OnceLock<AuthCache> = OnceLock::new();
    CACHE.get_or_init(|| AuthCache {
        key: rand::random(),
        entries: Mutex::new(HashMap::new()),
    })
}

impl AuthCache {
    fn digest(&self, phc: &str, pw: &str) -> [u8; 64] {
        let mut h = Blake2b512::new();
        h.update(self.key);
        h.update((phc.len() as u64).to_le_bytes());
        h.update(phc.as_bytes());
        h.update(pw.as_bytes());
        h.finalize().into()
    }

    fn hit(&self, phc: &str, pw: &str) -> bool {
        let d = self.digest(phc, pw);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(phc)
            .is_some_and(|(want, at)| at.elapsed() < CACHE_TTL && ct_eq(want, &d))
    }

    fn remember(&self, phc: &str, pw: &str) {
        let d = self.digest(phc, pw);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
            if entries.len() >= CACHE_MAX {
                entries.clear();
            }
        }
        entries.insert(phc.to_owned(), (d, Instant::now()));
    }
}

/// Compare in constant time: every byte is looked at whatever differs.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

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

/// An argon2 work area of anonymous memory, unmapped on drop.
struct WorkArea {
    ptr: std::ptr::NonNull<Block>,
    blocks: usize,
}

impl WorkArea {
    /// `blocks` zeroed blocks, or None if the kernel refuses the mapping.
    fn map(blocks: usize) -> Option<WorkArea> {
        let len = blocks.checked_mul(std::mem::size_of::<Block>())?;
        if len == 0 {
            return None;
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // touched. The result is checked against MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        let ptr = std::ptr::NonNull::new(p.cast::<Block>())?;
        Some(WorkArea { ptr, blocks })
    }

    fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is page-aligned (Block needs 64), zero-filled
        // (all-zero words are a valid Block), `blocks` blocks long, and
        // owned by this value alone for as long as the borrow lasts.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.blocks) }
    }
}

impl Drop for WorkArea {
    fn drop(&mut self) {
        let len = self.blocks * std::mem::size_of::<Block>();
        // SAFETY: unmaps exactly the mapping made in `map`, no longer used.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), len);
        }
    }
}

/// Whether `pw` matches the PHC string (false for a malformed string).
pub fn verify_password(phc: &str, pw: &str) -> bool {
    let c = cache();
    if c.hit(phc, pw) {
        return true;
    }
    let ok = verify_argon2(phc, pw);
    if ok {
        c.remember(phc, pw);
    }
    ok
}

fn verify_argon2(phc: &str, pw: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(h.algorithm), Params::try_from(&h))
    else {
        return false;
    };
    let version = match h.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let Some(mut area) = WorkArea::map(blocks) else {
        log::warn!("password check: cannot map a {blocks} KiB argon2 work area");
        return false;
    };
    let hashed = argon
        .hash_password_into_with_memory(pw.as_bytes(), salt, &mut out, area.blocks())
        .is_ok();
    hashed && ct_eq(&out, expected)
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
    fn verification_agrees_with_the_argon2_crate_for_other_parameters() {
        use argon2::password_hash::PasswordVerifier;
        // A hash made with non-default (small) parameters, argon2i and
        // argon2d too: the reused work area must follow each hash's own.
        for alg in [Algorithm::Argon2id, Algorithm::Argon2i, Algorithm::Argon2d] {
            let Ok(params) = Params::new(64, 1, 1, Some(24)) else {
                panic!("params");
            };
            let argon = Argon2::new(alg, Version::V0x13, params);
            let Ok(salt) = SaltString::encode_b64(b"0123456789abcdef") else {
                panic!("salt");
            };
            let Ok(phc) = argon.hash_password(b"secret", &salt) else {
                panic!("hash");
            };
            let phc = phc.to_string();
            let parsed = PasswordHash::new(&phc).ok();
            assert!(parsed.is_some_and(|h| argon.verify_password(b"secret", &h).is_ok()));
            assert!(verify_password(&phc, "secret"), "{phc}");
            assert!(!verify_password(&phc, "secreT"), "{phc}");
        }
    }

    #[test]
    fn the_cache_remembers_only_successes_for_that_exact_hash() {
        let (Ok(a), Ok(b)) = (hash_password("pw1"), hash_password("pw1")) else {
            panic!("hashing failed");
        };
        let c = cache();
        assert!(!c.hit(&a, "pw1"));
        assert!(!verify_password(&a, "wrong"));
        assert!(!c.hit(&a, "wrong"), "failures are never cached");
        assert!(verify_password(&a, "pw1"));
        assert!(c.hit(&a, "pw1"));
        assert!(verify_password(&a, "pw1"), "served from the cache");
        assert!(!c.hit(&a, "pw2"), "another password misses");
        assert!(!verify_password(&a, "pw2"));
        assert!(!c.hit(&b, "pw1"), "a new hash (new salt) starts cold");
    }

    #[test]
    fn malformed_phc_never_verifies() {
        for phc in ["", "$argon2id$", "plain", "$argon2id$dummy"] {
            assert!(!verify_password(phc, ""), "{phc}");
        }
    }
}
