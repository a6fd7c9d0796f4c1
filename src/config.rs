//! `minimail up`'s settings from a TOML file (`--config PATH` or
//! `MINIMAIL_CONFIG`), and `minimail config check`, which prints the
//! settings in effect.
//!
//! Every flag of `minimail up` is a key of the file, named as the flag
//! without its dashes (`--max-message-size N` is `max-message-size = N`,
//! `--trace` is `trace = true`, a repeatable flag takes an array:
//! `domain = ["example.org", "example.net"]`). Nothing here lists the
//! flags: the keys are read off clap's own definition of `up`, so a flag
//! added to `UpArgs` is a key at once. The file's values are turned into
//! command-line arguments and clap parses them together with the real
//! command line, so they are checked exactly as flags are.
//!
//! Precedence, highest first: the command line, the environment variables
//! clap reads (`MINIMAIL_DB`...), the file, the defaults. A key whose flag
//! (or a flag it conflicts with) is on the command line is ignored.
//!
//! A key that is no flag, a value of the wrong type or one clap refuses is
//! an error naming the file and the line.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use toml::{Spanned, Value};

/// The id of the flag naming the file (it has no key of its own).
pub const CONFIG_ID: &str = "config";

/// Flags that are no settings: never keys.
const NOT_KEYS: [&str; 3] = ["help", "version", CONFIG_ID];

/// What went wrong reading the settings.
#[derive(Debug)]
pub enum Error {
    /// The command line (or the merged arguments) did not parse: clap's
    /// own message, printed and exited with as clap does.
    Clap(clap::Error),
    /// The file is unreadable or wrong; the message names the file and line.
    File(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Clap(e) => write!(f, "{}", clap_message(e)),
            Error::File(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// The settings of one start (or reload) of `minimail up`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The merged arguments as clap parsed them.
    pub matches: ArgMatches,
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// Flag id → the file's line, for each setting the file supplied.
    pub from_file: BTreeMap<String, usize>,
}

/// The flags of `up` that are settings (everything but `--help` and
/// `--config`), with their keys (the long names).
pub fn keys(up: &Command) -> Vec<(&Arg, &str)> {
    up.get_arguments()
        .filter(|a| !NOT_KEYS.contains(&a.get_id().as_str()))
        .filter_map(|a| Some((a, a.get_long()?)))
        .collect()
}

/// Parse `argv` (what follows `up` on the command line) with the file
/// named by `--config` or `MINIMAIL_CONFIG`, if any.
///
/// # Errors
/// A command line clap refuses, an unreadable or wrong file.
pub fn load(up: &Command, argv: &[OsString]) -> Result<Loaded, Error> {
    let mut up = up.clone();
    up.build();
    let with_name = |args: &[OsString]| {
        std::iter::once(OsString::from("up"))
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
    };
    let first = up
        .clone()
        .try_get_matches_from(with_name(argv))
        .map_err(Error::Clap)?;
    let Some(file) = first.get_one::<PathBuf>(CONFIG_ID).cloned() else {
        return Ok(Loaded {
            matches: first,
            file: None,
            from_file: BTreeMap::new(),
        });
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| Error::File(format!("cannot read {}: {e}", file.display())))?;
    let (args, from_file) = file_args(&up, &first, &file, &text)?;
    let merged: Vec<OsString> = args.into_iter().chain(argv.iter().cloned()).collect();
    let matches = up
        .try_get_matches_from(with_name(&merged))
        .map_err(|e| Error::File(format!("{}: {}", file.display(), clap_message(&e))))?;
    Ok(Loaded {
        matches,
        file: Some(file),
        from_file,
    })
}

/// The arguments the file stands for, and the line of each key used.
fn file_args(
    up: &Command,
    given: &ArgMatches,
    file: &Path,
    text: &str,
) -> Result<(Vec<OsString>, BTreeMap<String, usize>), Error> {
    let f = file.display();
    let line_of = |at: usize| {
        let at = (0..=at.min(text.len()))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[..at].matches('\n').count() + 1
    };
    // TOML syntax errors on one line, like the others (they go to logs).
    let table: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| format!("{}:", line_of(s.start)))
            .unwrap_or_default();
        Error::File(format!(
            "{f}:{line} {}",
            e.message().trim().replace('\n', "; ")
        ))
    })?;
    let known = keys(up);
    let explicit = |id: &str| {
        given
            .value_source(id)
            .is_some_and(|s| s != ValueSource::DefaultValue)
    };
    let mut args = Vec::new();
    let mut from_file = BTreeMap::new();
    for (key, value) in &table {
        let line = line_of(key.span().start);
        let Some((arg, long)) = known.iter().find(|(_, long)| *long == key.get_ref()) else {
            let hint = known
                .iter()
                .map(|(_, l)| (edit_distance(l, key.get_ref()), *l))
                .min()
                .filter(|(d, _)| *d <= 2)
                .map(|(_, l)| format!(" (did you mean `{l}`?)"))
                .unwrap_or_default();
            return Err(Error::File(format!(
                "{f}:{line}: unknown key `{}`{hint}; the keys are the flags of `minimail up --help` without their dashes",
                key.get_ref()
            )));
        };
        let id = arg.get_id().as_str();
        // The command line (or the environment) wins, also over a key
        // whose flag conflicts with one given there (`no-tls` in the file,
        // `--tls-cert` on the command line).
        if explicit(id)
            || up
                .get_arguments()
                .any(|other| explicit(other.get_id().as_str()) && conflict(up, arg, other))
        {
            continue;
        }
        let wrong = |want: &str| {
            Error::File(format!(
                "{f}:{line}: `{long}` wants {want}, not {}",
                type_name(value.get_ref())
            ))
        };
        let values: Vec<String> = match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue, Value::Boolean(b)) => {
                if *b {
                    args.push(OsString::from(format!("--{long}")));
                }
                from_file.insert(id.to_owned(), line);
                continue;
            }
            (ArgAction::SetTrue, _) => return Err(wrong("true or false")),
            (ArgAction::Append, Value::Array(items)) => items
                .iter()
                .map(|v| scalar(v).ok_or_else(|| wrong("an array of strings or numbers")))
                .collect::<Result<_, _>>()?,
            (ArgAction::Append, v) => {
                vec![scalar(v).ok_or_else(|| wrong("a string, a number or an array of them"))?]
            }
            (_, v) => vec![scalar(v).ok_or_else(|| wrong("a string or a number"))?],
        };
        for v in &values {
            check_value(up, long, v).map_err(|why| Error::File(format!("{f}:{line}: {why}")))?;
            args.push(OsString::from(format!("--{long}={v}")));
        }
        from_file.insert(id.to_owned(), line);
    }
    Ok((args, from_file))
}

/// True if clap refuses `a` and `b` together (declared on either side).
pub fn conflict(up: &Command, a: &Arg, b: &Arg) -> bool {
    let names = |x: &Arg, y: &Arg| {
        up.get_arg_conflicts_with(x)
            .iter()
            .any(|c| c.get_id() == y.get_id())
    };
    names(a, b) || names(b, a)
}

/// A string or a number as the flag would be given it.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        _ => None,
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "an array",
        Value::Table(_) => "a table",
    }
}

/// Check one value as clap will (the flag's own value parser), so that a
/// bad value is reported with the file's line; rules between flags
/// (`requires`, conflicts) are left to the parse of everything together.
fn check_value(up: &Command, long: &str, value: &str) -> Result<(), String> {
    use clap::error::ErrorKind;
    match up.clone().try_get_matches_from([
        OsString::from("up"),
        OsString::from(format!("--{long}={value}")),
    ]) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::InvalidUtf8
            ) =>
        {
            Err(clap_message(&e))
        }
        _ => Ok(()),
    }
}

/// clap's message on one line, without its `error: `, usage and hints.
fn clap_message(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let text: Vec<&str> = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect();
    let text = text.join(" ");
    text.strip_prefix("error: ").unwrap_or(&text).to_owned()
}

/// Levenshtein distance (for suggesting the key meant; keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The settings in effect as a TOML file (which `--config` reads back):
/// every key, each with where its value came from.
pub fn effective(up: &Command, loaded: &Loaded) -> String {
    let mut up = up.clone();
    up.build();
    let m = &loaded.matches;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# minimail up: effective settings ({}; the command line and \
         the environment win over the file, the file over the defaults)",
        match &loaded.file {
            Some(f) => format!("file {}", f.display()),
            None => "no file".to_owned(),
        }
    );
    for (arg, long) in keys(&up) {
        let id = arg.get_id().as_str();
        let raw: Vec<&OsStr> = m.get_raw(id).map(|v| v.collect()).unwrap_or_default();
        let source = match (loaded.from_file.get(id), m.value_source(id)) {
            (Some(line), _) => format!("file, line {line}"),
            (None, Some(ValueSource::CommandLine)) => "command line".to_owned(),
            (None, Some(ValueSource::EnvVariable)) => "environment".to_owned(),
            (None, _) => "default".to_owned(),
        };
        let text = |v: &&OsStr| toml_value(&v.to_string_lossy());
        let value = match arg.get_action() {
            ArgAction::SetTrue => Some(m.get_flag(id).to_string()),
            ArgAction::Append => Some(format!(
                "[{}]",
                raw.iter().map(text).collect::<Vec<_>>().join(", ")
            )),
            _ => raw.first().map(text),
        };
        let _ = match value {
            Some(v) => writeln!(out, "{long} = {v}  # {source}"),
            None => writeln!(out, "# {long} is not set"),
        };
    }
    out
}

/// A value as TOML: numbers bare, everything else a quoted string.
fn toml_value(s: &str) -> String {
    match s.parse::<i64>() {
        Ok(n) => n.to_string(),
        Err(_) => Value::String(s.to_owned()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::up_command;

    /// Load `text` as the file, with `argv` on the command line.
    fn load_text(text: &str, argv: &[&str]) -> Result<Loaded, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minimail.toml");
        std::fs::write(&path, text).unwrap();
        let mut args: Vec<OsString> = vec!["--config".into(), path.into()];
        args.extend(argv.iter().map(OsString::from));
        load(&up_command(), &args)
    }

    fn file_error(text: &str) -> String {
        match load_text(text, &[]) {
            Err(Error::File(m)) => m,
            other => panic!("{text:?} loaded: {other:?}"),
        }
    }

    fn raw_of(l: &Loaded, id: &str) -> Vec<String> {
        l.matches
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// A value the flag takes that is not its default, as TOML, and the
    /// raw values clap should then hold.
    fn sample(up: &Command, arg: &Arg, long: &str) -> (String, Vec<String>) {
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            return ("true".into(), vec!["true".into()]);
        }
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        let enums = arg
            .get_possible_values()
            .iter()
            .map(|p| p.get_name().to_owned())
            .collect::<Vec<_>>();
        let candidates = enums.into_iter().chain(
            [
                "127.0.0.1:7",
                "7",
                "1.3",
                "X25519",
                "example.org=c.pem,k.pem",
            ]
            .map(String::from),
        );
        let v = candidates
            .filter(|c| !defaults.contains(c))
            .find(|c| check_value(up, long, c).is_ok())
            .unwrap_or_else(|| {
                panic!("no sample value for --{long}: add one that its parser takes to sample()")
            });
        let toml = toml_value(&v);
        match arg.get_action() {
            ArgAction::Append => (format!("[{toml}]"), vec![v]),
            _ => (toml, vec![v]),
        }
    }

    /// Every flag of `up` (read off clap, so a flag added later is
    /// included) is a key: set in a file, its value reaches clap as if
    /// given on the command line. Flags that conflict go in a second file.
    #[test]
    fn every_flag_of_up_is_a_key() {
        let mut up = up_command();
        up.build();
        let all = keys(&up);
        assert!(all.len() >= 30, "{} keys", all.len());
        for a in up.get_arguments() {
            let id = a.get_id().as_str();
            assert!(
                NOT_KEYS.contains(&id) || a.get_long().is_some(),
                "{id} has no long name, so no key"
            );
        }
        // Each round takes the flags not yet covered first, then every
        // other one that does not conflict with those taken.
        let mut covered = std::collections::BTreeSet::new();
        let mut rounds = 0;
        while covered.len() < all.len() {
            rounds += 1;
            assert!(rounds < 5, "flags that cannot be set: {covered:?}");
            let (first, rest): (Vec<_>, Vec<_>) = all
                .iter()
                .partition(|(a, _)| !covered.contains(a.get_id().as_str()));
            let mut file = String::new();
            let mut chosen: Vec<(&Arg, Vec<String>)> = Vec::new();
            for &(arg, long) in first.into_iter().chain(rest) {
                if chosen.iter().any(|(other, _)| conflict(&up, arg, other)) {
                    continue;
                }
                let (toml, raw) = sample(&up, arg, long);
                file.push_str(&format!("{long} = {toml}\n"));
                chosen.push((arg, raw));
            }
            let loaded = load_text(&file, &[]).unwrap_or_else(|e| panic!("{e}\n{file}"));
            for (line, (arg, raw)) in chosen.iter().enumerate() {
                let id = arg.get_id().as_str();
                assert_eq!(loaded.from_file.get(id), Some(&(line + 1)), "{id}");
                assert_eq!(&raw_of(&loaded, id), raw, "{id} from\n{file}");
                covered.insert(id);
            }
        }
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let l = load_text(
            "hostname = \"file.example\"\nmax-message-size = 1000\nno-tls = true\n",
            &[
                "--hostname",
                "cli.example",
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
            ],
        )
        .unwrap();
        assert_eq!(raw_of(&l, "hostname"), ["cli.example"]);
        assert_eq!(raw_of(&l, "max_message_size"), ["1000"]);
        // no-tls conflicts with --tls-cert given on the command line: dropped.
        assert!(!l.matches.get_flag("no_tls"));
        assert!(!l.from_file.contains_key("no_tls"));
        // A repeatable flag on the command line replaces the file's list.
        let l = load_text(
            "domain = [\"a.example\", \"b.example\"]\n",
            &["--domain", "c.example"],
        )
        .unwrap();
        assert_eq!(raw_of(&l, "domains"), ["c.example"]);
        let l = load_text("domain = [\"a.example\", \"b.example\"]\n", &[]).unwrap();
        assert_eq!(raw_of(&l, "domains"), ["a.example", "b.example"]);
        // One value for a repeatable flag is a list of one.
        let l = load_text("domain = \"a.example\"\n", &[]).unwrap();
        assert_eq!(raw_of(&l, "domains"), ["a.example"]);
    }

    #[test]
    fn broken_files_are_refused_with_the_line() {
        let m = file_error("trace = true\n\n# a comment\nhostnme = \"x\"\n");
        assert!(m.contains("minimail.toml:4: unknown key `hostnme`"), "{m}");
        assert!(m.contains("did you mean `hostname`"), "{m}");
        let m = file_error("[smtp]\nlisten = 1\n");
        assert!(
            m.contains(":1:")
                && m.contains("`smtp` wants a string, a number or an array of them, not a table"),
            "{m}"
        );
        let m = file_error("hostname = \"h\"\ntrace = \"yes\"\n");
        assert!(
            m.contains(":2: `trace` wants true or false, not a string"),
            "{m}"
        );
        let m = file_error("hostname = true\n");
        assert!(
            m.contains(":1: `hostname` wants a string or a number, not a boolean"),
            "{m}"
        );
        let m = file_error("\nmax-message-size = \"big\"\n");
        assert!(
            m.contains(":2: invalid value 'big' for '--max-message-size"),
            "{m}"
        );
        let m = file_error("smtp = [\"127.0.0.1:25\", \"nowhere\"]\n");
        assert!(m.contains(":1: invalid value 'nowhere' for '--smtp"), "{m}");
        let m = file_error("outbound-tls = \"sometimes\"\n");
        assert!(m.contains(":1: invalid value 'sometimes'"), "{m}");
        let m = file_error("hostname = \"a\"\nhostname = \"b\"\n");
        assert!(m.contains("minimail.toml:2: duplicate key"), "{m}");
        let m = file_error("trace = true\nsmtp = [\n");
        assert!(m.contains("expected `]`") && !m.contains('\n'), "{m}");
        let m = file_error("no-tls = true\ntls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n");
        assert!(m.contains("cannot be used with"), "{m}");
        let m = file_error("relay-auth-file = \"f\"\n");
        assert!(m.contains("--relay-host"), "{m}");
        match load(
            &up_command(),
            &["--config".into(), "/nonexistent/minimail.toml".into()],
        ) {
            Err(Error::File(m)) => {
                assert!(m.contains("cannot read /nonexistent/minimail.toml"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    /// What `config check` prints is a file that loads back to the same
    /// settings.
    #[test]
    fn effective_settings_read_back() {
        let l = load_text(
            "smtp = [\"127.0.0.1:2600\", \"[::1]:2601\"]\nhostname = \"mail.example.org\"\ntrace = true\nmax-per-ip = 3\n",
            &["--retry-min", "5"],
        )
        .unwrap();
        let text = effective(&up_command(), &l);
        assert!(
            text.contains("hostname = \"mail.example.org\"  # file, line 2"),
            "{text}"
        );
        assert!(text.contains("retry-min = 5  # command line"), "{text}");
        assert!(text.contains("mx-port = 25  # default"), "{text}");
        assert!(text.contains("# relay-host is not set"), "{text}");
        let again = load_text(&text, &[]).unwrap();
        let mut up = up_command();
        up.build();
        for (arg, _) in keys(&up) {
            let id = arg.get_id().as_str();
            if id != CONFIG_ID {
                assert_eq!(raw_of(&again, id), raw_of(&l, id), "{id}");
            }
        }
    }
}
