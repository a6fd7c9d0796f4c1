//! NOTIFY's arguments (RFC 5465 §8):
//!
//! ```text
//! notify = "NOTIFY" SP (notify-set / notify-none)
//! notify-none = "NONE"
//! notify-set = "SET" [SP "STATUS"] SP event-groups
//! event-group = "(" filter-mailboxes SP events ")"
//! filter-mailboxes = "selected" / "selected-delayed" / "inboxes" /
//!     "personal" / "subscribed" / ("subtree" SP one-or-more-mailbox) /
//!     ("mailboxes" SP one-or-more-mailbox)
//! one-or-more-mailbox = mailbox / "(" mailbox *(SP mailbox) ")"
//! events = ("(" event *(SP event) ")") / "NONE"
//! event = ("MessageNew" [SP "(" fetch-att *(SP fetch-att) ")"]) /
//!     "MessageExpunge" / "FlagChange" / "AnnotationChange" /
//!     "MailboxName" / "SubscriptionChange" / "MailboxMetadataChange" /
//!     "ServerMetadataChange" / event-ext
//! ```
//!
//! The events' parentheses may be left out, as in the RFC's own examples
//! (§3.1, §6). An unknown event (`event-ext`) parses, and the command answers
//! `NO [BADEVENT ...]` (§3.1). For the selected mailbox, MessageNew and
//! MessageExpunge come together, FlagChange needs them and mailbox events
//! have no place (§5, §6.1); fetch attributes belong to the selected
//! mailbox only: breaking that is `BAD`. For other mailboxes a lone
//! MessageNew, MessageExpunge or FlagChange is accepted, as Dovecot does
//! (imaptest's notify script relies on it). At most [`crate::limits::MAX_NOTIFY_NAMES`] mailbox
//! names and groups (`NO [LIMIT]` beyond).

use super::fetch::fetch_att;
use super::{atom, mailbox, sp, PResult};
use crate::command::{
    CommandBody, EventGroup, Events, FetchAtt, MailboxFilter, NotifySet, SelectedEvents,
};
use nom::branch::alt;
use nom::bytes::complete::tag_no_case;
use nom::character::complete::char;
use nom::combinator::{all_consuming, map, opt, value};
use nom::multi::separated_list1;
use nom::sequence::{delimited, preceded};
use nom::Parser;

/// The nom error kind of a NOTIFY over [`crate::limits::MAX_NOTIFY_NAMES`].
pub(super) const TOO_MANY: nom::error::ErrorKind = nom::error::ErrorKind::TooLarge;

pub(super) fn notify(i: &[u8]) -> PResult<'_, CommandBody> {
    let none = value(CommandBody::Notify(None), (sp, tag_no_case("NONE")));
    all_consuming(alt((none, set))).parse(i)
}

enum Group {
    Selected(SelectedEvents),
    Other(EventGroup),
}

fn set(i: &[u8]) -> PResult<'_, CommandBody> {
    let (rest, (status, groups)) = (
        preceded((sp, tag_no_case("SET")), opt((sp, tag_no_case("STATUS")))),
        nom::multi::many1(preceded(sp, group)),
    )
        .parse(i)?;
    let names: usize = groups
        .iter()
        .map(|g| match g {
            Group::Other(EventGroup {
                filter: MailboxFilter::Subtree(v) | MailboxFilter::Mailboxes(v),
                ..
            }) => v.len() + 1,
            _ => 1,
        })
        .sum();
    if names > crate::limits::MAX_NOTIFY_NAMES {
        return Err(nom::Err::Failure(nom::error::Error::new(i, TOO_MANY)));
    }
    let mut out = NotifySet {
        status: status.is_some(),
        ..NotifySet::default()
    };
    for g in groups {
        match g {
            Group::Selected(s) => {
                // One selected group only.
                if out.selected.replace(s).is_some() {
                    return Err(nom::Err::Error(nom::error::Error::new(
                        i,
                        nom::error::ErrorKind::Verify,
                    )));
                }
            }
            Group::Other(g) => out.groups.push(g),
        }
    }
    Ok((rest, CommandBody::Notify(Some(Box::new(out)))))
}

fn one_or_more_mailbox(i: &[u8]) -> PResult<'_, Vec<String>> {
    alt((
        delimited(char('('), separated_list1(sp, mailbox), char(')')),
        map(mailbox, |m| vec![m]),
    ))
    .parse(i)
}

fn group(i: &[u8]) -> PResult<'_, Group> {
    let selected = map(
        (
            alt((
                value(true, tag_no_case("selected-delayed")),
                value(false, tag_no_case("selected")),
            )),
            preceded(sp, events),
        ),
        |(delayed, (events, fetch))| {
            Group::Selected(SelectedEvents {
                delayed,
                events,
                fetch,
            })
        },
    );
    let filter = alt((
        value(MailboxFilter::Inboxes, tag_no_case("inboxes")),
        value(MailboxFilter::Personal, tag_no_case("personal")),
        value(MailboxFilter::Subscribed, tag_no_case("subscribed")),
        map(
            preceded((tag_no_case("subtree"), sp), one_or_more_mailbox),
            MailboxFilter::Subtree,
        ),
        map(
            preceded((tag_no_case("mailboxes"), sp), one_or_more_mailbox),
            MailboxFilter::Mailboxes,
        ),
    ));
    let other = map(
        (filter, preceded(sp, events)),
        |(filter, (events, fetch))| {
            (
                Group::Other(EventGroup { filter, events }),
                fetch.is_empty(),
            )
        },
    );
    let selected = map(selected, |g| (g, true));
    let (rest, (g, no_fetch)) = delimited(char('('), alt((selected, other)), char(')')).parse(i)?;
    let verify = || nom::Err::Error(nom::error::Error::new(i, nom::error::ErrorKind::Verify));
    // §5: fetch attributes only for the selected mailbox.
    if !no_fetch {
        return Err(verify());
    }
    if let Group::Selected(s) = &g {
        // §5.1: MessageNew and MessageExpunge together; FlagChange (and
        // AnnotationChange) only with them. §6.1: only message events.
        let e = &s.events;
        if e.message_new != e.message_expunge
            || ((e.flag_change || e.annotation_change) && !e.message_new)
            || e.mailbox_name
            || e.subscription_change
            || e.mailbox_metadata_change
            || e.server_metadata_change
        {
            return Err(nom::Err::Error(nom::error::Error::new(
                i,
                nom::error::ErrorKind::Verify,
            )));
        }
    }
    Ok((rest, g))
}

/// `events`, with MessageNew's fetch attributes.
fn events(i: &[u8]) -> PResult<'_, (Events, Vec<FetchAtt>)> {
    let none = value((Events::default(), Vec::new()), tag_no_case("NONE"));
    // The examples of §3.1 and §6 (errata 2318) leave the parentheses
    // out: accepted too.
    let list = alt((
        delimited(char('('), separated_list1(sp, event), char(')')),
        separated_list1(sp, event),
    ));
    alt((
        none,
        map(list, |evs: Vec<(&[u8], Vec<FetchAtt>)>| {
            let mut e = Events::default();
            let mut fetch = Vec::new();
            for (name, atts) in evs {
                match name.to_ascii_lowercase().as_slice() {
                    b"messagenew" => {
                        e.message_new = true;
                        fetch.extend(atts);
                    }
                    b"messageexpunge" => e.message_expunge = true,
                    b"flagchange" => e.flag_change = true,
                    b"annotationchange" => e.annotation_change = true,
                    b"mailboxname" => e.mailbox_name = true,
                    b"subscriptionchange" => e.subscription_change = true,
                    b"mailboxmetadatachange" => e.mailbox_metadata_change = true,
                    b"servermetadatachange" => e.server_metadata_change = true,
                    _ => e.other = true,
                }
            }
            (e, fetch)
        }),
    ))
    .parse(i)
}

fn event(i: &[u8]) -> PResult<'_, (&[u8], Vec<FetchAtt>)> {
    let (rest, name) = atom(i)?;
    if name.eq_ignore_ascii_case(b"MessageNew") {
        let (rest, atts) = opt(preceded(
            sp,
            delimited(char('('), separated_list1(sp, fetch_att), char(')')),
        ))
        .parse(rest)?;
        return Ok((rest, (name, atts.unwrap_or_default())));
    }
    Ok((rest, (name, Vec::new())))
}

#[cfg(test)]
mod tests {
    use crate::command::{CommandBody, FetchAtt, MailboxFilter, NotifySet};
    use crate::parse::{parse_command, SyntaxKind};

    fn set(line: &str) -> NotifySet {
        match parse_command(line.as_bytes()).map(|c| c.body) {
            Ok(CommandBody::Notify(Some(s))) => *s,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    fn refused(line: &str) -> SyntaxKind {
        match parse_command(line.as_bytes()) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e.kind,
        }
    }

    #[test]
    fn rfc_5465_examples_parse() {
        // §3.1 (errata 2318's form) and §6's groups.
        let s = set("e notify set (selected MessageNew (uid body.peek[header.fields (from to subject)]) MessageExpunge) (subtree Lists MessageNew) (mailboxes misc MessageNew)");
        assert!(!s.status);
        let sel = s.selected.expect("selected");
        assert!(!sel.delayed && sel.events.message_new && sel.events.message_expunge);
        assert_eq!(sel.fetch.len(), 2);
        assert_eq!(sel.fetch[0], FetchAtt::Uid);
        assert_eq!(s.groups.len(), 2);
        assert_eq!(
            s.groups[0].filter,
            MailboxFilter::Subtree(vec!["Lists".into()])
        );
        assert_eq!(
            s.groups[1].filter,
            MailboxFilter::Mailboxes(vec!["misc".into()])
        );
        let s = set("a NOTIFY SET STATUS (selected-delayed (MessageNew MessageExpunge FlagChange)) (personal (MailboxName SubscriptionChange)) (inboxes NONE) (mailboxes (a \"b c\") (MessageNew))");
        assert!(s.status && s.selected.expect("sel").delayed);
        assert!(s.groups[0].events.mailbox_name && s.groups[0].events.subscription_change);
        assert_eq!(s.groups[1].filter, MailboxFilter::Inboxes);
        assert_eq!(
            s.groups[2].filter,
            MailboxFilter::Mailboxes(vec!["a".into(), "b c".into()])
        );
        assert!(matches!(
            parse_command(b"a NOTIFY NONE").map(|c| c.body),
            Ok(CommandBody::Notify(None))
        ));
        // Unknown and unsupported events parse; the command says BADEVENT.
        let s = set("a NOTIFY SET (personal (MailboxMetadataChange FooBar))");
        assert_eq!(
            s.groups[0].events.unsupported(),
            ["MailboxMetadataChange", "(unknown)"]
        );
    }

    #[test]
    fn malformed_notify_is_bad() {
        for line in [
            "a NOTIFY",
            "a NOTIFY SET",
            "a NOTIFY SET ()",
            "a NOTIFY SET (personal ())",
            "a NOTIFY SET (everything (MessageNew))",
            "a NOTIFY SET (subtree (MessageNew))",
            // §5.1: MessageNew and MessageExpunge together for selected,
            // FlagChange only with them.
            "a NOTIFY SET (selected (MessageNew))",
            "a NOTIFY SET (selected (FlagChange))",
            "a NOTIFY SET (selected NONE) (selected-delayed NONE)",
            "a NOTIFY SET (selected (MessageNew MessageExpunge MailboxName))",
            "a NOTIFY SET (personal (MessageNew (UID) MessageExpunge))",
            "a NOTIFY NONE extra",
        ] {
            assert_eq!(refused(line), SyntaxKind::Bad, "{line}");
        }
    }

    #[test]
    fn too_many_names_is_limit() {
        let names = vec!["x"; crate::limits::MAX_NOTIFY_NAMES].join(" ");
        assert_eq!(
            refused(&format!("a NOTIFY SET (mailboxes ({names}) (MessageNew))")),
            SyntaxKind::Limit
        );
    }
}
