//! Sieve (RFC 5228) on local delivery: a user's active script, compiled
//! and run by the `sieve-rs` interpreter, decides where a message goes.
//! This crate is where that interpreter meets the store: [`Filter::plan`]
//! runs a script on a store reader thread (never on an event loop) and
//! returns a [`Plan`] — mailboxes and flags, messages to send, a reject,
//! ids to remember — which [`apply`] carries out inside one writer
//! transaction with the delivery itself.
//!
//! Extensions (as sieve-rs implements them): fileinto, reject/ereject
//! (RFC 5429), envelope, imap4flags (5232), relational and
//! comparator-i;ascii-numeric (5231), body (5173), variables (5229),
//! vacation (5230), copy (3894), mailbox (5490), date/index (5260),
//! editheader (5293), include (6609), duplicate (7352), redirect, and the
//! rest sieve-rs knows. `notify` (enotify) is accepted and ignored.
//!
//! Bounds per message: [`CPU_LIMIT`] instructions, [`MAX_INCLUDES`]
//! nested includes, [`MAX_VARIABLE_SIZE`] bytes per variable,
//! [`MAX_OUT_MESSAGES`] messages sent and [`MAX_REDIRECTS`] redirects.
//! Any runtime error (a bound hit, a missing include) cancels the
//! script's actions and keeps the message in INBOX (RFC 5228 §2.10.6);
//! the user is told once per script version (see `apply`).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod apply;
mod cache;

pub use apply::{apply, Applied, Context};

use mailstore::{Filing, Flags, Reader, UserId};
use sieve::{Compiler, Event, Input, Recipient, Runtime};
use std::sync::Arc;

/// Instructions one message may cost a script.
pub const CPU_LIMIT: usize = 10_000;
/// Deepest chain of `include`s.
pub const MAX_INCLUDES: usize = 3;
/// Largest value of a variable, in bytes.
pub const MAX_VARIABLE_SIZE: usize = 4096;
/// Most messages (vacation replies, redirects) one run may send.
pub const MAX_OUT_MESSAGES: usize = 3;
/// Most redirects one run may make.
pub const MAX_REDIRECTS: usize = 3;
/// Events handled per run before it is cut off (a bound on the loop
/// between the interpreter and us).
const MAX_EVENTS: usize = 1000;

/// A compiled script, or why it does not compile.
///
/// # Errors
/// The compiler's message with its line and column.
pub fn compile(script: &[u8]) -> Result<Arc<sieve::Sieve>, String> {
    Compiler::new()
        .with_max_script_size(mailstore::MAX_SCRIPT_SIZE)
        .compile(script)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// The Sieve extensions offered (RFC 5804 §1.7 SIEVE capability).
pub fn extensions() -> &'static str {
    "fileinto reject ereject envelope imap4flags relational comparator-i;ascii-numeric \
     body variables vacation vacation-seconds copy mailbox date index editheader include \
     duplicate subaddress encoded-character"
}

/// One recipient's delivery, as the script sees it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The local user.
    pub user: UserId,
    /// The user's own address (vacation's "is this mail to me").
    pub user_address: String,
    /// The envelope recipient as given (an alias, a `+tag` address).
    pub rcpt: String,
    /// The envelope sender, "" for `<>`.
    pub sender: String,
}

/// A message a script sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Whom to.
    pub to: String,
    /// Which message: `None` the one delivered, else an index into
    /// [`Plan::created`].
    pub message: Option<usize>,
    /// A vacation reply (sent from `<>`, RFC 5230 §5.1), else a redirect
    /// (from the original sender, RFC 5228 §4.2).
    pub vacation: bool,
    /// The remembered id this send depends on: if another delivery
    /// remembered it first, this one is not sent (vacation's once).
    pub guard: Option<String>,
}

/// What a script decided for one recipient.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// The user.
    pub user: UserId,
    /// Where copies go: `(message, filing)`, `None` the original.
    pub filings: Vec<(Option<usize>, Filing)>,
    /// Messages the script made (vacation replies, edited copies).
    pub created: Vec<Vec<u8>>,
    /// Messages to send.
    pub sends: Vec<Outgoing>,
    /// reject/ereject's reason.
    pub reject: Option<String>,
    /// Ids to remember, with when they expire (unix seconds).
    pub remember: Vec<(String, i64)>,
    /// The script's failure, for the log and the user's notice:
    /// `(script name, error)`.
    pub error: Option<(String, String)>,
    /// The active script's name and a fingerprint of its text, when a
    /// script ran.
    pub script: Option<(String, u64)>,
}

impl Plan {
    /// Keep in INBOX, nothing else (no script, or a failed one).
    fn keep(user: UserId) -> Plan {
        Plan {
            user,
            filings: vec![(None, inbox(user, Flags::empty()))],
            ..Plan::default()
        }
    }
}

fn inbox(user: UserId, flags: Flags) -> Filing {
    Filing {
        user,
        mailbox: "INBOX".into(),
        flags,
        create: false,
    }
}

/// IMAP flags from imap4flags' list: system flags by name, the rest
/// keywords (those an IMAP keyword cannot be are dropped).
fn flags_of(list: &[String]) -> Flags {
    let mut f = Flags::empty();
    for name in list {
        let bit = match name.to_ascii_lowercase().as_str() {
            "\\seen" => Flags::SEEN,
            "\\answered" => Flags::ANSWERED,
            "\\flagged" => Flags::FLAGGED,
            "\\deleted" => Flags::DELETED,
            "\\draft" => Flags::DRAFT,
            _ => 0,
        };
        if bit != 0 {
            f.system |= bit;
        } else if !name.is_empty()
            && !name.starts_with('\\')
            && !name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "(){%*\"\\]".contains(c))
        {
            f.keywords.push(name.clone());
        }
    }
    f
}

/// Runs scripts: the interpreter's settings and compiled scripts.
pub struct Filter {
    runtime: Runtime,
    cache: cache::Compiled,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Filter")
    }
}

impl Filter {
    /// A filter for a server called `hostname` (vacation's Message-IDs).
    pub fn new(hostname: &str) -> Filter {
        let runtime = Runtime::new()
            .with_cpu_limit(CPU_LIMIT)
            .with_max_nested_includes(MAX_INCLUDES)
            .with_max_variable_size(MAX_VARIABLE_SIZE)
            .with_max_out_messages(MAX_OUT_MESSAGES)
            .with_max_redirects(MAX_REDIRECTS)
            .with_local_hostname(hostname.to_owned());
        Filter {
            runtime,
            cache: cache::Compiled::default(),
        }
    }

    /// Run `d.user`'s active script (if any) over `raw`, on a store
    /// reader (scripts, includes and remembered ids are read here;
    /// nothing is written). Never fails: a script that cannot run gives
    /// a plan that keeps the message in INBOX, with the error.
    pub fn plan(&self, reader: &Reader, raw: &[u8], d: &Delivery) -> Plan {
        let active = match reader.active_sieve_script(d.user) {
            Ok(Some(a)) => a,
            Ok(None) => return Plan::keep(d.user),
            Err(e) => {
                log::error!("sieve: cannot read the script of user {}: {e}", d.user);
                return Plan::keep(d.user);
            }
        };
        let (name, text) = active;
        let print = cache::fingerprint(&text);
        // A panic in the interpreter must not cost the message either.
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match self.cache.get(&text) {
                Ok(script) => self.run(reader, raw, d, &name, script),
                Err(e) => failed(d.user, &name, format!("does not compile: {e}")),
            }
        }));
        let mut plan = ran.unwrap_or_else(|_| failed(d.user, &name, "interpreter panicked".into()));
        plan.script = Some((name, print));
        plan
    }

    fn run(
        &self,
        reader: &Reader,
        raw: &[u8],
        d: &Delivery,
        name: &str,
        script: Arc<sieve::Sieve>,
    ) -> Plan {
        let mut ctx = self
            .runtime
            .filter(raw)
            .with_user_address(d.user_address.as_str());
        if !d.sender.is_empty() {
            ctx.set_envelope(sieve::Envelope::From, d.sender.as_str());
        }
        ctx.set_envelope(sieve::Envelope::To, d.rcpt.as_str());
        let now = unix_now();
        let mut plan = Plan {
            user: d.user,
            ..Plan::default()
        };
        let mut vacation_id: Option<String> = None;
        let mut input = Input::script(name.to_owned(), script);
        let mut events = 0;
        while let Some(result) = ctx.run(input) {
            events += 1;
            if events > MAX_EVENTS {
                return failed(d.user, name, format!("more than {MAX_EVENTS} actions"));
            }
            input = Input::True;
            let event = match result {
                Ok(e) => e,
                Err(e) => return failed(d.user, name, e.to_string()),
            };
            match event {
                Event::IncludeScript {
                    name: inc,
                    optional,
                } => {
                    let inc_name = match &inc {
                        sieve::Script::Personal(n) => Some(n.clone()),
                        sieve::Script::Global(_) => None,
                    };
                    let text = match inc_name {
                        Some(n) => reader.sieve_script(d.user, &n).ok().flatten(),
                        None => None,
                    };
                    input = match (text, optional) {
                        (Some(text), _) => match self.cache.get(&text) {
                            Ok(s) => Input::script(inc, s),
                            Err(e) => {
                                return failed(
                                    d.user,
                                    name,
                                    format!("included script {inc} does not compile: {e}"),
                                )
                            }
                        },
                        (None, true) => Input::False,
                        (None, false) => {
                            return failed(d.user, name, format!("no script {inc} to include"))
                        }
                    };
                }
                Event::MailboxExists { mailboxes, .. } => {
                    let all = mailboxes.iter().all(|m| match m {
                        sieve::Mailbox::Name(n) => {
                            matches!(reader.mailbox(d.user, n), Ok(Some(_)))
                        }
                        sieve::Mailbox::Id(_) => false,
                    });
                    input = all.into();
                }
                Event::ListContains { .. } => input = Input::False,
                Event::Function { .. } => input = Input::False,
                Event::DuplicateId { id, expiry, .. } => {
                    let seen = reader.sieve_id_seen(d.user, &id).unwrap_or(false)
                        || plan.remember.iter().any(|(r, _)| *r == id);
                    if !seen {
                        let expires = now.saturating_add(i64::try_from(expiry).unwrap_or(i64::MAX));
                        plan.remember.push((id.clone(), expires));
                        if id.starts_with("_v") {
                            vacation_id = Some(id);
                        }
                    }
                    input = seen.into();
                }
                Event::SetEnvelope { .. } => {}
                Event::Keep { flags, message_id } => {
                    plan.filings
                        .push((created(message_id), inbox(d.user, flags_of(&flags))));
                }
                Event::FileInto {
                    folder,
                    flags,
                    create,
                    message_id,
                    ..
                } => plan.filings.push((
                    created(message_id),
                    Filing {
                        user: d.user,
                        mailbox: folder,
                        flags: flags_of(&flags),
                        create,
                    },
                )),
                Event::Discard => {}
                Event::Reject { reason, .. } => plan.reject = Some(reason),
                Event::SendMessage {
                    recipient,
                    message_id,
                    ..
                } => {
                    let to = match recipient {
                        Recipient::Address(a) => vec![a],
                        Recipient::List(_) => Vec::new(),
                        Recipient::Group(g) => g,
                    };
                    let message = created(message_id);
                    let vacation = message.is_some() && vacation_id.is_some();
                    for to in to {
                        plan.sends.push(Outgoing {
                            to,
                            message,
                            vacation,
                            guard: if vacation { vacation_id.clone() } else { None },
                        });
                    }
                    if vacation {
                        vacation_id = None;
                    }
                }
                Event::Notify { method, .. } => {
                    log::info!("sieve: user {}: notify {method} ignored", d.user);
                }
                Event::CreatedMessage { message, .. } => plan.created.push(message),
            }
        }
        plan
    }
}

/// The index into [`Plan::created`] for sieve-rs's message id (0 = the
/// original).
fn created(message_id: usize) -> Option<usize> {
    message_id.checked_sub(1)
}

/// Keep in INBOX, with the script's error.
fn failed(user: UserId, name: &str, error: String) -> Plan {
    let mut plan = Plan::keep(user);
    plan.error = Some((name.to_owned(), error));
    plan
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imap4flags_names_become_flags_and_keywords() {
        let f = flags_of(&[
            "\\Seen".into(),
            "\\FLAGGED".into(),
            "$Work".into(),
            "bad word".into(),
            "\\Recent".into(),
        ]);
        assert_eq!(f.system, Flags::SEEN | Flags::FLAGGED);
        assert_eq!(f.keywords, ["$Work"]);
    }

    #[test]
    fn compile_errors_name_the_place() {
        assert!(compile(b"require \"fileinto\";\nfileinto \"x\";").is_ok());
        let e = compile(b"if header :contains \"Subject\" {\n").unwrap_err();
        assert!(!e.is_empty());
        let e = compile(b"fileinto \"x\";").unwrap_err();
        assert!(e.to_lowercase().contains("fileinto"), "{e}");
    }
}
