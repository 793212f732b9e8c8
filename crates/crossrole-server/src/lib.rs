//! crossroled, the crossrole control plane: the v1 gRPC services over the engine and the journal.
//!
//! [`start`] opens the journal, resumes unfinished operations and serves the API with gRPC health (SERVING only
//! once the journal is open) and server reflection (behind a token, like every RPC but health). [`main`] adds
//! configuration, telemetry and signal handling around it. In-process tests call [`start`] with an in-memory
//! AWS on `127.0.0.1:0`.

pub mod auth;
pub mod bindings;
pub mod config;
pub mod error;
pub mod services;
pub mod state;
pub mod telemetry;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use crossrole_aws::{
    api::AwsConnector,
    calls::{CallPolicy, RetryPolicy},
    credentials::BrokerConfig,
    discovery::DiscoveryConfig,
};
use crossrole_engine::{Engine, EngineConfig};
use crossrole_proto::v1 as pb;
use crossrole_store::{Journal, SqliteJournal};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{
    Request, Status,
    service::interceptor::InterceptedService,
    transport::{Certificate, Identity, Server, ServerTlsConfig},
};

use crate::{auth::Tokens, config::Config, state::State};

/// Largest message either way (plans of large organizations are big).
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A running crossroled.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its engine.
    pub engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    shutdown_timeout: Duration,
}

impl RunningServer {
    /// Stops accepting, lets in-flight work stop cleanly (up to the shutdown timeout) and returns.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.task.await.context("server task")?;
        self.engine.shutdown(self.shutdown_timeout).await;
        served
    }

    /// Waits until the server stops by itself (it does not, unless serving fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")?
    }
}

/// Opens the journal, resumes unfinished operations and starts serving.
pub async fn start(config: &Config, aws: Arc<dyn AwsConnector>) -> anyhow::Result<RunningServer> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;

    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir: cannot create {}", config.data_dir.display()))?;
    let path = config.data_dir.join("journal.db");
    let journal: Arc<dyn Journal> =
        Arc::new(SqliteJournal::open(&path).with_context(|| format!("cannot open the journal at {}", path.display()))?);

    let calls = Arc::new(CallPolicy::new(config.aws.rates(), RetryPolicy::default()));
    let engine = Engine::new(
        aws,
        calls,
        journal.clone(),
        EngineConfig {
            max_concurrency: config.max_concurrency,
            event_buffer: config.watch_buffer,
            discovery: DiscoveryConfig { cache_ttl: config.aws.organization_cache_ttl, ..DiscoveryConfig::default() },
            broker: BrokerConfig {
                bootstrap_role: config.aws.bootstrap_role.clone(),
                bootstrap_role_path: config.aws.bootstrap_role_path.clone(),
                new_account_grace: config.aws.new_account_grace,
                ..BrokerConfig::default()
            },
            ..EngineConfig::default()
        },
    );
    let resumed = engine.resume().await?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished operations");
    }

    let state = State {
        engine: engine.clone(),
        tokens: Arc::new(Tokens::new(&config.tokens)),
        journal,
        reconcile_wake: Arc::new(tokio::sync::Notify::new()),
    };
    let reconciler = Arc::new(bindings::Reconciler::default());
    let reconcile_loop = tokio::spawn(reconciler.clone().run(state.clone(), config.reconcile_tick));
    let tokens = state.tokens.clone();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crossrole_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection")?;
    let reflection = InterceptedService::new(reflection, move |request: Request<()>| {
        tokens.check(request.metadata(), config::Scope::Read).map(|_| request).map_err(Status::from)
    });

    let mut builder = Server::builder().trace_fn(|req| tracing::info_span!("rpc", method = %req.uri().path()));
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
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            pb::organization_service_server::OrganizationServiceServer::new(services::organization::Organizations(
                state.clone(),
            ))
            .max_encoding_message_size(MAX_MESSAGE)
            .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            pb::access_service_server::AccessServiceServer::new(services::access::Access(state.clone()))
                .max_encoding_message_size(MAX_MESSAGE)
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(
            pb::operation_service_server::OperationServiceServer::new(services::operation::Operations(state.clone()))
                .max_encoding_message_size(MAX_MESSAGE)
                .max_decoding_message_size(MAX_MESSAGE),
        )
        .add_service(pb::binding_service_server::BindingServiceServer::new(services::binding::Bindings {
            state: state.clone(),
            reconciler: reconciler.clone(),
        }));

    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("listen: cannot bind {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    for name in [
        "crossrole.v1.OrganizationService",
        "crossrole.v1.AccessService",
        "crossrole.v1.OperationService",
        "crossrole.v1.BindingService",
    ] {
        health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                let _ = stop_rx.await;
                health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
            })
            .await
            .context("serving");
        reconcile_loop.abort();
        served
    });
    tracing::info!(%addr, tls = config.tls.is_some(), "crossroled listening");
    Ok(RunningServer { addr, engine, stop: Some(stop_tx), task, shutdown_timeout: config.shutdown_timeout })
}
