//! Admitting and removing connections: accepting from a listener, the total
//! and per-IP connection limits (refused clients get the service's busy
//! reply), implicit TLS set-up, and the bookkeeping ([`Server::remove`])
//! that undoes an accept.

use super::conn::Conn;
use super::{Server, FIRST_CONN};
use crate::{Completer, ConnInfo, Service, Session};
use mio::{Interest, Token};
use rustls::ServerConnection;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;

impl<S: Service> Server<S> {
    /// Accept every connection waiting on listener `idx`: refuse those over
    /// a limit, open a session for the others and let it greet.
    pub(super) fn accept(&mut self, idx: usize) {
        loop {
            let Some((listener, implicit_tls)) = self.listeners.get(idx) else {
                return;
            };
            let implicit_tls = *implicit_tls;
            let (mut stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("accept failed: {e}");
                    return;
                }
            };
            let local = stream.local_addr().unwrap_or(peer);
            let protocol = self.service.protocol(implicit_tls);
            if self.at_limit(peer, local) {
                metrics::connection_refused(protocol);
                log::info!("refusing {peer}: connection limit reached");
                // Best effort: a fresh socket's send buffer is empty. (On an
                // implicit-TLS listener the client cannot read plaintext; it
                // sees the connection close, which is all we can offer.)
                if !implicit_tls {
                    let _ = stream.write(&self.service.busy_reply());
                }
                continue;
            }
            let tls = match (implicit_tls, &self.config.tls) {
                (true, Some(cfg)) => match ServerConnection::new(Arc::clone(cfg)) {
                    Ok(t) => Some(Box::new(t)),
                    Err(e) => {
                        log::warn!("TLS set-up for {peer} failed: {e}");
                        continue;
                    }
                },
                _ => None,
            };
            let _ = stream.set_nodelay(true);
            let id = self.next_id;
            self.next_id += 1;
            let info = ConnInfo { id, peer, local };
            let session = self.service.open(&info);
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            if let Err(e) = self.poll.registry().register(
                &mut stream,
                Token(FIRST_CONN + key),
                Interest::READABLE,
            ) {
                log::warn!("cannot register {peer}: {e}");
                continue;
            }
            let completer = Completer {
                id,
                tx: self.done_tx.clone(),
                waker: Arc::clone(&self.wake),
            };
            entry.insert(Conn::new(
                stream,
                tls,
                session,
                info,
                self.config.idle_timeout,
                completer,
                metrics::connection_opened(protocol),
            ));
            self.by_id.insert(id, key);
            *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
            let shutting_down = self.stopping_since.is_some();
            self.with_session(key, |s, io| s.on_open(io));
            if shutting_down {
                self.with_session(key, |s, io| s.on_shutdown(io));
            }
            self.process(key);
        }
    }

    /// True when a client at `peer` (connected to our `local`) must be
    /// refused: connections in total are at [`Config::max_connections`], or
    /// this non-local address is at [`Config::max_per_ip`].
    ///
    /// [`Config::max_connections`]: super::Config::max_connections
    /// [`Config::max_per_ip`]: super::Config::max_per_ip
    fn at_limit(&self, peer: SocketAddr, local: SocketAddr) -> bool {
        let is_local = local.ip() == peer.ip();
        let per_ip = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
        self.conns.len() >= self.config.max_connections
            || (self.config.max_per_ip > 0 && !is_local && per_ip >= self.config.max_per_ip)
    }

    /// Forget a connection (socket deregistered and closed, its per-IP
    /// count released). Does nothing if it is already gone.
    pub(super) fn remove(&mut self, key: usize) {
        if !self.conns.contains(key) {
            return;
        }
        let mut c = self.conns.remove(key);
        let _ = self.poll.registry().deregister(&mut c.stream);
        self.by_id.remove(&c.info.id);
        let ip = c.info.peer.ip();
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}
