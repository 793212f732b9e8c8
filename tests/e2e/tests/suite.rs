//! The whole chain on real emulators: crossroled (a real process), the SDK and the CLI; AWS state is read back
//! through the AWS SDK for Rust. Run by `cargo xtask e2e` (tests run one at a time: they share an organization).
//!
//! Neither emulator enforces trust policies, so nothing here asserts that a wrong ExternalId is refused: the
//! static trust evaluator proves that in unit tests, and `verify` reports it here. Neither refuses AssumeRole for
//! a role that does not exist either, so the rollouts here leave out the account seeded without a bootstrap role
//! (an emulator would let crossrole in, and nothing true could be asserted about it); that a missing or unusable
//! bootstrap role fails its account with a clear reason (and that the failure tolerance holds) is proven against
//! the in-memory AWS, which enforces it (crossrole-engine's and crossrole-cli's tests).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::BTreeSet;

use crossrole_client::proto;
use crossrole_core::{
    AccessSpec,
    plan::{AccountPlan, DesiredRole},
    policy::PolicyDocument,
};
use crossrole_e2e::{Aws, Crossroled, Manifest, granted};
use crossrole_wire::ToWire;
use futures::StreamExt;

fn wire(yaml: &str) -> proto::AccessSpec {
    AccessSpec::from_yaml(yaml).unwrap().to_wire()
}

fn ids(v: &[&crossrole_e2e::Account]) -> Vec<String> {
    v.iter().map(|a| a.id.clone()).collect()
}

async fn selected(
    client: &crossrole_client::Client,
    selector: proto::TargetSelector,
) -> (Vec<String>, Vec<(String, String)>) {
    let first = client
        .list_accounts(proto::ListAccountsRequest {
            selector: Some(selector.clone()),
            page_size: 7,
            ..Default::default()
        })
        .await
        .unwrap();
    let all: Vec<proto::Account> = client.accounts(selector).map(|a| a.unwrap()).collect().await;
    let skipped = first.skipped.iter().map(|s| (s.account.clone().unwrap().id, s.reason.clone())).collect();
    (all.into_iter().map(|a| a.id).collect(), skipped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_chain() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("the_whole_chain");
    let server = Crossroled::start(&dir).await.unwrap();
    let client = server.client().await;
    // The rollout leaves out the account without a bootstrap role: what an emulator shows about it is not true.
    let yaml = m.example_spec().replace(
        "organizational_unit_paths: [/Root/Workloads]",
        &format!(
            "organizational_unit_paths: [/Root/Workloads]\n  exclude_account_ids: [\"{}\"]",
            m.no_bootstrap_account
        ),
    );
    let spec = AccessSpec::from_yaml(&yaml).unwrap();
    assert!(spec.targets.exclude_account_ids.contains(&m.no_bootstrap_account));

    // 1. Discovery: OU (recursive), tags, exclusions; non-ACTIVE skipped with the reason.
    let workloads = m.active_under("/Root/Workloads");
    let (got, skipped) = selected(
        &client,
        proto::TargetSelector { organizational_unit_paths: vec!["/Root/Workloads".into()], ..Default::default() },
    )
    .await;
    assert_eq!(got, ids(&workloads));
    assert_eq!(skipped, vec![(m.closed_account.clone(), "account is SUSPENDED".to_string())]);
    let (by_id, _) = selected(
        &client,
        proto::TargetSelector { organizational_unit_ids: vec![m.ous["/Root/Workloads"].clone()], ..Default::default() },
    )
    .await;
    assert_eq!(by_id, got);
    let pci: Vec<String> = ids(&m.active_under("/Root/Workloads/Prod/Payments"));
    let (tagged, _) = selected(
        &client,
        proto::TargetSelector {
            organizational_unit_paths: vec!["/Root".into()],
            tags: vec![
                proto::TagCondition { key: "pci".into(), value: None },
                proto::TagCondition { key: "environment".into(), value: Some("prod".into()) },
            ],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(tagged, pci);
    let excluded_one = m.account("dev-03").id.clone();
    let (excl, _) = selected(
        &client,
        proto::TargetSelector {
            organizational_unit_paths: vec!["/Root/Workloads".into()],
            exclude_organizational_unit_ids: vec![m.ous["/Root/Workloads/Prod"].clone()],
            exclude_account_ids: vec![excluded_one.clone()],
            ..Default::default()
        },
    )
    .await;
    let mut want: Vec<String> =
        ids(&m.active_under("/Root/Workloads/Dev")).into_iter().filter(|a| *a != excluded_one).collect();
    want.sort();
    assert_eq!(excl, want);
    let (direct, _) = selected(
        &client,
        proto::TargetSelector {
            organizational_unit_paths: vec!["/Root/Workloads/Prod".into()],
            exclude_descendants: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(direct.len(), m.accounts.iter().filter(|a| a.ou_path == "/Root/Workloads/Prod").count());

    // 2. Plan shows the creates, and changes nothing in AWS.
    let workloads = m.reachable_under("/Root/Workloads");
    let plan = client.plan(wire(&yaml)).await.unwrap();
    let creates = plan
        .accounts
        .iter()
        .filter(|a| a.changes.first().is_some_and(|c| c.kind == proto::ChangeKind::CreateRole as i32))
        .count();
    assert_eq!(creates, workloads.len());
    assert_eq!(plan.grant.as_ref().unwrap().changes.len(), 3, "create the policy, attach to alice and auditors");
    for a in workloads.iter().take(3) {
        assert!(aws.role(&a.id, "SecurityAudit").await.is_none(), "a plan must not create anything");
    }

    // 3. Apply: roles exactly as specified; the trusted side's policy attached; events streamed.
    let op = client.apply(wire(&yaml), None).await.unwrap();
    let events: Vec<proto::OperationEvent> = op.events().map(|e| e.unwrap()).collect().await;
    let finished: BTreeSet<String> = events
        .iter()
        .filter(|e| matches!(e.event, Some(proto::operation_event::Event::AccountFinished(_))))
        .map(|e| e.account_id.clone())
        .collect();
    let done = op.get().await.unwrap();
    let results = op.results().await.unwrap();
    let failures: Vec<String> =
        results.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{}: {}", r.account_name, e.message))).collect();
    assert_eq!(
        finished,
        workloads.iter().map(|a| a.id.clone()).collect(),
        "one finished event per target account ({}; {failures:?})",
        done.message
    );
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    assert!(!results.is_empty());
    let desired = DesiredRole::from_spec(&spec, crossrole_core::Partition::Aws);
    let applied: Vec<&crossrole_e2e::Account> = workloads.clone();
    for a in &applied {
        let role = aws.role(&a.id, "SecurityAudit").await.unwrap_or_else(|| panic!("no role in {}", a.name));
        assert_eq!(role.attributes.path, "/crossrole/");
        assert_eq!(role.attributes.description, spec.role.description);
        assert_eq!(role.attributes.max_session_duration, 3600);
        assert_eq!(
            PolicyDocument::parse_observed(&role.attributes.trust_policy).unwrap(),
            desired.trust_policy,
            "{}: trust policy",
            a.name
        );
        assert_eq!(role.managed_policy_arns, spec.role.managed_policy_arns);
        assert_eq!(role.attributes.permissions_boundary_arn.as_deref(), Some("arn:aws:iam::aws:policy/ReadOnlyAccess"));
        assert_eq!(role.attributes.tags, desired.tags);
        assert_eq!(
            PolicyDocument::parse_observed(&role.inline_policies["deny-data-access"]).unwrap(),
            spec.role.inline_policies["deny-data-access"]
        );
        assert_eq!(crossrole_core::plan::plan(&desired, Some(&role)), AccountPlan::InSync, "{}", a.name);
    }
    let security_iam = aws.iam(&m.security_account).await;
    let policy_arn = format!("arn:aws:iam::{}:policy/crossrole/crossrole-assume-security-audit", m.security_account);
    let entities = security_iam.list_entities_for_policy().policy_arn(&policy_arn).send().await.unwrap();
    assert_eq!(entities.policy_users().iter().filter_map(|u| u.user_name()).collect::<Vec<_>>(), ["alice"]);
    assert_eq!(entities.policy_groups().iter().filter_map(|g| g.group_name()).collect::<Vec<_>>(), ["auditors"]);

    // 4. Verify: the trusted side assumes each role (with the ExternalId); GetCallerIdentity shows the target.
    let v = client.verify(wire(&yaml)).await.unwrap();
    for a in v.accounts.iter().filter(|a| applied.iter().any(|x| x.id == a.account_id)) {
        assert_eq!(a.conformance, proto::RoleConformance::InSync as i32, "{}", a.account_name);
        let live = a.assume.as_ref().unwrap();
        assert_eq!(live.outcome, proto::CheckOutcome::Passed as i32, "{}: {}", a.account_name, live.error);
        assert_eq!(live.assumed_account_id, a.account_id);
        assert!(a.trust_checks.iter().all(|c| c.outcome == proto::CheckOutcome::Passed as i32), "{:?}", a.trust_checks);
    }

    // 4b. A wrong ExternalId is not answered with the right one: not by the API, not by the CLI's JSON.
    let real_id = spec.role.trust.external_id.as_ref().unwrap().expose().to_string();
    let wrong_yaml = yaml.replace(&real_id, "Zz9yX8wV7uT6sR5qP4oN3mL2kJ1iHg00");
    let wrong = client.verify(wire(&wrong_yaml)).await.unwrap();
    assert!(!format!("{wrong:?}").contains(&real_id), "verify with a wrong ExternalId returned the real one");
    // Nor does it tell whether the guess was right: a token that may not read ExternalIds has them not compared,
    // and is told so (a guess cannot be tested against drift).
    assert!(!wrong.external_id_note.is_empty(), "the response says the ExternalId was not compared");
    let conformance = |r: &proto::VerifyAccessResponse| {
        r.accounts.iter().map(|a| (a.account_id.clone(), a.conformance)).collect::<Vec<_>>()
    };
    assert_eq!(conformance(&wrong), conformance(&v), "a wrong guess looks like the right one");
    let wrong_file = dir.join("wrong.yaml");
    std::fs::write(&wrong_file, &wrong_yaml).unwrap();
    let cli = server.cli(&["verify", "-f", wrong_file.to_str().unwrap(), "-o", "json"]);
    let cli = String::from_utf8_lossy(&cli.stdout);
    assert!(cli.contains("\"account_id\"") && !cli.contains(&real_id), "crossrole verify -o json: {cli:.300}");

    // 5. Re-apply is a no-op: zero IAM write calls.
    let again = client.apply(wire(&yaml), None).await.unwrap().wait().await.unwrap();
    let writes: u64 = again
        .aws_calls
        .iter()
        .filter(|(k, _)| k.starts_with("iam:") && !k.starts_with("iam:Get") && !k.starts_with("iam:List"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(writes, 0, "{:?}", again.aws_calls);
    assert_eq!(again.counts.unwrap().unchanged as usize, applied.len());

    // 6. Drift: a policy attached and the trust policy edited by hand; the plan shows exactly those; apply repairs.
    let drifted = m.account("prod-01").id.clone();
    let iam = aws.iam(&drifted).await;
    iam.attach_role_policy()
        .role_name("SecurityAudit")
        .policy_arn("arn:aws:iam::aws:policy/AdministratorAccess")
        .send()
        .await
        .unwrap();
    iam.update_assume_role_policy()
        .role_name("SecurityAudit")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let plan = client.plan(wire(&yaml)).await.unwrap();
    let changed: Vec<&proto::AccountPlan> = plan.accounts.iter().filter(|a| !a.changes.is_empty()).collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].account_id, drifted);
    let kinds: Vec<i32> = changed[0].changes.iter().map(|c| c.kind).collect();
    // The trust opened by hand is narrowed back, so the sessions issued meanwhile are revoked once it is written.
    assert_eq!(
        kinds,
        [
            proto::ChangeKind::DetachManagedPolicy as i32,
            proto::ChangeKind::UpdateTrustPolicy as i32,
            proto::ChangeKind::RevokeSessions as i32
        ]
    );
    client.apply(wire(&yaml), None).await.unwrap().wait().await.unwrap();
    let repaired = aws.role(&drifted, "SecurityAudit").await.unwrap();
    assert_eq!(crossrole_core::plan::plan(&desired, Some(&repaired)), AccountPlan::InSync);

    // 7. Ownership: a same-named role crossrole does not own is untouched and reported.
    let foreign_account = m.account("dev-05").id.clone();
    let foreign_trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"sts:AssumeRole"}]}"#;
    aws.iam(&foreign_account)
        .await
        .create_role()
        .role_name("ForeignAudit")
        .assume_role_policy_document(foreign_trust)
        .description("not crossrole's")
        .send()
        .await
        .unwrap();
    let before = aws.role(&foreign_account, "ForeignAudit").await.unwrap();
    let foreign_yaml = yaml
        .replace("name: security-audit", "name: foreign-audit")
        .replace("name: SecurityAudit", "name: ForeignAudit");
    let op = client.apply(wire(&foreign_yaml), None).await.unwrap();
    op.wait().await.unwrap();
    let r = op.results().await.unwrap().into_iter().find(|r| r.account_id == foreign_account).unwrap();
    assert_eq!(r.outcome, proto::AccountOutcome::Skipped as i32);
    assert_eq!(r.error.as_ref().unwrap().code, "not_owned");
    assert_eq!(aws.role(&foreign_account, "ForeignAudit").await.unwrap(), before);
    // The grant names exactly the roles crossrole made: not the foreign one, and nothing else.
    let foreign_grant = format!("arn:aws:iam::{}:policy/crossrole/crossrole-assume-foreign-audit", m.security_account);
    let want: BTreeSet<String> = workloads
        .iter()
        .filter(|a| a.id != foreign_account)
        .map(|a| format!("arn:aws:iam::{}:role/crossrole/ForeignAudit", a.id))
        .collect();
    assert_eq!(granted(&security_iam, &foreign_grant).await, want);
    assert_eq!(client.plan(wire(&foreign_yaml)).await.unwrap().total_changes, 0, "a re-plan after an apply is empty");

    // 8. Retarget: an account moved out of the selected OU loses the role at the next apply (the spec prunes).
    let moved = m.account("dev-00").id.clone();
    aws.organizations()
        .move_account()
        .account_id(&moved)
        .source_parent_id(&m.ous["/Root/Workloads/Dev"])
        .destination_parent_id(&m.ous["/Root/Quarantine"])
        .send()
        .await
        .unwrap();
    let op = client.apply(wire(&yaml), None).await.unwrap();
    op.wait().await.unwrap();
    assert!(aws.role(&moved, "SecurityAudit").await.is_none(), "the role left with the account");
    let r = op.results().await.unwrap().into_iter().find(|r| r.account_id == moved).unwrap();
    assert_eq!(r.action, proto::AccountAction::Remove as i32);
    let grant = security_iam.get_policy().policy_arn(&policy_arn).send().await.unwrap();
    let version = grant.policy().and_then(|p| p.default_version_id()).unwrap().to_string();
    let doc = security_iam.get_policy_version().policy_arn(&policy_arn).version_id(version).send().await.unwrap();
    let doc = doc.policy_version().and_then(|v| v.document()).unwrap();
    let doc = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    assert!(!doc.contains(&moved) && doc.contains(&m.account("dev-01").id), "the grant follows the targets");

    // 10. Destroy removes everything crossrole created, and nothing else.
    let foreign_op = client.destroy(wire(&foreign_yaml), None).await.unwrap();
    let foreign_done = foreign_op.wait().await.unwrap();
    assert_eq!(foreign_done.state, proto::OperationState::Succeeded as i32, "{}", foreign_done.message);
    let r = foreign_op.results().await.unwrap().into_iter().find(|r| r.account_id == foreign_account).unwrap();
    assert_eq!(r.outcome, proto::AccountOutcome::Skipped as i32, "destroy skips a role it does not own");
    assert_eq!(r.error.as_ref().unwrap().code, "not_owned");
    let d = client.destroy(wire(&yaml), None).await.unwrap().wait().await.unwrap();
    assert_eq!(d.state, proto::OperationState::Succeeded as i32, "{}", d.message);
    for a in &applied {
        assert!(aws.role(&a.id, "SecurityAudit").await.is_none(), "{} still has the role", a.name);
        if a.bootstrap {
            let names: Vec<String> = aws
                .iam(&a.id)
                .await
                .list_roles()
                .send()
                .await
                .unwrap()
                .roles()
                .iter()
                .map(|r| r.role_name().to_string())
                .collect();
            assert!(
                names.contains(&"OrganizationAccountAccessRole".to_string()),
                "the bootstrap role stays in {}",
                a.name
            );
        }
    }
    assert_eq!(
        aws.role(&foreign_account, "ForeignAudit").await.unwrap(),
        before,
        "a role crossrole does not own survives destroy"
    );
    assert!(security_iam.get_policy().policy_arn(&policy_arn).send().await.is_err(), "the grant policy is gone");
    // Put the moved account back for the other tests.
    aws.organizations()
        .move_account()
        .account_id(&moved)
        .source_parent_id(&m.ous["/Root/Quarantine"])
        .destination_parent_id(&m.ous["/Root/Workloads/Dev"])
        .send()
        .await
        .unwrap();
    aws.iam(&foreign_account).await.delete_role().role_name("ForeignAudit").send().await.unwrap();

    // The ExternalId went to AWS (in trust policies and AssumeRole calls) and nowhere else: not into the journal's
    // bytes (sealed there), not into crossroled's log at trace level, the AWS SDK's included.
    for entry in std::fs::read_dir(&server.data_dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes.windows(real_id.len()).any(|w| w == real_id.as_bytes()),
            "{} holds the ExternalId",
            path.display()
        );
    }
    let log = std::fs::read_to_string(server.data_dir.join("crossroled.log")).unwrap();
    assert!(log.contains("TRACE") && log.contains("sts:AssumeRole"), "the log is at trace level, AWS calls included");
    assert!(!log.contains('\u{1b}'), "no ANSI escapes in a log file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_crossroled_resumes_and_duplicates_nothing() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("restart");
    let mut server = Crossroled::start(&dir).await.unwrap();
    let yaml = m
        .example_spec()
        .replace("name: security-audit", "name: restart-audit")
        .replace("name: SecurityAudit", "name: RestartAudit")
        .replace("[/Root/Workloads]", "[/Root/Workloads/Dev, /Root/Sandbox]")
        .replace("max_concurrency: 10 ", "max_concurrency: 2 ");
    let targets: Vec<String> =
        ids(&m.active_under("/Root/Workloads/Dev")).into_iter().chain(ids(&m.active_under("/Root/Sandbox"))).collect();
    let op = server.client().await.apply(wire(&yaml), Some("restart-test".into())).await.unwrap();
    // Kill -9 once a few accounts are done.
    let events = op.events();
    futures::pin_mut!(events);
    let mut finished = 0;
    while let Some(e) = events.next().await {
        if matches!(e.unwrap().event, Some(proto::operation_event::Event::AccountFinished(_))) {
            finished += 1;
            if finished == 3 {
                break;
            }
        }
    }
    // A second crossroled on the same journal exits at once, naming the first.
    let second = std::process::Command::new(std::env::var("CROSSROLED_BIN").unwrap())
        .arg("--config")
        .arg(server.data_dir.join("crossroled.toml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success() && said.contains("is in use by crossroled pid"), "{said}");
    server.kill();
    server.restart().await.unwrap();
    let client = server.client().await;
    // The same idempotency key finds the same operation; it resumed and completes.
    let again = client.apply(wire(&yaml), Some("restart-test".into())).await.unwrap();
    assert_eq!(again.id(), op.id());
    let done = again.wait().await.unwrap();
    let results = again.results().await.unwrap();
    let failures: Vec<String> =
        results.iter().filter_map(|r| r.error.as_ref().map(|e| format!("{}: {}", r.account_name, e.message))).collect();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{} {failures:?}", done.message);
    let ensured: Vec<&proto::AccountResult> =
        results.iter().filter(|r| r.action == proto::AccountAction::Ensure as i32).collect();
    assert_eq!(ensured.len(), targets.len(), "one result per account");
    // The record tells what happened: every role was created by this operation, before or after the kill.
    for r in &ensured {
        assert_eq!(r.outcome, proto::AccountOutcome::Changed as i32, "{}: {:?}", r.account_name, r.changes);
        let creates = r.changes.iter().filter(|c| c.kind == proto::ChangeKind::CreateRole as i32).count();
        assert_eq!(creates, 1, "{}", r.account_name);
    }
    assert_eq!(done.counts.unwrap().changed as usize, targets.len());
    // The grant names exactly these roles, nothing in a suspended account.
    let security_iam = aws.iam(&m.security_account).await;
    let grant = format!("arn:aws:iam::{}:policy/crossrole/crossrole-assume-restart-audit", m.security_account);
    let want: BTreeSet<String> =
        targets.iter().map(|a| format!("arn:aws:iam::{a}:role/crossrole/RestartAudit")).collect();
    assert_eq!(granted(&security_iam, &grant).await, want);
    assert!(
        done.aws_calls.get("iam:CreateRole").copied().unwrap_or(0) as usize <= targets.len(),
        "no role created twice: {:?}",
        done.aws_calls
    );
    let seqs: Vec<u64> = client.operation_handle(op.id()).events().map(|e| e.unwrap().sequence).collect().await;
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "events without gaps or repeats");
    for a in &targets {
        assert!(aws.role(a, "RestartAudit").await.is_some());
    }
    client.destroy(wire(&yaml), None).await.unwrap().wait().await.unwrap();
    assert!(aws.role(&targets[0], "RestartAudit").await.is_none());
    assert_eq!(server.stop().map(|s| s.success()), Some(true), "SIGTERM stops crossroled cleanly (exit 0)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_over_the_wire() {
    let m = Manifest::load();
    let dir = crossrole_e2e::test_dir("bad_input");
    let server = Crossroled::start(&dir).await.unwrap();
    let mut bad = wire(&m.example_spec());
    bad.role.as_mut().unwrap().max_session_duration = Some(prost_types::Duration { seconds: 60, nanos: 0 });
    bad.targets.as_mut().unwrap().account_ids = vec!["12345".into()];
    let err = server.client().await.plan(bad).await.unwrap_err();
    let fields: Vec<&str> = err.violations().iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["spec.role.max_session_duration", "spec.targets.account_ids[0]"]);
    let anonymous = crossrole_client::Client::builder().endpoint(&server.endpoint).connect().await.unwrap();
    assert!(matches!(anonymous.plan(wire(&m.example_spec())).await, Err(crossrole_client::Error::Unauthenticated(_))));
    // And through the CLI: exit code 2, the field named.
    let file = dir.join("bad.yaml");
    std::fs::write(&file, m.example_spec().replace("max_session_duration: 1h", "max_session_duration: 1m")).unwrap();
    let out = server.cli(&["plan", "-f", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("role.max_session_duration"));
}
