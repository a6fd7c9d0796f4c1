//! Fuzz target: the IMAP command framer with literals (RFC 3501 §4.3,
//! §7.5, LITERAL+ RFC 7888) and the command parser (RFC 3501 §9 grammar:
//! `imapd::framer::Framer` then `imapd::parse::parse_command`).
//!
//! The input is fed to the framer in fuzz-chosen chunks, as it would arrive
//! from the network; every complete command is parsed. The framer must
//! consume all input it is given or wait for more, and every command it
//! hands out must be within its limits.
#![no_main]

use imapd::framer::{Frame, Framer, Limits};
use libfuzzer_sys::fuzz_target;
use netloop::InBuf;

const LIMITS: Limits = Limits {
    max_line: 8 * 1024,
    max_literal: 16 * 1024,
    max_command: 64 * 1024,
};

fuzz_target!(|data: &[u8]| {
    let (cuts, input) = data.split_at(data.len().min(2));
    let step = cuts.iter().map(|&c| c as usize).sum::<usize>().max(1);
    let mut framer = Framer::new(LIMITS);
    let mut buf = InBuf::new();
    for chunk in input.chunks(step) {
        buf.extend(chunk);
        loop {
            match framer.poll(&mut buf) {
                Frame::Command(cmd) => {
                    assert!(cmd.len() <= LIMITS.max_command + LIMITS.max_line + 2);
                    let _ = imapd::framer::tag_of(&cmd);
                    match imapd::parse::parse_command(&cmd) {
                        Ok(c) => {
                            let _ = format!("{c:?}");
                        }
                        Err(e) => {
                            let _ = (e.tag, e.reason);
                        }
                    }
                }
                Frame::Continue | Frame::LineTooLong { .. } | Frame::LiteralTooBig { .. } => {}
                Frame::Incomplete => break,
            }
        }
    }
});
