//! `mailbench hostile`: cost-versus-size curves for hostile messages
//! (issue 12). For every [`hostile::Shape`] and size, what delivery
//! computes from such a message — [`mailstore::PreparedMessage::new`], the
//! store's MIME parse, envelope, structure and search text — is timed, and
//! its peak memory measured, each case in a fresh child process
//! (`mailbench hostile-one SHAPE SIZE`) so that the high-water mark of one
//! case does not hide the next one's.
//!
//! Peak RSS is the child's `VmHWM` after the parse minus its `VmHWM`
//! before the message was generated, so it includes the message itself
//! (hence RSS/size of at least 1). The high-water mark is reset
//! (`/proc/self/clear_refs`, "5") after generating, so the generator's own
//! transient buffers do not count.
//!
//! Parse time is the median of several parses (enough to parse about
//! 32 MiB in all, at least 3), each on a fresh copy of the message; the
//! first parse, on fresh memory, is the one whose RSS is measured.
//!
//! With `--smtp ADDR` each message is also delivered over SMTP to a
//! running server, and the time from the end of DATA (the final dot
//! written) to the reply is reported with the reply's code and text: a
//! message over the server's size limit gets `552`, one with a line over
//! its line limit `500`.

use ::hostile::Shape;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// The sizes measured by default.
pub const DEFAULT_SIZES: &str = "1KiB,16KiB,256KiB,1MiB,4MiB,25MiB";

/// Options of `mailbench hostile`.
pub struct Opts {
    /// Shapes to measure (all when empty).
    pub shapes: Vec<Shape>,
    /// Target sizes in bytes.
    pub sizes: Vec<usize>,
    /// Also deliver each message to this SMTP server.
    pub smtp: Option<String>,
    /// Envelope sender for `smtp`.
    pub from: String,
    /// Recipient for `smtp`.
    pub to: String,
    /// Print one JSON object instead of a table.
    pub json: bool,
}

/// A size: bytes, or a number followed by `K`/`KiB`/`M`/`MiB` (binary).
pub fn parse_size(s: &str) -> Result<usize> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| anyhow!("bad size {s:?} (e.g. 1024, 16KiB, 25MiB)"))?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        _ => bail!("bad size unit in {s:?} (use KiB or MiB)"),
    };
    n.checked_mul(mult).context("size overflows")
}

/// A shape by its name (see `hostile::Shape::name`).
pub fn parse_shape(s: &str) -> Result<Shape> {
    Shape::from_name(s).ok_or_else(|| {
        let names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
        anyhow!("unknown shape {s:?}; one of: {}", names.join(", "))
    })
}

fn human(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{}MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{}KiB", bytes / 1024)
    } else {
        format!("{bytes}B")
    }
}

/// A `Vm...:` figure of /proc/self/status, in KiB.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/self/status"))
}

/// Reset VmHWM to the current RSS (Linux 4.0+); false where not allowed.
fn reset_hwm() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn parse_once(raw: Vec<u8>) -> Result<(Duration, mailstore::PreparedMessage)> {
    let t = Instant::now();
    let p = mailstore::PreparedMessage::new(mailstore::NewMessage {
        raw,
        internal_date: 0,
    })
    .context("PreparedMessage::new")?;
    Ok((t.elapsed(), p))
}

/// The child: measure one case and print it as one JSON line.
pub fn one(shape: &str, size: usize) -> Result<()> {
    let shape = parse_shape(shape)?;
    let base_hwm = status_kib("VmHWM")?;
    let raw = ::hostile::message(shape, size);
    let bytes = raw.len();
    let hwm_reset = reset_hwm();
    let rss_with_message = status_kib("VmRSS")?;
    let (first, prepared) = parse_once(raw)?;
    let peak_hwm = status_kib("VmHWM")?;
    drop(prepared);
    let reps = (32 * 1024 * 1024 / bytes.max(1)).clamp(3, 1000);
    let mut times = vec![first];
    for _ in 1..reps {
        let raw = ::hostile::message(shape, size);
        let (d, p) = parse_once(raw)?;
        drop(p);
        times.push(d);
    }
    times.sort();
    let median = times[times.len() / 2];
    let out = json!({
        "shape": shape.name(),
        "size": size,
        "bytes": bytes,
        "parse_ms": median.as_secs_f64() * 1000.0,
        "first_parse_ms": first.as_secs_f64() * 1000.0,
        "parses": reps,
        "peak_rss_kib": peak_hwm.saturating_sub(base_hwm),
        "parse_extra_kib": peak_hwm.saturating_sub(rss_with_message),
        "hwm_reset": hwm_reset,
    });
    println!("{out}");
    Ok(())
}

/// Run the child for one case and read its line.
fn measure(shape: Shape, size: usize) -> Result<Value> {
    let exe = std::env::current_exe().context("path of the mailbench binary")?;
    let out = Command::new(exe)
        .args(["hostile-one", shape.name(), &size.to_string()])
        .output()
        .context("run mailbench hostile-one")?;
    if !out.status.success() {
        bail!(
            "hostile-one {} {size} failed ({}): {}",
            shape.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().context("hostile-one printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("hostile-one output {line:?}"))
}

/// `raw` as DATA content: dot-stuffed (RFC 5321 §4.5.2), CRLF at the end,
/// then the end-of-data line.
fn data_content(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 64 + 8);
    let mut at_line_start = true;
    for &b in raw {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

struct Smtp {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Smtp {
    fn open(addr: &str) -> Result<Smtp> {
        let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
        // Long enough for a server parsing 25 MiB on a busy machine.
        s.set_read_timeout(Some(Duration::from_secs(300)))?;
        s.set_nodelay(true)?;
        let r = BufReader::new(s.try_clone()?);
        let mut c = Smtp { w: s, r };
        c.expect(220, "greeting")?;
        c.cmd("EHLO mailbench.localhost", 250)?;
        Ok(c)
    }

    /// One reply: (code, text of its last line).
    fn reply(&mut self) -> Result<(u16, String)> {
        loop {
            let mut line = String::new();
            if self.r.read_line(&mut line)? == 0 {
                bail!("connection closed");
            }
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            return Ok((code, line.trim_end().to_string()));
        }
    }

    fn expect(&mut self, want: u16, what: &str) -> Result<()> {
        let (code, text) = self.reply()?;
        if code != want {
            bail!("{what}: expected {want}, got {text}");
        }
        Ok(())
    }

    fn cmd(&mut self, line: &str, want: u16) -> Result<()> {
        self.w.write_all(format!("{line}\r\n").as_bytes())?;
        self.expect(want, line)
    }
}

/// What delivering one message over SMTP gave.
struct Delivery {
    /// From the final dot written to the reply.
    after_dot: Duration,
    /// From the first byte of DATA content written to the reply.
    data: Duration,
    code: u16,
    text: String,
}

/// Deliver `raw` in one connection.
fn deliver(addr: &str, from: &str, to: &str, raw: &[u8]) -> Result<Delivery> {
    let mut c = Smtp::open(addr)?;
    c.cmd(&format!("MAIL FROM:<{from}>"), 250)?;
    c.cmd(&format!("RCPT TO:<{to}>"), 250)?;
    c.cmd("DATA", 354)?;
    let content = data_content(raw);
    let start = Instant::now();
    if let Err(e) = c.w.write_all(&content) {
        // The server may have answered and closed before the end.
        return match c.reply() {
            Ok((code, text)) => Ok(Delivery {
                after_dot: Duration::ZERO,
                data: start.elapsed(),
                code,
                text: format!("{text} (before the end of DATA)"),
            }),
            Err(_) => Err(e).context("send DATA"),
        };
    }
    let dot = Instant::now();
    let (code, text) = c.reply()?;
    let (after_dot, data) = (dot.elapsed(), start.elapsed());
    let _ = c.cmd("QUIT", 221);
    Ok(Delivery {
        after_dot,
        data,
        code,
        text,
    })
}

fn f(v: &Value, k: &str) -> f64 {
    v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN)
}

/// Whether ms per MiB (or RSS per byte) grows with size: the value at the
/// largest size over the smallest value among sizes of 256 KiB and more
/// (below that, fixed costs dominate).
fn growth(rows: &[Value], key: &str) -> Option<f64> {
    let big: Vec<&Value> = rows
        .iter()
        .filter(|r| f(r, "bytes") >= 256.0 * 1024.0)
        .collect();
    let last = big
        .iter()
        .copied()
        .max_by(|a, b| f(a, "bytes").total_cmp(&f(b, "bytes")))?;
    let min = big.iter().map(|r| f(r, key)).fold(f64::INFINITY, f64::min);
    (min > 0.0 && min.is_finite()).then(|| f(last, key) / min)
}

/// Run every case and print the table (or JSON).
pub fn run(o: Opts) -> Result<()> {
    let shapes = if o.shapes.is_empty() {
        Shape::ALL.to_vec()
    } else {
        o.shapes.clone()
    };
    let mut cases: Vec<Value> = Vec::new();
    if !o.json {
        println!(
            "mailbench hostile: PreparedMessage::new (mailstore's parse on delivery), one child process per case"
        );
        let smtp_head = if o.smtp.is_some() {
            format!(" {:>10}  {}", "smtp ms", "smtp reply")
        } else {
            String::new()
        };
        println!(
            "{:<22} {:>7} {:>10} {:>10} {:>9} {:>10} {:>8}{smtp_head}",
            "shape", "size", "bytes", "parse ms", "ms/MiB", "peak MiB", "RSS/size"
        );
    }
    for &shape in &shapes {
        let mut rows = Vec::new();
        for &size in &o.sizes {
            let mut c = measure(shape, size)?;
            let bytes = f(&c, "bytes");
            let ms = f(&c, "parse_ms");
            let peak = f(&c, "peak_rss_kib") * 1024.0;
            let ms_per_mib = ms / (bytes / MIB);
            let ratio = peak / bytes;
            if let Value::Object(m) = &mut c {
                m.insert("ms_per_mib".into(), ms_per_mib.into());
                m.insert("rss_ratio".into(), ratio.into());
            }
            let mut smtp_cols = String::new();
            if let Some(addr) = &o.smtp {
                let raw = ::hostile::message(shape, size);
                let res = deliver(addr, &o.from, &o.to, &raw);
                if let Value::Object(m) = &mut c {
                    match &res {
                        Ok(d) => {
                            let ms = |t: Duration| t.as_secs_f64() * 1000.0;
                            m.insert("smtp_ms".into(), ms(d.after_dot).into());
                            m.insert("smtp_data_ms".into(), ms(d.data).into());
                            m.insert("smtp_code".into(), d.code.into());
                            m.insert("smtp_reply".into(), d.text.clone().into());
                        }
                        Err(e) => {
                            m.insert("smtp_error".into(), format!("{e:#}").into());
                        }
                    }
                }
                smtp_cols = match res {
                    Ok(d) => format!(" {:>10.1}  {}", d.after_dot.as_secs_f64() * 1000.0, d.text),
                    Err(e) => format!(" {:>10}  error: {e:#}", "-"),
                };
            }
            if !o.json {
                println!(
                    "{:<22} {:>7} {:>10} {:>10.3} {:>9.2} {:>10.2} {:>8.2}{smtp_cols}",
                    shape.name(),
                    human(size),
                    bytes as u64,
                    ms,
                    ms_per_mib,
                    peak / MIB,
                    ratio
                );
            }
            rows.push(c);
        }
        let time_growth = growth(&rows, "ms_per_mib");
        let rss_growth = growth(&rows, "rss_ratio");
        if !o.json {
            if let (Some(t), Some(m)) = (time_growth, rss_growth) {
                let verdict = if t > 2.0 || m > 2.0 {
                    "SUPERLINEAR?"
                } else {
                    "linear"
                };
                println!(
                    "{:<22} largest size vs best >= 256KiB: time/MiB x{t:.2}, RSS/size x{m:.2}: {verdict}",
                    ""
                );
            }
        }
        cases.extend(rows);
    }
    if o.json {
        let hwm_reset = cases
            .iter()
            .all(|c| c.get("hwm_reset").and_then(Value::as_bool) == Some(true));
        let obj = json!({
            "mode": "hostile",
            "what": "mailstore::PreparedMessage::new",
            "hwm_reset": hwm_reset,
            "cases": cases,
        });
        println!("{obj}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1KiB").ok(), Some(1024));
        assert_eq!(parse_size("25MiB").ok(), Some(25 * 1024 * 1024));
        assert_eq!(parse_size("4m").ok(), Some(4 * 1024 * 1024));
        assert_eq!(parse_size("123").ok(), Some(123));
        assert!(parse_size("1GiB").is_err());
        assert!(parse_size("KiB").is_err());
        assert_eq!(human(25 * 1024 * 1024), "25MiB");
        assert_eq!(human(16 * 1024), "16KiB");
    }

    #[test]
    fn every_shape_by_name() {
        for s in Shape::ALL {
            assert_eq!(parse_shape(s.name()).ok(), Some(s));
        }
        assert!(parse_shape("nope").is_err());
    }

    #[test]
    fn data_is_dot_stuffed_and_terminated() {
        assert_eq!(
            data_content(b".a\r\nb\r\n..\r\n"),
            b"..a\r\nb\r\n...\r\n.\r\n"
        );
        assert_eq!(data_content(b"x"), b"x\r\n.\r\n");
    }

    #[test]
    fn one_case_is_measured() {
        assert!(status_kib("VmHWM").is_ok_and(|k| k > 0));
        let (d, p) = parse_once(::hostile::message(Shape::FlatParts, 4096)).expect("parse");
        assert!(d < Duration::from_secs(10));
        assert!(p.raw().len() >= 4096);
    }
}
