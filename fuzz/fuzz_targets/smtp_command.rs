//! Fuzz target: the SMTP command parser (`smtpd::command::Command::parse`,
//! RFC 5321 §4.1 ABNF) and the DATA reader (`smtpd::data::DataReader`,
//! RFC 5321 §4.1.1.4 dot-unstuffing, §4.5.3.1.6 line limit).
//!
//! Every line of the input is parsed as a command; a parsed MAIL or RCPT
//! path is printed back and must parse to the same path. The whole input is
//! also read as DATA content twice, once in one piece and once split at
//! fuzz-chosen points: both readings must agree (chunking never changes
//! what ends a message, RFC 5321 §4.1.1.4 / smuggling).
#![no_main]

use libfuzzer_sys::fuzz_target;
use smtpd::command::Command;
use smtpd::data::DataReader;

fn commands(input: &[u8]) {
    for line in input.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match Command::parse(line) {
            Ok(Command::Mail { from, params }) => {
                let mut again = format!("MAIL FROM:{from}");
                if params.smtputf8 {
                    again.push_str(" SMTPUTF8");
                }
                match Command::parse(again.as_bytes()) {
                    Ok(Command::Mail { from: f2, .. }) => assert_eq!(from, f2, "{again:?}"),
                    other => panic!("MAIL path does not parse back: {again:?} -> {other:?}"),
                }
            }
            Ok(Command::Rcpt { to }) => {
                let again = format!("RCPT TO:{to}");
                match Command::parse(again.as_bytes()) {
                    Ok(Command::Rcpt { to: t2 }) => assert_eq!(to, t2, "{again:?}"),
                    other => panic!("RCPT path does not parse back: {again:?} -> {other:?}"),
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = e.reply();
            }
        }
    }
}

fn read_data(input: &[u8], cuts: &[usize]) -> (usize, bool, smtpd::data::Content) {
    let mut r = DataReader::new(1000, 64 * 1024);
    let mut pos = 0;
    let mut ended = false;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(input.len());
    for b in bounds {
        if b < pos {
            continue;
        }
        let (n, end) = r.feed(&input[pos..b]);
        assert!(n <= b - pos, "consumed more than given");
        pos += n;
        if end {
            ended = true;
            break;
        }
        assert_eq!(pos, b, "input left unconsumed without an end");
    }
    let c = r.finish();
    if !c.too_big {
        assert_eq!(c.body.len() as u64, c.size, "size disagrees with body");
    }
    (pos, ended, c)
}

fuzz_target!(|data: &[u8]| {
    // First bytes choose split points for the chunked DATA reading.
    let (cuts, input) = data.split_at(data.len().min(4));
    commands(input);
    let whole = read_data(input, &[]);
    let cuts: Vec<usize> = cuts.iter().map(|&c| c as usize * 7).collect();
    let chunked = read_data(input, &cuts);
    assert_eq!(whole, chunked, "chunking changed the DATA reading");
});
