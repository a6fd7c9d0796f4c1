//! Compiled scripts by text, so a script is compiled once, not per
//! message. Bounded: past [`MAX_CACHED`] scripts the cache starts over.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

/// Most compiled scripts kept.
pub const MAX_CACHED: usize = 256;

/// A fingerprint of a script's text.
pub fn fingerprint(text: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// A script's text and its compiled form.
type Entry = (Vec<u8>, Arc<sieve::Sieve>);

/// Compiled scripts by fingerprint (the text is kept to rule out a
/// collision).
#[derive(Default)]
pub struct Compiled {
    map: Mutex<HashMap<u64, Entry>>,
}

impl Compiled {
    /// `text` compiled (from the cache when it was before).
    pub fn get(&self, text: &[u8]) -> Result<Arc<sieve::Sieve>, String> {
        let key = fingerprint(text);
        {
            let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((t, s)) = map.get(&key) {
                if t == text {
                    return Ok(s.clone());
                }
            }
        }
        let script = crate::compile(text)?;
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(key, (text.to_vec(), script.clone()));
        Ok(script)
    }
}
