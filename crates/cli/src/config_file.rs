//! Options from a TOML file: `--config FILE`, or else `[tool.tern]` in the current directory's
//! pyproject.toml. A value on the command line wins over a `TERN_*` variable, which wins over the
//! file, which wins over the built-in default.
//!
//! How: the command line is parsed once as it is, which tells the command and the `--config`
//! file; each of the file's keys is checked against that command's options and then made that
//! option's *default*, and the command line is parsed again. clap already ranks the command line
//! over the environment over a default, so the precedence above is clap's own, for every option
//! alike, with no list of options to keep in step with `args.rs`. (Rewriting argv instead would
//! have to ask for every key whether the command line or the environment already set it, and
//! quote values back into flags.) Each value is typed by the option it sets and run through that
//! option's own value parser here, so a wrong one is refused naming the key and the file rather
//! than a flag the user never wrote.

use std::any::TypeId;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::args::{Cli, Command, ConfigSource};

/// Why the command line could not be turned into a [`Cli`].
#[derive(Debug)]
pub enum ParseError {
    /// clap's own: a usage error, or `--help` / `--version` (which print and exit 0).
    Usage(clap::Error),
    /// The configuration file: unreadable, not TOML, an unknown key, a wrong value. One message,
    /// naming the file.
    File(String),
}

impl From<clap::Error> for ParseError {
    fn from(error: clap::Error) -> Self {
        ParseError::Usage(error)
    }
}

/// Parses `argv` (program name first) with the configuration file's values as defaults.
pub fn parse(argv: &[OsString]) -> Result<Cli, ParseError> {
    let matches = Cli::command().try_get_matches_from(argv)?;
    let Some((name, sub_matches)) = matches.subcommand() else {
        return Ok(finish(Cli::from_arg_matches(&matches)?, &matches));
    };
    let base = Cli::command();
    let Some(subcommand) = base.find_subcommand(name) else {
        return Ok(finish(Cli::from_arg_matches(&matches)?, &matches));
    };
    // Only the server commands have --config; `tern client` reads no file.
    if !subcommand
        .get_arguments()
        .any(|arg| arg.get_id() == "config")
    {
        return Ok(finish(Cli::from_arg_matches(&matches)?, &matches));
    }
    let explicit = sub_matches.get_one::<PathBuf>("config");
    let Some((source, table)) = read(explicit.map(PathBuf::as_path)).map_err(ParseError::File)?
    else {
        return Ok(finish(Cli::from_arg_matches(&matches)?, &matches));
    };
    let defaults = defaults(subcommand, &table)
        .map_err(|message| ParseError::File(format!("{source}: {message}")))?;
    let command = Cli::command().mut_subcommand(name, |sub| {
        defaults.into_iter().fold(sub, |sub, (id, values)| {
            sub.mut_arg(id, |arg| arg.default_values(values))
        })
    });
    let matches = command.try_get_matches_from(argv)?;
    let mut cli = finish(Cli::from_arg_matches(&matches)?, &matches);
    if let Some(server) = cli.command.server_args_mut() {
        server.config_read = Some(source);
    }
    Ok(cli)
}

/// `--no-preload` on the command line beats `--preload` from anywhere else: clap's
/// `overrides_with` only sees the command line, so `TERN_PRELOAD` or a file's `preload = true`
/// would otherwise still be set beside it.
fn finish(mut cli: Cli, matches: &ArgMatches) -> Cli {
    if let Command::Serve(args) = &mut cli.command {
        let no_preload_given = matches
            .subcommand_matches("serve")
            .and_then(|serve| serve.value_source("no_preload"))
            == Some(ValueSource::CommandLine);
        if no_preload_given {
            args.preload = false;
        }
    }
    cli
}

/// The file to read and its table of options: `explicit` (`--config`), or else ./pyproject.toml
/// if it has a `[tool.tern]` table. None: no file, nothing to do.
fn read(explicit: Option<&Path>) -> Result<Option<(ConfigSource, toml::Table)>, String> {
    let (path, required) = match explicit {
        Some(path) => (path, true),
        None => (Path::new("pyproject.toml"), false),
    };
    let source = ConfigSource {
        path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        pyproject: path
            .file_name()
            .is_some_and(|name| name == "pyproject.toml"),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("{}: cannot read: {error}", source.path.display())),
    };
    let mut table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        format!(
            "{}: {}",
            source.path.display(),
            error.to_string().trim_end()
        )
    })?;
    if !source.pyproject {
        return Ok(Some((source, table)));
    }
    let tern = match table.get_mut("tool") {
        Some(toml::Value::Table(tool)) => tool.remove("tern"),
        _ => None,
    };
    match tern {
        Some(toml::Value::Table(tern)) => Ok(Some((source, tern))),
        Some(_) => Err(format!(
            "{}: tool.tern is not a table",
            source.path.display()
        )),
        None if required => Err(format!(
            "{}: has no [tool.tern] table",
            source.path.display()
        )),
        None => Ok(None),
    }
}

/// Each key of `table` as the id of the option of `command` it sets and that option's default
/// values; an error names the key.
fn defaults(
    command: &clap::Command,
    table: &toml::Table,
) -> Result<Vec<(clap::Id, Vec<String>)>, String> {
    let mut defaults: Vec<(clap::Id, Vec<String>)> = Vec::new();
    let mut keys: Vec<&str> = Vec::new();
    for (key, value) in table {
        let arg = option_for(command, key).ok_or_else(|| {
            if key.replace('_', "-") == "config" {
                format!("unknown key '{key}' (a configuration file cannot name another)")
            } else {
                format!(
                    "unknown key '{key}' (tern {} has no option --{})",
                    command.get_name(),
                    key.replace('_', "-")
                )
            }
        })?;
        if let Some(index) = defaults.iter().position(|(id, _)| id == arg.get_id()) {
            return Err(format!("'{key}' sets the same option as '{}'", keys[index]));
        }
        let values = values(arg, value).map_err(|problem| format!("{key}: {problem}"))?;
        defaults.push((arg.get_id().clone(), values));
        keys.push(key);
    }
    Ok(defaults)
}

/// The option a key names: a long flag name, with `_` or `-` between words (an alias too), or
/// the positional `app`. `config` is not one, nor `help` and `version`.
fn option_for<'a>(command: &'a clap::Command, key: &str) -> Option<&'a Arg> {
    let name = key.replace('_', "-");
    command.get_arguments().find(|arg| {
        let settable = matches!(
            arg.get_action(),
            ArgAction::Set | ArgAction::Append | ArgAction::SetTrue
        );
        let named = if arg.is_positional() {
            arg.get_id() == name.as_str()
        } else {
            arg.get_long() == Some(name.as_str())
                || arg
                    .get_all_aliases()
                    .is_some_and(|aliases| aliases.contains(&name.as_str()))
        };
        settable && named && arg.get_id() != "config"
    })
}

/// What TOML values an option takes, from the type its value parser makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A switch: `true` or `false`.
    Switch,
    Integer,
    /// Seconds: an integer or a float.
    Number,
    /// A size: a string such as "8K", or an integer number of bytes.
    Size,
    Text,
}

impl Kind {
    fn of(arg: &Arg) -> Kind {
        if matches!(arg.get_action(), ArgAction::SetTrue) {
            return Kind::Switch;
        }
        let made = arg.get_value_parser().type_id();
        let integers = [
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i64>(),
        ];
        if made == TypeId::of::<f64>() {
            Kind::Number
        } else if integers.iter().any(|integer| made == *integer) {
            Kind::Integer
        } else if arg
            .get_value_names()
            .is_some_and(|names| names.iter().any(|n| n == "BYTES" || n == "SIZE"))
        {
            Kind::Size
        } else {
            Kind::Text
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Switch => "true or false",
            Kind::Integer => "an integer",
            Kind::Number => "a number",
            Kind::Size => "a size (a string such as \"64K\", or an integer number of bytes)",
            Kind::Text => "a string",
        }
    }

    /// The value as the option would take it on the command line; None if the type is wrong.
    fn text(self, value: &toml::Value) -> Option<String> {
        use toml::Value::{Boolean, Float, Integer, String};
        match (self, value) {
            (Kind::Switch, Boolean(switch)) => Some(switch.to_string()),
            (Kind::Integer | Kind::Number | Kind::Size, Integer(number)) => {
                Some(number.to_string())
            }
            (Kind::Number, Float(number)) => Some(number.to_string()),
            (Kind::Size | Kind::Text, String(text)) => Some(text.clone()),
            _ => None,
        }
    }
}

/// The TOML value as the option's default values, checked by the option's own value parser;
/// an error says what was expected or what is wrong with the value.
fn values(arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    let kind = Kind::of(arg);
    let repeatable = matches!(arg.get_action(), ArgAction::Append);
    let items: Vec<&toml::Value> = match value {
        toml::Value::Array(items) if repeatable => items.iter().collect(),
        single => vec![single],
    };
    let mut texts = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = kind.text(item) else {
            let expected = if repeatable {
                format!("{}, or an array of them", kind.expected())
            } else {
                kind.expected().to_string()
            };
            return Err(format!("expected {expected}, found {}", describe(item)));
        };
        check(arg, &text)?;
        texts.push(text);
    }
    Ok(texts)
}

/// Runs `text` through `arg`'s value parser, as clap will when it takes the default.
fn check(arg: &Arg, text: &str) -> Result<(), String> {
    let probe = Arg::new("value")
        .value_parser(arg.get_value_parser().clone())
        .allow_hyphen_values(true);
    let result = clap::Command::new("tern")
        .no_binary_name(true)
        .arg(probe)
        .try_get_matches_from([text]);
    let Err(error) = result else {
        return Ok(());
    };
    let mut message = format!("invalid value '{text}'");
    let possible: Vec<String> = arg
        .get_possible_values()
        .iter()
        .map(|value| value.get_name().to_string())
        .collect();
    if !possible.is_empty() {
        message.push_str(&format!(" (possible values: {})", possible.join(", ")));
    } else if let Some(reason) = std::error::Error::source(&error) {
        message.push_str(&format!(": {reason}"));
    }
    Err(message)
}

/// "a string", "an integer"... for an error message.
fn describe(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a date-time",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `tern <args> --config FILE` with `toml` as the file.
    fn parse_with(toml: &str, args: &[&str]) -> Result<Cli, ParseError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tern.toml");
        std::fs::write(&path, toml).unwrap();
        let mut argv: Vec<OsString> = vec!["tern".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.extend(["--config".into(), path.into_os_string()]);
        parse(&argv)
    }

    fn serve_args(toml: &str, args: &[&str]) -> Box<crate::args::ServeArgs> {
        match parse_with(toml, args).unwrap().command {
            Command::Serve(args) => args,
            other => panic!("not serve: {other:?}"),
        }
    }

    fn file_error(toml: &str, args: &[&str]) -> String {
        match parse_with(toml, args) {
            Err(ParseError::File(message)) => message,
            other => panic!("no file error: {other:?}"),
        }
    }

    #[test]
    fn keys_take_dashes_or_underscores_and_values_their_natural_types() {
        let args = serve_args(
            r#"
            app = "site.wsgi:application"
            docroot = "public"
            max_body_size = 1048576
            max-header-size = "16K"
            keepalive-timeout = 2.5
            header_timeout = 7
            workers = 3
            list-dirs = true
            static = ["/media/=uploads", "/docs/=site/docs"]
            bind = "unix:/tmp/tern-test.sock"
            access-logformat = "%(h)s"
            "#,
            &["serve"],
        );
        assert_eq!(args.app.as_deref(), Some("site.wsgi:application"));
        assert_eq!(args.docroot, Some(PathBuf::from("public")));
        assert_eq!(args.max_body_size, "1048576");
        assert_eq!(args.max_header_size, "16K");
        assert_eq!(args.keepalive_timeout, 2.5);
        assert_eq!(args.header_timeout, 7.0);
        assert_eq!(args.server.workers, 3);
        assert!(args.list_dirs);
        assert_eq!(args.static_mounts, ["/media/=uploads", "/docs/=site/docs"]);
        assert_eq!(args.server.binds, ["unix:/tmp/tern-test.sock"]);
        assert_eq!(args.access_log_format.as_deref(), Some("%(h)s"));
        let source = args.server.config_read.expect("the file is recorded");
        assert!(source.path.ends_with("tern.toml") && source.path.is_absolute());
        assert!(!source.pyproject);
    }

    #[test]
    fn the_command_line_wins_over_the_file_option_by_option() {
        let args = serve_args(
            "workers = 3\nmax-body-size = \"1K\"\nstatic = [\"/a/=a\"]\napp = \"from_file:app\"",
            &[
                "serve",
                "from_cli:app",
                "--workers",
                "5",
                "--static",
                "/b/=b",
            ],
        );
        assert_eq!(args.server.workers, 5);
        assert_eq!(args.app.as_deref(), Some("from_cli:app"));
        assert_eq!(args.static_mounts, ["/b/=b"], "a list replaces the file's");
        assert_eq!(args.max_body_size, "1K", "options not on the command line");
    }

    /// Regression: clap's `overrides_with` leaves a default in place, so a file's
    /// `preload = true` stayed set beside `--no-preload` on the command line.
    #[test]
    fn no_preload_on_the_command_line_beats_preload_in_the_file() {
        assert!(serve_args("preload = true", &["serve", "app:x"]).preload);
        assert!(!serve_args("preload = true", &["serve", "app:x", "--no-preload"]).preload);
    }

    #[test]
    fn unknown_keys_and_wrong_values_are_named() {
        let message = file_error("max-bdy-size = 3", &["serve"]);
        assert!(
            message.contains("tern.toml: unknown key 'max-bdy-size'"),
            "{message}"
        );
        let message = file_error("docroot = \"x\"", &["echo"]);
        assert!(
            message.contains("unknown key 'docroot' (tern echo"),
            "{message}"
        );
        for key in ["config", "help", "version"] {
            let message = file_error(&format!("{key} = \"x\""), &["serve"]);
            assert!(
                message.contains(&format!("unknown key '{key}'")),
                "{message}"
            );
        }
        for (toml, expected) in [
            (
                "port = \"9000\"",
                "port: expected an integer, found a string",
            ),
            ("port = 70000", "port: invalid value '70000'"),
            (
                "list-dirs = 1",
                "list-dirs: expected true or false, found an integer",
            ),
            (
                "umask = 0o022",
                "umask: expected a string, found an integer",
            ),
            (
                "log = \"loud\"",
                "log: invalid value 'loud' (possible values: debug",
            ),
            (
                "grace-timeout = true",
                "grace-timeout: expected a number, found a boolean",
            ),
            ("max-body-size = 1.5", "max-body-size: expected a size"),
            (
                "bind = [1]",
                "bind: expected a string, or an array of them, found an integer",
            ),
            ("workers = 2\nworkers_ = 1", "unknown key 'workers_'"),
            (
                "max_requests = 1\nmax-requests = 2",
                "'max-requests' sets the same option as 'max_requests'",
            ),
        ] {
            let message = file_error(toml, &["serve"]);
            assert!(message.contains(expected), "{toml}: {message}");
        }
        let message = file_error("max-work = 0", &["eval"]);
        assert!(message.contains("max-work: invalid value '0'"), "{message}");
    }

    #[test]
    fn a_pyproject_given_as_config_is_read_from_its_tool_tern_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pyproject.toml");
        std::fs::write(&path, "[project]\nname = \"x\"\n[tool.tern]\nworkers = 4\n").unwrap();
        let argv: Vec<OsString> = vec![
            "tern".into(),
            "serve".into(),
            "--config".into(),
            path.clone().into(),
        ];
        let Command::Serve(args) = parse(&argv).unwrap().command else {
            panic!("not serve");
        };
        assert_eq!(args.server.workers, 4);
        assert!(args.server.config_read.unwrap().pyproject);
        std::fs::write(&path, "[project]\nname = \"x\"\n").unwrap();
        match parse(&argv) {
            Err(ParseError::File(message)) => {
                assert!(message.contains("no [tool.tern] table"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_load_client_reads_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tern.toml");
        let argv: Vec<OsString> = vec![
            "tern".into(),
            "client".into(),
            "127.0.0.1:1".into(),
            "--config".into(),
            path.into(),
        ];
        assert!(
            matches!(parse(&argv), Err(ParseError::Usage(_))),
            "no --config option"
        );
    }
}
