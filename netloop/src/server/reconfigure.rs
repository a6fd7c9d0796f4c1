//! Changing a running server's settings (a configuration reload, SIGHUP):
//! a [`Reconfigure`] handle queues a change, and the loop applies it on its
//! own thread between two turns, to the [`Service`] (which makes the
//! sessions of new connections) and to the loop's [`Config`] (connection
//! limits, timeouts, TLS). Open connections keep the sessions they have:
//! nothing is dropped, and each goes on with the settings it started with.

use super::{Config, Server};
use crate::Service;
use mio::Waker;
use std::sync::{Arc, Mutex, PoisonError};

/// One queued change.
pub(super) type Change<S> = Box<dyn FnOnce(&mut S, &mut Config) + Send>;

/// Changes waiting for the loop.
pub(super) type Pending<S> = Arc<Mutex<Vec<Change<S>>>>;

/// Queues changes for a running [`Server`]. Cloneable and `Send`.
pub struct Reconfigure<S> {
    pending: Pending<S>,
    waker: Arc<Waker>,
}

impl<S> Clone for Reconfigure<S> {
    fn clone(&self) -> Self {
        Reconfigure {
            pending: Arc::clone(&self.pending),
            waker: Arc::clone(&self.waker),
        }
    }
}

impl<S> Reconfigure<S> {
    /// Run `change` on the loop thread with the service and the loop's
    /// settings, before the loop next accepts a connection.
    pub fn apply(&self, change: impl FnOnce(&mut S, &mut Config) + Send + 'static) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(change));
        let _ = self.waker.wake();
    }
}

impl<S: Service> Server<S> {
    /// A handle through which the service and the settings can be changed
    /// while the server runs.
    pub fn reconfigure_handle(&self) -> Reconfigure<S> {
        Reconfigure {
            pending: Arc::clone(&self.changes),
            waker: Arc::clone(&self.waker),
        }
    }

    /// Apply the queued changes (loop thread). A new TLS configuration
    /// gets this server's own session cache and ALPN ids, as at bind.
    pub(super) fn apply_changes(&mut self) {
        let changes =
            std::mem::take(&mut *self.changes.lock().unwrap_or_else(PoisonError::into_inner));
        for change in changes {
            let before = self.config.tls.clone();
            change(&mut self.service, &mut self.config);
            let replaced = match (&before, &self.config.tls) {
                (Some(old), Some(new)) => !Arc::ptr_eq(old, new),
                (None, Some(_)) => true,
                _ => false,
            };
            if replaced {
                if let Some(tls) = &self.config.tls {
                    self.config.tls = Some(crate::tls::per_server(tls, self.service.alpn()));
                }
            }
        }
    }
}
