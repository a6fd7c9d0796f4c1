//! From message content to a durable delivery: feeding DATA and BDAT bytes
//! to their readers, enforcing the text-line and size limits once the
//! content has ended (RFC 5321 §4.5.3.1, RFC 1870), prepending the trace
//! headers (RFC 5321 §4.4), parsing on a store reader thread and
//! committing through the store's writer thread. The `250` of RFC 5321
//! §4.3.2 (DATA) and RFC 3030 (BDAT LAST) is sent only from
//! [`SmtpSession::commit_done`], i.e. after the commit is on disk.
//!
//! Mail from an authenticated session must carry a From header naming
//! only the user's own addresses (RFC 6409 §6.1, see `sender.rs`); that is
//! checked on the same reader thread, before anything is committed, and a
//! refusal is a 550 5.7.1 after the data.
//!
//! A failed commit is a temporary error that says what happened: a full
//! disk `452 4.3.1` (RFC 3463 X.3.1), a damaged store `451 4.3.0` with
//! that said, a database server out of reach (PostgreSQL restarting)
//! `451 4.3.0` saying the store is unavailable, anything else `451 4.3.0`
//! local error.

use crate::command::RcptParams;
use crate::data::{Content, DataReader};
use crate::received::{new_message_id, Trace};
use crate::reply::Reply;
use crate::session::{CommitInfo, Envelope, SmtpDone, SmtpSession, State, Waiting};
use mailstore::{NewMessage, PreparedMessage, StoreError};
use netloop::Io;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Messages up to this size are parsed on the loop thread (see `commit`).
const PARSE_INLINE_MAX: usize = 64 * 1024;

/// `SmtpDone::Committed` carries the failure as text (for the log), so the
/// one thing the reply depends on, the kind of store error, travels as a
/// tag in front of it: see [`failure_text`] and [`failure_reply`].
const FULL_TAG: &str = "[storage full] ";
const DAMAGED_TAG: &str = "[store damaged] ";
const FULL_QUOTA_TAG: &str = "[over quota] ";
const TOO_BIG_QUOTA_TAG: &str = "[over quota, permanent] ";
const UNAVAILABLE_TAG: &str = "[store unavailable] ";

/// The text a failed commit (or lookup) is reported with (tagged by kind).
pub(crate) fn failure_text(e: &StoreError) -> String {
    match e {
        StoreError::Full(_) => format!("{FULL_TAG}{e}"),
        StoreError::Damaged(_) => format!("{DAMAGED_TAG}{e}"),
        StoreError::Unavailable(_) => format!("{UNAVAILABLE_TAG}{e}"),
        StoreError::OverQuota {
            permanent: false, ..
        } => format!("{FULL_QUOTA_TAG}{e}"),
        StoreError::OverQuota {
            permanent: true, ..
        } => format!("{TOO_BIG_QUOTA_TAG}{e}"),
        _ => e.to_string(),
    }
}

/// Whether [`failure_text`] says the store's database is out of reach.
pub(crate) fn is_unavailable(text: &str) -> bool {
    text.starts_with(UNAVAILABLE_TAG)
}

/// The reply to a failed commit reported by [`failure_text`]; `rcpt`
/// names the recipient in a quota refusal.
fn failure_reply(text: &str, rcpt: &str) -> Reply {
    if text.starts_with(FULL_QUOTA_TAG) {
        metrics::smtp_refused(metrics::Refusal::OverQuota);
        Reply::mailbox_full(rcpt)
    } else if text.starts_with(TOO_BIG_QUOTA_TAG) {
        metrics::smtp_refused(metrics::Refusal::OverQuota);
        Reply::over_quota(rcpt)
    } else if text.starts_with(FULL_TAG) {
        metrics::smtp_refused(metrics::Refusal::StorageFull);
        Reply::insufficient_storage()
    } else if text.starts_with(DAMAGED_TAG) {
        metrics::smtp_refused(metrics::Refusal::LocalError);
        Reply::store_damaged()
    } else if text.starts_with(UNAVAILABLE_TAG) {
        metrics::smtp_refused(metrics::Refusal::LocalError);
        Reply::store_unavailable()
    } else {
        metrics::smtp_refused(metrics::Refusal::LocalError);
        Reply::local_error()
    }
}

impl SmtpSession {
    /// Feed buffered DATA bytes; true once the terminator was read.
    pub(crate) fn read_data(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        env: Envelope,
        mut reader: DataReader,
    ) -> bool {
        let (n, done) = reader.feed(io.input.as_slice());
        io.input.consume(n);
        if !done {
            if self.content_overdue(io) {
                return true;
            }
            self.state = State::Data(env, reader);
            return false;
        }
        let content = reader.finish();
        self.trace_content(content.size);
        io.set_timeout(self.shared.config.timeouts.command);
        self.end_of_content(io, env, content);
        true
    }

    /// Take buffered BDAT chunk bytes; true once the chunk is complete.
    pub(crate) fn read_chunk(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        mut env: Option<Envelope>,
        mut left: u64,
        size: u64,
        last: bool,
        failure: Option<Reply>,
    ) -> bool {
        let avail = io
            .input
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        if avail > 0 {
            if let Some(body) = env.as_mut().and_then(|e| e.bdat.as_mut()) {
                body.push(&io.input.as_slice()[..avail]);
            }
            io.input.consume(avail);
            left -= avail as u64;
        }
        if left > 0 {
            if self.content_overdue(io) {
                return true;
            }
            self.state = State::Chunk {
                env,
                left,
                size,
                last,
                failure,
            };
            return false;
        }
        self.trace_content(size);
        io.set_timeout(self.shared.config.timeouts.command);
        match (env, failure) {
            (Some(mut env), None) => {
                let too_big = env.bdat.as_ref().is_some_and(|b| b.too_big());
                if too_big {
                    // The transaction is over; later chunks get 503.
                    metrics::smtp_refused(metrics::Refusal::TooBig);
                    self.reply(io, &Reply::too_big(self.shared.config.max_message_size));
                } else if last {
                    let content = env.bdat.take().map(|b| b.finish());
                    let body = content.map(|c| c.body).unwrap_or_default();
                    self.commit(io, env, body);
                } else {
                    self.reply(io, &Reply::chunk_ok(size));
                    self.state = State::Envelope(env);
                }
            }
            (_, failure) => {
                let reply =
                    failure.unwrap_or_else(|| Reply::bad_sequence("no transaction in progress"));
                self.reply(io, &reply);
            }
        }
        true
    }

    /// True (with a 421 queued and the session closing) when content has
    /// been arriving for longer than `Timeouts::data_total`: a client
    /// trickling bytes is cut off; nothing of the message is kept.
    fn content_overdue(&mut self, io: &mut Io<'_, SmtpDone>) -> bool {
        let cfg = &self.shared.config;
        if self.content_since.elapsed() < cfg.timeouts.data_total {
            return false;
        }
        log::info!("#{}: message content too slow, closing", self.conn);
        self.reply(io, &Reply::timeout(&cfg.hostname));
        self.closing = true;
        true
    }

    /// DATA has ended: refuse over-limit content, else commit it.
    fn end_of_content(&mut self, io: &mut Io<'_, SmtpDone>, env: Envelope, content: Content) {
        let cfg = &self.shared.config;
        if content.line_too_long {
            log::info!(
                "#{}: message refused: line over {} octets",
                self.conn,
                cfg.max_text_line
            );
            metrics::smtp_refused(metrics::Refusal::LineTooLong);
            self.reply(io, &Reply::text_line_too_long(cfg.max_text_line));
        } else if content.too_big {
            log::info!("#{}: message refused: {} octets", self.conn, content.size);
            metrics::smtp_refused(metrics::Refusal::TooBig);
            self.reply(io, &Reply::too_big(cfg.max_message_size));
        } else {
            self.commit(io, env, content.body);
        }
    }

    /// The message is complete: check it first (mail from other hosts, when
    /// checks are on), else store it.
    fn commit(&mut self, io: &mut Io<'_, SmtpDone>, env: Envelope, body: Vec<u8>) {
        // Mail from other hosts (not an authenticated user) to local users
        // is checked first, off the event loop.
        if let Some(verifier) = &self.shared.config.verifier {
            if self.user.is_none() && env.rcpts.iter().any(|r| r.route.is_some()) {
                let check_env = mailauth::Envelope {
                    ip: self.peer.ip(),
                    helo: self
                        .helo
                        .as_ref()
                        .map_or_else(String::new, |h| h.name.clone()),
                    mail_from: match &env.from {
                        crate::parse::ReversePath::Null => String::new(),
                        crate::parse::ReversePath::Mailbox(m) => m.to_string(),
                    },
                };
                let completer = io.completer();
                verifier.spawn(body, check_env, move |verdict, body| {
                    completer.complete(SmtpDone::Checked(Box::new((verdict, body))))
                });
                self.waiting = Some(Waiting::Check(Box::new(env)));
                return;
            }
        }
        self.store_message(io, env, body, None);
    }

    /// The checks are done: refuse the message (DMARC reject) or store it
    /// with the verdict (in Junk for DMARC quarantine).
    pub(crate) fn checked(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        env: Envelope,
        body: Vec<u8>,
        mut verdict: mailauth::Verdict,
    ) {
        // The receiving domains' policies decide (strictest wins: one
        // transaction, one answer).
        let domains = env
            .rcpts
            .iter()
            .filter(|r| r.route.is_some())
            .map(|r| r.addr.rsplit_once('@').map_or("", |(_, d)| d));
        verdict.disposition = self.shared.config.auth_policy.decide(&verdict, domains);
        log::info!(
            "#{}: checks for message from {}: {} -> {}",
            self.conn,
            env.from,
            verdict.summary,
            match &verdict.disposition {
                mailauth::Disposition::Accept => "deliver",
                mailauth::Disposition::Quarantine => "Junk",
                mailauth::Disposition::Reject(_) => "refuse",
            }
        );
        if let mailauth::Disposition::Reject(why) = &verdict.disposition {
            log::info!("#{}: message from {} refused: {why}", self.conn, env.from);
            metrics::smtp_refused(metrics::Refusal::DmarcReject);
            self.reply(io, &Reply::dmarc_reject(why));
            return;
        }
        self.store_message(io, env, body, Some(verdict));
    }

    /// Prepend the trace headers (and a check verdict) and hand the
    /// message to the writer thread.
    fn store_message(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        env: Envelope,
        body: Vec<u8>,
        verdict: Option<mailauth::Verdict>,
    ) {
        let cfg = &self.shared.config;
        // A verdict in our name from outside must not survive (RFC 8601 §5).
        let body = match &verdict {
            Some(_) => mailauth::strip_forged_results(&body, &cfg.hostname),
            None => body,
        };
        let junk = verdict
            .as_ref()
            .is_some_and(|v| v.disposition == mailauth::Disposition::Quarantine);
        let id = new_message_id();
        let (helo, extended) = match &self.helo {
            Some(h) => (h.name.as_str(), h.extended),
            None => ("unknown", false),
        };
        let protocol = crate::tls::protocol_name(
            extended,
            env.params.smtputf8,
            io.is_tls(),
            self.user.is_some(),
        );
        let owner = self.user.as_ref().map(|u| u.address.clone());
        let from = env.from.to_string();
        let when = SystemTime::now();
        let trace = Trace {
            return_path: &from,
            helo,
            peer: self.peer.ip(),
            hostname: &cfg.hostname,
            protocol,
            id: &id,
            for_rcpt: match env.rcpts.as_slice() {
                [one] => Some(one.addr.as_str()),
                _ => None,
            },
            when,
            tls: io.tls_info(),
        };
        let mut raw = trace.headers();
        if let Some(v) = &verdict {
            raw.extend_from_slice(v.header.as_bytes());
        }
        let trace_len = raw.len();
        raw.extend_from_slice(&body);
        // Submission (RFC 6409 §8.2, §8.3): mail from an authenticated user
        // gets a Date and a Message-ID if it has none.
        let date = crate::received::rfc5322_date(when);
        let message_id = format!("<{id}@{}>", cfg.hostname);
        let size = body.len();
        drop(body);
        let users: Vec<mailstore::UserId> = env
            .rcpts
            .iter()
            .filter_map(|r| r.route.as_ref())
            .flat_map(|r| r.users.iter().copied())
            .collect();
        let remote = remote_rcpts(&env.rcpts);
        let locals = crate::filter::locals(&env.rcpts);
        // Local recipients who asked for NOTIFY=SUCCESS (RFC 3461 §6.2.1):
        // a "delivered" notice, committed with the delivery itself.
        let delivered: Vec<outbound::dsn::Failed> = env
            .rcpts
            .iter()
            .filter(|r| {
                r.route.as_ref().is_some_and(|r| !r.users.is_empty())
                    && wants_success(r.dsn.notify.as_deref())
            })
            .map(|r| outbound::dsn::Failed {
                addr: r.addr.clone(),
                orcpt: r.dsn.orcpt.clone(),
                status: "2.0.0".into(),
                remote: None,
                diagnostic: "250 2.0.0 delivered to mailbox".into(),
            })
            .collect();
        let ret = env.params.ret.map(|r| r.as_str().to_owned());
        // The queue keeps the bare path ("" for the null sender).
        let sender = match &env.from {
            crate::parse::ReversePath::Null => String::new(),
            crate::parse::ReversePath::Mailbox(m) => m.to_string(),
        };
        let internal_date = when
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let rcpt_dsn: Vec<(String, RcptParams)> = env
            .rcpts
            .iter()
            .map(|r| (r.addr.clone(), r.dsn.clone()))
            .collect();
        // Sieve (filter.rs): local mail, unless quarantined, goes through
        // the users' scripts.
        let filter = cfg.sieve.clone().filter(|_| !junk && !users.is_empty());
        let job = WriteJob {
            users,
            remote,
            locals,
            delivered,
            hostname: cfg.hostname.clone(),
            outbound: cfg.outbound,
            qid: id.clone(),
            sender,
            envid: env.params.envid.clone(),
            ret,
            rcpt_dsn,
            junk,
            internal_date,
        };
        self.waiting = Some(Waiting::Commit(CommitInfo {
            id,
            from,
            rcpts: env.rcpts.into_iter().map(|r| r.addr).collect(),
            size,
            started: env.started,
            handed: Instant::now(),
        }));
        let completer = io.completer();
        let store = self.shared.store.clone();
        let shared = self.shared.clone();
        // Check the From header and parse the MIME structure, then queue
        // the insert; the writer only writes rows. Small messages (most
        // mail) are parsed right here — tens of microseconds, cheaper than
        // a hand-off to another thread and back; larger ones on a store
        // reader thread so the loop never stalls on a big parse.
        let dkim = cfg
            .dkim
            .clone()
            .filter(|d| owner.as_deref().is_some_and(|u| d.signs_for(domain_of(u))));
        let signs = dkim.is_some();
        let postgres = store.is_postgres();
        let prepare = move || {
            let mut raw = raw;
            if let Some(user) = owner {
                if let Err(why) = crate::sender::check_header_from(&raw, &user) {
                    return Ok(Err(why));
                }
                let (at, add) =
                    crate::sender::missing_submission_fields(&raw[trace_len..], &date, &message_id);
                if !add.is_empty() {
                    raw.splice(trace_len + at..trace_len + at, add);
                }
                if let Some(signer) = &dkim {
                    sign(signer, &user, &mut raw, trace_len);
                }
            }
            PreparedMessage::new_for(NewMessage { raw, internal_date }, postgres).map(Ok)
        };
        let queue =
            move |prepared: mailstore::Result<Result<PreparedMessage, String>>| match prepared {
                Ok(Ok(msg)) => match filter {
                    Some(filter) => route(&shared, &store, filter, msg, job, completer),
                    None => job.write(&store, msg, None, completer),
                },
                Ok(Err(why)) => completer.complete(SmtpDone::Refused(why)),
                Err(e) => completer.complete(SmtpDone::Committed(Err(failure_text(&e)))),
            };
        // Signing (RSA: about a millisecond) stays off the event loop.
        if size <= PARSE_INLINE_MAX && !signs {
            queue(prepare());
        } else {
            self.shared
                .store
                .compute(prepare, move |p| queue(p.and_then(|p| p)));
        }
    }

    /// Every local recipient's Sieve script rejected the message (RFC
    /// 5429 §2.1: refused in the SMTP transaction); nothing was stored.
    pub(crate) fn commit_rejected(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        info: CommitInfo,
        why: &str,
    ) {
        log::info!(
            "#{} rejected by Sieve: message id={} from={}: {why}",
            self.conn,
            info.id,
            info.from
        );
        self.reply(io, &Reply::sieve_reject(why));
    }

    /// The message was refused before committing (header From).
    pub(crate) fn commit_refused(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        info: CommitInfo,
        why: &str,
    ) {
        log::info!(
            "#{} refused message id={} from={}: header From {why} not owned by {}",
            self.conn,
            info.id,
            info.from,
            self.user.as_ref().map_or("?", |u| u.address.as_str())
        );
        metrics::smtp_refused(metrics::Refusal::SenderNotOwned);
        self.reply(io, &Reply::header_from_not_owned(why));
    }

    /// The commit is durable (or failed): now, and only now, reply.
    pub(crate) fn commit_done(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        info: CommitInfo,
        result: Result<(), String>,
    ) {
        match result {
            Ok(()) => {
                log::info!(
                    "#{} accepted message id={} from={} to={} size={} elapsed={}ms",
                    self.conn,
                    info.id,
                    info.from,
                    info.rcpts
                        .iter()
                        .map(|r| format!("<{r}>"))
                        .collect::<Vec<_>>()
                        .join(","),
                    info.size,
                    Instant::now().duration_since(info.started).as_millis()
                );
                metrics::smtp_accepted(self.shared.config.submission);
                metrics::smtp_delivery(info.handed.elapsed());
                self.reply(io, &Reply::queued(&info.id));
            }
            Err(e) => {
                log::error!("#{}: delivery of {} failed: {e}", self.conn, info.id);
                let rcpt = info.rcpts.first().map_or("", String::as_str);
                self.reply(io, &failure_reply(&e, rcpt));
            }
        }
    }
}

/// Everything a delivery's write job needs besides the message and the
/// Sieve plans.
#[derive(Clone)]
struct WriteJob {
    /// The local users (an alias may name one twice).
    users: Vec<mailstore::UserId>,
    /// The outbound queue's recipients.
    remote: Vec<mailstore::OutRcpt>,
    /// Which address reached each local user.
    locals: Vec<crate::filter::Local>,
    /// Local recipients who asked for a "delivered" notice.
    delivered: Vec<outbound::dsn::Failed>,
    hostname: String,
    outbound: bool,
    qid: String,
    /// The envelope sender, "" for `<>`.
    sender: String,
    envid: Option<String>,
    ret: Option<String>,
    /// Each recipient's DSN parameters (NOTIFY, ORCPT).
    rcpt_dsn: Vec<(String, RcptParams)>,
    /// Quarantined: delivered to Junk (never planned).
    junk: bool,
    internal_date: i64,
}

/// Plans made by the users' Sieve scripts, one per local user.
type Plans = Vec<(mailsieve::Delivery, mailsieve::Plan)>;

impl WriteJob {
    /// Queue the delivery on the writer thread (`plans`: what the users'
    /// scripts decided, `None` for plain delivery) and report its commit.
    fn write(
        self,
        store: &mailstore::Store,
        msg: PreparedMessage,
        plans: Option<Plans>,
        completer: netloop::Completer<SmtpDone>,
    ) {
        // Rerunnable: on PostgreSQL a job that would take a user's lock
        // out of order (or lose a deadlock) is run again rather than
        // failed, so each run gets its own copy of the input.
        store.write_rerunnable(
            move |tx| self.clone().run(tx, &msg, plans.clone()),
            move |result| {
                completer.complete(SmtpDone::Committed(result.map_err(|e| failure_text(&e))))
            },
        );
    }

    /// The delivery, inside the writer's transaction.
    fn run(
        self,
        tx: &mut mailstore::Tx<'_>,
        msg: &PreparedMessage,
        mut plans: Option<Plans>,
    ) -> mailstore::Result<()> {
        // Quotas, exact here in the writer: recipients with no room are
        // left out (and told about in a DSN), or the whole message refused
        // if nobody else takes it.
        let mut users = self.users;
        let over = tx.over_quota(&users, msg.raw().len() as u64)?;
        if !over.is_empty() {
            users.retain(|u| !over.iter().any(|(o, _)| o == u));
            if let Some(p) = plans.as_mut() {
                p.retain(|(d, _)| !over.iter().any(|(o, _)| *o == d.user));
            }
            if users.is_empty() && self.remote.is_empty() {
                return tx.check_quota(over[0].0, msg.raw().len() as u64, 1);
            }
            quota_notice(
                tx,
                &QuotaNotice {
                    hostname: &self.hostname,
                    qid: &self.qid,
                    sender: &self.sender,
                    envid: self.envid.as_deref(),
                    ret_hdrs: self.ret.as_deref() == Some("HDRS"),
                    over: &over,
                    locals: &self.locals,
                    rcpts: &self.rcpt_dsn,
                    original: msg.raw(),
                    outbound: self.outbound,
                },
            )?;
        }
        if let Some(plans) = &plans {
            mailsieve::apply(
                tx,
                msg,
                plans,
                &mailsieve::Context {
                    hostname: &self.hostname,
                    qid: &self.qid,
                    sender: &self.sender,
                    outbound: self.outbound,
                    internal_date: self.internal_date,
                },
            )?;
        } else if !users.is_empty() {
            let mailbox = if self.junk { "Junk" } else { "INBOX" };
            tx.deliver_prepared_unreported(msg, &users, mailbox)?;
        }
        if !self.delivered.is_empty() && !self.sender.is_empty() {
            success_notice(
                tx,
                &SuccessNotice {
                    hostname: &self.hostname,
                    qid: &self.qid,
                    sender: &self.sender,
                    envid: self.envid.as_deref(),
                    rcpts: &self.delivered,
                    original: msg.raw(),
                    outbound: self.outbound,
                },
            )?;
        }
        if !self.remote.is_empty() {
            tx.enqueue(&mailstore::OutMessage {
                qid: self.qid,
                sender: self.sender,
                raw: msg.raw().to_vec(),
                ret: self.ret,
                envid: self.envid,
                rcpts: self.remote,
            })?;
        }
        Ok(())
    }
}

/// Deliver local mail under a Sieve filter. Planning runs the users'
/// scripts on a store reader thread before the commit; a user without an
/// active script gets the plan "keep in INBOX", which is exactly plain
/// delivery. So a delivery first goes straight to the writer,
/// whose job checks, inside its own transaction, whether any recipient
/// has an active script: if none does it delivers (one thread hop fewer:
/// loop -> writer instead of loop -> reader -> writer); if one does the
/// job writes nothing and hands the message back to be planned, and the
/// recipients are remembered ([`crate::recipients::SieveUsers`]) so their
/// later mail is planned first, as before. On PostgreSQL the check is one
/// statement in the writer's batch, where planning first was a read
/// transaction of four round trips per delivery.
fn route(
    shared: &crate::service::Shared,
    store: &mailstore::Store,
    filter: std::sync::Arc<mailsieve::Filter>,
    msg: PreparedMessage,
    job: WriteJob,
    completer: netloop::Completer<SmtpDone>,
) {
    if shared.sieve_users.any(&job.users) {
        return plan(
            shared.sieve_users.clone(),
            store,
            filter,
            msg,
            job,
            completer,
        );
    }
    let store2 = store.clone();
    let hint = shared.sieve_users.clone();
    let replan = completer.clone();
    // Rerunnable, as `WriteJob::write` (each run gets its own copy).
    store.write_rerunnable(
        move |tx| {
            let scripted = tx.users_with_active_script(&job.users)?;
            if !scripted.is_empty() {
                // Nothing written: planned first, then committed.
                return Ok(Some(Box::new((msg.clone(), job.clone(), scripted))));
            }
            job.clone().run(tx, &msg, None).map(|()| None)
        },
        move |result| match result {
            Ok(None) => completer.complete(SmtpDone::Committed(Ok(()))),
            Ok(Some(back)) => {
                let (msg, job, scripted) = *back;
                hint.add(&scripted);
                plan(hint, &store2, filter, msg, job, replan);
            }
            Err(e) => completer.complete(SmtpDone::Committed(Err(failure_text(&e)))),
        },
    );
}

/// Plan `msg` with the users' scripts on a reader thread, then commit
/// the plans (or refuse the message if every local recipient rejected
/// it). Users found to have no active script any more are forgotten by
/// `hint`.
fn plan(
    hint: std::sync::Arc<crate::recipients::SieveUsers>,
    store: &mailstore::Store,
    filter: std::sync::Arc<mailsieve::Filter>,
    msg: PreparedMessage,
    job: WriteJob,
    completer: netloop::Completer<SmtpDone>,
) {
    let others = !job.remote.is_empty();
    let store2 = store.clone();
    crate::filter::plan(
        store,
        filter,
        msg,
        job.locals.clone(),
        job.sender.clone(),
        others,
        move |planned| match planned {
            crate::filter::Planned::Commit(msg, plans) => {
                if let Some(plans) = &plans {
                    let unscripted: Vec<mailstore::UserId> = plans
                        .iter()
                        .filter(|(_, p)| p.script.is_none() && p.error.is_none())
                        .map(|(d, _)| d.user)
                        .collect();
                    hint.remove(&unscripted);
                }
                job.write(&store2, msg, plans, completer)
            }
            crate::filter::Planned::Rejected(why) => completer.complete(SmtpDone::Rejected(why)),
        },
    );
}

/// The recipients for the outbound queue: those of other hosts, and the
/// external targets of local aliases (each address once; a forwarded
/// copy keeps the recipient's NOTIFY and names it as ORCPT, RFC 3461
/// §4.2, so a bounce says which address it was sent to).
fn remote_rcpts(rcpts: &[crate::session::Recipient]) -> Vec<mailstore::OutRcpt> {
    let mut out: Vec<mailstore::OutRcpt> = Vec::new();
    for r in rcpts {
        let forwards: Vec<(String, Option<String>)> = match &r.route {
            None => vec![(r.addr.clone(), r.dsn.orcpt.clone())],
            Some(route) => route
                .forward
                .iter()
                .map(|f| {
                    let orcpt = r
                        .dsn
                        .orcpt
                        .clone()
                        .unwrap_or_else(|| format!("rfc822;{}", r.addr));
                    (f.clone(), Some(orcpt))
                })
                .collect(),
        };
        for (addr, orcpt) in forwards {
            if out.iter().any(|o| o.addr.eq_ignore_ascii_case(&addr)) {
                continue;
            }
            out.push(mailstore::OutRcpt {
                addr,
                notify: r.dsn.notify.clone(),
                orcpt,
            });
        }
    }
    out
}

/// True when a NOTIFY value asks for success notices.
fn wants_success(notify: Option<&str>) -> bool {
    notify.is_some_and(|n| n.split(',').any(|w| w.eq_ignore_ascii_case("SUCCESS")))
}

/// What a "delivered" notice is made of.
struct SuccessNotice<'a> {
    hostname: &'a str,
    qid: &'a str,
    sender: &'a str,
    envid: Option<&'a str>,
    rcpts: &'a [outbound::dsn::Failed],
    original: &'a [u8],
    outbound: bool,
}

/// Deliver (to a local sender) or queue (from `<>`, for a sender
/// elsewhere) the RFC 3464 "delivered" notice, with the original's header
/// only (RFC 3461 §4.3: RET is for failures). Without outbound delivery,
/// a notice for a remote sender is left out (logged).
fn success_notice(tx: &mut mailstore::Tx<'_>, n: &SuccessNotice<'_>) -> mailstore::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let raw = outbound::dsn::build(&outbound::dsn::Report {
        hostname: n.hostname,
        to: n.sender,
        qid: n.qid,
        envid: n.envid,
        arrival: now,
        action: outbound::dsn::Action::Delivered,
        rcpts: n.rcpts,
        original: n.original,
        headers_only: true,
    });
    send_notice(tx, n.qid, n.sender, raw, n.outbound, now)
}

/// What a notice about recipients over quota is made of.
struct QuotaNotice<'a> {
    hostname: &'a str,
    qid: &'a str,
    sender: &'a str,
    envid: Option<&'a str>,
    /// RET=HDRS: return the header only.
    ret_hdrs: bool,
    /// The users left out, and how they were over.
    over: &'a [(mailstore::UserId, mailstore::Fit)],
    /// Which address reached each local user.
    locals: &'a [crate::filter::Local],
    /// Each recipient's DSN parameters (NOTIFY, ORCPT).
    rcpts: &'a [(String, RcptParams)],
    original: &'a [u8],
    outbound: bool,
}

/// A failure DSN (RFC 3464) to the sender for local recipients whose
/// quota had no room while others took the message: delivered to a
/// local sender, queued for one elsewhere, left out (logged) for `<>`,
/// for NOTIFY without FAILURE (RFC 3461 §4.1), or without the queue.
fn quota_notice(tx: &mut mailstore::Tx<'_>, n: &QuotaNotice<'_>) -> mailstore::Result<()> {
    let mut failed = Vec::new();
    for (user, fit) in n.over {
        let Some(local) = n.locals.iter().find(|l| l.user == *user) else {
            continue;
        };
        let dsn = n
            .rcpts
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(&local.rcpt))
            .map(|(_, d)| d.clone())
            .unwrap_or_default();
        log::info!(
            "{}: <{}> left out: over quota{}",
            n.qid,
            local.rcpt,
            if *fit == mailstore::Fit::TooBig {
                " (larger than the quota)"
            } else {
                ""
            }
        );
        let wants = dsn
            .notify
            .as_deref()
            .is_none_or(|w| w.split(',').any(|w| w.eq_ignore_ascii_case("FAILURE")));
        if !wants {
            continue;
        }
        let diagnostic = match fit {
            mailstore::Fit::TooBig => "552 5.2.2 message exceeds the mailbox's quota",
            _ => "552 5.2.2 mailbox full (over quota)",
        };
        failed.push(outbound::dsn::Failed {
            addr: local.rcpt.clone(),
            orcpt: dsn.orcpt,
            status: "5.2.2".into(),
            remote: None,
            diagnostic: diagnostic.into(),
        });
    }
    if failed.is_empty() || n.sender.is_empty() {
        return Ok(());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let raw = outbound::dsn::build(&outbound::dsn::Report {
        hostname: n.hostname,
        to: n.sender,
        qid: n.qid,
        envid: n.envid,
        arrival: now,
        action: outbound::dsn::Action::Failed,
        rcpts: &failed,
        original: n.original,
        headers_only: n.ret_hdrs,
    });
    send_notice(tx, n.qid, n.sender, raw, n.outbound, now)
}

/// Deliver a notice to a local sender, or queue it (from `<>`) for one
/// elsewhere; without the queue it is left out (logged).
fn send_notice(
    tx: &mut mailstore::Tx<'_>,
    qid: &str,
    sender: &str,
    raw: Vec<u8>,
    outbound: bool,
    now: i64,
) -> mailstore::Result<()> {
    if let Some(user) = tx.resolve_recipient(sender)? {
        // A notice never fails for its own recipient's quota.
        tx.deliver(
            &NewMessage {
                raw,
                internal_date: now,
            },
            &[user.id],
        )?;
    } else if outbound {
        tx.enqueue(&mailstore::OutMessage {
            qid: format!("{qid}.L"),
            sender: String::new(),
            raw,
            ret: None,
            envid: None,
            rcpts: vec![mailstore::OutRcpt {
                addr: sender.to_owned(),
                notify: None,
                orcpt: None,
            }],
        })?;
    } else {
        log::info!("{qid}: no notice for <{sender}>: outbound delivery is off");
    }
    Ok(())
}

/// The domain part of an address.
fn domain_of(addr: &str) -> &str {
    addr.rsplit_once('@').map_or(addr, |(_, d)| d)
}

/// DKIM-sign the message after the trace headers (`raw[trace_len..]`) as
/// the domain of `user` (whose address the From header carries: checked
/// before), inserting the signature right after the trace headers. A
/// failure is logged and the message goes unsigned: never lost.
fn sign(signer: &mailauth::Signer, user: &str, raw: &mut Vec<u8>, trace_len: usize) {
    let domain = domain_of(user);
    match signer.sign(domain, &raw[trace_len..]) {
        Ok(Some(header)) => {
            raw.splice(trace_len..trace_len, header.into_bytes());
        }
        Ok(None) => {}
        Err(e) => log::error!("DKIM signing as {domain} failed, sent unsigned: {e}"),
    }
}
