//! The scrape endpoint: `GET /metrics` over HTTP/1.1 (RFC 9112) on a
//! small thread of its own, never on a mail event loop.
//!
//! It answers one request per connection and closes (`Connection:
//! close`). Everything a client can send is bounded: the request head
//! ([`MAX_HEAD`], else 431), the time to send it ([`TIMEOUT`], else 408),
//! clients served at once ([`MAX_CLIENTS`], else 503). A malformed request
//! line gets 400, a method other than GET or HEAD 405 (with `Allow`), an
//! HTTP version other than 1.0/1.1 505, any path but `/metrics` 404.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest request head (request line and header fields) read.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long a client has to send its request head, and to take the answer.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// Clients served at once; more get 503 at once.
pub const MAX_CLIENTS: usize = 8;

/// The content type of the text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bind `addr` and serve scrapes on a thread named `metrics` until the
/// process ends. Returns the address bound (port 0 picks a free port).
///
/// # Errors
/// The bind failing (with the address in the message), or the thread not
/// starting.
pub fn serve(addr: SocketAddr) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || accept_loop(&listener))?;
    Ok(local)
}

fn accept_loop(listener: &TcpListener) {
    let busy = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and the like: do not spin.
                log::warn!("metrics: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(TIMEOUT));
            let _ =
                (&stream).write_all(&Response::status(503, "Service Unavailable").encode(false));
            continue;
        }
        let b = Arc::clone(&busy);
        let spawned = std::thread::Builder::new()
            .name("metrics-client".into())
            .spawn(move || {
                serve_one(stream);
                b.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            log::warn!("metrics: cannot start a client thread: {e}");
            busy.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Read one request head, answer it, close.
fn serve_one(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(TIMEOUT));
    let response = match read_head(&mut stream) {
        Ok(Some(head)) => respond(&head),
        Ok(None) => return,
        Err(r) => r,
    };
    let head_only = response.head_only;
    let _ = stream.write_all(&response.encode(head_only));
    let _ = stream.shutdown(Shutdown::Both);
}

/// The request head up to its blank line; `Ok(None)` when the client
/// closed first, `Err` with the answer when a limit was hit.
fn read_head(stream: &mut TcpStream) -> Result<Option<Vec<u8>>, Response> {
    let deadline = Instant::now() + TIMEOUT;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Err(Response::status(431, "Request Header Fields Too Large"));
        }
        // A client trickling bytes is cut off at the deadline, however
        // often they come.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(Response::status(408, "Request Timeout"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return Err(Response::status(408, "Request Timeout"));
            }
            Err(_) => return Ok(None),
        }
    }
}

/// Where the head ends (CRLF CRLF, or LF LF from a typed request).
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// An answer: status, extra header fields, body.
#[derive(Debug)]
struct Response {
    code: u16,
    reason: &'static str,
    fields: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    /// HEAD: the body is not sent (its length is).
    head_only: bool,
}

impl Response {
    fn status(code: u16, reason: &'static str) -> Response {
        Response {
            code,
            reason,
            fields: vec![("Content-Type", "text/plain; charset=utf-8")],
            body: format!("{code} {reason}\n").into_bytes(),
            head_only: false,
        }
    }

    fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.code,
            self.reason,
            self.body.len()
        )
        .into_bytes();
        for (k, v) in &self.fields {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// The answer to a request head (its request line decides everything).
fn respond(head: &[u8]) -> Response {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return Response::status(400, "Bad Request");
    };
    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Response::status(400, "Bad Request");
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !token(method) || !target.starts_with('/') || !version.starts_with("HTTP/") {
        return Response::status(400, "Bad Request");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Response::status(505, "HTTP Version Not Supported");
    }
    let path = target.split('?').next().unwrap_or(target);
    if path != "/metrics" {
        return Response::status(404, "Not Found");
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            let mut r = Response::status(405, "Method Not Allowed");
            r.fields.push(("Allow", "GET, HEAD"));
            return r;
        }
    };
    Response {
        code: 200,
        reason: "OK",
        fields: vec![("Content-Type", CONTENT_TYPE)],
        body: crate::render().into_bytes(),
        head_only,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(req: &str) -> u16 {
        respond(req.as_bytes()).code
    }

    #[test]
    fn requests_get_the_right_status() {
        assert_eq!(code("GET /metrics HTTP/1.1\r\nHost: x"), 200);
        assert_eq!(code("GET /metrics?x=1 HTTP/1.0"), 200);
        assert_eq!(code("HEAD /metrics HTTP/1.1"), 200);
        assert!(respond(b"HEAD /metrics HTTP/1.1").head_only);
        assert_eq!(code("GET / HTTP/1.1"), 404);
        assert_eq!(code("GET /metricsx HTTP/1.1"), 404);
        assert_eq!(code("POST /metrics HTTP/1.1"), 405);
        assert_eq!(code("DELETE /metrics HTTP/1.1"), 405);
        assert_eq!(code("GET /metrics HTTP/2.0"), 505);
        assert_eq!(code("GET /metrics"), 400);
        assert_eq!(code("GET  /metrics HTTP/1.1"), 400);
        assert_eq!(code("GET metrics HTTP/1.1"), 400);
        assert_eq!(code("G(T /metrics HTTP/1.1"), 400);
        assert_eq!(code("\u{0}\u{1}"), 400);
        assert_eq!(respond(b"\xff\xfe /metrics HTTP/1.1").code, 400);
    }

    #[test]
    fn head_end_takes_crlf_or_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(14));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn a_405_names_the_allowed_methods() {
        let r = String::from_utf8(respond(b"PUT /metrics HTTP/1.1").encode(false)).unwrap();
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
        assert!(r.contains("\r\nAllow: GET, HEAD\r\n"), "{r}");
    }
}
