//! Organizations discovery: the OU tree and accounts, cached for a configured time, and target selection.
//!
//! The tree is walked breadth first from the root (`ListRoots`, then `ListOrganizationalUnitsForParent` and
//! `ListAccountsForParent` per unit), following `NextToken` until it is absent — even after an empty page.
//! Concurrent callers share one walk. Account tags cost one call per account, so they are fetched only for the
//! accounts a tag condition has to look at, and cached per account.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use crossrole_core::{
    org::{self, AccountTags, OrgTree, OrgUnit, Selection},
    spec::TargetSelector,
};
use futures::{StreamExt, TryStreamExt, stream};
use tokio::time::Instant;

use crate::{
    api::{OrganizationsApi, Page},
    calls::{CallContext, CallPolicy, Quota},
    error::{AwsError, Error},
};

/// Tags by account, with when they were fetched.
type TagCache = HashMap<String, (Instant, BTreeMap<String, String>)>;

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
    /// Units (or accounts, for tags) read at once.
    pub parallelism: usize,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig { cache_ttl: Duration::from_secs(300), apply_max_age: Duration::ZERO, parallelism: 8 }
    }
}

/// Organizations discovery with a cache.
pub struct Discovery {
    api: Arc<dyn OrganizationsApi>,
    calls: Arc<CallPolicy>,
    config: DiscoveryConfig,
    tree: tokio::sync::Mutex<Option<(Instant, Arc<OrgTree>)>>,
    tags: Mutex<TagCache>,
}

impl Discovery {
    /// The settings.
    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// Discovery over `api`.
    pub fn new(api: Arc<dyn OrganizationsApi>, calls: Arc<CallPolicy>, config: DiscoveryConfig) -> Discovery {
        Discovery { api, calls, config, tree: tokio::sync::Mutex::new(None), tags: Mutex::new(HashMap::new()) }
    }

    /// The tree, from the cache unless it is stale or `refresh` is set.
    pub async fn tree(&self, ctx: &CallContext, refresh: bool) -> Result<Arc<OrgTree>, Error> {
        self.tree_within(ctx, if refresh { Duration::ZERO } else { self.config.cache_ttl }).await
    }

    /// The tree, from the cache if it is younger than `max_age`, else walked anew.
    pub async fn tree_within(&self, ctx: &CallContext, max_age: Duration) -> Result<Arc<OrgTree>, Error> {
        let mut cached = self.tree.lock().await;
        if let Some((at, tree)) = cached.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(tree.clone());
        }
        let tree = Arc::new(self.walk(ctx).await?);
        *cached = Some((Instant::now(), tree.clone()));
        Ok(tree)
    }

    /// The cached tree, if there is one (fresh or not); never calls AWS.
    pub async fn cached_tree(&self) -> Option<Arc<OrgTree>> {
        self.tree.lock().await.as_ref().map(|(_, t)| t.clone())
    }

    /// Tags of `accounts`, from the cache where fresh.
    pub async fn tags(&self, ctx: &CallContext, accounts: &[String]) -> Result<AccountTags, Error> {
        let mut out = AccountTags::new();
        let mut missing = Vec::new();
        if let Ok(cache) = self.tags.lock() {
            for id in accounts {
                match cache.get(id) {
                    Some((at, tags)) if at.elapsed() < self.config.cache_ttl => {
                        out.insert(id.clone(), tags.clone());
                    }
                    _ => missing.push(id.clone()),
                }
            }
        }
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
        let max_age = if refresh { Duration::ZERO } else { self.config.cache_ttl };
        self.select_within(ctx, selector, at, max_age).await
    }

    /// Like [`Discovery::select`], from a tree younger than `max_age`.
    pub async fn select_within(
        &self,
        ctx: &CallContext,
        selector: &TargetSelector,
        at: &str,
        max_age: Duration,
    ) -> Result<(Arc<OrgTree>, Selection), Error> {
        let tree = self.tree_within(ctx, max_age).await?;
        let structural = org::resolve(&tree, selector, at)?;
        let need = structural.accounts_needing_tags();
        let tags = if need.is_empty() { AccountTags::new() } else { self.tags(ctx, &need).await? };
        Ok((tree.clone(), structural.finish(&tags)))
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

    async fn walk(&self, ctx: &CallContext) -> Result<OrgTree, Error> {
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
        let mut level = vec![root.id.clone()];
        while !level.is_empty() {
            let results: Vec<(String, Vec<crate::api::OuRecord>, Vec<org::AccountInfo>)> = stream::iter(level)
                .map(|parent| async move {
                    let (ous, accts) = futures::try_join!(
                        self.all_pages(ctx, "ListOrganizationalUnitsForParent", |t| {
                            self.api.list_organizational_units_for_parent(&parent, t)
                        }),
                        self.all_pages(ctx, "ListAccountsForParent", |t| self.api.list_accounts_for_parent(&parent, t)),
                    )?;
                    Ok::<_, Error>((parent, ous, accts))
                })
                .buffer_unordered(self.config.parallelism.max(1))
                .try_collect()
                .await?;
            let mut next = Vec::new();
            for (parent, ous, accts) in results {
                let mut children: Vec<(String, String)> = ous.iter().map(|o| (o.name.clone(), o.id.clone())).collect();
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
                    next.push(ou.id);
                }
                if let Some(u) = units.get_mut(&parent) {
                    u.children = children.into_iter().map(|(_, id)| id).collect();
                    u.accounts = accts.iter().map(|a| a.id.clone()).collect();
                    u.accounts.sort();
                }
                for a in accts {
                    accounts.insert(a.id.clone(), org::AccountInfo { parent_id: parent.clone(), ..a });
                }
            }
            next.sort();
            level = next;
        }
        Ok(OrgTree { organization, root_id: root.id, units, accounts })
    }
}
