//! One mail transaction: MAIL, RCPT (pipelined when offered), DATA with
//! dot-stuffing, and a result per recipient.

use std::time::Duration;

use super::encode::{check_path, xtext};
use super::session::Error;
use super::{Envelope, Failure, Rcpt, RcptResult, Reply, Session, PIPELINE_BATCH, WRITE_CHUNK};

impl Session {
    /// One mail transaction: a result per recipient of `env`, in order.
    ///
    /// MAIL FROM carries SIZE= when offered, BODY=8BITMIME when offered and
    /// the message has 8-bit bytes, SMTPUTF8 when an address needs it, and
    /// the DSN parameters (RET, ENVID; NOTIFY, ORCPT on RCPT) only when the
    /// server offers DSN. With PIPELINING, MAIL and the RCPTs go out in
    /// batches; DATA is sent only once some recipient was accepted (else
    /// RSET). The message is dot-stuffed with CRLF line ends.
    ///
    /// A refused MAIL, DATA or final dot decides every recipient the server
    /// had not already refused: 5xx permanent, anything else temporary. An
    /// address that needs SMTPUTF8 when the server lacks it, or that cannot
    /// be put in a command (spaces, angle brackets, control characters),
    /// is refused here with a made-up reply (`553 5.6.7`, `553 5.1.3`/`5.1.7`)
    /// and nothing is sent for it.
    ///
    /// `Err` only when the connection is unusable (I/O error, timeout,
    /// unparseable reply, 421): every recipient of `env` is then still to
    /// be tried, and [`Session::reusable`] is false.
    pub fn send(&mut self, env: &Envelope) -> Result<Vec<RcptResult>, Failure> {
        if self.broken {
            return Err(Failure::Temporary(format!(
                "{}: connection not usable",
                self.peer
            )));
        }
        let n = env.rcpts.len();

        // Refusals decided here, before anything is sent.
        if let Err(why) = check_path(env.from) {
            let reply = Reply::local(
                553,
                "5.1.7",
                &format!("bad sender address <{}>: {why}", env.from.escape_debug()),
            );
            return Ok(vec![RcptResult::Permanent(reply); n]);
        }
        let needs_utf8 = !env.from.is_ascii() || env.rcpts.iter().any(|r| !r.addr.is_ascii());
        if needs_utf8 && !self.ext.smtputf8 {
            let reply = Reply::local(
                553,
                "5.6.7",
                &format!(
                    "{} does not support SMTPUTF8, needed for a non-ASCII address",
                    self.peer
                ),
            );
            return Ok(vec![RcptResult::Permanent(reply); n]);
        }
        let mut results: Vec<Option<RcptResult>> = vec![None; n];
        let mut commands: Vec<(Command, Vec<u8>)> = Vec::with_capacity(n + 2);
        commands.push((
            Command::Mail,
            self.mail_command(env, needs_utf8).into_bytes(),
        ));
        for (i, rcpt) in env.rcpts.iter().enumerate() {
            match self.rcpt_command(rcpt) {
                Ok(line) => commands.push((Command::Rcpt(i), line.into_bytes())),
                Err(why) => {
                    let text = format!(
                        "bad recipient address <{}>: {why}",
                        rcpt.addr.escape_debug()
                    );
                    results[i] = Some(RcptResult::Permanent(Reply::local(553, "5.1.3", &text)));
                }
            }
        }
        if commands.len() == 1 {
            let results = results.into_iter().flatten().collect();
            return Ok(results);
        }
        self.transaction(env, commands, results)
            .map_err(|e| self.fail("transaction", e).into_failure())
    }

    fn transaction(
        &mut self,
        env: &Envelope,
        commands: Vec<(Command, Vec<u8>)>,
        mut results: Vec<Option<RcptResult>>,
    ) -> Result<Vec<RcptResult>, Error> {
        // MAIL and the RCPTs, in batches with PIPELINING (RFC 2920), one by
        // one without. DATA waits for the RCPT replies: no recipient
        // accepted, no DATA.
        let batch = if self.ext.pipelining {
            PIPELINE_BATCH
        } else {
            1
        };
        let mut mail_refused: Option<Reply> = None;
        let mut accepted = 0usize;
        let mut next = 0;
        while next < commands.len() && mail_refused.is_none() {
            let end = (next + batch).min(commands.len());
            let mut out = Vec::new();
            for (_, line) in &commands[next..end] {
                out.extend_from_slice(line);
            }
            self.write_all(&out)?;
            for (command, _) in &commands[next..end] {
                let reply = self.read_reply(self.command_timeout)?;
                if reply.code == 421 {
                    return Err(Error::Refused(reply));
                }
                match *command {
                    Command::Mail if !reply.is_positive() => mail_refused = Some(reply),
                    Command::Mail => {}
                    // After a refused MAIL, RCPT replies are 503s: ignored.
                    Command::Rcpt(_) if mail_refused.is_some() => {}
                    Command::Rcpt(_) if reply.is_positive() => accepted += 1,
                    Command::Rcpt(i) => results[i] = Some(RcptResult::refused(&reply)),
                }
            }
            next = end;
        }

        // What decides the fate of the recipients the server accepted.
        let outcome = if let Some(mail) = mail_refused {
            self.reset();
            mail
        } else if accepted == 0 {
            self.reset();
            Reply::local(554, "5.5.1", "no valid recipients")
        } else {
            let data = self.command_reply(b"DATA\r\n", self.command_timeout)?;
            if data.code == 354 {
                self.write_body(env.body)?;
                let reply = self.read_reply(self.data_timeout)?;
                if reply.code == 421 {
                    return Err(Error::Refused(reply));
                }
                reply
            } else if data.code >= 400 {
                self.reset();
                data
            } else {
                self.broken = true;
                return Err(Error::Broken(format!("unexpected reply to DATA: {data}")));
            }
        };
        Ok(results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| RcptResult::from_final(&outcome)))
            .collect())
    }

    /// Send a command, read its reply whatever it is (421 excepted).
    pub(super) fn command_reply(&mut self, line: &[u8], timeout: Duration) -> Result<Reply, Error> {
        self.write_all(line)?;
        let reply = self.read_reply(timeout)?;
        if reply.code == 421 {
            return Err(Error::Refused(reply));
        }
        Ok(reply)
    }

    pub(super) fn mail_command(&self, env: &Envelope, needs_utf8: bool) -> String {
        let mut line = format!("MAIL FROM:<{}>", env.from);
        if self.ext.size {
            line.push_str(&format!(" SIZE={}", env.body.len()));
        }
        if self.ext.eightbitmime && !env.body.is_ascii() {
            line.push_str(" BODY=8BITMIME");
        }
        if needs_utf8 {
            line.push_str(" SMTPUTF8");
        }
        if self.ext.dsn {
            if let Some(ret) = env.ret {
                if ret.eq_ignore_ascii_case("FULL") || ret.eq_ignore_ascii_case("HDRS") {
                    line.push_str(&format!(" RET={}", ret.to_ascii_uppercase()));
                }
            }
            if let Some(envid) = env.envid {
                line.push_str(&format!(" ENVID={}", xtext(envid)));
            }
        }
        line.push_str("\r\n");
        line
    }

    pub(super) fn rcpt_command(&self, rcpt: &Rcpt) -> Result<String, &'static str> {
        check_path(rcpt.addr)?;
        if rcpt.addr.is_empty() {
            return Err("empty address");
        }
        let mut line = format!("RCPT TO:<{}>", rcpt.addr);
        if self.ext.dsn {
            if let Some(notify) = rcpt.notify {
                if !notify.is_empty()
                    && notify.bytes().all(|b| b.is_ascii_alphabetic() || b == b',')
                {
                    line.push_str(&format!(" NOTIFY={}", notify.to_ascii_uppercase()));
                }
            }
            if let Some(orcpt) = rcpt.orcpt {
                let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
                if !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    line.push_str(&format!(" ORCPT={kind};{}", xtext(addr)));
                }
            }
        }
        line.push_str("\r\n");
        Ok(line)
    }

    /// RSET after a transaction that did not complete.
    /// The transaction's results are known by then, so a failure here only
    /// makes the session unusable for another.
    pub(super) fn reset(&mut self) {
        if let Err(e) = self.command(b"RSET\r\n", self.command_timeout) {
            let why = match e {
                Error::Broken(why) => why,
                Error::Refused(reply) => reply.to_string(),
            };
            log::debug!("{}: RSET: {why}", self.peer);
            self.broken = true;
        }
    }

    /// The message, dot-stuffed, with CRLF line ends, then the final dot
    /// (traced as a byte count, never as content).
    pub(super) fn write_body(&mut self, body: &[u8]) -> Result<(), Error> {
        let traced = self.trace;
        self.trace = traced.map(|_| super::session::Traced::Content);
        let result = self.write_stuffed(body);
        self.trace = traced;
        result
    }

    fn write_stuffed(&mut self, body: &[u8]) -> Result<(), Error> {
        let mut out = Vec::with_capacity(WRITE_CHUNK + 8);
        let mut line_start = true;
        let mut i = 0;
        while i < body.len() {
            let byte = body[i];
            match byte {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                    if body.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                    line_start = true;
                }
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    line_start = true;
                }
                _ => {
                    if line_start && byte == b'.' {
                        out.push(b'.');
                    }
                    out.push(byte);
                    line_start = false;
                }
            }
            i += 1;
            if out.len() >= WRITE_CHUNK {
                self.write_all(&out)?;
                out.clear();
            }
        }
        if !line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.write_all(&out)
    }
}

/// Which command a pipelined reply answers.
#[derive(Clone, Copy)]
pub(super) enum Command {
    Mail,
    Rcpt(usize),
}
