#![allow(clippy::unwrap_used)]

//! Benchmarks (ignored; `cargo test --release -p mailauth --test bench --
//! --ignored --nocapture`, run by bench/auth.sh): the cost of DKIM signing
//! a 4 KiB message with each algorithm. Prints figures; asserts nothing
//! about time.

use mailauth::{Algorithm, Signer};
use std::time::Instant;

#[test]
#[ignore = "benchmark: prints figures"]
fn bench_dkim_signing() {
    let mut body = String::new();
    while body.len() < 4096 {
        body.push_str("A line of a message body, long enough to be typical.\r\n");
    }
    let msg = format!(
        "From: <a@a.test>\r\nTo: <b@b.test>\r\nSubject: bench\r\nDate: Sun, 6 Dec 2026 03:00:00 +0000\r\nMessage-ID: <1@a.test>\r\n\r\n{body}"
    );
    for algorithm in [Algorithm::Ed25519, Algorithm::Rsa] {
        let (private_key, public_key) = mailauth::generate(algorithm).unwrap();
        let signer = Signer::new(&[mailstore::DkimKey {
            domain: "a.test".into(),
            selector: "s".into(),
            algorithm: algorithm.as_str().into(),
            private_key,
            public_key,
            created: 0,
            active: true,
        }])
        .unwrap();
        let n = 2000;
        let t = Instant::now();
        for _ in 0..n {
            let h = signer.sign("a.test", msg.as_bytes()).unwrap();
            assert!(h.is_some());
        }
        let per = t.elapsed() / n;
        println!(
            "sign {}: {:.1} us per 4 KiB message ({:.0} msg/s on one core)",
            algorithm.as_str(),
            per.as_secs_f64() * 1e6,
            1.0 / per.as_secs_f64()
        );
    }
}
