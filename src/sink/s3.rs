//! `kind = "s3"`: the stream uploaded to S3-compatible object storage (AWS S3, Wasabi, Backblaze
//! B2, Linode, DigitalOcean Spaces, MinIO, ...) with `aws-sdk-s3`, for viewers to fetch from
//! `public_base_url` (a CDN, or the bucket's public URL).
//!
//! Choices for services other than AWS: no request checksums unless an operation requires one
//! (several S3-compatible services refuse the SDK's default trailing checksums), and no retries
//! inside the SDK (the uploader retries with its own backoff and reports each failure).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::{Credentials, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectCannedAcl;
use aws_sdk_s3::Client;

use super::error::{root_cause, SinkError};
use super::plan::{join_url, Object};
use crate::config::S3Config;

/// Connecting longer than this means the endpoint is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One request (a segment is a few MB at most) taking longer than this is a failure.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

pub struct S3Sink {
    client: Client,
    bucket: String,
    prefix: String,
    acl: Option<ObjectCannedAcl>,
    public_base_url: String,
    endpoint: String,
}

impl S3Sink {
    pub async fn new(config: &S3Config) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            );
        if let (Some(access_key), Some(secret_key)) = (&config.access_key, &config.secret_key) {
            loader = loader.credentials_provider(Credentials::new(
                access_key,
                secret_key,
                None,
                None,
                "selfcast config.toml",
            ));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.force_path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        S3Sink {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
            prefix: config.path_prefix.trim_matches('/').to_owned(),
            acl: config.acl.as_deref().map(ObjectCannedAcl::from),
            public_base_url: config.public_base_url.clone(),
            endpoint: config
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("AWS S3 ({})", config.region)),
        }
    }

    pub async fn put(&self, object: &Object) -> Result<Option<String>, SinkError> {
        let key = self.key(&object.key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(object.body.clone()))
            .content_type(object.content_type)
            .cache_control(object.cache_control)
            .set_acl(self.acl.clone())
            .send()
            .await
            .map_err(|e| self.explain(&format!("uploading {key}"), e))?;
        Ok(Some(self.public_url(&object.key)))
    }

    pub async fn delete(&self, key: &str) -> Result<(), SinkError> {
        let key = self.key(key);
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
            .map_err(|e| self.explain(&format!("deleting {key}"), e))?;
        Ok(())
    }

    /// The bucket exists and these credentials may use it.
    pub async fn check(&self) -> Result<(), SinkError> {
        let refused = match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let denied =
            matches!(&refused, SdkError::ServiceError(s) if s.raw().status().as_u16() == 403);
        if denied {
            // A HEAD answer has no body, so no reason: ask something whose refusal says why
            // (a wrong secret, an unknown key).
            if let Err(e) = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .max_keys(0)
                .send()
                .await
            {
                return Err(self.explain("checking the bucket", e));
            }
        }
        Err(self.explain("checking the bucket", refused))
    }

    pub fn target(&self) -> String {
        format!("s3://{}/{} at {}", self.bucket, self.prefix, self.endpoint)
    }

    /// Where viewers fetch `key`.
    pub fn public_url(&self, key: &str) -> String {
        join_url(&self.public_base_url, &self.key(key))
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// An SDK error in plain words: what failed, and the likely cause.
    fn explain<E>(&self, doing: &str, error: SdkError<E, HttpResponse>) -> SinkError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let bucket = &self.bucket;
        let endpoint = &self.endpoint;
        let cause =
            match &error {
                SdkError::TimeoutError(_) => format!("cannot reach {endpoint}: timed out"),
                SdkError::DispatchFailure(_) => {
                    format!("cannot reach {endpoint}: {}", root_cause(&error))
                }
                SdkError::ServiceError(service) => {
                    let status = service.raw().status().as_u16();
                    let code = service.err().code().unwrap_or("");
                    let message = service.err().message().unwrap_or("");
                    match (status, code) {
                        (_, "NoSuchBucket") | (404, "") | (404, "NotFound") => {
                            format!("the bucket {bucket:?} does not exist at {endpoint}")
                        }
                        (_, "InvalidAccessKeyId") => {
                            "the access key is not known to the service: check access_key".into()
                        }
                        (_, "SignatureDoesNotMatch") => {
                            "the secret key does not match the access key: check secret_key".into()
                        }
                        (403, _) => {
                            format!(
                        "access denied{}: check access_key and secret_key, and that they may \
                         write to {bucket:?}",
                        if code.is_empty() { String::new() } else { format!(" ({code} {message})") }
                    )
                        }
                        _ => format!("the service answered {status} {code}: {message}"),
                    }
                }
                _ => DisplayErrorContext(&error).to_string(),
            };
        SinkError(format!("{doing}: {cause}"))
    }
}
