//! Secrets the gateway must read again, sealed at rest: a static access key's secret is needed
//! to verify the signatures made with it (AWS Signature Version 4 is an HMAC), so the store
//! cannot keep a hash of it as it does of what is only compared. It keeps the secret sealed
//! with AES-256-GCM under a key of `[iam] secret_keys`, and the gateway opens it only to
//! verify a signature.
//!
//! - **Keys**: each is 32 random bytes in a file (raw, or base64 text), named by an id. The
//!   first listed key seals; every listed key opens, so keys rotate: list the new key second on
//!   every replica, then first (new secrets are sealed under it and the upkeep seals the old
//!   ones again, [`SecretKeys::needs_resealing`]), then drop the old one
//!   (`docs/operations.md#rotating-the-secret-sealing-keys`).
//! - **Stored form**: `<key id>:<base64url of nonce ‖ ciphertext ‖ tag>`, the nonce 96 random
//!   bits from the operating system's generator for every sealing (AES-GCM's limit of 2³²
//!   random nonces per key is far beyond the number of secrets a gateway makes).
//! - **Associated data**: the caller binds the ciphertext to where it is stored (the access
//!   key's id, its service account, its access key id: [`crate::iam::access_keys::aad`]), so a
//!   sealed value copied into another row does not open.
//!
//! Secrets and keys never appear in `Debug` output, logs or errors: [`Secret`] and
//! [`SecretKeys`] show only ids and lengths.

use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::store::SealedSecret;
use crate::files::{FileError, write_private};

/// Length of a sealing key.
pub const KEY_BYTES: usize = 32;
/// Longest id of a sealing key.
pub const MAX_KEY_ID_CHARS: usize = 64;
/// AES-GCM's tag.
const TAG_LEN: usize = 16;

/// Why a key file or a sealed value is refused. Messages name files and key ids, never key
/// material or secrets.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    #[error("the system random generator failed")]
    Random,
    #[error("sealing key id {0:?} must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    BadKeyId(String),
    #[error("sealing key id {0:?} is listed twice")]
    DuplicateKeyId(String),
    #[error("no sealing key is configured")]
    NoKeys,
    #[error("{}: cannot be read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: a sealing key file holds 32 bytes, raw or as base64 text (e.g. `openssl rand -base64 32`); this one holds {found}",
        path.display()
    )]
    BadKeyFile { path: PathBuf, found: String },
    #[error("writing the generated sealing key: {0}")]
    Write(#[from] FileError),
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the sealed value names sealing key {0:?}, which [iam] secret_keys does not list")]
    UnknownKey(String),
    #[error(
        "the sealed value does not open with sealing key {0:?}: it was sealed for another row, or with another key of that id"
    )]
    Open(String),
}

/// Whether `id` may name a sealing key: 1 to 64 characters of `A-Z a-z 0-9 . _ -` (never `:`,
/// which ends it in the stored form).
pub fn is_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_KEY_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A secret opened from its sealed form, or about to be sealed. `Debug` shows its length only;
/// the bytes are overwritten when it is dropped.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret([redacted; {} bytes])", self.0.len())
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.0);
    }
}

/// The sealing keys: the first seals, any opens.
pub struct SecretKeys {
    keys: Vec<(String, LessSafeKey)>,
}

impl fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKeys")
            .field(
                "ids",
                &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl SecretKeys {
    /// The keys, in order: (id, 32 bytes). At least one; ids valid and distinct.
    pub fn new(keys: Vec<(String, [u8; KEY_BYTES])>) -> Result<SecretKeys, SealingError> {
        if keys.is_empty() {
            return Err(SealingError::NoKeys);
        }
        let mut built: Vec<(String, LessSafeKey)> = Vec::with_capacity(keys.len());
        for (id, bytes) in keys {
            if !is_key_id(&id) {
                return Err(SealingError::BadKeyId(id));
            }
            if built.iter().any(|(other, _)| *other == id) {
                return Err(SealingError::DuplicateKeyId(id));
            }
            let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealingError::NoKeys)?;
            built.push((id, LessSafeKey::new(key)));
        }
        Ok(SecretKeys { keys: built })
    }

    /// Reads (or, where allowed and missing, generates) the configured key files, in order.
    pub fn load(files: &[SecretKeyFile]) -> Result<SecretKeys, SealingError> {
        let mut keys = Vec::with_capacity(files.len());
        for file in files {
            if file.generate_if_missing && !file.file.exists() {
                generate_key_file(&file.file)?;
                tracing::info!(path = %file.file.display(), id = %file.id, "generated a secret sealing key");
            }
            keys.push((file.id.clone(), read_key_file(&file.file)?));
        }
        SecretKeys::new(keys)
    }

    /// The id of the key that seals.
    pub fn sealing_key_id(&self) -> &str {
        self.keys.first().map_or("", |(id, _)| id.as_str())
    }

    /// Every key's id, the sealing one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(id, _)| id.as_str())
    }

    /// `secret` sealed under the first key, bound to `aad`.
    pub fn seal(&self, secret: &Secret, aad: &[u8]) -> Result<SealedSecret, SealingError> {
        let (id, key) = self.keys.first().ok_or(SealingError::NoKeys)?;
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SealingError::Random)?;
        let mut in_out = secret.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut in_out,
        )
        .map_err(|_| SealingError::Random)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + in_out.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&in_out);
        Ok(SealedSecret::from_stored(format!(
            "{id}:{}",
            URL_SAFE_NO_PAD.encode(sealed)
        )))
    }

    /// The secret of `sealed`, if a listed key opens it with `aad`.
    pub fn open(&self, sealed: &SealedSecret, aad: &[u8]) -> Result<Secret, SealingError> {
        let (id, text) = sealed
            .as_stored()
            .split_once(':')
            .ok_or(SealingError::Malformed)?;
        let key = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, key)| key)
            .ok_or_else(|| SealingError::UnknownKey(id.to_owned()))?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| SealingError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SealingError::Malformed);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let opened = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| SealingError::Open(id.to_owned()))?
            .to_vec();
        bytes.iter_mut().for_each(|b| *b = 0);
        Ok(Secret::new(opened))
    }

    /// Whether `sealed` should be sealed again under the first key (it is sealed under
    /// another).
    pub fn needs_resealing(&self, sealed: &SealedSecret) -> bool {
        sealed.key_id() != self.sealing_key_id()
    }
}

/// One configured key file (`[iam] secret_keys`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretKeyFile {
    pub id: String,
    pub file: PathBuf,
    /// Generate the file when it is missing (development only).
    pub generate_if_missing: bool,
}

/// The 32 bytes of a key file: the file is exactly 32 bytes, or base64 text of 32 bytes
/// (white space around it ignored).
pub fn read_key_file(path: &Path) -> Result<[u8; KEY_BYTES], SealingError> {
    let bytes = std::fs::read(path).map_err(|source| SealingError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |found: String| SealingError::BadKeyFile {
        path: path.to_path_buf(),
        found,
    };
    if let Ok(raw) = <[u8; KEY_BYTES]>::try_from(bytes.as_slice()) {
        return Ok(raw);
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| bad(format!("{} bytes that are not base64 text", bytes.len())))?;
    let decoded = STANDARD
        .decode(text.trim())
        .map_err(|_| bad(format!("{} bytes that are not base64 text", bytes.len())))?;
    <[u8; KEY_BYTES]>::try_from(decoded.as_slice())
        .map_err(|_| bad(format!("base64 text of {} bytes", decoded.len())))
}

/// Writes a new random key to `path` as base64 text, readable by its owner only.
pub fn generate_key_file(path: &Path) -> Result<(), SealingError> {
    let mut key = [0u8; KEY_BYTES];
    aws_lc_rs::rand::fill(&mut key).map_err(|_| SealingError::Random)?;
    let text = format!("{}\n", STANDARD.encode(key));
    key.iter_mut().for_each(|b| *b = 0);
    write_private(path, &text)?;
    Ok(())
}

/// Whether `path` may be read by others than its owner (Unix mode bits `077`); `None` where
/// that cannot be told.
pub fn readable_by_others(path: &Path) -> Option<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ids: &[(&str, u8)]) -> SecretKeys {
        SecretKeys::new(
            ids.iter()
                .map(|(id, fill)| ((*id).to_owned(), [*fill; KEY_BYTES]))
                .collect(),
        )
        .unwrap()
    }

    fn secret(text: &str) -> Secret {
        Secret::new(text.as_bytes().to_vec())
    }

    #[test]
    fn a_sealed_secret_opens_with_its_key_and_associated_data_only() {
        let ring = keys(&[("k1", 1)]);
        let sealed = ring.seal(&secret("YCsecret"), b"row-1").unwrap();
        assert!(sealed.as_stored().starts_with("k1:"), "names its key");
        assert!(!sealed.as_stored().contains("YCsecret"));
        assert_eq!(sealed.key_id(), "k1");
        assert_eq!(
            ring.open(&sealed, b"row-1").unwrap().as_bytes(),
            b"YCsecret"
        );
        // Another row's associated data.
        assert!(matches!(
            ring.open(&sealed, b"row-2"),
            Err(SealingError::Open(id)) if id == "k1"
        ));
        // Another key under the same id.
        let impostor = keys(&[("k1", 2)]);
        assert!(matches!(
            impostor.open(&sealed, b"row-1"),
            Err(SealingError::Open(_))
        ));
        // A key id the configuration does not list.
        let other = keys(&[("k2", 1)]);
        assert!(matches!(
            other.open(&sealed, b"row-1"),
            Err(SealingError::UnknownKey(id)) if id == "k1"
        ));
        // Relabelled under another listed key's id: that key does not open it.
        let both = keys(&[("k2", 2), ("k1", 1)]);
        let relabelled = SealedSecret::from_stored(sealed.as_stored().replacen("k1:", "k2:", 1));
        assert!(matches!(
            both.open(&relabelled, b"row-1"),
            Err(SealingError::Open(id)) if id == "k2"
        ));
        // Tampered ciphertext.
        let mut text = sealed.as_stored().to_owned();
        let last = text.pop().unwrap();
        text.push(if last == 'A' { 'B' } else { 'A' });
        assert!(
            ring.open(&SealedSecret::from_stored(text), b"row-1")
                .is_err()
        );
        for malformed in ["", "k1", "k1:", "k1:!!!", "k1:AAAA"] {
            assert!(
                matches!(
                    ring.open(&SealedSecret::from_stored(malformed.into()), b"row-1"),
                    Err(SealingError::Malformed)
                ),
                "{malformed:?}"
            );
        }
    }

    #[test]
    fn sealing_twice_gives_different_values_and_keys_rotate() {
        let old = keys(&[("old", 1)]);
        let a = old.seal(&secret("s"), b"x").unwrap();
        let b = old.seal(&secret("s"), b"x").unwrap();
        assert_ne!(a, b, "a fresh nonce each time");
        // The new key seals, the old one still opens.
        let rotated = keys(&[("new", 2), ("old", 1)]);
        assert_eq!(rotated.sealing_key_id(), "new");
        assert!(rotated.needs_resealing(&a));
        assert_eq!(rotated.open(&a, b"x").unwrap().as_bytes(), b"s");
        let c = rotated.seal(&secret("s"), b"x").unwrap();
        assert_eq!(c.key_id(), "new");
        assert!(!rotated.needs_resealing(&c));
        assert!(old.open(&c, b"x").is_err());
    }

    #[test]
    fn key_sets_and_ids_are_checked() {
        assert!(matches!(SecretKeys::new(vec![]), Err(SealingError::NoKeys)));
        for bad in ["", "a:b", "with space", &"x".repeat(65)] {
            assert!(
                matches!(
                    SecretKeys::new(vec![(bad.to_owned(), [0; KEY_BYTES])]),
                    Err(SealingError::BadKeyId(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            SecretKeys::new(vec![("a".into(), [0; 32]), ("a".into(), [1; 32])]),
            Err(SealingError::DuplicateKeyId(_))
        ));
        let ring = keys(&[("2026-12.a_b", 3)]);
        let shown = format!("{ring:?} {:?}", secret("YCtopsecret"));
        assert!(shown.contains("2026-12.a_b"), "{shown}");
        assert!(!shown.contains("YCtopsecret"), "{shown}");
        let sealed = ring.seal(&secret("YCtopsecret"), b"").unwrap();
        let shown = format!("{sealed:?}");
        assert!(
            !shown.contains(sealed.as_stored().split_once(':').unwrap().1),
            "{shown}"
        );
    }

    #[test]
    fn key_files_are_32_bytes_raw_or_base64_and_generated_private() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        std::fs::write(&raw, [7u8; 32]).unwrap();
        assert_eq!(read_key_file(&raw).unwrap(), [7u8; 32]);
        let text = dir.path().join("text");
        std::fs::write(&text, format!("  {}\n", STANDARD.encode([9u8; 32]))).unwrap();
        assert_eq!(read_key_file(&text).unwrap(), [9u8; 32]);
        let short = dir.path().join("short");
        std::fs::write(&short, STANDARD.encode([9u8; 16])).unwrap();
        let refused = read_key_file(&short).unwrap_err().to_string();
        assert!(refused.contains("base64 text of 16 bytes"), "{refused}");
        let junk = dir.path().join("junk");
        std::fs::write(&junk, "not a key at all").unwrap();
        assert!(read_key_file(&junk).is_err());
        assert!(matches!(
            read_key_file(&dir.path().join("missing")),
            Err(SealingError::Read { .. })
        ));
        let generated = dir.path().join("sub/generated");
        let files = [SecretKeyFile {
            id: "dev".into(),
            file: generated.clone(),
            generate_if_missing: true,
        }];
        let first = SecretKeys::load(&files).unwrap();
        let sealed = first.seal(&secret("s"), b"a").unwrap();
        // Loaded again, the same key: what it sealed opens.
        let again = SecretKeys::load(&files).unwrap();
        assert_eq!(again.open(&sealed, b"a").unwrap().as_bytes(), b"s");
        assert_eq!(readable_by_others(&generated), Some(false));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&raw, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(readable_by_others(&raw), Some(true));
        }
    }
}
