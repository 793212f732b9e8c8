//! An in-memory AWS for unit tests and benchmarks: Organizations, STS and IAM with AWS's semantics.
//!
//! Unlike the emulators, it enforces what real AWS enforces and crossrole relies on: a role must exist to be
//! assumed and its trust policy must allow the caller (with the ExternalId); IAM refuses to delete a role with
//! policies attached, to attach a policy that does not exist, or more managed policies than the quota. It models
//! cost too: every call takes a latency (base plus seeded jitter, on `tokio::time`, so tests and benchmarks can
//! run on a paused clock), and each service has a token bucket; a call over the rate gets `Throttling`, as from
//! AWS. Failures can be injected per service, operation and account ([`Failure`]), responses lost after the write
//! was carried out ([`LostResponse`]), and random faults of every kind thrown at a fraction of calls ([`Chaos`]).
//! It counts every call it serves.

mod iam;
mod org;
mod sqs;
mod sts;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_core::{
    Partition,
    inventory::LastUsed,
    names,
    org::{AccountInfo, AccountTags, OrgTree},
    plan::{ObservedRole, RoleAttributes},
    spec::PrincipalKind,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use tokio::time::Instant;

use crate::{
    api::{AwsConnector, Credentials, IamApi, OrganizationsApi, QueueApi, StsApi},
    calls::Rate,
    error::{AwsError, Service},
};

/// Per-call latency: `base` plus a uniform jitter in `[0, jitter]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    /// Fixed part.
    pub base: Duration,
    /// Random part's upper bound.
    pub jitter: Duration,
}

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Latency per service.
    pub latency: BTreeMap<Service, Latency>,
    /// AWS's quotas, per service, each kept where AWS keeps it: IAM's per account, STS's per calling account,
    /// Organizations' per organization. A call beyond its quota's bucket answers `Throttling`.
    pub throttle: BTreeMap<Service, Rate>,
    /// Quotas of single scopes (an account's IAM hammered by another tool, say), by (service, account).
    pub throttle_scopes: BTreeMap<(Service, String), Rate>,
    /// Seed of the jitter.
    pub seed: u64,
    /// The bootstrap role created in every member account (trusting the management account).
    pub bootstrap_role: String,
    /// Page size of Organizations list calls.
    pub org_page_size: usize,
    /// Serve an empty first page with a next token on every Organizations list (AWS does this).
    pub empty_first_pages: bool,
    /// How many managed policies IAM lets a role have (its quota; 10 by default).
    pub managed_policies_per_role: usize,
    /// The most roles one `GetAccountAuthorizationDetails` page holds, whatever `MaxItems` asks (IAM may return
    /// fewer than asked, with a marker); 1000 by default, IAM's largest `MaxItems`.
    pub details_page_size: usize,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            latency: BTreeMap::new(),
            throttle: BTreeMap::new(),
            throttle_scopes: BTreeMap::new(),
            seed: 7,
            bootstrap_role: "OrganizationAccountAccessRole".into(),
            org_page_size: 20,
            empty_first_pages: false,
            managed_policies_per_role: 10,
            details_page_size: 1000,
        }
    }
}

/// An injected failure: calls matching it fail with `code` (`times` times, or always).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The service whose calls fail.
    pub service: Service,
    /// Operation name (`CreateRole`); `None` for any.
    pub operation: Option<String>,
    /// Account the call acts in; `None` for any.
    pub account: Option<String>,
    /// AWS error code.
    pub code: String,
    /// How many times; `None` for always.
    pub times: Option<u32>,
}

/// Calls matching it are carried out, then answer with a transient error as if their response was lost on the way
/// back (`times` times, or always). Only IAM carries out writes; for STS and Organizations it is a plain failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostResponse {
    /// The service whose responses are lost.
    pub service: Service,
    /// Operation name (`CreateRole`); `None` for any.
    pub operation: Option<String>,
    /// Account the call acts in; `None` for any.
    pub account: Option<String>,
    /// How many times; `None` for always.
    pub times: Option<u32>,
}

/// Random faults, seeded: each call of `services` fails with probability `fraction`, picked evenly among
/// throttling, `ServiceUnavailable` (503), a connection reset before the request arrived, and a response lost
/// after it was carried out.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    /// Probability that a call fails, 0 to 1.
    pub fraction: f64,
    /// Services it applies to.
    pub services: Vec<Service>,
    /// Seed of its own random numbers.
    pub seed: u64,
}

/// Faults thrown so far, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Answered `Throttling`.
    pub throttled: u64,
    /// Answered 503.
    pub unavailable: u64,
    /// Reset before the request arrived.
    pub reset: u64,
    /// Carried out, then the response lost.
    pub lost: u64,
}

/// What a call that passed [`World::enter`] must do after its effect.
#[must_use]
pub(crate) struct Ticket {
    lose: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FakeRole {
    pub(crate) arn: String,
    pub(crate) path: String,
    pub(crate) description: String,
    pub(crate) max_session_duration: u32,
    pub(crate) trust: String,
    pub(crate) boundary: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) managed: BTreeSet<String>,
    pub(crate) inline: BTreeMap<String, String>,
    /// When it was made, Unix seconds (`None`: not said).
    pub(crate) created: Option<i64>,
    /// `RoleLastUsed`.
    pub(crate) last_used: Option<LastUsed>,
    /// Its unique id (`RoleId`), given when it was made.
    pub(crate) id: String,
}

/// Roles made so far in every fake world: what makes each one's unique id its own.
static ROLES_MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl FakeRole {
    /// A role as IAM makes it: no policies, never used, a unique id of its own (`AROA` and 17 more) — a role
    /// made again under the same ARN gets another, as in IAM.
    pub(crate) fn new(arn: String, path: &str, trust_json: &str) -> FakeRole {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (&arn, ROLES_MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)).hash(&mut h);
        let n = h.finish();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let tail: String = (0..17).map(|i| alphabet[((n >> ((i * 5) % 60)) & 31) as usize] as char).collect();
        FakeRole {
            arn,
            path: path.to_string(),
            description: String::new(),
            max_session_duration: 3600,
            trust: iam::encode(trust_json),
            boundary: None,
            tags: BTreeMap::new(),
            managed: Default::default(),
            inline: BTreeMap::new(),
            created: None,
            last_used: None,
            id: format!("AROA{tail}"),
        }
    }

    /// IAM's unique id of the role (`AROA…`), the same for as long as it exists.
    pub(crate) fn role_id(&self) -> String {
        self.id.clone()
    }

    /// Its attributes as IAM answers them (`name`: its key among the account's roles).
    pub(crate) fn attributes(&self, name: &str) -> RoleAttributes {
        RoleAttributes {
            name: name.to_string(),
            path: self.path.clone(),
            description: self.description.clone(),
            max_session_duration: self.max_session_duration,
            trust_policy: self.trust.clone(),
            permissions_boundary_arn: self.boundary.clone(),
            tags: self.tags.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FakePolicy {
    pub(crate) versions: Vec<(String, String, u64)>,
    pub(crate) default_version: String,
    pub(crate) next_version: u32,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) attachments: BTreeSet<(PrincipalKind, String)>,
}

/// A managed policy as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyView {
    /// The default version's document, decoded.
    pub document: String,
    /// Who it is attached to.
    pub attachments: BTreeSet<(PrincipalKind, String)>,
    /// How many versions it has.
    pub versions: usize,
}

/// IAM state of one account.
#[derive(Debug, Clone, Default)]
pub struct AccountState {
    pub(crate) roles: BTreeMap<String, FakeRole>,
    pub(crate) policies: BTreeMap<String, FakePolicy>,
    pub(crate) users: BTreeSet<String>,
    pub(crate) groups: BTreeSet<String>,
}

impl AccountState {
    /// Removes a role, policies and all (as if deleted by hand).
    pub fn remove_role(&mut self, name: &str) -> bool {
        self.roles.remove(name).is_some()
    }

    /// Creates a role by hand, outside crossrole (no ownership tags).
    pub fn create_role_by_hand(&mut self, account: &str, name: &str, trust: &str) {
        let mut role = FakeRole::new(names::role_arn(Partition::Aws, account, "/", name), "/", trust);
        role.description = "made by hand".into();
        self.roles.insert(name.to_string(), role);
    }

    /// Puts an inline policy on a role by hand.
    pub fn put_inline_by_hand(&mut self, role: &str, name: &str, document: &str) {
        if let Some(r) = self.roles.get_mut(role) {
            r.inline.insert(name.to_string(), iam::encode(document));
        }
    }

    /// Tags a role by hand.
    pub fn tag_by_hand(&mut self, role: &str, key: &str, value: &str) {
        if let Some(r) = self.roles.get_mut(role) {
            r.tags.insert(key.to_string(), value.to_string());
        }
    }

    /// Says when a role was last used, and where (as IAM's `RoleLastUsed` would), and when it was made.
    pub fn set_used_by_hand(&mut self, role: &str, created: Option<i64>, last_used: Option<LastUsed>) {
        if let Some(r) = self.roles.get_mut(role) {
            r.created = created;
            r.last_used = last_used;
        }
    }

    /// Creates a customer-managed policy by hand (a boundary the bootstrap template deploys, say).
    pub fn create_policy_by_hand(&mut self, arn: &str, document: &str) {
        self.policies.insert(
            arn.to_string(),
            FakePolicy {
                versions: vec![("v1".into(), iam::encode(document), 1)],
                default_version: "v1".into(),
                next_version: 2,
                tags: BTreeMap::new(),
                attachments: Default::default(),
            },
        );
    }

    /// Attaches a managed policy by hand (drift).
    pub fn attach_by_hand(&mut self, role: &str, arn: &str) {
        if let Some(r) = self.roles.get_mut(role) {
            r.managed.insert(arn.to_string());
        }
    }

    /// Sets or removes a role's permissions boundary by hand (a role made before the ceiling, or given another).
    pub fn set_boundary_by_hand(&mut self, role: &str, boundary: Option<&str>) {
        if let Some(r) = self.roles.get_mut(role) {
            r.boundary = boundary.map(str::to_string);
        }
    }

    /// Replaces a trust policy by hand (drift).
    pub fn set_trust_by_hand(&mut self, role: &str, document: &str) {
        if let Some(r) = self.roles.get_mut(role) {
            r.trust = iam::encode(document);
        }
    }
}

pub(crate) struct World {
    pub(crate) partition: Partition,
    pub(crate) config: FakeConfig,
    pub(crate) tree: Mutex<OrgTree>,
    pub(crate) tags: Mutex<AccountTags>,
    pub(crate) iam: Mutex<HashMap<String, AccountState>>,
    /// Issued access keys: key → (account, principal ARN).
    pub(crate) keys: Mutex<HashMap<String, (String, String)>>,
    pub(crate) failures: Mutex<Vec<Failure>>,
    lost: Mutex<Vec<LostResponse>>,
    chaos: Mutex<Option<(Chaos, StdRng)>>,
    faults: Mutex<FaultCounts>,
    pub(crate) served: Mutex<BTreeMap<String, u64>>,
    /// Calls by the quota they counted against: (service, account).
    served_scopes: Mutex<BTreeMap<(Service, String), u64>>,
    /// Calls by the account they act in: (account, `service:Operation`).
    served_accounts: Mutex<BTreeMap<(String, String), u64>>,
    pub(crate) throttled: Mutex<u64>,
    buckets: Mutex<HashMap<(Service, String), (f64, Instant)>>,
    rng: Mutex<StdRng>,
    pub(crate) clock: Mutex<u64>,
    /// Accounts with a call in progress, and the most seen at once.
    in_flight: Mutex<(HashMap<String, usize>, usize)>,
    /// The Organizations events queue (one, whatever its URL).
    pub(crate) queue: Mutex<sqs::Queue>,
}

impl World {
    /// Every call starts here: count, inject, throttle, wait. `account` is the account the call is about (failures
    /// are injected by it), `scope` the one whose quota it counts against (the caller's, for STS). The ticket says
    /// whether to lose the response after the call's effect ([`Ticket::leave`]).
    pub(crate) async fn enter(
        &self,
        service: Service,
        operation: &str,
        account: &str,
        scope: &str,
    ) -> Result<Ticket, AwsError> {
        let call = format!("{service}:{operation}");
        if let Ok(mut s) = self.served.lock() {
            *s.entry(call.clone()).or_default() += 1;
        }
        if let Ok(mut s) = self.served_scopes.lock() {
            *s.entry((service, scope.to_string())).or_default() += 1;
        }
        if let Ok(mut s) = self.served_accounts.lock() {
            *s.entry((account.to_string(), call.clone())).or_default() += 1;
        }
        let latency = self.config.latency.get(&service).copied().unwrap_or_default();
        let delay = {
            let jitter = latency.jitter.as_nanos() as u64;
            let extra =
                if jitter == 0 { 0 } else { self.rng.lock().map(|mut r| r.random_range(0..=jitter)).unwrap_or(0) };
            latency.base + Duration::from_nanos(extra)
        };
        let throttled = self.take_token(service, scope);
        if !delay.is_zero() {
            // Accounts at work are the ones IAM and STS are called for; Organizations' calls are the
            // organization's, whichever account makes them.
            let at_work = service != Service::Organizations;
            if at_work {
                self.track(account, true);
            }
            tokio::time::sleep(if throttled { delay / 4 } else { delay }).await;
            if at_work {
                self.track(account, false);
            }
        }
        if throttled {
            if let Ok(mut t) = self.throttled.lock() {
                *t += 1;
            }
            return Err(AwsError::from_code(call, Some("Throttling"), Some(400), "Rate exceeded"));
        }
        let injected = self.failures.lock().ok().and_then(|mut failures| {
            let i = failures.iter().position(|f| {
                f.service == service
                    && f.operation.as_deref().is_none_or(|o| o == operation)
                    && f.account.as_deref().is_none_or(|a| a == account)
            })?;
            let code = failures[i].code.clone();
            match &mut failures[i].times {
                Some(1) => {
                    failures.remove(i);
                }
                Some(n) => *n -= 1,
                None => {}
            }
            Some(code)
        });
        if let Some(code) = injected {
            let status = if crate::error::classify(Some(&code), None).is_retryable() { 503 } else { 400 };
            return Err(AwsError::from_code(call, Some(&code), Some(status), "injected failure"));
        }
        let lose = self.lost.lock().ok().is_some_and(|mut lost| {
            let Some(i) = lost.iter().position(|l| {
                l.service == service
                    && l.operation.as_deref().is_none_or(|o| o == operation)
                    && l.account.as_deref().is_none_or(|a| a == account)
            }) else {
                return false;
            };
            match &mut lost[i].times {
                Some(1) => {
                    lost.remove(i);
                }
                Some(n) => *n -= 1,
                None => {}
            }
            true
        });
        let chaos = self.chaos.lock().ok().and_then(|mut c| {
            let (chaos, rng) = c.as_mut()?;
            if !chaos.services.contains(&service) || rng.random::<f64>() >= chaos.fraction {
                return None;
            }
            Some(rng.random_range(0..4u8))
        });
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        match chaos {
            Some(0) => {
                faults.throttled += 1;
                Err(AwsError::from_code(call, Some("Throttling"), Some(400), "Rate exceeded (chaos)"))
            }
            Some(1) => {
                faults.unavailable += 1;
                Err(AwsError::from_code(call, Some("ServiceUnavailable"), Some(503), "Service unavailable (chaos)"))
            }
            Some(2) => {
                faults.reset += 1;
                Err(AwsError::transport(call, "connection reset by peer (chaos)"))
            }
            Some(_) => {
                faults.lost += 1;
                Ok(Ticket { lose: true })
            }
            None => Ok(Ticket { lose }),
        }
    }

    fn lost_response(operation: &str) -> AwsError {
        AwsError::transport(operation, "the response was lost after the request was carried out (injected)")
    }

    fn track(&self, account: &str, start: bool) {
        if let Ok(mut f) = self.in_flight.lock() {
            let (map, max) = &mut *f;
            if start {
                *map.entry(account.to_string()).or_default() += 1;
                *max = (*max).max(map.len());
            } else if let Some(n) = map.get_mut(account) {
                *n -= 1;
                if *n == 0 {
                    map.remove(account);
                }
            }
        }
    }

    fn take_token(&self, service: Service, scope: &str) -> bool {
        let key = (service, scope.to_string());
        let Some(rate) = self.config.throttle_scopes.get(&key).or_else(|| self.config.throttle.get(&service)).copied()
        else {
            return false;
        };
        if rate.per_second <= 0.0 {
            return false;
        }
        let Ok(mut buckets) = self.buckets.lock() else { return false };
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key).or_insert((f64::from(rate.burst.max(1)), now));
        let refilled =
            (*tokens + now.duration_since(*last).as_secs_f64() * rate.per_second).min(f64::from(rate.burst.max(1)));
        *last = now;
        if refilled >= 1.0 {
            *tokens = refilled - 1.0;
            false
        } else {
            *tokens = refilled;
            true
        }
    }

    pub(crate) fn now(&self) -> u64 {
        self.clock
            .lock()
            .map(|mut c| {
                *c += 1;
                *c
            })
            .unwrap_or(0)
    }
}

impl Ticket {
    /// After the call's effect: its response, or the lost response it was told to give.
    pub(crate) fn leave<T>(self, call: &str, result: Result<T, AwsError>) -> Result<T, AwsError> {
        match result {
            Ok(_) if self.lose => Err(World::lost_response(call)),
            other => other,
        }
    }
}

/// The fake AWS. Cheap to clone; clones share the world.
#[derive(Clone)]
pub struct FakeAws {
    pub(crate) world: Arc<World>,
    management_arn: String,
}

impl FakeAws {
    /// A fake with `tree` as its organization; every ACTIVE member account gets the bootstrap role.
    pub fn new(tree: OrgTree, config: FakeConfig) -> FakeAws {
        let partition = Partition::Aws;
        let management = tree.organization.management_account_id.clone();
        let mut iam = HashMap::new();
        for account in tree.accounts.values() {
            let state = if account.id == management {
                AccountState::default()
            } else {
                bootstrapped(partition, &management, &config.bootstrap_role, &account.id)
            };
            iam.insert(account.id.clone(), state);
        }
        let seed = config.seed;
        FakeAws {
            management_arn: format!("arn:aws:iam::{management}:user/crossroled"),
            world: Arc::new(World {
                partition,
                config,
                tree: Mutex::new(tree),
                tags: Mutex::new(AccountTags::new()),
                iam: Mutex::new(iam),
                keys: Mutex::new(HashMap::new()),
                failures: Mutex::new(Vec::new()),
                lost: Mutex::new(Vec::new()),
                chaos: Mutex::new(None),
                faults: Mutex::new(FaultCounts::default()),
                served: Mutex::new(BTreeMap::new()),
                served_scopes: Mutex::new(BTreeMap::new()),
                served_accounts: Mutex::new(BTreeMap::new()),
                throttled: Mutex::new(0),
                buckets: Mutex::new(HashMap::new()),
                rng: Mutex::new(StdRng::seed_from_u64(seed)),
                clock: Mutex::new(1_700_000_000),
                in_flight: Mutex::new((HashMap::new(), 0)),
                queue: Mutex::new(sqs::Queue::default()),
            }),
        }
    }

    /// Edits the IAM state of `account` (drift, users, groups, …).
    pub fn with_account<R>(&self, account: &str, f: impl FnOnce(&mut AccountState) -> R) -> R {
        let mut iam = self.world.iam.lock().unwrap_or_else(|e| e.into_inner());
        f(iam.entry(account.to_string()).or_default())
    }

    /// An account joins the organization (created by account vending: with its bootstrap role), under the unit
    /// its `parent_id` names.
    pub fn join(&self, account: AccountInfo) {
        let management = self.with_tree(|t| t.organization.management_account_id.clone());
        let state = bootstrapped(self.world.partition, &management, &self.world.config.bootstrap_role, &account.id);
        self.world.iam.lock().unwrap_or_else(|e| e.into_inner()).insert(account.id.clone(), state);
        self.with_tree(|t| t.place(account));
    }

    /// Puts a message on the Organizations events queue.
    pub fn send_to_queue(&self, body: &str) {
        self.world.queue.lock().unwrap_or_else(|e| e.into_inner()).send(body);
    }

    /// Makes received and undeleted messages visible again, as their visibility timeout running out would.
    pub fn redeliver_queue(&self) {
        self.world.queue.lock().unwrap_or_else(|e| e.into_inner()).redeliver();
    }

    /// The queue's messages: (waiting, received and not deleted, deleted).
    pub fn queue_counts(&self) -> (usize, usize, u64) {
        self.world.queue.lock().unwrap_or_else(|e| e.into_inner()).counts()
    }

    /// Edits the organization.
    pub fn with_tree<R>(&self, f: impl FnOnce(&mut OrgTree) -> R) -> R {
        let mut tree = self.world.tree.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut tree)
    }

    /// Sets an account's tags.
    pub fn set_tags(&self, account: &str, tags: &[(&str, &str)]) {
        if let Ok(mut t) = self.world.tags.lock() {
            t.insert(account.into(), tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        }
    }

    /// Injects a failure.
    pub fn inject(&self, failure: Failure) {
        if let Ok(mut f) = self.world.failures.lock() {
            f.push(failure);
        }
    }

    /// Ends every injected failure (an outage over).
    pub fn clear_failures(&self) {
        if let Ok(mut f) = self.world.failures.lock() {
            f.clear();
        }
    }

    /// Loses responses after their call is carried out.
    pub fn lose_responses(&self, lost: LostResponse) {
        if let Ok(mut l) = self.world.lost.lock() {
            l.push(lost);
        }
    }

    /// Throws random faults at a fraction of calls (`None` stops).
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        if let Ok(mut c) = self.world.chaos.lock() {
            *c = chaos.map(|c| {
                let rng = StdRng::seed_from_u64(c.seed);
                (c, rng)
            });
        }
    }

    /// Faults thrown by [`FakeAws::set_chaos`] so far.
    pub fn faults(&self) -> FaultCounts {
        self.world.faults.lock().map(|f| f.clone()).unwrap_or_default()
    }

    /// Calls served, by `service:Operation`.
    pub fn served(&self) -> BTreeMap<String, u64> {
        self.world.served.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Calls served by the quota they counted against: (service, account), throttled ones included.
    pub fn served_by_quota(&self) -> BTreeMap<(Service, String), u64> {
        self.world.served_scopes.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The most accounts that had an IAM or STS call in progress at the same time (calls with latency only).
    pub fn max_accounts_in_flight(&self) -> usize {
        self.world.in_flight.lock().map(|f| f.1).unwrap_or(0)
    }

    /// Calls answered with `Throttling`.
    pub fn throttled(&self) -> u64 {
        self.world.throttled.lock().map(|t| *t).unwrap_or(0)
    }

    /// Forgets the counters.
    pub fn reset_counters(&self) {
        if let Ok(mut s) = self.world.served.lock() {
            s.clear();
        }
        if let Ok(mut s) = self.world.served_scopes.lock() {
            s.clear();
        }
        if let Ok(mut s) = self.world.served_accounts.lock() {
            s.clear();
        }
        if let Ok(mut t) = self.world.throttled.lock() {
            *t = 0;
        }
    }

    /// IAM writes served (anything but Get*/List*).
    pub fn iam_writes(&self) -> u64 {
        iam_writes_of(&self.served())
    }

    /// Calls served that act in `account` (IAM's in it, STS's AssumeRole into it…), by `service:Operation`,
    /// refused ones included.
    pub fn served_in(&self, account: &str) -> BTreeMap<String, u64> {
        let served = self.world.served_accounts.lock().map(|s| s.clone()).unwrap_or_default();
        served.into_iter().filter(|((a, _), _)| a == account).map(|((_, call), n)| (call, n)).collect()
    }

    /// IAM writes served in `account` (anything but Get*/List*), refused ones included: what CloudTrail would
    /// show that account.
    pub fn iam_writes_in(&self, account: &str) -> u64 {
        iam_writes_of(&self.served_in(account))
    }

    /// The role `name` in `account`, as crossrole would observe it.
    pub fn role(&self, account: &str, name: &str) -> Option<ObservedRole> {
        self.with_account(account, |a| {
            a.roles.get(name).map(|r| ObservedRole {
                arn: r.arn.clone(),
                role_id: r.role_id(),
                attributes: r.attributes(name),
                managed_policy_arns: r.managed.clone(),
                inline_policies: r.inline.clone(),
            })
        })
    }

    /// Role names in `account`.
    pub fn role_names(&self, account: &str) -> Vec<String> {
        self.with_account(account, |a| a.roles.keys().cloned().collect())
    }

    /// Adds IAM users and groups to `account` (the trusted side).
    pub fn add_principals(&self, account: &str, users: &[&str], groups: &[&str]) {
        self.with_account(account, |a| {
            a.users.extend(users.iter().map(|u| u.to_string()));
            a.groups.extend(groups.iter().map(|g| g.to_string()));
        });
    }

    /// The managed policy `arn` in `account`.
    pub fn policy(&self, account: &str, arn: &str) -> Option<PolicyView> {
        self.with_account(account, |a| {
            a.policies.get(arn).map(|p| PolicyView {
                document: p
                    .versions
                    .iter()
                    .find(|v| v.0 == p.default_version)
                    .map(|v| iam::decode(&v.1))
                    .unwrap_or_default(),
                attachments: p.attachments.clone(),
                versions: p.versions.len(),
            })
        })
    }

    /// Credentials for `role_arn` as if someone assumed it (for tests of verify).
    pub fn credentials_for(&self, account: &str, principal_arn: &str) -> Credentials {
        sts::issue(&self.world, account, principal_arn)
    }
}

/// The IAM writes (anything but Get*/List*) among `served`.
fn iam_writes_of(served: &BTreeMap<String, u64>) -> u64 {
    served
        .iter()
        .filter(|(k, _)| k.strip_prefix("iam:").is_some_and(|op| !op.starts_with("Get") && !op.starts_with("List")))
        .map(|(_, v)| v)
        .sum()
}

/// A member account's IAM as account vending leaves it: the bootstrap role, trusting the management account.
fn bootstrapped(partition: Partition, management: &str, bootstrap_role: &str, account: &str) -> AccountState {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{management}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let mut state = AccountState::default();
    let mut role = FakeRole::new(names::role_arn(partition, account, "/", bootstrap_role), "/", &trust);
    role.managed = ["arn:aws:iam::aws:policy/AdministratorAccess".to_string()].into();
    state.roles.insert(bootstrap_role.to_string(), role);
    state
}

impl AwsConnector for FakeAws {
    fn partition(&self) -> Partition {
        self.world.partition
    }

    fn organizations(&self) -> Arc<dyn OrganizationsApi> {
        Arc::new(org::FakeOrganizations { world: self.world.clone() })
    }

    fn sts(&self, credentials: Option<&Credentials>) -> Arc<dyn StsApi> {
        let identity = match credentials {
            None => {
                let account =
                    self.world.tree.lock().map(|t| t.organization.management_account_id.clone()).unwrap_or_default();
                Ok((account, self.management_arn.clone()))
            }
            Some(c) => sts::identity(&self.world, c),
        };
        Arc::new(sts::FakeSts { world: self.world.clone(), identity })
    }

    fn iam(&self, credentials: &Credentials) -> Arc<dyn IamApi> {
        Arc::new(iam::FakeIam { world: self.world.clone(), identity: sts::identity(&self.world, credentials) })
    }

    fn queue(&self, _url: &str) -> Arc<dyn QueueApi> {
        Arc::new(sqs::FakeQueue { world: self.world.clone() })
    }
}
