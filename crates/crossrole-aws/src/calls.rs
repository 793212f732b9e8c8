//! The call layer: every AWS call goes through here, and nowhere else rate-limits or retries.
//!
//! - a token bucket per quota, where AWS keeps it ([`Quota`]: IAM per account, STS per calling account,
//!   Organizations per organization), keeps crossrole under the rate it is configured for; each adapts on its own,
//!   so an account whose IAM is throttled (another tool hammering it) slows nothing else;
//! - throttling and transient failures are retried with capped exponential backoff and full jitter; permanent
//!   errors return at once with their AWS code;
//! - a write whose response may have been lost (a transient failure after the request left) is checked before it
//!   is sent again ([`CallPolicy::call_write`]): if its effect is there, it is done, and a create does not run into
//!   its own `EntityAlreadyExists`;
//! - waits for AWS's eventual consistency (a new role not yet assumable, a new account's bootstrap role not yet
//!   there) are retries of the same kind, with their own deadline ([`Patience`]), not loops of their own;
//! - no write attempt leaves once this process's lease may have lapsed ([`crate::fence`]); each has a time limit;
//! - every attempt is counted by `service:Operation`, globally and per operation, and each retry is reported to
//!   an observer (the engine turns it into a `CallRetried` event).
//!
//! Sleeps use `tokio::time`, so tests run it under `tokio::time::pause()` without waiting.

use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use rand::Rng;
use tokio::time::Instant;

use crate::{
    error::{AwsError, ErrorKind, Service},
    fence::Fence,
};

/// A rate: `per_second` sustained, `burst` at once. A rate of 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Calls per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate { per_second: 0.0, burst: 0 };
}

/// Rates per quota: each applies to every quota of its service on its own (IAM's to each account, STS's to each
/// calling account).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Organizations, for the organization.
    pub organizations: Rate,
    /// IAM, per account (its quota is the account's, shared by every tool working in it).
    pub iam: Rate,
    /// STS, per calling account (AssumeRole and GetCallerIdentity count against the caller, in its region).
    pub sts: Rate,
}

impl Default for Rates {
    /// Conservative defaults under AWS's quotas: Organizations' 10 requests per second per organization (less for
    /// some calls), IAM's per-account request rate (undocumented; 10 per second stays clear of it even when other
    /// tools share the account), STS's 600 AssumeRole per second per account and region (a sixth of it, for the
    /// account crossroled runs in is rarely its only caller).
    fn default() -> Self {
        Rates {
            organizations: Rate { per_second: 8.0, burst: 10 },
            iam: Rate { per_second: 10.0, burst: 10 },
            sts: Rate { per_second: 100.0, burst: 100 },
        }
    }
}

/// Where AWS keeps the quota a call counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Quota {
    /// Organizations: the organization's.
    Organizations,
    /// IAM: the account whose IAM is called.
    Iam(String),
    /// STS: the calling account's; empty for crossroled's own identity.
    Sts(String),
    /// SQS: the queue's (by URL). SQS sets no rate a standard queue's reader comes near; the bucket is unlimited,
    /// and the call layer's retries still serve it.
    Queue(String),
}

impl Quota {
    /// STS as crossroled's own identity.
    pub fn own_sts() -> Quota {
        Quota::Sts(String::new())
    }

    /// The service.
    pub fn service(&self) -> Service {
        match self {
            Quota::Organizations => Service::Organizations,
            Quota::Iam(_) => Service::Iam,
            Quota::Sts(_) => Service::Sts,
            Quota::Queue(_) => Service::Sqs,
        }
    }
}

impl Rates {
    /// No limits (tests against fakes without throttling).
    pub const UNLIMITED: Rates = Rates { organizations: Rate::UNLIMITED, iam: Rate::UNLIMITED, sts: Rate::UNLIMITED };

    fn of(&self, service: Service) -> Rate {
        match service {
            Service::Organizations => self.organizations,
            Service::Iam => self.iam,
            Service::Sts => self.sts,
            Service::Sqs => Rate::UNLIMITED,
        }
    }
}

/// Retry policy for throttling and transient errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
}

tokio::task_local! {
    /// Set while a write's `landed` check runs: the calls it makes are tried once.
    static CHECKING: bool;
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(20) }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(cap, base·2^(attempt-1))].
    pub fn delay(&self, attempt: u32) -> Duration {
        full_jitter(self.base, self.cap, attempt)
    }

    /// The longest a call can wait between its attempts: the sum of every delay's ceiling.
    pub fn longest_wait(&self) -> Duration {
        (1..self.max_attempts).map(|a| self.base.saturating_mul(1u32 << (a - 1).min(20)).min(self.cap)).sum()
    }
}

fn full_jitter(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let ceiling = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20)).min(cap);
    let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
    Duration::from_nanos(if nanos == 0 { 0 } else { rand::rng().random_range(0..=nanos) })
}

/// Patience with AWS's eventual consistency: errors of `kinds` (say `AccessDenied` from a role created a moment
/// ago) are retried with full jitter, the ceiling doubling from `base` to `cap`, while the next try would start
/// before `until`. Throttling and transient failures are retried as for any call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// The error kinds to wait out.
    pub kinds: &'static [ErrorKind],
    /// No try starts after this.
    pub until: Instant,
    /// The first delay's ceiling.
    pub base: Duration,
    /// The largest delay's ceiling.
    pub cap: Duration,
}

/// Counters of AWS calls.
#[derive(Debug, Default)]
pub struct CallStats {
    calls: Mutex<BTreeMap<String, u64>>,
    throttled: AtomicU64,
    retries: AtomicU64,
}

impl CallStats {
    /// Calls by `service:Operation`, attempts included.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls AWS throttled.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// Retries made.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// IAM calls that write (anything but Get*/List*).
    pub fn iam_writes(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.strip_prefix("iam:").is_some_and(|op| !op.starts_with("Get") && !op.starts_with("List")))
            .map(|(_, v)| v)
            .sum()
    }

    fn count(&self, call: &str) {
        if let Ok(mut c) = self.calls.lock() {
            *c.entry(call.to_string()).or_default() += 1;
        }
    }
}

/// Told about each retry.
pub trait CallObserver: Send + Sync {
    /// `call` failed with `code` on `attempt` and will be tried again after `delay`.
    fn retrying(&self, call: &str, code: Option<&str>, attempt: u32, delay: Duration);
}

/// Per-operation context of calls: its counters and its retry observer.
#[derive(Clone, Default)]
pub struct CallContext {
    /// Counters of this operation.
    pub stats: Arc<CallStats>,
    /// Observer of retries.
    pub observer: Option<Arc<dyn CallObserver>>,
}

impl CallContext {
    /// A context with its own counters and no observer.
    pub fn new() -> CallContext {
        CallContext::default()
    }
}

/// A token bucket whose rate adapts: it starts at the configured rate, drops by 30% when AWS throttles (down to 5%
/// of it), and climbs back by 1% of it per successful call. Throttles that arrive together are one congestion
/// event: after a cut, further throttles within a second do not cut again (calls in flight were sent at the old
/// rate). So crossrole settles just under the quota it really has, even when other tools share it or the configured
/// rate is too high.
struct Bucket {
    configured: Rate,
    state: Mutex<BucketState>,
    /// How many replicas share the quota: this one takes its share of the rate and of the burst.
    share: Arc<AtomicUsize>,
}

struct BucketState {
    tokens: f64,
    last: Instant,
    rate: f64,
    last_cut: Option<Instant>,
}

impl Bucket {
    /// Whether the bucket is idle and forgettable: full, at its configured rate, untouched for a while.
    fn idle(&self, now: Instant) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| s.rate >= self.configured.per_second && now.duration_since(s.last) > IDLE_BUCKET)
    }
}

/// A bucket untouched this long, and fully recovered, is dropped (it would be full again if recreated).
const IDLE_BUCKET: Duration = Duration::from_secs(120);

/// Throttles within this long of a cut belong to the same congestion event.
const CONGESTION_WINDOW: Duration = Duration::from_secs(1);

impl Bucket {
    fn new(rate: Rate, share: Arc<AtomicUsize>) -> Bucket {
        Bucket {
            share,
            configured: rate,
            state: Mutex::new(BucketState {
                tokens: f64::from(rate.burst),
                last: Instant::now(),
                rate: rate.per_second,
                last_cut: None,
            }),
        }
    }

    fn limited(&self) -> bool {
        self.configured.per_second > 0.0
    }

    /// Takes a token now, or reserves the next one: returns how long to wait for it.
    fn reserve(&self) -> Duration {
        if !self.limited() {
            return Duration::ZERO;
        }
        let Ok(mut s) = self.state.lock() else { return Duration::ZERO };
        let now = Instant::now();
        let share = self.share.load(Ordering::Relaxed).max(1) as f64;
        let burst = (f64::from(self.configured.burst) / share).max(1.0);
        let rate = s.rate / share;
        s.tokens = (s.tokens + now.duration_since(s.last).as_secs_f64() * rate).min(burst) - 1.0;
        s.last = now;
        if s.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-s.tokens / rate) }
    }

    fn throttled(&self) {
        if let (true, Ok(mut s)) = (self.limited(), self.state.lock()) {
            let now = Instant::now();
            if s.last_cut.is_none_or(|t| now.duration_since(t) >= CONGESTION_WINDOW) {
                s.rate = (s.rate * 0.7).max(self.configured.per_second * 0.05);
                s.last_cut = Some(now);
            }
        }
    }

    fn succeeded(&self) {
        if let (true, Ok(mut s)) = (self.limited(), self.state.lock()) {
            s.rate = (s.rate + self.configured.per_second * 0.01).min(self.configured.per_second);
        }
    }

    #[cfg(test)]
    fn rate(&self) -> f64 {
        self.state.lock().map(|s| s.rate).unwrap_or(0.0)
    }
}

/// A service's rate buckets as they stand, for telemetry (one bucket per quota: IAM's per account, STS's per
/// calling account, Organizations' one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketSummary {
    /// Each bucket's configured rate, calls per second; 0 for unlimited.
    pub configured: f64,
    /// Buckets in use.
    pub buckets: usize,
    /// Buckets below their configured rate: backing off after AWS throttled them.
    pub backed_off: usize,
    /// The lowest adapted rate among them; the configured rate when there are none.
    pub lowest: f64,
}

/// The call layer. Shared by every operation of a crossroled.
pub struct CallPolicy {
    rates: Rates,
    /// Replicas sharing every quota (1 alone).
    share: Arc<AtomicUsize>,
    buckets: Mutex<HashMap<Quota, Arc<Bucket>>>,
    retry: RetryPolicy,
    global: Arc<CallStats>,
    /// When writes stop (never, until the coordination sets it).
    fence: Mutex<Fence>,
}

impl CallPolicy {
    /// A call layer with these rates and retry policy.
    pub fn new(rates: Rates, retry: RetryPolicy) -> CallPolicy {
        CallPolicy {
            rates,
            share: Arc::new(AtomicUsize::new(1)),
            buckets: Mutex::new(HashMap::new()),
            retry,
            global: Arc::new(CallStats::default()),
            fence: Mutex::new(Fence::open()),
        }
    }

    /// Fences every write from now on: none is sent once `fence` has lapsed.
    pub fn fence_writes(&self, fence: Fence) {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    /// The fence on writes.
    pub fn fence(&self) -> Fence {
        self.fence.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counters across every operation since start.
    pub fn global_stats(&self) -> &Arc<CallStats> {
        &self.global
    }

    /// The retry policy.
    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// The configured rates.
    pub fn rates(&self) -> Rates {
        self.rates
    }

    /// The rates this process may use: the configured ones divided among the replicas that share them.
    pub fn shared_rates(&self) -> Rates {
        let share = self.share() as f64;
        let of =
            |r: Rate| Rate { per_second: r.per_second / share, burst: ((f64::from(r.burst) / share) as u32).max(1) };
        Rates { organizations: of(self.rates.organizations), iam: of(self.rates.iam), sts: of(self.rates.sts) }
    }

    /// Sets how many live replicas share every AWS quota (their heartbeats say): each takes `1/replicas` of every
    /// rate, so that together they stay within it.
    pub fn set_share(&self, replicas: usize) {
        let replicas = replicas.max(1);
        if self.share.swap(replicas, Ordering::Relaxed) != replicas {
            tracing::info!(replicas, "AWS rates are shared with the live replicas");
        }
    }

    /// How many replicas share every quota.
    pub fn share(&self) -> usize {
        self.share.load(Ordering::Relaxed).max(1)
    }

    fn bucket(&self, quota: &Quota) -> Arc<Bucket> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = buckets.get(quota) {
            return b.clone();
        }
        // One bucket per account ever called: forget the idle ones now and then, so the table stays small.
        if buckets.len() >= 4096 && buckets.len().is_power_of_two() {
            let now = Instant::now();
            buckets.retain(|_, b| Arc::strong_count(b) > 1 || !b.idle(now));
        }
        buckets
            .entry(quota.clone())
            .or_insert_with(|| Arc::new(Bucket::new(self.rates.of(quota.service()), self.share.clone())))
            .clone()
    }

    /// Each service's buckets as they stand.
    pub fn bucket_summaries(&self) -> Vec<(Service, BucketSummary)> {
        let buckets: Vec<(Service, Arc<Bucket>)> =
            self.buckets.lock().map(|b| b.iter().map(|(q, b)| (q.service(), b.clone())).collect()).unwrap_or_default();
        Service::ALL
            .into_iter()
            .map(|service| {
                let configured = self.rates.of(service).per_second;
                let mut summary = BucketSummary { configured, buckets: 0, backed_off: 0, lowest: configured };
                for (_, b) in buckets.iter().filter(|(s, b)| *s == service && b.limited()) {
                    let rate = b.state.lock().map(|s| s.rate).unwrap_or(configured);
                    summary.buckets += 1;
                    summary.backed_off += usize::from(rate < configured);
                    summary.lowest = summary.lowest.min(rate);
                }
                (service, summary)
            })
            .collect()
    }

    /// The current (adapted) rate of `quota`'s bucket, calls per second; for tests and telemetry.
    pub fn current_rate(&self, quota: &Quota) -> f64 {
        self.bucket(quota).state.lock().map(|s| s.rate).unwrap_or(0.0)
    }

    /// Runs `f` (one AWS request) under the rate limit, retrying throttling and transient failures.
    pub async fn call<T, F, Fut>(&self, ctx: &CallContext, quota: Quota, operation: &str, f: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        self.run(ctx, quota, operation, None, f, None::<fn() -> std::future::Ready<Result<Option<T>, AwsError>>>).await
    }

    /// Like [`CallPolicy::call`], and also waits out the errors `patience` names.
    pub async fn call_patient<T, F, Fut>(
        &self,
        ctx: &CallContext,
        quota: Quota,
        operation: &str,
        patience: Patience,
        f: F,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let none = None::<fn() -> std::future::Ready<Result<Option<T>, AwsError>>>;
        self.run(ctx, quota, operation, Some(patience), f, none).await
    }

    /// A write that is not idempotent (a create): before it is sent again after a throttle or a transient
    /// failure, `landed` looks for its effect — the earlier try may have been carried out with its response lost
    /// — and returns what the write would have, if it is there. A failing check just lets the retry go ahead.
    pub async fn call_write<T, F, Fut, L, LFut>(
        &self,
        ctx: &CallContext,
        quota: Quota,
        operation: &str,
        f: F,
        landed: L,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
        L: FnMut() -> LFut,
        LFut: Future<Output = Result<Option<T>, AwsError>>,
    {
        self.run(ctx, quota, operation, None, f, Some(landed)).await
    }

    /// One AWS call with its attempts, in a span of its own (`aws`, a child of the account's in a trace).
    async fn run<T, F, Fut, L, LFut>(
        &self,
        ctx: &CallContext,
        quota: Quota,
        operation: &str,
        patience: Option<Patience>,
        f: F,
        landed: Option<L>,
    ) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
        L: FnMut() -> LFut,
        LFut: Future<Output = Result<Option<T>, AwsError>>,
    {
        use tracing::Instrument;
        let span = tracing::info_span!("aws", service = %quota.service(), operation);
        let (mut f, mut landed) = (f, landed);
        async move {
            let call = format!("{}:{operation}", quota.service());
            let bucket = self.bucket(&quota);
            let fence = crate::fence::is_write(operation).then(|| self.fence());
            let mut attempt = 1;
            let mut waits = 0;
            loop {
                let wait = bucket.reserve();
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                if let Some(fence) = &fence {
                    fence.check(&call)?;
                }
                self.global.count(&call);
                ctx.stats.count(&call);
                tracing::trace!(call, attempt, "AWS call");
                let answer = match &fence {
                    Some(fence) => fence.attempt(&call, f()).await,
                    None => f().await,
                };
                let e = match answer {
                    Ok(v) => {
                        bucket.succeeded();
                        return Ok(v);
                    }
                    Err(e) => e,
                };
                if e.kind == ErrorKind::Throttling {
                    bucket.throttled();
                    self.global.throttled.fetch_add(1, Ordering::Relaxed);
                    ctx.stats.throttled.fetch_add(1, Ordering::Relaxed);
                }
                // A check of whether a write landed is tried once: its caller goes on either way, and retries of
                // retries would multiply (ten writes, each waiting out ten checks, during an outage).
                let attempts = if CHECKING.try_with(|c| *c).unwrap_or(false) { 1 } else { self.retry.max_attempts };
                // Retryable errors get the usual attempts; then, like any error `patience` names, they are waited
                // out until its deadline.
                let delay = if e.kind.is_retryable() && attempt < attempts {
                    Some(self.retry.delay(attempt))
                } else {
                    patience.filter(|p| p.kinds.contains(&e.kind)).and_then(|p| {
                        waits += 1;
                        let d = full_jitter(p.base, p.cap, waits);
                        (Instant::now() + d < p.until).then_some(d)
                    })
                };
                let Some(delay) = delay else { return Err(e) };
                self.global.retries.fetch_add(1, Ordering::Relaxed);
                ctx.stats.retries.fetch_add(1, Ordering::Relaxed);
                if let Some(o) = &ctx.observer {
                    o.retrying(&call, e.code.as_deref(), attempt, delay);
                }
                tracing::debug!(call, attempt, code = e.code.as_deref(), ?delay, "retrying AWS call");
                tokio::time::sleep(delay).await;
                // A throttle never reached the service; anything else may have been carried out.
                if e.kind == ErrorKind::Transient
                    && let Some(check) = landed.as_mut()
                {
                    match CHECKING.scope(true, check()).await {
                        Ok(Some(v)) => {
                            tracing::info!(call, "the earlier try was carried out; its response was lost");
                            return Ok(v);
                        }
                        Ok(None) => {}
                        Err(check) => {
                            tracing::debug!(call, error = %check, "cannot tell whether the earlier try landed")
                        }
                    }
                }
                attempt += 1;
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    fn err(code: &str) -> AwsError {
        AwsError::from_code("iam:GetRole", Some(code), Some(400), "x")
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(String, u32)>>);
    impl CallObserver for Recorder {
        fn retrying(&self, call: &str, code: Option<&str>, attempt: u32, _delay: Duration) {
            self.0.lock().unwrap().push((format!("{call} {}", code.unwrap_or("")), attempt));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_with_backoff_and_counted() {
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
        let recorder = Arc::new(Recorder::default());
        let ctx = CallContext { stats: Arc::default(), observer: Some(recorder.clone()) };
        let failures = AtomicU32::new(3);
        let started = Instant::now();
        let r = policy
            .call(&ctx, Quota::Iam("1".into()), "GetRole", || async {
                if failures.fetch_sub(1, Ordering::SeqCst) > 0 { Err(err("Throttling")) } else { Ok(7) }
            })
            .await;
        assert_eq!(r, Ok(7));
        assert_eq!(ctx.stats.snapshot().get("iam:GetRole"), Some(&4));
        assert_eq!(ctx.stats.throttled(), 3);
        assert_eq!(ctx.stats.retries(), 3);
        assert_eq!(recorder.0.lock().unwrap().iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2, 3]);
        // Full jitter under ceilings of 100 ms, 200 ms and 400 ms.
        assert!(started.elapsed() <= Duration::from_millis(700), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
        let ctx = CallContext::new();
        for code in ["MalformedPolicyDocument", "AccessDenied", "LimitExceeded", "NoSuchEntity"] {
            let r: Result<(), _> = policy.call(&ctx, Quota::Iam("1".into()), code, || async { Err(err(code)) }).await;
            assert_eq!(r.unwrap_err().code.as_deref(), Some(code));
            assert_eq!(ctx.stats.snapshot().get(&format!("iam:{code}")), Some(&1), "{code}");
        }
        assert_eq!(ctx.stats.retries(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_give_up_after_max_attempts() {
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy { max_attempts: 4, ..RetryPolicy::default() });
        let ctx = CallContext::new();
        let r: Result<(), _> = policy
            .call(&ctx, Quota::own_sts(), "AssumeRole", || async {
                Err(AwsError::transport("sts:AssumeRole", "reset"))
            })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Transient);
        assert_eq!(ctx.stats.snapshot().get("sts:AssumeRole"), Some(&4));
    }

    #[tokio::test(start_paused = true)]
    async fn the_bucket_holds_the_rate() {
        let policy = Arc::new(CallPolicy::new(
            Rates { iam: Rate { per_second: 10.0, burst: 5 }, ..Rates::UNLIMITED },
            RetryPolicy::default(),
        ));
        let ctx = CallContext::new();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..25 {
            let (policy, ctx) = (policy.clone(), ctx.clone());
            tasks.push(tokio::spawn(async move {
                policy.call(&ctx, Quota::Iam("1".into()), "GetRole", || async { Ok::<_, AwsError>(()) }).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // 5 at once, then 20 more at 10 per second.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        // Other services are not held back.
        let s = Instant::now();
        policy.call(&ctx, Quota::own_sts(), "GetCallerIdentity", || async { Ok::<_, AwsError>(()) }).await.unwrap();
        assert_eq!(s.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn each_quota_has_its_own_bucket_and_backs_off_alone() {
        let rates = Rates {
            iam: Rate { per_second: 10.0, burst: 1 },
            sts: Rate { per_second: 10.0, burst: 1 },
            ..Rates::UNLIMITED
        };
        let policy = CallPolicy::new(rates, RetryPolicy::default());
        let ctx = CallContext::new();
        let throttled_once = AtomicU32::new(1);
        policy
            .call(&ctx, Quota::Iam("1".into()), "GetRole", || async {
                if throttled_once.fetch_sub(1, Ordering::SeqCst) > 0 { Err(err("Throttling")) } else { Ok(()) }
            })
            .await
            .unwrap();
        assert!(policy.current_rate(&Quota::Iam("1".into())) < 10.0, "account 1's IAM backed off");
        for quota in [Quota::Iam("2".into()), Quota::own_sts(), Quota::Sts("3".into())] {
            assert_eq!(policy.current_rate(&quota), 10.0, "{quota:?} is untouched");
        }
        // Account 2's IAM and STS each allow a call at once, whatever account 1's bucket holds.
        let s = Instant::now();
        for quota in [Quota::Iam("2".into()), Quota::own_sts(), Quota::Sts("3".into())] {
            policy.call(&ctx, quota, "Call", || async { Ok::<_, AwsError>(()) }).await.unwrap();
        }
        assert_eq!(s.elapsed(), Duration::ZERO);
        // What telemetry sees: IAM has two buckets, one of them backing off; STS two, neither.
        let summaries: std::collections::BTreeMap<Service, BucketSummary> =
            policy.bucket_summaries().into_iter().collect();
        let iam = summaries[&Service::Iam];
        assert_eq!((iam.configured, iam.buckets, iam.backed_off), (10.0, 2, 1));
        assert!(iam.lowest < 10.0);
        let sts = summaries[&Service::Sts];
        assert_eq!((sts.buckets, sts.backed_off, sts.lowest), (2, 0, 10.0));
        assert_eq!(summaries[&Service::Organizations].buckets, 0, "unlimited: no bucket to watch");
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_backs_off_once_per_congestion_event_and_recovers() {
        let b = Bucket::new(Rate { per_second: 100.0, burst: 10 }, Arc::default());
        b.throttled();
        b.throttled();
        assert!((b.rate() - 70.0).abs() < 1e-9, "throttles together are one event");
        tokio::time::advance(CONGESTION_WINDOW).await;
        b.throttled();
        assert!((b.rate() - 49.0).abs() < 1e-9);
        for _ in 0..20 {
            tokio::time::advance(CONGESTION_WINDOW).await;
            b.throttled();
        }
        assert!((b.rate() - 5.0).abs() < 1e-9, "never below 5% of the configured rate");
        for _ in 0..1000 {
            b.succeeded();
        }
        assert!((b.rate() - 100.0).abs() < 1e-9, "never above the configured rate");
        let unlimited = Bucket::new(Rate::UNLIMITED, Arc::default());
        unlimited.throttled();
        assert_eq!(unlimited.reserve(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn replicas_sharing_a_quota_each_take_their_share_of_its_rate_and_burst() {
        let share = Arc::new(AtomicUsize::new(2));
        let b = Bucket::new(Rate { per_second: 10.0, burst: 10 }, share.clone());
        let waits: Vec<Duration> = (0..10).map(|_| b.reserve()).collect();
        assert_eq!(waits[..5], [Duration::ZERO; 5], "half the burst");
        assert!((waits[5].as_secs_f64() - 0.2).abs() < 1e-9, "half the rate: {waits:?}");
        assert!((waits[9].as_secs_f64() - 1.0).abs() < 1e-9, "{waits:?}");
        let policy = CallPolicy::new(Rates::default(), RetryPolicy::default());
        policy.set_share(4);
        assert_eq!(policy.shared_rates().sts, Rate { per_second: 25.0, burst: 25 });
        policy.set_share(0);
        assert_eq!(policy.shared_rates(), Rates::default(), "never less than one replica");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_whose_response_was_lost_is_found_not_repeated() {
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
        let ctx = CallContext::new();
        let sent = AtomicU32::new(0);
        let landed = AtomicU32::new(0);
        // The first try is carried out, and its response lost: the retry must not send it again.
        let r = policy
            .call_write(
                &ctx,
                Quota::Iam("1".into()),
                "CreateRole",
                || async {
                    sent.fetch_add(1, Ordering::SeqCst);
                    Err::<u32, _>(AwsError::transport("iam:CreateRole", "connection reset"))
                },
                || async {
                    landed.fetch_add(1, Ordering::SeqCst);
                    Ok(Some(9))
                },
            )
            .await;
        assert_eq!(r, Ok(9));
        assert_eq!((sent.load(Ordering::SeqCst), landed.load(Ordering::SeqCst)), (1, 1));

        // A throttle never reached the service: no check, just the retry.
        let throttled = AtomicU32::new(1);
        let r = policy
            .call_write(
                &ctx,
                Quota::Iam("1".into()),
                "CreateRole",
                || async { if throttled.fetch_sub(1, Ordering::SeqCst) > 0 { Err(err("Throttling")) } else { Ok(1) } },
                || async { panic!("a throttled write needs no check") },
            )
            .await;
        assert_eq!(r, Ok(1));

        // The effect is not there: the write is sent again.
        let failures = AtomicU32::new(1);
        let r = policy
            .call_write(
                &ctx,
                Quota::Iam("1".into()),
                "CreatePolicyVersion",
                || async {
                    if failures.fetch_sub(1, Ordering::SeqCst) > 0 {
                        Err(AwsError::from_code("iam:CreatePolicyVersion", Some("ServiceUnavailable"), Some(503), "x"))
                    } else {
                        Ok(2)
                    }
                },
                || async { Ok(None) },
            )
            .await;
        assert_eq!(r, Ok(2));
    }

    #[tokio::test(start_paused = true)]
    async fn during_an_outage_a_write_and_its_checks_give_up_together() {
        // Every call fails with 503: the write is tried ten times, and each check of whether it landed once —
        // not ten times each (which made an account take minutes to fail during an IAM outage).
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
        let ctx = CallContext::new();
        let down = || async {
            Err::<u32, _>(AwsError::from_code("iam:CreateRole", Some("ServiceUnavailable"), Some(503), "down"))
        };
        let checks = AtomicU32::new(0);
        let started = Instant::now();
        let r = policy
            .call_write(&ctx, Quota::Iam("1".into()), "CreateRole", down, || async {
                checks.fetch_add(1, Ordering::SeqCst);
                policy
                    .call(&ctx, Quota::Iam("1".into()), "GetRole", || async {
                        Err::<Option<u32>, _>(AwsError::from_code(
                            "iam:GetRole",
                            Some("ServiceUnavailable"),
                            Some(503),
                            "down",
                        ))
                    })
                    .await
            })
            .await;
        assert_eq!(r.unwrap_err().code.as_deref(), Some("ServiceUnavailable"));
        let calls = ctx.stats.snapshot();
        assert_eq!(calls.get("iam:CreateRole"), Some(&10));
        assert_eq!((checks.load(Ordering::SeqCst), calls.get("iam:GetRole")), (9, Some(&9)), "{calls:?}");
        // Full jitter under ceilings doubling from 100 ms to the 20 s cap, nine times: at most about 46 s.
        assert!(started.elapsed() <= Duration::from_secs(47), "{:?}", started.elapsed());
        // Outside a check, the same read is retried as usual.
        let alone = CallContext::new();
        let _ = policy
            .call(&alone, Quota::Iam("1".into()), "GetRole", || async {
                Err::<u32, _>(AwsError::from_code("iam:GetRole", Some("ServiceUnavailable"), Some(503), "down"))
            })
            .await;
        assert_eq!(alone.stats.snapshot().get("iam:GetRole"), Some(&10));
    }

    #[tokio::test(start_paused = true)]
    async fn patience_waits_out_named_errors_until_its_deadline() {
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
        let recorder = Arc::new(Recorder::default());
        let ctx = CallContext { stats: Arc::default(), observer: Some(recorder.clone()) };
        let started = Instant::now();
        let patience = Patience {
            kinds: &[ErrorKind::AccessDenied],
            until: started + Duration::from_secs(30),
            base: Duration::from_millis(500),
            cap: Duration::from_secs(5),
        };
        let denials = AtomicU32::new(3);
        let r = policy
            .call_patient(&ctx, Quota::own_sts(), "AssumeRole", patience, || async {
                if denials.fetch_sub(1, Ordering::SeqCst) > 0 { Err(err("AccessDenied")) } else { Ok(1) }
            })
            .await;
        assert_eq!(r, Ok(1));
        assert_eq!(recorder.0.lock().unwrap().len(), 3, "each wait is reported as a retry");
        // Other kinds are not waited out, and nothing is tried after the deadline.
        let r: Result<(), _> = policy
            .call_patient(&ctx, Quota::own_sts(), "AssumeRole", patience, || async { Err(err("NoSuchEntity")) })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::NotFound);
        let r: Result<(), _> = policy
            .call_patient(&ctx, Quota::own_sts(), "AssumeRole", patience, || async { Err(err("AccessDenied")) })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::AccessDenied);
        assert!(Instant::now() <= started + Duration::from_secs(30), "{:?}", started.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_write_waiting_in_backoff_is_not_sent_again_once_the_lease_may_have_lapsed() {
        let policy = CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default());
        let (_renewals, until) = tokio::sync::watch::channel(Instant::now() + Duration::from_secs(2));
        policy.fence_writes(Fence::lease(until, Duration::from_secs(5)));
        let ctx = CallContext::new();
        let sent = AtomicU32::new(0);
        let write = policy
            .call(&ctx, Quota::Iam("1".into()), "CreateRole", || async {
                sent.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>(err("Throttling"))
            })
            .await;
        assert_eq!(write.unwrap_err().kind, ErrorKind::Fenced);
        let tries = sent.load(Ordering::SeqCst);
        assert!((2..10).contains(&tries), "retried until the deadline, then nothing: {tries}");
        assert_eq!(ctx.stats.snapshot().get("iam:CreateRole"), Some(&(tries as u64)), "a refused try is not counted");
        // Reads go on: they change nothing.
        let read = policy.call(&ctx, Quota::Iam("1".into()), "GetRole", || async { Ok(1) }).await;
        assert_eq!(read, Ok(1));
    }

    #[test]
    fn the_longest_wait_is_the_sum_of_the_ceilings() {
        let p = RetryPolicy::default();
        // 0.1 + 0.2 + 0.4 + 0.8 + 1.6 + 3.2 + 6.4 + 12.8 + 20 (capped) seconds.
        assert_eq!(p.longest_wait(), Duration::from_millis(45_500));
        let short = RetryPolicy { max_attempts: 4, cap: Duration::from_secs(1), ..p };
        assert_eq!(short.longest_wait(), Duration::from_millis(700));
        assert_eq!(RetryPolicy { max_attempts: 1, ..p }.longest_wait(), Duration::ZERO);
    }

    #[test]
    fn backoff_ceilings_double_up_to_the_cap() {
        let p = RetryPolicy { max_attempts: 10, base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        for _ in 0..200 {
            assert!(p.delay(1) <= Duration::from_millis(100));
            assert!(p.delay(3) <= Duration::from_millis(400));
            assert!(p.delay(9) <= Duration::from_secs(1));
        }
    }
}
