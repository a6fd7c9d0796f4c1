//! `protocol-tests`: runs the conformance transcripts against an SMTP and/or
//! IMAP server given on the command line, and the outbound section (an
//! MTA's sending side, graded by scripted remote servers) when
//! `--outbound-listen` is given, and prints PASS/FAIL/SKIP/WARN per case
//! with its RFC reference, then a summary. Exit status: 0 when no case
//! failed, 1 when one did, 2 on usage, transcript or probe errors.

use clap::Parser;
use protocol_tests::exec::Target;
use protocol_tests::outbound;
use protocol_tests::report::{self, Format, Summary};
use protocol_tests::suite::{self, CaseResult, Options};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Grade an SMTP (RFC 5321) and/or IMAP (RFC 3501) server against
/// transcripts written from the RFCs.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// SMTP server to test, HOST:PORT.
    #[arg(long)]
    smtp: Option<String>,
    /// IMAP server to test, HOST:PORT.
    #[arg(long)]
    imap: Option<String>,
    /// First account's login name (a full address, or a local part of --domain).
    #[arg(long, required_unless_present = "list")]
    user: Option<String>,
    /// First account's password.
    #[arg(
        long,
        env = "PROTOCOL_TESTS_PASSWORD",
        required_unless_present = "list"
    )]
    password: Option<String>,
    /// Second account's login name (cases marked `# user: 2` skip without it).
    #[arg(long, requires = "password2")]
    user2: Option<String>,
    /// Second account's password.
    #[arg(long, env = "PROTOCOL_TESTS_PASSWORD2")]
    password2: Option<String>,
    /// Mail domain of the accounts (`postmaster@DOMAIN`, local-part
    /// logins). Default: the domain of --user when it is a full address,
    /// else `localhost` (never the greeting's host name, which need not
    /// be a mail domain).
    #[arg(long)]
    domain: Option<String>,
    /// Run only cases whose name contains this (or matches it, with `*`).
    #[arg(long)]
    only: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Default wait for each expected response, in seconds.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Treat failures of cases documented `# differs: NAME` as known.
    #[arg(long)]
    known: Vec<String>,
    /// Read transcripts from this directory instead of the built-in ones.
    #[arg(long)]
    transcripts: Option<PathBuf>,
    /// List the selected cases and exit.
    #[arg(long)]
    list: bool,
    /// The MTA's submission service, HOST:PORT, where the outbound section
    /// submits its messages (AUTH PLAIN as --user when offered, STARTTLS
    /// when offered). Default: --smtp.
    #[arg(long)]
    submission: Option<String>,
    /// Outbound section: where the tool's scripted remote SMTP server
    /// listens, HOST:PORT. The MTA under test must route --outbound-domain
    /// there. Without it the outbound cases SKIP.
    #[arg(long, requires = "outbound_domain")]
    outbound_listen: Option<String>,
    /// Outbound section: the domain the MTA routes to --outbound-listen.
    #[arg(long, requires = "outbound_listen")]
    outbound_domain: Option<String>,
    /// Outbound section: seconds to wait for deliveries, retries and
    /// reports (set the MTA's retry interval well below it).
    #[arg(long, default_value_t = 60.0)]
    outbound_wait: f64,
    /// Outbound section: seconds during which no retry of a refused
    /// recipient, duplicate or forbidden report may come. Default: twice
    /// the longest retry interval observed (5 when none was), at least 2,
    /// at most --outbound-wait.
    #[arg(long)]
    outbound_quiet: Option<f64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cases = match &cli.transcripts {
        Some(d) => suite::load_dir(d),
        None => suite::builtin(),
    };
    let cases = match cases {
        Ok(c) => c,
        Err(errs) => {
            for e in errs {
                eprintln!("transcript error: {e}");
            }
            return ExitCode::from(2);
        }
    };
    if cli.list {
        for c in cases.iter().filter(|c| suite::selected(&c.name, &cli.only)) {
            println!("{} (RFC {}) {}", c.name, c.rfc.join(", RFC "), c.title);
        }
        for c in outbound::cases()
            .iter()
            .filter(|c| suite::selected(c.name, &cli.only))
        {
            println!("{} (RFC {}) {}", c.name, c.rfc.join(", RFC "), c.title);
        }
        return ExitCode::SUCCESS;
    }
    let (Some(user), Some(password)) = (cli.user, cli.password) else {
        eprintln!("give --user and --password");
        return ExitCode::from(2);
    };
    if cli.smtp.is_none() && cli.imap.is_none() && cli.outbound_listen.is_none() {
        eprintln!("give --smtp HOST:PORT, --imap HOST:PORT and/or --outbound-listen HOST:PORT");
        return ExitCode::from(2);
    }
    if !(cli.timeout > 0.0 && cli.timeout <= 600.0) {
        eprintln!("--timeout must be in (0, 600] seconds");
        return ExitCode::from(2);
    }
    let outbound = match (cli.outbound_listen, cli.outbound_domain) {
        (Some(listen), Some(domain)) => {
            let Some(submission) = cli.submission.clone().or_else(|| cli.smtp.clone()) else {
                eprintln!("the outbound section needs --submission HOST:PORT (or --smtp)");
                return ExitCode::from(2);
            };
            if !(cli.outbound_wait > 0.0 && cli.outbound_wait <= 86_400.0) {
                eprintln!("--outbound-wait must be in (0, 86400] seconds");
                return ExitCode::from(2);
            }
            let quiet = match cli.outbound_quiet {
                Some(q) if q > 0.0 && q <= 86_400.0 => Some(Duration::from_secs_f64(q)),
                Some(_) => {
                    eprintln!("--outbound-quiet must be in (0, 86400] seconds");
                    return ExitCode::from(2);
                }
                None => None,
            };
            Some(outbound::Settings {
                listen,
                domain,
                submission,
                wait: Duration::from_secs_f64(cli.outbound_wait),
                quiet,
            })
        }
        _ => None,
    };
    let domain = account_domain(cli.domain, &user);
    let opts = Options {
        target: Target {
            smtp: cli.smtp,
            imap: cli.imap,
            user,
            password,
            user2: cli.user2.zip(cli.password2),
            domain,
            timeout: Duration::from_secs_f64(cli.timeout),
        },
        only: cli.only,
        known: cli.known.iter().map(|s| s.to_ascii_lowercase()).collect(),
    };
    let format = cli.format;
    let print = |r: &CaseResult| {
        if format == Format::Text {
            print!("{}", report::text_line(r));
        }
    };
    let mut results = match suite::run(&cases, &opts, print) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match outbound::run(
        &opts.target,
        outbound.as_ref(),
        &opts.only,
        &opts.known,
        print,
    ) {
        Ok(r) => results.extend(r),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    let sum = Summary::of(&results);
    match format {
        Format::Text => println!("summary: {}", sum.line()),
        Format::Tap => print!("{}", report::tap(&results)),
        Format::Junit => print!("{}", report::junit(&results)),
    }
    if sum.fail > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The accounts' mail domain: `--domain` if given, else the part of
/// `--user` after its last `@`, else `localhost`.
fn account_domain(given: Option<String>, user: &str) -> String {
    if let Some(d) = given {
        return d;
    }
    match user.rsplit_once('@') {
        Some((_, d)) if !d.is_empty() => d.to_string(),
        _ => "localhost".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::account_domain;

    #[test]
    fn domain_comes_from_the_user_unless_given() {
        assert_eq!(account_domain(None, "alice@b.test"), "b.test");
        assert_eq!(account_domain(None, "alice"), "localhost");
        assert_eq!(account_domain(None, "alice@"), "localhost");
        assert_eq!(
            account_domain(Some("x.test".into()), "alice@b.test"),
            "x.test"
        );
    }
}
