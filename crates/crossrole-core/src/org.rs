//! The organization as data (an OU tree with accounts) and the target selector's semantics over it.
//!
//! Selection runs in two steps, so that account tags — one Organizations call per account — are fetched only for
//! the accounts that could still match: [`resolve`] applies the structure (OUs, account ids, exclusions, the
//! management account, states), then [`Structural::finish`] applies the tag conditions.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    Error,
    error::Collector,
    spec::{AccountState, TargetSelector},
};

/// Tags of accounts, by account id.
pub type AccountTags = BTreeMap<String, BTreeMap<String, String>>;

/// The organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrganizationInfo {
    /// `o-…`.
    pub id: String,
    /// The organization's ARN.
    pub arn: String,
    /// The account that owns the organization (never a target unless asked for).
    pub management_account_id: String,
}

/// An OU or the root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgUnit {
    /// `r-…` or `ou-…`.
    pub id: String,
    /// Name (`Root` for the root).
    pub name: String,
    /// Parent; `None` for the root.
    pub parent_id: Option<String>,
    /// Child OU ids.
    pub children: Vec<String>,
    /// Ids of the accounts directly in this unit.
    pub accounts: Vec<String>,
}

/// An account of the organization.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountInfo {
    /// 12-digit id.
    pub id: String,
    /// The account's display name.
    pub name: String,
    /// Root email.
    pub email: String,
    /// Whether it is ACTIVE (only ACTIVE accounts are worked on).
    pub state: AccountState,
    /// The unit the account is directly in.
    pub parent_id: String,
    /// When it joined the organization (Unix seconds), if known.
    pub joined_at: Option<u64>,
}

/// The organization's OU tree and accounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrgTree {
    /// The organization.
    pub organization: OrganizationInfo,
    /// The root's id.
    pub root_id: String,
    /// Every unit (root included), by id.
    pub units: BTreeMap<String, OrgUnit>,
    /// Every account, by id.
    pub accounts: BTreeMap<String, AccountInfo>,
}

/// An account the selector matched but that is not acted on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The account.
    pub account: AccountInfo,
    /// Why, e.g. `account is SUSPENDED`.
    pub reason: String,
}

/// The result of the structural step of selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structural {
    candidates: Vec<AccountInfo>,
    skipped: Vec<Skipped>,
    tags: Vec<crate::spec::TagCondition>,
}

/// The selected accounts (in account id order) and the skipped ones.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selection {
    /// Accounts to act on.
    pub selected: Vec<AccountInfo>,
    /// Accounts matched but skipped.
    pub skipped: Vec<Skipped>,
}

impl OrgTree {
    /// The unit's path of names from the root, e.g. `/Root/Workloads/Prod`.
    pub fn path_of(&self, unit_id: &str) -> String {
        let mut names = Vec::new();
        let mut current = self.units.get(unit_id);
        let mut guard = 0;
        while let Some(u) = current {
            names.push(u.name.as_str());
            current = u.parent_id.as_deref().and_then(|p| self.units.get(p));
            guard += 1;
            if guard > 64 {
                break;
            }
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    /// `unit_id` and every unit below it.
    pub fn subtree(&self, unit_id: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![unit_id.to_string()];
        while let Some(id) = stack.pop() {
            if out.insert(id.clone())
                && let Some(u) = self.units.get(&id)
            {
                stack.extend(u.children.iter().cloned());
            }
        }
        out
    }

    /// Ids of every account, in order.
    pub fn account_ids(&self) -> BTreeSet<String> {
        self.accounts.keys().cloned().collect()
    }

    /// Puts `account` where its `parent_id` says, taking it out of where it was: what an account that joined or
    /// moved looks like, read from Organizations. `false` (and the tree unchanged) if the tree does not know the
    /// parent: then only a walk can say where the account is.
    pub fn place(&mut self, account: AccountInfo) -> bool {
        if !self.units.contains_key(&account.parent_id) {
            return false;
        }
        self.remove_account(&account.id);
        if let Some(unit) = self.units.get_mut(&account.parent_id) {
            let at = unit.accounts.binary_search(&account.id).unwrap_or_else(|i| i);
            unit.accounts.insert(at, account.id.clone());
        }
        self.accounts.insert(account.id.clone(), account);
        true
    }

    /// Takes an account that left the organization out of the tree.
    pub fn remove_account(&mut self, id: &str) {
        if let Some(old) = self.accounts.remove(id)
            && let Some(unit) = self.units.get_mut(&old.parent_id)
        {
            unit.accounts.retain(|a| a != id);
        }
    }
}

/// The structural step: OUs (recursive unless `exclude_descendants`), account ids, exclusions, the management
/// account and states. Unknown OU or account ids are errors, with `at` as the selector's field path.
pub fn resolve(tree: &OrgTree, selector: &TargetSelector, at: &str) -> Result<Structural, Error> {
    let matcher = Matcher::of(tree, selector, at)?;
    let mut candidates = Vec::new();
    let mut skipped = Vec::new();
    for account in tree.accounts.values() {
        match matcher.classify(account) {
            Some(Ok(())) => candidates.push(account.clone()),
            Some(Err(reason)) => skipped.push(Skipped { account: account.clone(), reason }),
            None => {}
        }
    }
    Ok(Structural { candidates, skipped, tags: selector.tags.clone() })
}

/// Whether `selector` names an OU (by id or path) or an account that `tree` does not have: one made, moved or
/// renamed since the tree was read, or one that does not exist. Only a newer read of the organization can tell
/// which, before the selector is refused as naming something unknown.
pub fn names_unknown(tree: &OrgTree, selector: &TargetSelector) -> bool {
    let unit_ids = selector.organizational_unit_ids.iter().chain(&selector.exclude_organizational_unit_ids);
    if unit_ids.into_iter().any(|id| !tree.units.contains_key(id))
        || selector.account_ids.iter().any(|id| !tree.accounts.contains_key(id))
    {
        return true;
    }
    let paths = || selector.organizational_unit_paths.iter().chain(&selector.exclude_organizational_unit_paths);
    if paths().next().is_none() {
        return false;
    }
    let known: BTreeSet<String> = tree.units.keys().map(|id| tree.path_of(id)).collect();
    paths().any(|p| !known.contains(p))
}

/// Whether a selector decides each account from the units alone (OUs, exclusions, states: no account ids to find,
/// no tags to read), so that an account can be judged as soon as it is listed, before the whole organization is.
pub fn decided_by_units(selector: &TargetSelector) -> bool {
    selector.account_ids.is_empty() && selector.tags.is_empty()
}

/// A selector made concrete on a tree's units: which units it selects and excludes. It judges an account by the
/// unit it is in, its id and state; [`resolve`] is this applied to every account of the tree, so an account
/// judged alone (as it is listed) is judged exactly as the whole selection would.
#[derive(Debug, Clone)]
pub struct Matcher {
    units: BTreeSet<String>,
    excluded_units: BTreeSet<String>,
    accounts: BTreeSet<String>,
    excluded_accounts: BTreeSet<String>,
    management_account_id: String,
    include_management_account: bool,
    states: BTreeSet<AccountState>,
}

impl Matcher {
    /// `selector` on `tree`'s units (and, for account ids, its accounts). Unknown OU or account ids and paths are
    /// errors, with `at` as the selector's field path.
    pub fn of(tree: &OrgTree, selector: &TargetSelector, at: &str) -> Result<Matcher, Error> {
        let mut v = Collector::default();
        for (i, id) in selector.organizational_unit_ids.iter().enumerate() {
            if !tree.units.contains_key(id) {
                v.push(
                    format!("{at}.organizational_unit_ids[{i}]"),
                    format!("{id} is not an OU or root of organization {}", tree.organization.id),
                );
            }
        }
        for (i, id) in selector.exclude_organizational_unit_ids.iter().enumerate() {
            if !tree.units.contains_key(id) {
                v.push(
                    format!("{at}.exclude_organizational_unit_ids[{i}]"),
                    format!("{id} is not an OU of organization {}", tree.organization.id),
                );
            }
        }
        let by_path: BTreeMap<String, &String> = tree.units.keys().map(|id| (tree.path_of(id), id)).collect();
        let mut path_units = Vec::new();
        for (i, p) in selector.organizational_unit_paths.iter().enumerate() {
            match by_path.get(p) {
                Some(id) => path_units.push((*id).clone()),
                None => v.push(
                    format!("{at}.organizational_unit_paths[{i}]"),
                    format!("no OU has the path {p} in organization {}", tree.organization.id),
                ),
            }
        }
        let mut excluded_path_units = Vec::new();
        for (i, p) in selector.exclude_organizational_unit_paths.iter().enumerate() {
            match by_path.get(p) {
                Some(id) => excluded_path_units.push((*id).clone()),
                None => v.push(
                    format!("{at}.exclude_organizational_unit_paths[{i}]"),
                    format!("no OU has the path {p} in organization {}", tree.organization.id),
                ),
            }
        }
        for (i, id) in selector.account_ids.iter().enumerate() {
            if !tree.accounts.contains_key(id) {
                v.push(
                    format!("{at}.account_ids[{i}]"),
                    format!("{id} is not an account of organization {}", tree.organization.id),
                );
            } else if *id == tree.organization.management_account_id && !selector.include_management_account {
                v.push(
                    format!("{at}.account_ids[{i}]"),
                    format!("{id} is the management account; set include_management_account to select it"),
                );
            }
        }
        let accounts: BTreeSet<String> = selector.account_ids.iter().cloned().collect();
        let mut units = BTreeSet::new();
        // Tags alone: the whole organization, filtered by them.
        let tags_only = selector.organizational_unit_ids.is_empty() && path_units.is_empty() && accounts.is_empty();
        if tags_only && !selector.tags.is_empty() {
            units.extend(tree.subtree(&tree.root_id));
        }
        for id in selector.organizational_unit_ids.iter().chain(&path_units) {
            if selector.exclude_descendants {
                units.insert(id.clone());
            } else {
                units.extend(tree.subtree(id));
            }
        }
        let excluded_units: BTreeSet<String> = selector
            .exclude_organizational_unit_ids
            .iter()
            .chain(&excluded_path_units)
            .flat_map(|id| tree.subtree(id))
            .collect();
        let matcher = Matcher {
            units,
            excluded_units,
            accounts,
            excluded_accounts: selector.exclude_account_ids.iter().cloned().collect(),
            management_account_id: tree.organization.management_account_id.clone(),
            include_management_account: selector.include_management_account,
            states: selector.states.clone(),
        };
        v.finish(matcher)
    }

    /// How the selector takes `account` (whose `parent_id` says where it is): `None` when it does not match,
    /// `Some(Ok(()))` when selected, `Some(Err(reason))` when matched but skipped for its state. Tag conditions
    /// are not applied here (see [`Structural::finish`]).
    pub fn classify(&self, account: &AccountInfo) -> Option<Result<(), String>> {
        let matched = self.units.contains(&account.parent_id) || self.accounts.contains(&account.id);
        if !matched
            || self.excluded_accounts.contains(&account.id)
            || self.excluded_units.contains(&account.parent_id)
            || (account.id == self.management_account_id && !self.include_management_account)
        {
            return None;
        }
        if self.states.contains(&account.state) {
            Some(Ok(()))
        } else {
            Some(Err(format!("account is {}", account.state.as_str())))
        }
    }
}

impl Structural {
    /// Accounts whose tags the tag conditions need; empty when the selector has none.
    pub fn accounts_needing_tags(&self) -> Vec<String> {
        if self.tags.is_empty() {
            return Vec::new();
        }
        self.candidates.iter().chain(self.skipped.iter().map(|s| &s.account)).map(|a| a.id.clone()).collect()
    }

    /// Applies the tag conditions; `tags` must hold every account of [`Structural::accounts_needing_tags`]
    /// (an account missing from it has no tags).
    pub fn finish(self, tags: &AccountTags) -> Selection {
        let conditions = self.tags;
        let matches = |id: &str| {
            let empty = BTreeMap::new();
            let t = tags.get(id).unwrap_or(&empty);
            conditions.iter().all(|c| match (&c.value, t.get(&c.key)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(want), Some(have)) => want == have,
            })
        };
        Selection {
            selected: self.candidates.into_iter().filter(|a| matches(&a.id)).collect(),
            skipped: self.skipped.into_iter().filter(|s| matches(&s.account.id)).collect(),
        }
    }
}

/// Test and benchmark helpers: build trees from a compact description.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixture {
    use super::*;

    /// A tree builder: `unit(parent, id, name)` and `account(parent, id, name, state)`.
    #[derive(Debug)]
    pub struct TreeBuilder {
        tree: OrgTree,
    }

    impl TreeBuilder {
        /// An organization with management account `management` and root `r-root`.
        pub fn new(org_id: &str, management: &str, root_id: &str) -> TreeBuilder {
            let mut units = BTreeMap::new();
            units.insert(
                root_id.to_string(),
                OrgUnit {
                    id: root_id.into(),
                    name: "Root".into(),
                    parent_id: None,
                    children: vec![],
                    accounts: vec![],
                },
            );
            TreeBuilder {
                tree: OrgTree {
                    organization: OrganizationInfo {
                        id: org_id.into(),
                        arn: format!("arn:aws:organizations::{management}:organization/{org_id}"),
                        management_account_id: management.into(),
                    },
                    root_id: root_id.into(),
                    units,
                    accounts: BTreeMap::new(),
                },
            }
            .account(root_id, management, "management", AccountState::Active)
        }

        /// Adds an OU.
        pub fn unit(mut self, parent: &str, id: &str, name: &str) -> TreeBuilder {
            self.tree.units.insert(
                id.into(),
                OrgUnit {
                    id: id.into(),
                    name: name.into(),
                    parent_id: Some(parent.into()),
                    children: vec![],
                    accounts: vec![],
                },
            );
            if let Some(p) = self.tree.units.get_mut(parent) {
                p.children.push(id.into());
            }
            self
        }

        /// Adds an account.
        pub fn account(mut self, parent: &str, id: &str, name: &str, state: AccountState) -> TreeBuilder {
            self.tree.accounts.insert(
                id.into(),
                AccountInfo {
                    id: id.into(),
                    name: name.into(),
                    email: format!("{name}@example.com"),
                    state,
                    parent_id: parent.into(),
                    joined_at: None,
                },
            );
            if let Some(p) = self.tree.units.get_mut(parent) {
                p.accounts.push(id.into());
            }
            self
        }

        /// The tree.
        pub fn build(self) -> OrgTree {
            self.tree
        }
    }

    /// An organization of `accounts` accounts, as large as the console's benchmark and tests need: a security
    /// account (`111122223333`) under Security, and the rest (`account-00000`…, ids from `200000000000`, every
    /// 997th SUSPENDED) under Workloads (`ou-root-workload`) in OUs of at most 500.
    pub fn wide(accounts: usize) -> OrgTree {
        let units = accounts.div_ceil(500).max(1);
        let mut tree = TreeBuilder::new("o-benchmark0", "123456789012", "r-root")
            .unit("r-root", "ou-root-workload", "Workloads")
            .unit("r-root", "ou-root-security", "Security")
            .account("ou-root-security", "111122223333", "security", AccountState::Active);
        for u in 0..units {
            tree = tree.unit("ou-root-workload", &format!("ou-root-w{u:07}"), &format!("W{u}"));
        }
        for i in 0..accounts.saturating_sub(1) {
            let state = if i % 997 == 0 { AccountState::Suspended } else { AccountState::Active };
            let id = format!("{:012}", 200_000_000_000u64 + i as u64);
            tree = tree.account(&format!("ou-root-w{:07}", i % units), &id, &format!("account-{i:05}"), state);
        }
        tree.build()
    }
}

#[cfg(test)]
mod tests {
    use super::{fixture::TreeBuilder, *};
    use crate::spec::TagCondition;

    const MGMT: &str = "123456789012";

    /// Root ─┬─ Workloads ─┬─ Prod ── Payments
    ///       │             └─ Dev
    ///       └─ Sandbox
    fn tree() -> OrgTree {
        TreeBuilder::new("o-abcdefghij", MGMT, "r-root")
            .unit("r-root", "ou-root-workload", "Workloads")
            .unit("ou-root-workload", "ou-root-prodxxxx", "Prod")
            .unit("ou-root-prodxxxx", "ou-root-payments", "Payments")
            .unit("ou-root-workload", "ou-root-devxxxxx", "Dev")
            .unit("r-root", "ou-root-sandboxx", "Sandbox")
            .account("ou-root-workload", "100000000001", "shared", AccountState::Active)
            .account("ou-root-prodxxxx", "100000000002", "prod-a", AccountState::Active)
            .account("ou-root-prodxxxx", "100000000003", "prod-closed", AccountState::Suspended)
            .account("ou-root-payments", "100000000004", "payments", AccountState::Active)
            .account("ou-root-devxxxxx", "100000000005", "dev-a", AccountState::Active)
            .account("ou-root-sandboxx", "100000000006", "sandbox", AccountState::Active)
            .build()
    }

    #[test]
    fn placing_an_account_moves_it_and_removing_it_takes_it_out() {
        let mut t = tree();
        let mut moved = t.accounts["100000000006"].clone();
        moved.parent_id = "ou-root-devxxxxx".into();
        assert!(t.place(moved));
        assert_eq!(t.units["ou-root-sandboxx"].accounts, Vec::<String>::new());
        assert_eq!(t.units["ou-root-devxxxxx"].accounts, ["100000000005", "100000000006"]);
        assert_eq!(t.accounts["100000000006"].parent_id, "ou-root-devxxxxx");

        let joined = AccountInfo {
            id: "100000000000".into(),
            name: "new".into(),
            email: String::new(),
            state: AccountState::Active,
            parent_id: "ou-root-devxxxxx".into(),
            joined_at: None,
        };
        assert!(t.place(joined.clone()));
        assert_eq!(t.units["ou-root-devxxxxx"].accounts, ["100000000000", "100000000005", "100000000006"]);
        let before = t.clone();
        assert!(!t.place(AccountInfo { parent_id: "ou-root-unknownx".into(), ..joined }), "an unknown parent");
        assert_eq!(t, before, "left as it was");

        t.remove_account("100000000005");
        assert!(!t.accounts.contains_key("100000000005"));
        assert_eq!(t.units["ou-root-devxxxxx"].accounts, ["100000000000", "100000000006"]);
    }

    fn tags() -> AccountTags {
        let mut t = AccountTags::new();
        t.insert("100000000002".into(), [("env".to_string(), "prod".to_string())].into());
        t.insert(
            "100000000004".into(),
            [("env".to_string(), "prod".to_string()), ("pci".to_string(), "yes".to_string())].into(),
        );
        t.insert("100000000005".into(), [("env".to_string(), "dev".to_string())].into());
        t
    }

    fn sel(f: impl FnOnce(&mut TargetSelector)) -> TargetSelector {
        let mut s = TargetSelector { states: [AccountState::Active].into(), ..Default::default() };
        f(&mut s);
        s
    }

    /// One helper: the selector → (selected ids, skipped ids).
    fn check(s: TargetSelector, selected: &[&str], skipped: &[&str]) {
        let t = tree();
        let structural = resolve(&t, &s, "targets").unwrap();
        let got = structural.finish(&tags());
        let ids = |v: Vec<&AccountInfo>| v.into_iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(got.selected.iter().collect()), selected, "{s:?}");
        assert_eq!(ids(got.skipped.iter().map(|s| &s.account).collect()), skipped, "{s:?}");
    }

    #[test]
    fn selector_semantics() {
        let ou = |id: &str| vec![id.to_string()];
        // Recursive by default; the suspended account is skipped.
        check(
            sel(|s| s.organizational_unit_ids = ou("ou-root-workload")),
            &["100000000001", "100000000002", "100000000004", "100000000005"],
            &["100000000003"],
        );
        // Direct children only.
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("ou-root-prodxxxx");
                s.exclude_descendants = true;
            }),
            &["100000000002"],
            &["100000000003"],
        );
        // The root selects everything but the management account.
        check(
            sel(|s| s.organizational_unit_ids = ou("r-root")),
            &["100000000001", "100000000002", "100000000004", "100000000005", "100000000006"],
            &["100000000003"],
        );
        // Tags alone select from the whole organization; the management account only when asked for.
        let prod = || vec![crate::spec::TagCondition { key: "env".into(), value: Some("prod".into()) }];
        check(sel(|s| s.tags = prod()), &["100000000002", "100000000004"], &[]);
        let tagged = tree();
        let mut with_mgmt = tags();
        with_mgmt.insert(MGMT.into(), [("env".to_string(), "prod".to_string())].into());
        let pick = |include: bool| {
            let s = sel(|s| {
                s.tags = prod();
                s.include_management_account = include;
            });
            let got = resolve(&tagged, &s, "targets").unwrap().finish(&with_mgmt);
            got.selected.into_iter().map(|a| a.id).collect::<Vec<_>>()
        };
        assert!(!pick(false).contains(&MGMT.to_string()));
        assert!(pick(true).contains(&MGMT.to_string()));
        // ...unless asked.
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("r-root");
                s.include_management_account = true;
            }),
            &["100000000001", "100000000002", "100000000004", "100000000005", "100000000006", MGMT],
            &["100000000003"],
        );
        // Exclusions: an OU subtree and an account.
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("r-root");
                s.exclude_organizational_unit_ids = ou("ou-root-prodxxxx");
                s.exclude_account_ids = ou("100000000006");
            }),
            &["100000000001", "100000000005"],
            &[],
        );
        // Accounts by id, union with OUs.
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("ou-root-devxxxxx");
                s.account_ids = ou("100000000006");
            }),
            &["100000000005", "100000000006"],
            &[],
        );
        // Tags: key=value, and key exists; all must hold.
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("r-root");
                s.tags = vec![TagCondition { key: "env".into(), value: Some("prod".into()) }];
            }),
            &["100000000002", "100000000004"],
            &[],
        );
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("r-root");
                s.tags = vec![
                    TagCondition { key: "env".into(), value: Some("prod".into()) },
                    TagCondition { key: "pci".into(), value: None },
                ];
            }),
            &["100000000004"],
            &[],
        );
        // By path, and excluding by path.
        check(
            sel(|s| s.organizational_unit_paths = vec!["/Root/Workloads/Prod".into()]),
            &["100000000002", "100000000004"],
            &["100000000003"],
        );
        check(
            sel(|s| {
                s.organizational_unit_paths = vec!["/Root".into()];
                s.exclude_organizational_unit_paths = vec!["/Root/Workloads".into()];
            }),
            &["100000000006"],
            &[],
        );
        // Other states on request.
        check(
            sel(|s| {
                s.organizational_unit_ids = ou("ou-root-prodxxxx");
                s.states = [AccountState::Active, AccountState::Suspended].into();
            }),
            &["100000000002", "100000000003", "100000000004"],
            &[],
        );
    }

    #[test]
    fn unknown_ids_are_named() {
        let s = sel(|s| {
            s.organizational_unit_ids = vec!["ou-root-nothere1".to_string()];
            s.account_ids = vec!["999999999999".to_string(), MGMT.to_string()];
        });
        let err = resolve(&tree(), &s, "targets").unwrap_err();
        let msgs: Vec<String> = err.violations().iter().map(|v| v.to_string()).collect();
        assert_eq!(
            msgs,
            vec![
                "targets.organizational_unit_ids[0]: ou-root-nothere1 is not an OU or root of organization o-abcdefghij",
                "targets.account_ids[0]: 999999999999 is not an account of organization o-abcdefghij",
                "targets.account_ids[1]: 123456789012 is the management account; set include_management_account to select it",
            ]
        );
    }

    #[test]
    fn a_name_the_tree_does_not_have_is_unknown_and_the_management_account_is_not() {
        let t = tree();
        let unknown = |f: fn(&mut TargetSelector)| names_unknown(&t, &sel(f));
        assert!(!unknown(|s| s.organizational_unit_ids = vec!["ou-root-prodxxxx".into()]));
        assert!(!unknown(|s| s.organizational_unit_paths = vec!["/Root/Workloads/Prod/Payments".into()]));
        assert!(!unknown(|s| s.account_ids = vec![MGMT.into(), "100000000006".into()]), "known, if refused");
        assert!(unknown(|s| s.organizational_unit_ids = vec!["ou-root-newxxxxx".into()]));
        assert!(unknown(|s| s.exclude_organizational_unit_ids = vec!["ou-root-newxxxxx".into()]));
        assert!(unknown(|s| s.organizational_unit_paths = vec!["/Root/Workloads/New".into()]));
        assert!(unknown(|s| s.exclude_organizational_unit_paths = vec!["/Root/New".into()]));
        assert!(unknown(|s| s.account_ids = vec!["100000000009".into()]));
    }

    #[test]
    fn tags_are_only_needed_with_tag_conditions() {
        let t = tree();
        let plain =
            resolve(&t, &sel(|s| s.organizational_unit_ids = vec!["ou-root-prodxxxx".to_string()]), "targets").unwrap();
        assert!(plain.accounts_needing_tags().is_empty());
        let tagged = resolve(
            &t,
            &sel(|s| {
                s.organizational_unit_ids = vec!["ou-root-prodxxxx".to_string()];
                s.tags = vec![TagCondition { key: "env".into(), value: None }];
            }),
            "targets",
        )
        .unwrap();
        assert_eq!(tagged.accounts_needing_tags(), vec!["100000000002", "100000000004", "100000000003"]);
    }

    #[test]
    fn paths() {
        assert_eq!(tree().path_of("ou-root-payments"), "/Root/Workloads/Prod/Payments");
        assert_eq!(tree().path_of("r-root"), "/Root");
    }
}
