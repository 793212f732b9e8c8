//! The grant cut: from principals, or from roles that stay. The sessions already issued are revoked once the cut
//! is written (or, opted out, said to stay valid), as one change the plan shows and the apply then does.
//!
//! A principal the grant's policy is detached from cannot assume the spec's roles through that attachment again,
//! but the sessions it was issued before stay valid until they expire. It may still reach them another way (a user
//! in a group the grant stays attached to): crossrole does not read group membership, so the plan says only what
//! is cut — the policy detached from whom — and revokes every session of the roles, theirs too (an over-revocation,
//! never a claim that access is gone). The roles they are in are the ones the grant named before and that stay:
//! every account where the spec is placed or that the grant names after the change, less those whose role the
//! operation removes (a role removed revokes its own sessions first: [`crate::revocation::with_revocation`]).
//! Likewise a role the grant stops naming though it stays (an account that left the targets, its role kept:
//! [`unnamed`]): the grant's principals may hold sessions of it.

use std::collections::BTreeSet;

use crate::{
    grant::GrantChange,
    ops::{ChangeKind, ShownChange},
    revocation::{POLICY_NAME, Revoke},
};

/// The most accounts a cut's change names (then "and N more").
const NAMED: usize = 10;

/// What cutting the grant does to the sessions already issued through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantCut {
    /// The principals the grant's policy is detached from (`user alice`), in the plan's order; none when it stays
    /// attached to the same ones but no longer names some roles (`unnamed`).
    pub principals: Vec<String>,
    /// The accounts whose role stays and that the grant no longer names.
    pub unnamed: BTreeSet<String>,
    /// The spec's role, whose sessions they may hold.
    pub role_name: String,
    /// The accounts whose role's sessions are revoked (or, opted out, stay valid).
    pub accounts: BTreeSet<String>,
    /// Whether they are revoked, and if not, who said so.
    pub revoke: Revoke,
}

impl GrantCut {
    /// The cut the grant's `changes` make: when they detach it from a principal, the sessions in `accounts`
    /// ([`sessions_in`]) are revoked; else when the policy stops naming the role of accounts `left` ([`unnamed`])
    /// by their id, those are. `None` otherwise (nothing cut, or no role left to hold sessions).
    pub fn of(
        changes: &[GrantChange],
        role_name: &str,
        accounts: BTreeSet<String>,
        left: &BTreeSet<String>,
        revoke: Revoke,
    ) -> Option<GrantCut> {
        let principals: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                GrantChange::Detach { kind, name } => Some(format!("{} {name}", kind.as_str())),
                _ => None,
            })
            .collect();
        // Named by its id in the policy's role ARNs (a policy that names the roles by path and tags across the
        // organization names them all: nothing stops being named).
        let named = |doc: &str, account: &str| doc.contains(&format!(":{account}:"));
        let unnamed: BTreeSet<String> = changes
            .iter()
            .filter_map(|c| match c {
                GrantChange::UpdatePolicy { before, after, .. } => {
                    Some(left.iter().filter(|a| named(before, a) && !named(after, a)).cloned().collect::<Vec<_>>())
                }
                _ => None,
            })
            .flatten()
            .collect();
        let role_name = role_name.to_string();
        if !principals.is_empty() && !accounts.is_empty() {
            return Some(GrantCut { principals, unnamed, role_name, accounts, revoke });
        }
        if principals.is_empty() && !unnamed.is_empty() {
            return Some(GrantCut { principals, accounts: unnamed.clone(), unnamed, role_name, revoke });
        }
        None
    }

    /// Whether the sessions are revoked (not opted out).
    pub fn revokes(&self) -> bool {
        !matches!(self.revoke, Revoke::Off(_))
    }

    /// The change as people see it, in the plan and in the apply's events alike.
    pub fn shown(&self) -> ShownChange {
        let who = if self.principals.is_empty() {
            "the role there, which stays (its account left the targets)".to_string()
        } else {
            self.principals.join(", ")
        };
        // Exact: what the cut does. A user detached may still reach the roles through a group the grant keeps.
        let lost = if self.principals.is_empty() {
            "the grant no longer names"
        } else {
            "the grant's policy is detached from"
        };
        let ids: Vec<&str> = self.accounts.iter().take(NAMED).map(String::as_str).collect();
        let more = self.accounts.len().saturating_sub(NAMED);
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let n = self.accounts.len();
        let accounts = format!("{n} account{} ({}{more})", if n == 1 { "" } else { "s" }, ids.join(", "));
        match &self.revoke {
            Revoke::Off(by) => ShownChange {
                kind: ChangeKind::SessionsNotRevoked,
                subject: String::new(),
                before: String::new(),
                after: format!(
                    "{lost} {who}: sessions of role {} in {accounts} issued before it is cut stay valid \
                     until they expire, because {by} turned revocation off",
                    self.role_name
                ),
            },
            _ => ShownChange {
                kind: ChangeKind::RevokeSessions,
                subject: POLICY_NAME.to_string(),
                before: String::new(),
                after: format!(
                    "deny every session of role {} issued before the grant is cut (aws:TokenIssueTime), in {accounts}, \
                     after the cut, because {lost} {who}",
                    self.role_name
                ),
            },
        }
    }

    /// What a confirmed plan holds the apply to: from whom (or from which roles that stay) the grant is cut, and
    /// whether the sessions are revoked. Not the accounts of a cut from principals: like the grant itself, they
    /// follow what the apply's accounts reach.
    pub fn pinned(&self) -> String {
        let mut principals = self.principals.clone();
        principals.sort_unstable();
        let unnamed: Vec<&str> = self.unnamed.iter().map(String::as_str).collect();
        let revoke = if self.revokes() { "revoke" } else { "keep" };
        format!("{revoke}\0{}\0{}\0unnamed\0{}", self.role_name, principals.join("\0"), unnamed.join("\0"))
    }
}

/// The accounts whose role stays and that an operation does not work on (`touched`: its targets and the accounts
/// it skipped), where the spec is `placed` and the grant does not name (`named`) after it: an account that left the
/// targets, its role kept (no `rollout.prune`). A grant that named its role stops naming it ([`GrantCut::of`]).
pub fn unnamed(placed: &BTreeSet<String>, touched: &BTreeSet<String>, named: &BTreeSet<String>) -> BTreeSet<String> {
    placed.iter().filter(|a| !touched.contains(*a) && !named.contains(*a)).cloned().collect()
}

/// The accounts whose role a principal cut from the grant may hold sessions of, after an operation: where the spec
/// is `placed` or that the grant names after it (`named`), less those whose role it `removed` (revoked on their
/// own, before the role goes).
pub fn sessions_in(
    placed: &BTreeSet<String>,
    named: &BTreeSet<String>,
    removed: &BTreeSet<String>,
) -> BTreeSet<String> {
    placed.union(named).filter(|a| !removed.contains(*a)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::PrincipalKind;

    fn set(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn detach(name: &str) -> GrantChange {
        GrantChange::Detach { kind: PrincipalKind::User, name: name.into() }
    }

    #[test]
    fn a_cut_names_who_lost_the_grant_and_the_roles_whose_sessions_go() {
        let changes = [
            detach("alice"),
            GrantChange::UpdatePolicy { before: "{}".into(), after: "{}".into(), delete_version: None },
            GrantChange::Attach { kind: PrincipalKind::Group, name: "auditors".into() },
        ];
        let cut = GrantCut::of(&changes, "Audit", set(&["222222222222", "111111111111"]), &BTreeSet::new(), Revoke::On)
            .unwrap();
        assert_eq!(cut.principals, ["user alice"]);
        let shown = cut.shown();
        assert_eq!(shown.kind, ChangeKind::RevokeSessions);
        assert_eq!(shown.subject, POLICY_NAME);
        assert_eq!(
            shown.after,
            "deny every session of role Audit issued before the grant is cut (aws:TokenIssueTime), in 2 accounts \
             (111111111111, 222222222222), after the cut, because the grant's policy is detached from user alice"
        );

        let off = GrantCut::of(
            &changes,
            "Audit",
            set(&["111111111111"]),
            &BTreeSet::new(),
            Revoke::Off("keep_sessions".into()),
        )
        .unwrap();
        assert!(!off.revokes());
        assert_eq!(off.shown().kind, ChangeKind::SessionsNotRevoked);
        assert!(off.shown().after.contains("user alice"), "{}", off.shown().after);
        assert!(off.shown().after.contains("1 account (111111111111)"), "{}", off.shown().after);
        assert!(off.shown().after.contains("because keep_sessions turned revocation off"), "{}", off.shown().after);
        assert_ne!(off.pinned(), cut.pinned(), "revoking or not is pinned");
    }

    #[test]
    fn nothing_cut_or_no_role_left_is_no_cut() {
        let attach = [GrantChange::Attach { kind: PrincipalKind::User, name: "bob".into() }];
        assert_eq!(GrantCut::of(&attach, "Audit", set(&["111111111111"]), &BTreeSet::new(), Revoke::On), None);
        assert_eq!(GrantCut::of(&[detach("alice")], "Audit", BTreeSet::new(), &BTreeSet::new(), Revoke::On), None);
    }

    #[test]
    fn many_accounts_are_counted_and_the_first_named() {
        let accounts: BTreeSet<String> = (0..25).map(|i| format!("{:012}", 200_000_000_000u64 + i)).collect();
        let cut = GrantCut::of(&[detach("alice")], "Audit", accounts, &BTreeSet::new(), Revoke::On).unwrap();
        let after = cut.shown().after;
        assert!(after.contains("in 25 accounts (200000000000, "), "{after}");
        assert!(after.contains("200000000009 and 15 more)"), "{after}");
        assert!(!after.contains("200000000010"), "{after}");
    }

    #[test]
    fn the_pin_is_who_and_whether_not_where_nor_in_what_order() {
        let a = GrantCut::of(
            &[detach("alice"), detach("bob")],
            "Audit",
            set(&["111111111111"]),
            &BTreeSet::new(),
            Revoke::On,
        )
        .unwrap();
        let b = GrantCut::of(
            &[detach("bob"), detach("alice")],
            "Audit",
            set(&["222222222222"]),
            &BTreeSet::new(),
            Revoke::On,
        )
        .unwrap();
        assert_eq!(a.pinned(), b.pinned());
        let c =
            GrantCut::of(&[detach("alice")], "Audit", set(&["111111111111"]), &BTreeSet::new(), Revoke::On).unwrap();
        assert_ne!(a.pinned(), c.pinned());
    }

    #[test]
    fn a_role_that_stays_and_that_the_grant_stops_naming_is_cut_alone() {
        let arn = |a: &str| format!("arn:aws:iam::{a}:role/crossrole/Audit");
        let update = |before: &[&str], after: &[&str]| GrantChange::UpdatePolicy {
            before: before.iter().map(|a| arn(a)).collect::<Vec<_>>().join(","),
            after: after.iter().map(|a| arn(a)).collect::<Vec<_>>().join(","),
            delete_version: None,
        };
        let left = set(&["222222222222", "333333333333"]);
        let changes = [update(&["111111111111", "222222222222"], &["111111111111"])];
        let everywhere = set(&["111111111111", "222222222222", "333333333333"]);
        // 333… was named by no earlier grant: nothing is cut there.
        let cut = GrantCut::of(&changes, "Audit", everywhere.clone(), &left, Revoke::On).unwrap();
        assert_eq!((cut.principals.len(), cut.accounts.clone()), (0, set(&["222222222222"])));
        assert_eq!(
            cut.shown().after,
            "deny every session of role Audit issued before the grant is cut (aws:TokenIssueTime), in 1 account \
             (222222222222), after the cut, because the grant no longer names the role there, which stays (its \
             account left the targets)"
        );
        // A grant that still names it, or a policy that names roles by path and tags: nothing cut.
        let same = [update(&["111111111111", "222222222222"], &["111111111111", "222222222222"])];
        assert_eq!(GrantCut::of(&same, "Audit", everywhere.clone(), &left, Revoke::On), None);
        let by_tags = [GrantChange::UpdatePolicy {
            before: "arn:aws:iam::*:role/crossrole/Audit".into(),
            after: "arn:aws:iam::*:role/crossrole/Audit".into(),
            delete_version: None,
        }];
        assert_eq!(GrantCut::of(&by_tags, "Audit", everywhere.clone(), &left, Revoke::On), None);
        // With a principal cut too, every role that stays is revoked, the one no longer named among them.
        let both = [detach("alice"), update(&["111111111111", "222222222222"], &["111111111111"])];
        let cut = GrantCut::of(&both, "Audit", everywhere.clone(), &left, Revoke::On).unwrap();
        assert_eq!((cut.principals.clone(), cut.accounts.clone()), (vec!["user alice".to_string()], everywhere));
        assert_eq!(unnamed(&set(&["1", "2", "3", "4"]), &set(&["1", "2"]), &set(&["4"])), set(&["3"]));
    }

    #[test]
    fn sessions_are_revoked_where_the_role_stays() {
        let placed = set(&["1", "2", "3"]);
        let named = set(&["2", "4"]);
        let removed = set(&["3"]);
        assert_eq!(sessions_in(&placed, &named, &removed), set(&["1", "2", "4"]));
    }
}
