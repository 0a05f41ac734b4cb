//! S3 through the AWS SDK: the standard credential chain and region, and any
//! S3-compatible endpoint (`--endpoint-url`, `AWS_ENDPOINT_URL`).

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;

use super::{Listing, ObjectMeta, SourceError};

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    endpoint: String,
}

impl S3Store {
    pub async fn connect(bucket: String, endpoint_url: Option<&str>) -> Self {
        let shared = crate::aws::sdk_config(endpoint_url, None).await;
        let mut conf = aws_sdk_s3::config::Builder::from(&shared);
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
            SdkError::ServiceError(s) => match s.err().code() {
                Some("NoSuchBucket") => {
                    return SourceError::NoArchive(format!("s3://{} (no such bucket)", self.bucket))
                }
                Some(code) => format!("{code}: {}", s.err().message().unwrap_or("")),
                None => DisplayErrorContext(e).to_string(),
            },
            _ => DisplayErrorContext(e).to_string(),
        };
        SourceError::S3 { what, message }
    }

    pub async fn list_dir(&self, prefix: &str) -> Result<Listing, SourceError> {
        self.list(prefix, Some("/")).await
    }

    pub async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SourceError> {
        Ok(self.list(prefix, None).await?.objects)
    }

    async fn list(&self, prefix: &str, delimiter: Option<&str>) -> Result<Listing, SourceError> {
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .into_paginator()
            .send();
        let mut listing = Listing::default();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| self.error(format!("listing s3://{}/{prefix}", self.bucket), &e))?
        {
            listing.prefixes.extend(
                page.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            listing
                .objects
                .extend(page.contents().iter().filter_map(|o| {
                    Some(ObjectMeta {
                        key: o.key()?.to_owned(),
                        size: o.size().unwrap_or(0).try_into().unwrap_or(0),
                    })
                }));
        }
        Ok(listing)
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

    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        let what = || format!("reading s3://{}/{key}", self.bucket);
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error(what(), &e))?;
        let body = out.body.collect().await.map_err(|e| SourceError::S3 {
            what: what(),
            message: e.to_string(),
        })?;
        Ok(body.into_bytes().to_vec())
    }
}
