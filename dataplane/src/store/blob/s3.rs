//! Content-addressed message bodies in an S3 bucket (aws-sdk-s3), for dataplanes that run
//! as several replicas (DESIGN.md §3).
//!
//! The body with SHA-256 `abcd…` is the object `<prefix>abcd…` of the bucket. A body is
//! uploaded once it is complete (its key is its digest): with one PUT up to
//! [`MULTIPART_THRESHOLD`], as a multipart upload of [`PART_SIZE`] parts above it (aborted
//! on error or cancellation). Uploading an existing body again is harmless and refreshes its
//! LastModified, which is what orphan collection measures the grace period from.
//!
//! Works with AWS and S3-compatible servers: custom endpoint, path-style addressing
//! (`https://host/bucket/key`), and checksums only where the API requires them (many
//! servers reject the SDK's default trailing checksums). HTTPS goes through rustls (ring),
//! the workspace's one TLS stack. Credentials are static (an access key id and secret,
//! read from the environment by the configuration) and never appear in errors or logs.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use bytes::Bytes;

use super::cache::{BodyCache, DEFAULT_CACHE_BYTES};
use super::{BlobError, BlobId};

/// Bodies larger than this (octets) are uploaded as multipart uploads: 8 MiB.
pub const MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;
/// Part size of multipart uploads (octets; the last part may be smaller): 8 MiB, above
/// S3's 5 MiB minimum.
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Largest `cache_mib` of a blob URL: 64 GiB.
const MAX_CACHE_MIB: u64 = 65536;
/// How long to wait for a TCP (and TLS) connection to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach the bucket. `Debug` leaves the secret out.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name (3-63 characters: lower-case letters, digits, `.`, `-`).
    pub bucket: String,
    /// Key prefix put before every blob's digest, e.g. `acme/`; may be empty.
    pub prefix: String,
    /// Endpoint URL (`http://` or `https://`); `None` means AWS for `region`.
    pub endpoint: Option<String>,
    /// Region, e.g. `us-east-1` (signs the requests; any value for most other servers).
    pub region: String,
    /// Path-style addressing (`https://host/bucket/key`) instead of virtual hosts
    /// (`https://bucket.host/key`); most non-AWS servers need it.
    pub force_path_style: bool,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key. Never logged.
    pub secret_access_key: String,
    /// Capacity of this process's in-memory cache of bodies, in octets (0: no cache);
    /// [`DEFAULT_CACHE_BYTES`] unless configured. See [`super::cache`].
    pub cache_bytes: u64,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("force_path_style", &self.force_path_style)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("cache_bytes", &self.cache_bytes)
            .finish()
    }
}

/// An unusable S3 setting: which one (`bucket`, `prefix`, `endpoint`, `region`,
/// `accessKeyId`, `secretAccessKey`, or a query parameter of a blob URL) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct S3SettingsError {
    /// The setting.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn setting_error(field: &str, message: impl Into<String>) -> S3SettingsError {
    S3SettingsError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl S3Settings {
    /// Checks the settings without touching the network.
    ///
    /// # Errors
    /// The first [`S3SettingsError`].
    pub fn validate(&self) -> Result<(), S3SettingsError> {
        let b = &self.bucket;
        let bucket_ok = (3..=63).contains(&b.len())
            && b.bytes()
                .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
            && b.starts_with(|c: char| c.is_ascii_alphanumeric())
            && b.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(setting_error(
                "bucket",
                format!("{b:?} is not a bucket name (3-63 lower-case letters, digits, '.', '-')"),
            ));
        }
        // S3 keys are at most 1024 octets; the digest takes 64.
        if self.prefix.len() > 960 {
            return Err(setting_error("prefix", "longer than 960 octets"));
        }
        if self.prefix.starts_with('/') {
            return Err(setting_error("prefix", "must not start with '/'"));
        }
        if self.prefix.chars().any(char::is_control) {
            return Err(setting_error(
                "prefix",
                "must not contain control characters",
            ));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(setting_error(
                "endpoint",
                format!("{e:?} is not an http:// or https:// URL"),
            ));
        }
        if self.region.is_empty() {
            return Err(setting_error("region", "must not be empty"));
        }
        if self.access_key_id.is_empty() {
            return Err(setting_error("accessKeyId", "must not be empty"));
        }
        if self.secret_access_key.is_empty() {
            return Err(setting_error("secretAccessKey", "must not be empty"));
        }
        Ok(())
    }

    /// Parses a blob URL
    /// `s3://BUCKET/PREFIX?endpoint=URL&region=REGION&path_style=BOOL&cache_mib=N`
    /// (`mcp standalone --blob-url`). The prefix is the path without its leading `/`
    /// (percent-decoded; keep its trailing `/`); the query values are percent-decoded;
    /// `region` defaults to `us-east-1`, `path_style` to `false`, `endpoint` to AWS,
    /// `cache_mib` (the body cache in MiB, 0 to 65536; 0 turns it off) to 64.
    /// Credentials come from the caller (the environment), never from the URL.
    ///
    /// # Errors
    /// [`S3SettingsError`] naming the part of the URL at fault (`url`, `bucket`, a query
    /// parameter), then as [`S3Settings::validate`].
    pub fn from_url(
        url: &str,
        access_key_id: String,
        secret_access_key: String,
    ) -> Result<S3Settings, S3SettingsError> {
        let parsed = url::Url::parse(url).map_err(|e| setting_error("url", e.to_string()))?;
        if parsed.scheme() != "s3" {
            return Err(setting_error("url", "must start with s3://"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(setting_error(
                "url",
                "must not carry credentials (use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
            ));
        }
        if parsed.port().is_some() {
            return Err(setting_error(
                "url",
                "s3://BUCKET takes no port (use endpoint=)",
            ));
        }
        if parsed.fragment().is_some() {
            return Err(setting_error("url", "must not have a #fragment"));
        }
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        let path = parsed.path();
        let prefix = percent_decode(path.strip_prefix('/').unwrap_or(path))
            .ok_or_else(|| setting_error("prefix", "is not UTF-8 once percent-decoded"))?;
        let mut settings = S3Settings {
            bucket,
            prefix,
            endpoint: None,
            region: "us-east-1".to_owned(),
            force_path_style: false,
            access_key_id,
            secret_access_key,
            cache_bytes: DEFAULT_CACHE_BYTES,
        };
        let mut seen = HashSet::new();
        for (k, v) in parsed.query_pairs() {
            if !seen.insert(k.clone()) {
                return Err(setting_error(&k, "given twice"));
            }
            match k.as_ref() {
                "endpoint" => settings.endpoint = Some(v.into_owned()),
                "region" => settings.region = v.into_owned(),
                "path_style" => {
                    settings.force_path_style = match v.as_ref() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(setting_error(
                                "path_style",
                                format!("{other:?} is neither true nor false"),
                            ));
                        }
                    }
                }
                "cache_mib" => {
                    settings.cache_bytes = match v.parse::<u64>() {
                        Ok(mib) if mib <= MAX_CACHE_MIB => mib * 1024 * 1024,
                        _ => {
                            return Err(setting_error(
                                "cache_mib",
                                format!("{v:?} is not a number of MiB from 0 to {MAX_CACHE_MIB}"),
                            ));
                        }
                    }
                }
                other => {
                    return Err(setting_error(
                        other,
                        "unknown parameter (expected endpoint, region, path_style, cache_mib)",
                    ));
                }
            }
        }
        settings.validate()?;
        Ok(settings)
    }
}

/// `%XX`-decoding of a URL path; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Message bodies in one bucket under one key prefix. Cheap to clone (the clones share the
/// client and its connection pool).
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    prefix: String,
    /// Bodies read or written lately ([`super::cache`]); `None` when turned off.
    cache: Option<Arc<BodyCache>>,
}

/// Converts an SDK error into [`BlobError::S3`], keeping the status, S3 code and message.
fn s3_error<E>(op: &'static str, bucket: &str, key: &str, err: &SdkError<E>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let message = match (err, err.message()) {
        (_, Some(m)) => m.to_owned(),
        // An answer without a message (HEAD has no body): the code and status say it all.
        (SdkError::ServiceError(_), None) => "(no message)".to_owned(),
        // No answer: the client's description (connection refused, timeout, ...).
        (_, None) => DisplayErrorContext(err).to_string(),
    };
    BlobError::S3 {
        op,
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        status,
        code,
        message,
    }
}

/// `true` when the error is an HTTP 404 answer.
fn is_404<E>(err: &SdkError<E>) -> bool {
    err.raw_response().map(|r| r.status().as_u16()) == Some(404)
}

impl S3BlobStore {
    /// Builds the client for `settings` and checks that the bucket answers (HeadBucket).
    ///
    /// # Errors
    /// [`BlobError::Settings`] for unusable settings; [`BlobError::S3`] when the bucket
    /// does not answer (no such bucket: HTTP 404; wrong credentials: HTTP 403; endpoint
    /// unreachable: no status).
    pub async fn connect(settings: &S3Settings) -> Result<Self, BlobError> {
        let store = Self::new(settings)?;
        store
            .client
            .head_bucket()
            .bucket(&store.bucket)
            .send()
            .await
            .map_err(|e| {
                let mut err = s3_error("HeadBucket", &store.bucket, "", &e);
                // HEAD answers have no body, so no S3 code: name the usual causes.
                if let BlobError::S3 {
                    status: Some(status),
                    code,
                    ..
                } = &mut err
                {
                    match status {
                        404 => *code = Some("NoSuchBucket".to_owned()),
                        403 => *code = Some("AccessDenied".to_owned()),
                        _ => {}
                    }
                }
                err
            })?;
        Ok(store)
    }

    /// Builds the client for `settings` without any request.
    ///
    /// # Errors
    /// [`BlobError::Settings`].
    pub fn new(settings: &S3Settings) -> Result<Self, BlobError> {
        settings.validate()?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let credentials = Credentials::new(
            settings.access_key_id.clone(),
            settings.secret_access_key.clone(),
            None,
            None,
            "mcp-config",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.force_path_style)
            .http_client(http)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint.clone());
        }
        Ok(S3BlobStore {
            client: Client::from_conf(config.build()),
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            cache: BodyCache::new(settings.cache_bytes).map(Arc::new),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The object key of blob `id`: `<prefix><id>`.
    pub fn key(&self, id: &BlobId) -> String {
        format!("{}{}", self.prefix, id.0)
    }

    /// The S3 client (for tools and tests that look at the objects themselves).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Uploads `body` (one PUT, or a multipart upload above [`MULTIPART_THRESHOLD`]) and
    /// returns its address once S3 has acknowledged it.
    ///
    /// # Errors
    /// [`BlobError::S3`].
    pub async fn put(&self, body: &[u8]) -> Result<BlobId, BlobError> {
        let id = BlobId::of(body);
        let key = self.key(&id);
        let data = Bytes::copy_from_slice(body);
        if data.len() <= MULTIPART_THRESHOLD {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_length(i64::try_from(data.len()).unwrap_or(i64::MAX))
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .map_err(|e| s3_error("PutObject", &self.bucket, &key, &e))?;
        } else {
            self.put_multipart(&key, data.clone()).await?;
        }
        if let Some(cache) = &self.cache {
            cache.insert(&id, &data);
        }
        Ok(id)
    }

    async fn put_multipart(&self, key: &str, data: Bytes) -> Result<(), BlobError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("CreateMultipartUpload", &self.bucket, key, &e))?;
        let Some(upload_id) = created.upload_id().map(str::to_owned) else {
            return Err(BlobError::S3 {
                op: "CreateMultipartUpload",
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                status: None,
                code: None,
                message: "the answer has no UploadId".to_owned(),
            });
        };
        // Aborts the upload if this future is dropped (client gone) or fails.
        let mut guard = AbortGuard {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            upload_id: upload_id.clone(),
            armed: true,
        };
        let mut parts = Vec::new();
        for (i, start) in (0..data.len()).step_by(PART_SIZE).enumerate() {
            let end = (start + PART_SIZE).min(data.len());
            let number = i32::try_from(i + 1).unwrap_or(i32::MAX);
            let part = data.slice(start..end);
            let out = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&upload_id)
                .part_number(number)
                .content_length(i64::try_from(part.len()).unwrap_or(i64::MAX))
                .body(ByteStream::from(part))
                .send()
                .await
                .map_err(|e| s3_error("UploadPart", &self.bucket, key, &e))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(out.e_tag().map(str::to_owned))
                    .build(),
            );
        }
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", &self.bucket, key, &e))?;
        guard.armed = false;
        Ok(())
    }

    /// Reads a whole body: from the cache, or with a GET (and then caches it).
    ///
    /// # Errors
    /// [`BlobError::NotFound`] for a missing or malformed id; [`BlobError::S3`].
    pub async fn get(&self, id: &BlobId) -> Result<Bytes, BlobError> {
        if !id.is_valid() {
            return Err(BlobError::NotFound(id.0.clone()));
        }
        if let Some(body) = self.cache.as_ref().and_then(|c| c.get(id)) {
            return Ok(body);
        }
        let key = self.key(id);
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(BlobError::NotFound(id.0.clone()));
            }
            Err(e) => return Err(s3_error("GetObject", &self.bucket, &key, &e)),
        };
        let body = self.read_body("GetObject", &key, out.body).await?;
        if let Some(cache) = &self.cache {
            cache.insert(id, &body);
        }
        Ok(body)
    }

    async fn read_body(
        &self,
        op: &'static str,
        key: &str,
        body: ByteStream,
    ) -> Result<Bytes, BlobError> {
        body.collect()
            .await
            .map(|b| b.into_bytes())
            .map_err(|e| BlobError::S3 {
                op,
                bucket: self.bucket.clone(),
                key: key.to_owned(),
                status: None,
                code: None,
                message: format!("reading the body: {}", DisplayErrorContext(&e)),
            })
    }

    /// Reads at most `len` octets from octet `start`: from a cached body, or with a ranged
    /// GET (not cached). Fewer when the body ends first, none when `start` is at or past its
    /// end (S3's `InvalidRange`) or `len` is 0.
    ///
    /// # Errors
    /// [`BlobError::NotFound`] for a missing or malformed id; [`BlobError::S3`].
    pub async fn get_range(&self, id: &BlobId, start: u64, len: u64) -> Result<Bytes, BlobError> {
        if !id.is_valid() {
            return Err(BlobError::NotFound(id.0.clone()));
        }
        if let Some(part) = self
            .cache
            .as_ref()
            .and_then(|c| c.get_range(id, start, len))
        {
            return Ok(part);
        }
        if len == 0 {
            return match self.exists(id).await? {
                true => Ok(Bytes::new()),
                false => Err(BlobError::NotFound(id.0.clone())),
            };
        }
        let key = self.key(id);
        let range = match start.checked_add(len - 1) {
            Some(last) => format!("bytes={start}-{last}"),
            None => format!("bytes={start}-"),
        };
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .range(range)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Err(BlobError::NotFound(id.0.clone()));
            }
            Err(e)
                if e.code() == Some("InvalidRange")
                    || e.raw_response().map(|r| r.status().as_u16()) == Some(416) =>
            {
                return Ok(Bytes::new());
            }
            Err(e) => return Err(s3_error("GetObject", &self.bucket, &key, &e)),
        };
        let data = self.read_body("GetObject", &key, out.body).await?;
        // A ranged answer (206) names its range; a server that ignored Range sent the whole
        // body (200, no Content-Range): cut it here.
        if out.content_range.is_none() {
            let from = usize::try_from(start).unwrap_or(usize::MAX).min(data.len());
            let to = from
                .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                .min(data.len());
            return Ok(data.slice(from..to));
        }
        Ok(data)
    }

    /// When the object of `id` was last written (seconds since the epoch, server time);
    /// `None` when it does not exist.
    async fn last_modified(&self, id: &BlobId) -> Result<Option<i64>, BlobError> {
        let key = self.key(id);
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(out) => Ok(Some(out.last_modified().map_or(0, |t| t.secs()))),
            Err(e) if is_404(&e) => Ok(None),
            Err(e) => Err(s3_error("HeadObject", &self.bucket, &key, &e)),
        }
    }

    /// Whether the blob exists (`false` for a malformed id).
    ///
    /// # Errors
    /// [`BlobError::S3`].
    pub async fn exists(&self, id: &BlobId) -> Result<bool, BlobError> {
        if !id.is_valid() {
            return Ok(false);
        }
        Ok(self.last_modified(id).await?.is_some())
    }

    /// Removes a blob.
    ///
    /// # Errors
    /// [`BlobError::NotFound`] when it does not exist (checked with a HEAD: S3's DELETE
    /// succeeds either way); [`BlobError::S3`].
    pub async fn delete(&self, id: &BlobId) -> Result<(), BlobError> {
        if !self.exists(id).await? {
            return Err(BlobError::NotFound(id.0.clone()));
        }
        self.delete_object(id).await
    }

    /// DeleteObject of `id`'s key, unconditionally (S3 answers success for a missing key).
    async fn delete_object(&self, id: &BlobId) -> Result<(), BlobError> {
        if let Some(cache) = &self.cache {
            cache.remove(id);
        }
        let key = self.key(id);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| s3_error("DeleteObject", &self.bucket, &key, &e))?;
        Ok(())
    }

    /// Deletes the objects `<prefix><digest>` not in `referenced` whose LastModified is
    /// more than `min_age` ago, and aborts multipart uploads under the prefix started more
    /// than `min_age` ago. Each candidate is looked at again (HEAD) just before its DELETE,
    /// so that a body uploaded again since the listing (a new APPEND of the same message)
    /// is kept. Returns the number of objects deleted.
    ///
    /// # Errors
    /// [`BlobError::S3`].
    pub async fn collect_orphans(
        &self,
        referenced: &HashSet<BlobId>,
        min_age: Duration,
    ) -> Result<usize, BlobError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let age = i64::try_from(min_age.as_secs()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(age);
        // Whole seconds: a zero grace period must take what was written this second too.
        let old = |secs: i64| if age == 0 { true } else { secs < cutoff };

        let mut candidates = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| s3_error("ListObjectsV2", &self.bucket, &self.prefix, &e))?;
            for object in page.contents() {
                let Some(rest) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                let id = BlobId(rest.to_owned());
                if !id.is_valid() || referenced.contains(&id) {
                    continue;
                }
                if object.last_modified().is_some_and(|t| old(t.secs())) {
                    candidates.push(id);
                }
            }
        }

        let mut deleted = 0;
        for id in candidates {
            match self.last_modified(&id).await? {
                Some(secs) if old(secs) => {}
                _ => continue,
            }
            self.delete_object(&id).await?;
            deleted += 1;
        }
        self.abort_stale_uploads(&old).await?;
        Ok(deleted)
    }

    /// Aborts the multipart uploads under the prefix that `old` says are stale (their
    /// writer crashed or was cancelled before it could abort them itself).
    async fn abort_stale_uploads(&self, old: &impl Fn(i64) -> bool) -> Result<(), BlobError> {
        let mut key_marker: Option<String> = None;
        let mut upload_marker: Option<String> = None;
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(upload_marker.clone())
                .send()
                .await
                .map_err(|e| s3_error("ListMultipartUploads", &self.bucket, &self.prefix, &e))?;
            for upload in page.uploads() {
                let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) else {
                    continue;
                };
                if !upload.initiated().is_some_and(|t| old(t.secs())) {
                    continue;
                }
                match self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
                    .await
                {
                    Ok(_) => {}
                    // Completed or aborted meanwhile.
                    Err(e) if is_404(&e) => {}
                    Err(e) => return Err(s3_error("AbortMultipartUpload", &self.bucket, key, &e)),
                }
            }
            if page.is_truncated() != Some(true) {
                return Ok(());
            }
            let next_key = page.next_key_marker().map(str::to_owned);
            let next_upload = page.next_upload_id_marker().map(str::to_owned);
            if next_key.is_none() || (next_key == key_marker && next_upload == upload_marker) {
                return Ok(());
            }
            key_marker = next_key;
            upload_marker = next_upload;
        }
    }
}

/// Aborts a multipart upload when dropped armed: on an error, and when the upload's future
/// is cancelled (the APPEND's client went away), so that no parts are left behind. Orphan
/// collection aborts what this could not (a crash).
struct AbortGuard {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id);
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        runtime.spawn(async move {
            if let Err(e) = request.send().await {
                let e = s3_error("AbortMultipartUpload", &bucket, &key, &e);
                tracing::warn!(error = %e, "multipart upload left for orphan collection");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Result<S3Settings, S3SettingsError> {
        S3Settings::from_url(u, "AKID".into(), "SECRET".into())
    }

    #[test]
    fn blob_urls_parse() {
        let s = url("s3://mail-bodies/acme/?endpoint=http://127.0.0.1:9000&region=eu-west-1&path_style=true")
            .expect("valid");
        assert_eq!(s.bucket, "mail-bodies");
        assert_eq!(s.prefix, "acme/");
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.region, "eu-west-1");
        assert!(s.force_path_style);

        let s = url("s3://bucket").expect("valid");
        assert_eq!(
            (
                s.prefix.as_str(),
                s.endpoint,
                s.region.as_str(),
                s.force_path_style
            ),
            ("", None, "us-east-1", false)
        );
        let s = url("s3://bucket/a%20b/c/?endpoint=https%3A%2F%2Fs3.example%3A443").expect("valid");
        assert_eq!(s.prefix, "a b/c/");
        assert_eq!(s.endpoint.as_deref(), Some("https://s3.example:443"));
        assert_eq!(s.cache_bytes, DEFAULT_CACHE_BYTES);
        for (q, bytes) in [("0", 0), ("1", 1 << 20), ("65536", 65536 << 20)] {
            let s = url(&format!("s3://bucket/?cache_mib={q}")).expect(q);
            assert_eq!(s.cache_bytes, bytes, "{q}");
        }
    }

    #[test]
    fn bad_blob_urls_name_the_part_at_fault() {
        let cases = [
            ("not a url", "url"),
            ("http://bucket/p/", "url"),
            ("s3://user:pw@bucket/p/", "url"),
            ("s3://bucket:9000/p/", "url"),
            ("s3://Bucket/p/", "bucket"),
            ("s3://b/p/", "bucket"),
            ("s3:///p/", "bucket"),
            ("s3://bucket//p/", "prefix"),
            ("s3://bucket/p/?endpoint=ftp://x", "endpoint"),
            ("s3://bucket/p/?region=", "region"),
            ("s3://bucket/p/?path_style=yes", "path_style"),
            ("s3://bucket/p/?acl=public", "acl"),
            ("s3://bucket/p/?region=a&region=b", "region"),
            ("s3://bucket/p/?cache_mib=-1", "cache_mib"),
            ("s3://bucket/p/?cache_mib=65537", "cache_mib"),
            ("s3://bucket/p/?cache_mib=1.5", "cache_mib"),
            ("s3://bucket/p/?cache_mib=", "cache_mib"),
            (
                "s3://bucket/p/?cache_mib=99999999999999999999999",
                "cache_mib",
            ),
        ];
        for (u, field) in cases {
            let e = url(u).expect_err(u);
            assert_eq!(e.field, field, "{u}: {e}");
        }
        let e =
            S3Settings::from_url("s3://bucket/p/", String::new(), "s".into()).expect_err("akid");
        assert_eq!(e.field, "accessKeyId");
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = url("s3://bucket/p/").expect("valid");
        let shown = format!("{s:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("AKID"), "{shown}");
    }
}
