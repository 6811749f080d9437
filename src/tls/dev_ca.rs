//! The development CA of `[server.tls] generate_dev_ca = true`: a CA certificate (`ca.pem`, the
//! file clients trust) and its key (`ca-key.pem`, mode 0600) in one directory, and a server
//! certificate it signs for `localhost` and `127.0.0.1` at the configured `cert_file` and
//! `key_file` (mode 0600). Made on the first start and reused after; the server certificate is
//! made again when it or its key is missing, or when it no longer verifies against the CA at
//! `now` (expired, or signed by a CA made since). Keys are P-256.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::{TlsError, read_certificates};
use crate::files::{write_private, write_public};

/// The CA certificate clients trust, in the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA's private key, beside it.
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The CA's subject common name.
const CA_NAME: &str = "wif-gateway development CA";
const DAY: i64 = 86_400;
/// The CA lives ten years, the server certificate one.
const CA_DAYS: i64 = 3_650;
const SERVER_DAYS: i64 = 365;

/// The names the server certificate is valid for.
pub const SERVER_DNS_NAME: &str = "localhost";
pub const SERVER_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What [`ensure`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generated {
    /// Everything was there and valid.
    Nothing,
    /// A new server certificate and key, signed by the existing CA.
    ServerCertificate,
    /// A new CA, and a server certificate it signed.
    CaAndServerCertificate,
}

/// Makes sure `ca_dir` holds the development CA and `cert_file`/`key_file` a server certificate
/// it signed that is valid at `now` (Unix seconds); makes what is missing or stale.
pub fn ensure(
    ca_dir: &Path,
    cert_file: &Path,
    key_file: &Path,
    now: i64,
) -> Result<Generated, TlsError> {
    let ca_cert_file = ca_dir.join(CA_CERT_FILE);
    let ca_key_file = ca_dir.join(CA_KEY_FILE);
    let (ca_key, ca_cert, new_ca) = if ca_cert_file.exists() && ca_key_file.exists() {
        let key = read_ca_key(&ca_key_file)?;
        let cert = read_certificates(&ca_cert_file)?.swap_remove(0);
        (key, cert, false)
    } else {
        let key = KeyPair::generate().map_err(generation)?;
        let cert = ca_params(now)?.self_signed(&key).map_err(generation)?;
        write_private(&ca_key_file, &key.serialize_pem())?;
        write_public(&ca_cert_file, &cert.pem())?;
        tracing::info!(ca = %ca_cert_file.display(), "generated a development CA");
        (key, cert.der().clone(), true)
    };
    let verifier = verifier(&ca_cert_file, &ca_cert)?;
    let why = if new_ca {
        Some("the CA is new".to_owned())
    } else if !cert_file.exists() || !key_file.exists() {
        Some("it is missing".to_owned())
    } else {
        stale(&verifier, cert_file, now)
    };
    let Some(why) = why else {
        return Ok(Generated::Nothing);
    };
    let key = KeyPair::generate().map_err(generation)?;
    let issuer = Issuer::new(ca_params(now)?, ca_key);
    let cert = server_params(now)?
        .signed_by(&key, &issuer)
        .map_err(generation)?;
    if let Some(problem) = verify(&verifier, cert.der(), now) {
        return Err(TlsError::invalid(
            &ca_cert_file,
            format!(
                "is not the certificate of {} as this gateway makes it ({problem}); delete both to make a new development CA",
                ca_key_file.display()
            ),
        ));
    }
    write_private(key_file, &key.serialize_pem())?;
    write_public(cert_file, &cert.pem())?;
    tracing::info!(
        cert = %cert_file.display(),
        ca = %ca_cert_file.display(),
        reason = %why,
        "generated a development server certificate for localhost and 127.0.0.1"
    );
    Ok(if new_ca {
        Generated::CaAndServerCertificate
    } else {
        Generated::ServerCertificate
    })
}

fn generation(e: rcgen::Error) -> TlsError {
    TlsError::Generate(e.to_string())
}

fn read_ca_key(path: &Path) -> Result<KeyPair, TlsError> {
    let text = std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // rcgen's error could quote the file: say what is wrong in our own words.
    KeyPair::from_pem(&text)
        .map_err(|_| TlsError::invalid(path, "holds no usable PKCS#8 PEM private key"))
}

/// The CA's certificate parameters. Issuing needs only its name, key usages and key-identifier
/// method, which are fixed, so the issuer of a later start is rebuilt from these and the key.
fn ca_params(now: i64) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = name;
    validity(&mut params, now, CA_DAYS)?;
    Ok(params)
}

fn server_params(now: i64) -> Result<CertificateParams, TlsError> {
    let mut params =
        CertificateParams::new(vec![SERVER_DNS_NAME.to_owned()]).map_err(generation)?;
    params.subject_alt_names.push(SanType::IpAddress(SERVER_IP));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, SERVER_DNS_NAME);
    params.distinguished_name = name;
    validity(&mut params, now, SERVER_DAYS)?;
    Ok(params)
}

/// Valid from midnight UTC of the day before `now` (at once, whatever the clocks of the machines
/// say) until midnight UTC `days` days after it.
fn validity(params: &mut CertificateParams, now: i64, days: i64) -> Result<(), TlsError> {
    let midnight = |unix: i64| {
        crate::time::civil_date(unix)
            .map(|(year, month, day)| rcgen::date_time_ymd(year, month, day))
            .ok_or_else(|| TlsError::Generate(format!("the date of {unix} is out of range")))
    };
    params.not_before = midnight(now - DAY)?;
    params.not_after = midnight(now + days * DAY)?;
    Ok(())
}

/// A verifier of server certificates that trusts the CA `ca` only.
fn verifier(
    ca_file: &Path,
    ca: &CertificateDer<'static>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|_| TlsError::invalid(ca_file, "is not a usable CA certificate"))?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), super::provider())
        .build()
        .map_err(|e| TlsError::Settings(e.to_string()))
}

/// Why the server certificate at `path` must be made again, if it must: it does not verify
/// against the CA at `now`. A file that does not parse is left for loading to report.
fn stale(verifier: &WebPkiServerVerifier, path: &Path, now: i64) -> Option<String> {
    let chain = read_certificates(path).ok()?;
    let leaf = chain.first()?;
    verify(verifier, leaf, now)
}

/// Why `leaf` does not verify against the CA for both names at `now`, if it does not. An
/// undecodable certificate is not reported here.
fn verify(verifier: &WebPkiServerVerifier, leaf: &CertificateDer<'_>, now: i64) -> Option<String> {
    let at = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    let names = [
        ServerName::IpAddress(SERVER_IP.into()),
        ServerName::try_from(SERVER_DNS_NAME).ok()?,
    ];
    names.iter().find_map(
        |name| match verifier.verify_server_cert(leaf, &[], name, &[], at) {
            Ok(_) => None,
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)) => None,
            Err(e) => Some(e.to_string()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::Identity;

    const NOW: i64 = 1_795_000_000;

    struct Dev {
        dir: tempfile::TempDir,
    }

    impl Dev {
        fn new() -> Dev {
            Dev {
                dir: tempfile::tempdir().unwrap(),
            }
        }
        fn path(&self, name: &str) -> std::path::PathBuf {
            self.dir.path().join(name)
        }
        fn try_ensure(&self, now: i64) -> Result<Generated, TlsError> {
            ensure(
                self.dir.path(),
                &self.path("server.pem"),
                &self.path("server-key.pem"),
                now,
            )
        }
        fn ensure(&self, now: i64) -> Generated {
            self.try_ensure(now).unwrap()
        }
        fn read(&self, name: &str) -> String {
            std::fs::read_to_string(self.path(name)).unwrap()
        }
    }

    #[test]
    fn the_first_start_makes_the_ca_and_later_ones_reuse_it() {
        let dev = Dev::new();
        assert_eq!(dev.ensure(NOW), Generated::CaAndServerCertificate);
        let (ca, cert) = (dev.read(CA_CERT_FILE), dev.read("server.pem"));
        assert_eq!(dev.ensure(NOW + DAY), Generated::Nothing);
        assert_eq!(dev.read(CA_CERT_FILE), ca);
        assert_eq!(dev.read("server.pem"), cert);
        Identity::load(&dev.path("server.pem"), &dev.path("server-key.pem")).expect("a pair");
        #[cfg(unix)]
        for name in [CA_KEY_FILE, "server-key.pem"] {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dev.path(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn an_expired_or_missing_server_certificate_is_made_again_by_the_same_ca() {
        let dev = Dev::new();
        dev.ensure(NOW);
        let (ca, cert) = (dev.read(CA_CERT_FILE), dev.read("server.pem"));
        // Still valid the day before it expires, not the day after.
        assert_eq!(
            dev.ensure(NOW + (SERVER_DAYS - 1) * DAY),
            Generated::Nothing
        );
        assert_eq!(
            dev.ensure(NOW + (SERVER_DAYS + 1) * DAY),
            Generated::ServerCertificate
        );
        assert_ne!(dev.read("server.pem"), cert);
        assert_eq!(dev.read(CA_CERT_FILE), ca);
        std::fs::remove_file(dev.path("server-key.pem")).unwrap();
        assert_eq!(dev.ensure(NOW), Generated::ServerCertificate);
        assert_eq!(dev.read(CA_CERT_FILE), ca);
        Identity::load(&dev.path("server.pem"), &dev.path("server-key.pem")).expect("a pair");
    }

    #[test]
    fn a_lost_ca_key_makes_a_new_ca_and_a_new_server_certificate() {
        let dev = Dev::new();
        dev.ensure(NOW);
        let (ca, cert) = (dev.read(CA_CERT_FILE), dev.read("server.pem"));
        std::fs::remove_file(dev.path(CA_KEY_FILE)).unwrap();
        assert_eq!(dev.ensure(NOW), Generated::CaAndServerCertificate);
        assert_ne!(dev.read(CA_CERT_FILE), ca);
        assert_ne!(dev.read("server.pem"), cert);
        // A server certificate of another CA is made again.
        let other = Dev::new();
        other.ensure(NOW);
        std::fs::copy(other.path("server.pem"), dev.path("server.pem")).unwrap();
        std::fs::copy(other.path("server-key.pem"), dev.path("server-key.pem")).unwrap();
        assert_eq!(dev.ensure(NOW), Generated::ServerCertificate);
    }

    #[test]
    fn a_broken_ca_is_refused_naming_its_file() {
        let dev = Dev::new();
        dev.ensure(NOW);
        std::fs::write(dev.path(CA_KEY_FILE), "not a key").unwrap();
        let e = dev.try_ensure(NOW).expect_err("broken CA key").to_string();
        assert!(e.contains(CA_KEY_FILE), "{e}");
        // A CA certificate that is not the key's.
        let other = Dev::new();
        other.ensure(NOW);
        std::fs::copy(other.path(CA_KEY_FILE), dev.path(CA_KEY_FILE)).unwrap();
        std::fs::remove_file(dev.path("server.pem")).unwrap();
        let e = dev.try_ensure(NOW).expect_err("mismatched CA").to_string();
        assert!(e.contains(CA_CERT_FILE) && e.contains(CA_KEY_FILE), "{e}");
    }
}
