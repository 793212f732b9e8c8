//! A former grant: the policy crossrole placed for a spec where the spec's grant no longer is — its `grant`
//! section removed, or its `grant.account_id` or `grant.policy_name` changed. The journal's earlier operations of
//! the spec say where it was placed ([`places`]); it is removed as a destroy removes it
//! ([`super::plan_grant_delete`]: only a policy tagged as this spec's, never one crossrole did not create), and the
//! principals it was attached to lose the grant: a cut ([`super::cut::GrantCut`]) like any other.
//!
//! A former grant crossrole cannot read (its account closed, gone from the organization, or its bootstrap role
//! removed) cannot be removed, and fails the trusted side until a person gives up on it explicitly, by account
//! ([`Release`]): never automatically. A released one is shown, and recorded, as left in place ([`released`]).

use std::collections::BTreeSet;

use crate::{
    grant::{GrantChange, GrantPlan, ObservedGrant, plan_grant_delete},
    ops::{ChangeKind, ShownChange},
    spec::{AccessSpec, TrustedGrant},
};

/// Where a grant was placed: (trusted account, policy name).
pub type Place = (String, String);

/// The places of the grants `earlier` (the grants of the spec's earlier operations, as journaled) that are not the
/// spec's grant now (`now`): each is a former grant, to be removed.
pub fn places<'a>(earlier: impl IntoIterator<Item = &'a Place>, now: Option<&TrustedGrant>) -> BTreeSet<Place> {
    let now = now.map(|g| (g.account_id.clone(), g.policy_name.clone()));
    earlier.into_iter().filter(|p| Some(*p) != now.as_ref()).cloned().collect()
}

/// The place of a grant as a spec's record gives it (account, policy name — its default when empty).
pub fn place_of(spec_name: &str, account_id: &str, policy_name: &str) -> Place {
    let name = if policy_name.is_empty() { AccessSpec::grant_policy_name(spec_name) } else { policy_name.to_string() };
    (account_id.to_string(), name)
}

/// The accounts whose former grants a request gives up on (they cannot be read), and who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Release {
    /// The trusted accounts (12-digit ids).
    pub accounts: BTreeSet<String>,
    /// Who asks (the caller's token name).
    pub by: String,
}

impl Release {
    /// Whether it releases anything.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Whether it releases the former grant of `place`.
    pub fn covers(&self, place: &Place) -> bool {
        self.accounts.contains(&place.0)
    }
}

/// The former grant at `policy_arn`, in `account_id`, released by `by` because it cannot be read (`why`), as people
/// see it: no write; it is left where it is.
pub fn released(account_id: &str, policy_arn: &str, by: &str, why: &str) -> ShownChange {
    ShownChange {
        kind: ChangeKind::FormerGrantReleased,
        subject: format!("{policy_arn} (former grant)"),
        before: why.to_string(),
        after: format!("former grant in account {account_id} not removed: released by {by}"),
    }
}

/// A former grant that is still there, and what removing it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Former {
    /// The trusted account it is in.
    pub account_id: String,
    /// Its ARN.
    pub policy_arn: String,
    /// Detach from every principal it is attached to, then delete it.
    pub changes: Vec<GrantChange>,
}

/// What becomes of a former grant: removed ([`Former`]), already gone (`Ok(None)`), or left in place because it is
/// not this spec's (`Err`, saying whose it is: crossrole never touches a policy it did not create for the spec).
pub fn plan_former(
    spec_name: &str,
    account_id: &str,
    policy_arn: &str,
    observed: Option<&ObservedGrant>,
) -> Result<Option<Former>, String> {
    match plan_grant_delete(spec_name, observed) {
        GrantPlan::InSync => Ok(None),
        GrantPlan::Changes(changes) => {
            Ok(Some(Former { account_id: account_id.into(), policy_arn: policy_arn.into(), changes }))
        }
        GrantPlan::Conflict { owner } => Err(match owner {
            Some(o) => format!("{policy_arn} belongs to crossrole spec {o:?}: left in place"),
            None => format!("{policy_arn} is not managed by crossrole: left in place"),
        }),
    }
}

impl Former {
    /// How a principal it is cut from is named: in its account, as the former grant's.
    fn label(&self, name: &str) -> String {
        format!("{name} in {} (former grant)", self.account_id)
    }

    /// Its changes as people see them, each naming the account and the policy (they are not the spec's grant's).
    pub fn shown(&self) -> Vec<ShownChange> {
        self.changes.iter().map(|c| self.show(c)).collect()
    }

    /// One of its changes as people see it ([`Former::shown`]), in the plan and the apply's events alike.
    pub fn show(&self, change: &GrantChange) -> ShownChange {
        let mut shown = change.shown();
        shown.subject = match change {
            GrantChange::Detach { kind, name } => format!("{}/{}", kind.as_str(), self.label(name)),
            _ => format!("{} (former grant)", self.policy_arn),
        };
        shown
    }

    /// Its detachments, the principal named as [`Former::shown`] names it, for the cut
    /// ([`super::cut::GrantCut::of`]).
    pub fn cut_from(&self) -> impl Iterator<Item = GrantChange> + '_ {
        self.changes.iter().filter_map(|c| match c {
            GrantChange::Detach { kind, name } => Some(GrantChange::Detach { kind: *kind, name: self.label(name) }),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{
        grant::PolicyVersion,
        spec::{OWNER_TAG_KEY, OWNER_TAG_VALUE, PrincipalKind, SPEC_TAG_KEY},
    };

    const ARN: &str = "arn:aws:iam::111122223333:policy/crossrole/crossrole-assume-audit";

    fn observed(spec: Option<&str>) -> ObservedGrant {
        let mut tags = BTreeMap::new();
        if let Some(s) = spec {
            tags.insert(OWNER_TAG_KEY.to_string(), OWNER_TAG_VALUE.to_string());
            tags.insert(SPEC_TAG_KEY.to_string(), s.to_string());
        }
        ObservedGrant {
            policy_arn: ARN.into(),
            tags,
            default_document: "{}".into(),
            versions: vec![
                PolicyVersion { id: "v1".into(), is_default: false, created: 1 },
                PolicyVersion { id: "v2".into(), is_default: true, created: 2 },
            ],
            attachments: [(PrincipalKind::User, "alice".to_string()), (PrincipalKind::Group, "auditors".to_string())]
                .into(),
        }
    }

    #[test]
    fn the_places_not_the_grant_now_are_former() {
        let g = |account: &str| TrustedGrant {
            account_id: account.into(),
            user_names: BTreeSet::new(),
            group_names: BTreeSet::new(),
            role_names: BTreeSet::new(),
            policy_name: AccessSpec::grant_policy_name("audit"),
        };
        let earlier = [place_of("audit", "111122223333", ""), place_of("audit", "222233334444", "")];
        assert_eq!(places(&earlier, None).len(), 2);
        assert_eq!(
            places(&earlier, Some(&g("222233334444"))),
            BTreeSet::from([("111122223333".to_string(), "crossrole-assume-audit".to_string())])
        );
        let renamed = [place_of("audit", "222233334444", "old-name")];
        assert_eq!(places(&renamed, Some(&g("222233334444"))).len(), 1, "a renamed policy is a former one");
    }

    #[test]
    fn only_the_specs_own_policy_is_removed_and_its_principals_named_in_their_account() {
        let former = plan_former("audit", "111122223333", ARN, Some(&observed(Some("audit")))).unwrap().unwrap();
        let shown = former.shown();
        let kinds: Vec<ChangeKind> = shown.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [ChangeKind::DetachGrantPolicy, ChangeKind::DetachGrantPolicy, ChangeKind::DeleteGrantPolicy]
        );
        assert_eq!(shown[0].subject, "user/alice in 111122223333 (former grant)");
        assert_eq!(shown[2].subject, format!("{ARN} (former grant)"));
        let cut: Vec<GrantChange> = former.cut_from().collect();
        assert_eq!(cut.len(), 2);
        assert_eq!(plan_former("audit", "111122223333", ARN, None), Ok(None), "gone already");
        let other = plan_former("audit", "111122223333", ARN, Some(&observed(Some("payments")))).unwrap_err();
        assert!(other.contains("belongs to crossrole spec \"payments\": left in place"), "{other}");
        let hand = plan_former("audit", "111122223333", ARN, Some(&observed(None))).unwrap_err();
        assert!(hand.contains("not managed by crossrole: left in place"), "{hand}");
    }

    #[test]
    fn a_released_former_grant_is_shown_left_in_place_by_whom() {
        let release = Release { accounts: ["111122223333".to_string()].into(), by: "ops-alice".into() };
        assert!(release.covers(&place_of("audit", "111122223333", "")));
        assert!(!release.covers(&place_of("audit", "222233334444", "")));
        let shown = released("111122223333", ARN, &release.by, "the account cannot be entered");
        assert_eq!(shown.kind, ChangeKind::FormerGrantReleased);
        assert_eq!(shown.after, "former grant in account 111122223333 not removed: released by ops-alice");
        assert_eq!(
            (shown.subject.as_str(), shown.before.as_str()),
            (&*format!("{ARN} (former grant)"), "the account cannot be entered")
        );
    }
}
