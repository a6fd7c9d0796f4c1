//! SIGTERM / SIGINT handling shared by every binary: the first signal asks
//! each server to shut down gracefully; a second one exits at once (every
//! acknowledged message is already durable, so nothing acknowledged is lost).

use crate::ShutdownHandle;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io;

/// Spawn a thread that turns SIGTERM/SIGINT into [`ShutdownHandle::shutdown`].
///
/// # Errors
/// If the signal handlers cannot be installed.
pub fn shutdown_on_signals(handles: Vec<ShutdownHandle>) -> io::Result<()> {
    let mut signals = Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
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
