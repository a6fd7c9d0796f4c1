//! Graceful shutdown: the [`ShutdownHandle`] that asks for it, telling every
//! session ([`Session::on_shutdown`]), and the grace period after which the
//! remaining connections are closed.
//!
//! [`Session::on_shutdown`]: crate::Session::on_shutdown

use super::Server;
use crate::{Service, Session};
use mio::Waker;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Asks a running [`Server`] to shut down. Cloneable, `Send`, `Sync`.
#[derive(Clone)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl ShutdownHandle {
    /// Stop accepting, let sessions say goodbye, finish in-flight work.
    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

impl<S: Service> Server<S> {
    /// A handle that makes [`Server::run`] shut down gracefully and return.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            flag: Arc::clone(&self.stop),
            waker: Arc::clone(&self.waker),
        }
    }

    pub(super) fn begin_shutdown(&mut self) {
        log::info!("shutting down: no longer accepting connections");
        self.stopping_since = Some(Instant::now());
        for (l, _) in &mut self.listeners {
            let _ = self.poll.registry().deregister(l);
        }
        self.listeners.clear();
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self.conns.get(key).is_some_and(|c| c.closing) {
                continue;
            }
            self.with_session(key, |s, io| s.on_shutdown(io));
            if let Some(c) = self.conns.get_mut(key) {
                if !c.closing {
                    c.shutdown_pending = true;
                }
            }
            self.flush(key);
        }
    }

    /// Once shutdown has begun: true when the loop may return, because every
    /// connection is closed or the grace period ended (then the rest are
    /// closed now).
    pub(super) fn shutdown_finished(&mut self) -> bool {
        let Some(since) = self.stopping_since else {
            return false;
        };
        if self.conns.is_empty() {
            return true;
        }
        if since.elapsed() >= self.config.shutdown_grace {
            log::warn!(
                "shutdown grace ended; closing {} connections",
                self.conns.len()
            );
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for k in keys {
                self.remove(k);
            }
            return true;
        }
        false
    }
}
