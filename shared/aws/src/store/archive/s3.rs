//! The S3 adapter of the archive (cargo feature `s3`): the bucket's objects read and written in
//! the format and under the keys of [`super`].

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use ftgo_domain::event::StoredEvent;
use futures::StreamExt;

use super::*;
use crate::error::Error;

/// An S3 client for `sdk`: path-style addressing when a custom endpoint is set (an emulator,
/// `AWS_ENDPOINT_URL`), virtual-hosted style on AWS.
pub fn s3_client(sdk: &aws_config::SdkConfig) -> Client {
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(sdk.endpoint_url().is_some())
        .build();
    Client::from_conf(config)
}

/// The archive bucket on S3.
#[derive(Debug, Clone)]
pub struct Archive {
    client: Client,
    bucket: String,
}

impl Archive {
    /// The archive in bucket `bucket`.
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The S3 client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Writes `object` (PutObject; rewriting an existing key replaces it with the same bytes).
    pub async fn put(&self, object: &ArchiveObject) -> Result<(), Error> {
        let body = object.body()?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object.key)
            .content_type("application/gzip")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::sdk("PutObject archive", e))?;
        Ok(())
    }

    /// Writes a JSON document at `key` (used for undecodable records).
    pub async fn put_json(&self, key: &str, body: Vec<u8>) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::sdk("PutObject archive (undecodable)", e))?;
        Ok(())
    }

    /// Every key under `prefix`, in S3's (lexicographic) order, through every page.
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let pages = self.list_pages(prefix, None).await?;
        Ok(pages
            .iter()
            .flat_map(|page| page.contents())
            .filter_map(|object| object.key().map(str::to_owned))
            .collect())
    }

    /// The partition prefixes (`events/v1/bucket=N/`) that hold at least one object, in order.
    pub async fn list_partitions(&self) -> Result<Vec<String>, Error> {
        let pages = self.list_pages(FORMAT_PREFIX, Some("/")).await?;
        let mut partitions: Vec<_> = pages
            .iter()
            .flat_map(|page| page.common_prefixes())
            .filter_map(|prefix| prefix.prefix().and_then(parse_partition_prefix))
            .collect();
        partitions.sort_unstable();
        partitions.dedup();
        Ok(partitions.into_iter().map(partition_prefix).collect())
    }

    /// Every page of a listing under `prefix` (grouped at `delimiter`, when given), through
    /// the SDK's paginator.
    async fn list_pages(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Vec<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output>, Error> {
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_delimiter(delimiter.map(str::to_owned))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| Error::sdk("ListObjectsV2 archive", e))
    }

    /// The raw bytes of object `key`.
    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>, Error> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::sdk("GetObject archive", e))?;
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::aws("GetObject archive (body)", e))?;
        Ok(bytes.into_bytes().to_vec())
    }

    /// The raw bytes of object `key`, or `None` when there is no such object.
    pub async fn get_optional(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(e) => return Err(Error::sdk("GetObject archive", e)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| Error::aws("GetObject archive (body)", e))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    /// Deletes object `key` (absent already is fine).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::sdk("DeleteObject archive", e))?;
        Ok(())
    }

    /// Every `(streamId, version)` archived in the objects of a day in `range` (all
    /// partitions). A range of at most [`MAX_LISTED_DAYS`] days lists only its own
    /// `bucket=<N>/date=<day>/` prefixes, never the rest of the archive; objects are read
    /// [`READ_CONCURRENCY`] at a time, each dropped once its ids are taken.
    pub async fn archived_event_ids(
        &self,
        range: &DateRange,
    ) -> Result<std::collections::BTreeSet<(String, u64)>, Error> {
        let prefixes = match range.days() {
            Some(days) if days.len() <= MAX_LISTED_DAYS => (0..PARTITIONS)
                .flat_map(|partition| {
                    days.iter()
                        .map(move |day| format!("{}date={day}/", partition_prefix(partition)))
                })
                .collect(),
            _ => self.list_partitions().await?,
        };
        let mut keys = Vec::new();
        for prefix in prefixes {
            keys.extend(
                self.list_keys(&prefix)
                    .await?
                    .into_iter()
                    .filter(|key| key.ends_with(OBJECT_SUFFIX) && range.contains_key(key)),
            );
        }
        let mut reads = futures::stream::iter(keys)
            .map(|key| async move { self.read(&key).await })
            .buffer_unordered(READ_CONCURRENCY);
        let mut ids = std::collections::BTreeSet::new();
        while let Some(events) = reads.next().await {
            ids.extend(events?.into_iter().map(|e| (e.stream_id, e.version)));
        }
        Ok(ids)
    }

    /// The events of archive object `key`.
    pub async fn read(&self, key: &str) -> Result<Vec<StoredEvent>, Error> {
        let bytes = self.get_bytes(key).await?;
        decode(&bytes).map_err(|e| Error::Codec(format!("s3://{}/{key}: {e}", self.bucket)))
    }

    /// Every event archived under `prefix` (objects ending in `.ndjson.gz`), sorted by
    /// `(streamId, version)` with repeats dropped. Holds the whole prefix in memory: one
    /// partition of a very large archive should be split further (by `date=`) by the caller.
    pub async fn read_prefix(&self, prefix: &str) -> Result<Vec<StoredEvent>, Error> {
        let mut events = Vec::new();
        for key in self.list_keys(prefix).await? {
            if !key.ends_with(OBJECT_SUFFIX) {
                continue;
            }
            events.extend(self.read(&key).await?);
        }
        sort_and_dedup(&mut events);
        Ok(events)
    }
}
