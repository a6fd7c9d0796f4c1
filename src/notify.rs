//! Readiness notification for a service manager (sd_notify(3), the
//! protocol of systemd's `Type=notify` and `Type=notify-reload`): one
//! datagram per state change to the unix socket named in `NOTIFY_SOCKET`
//! (a path, or `@name` for an abstract socket). `READY=1` once the
//! listeners are bound, `RELOADING=1` with `MONOTONIC_USEC=` then `READY=1`
//! around a reload, `STOPPING=1` when shutdown begins, and `STATUS=` lines
//! for `systemctl status`. Without `NOTIFY_SOCKET` nothing is sent; a
//! failure to send is logged once per message and otherwise ignored (the
//! servers run on).

use std::os::unix::net::UnixDatagram;

/// Send `state` (newline-separated `KEY=VALUE` lines) to the service
/// manager, if there is one.
pub fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let r = UnixDatagram::unbound().and_then(|sock| {
        let name = path.as_encoded_bytes();
        match name.strip_prefix(b"@") {
            Some(abstract_name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
            None => sock.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = r {
        log::warn!(
            "cannot notify the service manager at {}: {e}",
            path.to_string_lossy()
        );
    }
}

/// `RELOADING=1` with the time the reload began on CLOCK_MONOTONIC, in
/// microseconds (systemd ≥ 253 wants it to tell this reload from another).
pub fn reloading() {
    send(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
        monotonic_usec()
    ));
}

/// CLOCK_MONOTONIC now, in microseconds.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer
    // given; CLOCK_MONOTONIC exists on every Linux.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if r != 0 {
        return 0;
    }
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}
