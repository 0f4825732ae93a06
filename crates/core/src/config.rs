//! The one validated configuration of a tern server. The CLI builds it; the core only reads it.
//!
//! Every limit and timeout lives here with its default, so a reader finds all of them in one place.

use std::path::PathBuf;
use std::time::Duration;

use crate::listener::Bind;
use crate::trusted_proxies::TrustedProxies;

/// Default address to listen on: this machine only, until told otherwise.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// Default port, as the original lab server used.
pub const DEFAULT_PORT: u16 = 9000;
/// Default number of worker processes.
pub const DEFAULT_WORKERS: usize = 1;
/// Longest HTTP request line accepted, in bytes (nginx: 8 KiB per header buffer); longer is 414.
pub const DEFAULT_MAX_REQUEST_LINE: usize = 8 * 1024;
/// Largest request head (request line plus headers), in bytes; larger is 431.
pub const DEFAULT_MAX_HEADER_SIZE: usize = 32 * 1024;
/// Most header fields in one request; more is 431.
pub const DEFAULT_MAX_HEADERS: usize = 100;
/// Largest request body, in bytes (100 MiB); larger is 413.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 100 * 1024 * 1024;
/// Most open connections per worker; past it the worker stops accepting until one closes.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16 * 1024;
/// Longest line a line service accepts, in bytes (64 KiB).
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;
/// How long an idle keep-alive connection is kept (nginx: 75 s).
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// How long a client may take to send a whole request head (nginx: 60 s; we are stricter).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a single write or body read may make no progress before the connection is cut.
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a line-service connection may stay silent before it is closed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a cached small file is trusted before it is checked again (nginx's
/// open_file_cache_valid is 60 s).
pub const DEFAULT_FILE_CACHE_VALIDITY: Duration = Duration::from_secs(1);
/// How long a stopping worker waits for in-flight requests before it exits anyway.
pub const DEFAULT_GRACE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping worker keeps silent keep-alive connections open for a request their
/// client may already be sending (answered with `Connection: close`); within the grace timeout.
pub const DEFAULT_DRAIN_IDLE_WINDOW: Duration = Duration::from_millis(1500);
/// Request bodies up to this size, in bytes, are always held in memory until the app is called.
/// 64 KiB holds the form posts and JSON bodies most requests carry, and keeps a slow uploader's
/// cost near that of a large request head (32 KiB): 16,384 connections each holding 1 MiB would
/// be 16 GiB, each holding 64 KiB is 1 GiB. Larger bodies share [`DEFAULT_BODY_MEMORY`].
pub const DEFAULT_BODY_BUFFER_SIZE: usize = 64 * 1024;
/// Memory per worker for the request bodies larger than `--body-buffer-size` being received
/// whole, in bytes; one body may take a quarter of it (16 MiB), and the rest go to a temporary
/// file. Measured (bench/NOTES.md, 2026-12-04): a 10 MB body through a file on ext4 cost the
/// worker 7.6 ms of CPU, in memory 3.0 ms. 64 MiB keeps four 16 MiB or six 10 MB uploads
/// arriving while the app reads one, which kept the worker busy when its clients stalled (with
/// room for two or three, it sat idle).
pub const DEFAULT_BODY_MEMORY: usize = 64 * 1024 * 1024;
/// The slowest a client may send a request head or body on average, in bytes per second, once
/// the grace period is over (Kestrel's MinRequestBodyDataRate: 240 bytes/s after 5 s).
pub const DEFAULT_MIN_DATA_RATE: u64 = 240;
/// How long a client may send at any rate before [`DEFAULT_MIN_DATA_RATE`] applies.
pub const DEFAULT_MIN_DATA_RATE_GRACE: Duration = Duration::from_secs(5);
/// How long, on SIGTERM, a worker keeps serving with its health check answering 503 before the
/// listeners close: not at all unless asked.
pub const DEFAULT_DRAIN_DELAY: Duration = Duration::ZERO;
/// The URL prefix under which the document root is served beside an application.
pub const DEFAULT_STATIC_URL: &str = "/static/";
/// The most application threads per worker: enough for hundreds of blocking requests at once (a
/// thread exists only while the load needs it).
pub const DEFAULT_MAX_THREADS: usize = 512;
/// The log level when none is given.
pub const DEFAULT_LOG_LEVEL: LogLevel = LogLevel::Info;

/// How long a new HTTPS connection may take to complete its TLS handshake, from accept (nginx
/// gives the whole handshake its `client_header_timeout`, 60 s; a browser needs one round trip).
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most TLS handshakes in progress at once per worker; more wait (within their handshake
/// timeout) for one to finish. A handshake costs the server one signature (about 0.2 ms with an
/// ECDSA P-256 key, 1-2 ms with RSA 2048) and some 40 KiB of buffers while it lasts.
pub const DEFAULT_TLS_MAX_HANDSHAKES: usize = 1024;

/// The `charset` parameter sent with textual static files (nginx's `charset utf-8`).
pub const DEFAULT_CHARSET: &str = "utf-8";

/// What a whole server process tree runs: where it listens, how many workers, how it logs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on, each with its `http://`/`https://` mark; at least one.
    pub binds: Vec<Bind>,
    /// Number of worker processes (at least 1).
    pub workers: usize,
    /// Most open connections per worker.
    pub max_connections: usize,
    /// How long SIGTERM waits for in-flight work before the worker exits.
    pub grace_timeout: Duration,
    /// How long a stopping worker keeps silent keep-alive connections open (at most the grace
    /// timeout): closing one races with its client's next request.
    pub drain_idle_window: Duration,
    /// When a worker asks to be replaced by a fresh one (requests, memory, age).
    pub recycle: crate::recycle::RecycleConfig,
    /// On SIGTERM, how long the workers keep serving (their health checks answering 503) before
    /// the listeners close and the drain begins, so that a load balancer stops sending first.
    pub drain_delay: Duration,
    /// The supervisor's own process: umask, pid file, the user and group to run as.
    pub process: crate::process::ProcessConfig,
    /// Where and how much to log.
    pub log: LogConfig,
    /// The peers whose word about the client counts (PROXY protocol headers, X-Forwarded-For).
    pub forwarded_allow_ips: TrustedProxies,
    /// Every connection starts with a PROXY protocol header (v1 or v2) from a trusted peer.
    pub proxy_protocol: bool,
    /// Where Prometheus metrics are served (`--metrics-bind`), on a listener of their own.
    pub metrics_bind: Option<crate::listener::BindAddr>,
    /// The certificate and TLS settings of the HTTPS listeners (`--certfile`); None: no TLS.
    pub tls: Option<TlsConfig>,
}

/// What the HTTPS listeners present and ask of their clients (`--certfile`, `--keyfile`, ...).
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// Certificate authorities (PEM) whose client certificates are accepted (`--ca-certs`).
    pub ca_certs: Option<PathBuf>,
    /// Whether clients must, may or need not present a certificate.
    pub client_cert: ClientCertMode,
    /// The longest a handshake may take, from accept.
    pub handshake_timeout: Duration,
    /// Most handshakes in progress at once per worker.
    pub max_handshakes: usize,
    /// ALPN offers `h2` before `http/1.1` (unless `--no-http2`).
    pub http2: bool,
}

/// `--client-cert`: what is asked of a client's certificate (mutual TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertMode {
    /// No certificate is asked for.
    None,
    /// A client may present one, signed by `--ca-certs`; one that does not is still served.
    Optional,
    /// A client without a certificate signed by `--ca-certs` fails the handshake.
    Required,
}

/// Logging destination and verbosity.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub level: LogLevel,
    /// Append to this file instead of stderr.
    pub file: Option<PathBuf>,
    /// One line per request (HTTP) or per connection (line services).
    pub access_log: bool,
    /// Text lines or JSON objects.
    pub format: LogFormat,
    /// Where access lines go; None: with the other lines.
    pub access_file: Option<AccessLogTarget>,
}

/// The shape of every log line (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `2026-11-23T08:40:01.123Z INFO [1234] message`.
    #[default]
    Text,
    /// One JSON object per line: `{"time":…,"level":…,"pid":…,"message":…}`; access lines carry
    /// their fields as members.
    Json,
}

/// Where `--access-logfile` sends access lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// `-`: standard output.
    Stdout,
    /// A file, opened for append (and reopened on SIGUSR1).
    File(PathBuf),
}

/// The levels `--log` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warning,
    Error,
}

/// The HTTP side: limits, timeouts and the static mounts.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub limits: HttpLimits,
    pub timeouts: HttpTimeouts,
    /// URL prefix → directory. The prefix ends with '/'; "/" serves the whole site.
    pub mounts: Vec<StaticMount>,
    /// Log one line per request.
    pub access_log: bool,
    /// `--access-log-format`, compiled; None: the default line, built without it.
    pub access_format: Option<std::sync::Arc<crate::access_format::AccessFormat>>,
    /// How long a cached small file is served without checking that it is unchanged.
    pub file_cache_validity: Duration,
    /// How request bodies reach the application.
    pub bodies: RequestBodies,
    /// The slowest a client may send a head or a body.
    pub min_data_rate: MinDataRate,
    /// A path answered by the server itself for load balancers: 200 while serving, 503 once a
    /// drain is announced (see [`crate::health`]).
    pub health_path: Option<String>,
    /// The peers whose X-Forwarded-For, X-Forwarded-Proto and Forwarded headers are believed.
    pub forwarded_allow_ips: TrustedProxies,
    /// How WebSocket sessions run (for an application that takes them).
    pub websocket: crate::websocket::WebSocketSettings,
    /// Whether and how HTTP/2 connections are served.
    pub http2: Http2Settings,
}

/// HTTP/2 (`--no-http2`, `--h2-max-streams`): offered by ALPN on TLS listeners and accepted with
/// prior knowledge on plain ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Settings {
    pub enabled: bool,
    /// Streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS);
    /// more are refused.
    pub max_streams: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            enabled: true,
            max_streams: 128,
        }
    }
}

/// How request bodies for the application are received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBodies {
    /// Receive the whole body before calling the application (the default), so a slow client
    /// holds no application thread; false (`--stream-request-body`): the application reads it
    /// from the socket as it arrives.
    pub buffer: bool,
    /// Bodies up to this many bytes are held in memory...
    pub memory_limit: usize,
    /// ...and larger ones too while the worker's memory for them, this many bytes, has room
    /// (see [`crate::http::body_budget`]); the rest go to a temporary file.
    pub memory_budget: usize,
    /// Where the temporary files are made (they are unlinked at once).
    pub temp_dir: PathBuf,
}

/// A minimum average data rate (after Kestrel's MinRequestBodyDataRate): a client sending a head
/// or body more slowly than this, once the grace period is over, is cut off with 408.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinDataRate {
    /// Bytes per second; 0 turns the check off.
    pub bytes_per_second: u64,
    /// How long any rate is accepted at the start of a head or body.
    pub grace: Duration,
}

/// One static mount: requests whose path starts with `prefix` are served from `root`.
#[derive(Debug, Clone)]
pub struct StaticMount {
    pub prefix: String,
    pub root: PathBuf,
    /// Answer a directory without index.html with a listing instead of 404.
    pub list_dirs: bool,
    /// Serve files and directories whose names start with a dot (`.git`, `.env`); otherwise
    /// they are 404 and left out of listings, except under `/.well-known/` (RFC 8615).
    pub serve_dotfiles: bool,
    /// The `charset` parameter added to the Content-Type of textual files (`text/*` and a few
    /// others, see [`crate::static_files::mime`]); None sends bare types. A token, e.g. `utf-8`.
    pub charset: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_request_line: usize,
    pub max_header_size: usize,
    pub max_headers: usize,
    pub max_body_size: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From the first byte of a request head to its end.
    pub header: Duration,
    /// An idle keep-alive connection between requests.
    pub keepalive: Duration,
    /// A write (or a body read) that makes no progress.
    pub io: Duration,
    /// Waiting on the application for its response head, or for the next piece of a streamed
    /// body; past it the client gets 504 (or the connection closes) and the application is told
    /// (WSGI: the stuck thread's Python stack is logged and the worker replaced). None: no limit.
    pub request: Option<Duration>,
}

/// Settings shared by the line services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineConfig {
    pub max_line: usize,
    /// Close a connection silent for this long.
    pub idle_timeout: Duration,
    /// A write that makes no progress for this long closes the connection.
    pub io_timeout: Duration,
    /// Log one line per connection.
    pub access_log: bool,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_request_line: DEFAULT_MAX_REQUEST_LINE,
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            header: DEFAULT_HEADER_TIMEOUT,
            keepalive: DEFAULT_KEEPALIVE_TIMEOUT,
            io: DEFAULT_IO_TIMEOUT,
            request: None,
        }
    }
}

impl Default for RequestBodies {
    fn default() -> Self {
        RequestBodies {
            buffer: true,
            memory_limit: DEFAULT_BODY_BUFFER_SIZE,
            memory_budget: DEFAULT_BODY_MEMORY,
            temp_dir: std::env::temp_dir(),
        }
    }
}

impl Default for MinDataRate {
    fn default() -> Self {
        MinDataRate {
            bytes_per_second: DEFAULT_MIN_DATA_RATE,
            grace: DEFAULT_MIN_DATA_RATE_GRACE,
        }
    }
}

impl Default for LineConfig {
    fn default() -> Self {
        LineConfig {
            max_line: DEFAULT_MAX_LINE,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
            access_log: true,
        }
    }
}

impl LogFormat {
    /// The name `--log-format` takes for this format.
    pub const fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl LogLevel {
    /// The name `--log` takes for this level.
    pub const fn name(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
        }
    }

    /// Parses the names `--log` accepts (`warn` too, as a courtesy).
    pub fn parse(name: &str) -> Option<LogLevel> {
        match name.to_ascii_lowercase().as_str() {
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warning" | "warn" => Some(LogLevel::Warning),
            "error" => Some(LogLevel::Error),
            _ => None,
        }
    }
}
