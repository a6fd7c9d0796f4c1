//! Password verification keeps no argon2 work area once it returns: a
//! server whose store readers verify logins must not keep a 19 MiB area
//! per thread (the outbound RSS check once found 58 MiB of them). Its own
//! test binary, so no other test's allocations move the figure.
#![allow(clippy::unwrap_used)]

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, Barrier};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn verifying_on_many_threads_keeps_no_work_areas() {
    // 16 MiB areas, one pass: the shape of the default, cheaper in debug.
    let params = Params::new(16 * 1024, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(b"right", &salt)
        .unwrap()
        .to_string();
    assert!(mailstore::verify_password(&phc, "right"));
    let before = rss_kib();
    let threads = 4;
    // Every thread verifies (wrong passwords: the cache never answers),
    // then waits while the main thread reads the RSS.
    let done = Arc::new(Barrier::new(threads + 1));
    let measured = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (phc, done, measured) = (phc.clone(), done.clone(), measured.clone());
            std::thread::spawn(move || {
                for j in 0..3 {
                    assert!(!mailstore::verify_password(&phc, &format!("wrong{i}{j}")));
                }
                done.wait();
                measured.wait();
            })
        })
        .collect();
    done.wait();
    let after = rss_kib();
    measured.wait();
    for h in handles {
        h.join().unwrap();
    }
    // Four threads keeping their area would hold 64 MiB more.
    assert!(
        after < before + 12 * 1024,
        "RSS grew from {before} KiB to {after} KiB after verifying on {threads} threads"
    );
}
