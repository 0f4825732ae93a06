//! tern-cli: the command line of tern. [`args`] is the one clap definition (shared with the Python
//! package), [`settings`] validates arguments into core configuration, [`commands`] runs them;
//! [`reload`] and [`load_error_page`] are the development reloader (`tern serve APP --reload`).

pub mod app_host;
pub mod args;
pub mod commands;
pub mod load_error_page;
pub mod reload;
pub mod settings;

use std::ffi::OsString;

use clap::Parser;

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
    let cli = match args::Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return error.exit_code();
        }
    };
    commands::run(cli, app_host)
}
