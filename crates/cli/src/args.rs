//! The command-line definition: every subcommand, flag and `TERN_*` environment variable. The
//! defaults are tern-core's (`tern_core::config`), shown in the help as the flags take them.
//! [`ConfigSource`], the configuration file a command read, is here too: the server options
//! carry it to the start-up log ([`crate::config_file`] fills it in).

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tern_core::config::{self, LogFormat};

use crate::sizes::format_size;

#[derive(Debug, Parser)]
#[command(
    name = "tern",
    version,
    about = "An event-driven server: static files over HTTP/1.1, Python WSGI applications and line-protocol TCP services",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve static files and, optionally, a Python WSGI application over HTTP/1.1.
    Serve(Box<ServeArgs>),
    /// Line service: send every line back, after an optional prefix.
    Echo(EchoArgs),
    /// Line service: the sum/product calculator.
    Calc(LineServiceArgs),
    /// Line service: evaluate arithmetic expressions safely.
    Eval(EvalArgs),
    /// Line service: answer every message with a fixed text.
    Hello(HelloArgs),
    /// Load client for the line services (or WebSocket endpoints): many connections, latency
    /// percentiles.
    Client(ClientArgs),
}

impl Command {
    /// The options every server command has; None for `tern client`.
    pub fn server_args_mut(&mut self) -> Option<&mut ServerArgs> {
        match self {
            Command::Serve(args) => Some(&mut args.server),
            Command::Echo(args) => Some(&mut args.service.server),
            Command::Calc(args) => Some(&mut args.server),
            Command::Eval(args) => Some(&mut args.service.server),
            Command::Hello(args) => Some(&mut args.service.server),
            Command::Client(_) => None,
        }
    }
}

/// Options every server command has.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Read options from this TOML file (keys are the long option names); without it,
    /// ./pyproject.toml's [tool.tern] table is read if there is one. The command line and
    /// TERN_* variables win over the file.
    #[arg(long, value_name = "FILE", env = "TERN_CONFIG")]
    pub config: Option<PathBuf>,
    /// The configuration file that was read (`--config`, or ./pyproject.toml), for the start-up
    /// log; set by [`crate::config_file`], not a flag.
    #[arg(skip)]
    pub config_read: Option<ConfigSource>,
    /// Address to listen on.
    #[arg(long, env = "TERN_HOST", default_value = config::DEFAULT_HOST)]
    pub host: String,
    /// Port to listen on (0: any free port; the log says which).
    #[arg(long, env = "TERN_PORT", default_value_t = config::DEFAULT_PORT)]
    pub port: u16,
    /// Listen on HOST:PORT or unix:/path.sock instead of --host/--port; repeatable. `tern serve`
    /// also takes https://ADDRESS (TLS, with --certfile) and http://ADDRESS (plain).
    #[arg(
        long = "bind",
        value_name = "ADDRESS",
        env = "TERN_BIND",
        value_delimiter = ','
    )]
    pub binds: Vec<String>,
    /// Number of worker processes.
    #[arg(
        short = 'w',
        long = "workers",
        env = "TERN_WORKERS",
        default_value_t = config::DEFAULT_WORKERS
    )]
    pub workers: usize,
    /// Log level.
    #[arg(long = "log", env = "TERN_LOG", default_value = config::DEFAULT_LOG_LEVEL.name(), value_parser = ["debug", "info", "warning", "error"])]
    pub log: String,
    /// Append the log to FILE instead of stderr.
    #[arg(long = "logfile", value_name = "FILE", env = "TERN_LOGFILE")]
    pub logfile: Option<PathBuf>,
    /// Do not log one line per request (HTTP) or per connection (line services).
    #[arg(long, env = "TERN_NO_ACCESS_LOG")]
    pub no_access_log: bool,
    /// Write access lines to FILE ('-': standard output) instead of with the other log lines.
    #[arg(long, value_name = "FILE", env = "TERN_ACCESS_LOGFILE")]
    pub access_logfile: Option<PathBuf>,
    /// Log lines as text, or as one JSON object per line.
    #[arg(long, env = "TERN_LOG_FORMAT", default_value = LogFormat::default().name(), value_parser = ["text", "json"])]
    pub log_format: String,
    /// Most open connections per worker; more wait in the kernel's queue.
    #[arg(long, env = "TERN_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Seconds a stopping worker waits for in-flight requests (SIGTERM, SIGHUP); 0: do not wait.
    /// Requests still running then are cut, and the exit status says so.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_GRACE_TIMEOUT",
        default_value_t = config::DEFAULT_GRACE_TIMEOUT.as_secs_f64()
    , allow_negative_numbers = true)]
    pub grace_timeout: f64,
    /// Seconds a stopping worker keeps silent keep-alive connections open for a request their
    /// client may already be sending (answered with `Connection: close`).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_DRAIN_IDLE_WINDOW",
        default_value_t = config::DEFAULT_DRAIN_IDLE_WINDOW.as_secs_f64()
    , allow_negative_numbers = true)]
    pub drain_idle_window: f64,
    /// On SIGTERM, keep serving this many seconds with the health check (--health-path)
    /// answering 503 before closing the listeners, so a load balancer stops sending first.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_DRAIN_DELAY",
        default_value_t = config::DEFAULT_DRAIN_DELAY.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub drain_delay: f64,
    /// Write the supervisor's process id to FILE (removed on exit).
    #[arg(long = "pid", value_name = "FILE", env = "TERN_PID")]
    pub pid_file: Option<PathBuf>,
    /// File mode mask, in octal (for Unix socket files and whatever the app creates).
    #[arg(long, value_name = "OCTAL", env = "TERN_UMASK")]
    pub umask: Option<String>,
    /// Run as this user (name or number) once the sockets are bound, e.g. to listen on port 80
    /// as root and serve as www-data.
    #[arg(long, value_name = "USER", env = "TERN_USER")]
    pub user: Option<String>,
    /// Run as this group (name or number); default: the --user's group.
    #[arg(long, value_name = "GROUP", env = "TERN_GROUP")]
    pub group: Option<String>,
    /// Replace a worker gracefully once it has served N HTTP requests (0: never).
    #[arg(long, value_name = "N", env = "TERN_MAX_REQUESTS", default_value_t = 0)]
    pub max_requests: u64,
    /// Add a random 0..=N to --max-requests per worker, so workers are not replaced together.
    #[arg(
        long,
        value_name = "N",
        env = "TERN_MAX_REQUESTS_JITTER",
        default_value_t = 0
    )]
    pub max_requests_jitter: u64,
    /// Replace a worker gracefully when its resident memory stays above SIZE (checked once a
    /// second; two readings in a row). K, M, G suffixes.
    #[arg(long, value_name = "SIZE", env = "TERN_MAX_WORKER_MEMORY")]
    pub max_worker_memory: Option<String>,
    /// Replace each worker gracefully after this many seconds (plus up to a tenth more, at
    /// random).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_WORKER_LIFETIME",
        allow_negative_numbers = true
    )]
    pub worker_lifetime: Option<f64>,
    /// Peers (comma-separated IP addresses and CIDR networks; `*`: any) whose PROXY protocol
    /// header and X-Forwarded-For, X-Forwarded-Proto and Forwarded headers name the client. A
    /// Unix-socket peer always may.
    #[arg(
        long,
        value_name = "LIST",
        env = "TERN_FORWARDED_ALLOW_IPS",
        default_value = tern_core::trusted_proxies::DEFAULT_FORWARDED_ALLOW_IPS
    )]
    pub forwarded_allow_ips: String,
    /// Every connection starts with a PROXY protocol header (v1 or v2, as HAProxy sends it)
    /// from a --forwarded-allow-ips peer; the client it names is served. Other connections are
    /// closed.
    #[arg(long, env = "TERN_PROXY_PROTOCOL")]
    pub proxy_protocol: bool,
    /// Serve Prometheus metrics of the whole server (all workers) on GET /metrics at
    /// HOST:PORT or unix:/path.sock, a listener of their own; off by default.
    #[arg(long, value_name = "ADDRESS", env = "TERN_METRICS_BIND")]
    pub metrics_bind: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The WSGI application, as module:attribute (attribute defaults to `application`;
    /// `module:create_app()` calls a factory). Needs the Python package (`pip install .`).
    #[arg(value_name = "APP", env = "TERN_APP")]
    pub app: Option<String>,
    /// Document root: served at / without an APP, under --static-url with one [default: .
    /// without an APP].
    #[arg(
        short = 'r',
        long = "docroot",
        value_name = "DOCROOT",
        env = "TERN_DOCROOT"
    )]
    pub docroot: Option<PathBuf>,
    /// With an APP: the URL prefix under which DOCROOT is served (by tern, not the app).
    #[arg(
        long,
        value_name = "PREFIX",
        env = "TERN_STATIC_URL",
        default_value = config::DEFAULT_STATIC_URL
    )]
    pub static_url: String,
    /// Serve directory DIR under URL PREFIX; repeatable (e.g. --static /media/=uploads).
    #[arg(
        long = "static",
        value_name = "PREFIX=DIR",
        env = "TERN_STATIC",
        value_delimiter = ','
    )]
    pub static_mounts: Vec<String>,
    /// Change to DIR before importing the APP.
    #[arg(long, value_name = "DIR", env = "TERN_CHDIR")]
    pub chdir: Option<PathBuf>,
    /// Put DIR at the front of Python's import path; repeatable.
    #[arg(
        long,
        value_name = "DIR",
        env = "TERN_PYTHONPATH",
        value_delimiter = ','
    )]
    pub pythonpath: Vec<PathBuf>,
    /// The URL prefix the APP is mounted at behind a proxy: becomes SCRIPT_NAME.
    #[arg(
        long,
        value_name = "PREFIX",
        env = "TERN_ROOT_PATH",
        default_value = ""
    )]
    pub root_path: String,
    /// Most Python threads per worker running APP calls at once (the pool grows and shrinks
    /// with the load up to this cap).
    #[arg(long, env = "TERN_THREADS", default_value_t = config::DEFAULT_MAX_THREADS)]
    pub threads: usize,
    /// How the APP is called: `asgi` for `async def app(scope, receive, send)` (or an object
    /// whose `__call__` is a coroutine function), `wsgi` for PEP 3333; `auto` tells them apart.
    #[arg(long, env = "TERN_INTERFACE", default_value = "auto", value_parser = ["auto", "wsgi", "asgi"])]
    pub interface: String,
    /// ASGI: run the lifespan protocol (startup before serving, shutdown at the end) in each
    /// worker. `auto`: an APP that raises on the lifespan scope before reading its first event
    /// is served without it; `on`: that stops the worker; `off`: never.
    #[arg(long, env = "TERN_LIFESPAN", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub lifespan: String,
    /// ASGI: the event loop each worker runs the APP on (one, in a Python thread of its own);
    /// `auto`: uvloop when it is installed, else asyncio's.
    #[arg(long = "loop", env = "TERN_LOOP", default_value = "auto", value_parser = ["auto", "asyncio", "uvloop"])]
    pub event_loop: String,
    /// ASGI WebSockets: the largest message a client may send (a larger one closes the session
    /// with code 1009).
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_WS_MAX_SIZE",
        default_value_t = format_size(tern_core::websocket::DEFAULT_MAX_MESSAGE as u64)
    )]
    pub ws_max_size: String,
    /// ASGI WebSockets: seconds between the pings tern sends each client (0: none).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_WS_PING_INTERVAL",
        default_value_t = tern_core::websocket::DEFAULT_PING_INTERVAL.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub ws_ping_interval: f64,
    /// ASGI WebSockets: seconds a ping may go unanswered before the connection is dropped (the
    /// application hears code 1006).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_WS_PING_TIMEOUT",
        default_value_t = tern_core::websocket::DEFAULT_PING_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub ws_ping_timeout: f64,
    /// Seconds an APP call may keep the client waiting for its response head, or for the next
    /// piece of a streamed body [default: no limit]. Past it: 504 (or the connection closes), the
    /// stuck thread's Python stack is logged, and the worker is replaced gracefully.
    #[arg(long, value_name = "SECONDS", env = "TERN_REQUEST_TIMEOUT")]
    pub request_timeout: Option<f64>,
    /// Import the APP once in the supervisor, before forking the workers: their memory is shared
    /// copy-on-write (gunicorn's --preload), but SIGHUP then restarts the workers with the code
    /// imported at start-up. By default each worker imports the APP, so SIGHUP loads the code on
    /// disk.
    #[arg(long, env = "TERN_PRELOAD", overrides_with = "no_preload")]
    pub preload: bool,
    /// Import the APP in each worker (the default; for apps that start threads or open
    /// connections at import).
    #[arg(long, overrides_with = "preload")]
    pub no_preload: bool,
    /// Development: restart the workers (one by one, as on SIGHUP) when the APP's files change,
    /// and answer with the traceback (500) while the APP does not import. Watches the current
    /// directory and every --pythonpath and --reload-dir, recursively. Not with --preload; sets
    /// --file-cache-validity to 0.
    #[arg(long, env = "TERN_RELOAD")]
    pub reload: bool,
    /// With --reload: also watch DIR (recursively); repeatable.
    #[arg(
        long = "reload-dir",
        value_name = "DIR",
        env = "TERN_RELOAD_DIR",
        value_delimiter = ','
    )]
    pub reload_dirs: Vec<PathBuf>,
    /// With --reload: also restart when a file matching GLOB changes (*.py always does, unless
    /// excluded); repeatable ({a,b} gives several in one). A GLOB without '/' matches file names,
    /// one with '/' paths (tests/*.py: any tests directory).
    #[arg(
        long = "reload-include",
        value_name = "GLOB",
        env = "TERN_RELOAD_INCLUDE"
    )]
    pub reload_includes: Vec<String>,
    /// With --reload: ignore files (and directories) matching GLOB; repeatable; wins over
    /// --reload-include.
    #[arg(
        long = "reload-exclude",
        value_name = "GLOB",
        env = "TERN_RELOAD_EXCLUDE"
    )]
    pub reload_excludes: Vec<String>,
    /// The access line, with gunicorn's atoms: %(h)s client, %(t)s time, "%(r)s" request line,
    /// %(s)s status, %(b)s body bytes, %(D)s microseconds, %({Header}i)s a request header,
    /// %({Header}o)s a response header... (see the README); default:
    /// 127.0.0.1 "GET / HTTP/1.1" 200 13 42us.
    #[arg(
        long,
        value_name = "FORMAT",
        env = "TERN_ACCESS_LOG_FORMAT",
        alias = "access-logformat"
    )]
    pub access_log_format: Option<String>,
    /// Answer directories without index.html with a listing (instead of 404).
    #[arg(long, env = "TERN_LIST_DIRS")]
    pub list_dirs: bool,
    /// Answer this path (for example /healthz) without the app: 200 while serving, 503 once a
    /// drain is announced (SIGTERM, --drain-delay) or begins.
    #[arg(long, value_name = "PATH", env = "TERN_HEALTH_PATH")]
    pub health_path: Option<String>,
    /// Serve files and directories whose names start with a dot (.git, .env); by default they
    /// are 404 and hidden from listings, except under /.well-known/.
    #[arg(long, env = "TERN_SERVE_DOTFILES")]
    pub serve_dotfiles: bool,
    /// The charset parameter of textual static files (text/*, application/javascript,
    /// application/rss+xml): `text/css; charset=utf-8`. `off` (or empty) sends the bare types.
    #[arg(
        long,
        value_name = "CHARSET",
        env = "TERN_CHARSET",
        default_value = tern_core::config::DEFAULT_CHARSET
    )]
    pub charset: String,
    /// Seconds a cached file (small ones in memory, larger ones kept open) is served before
    /// checking it changed (0: check on every request).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_FILE_CACHE_VALIDITY",
        default_value_t = config::DEFAULT_FILE_CACHE_VALIDITY.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub file_cache_validity: f64,
    /// Seconds an idle keep-alive connection is kept open.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_KEEPALIVE_TIMEOUT",
        default_value_t = config::DEFAULT_KEEPALIVE_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub keepalive_timeout: f64,
    /// Seconds a client has to send a complete request head.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_HEADER_TIMEOUT",
        default_value_t = config::DEFAULT_HEADER_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub header_timeout: f64,
    /// Seconds a body read or a response write may make no progress.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_IO_TIMEOUT",
        default_value_t = config::DEFAULT_IO_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub io_timeout: f64,
    /// Longest request line, in bytes (longer: 414).
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_MAX_REQUEST_LINE",
        default_value_t = format_size(config::DEFAULT_MAX_REQUEST_LINE as u64)
    )]
    pub max_request_line: String,
    /// Largest request head, in bytes (larger: 431).
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_MAX_HEADER_SIZE",
        default_value_t = format_size(config::DEFAULT_MAX_HEADER_SIZE as u64)
    )]
    pub max_header_size: String,
    /// Most header fields in a request (more: 431; at most 256).
    #[arg(long, env = "TERN_MAX_HEADERS", default_value_t = config::DEFAULT_MAX_HEADERS)]
    pub max_headers: usize,
    /// Largest request body, in bytes (larger: 413).
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_MAX_BODY_SIZE",
        default_value_t = format_size(config::DEFAULT_MAX_BODY_SIZE)
    )]
    pub max_body_size: String,
    /// Request bodies up to this size are always kept in memory until the APP is called; larger
    /// ones while --body-memory has room, else in an unlinked temporary file.
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_BODY_BUFFER_SIZE",
        default_value_t = format_size(config::DEFAULT_BODY_BUFFER_SIZE as u64)
    )]
    pub body_buffer_size: String,
    /// Memory per worker for request bodies over --body-buffer-size while they are received and
    /// read (one body may take a quarter of it). A body that finds no room waits for it up to a
    /// second, then goes to a temporary file. 0: every such body goes to a file.
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_BODY_MEMORY",
        default_value_t = format_size(config::DEFAULT_BODY_MEMORY as u64)
    )]
    pub body_memory: String,
    /// Directory for the temporary files of large request bodies [default: $TMPDIR or /tmp].
    #[arg(long, value_name = "DIR", env = "TERN_BODY_TEMP_DIR")]
    pub body_temp_dir: Option<PathBuf>,
    /// Call the APP as soon as the request head is in and let it read the body from the socket
    /// (by default the whole body is received first, so a slow upload holds no Python thread).
    #[arg(long, env = "TERN_STREAM_REQUEST_BODY")]
    pub stream_request_body: bool,
    /// Cut a client (408) whose average rate sending a request head or body falls below this
    /// many bytes per second after --min-data-rate-grace (0: no minimum).
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_MIN_DATA_RATE",
        default_value_t = config::DEFAULT_MIN_DATA_RATE
    )]
    pub min_data_rate: u64,
    /// Seconds a client may send a head or body at any rate before --min-data-rate applies.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_MIN_DATA_RATE_GRACE",
        default_value_t = config::DEFAULT_MIN_DATA_RATE_GRACE.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub min_data_rate_grace: f64,
    /// Serve HTTPS with this certificate chain (PEM, leaf first): on every listener, or only on
    /// those given as --bind https://ADDRESS. Loaded again on SIGHUP.
    #[arg(long, value_name = "PEM", env = "TERN_CERTFILE", requires = "keyfile")]
    pub certfile: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", env = "TERN_KEYFILE", requires = "certfile")]
    pub keyfile: Option<PathBuf>,
    /// Certificate authorities (PEM) that sign the client certificates --client-cert accepts.
    #[arg(long, value_name = "PEM", env = "TERN_CA_CERTS")]
    pub ca_certs: Option<PathBuf>,
    /// Ask HTTPS clients for a certificate signed by --ca-certs: none, optional (a client
    /// without one is served) or required (one without fails the handshake).
    #[arg(long, env = "TERN_CLIENT_CERT", default_value = "none", value_parser = ["none", "optional", "required"])]
    pub client_cert: String,
    /// Seconds a new HTTPS connection has to complete its TLS handshake.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_TLS_HANDSHAKE_TIMEOUT",
        default_value_t = config::DEFAULT_TLS_HANDSHAKE_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub tls_handshake_timeout: f64,
    /// Most TLS handshakes in progress at once per worker (more wait their turn).
    #[arg(long, value_name = "N", env = "TERN_TLS_MAX_HANDSHAKES", default_value_t = config::DEFAULT_TLS_MAX_HANDSHAKES)]
    pub tls_max_handshakes: usize,
    /// Serve HTTP/1.1 only: ALPN offers no `h2` on HTTPS listeners, and plain listeners refuse
    /// HTTP/2 with prior knowledge (its preface gets 505).
    #[arg(long, env = "TERN_NO_HTTP2")]
    pub no_http2: bool,
    /// HTTP/2: the most streams (requests) a client may have open at once on one connection;
    /// more are refused (RST_STREAM REFUSED_STREAM).
    #[arg(long, value_name = "N", env = "TERN_H2_MAX_STREAMS", default_value_t = tern_core::config::Http2Settings::default().max_streams)]
    pub h2_max_streams: u32,
}

/// Options every line service has.
#[derive(Debug, Args)]
pub struct LineServiceArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Longest line accepted, in bytes; a longer one gets an error line and the connection closes.
    #[arg(
        long,
        value_name = "BYTES",
        env = "TERN_MAX_LINE",
        default_value_t = format_size(config::DEFAULT_MAX_LINE as u64)
    )]
    pub max_line: String,
    /// Seconds a connection may stay silent before it is closed.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_IDLE_TIMEOUT",
        default_value_t = config::DEFAULT_IDLE_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub idle_timeout: f64,
    /// Seconds a write may make no progress (a client that never reads) before closing.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_IO_TIMEOUT",
        default_value_t = config::DEFAULT_IO_TIMEOUT.as_secs_f64(),
        allow_negative_numbers = true
    )]
    pub io_timeout: f64,
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    pub service: LineServiceArgs,
    /// Text put before every echoed line.
    #[arg(long, env = "TERN_PREFIX", default_value = "")]
    pub prefix: String,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub service: LineServiceArgs,
    /// Seconds to hold back every answer (a stand-in for a slow backend; blocks nobody else).
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_DELAY",
        default_value = "0",
        allow_negative_numbers = true
    )]
    pub delay: f64,
    /// Work one line may use (about a nanosecond of CPU per unit); a line that needs more gets
    /// "error: too much work for one line", so no line holds up the worker's other clients.
    #[arg(
        long,
        value_name = "UNITS",
        env = "TERN_MAX_WORK",
        default_value_t = tern_lines::arithmetic::DEFAULT_WORK_BUDGET,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub max_work: u64,
}

#[derive(Debug, Args)]
pub struct HelloArgs {
    #[command(flatten)]
    pub service: LineServiceArgs,
    /// The text sent in answer to every message.
    #[arg(long, env = "TERN_TEXT", default_value = tern_lines::hello::DEFAULT_TEXT)]
    pub text: String,
}

#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The server, as HOST:PORT.
    #[arg(value_name = "HOST:PORT", env = "TERN_TARGET")]
    pub target: String,
    /// Connections to open (all before any message is sent).
    #[arg(
        short = 'c',
        long = "connections",
        env = "TERN_CONNECTIONS",
        default_value_t = 100
    )]
    pub connections: usize,
    /// Messages per connection, each sent after the previous answer arrived.
    #[arg(
        short = 'n',
        long = "messages",
        env = "TERN_MESSAGES",
        default_value_t = 10
    )]
    pub messages: u64,
    /// The message to send.
    #[arg(long, env = "TERN_MESSAGE", default_value = "hello")]
    pub message: String,
    /// Count an answer as failed unless it is exactly this text.
    #[arg(long, env = "TERN_EXPECT")]
    pub expect: Option<String>,
    /// Keep sending for this many seconds instead of -n messages.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_DURATION",
        allow_negative_numbers = true
    )]
    pub duration: Option<f64>,
    /// Lines the server sends on connect, to skip before sending (1 for calc's welcome).
    #[arg(long, env = "TERN_GREETING_LINES", default_value_t = 0)]
    pub greeting_lines: usize,
    /// Seconds to wait for a connection or an answer before counting it as failed.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "TERN_TIMEOUT",
        default_value = "30",
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    /// Speak WebSocket instead of lines: upgrade on PATH (`/ws`), send each message as a text
    /// message and take the next message the server sends as its answer.
    #[arg(long, value_name = "PATH", env = "TERN_WEBSOCKET")]
    pub websocket: Option<String>,
}

/// Where the file's values came from, for the start-up log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// The file, made absolute.
    pub path: PathBuf,
    /// The values were the `[tool.tern]` table of a pyproject.toml.
    pub pyproject: bool,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.pyproject {
            write!(f, " [tool.tern]")?;
        }
        Ok(())
    }
}
