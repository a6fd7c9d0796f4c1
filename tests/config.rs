//! `minimail up`'s configuration file as an admin meets it: every flag of
//! `minimail up --help` is a key `minimail config check` prints, `up`
//! runs with the file's settings (`MINIMAIL_CONFIG` or `--config`) under
//! the command line's, and a broken file stops it with the file and line.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use testkit::process::KillOnDrop as Up;

const BIN: &str = env!("CARGO_BIN_EXE_minimail");

fn minimail(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("MINIMAIL_CONFIG")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The long flags `minimail up --help` lists.
fn up_flags() -> Vec<String> {
    let out = minimail(&["up", "--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut flags: Vec<String> = help
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("-h, ").unwrap_or(l);
            let name = l.strip_prefix("--")?;
            Some(name.split([' ', '=', '<', ',']).next()?.to_owned())
        })
        .collect();
    flags.dedup();
    flags
}

#[test]
fn config_check_prints_a_key_for_every_flag_of_up() {
    let flags = up_flags();
    assert!(flags.len() > 30, "{flags:?}");
    let out = minimail(&["config", "check"], &[]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    for flag in flags
        .iter()
        .filter(|f| !["help", "config"].contains(&f.as_str()))
    {
        assert!(
            text.contains(&format!("\n{flag} = "))
                || text.contains(&format!("\n# {flag} is not set")),
            "--{flag} has no key in `minimail config check`:\n{text}"
        );
    }
}

#[test]
fn up_runs_with_the_file_under_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("minimail.toml");
    std::fs::write(
        &conf,
        "# minimail up's settings\n\
         hostname = \"file.example\"\n\
         domain = [\"file.example\", \"other.example\"]\n\
         max-message-size = 12345\n\
         no-tls = true\n\
         no-outbound = true\n",
    )
    .unwrap();
    let c = conf.to_str().unwrap();
    let check = minimail(
        &["config", "check", "--hostname", "cli.example"],
        &[("MINIMAIL_CONFIG", c)],
    );
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        text.contains("hostname = \"cli.example\"  # command line"),
        "{text}"
    );
    assert!(
        text.contains("max-message-size = 12345  # file, line 4"),
        "{text}"
    );
    assert!(
        text.contains("domain = [\"file.example\", \"other.example\"]  # file, line 3"),
        "{text}"
    );

    let (child, line, _) = testkit::server::minimail_up(
        BIN,
        &dir.path().join("m.db"),
        &["--hostname", "cli.example"],
        &[("MINIMAIL_CONFIG", c)],
    );
    let _up = Up(child);
    assert!(!line.contains("TLS on"), "no-tls from the file: {line}");
    let smtp = testkit::server::addr_of(&line, "smtp");
    let s = TcpStream::connect(&smtp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    assert!(greeting.starts_with("220 cli.example "), "{greeting}");
    (&s).write_all(b"EHLO client.example\r\n").unwrap();
    let mut ehlo = String::new();
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "{ehlo}");
        ehlo.push_str(&l);
        if l.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
    assert!(ehlo.contains("250-SIZE 12345\r\n"), "{ehlo}");
    (&s).write_all(b"MAIL FROM:<a@file.example>\r\nRCPT TO:<nobody@other.example>\r\n")
        .unwrap();
    let mut mail = String::new();
    r.read_line(&mut mail).unwrap();
    let mut rcpt = String::new();
    r.read_line(&mut rcpt).unwrap();
    // other.example is one of ours (from the file): no such user, not "relay denied".
    assert!(rcpt.starts_with("550 5.1.1"), "{rcpt}");
}

#[test]
fn a_broken_file_stops_up_with_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.toml");
    std::fs::write(&conf, "hostname = \"x.example\"\n\nmax-mesage-size = 10\n").unwrap();
    let db = dir.path().join("m.db");
    let c = conf.to_str().unwrap();
    let out = minimail(
        &[
            "up",
            "--config",
            c,
            "--db",
            db.to_str().unwrap(),
            "--smtp",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "bad.toml:3: unknown key `max-mesage-size` (did you mean `max-message-size`?)"
        ),
        "{err}"
    );
    assert!(!db.exists(), "nothing was started");
    let out = minimail(&["config", "check", "--config", c], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:3: unknown key"));
    assert!(out.stdout.is_empty());

    // Wrong type and bad value.
    std::fs::write(&conf, "trace = 1\n").unwrap();
    let out = minimail(&["config", "check", "--config", c], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.toml:1: `trace` wants true or false, not an integer"),
        "{out:?}"
    );
    std::fs::write(&conf, "imap = [\"127.0.0.1:143\"]\nretry-min = -5\n").unwrap();
    let out = minimail(&["config", "check", "--config", c], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("bad.toml:2: invalid value '-5' for '--retry-min"),
        "{out:?}"
    );
    // A transport map that does not load is caught by the check too.
    let map = dir.path().join("transport");
    std::fs::write(&map, "b.example nonsense=\n").unwrap();
    std::fs::write(
        &conf,
        format!("transport-map = {:?}\n", map.to_str().unwrap()),
    )
    .unwrap();
    let out = minimail(&["config", "check", "--config", c], &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("transport"),
        "{out:?}"
    );
}
