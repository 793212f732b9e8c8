//! Former members: which accounts count as having left the organization, and how a trust naming one is classified.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::*;
use crate::{names::Partition, org::fixture::TreeBuilder, spec::AccountState};

const ORG: &str = "o-a1b2c3d4e5";
const MANAGEMENT: &str = "111122223333";
const HOME: &str = "222233334444";
/// Listed SUSPENDED: closed, still listed for some 90 days.
const CLOSED: &str = "333344445555";
/// Listed PENDING_CLOSURE.
const CLOSING: &str = "444455556666";
/// Seen as a member before, no longer listed.
const LEFT: &str = "555566667777";
/// Never a member, never seen.
const STRANGER: &str = "999988887777";
const NOW: i64 = 1_796_464_800;

fn tree() -> crate::org::OrgTree {
    TreeBuilder::new(ORG, MANAGEMENT, "r-root")
        .account("r-root", MANAGEMENT, "management", AccountState::Active)
        .account("r-root", HOME, "home", AccountState::Active)
        .account("r-root", CLOSED, "closed", AccountState::Suspended)
        .account("r-root", CLOSING, "closing", AccountState::PendingClosure)
        .build()
}

#[test]
fn former_members_are_those_seen_or_listed_that_are_not_active_now() {
    // HOME was seen before and is ACTIVE now: a member, not a former one. STRANGER was never seen.
    let former = former_members(&tree(), [LEFT, HOME, CLOSED]);
    assert_eq!(former, BTreeSet::from([CLOSED.into(), CLOSING.into(), LEFT.into()]));
    assert_eq!(former_members(&tree(), []), BTreeSet::from([CLOSED.into(), CLOSING.into()]), "listed, not active");
}

fn context() -> Context {
    let tree = tree();
    let mut c = Context::new(ORG, Partition::Aws, NOW);
    c.member_account_ids = tree.account_ids();
    c.former_member_account_ids = former_members(&tree, [LEFT]);
    c
}

fn trusting(account: &str, condition: Option<serde_json::Value>) -> RoleDetail {
    let mut statement = json!({"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"});
    if let Some(c) = condition {
        statement["Condition"] = c;
    }
    RoleDetail {
        account_id: HOME.into(),
        name: "Legacy".into(),
        path: "/".into(),
        arn: format!("arn:aws:iam::{HOME}:role/Legacy"),
        role_id: "AROAHOMEROLE00000001".into(),
        created: Some(NOW - 86_400),
        trust_policy: json!({"Version": "2012-10-17", "Statement": [statement]}).to_string(),
        managed_policy_arns: BTreeSet::new(),
        inline_policies: BTreeMap::new(),
        permissions_boundary_arn: None,
        tags: BTreeMap::new(),
        last_used: None,
    }
}

fn findings(account: &str, condition: Option<serde_json::Value>) -> Vec<(FindingKind, Severity, String)> {
    let r = classify(&trusting(account, condition), &context());
    r.findings.into_iter().map(|f| (f.kind, f.severity, f.reason)).collect()
}

#[test]
fn a_trust_naming_a_former_member_is_high_and_says_it_left() {
    for account in [LEFT, CLOSED, CLOSING] {
        let r = classify(&trusting(account, None), &context());
        assert_eq!(r.entrants.len(), 1);
        assert_eq!(r.entrants[0].kind, EntrantKind::FormerMember, "{account}");
        assert_eq!(
            findings(account, None),
            vec![(
                FindingKind::FormerMember,
                Severity::High,
                format!("arn:aws:iam::{account}:root can enter, and its account {account} left the organization")
            )],
        );
    }
    // An ExternalId does not make an account that left any less of one.
    let xid = json!({"StringEquals": {"sts:ExternalId": "kept-out-of-reasons"}});
    let found = findings(LEFT, Some(xid));
    assert_eq!(found.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(), [(FindingKind::FormerMember, Severity::High)]);
    assert!(!found[0].2.contains("kept-out-of-reasons"), "{}", found[0].2);
}

#[test]
fn members_now_and_strangers_are_not_former_members() {
    assert_eq!(findings(HOME, None), vec![], "an ACTIVE member's root: no finding");
    let stranger: Vec<FindingKind> = findings(STRANGER, None).into_iter().map(|f| f.0).collect();
    assert_eq!(stranger, [FindingKind::OutsideWithoutExternalId, FindingKind::OutsideAccountRoot]);
}
