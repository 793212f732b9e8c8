//! crossrole's engine: operations and the loops that keep access true.
//!
//! An operation (apply, destroy, a binding's reconcile) is written to the journal before it starts, runs in the
//! background ([`rollout`]: fan-out over its accounts with a pace, a failure tolerance and cancellation, their
//! results and events persisted as it goes) and resumes after a restart or on another replica. Plans and verifies
//! take the same per-account path ([`account::examine`]) without writing, so a plan is exactly what an apply would
//! do ([`read_only`]). Bindings ([`bindings`]) are specs kept true over time; the [`runtime`] runs their schedule,
//! the Organizations events reader, retention and the replicas' claims. AWS calls, their rate limits and their
//! retries are `crossrole_aws`'s; the journal and the coordination of replicas are `crossrole_store`'s.

mod account;
mod backoff;
pub mod bindings;
mod clock;
mod confirmed;
mod error;
mod events;
pub mod expiries;
mod idempotency;
pub mod inventory;
mod listings;
mod locks;
mod organization_cache;
mod pace;
pub mod pages;
mod read_only;
pub mod records;
mod replicas;
mod retention;
mod revoke;
mod rollout;
pub mod runtime;
mod secrets;
mod sweep;
mod targets;

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_aws::{
    api::AwsConnector,
    calls::{CallPolicy, CallStats},
    credentials::{BrokerConfig, CredentialBroker},
    discovery::{Discovery, DiscoveryConfig},
    fence::Fence,
};
use crossrole_core::{
    AccessSpec,
    ceiling::Ceiling,
    expiry::RawEnd,
    grant::former::Release,
    ops::{Operation, OperationEvent, OperationKind, OperationState},
    secret::Redactor,
    spec::RawSpec,
};
use crossrole_store::{Coordination, Journal, JournalKey, NewOperation, OperationRow, SingleNode, StateChange};
use tokio::sync::broadcast;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use clock::Clock;
pub use crossrole_core::ops::OrganizationRead;
pub use error::Error;
pub use read_only::{Audience, EXTERNAL_ID_NOT_COMPARED, EXTERNAL_ID_WRITTEN, ExternalIds};
pub use retention::{Expired, Retention};
pub use revoke::RevokeRequest;
pub use secrets::{opened, redacted, sealed};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
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
    /// The trace id of a span, where traces are exported (the server's telemetry knows it): recorded in each
    /// operation's span as `trace_id`, so that every log line of the operation names its trace.
    pub trace_id: Option<fn(&tracing::Span) -> Option<String>>,
    /// The time of day the ends of access that expires are measured by (the system's; tests move their own).
    pub clock: Clock,
    /// For tests on emulators only: the longest an `AWSRevokeOlderSessions` deny a change writes is kept, in
    /// seconds, whatever the role's sessions last (`None`, the default: until its longest session has expired).
    /// crossroled takes it from `emulator_testing.revocation_hold` and refuses it unless its AWS endpoints are an
    /// emulator's: against AWS, the sessions it should deny would outlive the deny.
    pub revocation_hold_secs: Option<u32>,
}

impl Default for EngineConfig {
    /// Defaults, with a new random journal key (for tests: a journal written with it cannot be resumed by
    /// another engine).
    fn default() -> Self {
        EngineConfig {
            max_concurrency: 256,
            event_buffer: 1024,
            discovery: DiscoveryConfig::default(),
            broker: BrokerConfig::default(),
            journal_key: JournalKey::generate().expect("the operating system has no random source"),
            ceiling: Ceiling::default(),
            trace_id: None,
            clock: Clock::system(),
            revocation_hold_secs: None,
        }
    }
}

/// A request to start an operation.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Apply, destroy or reconcile.
    pub kind: OperationKind,
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
    /// The only accounts to work on (`None`: every account the spec selects). Accounts outside it keep what
    /// they had, also in the grant.
    pub accounts: Option<BTreeSet<String>>,
    /// The plan the caller confirmed (an apply only): the apply is that plan, or nothing.
    pub confirmed: Option<ConfirmedPlan>,
    /// The end of the access as the caller asked for it (an apply only; the server keeps the end itself): part of
    /// the request, so that the same idempotency key with another end is refused. What was asked is compared, not
    /// the time it comes to — an `expires_in` retried later is the same request, its end the one the first computed.
    pub end: RawEnd,
    /// The trusted accounts whose former grants crossrole cannot read and the caller gives up on (an apply or a
    /// destroy; [`crossrole_core::grant::former::Release`], by `created_by`): never released otherwise. Refused,
    /// naming `release_former_grants`, for an account with no former grant of the spec or one that can be read.
    pub release_former_grants: BTreeSet<String>,
    /// What the operation does with the spec's ExternalId in the roles that exist (an apply; [`ExternalIds`]): for
    /// a caller who may not read ExternalIds, each role's own kept or, asked, the spec's written to every role — as
    /// its confirmed plan, which must have been planned alike, showed. Compared (the default) for one who may read
    /// them and for crossroled's own runs; an apply with a confirmed plan of another caller's takes the plan's.
    pub external_ids: ExternalIds,
}

impl StartRequest {
    /// A request of `kind` for `spec` by `created_by`, with nothing else: every account the spec selects, no
    /// idempotency key, binding, confirmed plan or end, not a dry run.
    pub fn new(kind: OperationKind, spec: AccessSpec, created_by: impl Into<String>) -> StartRequest {
        StartRequest {
            kind,
            spec,
            idempotency_key: None,
            created_by: created_by.into(),
            binding_name: None,
            dry_run: false,
            accounts: None,
            confirmed: None,
            end: RawEnd::default(),
            release_former_grants: BTreeSet::new(),
            external_ids: ExternalIds::Compared,
        }
    }
}

/// The plan a caller confirmed, for its apply to carry (see [`StartRequest::confirmed`]).
#[derive(Debug, Clone)]
pub struct ConfirmedPlan {
    /// The plan's fingerprint (`AccessPlan::fingerprint`), as it was given.
    pub fingerprint: String,
    /// Who asks for the apply: a fingerprint of a plan for a caller who may read ExternalIds is refused for one who
    /// may not.
    pub audience: Audience,
}

/// What an operation runs.
enum Work {
    /// A spec's rollout (apply, destroy, reconcile), with its targets when [`Engine::begin`] read and checked them
    /// against its confirmed plan.
    Rollout(Box<(AccessSpec, Option<targets::Resolved>)>),
    /// An inventory ([`inventory`]).
    Inventory,
    /// A revocation of a spec's sessions ([`revoke`]).
    Revoke(Box<AccessSpec>),
}

struct Running {
    cancel: CancellationToken,
    events: broadcast::Sender<Arc<OperationEvent>>,
    stats: Arc<CallStats>,
}

pub(crate) struct Inner {
    pub(crate) aws: Arc<dyn AwsConnector>,
    pub(crate) calls: Arc<CallPolicy>,
    pub(crate) discovery: Discovery,
    pub(crate) broker: CredentialBroker,
    pub(crate) journal: Arc<dyn Journal>,
    /// Who runs what, when replicas share the journal (apart from the journal, which only stores).
    pub(crate) coordination: Arc<dyn Coordination>,
    pub(crate) config: EngineConfig,
    pub(crate) locks: locks::RoleLocks,
    running: Mutex<HashMap<String, Running>>,
    pub(crate) shutdown: CancellationToken,
    tasks: TaskTracker,
    pub(crate) metrics: Arc<Mutex<Metrics>>,
    pub(crate) redactor: Redactor,
    /// Issues and reads the listings' page tokens.
    pub(crate) pages: pages::PageTokens,
    /// Stops every operation when this process may no longer write (its lease may have lapsed).
    fenced: Option<tokio::task::JoinHandle<()>>,
    /// Unfinished operations this process cannot read, passed over in its claims.
    unreadable: Mutex<Vec<String>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(task) = &self.fenced {
            task.abort();
        }
    }
}

/// Counters since start, for telemetry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    /// Finished operations by kind (`apply`, `destroy`, `reconcile`) and final state (`succeeded`, `failed`,
    /// `cancelled`).
    pub operations: std::collections::BTreeMap<(&'static str, &'static str), u64>,
    /// Finished accounts by outcome (`changed`, `failed`, …).
    pub accounts: std::collections::BTreeMap<&'static str, u64>,
    /// How long finished operations ran in this crossroled, by kind.
    pub durations: std::collections::BTreeMap<&'static str, Histogram>,
    /// How long the journal took to take each batch of an operation's events and account results; `None` before
    /// the first.
    pub journal_writes: Option<Histogram>,
}

/// A histogram of seconds, with Prometheus' cumulative buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// Upper bounds, seconds.
    pub bounds: &'static [f64],
    /// Observations at most each bound (cumulative).
    pub cumulative: Vec<u64>,
    /// Sum of all observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// Operation durations: from a second to two hours.
    pub const OPERATION_SECONDS: &'static [f64] =
        &[1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0];

    /// Journal writes: from a millisecond to five seconds.
    pub const JOURNAL_SECONDS: &'static [f64] =
        &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram { bounds, cumulative: vec![0; bounds.len()], sum: 0.0, count: 0 }
    }

    /// Records one observation.
    pub fn observe(&mut self, value: f64) {
        for (bound, n) in self.bounds.iter().zip(self.cumulative.iter_mut()) {
            if value <= *bound {
                *n += 1;
            }
        }
        self.sum += value;
        self.count += 1;
    }
}

impl Metrics {
    /// Records a finished operation.
    pub(crate) fn finished(&mut self, kind: &'static str, state: &'static str, seconds: f64) {
        *self.operations.entry((kind, state)).or_default() += 1;
        self.durations.entry(kind).or_insert_with(|| Histogram::new(Histogram::OPERATION_SECONDS)).observe(seconds);
    }

    /// Records how long a journal write took.
    pub(crate) fn journal_write(&mut self, seconds: f64) {
        self.journal_writes.get_or_insert_with(|| Histogram::new(Histogram::JOURNAL_SECONDS)).observe(seconds);
    }
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
    /// An engine over `aws`, calling through `calls`, journaling to `journal`, the one crossroled that runs it
    /// ([`SingleNode`]).
    pub fn new(
        aws: Arc<dyn AwsConnector>,
        calls: Arc<CallPolicy>,
        journal: Arc<dyn Journal>,
        config: EngineConfig,
    ) -> Engine {
        let coordination = Arc::new(SingleNode::new(journal.clone()));
        Engine::with_coordination(aws, calls, journal, coordination, config)
    }

    /// An engine over `aws`, calling through `calls`, journaling to `journal`, sharing the journal's work as
    /// `coordination` says (PostgreSQL's one writer, or its replicas).
    pub fn with_coordination(
        aws: Arc<dyn AwsConnector>,
        calls: Arc<CallPolicy>,
        journal: Arc<dyn Journal>,
        coordination: Arc<dyn Coordination>,
        config: EngineConfig,
    ) -> Engine {
        let discovery = Discovery::new(aws.organizations(), calls.clone(), config.discovery)
            .with_store(Arc::new(organization_cache::OrganizationCache::new(journal.clone())));
        let broker = CredentialBroker::new(aws.clone(), calls.clone(), config.broker.clone());
        let redactor = Redactor::new(config.journal_key.derive("crossrole redaction marks v1"));
        let pages = pages::PageTokens::new(config.journal_key.derive("crossrole page tokens v1"));
        let shutdown = CancellationToken::new();
        let fenced = coordination.fence().map(|lease| {
            let fence = Fence::lease(lease.until, lease.write_attempt);
            aws.fence_sockets(fence.clone());
            calls.fence_writes(fence);
            tokio::spawn(stop_when_fenced(calls.fence(), coordination.clone(), shutdown.clone()))
        });
        Engine {
            inner: Arc::new(Inner {
                aws,
                calls,
                discovery,
                broker,
                locks: locks::RoleLocks::new(coordination.clone()),
                journal,
                coordination,
                config,
                running: Mutex::new(HashMap::new()),
                shutdown,
                tasks: TaskTracker::new(),
                metrics: Arc::new(Mutex::new(Metrics::default())),
                redactor,
                pages,
                fenced,
                unreadable: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The call layer (for its global counters).
    pub fn calls(&self) -> &Arc<CallPolicy> {
        &self.inner.calls
    }

    /// Operations running in this crossroled now.
    pub fn running_count(&self) -> usize {
        self.inner.running.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Counters since start.
    pub fn metrics(&self) -> Metrics {
        self.inner.metrics.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Organizations discovery.
    pub fn aws(&self) -> &Arc<dyn AwsConnector> {
        &self.inner.aws
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

    /// How the crossroleds of the journal share its work.
    pub fn coordination(&self) -> &Arc<dyn Coordination> {
        &self.inner.coordination
    }

    /// Marks secrets in what leaves crossroled.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    /// Issues and reads the listings' page tokens (also for the listings the server pages itself).
    pub fn pages(&self) -> &pages::PageTokens {
        &self.inner.pages
    }

    /// The time of day by the engine's clock ([`EngineConfig::clock`]).
    pub fn now(&self) -> crossrole_core::ops::Millis {
        self.inner.config.clock.now()
    }

    /// The journal key (sealing secrets the journal keeps).
    pub fn journal_key(&self) -> &JournalKey {
        &self.inner.config.journal_key
    }

    /// Starts an operation (or returns the one its idempotency key already started, or, for a binding's reconcile,
    /// the one of the binding still running). It runs in the background.
    pub async fn start(&self, request: StartRequest) -> Result<Operation, Error> {
        Ok(self.begin(request).await?.0)
    }

    /// Like [`Engine::start`], and whether it started the operation (`false`: it returned one started before).
    pub(crate) async fn begin(&self, mut request: StartRequest) -> Result<(Operation, bool), Error> {
        // What grants access must fit under the ceiling; a destroy only takes access away.
        if request.kind != OperationKind::Destroy {
            request.spec = self.within_ceiling(request.spec).await?;
        }
        let raw = RawSpec::from(&request.spec);
        // What the operation does with the spec's ExternalId: as its confirmed plan did (refused, nothing done, for
        // a plan that took it otherwise than the request asks), else as the request asks; an apply's alone.
        request.external_ids.check(&request.spec)?;
        request.external_ids = match (&request.confirmed, request.kind) {
            (Some(c), OperationKind::Apply) => {
                let key = confirmed::key(&self.inner.config.journal_key);
                let plan = confirmed::Fingerprint::decode(&key, &c.fingerprint)?;
                plan.taken_for(request.external_ids, c.audience).map_err(Error::FailedPrecondition)?
            }
            (_, OperationKind::Apply) => request.external_ids,
            _ => ExternalIds::Compared,
        };
        let confirmed = match &request.confirmed {
            Some(c) if request.kind == OperationKind::Apply => Some(c.fingerprint.as_str()),
            Some(_) => {
                return Err(Error::FailedPrecondition("only an apply carries a confirmed plan".into()));
            }
            None => None,
        };
        let mut fingerprint = self.fingerprint(request.kind, request.dry_run, &raw);
        if let Some(plan) = confirmed {
            // Another confirmed plan is another request.
            fingerprint = self.inner.redactor.digest(format!("{fingerprint}\0{plan}").as_bytes());
        }
        if !request.end.is_empty() {
            // Another end, as asked, is another request; one without an end keeps the fingerprint it always had.
            let end = serde_json::to_string(&request.end).unwrap_or_default();
            fingerprint = self.inner.redactor.digest(format!("{fingerprint}\0end\0{end}").as_bytes());
        }
        if request.external_ids != ExternalIds::Compared {
            // Keeping each role's ExternalId, or writing the spec's to every role, is another request.
            let taken = request.external_ids.as_str();
            fingerprint = self.inner.redactor.digest(format!("{fingerprint}\0external_ids\0{taken}").as_bytes());
        }
        let release = Release { accounts: request.release_former_grants.clone(), by: request.created_by.clone() };
        if !release.is_empty() {
            let accounts = release.accounts.iter().map(String::as_str).collect::<Vec<_>>().join(",");
            fingerprint = self.inner.redactor.digest(format!("{fingerprint}\0release\0{accounts}").as_bytes());
            if !matches!(request.kind, OperationKind::Apply | OperationKind::Destroy) {
                return Err(Error::FailedPrecondition("only an apply or a destroy releases former grants".into()));
            }
            // Checked before anything is done — unless a retry of a request that started its operation (which may
            // have settled them since).
            if !self.started_before(&request).await? {
                rollout::former::check_release(&self.inner, &request.spec, &release).await?;
            }
        }
        // The apply of a confirmed plan finds its targets first, and is refused, with nothing done, when they are
        // not the plan's (unless it is a retry of a request that started its operation).
        let resolved = match &request.confirmed {
            Some(c) if !self.started_before(&request).await? => {
                Some(self.confirmed_targets(&request.spec, &raw, c).await?)
            }
            _ => None,
        };
        let id = uuid::Uuid::now_v7().to_string();
        let beside = records::Beside {
            accounts: request.accounts.as_ref(),
            confirmed,
            end: Some(&request.end),
            release: Some(&release),
            external_ids: request.external_ids,
        };
        let spec_bytes = records::encode_operation(&sealed(&raw, &self.inner.config.journal_key, &id)?, beside);
        let created = self
            .inner
            .journal
            .create_operation(NewOperation {
                id,
                kind: records::stored_kind(request.kind),
                spec_name: request.spec.name.clone(),
                spec: spec_bytes,
                idempotency_key: request.idempotency_key.clone(),
                request_fingerprint: fingerprint,
                binding_name: request.binding_name.clone(),
                created_by: request.created_by.clone(),
                create_time: crate::now_ms(),
                state: records::stored_state(OperationState::Pending),
                dry_run: request.dry_run,
            })
            .await;
        let (row, created) = match created {
            Err(crossrole_store::StoreError::IdempotencyConflict(_)) => {
                return Err(idempotency::reused(self, &request, &raw, confirmed).await);
            }
            other => other?,
        };
        if created {
            self.spawn(row.clone(), Work::Rollout(Box::new((request.spec, resolved))));
        }
        Ok((self.operation(&row.id).await?, created))
    }

    /// Runs an operation in the background.
    fn spawn(&self, row: OperationRow, work: Work) {
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
            metrics: self.inner.metrics.clone(),
        });
        let inner = self.inner.clone();
        self.inner.tasks.spawn(async move {
            let id = row.id.clone();
            let last_words = sink.clone();
            let ran = match work {
                Work::Rollout(work) => {
                    let (spec, resolved) = *work;
                    tokio::spawn(rollout::run(inner.clone(), row, spec, cancel, sink, resolved)).await
                }
                Work::Inventory => tokio::spawn(inventory::run(inner.clone(), row, cancel, sink)).await,
                Work::Revoke(spec) => tokio::spawn(revoke::run(inner.clone(), row, *spec, cancel, sink)).await,
            };
            if let Err(e) = ran {
                // A bug, not an outcome: the operation ends FAILED and says where to look, rather than hang.
                tracing::error!(operation = id, error = %e, "the operation's task panicked");
                let message = "internal error: the operation stopped unexpectedly; see the crossroled log";
                last_words.finish(OperationState::Failed, message, rollout::counts(&inner, &id).await);
                last_words.flush().await;
            }
            drop(last_words);
            let _ = writer.await;
            if let Ok(mut running) = inner.running.lock() {
                running.remove(&id);
            }
        });
    }

    /// Resumes the operations a previous run of crossroled left unfinished (on a shared journal: those whose
    /// replica is no longer alive, claimed for this one). Returns how many.
    pub async fn resume(&self) -> Result<usize, Error> {
        if self.inner.shutdown.is_cancelled() {
            return Ok(0);
        }
        let passed_over: Vec<String> = self.inner.unreadable.lock().map(|u| u.clone()).unwrap_or_default();
        let rows = self.inner.coordination.claim_operations(64, &passed_over).await?;
        let mut n = 0;
        for row in rows {
            if self.inner.running.lock().is_ok_and(|r| r.contains_key(&row.id)) {
                continue;
            }
            // An inventory has no spec: it reads its accounts back from its rows.
            if records::kind_of(row.kind) == Some(OperationKind::Inventory) {
                n += 1;
                tracing::info!(operation = row.id, "resuming an unfinished inventory");
                let (cancelling, id) = (row.state == records::stored_state(OperationState::Cancelling), row.id.clone());
                self.spawn(row, Work::Inventory);
                if cancelling {
                    self.cancel_running(&id);
                }
                continue;
            }
            // One this crossroled cannot read does not stop the round: it is left for one that can.
            let spec = match self.spec_of(&row).and_then(|raw| Ok(AccessSpec::try_from(&raw)?)) {
                Ok(spec) => spec,
                Err(e) => {
                    self.pass_over(&row.id, &e).await;
                    continue;
                }
            };
            n += 1;
            tracing::info!(operation = row.id, "resuming an unfinished operation");
            let cancelling = row.state == records::stored_state(OperationState::Cancelling);
            let id = row.id.clone();
            let work = match records::kind_of(row.kind) {
                Some(OperationKind::Revoke) => Work::Revoke(Box::new(spec)),
                _ => Work::Rollout(Box::new((spec, None))),
            };
            self.spawn(row, work);
            if cancelling {
                self.cancel_running(&id);
            }
        }
        Ok(n)
    }

    /// Passes over an unfinished operation this crossroled cannot read (a record a newer crossroled wrote, during a
    /// rolling upgrade; one damaged): it says why once, gives it back for a replica that can read it, and claims it
    /// no more. It is not failed: the crossroled that wrote it may well read it.
    async fn pass_over(&self, id: &str, why: &Error) {
        let first = self.inner.unreadable.lock().is_ok_and(|mut u| {
            let first = !u.iter().any(|u| u == id);
            if first {
                u.push(id.to_string());
            }
            first
        });
        if first {
            tracing::error!(
                operation = id,
                error = %why,
                "cannot read an unfinished operation; passing it over for a crossroled that can, and resuming the rest"
            );
        }
        if let Err(e) = self.inner.coordination.give_back(id).await {
            tracing::warn!(operation = id, error = %e, "cannot give back an operation passed over");
        }
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

    /// Asks an operation to stop: nothing new starts, accounts in flight stop after their current call. The cancel
    /// is written only over the state it read, so it never lands on an operation that has ended meanwhile (that one
    /// is FAILED_PRECONDITION, as if it had ended before).
    pub async fn cancel(&self, id: &str) -> Result<Operation, Error> {
        let cancelling = records::stored_state(OperationState::Cancelling);
        // The state moves at most from pending to running to an end: a few reads are enough.
        for _ in 0..4 {
            let row = self.inner.journal.get_operation(id).await?;
            let row = row.ok_or_else(|| Error::NotFound(format!("operation {id}")))?;
            let state = state(&row)?;
            if state.is_final() || row.end_time.is_some() {
                return Err(Error::FailedPrecondition(format!("operation {id} is already {}", state.as_str())));
            }
            let asked = row.state == cancelling
                || self
                    .inner
                    .journal
                    .change_state(id, StateChange::new(&[row.state], cancelling, "cancel requested"))
                    .await?;
            if asked {
                self.cancel_running(id);
                return self.operation(id).await;
            }
        }
        Err(Error::FailedPrecondition(format!("operation {id} kept changing state; ask again")))
    }

    /// Live events of a running operation; `None` when it is not running in this process.
    pub fn subscribe(&self, id: &str) -> Option<broadcast::Receiver<Arc<OperationEvent>>> {
        self.inner.running.lock().ok().and_then(|r| r.get(id).map(|r| r.events.subscribe()))
    }

    /// Journaled events after `after`, at most `limit`.
    pub async fn events(&self, id: &str, after: u64, limit: usize) -> Result<Vec<OperationEvent>, Error> {
        self.inner
            .journal
            .read_events(id, after, limit)
            .await?
            .into_iter()
            .map(|e| records::decode(&e.payload, &format!("event {} of operation {id}", e.sequence)))
            .collect()
    }

    /// An operation, with its counts.
    pub async fn operation(&self, id: &str) -> Result<Operation, Error> {
        let row =
            self.inner.journal.get_operation(id).await?.ok_or_else(|| Error::NotFound(format!("operation {id}")))?;
        self.view(row).await
    }

    /// The spec an operation runs, its ExternalId opened.
    fn spec_of(&self, row: &OperationRow) -> Result<RawSpec, Error> {
        let what = format!("the spec of operation {}", row.id);
        let spec: RawSpec = records::decode(&row.spec, &what)?;
        opened(&spec, &self.inner.config.journal_key, &row.id, &what)
    }

    async fn view(&self, row: OperationRow) -> Result<Operation, Error> {
        let counts = rollout::counts(&self.inner, &row.id).await;
        self.shown(row, counts)
    }

    /// An operation as callers see it, from its row and counts; unreadable when its record is.
    pub(crate) fn shown(&self, row: OperationRow, counts: crossrole_core::ops::Counts) -> Result<Operation, Error> {
        let spec = self.spec_of(&row)?;
        Ok(Operation {
            kind: records::kind_of(row.kind),
            state: state(&row)?,
            spec: redacted(&spec, &self.inner.redactor),
            idempotency_key: row.idempotency_key,
            binding_name: row.binding_name,
            created_by: row.created_by,
            create_time: row.create_time,
            start_time: row.start_time,
            end_time: row.end_time,
            counts,
            message: row.message,
            aws_calls: row.aws_calls,
            throttled_calls: row.throttled_calls,
            last_sequence: row.last_sequence,
            dry_run: row.dry_run,
            account_scope: records::operation_scope(&row.spec).map(|s| s.into_iter().collect()).unwrap_or_default(),
            id: row.id,
        })
    }

    /// Waits until an operation is finished (for tests, benchmarks and the CLI's `--wait`). One with an end time
    /// is finished, whatever its state says (an older crossroled could write a cancel over an end).
    pub async fn wait(&self, id: &str) -> Result<Operation, Error> {
        loop {
            let live = self.subscribe(id);
            let op = self.operation(id).await?;
            if op.state.is_final() || op.end_time.is_some() {
                return Ok(op);
            }
            match live {
                Some(mut rx) => loop {
                    match rx.recv().await {
                        Ok(e) if e.is_final() => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    }
                },
                None => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Stops for shutdown: nothing new starts, accounts in flight stop after their current call, state is
    /// persisted, and unfinished operations stay unfinished so that the next start resumes them. Whether every
    /// operation stopped within `timeout` (one that did not may still write to AWS until the fence).
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(timeout, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("operations did not stop within {timeout:?}; they resume at the next start");
            return false;
        }
        true
    }
}

/// Stops every operation, as a shutdown does, when the fence on AWS writes passes or the journal can no longer be
/// written: before any other crossroled may take them over. They stay unfinished; whoever takes the journal's
/// work over resumes them.
async fn stop_when_fenced(fence: Fence, coordination: Arc<dyn Coordination>, shutdown: CancellationToken) {
    let why = tokio::select! {
        _ = fence.lapsed() => "its lease may have lapsed: no renewal was confirmed in time".to_string(),
        why = coordination.writer_lost() => why,
    };
    tracing::error!(%why, "stopping every operation: this crossroled writes nothing more");
    shutdown.cancel();
}

impl Engine {
    /// Whether `request` is a retry of one that started its operation (its idempotency key, from the same caller,
    /// names an operation of its spec among the newest): that one is returned as it is, whatever changed since —
    /// and the caller changes nothing else the first request did (an apply's end stays the one it computed).
    pub async fn started_before(&self, request: &StartRequest) -> Result<bool, Error> {
        let Some(key) = &request.idempotency_key else { return Ok(false) };
        let filter = crossrole_store::OperationFilter { spec_name: request.spec.name.clone(), ..Default::default() };
        let (rows, _) = self.inner.journal.list_operations(&filter, 200, None).await?;
        Ok(rows.iter().any(|r| r.idempotency_key.as_ref() == Some(key) && r.created_by == request.created_by))
    }

    /// The targets of an apply of `spec` that carries the confirmed plan `c`, read as an apply reads them; refused
    /// (FAILED_PRECONDITION, saying why, nothing done) when the spec or the targets are not the plan's.
    async fn confirmed_targets(
        &self,
        spec: &AccessSpec,
        raw: &RawSpec,
        c: &ConfirmedPlan,
    ) -> Result<targets::Resolved, Error> {
        let key = confirmed::key(&self.inner.config.journal_key);
        let plan = confirmed::Fingerprint::decode(&key, &c.fingerprint)?;
        plan.check_spec(&key, raw).map_err(Error::FailedPrecondition)?;
        let ctx = crossrole_aws::calls::CallContext::new();
        let max_age = self.inner.discovery.config().apply_max_age;
        let resolved = targets::resolve(&self.inner, spec, false, &ctx, max_age, None, None).await?;
        let known = self.inner.discovery.cached_tree().await;
        plan.check_targets(&resolved.targets, &resolved.tree, known.as_deref()).map_err(Error::FailedPrecondition)?;
        Ok(resolved)
    }

    /// The request's fingerprint, to tell a retry from a reuse of an idempotency key. It is keyed (it covers the
    /// ExternalId, and the journal keeps it), and stable across restarts with the same journal key.
    fn fingerprint(&self, kind: OperationKind, dry_run: bool, spec: &RawSpec) -> String {
        let mut data = vec![records::stored_kind(kind).code() as u8, dry_run as u8];
        data.extend_from_slice(&records::encode(spec));
        self.inner.redactor.digest(&data)
    }
}

/// Which operations to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only in these states; empty for any.
    pub states: Vec<OperationState>,
    /// Only of this spec; empty for any.
    pub spec_name: String,
    /// Only started by this binding; empty for any.
    pub binding_name: String,
}

/// An operation's state from its row.
fn state(row: &OperationRow) -> Result<OperationState, Error> {
    records::state_of(row.state).ok_or_else(|| {
        Error::Corrupt(format!("operation {} has state {}, unknown to this crossroled", row.id, row.state.code()))
    })
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> crossrole_core::ops::Millis {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
