//! Signal handling shared by every binary: the first SIGTERM / SIGINT asks
//! each server to shut down gracefully; a second one exits at once (every
//! acknowledged message is already durable, so nothing acknowledged is lost).
//! SIGHUP (a closed terminal, `systemctl reload`, certbot's deploy hook)
//! never ends the process: it re-reads the TLS certificates
//! ([`crate::tls::reload_all`]) and logs what it did.

use crate::ShutdownHandle;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;

/// SIGHUP: re-read the TLS certificates, saying what happened.
fn reload() {
    let results = crate::tls::reload_all();
    if results.is_empty() {
        log::info!("SIGHUP: nothing to reload (no TLS certificate from files)");
    }
    for (cert, r) in results {
        match r {
            Ok(()) => log::info!("SIGHUP: reloaded TLS certificate {}", cert.display()),
            Err(e) => log::error!("SIGHUP: kept the old TLS certificate: {e}"),
        }
    }
}

/// Spawn a thread that turns SIGTERM/SIGINT into [`ShutdownHandle::shutdown`]
/// and SIGHUP into a reload of the TLS certificates.
///
/// # Errors
/// If the signal handlers cannot be installed.
pub fn shutdown_on_signals(handles: Vec<ShutdownHandle>) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                if sig == SIGHUP {
                    reload();
                    continue;
                }
                seen += 1;
                if seen > 1 {
                    eprintln!("second signal ({sig}): exiting now");
                    std::process::exit(130);
                }
                log::info!("signal {sig}: shutting down");
                for h in &handles {
                    h.shutdown();
                }
            }
        })?;
    Ok(())
}
