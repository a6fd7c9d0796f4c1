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
    let table: BTreeMap<Spanned<String>, Spanned<Value>> =
        toml::from_str(text).map_err(|e| Error::File(format!("{f}: {}", e.to_string().trim())))?;
    let known = keys(up);
    let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
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
                .get_arg_conflicts_with(arg)
                .iter()
                .any(|c| explicit(c.get_id().as_str()))
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
