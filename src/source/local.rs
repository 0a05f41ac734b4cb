//! A local directory laid out exactly like the S3 archive: keys are paths
//! relative to the directory, with `/` separators.

use std::path::{Path, PathBuf};

use super::{Listing, ObjectMeta, SourceError};

/// `serve`'s own state in an archive it writes (forward checkpoints): not
/// archive keys, so never listed.
pub const STATE_DIR: &str = ".ghreplay";

#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

impl LocalStore {
    pub fn new(dir: PathBuf) -> Result<Self, SourceError> {
        if !dir.is_dir() {
            return Err(SourceError::NoArchive(dir.display().to_string()));
        }
        Ok(Self { dir })
    }

    fn io(path: &Path, e: &std::io::Error) -> SourceError {
        SourceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }

    /// Splits a key prefix into the directory it names and the start of the
    /// entry names within it (`2026/0` is directory `2026`, names `0*`).
    fn split(&self, prefix: &str) -> (PathBuf, String) {
        match prefix.rsplit_once('/') {
            Some((dir, start)) => (self.dir.join(dir), start.to_owned()),
            None => (self.dir.clone(), prefix.to_owned()),
        }
    }

    /// Entries under `prefix` up to the next `/`, like S3's delimiter listing.
    pub fn list_dir(&self, prefix: &str) -> Result<Listing, SourceError> {
        let (dir, start) = self.split(prefix);
        let mut listing = Listing::default();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
            Err(e) => return Err(Self::io(&dir, &e)),
        };
        let base = &prefix[..prefix.len() - start.len()];
        for entry in entries {
            let entry = entry.map_err(|e| Self::io(&dir, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&start) || (base.is_empty() && name == STATE_DIR) {
                continue;
            }
            let meta = entry.metadata().map_err(|e| Self::io(&entry.path(), &e))?;
            if meta.is_dir() {
                listing.prefixes.push(format!("{base}{name}/"));
            } else if meta.is_file() {
                listing.objects.push(ObjectMeta {
                    key: format!("{base}{name}"),
                    size: meta.len(),
                });
            }
        }
        listing.prefixes.sort();
        listing.objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listing)
    }

    /// Every object whose key starts with `prefix`, in key order.
    pub fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SourceError> {
        let mut out = Vec::new();
        let mut pending = vec![prefix.to_owned()];
        while let Some(p) = pending.pop() {
            let listing = self.list_dir(&p)?;
            out.extend(listing.objects);
            pending.extend(listing.prefixes);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        let path = self.dir.join(key);
        std::fs::read(&path).map_err(|e| Self::io(&path, &e))
    }
}
