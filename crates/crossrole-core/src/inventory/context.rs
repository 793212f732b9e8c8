//! What the organization is, for classifying its roles: its members now and before, the time, and what crossrole
//! expects of the roles it owns.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use crate::{names::Partition, org::OrgTree, plan::DesiredRole, policy::PolicyDocument, spec::AccountState};

/// Days without use after which a role is reported unused, unless the caller says otherwise.
pub const DEFAULT_UNUSED_AFTER_DAYS: u32 = 90;

/// The organization, as classification needs it.
///
/// `expected` holds one entry per crossrole-owned role the journal knows, keyed by (account id, role name). The
/// engine may fill it account by account (clear it and insert the account's entries before classifying that
/// account's roles) so it never holds the whole organization's documents at once.
#[derive(Clone)]
pub struct Context {
    /// The organization's id (`o-…`).
    pub organization_id: String,
    /// Every account in the organization now, whatever its state (ACTIVE, SUSPENDED, …), the management account
    /// among them.
    pub member_account_ids: BTreeSet<String>,
    /// Accounts that are no ACTIVE members now and were members before, or are listed in another state (see
    /// [`former_members`]). An account here is a former member even when `member_account_ids` lists it.
    pub former_member_account_ids: BTreeSet<String>,
    /// The partition the organization lives in (for root ARNs shown).
    pub partition: Partition,
    /// Now, Unix seconds.
    pub now: i64,
    /// A role not used for this many days (or never used and older than this) is reported unused.
    pub unused_after_days: u32,
    /// What crossrole's journal expects of the roles it owns, by (account id, role name).
    pub expected: BTreeMap<(String, String), ExpectedRole>,
    /// The specs crossrole's journal has placed in the account being classified, among those its roles' ownership
    /// tags name; `None`: not known (no role claimed for a spec is questioned).
    pub placed_specs: Option<BTreeSet<String>>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("organization_id", &self.organization_id)
            .field("members", &self.member_account_ids.len())
            .field("former_members", &self.former_member_account_ids.len())
            .field("partition", &self.partition)
            .field("now", &self.now)
            .field("unused_after_days", &self.unused_after_days)
            .field("expected", &self.expected.len())
            .field("placed_specs", &self.placed_specs)
            .finish()
    }
}

impl Context {
    /// A context with no members, no expectations and the default unused threshold.
    pub fn new(organization_id: impl Into<String>, partition: Partition, now: i64) -> Context {
        Context {
            organization_id: organization_id.into(),
            member_account_ids: BTreeSet::new(),
            former_member_account_ids: BTreeSet::new(),
            partition,
            now,
            unused_after_days: DEFAULT_UNUSED_AFTER_DAYS,
            expected: BTreeMap::new(),
            placed_specs: None,
        }
    }
}

/// The accounts to classify as former members of the organization `tree` is now: those seen as its members before
/// (`seen`: what the journal noted of every tree discovery read) and those it lists in a state other than ACTIVE —
/// SUSPENDED or PENDING_CLOSURE (a closed account stays listed, SUSPENDED, for some 90 days after it is closed),
/// PENDING_ACTIVATION, CLOSED — unless the tree has them ACTIVE now. An account the organization never held and
/// crossrole never saw is no former member: it is outside.
pub fn former_members<'a>(tree: &OrgTree, seen: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    let active = |id: &str| tree.accounts.get(id).is_some_and(|a| a.state == AccountState::Active);
    let listed_not_active = tree.accounts.values().filter(|a| a.state != AccountState::Active).map(|a| a.id.clone());
    seen.into_iter().map(str::to_string).chain(listed_not_active).filter(|id| !active(id)).collect()
}

/// What crossrole expects of one role it owns, in one account: built from the spec's [`DesiredRole`] resolved for
/// the account ([`DesiredRole::in_account`]), as the planner would.
///
/// Compared by meaning with what IAM lists: the path, the trust policy, the managed policy ARNs, the inline
/// policies (names and documents), the boundary and the tags. IAM's account authorization details carry neither
/// the description nor the maximum session duration, so the inventory cannot see those drift; `crossrole plan`
/// does. Its documents may hold an ExternalId: it is never serialized and its `Debug` shows no document.
#[derive(Clone, PartialEq, Eq)]
pub struct ExpectedRole {
    /// The spec that owns the role.
    pub spec_name: String,
    /// The IAM path.
    pub path: String,
    /// The trust policy.
    pub trust_policy: PolicyDocument,
    /// Managed policy ARNs.
    pub managed_policy_arns: BTreeSet<String>,
    /// Inline policies by name.
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// The boundary's ARN.
    pub permissions_boundary_arn: Option<String>,
    /// Every tag, ownership tags included.
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for ExpectedRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedRole")
            .field("spec_name", &self.spec_name)
            .field("path", &self.path)
            .field("managed_policy_arns", &self.managed_policy_arns)
            .field("inline_policies", &self.inline_policies.keys().collect::<Vec<_>>())
            .field("permissions_boundary_arn", &self.permissions_boundary_arn)
            .finish_non_exhaustive()
    }
}

impl ExpectedRole {
    /// What `desired` (already resolved for the account, see [`DesiredRole::in_account`]) expects.
    pub fn from_desired(desired: &DesiredRole) -> ExpectedRole {
        ExpectedRole {
            spec_name: desired.spec_name.clone(),
            path: desired.path.clone(),
            trust_policy: desired.trust_policy.clone(),
            managed_policy_arns: desired.managed_policy_arns.clone(),
            inline_policies: desired.inline_policies.clone(),
            permissions_boundary_arn: desired.permissions_boundary_arn.clone(),
            tags: desired.tags.clone(),
        }
    }
}
