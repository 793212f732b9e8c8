//! crossrole rollouts: fan-out over accounts with bounded concurrency, failure tolerance, rate limits, retries,
//! cancellation and per-account events, on top of the journal.
//!
//! An operation (apply, destroy, a binding's reconcile) is written to the journal before it starts, runs in the
//! background, persists every account result and event as it goes, and resumes after a restart. Plans and
//! verifies take the same per-account path ([`account::examine`]) without writing, so a plan is exactly what an
//! apply would do.

mod account;
mod convert;
mod error;
mod events;
mod locks;
pub mod query;
mod rollout;
mod targets;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_aws::{
    api::AwsConnector,
    calls::{CallPolicy, CallStats},
    credentials::{BrokerConfig, CredentialBroker},
    discovery::{Discovery, DiscoveryConfig},
};
use crossrole_core::AccessSpec;
use crossrole_core::{ceiling::Ceiling, secret::Redactor};
use crossrole_proto::v1 as pb;
use crossrole_store::{Journal, JournalKey, NewOperation, OperationFilter, OperationRow};
use prost::Message;
use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use convert::{finding, is_final, opened, redacted, sealed};
pub use error::Error;
pub use locks::LockPolicy;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// What a second operation on a busy (account, role) does.
    pub lock_policy: LockPolicy,
    /// Ceiling on any operation's concurrency.
    pub max_concurrency: usize,
    /// Live events buffered per operation for watchers; slower watchers catch up from the journal.
    pub event_buffer: usize,
    /// Discovery settings.
    pub discovery: DiscoveryConfig,
    /// Credential broker settings.
    pub broker: BrokerConfig,
    /// Seals the secrets the journal keeps, and keys the marks that stand for them elsewhere.
    pub journal_key: JournalKey,
    /// The organization's ceiling on what crossrole may grant.
    pub ceiling: Ceiling,
}

impl Default for EngineConfig {
    /// Defaults, with a new random journal key (for tests: a journal written with it cannot be resumed by
    /// another engine).
    fn default() -> Self {
        EngineConfig {
            lock_policy: LockPolicy::Wait,
            max_concurrency: 256,
            event_buffer: 1024,
            discovery: DiscoveryConfig::default(),
            broker: BrokerConfig::default(),
            journal_key: JournalKey::generate().expect("the operating system has no random source"),
            ceiling: Ceiling::default(),
        }
    }
}

/// A request to start an operation.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Apply, destroy or reconcile.
    pub kind: pb::OperationKind,
    /// The validated spec.
    pub spec: AccessSpec,
    /// Client idempotency key.
    pub idempotency_key: Option<String>,
    /// Name of the caller's token.
    pub created_by: String,
    /// Binding that starts it.
    pub binding_name: Option<String>,
    /// Detect only.
    pub dry_run: bool,
}

struct Running {
    cancel: CancellationToken,
    events: broadcast::Sender<Arc<pb::OperationEvent>>,
    stats: Arc<CallStats>,
}

pub(crate) struct Inner {
    pub(crate) aws: Arc<dyn AwsConnector>,
    pub(crate) calls: Arc<CallPolicy>,
    pub(crate) discovery: Discovery,
    pub(crate) broker: CredentialBroker,
    pub(crate) journal: Arc<dyn Journal>,
    pub(crate) config: EngineConfig,
    pub(crate) locks: locks::RoleLocks,
    running: Mutex<HashMap<String, Running>>,
    pub(crate) shutdown: CancellationToken,
    tasks: TaskTracker,
    pub(crate) metrics: Mutex<Metrics>,
    pub(crate) redactor: Redactor,
}

/// Counters since start, for telemetry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Finished operations by final state name.
    pub operations: std::collections::BTreeMap<&'static str, u64>,
    /// Finished accounts by outcome name.
    pub accounts: std::collections::BTreeMap<&'static str, u64>,
}

impl Inner {
    pub(crate) fn running_stats(&self, op: &str) -> Arc<CallStats> {
        self.running.lock().ok().and_then(|r| r.get(op).map(|r| r.stats.clone())).unwrap_or_default()
    }
}

/// The rollout engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// An engine over `aws`, calling through `calls`, journaling to `journal`.
    pub fn new(
        aws: Arc<dyn AwsConnector>,
        calls: Arc<CallPolicy>,
        journal: Arc<dyn Journal>,
        config: EngineConfig,
    ) -> Engine {
        let discovery = Discovery::new(aws.organizations(), calls.clone(), config.discovery);
        let broker = CredentialBroker::new(aws.clone(), calls.clone(), config.broker.clone());
        let redactor = Redactor::new(config.journal_key.derive("crossrole redaction marks v1"));
        Engine {
            inner: Arc::new(Inner {
                aws,
                calls,
                discovery,
                broker,
                journal,
                config,
                locks: locks::RoleLocks::default(),
                running: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                metrics: Mutex::new(Metrics::default()),
                redactor,
            }),
        }
    }

    /// The call layer (for its global counters).
    pub fn calls(&self) -> &Arc<CallPolicy> {
        &self.inner.calls
    }

    /// Counters since start.
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Organizations discovery.
    pub fn discovery(&self) -> &Discovery {
        &self.inner.discovery
    }

    /// The partition.
    pub fn partition(&self) -> crossrole_core::Partition {
        self.inner.aws.partition()
    }

    /// The journal.
    pub fn journal(&self) -> &Arc<dyn Journal> {
        &self.inner.journal
    }

    /// Marks secrets in what leaves crossroled.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// The journal key (sealing secrets the journal keeps).
    pub fn journal_key(&self) -> &JournalKey {
        &self.inner.config.journal_key
    }

    /// Starts an operation (or returns the one its idempotency key already started). It runs in the background.
    pub async fn start(&self, mut request: StartRequest) -> Result<pb::Operation, Error> {
        // What grants access must fit under the ceiling; a destroy only takes access away.
        if request.kind != pb::OperationKind::Destroy {
            request.spec = self.admit(request.spec).await?;
        }
        let wire = pb::AccessSpec::from(&request.spec);
        let fingerprint = self.fingerprint(request.kind, request.dry_run, &wire.encode_to_vec());
        let id = uuid::Uuid::now_v7().to_string();
        let spec_bytes = sealed(&wire, &self.inner.config.journal_key, &id)?.encode_to_vec();
        let (row, created) = self
            .inner
            .journal
            .create_operation(NewOperation {
                id,
                kind: request.kind as i32,
                spec_name: request.spec.name.clone(),
                spec: spec_bytes,
                idempotency_key: request.idempotency_key.clone(),
                request_fingerprint: fingerprint,
                binding_name: request.binding_name.clone(),
                created_by: request.created_by.clone(),
                create_time: convert::now_ms(),
                state: pb::OperationState::Pending as i32,
                dry_run: request.dry_run,
            })
            .await
            .map_err(|e| match e {
                crossrole_store::StoreError::IdempotencyConflict(k) => {
                    Error::FailedPrecondition(format!("idempotency key {k:?} was already used for a different request"))
                }
                other => other.into(),
            })?;
        if created {
            self.spawn(row.clone(), request.spec);
        }
        self.operation(&row.id).await
    }

    fn spawn(&self, row: OperationRow, spec: AccessSpec) {
        let cancel = CancellationToken::new();
        let (events, _) = broadcast::channel(self.inner.config.event_buffer.max(16));
        let stats = Arc::new(CallStats::default());
        if let Ok(mut running) = self.inner.running.lock() {
            running.insert(
                row.id.clone(),
                Running { cancel: cancel.clone(), events: events.clone(), stats: stats.clone() },
            );
        }
        let (sink, writer) = events::EventSink::start(events::Writer {
            operation: row.id.clone(),
            last_sequence: row.last_sequence,
            journal: self.inner.journal.clone(),
            live: events,
            stats,
            base_calls: row.aws_calls.clone(),
            base_throttled: row.throttled_calls,
        });
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            let id = row.id.clone();
            let last_words = sink.clone();
            let ran = tokio::spawn(rollout::run(inner.clone(), row, spec, cancel, sink)).await;
            if let Err(e) = ran {
                // A bug, not an outcome: the operation ends FAILED and says where to look, rather than hang.
                tracing::error!(operation = id, error = %e, "the operation's task panicked");
                let message = "internal error: the operation stopped unexpectedly; see the crossroled log";
                last_words.emit(
                    "",
                    pb::operation_event::Event::StateChanged(pb::OperationStateChanged {
                        state: pb::OperationState::Failed as i32,
                        message: message.into(),
                        counts: Some(rollout::counts(&inner, &id).await),
                    }),
                );
                last_words.flush().await;
                let failed = pb::OperationState::Failed as i32;
                if let Err(e) =
                    inner.journal.set_operation_state(&id, failed, message, None, Some(convert::now_ms())).await
                {
                    tracing::error!(operation = id, error = %e, "cannot record the end of the operation");
                }
            }
            drop(last_words);
            let _ = writer.await;
            if let Ok(mut running) = inner.running.lock() {
                running.remove(&id);
            }
        });
    }

    /// Resumes the operations a previous run of crossroled left unfinished. Returns how many.
    pub async fn resume(&self) -> Result<usize, Error> {
        let finals = [
            pb::OperationState::Succeeded as i32,
            pb::OperationState::Failed as i32,
            pb::OperationState::Cancelled as i32,
        ];
        let rows = self.inner.journal.unfinished_operations(&finals).await?;
        let n = rows.len();
        for row in rows {
            let spec = pb::AccessSpec::decode(row.spec.as_slice()).map_err(|e| Error::Corrupt(e.to_string()))?;
            let spec = AccessSpec::try_from(&opened(&spec, &self.inner.config.journal_key, &row.id)?)?;
            tracing::info!(operation = row.id, "resuming an unfinished operation");
            let cancelling = row.state == pb::OperationState::Cancelling as i32;
            let id = row.id.clone();
            self.spawn(row, spec);
            if cancelling {
                self.cancel_running(&id);
            }
        }
        Ok(n)
    }

    fn cancel_running(&self, id: &str) -> bool {
        match self.inner.running.lock().ok().and_then(|r| r.get(id).map(|r| r.cancel.clone())) {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }

    /// Asks an operation to stop: nothing new starts, accounts in flight stop after their current call.
    pub async fn cancel(&self, id: &str) -> Result<pb::Operation, Error> {
        let row =
            self.inner.journal.get_operation(id).await?.ok_or_else(|| Error::NotFound(format!("operation {id}")))?;
        if is_final(row.state) {
            return Err(Error::FailedPrecondition(format!(
                "operation {id} is already {}",
                pb::OperationState::try_from(row.state).map(|s| s.as_str_name()).unwrap_or("finished")
            )));
        }
        self.inner
            .journal
            .set_operation_state(id, pb::OperationState::Cancelling as i32, "cancel requested", None, None)
            .await?;
        self.cancel_running(id);
        self.operation(id).await
    }

    /// Live events of a running operation; `None` when it is not running in this process.
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<Arc<pb::OperationEvent>>> {
        self.inner.running.lock().ok().and_then(|r| r.get(id).map(|r| r.events.subscribe()))
    }

    /// Journaled events after `after`, at most `limit`.
    pub async fn events(&self, id: &str, after: u64, limit: usize) -> Result<Vec<pb::OperationEvent>, Error> {
        self.inner
            .journal
            .read_events(id, after, limit)
            .await?
            .into_iter()
            .map(|e| pb::OperationEvent::decode(e.payload.as_slice()).map_err(|e| Error::Corrupt(e.to_string())))
            .collect()
    }

    /// An operation, with its counts.
    pub async fn operation(&self, id: &str) -> Result<pb::Operation, Error> {
        let row =
            self.inner.journal.get_operation(id).await?.ok_or_else(|| Error::NotFound(format!("operation {id}")))?;
        self.to_pb(row).await
    }

    async fn to_pb(&self, row: OperationRow) -> Result<pb::Operation, Error> {
        let spec = pb::AccessSpec::decode(row.spec.as_slice()).map_err(|e| Error::Corrupt(e.to_string()))?;
        let spec = opened(&spec, &self.inner.config.journal_key, &row.id)?;
        let counts = rollout::counts(&self.inner, &row.id).await;
        Ok(pb::Operation {
            id: row.id,
            kind: row.kind,
            state: row.state,
            spec: Some(redacted(&spec, &self.inner.redactor)),
            idempotency_key: row.idempotency_key.unwrap_or_default(),
            binding_name: row.binding_name.unwrap_or_default(),
            created_by: row.created_by,
            create_time: Some(convert::timestamp(row.create_time)),
            start_time: row.start_time.map(convert::timestamp),
            end_time: row.end_time.map(convert::timestamp),
            counts: Some(counts),
            message: row.message,
            aws_calls: row.aws_calls.into_iter().collect(),
            throttled_calls: row.throttled_calls,
            last_sequence: row.last_sequence,
            dry_run: row.dry_run,
        })
    }

    /// Operations, newest first; the token is opaque.
    pub async fn list_operations(
        &self,
        filter: &OperationFilter,
        page_size: usize,
        token: &str,
    ) -> Result<(Vec<pb::Operation>, String), Error> {
        let before = if token.is_empty() {
            None
        } else {
            Some(token.parse::<i64>().map_err(|_| {
                Error::Invalid(crossrole_core::Error::invalid("page_token", "not a token this server issued"))
            })?)
        };
        let (rows, next) = self.inner.journal.list_operations(filter, page_size, before).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(self.to_pb(r).await?);
        }
        Ok((out, next.map(|n| n.to_string()).unwrap_or_default()))
    }

    /// Per-account results in target order; the token is opaque.
    pub async fn account_results(
        &self,
        id: &str,
        outcomes: &[i32],
        page_size: usize,
        token: &str,
    ) -> Result<(Vec<pb::AccountResult>, String), Error> {
        if self.inner.journal.get_operation(id).await?.is_none() {
            return Err(Error::NotFound(format!("operation {id}")));
        }
        let after = if token.is_empty() {
            None
        } else {
            Some(token.parse::<u32>().map_err(|_| {
                Error::Invalid(crossrole_core::Error::invalid("page_token", "not a token this server issued"))
            })?)
        };
        let mut rows = self.inner.journal.list_accounts(id, outcomes, page_size + 1, after).await?;
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|r| r.index.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let results = rows
            .into_iter()
            .map(|r| pb::AccountResult::decode(r.result.as_slice()).map_err(|e| Error::Corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        Ok((results, next))
    }

    /// Waits until an operation is finished (for tests, benchmarks and the CLI's `--wait`).
    pub async fn wait(&self, id: &str) -> Result<pb::Operation, Error> {
        loop {
            let live = self.subscribe(id);
            let op = self.operation(id).await?;
            if is_final(op.state) {
                return Ok(op);
            }
            match live {
                Some(mut rx) => loop {
                    match rx.recv().await {
                        Ok(e) => {
                            if let Some(pb::operation_event::Event::StateChanged(s)) = &e.event
                                && is_final(s.state)
                            {
                                break;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                },
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Stops for shutdown: nothing new starts, accounts in flight stop after their current call, state is
    /// persisted, and unfinished operations stay unfinished so that the next start resumes them.
    pub async fn shutdown(&self, timeout: Duration) {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(timeout, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("operations did not stop within {timeout:?}; they resume at the next start");
        }
    }
}

impl Engine {
    /// The request's fingerprint, to tell a retry from a reuse of an idempotency key. It is keyed (it covers the
    /// ExternalId, and the journal keeps it), and stable across restarts with the same journal key.
    fn fingerprint(&self, kind: pb::OperationKind, dry_run: bool, spec: &[u8]) -> String {
        let mut data = vec![kind as i32 as u8, dry_run as u8];
        data.extend_from_slice(spec);
        self.inner.redactor.digest(&data)
    }
}
