//! tern-cli: the command line of tern. [`args`] is the one clap definition (shared with the Python
//! package), [`config_file`] layers a TOML file under it, [`settings`] validates arguments into
//! core configuration ([`sizes`] reads and writes `64K`, `100M`), [`commands`] runs them;
//! [`reload`] and [`load_error_page`] are the development reloader (`tern serve APP --reload`).

pub mod app_host;
pub mod args;
pub mod commands;
pub mod config_file;
pub mod load_error_page;
pub mod reload;
pub mod settings;
pub mod sizes;

use std::ffi::OsString;

use config_file::ParseError;

/// Exit status for bad arguments or configuration (clap uses it for usage errors too).
pub const EXIT_USAGE: i32 = 2;

/// Parses `argv` (program name first) and runs the command; returns the exit status.
pub fn run<I, T>(argv: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(argv, None)
}

/// Like [`run`], with a host for `tern serve APP` (the Python package passes its WSGI host).
pub fn run_with<I, T>(argv: I, app_host: Option<&dyn app_host::AppHost>) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    let cli = match config_file::parse(&argv) {
        Ok(cli) => cli,
        Err(ParseError::Usage(error)) => {
            let _ = error.print();
            return error.exit_code();
        }
        Err(ParseError::File(message)) => {
            eprintln!("tern: {message}");
            return EXIT_USAGE;
        }
    };
    commands::run(cli, app_host)
}
