//! The key material of authorized keys: RSA key pairs made for the service-account JWT flow
//! (`POST /iam/v1/tokens`), their PEM forms, the PS256 verifier of a stored public key, and the
//! Yandex key file (`yc iam key create -o key.json`).
//!
//! The private half exists only here and in the one answer (or file) that hands it out: the
//! store keeps the public half ([`super::store::AuthorizedKey`]), and [`GeneratedKey`]'s
//! `Debug` never shows the private key.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey, RsaKeyPair};
use serde::{Deserialize, Serialize};

use super::store::{AuthorizedKey, KeyAlgorithm};

/// The key could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("generating an RSA key failed")]
    Generate,
    #[error("the authorized key's public key is unusable: {0}")]
    PublicKey(String),
}

/// A new key pair: the public key to store and the private key to hand out once.
pub struct GeneratedKey {
    pub algorithm: KeyAlgorithm,
    /// SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`), as the store keeps it.
    pub public_key: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    private_key: String,
}

impl GeneratedKey {
    /// The PKCS#8 PEM of the private key. Hand it to its owner once; never store or log it.
    pub fn private_key_pem(&self) -> &str {
        &self.private_key
    }
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("algorithm", &self.algorithm)
            .field("public_key", &self.public_key)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// PEM with `\n` line ends, as Yandex writes keys.
fn pem_text(tag: &str, der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// Generates an RSA key pair of `algorithm`'s size. RSA 4096 takes a second or so: call it on a
/// blocking thread.
pub fn generate(algorithm: KeyAlgorithm) -> Result<GeneratedKey, KeyError> {
    let size = match algorithm {
        KeyAlgorithm::Rsa2048 => KeySize::Rsa2048,
        KeyAlgorithm::Rsa4096 => KeySize::Rsa4096,
    };
    let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Generate)?;
    let private = pair.as_der().map_err(|_| KeyError::Generate)?;
    let public = pair.public_key().as_der().map_err(|_| KeyError::Generate)?;
    Ok(GeneratedKey {
        algorithm,
        public_key: pem_text("PUBLIC KEY", public.as_ref()),
        private_key: pem_text("PRIVATE KEY", private.as_ref()),
    })
}

/// The PS256 (RSASSA-PSS, SHA-256, MGF1-SHA-256, RSA of 2048 to 8192 bits) verifier of a stored
/// public key.
pub fn ps256_verifier(public_key_pem: &str) -> Result<ParsedPublicKey, KeyError> {
    let block = pem::parse(public_key_pem).map_err(|e| KeyError::PublicKey(e.to_string()))?;
    if block.tag() != "PUBLIC KEY" {
        return Err(KeyError::PublicKey(format!(
            "PEM block {:?} is not a PUBLIC KEY",
            block.tag()
        )));
    }
    ParsedPublicKey::new(&signature::RSA_PSS_2048_8192_SHA256, block.contents())
        .map_err(|e| KeyError::PublicKey(e.to_string()))
}

/// The line Yandex puts before the PEM of an authorized key's private key (RFC 7468
/// explanatory text, there for leak scanners). PEM readers skip text before `-----BEGIN`.
pub fn key_id_line(key_id: &str) -> String {
    format!("PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <{key_id}>")
}

/// A Yandex authorized key file (the SDK's `Key` message, snake_case), as
/// `yc iam key create -o key.json` writes it and the SDKs read it.
#[derive(Serialize)]
pub struct KeyFile<'a> {
    pub id: &'a str,
    pub service_account_id: &'a str,
    /// RFC 3339.
    pub created_at: &'a str,
    /// `RSA_2048` or `RSA_4096`.
    pub key_algorithm: &'a str,
    /// SubjectPublicKeyInfo PEM.
    pub public_key: &'a str,
}

impl KeyFile<'_> {
    /// The file's text with the private key (PKCS#8 PEM): pretty JSON, `private_key` led by
    /// [`key_id_line`].
    pub fn text(&self, private_key_pem: &str) -> String {
        #[derive(Serialize)]
        struct Written<'a> {
            #[serde(flatten)]
            key: &'a KeyFile<'a>,
            private_key: String,
        }
        let written = Written {
            key: self,
            private_key: format!("{}\n{private_key_pem}", key_id_line(self.id)),
        };
        let mut text = serde_json::to_string_pretty(&written).unwrap_or_default();
        text.push('\n');
        text
    }
}

/// The key file of `key` with its private key (PKCS#8 PEM): pretty JSON, `private_key` led by
/// [`key_id_line`].
pub fn key_file(key: &AuthorizedKey, private_key_pem: &str) -> String {
    KeyFile {
        id: &key.id,
        service_account_id: &key.service_account_id,
        created_at: &crate::time::rfc3339(key.created_at),
        key_algorithm: key.key_algorithm.as_str(),
        public_key: &key.public_key,
    }
    .text(private_key_pem)
}

/// The fields of a Yandex key file a client needs to get an IAM token.
#[derive(Deserialize)]
pub struct KeyFileCredentials {
    pub id: String,
    pub service_account_id: String,
    pub private_key: String,
}

impl std::fmt::Debug for KeyFileCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFileCredentials")
            .field("id", &self.id)
            .field("service_account_id", &self.service_account_id)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// Why a key file cannot sign. The messages never quote the file's contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("private_key holds no PEM block")]
    NotPem,
    #[error("private_key is a PEM {0:?} block, not a PRIVATE KEY")]
    NotPrivateKey(String),
    #[error("private_key is not a PKCS#8 RSA private key")]
    NotRsa,
    #[error("signing failed")]
    Sign,
}

/// The RSASSA-PSS SHA-256 signature (JWS `PS256`, RFC 7518 §3.5) of `message` with a PKCS#8
/// private key PEM; text before `-----BEGIN` (the Yandex [`key_id_line`]) is skipped.
pub fn ps256_sign(private_key_pem: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
    let block = pem::parse(private_key_pem).map_err(|_| SignError::NotPem)?;
    if block.tag() != "PRIVATE KEY" {
        return Err(SignError::NotPrivateKey(block.tag().to_owned()));
    }
    let pair = RsaKeyPair::from_pkcs8(block.contents()).map_err(|_| SignError::NotRsa)?;
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message,
        &mut signature,
    )
    .map_err(|_| SignError::Sign)?;
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;

    #[test]
    fn generated_keys_sign_ps256_that_their_public_key_verifies() {
        let key = generate(KeyAlgorithm::Rsa2048).unwrap();
        assert!(key.public_key.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(
            key.private_key_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(!format!("{key:?}").contains("PRIVATE KEY"), "Debug redacts");
        let der = pem::parse(key.private_key_pem()).unwrap();
        let pair = RsaKeyPair::from_pkcs8(der.contents()).unwrap();
        assert_eq!(pair.public_modulus_len(), 256);
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(
            &signature::RSA_PSS_SHA256,
            &SystemRandom::new(),
            b"message",
            &mut sig,
        )
        .unwrap();
        let verifier = ps256_verifier(&key.public_key).unwrap();
        assert!(verifier.verify_sig(b"message", &sig).is_ok());
        assert!(verifier.verify_sig(b"other", &sig).is_err());
        let other = generate(KeyAlgorithm::Rsa2048).unwrap();
        assert!(
            ps256_verifier(&other.public_key)
                .unwrap()
                .verify_sig(b"message", &sig)
                .is_err()
        );
    }

    #[test]
    fn ps256_signatures_of_a_key_file_verify_with_its_public_key() {
        let key = generate(KeyAlgorithm::Rsa2048).unwrap();
        let with_line = format!("{}\n{}", key_id_line("ajekey"), key.private_key_pem());
        let sig = ps256_sign(&with_line, b"message").unwrap();
        let verifier = ps256_verifier(&key.public_key).unwrap();
        assert!(verifier.verify_sig(b"message", &sig).is_ok());
        assert_eq!(ps256_sign("garbage", b"m"), Err(SignError::NotPem));
        assert_eq!(
            ps256_sign(&key.public_key, b"m"),
            Err(SignError::NotPrivateKey("PUBLIC KEY".into()))
        );
        let not_rsa = pem_text("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        assert_eq!(ps256_sign(&not_rsa, b"m"), Err(SignError::NotRsa));
    }

    #[test]
    fn unusable_public_keys_are_refused() {
        let cert = pem_text("CERTIFICATE", &[1, 2, 3]);
        assert!(ps256_verifier(&cert).is_err());
        assert!(
            ps256_verifier("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
        assert!(ps256_verifier("no pem").is_err());
    }

    #[test]
    fn the_key_file_has_the_yandex_fields_and_the_key_id_line() {
        let generated = generate(KeyAlgorithm::Rsa2048).unwrap();
        let key = AuthorizedKey {
            id: "ajekey00000000000001".into(),
            service_account_id: "ajesa000000000000001".into(),
            description: String::new(),
            key_algorithm: KeyAlgorithm::Rsa2048,
            public_key: generated.public_key.clone(),
            last_used_at: None,
            created_at: 1_553_076_296,
            version: 1,
        };
        let text = key_file(&key, generated.private_key_pem());
        let file: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(file["id"], "ajekey00000000000001");
        assert_eq!(file["service_account_id"], "ajesa000000000000001");
        assert_eq!(file["created_at"], "2019-03-20T10:04:56Z");
        assert_eq!(file["key_algorithm"], "RSA_2048");
        assert_eq!(file["public_key"], generated.public_key.as_str());
        let private = file["private_key"].as_str().unwrap();
        assert!(private.starts_with(
            "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <ajekey00000000000001>\n-----BEGIN PRIVATE KEY-----\n"
        ));
        assert_eq!(
            pem::parse(private).unwrap().tag(),
            "PRIVATE KEY",
            "PEM readers skip the line"
        );
    }
}
