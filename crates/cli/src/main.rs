//! The pure-Rust `tern` binary: everything is in the library, so the Python package can run the
//! very same command line.

fn main() {
    std::process::exit(tern_cli::run(std::env::args_os()));
}
