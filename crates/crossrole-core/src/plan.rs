//! The planner: desired role vs observed role → the changes, in a safe order.
//!
//! `plan(desired, observed)` is pure. The AWS side reads the observed role, calls it, and applies the changes in
//! the order given. The order is safe:
//! - a new role is created with its trust policy, boundary and ownership tags in one call, so it never exists
//!   without them; permissions are added after, then the spec's own tags (the ceiling's templates let a role be
//!   created, or claimed, with the ownership tags alone: no other tag reaches a role before it is crossrole's);
//! - on update, a boundary where there was none comes first (it only narrows, and under the organization's
//!   ceiling IAM refuses every other write to a role until the ceiling bounds it); a role being adopted is then
//!   claimed (its ownership tags, which the ceiling's templates require for every later write); then permissions
//!   are reduced (detach, delete inline), the trust policy is replaced (one atomic call), permissions are added or
//!   replaced, then metadata: at every step the role grants at most what it granted before or will grant after;
//! - a role is deleted only after its managed and inline policies are removed (IAM requires it).
//!
//! Ownership: a role is crossrole's when it carries `crossrole:managed-by=crossrole`; it is this spec's when
//! `crossrole:spec` names the spec. Any other existing role is a conflict and gets no changes, unless the spec
//! adopts it (`adopt_existing`, or in an account of `adopt_accounts` the one role whose unique id
//! `adopt_role_ids` names: see [`adoption_refused`]), and a role of another spec is never adopted.
//!
//! Under the ceiling ([`under_ceiling`]), a role whose boundary is not the ceiling is bounded by it before anything
//! else — or, when it carries another boundary and is not being removed, refused: putting the ceiling in another
//! boundary's place could widen the role for a moment.

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    names::{self, Partition},
    ops::{ChangeKind, ShownChange},
    policy::{PolicyDocument, trust_policy},
    secret::Redactor,
    spec::{AccessSpec, OWNER_TAG_KEY, SPEC_TAG_KEY, owner_of},
};

/// A role's own attributes, its policies aside: what `CreateRole` sets, and what `GetRole` answers besides the ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleAttributes {
    /// The role's name, unique in the account.
    pub name: String,
    /// The IAM path it lives under (`/` or `/crossrole/`).
    pub path: String,
    /// Its description; empty when it has none.
    pub description: String,
    /// Maximum session duration in seconds.
    pub max_session_duration: u32,
    /// Its trust policy document: the JSON sent, or as IAM returned it (URL-encoded or not).
    pub trust_policy: String,
    /// The boundary that caps its permissions, if any.
    pub permissions_boundary_arn: Option<String>,
    /// Its tags, ownership tags among them.
    pub tags: BTreeMap<String, String>,
}

/// A role as read from IAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedRole {
    /// The role's ARN.
    pub arn: String,
    /// IAM's unique id of the role (`RoleId`, `AROA…`; empty when not read): a role deleted and made again under
    /// the same name has another, which is how an adoption approved for one role is never of a later one.
    pub role_id: String,
    /// Its name, path, description, session duration, trust policy, boundary and tags.
    pub attributes: RoleAttributes,
    /// Attached managed policy ARNs.
    pub managed_policy_arns: BTreeSet<String>,
    /// Inline policies by name, as IAM returned them.
    pub inline_policies: BTreeMap<String, String>,
}

impl ObservedRole {
    /// Who owns the role, as far as crossrole is concerned.
    pub fn owner(&self) -> Owner {
        match owner_of(&self.attributes.tags) {
            Some(spec) => Owner::Spec(spec.to_string()),
            None => Owner::Nobody,
        }
    }
}

/// Who owns an existing role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Not crossrole.
    Nobody,
    /// crossrole, for this spec.
    Spec(String),
}

/// The role a spec wants, the same in every target account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredRole {
    /// The spec the role belongs to (written in its ownership tag).
    pub spec_name: String,
    /// The role's name.
    pub name: String,
    /// The IAM path it is created under.
    pub path: String,
    /// Its description.
    pub description: String,
    /// Maximum session duration in seconds.
    pub max_session_duration: u32,
    /// Who may assume it, as the policy document IAM is sent.
    pub trust_policy: PolicyDocument,
    /// Permissions boundary.
    pub permissions_boundary_arn: Option<String>,
    /// Tags, ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Managed policies.
    pub managed_policy_arns: BTreeSet<String>,
    /// Inline policy documents by policy name.
    pub inline_policies: BTreeMap<String, PolicyDocument>,
    /// Adopt an existing role crossrole does not own.
    pub adopt_existing: bool,
    /// Adopt one only in these accounts (resolved per account by [`DesiredRole::in_account`]).
    pub adopt_accounts: BTreeSet<String>,
    /// The role approved in each of those accounts, by its unique id.
    pub adopt_role_ids: BTreeMap<String, String>,
    /// In one account ([`DesiredRole::in_account`]): the unique id of the one role crossrole does not own that it
    /// takes over there, if any — the role a person approved, never one made since under the same name.
    pub adopt_role_id: Option<String>,
}

impl DesiredRole {
    /// The role `spec` wants.
    pub fn from_spec(spec: &AccessSpec, partition: Partition) -> DesiredRole {
        let r = &spec.role;
        DesiredRole {
            spec_name: spec.name.clone(),
            name: r.name.clone(),
            path: r.path.clone(),
            description: r.description.clone(),
            max_session_duration: r.max_session_duration.as_secs() as u32,
            trust_policy: trust_policy(&r.trust, partition),
            permissions_boundary_arn: r.permissions_boundary_arn.clone(),
            tags: r.desired_tags(&spec.name),
            managed_policy_arns: r.managed_policy_arns.clone(),
            inline_policies: r.inline_policies.clone(),
            adopt_existing: r.adopt_existing,
            adopt_accounts: r.adopt_accounts.clone(),
            adopt_role_ids: r.adopt_role_ids.clone(),
            adopt_role_id: None,
        }
    }

    /// The role's ARN in `account`.
    pub fn arn(&self, partition: Partition, account: &str) -> String {
        names::role_arn(partition, account, &self.path, &self.name)
    }

    /// The role as it must be in the account at `place`: per-account values resolved (`${partition}` and
    /// `${account_id}` in the boundary and managed policy ARNs; those and `${account_name}` in the description and
    /// tag values, see [`names::expand_tag_value`]). Borrowed when there is nothing to resolve.
    pub fn in_account(&self, place: names::Place<'_>) -> std::borrow::Cow<'_, DesiredRole> {
        let templated = |s: &str| s.contains("${");
        let adopts_here = !self.adopt_existing && self.adopt_accounts.contains(place.account_id);
        if !adopts_here
            && !self.permissions_boundary_arn.as_deref().is_some_and(templated)
            && !self.managed_policy_arns.iter().any(|a| templated(a))
            && !templated(&self.description)
            && !self.tags.values().any(|v| templated(v))
        {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut d = self.clone();
        if adopts_here {
            d.adopt_role_id = self.adopt_role_ids.get(place.account_id).cloned();
        }
        d.permissions_boundary_arn = d.permissions_boundary_arn.map(|b| names::expand(&b, place));
        d.managed_policy_arns = d.managed_policy_arns.iter().map(|a| names::expand(a, place)).collect();
        d.description = names::expand(&d.description, place).chars().take(1000).collect();
        for value in d.tags.values_mut() {
            *value = names::expand_tag_value(value, place);
        }
        std::borrow::Cow::Owned(d)
    }
}

/// One change to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Create the role with its trust policy, description, session duration, boundary and tags.
    CreateRole(RoleAttributes),
    /// Replace the trust policy.
    UpdateTrustPolicy {
        /// Before, as IAM returned it.
        before: String,
        /// After: the JSON to send.
        after: String,
    },
    /// Change the description.
    UpdateDescription {
        /// The description now.
        before: String,
        /// The description to set.
        after: String,
    },
    /// Change the maximum session duration.
    UpdateMaxSessionDuration {
        /// Before, seconds.
        before: u32,
        /// After, seconds.
        after: u32,
    },
    /// Set or replace the boundary.
    PutPermissionsBoundary {
        /// The boundary now, if any.
        before: Option<String>,
        /// The boundary to set.
        after: String,
    },
    /// Remove the boundary.
    DeletePermissionsBoundary {
        /// The boundary being removed.
        before: String,
    },
    /// Attach a managed policy.
    AttachManagedPolicy {
        /// The managed policy to attach.
        arn: String,
    },
    /// Detach a managed policy.
    DetachManagedPolicy {
        /// The managed policy to detach.
        arn: String,
    },
    /// Create or replace an inline policy.
    PutInlinePolicy {
        /// The inline policy's name.
        name: String,
        /// Before, as IAM returned it, if it existed.
        before: Option<String>,
        /// After: the JSON to send.
        after: String,
    },
    /// Delete an inline policy.
    DeleteInlinePolicy {
        /// The inline policy's name.
        name: String,
        /// Before, as IAM returned it.
        before: String,
    },
    /// Add or change tags.
    TagRole {
        /// Tags to set.
        tags: BTreeMap<String, String>,
        /// Their values before, where they existed.
        before: BTreeMap<String, String>,
    },
    /// Remove tags.
    UntagRole {
        /// Keys with their values before.
        before: BTreeMap<String, String>,
    },
    /// Delete the role.
    DeleteRole {
        /// The role's name.
        name: String,
    },
    /// Deny every session issued before now (the `AWSRevokeOlderSessions` inline policy), because a later change
    /// takes access away (see [`crate::revocation`]).
    RevokeSessions {
        /// The revocation on the role now, normalized, if any (merged into this one).
        before: Option<String>,
        /// What is written: the instant, and how long the deny stays.
        revocation: crate::revocation::Revocation,
        /// How long the deny stays after the write, in seconds: the role's longest session (shorter only under
        /// [`crate::revocation::Revoke::HeldAtMost`], a setting for tests on emulators, which `reason` then names).
        keep_for: u32,
        /// The change that takes access away, for people.
        reason: String,
        /// The statements of the policy on the role that are not revocations (a person's): written again as they
        /// are, beside the revocation.
        others: crate::revocation::Others,
    },
    /// Nothing is written: a change takes access away and the sessions issued before it are not revoked, because
    /// the spec or the request turned revocation off. The plan and the operation's record say so.
    SessionsNotRevoked {
        /// What is taken away, and who turned revocation off.
        reason: String,
    },
}

impl Change {
    /// What kind of change it is.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::CreateRole { .. } => ChangeKind::CreateRole,
            Change::UpdateTrustPolicy { .. } => ChangeKind::UpdateTrustPolicy,
            Change::UpdateDescription { .. } => ChangeKind::UpdateDescription,
            Change::UpdateMaxSessionDuration { .. } => ChangeKind::UpdateMaxSessionDuration,
            Change::PutPermissionsBoundary { .. } => ChangeKind::PutPermissionsBoundary,
            Change::DeletePermissionsBoundary { .. } => ChangeKind::DeletePermissionsBoundary,
            Change::AttachManagedPolicy { .. } => ChangeKind::AttachManagedPolicy,
            Change::DetachManagedPolicy { .. } => ChangeKind::DetachManagedPolicy,
            Change::PutInlinePolicy { .. } => ChangeKind::PutInlinePolicy,
            Change::DeleteInlinePolicy { .. } => ChangeKind::DeleteInlinePolicy,
            Change::TagRole { .. } => ChangeKind::TagRole,
            Change::UntagRole { .. } => ChangeKind::UntagRole,
            Change::DeleteRole { .. } => ChangeKind::DeleteRole,
            Change::RevokeSessions { .. } => ChangeKind::RevokeSessions,
            Change::SessionsNotRevoked { .. } => ChangeKind::SessionsNotRevoked,
        }
    }

    /// A one-line description for logs and tables (it never carries a policy document).
    pub fn summary(&self) -> String {
        let subject = self.subject();
        let kind = self.kind().describe();
        if subject.is_empty() { kind.to_string() } else { format!("{kind} {subject}") }
    }

    /// What the change is about: the role, policy, boundary or tag keys; empty for trust and role metadata.
    pub fn subject(&self) -> String {
        match self {
            Change::CreateRole(role) => format!("{}{}", role.path, role.name),
            Change::UpdateTrustPolicy { .. }
            | Change::UpdateDescription { .. }
            | Change::UpdateMaxSessionDuration { .. } => String::new(),
            Change::PutPermissionsBoundary { after, .. } => after.clone(),
            Change::DeletePermissionsBoundary { before } => before.clone(),
            Change::AttachManagedPolicy { arn } | Change::DetachManagedPolicy { arn } => arn.clone(),
            Change::PutInlinePolicy { name, .. } | Change::DeleteInlinePolicy { name, .. } => name.clone(),
            Change::TagRole { tags, .. } => tags.keys().cloned().collect::<Vec<_>>().join(","),
            Change::UntagRole { before } => before.keys().cloned().collect::<Vec<_>>().join(","),
            Change::DeleteRole { name } => name.clone(),
            Change::RevokeSessions { .. } => crate::revocation::POLICY_NAME.to_string(),
            Change::SessionsNotRevoked { .. } => String::new(),
        }
    }

    /// The change as people see it: documents pretty-printed, every ExternalId replaced by its mark.
    pub fn shown(&self, redactor: &Redactor) -> ShownChange {
        let (before, after) = match self {
            Change::CreateRole(RoleAttributes {
                path,
                description,
                max_session_duration,
                trust_policy,
                permissions_boundary_arn,
                tags,
                ..
            }) => {
                let mut after = format!("path: {path}\nmax session: {max_session_duration}s\n");
                if !description.is_empty() {
                    after.push_str(&format!("description: {description}\n"));
                }
                if let Some(b) = permissions_boundary_arn {
                    after.push_str(&format!("permissions boundary: {b}\n"));
                }
                let trust = redactor.policy_text(&pretty(trust_policy));
                after.push_str(&format!("tags:\n{}\ntrust policy:\n{trust}", tags_text(tags)));
                (String::new(), after)
            }
            // Before in the order of after's members, so that a line diff shows what the texts say differently.
            Change::UpdateTrustPolicy { before, after } => {
                (redactor.policy_text(&crate::policy::in_order_of(before, after)), redactor.policy_text(&pretty(after)))
            }
            Change::UpdateDescription { before, after } => (before.clone(), after.clone()),
            Change::UpdateMaxSessionDuration { before, after } => (format!("{before}s"), format!("{after}s")),
            Change::PutPermissionsBoundary { before, after } => (before.clone().unwrap_or_default(), after.clone()),
            Change::DeletePermissionsBoundary { before } => (before.clone(), String::new()),
            Change::AttachManagedPolicy { arn } => (String::new(), arn.clone()),
            Change::DetachManagedPolicy { arn } => (arn.clone(), String::new()),
            Change::PutInlinePolicy { before, after, .. } => (
                redactor
                    .policy_text(&before.as_deref().map(|b| crate::policy::in_order_of(b, after)).unwrap_or_default()),
                redactor.policy_text(&pretty(after)),
            ),
            Change::DeleteInlinePolicy { before, .. } => (redactor.policy_text(before), String::new()),
            Change::TagRole { tags, before } => (tags_text(before), tags_text(tags)),
            Change::UntagRole { before } => (tags_text(before), String::new()),
            Change::DeleteRole { name } => (name.clone(), String::new()),
            // Without the instant: a plan and the apply that carries it (moments later) show the same change.
            Change::RevokeSessions { before, keep_for, reason, others, .. } => (
                redactor.policy_text(&before.clone().unwrap_or_default()),
                format!(
                    "deny every session of the role issued before this write (aws:TokenIssueTime), kept {keep_for}s, \
                     because {reason}{}",
                    if others.is_empty() {
                        String::new()
                    } else {
                        format!("; the policy's other statements are kept as they are: {}", others.named().join(", "))
                    }
                ),
            ),
            Change::SessionsNotRevoked { reason } => (String::new(), reason.clone()),
        };
        ShownChange { kind: self.kind(), subject: self.subject(), before, after }
    }
}

fn pretty(doc_json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(doc_json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| doc_json.to_string())
}

fn tags_text(tags: &BTreeMap<String, String>) -> String {
    tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// The plan for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountPlan {
    /// Nothing to do.
    InSync,
    /// These changes, in this order.
    Changes(Vec<Change>),
    /// The role exists and is not this spec's to change.
    Conflict {
        /// The current owner: `None` for a role crossrole does not manage.
        owner: Option<String>,
    },
}

impl AccountPlan {
    /// The changes (none for in sync or a conflict).
    pub fn changes(&self) -> &[Change] {
        match self {
            AccountPlan::Changes(c) => c,
            _ => &[],
        }
    }
}

/// Why a role crossrole does not own is not taken over in an account where the spec approves an adoption
/// (`desired` as [`DesiredRole::in_account`] made it for that account): no role id was approved there, or the
/// role found is not the one approved (made since under the same name). `None` where the spec approves none, or
/// the role found is the one approved.
pub fn adoption_refused(desired: &DesiredRole, account: &str, observed: &ObservedRole) -> Option<String> {
    if desired.adopt_existing || !desired.adopt_accounts.contains(account) {
        return None;
    }
    let again = "run `crossrole adopt -f <spec file>` to see how it differs from the spec and approve it";
    match desired.adopt_role_ids.get(account) {
        None => Some(format!(
            "role.adopt_accounts names {account} without the id of the role approved there (role.adopt_role_ids), \
             so no role is taken over there; {again}"
        )),
        Some(id) if *id == observed.role_id => None,
        Some(id) => Some(format!(
            "the adoption approved in {account} is of role {id}, and this one is {} (made since under the same \
             name): it is not taken over; {again}",
            if observed.role_id.is_empty() { "another" } else { &observed.role_id }
        )),
    }
}

/// Plans `observed` → `desired` for one account.
pub fn plan(desired: &DesiredRole, observed: Option<&ObservedRole>) -> AccountPlan {
    let Some(observed) = observed else { return changes(create(desired)) };
    match observed.owner() {
        Owner::Spec(s) if s == desired.spec_name => {}
        Owner::Spec(other) => return AccountPlan::Conflict { owner: Some(other) },
        Owner::Nobody if desired.adopt_existing => {}
        // Only the role approved: a role made since under the same name has another id.
        Owner::Nobody if desired.adopt_role_id.as_deref().is_some_and(|id| id == observed.role_id) => {}
        Owner::Nobody => return AccountPlan::Conflict { owner: None },
    }
    if observed.attributes.path != desired.path {
        // IAM cannot move a role to another path: replace it.
        let mut c = delete(observed);
        c.extend(create(desired));
        return changes(c);
    }
    changes(update(desired, observed))
}

/// Plans the removal of this spec's role (destroy, prune). Roles the spec does not own are conflicts.
pub fn plan_delete(spec_name: &str, observed: Option<&ObservedRole>) -> AccountPlan {
    let Some(observed) = observed else { return AccountPlan::InSync };
    match observed.owner() {
        Owner::Spec(s) if s == spec_name => changes(delete(observed)),
        Owner::Spec(other) => AccountPlan::Conflict { owner: Some(other) },
        Owner::Nobody => AccountPlan::Conflict { owner: None },
    }
}

fn changes(c: Vec<Change>) -> AccountPlan {
    if c.is_empty() { AccountPlan::InSync } else { AccountPlan::Changes(c) }
}

fn create(d: &DesiredRole) -> Vec<Change> {
    let (ownership, own): (BTreeMap<String, String>, BTreeMap<String, String>) =
        d.tags.clone().into_iter().partition(|(k, _)| k == OWNER_TAG_KEY || k == SPEC_TAG_KEY);
    let mut c = vec![Change::CreateRole(RoleAttributes {
        name: d.name.clone(),
        path: d.path.clone(),
        description: d.description.clone(),
        max_session_duration: d.max_session_duration,
        trust_policy: d.trust_policy.to_json(),
        permissions_boundary_arn: d.permissions_boundary_arn.clone(),
        tags: ownership,
    })];
    c.extend(d.managed_policy_arns.iter().map(|arn| Change::AttachManagedPolicy { arn: arn.clone() }));
    c.extend(d.inline_policies.iter().map(|(name, doc)| Change::PutInlinePolicy {
        name: name.clone(),
        before: None,
        after: doc.to_json(),
    }));
    if !own.is_empty() {
        c.push(Change::TagRole { tags: own, before: BTreeMap::new() });
    }
    c
}

fn delete(o: &ObservedRole) -> Vec<Change> {
    let mut c: Vec<Change> =
        o.managed_policy_arns.iter().map(|arn| Change::DetachManagedPolicy { arn: arn.clone() }).collect();
    c.extend(
        o.inline_policies
            .iter()
            .map(|(name, doc)| Change::DeleteInlinePolicy { name: name.clone(), before: as_returned(doc) }),
    );
    c.push(Change::DeleteRole { name: o.attributes.name.clone() });
    c
}

/// A document as IAM returned it, for the "before" side of a change: its text, never crossrole's normalization
/// (which decides only whether it differs).
fn as_returned(doc: &str) -> String {
    crate::policy::as_returned(doc)
}

fn same_doc(observed: &str, desired: &PolicyDocument) -> bool {
    PolicyDocument::parse_observed(observed).is_ok_and(|o| &o == desired)
}

fn update(d: &DesiredRole, o: &ObservedRole) -> Vec<Change> {
    let mut bound = Vec::new();
    let mut claim = Vec::new();
    let mut reduce = Vec::new();
    let mut trust = Vec::new();
    let mut grow = Vec::new();
    let mut meta = Vec::new();

    for arn in o.managed_policy_arns.difference(&d.managed_policy_arns) {
        reduce.push(Change::DetachManagedPolicy { arn: arn.clone() });
    }
    for (name, doc) in &o.inline_policies {
        // A revocation is not the spec's: crate::revocation writes and removes it.
        if !d.inline_policies.contains_key(name) && name != crate::revocation::POLICY_NAME {
            reduce.push(Change::DeleteInlinePolicy { name: name.clone(), before: as_returned(doc) });
        }
    }
    match (&o.attributes.permissions_boundary_arn, &d.permissions_boundary_arn) {
        (None, Some(after)) => bound.push(Change::PutPermissionsBoundary { before: None, after: after.clone() }),
        (Some(before), Some(after)) if before != after => {
            grow.push(Change::PutPermissionsBoundary { before: Some(before.clone()), after: after.clone() })
        }
        (Some(before), None) => grow.push(Change::DeletePermissionsBoundary { before: before.clone() }),
        _ => {}
    }
    if o.attributes.max_session_duration > d.max_session_duration {
        reduce.push(Change::UpdateMaxSessionDuration {
            before: o.attributes.max_session_duration,
            after: d.max_session_duration,
        });
    }

    if !same_doc(&o.attributes.trust_policy, &d.trust_policy) {
        trust.push(Change::UpdateTrustPolicy {
            before: as_returned(&o.attributes.trust_policy),
            after: d.trust_policy.to_json(),
        });
    }

    for arn in d.managed_policy_arns.difference(&o.managed_policy_arns) {
        grow.push(Change::AttachManagedPolicy { arn: arn.clone() });
    }
    for (name, doc) in &d.inline_policies {
        match o.inline_policies.get(name) {
            Some(existing) if same_doc(existing, doc) => {}
            existing => grow.push(Change::PutInlinePolicy {
                name: name.clone(),
                before: existing.map(|e| as_returned(e)),
                after: doc.to_json(),
            }),
        }
    }
    if o.attributes.max_session_duration < d.max_session_duration {
        grow.push(Change::UpdateMaxSessionDuration {
            before: o.attributes.max_session_duration,
            after: d.max_session_duration,
        });
    }

    if o.attributes.description != d.description {
        meta.push(Change::UpdateDescription { before: o.attributes.description.clone(), after: d.description.clone() });
    }
    // The tags to set; the ownership tags apart when the role is not crossrole's yet (a claim comes first).
    let adopting = o.owner() == Owner::Nobody;
    let (mut set, mut before) = (BTreeMap::new(), BTreeMap::new());
    let (mut claimed, mut claimed_before) = (BTreeMap::new(), BTreeMap::new());
    for (k, v) in &d.tags {
        match o.attributes.tags.get(k) {
            Some(existing) if existing == v => {}
            existing => {
                let ownership = adopting && (k == OWNER_TAG_KEY || k == SPEC_TAG_KEY);
                let (set, before) =
                    if ownership { (&mut claimed, &mut claimed_before) } else { (&mut set, &mut before) };
                set.insert(k.clone(), v.clone());
                if let Some(e) = existing {
                    before.insert(k.clone(), e.clone());
                }
            }
        }
    }
    if !claimed.is_empty() {
        claim.push(Change::TagRole { tags: claimed, before: claimed_before });
    }
    if !set.is_empty() {
        meta.push(Change::TagRole { tags: set, before });
    }
    let extra: BTreeMap<String, String> = o
        .attributes
        .tags
        .iter()
        .filter(|(k, _)| !d.tags.contains_key(*k) && !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !extra.is_empty() {
        meta.push(Change::UntagRole { before: extra });
    }

    bound.into_iter().chain(claim).chain(reduce).chain(trust).chain(grow).chain(meta).collect()
}

/// Why the ceiling keeps crossrole from changing a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideCeiling {
    /// The boundary the role carries.
    pub boundary: String,
    /// The ceiling.
    pub ceiling: String,
}

impl OutsideCeiling {
    /// The reason, for people: what is wrong and what to do.
    pub fn message(&self, role_arn: &str, role_name: &str) -> String {
        format!(
            "role {role_arn} carries the permissions boundary {}, not the ceiling {}: under the ceiling crossrole \
             writes only to roles the ceiling bounds, and putting the ceiling in place of another boundary could \
             widen the role for a moment; if that is what you want, run `aws iam put-role-permissions-boundary \
             --role-name {role_name} --permissions-boundary {}` in that account and apply again",
            self.boundary, self.ceiling, self.ceiling
        )
    }
}

/// `plan` fitted to the organization's ceiling (`ceiling`: its boundary's ARN in this account), as the bootstrap
/// role's policy requires: every write to an existing role needs the ceiling as that role's boundary, so a role
/// without a boundary is bounded first; one with another boundary is bounded first when it is being removed
/// (`removing`: destroying is never refused) and refused otherwise.
pub fn under_ceiling(
    plan: AccountPlan,
    observed: Option<&ObservedRole>,
    ceiling: &str,
    removing: bool,
) -> Result<AccountPlan, OutsideCeiling> {
    let (AccountPlan::Changes(mut changes), Some(o)) = (plan.clone(), observed) else { return Ok(plan) };
    let before = match &o.attributes.permissions_boundary_arn {
        Some(b) if b == ceiling => return Ok(plan),
        Some(other) if !removing => {
            return Err(OutsideCeiling { boundary: other.clone(), ceiling: ceiling.to_string() });
        }
        b => b.clone(),
    };
    changes.retain(|c| !matches!(c, Change::PutPermissionsBoundary { after, .. } if after == ceiling));
    changes.insert(0, Change::PutPermissionsBoundary { before, after: ceiling.to_string() });
    Ok(AccountPlan::Changes(changes))
}

/// A model of IAM applying `changes` to `observed`: what the role looks like afterwards. Used to check the planner
/// (a plan applied and re-planned is empty) and by in-memory fakes; it follows IAM's semantics, including
/// normalizing the trust policy to the URL-encoded form IAM returns.
pub fn simulate(
    partition: Partition,
    account: &str,
    observed: Option<ObservedRole>,
    changes: &[Change],
) -> Option<ObservedRole> {
    let mut role = observed;
    for change in changes {
        match change {
            Change::CreateRole(created) => {
                role = Some(ObservedRole {
                    arn: names::role_arn(partition, account, &created.path, &created.name),
                    role_id: String::new(),
                    attributes: RoleAttributes { trust_policy: url_encode(&created.trust_policy), ..created.clone() },
                    managed_policy_arns: BTreeSet::new(),
                    inline_policies: BTreeMap::new(),
                })
            }
            Change::DeleteRole { .. } => role = None,
            other => {
                let Some(r) = role.as_mut() else { continue };
                match other {
                    Change::UpdateTrustPolicy { after, .. } => r.attributes.trust_policy = url_encode(after),
                    Change::UpdateDescription { after, .. } => r.attributes.description = after.clone(),
                    Change::UpdateMaxSessionDuration { after, .. } => r.attributes.max_session_duration = *after,
                    Change::PutPermissionsBoundary { after, .. } => {
                        r.attributes.permissions_boundary_arn = Some(after.clone())
                    }
                    Change::DeletePermissionsBoundary { .. } => r.attributes.permissions_boundary_arn = None,
                    Change::AttachManagedPolicy { arn } => {
                        r.managed_policy_arns.insert(arn.clone());
                    }
                    Change::DetachManagedPolicy { arn } => {
                        r.managed_policy_arns.remove(arn);
                    }
                    Change::PutInlinePolicy { name, after, .. } => {
                        r.inline_policies.insert(name.clone(), url_encode(after));
                    }
                    Change::DeleteInlinePolicy { name, .. } => {
                        r.inline_policies.remove(name);
                    }
                    Change::RevokeSessions { revocation, others, .. } => {
                        r.inline_policies.insert(
                            crate::revocation::POLICY_NAME.to_string(),
                            url_encode(&revocation.document_keeping(others)),
                        );
                    }
                    Change::TagRole { tags, .. } => r.attributes.tags.extend(tags.clone()),
                    Change::UntagRole { before } => {
                        for k in before.keys() {
                            r.attributes.tags.remove(k);
                        }
                    }
                    Change::CreateRole { .. } | Change::DeleteRole { .. } | Change::SessionsNotRevoked { .. } => {}
                }
            }
        }
    }
    role
}

fn url_encode(doc: &str) -> String {
    percent_encoding::utf8_percent_encode(doc, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[cfg(test)]
mod tests;
