//! Carrying out [`Plan`]s inside the delivery's writer transaction: the
//! copies filed (the original stored once for every user who keeps it),
//! ids remembered (a vacation reply is sent only by the delivery that
//! remembered its id first), messages sent (to local users straight into
//! their INBOX, without running their scripts again; elsewhere through
//! the outbound queue), rejects bounced (RFC 5429 §2.1: a DSN to the
//! sender), and a failed script reported to its user once per version.

use crate::{Delivery, Plan};
use mailstore::{Filing, Flags, NewMessage, OutMessage, OutRcpt, PreparedMessage, Resolution, Tx};

/// What the delivery around the plans knows.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Our host name (for the DSN and notices).
    pub hostname: &'a str,
    /// The delivery's queue id (ids of queued sends are made from it).
    pub qid: &'a str,
    /// The envelope sender, "" for `<>`.
    pub sender: &'a str,
    /// Whether the outbound queue is on (else sends elsewhere are
    /// dropped with a log line, and the message is also kept).
    pub outbound: bool,
    /// INTERNALDATE for stored copies.
    pub internal_date: i64,
}

/// What [`apply`] did, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Copies filed.
    pub filed: usize,
    /// Messages sent or queued.
    pub sent: usize,
    /// Recipients whose scripts rejected the message.
    pub rejected: usize,
}

/// Carry out `plans` (one per local recipient) for the message
/// `original`, in the caller's transaction.
///
/// # Errors
/// Store errors (the whole delivery is then not committed).
pub fn apply(
    tx: &mut Tx<'_>,
    original: &PreparedMessage,
    plans: &[(Delivery, Plan)],
    cx: &Context<'_>,
) -> mailstore::Result<Applied> {
    let mut done = Applied::default();
    let mut keep_original: Vec<Filing> = Vec::new();
    let mut seq = 0;
    for (d, plan) in plans {
        if let Some((name, error)) = &plan.error {
            log::warn!(
                "sieve: script {name:?} of {} failed: {error}; kept in INBOX",
                d.user_address
            );
            let print = plan.script.as_ref().map_or(0, |s| s.1);
            let id = format!("_error:{name}:{print:x}");
            if tx.remember_sieve_id(d.user, &id, i64::MAX)? {
                let notice = error_notice(cx, &d.user_address, name, error);
                tx.deliver(&notice, &[d.user])?;
            }
        }
        let mut fresh: Vec<&str> = Vec::new();
        for (id, expires) in &plan.remember {
            if tx.remember_sieve_id(d.user, id, *expires)? {
                fresh.push(id);
            }
        }
        if let Some(reason) = &plan.reject {
            done.rejected += 1;
            bounce(tx, original, d, reason, cx, &mut seq)?;
        } else {
            for (message, filing) in &plan.filings {
                done.filed += 1;
                match message.and_then(|i| plan.created.get(i)) {
                    None => keep_original.push(filing.clone()),
                    Some(raw) => {
                        let msg = prepared(raw.clone(), cx.internal_date)?;
                        tx.deliver_filed(&msg, std::slice::from_ref(filing))?;
                    }
                }
            }
        }
        for send in &plan.sends {
            if send.guard.as_deref().is_some_and(|g| !fresh.contains(&g)) {
                continue;
            }
            let raw = match send.message.and_then(|i| plan.created.get(i)) {
                Some(raw) => raw.clone(),
                None => original.raw().to_vec(),
            };
            let from = if send.vacation { "" } else { cx.sender };
            if !deliver_or_queue(tx, &send.to, from, raw, cx, &mut seq)? && !send.vacation {
                // A redirect that cannot go anywhere: keep the message.
                keep_original.push(Filing {
                    user: d.user,
                    mailbox: "INBOX".into(),
                    flags: Flags::empty(),
                    create: false,
                });
            }
            done.sent += 1;
        }
    }
    if !keep_original.is_empty() {
        tx.deliver_filed(original, &keep_original)?;
    }
    Ok(done)
}

fn prepared(raw: Vec<u8>, internal_date: i64) -> mailstore::Result<PreparedMessage> {
    PreparedMessage::new(NewMessage { raw, internal_date })
}

/// Send `raw` to `to`: local users get it in their INBOX, other hosts
/// through the outbound queue. False if it could go nowhere.
fn deliver_or_queue(
    tx: &mut Tx<'_>,
    to: &str,
    from: &str,
    raw: Vec<u8>,
    cx: &Context<'_>,
    seq: &mut usize,
) -> mailstore::Result<bool> {
    let (users, forward) = match tx.route(to)? {
        Resolution::Route(r) => (r.users, r.forward),
        Resolution::Unknown => (Vec::new(), vec![to.to_owned()]),
        Resolution::Refused(why) => {
            log::warn!("sieve: not sent to <{to}>: {why}");
            return Ok(false);
        }
    };
    let mut sent = false;
    if !users.is_empty() {
        let msg = prepared(raw.clone(), cx.internal_date)?;
        let filings: Vec<Filing> = users
            .iter()
            .map(|&user| Filing {
                user,
                mailbox: "INBOX".into(),
                flags: Flags::empty(),
                create: false,
            })
            .collect();
        tx.deliver_filed(&msg, &filings)?;
        sent = true;
    }
    if !forward.is_empty() {
        if cx.outbound {
            *seq += 1;
            tx.enqueue(&OutMessage {
                qid: format!("{}.S{seq}", cx.qid),
                sender: from.to_owned(),
                raw,
                ret: None,
                envid: None,
                rcpts: forward
                    .into_iter()
                    .map(|addr| OutRcpt {
                        addr,
                        notify: None,
                        orcpt: None,
                    })
                    .collect(),
            })?;
            sent = true;
        } else {
            log::warn!("sieve: not sent to <{to}>: outbound delivery is off");
        }
    }
    Ok(sent)
}

/// RFC 5429 §2.1: the sender hears of a reject by a DSN (the SMTP
/// transaction is over when other recipients took the message).
fn bounce(
    tx: &mut Tx<'_>,
    original: &PreparedMessage,
    d: &Delivery,
    reason: &str,
    cx: &Context<'_>,
    seq: &mut usize,
) -> mailstore::Result<()> {
    if cx.sender.is_empty() {
        log::info!(
            "sieve: {} rejected a message from <>: no report",
            d.user_address
        );
        return Ok(());
    }
    let raw = outbound::dsn::build(&outbound::dsn::Report {
        hostname: cx.hostname,
        to: cx.sender,
        qid: cx.qid,
        envid: None,
        arrival: cx.internal_date,
        action: outbound::dsn::Action::Failed,
        rcpts: &[outbound::dsn::Failed {
            addr: d.rcpt.clone(),
            orcpt: None,
            status: "5.7.1".into(),
            remote: None,
            diagnostic: format!("550 5.7.1 {}", one_line(reason)),
        }],
        original: original.raw(),
        headers_only: false,
    });
    deliver_or_queue(tx, cx.sender, "", raw, cx, seq)?;
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The message a user gets once when their script fails.
fn error_notice(cx: &Context<'_>, user: &str, name: &str, error: &str) -> NewMessage {
    let date = outbound::dsn::rfc5322_date(cx.internal_date);
    let raw = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n\
         To: <{user}>\r\n\
         Subject: Your Sieve script \"{name}\" failed\r\n\
         Date: {date}\r\n\
         Message-ID: <{qid}.sieve-error@{host}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Your active Sieve script \"{name}\" failed while filing a message:\r\n\r\n\
         \x20   {error}\r\n\r\n\
         The message was kept in your INBOX, and so will be later messages\r\n\
         the script fails on. You are told once for each version of the script.\r\n",
        host = cx.hostname,
        qid = cx.qid,
        error = one_line(error),
    );
    NewMessage {
        raw: raw.into_bytes(),
        internal_date: cx.internal_date,
    }
}
