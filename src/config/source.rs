//! The files of a configuration set: reading and parsing them, the items they hold with where
//! each was written (file, index, line), and the problems and warnings found, each with its place.
//! Loading ([`super`]) and validation ([`super::validate`]) both use it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::schema::{
    ApiKeyScopeConfig, CredentialConfig, DirectoryFile, FederationConfig, PermissionConfig,
    RoleConfig, ServiceAccountConfig, Spanned,
};

/// A configuration file could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Toml {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

/// Collects problems and warnings with their place.
pub(super) struct Problems {
    pub(super) errors: Vec<String>,
    pub(super) warnings: Vec<String>,
    pub(super) lines: LineIndex,
}

impl Problems {
    pub(super) fn new() -> Problems {
        Problems {
            errors: Vec::new(),
            warnings: Vec::new(),
            lines: LineIndex::default(),
        }
    }

    pub(super) fn add(&mut self, place: &impl Place, message: impl fmt::Display) {
        let place = place.describe(&mut self.lines);
        self.errors.push(format!("{place}: {message}"));
    }

    pub(super) fn warn(&mut self, place: &impl Place, message: impl fmt::Display) {
        let place = place.describe(&mut self.lines);
        self.warnings.push(format!("{place}: {message}"));
    }

    /// `file:line` of an item, for a problem that points at another one.
    pub(super) fn locate(&mut self, item: &ItemPlace<'_>) -> String {
        item.location(&mut self.lines)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Where a problem is: rendered only when a problem is reported, since rendering an item's place
/// may read its file for the line number.
pub(super) trait Place {
    fn describe(&self, lines: &mut LineIndex) -> String;
}

/// A place written out already (`FILE: [server]`).
impl Place for String {
    fn describe(&self, _: &mut LineIndex) -> String {
        self.clone()
    }
}

/// An item of a list (`federated_credentials[3]`) in its file, named the way it was written:
/// by `key = value` (its `id`, or for a credential written without one, its subject).
pub(super) struct ItemPlace<'a> {
    pub(super) file: &'a Arc<PathBuf>,
    pub(super) list: &'static str,
    pub(super) index: usize,
    pub(super) offset: usize,
    pub(super) key: &'static str,
    pub(super) value: &'a str,
}

impl ItemPlace<'_> {
    /// Longest value shown in full; longer ones are cut (a subject may be 1000 characters).
    const MAX_VALUE_CHARS: usize = 100;

    pub(super) fn location(&self, lines: &mut LineIndex) -> String {
        match lines.line(self.file, self.offset) {
            Some(line) => format!("{}:{line}", self.file.display()),
            None => self.file.display().to_string(),
        }
    }
}

impl Place for ItemPlace<'_> {
    fn describe(&self, lines: &mut LineIndex) -> String {
        let ItemPlace {
            list,
            index,
            key,
            value,
            ..
        } = self;
        let location = self.location(lines);
        match value.char_indices().nth(Self::MAX_VALUE_CHARS) {
            Some((cut, _)) => format!(
                "{location}: {list}[{index}] ({key} {:?}…)",
                value.get(..cut).unwrap_or_default()
            ),
            None => format!("{location}: {list}[{index}] ({key} {value:?})"),
        }
    }
}

/// Line numbers from byte offsets, a file read (once) only when one of its items has a problem:
/// a valid set of a million items never reads a file twice.
#[derive(Default)]
pub(super) struct LineIndex(HashMap<Arc<PathBuf>, Option<Vec<usize>>>);

impl LineIndex {
    /// The 1-based line of `offset` in `file`; `None` if the file cannot be read again.
    pub(super) fn line(&mut self, file: &Arc<PathBuf>, offset: usize) -> Option<usize> {
        let starts = self
            .0
            .entry(file.clone())
            .or_insert_with(|| {
                std::fs::read(file.as_path())
                    .ok()
                    .map(|text| line_starts(&text))
            })
            .as_ref()?;
        Some(starts.partition_point(|&start| start <= offset))
    }
}

/// The byte offset at which each line starts.
pub(super) fn line_starts(text: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|&(_, &b)| b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

/// `p` resolved against `base` (the directory of the file that names it), with `.` and `dir/..`
/// folded away so that logs and messages show the path a person would write
/// (`config/../.wif-dev/k.pem` is `.wif-dev/k.pem`). A `..` after a symbolic link is kept: there
/// it does not mean the link's parent.
pub(super) fn resolve(base: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let foldable = matches!(out.components().next_back(), Some(Component::Normal(_)))
                    && !std::fs::symlink_metadata(&out).is_ok_and(|m| m.file_type().is_symlink());
                if foldable {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

pub(super) fn parse_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ParseError> {
    let text = std::fs::read_to_string(path).map_err(|source| ParseError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ParseError::Toml {
        path: path.to_path_buf(),
        source: Box::new(source),
    })
}

/// An item with where it was written: its file, its index in its file's list and its byte span
/// there (turned into a line number only if a problem is reported about it).
pub(super) struct Sourced<T> {
    /// Not `Arc<Path>`: a thin pointer, since a million items carry one.
    pub(super) file: Arc<PathBuf>,
    pub(super) index: usize,
    pub(super) span: std::ops::Range<usize>,
    pub(super) item: T,
}

impl<T> Sourced<T> {
    /// The item named by its id.
    pub(super) fn place<'a>(&'a self, list: &'static str, id: &'a str) -> ItemPlace<'a> {
        self.place_by(list, "id", id)
    }

    /// The item named by `key = value`.
    pub(super) fn place_by<'a>(
        &'a self,
        list: &'static str,
        key: &'static str,
        value: &'a str,
    ) -> ItemPlace<'a> {
        ItemPlace {
            file: &self.file,
            list,
            index: self.index,
            offset: self.span.start,
            key,
            value,
        }
    }
}

#[derive(Default)]
pub(super) struct Items {
    pub(super) federations: Vec<Sourced<FederationConfig>>,
    pub(super) service_accounts: Vec<Sourced<ServiceAccountConfig>>,
    pub(super) credentials: Vec<Sourced<CredentialConfig>>,
    pub(super) permissions: Vec<Sourced<PermissionConfig>>,
    pub(super) roles: Vec<Sourced<RoleConfig>>,
    pub(super) api_key_scopes: Vec<Sourced<ApiKeyScopeConfig>>,
}

impl Items {
    pub(super) fn add(&mut self, file: &Path, f: DirectoryFile) {
        let file = Arc::new(file.to_path_buf());
        self.federations.extend(sourced(&file, f.federations));
        self.service_accounts
            .extend(sourced(&file, f.service_accounts));
        self.credentials
            .extend(sourced(&file, f.federated_credentials));
        self.permissions.extend(sourced(&file, f.permissions));
        self.roles.extend(sourced(&file, f.roles));
        self.api_key_scopes.extend(sourced(&file, f.api_key_scopes));
    }
}

pub(super) fn sourced<T>(file: &Arc<PathBuf>, items: Vec<Spanned<T>>) -> Vec<Sourced<T>> {
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| Sourced {
            file: file.clone(),
            index,
            span: item.span(),
            item: item.into_inner(),
        })
        .collect()
}

/// Parses included files on all cores, in order.
pub(super) fn parse_all(files: &[PathBuf]) -> Vec<Result<DirectoryFile, ParseError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(files.len())
        .max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<DirectoryFile, ParseError>>> = Vec::new();
    results.resize_with(files.len(), || None);
    let slots: Vec<std::sync::Mutex<Option<Result<DirectoryFile, ParseError>>>> =
        results.into_iter().map(std::sync::Mutex::new).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    let parsed = parse_toml::<DirectoryFile>(file);
                    if let Ok(mut slot) = slots[i].lock() {
                        *slot = Some(parsed);
                    }
                }
            });
        }
    });
    slots
        .into_iter()
        .zip(files)
        .map(|(slot, file)| {
            slot.into_inner().ok().flatten().unwrap_or_else(|| {
                Err(ParseError::Read {
                    path: file.clone(),
                    source: std::io::Error::other("not parsed"),
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_paths_are_written_as_a_person_would() {
        let cases = [
            ("config", "../.wif-dev/k.pem", ".wif-dev/k.pem"),
            (
                "/etc/wif/config",
                "./keys/../k.pem",
                "/etc/wif/config/k.pem",
            ),
            ("/etc/wif", "/abs/./k.pem", "/abs/k.pem"),
            ("config", "../../k.pem", "../k.pem"),
            ("", "k.pem", "k.pem"),
            ("config", "..", "."),
        ];
        for (base, p, want) in cases {
            assert_eq!(
                resolve(Path::new(base), Path::new(p)),
                PathBuf::from(want),
                "{base} + {p}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_parent_after_a_symbolic_link_is_kept() {
        let dir = std::env::temp_dir().join(format!("wif-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("real/inner")).unwrap();
        std::os::unix::fs::symlink(dir.join("real/inner"), dir.join("link")).unwrap();
        let resolved = resolve(&dir.join("link"), Path::new("../k.pem"));
        assert_eq!(resolved, dir.join("link/../k.pem"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
