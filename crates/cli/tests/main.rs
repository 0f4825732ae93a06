//! Integration tests: each starts the real `tern` binary and talks to it over real sockets.

mod support;

mod app_flags;
mod concurrency;
mod config_file;
mod drain;
mod http_basics;
mod http_protocol;
mod lines;
mod logs;
mod metrics;
mod process;
mod proxy;
mod recycling;
mod request_corpus;
mod slow_clients;
mod static_files;
mod tls;
mod workers;
