//! The HTTP and WebSocket connection scopes (ASGI 3.0, spec 2.4): made from the request head,
//! with the values that never change made once per worker.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use tern_core::message::forwarded::Scheme;
use tern_core::message::request::Version;
use tern_core::service::ServiceRequest;
use tern_core::socket::TlsSession;

use super::Asgi;
use crate::request_facts;

/// What every scope shares.
pub struct Template {
    /// `{"version": "3.0", "spec_version": "2.4"}`.
    asgi: Py<PyDict>,
    /// The extensions tern implements: `http.response.pathsend` (and, per request over HTTPS, `tls`).
    extensions: Py<PyDict>,
    /// The extensions of a WebSocket scope: `websocket.http.response` (a refusal with a body).
    websocket_extensions: Py<PyDict>,
    root_path: Py<PyString>,
}

impl Template {
    pub fn new(py: Python<'_>, root_path: &str) -> PyResult<Template> {
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", "2.4")?;
        let extensions = PyDict::new(py);
        extensions.set_item("http.response.pathsend", PyDict::new(py))?;
        let websocket_extensions = PyDict::new(py);
        websocket_extensions.set_item("websocket.http.response", PyDict::new(py))?;
        Ok(Template {
            asgi: asgi.unbind(),
            extensions: extensions.unbind(),
            websocket_extensions: websocket_extensions.unbind(),
            root_path: PyString::new(py, root_path).unbind(),
        })
    }

    /// The `asgi` key's value (the lifespan scope has it too).
    pub fn asgi_version<'py>(&self, py: Python<'py>) -> &Bound<'py, PyDict> {
        self.asgi.bind(py)
    }

    /// The scope of one HTTP request. `path` is the whole path, the root path included (as
    /// ASGI 2.4 asks); `server` is the request's host and port (else the address the client
    /// connected to); `state` is a shallow copy of the lifespan state.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        asgi: &Asgi,
        request: &ServiceRequest,
        websocket: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let head = &request.head;
        let scope = PyDict::new(py);
        let kind = if websocket {
            intern!(py, "websocket")
        } else {
            intern!(py, "http")
        };
        scope.set_item(intern!(py, "type"), kind)?;
        scope.set_item(intern!(py, "asgi"), self.asgi.bind(py))?;
        let version = match head.version {
            Version::Http10 => intern!(py, "1.0"),
            Version::Http11 => intern!(py, "1.1"),
            Version::Http2 => intern!(py, "2"),
        };
        scope.set_item(intern!(py, "http_version"), version)?;
        if !websocket {
            scope.set_item(intern!(py, "method"), head.method_str())?;
        }
        // A trusted proxy's word about the client's scheme wins over this connection's own.
        let https = match request.forwarded.as_ref().and_then(|f| f.scheme) {
            Some(scheme) => scheme == Scheme::Https,
            None => request.tls.is_some(),
        };
        let scheme = match (https, websocket) {
            (true, false) => intern!(py, "https"),
            (false, false) => intern!(py, "http"),
            (true, true) => intern!(py, "wss"),
            (false, true) => intern!(py, "ws"),
        };
        scope.set_item(intern!(py, "scheme"), scheme)?;
        let (raw_path, query) = head.path_and_query();
        let decoded = request_facts::decode_path(raw_path);
        scope.set_item(
            intern!(py, "path"),
            PyString::new(py, &String::from_utf8_lossy(&decoded)),
        )?;
        scope.set_item(
            intern!(py, "raw_path"),
            PyBytes::new(py, raw_path.as_bytes()),
        )?;
        scope.set_item(
            intern!(py, "query_string"),
            PyBytes::new(py, query.unwrap_or("").as_bytes()),
        )?;
        scope.set_item(intern!(py, "root_path"), self.root_path.bind(py))?;
        let headers = PyList::empty(py);
        let mut name_lower = Vec::new();
        for (name, value) in head.headers() {
            name_lower.clear();
            name_lower.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
            let pair = PyTuple::new(py, [PyBytes::new(py, &name_lower), PyBytes::new(py, value)])?;
            headers.append(pair)?;
        }
        scope.set_item(intern!(py, "headers"), headers)?;
        let client = match request_facts::client(request.peer, request.forwarded.as_ref()) {
            (Some(ip), Some(port)) => Some((ip.to_string(), port)),
            _ => None,
        };
        scope.set_item(intern!(py, "client"), client)?;
        let (name, port) = request_facts::server(head.host(), request.local_addr);
        let port: Option<u16> = port.parse().ok();
        scope.set_item(intern!(py, "server"), (name, port))?;
        scope.set_item(intern!(py, "state"), asgi.state.bind(py).copy()?)?;
        if websocket {
            // Every Sec-WebSocket-Protocol line, in order (RFC 6455 §11.3.4: a list).
            let offered: Vec<String> = head
                .headers()
                .filter(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-protocol"))
                .flat_map(|(_, value)| value.split(|&b| b == b','))
                .map(|name| String::from_utf8_lossy(name.trim_ascii()).into_owned())
                .filter(|name| !name.is_empty())
                .collect();
            scope.set_item(intern!(py, "subprotocols"), PyList::new(py, offered)?)?;
        }
        let extensions = if websocket {
            self.websocket_extensions.bind(py)
        } else {
            self.extensions.bind(py)
        };
        match request.tls.as_deref() {
            // The shared dict, unless this connection's TLS facts are added to a copy.
            None => scope.set_item(intern!(py, "extensions"), extensions)?,
            Some(tls) => {
                let extensions = extensions.copy()?;
                extensions.set_item(intern!(py, "tls"), tls_extension(py, tls)?)?;
                scope.set_item(intern!(py, "extensions"), extensions)?;
            }
        }
        Ok(scope)
    }
}

/// ASGI's `tls` extension: the protocol and cipher suite as code points, and the client's
/// certificate chain (PEM) and subject when it presented one (verified by the handshake, so no
/// error). The server's certificate is not given (None, as the extension allows).
fn tls_extension<'py>(py: Python<'py>, tls: &TlsSession) -> PyResult<Bound<'py, PyDict>> {
    let extension = PyDict::new(py);
    extension.set_item("server_cert", py.None())?;
    let chain = PyList::empty(py);
    if !tls.client_chain.is_empty() {
        let to_pem = py.import("ssl")?.getattr("DER_cert_to_PEM_cert")?;
        for der in &tls.client_chain {
            chain.append(to_pem.call1((PyBytes::new(py, der),))?)?;
        }
    }
    extension.set_item("client_cert_chain", chain)?;
    extension.set_item("client_cert_name", tls.client_subject.as_deref())?;
    extension.set_item("client_cert_error", py.None())?;
    extension.set_item("tls_version", tls.version_code)?;
    extension.set_item("cipher_suite", tls.cipher_code)?;
    Ok(extension)
}
