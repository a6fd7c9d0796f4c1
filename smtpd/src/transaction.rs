//! The commands of RFC 5321 §4.1.1 applied to a session: the order rules of
//! §4.1.4 (503 for a bad sequence), EHLO's extension list (§4.1.1.1), and
//! the recipient rules: local domains only (550 5.7.1 otherwise, no open
//! relay), the recipient limit (452 4.5.3, §4.5.3.1.10), Postmaster
//! (§4.5.1) and RFC 6531's rule that non-ASCII addresses need SMTPUTF8.
//! EHLO lists STARTTLS (RFC 3207 §4) only while TLS can be started, and
//! AUTH (RFC 4954 §3) only where plaintext mechanisms are allowed.
//!
//! An authenticated session (RFC 4954) may use only its own addresses as
//! envelope sender (550 5.7.1 otherwise, see `sender.rs`); its mail to a
//! foreign domain goes to the outbound queue when `Config::outbound` is on,
//! else is refused with a plain "No outbound relay configured" 550 5.7.1.
//! A submission server (`Config::submission`) wants AUTH before MAIL.
//!
//! Postmaster: `<Postmaster>` means postmaster of our first domain. Mail to
//! postmaster@<local domain> goes to a user of that exact address if one
//! exists, else to the first user (by address) of that domain; only when
//! the domain has no user at all is it refused with 550 5.1.1.
//!
//! A recipient resolves through the store's aliases and catch-alls
//! (`mailstore::Reader::route`); aliases that loop or expand past their
//! bounds refuse it with 550 5.4.6.
//!
//! Quotas (RFC 9208 in the store): a recipient whose every local user is
//! over quota (for the declared SIZE, or one octet) is refused at RCPT
//! with `452 4.2.2` (mailbox full, temporary) or `552 5.2.2` (the message
//! is larger than the quota itself); the exact check is at commit
//! (`deliver.rs`). Routes to users with a quota are not cached, so a full
//! mailbox is seen at once.

use crate::command::{Command, MailParams, RcptParams};
use crate::data::{BdatBody, DataReader};
use crate::parse::{ForwardPath, Host, ReversePath};
use crate::reply::Reply;
use crate::session::{Envelope, Helo, Recipient, SmtpDone, SmtpSession, State, Waiting};
use mailstore::{Resolution, Route};
use netloop::{Io, TlsState};
use std::time::Instant;

impl SmtpSession {
    /// Apply one parsed command.
    pub(crate) fn command(&mut self, io: &mut Io<'_, SmtpDone>, cmd: Command) {
        match cmd {
            Command::Ehlo(name) => self.helo(io, name, true),
            Command::Helo(name) => self.helo(io, name, false),
            Command::Mail { from, params } => self.mail(io, from, params),
            Command::Rcpt { to, params } => self.rcpt(io, to, params),
            Command::Data => self.data(io),
            Command::Bdat { size, last } => self.bdat(io, size, last),
            Command::Rset => {
                self.state = State::Idle;
                self.reply(io, &Reply::ok());
            }
            Command::Noop => self.reply(io, &Reply::ok()),
            Command::Vrfy(_) => self.reply(io, &Reply::cannot_vrfy()),
            Command::Expn(_) => self.reply(io, &Reply::not_implemented("EXPN")),
            Command::Help(_) => self.reply(io, &Reply::help()),
            Command::Quit => {
                self.reply(io, &Reply::closing(&self.shared.config.hostname));
                self.closing = true;
            }
            Command::StartTls => self.starttls(io),
            Command::Auth { mechanism, initial } => self.auth(io, mechanism, initial),
        }
    }

    /// EHLO/HELO: (re)start the session, dropping any transaction (§4.1.4).
    fn helo(&mut self, io: &mut Io<'_, SmtpDone>, name: String, extended: bool) {
        self.state = State::Idle;
        let cfg = &self.shared.config;
        let first = format!("{} Hello {} [{}]", cfg.hostname, name, self.peer.ip());
        let reply = if extended {
            let mut lines = vec![
                first,
                "PIPELINING".into(),
                format!("SIZE {}", cfg.max_message_size),
                "8BITMIME".into(),
                "SMTPUTF8".into(),
                "CHUNKING".into(),
                "ENHANCEDSTATUSCODES".into(),
                "DSN".into(),
            ];
            if io.tls() == TlsState::Available {
                lines.push("STARTTLS".into());
            }
            if crate::auth::plaintext_allowed(&self.shared, io) {
                lines.push("AUTH PLAIN LOGIN".into());
            }
            Reply::multi(250, None, lines)
        } else {
            Reply::new(250, None, first)
        };
        self.helo = Some(Helo { name, extended });
        self.reply(io, &reply);
    }

    /// MAIL FROM (§4.1.1.2).
    fn mail(&mut self, io: &mut Io<'_, SmtpDone>, from: ReversePath, params: MailParams) {
        let max = self.shared.config.max_message_size;
        let reply = if self.helo.is_none() {
            Reply::bad_sequence("send EHLO or HELO first")
        } else if self.shared.config.submission && self.user.is_none() {
            Reply::auth_required()
        } else if matches!(self.state, State::Envelope(_)) {
            Reply::bad_sequence("nested MAIL command")
        } else if self
            .user
            .as_ref()
            .is_some_and(|u| !sender_owned(&u.address, &from))
        {
            log::info!(
                "#{}: refused MAIL FROM:{from}: not the user's address",
                self.conn
            );
            metrics::smtp_refused(metrics::Refusal::SenderNotOwned);
            Reply::sender_not_owned()
        } else if params.size.is_some_and(|s| s > max as u64) {
            metrics::smtp_refused(metrics::Refusal::TooBig);
            Reply::too_big(max)
        } else if matches!(&from, ReversePath::Mailbox(m) if !m.is_ascii()) && !params.smtputf8 {
            Reply::utf8_needs_smtputf8()
        } else {
            self.state = State::Envelope(Envelope {
                from,
                params,
                rcpts: Vec::new(),
                started: Instant::now(),
                bdat: None,
            });
            Reply::sender_ok()
        };
        self.reply(io, &reply);
    }

    /// RCPT TO (§4.1.1.3): checks here, the user lookup on a reader thread.
    fn rcpt(&mut self, io: &mut Io<'_, SmtpDone>, to: ForwardPath, dsn: RcptParams) {
        let cfg = &self.shared.config;
        let State::Envelope(env) = &self.state else {
            self.reply(io, &Reply::bad_sequence("need MAIL before RCPT"));
            return;
        };
        // The octets the quota check counts on: the declared SIZE, else
        // one (is there any room at all?).
        let octets = env.params.size.unwrap_or(1).max(1);
        if env.rcpts.len() >= cfg.max_recipients {
            metrics::smtp_refused(metrics::Refusal::TooManyRecipients);
            self.reply(io, &Reply::too_many_recipients(cfg.max_recipients));
            return;
        }
        let (addr, domain, postmaster) = match &to {
            ForwardPath::Postmaster => match cfg.domains.first() {
                Some(d) => (format!("postmaster@{d}"), d.clone(), true),
                None => {
                    metrics::smtp_refused(metrics::Refusal::RelayDenied);
                    self.reply(io, &Reply::relay_denied("postmaster"));
                    return;
                }
            },
            ForwardPath::Mailbox(m) => {
                if !m.is_ascii() && !env.params.smtputf8 {
                    self.reply(io, &Reply::utf8_needs_smtputf8());
                    return;
                }
                match &m.host {
                    Host::Domain(d) if cfg.is_local_domain(d) => (
                        m.to_string(),
                        d.clone(),
                        m.local.eq_ignore_ascii_case("postmaster"),
                    ),
                    _ if self.user.is_some() && cfg.outbound => {
                        // Authenticated submission to another domain
                        // (RFC 6409 §1): queued for the delivery engine.
                        let addr = m.to_string();
                        let reply = match &mut self.state {
                            State::Envelope(env) => {
                                env.rcpts.push(Recipient {
                                    addr,
                                    route: None,
                                    dsn,
                                });
                                Reply::recipient_ok()
                            }
                            _ => Reply::bad_sequence("transaction ended"),
                        };
                        self.reply(io, &reply);
                        return;
                    }
                    host => {
                        log::info!("#{}: refused RCPT <{m}>: not a local domain", self.conn);
                        metrics::smtp_refused(metrics::Refusal::RelayDenied);
                        let reply = if self.user.is_some() {
                            let domain = match host {
                                Host::Domain(d) => d.clone(),
                                Host::Literal(l) => l.to_string(),
                            };
                            Reply::no_outbound_relay(&domain)
                        } else {
                            Reply::relay_denied(&m.to_string())
                        };
                        self.reply(io, &reply);
                        return;
                    }
                }
            }
        };
        if let Some(route) = self.shared.recipients.get(&addr, Instant::now()) {
            self.accept_rcpt(io, addr, route, dsn);
            return;
        }
        self.waiting = Some(Waiting::Rcpt(dsn));
        let completer = io.completer();
        let lookup = addr.clone();
        self.shared.store.read(
            move |r| {
                let found = r.route(&lookup)?;
                if found != Resolution::Unknown || !postmaster {
                    let quota = rcpt_quota(r, &found, octets)?;
                    return Ok((found, quota));
                }
                let found = r
                    .users()?
                    .into_iter()
                    .find(|u| {
                        u.address
                            .rsplit_once('@')
                            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&domain))
                    })
                    .map_or(Resolution::Unknown, |u| {
                        Resolution::Route(Route {
                            users: vec![u.id],
                            forward: Vec::new(),
                        })
                    });
                let quota = rcpt_quota(r, &found, octets)?;
                Ok((found, quota))
            },
            move |result| {
                completer.complete(SmtpDone::Rcpt {
                    addr,
                    result: result.map_err(|e| crate::deliver::failure_text(&e)),
                })
            },
        );
    }

    /// RCPT resolved to `route`: add the recipient, 250. A route that
    /// forwards elsewhere (an alias with an external target) needs the
    /// outbound queue: without it the recipient is refused, not half
    /// delivered.
    fn accept_rcpt(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        addr: String,
        route: Route,
        dsn: RcptParams,
    ) {
        if let (false, Some(first)) = (self.shared.config.outbound, route.forward.first()) {
            log::info!(
                "#{}: refused RCPT <{addr}>: its alias forwards to <{first}>, outbound is off",
                self.conn
            );
            let reply = Reply::no_outbound_relay(&mailstore::domain_of(first));
            self.reply(io, &reply);
            return;
        }
        let reply = match &mut self.state {
            State::Envelope(env) => {
                env.rcpts.push(Recipient {
                    addr,
                    route: Some(route),
                    dsn,
                });
                Reply::recipient_ok()
            }
            _ => Reply::bad_sequence("transaction ended"),
        };
        self.reply(io, &reply);
    }

    /// The answer to a RCPT lookup.
    pub(crate) fn rcpt_done(
        &mut self,
        io: &mut Io<'_, SmtpDone>,
        addr: String,
        dsn: RcptParams,
        result: Result<(Resolution, RcptQuota), String>,
    ) {
        let reply = match result {
            Ok((Resolution::Route(_), RcptQuota::Full)) => {
                log::info!("#{}: refused RCPT <{addr}>: mailbox full", self.conn);
                metrics::smtp_refused(metrics::Refusal::OverQuota);
                Reply::mailbox_full(&addr)
            }
            Ok((Resolution::Route(_), RcptQuota::TooBig)) => {
                log::info!(
                    "#{}: refused RCPT <{addr}>: message larger than the quota",
                    self.conn
                );
                metrics::smtp_refused(metrics::Refusal::OverQuota);
                Reply::over_quota(&addr)
            }
            Ok((Resolution::Route(route), quota)) => {
                // Only a store answer starts an entry's time to live (a hit
                // must not extend it, or a deleted user would stay cached).
                if quota == RcptQuota::Unlimited {
                    self.shared
                        .recipients
                        .put(&addr, route.clone(), Instant::now());
                }
                self.accept_rcpt(io, addr, route, dsn);
                return;
            }
            Ok((Resolution::Unknown, _)) => {
                log::info!("#{}: refused RCPT <{addr}>: no such user", self.conn);
                metrics::smtp_refused(metrics::Refusal::UnknownUser);
                Reply::unknown_user(&addr)
            }
            Ok((Resolution::Refused(why), _)) => {
                log::warn!("#{}: refused RCPT <{addr}>: {why}", self.conn);
                Reply::alias_refused(&addr, &why)
            }
            Err(e) => {
                log::error!("#{}: recipient lookup for <{addr}> failed: {e}", self.conn);
                metrics::smtp_refused(metrics::Refusal::LocalError);
                if crate::deliver::is_unavailable(&e) {
                    Reply::store_unavailable()
                } else {
                    Reply::local_error()
                }
            }
        };
        self.reply(io, &reply);
    }

    /// DATA (§4.1.1.4): 354, then content until CRLF.CRLF.
    fn data(&mut self, io: &mut Io<'_, SmtpDone>) {
        let reply = match std::mem::replace(&mut self.state, State::Idle) {
            State::Envelope(env) if env.bdat.is_some() => {
                self.state = State::Envelope(env);
                Reply::bad_sequence("DATA cannot follow BDAT in one transaction")
            }
            State::Envelope(env) if env.rcpts.is_empty() => {
                self.state = State::Envelope(env);
                Reply::no_valid_recipients()
            }
            State::Envelope(env) => {
                let cfg = &self.shared.config;
                let reader = DataReader::new(cfg.max_text_line, cfg.max_message_size);
                self.state = State::Data(env, reader);
                io.set_timeout(cfg.timeouts.data_block);
                self.content_since = Instant::now();
                Reply::start_data()
            }
            other => {
                self.state = other;
                Reply::bad_sequence("need MAIL and RCPT before DATA")
            }
        };
        self.reply(io, &reply);
    }

    /// BDAT (RFC 3030 §2): the chunk is always read; if the command cannot
    /// be accepted it is discarded and the error given after it.
    fn bdat(&mut self, io: &mut Io<'_, SmtpDone>, size: u64, last: bool) {
        let (env, failure) = match std::mem::replace(&mut self.state, State::Idle) {
            State::Envelope(env) if env.rcpts.is_empty() => {
                (None, Some(Reply::no_valid_recipients()))
            }
            State::Envelope(mut env) => {
                if env.bdat.is_none() {
                    env.bdat = Some(BdatBody::new(self.shared.config.max_message_size));
                }
                (Some(env), None)
            }
            _ => (
                None,
                Some(Reply::bad_sequence("need MAIL and RCPT before BDAT")),
            ),
        };
        io.set_timeout(self.shared.config.timeouts.data_block);
        self.content_since = Instant::now();
        self.state = State::Chunk {
            env,
            left: size,
            size,
            last,
            failure,
        };
    }
}

/// True if the authenticated `user` may use `from` as envelope sender.
fn sender_owned(user: &str, from: &ReversePath) -> bool {
    match from {
        ReversePath::Null => true,
        ReversePath::Mailbox(m) => match &m.host {
            Host::Domain(d) => crate::sender::owns(user, &m.local, d),
            Host::Literal(_) => false,
        },
    }
}

/// What a recipient's quotas say about taking a message (see the module
/// docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptQuota {
    /// No user of the route has a quota (the route may be cached).
    Unlimited,
    /// Some user of the route (or a forward) takes it.
    Fits,
    /// Every user is over quota (temporary).
    Full,
    /// The message is larger than every user's quota.
    TooBig,
}

/// How a message of `octets` fits the quotas of the users `found` routes
/// to (read on a store thread).
fn rcpt_quota(
    r: &mailstore::Reader,
    found: &Resolution,
    octets: u64,
) -> mailstore::Result<RcptQuota> {
    let Resolution::Route(route) = found else {
        return Ok(RcptQuota::Unlimited);
    };
    let (mut limited, mut fits, mut too_big) = (false, !route.forward.is_empty(), true);
    for &user in &route.users {
        let q = r.quota(user)?;
        limited |= q.limited();
        match q.fits(octets, 1) {
            mailstore::Fit::Fits => fits = true,
            mailstore::Fit::Full => too_big = false,
            mailstore::Fit::TooBig => {}
        }
    }
    Ok(match (limited, fits, too_big) {
        (false, _, _) => RcptQuota::Unlimited,
        (true, true, _) => RcptQuota::Fits,
        (true, false, false) => RcptQuota::Full,
        (true, false, true) => RcptQuota::TooBig,
    })
}
