//! Where an export goes: a local directory or an S3 prefix, and the only
//! code that writes there. Data files appear whole or not at all.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{partition, ExportError, Manifest, DATA_FILE, STATE_DIR};
use crate::model::ArchiveLocation;
use crate::source::S3Store;

/// Parquet files up to this size go to S3 in one PUT; larger ones in parts
/// of this size, one multipart upload completed at once.
pub const S3_PART_BYTES: u64 = 64 << 20;

/// An export destination.
#[derive(Debug)]
pub enum Dest {
    Local {
        root: PathBuf,
    },
    S3 {
        store: S3Store,
        /// Ends with `/` unless empty.
        prefix: String,
        part_bytes: u64,
    },
}

/// A data file being written, before it is published.
pub enum Temp {
    /// Under the export's `_ghreplay/tmp/`: renamed into place.
    Local(PathBuf),
    /// A temporary file of the system's: uploaded, then removed.
    Upload(tempfile::TempPath),
}

impl Temp {
    pub fn path(&self) -> &Path {
        match self {
            Temp::Local(p) => p,
            Temp::Upload(p) => p,
        }
    }
}

/// Fsyncs a directory, so that a rename or a new entry in it is durable.
fn sync_dir(dir: &Path) -> Result<(), ExportError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ExportError::io(dir.display()))
}

impl Dest {
    /// `--to`: a local directory (made if missing) or `s3://bucket/prefix`.
    pub async fn open(to: &str, endpoint_url: Option<&str>) -> Result<Self, ExportError> {
        match ArchiveLocation::parse(to).map_err(|_| ExportError::Destination(to.to_owned()))? {
            ArchiveLocation::S3 { bucket, prefix } => {
                let prefix = if prefix.is_empty() || prefix.ends_with('/') {
                    prefix
                } else {
                    format!("{prefix}/")
                };
                Ok(Dest::S3 {
                    store: S3Store::connect(bucket, endpoint_url).await,
                    prefix,
                    part_bytes: S3_PART_BYTES,
                })
            }
            ArchiveLocation::Local { .. } => {
                let root = PathBuf::from(to);
                std::fs::create_dir_all(root.join(STATE_DIR).join("tmp"))
                    .map_err(ExportError::io(root.display()))?;
                Ok(Dest::Local { root })
            }
        }
    }

    /// Where `--to` is, as engines name it, without making or connecting
    /// to anything (for `--ddl`): `s3://bucket/prefix/`, or an absolute path.
    pub fn location_of(to: &str) -> Result<String, ExportError> {
        match ArchiveLocation::parse(to).map_err(|_| ExportError::Destination(to.to_owned()))? {
            ArchiveLocation::S3 { bucket, prefix } => Ok(format!("s3://{bucket}/{prefix}")),
            ArchiveLocation::Local { .. } => std::path::absolute(to)
                .map(|p| p.display().to_string())
                .map_err(ExportError::io(to)),
        }
    }

    /// Multipart uploads in parts of `bytes` (S3's least is 5 MiB): for
    /// tests of the multipart path without a 64 MiB partition.
    #[must_use]
    pub fn with_part_bytes(mut self, bytes: u64) -> Self {
        if let Dest::S3 { part_bytes, .. } = &mut self {
            *part_bytes = bytes;
        }
        self
    }

    /// Where the export is, as engines name it: a path, or `s3://bucket/prefix/`.
    #[must_use]
    pub fn location(&self) -> String {
        match self {
            Dest::Local { root } => root.display().to_string(),
            Dest::S3 { store, prefix, .. } => format!("s3://{}/{prefix}", store.bucket()),
        }
    }

    /// A partition's data file below the root.
    #[must_use]
    pub fn data_key(hour: DateTime<Utc>) -> String {
        format!("{}/{DATA_FILE}", partition(hour))
    }

    /// The manifest of the partition named `partition` (`dt=…/hour=…`).
    fn manifest_key(partition: &str) -> String {
        format!("{STATE_DIR}/manifest/{partition}.json")
    }

    /// A new file to write `hour`'s partition into, where no engine looks.
    pub fn temp_file(&self, hour: DateTime<Utc>) -> Result<(File, Temp), ExportError> {
        match self {
            Dest::Local { root } => {
                let name = hour.format("dt=%Y-%m-%d-hour=%H.parquet.part").to_string();
                let path = root.join(STATE_DIR).join("tmp").join(name);
                let file = File::create(&path).map_err(ExportError::io(path.display()))?;
                Ok((file, Temp::Local(path)))
            }
            Dest::S3 { .. } => {
                let (file, path) = tempfile::Builder::new()
                    .prefix("ghreplay-export-")
                    .suffix(".parquet")
                    .tempfile()
                    .map_err(ExportError::io("a temporary file"))?
                    .into_parts();
                Ok((file, Temp::Upload(path)))
            }
        }
    }

    /// Puts a finished (and fsync'd) file in place as `hour`'s partition,
    /// replacing the one there; returns its key below the root.
    pub async fn publish(&self, hour: DateTime<Utc>, temp: Temp) -> Result<String, ExportError> {
        let key = Self::data_key(hour);
        match self {
            Dest::Local { root } => {
                let target = root.join(&key);
                let dir = target.parent().unwrap_or(root);
                let made = !dir.exists();
                std::fs::create_dir_all(dir).map_err(ExportError::io(dir.display()))?;
                std::fs::rename(temp.path(), &target).map_err(ExportError::io(target.display()))?;
                sync_dir(dir)?;
                if made {
                    // The new `hour=` and maybe `dt=` entries.
                    if let Some(day) = dir.parent() {
                        sync_dir(day)?;
                    }
                    sync_dir(root)?;
                }
            }
            Dest::S3 {
                store,
                prefix,
                part_bytes,
            } => {
                store
                    .put_file(&format!("{prefix}{key}"), temp.path(), *part_bytes)
                    .await?;
            }
        }
        Ok(key)
    }

    /// Removes `hour`'s data file, if there is one (an hour that now keeps
    /// no row after a change of selection).
    pub async fn remove(&self, hour: DateTime<Utc>) -> Result<(), ExportError> {
        let key = Self::data_key(hour);
        match self {
            Dest::Local { root } => match std::fs::remove_file(root.join(&key)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(ExportError::io(root.join(&key).display())(e))
                }
                _ => Ok(()),
            },
            Dest::S3 { store, prefix, .. } => Ok(store.delete(&format!("{prefix}{key}")).await?),
        }
    }

    /// `hour`'s manifest, if one was written.
    pub async fn manifest(&self, hour: DateTime<Utc>) -> Result<Option<Manifest>, ExportError> {
        let key = Self::manifest_key(&partition(hour));
        let bytes = match self {
            Dest::Local { root } => match std::fs::read(root.join(&key)) {
                Ok(b) => Some(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(ExportError::io(root.join(&key).display())(e)),
            },
            Dest::S3 { store, prefix, .. } => {
                store.get_if_exists(&format!("{prefix}{key}")).await?
            }
        };
        bytes
            .map(|b| {
                serde_json::from_slice(&b).map_err(|source| ExportError::Manifest {
                    path: key.clone(),
                    source,
                })
            })
            .transpose()
    }

    /// Records what a partition was built from (after its data is in place).
    pub async fn write_manifest(&self, m: &Manifest) -> Result<(), ExportError> {
        let key = Self::manifest_key(&m.partition);
        match self {
            Dest::Local { root } => {
                let path = root.join(&key);
                let dir = path.parent().unwrap_or(root);
                std::fs::create_dir_all(dir).map_err(ExportError::io(dir.display()))?;
                crate::checkpoint::replace_json(&path, m).map_err(ExportError::io(path.display()))
            }
            Dest::S3 { store, prefix, .. } => {
                let mut body =
                    serde_json::to_vec_pretty(m).map_err(|source| ExportError::Manifest {
                        path: key.clone(),
                        source,
                    })?;
                body.push(b'\n');
                Ok(store.put(&format!("{prefix}{key}"), body).await?)
            }
        }
    }
}
