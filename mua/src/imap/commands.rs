//! Typed IMAP commands on top of `Client::run` (RFC 3501 §6): LIST,
//! STATUS, SELECT/EXAMINE, UID SEARCH/FETCH/STORE/COPY, UID MOVE (RFC 6851)
//! with its COPY + \\Deleted + EXPUNGE fallback, UID EXPUNGE (RFC 4315),
//! APPEND, CREATE, NOOP and IDLE (RFC 2177).

use super::args::Arg;
use super::client::{Client, Done};
use super::fetch::{fetch_data, FetchData};
use super::response::{RespText, Response, Status, Untagged};
use crate::error::{MuaError, Result};
use std::time::Duration;

/// A mailbox from LIST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    /// Decoded name.
    pub name: String,
    /// Name attributes.
    pub flags: Vec<String>,
    /// Hierarchy delimiter.
    pub delim: Option<char>,
}

impl MailboxInfo {
    /// False for `\Noselect` / `\NonExistent` placeholders.
    pub fn selectable(&self) -> bool {
        !self.flags.iter().any(|f| {
            f.eq_ignore_ascii_case("\\Noselect") || f.eq_ignore_ascii_case("\\NonExistent")
        })
    }
}

/// What SELECT/EXAMINE reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Mailbox name.
    pub name: String,
    /// Number of messages.
    pub exists: u32,
    /// UIDVALIDITY.
    pub uid_validity: Option<u32>,
    /// UIDNEXT.
    pub uid_next: Option<u32>,
    /// HIGHESTMODSEQ (RFC 7162), when the server keeps them.
    pub highest_modseq: Option<u64>,
}

impl Client {
    /// LIST "" "*": every mailbox.
    ///
    /// # Errors
    /// Transport or server refusal.
    pub fn list(&mut self) -> Result<Vec<MailboxInfo>> {
        let done = self.run_ok(vec![Arg::raw("LIST"), Arg::str(""), Arg::str("*")])?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::List { flags, delim, name } => Some(MailboxInfo { name, flags, delim }),
                _ => None,
            })
            .collect())
    }

    /// STATUS mailbox (MESSAGES UNSEEN): (total, unseen).
    ///
    /// # Errors
    /// `NotFound` if the mailbox does not exist.
    pub fn status(&mut self, mailbox: &str) -> Result<(u64, u64)> {
        let done = self.run(
            vec![
                Arg::raw("STATUS"),
                Arg::Mailbox(mailbox.into()),
                Arg::raw("(MESSAGES UNSEEN)"),
            ],
            None,
        )?;
        if done.status != Status::Ok {
            return Err(MuaError::NotFound(format!(
                "mailbox {mailbox}: {}",
                done.text
            )));
        }
        let mut total = 0;
        let mut unseen = 0;
        for u in done.untagged {
            if let Untagged::Status { items, .. } = u {
                for (k, v) in items {
                    match k.as_str() {
                        "MESSAGES" => total = v,
                        "UNSEEN" => unseen = v,
                        _ => {}
                    }
                }
            }
        }
        Ok((total, unseen))
    }

    /// Whether extension `ext` is on for this session (RFC 5161): asks with
    /// ENABLE the first time. False when the server refuses (e.g. ENABLE
    /// once a mailbox is selected) or does not confirm.
    ///
    /// # Errors
    /// Transport failure.
    pub fn enable(&mut self, ext: &str) -> Result<bool> {
        let ext = ext.to_ascii_uppercase();
        if self.enabled.contains(&ext) {
            return Ok(true);
        }
        let done = self.run(vec![Arg::raw("ENABLE"), Arg::raw(&ext)], None)?;
        for u in &done.untagged {
            if let Untagged::Other(text) = u {
                let mut w = text.split_whitespace().skip_while(|k| *k == "*");
                if w.next().is_some_and(|k| k.eq_ignore_ascii_case("ENABLED")) {
                    self.enabled
                        .extend(w.map(|e| e.to_ascii_uppercase()).filter(|e| !e.is_empty()));
                }
            }
        }
        Ok(done.status == Status::Ok && self.enabled.contains(&ext))
    }

    /// SELECT (or EXAMINE when `read_only`).
    ///
    /// # Errors
    /// `NotFound` when the server refuses the mailbox.
    pub fn select(&mut self, mailbox: &str, read_only: bool) -> Result<Selection> {
        Ok(self.select_with(mailbox, read_only, None)?.0)
    }

    /// SELECT/EXAMINE with parameters (e.g. `(QRESYNC (v m))`, RFC 7162
    /// §3.2.5); also returns the untagged data (VANISHED, FETCH) it brought.
    ///
    /// # Errors
    /// `NotFound` when the server refuses the mailbox.
    pub fn select_with(
        &mut self,
        mailbox: &str,
        read_only: bool,
        params: Option<&str>,
    ) -> Result<(Selection, Vec<Untagged>)> {
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        let mut args = vec![Arg::raw(verb), Arg::Mailbox(mailbox.into())];
        if let Some(p) = params {
            args.push(Arg::raw(p));
        }
        let done = self.run(args, None)?;
        if done.status != Status::Ok {
            return Err(MuaError::NotFound(format!(
                "mailbox {mailbox}: {}",
                done.text
            )));
        }
        let mut sel = Selection {
            name: mailbox.to_string(),
            ..Selection::default()
        };
        let mut rest = Vec::new();
        for u in done.untagged {
            match u {
                Untagged::Exists(n) => sel.exists = n,
                Untagged::State(
                    Status::Ok,
                    RespText {
                        code: Some(ref code),
                        ..
                    },
                ) => {
                    let mut w = code.split_whitespace();
                    let key = w.next().unwrap_or_default().to_ascii_uppercase();
                    let val = w.next();
                    match key.as_str() {
                        "UIDVALIDITY" => sel.uid_validity = val.and_then(|v| v.parse().ok()),
                        "UIDNEXT" => sel.uid_next = val.and_then(|v| v.parse().ok()),
                        "HIGHESTMODSEQ" => sel.highest_modseq = val.and_then(|v| v.parse().ok()),
                        _ => {}
                    }
                }
                other => rest.push(other),
            }
        }
        Ok((sel, rest))
    }

    /// UID SEARCH with the given criteria; adds `CHARSET UTF-8` when needed.
    ///
    /// # Errors
    /// `Refused` if the server rejects the criteria.
    pub fn uid_search(&mut self, criteria: Vec<Arg>) -> Result<Vec<u32>> {
        let non_ascii = criteria.iter().any(|a| match a {
            Arg::Str(b) | Arg::Literal(b) => !b.is_ascii(),
            _ => false,
        });
        let mut args = vec![Arg::raw("UID SEARCH")];
        if non_ascii {
            args.push(Arg::raw("CHARSET UTF-8"));
        }
        args.extend(criteria);
        let done = self.run_ok(args)?;
        let mut uids = Vec::new();
        for u in done.untagged {
            if let Untagged::Search(v) = u {
                uids.extend(v);
            }
        }
        Ok(uids)
    }

    /// UID FETCH `set` `items`; returns data for messages that carried a UID.
    ///
    /// # Errors
    /// Transport or refusal.
    pub fn uid_fetch(&mut self, set: &str, items: &str) -> Result<Vec<FetchData>> {
        let done = self.run_ok(vec![Arg::raw("UID FETCH"), Arg::raw(set), Arg::raw(items)])?;
        Ok(done
            .untagged
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Fetch { seq, items } => Some(fetch_data(seq, &items)),
                _ => None,
            })
            .filter(|d| d.uid.is_some())
            .collect())
    }

    /// UID STORE `set` `op` (flags), silently; op is `+FLAGS` or `-FLAGS`.
    ///
    /// # Errors
    /// Transport or refusal.
    pub fn uid_store(&mut self, set: &str, op: &str, flags: &[&str]) -> Result<()> {
        self.run_ok(vec![
            Arg::raw("UID STORE"),
            Arg::raw(set),
            Arg::raw(format!("{op}.SILENT")),
            Arg::raw(format!("({})", flags.join(" "))),
        ])?;
        Ok(())
    }

    /// UID COPY to `dest`.
    ///
    /// # Errors
    /// `NotFound` on `[TRYCREATE]`, else `Refused`.
    pub fn uid_copy(&mut self, set: &str, dest: &str) -> Result<()> {
        let done = self.run(
            vec![
                Arg::raw("UID COPY"),
                Arg::raw(set),
                Arg::Mailbox(dest.into()),
            ],
            None,
        )?;
        Self::dest_result(done, dest)
    }

    fn dest_result(done: Done, dest: &str) -> Result<()> {
        match done.status {
            Status::Ok => Ok(()),
            _ if done.text.code.as_deref().is_some_and(|c| {
                c.eq_ignore_ascii_case("TRYCREATE") || c.eq_ignore_ascii_case("NONEXISTENT")
            }) =>
            {
                Err(MuaError::NotFound(format!("mailbox {dest}: {}", done.text)))
            }
            _ => Err(MuaError::Refused(done.text.to_string())),
        }
    }

    /// Moves messages: UID MOVE when advertised, else COPY + \Deleted + expunge.
    ///
    /// # Errors
    /// `NotFound` if `dest` does not exist.
    pub fn uid_move(&mut self, set: &str, dest: &str) -> Result<()> {
        if self.has("MOVE") {
            let done = self.run(
                vec![
                    Arg::raw("UID MOVE"),
                    Arg::raw(set),
                    Arg::Mailbox(dest.into()),
                ],
                None,
            )?;
            return Self::dest_result(done, dest);
        }
        self.uid_copy(set, dest)?;
        self.uid_store(set, "+FLAGS", &["\\Deleted"])?;
        self.uid_expunge(set)
    }

    /// Removes \Deleted messages: UID EXPUNGE (UIDPLUS) for just `set`,
    /// else a plain EXPUNGE.
    ///
    /// # Errors
    /// Transport or refusal.
    pub fn uid_expunge(&mut self, set: &str) -> Result<()> {
        if self.has("UIDPLUS") {
            self.run_ok(vec![Arg::raw("UID EXPUNGE"), Arg::raw(set)])?;
        } else {
            self.run_ok(vec![Arg::raw("EXPUNGE")])?;
        }
        Ok(())
    }

    /// APPEND a message with flags.
    ///
    /// # Errors
    /// `NotFound` on `[TRYCREATE]`, else `Refused`.
    pub fn append(&mut self, mailbox: &str, flags: &[&str], data: &[u8]) -> Result<()> {
        let done = self.run(
            vec![
                Arg::raw("APPEND"),
                Arg::Mailbox(mailbox.into()),
                Arg::raw(format!("({})", flags.join(" "))),
                Arg::Literal(data.to_vec()),
            ],
            None,
        )?;
        Self::dest_result(done, mailbox)
    }

    /// Creates a mailbox.
    ///
    /// # Errors
    /// `Refused` if the server says no.
    pub fn create(&mut self, mailbox: &str) -> Result<()> {
        self.run_ok(vec![Arg::raw("CREATE"), Arg::Mailbox(mailbox.into())])?;
        Ok(())
    }

    /// NOOP: lets the server report new mail.
    ///
    /// # Errors
    /// Transport failure.
    pub fn noop(&mut self) -> Result<Vec<Untagged>> {
        Ok(self.run_ok(vec![Arg::raw("NOOP")])?.untagged)
    }

    /// IDLE until the server reports a change or `wait` passes, then DONE.
    /// Returns the untagged data seen (empty on timeout). Falls back to NOOP
    /// after sleeping when IDLE is not advertised.
    ///
    /// # Errors
    /// Transport failure or refusal.
    pub fn idle(&mut self, wait: Duration) -> Result<Vec<Untagged>> {
        if !self.has("IDLE") {
            std::thread::sleep(wait.min(Duration::from_secs(30)));
            return self.noop();
        }
        let tag = format!("a{}", self.next_tag);
        self.next_tag += 1;
        self.conn
            .send_line(format!("{tag} IDLE").as_bytes(), None)?;
        let mut seen = Vec::new();
        loop {
            match self.read_response()? {
                Response::Continue(_) => break,
                Response::Tagged { status, text, .. } => {
                    return Err(MuaError::Refused(format!("IDLE: {status:?} {text}")));
                }
                Response::Untagged(u) => self.check_bye(u, &mut seen)?,
            }
        }
        self.conn.set_read_timeout(Some(wait))?;
        let got = self.read_response();
        self.conn.set_read_timeout(Some(crate::net::READ_TIMEOUT))?;
        match got {
            Ok(Response::Untagged(u)) => self.check_bye(u, &mut seen)?,
            Ok(_) => {}
            Err(MuaError::Protocol(m)) if m.starts_with("timed out") => {}
            Err(e) => return Err(e),
        }
        self.conn.send_line(b"DONE", None)?;
        let done = self.finish(&tag, seen)?;
        Ok(done.untagged)
    }
}
