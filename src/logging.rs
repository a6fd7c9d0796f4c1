//! Where the logs go and how they look (`minimail up --log-format`):
//!
//! - `text`: what a terminal shows, one line per record with its time and
//!   level (env_logger's format; `RUST_LOG` sets the levels);
//! - `journal`: for systemd's journal (and any service manager reading
//!   stderr the same way): no time of our own (the journal stamps each
//!   line), a syslog priority `<N>` at the start of the line as
//!   sd-daemon(3) describes (`<3>` error, `<4>` warning, `<6>` info,
//!   `<7>` debug);
//! - `json`: one JSON object per line (`ts`, `level`, `target`, `msg`) for
//!   log shippers;
//! - `auto` (the default): `journal` when stderr is the stream systemd
//!   named in `JOURNAL_STREAM` (its device and inode match), else `text`.
//!
//! The few lines `minimail up` prints for scripts to wait for (its
//! start-up line) go through [`say`], so they follow the format too.

use clap::ValueEnum;
use std::io::Write;
use std::sync::OnceLock;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `journal` under systemd (JOURNAL_STREAM names our stderr), else `text`.
    Auto,
    /// Time, level and message, for a terminal.
    Text,
    /// `<N>` syslog priority prefixes and no time stamps (sd-daemon(3)).
    Journal,
    /// One JSON object per line.
    Json,
}

/// The format chosen at start-up.
static CHOSEN: OnceLock<LogFormat> = OnceLock::new();

/// True when stderr is the journal stream systemd names in
/// `JOURNAL_STREAM` ("DEVICE:INODE", systemd.exec(5)): a child whose
/// stderr was redirected elsewhere does not pretend to be journald's.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Ok(want) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = want.split_once(':') else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// The syslog priority of a level (RFC 5424 §6.2.1).
fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Start logging to stderr in `format` (`RUST_LOG` sets the levels; info
/// by default). Call once.
pub fn init(format: LogFormat) {
    let format = match format {
        LogFormat::Auto if stderr_is_journal() => LogFormat::Journal,
        LogFormat::Auto => LogFormat::Text,
        f => f,
    };
    let _ = CHOSEN.set(format);
    let mut b = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    b.format_target(false);
    match format {
        LogFormat::Journal => {
            // Every line of a message gets the priority (the journal
            // takes each line as an entry of its own).
            b.format(|buf, r| {
                let p = priority(r.level());
                for line in r.args().to_string().lines() {
                    writeln!(buf, "<{p}>{line}")?;
                }
                Ok(())
            });
        }
        LogFormat::Json => {
            b.format(|buf, r| {
                let line = serde_json::json!({
                    "ts": rfc3339_now(),
                    "level": r.level().as_str(),
                    "target": r.target(),
                    "msg": r.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
        LogFormat::Auto | LogFormat::Text => {}
    }
    let _ = b.try_init();
}

/// Print a line scripts wait for (`minimail up: smtp on ...`) on stderr:
/// as it is in the text format, as a notice (`<5>`) in the journal, as an
/// object (level `INFO`) in JSON.
pub fn say(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = match CHOSEN.get() {
        Some(LogFormat::Journal) => writeln!(err, "<5>{line}"),
        Some(LogFormat::Json) => writeln!(
            err,
            "{}",
            serde_json::json!({
                "ts": rfc3339_now(),
                "level": "INFO",
                "target": "minimail",
                "msg": line,
            })
        ),
        _ => writeln!(err, "{line}"),
    };
}

/// The time now, RFC 3339 in UTC with milliseconds
/// (`2026-12-06T05:30:00.123Z`).
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = mailstore::date::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        now.subsec_millis()
    )
}
