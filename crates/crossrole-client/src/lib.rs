//! The crossrole client SDK: a typed async client for the crossroled gRPC API.
//!
//! ```no_run
//! use crossrole_client::{Client, proto};
//!
//! # async fn example(spec: proto::AccessSpec) -> Result<(), crossrole_client::Error> {
//! let client = Client::builder()
//!     .endpoint("http://127.0.0.1:50051")
//!     .token(std::env::var("CROSSROLE_TOKEN").unwrap_or_default())
//!     .connect()
//!     .await?;
//!
//! // What would change, account by account, the organization read as an apply reads it; nothing changes in AWS.
//! let plan = client.plan_read(spec.clone(), proto::OrganizationRead::AsApply).await?;
//! println!("{} changes in {} accounts", plan.total_changes, plan.accounts_with_changes);
//!
//! // Apply that plan (or nothing, if what it found changed since), follow the events live, and wait for the end.
//! let operation = client.apply_confirmed(spec, None, plan.fingerprint).await?;
//! let done = operation.wait().await?;
//! println!("{:?}", done.counts);
//! # Ok(()) }
//! ```
//!
//! The SDK depends only on the generated API ([`proto`], re-exported) and tonic. Calls are retried with backoff
//! when they could not reach the server; applies and destroys carry an idempotency key (generated when you give
//! none), so retrying them is safe too. An answer from the server is never retried behind your back: when
//! crossroled says to try later (AWS throttled it beyond its own retries), [`Error::retry_after`] says when.
//! Event streams reconnect and resume from the last event seen.
//!
//! # Spec files
//!
//! With the feature `spec-files` (off by default, so the SDK alone stays small), the module `spec_file` reads the
//! spec files people write for `crossrole` into the API's spec, as the CLI reads them: a file with a bad field gives
//! the CLI's error, every field named.
//!
//! ```toml
//! crossrole-client = { version = "0.1", features = ["spec-files"] }
//! ```
//!
//! ```
//! # #[cfg(feature = "spec-files")]
//! # fn main() -> Result<(), crossrole_client::spec_file::SpecFileError> {
//! # let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/security-audit.yaml");
//! use crossrole_client::spec_file;
//!
//! // examples/security-audit.yaml, the spec `cargo xtask demo` applies.
//! let spec = spec_file::load(&path)?;
//! assert_eq!(spec.name, "security-audit");
//! // Then `client.plan(spec.clone())`, `client.apply(spec, None)`, … as above.
//!
//! // A bad field is named by its path, as `crossrole validate -f` names it.
//! let error = spec_file::from_yaml("name: audit\nrole: {name: Audit, trust: {}, max_session_duration: 20h}\n")
//!     .unwrap_err();
//! assert!(error.violations().iter().any(|v| v.field == "role.max_session_duration"));
//! assert!(error.to_string().contains("\n  role.max_session_duration: must be whole seconds from 3600 (1h)"));
//! # Ok(()) }
//! # #[cfg(not(feature = "spec-files"))]
//! # fn main() {}
//! ```

mod error;
mod inventory;
mod operation;
#[cfg(feature = "spec-files")]
pub mod spec_file;

use std::{sync::Arc, time::Duration};

pub use crossrole_proto::v1 as proto;
pub use error::{Error, FieldViolation};
use futures::{Stream, StreamExt};
pub use operation::{OperationHandle, is_final};
use proto::{
    access_service_client::AccessServiceClient, audit_service_client::AuditServiceClient,
    binding_service_client::BindingServiceClient, operation_service_client::OperationServiceClient,
    organization_service_client::OrganizationServiceClient,
};
use rand::Rng;
use tonic::{
    Request, Status,
    metadata::AsciiMetadataValue,
    service::interceptor::InterceptedService,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

/// Largest message either way (plans of large organizations are big).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// TLS settings for [`ClientBuilder::tls`].
#[derive(Debug, Clone, Default)]
pub struct Tls {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    domain: Option<String>,
}

impl Tls {
    /// TLS with the system's roots.
    pub fn new() -> Tls {
        Tls::default()
    }

    /// Trust this CA (PEM) instead of the system's roots.
    pub fn ca_certificate(mut self, pem: impl Into<Vec<u8>>) -> Tls {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Present this client certificate and key (PEM): mutual TLS.
    pub fn identity(mut self, cert_pem: impl Into<Vec<u8>>, key_pem: impl Into<Vec<u8>>) -> Tls {
        self.identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// The server name to verify, when it differs from the endpoint's host.
    pub fn domain_name(mut self, name: impl Into<String>) -> Tls {
        self.domain = Some(name.into());
        self
    }
}

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    endpoint: String,
    token: Option<String>,
    tls: Option<Tls>,
    connect_timeout: Duration,
    request_timeout: Option<Duration>,
    retries: u32,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            endpoint: "http://127.0.0.1:50051".into(),
            token: None,
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: None,
            retries: 4,
        }
    }
}

impl ClientBuilder {
    /// The server, e.g. `http://127.0.0.1:50051` or `https://crossrole.example.com`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> ClientBuilder {
        self.endpoint = endpoint.into();
        self
    }

    /// The API token, sent as `authorization: Bearer <token>`. An empty token sends none.
    pub fn token(mut self, token: impl Into<String>) -> ClientBuilder {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Use TLS.
    pub fn tls(mut self, tls: Tls) -> ClientBuilder {
        self.tls = Some(tls);
        self
    }

    /// Connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.connect_timeout = timeout;
        self
    }

    /// Deadline of each unary call (default none: plans of large organizations take a while).
    pub fn request_timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.request_timeout = Some(timeout);
        self
    }

    /// Attempts after the first for retryable failures (default 4).
    pub fn retries(mut self, retries: u32) -> ClientBuilder {
        self.retries = retries;
        self
    }

    fn endpoint_config(&self) -> Result<Endpoint, Error> {
        let mut e = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| Error::Connect(format!("endpoint {:?}: {e}", self.endpoint)))?;
        e = e
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        if let Some(t) = self.request_timeout {
            e = e.timeout(t);
        }
        if let Some(tls) = &self.tls {
            let mut c = ClientTlsConfig::new();
            c = match &tls.ca_pem {
                Some(ca) => c.ca_certificate(Certificate::from_pem(ca)),
                None => c.with_native_roots(),
            };
            if let Some((cert, key)) = &tls.identity {
                c = c.identity(Identity::from_pem(cert, key));
            }
            if let Some(d) = &tls.domain {
                c = c.domain_name(d.clone());
            }
            e = e.tls_config(c)?;
        }
        Ok(e)
    }

    fn build(&self, channel: Channel) -> Result<Client, Error> {
        let token = match &self.token {
            None => None,
            Some(t) => Some(
                AsciiMetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| Error::Connect("the token has characters a header cannot carry".into()))?,
            ),
        };
        Ok(Client { channel, auth: Auth(token.map(Arc::new)), retries: self.retries })
    }

    /// Connects now. A connection that cannot be made is an [`Error::Connect`] that names the endpoint.
    pub async fn connect(self) -> Result<Client, Error> {
        let channel = self
            .endpoint_config()?
            .connect()
            .await
            .map_err(|e| Error::Connect(format!("{}: {}", self.endpoint, error::chain(&e))))?;
        self.build(channel)
    }

    /// Connects on first use (and reconnects when the connection drops).
    pub fn connect_lazy(self) -> Result<Client, Error> {
        let channel = self.endpoint_config()?.connect_lazy();
        self.build(channel)
    }
}

/// Adds the bearer token to every call.
#[derive(Clone)]
struct Auth(Option<Arc<AsciiMetadataValue>>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(t) = &self.0 {
            request.metadata_mut().insert("authorization", (**t).clone());
        }
        Ok(request)
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Auth(<redacted>)" } else { "Auth(none)" })
    }
}

type Svc = InterceptedService<Channel, Auth>;

/// Whose role's sessions [`Client::revoke`] revokes.
#[derive(Debug, Clone)]
pub enum RevokeTarget {
    /// A spec's.
    Spec(Box<proto::AccessSpec>),
    /// A binding's spec's, by the binding's name.
    Binding(String),
}

/// A client of crossroled. Cheap to clone; clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    channel: Channel,
    auth: Auth,
    retries: u32,
}

/// Retries `f` when the request did not reach crossroled (the connection failed), with capped, jittered
/// backoff. What crossroled answers is never retried here: when it says to try later (AWS throttled it beyond its
/// own retries), the error carries when ([`Error::retry_after`]), and the caller decides.
async fn retry<T, F, Fut>(retries: u32, mut f: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let mut attempt = 0;
    loop {
        match f().await {
            Err(e) if e.is_retryable() && attempt < retries => {
                attempt += 1;
                let ceiling = Duration::from_millis(200 * (1 << attempt.min(6)));
                let delay = rand::rng().random_range(Duration::from_millis(50)..=ceiling);
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// A field the API always sets: its absence is the server's fault, not an empty value.
fn required<T>(value: Option<T>, what: &str) -> Result<T, Error> {
    value.ok_or_else(|| Error::Other {
        code: tonic::Code::Internal,
        message: format!("the server's response has no {what}"),
    })
}

fn new_key() -> String {
    let n: u128 = rand::rng().random();
    format!("sdk-{n:032x}")
}

impl Client {
    /// A builder.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    fn organizations(&self) -> OrganizationServiceClient<Svc> {
        OrganizationServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn access(&self) -> AccessServiceClient<Svc> {
        AccessServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn operations(&self) -> OperationServiceClient<Svc> {
        OperationServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn audit(&self) -> AuditServiceClient<Svc> {
        AuditServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    fn bindings(&self) -> BindingServiceClient<Svc> {
        BindingServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }

    /// The organization: id, management account and OU tree.
    pub async fn describe_organization(&self, refresh: bool) -> Result<proto::Organization, Error> {
        let r = retry(self.retries, || async {
            Ok(self
                .organizations()
                .describe_organization(proto::DescribeOrganizationRequest { refresh })
                .await?
                .into_inner())
        })
        .await?;
        r.organization.ok_or_else(|| Error::Other {
            code: tonic::Code::Internal,
            message: "no organization in the response".into(),
        })
    }

    /// One page of the accounts a selector matches.
    pub async fn list_accounts(
        &self,
        request: proto::ListAccountsRequest,
    ) -> Result<proto::ListAccountsResponse, Error> {
        retry(self.retries, || async { Ok(self.organizations().list_accounts(request.clone()).await?.into_inner()) })
            .await
    }

    /// Every account a selector matches, page after page.
    pub fn accounts(
        &self,
        selector: proto::TargetSelector,
    ) -> impl Stream<Item = Result<proto::Account, Error>> + Send + 'static {
        let client = self.clone();
        async_stream::try_stream! {
            let mut token = String::new();
            loop {
                let page = client
                    .list_accounts(proto::ListAccountsRequest { selector: Some(selector.clone()), page_size: 1000, page_token: token.clone(), refresh: false })
                    .await?;
                for a in page.accounts {
                    yield a;
                }
                if page.next_page_token.is_empty() {
                    break;
                }
                token = page.next_page_token;
            }
        }
    }

    /// Validates a spec and runs the guardrails (no AWS call); returns the non-blocking findings.
    pub async fn validate(&self, spec: proto::AccessSpec) -> Result<proto::ValidateSpecResponse, Error> {
        retry(self.retries, || async {
            Ok(self.access().validate_spec(proto::ValidateSpecRequest { spec: Some(spec.clone()) }).await?.into_inner())
        })
        .await
    }

    /// What an apply would change, account by account, from crossroled's cached organization (read afresh for a
    /// name it does not have). Nothing changes in AWS.
    pub async fn plan(&self, spec: proto::AccessSpec) -> Result<proto::AccessPlan, Error> {
        self.plan_read(spec, proto::OrganizationRead::Cached).await
    }

    /// [`Client::plan`], the organization read as `read` says: [`proto::OrganizationRead::AsApply`] for a plan to
    /// confirm and apply at once ([`Client::apply_confirmed`]), so that the apply finds what the plan showed.
    pub async fn plan_read(
        &self,
        spec: proto::AccessSpec,
        read: proto::OrganizationRead,
    ) -> Result<proto::AccessPlan, Error> {
        let request =
            proto::PlanAccessRequest { spec: Some(spec), organization_read: read as i32, ..Default::default() };
        self.plan_request(request).await
    }

    /// A plan as `request` says — the former grants it gives up on (`release_former_grants`) too, and, for a token
    /// that may not read ExternalIds, the rotation of the spec's ExternalId in every existing role
    /// (`write_external_id`; the apply that carries the plan's fingerprint must ask the same, see
    /// [`Client::apply_request`]).
    pub async fn plan_request(&self, request: proto::PlanAccessRequest) -> Result<proto::AccessPlan, Error> {
        let r = retry(self.retries, || async { Ok(self.access().plan_access(request.clone()).await?.into_inner()) })
            .await?;
        required(r.plan, "plan")
    }

    /// Starts an apply of whatever the spec needs now. `idempotency_key`: the same key returns the same operation;
    /// `None` generates one, so that the SDK's own retries never start two operations.
    pub async fn apply(
        &self,
        spec: proto::AccessSpec,
        idempotency_key: Option<String>,
    ) -> Result<OperationHandle, Error> {
        self.apply_confirmed(spec, idempotency_key, String::new()).await
    }

    /// Starts an apply of the plan that was confirmed: `plan_fingerprint` is its [`proto::AccessPlan`]'s
    /// `fingerprint` (empty: none, as [`Client::apply`]). crossroled refuses it ([`Error::FailedPrecondition`],
    /// saying why, nothing done) when the spec or its target accounts are not the plan's, and leaves untouched
    /// each account whose changes are no longer the ones the plan showed.
    pub async fn apply_confirmed(
        &self,
        spec: proto::AccessSpec,
        idempotency_key: Option<String>,
        plan_fingerprint: String,
    ) -> Result<OperationHandle, Error> {
        let request = proto::ApplyAccessRequest {
            spec: Some(spec),
            idempotency_key: idempotency_key.unwrap_or_default(),
            plan_fingerprint,
            ..Default::default()
        };
        Ok(self.apply_request(request).await?.0)
    }

    /// Starts an apply as `request` says — its end too (`expires_at` or `expires_in`: at the end crossroled
    /// destroys the spec's access) — and returns it with the end crossroled holds, if any. An empty
    /// `idempotency_key` is generated, so that the SDK's own retries never start two operations.
    pub async fn apply_request(
        &self,
        mut request: proto::ApplyAccessRequest,
    ) -> Result<(OperationHandle, Option<crossrole_proto::prost_types::Timestamp>), Error> {
        if request.idempotency_key.is_empty() {
            request.idempotency_key = new_key();
        }
        let r = retry(self.retries, || async { Ok(self.access().apply_access(request.clone()).await?.into_inner()) })
            .await?;
        Ok((OperationHandle::new(self.clone(), required(r.operation, "operation")?), r.expires_at))
    }

    /// Starts a destroy of what the spec created (only roles crossrole owns).
    pub async fn destroy(
        &self,
        spec: proto::AccessSpec,
        idempotency_key: Option<String>,
    ) -> Result<OperationHandle, Error> {
        let key = idempotency_key.unwrap_or_else(new_key);
        let r = retry(self.retries, || async {
            Ok(self
                .access()
                .destroy_access(proto::DestroyAccessRequest { spec: Some(spec.clone()), idempotency_key: key.clone() })
                .await?
                .into_inner())
        })
        .await?;
        Ok(OperationHandle::new(self.clone(), required(r.operation, "operation")?))
    }

    /// Starts a revocation, for an incident: every session of the role of `target` (a spec, or a binding's) issued
    /// before now is denied in every account where crossrole has the spec placed, or in `account_ids` only (empty:
    /// all). The operation's results say, account by account, what was done.
    pub async fn revoke(
        &self,
        target: RevokeTarget,
        account_ids: Vec<String>,
        idempotency_key: Option<String>,
    ) -> Result<OperationHandle, Error> {
        let key = idempotency_key.unwrap_or_else(new_key);
        let (spec, binding_name) = match target {
            RevokeTarget::Spec(spec) => (Some(*spec), String::new()),
            RevokeTarget::Binding(name) => (None, name),
        };
        let r = retry(self.retries, || async {
            let request = proto::RevokeSessionsRequest {
                spec: spec.clone(),
                binding_name: binding_name.clone(),
                account_ids: account_ids.clone(),
                idempotency_key: key.clone(),
            };
            Ok(self.access().revoke_sessions(request).await?.into_inner())
        })
        .await?;
        Ok(OperationHandle::new(self.clone(), required(r.operation, "operation")?))
    }

    /// Checks each account's role and that the trusted side can assume it.
    pub async fn verify(&self, spec: proto::AccessSpec) -> Result<proto::VerifyAccessResponse, Error> {
        retry(self.retries, || async {
            Ok(self.access().verify_access(proto::VerifyAccessRequest { spec: Some(spec.clone()) }).await?.into_inner())
        })
        .await
    }

    /// Switch Role console links per account where crossrole applied the spec.
    pub async fn switch_role_links(&self, spec: proto::AccessSpec) -> Result<Vec<proto::SwitchRoleLink>, Error> {
        let request = proto::GetSwitchRoleLinksRequest { spec: Some(spec), ..Default::default() };
        Ok(self.links(request).await?.links)
    }

    /// Switch Role console links, with the target accounts left out and why (`include_unapplied` for every target).
    pub async fn links(
        &self,
        request: proto::GetSwitchRoleLinksRequest,
    ) -> Result<proto::GetSwitchRoleLinksResponse, Error> {
        retry(self.retries, || async { Ok(self.access().get_switch_role_links(request.clone()).await?.into_inner()) })
            .await
    }

    /// Profiles for every target account where crossrole applied the spec, with the accounts left out and why.
    pub async fn export_profiles(
        &self,
        request: proto::ExportProfilesRequest,
    ) -> Result<proto::ExportProfilesResponse, Error> {
        retry(self.retries, || async { Ok(self.access().export_profiles(request.clone()).await?.into_inner()) }).await
    }

    /// An operation.
    pub async fn operation(&self, id: &str) -> Result<proto::Operation, Error> {
        let r = retry(self.retries, || async {
            Ok(self
                .operations()
                .get_operation(proto::GetOperationRequest { operation_id: id.to_string() })
                .await?
                .into_inner())
        })
        .await?;
        required(r.operation, "operation")
    }

    /// A handle on an existing operation.
    pub fn operation_handle(&self, id: impl Into<String>) -> OperationHandle {
        OperationHandle::new(self.clone(), proto::Operation { id: id.into(), ..Default::default() })
    }

    /// One page of operations, newest first.
    pub async fn list_operations(
        &self,
        request: proto::ListOperationsRequest,
    ) -> Result<proto::ListOperationsResponse, Error> {
        retry(self.retries, || async { Ok(self.operations().list_operations(request.clone()).await?.into_inner()) })
            .await
    }

    /// One page of the audit log, newest first.
    pub async fn list_audit_events(
        &self,
        request: proto::ListAuditEventsRequest,
    ) -> Result<proto::ListAuditEventsResponse, Error> {
        retry(self.retries, || async { Ok(self.audit().list_audit_events(request.clone()).await?.into_inner()) }).await
    }

    /// One page of an operation's per-account results.
    pub async fn list_account_results(
        &self,
        request: proto::ListAccountResultsRequest,
    ) -> Result<proto::ListAccountResultsResponse, Error> {
        retry(self.retries, || async {
            Ok(self.operations().list_account_results(request.clone()).await?.into_inner())
        })
        .await
    }

    /// Asks an operation to stop.
    pub async fn cancel(&self, id: &str) -> Result<proto::Operation, Error> {
        let r = retry(self.retries, || async {
            Ok(self
                .operations()
                .cancel_operation(proto::CancelOperationRequest { operation_id: id.to_string() })
                .await?
                .into_inner())
        })
        .await?;
        required(r.operation, "operation")
    }

    /// The raw watch stream from `after_sequence` (no reconnection; see [`OperationHandle::events`]).
    pub async fn watch(
        &self,
        id: &str,
        after_sequence: u64,
    ) -> Result<impl Stream<Item = Result<proto::WatchOperationResponse, Error>> + Send + 'static, Error> {
        let stream = self
            .operations()
            .watch_operation(proto::WatchOperationRequest { operation_id: id.to_string(), after_sequence })
            .await?
            .into_inner();
        Ok(stream.map(|r| r.map_err(Error::from)))
    }

    /// Creates a binding.
    pub async fn create_binding(&self, binding: proto::Binding) -> Result<proto::Binding, Error> {
        let r =
            self.bindings().create_binding(proto::CreateBindingRequest { binding: Some(binding) }).await?.into_inner();
        required(r.binding, "binding")
    }

    /// Updates a binding (a new version); `expected_version` 0 skips the check.
    pub async fn update_binding(
        &self,
        binding: proto::Binding,
        expected_version: u64,
    ) -> Result<proto::Binding, Error> {
        let r = self
            .bindings()
            .update_binding(proto::UpdateBindingRequest { binding: Some(binding), expected_version })
            .await?
            .into_inner();
        required(r.binding, "binding")
    }

    /// A binding with its status.
    pub async fn binding(&self, name: &str) -> Result<proto::Binding, Error> {
        let r = retry(self.retries, || async {
            Ok(self.bindings().get_binding(proto::GetBindingRequest { name: name.to_string() }).await?.into_inner())
        })
        .await?;
        required(r.binding, "binding")
    }

    /// One page of bindings.
    pub async fn list_bindings(
        &self,
        request: proto::ListBindingsRequest,
    ) -> Result<proto::ListBindingsResponse, Error> {
        retry(self.retries, || async { Ok(self.bindings().list_bindings(request.clone()).await?.into_inner()) }).await
    }

    /// Deletes a binding; unless `keep_roles`, returns the destroy operation.
    pub async fn delete_binding(&self, name: &str, keep_roles: bool) -> Result<Option<OperationHandle>, Error> {
        let r = self
            .bindings()
            .delete_binding(proto::DeleteBindingRequest { name: name.to_string(), keep_roles })
            .await?
            .into_inner();
        Ok(r.operation.map(|o| OperationHandle::new(self.clone(), o)))
    }

    /// Reconciles a binding now.
    pub async fn reconcile_binding(&self, name: &str) -> Result<OperationHandle, Error> {
        let r = self
            .bindings()
            .reconcile_binding(proto::ReconcileBindingRequest { name: name.to_string() })
            .await?
            .into_inner();
        Ok(OperationHandle::new(self.clone(), required(r.operation, "operation")?))
    }
}
