//! TCP connections for tests: to a server, or from a chosen source address
//! (127.0.0.2 is not local to a server on 127.0.0.1, which changes what
//! the servers allow). Every connection has a [`READ_TIMEOUT`].

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long a test waits for any read before it fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection to `to` with a [`READ_TIMEOUT`].
pub fn connect(to: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(to).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}

/// A TCP connection to `to` from the address `from` (port chosen by the
/// kernel), with a [`READ_TIMEOUT`].
pub fn connect_from(from: IpAddr, to: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::new(from, 0).into()).unwrap();
    sock.connect(&to.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    s
}
