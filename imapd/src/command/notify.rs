//! NOTIFY (RFC 5465 §3, §8): which events the client wants to hear about,
//! for which mailboxes.

use super::FetchAtt;

/// `NOTIFY SET [STATUS] event-group...` (RFC 5465 §3). `NOTIFY NONE` is
/// [`super::CommandBody::Notify`] with `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifySet {
    /// `STATUS`: send a STATUS for every mailbox of the event groups now
    /// (§3.1).
    pub status: bool,
    /// The `selected` / `selected-delayed` group, if any (§6.1).
    pub selected: Option<SelectedEvents>,
    /// The other groups, in the order given.
    pub groups: Vec<EventGroup>,
}

/// The events wanted for the selected mailbox (§5.1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectedEvents {
    /// `selected-delayed`: EXPUNGE only where RFC 3501 allows it.
    pub delayed: bool,
    /// The events (`NONE` is all false).
    pub events: Events,
    /// `MessageNew (fetch-att ...)`: what to FETCH for each new message.
    pub fetch: Vec<FetchAtt>,
}

/// Mailboxes other than the selected one (§6.2–§6.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailboxFilter {
    /// `inboxes`: where mail is delivered (our INBOX).
    Inboxes,
    /// `personal`: every mailbox of the user.
    Personal,
    /// `subscribed`: the subscribed mailboxes (as the subscriptions change).
    Subscribed,
    /// `subtree`: these mailboxes and all their descendants.
    Subtree(Vec<String>),
    /// `mailboxes`: exactly these.
    Mailboxes(Vec<String>),
}

/// One `(filter events)` group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventGroup {
    /// Which mailboxes.
    pub filter: MailboxFilter,
    /// Which events (`NONE` is all false).
    pub events: Events,
}

/// The events of RFC 5465 §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events {
    /// `MessageNew` (§5.2)
    pub message_new: bool,
    /// `MessageExpunge` (§5.3)
    pub message_expunge: bool,
    /// `FlagChange` (§5.4)
    pub flag_change: bool,
    /// `AnnotationChange` (§5.5): refused, we have no annotations.
    pub annotation_change: bool,
    /// `MailboxName` (§5.6)
    pub mailbox_name: bool,
    /// `SubscriptionChange` (§5.7)
    pub subscription_change: bool,
    /// `MailboxMetadataChange` (§5.8): refused, we have no METADATA.
    pub mailbox_metadata_change: bool,
    /// `ServerMetadataChange` (§5.9): refused, we have no METADATA.
    pub server_metadata_change: bool,
    /// An event name we do not know (an `event-ext`, §8): refused.
    pub other: bool,
}

impl Events {
    /// Any message event (the ones a STATUS reports).
    pub fn any_message(&self) -> bool {
        self.message_new || self.message_expunge || self.flag_change
    }

    /// The events we cannot deliver (no ANNOTATE, no METADATA), by name,
    /// for `NO [BADEVENT ...]` (§3.1).
    pub fn unsupported(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.annotation_change {
            v.push("AnnotationChange");
        }
        if self.mailbox_metadata_change {
            v.push("MailboxMetadataChange");
        }
        if self.server_metadata_change {
            v.push("ServerMetadataChange");
        }
        if self.other {
            v.push("(unknown)");
        }
        v
    }
}
