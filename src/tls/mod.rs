//! The gateway's own TLS (`[server.tls]`): the server certificate chain and private key read from
//! PEM files and checked to belong together ([`Identity`]), and the rustls server configuration
//! the TLS listener of [`crate::http::run`] accepts with ([`ServerTls`]): TLS 1.3 and 1.2 only,
//! ALPN `h2` and `http/1.1`, aws-lc-rs as the crypto provider. The certificate is swapped while
//! serving when a reload ([`crate::app::reload`]) reads a new valid pair: new handshakes get the
//! new one, open connections keep theirs. [`dev_ca`] makes a development CA and a certificate for
//! loopback.
//!
//! No error or log line here shows key material: a problem names the file and what is wrong with
//! it, never its contents.

pub mod dev_ca;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use aws_lc_rs::digest;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::files::FileError;

/// The application protocols offered in ALPN, preferred first: gRPC clients insist on `h2`.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// A certificate or key could not be had. Every variant names the file; none shows its contents.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but does not hold what it should.
    #[error("{}: {problem}", path.display())]
    Invalid { path: PathBuf, problem: String },
    #[error(
        "{}: the private key does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("writing {0}")]
    Write(#[from] FileError),
    #[error("generating the development CA: {0}")]
    Generate(String),
    #[error("TLS settings: {0}")]
    Settings(String),
}

impl TlsError {
    fn invalid(path: &Path, problem: impl Into<String>) -> TlsError {
        TlsError::Invalid {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

/// aws-lc-rs, the only crypto provider the gateway compiles in.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Makes aws-lc-rs the process's default rustls provider (once; a provider installed before is
/// kept), so that no TLS client of the process (the issuers' key fetches, the store's database
/// connection) depends on which providers feature unification happens to compile in.
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// A server certificate chain with its private key, loaded from PEM files and checked to belong
/// together.
pub struct Identity {
    certified: Arc<CertifiedKey>,
    fingerprint: String,
}

/// Shows the fingerprint only.
impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Reads the chain (end-entity certificate first, then any intermediates) from `cert_file`
    /// and the private key (PKCS#8, SEC1 or PKCS#1 PEM) from `key_file`.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Identity, TlsError> {
        let chain = read_certificates(cert_file)?;
        let key = read_private_key(key_file)?;
        let signing_key = provider().key_provider.load_private_key(key).map_err(|_| {
            TlsError::invalid(
                key_file,
                "the private key is not a usable P-256, P-384, P-521, Ed25519 or RSA key",
            )
        })?;
        let certified = CertifiedKey::new(chain, signing_key);
        match certified.keys_match() {
            // `Unknown`: the key type cannot tell its public key; the handshake will show.
            Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::Mismatch {
                    cert: cert_file.to_path_buf(),
                    key: key_file.to_path_buf(),
                });
            }
            Err(_) => {
                return Err(TlsError::invalid(
                    cert_file,
                    "the first certificate is not a valid X.509 certificate",
                ));
            }
        }
        let fingerprint = certified
            .end_entity_cert()
            .map(|der| fingerprint(der))
            .unwrap_or_default();
        Ok(Identity {
            certified: Arc::new(certified),
            fingerprint,
        })
    }

    /// The SHA-256 fingerprint of the end-entity certificate, lower-case hex: what `openssl x509
    /// -fingerprint -sha256` shows, without the colons.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// The SHA-256 of a certificate's DER, lower-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    crate::signing::hex(digest::digest(&digest::SHA256, der).as_ref())
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file, in order; at least one.
pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let text = read_file(path)?;
    let chain = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::invalid(path, pem_problem(&e)))?;
    if chain.is_empty() {
        return Err(TlsError::invalid(
            path,
            "holds no PEM certificate (BEGIN CERTIFICATE)",
        ));
    }
    Ok(chain)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let text = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| {
        TlsError::invalid(
            path,
            match e {
                pem::Error::NoItemsFound => "holds no PEM private key: PKCS#8 (BEGIN PRIVATE KEY), SEC1 (BEGIN EC PRIVATE KEY) or PKCS#1 (BEGIN RSA PRIVATE KEY)".to_owned(),
                other => pem_problem(&other),
            },
        )
    })
}

/// What is wrong with a PEM file, in words of our own: some of the parser's errors carry the
/// bytes of the offending line, which in a key file would be key material.
fn pem_problem(e: &pem::Error) -> String {
    let what = match e {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64",
        pem::Error::SectionTooLarge => "a PEM section is larger than 256 MB",
        pem::Error::NoItemsFound => "holds no PEM section",
        _ => "cannot be read as PEM",
    };
    what.to_owned()
}

/// The TLS listener's rustls configuration, whose certificate can be replaced while serving.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<Current>,
    config: Arc<ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The identity every handshake is answered with (there is one: no SNI selection).
#[derive(Debug)]
struct Current(ArcSwap<Identity>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().certified.clone())
    }
}

impl ServerTls {
    /// TLS 1.3 and 1.2, ALPN [`ALPN`], no client certificates, serving `identity`.
    pub fn new(identity: Identity) -> Result<ServerTls, TlsError> {
        let current = Arc::new(Current(ArcSwap::from_pointee(identity)));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Settings(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(ServerTls {
            current,
            config: Arc::new(config),
        })
    }

    /// An acceptor for new connections.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// Serves `identity` to new handshakes; whether it differs from the one served before.
    pub fn replace(&self, identity: Identity) -> bool {
        let changed = self.current.0.load().fingerprint != identity.fingerprint;
        self.current.0.store(Arc::new(identity));
        changed
    }

    /// The fingerprint of the certificate new handshakes get.
    pub fn fingerprint(&self) -> String {
        self.current.0.load().fingerprint.clone()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{CertifiedKey as Generated, KeyPair, PKCS_RSA_SHA256, generate_simple_self_signed};

    use super::*;

    fn pair() -> Generated<KeyPair> {
        generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate")
    }

    /// Writes `cert` and `key` PEM into `dir` and loads them.
    fn load(dir: &Path, cert: &str, key: &str) -> Result<Identity, TlsError> {
        let (cert_file, key_file) = (dir.join("tls.pem"), dir.join("tls-key.pem"));
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        Identity::load(&cert_file, &key_file)
    }

    #[test]
    fn a_matching_pair_loads_with_its_fingerprint() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair();
        let identity = load(
            dir.path(),
            &pair.cert.pem(),
            &pair.signing_key.serialize_pem(),
        )
        .expect("valid pair");
        assert_eq!(identity.fingerprint(), fingerprint(pair.cert.der()));
        assert_eq!(identity.fingerprint().len(), 64);
        assert!(!format!("{identity:?}").contains("BEGIN"));
    }

    /// The contents of the elements of the DER SEQUENCE `der`.
    fn der_elements(der: &[u8]) -> Vec<&[u8]> {
        fn header(der: &[u8]) -> (usize, usize) {
            let first = der[1] as usize;
            if first < 0x80 {
                return (2, first);
            }
            let n = first & 0x7f;
            let len = der[2..2 + n]
                .iter()
                .fold(0, |acc, &b| (acc << 8) | b as usize);
            (2 + n, len)
        }
        let (start, len) = header(der);
        let mut rest = &der[start..start + len];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (h, len) = header(rest);
            out.push(&rest[h..h + len]);
            rest = &rest[h + len..];
        }
        out
    }

    #[test]
    fn every_key_encoding_loads() {
        use aws_lc_rs::encoding::{AsDer as _, EcPrivateKeyRfc5915Der};
        let dir = tempfile::tempdir().unwrap();
        let pair = pair();
        // SEC1 (`EC PRIVATE KEY`) is what `openssl ecparam -genkey` writes.
        let ec = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pair.signing_key.serialize_der(),
        )
        .unwrap();
        let sec1: EcPrivateKeyRfc5915Der<'_> = ec.private_key().as_der().unwrap();
        let sec1 = ::pem::encode(&::pem::Pem::new("EC PRIVATE KEY", sec1.as_ref().to_vec()));
        load(dir.path(), &pair.cert.pem(), &sec1).expect("SEC1");
        // PKCS#1 (`RSA PRIVATE KEY`): the RSAPrivateKey inside the PKCS#8 document.
        let rsa_key = KeyPair::generate_for(&PKCS_RSA_SHA256).expect("RSA key");
        let rsa_cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&rsa_key)
            .unwrap();
        let pkcs8 = rsa_key.serialize_der();
        let pkcs1 = der_elements(&pkcs8)[2].to_vec();
        let pkcs1 = ::pem::encode(&::pem::Pem::new("RSA PRIVATE KEY", pkcs1));
        load(dir.path(), &rsa_cert.pem(), &pkcs1).expect("PKCS#1");
        load(dir.path(), &rsa_cert.pem(), &rsa_key.serialize_pem()).expect("PKCS#8 RSA");
    }

    #[test]
    fn each_broken_file_is_refused_naming_it_and_never_showing_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (pair(), pair());
        let key = a.signing_key.serialize_pem();
        // A line of the key's base64: must never appear in a message.
        let key_line = key.lines().nth(1).unwrap().to_owned();
        let cert = a.cert.pem();
        let broken_base64 = key.replacen(&key_line[..10], "!!!!!!!!!!", 1);
        let cases: Vec<(&str, String, String, &str, &str)> = vec![
            (
                "empty certificate file",
                String::new(),
                key.clone(),
                "tls.pem",
                "holds no PEM certificate",
            ),
            (
                "a key where the certificate belongs",
                key.clone(),
                key.clone(),
                "tls.pem",
                "holds no PEM certificate",
            ),
            (
                "a certificate where the key belongs",
                cert.clone(),
                cert.clone(),
                "tls-key.pem",
                "holds no PEM private key",
            ),
            (
                "no END line",
                cert.clone(),
                key.replace("-----END PRIVATE KEY-----", ""),
                "tls-key.pem",
                "no END line",
            ),
            (
                "bad base64 in the key",
                cert.clone(),
                broken_base64,
                "tls-key.pem",
                "not valid base64",
            ),
            (
                "another certificate's key",
                cert.clone(),
                b.signing_key.serialize_pem(),
                "tls-key.pem",
                "does not belong to the certificate in",
            ),
            (
                "garbage certificate",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
                key.clone(),
                "tls.pem",
                "not a valid X.509 certificate",
            ),
            (
                "garbage key",
                cert.clone(),
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
                "tls-key.pem",
                "not a usable",
            ),
        ];
        for (name, cert, key, file, expected) in cases {
            let e = load(dir.path(), &cert, &key).expect_err(name).to_string();
            assert!(e.contains(file) && e.contains(expected), "{name}: {e}");
            assert!(!e.contains(&key_line[..20]), "{name}: key material in {e}");
        }
        let missing = Identity::load(&dir.path().join("absent.pem"), &dir.path().join("k.pem"))
            .expect_err("missing");
        assert!(missing.to_string().contains("absent.pem"), "{missing}");
    }

    #[test]
    fn the_certificate_is_replaced_for_new_handshakes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (pair(), pair());
        let first = load(dir.path(), &a.cert.pem(), &a.signing_key.serialize_pem()).unwrap();
        let second = load(dir.path(), &b.cert.pem(), &b.signing_key.serialize_pem()).unwrap();
        let (first_print, second_print) = (
            first.fingerprint().to_owned(),
            second.fingerprint().to_owned(),
        );
        let tls = ServerTls::new(first).unwrap();
        assert_eq!(tls.fingerprint(), first_print);
        assert_eq!(
            tls.config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(tls.replace(second));
        assert_eq!(tls.fingerprint(), second_print);
        let again = load(dir.path(), &b.cert.pem(), &b.signing_key.serialize_pem()).unwrap();
        assert!(
            !tls.replace(again),
            "the same certificate again is no change"
        );
    }
}
