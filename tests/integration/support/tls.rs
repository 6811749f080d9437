//! An HTTPS front for a [`TestIssuer`]: [`TlsFront`] terminates TLS on `127.0.0.1` with a
//! certificate for `localhost` (and IP `127.0.0.1`) issued by a test CA ([`TestCa`]) generated at
//! start, and forwards the decrypted bytes to the issuer's plain-HTTP port. The issuer's state,
//! behaviors and counters therefore apply to requests made through the front. [`TestCa`] also
//! makes the certificates of the gateway's own TLS listener in tests.
//!
//! The server side uses aws-lc-rs explicitly (`builder_with_provider`), never a process-wide
//! default provider, like the gateway itself.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::TestIssuer;

/// File name [`TlsFront::write_ca`] writes.
pub const CA_FILE: &str = "test-ca.pem";

/// A TLS-terminating TCP forwarder on `127.0.0.1:0` in front of a [`TestIssuer`]. Stops (listener
/// and every connection) when dropped.
#[derive(Debug)]
pub struct TlsFront {
    addr: SocketAddr,
    ca_pem: String,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicUsize,
    handshakes: AtomicUsize,
    failed_handshakes: AtomicUsize,
}

impl TlsFront {
    /// Generates a CA and a leaf certificate, binds `127.0.0.1:0` and forwards every TLS
    /// connection to `issuer`'s plain port.
    pub async fn start(issuer: &TestIssuer) -> TlsFront {
        let (ca_pem, chain, key) = generate_certificates();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS protocol versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("TLS server certificate");
        // The test issuer speaks HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind TLS front on 127.0.0.1:0");
        let addr = listener.local_addr().expect("TLS front local address");
        let backend = issuer.addr();
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(accept_loop(listener, acceptor, backend, counters.clone()));
        TlsFront {
            addr,
            ca_pem,
            counters,
            task,
        }
    }

    /// `https://localhost:PORT` (no trailing slash; append any path).
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The test CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// Writes the CA certificate PEM to `dir/test-ca.pem` and returns that path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join(CA_FILE);
        std::fs::write(&path, &self.ca_pem).expect("write test CA PEM");
        path
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.counters.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.counters.handshakes.load(Ordering::SeqCst)
    }

    /// TLS handshakes that failed (client rejected the certificate, spoke plain HTTP, ...).
    pub fn failed_handshakes(&self) -> usize {
        self.counters.failed_handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

/// `(CA certificate PEM, [leaf certificate], leaf key)`; the leaf is valid for `localhost` and
/// `127.0.0.1`.
fn generate_certificates() -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca = TestCa::new("wif-gateway integration test CA");
    let (leaf_cert, leaf_key) = ca.leaf();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    (ca.pem().to_owned(), vec![leaf_cert.der().clone()], key)
}

/// A CA generated for one test, and the certificates for `localhost` and `127.0.0.1` it signs.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    /// A new CA with the common name `name`.
    pub fn new(name: &str) -> TestCa {
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, name);
        ca_params.distinguished_name = ca_name;
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign test CA");
        TestCa {
            issuer: Issuer::new(ca_params, ca_key),
            pem: ca_cert.pem(),
        }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A new server certificate for `localhost` and `127.0.0.1`, and its key.
    pub fn leaf(&self) -> (rcgen::Certificate, KeyPair) {
        let leaf_key = KeyPair::generate().expect("generate leaf key");
        let mut leaf_params =
            CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf parameters");
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let mut leaf_name = DistinguishedName::new();
        leaf_name.push(DnType::CommonName, "localhost");
        leaf_params.distinguished_name = leaf_name;
        let leaf_cert = leaf_params
            .signed_by(&leaf_key, &self.issuer)
            .expect("sign leaf certificate");
        (leaf_cert, leaf_key)
    }

    /// Writes a new [`TestCa::leaf`] to `cert_file` and its key to `key_file`, each replaced in
    /// one rename as a deployment would; returns the certificate's DER.
    pub fn write_leaf(&self, cert_file: &Path, key_file: &Path) -> CertificateDer<'static> {
        let (cert, key) = self.leaf();
        replace_file(cert_file, &cert.pem());
        replace_file(key_file, &key.serialize_pem());
        cert.der().clone()
    }
}

/// Replaces `path` with `text` in one rename.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    backend: SocketAddr,
    counters: Arc<Counters>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    counters.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(forward(stream, acceptor.clone(), backend, counters.clone()));
                }
                // E.g. too many open files: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Terminates TLS on `stream` and copies bytes both ways to and from `backend`.
async fn forward(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    backend: SocketAddr,
    counters: Arc<Counters>,
) {
    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
    let mut tls = match handshake {
        Ok(Ok(tls)) => tls,
        _ => {
            counters.failed_handshakes.fetch_add(1, Ordering::SeqCst);
            return;
        }
    };
    counters.handshakes.fetch_add(1, Ordering::SeqCst);
    // The issuer may be stopped: then the client just sees the connection close.
    let Ok(mut plain) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
}
