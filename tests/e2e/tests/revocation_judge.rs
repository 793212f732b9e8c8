//! The revocation crossrole writes, judged by an IAM policy evaluator crossrole did not write
//! (`@cloud-copilot/iam-simulate`, `crossrole_e2e::judge`): the policies crossrole leaves on a role whose sessions it
//! revoked — its `AWSRevokeOlderSessions` deny, as `crossrole_core::revocation` writes it, and a permissions
//! policy — deny a session issued before the revocation and allow one issued after, with `aws:TokenIssueTime` in
//! the request's context as IAM sends it. A console-written revocation merged with crossrole's denies up to the
//! later instant. A statement a person put in the policy beside the console's deny is still there, and still
//! denies, once crossrole has written its revocation and once it has taken it away.
//!
//! It needs no emulator (the judge evaluates documents), and `cargo xtask e2e -- revocation_judge` starts none.

use crossrole_core::revocation::{Revocation, iso8601, split};
use crossrole_e2e::judge::{Case, judge_all, simulation};
use serde_json::{Value, json};

const ROLE: &str = "Audit";
const ACCOUNT: &str = "222233334444";
/// 2026-12-05T10:00:00.250Z: crossrole revokes at this moment (the instant written is the next whole second).
const REVOKED_AT: i64 = 1_796_464_800_250;

/// The permissions the role grants besides: listing buckets, which every case asks for.
fn permissions() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListBuckets", "Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"},
            {"Sid": "ReadRoles", "Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"},
        ],
    })
}

/// A request of a session of the role, issued at `issued` (Unix ms), to list buckets, under `revocation` (the
/// inline policy's document as crossrole writes it).
fn case(name: String, expect: &'static str, issued: i64, revocation: Option<&str>) -> Case {
    case_of("s3:ListAllMyBuckets", name, expect, issued, revocation)
}

/// [`case`], asking for `action`.
fn case_of(action: &str, name: String, expect: &'static str, issued: i64, revocation: Option<&str>) -> Case {
    let request = json!({
        "principal": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/alice"),
        "action": action,
        "resource": {"resource": "*", "accountId": ACCOUNT},
        "contextVariables": {"aws:TokenIssueTime": iso8601(issued)},
    });
    let mut policies = vec![("Permissions", permissions())];
    if let Some(r) = revocation {
        policies.push(("AWSRevokeOlderSessions", serde_json::from_str(r).expect("the revocation is JSON")));
    }
    Case { name, expect, simulation: simulation(request, &policies, None) }
}

#[test]
fn a_session_issued_before_the_revocation_is_denied_and_one_issued_after_is_allowed() {
    let revocation = Revocation::at(REVOKED_AT, 3600);
    let instant = revocation.issued_before;
    assert_eq!(iso8601(instant), "2026-12-05T10:00:01Z");
    let document = revocation.document();
    let s = 1000;
    let mut cases = Vec::new();
    for (what, issued, expect) in [
        ("12 hours before", instant - 12 * 3600 * s, "ExplicitlyDenied"),
        ("an hour before", instant - 3600 * s, "ExplicitlyDenied"),
        ("a second before", instant - s, "ExplicitlyDenied"),
        ("in the second crossrole revoked in", REVOKED_AT - 250, "ExplicitlyDenied"),
        ("at the instant itself (DateLessThan: not less)", instant, "Allowed"),
        ("a second after", instant + s, "Allowed"),
        ("an hour after", instant + 3600 * s, "Allowed"),
    ] {
        cases.push(case(
            format!("session issued {what} ({}) vs revocation at {}", iso8601(issued), iso8601(instant)),
            expect,
            issued,
            Some(&document),
        ));
    }
    // Without the revocation every one of those sessions is allowed: the deny alone makes the difference.
    for issued in [instant - 3600 * s, instant - s] {
        cases.push(case(format!("session issued {} with no revocation", iso8601(issued)), "Allowed", issued, None));
    }
    // A console revocation later than crossrole's, merged: the later instant denies up to it.
    let console = Revocation { issued_before: instant + 1800 * s, keep_until: instant + 12 * 3600 * s };
    let merged = revocation.merge(console).document();
    for (what, issued, expect) in [
        ("before both", instant - s, "ExplicitlyDenied"),
        ("between the two", instant + 900 * s, "ExplicitlyDenied"),
        ("after the later", instant + 1801 * s, "Allowed"),
    ] {
        cases.push(case(format!("merged revocation, session issued {what}"), expect, issued, Some(&merged)));
    }
    let rows = judge_all("sessions of a role under crossrole's revocation (@cloud-copilot/iam-simulate)", &cases);
    let denied = rows.iter().filter(|r| r.decision == "ExplicitlyDenied").count();
    let allowed = rows.iter().filter(|r| r.decision == "Allowed").count();
    assert_eq!((denied, allowed), (6, 6), "{rows:?}");
    // Each denial is the revocation's own statement, by the Sid that records how long it is kept.
    for r in rows.iter().filter(|r| r.decision == "ExplicitlyDenied") {
        assert!(r.deciding.iter().any(|d| d.contains("CrossroleKeepUntil")), "{}: {:?}", r.name, r.deciding);
    }
}

/// IAM's console revocation (an hour before crossrole's) and a statement a person added beside it.
const CONSOLE_AND_HAND: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{"DateLessThan":{"aws:TokenIssueTime":"2026-12-05T09:00:00Z"}}},{"Sid":"HandExtra","Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#;

#[test]
fn a_persons_statement_beside_the_revocation_still_denies_after_crossrole_writes_and_removes_it() {
    // What crossrole writes over the console's revocation (merged: the later instant), and what it leaves once
    // its time is over, from the policy as read.
    let (console, others) = split(CONSOLE_AND_HAND);
    let revocation = console.expect("the console's revocation").merge(Revocation::at(REVOKED_AT, 3600));
    let instant = revocation.issued_before;
    let written = revocation.document_keeping(&others);
    let left = others.document();
    let s = 1000;
    let (before, after) = (instant - 60 * s, instant + 60 * s);
    let mut cases = Vec::new();
    for (doc, when, what) in
        [(CONSOLE_AND_HAND, "as the person left it", after), (&written, "after crossrole's revocation", after)]
    {
        let name = format!("iam:GetRole by a session issued {}, the policy {when}", iso8601(what));
        cases.push(case_of("iam:GetRole", name, "ExplicitlyDenied", what, Some(doc)));
    }
    cases.push(case_of(
        "iam:GetRole",
        format!("iam:GetRole by a session issued {}, the revocation taken away", iso8601(after)),
        "ExplicitlyDenied",
        after,
        Some(&left),
    ));
    for (doc, when, issued, expect) in [
        (&written, "after crossrole's revocation", before, "ExplicitlyDenied"),
        (&written, "after crossrole's revocation", after, "Allowed"),
        (&left, "the revocation taken away", before, "Allowed"),
    ] {
        let name = format!("s3:ListAllMyBuckets by a session issued {}, the policy {when}", iso8601(issued));
        cases.push(case(name, expect, issued, Some(doc)));
    }
    let rows =
        judge_all("a person's statement kept beside crossrole's revocation (@cloud-copilot/iam-simulate)", &cases);
    let decisions: Vec<&str> = rows.iter().map(|r| r.decision.as_str()).collect();
    assert_eq!(
        decisions,
        ["ExplicitlyDenied", "ExplicitlyDenied", "ExplicitlyDenied", "ExplicitlyDenied", "Allowed", "Allowed"],
        "{rows:?}"
    );
    // iam:GetRole is denied by the person's statement, not by a revocation.
    for r in rows.iter().take(3) {
        assert!(r.deciding.iter().any(|d| d.contains("HandExtra")), "{}: {:?}", r.name, r.deciding);
    }
}
