//! The grant cut from principals: the sessions of the spec's roles they already hold, revoked once the cut is
//! written (or, opted out, said to stay valid), as one change the plan shows and the apply then does.
//!
//! A principal the grant no longer reaches cannot assume the spec's roles again, but the sessions it was issued
//! before stay valid until they expire. The roles they are in are the ones the grant named before and that stay:
//! every account where the spec is placed or that the grant names after the change, less those whose role the
//! operation removes (a role removed revokes its own sessions first: [`crate::revocation::with_revocation`]).

use std::collections::BTreeSet;

use crate::{
    grant::GrantChange,
    ops::{ChangeKind, ShownChange},
    revocation::{POLICY_NAME, Revoke},
};

/// The most accounts a cut's change names (then "and N more").
const NAMED: usize = 10;

/// What cutting the grant from principals does to the sessions they hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantCut {
    /// The principals the grant no longer reaches (`user alice`), in the plan's order.
    pub principals: Vec<String>,
    /// The spec's role, whose sessions they may hold.
    pub role_name: String,
    /// The accounts whose role's sessions are revoked (or, opted out, stay valid).
    pub accounts: BTreeSet<String>,
    /// Whether they are revoked, and if not, who said so.
    pub revoke: Revoke,
}

impl GrantCut {
    /// The cut the grant's `changes` make, when they detach it from a principal and `accounts` hold a role of the
    /// spec the principal may have sessions of: `None` otherwise (nothing cut, or no role left to hold them).
    pub fn of(
        changes: &[GrantChange],
        role_name: &str,
        accounts: BTreeSet<String>,
        revoke: Revoke,
    ) -> Option<GrantCut> {
        let principals: Vec<String> = changes
            .iter()
            .filter_map(|c| match c {
                GrantChange::Detach { kind, name } => Some(format!("{} {name}", kind.as_str())),
                _ => None,
            })
            .collect();
        if principals.is_empty() || accounts.is_empty() {
            return None;
        }
        Some(GrantCut { principals, role_name: role_name.to_string(), accounts, revoke })
    }

    /// Whether the sessions are revoked (not opted out).
    pub fn revokes(&self) -> bool {
        !matches!(self.revoke, Revoke::Off(_))
    }

    /// The change as people see it, in the plan and in the apply's events alike.
    pub fn shown(&self) -> ShownChange {
        let who = self.principals.join(", ");
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
                    "the grant no longer reaches {who}: sessions of role {} in {accounts} issued before it is cut \
                     stay valid until they expire, because {by} turned revocation off",
                    self.role_name
                ),
            },
            _ => ShownChange {
                kind: ChangeKind::RevokeSessions,
                subject: POLICY_NAME.to_string(),
                before: String::new(),
                after: format!(
                    "deny every session of role {} issued before the grant is cut (aws:TokenIssueTime), in {accounts}, \
                     after the cut, because the grant no longer reaches {who}",
                    self.role_name
                ),
            },
        }
    }

    /// What a confirmed plan holds the apply to: from whom the grant is cut and whether their sessions are revoked.
    /// Not the accounts: like the grant itself, they follow what the apply's accounts reach.
    pub fn pinned(&self) -> String {
        let mut principals = self.principals.clone();
        principals.sort_unstable();
        format!("{}\0{}\0{}", if self.revokes() { "revoke" } else { "keep" }, self.role_name, principals.join("\0"))
    }
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
        let cut = GrantCut::of(&changes, "Audit", set(&["222222222222", "111111111111"]), Revoke::On).unwrap();
        assert_eq!(cut.principals, ["user alice"]);
        let shown = cut.shown();
        assert_eq!(shown.kind, ChangeKind::RevokeSessions);
        assert_eq!(shown.subject, POLICY_NAME);
        assert_eq!(
            shown.after,
            "deny every session of role Audit issued before the grant is cut (aws:TokenIssueTime), in 2 accounts \
             (111111111111, 222222222222), after the cut, because the grant no longer reaches user alice"
        );

        let off = GrantCut::of(&changes, "Audit", set(&["111111111111"]), Revoke::Off("keep_sessions".into())).unwrap();
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
        assert_eq!(GrantCut::of(&attach, "Audit", set(&["111111111111"]), Revoke::On), None);
        assert_eq!(GrantCut::of(&[detach("alice")], "Audit", BTreeSet::new(), Revoke::On), None);
    }

    #[test]
    fn many_accounts_are_counted_and_the_first_named() {
        let accounts: BTreeSet<String> = (0..25).map(|i| format!("{:012}", 200_000_000_000u64 + i)).collect();
        let cut = GrantCut::of(&[detach("alice")], "Audit", accounts, Revoke::On).unwrap();
        let after = cut.shown().after;
        assert!(after.contains("in 25 accounts (200000000000, "), "{after}");
        assert!(after.contains("200000000009 and 15 more)"), "{after}");
        assert!(!after.contains("200000000010"), "{after}");
    }

    #[test]
    fn the_pin_is_who_and_whether_not_where_nor_in_what_order() {
        let a = GrantCut::of(&[detach("alice"), detach("bob")], "Audit", set(&["111111111111"]), Revoke::On).unwrap();
        let b = GrantCut::of(&[detach("bob"), detach("alice")], "Audit", set(&["222222222222"]), Revoke::On).unwrap();
        assert_eq!(a.pinned(), b.pinned());
        let c = GrantCut::of(&[detach("alice")], "Audit", set(&["111111111111"]), Revoke::On).unwrap();
        assert_ne!(a.pinned(), c.pinned());
    }

    #[test]
    fn sessions_are_revoked_where_the_role_stays() {
        let placed = set(&["1", "2", "3"]);
        let named = set(&["2", "4"]);
        let removed = set(&["3"]);
        assert_eq!(sessions_in(&placed, &named, &removed), set(&["1", "2", "4"]));
    }
}
