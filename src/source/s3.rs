//! S3 through the AWS SDK: the standard credential chain and region, and any
//! S3-compatible endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL`).

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use futures::{StreamExt as _, TryStreamExt as _};

use super::{Listing, ObjectMeta, SourceError};
use crate::retry::RetryPolicy;

/// How long a listing or a download that keeps failing in a way that may
/// pass is tried again, on top of the SDK's own retries of each request.
const RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    endpoint: String,
}

impl S3Store {
    pub async fn connect(bucket: String, endpoint_url: Option<&str>) -> Self {
        let shared = crate::aws::sdk_config(endpoint_url, None).await;
        let mut conf = aws_sdk_s3::config::Builder::from(&shared)
            // Throttling (503 SlowDown), 5xx and resets: each request is
            // tried up to 6 times, with jittered exponential backoff up to
            // 5 s. (SNS is left to the delivery engine's own retries.)
            .retry_config(
                aws_sdk_s3::config::retry::RetryConfig::standard()
                    .with_max_attempts(6)
                    .with_initial_backoff(std::time::Duration::from_millis(250))
                    .with_max_backoff(std::time::Duration::from_secs(5)),
            );
        let endpoint = endpoint_url
            .map(str::to_owned)
            .or_else(|| shared.endpoint_url().map(str::to_owned));
        if endpoint.is_some() {
            // S3-compatible servers (moto, MinIO) expect path-style addressing.
            conf = conf.force_path_style(true);
        }
        Self {
            client: Client::from_conf(conf.build()),
            bucket,
            endpoint: endpoint.unwrap_or_else(|| "AWS S3".to_owned()),
        }
    }

    fn error<E, R>(&self, what: String, e: &SdkError<E, R>) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        let message = match e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                return SourceError::Unreachable {
                    endpoint: self.endpoint.clone(),
                    message: crate::aws::causes(e),
                }
            }
            // An answer cut short or garbled on the way.
            SdkError::ResponseError(_) => {
                return SourceError::Transient {
                    what,
                    message: crate::aws::causes(e),
                }
            }
            SdkError::ServiceError(s) => match s.err().code() {
                Some("NoSuchBucket") => {
                    return SourceError::NoArchive(format!("s3://{} (no such bucket)", self.bucket))
                }
                Some(
                    code @ ("SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout"),
                ) => {
                    return SourceError::Transient {
                        what,
                        message: format!("{code}: {}", s.err().message().unwrap_or("")),
                    }
                }
                Some(code @ "NoSuchKey") => {
                    return SourceError::NoSuchKey {
                        what,
                        message: format!("{code}: {}", s.err().message().unwrap_or("")),
                    }
                }
                Some(code) => format!("{code}: {}", s.err().message().unwrap_or("")),
                None => DisplayErrorContext(e).to_string(),
            },
            _ => DisplayErrorContext(e).to_string(),
        };
        SourceError::S3 { what, message }
    }

    /// One page (up to 1,000 keys) of the listing under `prefix`, from
    /// `token` (`None`: the first), retried while it fails in a way that may
    /// pass. A continuation token names the same page each time it is sent,
    /// so a retried page neither repeats nor skips keys.
    pub async fn page(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
    ) -> Result<Page, SourceError> {
        RetryPolicy::new(RETRY_FOR)
            .run(
                &format!("listing s3://{}/{prefix}", self.bucket),
                || self.page_once(prefix, delimiter, token.clone()),
                SourceError::is_transient,
            )
            .await
    }

    async fn page_once(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
    ) -> Result<Page, SourceError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .set_continuation_token(token)
            .send()
            .await
            .map_err(|e| self.error(format!("listing s3://{}/{prefix}", self.bucket), &e))?;
        let listing = Listing {
            prefixes: out
                .common_prefixes()
                .iter()
                .filter_map(|p| p.prefix().map(str::to_owned))
                .collect(),
            objects: out
                .contents()
                .iter()
                .filter_map(|o| {
                    Some(ObjectMeta {
                        key: o.key()?.to_owned(),
                        size: o.size().unwrap_or(0).try_into().unwrap_or(0),
                    })
                })
                .collect(),
        };
        let next = match out.is_truncated() {
            Some(true) => out.next_continuation_token().map(str::to_owned),
            _ => None,
        };
        Ok(Page { listing, next })
    }

    /// Uploads one object (used by `serve` for rolled-over objects).
    pub async fn put(&self, key: &str, body: Vec<u8>) -> Result<(), SourceError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| self.error(format!("writing s3://{}/{key}", self.bucket), &e))?;
        Ok(())
    }

    /// Reads one object whole, or `None` when there is no such key.
    pub async fn get_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>, SourceError> {
        match self.get(key).await {
            Err(SourceError::NoSuchKey { .. }) => Ok(None),
            read => read.map(Some),
        }
    }

    /// Uploads a local file as one object that appears whole or not at
    /// all: one PUT up to `part_size`, else a multipart upload of
    /// `part_size` parts, completed at once (aborted on failure, so no
    /// parts are left to pay for).
    pub async fn put_file(
        &self,
        key: &str,
        path: &std::path::Path,
        part_size: u64,
    ) -> Result<(), SourceError> {
        use aws_sdk_s3::primitives::{ByteStream, Length};
        use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

        let what = || format!("writing s3://{}/{key}", self.bucket);
        let local = |e: &dyn std::fmt::Display| SourceError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|e| local(&e))?
            .len();
        let part = |offset: u64, len: u64| async move {
            ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(len))
                .build()
                .await
                .map_err(|e| local(&e))
        };
        if size <= part_size {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(part(0, size).await?)
                .send()
                .await
                .map_err(|e| self.error(what(), &e))?;
            return Ok(());
        }
        let upload = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(what(), &e))?;
        let id = upload.upload_id().unwrap_or_default().to_owned();
        let parts = async {
            let mut parts = Vec::new();
            let (mut offset, mut number) = (0, 1);
            while offset < size {
                let len = part_size.min(size - offset);
                let out = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&id)
                    .part_number(number)
                    .body(part(offset, len).await?)
                    .send()
                    .await
                    .map_err(|e| self.error(what(), &e))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag().map(str::to_owned))
                        .build(),
                );
                offset += len;
                number += 1;
            }
            self.client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map_err(|e| self.error(what(), &e))?;
            Ok(())
        }
        .await;
        if parts.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&id)
                .send()
                .await;
        }
        parts
    }

    /// Removes one object (absent already is fine).
    pub async fn delete(&self, key: &str) -> Result<(), SourceError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(format!("deleting s3://{}/{key}", self.bucket), &e))?;
        Ok(())
    }

    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Reads one object whole. A body that breaks off part way (which the
    /// SDK does not retry) is fetched again.
    pub async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        Ok(self.get_range(key, None).await?.body)
    }

    /// Reads an object of `size` bytes (as listed): above `part_size`, in
    /// ranged parts fetched at once, so that one large object does not
    /// wait on one connection. Every part must come from the same version
    /// of the object (one `ETag`) and add up to its size; if the object
    /// changed between the listing and the parts, it is read again whole.
    pub async fn get_sized(
        &self,
        key: &str,
        size: u64,
        part_size: u64,
    ) -> Result<Vec<u8>, SourceError> {
        let ranges = part_ranges(size, part_size);
        if ranges.len() < 2 {
            return self.get(key).await;
        }
        // Parts are appended as they arrive in order: the object, and at
        // most the parts in flight besides, are held at once.
        let mut parts = futures::stream::iter(ranges.iter().copied())
            .map(|r| self.get_range(key, Some(r)))
            .buffered(MAX_PARTS_IN_FLIGHT);
        // The listed size is the server's word: room for Firehose's largest
        // object at most is made ahead; past that the buffer grows as parts
        // arrive (and a size that lies fails its parts' checks).
        let mut body = Vec::with_capacity(usize::try_from(size.min(128 << 20)).unwrap_or(0));
        let mut e_tag = None;
        for (from, to) in &ranges {
            let Some(part) = parts.try_next().await? else {
                break;
            };
            let first = e_tag.get_or_insert_with(|| part.e_tag.clone());
            let same = part.e_tag.is_some() && part.e_tag == *first && part.total == Some(size);
            if !same || part.body.len() as u64 != to - from + 1 {
                tracing::warn!(
                    key,
                    "the object changed while it was read in parts; reading it again whole"
                );
                return self.get(key).await;
            }
            body.extend_from_slice(&part.body);
        }
        tracing::debug!(key, parts = ranges.len(), "read in ranged parts");
        Ok(body)
    }

    /// One GET, of the bytes `range` (inclusive) or the whole object,
    /// retried while it fails in a way that may pass.
    async fn get_range(&self, key: &str, range: Option<(u64, u64)>) -> Result<Part, SourceError> {
        RetryPolicy::new(RETRY_FOR)
            .run(
                &format!("reading s3://{}/{key}", self.bucket),
                || self.get_once(key, range),
                SourceError::is_transient,
            )
            .await
    }

    async fn get_once(&self, key: &str, range: Option<(u64, u64)>) -> Result<Part, SourceError> {
        let what = || format!("reading s3://{}/{key}", self.bucket);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(|(from, to)| format!("bytes={from}-{to}")))
            .send()
            .await
            .map_err(|e| self.error(what(), &e))?;
        let e_tag = out.e_tag().map(str::to_owned);
        // `bytes 0-99/1234`: the object's whole size after the slash.
        let total = out
            .content_range()
            .and_then(|r| r.rsplit_once('/'))
            .and_then(|(_, n)| n.parse().ok());
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| SourceError::Transient {
                what: what(),
                message: format!("the transfer broke off: {}", crate::aws::causes(&e)),
            })?;
        Ok(Part {
            body: body.into_bytes().to_vec(),
            e_tag,
            total,
        })
    }
}

/// One page of a listing, and the token of the next (`None`: the last).
#[derive(Debug)]
pub struct Page {
    pub listing: Listing,
    pub next: Option<String>,
}

/// One GET's answer.
struct Part {
    body: Vec<u8>,
    e_tag: Option<String>,
    /// The object's size, from `Content-Range` (ranged GETs only).
    total: Option<u64>,
}

/// `--fetch-part-size`'s default: 8 MiB, as the AWS CLI's and the SDKs'
/// transfer managers use.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;

/// Parts of one object fetched at once (they count as one fetch against
/// `--fetch-jobs`, and the object whole against `--read-memory`).
const MAX_PARTS_IN_FLIGHT: usize = 8;

/// The inclusive byte ranges of `part_size` parts that make up `size`
/// bytes; one range (or none) means a plain GET.
#[must_use]
pub fn part_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let part = part_size.max(1);
    (0..size.div_ceil(part))
        .map(|i| (i * part, ((i + 1) * part).min(size) - 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::part_ranges;

    #[test]
    fn parts_cover_the_object_once_in_order() {
        assert_eq!(part_ranges(0, 8), vec![]);
        assert_eq!(part_ranges(8, 8), vec![(0, 7)]);
        assert_eq!(part_ranges(9, 8), vec![(0, 7), (8, 8)]);
        assert_eq!(part_ranges(20, 8), vec![(0, 7), (8, 15), (16, 19)]);
        let ranges = part_ranges(100_000_001, 8 << 20);
        assert_eq!(ranges.len(), 12);
        assert!(ranges.windows(2).all(|w| w[1].0 == w[0].1 + 1));
        assert_eq!(ranges.last().unwrap().1, 100_000_000);
    }
}
