//! Certificates made by the tests themselves (rcgen) and a rustls client to talk to tern's
//! HTTPS listeners with.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::{connect, read_response, Response};

/// A certificate and its key, as DER and PEM.
pub struct Issued {
    pub der: CertificateDer<'static>,
    pub pem: String,
    pub key_pem: String,
}

/// A test CA, with a server certificate for 127.0.0.1 / localhost and a client certificate for
/// `CN=alice,O=Example`, written as PEM files in a temporary folder.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    pub ca_der: CertificateDer<'static>,
    pub server: Issued,
    pub client: Issued,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = name(&[(DnType::CommonName, "tern test CA")]);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let ca_der = ca.der().clone();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let mut pki = Pki {
            dir,
            ca_params,
            ca_key,
            ca_der,
            server: blank(),
            client: blank(),
        };
        pki.server = pki.issue_server("tern test server");
        pki.client = pki.issue(
            CertificateParams::new(Vec::<String>::new()).unwrap(),
            &[
                (DnType::OrganizationName, "Example"),
                (DnType::CommonName, "alice"),
            ],
        );
        pki.write("server.pem", &pki.server.pem);
        pki.write("server-key.pem", &pki.server.key_pem);
        pki
    }

    /// A new server certificate for 127.0.0.1 and localhost, named `common_name`.
    pub fn issue_server(&self, common_name: &str) -> Issued {
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        self.issue(params, &[(DnType::CommonName, common_name)])
    }

    fn issue(&self, mut params: CertificateParams, names: &[(DnType, &str)]) -> Issued {
        params.distinguished_name = name(names);
        let key = KeyPair::generate().unwrap();
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let certificate = params.signed_by(&key, &issuer).unwrap();
        Issued {
            der: certificate.der().clone(),
            pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    pub fn write(&self, file: &str, contents: &str) {
        std::fs::write(self.path(file), contents).unwrap();
    }

    pub fn path(&self, file: &str) -> String {
        self.dir.path().join(file).to_string_lossy().into_owned()
    }

    pub fn path_buf(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `--certfile ... --keyfile ...` for the server certificate.
    pub fn server_args(&self) -> Vec<String> {
        vec![
            "--certfile".into(),
            self.path("server.pem"),
            "--keyfile".into(),
            self.path("server-key.pem"),
        ]
    }

    /// A client that trusts the test CA; with the client certificate if `with_certificate`,
    /// limited to `versions` (all of rustls's when empty).
    pub fn client(
        &self,
        with_certificate: bool,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = if versions.is_empty() {
            rustls::ALL_VERSIONS
        } else {
            versions
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots);
        let config = if with_certificate {
            let key = PrivateKeyDer::from_pem_slice(self.client.key_pem.as_bytes()).unwrap();
            builder
                .with_client_auth_cert(vec![self.client.der.clone()], key)
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        Arc::new(config)
    }
}

fn blank() -> Issued {
    Issued {
        der: CertificateDer::from(Vec::new()),
        pem: String::new(),
        key_pem: String::new(),
    }
}

fn name(names: &[(DnType, &str)]) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    for (kind, value) in names {
        name.push(kind.clone(), *value);
    }
    name
}

/// A TLS connection to tern.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Connects and completes the handshake (an error if tern refuses it).
pub fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> std::io::Result<TlsStream> {
    let tcp = connect(addr);
    let server_name = ServerName::try_from("localhost").unwrap();
    let connection = ClientConnection::new(config.clone(), server_name).unwrap();
    let mut stream = StreamOwned::new(connection, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock)?;
    }
    Ok(stream)
}

/// The certificate the server presented.
pub fn served_certificate(stream: &TlsStream) -> CertificateDer<'static> {
    stream.conn.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

/// Sends `request` on `stream` and reads one response.
pub fn tls_exchange(stream: &mut TlsStream, request: &str) -> Option<Response> {
    stream.write_all(request.as_bytes()).ok()?;
    stream.flush().ok()?;
    let head = request.starts_with("HEAD ");
    read_response(&mut BufReader::new(ByRef(stream)), head)
}

/// `GET path` over a new TLS connection with `Connection: close`.
pub fn tls_get(addr: SocketAddr, config: &Arc<ClientConfig>, path: &str) -> Response {
    let mut stream = tls_connect(addr, config).expect("TLS handshake");
    tls_exchange(
        &mut stream,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
    .expect("a response")
}

/// Reads through a borrowed stream, so a BufReader does not take the connection away (it reads
/// no further than one response needs only when responses are not pipelined back to back).
struct ByRef<'a>(&'a mut TlsStream);

impl Read for ByRef<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}
