//! Running each subcommand: set up logging, bind, start the supervisor with the right handler.

use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tern_core::config::ServerConfig;
use tern_core::http::HttpHandler;
use tern_core::listener::{self, BindAddr, Endpoint, SchemeMark};
use tern_core::supervisor::{CodeWatch, ForkHooks, NoForkHooks};
use tern_core::{logging, metrics, process, rlimit, supervisor, worker};
use tern_lines::calc::Calc;
use tern_lines::client::{self, ClientConfig, Counters, Report};
use tern_lines::echo::Echo;
use tern_lines::eval::Eval;
use tern_lines::hello::Hello;
use tern_lines::{LineHandler, LineProtocol};

use crate::app_host::{AppHost, AppOptions, EventLoop, Interface, Lifespan};
use crate::args::{Cli, ClientArgs, Command, LineServiceArgs, ServeArgs, ServerArgs};
use crate::load_error_page::LoadErrorPage;
use crate::reload::CodeWatcher;
use crate::settings;
use crate::EXIT_USAGE;

/// The exit status when the server cannot start: an address in use, a bad pid file, a user to
/// switch to that does not exist (the same as a bad flag or a broken app).
const EXIT_START_FAILED: i32 = EXIT_USAGE;
/// The exit status of a worker that could not load the application (as at start-up).
const EXIT_APP_LOAD_FAILED: i32 = 2;

pub fn run(cli: Cli, app_host: Option<&dyn AppHost>) -> i32 {
    let result = match cli.command {
        Command::Serve(args) => serve(*args, app_host),
        Command::Echo(args) => serve_lines(
            &args.service,
            "echo",
            Echo {
                prefix: args.prefix,
            },
        ),
        Command::Calc(args) => serve_lines(&args, "calc", Calc),
        Command::Eval(args) => {
            let delay = if args.delay != 0.0 {
                match settings::seconds("delay", args.delay) {
                    Ok(delay) => Some(delay),
                    Err(message) => return usage_error(&message),
                }
            } else {
                None
            };
            serve_lines(
                &args.service,
                "eval",
                Eval {
                    delay,
                    max_work: args.max_work,
                },
            )
        }
        Command::Hello(args) => serve_lines(&args.service, "hello", Hello { text: args.text }),
        Command::Client(args) => return run_client(args),
    };
    match result {
        Ok(status) => status,
        Err(message) => usage_error(&message),
    }
}

fn usage_error(message: &str) -> i32 {
    eprintln!("tern: {message}");
    EXIT_USAGE
}

fn serve(args: ServeArgs, app_host: Option<&dyn AppHost>) -> Result<i32, String> {
    let mut server = settings::server_config(&args.server)?;
    server.tls = settings::tls_config(&args, &server.binds)?;
    let app = match &args.app {
        Some(spec) => {
            let host = app_host.ok_or(
                "this tern binary cannot run Python applications; install the Python package (pip install .) and run its tern command",
            )?;
            if args.threads == 0 {
                return Err("--threads must be at least 1".into());
            }
            let options = AppOptions {
                spec: spec.clone(),
                pythonpath: args.pythonpath.clone(),
                root_path: settings::root_path(&args.root_path)?,
                max_threads: args.threads,
                workers: server.workers,
                interface: Interface::from_flag(&args.interface),
                lifespan: Lifespan::from_flag(&args.lifespan),
                event_loop: EventLoop::from_flag(&args.event_loop),
                write_bytecode: !args.reload,
            };
            Some((host, options))
        }
        None => None,
    };
    // First, so that the document root and the app's files are found from the same place.
    if let Some(dir) = &args.chdir {
        std::env::set_current_dir(dir).map_err(|e| format!("--chdir {}: {e}", dir.display()))?;
    }
    let http = settings::http_config(&args)?;
    let reload = settings::reload_config(&args)?;
    logging::init(&server.log)?;
    log_config_file(&args.server);
    let handler = HttpHandler::new(http.clone())
        .map_err(|e| format!("cannot open the document root: {e}"))?;
    let mut parts: Vec<String> = handler
        .router()
        .roots()
        .map(|(prefix, root)| format!("{prefix} from {}", root.display()))
        .collect();
    let Some((host, options)) = app else {
        let handler = Arc::new(handler);
        let description = parts.join(", ");
        return Ok(start(
            &server,
            "http",
            &description,
            &NoForkHooks,
            &|listeners, ready| worker::run(listeners, handler.clone(), &server, ready),
            None,
        ));
    };
    parts.push(format!("app {}", options.spec));
    let description = parts.join(", ");
    if args.preload {
        let service = host.load(&options)?;
        let handler = Arc::new(handler.with_service(service.clone()));
        return Ok(start(
            &server,
            "http",
            &description,
            host,
            &|listeners, ready| {
                if let Err(message) = service.start() {
                    tracing::error!("cannot start the application: {message}");
                    return EXIT_APP_LOAD_FAILED;
                }
                worker::run(listeners, handler.clone(), &server, ready)
            },
            None,
        ));
    }
    drop(handler);
    let mut watcher = match reload {
        // Not checked first: a broken app is served as its traceback until a save fixes it.
        Some(reload) => Some(
            CodeWatcher::new(reload).map_err(|e| format!("--reload: cannot watch files: {e}"))?,
        ),
        None => {
            host.check(&options)?;
            None
        }
    };
    let watcher_fd = watcher.as_ref().map(CodeWatcher::raw_fd);
    // Each worker imports the app itself, so a new worker (SIGHUP, --reload) runs the code on disk.
    let worker_main = |listeners, ready| {
        if let Some(fd) = watcher_fd {
            // SAFETY: the worker's copy of the supervisor's inotify descriptor, which nothing in
            // this process uses; closing it leaves the supervisor's open.
            unsafe { libc::close(fd) };
        }
        let service = match host.load(&options).and_then(|service| {
            service.start()?;
            Ok(service)
        }) {
            Ok(service) => service,
            Err(message) if watcher_fd.is_some() => {
                tracing::error!(
                    "cannot load the application (answering 500 with this error until a change \
                     is saved): {message}"
                );
                Arc::new(LoadErrorPage::new(&message))
            }
            Err(message) => {
                tracing::error!("cannot load the application: {message}");
                return EXIT_APP_LOAD_FAILED;
            }
        };
        match HttpHandler::new(http.clone()) {
            Ok(handler) => worker::run(
                listeners,
                Arc::new(handler.with_service(service)),
                &server,
                ready,
            ),
            Err(error) => {
                tracing::error!("cannot open the document root: {error}");
                1
            }
        }
    };
    Ok(start(
        &server,
        "http",
        &description,
        host,
        &worker_main,
        watcher.as_mut().map(|w| w as &mut dyn CodeWatch),
    ))
}

fn serve_lines<P: LineProtocol>(
    args: &LineServiceArgs,
    name: &str,
    protocol: P,
) -> Result<i32, String> {
    let server = settings::server_config(&args.server)?;
    if let Some(bind) = server.binds.iter().find(|b| b.mark != SchemeMark::Unmarked) {
        return Err(format!(
            "--bind {}: http:// and https:// are for tern serve; line services take HOST:PORT",
            bind.addr
        ));
    }
    let config = settings::line_config(args)?;
    logging::init(&server.log)?;
    log_config_file(&args.server);
    let handler = Arc::new(LineHandler::new(protocol, config));
    Ok(start(
        &server,
        "tcp",
        &format!("{name} service"),
        &NoForkHooks,
        &|listeners, ready| worker::run(listeners, handler.clone(), &server, ready),
        None,
    ))
}

/// Says which configuration file the options came from, if any (once, in the supervisor).
fn log_config_file(args: &ServerArgs) {
    if let Some(source) = &args.config_read {
        tracing::info!("config: read {source}");
    }
}

/// Binds (or takes the sockets systemd passed), logs the start-up line, settles the process
/// (pid file, user), and runs the supervisor and its workers (restarted whenever `code_watch`
/// reports a change).
fn start<'a>(
    server: &'a ServerConfig,
    scheme: &str,
    what: &str,
    fork_hooks: &'a dyn ForkHooks,
    worker_main: supervisor::WorkerMain<'a>,
    code_watch: Option<&'a mut dyn CodeWatch>,
) -> i32 {
    rlimit::raise_fd_limit();
    process::apply_umask(&server.process);
    // Before binding, and before --user: a key readable by root alone is read now.
    if let Some(tls) = &server.tls {
        if let Err(message) = tern_core::tls::current::install(tls) {
            tracing::error!("{message}");
            return EXIT_START_FAILED;
        }
    }
    let (listeners, activated) = match listener::from_systemd() {
        Some(Ok(listeners)) => (listeners, true),
        Some(Err(message)) => {
            tracing::error!("socket activation: {message}");
            return EXIT_START_FAILED;
        }
        None => match listener::bind_all(&addresses_of(server)) {
            Ok(listeners) => (listeners, false),
            Err(message) => {
                tracing::error!("{message}");
                return EXIT_START_FAILED;
            }
        },
    };
    // Socket files we made are ours to remove on exit; systemd's are not.
    let socket_files: Vec<_> = listeners
        .iter()
        .filter(|_| !activated)
        .filter_map(|listener| match listener.local_addr() {
            BindAddr::Unix(path) => Some(path),
            BindAddr::Tcp(_) => None,
        })
        .collect();
    let any_marked_https = server.binds.iter().any(|b| b.mark == SchemeMark::Https);
    let endpoints: Vec<Endpoint> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, listener)| {
            let tls = match server.binds.get(i).filter(|_| !activated) {
                Some(bind) => bind.is_tls(server.tls.is_some(), any_marked_https),
                // Sockets from systemd carry no mark: all are HTTPS with --certfile.
                None => server.tls.is_some(),
            };
            Endpoint { listener, tls }
        })
        .collect();
    let addresses: Vec<String> = endpoints
        .iter()
        .map(|e| {
            let scheme = if e.tls { "https" } else { scheme };
            display_address(scheme, &e.listener.local_addr())
        })
        .collect();
    if let Some(addr) = &server.metrics_bind {
        let installed = listener::bind_all(std::slice::from_ref(addr)).and_then(|mut bound| {
            let listener = bound.remove(0);
            let shown = display_address("http", &listener.local_addr());
            metrics::install(listener, server.workers)
                .map_err(|e| format!("--metrics-bind: {e}"))?;
            Ok(shown)
        });
        match installed {
            Ok(shown) => tracing::info!("metrics on {shown}/metrics"),
            Err(message) => {
                tracing::error!("--metrics-bind: {message}");
                return EXIT_START_FAILED;
            }
        }
    }
    if let Some(path) = &server.process.pid_file {
        if let Err(error) = process::write_pid_file(path) {
            tracing::error!("--pid {}: {error}", path.display());
            return EXIT_START_FAILED;
        }
    }
    if let Err(message) = process::drop_privileges(&server.process) {
        tracing::error!("{message}");
        return EXIT_START_FAILED;
    }
    let workers = server.workers;
    tracing::info!(
        "tern {} listening on {}{} ({what}, {workers} worker{})",
        env!("CARGO_PKG_VERSION"),
        addresses.join(", "),
        if activated {
            " (sockets from systemd)"
        } else {
            ""
        },
        if workers == 1 { "" } else { "s" }
    );
    let status = supervisor::run(server, endpoints, worker_main, fork_hooks, code_watch);
    for path in socket_files {
        let _ = std::fs::remove_file(path);
    }
    if let Some(path) = &server.process.pid_file {
        process::remove_pid_file(path);
    }
    status
}

/// The addresses to bind, without their marks.
fn addresses_of(server: &ServerConfig) -> Vec<BindAddr> {
    server.binds.iter().map(|b| b.addr.clone()).collect()
}

fn display_address(scheme: &str, addr: &BindAddr) -> String {
    match addr {
        BindAddr::Tcp(addr) => format!("{scheme}://{addr}"),
        BindAddr::Unix(path) if scheme == "https" => format!("https://unix:{}", path.display()),
        BindAddr::Unix(path) => format!("unix:{}", path.display()),
    }
}

fn run_client(args: ClientArgs) -> i32 {
    let timeout = match settings::seconds("timeout", args.timeout) {
        Ok(timeout) => timeout,
        Err(message) => return usage_error(&message),
    };
    let duration = match args
        .duration
        .map(|d| settings::seconds("duration", d))
        .transpose()
    {
        Ok(duration) => duration,
        Err(message) => return usage_error(&message),
    };
    if args.connections == 0 {
        return usage_error("-c/--connections must be at least 1");
    }
    rlimit::raise_fd_limit();
    // Ctrl-C ends the client at once. Run from the Python package, the interpreter's own SIGINT
    // handler would only set a flag that nobody looks at until the run is over.
    // SAFETY: restoring the default disposition of a signal has no preconditions.
    unsafe { libc::signal(libc::SIGINT, libc::SIG_DFL) };
    let config = Arc::new(ClientConfig {
        target: args.target,
        connections: args.connections,
        messages: args.messages,
        message: args.message,
        expect: args.expect,
        duration,
        greeting_lines: args.greeting_lines,
        timeout,
        websocket: args.websocket.map(|path| {
            if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            }
        }),
    });
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tern: cannot start the event loop: {error}");
            return 1;
        }
    };
    let counters = Arc::new(Counters::default());
    let show_progress = std::io::stderr().is_terminal();
    let planned = duration.map_or(config.connections as u64 * config.messages, |_| 0);
    let report = runtime.block_on(async {
        let progress =
            show_progress.then(|| tokio::spawn(progress_bar(counters.clone(), planned, duration)));
        let report = client::run(config.clone(), counters.clone()).await;
        if let Some(progress) = progress {
            progress.abort();
            eprint!("\r\x1b[2K");
        }
        report
    });
    print_report(&config, &report);
    if report.is_clean() {
        0
    } else {
        1
    }
}

/// Redraws one status line on the terminal until aborted.
async fn progress_bar(counters: Arc<Counters>, planned: u64, duration: Option<Duration>) {
    const WIDTH: usize = 30;
    let started = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let answered = counters.answered.load(Ordering::Relaxed);
        let fraction = match duration {
            Some(total) => started.elapsed().as_secs_f64() / total.as_secs_f64(),
            None if planned > 0 => answered as f64 / planned as f64,
            None => 0.0,
        }
        .clamp(0.0, 1.0);
        let filled = (fraction * WIDTH as f64) as usize;
        eprint!(
            "\r[{}{}] {:3.0}%  connected {}  answered {}  failed {}",
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            fraction * 100.0,
            counters.connected.load(Ordering::Relaxed),
            answered,
            counters.failed.load(Ordering::Relaxed) + counters.failed_connections(),
        );
    }
}

/// "2 reset, 1 timed out" from counts and reasons, leaving out zeros; "none" if all are.
fn breakdown(counts: &[(u64, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, reason)| format!("{count} {reason}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn print_report(config: &ClientConfig, report: &Report) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("target: {}", config.target);
    println!(
        "connections: {} opened, {} failed",
        report.connected,
        report.failed_connections()
    );
    println!(
        "messages: {} sent, {} answered, {} failed",
        report.sent, report.answered, report.failed
    );
    let connection_reasons: Vec<(u64, &str)> = report
        .connection_failures
        .iter()
        .map(|&(reason, count)| (count, reason.describe()))
        .collect();
    println!("failed connections: {}", breakdown(&connection_reasons));
    println!(
        "failed messages: {}",
        breakdown(&[
            (report.wrong_answers, "wrong answer"),
            (report.unanswered, "unanswered"),
            (report.not_sent, "not sent"),
        ])
    );
    println!(
        "throughput: {:.1} messages/s over {:.3} s",
        report.messages_per_second(),
        report.elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        ms(report.percentile(50.0)),
        ms(report.percentile(90.0)),
        ms(report.percentile(99.0)),
        ms(report.max_latency())
    );
}
