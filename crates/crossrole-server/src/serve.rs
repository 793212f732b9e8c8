//! The gRPC router: crossrole's services, reflection and the token check, the same on a writer and on a standby
//! (whose [`AuthLayer`] refuses what only the writer does).
//!
//! The same services answer gRPC-Web (HTTP/1.1 or HTTP/2, `application/grpc-web*`), for a browser: tonic-web
//! translates each such call to gRPC before the token check and the services see it, and its answer back, so
//! there is one API, one token check and one set of limits. No cross-origin request is allowed (no CORS
//! headers): a page served from elsewhere cannot call crossroled from a user's browser. The web console's own
//! files are answered before all of that ([`crate::console`], outermost): they hold no data.

mod budget;

use anyhow::Context;
use crossrole_wire::pb;
use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Certificate, Identity, Server, ServerTlsConfig, server::Router},
};
use tonic_web::GrpcWebLayer;
use tower::layer::util::{Identity as NoLayer, Stack};

use crate::{
    MAX_RESPONSE,
    auth::AuthLayer,
    config::{self, Config},
    console::ConsoleLayer,
    services,
    state::State,
};

/// The layers every call passes: the console's files (outermost), gRPC-Web translated to gRPC, the token check,
/// then the budget of request bytes (a caller without a token takes none of it).
pub(crate) type Layers =
    Stack<budget::BudgetLayer, Stack<AuthLayer, Stack<GrpcWebLayer, Stack<ConsoleLayer, NoLayer>>>>;

/// HTTP/2 limits on every listener: streams per connection, and keep-alive pings that find a dead peer.
pub(crate) const MAX_STREAMS: u32 = 128;
/// How often an idle connection is pinged.
pub(crate) const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
pub(crate) const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// HTTP/2 flow control: the request bytes a connection may send (on one stream, and on all of its streams)
/// before crossroled reads them. They wait in memory outside the budget of request bytes while their request
/// waits for room in it, so they are kept small: at hyper's default (1 MiB), 64 connections each sending a request
/// of 4 MiB held 64 MiB the budget did not count (docs/benchmarks.md, part C). A quarter of that still reads a
/// request of 4 MiB at 5 MB/s over a round trip of 50 ms; answers are paced by the client's windows, not these.
pub(crate) const RECEIVE_WINDOW: u32 = 256 * 1024;

/// A server builder with the limits every listener has (the API's, the health listener's).
pub(crate) fn limited() -> Server {
    Server::builder()
        .initial_stream_window_size(RECEIVE_WINDOW)
        .initial_connection_window_size(RECEIVE_WINDOW)
        .max_concurrent_streams(MAX_STREAMS)
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .tcp_keepalive(Some(KEEPALIVE))
        .http2_max_header_list_size(64 * 1024)
}

/// The router for `state`'s services behind `auth`, with TLS as configured. gRPC health is added by the caller.
pub(crate) fn router(config: &Config, state: &State, auth: AuthLayer) -> anyhow::Result<Router<Layers>> {
    let tokens = state.tokens.clone();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crossrole_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection")?;
    let reflection = InterceptedService::new(reflection, move |request: Request<()>| {
        tokens.check(request.metadata(), config::Scope::Read).map(|_| request).map_err(Status::from)
    });

    let mut builder = limited().trace_fn(crate::telemetry::rpc_span);
    if let Some(tls) = &config.tls {
        let cert = std::fs::read(&tls.cert).with_context(|| format!("tls.cert: cannot read {}", tls.cert.display()))?;
        let key = std::fs::read(&tls.key).with_context(|| format!("tls.key: cannot read {}", tls.key.display()))?;
        let mut tls_config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &tls.client_ca {
            let ca = std::fs::read(ca).with_context(|| format!("tls.client_ca: cannot read {}", ca.display()))?;
            tls_config = tls_config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(tls_config).context("tls")?;
    }
    let router = builder
        .accept_http1(true)
        .layer(ConsoleLayer { enabled: config.console })
        .layer(GrpcWebLayer::new())
        .layer(auth.recording(crate::auth::FailedAuth::new(state.journal.clone())))
        .layer(budget::BudgetLayer::new(config.request_budget_bytes, config.max_request_bytes))
        .add_service(reflection)
        .add_service(
            pb::organization_service_server::OrganizationServiceServer::new(services::organization::Organizations(
                state.clone(),
            ))
            .max_encoding_message_size(MAX_RESPONSE)
            .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            pb::access_service_server::AccessServiceServer::new(services::access::Access(state.clone()))
                .max_encoding_message_size(MAX_RESPONSE)
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            pb::operation_service_server::OperationServiceServer::new(services::operation::Operations(state.clone()))
                .max_encoding_message_size(MAX_RESPONSE)
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            pb::audit_service_server::AuditServiceServer::new(services::audit::Audit(state.clone()))
                .max_encoding_message_size(MAX_RESPONSE)
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            pb::binding_service_server::BindingServiceServer::new(services::binding::Bindings(state.clone()))
                .max_encoding_message_size(MAX_RESPONSE)
                .max_decoding_message_size(config.max_request_bytes),
        )
        .add_service(
            pb::inventory_service_server::InventoryServiceServer::new(services::inventory::Inventory(state.clone()))
                .max_encoding_message_size(MAX_RESPONSE)
                .max_decoding_message_size(config.max_request_bytes),
        );
    Ok(router)
}
