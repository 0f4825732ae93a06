//! Building the PEP 3333 `environ` dict from a request head.
//!
//! Keys and constant values are made once per process as interned strings; per request only the
//! values that vary are created. The template dict already holds every key a request always
//! sets (with placeholder values), so its copy has room for them: setting them replaces values
//! instead of growing the dict (the resize was 3% of a Python thread's time on hello-world). Strings are "bytes in a str": every byte becomes the code point
//! of the same number (latin-1), as the PEP requires for PATH_INFO and header values.

use std::net::SocketAddr;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use pyo3::{ffi, intern};

use tern_core::message::forwarded::{Forwarded, Scheme};
use tern_core::message::request::{RequestHead, Version};
use tern_core::socket::{Peer, TlsSession};

use crate::request_facts;

use super::errors::ErrorStream;
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::Wsgi;

/// Request headers common enough to keep their environ key ready.
const COMMON_HEADERS: &[(&str, &str)] = &[
    ("user-agent", "HTTP_USER_AGENT"),
    ("accept", "HTTP_ACCEPT"),
    ("accept-encoding", "HTTP_ACCEPT_ENCODING"),
    ("accept-language", "HTTP_ACCEPT_LANGUAGE"),
    ("connection", "HTTP_CONNECTION"),
    ("cookie", "HTTP_COOKIE"),
    ("referer", "HTTP_REFERER"),
    ("origin", "HTTP_ORIGIN"),
    ("cache-control", "HTTP_CACHE_CONTROL"),
    ("if-none-match", "HTTP_IF_NONE_MATCH"),
    ("if-modified-since", "HTTP_IF_MODIFIED_SINCE"),
    ("authorization", "HTTP_AUTHORIZATION"),
    ("x-forwarded-for", "HTTP_X_FORWARDED_FOR"),
    ("x-forwarded-proto", "HTTP_X_FORWARDED_PROTO"),
    ("x-requested-with", "HTTP_X_REQUESTED_WITH"),
    (
        "upgrade-insecure-requests",
        "HTTP_UPGRADE_INSECURE_REQUESTS",
    ),
    ("expect", "HTTP_EXPECT"),
    ("transfer-encoding", "HTTP_TRANSFER_ENCODING"),
    ("content-type", "CONTENT_TYPE"),
    ("content-length", "CONTENT_LENGTH"),
];

/// The parts of every environ that do not change between requests.
pub struct Template {
    /// Keys and values shared by every request, copied into each new dict.
    base: Py<PyDict>,
    common_headers: Vec<(&'static str, Py<PyString>)>,
    http10: Py<PyString>,
    http11: Py<PyString>,
    http2: Py<PyString>,
    script_name: String,
    /// The last client address as a str: most requests come from one proxy or a few clients.
    last_remote_addr: std::sync::Mutex<Option<(std::net::IpAddr, Py<PyString>)>>,
    /// The last host and what was made of it: most requests name the same host.
    last_host: std::sync::Mutex<Option<HostStrings>>,
}

/// HTTP_HOST, SERVER_NAME and SERVER_PORT for one host value.
struct HostStrings {
    raw: Vec<u8>,
    value: Py<PyAny>,
    /// None when the value has no usable name and port (then the local address is used).
    name_and_port: Option<(Py<PyAny>, Py<PyAny>)>,
}

/// HTTP_HOST, and SERVER_NAME with SERVER_PORT when the Host value names them.
type HostValues<'py> = (
    Bound<'py, PyAny>,
    Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
);

/// Keys every request sets, placed in the template with a placeholder value.
const PER_REQUEST_KEYS: &[&str] = &[
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "RAW_URI",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.input",
];

impl Template {
    pub fn new(py: Python<'_>, root_path: &str, multiprocess: bool) -> PyResult<Template> {
        let base = PyDict::new(py);
        base.set_item(intern!(py, "SCRIPT_NAME"), PyString::new(py, root_path))?;
        base.set_item(intern!(py, "wsgi.version"), PyTuple::new(py, [1, 0])?)?;
        base.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "http"))?;
        base.set_item(intern!(py, "wsgi.errors"), Py::new(py, ErrorStream::new())?)?;
        base.set_item(intern!(py, "wsgi.multithread"), true)?;
        base.set_item(intern!(py, "wsgi.multiprocess"), multiprocess)?;
        base.set_item(intern!(py, "wsgi.run_once"), false)?;
        base.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        base.set_item(
            intern!(py, "wsgi.file_wrapper"),
            py.get_type::<FileWrapper>(),
        )?;
        for key in PER_REQUEST_KEYS {
            base.set_item(PyString::intern(py, key), intern!(py, ""))?;
        }
        let common_headers = COMMON_HEADERS
            .iter()
            .map(|&(name, key)| (name, PyString::intern(py, key).unbind()))
            .collect();
        Ok(Template {
            base: base.unbind(),
            common_headers,
            http10: PyString::intern(py, "HTTP/1.0").unbind(),
            http11: PyString::intern(py, "HTTP/1.1").unbind(),
            http2: PyString::intern(py, "HTTP/2").unbind(),
            script_name: root_path.to_string(),
            last_remote_addr: std::sync::Mutex::new(None),
            last_host: std::sync::Mutex::new(None),
        })
    }
}

impl Template {
    fn remote_addr<'py>(&self, py: Python<'py>, ip: std::net::IpAddr) -> Bound<'py, PyString> {
        let mut last = self
            .last_remote_addr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*last {
            Some((cached, text)) if *cached == ip => text.bind(py).clone(),
            _ => {
                let text = PyString::new(py, &ip.to_string());
                *last = Some((ip, text.clone().unbind()));
                text
            }
        }
    }

    /// HTTP_HOST and, if the value names one, SERVER_NAME and SERVER_PORT for the request's host.
    fn host<'py>(&self, py: Python<'py>, raw: &[u8]) -> PyResult<HostValues<'py>> {
        let mut last = self
            .last_host
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(cached) = last.as_ref().filter(|cached| cached.raw == raw) {
            return Ok((
                cached.value.bind(py).clone(),
                cached
                    .name_and_port
                    .as_ref()
                    .map(|(name, port)| (name.bind(py).clone(), port.bind(py).clone())),
            ));
        }
        let value = latin1(py, raw)?;
        let name_and_port = match request_facts::server_name_and_port(raw) {
            Some((name, port)) => {
                Some((latin1(py, name.as_bytes())?, latin1(py, port.as_bytes())?))
            }
            None => None,
        };
        *last = Some(HostStrings {
            raw: raw.to_vec(),
            value: value.clone().unbind(),
            name_and_port: name_and_port
                .as_ref()
                .map(|(name, port)| (name.clone().unbind(), port.clone().unbind())),
        });
        Ok((value, name_and_port))
    }
}

/// A str holding `bytes` one byte per code point.
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: the pointer and length describe a live slice; DecodeLatin1 copies it and cannot
    // fail on content (every byte is a valid latin-1 character), only on memory.
    unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeLatin1(
                bytes.as_ptr().cast(),
                bytes.len() as ffi::Py_ssize_t,
                std::ptr::null(),
            ),
        )
    }
}

/// On a TLS connection, the keys Apache's mod_ssl and nginx (as `fastcgi_param`s) give an
/// application: HTTPS, SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_VERIFY (`SUCCESS` when the client's
/// certificate verified against `--ca-certs`, `NONE` when it sent none), and SSL_CLIENT_S_DN /
/// SSL_CLIENT_I_DN (its subject and issuer, RFC 4514: `CN=alice,O=Example`).
fn set_tls_keys(py: Python<'_>, environ: &Bound<'_, PyDict>, tls: &TlsSession) -> PyResult<()> {
    environ.set_item(intern!(py, "HTTPS"), intern!(py, "on"))?;
    environ.set_item(intern!(py, "SSL_PROTOCOL"), tls.protocol)?;
    environ.set_item(intern!(py, "SSL_CIPHER"), tls.cipher)?;
    match &tls.client_subject {
        Some(subject) => {
            environ.set_item(intern!(py, "SSL_CLIENT_VERIFY"), intern!(py, "SUCCESS"))?;
            environ.set_item(intern!(py, "SSL_CLIENT_S_DN"), subject)?;
            if let Some(issuer) = &tls.client_issuer {
                environ.set_item(intern!(py, "SSL_CLIENT_I_DN"), issuer)?;
            }
        }
        None => environ.set_item(intern!(py, "SSL_CLIENT_VERIFY"), intern!(py, "NONE"))?,
    }
    Ok(())
}

/// `forwarded`: what a trusted proxy said about the client; it sets REMOTE_ADDR (and
/// REMOTE_PORT, when it gave a port) and `wsgi.url_scheme`, while SERVER_NAME, SERVER_PORT and
/// HTTP_HOST stay as the request sent them.
#[allow(clippy::too_many_arguments)]
pub fn build<'py>(
    py: Python<'py>,
    wsgi: &Wsgi,
    head: &RequestHead,
    peer: Peer,
    forwarded: Option<Forwarded>,
    local_addr: Option<SocketAddr>,
    tls: Option<&TlsSession>,
    content_length: Option<u64>,
    input: Input,
) -> PyResult<Bound<'py, PyDict>> {
    let template = &wsgi.template;
    let environ = template.base.bind(py).copy()?;
    environ.set_item(intern!(py, "REQUEST_METHOD"), method(py, head.method_str()))?;
    let (raw_path, query) = head.path_and_query();
    let path = request_facts::decode_path(raw_path);
    let root = template.script_name.as_bytes();
    let below_root = if !root.is_empty()
        && path.starts_with(root)
        && matches!(path.get(root.len()), None | Some(b'/'))
    {
        &path[root.len()..]
    } else {
        &path[..]
    };
    environ.set_item(intern!(py, "PATH_INFO"), latin1(py, below_root)?)?;
    environ.set_item(
        intern!(py, "QUERY_STRING"),
        latin1(py, query.unwrap_or("").as_bytes())?,
    )?;
    let protocol = match head.version {
        Version::Http10 => &template.http10,
        Version::Http11 => &template.http11,
        Version::Http2 => &template.http2,
    };
    environ.set_item(intern!(py, "SERVER_PROTOCOL"), protocol.bind(py))?;
    // The request target exactly as sent, still percent-encoded (gunicorn's RAW_URI).
    environ.set_item(
        intern!(py, "RAW_URI"),
        latin1(py, head.target().as_bytes())?,
    )?;
    let (remote_ip, remote_port) = request_facts::client(peer, forwarded.as_ref());
    let forwarded = forwarded.unwrap_or_default();
    match remote_ip {
        // On a dual-stack socket an IPv4 client shows as ::ffff:a.b.c.d; apps expect a.b.c.d.
        Some(ip) => environ.set_item(intern!(py, "REMOTE_ADDR"), template.remote_addr(py, ip))?,
        None => environ.set_item(intern!(py, "REMOTE_ADDR"), intern!(py, ""))?,
    }
    match remote_port {
        Some(port) => {
            environ.set_item(intern!(py, "REMOTE_PORT"), itoa::Buffer::new().format(port))?
        }
        None => environ.del_item(intern!(py, "REMOTE_PORT"))?,
    }
    // A trusted proxy's word about the client's scheme wins over this connection's own.
    let https = match forwarded.scheme {
        Some(scheme) => scheme == Scheme::Https,
        None => tls.is_some(),
    };
    if https {
        environ.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "https"))?;
    }
    if let Some(tls) = tls {
        set_tls_keys(py, &environ, tls)?;
    }
    // The absolute-form target's authority if there is one, else the Host field (RFC 9112
    // §3.2.2); checked by the parser to be `uri-host [ ":" port ]`.
    let host = match head.host() {
        Some(raw) => Some(template.host(py, raw)?),
        None => None,
    };
    let (http_host, name_and_port) = match host {
        Some((value, name_and_port)) => (Some(value), name_and_port),
        None => (None, None),
    };
    match name_and_port {
        Some((name, port)) => {
            environ.set_item(intern!(py, "SERVER_NAME"), name)?;
            environ.set_item(intern!(py, "SERVER_PORT"), port)?;
        }
        None => {
            let (name, port) = request_facts::server(None, local_addr);
            environ.set_item(intern!(py, "SERVER_NAME"), name)?;
            environ.set_item(intern!(py, "SERVER_PORT"), port)?;
        }
    }
    if let Some(value) = http_host {
        environ.set_item(intern!(py, "HTTP_HOST"), value)?;
    }
    environ.set_item(intern!(py, "wsgi.input"), Py::new(py, input)?)?;

    // Only for headers outside COMMON_HEADERS; allocated by the first of them.
    let mut key = Vec::new();
    for (name, value) in head.headers() {
        // A name with '_' could pose as another header once '-' becomes '_' (HTTP_X_USER vs X-User).
        // Content-Length comes from the parsed value below ("5, 5" is a valid field, not a number).
        // Host went in above as the request's host (it cannot repeat: the parser refuses that).
        // A chunked body received whole comes with its length instead of its transfer coding,
        // as behind nginx (a request with both fields is refused, so a length means that).
        if name.contains('_')
            || name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("host")
            || (content_length.is_some() && name.eq_ignore_ascii_case("transfer-encoding"))
        {
            continue;
        }
        let value = latin1(py, value)?;
        let common = template
            .common_headers
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name));
        let key = match common {
            Some((_, key)) => key.bind(py).clone().into_any(),
            None => {
                key.clear();
                key.extend_from_slice(b"HTTP_");
                key.extend(name.bytes().map(|b| {
                    if b == b'-' {
                        b'_'
                    } else {
                        b.to_ascii_uppercase()
                    }
                }));
                latin1(py, &key)?
            }
        };
        match environ.get_item(&key)? {
            // Repeated fields join with ", " (RFC 9110 §5.3); cookies with "; " (RFC 6265 §5.4).
            Some(earlier) => {
                let separator = if name.eq_ignore_ascii_case("cookie") {
                    "; "
                } else {
                    ", "
                };
                let joined = format!(
                    "{}{separator}{}",
                    earlier.extract::<String>()?,
                    value.extract::<String>()?
                );
                environ.set_item(key, joined)?;
            }
            None => environ.set_item(key, value)?,
        }
    }
    if let Some(length) = content_length {
        environ.set_item(
            intern!(py, "CONTENT_LENGTH"),
            itoa::Buffer::new().format(length),
        )?;
    }
    Ok(environ)
}

/// The method as an interned str for the common ones.
fn method<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    match method {
        "GET" => intern!(py, "GET").clone(),
        "POST" => intern!(py, "POST").clone(),
        "HEAD" => intern!(py, "HEAD").clone(),
        "PUT" => intern!(py, "PUT").clone(),
        "DELETE" => intern!(py, "DELETE").clone(),
        other => PyString::new(py, other),
    }
}
