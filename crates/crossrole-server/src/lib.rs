//! crossroled, the crossrole control plane: the v1 gRPC services over the engine and the journal.
//!
//! [`start`] locks the data directory (one crossroled per journal), opens the journal — refusing a damaged one, or
//! a key it is not written under, before anything is written — resumes unfinished operations and serves the API
//! with gRPC health (SERVING only once the journal is open) and server reflection (behind a token, like every RPC
//! but health). Tokens are checked on headers, before a request body is read, and request bodies are limited in
//! size; they are read again when the tokens file changes ([`reload`]), and on SIGHUP. `main.rs` adds
//! configuration, telemetry and signal handling around it. In-process tests call [`start`] with an in-memory AWS
//! on `127.0.0.1:0`.
//!
//! The loops crossroled runs besides the API — the bindings' schedule, the Organizations events reader, retention,
//! and on a shared journal the claims of what dead replicas left — are the engine's runtime
//! ([`crossrole_engine::runtime::Runtime`]): `start` builds it and serves. On a journal several replicas share
//! (`journal_shared`), every replica serves everything, and the loops only one may run wait until this replica
//! leads (gRPC health [`SCHEDULER`]). At a clean stop it leaves the replicas, so that the others take its
//! unfinished operations at once.

pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod health;
mod journal_key;
mod metrics;
pub mod reload;
mod serve;
pub mod services;
mod standby;
pub mod state;
pub mod telemetry;
pub mod upgrade;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use crossrole_aws::{api::AwsConnector, calls::CallPolicy, credentials::BrokerConfig, discovery::DiscoveryConfig};
use crossrole_engine::{
    Engine, EngineConfig,
    bindings::Bindings,
    runtime::{QueueConfig, Runtime, RuntimeConfig},
};
use crossrole_store::{Coordination, DataDirLock, Journal, JournalKey, SingleNode, SqliteJournal};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;

use crate::{
    auth::{AuthLayer, Tokens},
    config::{Config, JournalConfig},
    reload::TokenReloader,
    state::State,
};

/// Largest response (plans of large organizations are big). Requests are limited by `max_request_bytes`.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A running crossroled.
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the plaintext health listener listens, if configured.
    pub health_addr: Option<SocketAddr>,
    /// Where Prometheus metrics are served, if configured.
    pub metrics_addr: Option<SocketAddr>,
    /// Its engine.
    pub engine: Engine,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    shutdown_timeout: Duration,
    /// Held until the engine has stopped.
    lock: Option<DataDirLock>,
    /// The health-only listener: it goes when the server goes.
    _health: Option<AbortOnDrop>,
    /// The loops; stopped before the engine.
    runtime: Option<Runtime>,
    /// Reads the tokens again (SIGHUP; the tokens file is watched on its own).
    reloader: Arc<TokenReloader>,
}

/// A task that ends when this is dropped (a start that fails part-way, or a server that stops, leaves no listener).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl RunningServer {
    /// Stops accepting, lets in-flight work stop cleanly (up to the shutdown timeout) and returns.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let served = self.task.await.context("server task")?;
        if let Some(runtime) = self.runtime.take() {
            runtime.stop().await;
        }
        // A replica of a shared journal leaves: the others take what it left unfinished at once, not after its lease
        // — but only once its operations have stopped. One still running may still write to AWS: then the others
        // wait for its lease (and a writer's successor waits one), by which time its fence has closed.
        if !self.engine.shutdown(self.shutdown_timeout).await {
            tracing::warn!(
                "operations still running: leaving the journal to the lease, not handing their work over now"
            );
        } else if let Err(e) = self.engine.coordination().release().await {
            tracing::warn!(error = %e, "cannot leave the journal's replicas; the others wait for this one's lease");
        }
        drop(self.lock.take());
        served
    }

    /// What reads the API tokens again, for SIGHUP (a change of the tokens file is picked up on its own).
    pub fn tokens(&self) -> Arc<TokenReloader> {
        self.reloader.clone()
    }

    /// Waits until the server stops by itself (it does not, unless serving fails).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.context("server task")?
    }
}

/// The gRPC health service name that answers SERVING while the process is up, ready or not (a liveness probe's).
pub const LIVENESS: &str = "liveness";

pub use standby::READS;

/// The gRPC health service name that answers SERVING on the replica running the work only one replica does (the
/// binding scheduler, the Organizations events reader, retention): on a shared journal, one of the replicas;
/// alone, this one.
pub const SCHEDULER: &str = "scheduler";

/// Opens the journal (a standby first waits for it), resumes unfinished operations, starts the runtime's loops and
/// serves.
pub async fn start(config: &Config, aws: Arc<dyn AwsConnector>) -> anyhow::Result<RunningServer> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    // "liveness": the process is up, also while a standby waits for the journal (not ready, not to be restarted).
    health.set_service_status(LIVENESS, tonic_health::ServingStatus::Serving).await;
    // The health-only listener first, so that probes see a standby waiting for the journal as alive.
    let (health_addr, health_task) = health_listener(config, &health_service).await?;

    let lock = private_data_dir(config)?;
    let configured = journal_key::configured(config)?;
    let (journal, coordination, journal_key) =
        open_journal(config, &aws, &configured, &health, &health_service).await?;
    let engine = engine(config, aws.clone(), journal.clone(), coordination.clone(), journal_key);
    if coordination.shares_work() {
        engine.calls().set_share(coordination.live_replicas().await.unwrap_or(1));
    }
    let resumed = engine.resume().await?;
    if resumed > 0 {
        tracing::info!(resumed, "resumed unfinished operations");
    }

    let bindings = Bindings::new(engine.clone());
    let runtime = Runtime::start(engine.clone(), bindings.clone(), runtime_config(config));
    let tokens = Arc::new(Tokens::new(&config.tokens));
    let reloader = Arc::new(TokenReloader::new(config.tokens_source.clone(), tokens.clone(), journal.clone()));
    let watching = AbortOnDrop(tokio::spawn(reloader.clone().watch(reload::POLL)));
    let state = State {
        engine: engine.clone(),
        tokens,
        journal,
        bindings,
        org_events: runtime.event_counters(),
        watchers: Default::default(),
    };
    // gRPC health `scheduler`: SERVING on the replica that runs the loops only one replica may run.
    let scheduler = AbortOnDrop(tokio::spawn({
        let (mut leading, health) = (runtime.leading(), health.clone());
        async move {
            if leading.wait_for(|l| *l).await.is_ok() {
                health.set_service_status(SCHEDULER, tonic_health::ServingStatus::Serving).await;
            }
        }
    }));
    let (metrics_addr, metrics_task) = match config.metrics_listen {
        Some(at) => {
            let (addr, task) = metrics::serve(at, state.clone()).await?;
            (Some(addr), Some(AbortOnDrop(task)))
        }
        None => (None, None),
    };
    let router =
        serve::router(config, &state, AuthLayer::new(state.tokens.clone()))?.add_service(health_service.clone());
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("listen: cannot bind {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    for name in [
        READS,
        "crossrole.v1.OrganizationService",
        "crossrole.v1.AccessService",
        "crossrole.v1.OperationService",
        "crossrole.v1.BindingService",
        "crossrole.v1.AuditService",
        "crossrole.v1.InventoryService",
    ] {
        health.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let (lost_tx, mut lost) = tokio::sync::watch::channel(None);
    let signal = stop_signal(stop_rx, coordination, health, lost_tx);
    let serving = router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);
    let grace = config.shutdown_timeout;
    let task = tokio::spawn(async move {
        let served = tokio::select! {
            served = serving => served.context("serving"),
            // A crossroled that lost the journal does not wait for its clients: an open Watch or Health stream
            // must not keep it alive past the grace.
            _ = async {
                let _ = lost.wait_for(Option::is_some).await;
                tokio::time::sleep(grace).await;
            } => Ok(()),
        };
        drop((scheduler, metrics_task, watching));
        let reason = lost.borrow().clone();
        match reason {
            Some(reason) => Err(anyhow::anyhow!("stopped: {reason}")),
            None => served,
        }
    });
    tracing::info!(%addr, tls = config.tls.is_some(), "crossroled listening");
    Ok(RunningServer {
        addr,
        health_addr,
        metrics_addr,
        engine,
        stop: Some(stop_tx),
        task,
        shutdown_timeout: config.shutdown_timeout,
        lock: Some(lock),
        _health: health_task,
        runtime: Some(runtime),
        reloader,
    })
}

/// What the runtime runs, from the configuration.
fn runtime_config(config: &Config) -> RuntimeConfig {
    RuntimeConfig {
        reconcile_tick: config.reconcile_tick,
        retention: config.retention,
        organization_events: config
            .organization_events
            .as_ref()
            .map(|e| QueueConfig { queue_url: e.queue_url.clone(), wait: e.wait }),
        share_every: Duration::from_secs(1),
    }
}

/// The plaintext health-only listener, if configured.
async fn health_listener(
    config: &Config,
    service: &tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) -> anyhow::Result<(Option<SocketAddr>, Option<AbortOnDrop>)> {
    let Some(at) = config.health_listen else { return Ok((None, None)) };
    let listener = TcpListener::bind(at).await.with_context(|| format!("health_listen: cannot bind {at}"))?;
    let bound = listener.local_addr()?;
    let service = service.clone();
    let task = tokio::spawn(async move {
        let service = service.max_decoding_message_size(4096);
        let served = serve::limited().add_service(service).serve_with_incoming(TcpListenerStream::new(listener)).await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the health listener stopped");
        }
    });
    tracing::info!(addr = %bound, "health (plaintext, gRPC health only) listening");
    Ok((Some(bound), Some(AbortOnDrop(task))))
}

/// Opens the journal the configuration names (a standby on PostgreSQL first waits for it, answering reads), checks
/// that the journal key is the one it is written under before anything is written, and upgrades it to crossrole's
/// own records if it is older; with how its crossroleds share its work (this one alone on SQLite, it holds the data
/// directory; PostgreSQL's one writer or one of its replicas) and the key.
async fn open_journal(
    config: &Config,
    aws: &Arc<dyn AwsConnector>,
    configured: &journal_key::Configured,
    health: &tonic_health::server::HealthReporter,
    health_service: &tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) -> anyhow::Result<(Arc<dyn Journal>, Arc<dyn Coordination>, JournalKey)> {
    let (journal, coordination, at): (Arc<dyn Journal>, Arc<dyn Coordination>, String) = match &config.journal {
        JournalConfig::Sqlite => {
            let path = config.data_dir.join("journal.db");
            let journal: Arc<dyn Journal> = Arc::new(
                SqliteJournal::open(&path).with_context(|| format!("cannot open the journal at {}", path.display()))?,
            );
            (journal.clone(), Arc::new(SingleNode::new(journal)), path.display().to_string())
        }
        JournalConfig::Postgres { url, options } => {
            let at = crossrole_store::redacted_url(url);
            let health_for_reads = health_service.clone();
            let journal = standby::open(url, options.clone(), config, aws, configured, health, move |r| {
                r.add_service(health_for_reads.clone())
            })
            .await
            .with_context(|| format!("cannot open the journal at {at}"))?;
            tracing::info!(journal = %at, "journal on PostgreSQL");
            let coordination = journal.coordination();
            (Arc::new(journal), coordination, at)
        }
    };
    let journal_key = configured.settle(journal.as_ref(), &at, true).await?;
    if let Some(n) =
        upgrade::upgrade(journal.as_ref()).await.with_context(|| format!("cannot upgrade the journal at {at}"))?
    {
        tracing::info!(payloads = n, "upgraded the journal to crossrole's own records");
    }
    Ok((journal, coordination, journal_key))
}

/// Resolves when serving must stop: when asked, or when the journal can no longer be written (then crossroled must
/// not go on: liveness fails at once, the engine has stopped its operations, and the process stops with the
/// reason, sent on `lost`, within the shutdown grace; its supervisor restarts it, to take the journal again or to
/// wait).
async fn stop_signal(
    stop: oneshot::Receiver<()>,
    coordination: Arc<dyn Coordination>,
    health: tonic_health::server::HealthReporter,
    lost: tokio::sync::watch::Sender<Option<String>>,
) {
    tokio::select! {
        _ = stop => {}
        reason = coordination.writer_lost() => {
            tracing::error!(%reason, "stopping: the journal can no longer be written");
            // Not alive any more, whatever keeps the process up: a liveness probe restarts it.
            health.set_service_status(LIVENESS, tonic_health::ServingStatus::NotServing).await;
            lost.send_replace(Some(reason));
        }
    }
    health.set_service_status("", tonic_health::ServingStatus::NotServing).await;
}

/// The engine over `journal`, its work shared as `coordination` says, as configured.
pub(crate) fn engine(
    config: &Config,
    aws: Arc<dyn AwsConnector>,
    journal: Arc<dyn Journal>,
    coordination: Arc<dyn Coordination>,
    journal_key: JournalKey,
) -> Engine {
    let calls = Arc::new(CallPolicy::new(config.aws.rates(), config.aws.retry()));
    Engine::with_coordination(
        aws,
        calls,
        journal,
        coordination,
        EngineConfig {
            max_concurrency: config.max_concurrency,
            event_buffer: config.watch_buffer,
            discovery: DiscoveryConfig {
                cache_ttl: config.aws.organization_cache_ttl,
                apply_max_age: config.aws.apply_organization_max_age,
                tags_max_age: config.aws.organization_tags_max_age,
                reconcile_max_age: config.organization_events.as_ref().map_or(Duration::ZERO, |e| e.resync),
                ..DiscoveryConfig::default()
            },
            broker: BrokerConfig {
                bootstrap_role: config.aws.bootstrap_role.clone(),
                bootstrap_role_path: config.aws.bootstrap_role_path.clone(),
                new_account_grace: config.aws.new_account_grace,
                ..BrokerConfig::default()
            },
            journal_key,
            ceiling: config.ceiling.clone(),
            trace_id: Some(telemetry::trace_id),
            clock: crossrole_engine::Clock::system(),
            revocation_hold_secs: config.revocation_hold.map(|h| h.as_secs().min(u64::from(u32::MAX)) as u32),
        },
    )
}

/// Creates the data directory (owner only) and locks it for this process.
fn private_data_dir(config: &Config) -> anyhow::Result<DataDirLock> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("data_dir: cannot create {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("data_dir: cannot make {} private (0700)", dir.display()))?;
        }
    }
    Ok(DataDirLock::acquire(dir)?)
}
