//! Sieve on SMTP delivery (see the `mailsieve` crate): with a filter
//! configured, a message for local users is planned on a store reader
//! thread — each user's active script run over it — before the commit;
//! the plans are carried out in the commit's own transaction. When every
//! local recipient's script rejects it (RFC 5429) and no other recipient
//! takes it, the transaction is answered `550 5.7.1` with the reason and
//! nothing is stored; a reject beside other recipients becomes a DSN to
//! the sender. A plan that cannot be made (a store error) falls back to
//! plain INBOX delivery: a script never costs a message. (Mail for users
//! without an active script is not planned at all: the commit checks for
//! one in its own transaction; see `deliver.rs`'s `route`.)

use mailsieve::{Delivery, Filter, Plan};
use mailstore::{PreparedMessage, Store, UserId};
use std::sync::Arc;

/// A local recipient: the user and the address it was reached by.
#[derive(Debug, Clone)]
pub(crate) struct Local {
    pub(crate) user: UserId,
    pub(crate) rcpt: String,
}

/// The local recipients of an envelope, each user once (by the first
/// address that reached them).
pub(crate) fn locals(rcpts: &[crate::session::Recipient]) -> Vec<Local> {
    let mut out: Vec<Local> = Vec::new();
    for r in rcpts {
        for &user in r.route.iter().flat_map(|route| route.users.iter()) {
            if !out.iter().any(|l| l.user == user) {
                out.push(Local {
                    user,
                    rcpt: r.addr.clone(),
                });
            }
        }
    }
    out
}

/// What planning came to.
pub(crate) enum Planned {
    /// Commit with these plans (`None`: plain delivery).
    Commit(PreparedMessage, Option<Vec<(Delivery, Plan)>>),
    /// Every local recipient rejected it: refuse with this reason.
    Rejected(String),
}

/// Plan `msg` for `locals` on a reader thread, then call `then`.
/// `others` says whether recipients elsewhere take the message anyway.
pub(crate) fn plan(
    store: &Store,
    filter: Arc<Filter>,
    msg: PreparedMessage,
    locals: Vec<Local>,
    sender: String,
    others: bool,
    then: impl FnOnce(Planned) + Send + 'static,
) {
    let msg = Arc::new(msg);
    let kept = msg.clone();
    store.read(
        move |r| {
            let mut plans = Vec::with_capacity(locals.len());
            for l in locals {
                let user_address = match r.user_by_id(l.user)? {
                    Some(u) => u.address,
                    None => l.rcpt.clone(),
                };
                let d = Delivery {
                    user: l.user,
                    user_address,
                    rcpt: l.rcpt,
                    sender: sender.clone(),
                };
                let plan = filter.plan(r, msg.raw(), &d);
                plans.push((d, plan));
            }
            Ok(plans)
        },
        move |plans| {
            let msg = Arc::try_unwrap(kept).unwrap_or_else(|a| (*a).clone());
            match plans {
                Ok(plans) => {
                    let all_reject = plans.iter().all(|(_, p)| p.reject.is_some());
                    match plans.first() {
                        Some((_, p)) if all_reject && !others => {
                            then(Planned::Rejected(p.reject.clone().unwrap_or_default()))
                        }
                        _ => then(Planned::Commit(msg, Some(plans))),
                    }
                }
                Err(e) => {
                    log::error!("sieve: planning failed, delivering to INBOX: {e}");
                    then(Planned::Commit(msg, None))
                }
            }
        },
    );
}
