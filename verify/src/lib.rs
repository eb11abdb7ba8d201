//! `observer-verify`: reads an evidence package (a ZIP archive,
//! `docs/evidence.md`) and checks it with
//! [`observer_core::evidence::verify`], offline. It links no server,
//! database or network code: the core is built without its store.

use std::io::Read;
use std::path::Path;

use observer_core::evidence::{MAX_FILES, Package};

/// Largest file inside a package (a video is the largest thing an
/// observer records).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Why a package could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a ZIP archive, or a damaged one.
    #[error("not a readable ZIP archive: {0}")]
    Zip(String),
    /// An entry the format does not allow.
    #[error("{name}: {why}")]
    Entry { name: String, why: &'static str },
    /// Too many entries.
    #[error("more than {MAX_FILES} files")]
    TooMany,
}

/// Reads the package at `path` into memory, refusing entries that could
/// not be one of its files (absolute or `..` paths, duplicates, oversize).
pub fn read_package(path: &Path) -> Result<Package, ReadError> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| ReadError::Zip(e.to_string()))?;
    if zip.len() > MAX_FILES {
        return Err(ReadError::TooMany);
    }
    let mut package = Package::default();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| ReadError::Zip(e.to_string()))?;
        let name = entry
            .name()
            .map_err(|e| ReadError::Zip(e.to_string()))?
            .into_owned();
        let bad = |why| ReadError::Entry {
            name: name.clone(),
            why,
        };
        if entry.is_dir() {
            continue;
        }
        if name.starts_with('/')
            || name.contains('\\')
            || name
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(bad("not a path inside the package"));
        }
        if entry.size() > MAX_FILE_BYTES {
            return Err(bad("larger than any file a package holds"));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| ReadError::Zip(format!("{name}: {e}")))?;
        if package.files.insert(name.clone(), bytes).is_some() {
            return Err(bad("appears twice"));
        }
    }
    Ok(package)
}
