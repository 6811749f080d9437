//! Files the gateway writes: private keys and tokens readable by their owner only (mode 0600),
//! certificates readable by all (mode 0644); each written atomically so a reader never sees half
//! a file.

use std::path::{Path, PathBuf};

/// A file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Writes a private key file readable by its owner only, atomically (temp file + rename),
/// creating its directory if needed.
pub fn write_private(path: &Path, contents: &str) -> Result<(), FileError> {
    write_atomic(path, contents, 0o600)
}

/// Writes a file anyone may read (a certificate), atomically, creating its directory if needed.
pub fn write_public(path: &Path, contents: &str) -> Result<(), FileError> {
    write_atomic(path, contents, 0o644)
}

#[cfg_attr(not(unix), allow(unused_variables))]
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<(), FileError> {
    use std::io::Write as _;
    let fail = |source: std::io::Error| FileError {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    let mut f = options.open(&tmp).map_err(fail)?;
    f.write_all(contents.as_bytes()).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}
