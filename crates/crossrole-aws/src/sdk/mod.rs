//! The real AWS: the traits of [`crate::api`] over the AWS SDK for Rust.
//!
//! Credentials and endpoints come from the standard chain (environment, profiles, SSO, IMDS, and
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`). The SDK's own retries are disabled: the call layer
//! is the only one. TLS is rustls with ring, on an HTTP client whose sockets write nothing past the fence
//! (`http`).

mod http;
mod iam;
mod organizations;
mod sqs;
mod sts;

use std::{sync::Arc, time::Duration};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::{display::DisplayErrorContext, metadata::ProvideErrorMetadata};
use crossrole_core::Partition;

use crate::{
    api::{AwsConnector, Credentials, IamApi, OrganizationsApi, QueueApi, StsApi},
    error::AwsError,
};

/// The real AWS.
pub struct SdkConnector {
    config: SdkConfig,
    partition: Partition,
    organizations: Arc<organizations::SdkOrganizations>,
    sts: Arc<sts::SdkSts>,
    /// What the sockets check before they write.
    fence: http::SocketFence,
}

impl SdkConnector {
    /// Loads the standard AWS configuration. Without a region, `us-east-1` (IAM and Organizations are global).
    /// The partition comes from `partition`, else from the region.
    pub async fn from_env(partition: Option<Partition>) -> SdkConnector {
        let fence = http::SocketFence::default();
        let http = http::client(fence.clone()).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot build the fenced HTTP client; AWS writes are fenced per attempt only");
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
        });
        let mut config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .build(),
            )
            .load()
            .await;
        if config.region().is_none() {
            config = config.into_builder().region(Region::new("us-east-1")).build();
        }
        let region = config.region().map(|r| r.as_ref().to_string()).unwrap_or_default();
        let partition = partition.unwrap_or(if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else {
            Partition::Aws
        });
        SdkConnector {
            organizations: Arc::new(organizations::SdkOrganizations::new(&config)),
            sts: Arc::new(sts::SdkSts::new(&config, None)),
            config,
            partition,
            fence,
        }
    }
}

/// The endpoint URLs set for the services crossroled calls (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, or
/// a profile's `endpoint_url`), as the SDK resolves them; `None` for a service sent to AWS's own endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointUrls {
    /// IAM's.
    pub iam: Option<String>,
    /// STS's.
    pub sts: Option<String>,
    /// Organizations'.
    pub organizations: Option<String>,
}

impl SdkConnector {
    /// Where the SDK sends each service's calls when an endpoint URL is configured: the same resolution the
    /// service clients make from this configuration (a service's own setting first, then the global one).
    pub fn endpoint_urls(&self) -> EndpointUrls {
        let url = |service: &str| {
            let key = aws_types::service_config::ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .ok()?;
            self.config
                .service_config()
                .and_then(|c| c.load_config(key))
                .or_else(|| self.config.endpoint_url().map(String::from))
                .filter(|u| !u.trim().is_empty())
        };
        EndpointUrls { iam: url("IAM"), sts: url("STS"), organizations: url("Organizations") }
    }
}

impl AwsConnector for SdkConnector {
    fn partition(&self) -> Partition {
        self.partition
    }

    fn fence_sockets(&self, fence: crate::fence::Fence) {
        self.fence.set(fence);
    }

    fn organizations(&self) -> Arc<dyn OrganizationsApi> {
        self.organizations.clone()
    }

    fn sts(&self, credentials: Option<&Credentials>) -> Arc<dyn StsApi> {
        match credentials {
            None => self.sts.clone(),
            Some(c) => Arc::new(sts::SdkSts::new(&self.config, Some(c))),
        }
    }

    fn iam(&self, credentials: &Credentials) -> Arc<dyn IamApi> {
        Arc::new(iam::SdkIam::new(&self.config, credentials))
    }

    fn queue(&self, url: &str) -> Arc<dyn QueueApi> {
        Arc::new(sqs::SdkQueue::new(&self.config, url))
    }
}

/// SDK credentials from ours.
fn provider(c: &Credentials) -> aws_credential_types::Credentials {
    aws_credential_types::Credentials::new(
        c.access_key_id.clone(),
        c.secret_access_key.clone(),
        Some(c.session_token.clone()),
        Some(c.expiration),
        "crossrole-assumed-role",
    )
}

/// Our error from an SDK error: AWS's code and HTTP status when AWS answered, transient when it did not.
fn map_err<E, R>(call: &str, e: SdkError<E, R>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status_code();
            let message = match (se.err().code(), se.err().message()) {
                (_, Some(m)) if !m.is_empty() => m.to_string(),
                (Some(_), _) => format!("HTTP {status}, no message"),
                (None, _) => format!("HTTP {status} without an AWS error code or message"),
            };
            AwsError::from_code(call, se.err().code(), Some(status), message)
        }
        SdkError::ConstructionFailure(_) => {
            AwsError::from_code(call, Some("ConstructionFailure"), None, DisplayErrorContext(&e).to_string())
        }
        _ => match e.raw_response().map(HasStatus::status_code) {
            Some(status) if status >= 400 => {
                AwsError::from_code(call, e.code(), Some(status), DisplayErrorContext(&e).to_string())
            }
            _ => AwsError::transport(call, DisplayErrorContext(&e).to_string()),
        },
    }
}

/// The HTTP status of a raw response.
trait HasStatus {
    fn status_code(&self) -> u16;
}

impl HasStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn unix(t: &aws_smithy_types::DateTime) -> u64 {
    u64::try_from(t.secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation::get_role::GetRoleError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::{body::SdkBody, error::ErrorMetadata};

    use super::*;
    use crate::ErrorKind;

    fn answered(status: u16, code: Option<&str>, message: Option<&str>) -> AwsError {
        let mut meta = ErrorMetadata::builder();
        if let Some(c) = code {
            meta = meta.code(c);
        }
        if let Some(m) = message {
            meta = meta.message(m);
        }
        let raw = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        map_err("iam:GetRole", SdkError::service_error(GetRoleError::generic(meta.build()), raw))
    }

    #[test]
    fn an_answer_without_a_code_says_its_status() {
        let e = answered(503, None, None);
        assert_eq!(e.kind, ErrorKind::Transient);
        assert_eq!(e.to_string(), "iam:GetRole failed: HTTP 503 without an AWS error code or message");
        let e = answered(400, Some("Throttling"), None);
        assert_eq!(
            (e.kind, e.to_string().as_str()),
            (ErrorKind::Throttling, "iam:GetRole failed: Throttling: HTTP 400, no message")
        );
        let e = answered(404, Some("NoSuchEntity"), Some("The role with name X cannot be found."));
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert!(e.to_string().ends_with("cannot be found."));
    }
}
