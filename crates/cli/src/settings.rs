//! Turning parsed arguments into the core's validated configuration. Every check that can fail
//! lives here, so a bad flag stops the program before anything is bound or forked.

use std::sync::Arc;
use std::time::Duration;

use tern_core::access_format::AccessFormat;
use tern_core::config::{
    AccessLogTarget, ClientCertMode, Http2Settings, HttpConfig, HttpLimits, HttpTimeouts,
    LineConfig, LogConfig, LogFormat, LogLevel, MinDataRate, RequestBodies, ServerConfig,
    StaticMount, TlsConfig,
};
use tern_core::http::request::MAX_HEADERS_CAP;
use tern_core::listener::{Bind, BindAddr, SchemeMark};
use tern_core::process::ProcessConfig;
use tern_core::recycle::RecycleConfig;
use tern_core::trusted_proxies::TrustedProxies;
use tern_core::websocket::WebSocketSettings;

use crate::args::{LineServiceArgs, ServeArgs, ServerArgs};
use crate::reload::ReloadConfig;
use crate::sizes::{parse_size, parse_size_or_zero};

/// A positive, finite number of seconds.
pub fn seconds(flag: &str, value: f64) -> Result<Duration, String> {
    if value.is_finite() && value > 0.0 && value < 1e9 {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(format!(
            "--{flag}: {value} is not a positive number of seconds"
        ))
    }
}

/// An octal file mode mask, 0 to 0777.
fn libc_mode(text: &str) -> Option<u32> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
}

/// Like [`seconds`], but 0 is allowed (it means "do not wait").
pub fn seconds_or_zero(flag: &str, value: f64) -> Result<Duration, String> {
    if value == 0.0 {
        return Ok(Duration::ZERO);
    }
    seconds(flag, value).map_err(|_| format!("--{flag}: {value} is not a number of seconds"))
}

pub fn server_config(args: &ServerArgs) -> Result<ServerConfig, String> {
    let binds = if args.binds.is_empty() {
        vec![Bind {
            addr: BindAddr::from_host_port(&args.host, args.port)?,
            mark: SchemeMark::Unmarked,
        }]
    } else {
        args.binds
            .iter()
            .map(|b| Bind::parse(b))
            .collect::<Result<Vec<_>, _>>()?
    };
    if args.workers == 0 {
        return Err("-w/--workers must be at least 1".into());
    }
    if args.max_connections == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    let level =
        LogLevel::parse(&args.log).ok_or_else(|| format!("--log: unknown level '{}'", args.log))?;
    Ok(ServerConfig {
        binds,
        workers: args.workers,
        max_connections: args.max_connections,
        grace_timeout: seconds_or_zero("grace-timeout", args.grace_timeout)?,
        drain_idle_window: seconds_or_zero("drain-idle-window", args.drain_idle_window)?,
        drain_delay: seconds_or_zero("drain-delay", args.drain_delay)?,
        process: ProcessConfig {
            umask: args
                .umask
                .as_deref()
                .map(|text| {
                    libc_mode(text).ok_or_else(|| {
                        format!("--umask: '{text}' is not an octal mode such as 022")
                    })
                })
                .transpose()?,
            pid_file: args.pid_file.clone(),
            user: args.user.clone(),
            group: args.group.clone(),
        },
        recycle: RecycleConfig {
            max_requests: (args.max_requests > 0).then_some(args.max_requests),
            max_requests_jitter: args.max_requests_jitter,
            max_memory: args
                .max_worker_memory
                .as_deref()
                .map(|size| parse_size("max-worker-memory", size))
                .transpose()?,
            lifetime: args
                .worker_lifetime
                .map(|s| seconds("worker-lifetime", s))
                .transpose()?,
        },
        log: LogConfig {
            level,
            file: args.logfile.clone(),
            access_log: !args.no_access_log,
            format: match args.log_format.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => return Err(format!("--log-format: '{other}' is not text or json")),
            },
            access_file: args.access_logfile.as_ref().map(|path| {
                if path.as_os_str() == "-" {
                    AccessLogTarget::Stdout
                } else {
                    AccessLogTarget::File(path.clone())
                }
            }),
        },
        forwarded_allow_ips: TrustedProxies::parse(&args.forwarded_allow_ips)?,
        proxy_protocol: args.proxy_protocol,
        metrics_bind: args
            .metrics_bind
            .as_deref()
            .map(|text| BindAddr::parse(text).map_err(|e| format!("--metrics-bind: {e}")))
            .transpose()?,
        tls: None,
    })
}

/// The HTTPS settings of `tern serve` (None without `--certfile`), checked against the binds:
/// an `https://` bind needs a certificate, and the client-certificate flags go together.
pub fn tls_config(args: &ServeArgs, binds: &[Bind]) -> Result<Option<TlsConfig>, String> {
    let client_cert = match args.client_cert.as_str() {
        "none" => ClientCertMode::None,
        "optional" => ClientCertMode::Optional,
        "required" => ClientCertMode::Required,
        other => {
            return Err(format!(
                "--client-cert: '{other}' is not none, optional or required"
            ))
        }
    };
    let (Some(cert_file), Some(key_file)) = (&args.certfile, &args.keyfile) else {
        if let Some(bind) = binds.iter().find(|b| b.mark == SchemeMark::Https) {
            return Err(format!(
                "--bind https://{}: HTTPS needs --certfile and --keyfile",
                bind.addr
            ));
        }
        if args.ca_certs.is_some() || client_cert != ClientCertMode::None {
            return Err("--ca-certs and --client-cert need --certfile and --keyfile".into());
        }
        return Ok(None);
    };
    match (client_cert, &args.ca_certs) {
        (ClientCertMode::None, Some(_)) => {
            return Err("--ca-certs needs --client-cert optional or required".into())
        }
        (ClientCertMode::Optional | ClientCertMode::Required, None) => {
            return Err(format!(
                "--client-cert {}: needs --ca-certs",
                args.client_cert
            ))
        }
        _ => {}
    }
    if args.tls_max_handshakes == 0 {
        return Err("--tls-max-handshakes must be at least 1".into());
    }
    Ok(Some(TlsConfig {
        cert_file: cert_file.clone(),
        key_file: key_file.clone(),
        ca_certs: args.ca_certs.clone(),
        client_cert,
        handshake_timeout: seconds("tls-handshake-timeout", args.tls_handshake_timeout)?,
        max_handshakes: args.tls_max_handshakes,
        http2: !args.no_http2,
    }))
}

pub fn http_config(args: &ServeArgs) -> Result<HttpConfig, String> {
    if args.max_headers == 0 || args.max_headers > MAX_HEADERS_CAP {
        return Err(format!(
            "--max-headers must be between 1 and {MAX_HEADERS_CAP}"
        ));
    }
    let limits = HttpLimits {
        max_request_line: parse_size("max-request-line", &args.max_request_line)? as usize,
        max_header_size: parse_size("max-header-size", &args.max_header_size)? as usize,
        max_headers: args.max_headers,
        max_body_size: parse_size("max-body-size", &args.max_body_size)?,
    };
    if limits.max_header_size < limits.max_request_line {
        return Err("--max-header-size must be at least --max-request-line".into());
    }
    let timeouts = HttpTimeouts {
        header: seconds("header-timeout", args.header_timeout)?,
        keepalive: seconds("keepalive-timeout", args.keepalive_timeout)?,
        io: seconds("io-timeout", args.io_timeout)?,
        request: args
            .request_timeout
            .map(|s| seconds("request-timeout", s))
            .transpose()?,
    };
    let mounts = static_mounts(args)?;
    if !(args.file_cache_validity.is_finite() && (0.0..1e6).contains(&args.file_cache_validity)) {
        return Err("--file-cache-validity must be a number of seconds, 0 or more".into());
    }
    // The reloader's user edits files and reloads the page: never serve one from before a save.
    let file_cache_validity = if args.reload {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(args.file_cache_validity)
    };
    Ok(HttpConfig {
        limits,
        timeouts,
        mounts,
        access_log: !args.server.no_access_log,
        access_format: access_format(args.access_log_format.as_deref())?,
        file_cache_validity,
        bodies: request_bodies(args)?,
        min_data_rate: MinDataRate {
            bytes_per_second: args.min_data_rate,
            grace: seconds("min-data-rate-grace", args.min_data_rate_grace)?,
        },
        health_path: health_path(args.health_path.as_deref())?,
        forwarded_allow_ips: TrustedProxies::parse(&args.server.forwarded_allow_ips)?,
        websocket: websocket_settings(args)?,
        http2: http2_settings(args)?,
    })
}

/// `--no-http2`, `--h2-max-streams`.
fn http2_settings(args: &ServeArgs) -> Result<Http2Settings, String> {
    if args.h2_max_streams == 0 {
        return Err("--h2-max-streams must be at least 1".into());
    }
    Ok(Http2Settings {
        enabled: !args.no_http2,
        max_streams: args.h2_max_streams,
    })
}

/// `--ws-max-size`, `--ws-ping-interval`, `--ws-ping-timeout`.
fn websocket_settings(args: &ServeArgs) -> Result<WebSocketSettings, String> {
    let max_message = parse_size("ws-max-size", &args.ws_max_size)?;
    if max_message == 0 {
        return Err("--ws-max-size must be at least 1 byte".into());
    }
    let ping_interval = seconds_or_zero("ws-ping-interval", args.ws_ping_interval)?;
    Ok(WebSocketSettings {
        max_message: usize::try_from(max_message).unwrap_or(usize::MAX),
        ping_interval: (!ping_interval.is_zero()).then_some(ping_interval),
        ping_timeout: seconds("ws-ping-timeout", args.ws_ping_timeout)?,
    })
}

/// `--access-log-format`, compiled; an unknown atom is an error naming it.
fn access_format(text: Option<&str>) -> Result<Option<Arc<AccessFormat>>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    if text.is_empty() {
        return Err("--access-log-format: the format is empty".into());
    }
    AccessFormat::parse(text)
        .map(|format| Some(Arc::new(format)))
        .map_err(|message| format!("--access-log-format: {message}"))
}

/// `--health-path`: an absolute path, matched exactly (no query string, no percent-escapes).
fn health_path(path: Option<&str>) -> Result<Option<String>, String> {
    let Some(path) = path else {
        return Ok(None);
    };
    let plain = |c: char| c.is_ascii_alphanumeric() || "/-._~".contains(c);
    if path.starts_with('/') && path.chars().all(plain) {
        Ok(Some(path.to_string()))
    } else {
        Err(format!(
            "--health-path: '{path}' is not a plain absolute path (example: /healthz)"
        ))
    }
}

/// `--reload` and its options; none without `--reload`. Run in the directory the APP is imported
/// from (after --chdir): that directory and every --pythonpath are watched, with every
/// --reload-dir.
pub fn reload_config(args: &ServeArgs) -> Result<Option<ReloadConfig>, String> {
    if !args.reload {
        let given = [
            ("--reload-dir", !args.reload_dirs.is_empty()),
            ("--reload-include", !args.reload_includes.is_empty()),
            ("--reload-exclude", !args.reload_excludes.is_empty()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(format!("{flag} needs --reload"));
        }
        return Ok(None);
    }
    if args.app.is_none() {
        return Err(
            "--reload needs an APP (static files are always served as they are on disk)".into(),
        );
    }
    if args.preload {
        return Err(
            "--reload and --preload do not go together: the reloader restarts workers that import \
             the APP themselves, while --preload imports it once, in the supervisor"
                .into(),
        );
    }
    for dir in &args.reload_dirs {
        if !dir.is_dir() {
            return Err(format!(
                "--reload-dir: {} is not a directory",
                dir.display()
            ));
        }
    }
    let mut roots = vec![std::path::PathBuf::from(".")];
    roots.extend(args.pythonpath.iter().filter(|dir| dir.is_dir()).cloned());
    roots.extend(args.reload_dirs.iter().cloned());
    ReloadConfig::new(&roots, &args.reload_includes, &args.reload_excludes).map(Some)
}

/// How request bodies reach the APP; the temporary-file directory is tried once here, so a bad
/// one stops the server at start-up instead of failing the first large upload.
fn request_bodies(args: &ServeArgs) -> Result<RequestBodies, String> {
    let bodies = RequestBodies {
        buffer: !args.stream_request_body,
        memory_limit: parse_size("body-buffer-size", &args.body_buffer_size)? as usize,
        memory_budget: parse_size_or_zero("body-memory", &args.body_memory)? as usize,
        temp_dir: args
            .body_temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir),
    };
    if bodies.buffer && args.app.is_some() {
        tern_core::http::spool::check_temp_dir(&bodies.temp_dir).map_err(|error| {
            format!(
                "--body-temp-dir: cannot make temporary files in {}: {error}",
                bodies.temp_dir.display()
            )
        })?;
    }
    Ok(bodies)
}

/// The static mounts: DOCROOT at / (no APP) or at --static-url, plus every --static PREFIX=DIR.
fn static_mounts(args: &ServeArgs) -> Result<Vec<StaticMount>, String> {
    let mut mounts = Vec::new();
    let charset = charset(&args.charset)?;
    let docroot = match (&args.docroot, &args.app) {
        (Some(docroot), _) => Some(docroot.clone()),
        (None, None) => Some(".".into()),
        (None, Some(_)) => None,
    };
    if let Some(root) = docroot {
        let prefix = if args.app.is_some() {
            url_prefix("static-url", &args.static_url)?
        } else {
            "/".into()
        };
        mounts.push(StaticMount {
            prefix,
            root,
            list_dirs: args.list_dirs,
            serve_dotfiles: args.serve_dotfiles,
            charset: charset.clone(),
        });
    }
    for mount in &args.static_mounts {
        let (prefix, dir) = mount.split_once('=').ok_or_else(|| {
            format!("--static: '{mount}' is not PREFIX=DIR (example: /media/=uploads)")
        })?;
        mounts.push(StaticMount {
            prefix: url_prefix("static", prefix)?,
            root: dir.into(),
            list_dirs: args.list_dirs,
            serve_dotfiles: args.serve_dotfiles,
            charset: charset.clone(),
        });
    }
    for mount in &mounts {
        if !mount.root.is_dir() {
            let flag = if mount.prefix == "/" || args.docroot.as_ref() == Some(&mount.root) {
                "-r/--docroot"
            } else {
                "--static"
            };
            return Err(format!(
                "{flag}: {} is not a directory",
                mount.root.display()
            ));
        }
    }
    Ok(mounts)
}

/// `--charset`: a name such as `utf-8` (an RFC 9110 token, sent as it is), or `off` or nothing for
/// bare types.
fn charset(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if text.chars().all(token) {
        Ok(Some(text.to_string()))
    } else {
        Err(format!(
            "--charset: '{text}' is not a charset name (examples: utf-8, iso-8859-1, off)"
        ))
    }
}

/// A URL prefix as the router wants it: starting and ending with '/'.
fn url_prefix(flag: &str, text: &str) -> Result<String, String> {
    if !text.starts_with('/')
        || text.contains(['?', '#', ' '])
        || text.split('/').any(|s| s == "..")
    {
        return Err(format!(
            "--{flag}: '{text}' is not a URL path prefix (example: /static/)"
        ));
    }
    Ok(if text.ends_with('/') {
        text.to_string()
    } else {
        format!("{text}/")
    })
}

/// A --root-path: empty, or a path starting with '/' and not ending with one.
pub fn root_path(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    if !text.starts_with('/') || text.contains(['?', '#', ' ']) {
        return Err(format!(
            "--root-path: '{text}' is not a URL path (example: /app)"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

pub fn line_config(args: &LineServiceArgs) -> Result<LineConfig, String> {
    Ok(LineConfig {
        max_line: parse_size("max-line", &args.max_line)? as usize,
        idle_timeout: seconds("idle-timeout", args.idle_timeout)?,
        io_timeout: seconds("io-timeout", args.io_timeout)?,
        access_log: !args.server.no_access_log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command line without flags gives exactly tern-core's defaults (config.rs): the CLI
    /// takes them from there instead of writing them again.
    #[test]
    fn no_flags_give_the_core_defaults() {
        use clap::Parser;
        use tern_core::config::*;
        use tern_core::trusted_proxies::DEFAULT_FORWARDED_ALLOW_IPS;

        use crate::args::{Cli, Command};

        let Command::Serve(serve) = Cli::try_parse_from(["tern", "serve"]).unwrap().command else {
            panic!("not serve");
        };
        let server = server_config(&serve.server).unwrap();
        assert_eq!(
            server.binds,
            vec![Bind {
                addr: BindAddr::from_host_port(DEFAULT_HOST, DEFAULT_PORT).unwrap(),
                mark: SchemeMark::Unmarked
            }]
        );
        assert!(tls_config(&serve, &server.binds).unwrap().is_none());
        assert_eq!(server.workers, DEFAULT_WORKERS);
        assert_eq!(server.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(server.grace_timeout, DEFAULT_GRACE_TIMEOUT);
        assert_eq!(server.drain_idle_window, DEFAULT_DRAIN_IDLE_WINDOW);
        assert_eq!(server.drain_delay, DEFAULT_DRAIN_DELAY);
        assert_eq!(server.recycle, RecycleConfig::default());
        assert_eq!(server.log.level, DEFAULT_LOG_LEVEL);
        assert_eq!(server.log.format, LogFormat::default());
        assert_eq!(server.metrics_bind, None);
        assert_eq!(
            server.forwarded_allow_ips,
            TrustedProxies::parse(DEFAULT_FORWARDED_ALLOW_IPS).unwrap()
        );
        let http = http_config(&serve).unwrap();
        assert_eq!(http.limits, HttpLimits::default());
        assert_eq!(http.timeouts, HttpTimeouts::default());
        assert_eq!(http.bodies, RequestBodies::default());
        assert_eq!(http.min_data_rate, MinDataRate::default());
        assert_eq!(http.file_cache_validity, DEFAULT_FILE_CACHE_VALIDITY);
        assert_eq!(http.mounts[0].charset.as_deref(), Some(DEFAULT_CHARSET));
        assert_eq!(serve.threads, DEFAULT_MAX_THREADS);
        assert_eq!(serve.static_url, DEFAULT_STATIC_URL);

        let Command::Echo(echo) = Cli::try_parse_from(["tern", "echo"]).unwrap().command else {
            panic!("not echo");
        };
        assert_eq!(line_config(&echo.service).unwrap(), LineConfig::default());
    }

    /// The help shows the defaults as a user would type them.
    #[test]
    fn the_help_shows_sizes_and_seconds_readably() {
        use clap::CommandFactory;
        let mut cli = crate::args::Cli::command();
        let help = cli
            .find_subcommand_mut("serve")
            .unwrap()
            .render_help()
            .to_string();
        // Wrapped lines may break between "[default:" and the value.
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for shown in [
            "[default: 8K]",
            "[default: 32K]",
            "[default: 100M]",
            "[default: 64K]",
            "[default: 75]",
            "[default: 30]",
            "[default: 1.5]",
            "[default: /static/]",
            "[default: 10]",
            "[default: 1024]",
        ] {
            assert!(help.contains(shown), "{shown} in:\n{help}");
        }
    }

    #[test]
    fn charsets() {
        assert_eq!(charset("utf-8").unwrap().as_deref(), Some("utf-8"));
        assert_eq!(charset("Shift_JIS").unwrap().as_deref(), Some("Shift_JIS"));
        assert_eq!(charset("off").unwrap(), None);
        assert_eq!(charset("OFF").unwrap(), None);
        assert_eq!(charset("").unwrap(), None);
        for bad in ["utf-8; q=1", "utf 8", "\"utf-8\"", "utf-8\r\nX-Evil: 1"] {
            assert!(charset(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(seconds("x", 0.5).unwrap(), Duration::from_millis(500));
        assert!(seconds("x", 0.0).is_err());
        assert!(seconds("x", f64::NAN).is_err());
    }
}
