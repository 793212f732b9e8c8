//! Organizations discovery: the OU tree and accounts, cached for a configured time, and target selection.
//!
//! The tree is walked breadth first from the root (`ListRoots`, then `ListOrganizationalUnitsForParent` and
//! `ListAccountsForParent` per unit), following `NextToken` until it is absent — even after an empty page.
//! Concurrent callers share one walk. Account tags cost one call per account (`ListTagsForResource`, at
//! Organizations' rate for the whole organization), so they are fetched only for the accounts a tag condition has
//! to look at, cached per account, and refreshed incrementally: a selection fetches the tags of accounts it has
//! not seen and of accounts whose tags are older than `tags_max_age` (each account's age limit spread between 75%
//! and 100% of it, so that tags read together do not all expire together).
//!
//! With a [`DiscoveryStore`], what was read is kept (crossroled keeps it in its journal): a restarted crossroled
//! starts from the tree and tags it had, with their ages, instead of walking and reading everything again. The
//! store's tree is the one every crossroled of a journal works from: each save is a new revision, and before each
//! use of its tree discovery takes the store's if it is newer than its own — so a tree events patched on the
//! replica that reads them ([`Discovery::learn`]), or dropped there, is the tree every replica selects from next.

use std::{
    collections::{BTreeMap, HashMap},
    hash::{Hash, Hasher},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;

use crossrole_core::{
    org::{self, AccountTags, OrgTree, OrgUnit, Selection},
    spec::TargetSelector,
};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;

mod found;
mod learn;
mod scoped;

pub use found::Found;
pub use learn::Learned;
pub use scoped::Fresh;

use crate::{
    api::{OrganizationsApi, OuRecord, Page},
    calls::{CallContext, CallPolicy, Quota},
    error::{AwsError, Error},
};

/// Tags by account, with when they were fetched.
type TagCache = HashMap<String, (Instant, BTreeMap<String, String>)>;

/// The tree discovery holds: the tree and when it was walked (none, before a walk or once dropped), and the
/// revision of the store's it is (0: none).
#[derive(Default)]
struct HeldTree {
    tree: Option<(Instant, Arc<OrgTree>)>,
    revision: u64,
}

/// A tree as a [`DiscoveryStore`] keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTree {
    /// Its revision: one more at every save, whoever saved it.
    pub revision: u64,
    /// When it was walked (events may have patched it since); the epoch for a tree dropped, which no use takes.
    pub walked: SystemTime,
    /// The tree.
    pub tree: OrgTree,
}

/// Where discovery keeps what it read across restarts, and shares it with the other crossroleds of the store.
/// Failing to load or save is not an error of discovery (it works from its own tree, or reads from Organizations);
/// an implementation logs its failures.
#[async_trait]
pub trait DiscoveryStore: Send + Sync {
    /// The tree last saved, if its revision is above `newer_than` (0: whichever).
    async fn load_tree(&self, newer_than: u64) -> Option<StoredTree>;
    /// Keeps a tree walked at `at`; returns the revision it was kept as (`None`: it was not).
    async fn save_tree(&self, at: SystemTime, tree: &OrgTree) -> Option<u64>;
    /// The tags last saved, by account, with when each was read.
    async fn load_tags(&self) -> Vec<(String, SystemTime, BTreeMap<String, String>)>;
    /// Keeps tags read at `at`.
    async fn save_tags(&self, at: SystemTime, tags: &[(String, BTreeMap<String, String>)]);
}

/// Discovery settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// How long a walked tree (and fetched tags) stay fresh for reads: plans, listings, verification.
    pub cache_ttl: Duration,
    /// How old a tree an apply may work from. 0 (the default): every apply walks the organization anew, because
    /// accounts move and an apply must not grant access where an account was. A large organization may allow a
    /// few seconds, so that an apply right after its plan works from the tree the plan showed (at the cost of
    /// missing a move made in between).
    pub apply_max_age: Duration,
    /// How old an account's tags may be before a selection reads them again (each account's limit is spread
    /// between 75% and 100% of this). A tag changed in Organizations is seen by the next selection after that
    /// (or at once with a refresh); a new account's tags are read the first time it is selected.
    pub tags_max_age: Duration,
    /// How old a tree a binding's reconcile may work from. 0 (the default): like an apply. With Organizations
    /// events keeping the tree true ([`Discovery::learn`]), reconciles need not read the organization each time:
    /// a long age (hours) leaves reading it to a resync, the safety net for any event that did not arrive.
    pub reconcile_max_age: Duration,
    /// Units (or accounts, for tags) read at once.
    pub parallelism: usize,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            cache_ttl: Duration::from_secs(300),
            apply_max_age: Duration::ZERO,
            tags_max_age: Duration::from_secs(900),
            reconcile_max_age: Duration::ZERO,
            parallelism: 8,
        }
    }
}

/// Organizations discovery with a cache.
pub struct Discovery {
    api: Arc<dyn OrganizationsApi>,
    calls: Arc<CallPolicy>,
    config: DiscoveryConfig,
    tree: tokio::sync::Mutex<HeldTree>,
    tags: Mutex<TagCache>,
    store: Option<Arc<dyn DiscoveryStore>>,
    loaded: tokio::sync::OnceCell<()>,
    /// Accounts an event named that Organizations said are not members, and when: named again soon after, they
    /// cost no call (a flood of forged events naming made-up accounts costs one call per account, not per event).
    strangers: Mutex<HashMap<String, Instant>>,
    /// When each tree handed out lately was read (a walk, the store's, a part read afresh), for the answers that
    /// say how old their organization is ([`Discovery::read_time`]).
    read_times: Mutex<Vec<(std::sync::Weak<OrgTree>, Instant, SystemTime)>>,
}

/// The instant `at` (wall clock) was, on the monotonic clock; `None` if it is before the monotonic clock began
/// (then the entry is treated as too old to use) or in the future (a clock that went back: not trusted either).
fn instant_of(at: SystemTime) -> Option<Instant> {
    let age = SystemTime::now().duration_since(at).ok()?;
    Instant::now().checked_sub(age)
}

impl Discovery {
    /// The settings.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Discovery over `api`.
    pub fn new(api: Arc<dyn OrganizationsApi>, calls: Arc<CallPolicy>, config: DiscoveryConfig) -> Discovery {
        Discovery {
            api,
            calls,
            config,
            tree: tokio::sync::Mutex::new(HeldTree::default()),
            tags: Mutex::new(HashMap::new()),
            store: None,
            loaded: tokio::sync::OnceCell::new(),
            strangers: Mutex::new(HashMap::new()),
            read_times: Mutex::new(Vec::new()),
        }
    }

    /// Notes that `tree` was read at `at` (`wall`, on the wall clock), for [`Discovery::read_time`] (trees no
    /// longer held by anyone are let go).
    pub(crate) fn note_read(&self, tree: &Arc<OrgTree>, at: Instant, wall: SystemTime) {
        if let Ok(mut times) = self.read_times.lock() {
            times.retain(|(t, ..)| t.strong_count() > 0);
            times.push((Arc::downgrade(tree), at, wall));
        }
    }

    /// When `tree`, handed out by discovery, was read from Organizations (for a tree patched by events since: when
    /// it was walked); `None` for a tree discovery does not know.
    pub fn read_time(&self, tree: &Arc<OrgTree>) -> Option<SystemTime> {
        self.read_at(tree).map(|(_, wall)| wall)
    }

    fn read_at(&self, tree: &Arc<OrgTree>) -> Option<(Instant, SystemTime)> {
        let times = self.read_times.lock().ok()?;
        times.iter().rev().find(|(t, ..)| std::ptr::eq(t.as_ptr(), Arc::as_ptr(tree))).map(|(_, at, wall)| (*at, *wall))
    }

    /// When the oldest of the tags held for `accounts` were read; `None` when none are held.
    pub fn tags_read_time(&self, accounts: &[String]) -> Option<SystemTime> {
        let cache = self.tags.lock().ok()?;
        let oldest = accounts.iter().filter_map(|a| cache.get(a).map(|(at, _)| *at)).min()?;
        Some(SystemTime::now().checked_sub(oldest.elapsed()).unwrap_or(SystemTime::UNIX_EPOCH))
    }

    /// Keeps what discovery reads in `store`, and starts from what it holds.
    pub fn with_store(mut self, store: Arc<dyn DiscoveryStore>) -> Discovery {
        self.store = Some(store);
        self
    }

    /// Takes the store's tree if it is newer than the one `held` (saved since by another crossroled of the store,
    /// or by this one): the tree every use starts from.
    async fn catch_up(&self, held: &mut HeldTree) {
        let Some(store) = &self.store else { return };
        let Some(stored) = store.load_tree(held.revision).await else { return };
        tracing::debug!(revision = stored.revision, "discovery takes the newer tree its store holds");
        held.revision = stored.revision;
        held.tree = instant_of(stored.walked)
            .filter(|_| stored.walked > SystemTime::UNIX_EPOCH)
            .map(|at| (at, Arc::new(stored.tree)));
        if let Some((at, tree)) = &held.tree {
            self.note_read(tree, *at, stored.walked);
        }
    }

    /// Loads the tags the store holds, once, before the first use.
    async fn load(&self) {
        let Some(store) = &self.store else { return };
        self.loaded
            .get_or_init(|| async {
                let tags = store.load_tags().await;
                let n = tags.len();
                if let Ok(mut cache) = self.tags.lock() {
                    for (account, at, tags) in tags {
                        if let Some(at) = instant_of(at) {
                            cache.entry(account).or_insert((at, tags));
                        }
                    }
                }
                tracing::debug!(accounts_with_tags = n, "discovery loaded what it read before");
            })
            .await;
    }

    /// How old `account`'s tags may be: `max_age` spread between 75% and 100% by the account id.
    fn tags_limit(account: &str, max_age: Duration) -> Duration {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        account.hash(&mut h);
        let spread = (h.finish() % 1000) as f64 / 1000.0;
        max_age.mul_f64(0.75 + 0.25 * spread)
    }

    /// The tree, from the cache unless it is stale or `refresh` is set.
    pub async fn tree(&self, ctx: &CallContext, refresh: bool) -> Result<Arc<OrgTree>, Error> {
        self.tree_within(ctx, if refresh { Duration::ZERO } else { self.config.cache_ttl }).await
    }

    /// The tree, from the cache if it is younger than `max_age`, else walked anew.
    pub async fn tree_within(&self, ctx: &CallContext, max_age: Duration) -> Result<Arc<OrgTree>, Error> {
        self.tree_heard(ctx, max_age, &mut Deaf).await
    }

    /// Like [`Discovery::tree_within`]; a walk tells `listener` what it finds as it goes.
    async fn tree_heard(
        &self,
        ctx: &CallContext,
        max_age: Duration,
        listener: &mut (dyn WalkListener + Send),
    ) -> Result<Arc<OrgTree>, Error> {
        let mut held = self.tree.lock().await;
        self.catch_up(&mut held).await;
        if let Some((at, tree)) = held.tree.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(tree.clone());
        }
        let tree = Arc::new(self.walk(ctx, listener).await?);
        held.tree = Some((Instant::now(), tree.clone()));
        self.note_read(&tree, Instant::now(), SystemTime::now());
        // Kept after the lock is let go: a journal write need not hold up the next reader.
        drop(held);
        self.keep(SystemTime::now(), &tree).await;
        Ok(tree)
    }

    /// Keeps `tree` (walked at `at`; the epoch: dropped) in the store, and notes its revision if it is still what
    /// is held (if not, the next use takes it from the store, or a newer one).
    async fn keep(&self, at: SystemTime, tree: &Arc<OrgTree>) {
        let Some(store) = &self.store else { return };
        let Some(revision) = store.save_tree(at, tree).await else { return };
        let mut held = self.tree.lock().await;
        let still = held.tree.as_ref().map_or(at == SystemTime::UNIX_EPOCH, |(_, t)| Arc::ptr_eq(t, tree));
        if still {
            held.revision = held.revision.max(revision);
        }
    }

    /// The cached tree, if there is one (fresh or not; the store's if it is newer); never calls AWS.
    pub async fn cached_tree(&self) -> Option<Arc<OrgTree>> {
        let mut held = self.tree.lock().await;
        self.catch_up(&mut held).await;
        held.tree.as_ref().map(|(_, t)| t.clone())
    }

    /// Tags of `accounts`, from the cache where younger than `tags_max_age`.
    pub async fn tags(&self, ctx: &CallContext, accounts: &[String]) -> Result<AccountTags, Error> {
        self.tags_within(ctx, accounts, self.config.tags_max_age).await
    }

    /// Tags of `accounts`, from the cache where younger than `max_age` (spread per account), read otherwise.
    pub async fn tags_within(
        &self,
        ctx: &CallContext,
        accounts: &[String],
        max_age: Duration,
    ) -> Result<AccountTags, Error> {
        self.load().await;
        let mut out = AccountTags::new();
        let mut missing = Vec::new();
        if let Ok(cache) = self.tags.lock() {
            for id in accounts {
                match cache.get(id) {
                    Some((at, tags)) if at.elapsed() < Self::tags_limit(id, max_age) => {
                        out.insert(id.clone(), tags.clone());
                    }
                    _ => missing.push(id.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        tracing::debug!(accounts = missing.len(), "reading account tags");
        let fetched: Vec<(String, BTreeMap<String, String>)> = stream::iter(missing)
            .map(|id| async move {
                let tags = self
                    .all_pages(ctx, "ListTagsForResource", |token| self.api.list_tags_for_resource(&id, token))
                    .await?;
                Ok::<_, Error>((id, tags.into_iter().collect()))
            })
            .buffer_unordered(self.config.parallelism.max(1))
            .try_collect()
            .await?;
        if let Ok(mut cache) = self.tags.lock() {
            for (id, tags) in &fetched {
                cache.insert(id.clone(), (Instant::now(), tags.clone()));
            }
        }
        if let Some(store) = &self.store {
            store.save_tags(SystemTime::now(), &fetched).await;
        }
        out.extend(fetched);
        Ok(out)
    }

    /// The accounts `selector` selects; `at` is the selector's field path for errors.
    pub async fn select(
        &self,
        ctx: &CallContext,
        selector: &TargetSelector,
        at: &str,
        refresh: bool,
    ) -> Result<(Arc<OrgTree>, Selection), Error> {
        let (tree_age, tags_age) =
            if refresh { (Duration::ZERO, Duration::ZERO) } else { (self.config.cache_ttl, self.config.tags_max_age) };
        self.select_aged(ctx, selector, at, tree_age, tags_age, &mut Deaf).await
    }

    /// Like [`Discovery::select`], from a tree younger than `max_age` (tags within `tags_max_age`).
    pub async fn select_within(
        &self,
        ctx: &CallContext,
        selector: &TargetSelector,
        at: &str,
        max_age: Duration,
    ) -> Result<(Arc<OrgTree>, Selection), Error> {
        self.select_within_found(ctx, selector, at, max_age, None).await
    }

    /// Like [`Discovery::select_within`]; `found`, if given, is sent the selected accounts as their pages are
    /// listed when the tree is walked anew (see [`Found`]; a tree young enough sends nothing: the selection is
    /// all there at once).
    pub async fn select_within_found(
        &self,
        ctx: &CallContext,
        selector: &TargetSelector,
        at: &str,
        max_age: Duration,
        found: Option<&Found>,
    ) -> Result<(Arc<OrgTree>, Selection), Error> {
        let mut finder = found::Finder::new(selector, at, found, None);
        self.select_aged(ctx, selector, at, max_age, self.config.tags_max_age, &mut finder).await
    }

    /// The selection from a tree younger than `tree_age` (a walk tells `listener` what it finds as it goes), with
    /// tags younger than `tags_age`.
    async fn select_aged(
        &self,
        ctx: &CallContext,
        selector: &TargetSelector,
        at: &str,
        tree_age: Duration,
        tags_age: Duration,
        listener: &mut (dyn WalkListener + Send),
    ) -> Result<(Arc<OrgTree>, Selection), Error> {
        let asked = Instant::now();
        let mut tree = self.tree_heard(ctx, tree_age, listener).await?;
        let structural = match org::resolve(&tree, selector, at) {
            Ok(structural) => structural,
            // A name the tree read before does not have may be new since (an OU made, an account that joined or
            // moved): the organization is read afresh before the selector is refused as naming something unknown.
            Err(_)
                if self.read_at(&tree).is_some_and(|(read, _)| read < asked) && org::names_unknown(&tree, selector) =>
            {
                tracing::debug!("the selector names what the organization read before does not have; reading it again");
                tree = self.tree_heard(ctx, Duration::ZERO, listener).await?;
                org::resolve(&tree, selector, at)?
            }
            Err(e) => return Err(e.into()),
        };
        Ok((tree, self.finish(ctx, structural, tags_age).await?))
    }

    /// The selection, once the tags its conditions look at (read if older than `tags_age`) are known.
    async fn finish(
        &self,
        ctx: &CallContext,
        structural: org::Structural,
        tags_age: Duration,
    ) -> Result<Selection, Error> {
        let need = structural.accounts_needing_tags();
        let tags = if need.is_empty() { AccountTags::new() } else { self.tags_within(ctx, &need, tags_age).await? };
        Ok(structural.finish(&tags))
    }

    async fn all_pages<T, F, Fut>(&self, ctx: &CallContext, operation: &str, mut page: F) -> Result<Vec<T>, Error>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Page<T>, AwsError>>,
    {
        let mut items = Vec::new();
        let mut token = None;
        loop {
            let p = self.calls.call(ctx, Quota::Organizations, operation, || page(token.clone())).await?;
            items.extend(p.items);
            match p.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(items),
            }
        }
    }

    async fn walk(&self, ctx: &CallContext, listener: &mut (dyn WalkListener + Send)) -> Result<OrgTree, Error> {
        // Independent calls go together: only pages of one listing wait for each other.
        let (organization, roots) = futures::try_join!(
            async {
                self.calls
                    .call(ctx, Quota::Organizations, "DescribeOrganization", || self.api.describe_organization())
                    .await
                    .map_err(Error::from)
            },
            self.all_pages(ctx, "ListRoots", |t| self.api.list_roots(t)),
        )?;
        let root = roots.into_iter().next().ok_or_else(|| {
            Error::Aws(AwsError::from_code("organizations:ListRoots", None, None, "the organization has no root"))
        })?;
        let mut units = BTreeMap::new();
        units.insert(
            root.id.clone(),
            OrgUnit {
                id: root.id.clone(),
                name: root.name.clone(),
                parent_id: None,
                children: vec![],
                accounts: vec![],
            },
        );
        let mut accounts = BTreeMap::new();
        listener.organization(&organization, &root.id);
        self.walk_below(ctx, vec![root.id.clone()], vec![], &mut units, &mut accounts, listener).await?;
        Ok(OrgTree { organization, root_id: root.id, units, accounts })
    }

    /// Walks the subtrees of `tops` (units already in `units`): their child units breadth first, and each unit's
    /// accounts page by page, into `units` and `accounts`. The child units of `list_only` (units not walked) are
    /// listed too and returned, by parent. `listener` hears when every unit is known, and of each page of accounts
    /// as it arrives: the units, few calls, go first, so that what is selected can be judged page by page while
    /// the accounts, most of the calls, are still being listed.
    async fn walk_below(
        &self,
        ctx: &CallContext,
        tops: Vec<String>,
        list_only: Vec<String>,
        units: &mut BTreeMap<String, OrgUnit>,
        accounts: &mut BTreeMap<String, org::AccountInfo>,
        listener: &mut (dyn WalkListener + Send),
    ) -> Result<BTreeMap<String, Vec<OuRecord>>, Error> {
        type Call<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, Error>> + Send + 'a>>;
        let parallel = self.config.parallelism.max(1);
        let list_units = |parent: String, walk: bool| -> Call<'_, (String, bool, Vec<OuRecord>)> {
            Box::pin(async move {
                let ous = self
                    .all_pages(ctx, "ListOrganizationalUnitsForParent", |t| {
                        self.api.list_organizational_units_for_parent(&parent, t)
                    })
                    .await?;
                Ok((parent, walk, ous))
            })
        };
        let list_accounts = |unit: String, token: Option<String>| -> Call<'_, (String, Page<org::AccountInfo>)> {
            Box::pin(async move {
                let page = self
                    .calls
                    .call(ctx, Quota::Organizations, "ListAccountsForParent", || {
                        self.api.list_accounts_for_parent(&unit, token.clone())
                    })
                    .await?;
                Ok((unit, page))
            })
        };
        let mut unit_queue: std::collections::VecDeque<(String, bool)> =
            tops.iter().map(|t| (t.clone(), true)).chain(list_only.into_iter().map(|p| (p, false))).collect();
        let mut account_queue: std::collections::VecDeque<String> = tops.into();
        let mut unit_calls = stream::FuturesUnordered::new();
        let mut page_calls = stream::FuturesUnordered::new();
        let mut listed = BTreeMap::new();
        let mut found: HashMap<String, Vec<org::AccountInfo>> = HashMap::new();
        let mut units_known = false;
        loop {
            while unit_calls.len() < parallel
                && let Some((parent, walk)) = unit_queue.pop_front()
            {
                unit_calls.push(list_units(parent, walk));
            }
            // Each unit's pages wait for each other; `parallel` units at once.
            while page_calls.len() < parallel
                && let Some(unit) = account_queue.pop_front()
            {
                page_calls.push(list_accounts(unit, None));
            }
            if !units_known && unit_calls.is_empty() {
                units_known = true;
                listener.units_known(units, &listed);
            }
            if unit_calls.is_empty() && page_calls.is_empty() {
                return Ok(listed);
            }
            tokio::select! {
                Some(listing) = unit_calls.next(), if !unit_calls.is_empty() => {
                    let (parent, walk, ous) = listing?;
                    if !walk {
                        listed.insert(parent, ous);
                        continue;
                    }
                    let mut children: Vec<(String, String)> =
                        ous.iter().map(|o| (o.name.clone(), o.id.clone())).collect();
                    children.sort();
                    for ou in ous {
                        units.insert(
                            ou.id.clone(),
                            OrgUnit {
                                id: ou.id.clone(),
                                name: ou.name,
                                parent_id: Some(parent.clone()),
                                children: vec![],
                                accounts: vec![],
                            },
                        );
                        unit_queue.push_back((ou.id.clone(), true));
                        account_queue.push_back(ou.id);
                    }
                    if let Some(u) = units.get_mut(&parent) {
                        u.children = children.into_iter().map(|(_, id)| id).collect();
                    }
                }
                Some(page) = page_calls.next(), if !page_calls.is_empty() => {
                    let (unit, page) = page?;
                    let items: Vec<org::AccountInfo> =
                        page.items.into_iter().map(|a| org::AccountInfo { parent_id: unit.clone(), ..a }).collect();
                    listener.accounts(&items);
                    found.entry(unit.clone()).or_default().extend(items);
                    match page.next_token {
                        Some(t) if !t.is_empty() => page_calls.push(list_accounts(unit, Some(t))),
                        _ => {
                            let items = found.remove(&unit).unwrap_or_default();
                            if let Some(u) = units.get_mut(&unit) {
                                u.accounts = items.iter().map(|a| a.id.clone()).collect();
                                u.accounts.sort();
                            }
                            for a in items {
                                accounts.insert(a.id.clone(), a);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Hears of a walk as it goes (see [`Discovery::walk_below`]).
pub(crate) trait WalkListener {
    /// The organization walked, and its root (before the units).
    fn organization(&mut self, _organization: &org::OrganizationInfo, _root_id: &str) {}
    /// Every unit of the walk is known (`listed`: the child units of the units listed but not walked).
    fn units_known(&mut self, _units: &BTreeMap<String, OrgUnit>, _listed: &BTreeMap<String, Vec<OuRecord>>) {}
    /// A page of accounts, each with the unit it is in.
    fn accounts(&mut self, _page: &[org::AccountInfo]) {}
}

/// A listener that does nothing.
pub(crate) struct Deaf;

impl WalkListener for Deaf {}
