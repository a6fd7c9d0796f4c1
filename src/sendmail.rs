//! `minimail sendmail` — the sendmail(1) command line that cron, PHP's
//! `mail()`, mailx and `git send-email --sendmail-cmd` expect, also when the
//! binary is invoked as `sendmail` (a symlink). The message is read from
//! standard input and delivered into the store for local recipients, as
//! SMTP delivery does (one transaction; the command exits 0 only after the
//! commit). Mail for other hosts is refused (sendmail is for local
//! mail); recipients are resolved through aliases and catch-alls as SMTP
//! does, and an alias's targets elsewhere go to the outbound queue. Each
//! local recipient's active Sieve script runs as on SMTP delivery
//! (fileinto, flags, vacation, redirect, reject: a message every local
//! recipient rejects is refused with exit 69 and the reason).
//!
//! Options (the ones those programs send): `-t` (recipients from the
//! To/Cc/Bcc fields, Bcc removed), `-i` / `-oi` (a line of a single dot
//! does not end the message), `-f ADDR` (envelope sender), `-F NAME` (the
//! sender's full name, for a From field the message lacks), `--` and the
//! recipients. Others sendmail accepts (`-oem`, `-odi`, `-B 8BITMIME`,
//! `-bm`, `-v`, ...) are accepted and ignored. The store is `--db PATH` /
//! `MINIMAIL_DB` (default `./minimail.db`); a recipient without a domain
//! gets `MINIMAIL_DOMAIN` (default `localhost`).
//!
//! Exit codes per sysexits(3): 0 delivered, 64 usage, 65 a message without
//! recipients, 67 an unknown local recipient, 69 a recipient on another
//! host (no outbound delivery yet) or a message rejected by Sieve, 74 the store cannot be opened, 75 the
//! store refused the delivery for now (busy, disk full, a recipient's
//! mailbox over quota; 69 if the message is larger than the quota).

use mailparse::MailHeaderMap;
use mailstore::{NewMessage, PreparedMessage, Resolution, Store, StoreError};
use std::io::Read;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

const EX_USAGE: i32 = 64;
const EX_DATAERR: i32 = 65;
const EX_NOUSER: i32 = 67;
const EX_UNAVAILABLE: i32 = 69;
const EX_IOERR: i32 = 74;
const EX_TEMPFAIL: i32 = 75;

/// The largest message read from standard input (as SMTP's default).
const MAX_MESSAGE: usize = 25 * 1024 * 1024;

/// What the command line asks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    from_headers: bool,
    ignore_dots: bool,
    sender: Option<String>,
    full_name: Option<String>,
    db: Option<PathBuf>,
    rcpts: Vec<String>,
}

/// Parse sendmail's options (values attached or separate: `-fADDR`,
/// `-f ADDR`).
fn parse(args: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str, rest: &str| -> Result<String, String> {
            if !rest.is_empty() {
                return Ok(rest.to_owned());
            }
            it.next()
                .cloned()
                .ok_or_else(|| format!("option {flag} needs a value"))
        };
        match arg.as_str() {
            "--" => {
                a.rcpts.extend(it.by_ref().cloned());
                break;
            }
            "--db" => a.db = Some(PathBuf::from(value("--db", "")?)),
            "-t" => a.from_headers = true,
            "-i" | "-oi" => a.ignore_dots = true,
            s if s.starts_with("-f") => a.sender = Some(value("-f", &s[2..])?),
            s if s.starts_with("-r") => a.sender = Some(value("-r", &s[2..])?),
            s if s.starts_with("-F") => a.full_name = Some(value("-F", &s[2..])?),
            s if s.starts_with("-B") || s.starts_with("-N") || s.starts_with("-R") => {
                let _ = value(&s[..2], &s[2..])?;
            }
            s if s.starts_with("-o") || s.starts_with("-b") || s == "-v" || s == "-m" => {}
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            s => a.rcpts.push(s.to_owned()),
        }
    }
    Ok(a)
}

/// The message from standard input: without `-i`, a line of a single dot
/// ends it (classic sendmail); bare LF line ends become CRLF.
fn read_message(input: &[u8], ignore_dots: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + input.len() / 32);
    for line in input.split_inclusive(|&b| b == b'\n') {
        let body = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if !ignore_dots && body == b"." {
            break;
        }
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The header block's end (offset of the empty line), or the length.
fn header_end(msg: &[u8]) -> usize {
    msg.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 2)
}

/// Recipients named in To, Cc and Bcc (`-t`), and the message without Bcc.
fn from_headers(msg: &[u8]) -> Result<(Vec<String>, Vec<u8>), String> {
    let (headers, _) =
        mailparse::parse_headers(msg).map_err(|e| format!("unreadable header: {e}"))?;
    let mut rcpts = Vec::new();
    for h in headers.iter() {
        let key = h.get_key_ref().to_ascii_lowercase();
        if key == "to" || key == "cc" || key == "bcc" {
            let list = mailparse::addrparse_header(h).map_err(|e| format!("{key}: {e}"))?;
            for a in list.iter() {
                match a {
                    mailparse::MailAddr::Single(s) => rcpts.push(s.addr.clone()),
                    mailparse::MailAddr::Group(g) => {
                        rcpts.extend(g.addrs.iter().map(|s| s.addr.clone()))
                    }
                }
            }
        }
    }
    // Drop Bcc fields (and their folded lines) from the header.
    let end = header_end(msg);
    let mut out = Vec::with_capacity(msg.len());
    let mut skipping = false;
    for line in msg[..end].split_inclusive(|&b| b == b'\n') {
        let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !folded {
            skipping = line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(&msg[end..]);
    Ok((rcpts, out))
}

fn has_field(msg: &[u8], name: &str) -> bool {
    mailparse::parse_headers(msg)
        .map(|(h, _)| h.get_first_header(name).is_some())
        .unwrap_or(false)
}

/// Run `minimail sendmail ARGS` (or `sendmail ARGS`); the exit code.
pub fn run(args: &[String]) -> i32 {
    let a = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("sendmail: {e}");
            return EX_USAGE;
        }
    };
    let mut input = Vec::new();
    let limit = (MAX_MESSAGE + 1) as u64;
    if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut input) {
        eprintln!("sendmail: cannot read the message: {e}");
        return EX_IOERR;
    }
    if input.len() > MAX_MESSAGE {
        eprintln!("sendmail: message larger than {MAX_MESSAGE} octets");
        return EX_DATAERR;
    }
    let mut msg = read_message(&input, a.ignore_dots);
    let mut rcpts = a.rcpts.clone();
    if a.from_headers {
        match from_headers(&msg) {
            Ok((more, without_bcc)) => {
                rcpts.extend(more);
                msg = without_bcc;
            }
            Err(e) => {
                eprintln!("sendmail: {e}");
                return EX_DATAERR;
            }
        }
    }
    if rcpts.is_empty() {
        eprintln!("sendmail: no recipients (give them, or -t to read To/Cc/Bcc)");
        return EX_DATAERR;
    }
    let domain = std::env::var("MINIMAIL_DOMAIN").unwrap_or_else(|_| "localhost".into());
    let login = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let sender = a
        .sender
        .clone()
        .unwrap_or_else(|| format!("{login}@{domain}"));
    let with_domain = |r: &str| {
        let r = r.trim().trim_start_matches('<').trim_end_matches('>');
        if r.contains('@') {
            r.to_owned()
        } else {
            format!("{r}@{domain}")
        }
    };
    let rcpts: Vec<String> = rcpts.iter().map(|r| with_domain(r)).collect();

    let db =
        a.db.clone()
            .or_else(|| std::env::var_os("MINIMAIL_DB").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./minimail.db"));
    let store = match Store::open(&db) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sendmail: cannot open the store {}: {e}", db.display());
            return EX_IOERR;
        }
    };
    let code = deliver(&store, &a, &sender, &rcpts, msg);
    store.shutdown();
    code
}

fn deliver(store: &Store, a: &Args, sender: &str, rcpts: &[String], msg: Vec<u8>) -> i32 {
    let lookup: Vec<String> = rcpts.to_vec();
    let users = store.read_sync(move |r| {
        lookup
            .iter()
            .map(|addr| Ok((addr.clone(), r.route(addr)?)))
            .collect::<mailstore::Result<Vec<_>>>()
    });
    let users = match users {
        Ok(u) => u,
        Err(e) => {
            eprintln!("sendmail: {e}");
            return EX_TEMPFAIL;
        }
    };
    let mut ids = Vec::new();
    let mut forward: Vec<mailstore::OutRcpt> = Vec::new();
    for (addr, route) in users {
        match route {
            Resolution::Route(route) => {
                for u in route.users {
                    if !ids.contains(&u) {
                        ids.push(u);
                    }
                }
                for f in route.forward {
                    if !forward.iter().any(|o| o.addr.eq_ignore_ascii_case(&f)) {
                        forward.push(mailstore::OutRcpt {
                            addr: f,
                            notify: None,
                            orcpt: Some(format!("rfc822;{addr}")),
                        });
                    }
                }
            }
            Resolution::Refused(why) => {
                eprintln!("sendmail: {addr}: {why}");
                return EX_UNAVAILABLE;
            }
            Resolution::Unknown if local_domain(store, &addr) => {
                eprintln!("sendmail: {addr}: no such user here");
                return EX_NOUSER;
            }
            Resolution::Unknown => {
                eprintln!("sendmail: {addr}: no outbound delivery configured (local users only)");
                return EX_UNAVAILABLE;
            }
        }
    }
    let now = SystemTime::now();
    let unix = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let date = smtpd::received::rfc5322_date(now);
    let id = smtpd::received::new_message_id();
    // The fields a submission adds when missing (RFC 6409 §8), and a
    // trace field naming this path (RFC 5321 §4.4).
    let mut head =
        format!("Return-Path: <{sender}>\r\nReceived: by minimail (sendmail) id {id}; {date}\r\n");
    if !has_field(&msg, "From") {
        match &a.full_name {
            Some(name) => head.push_str(&format!(
                "From: \"{}\" <{sender}>\r\n",
                name.replace('"', "")
            )),
            None => head.push_str(&format!("From: {sender}\r\n")),
        }
    }
    if !has_field(&msg, "Date") {
        head.push_str(&format!("Date: {date}\r\n"));
    }
    if !has_field(&msg, "Message-ID") {
        head.push_str(&format!("Message-ID: <{id}@minimail>\r\n"));
    }
    let mut raw = head.into_bytes();
    raw.extend_from_slice(&msg);
    let new = match PreparedMessage::new(NewMessage {
        raw,
        internal_date: unix,
    }) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sendmail: bad message: {e}");
            return EX_DATAERR;
        }
    };
    // Sieve, as on SMTP delivery: each local user's active script decides
    // (planned here, carried out in the delivery's transaction).
    let hostname = std::env::var("MINIMAIL_DOMAIN").unwrap_or_else(|_| "localhost".into());
    let plans = sieve_plans(store, &hostname, &new, &ids, sender);
    if let Some(plans) = &plans {
        if forward.is_empty() && !plans.is_empty() && plans.iter().all(|(_, p)| p.reject.is_some())
        {
            let why = plans[0].1.reject.clone().unwrap_or_default();
            eprintln!("sendmail: rejected by the recipient's Sieve script: {why}");
            return EX_UNAVAILABLE;
        }
    }
    let sender = sender.to_owned();
    let stored = store.write_sync(move |tx| {
        // Quotas: all or nothing (one exit code for the whole message).
        if let Some((user, _)) = tx.over_quota(&ids, new.raw().len() as u64)?.first() {
            tx.check_quota(*user, new.raw().len() as u64, 1)?;
        }
        match &plans {
            Some(plans) => {
                mailsieve::apply(
                    tx,
                    &new,
                    plans,
                    &mailsieve::Context {
                        hostname: &hostname,
                        qid: &id,
                        sender: &sender,
                        outbound: true,
                        internal_date: unix,
                    },
                )?;
            }
            None if !ids.is_empty() => {
                tx.deliver_prepared_to(&new, &ids, "INBOX")?;
            }
            None => {}
        }
        // Alias targets elsewhere: the outbound queue (`minimail up`'s
        // delivery engine sends them on).
        if !forward.is_empty() {
            tx.enqueue(&mailstore::OutMessage {
                qid: id,
                sender,
                raw: new.raw().to_vec(),
                ret: None,
                envid: None,
                rcpts: forward,
            })?;
        }
        Ok(())
    });
    match stored {
        Ok(_) => 0,
        Err(
            e @ StoreError::OverQuota {
                permanent: true, ..
            },
        ) => {
            eprintln!(
                "sendmail: not delivered: a recipient's quota is smaller than the message: {e}"
            );
            EX_UNAVAILABLE
        }
        Err(e @ StoreError::OverQuota { .. }) => {
            eprintln!("sendmail: not delivered, a recipient's mailbox is full: {e}");
            EX_TEMPFAIL
        }
        Err(e @ (StoreError::Full(_) | StoreError::Damaged(_))) => {
            eprintln!("sendmail: not delivered, try again later: {e}");
            EX_TEMPFAIL
        }
        Err(e) => {
            eprintln!("sendmail: not delivered: {e}");
            EX_TEMPFAIL
        }
    }
}

/// The Sieve plans of the local users `ids` for `msg` (their active
/// scripts run on this thread, as smtpd runs them on a reader thread);
/// `None` when there is nobody local or the store cannot be read (then
/// plain INBOX delivery: a script never costs a message).
fn sieve_plans(
    store: &Store,
    hostname: &str,
    msg: &PreparedMessage,
    ids: &[mailstore::UserId],
    sender: &str,
) -> Option<Vec<(mailsieve::Delivery, mailsieve::Plan)>> {
    if ids.is_empty() {
        return None;
    }
    let filter = mailsieve::Filter::new(hostname);
    let planned = store.read_sync(|r| {
        let mut plans = Vec::with_capacity(ids.len());
        for &user in ids {
            let address = r.user_by_id(user)?.map(|u| u.address).unwrap_or_default();
            let d = mailsieve::Delivery {
                user,
                user_address: address.clone(),
                rcpt: address,
                sender: sender.to_owned(),
            };
            let plan = filter.plan(r, msg.raw(), &d);
            plans.push((d, plan));
        }
        Ok(plans)
    });
    match planned {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("sendmail: Sieve planning failed, delivering to INBOX: {e}");
            None
        }
    }
}

/// Whether `addr`'s domain is one of the store's users' domains.
fn local_domain(store: &Store, addr: &str) -> bool {
    let Some((_, domain)) = addr.rsplit_once('@') else {
        return true;
    };
    let domain = domain.to_ascii_lowercase();
    store
        .read_sync(move |r| {
            Ok(r.users()?.iter().any(|u| {
                u.address
                    .rsplit_once('@')
                    .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain))
            }))
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_command_lines_programs_send_parse() {
        // git send-email --sendmail-cmd, cron, mailx, PHP.
        let a = parse(&args(&["-i", "-f", "a@x", "--", "b@y", "c@z"])).unwrap();
        assert!(a.ignore_dots && a.sender.as_deref() == Some("a@x"));
        assert_eq!(a.rcpts, ["b@y", "c@z"]);
        let a = parse(&args(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "bob"])).unwrap();
        assert_eq!(a.full_name.as_deref(), Some("CronDaemon"));
        assert_eq!(a.rcpts, ["bob"]);
        let a = parse(&args(&["-t", "-oi", "-fme@x"])).unwrap();
        assert!(a.from_headers && a.ignore_dots);
        assert_eq!(a.sender.as_deref(), Some("me@x"));
        assert!(parse(&args(&["-f"])).is_err());
        assert!(parse(&args(&["-Z"])).is_err());
    }

    #[test]
    fn dots_and_bare_newlines() {
        assert_eq!(read_message(b"a\nb\n.\nc\n", false), b"a\r\nb\r\n");
        assert_eq!(read_message(b"a\n.\nc", true), b"a\r\n.\r\nc\r\n");
    }

    #[test]
    fn bcc_is_read_and_removed() {
        let m = b"To: a@x, B <b@y>\r\nBcc: c@z,\r\n d@w\r\nSubject: s\r\n\r\nBcc: body\r\n";
        let (r, out) = from_headers(m).unwrap();
        assert_eq!(r, ["a@x", "b@y", "c@z", "d@w"]);
        assert_eq!(out, b"To: a@x, B <b@y>\r\nSubject: s\r\n\r\nBcc: body\r\n");
    }
}
