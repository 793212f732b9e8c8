//! Revocation on the emulators, in real time: crossroled with the deny's hold shortened to a few seconds
//! (`emulator_testing.revocation_hold`, which it refuses when IAM is AWS's own). A trust narrowed by an apply is
//! followed by the `AWSRevokeOlderSessions` inline deny, read back from the emulator through the AWS SDK, dated at
//! the apply and kept for the hold (its `Sid`); the IAM judge crossrole did not write (`@cloud-copilot/iam-simulate`)
//! denies a session issued before its instant and allows one issued after; an apply before the keep-until leaves
//! it, one after removes it and says so, in the plan and the result; `crossrole revoke` writes one kept as long, which
//! an apply after it removes too (against AWS, where the hold is refused, it is kept 12 hours).
//!
//! The emulators enforce no policy: whether a session is refused is the judge's decision, never the emulator's.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{
    Aws, Crossroled, Manifest,
    judge::{Case, judge_all, simulation},
};
use crossrole_wire::ToWire;
use serde_json::{Value, json};

const ROLE: &str = "RevocationTiming";
const POLICY: &str = "AWSRevokeOlderSessions";
/// How long crossroled keeps a change's deny here (the role's sessions last an hour).
const HOLD_SECS: i64 = 6;

fn spec_yaml(m: &Manifest, trusted: &[&str], targets: &[&str]) -> String {
    let list = |ids: &[&str]| ids.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    format!(
        r#"name: revocation-timing
role:
  name: {ROLE}
  path: /crossrole/
  max_session_duration: 1h
  trust:
    account_ids: [{}]
  managed_policy_arns: [arn:aws:iam::aws:policy/ReadOnlyAccess]
targets:
  account_ids: [{}]
rollout:
  max_concurrency: 2
  failure_tolerance: 0
  verify: {{enabled: false}}
"#,
        list(trusted),
        list(targets),
    )
    .replace("SECURITY", &m.security_account)
}

fn wire(yaml: &str) -> proto::AccessSpec {
    AccessSpec::from_yaml(yaml).unwrap().to_wire()
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`): the test reads the deny's times
/// itself, not through crossrole's parser.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of `2026-12-05T10:00:01Z` or its basic form `20261205T100001Z`.
fn unix_secs(text: &str) -> i64 {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    assert!(digits.len() == 14 && text.ends_with('Z'), "not a UTC time to the second: {text}");
    let n = |a: usize, b: usize| digits[a..b].parse::<i64>().unwrap();
    days_from_civil(n(0, 4), n(4, 6), n(6, 8)) * 86_400 + n(8, 10) * 3600 + n(10, 12) * 60 + n(12, 14)
}

/// ISO 8601 of Unix seconds, for the judge's `aws:TokenIssueTime`.
fn iso(secs: i64) -> String {
    crossrole_core::revocation::iso8601(secs * 1000)
}

/// The deny as the emulator holds it, read back through the AWS SDK: its document, its instant and its keep-until
/// (Unix seconds), checked to be a deny of everything on `aws:TokenIssueTime`. `None` when the role has none.
async fn deny(aws: &Aws, account: &str) -> Option<(Value, i64, i64)> {
    let role = aws.role(account, ROLE).await.unwrap_or_else(|| panic!("{ROLE} in {account} is gone"));
    let raw = role.inline_policies.get(POLICY)?;
    let doc: Value = serde_json::from_str(&percent_encoding::percent_decode_str(raw).decode_utf8_lossy())
        .unwrap_or_else(|e| panic!("{POLICY} in {account}: not JSON ({e}): {raw}"));
    let statements = doc["Statement"].as_array().unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(statements.len(), 1, "{doc}");
    let s = &statements[0];
    let everything = |v: &Value| v == "*" || v.as_array().is_some_and(|a| a.len() == 1 && a[0] == "*");
    assert!(s["Effect"] == "Deny" && everything(&s["Action"]) && everything(&s["Resource"]), "{doc}");
    let instant = unix_secs(s["Condition"]["DateLessThan"]["aws:TokenIssueTime"].as_str().unwrap_or_default());
    let sid = s["Sid"].as_str().unwrap_or_default();
    let keep_until = unix_secs(sid.strip_prefix("CrossroleKeepUntil").unwrap_or_else(|| panic!("Sid {sid:?}")));
    Some((doc, instant, keep_until))
}

/// The changes an operation's results show, per account: (kind, subject, after).
async fn changes(op: &crossrole_client::OperationHandle) -> Vec<(String, Vec<(i32, String, String)>)> {
    op.results()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.account_id, r.changes.into_iter().map(|c| (c.kind, c.subject, c.after)).collect()))
        .collect()
}

async fn applied(c: &crossrole_client::Client, yaml: &str) -> crossrole_client::OperationHandle {
    let op = c.apply(wire(yaml), None).await.unwrap();
    let done = op.wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    op
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrowed_trust_is_revoked_the_deny_kept_for_the_hold_then_removed_in_real_time() {
    let started = Instant::now();
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("revocation_timing");
    let hold = format!("[emulator_testing]\nrevocation_hold = \"{HOLD_SECS}s\"\n");

    // The setting is refused when IAM is AWS's own: crossroled stops at start, naming it, before any AWS call.
    let mut refused = Crossroled::launch_with_env(
        &dir.join("refused"),
        &hold,
        &[("AWS_ENDPOINT_URL_IAM", "https://iam.amazonaws.com")],
    )
    .unwrap();
    assert!(refused.exits_within(Duration::from_secs(20)).await, "crossroled started with a shortened hold on AWS");
    let log = std::fs::read_to_string(dir.join("refused/crossroled.log")).unwrap();
    assert!(
        log.contains("emulator_testing.revocation_hold: is for tests on AWS emulators only")
            && log.contains("IAM's endpoint URL https://iam.amazonaws.com is AWS's own"),
        "{log}"
    );

    let server = Crossroled::start_with(&dir.join("held"), &hold).await.unwrap();
    let c = server.client().await;
    let targets = [m.account("dev-10").id.as_str(), m.account("dev-11").id.as_str()];
    let other = m.account("dev-09").id.clone();
    let wide = spec_yaml(&m, &["SECURITY", &other], &targets);
    let narrow = spec_yaml(&m, &["SECURITY"], &targets);

    applied(&c, &wide).await;
    for a in targets {
        assert!(deny(&aws, a).await.is_none(), "creating the role takes nothing away: no deny in {a}");
    }

    // The narrowing: the plan shows the revocation and the shortened hold it is kept for.
    let plan = c.plan(wire(&narrow)).await.unwrap();
    for a in &plan.accounts {
        let kinds: Vec<i32> = a.changes.iter().map(|c| c.kind).collect();
        assert_eq!(
            kinds,
            [proto::ChangeKind::UpdateTrustPolicy as i32, proto::ChangeKind::RevokeSessions as i32],
            "{}",
            a.account_id
        );
        assert!(a.changes[1].after.contains(&format!("kept {HOLD_SECS}s, because")), "{}", a.changes[1].after);
        assert!(a.changes[1].after.contains("by emulator_testing.revocation_hold"), "{}", a.changes[1].after);
    }
    let before_apply = now_secs();
    let op = applied(&c, &narrow).await;
    let after_apply = now_secs();
    for (account, changed) in changes(&op).await {
        assert_eq!(changed.len(), 2, "{account}: {changed:?}");
        assert_eq!(changed[1].0, proto::ChangeKind::RevokeSessions as i32, "{account}: {changed:?}");
    }
    // Read back from the emulator: the deny, dated at the apply (its instant rounded up to the second), kept for
    // the hold and no longer.
    let mut written = Vec::new();
    for a in targets {
        let (doc, instant, keep_until) = deny(&aws, a).await.unwrap_or_else(|| panic!("no {POLICY} in {a}"));
        assert!(
            (before_apply..=after_apply + 1).contains(&instant),
            "{a}: the deny's instant {} is not the apply's ({} to {})",
            iso(instant),
            iso(before_apply),
            iso(after_apply)
        );
        assert_eq!(keep_until - instant, HOLD_SECS, "{a}: {doc}");
        written.push((a, doc, instant, keep_until));
    }
    let keep_until = written.iter().map(|w| w.3).min().unwrap();

    // Applied again before the keep-until: nothing to do, the deny stays.
    let again = applied(&c, &narrow).await;
    let done = now_secs();
    assert!(
        done < keep_until,
        "the second apply ended at {}, after the keep-until {}: the hold ({HOLD_SECS}s) is too short for this machine",
        iso(done),
        iso(keep_until)
    );
    eprintln!("the apply before the keep-until ended {}s before it", keep_until - done);
    let counts = again.get().await.unwrap().counts.unwrap();
    assert_eq!((counts.unchanged, counts.changed), (2, 0), "{counts:?}");
    for (a, doc, ..) in &written {
        assert_eq!(deny(&aws, a).await.map(|d| d.0).as_ref(), Some(doc), "{a}: kept as written");
    }

    // The judge, on the deny the emulator holds: a session of the role issued before its instant is denied, one
    // issued at or after it allowed; without the deny, all allowed.
    let (account, doc, instant, _) = &written[0];
    let permissions = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
    });
    let case = |name: &str, expect: &'static str, issued: i64, with_deny: bool| {
        let request = json!({
            "principal": format!("arn:aws:sts::{account}:assumed-role/{ROLE}/alice"),
            "action": "s3:ListAllMyBuckets",
            "resource": {"resource": "*", "accountId": account},
            "contextVariables": {"aws:TokenIssueTime": iso(issued)},
        });
        let mut policies = vec![("ReadOnly", permissions.clone())];
        if with_deny {
            policies.push((POLICY, doc.clone()));
        }
        Case { name: format!("{name} ({})", iso(issued)), expect, simulation: simulation(request, &policies, None) }
    };
    let cases = [
        case("issued an hour before the apply", "ExplicitlyDenied", instant - 3600, true),
        case("issued the second before the deny's instant", "ExplicitlyDenied", instant - 1, true),
        case("issued at the deny's instant", "Allowed", *instant, true),
        case("issued after the apply", "Allowed", instant + 2, true),
        case("issued before, without the deny", "Allowed", instant - 1, false),
    ];
    judge_all("sessions of a role under the deny read back from the emulator (@cloud-copilot/iam-simulate)", &cases);

    // Past the keep-until, the plan says the deny goes and an apply removes it.
    let wait = (keep_until * 1000 + 500) - SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    let plan = c.plan(wire(&narrow)).await.unwrap();
    for a in &plan.accounts {
        let shown: Vec<(i32, &str)> = a.changes.iter().map(|c| (c.kind, c.subject.as_str())).collect();
        assert_eq!(shown, [(proto::ChangeKind::DeleteInlinePolicy as i32, POLICY)], "{}", a.account_id);
    }
    let removed = applied(&c, &narrow).await;
    for (account, changed) in changes(&removed).await {
        let shown: Vec<(i32, &str)> = changed.iter().map(|c| (c.0, c.1.as_str())).collect();
        assert_eq!(shown, [(proto::ChangeKind::DeleteInlinePolicy as i32, POLICY)], "{account}");
    }
    for a in targets {
        assert!(deny(&aws, a).await.is_none(), "{a}: the deny is still there after its keep-until");
    }

    // `crossrole revoke`, for an incident: a deny written now in every account, kept (on emulators, with the hold
    // set) for the hold, then removed by an apply.
    let file = dir.join("narrow.yaml");
    std::fs::write(&file, &narrow).unwrap();
    let before_revoke = now_secs();
    let out = server.cli(&["revoke", "-f", file.to_str().unwrap(), "--yes"]);
    assert!(
        out.status.success(),
        "crossrole revoke: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for a in targets {
        let (doc, instant, keep_until) =
            deny(&aws, a).await.unwrap_or_else(|| panic!("no {POLICY} in {a} after revoke"));
        assert!((before_revoke..=now_secs() + 1).contains(&instant), "{a}: {doc}");
        assert_eq!(keep_until - instant, HOLD_SECS, "{a}: {doc}");
    }
    let revoked_until = {
        let (_, _, keep_until) = deny(&aws, targets[0]).await.unwrap();
        keep_until
    };
    let wait = (revoked_until * 1000 + 500) - SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    applied(&c, &narrow).await;
    for a in targets {
        assert!(deny(&aws, a).await.is_none(), "{a}: crossrole revoke's deny is still there after its keep-until");
    }

    // Leave the organization as found.
    c.destroy(wire(&narrow), None).await.unwrap().wait().await.unwrap();
    for a in targets {
        assert!(aws.role(a, ROLE).await.is_none(), "{ROLE} left in {a}");
    }
    eprintln!("revocation_timing took {:?} (hold {HOLD_SECS}s)", started.elapsed());
}
