//! Bearer-token authentication and scope checks.
//!
//! Tokens are compared by their SHA-256 in constant time; the plain token is never stored or logged. A missing or
//! unknown token is UNAUTHENTICATED; a known token without the scope is PERMISSION_DENIED.
//!
//! [`AuthLayer`] checks every request on its headers, before its body is read: a caller without the scope a
//! method needs ([`required_scope`]) is answered at once, so an unauthenticated client cannot make crossroled
//! buffer or decode anything. The services check again when they learn who is calling (defence in depth).

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use futures::future::{Either, Ready, ready};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::{Status, metadata::MetadataMap};

use crate::{
    config::{Scope, TokenConfig},
    error::ApiError,
};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
    /// Whether it may read ExternalIds (see [`TokenConfig::reveal_external_ids`]).
    pub reveal_external_ids: bool,
    /// The subject of the client certificate the call came with (mutual TLS), RFC 4514; empty for none.
    pub subject: String,
}

impl Caller {
    /// Who a plan or verification is for: a caller who may not read ExternalIds never learns whether the one it
    /// sent is the one in AWS.
    pub fn audience(&self) -> crossrole_engine::Audience {
        if self.reveal_external_ids { crossrole_engine::Audience::Trusted } else { crossrole_engine::Audience::Blind }
    }
}

/// The subject of the client certificate `request` came with (mutual TLS), as RFC 4514 writes it; empty when there
/// is none (or it does not decode: the TLS handshake verified it, this is only for the record).
pub fn client_subject<T>(request: &tonic::Request<T>) -> String {
    use x509_cert::der::Decode;
    let Some(certs) = request.peer_certs() else { return String::new() };
    let Some(leaf) = certs.first() else { return String::new() };
    match x509_cert::Certificate::from_der(leaf.as_ref()) {
        Ok(cert) => cert.tbs_certificate.subject.to_string(),
        Err(_) => String::new(),
    }
}

/// The configured tokens, replaced whole when they are read again ([`Tokens::replace`]: SIGHUP, or a change of the
/// tokens file), so that a removed token stops working without a restart.
#[derive(Debug, Default)]
pub struct Tokens {
    tokens: std::sync::RwLock<Vec<([u8; 32], Caller)>>,
}

/// Hex SHA-256 of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// From the configuration (hashes already validated).
    pub fn new(configs: &[TokenConfig]) -> Tokens {
        Tokens { tokens: std::sync::RwLock::new(Self::table(configs)) }
    }

    fn table(configs: &[TokenConfig]) -> Vec<([u8; 32], Caller)> {
        configs
            .iter()
            .filter_map(|t| {
                let bytes = hex::decode(&t.sha256).ok()?;
                let hash: [u8; 32] = bytes.try_into().ok()?;
                Some((
                    hash,
                    Caller {
                        name: t.name.clone(),
                        scope: t.scope,
                        reveal_external_ids: t.reveal_external_ids,
                        subject: String::new(),
                    },
                ))
            })
            .collect()
    }

    /// Replaces every token (already checked: [`crate::config::TokensSource::load`]); returns how many there are.
    pub fn replace(&self, configs: &[TokenConfig]) -> usize {
        let table = Self::table(configs);
        let n = table.len();
        if let Ok(mut tokens) = self.tokens.write() {
            *tokens = table;
        }
        n
    }

    /// Authenticates the request's bearer token and checks it has `needed`.
    pub fn check(&self, metadata: &MetadataMap, needed: Scope) -> Result<Caller, ApiError> {
        self.check_header(metadata.get("authorization").map(|v| v.as_bytes()), needed)
    }

    /// [`Tokens::check`] on the raw `authorization` header.
    pub fn check_header(&self, authorization: Option<&[u8]>, needed: Scope) -> Result<Caller, ApiError> {
        let caller = self.authenticate(authorization)?;
        if caller.scope < needed {
            return Err(ApiError::PermissionDenied(format!(
                "token {:?} has scope {}, this call needs {}",
                caller.name,
                caller.scope.as_str(),
                needed.as_str()
            )));
        }
        Ok(caller)
    }

    fn authenticate(&self, header: Option<&[u8]>) -> Result<Caller, ApiError> {
        let header = header.ok_or_else(|| {
            ApiError::Unauthenticated("missing bearer token (header `authorization: Bearer <token>`)".into())
        })?;
        let value = std::str::from_utf8(header)
            .map_err(|_| ApiError::Unauthenticated("malformed authorization header".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| ApiError::Unauthenticated("the authorization header must be `Bearer <token>`".into()))?;
        let digest: [u8; 32] = Sha256::digest(token.trim().as_bytes()).into();
        // Look at every token, so the time taken does not tell which one nearly matched.
        let mut found = None;
        let tokens = self.tokens.read().map_err(|_| ApiError::Unauthenticated("the tokens cannot be read".into()))?;
        for (hash, caller) in tokens.iter() {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(caller.clone());
            }
        }
        found.ok_or_else(|| ApiError::Unauthenticated("unknown token".into()))
    }
}

/// The scope a method needs (`/package.Service/Method`); `None` for gRPC health, which anyone may ask.
/// Methods not listed need `read`, and then tonic answers UNIMPLEMENTED.
pub fn required_scope(path: &str) -> Option<Scope> {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    Some(match (service, method) {
        ("grpc.health.v1.Health", _) => return None,
        ("crossrole.v1.AccessService", "PlanAccess") => Scope::Plan,
        ("crossrole.v1.AccessService", "ApplyAccess" | "DestroyAccess" | "RevokeSessions") => Scope::Apply,
        ("crossrole.v1.OperationService", "CancelOperation") => Scope::Apply,
        // An inventory and an import read AWS, as a plan does; they write nothing to it.
        ("crossrole.v1.InventoryService", "StartInventory" | "ImportRoles") => Scope::Plan,
        ("crossrole.v1.BindingService", "CreateBinding" | "UpdateBinding" | "DeleteBinding" | "ReconcileBinding") => {
            Scope::Apply
        }
        _ => Scope::Read,
    })
}

/// Whether a standby answers the method: reads of what the journal holds (operations, their results and events,
/// bindings), health and reflection. Everything else changes the journal or asks AWS: the writer's.
pub fn served_on_standby(path: &str) -> bool {
    let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
    matches!(
        (service, method),
        ("grpc.health.v1.Health", _)
            | ("grpc.reflection.v1.ServerReflection", _)
            | (
                "crossrole.v1.OperationService",
                "GetOperation" | "ListOperations" | "WatchOperation" | "ListAccountResults"
            )
            | ("crossrole.v1.BindingService", "GetBinding" | "ListBindings")
            | ("crossrole.v1.AuditService", "ListAuditEvents")
            | ("crossrole.v1.InventoryService", "ListInventory")
    )
}

/// Checks tokens on headers, before a request's body is read; on a standby, also refuses what only the writer
/// does.
#[derive(Clone)]
pub struct AuthLayer {
    tokens: Arc<Tokens>,
    standby: Option<Arc<str>>,
    failures: Option<FailedAuth>,
}

impl AuthLayer {
    /// A layer checking against `tokens`.
    pub fn new(tokens: Arc<Tokens>) -> AuthLayer {
        AuthLayer { tokens, standby: None, failures: None }
    }

    /// A standby's layer: besides the tokens, methods not [`served_on_standby`] are refused as UNAVAILABLE with
    /// `why` (which names the writer).
    pub fn standby(tokens: Arc<Tokens>, why: String) -> AuthLayer {
        AuthLayer { tokens, standby: Some(why.into()), failures: None }
    }

    /// Records every refused authentication (see [`FailedAuth`]).
    pub fn recording(mut self, failures: FailedAuth) -> AuthLayer {
        self.failures = Some(failures);
        self
    }
}

/// Refused authentications, logged (target `audit`) and written to the audit log, from a task of their own: the
/// check never waits for the journal. A flood is not a journal's worth of rows: at most [`FailedAuth::PER_WINDOW`]
/// are recorded in each 10 seconds, and the rest are counted in one entry.
#[derive(Clone)]
pub struct FailedAuth {
    sender: tokio::sync::mpsc::Sender<crossrole_store::AuditEntry>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl FailedAuth {
    /// Entries recorded in one window, at most.
    pub const PER_WINDOW: usize = 100;

    /// Records into `journal`.
    pub fn new(journal: Arc<dyn crossrole_store::Journal>) -> FailedAuth {
        let (sender, mut received) = tokio::sync::mpsc::channel::<crossrole_store::AuditEntry>(Self::PER_WINDOW);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = dropped.clone();
        tokio::spawn(async move {
            let window = std::time::Duration::from_secs(10);
            let mut began = tokio::time::Instant::now();
            let mut written = 0usize;
            while let Some(entry) = received.recv().await {
                if began.elapsed() >= window {
                    let skipped = counted.swap(0, std::sync::atomic::Ordering::Relaxed);
                    if skipped > 0 {
                        tracing::warn!(target: "audit", skipped, "more refused authentications, not recorded one by one");
                        let mut summary = entry.clone();
                        summary.outcome = format!("{skipped} more refused authentications in the last window");
                        summary.caller.clear();
                        let _ = journal.audit(summary).await;
                    }
                    began = tokio::time::Instant::now();
                    written = 0;
                }
                if written >= Self::PER_WINDOW {
                    counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    continue;
                }
                written += 1;
                tracing::warn!(
                    target: "audit",
                    caller = entry.caller,
                    method = entry.method,
                    outcome = entry.outcome,
                    request = entry.request,
                    "refused"
                );
                if let Err(e) = journal.audit(entry).await {
                    tracing::warn!(error = %e, "cannot record a refused authentication in the audit log");
                }
            }
        });
        FailedAuth { sender, dropped }
    }

    fn record(&self, method: &str, caller: Option<&str>, peer: Option<std::net::SocketAddr>, status: &Status) {
        let entry = crossrole_store::AuditEntry {
            id: 0,
            time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
            caller: caller.unwrap_or_default().to_string(),
            caller_subject: String::new(),
            method: method.trim_start_matches('/').rsplit('/').next().unwrap_or(method).to_string(),
            spec_name: String::new(),
            operation_id: String::new(),
            request: serde_json::json!({ "path": method, "peer": peer.map(|p| p.ip().to_string()) }).to_string(),
            outcome: format!("{:?}: {}", status.code(), status.message()),
        };
        if self.sender.try_send(entry).is_err() {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            tokens: self.tokens.clone(),
            standby: self.standby.clone(),
            failures: self.failures.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    tokens: Arc<Tokens>,
    standby: Option<Arc<str>>,
    failures: Option<FailedAuth>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for AuthService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        if let Some(scope) = required_scope(request.uri().path()) {
            let header = request.headers().get(http::header::AUTHORIZATION).map(|v| v.as_bytes());
            if let Err(e) = self.tokens.check_header(header, scope) {
                let status = Status::from(e);
                if let Some(failures) = &self.failures {
                    let caller = self.tokens.authenticate(header).ok().map(|c| c.name);
                    let peer = request
                        .extensions()
                        .get::<tonic::transport::server::TcpConnectInfo>()
                        .and_then(|i| i.remote_addr());
                    failures.record(request.uri().path(), caller.as_deref(), peer, &status);
                }
                // The body is never read; hyper resets the stream.
                return Either::Right(ready(Ok(status.into_http())));
            }
        }
        if let Some(why) = &self.standby
            && !served_on_standby(request.uri().path())
        {
            return Either::Right(ready(Ok(Status::from(ApiError::Unavailable(why.to_string())).into_http())));
        }
        Either::Left(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&[
            TokenConfig {
                name: "reader".into(),
                sha256: hash_token("r-token"),
                scope: Scope::Read,
                reveal_external_ids: false,
            },
            TokenConfig {
                name: "deployer".into(),
                sha256: hash_token("a-token"),
                scope: Scope::Apply,
                reveal_external_ids: false,
            },
        ])
    }

    fn md(value: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().unwrap());
        }
        m
    }

    #[test]
    fn scopes_and_failures() {
        let t = tokens();
        assert_eq!(t.check(&md(Some("Bearer r-token")), Scope::Read).unwrap().name, "reader");
        assert!(matches!(t.check(&md(Some("Bearer r-token")), Scope::Plan), Err(ApiError::PermissionDenied(_))));
        assert_eq!(t.check(&md(Some("Bearer a-token")), Scope::Plan).unwrap().name, "deployer");
        assert!(matches!(t.check(&md(Some("Bearer a-token")), Scope::Admin), Err(ApiError::PermissionDenied(_))));
        assert!(matches!(t.check(&md(None), Scope::Read), Err(ApiError::Unauthenticated(_))));
        assert!(matches!(t.check(&md(Some("Bearer nope")), Scope::Read), Err(ApiError::Unauthenticated(_))));
        assert!(matches!(t.check(&md(Some("Basic abc")), Scope::Read), Err(ApiError::Unauthenticated(_))));
    }

    #[test]
    fn every_method_needs_its_scope() {
        let cases = [
            ("/grpc.health.v1.Health/Check", None),
            ("/grpc.health.v1.Health/Watch", None),
            ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Some(Scope::Read)),
            ("/crossrole.v1.AccessService/ValidateSpec", Some(Scope::Read)),
            ("/crossrole.v1.AccessService/PlanAccess", Some(Scope::Plan)),
            ("/crossrole.v1.AccessService/ApplyAccess", Some(Scope::Apply)),
            ("/crossrole.v1.AccessService/DestroyAccess", Some(Scope::Apply)),
            ("/crossrole.v1.AccessService/RevokeSessions", Some(Scope::Apply)),
            ("/crossrole.v1.AccessService/ExportProfiles", Some(Scope::Read)),
            ("/crossrole.v1.OperationService/CancelOperation", Some(Scope::Apply)),
            ("/crossrole.v1.OperationService/WatchOperation", Some(Scope::Read)),
            ("/crossrole.v1.BindingService/CreateBinding", Some(Scope::Apply)),
            ("/crossrole.v1.BindingService/GetBinding", Some(Scope::Read)),
            ("/no.such.Service/Method", Some(Scope::Read)),
            ("garbage", Some(Scope::Read)),
        ];
        for (path, scope) in cases {
            assert_eq!(required_scope(path), scope, "{path}");
        }
    }

    #[test]
    fn a_standby_answers_reads_of_the_journal_only() {
        for path in [
            "/crossrole.v1.OperationService/GetOperation",
            "/crossrole.v1.OperationService/WatchOperation",
            "/crossrole.v1.OperationService/ListAccountResults",
            "/crossrole.v1.BindingService/ListBindings",
            "/grpc.health.v1.Health/Check",
        ] {
            assert!(served_on_standby(path), "{path}");
        }
        for path in [
            "/crossrole.v1.OperationService/CancelOperation",
            "/crossrole.v1.AccessService/ApplyAccess",
            "/crossrole.v1.AccessService/PlanAccess",
            "/crossrole.v1.OrganizationService/ListAccounts",
            "/crossrole.v1.BindingService/ReconcileBinding",
            "garbage",
        ] {
            assert!(!served_on_standby(path), "{path}");
        }
    }

    #[test]
    fn hashes() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
