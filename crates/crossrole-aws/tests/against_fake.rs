//! The AWS layer against the in-memory AWS: discovery, credentials, reconcile, the trusted side and verify.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use crossrole_aws::{
    Error, Service,
    api::AwsConnector,
    calls::{CallContext, CallPolicy, Rate, Rates, RetryPolicy},
    credentials::{BrokerConfig, CredentialBroker},
    discovery::{Discovery, DiscoveryConfig},
    fake::{Failure, FakeAws, FakeConfig, LostResponse},
    reconcile::AccountIam,
    verify,
};
use crossrole_core::{
    AccessSpec, Partition,
    grant::{GrantChange, GrantPlan, plan_grant},
    ops::{CheckOutcome, ErrorCode},
    org::{OrgTree, fixture::TreeBuilder},
    plan::{AccountPlan, DesiredRole, plan},
    policy::grant_policy,
    secret::ExternalId,
    spec::{AccountState, PrincipalKind, TagCondition, TargetSelector},
};

const MGMT: &str = "123456789012";
const SECURITY: &str = "111122223333";

fn tree() -> OrgTree {
    let mut b = TreeBuilder::new("o-abcdefghij", MGMT, "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("ou-root-workload", "ou-root-prodxxxx", "Prod")
        .unit("r-root", "ou-root-security", "Security")
        .account("ou-root-security", SECURITY, "security", AccountState::Active);
    for i in 0..45u64 {
        b = b.account(
            "ou-root-prodxxxx",
            &format!("{:012}", 200_000_000_000 + i),
            &format!("prod-{i}"),
            AccountState::Active,
        );
    }
    b.account("ou-root-prodxxxx", "299999999999", "closed", AccountState::Suspended).build()
}

fn spec() -> AccessSpec {
    AccessSpec::from_yaml(&format!(
        r#"
name: audit
role:
  name: Audit
  path: /crossrole/
  trust:
    account_ids: ["{SECURITY}"]
    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf
  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
  inline_policies:
    deny: {{Version: "2012-10-17", Statement: [{{Effect: Deny, Action: "s3:*", Resource: "*"}}]}}
targets:
  organizational_unit_ids: [ou-root-workload]
grant:
  account_id: "{SECURITY}"
  user_names: [alice]
  group_names: [auditors]
"#
    ))
    .unwrap()
}

fn layer() -> Arc<CallPolicy> {
    Arc::new(CallPolicy::new(Rates::UNLIMITED, RetryPolicy::default()))
}

#[tokio::test(start_paused = true)]
async fn discovery_walks_pages_follows_empty_pages_and_caches() {
    let fake = FakeAws::new(tree(), FakeConfig { org_page_size: 7, empty_first_pages: true, ..FakeConfig::default() });
    let discovery = Discovery::new(fake.organizations(), layer(), DiscoveryConfig::default());
    let ctx = CallContext::new();
    let sel = TargetSelector {
        organizational_unit_ids: vec!["ou-root-workload".into()],
        states: [AccountState::Active].into(),
        ..Default::default()
    };
    let (tree, selection) = discovery.select(&ctx, &sel, "targets", false).await.unwrap();
    assert_eq!(tree.accounts.len(), 48);
    assert_eq!(selection.selected.len(), 45);
    assert_eq!(selection.skipped.len(), 1);
    assert_eq!(selection.skipped[0].reason, "account is SUSPENDED");
    // 46 accounts in Prod at 7 per page after an empty first page: 8 calls.
    assert_eq!(ctx.stats.snapshot().get("organizations:ListAccountsForParent"), Some(&(8 + 2 + 2 + 2)));
    assert_eq!(ctx.stats.snapshot().get("organizations:ListTagsForResource"), None, "no tag condition, no tag calls");

    // Cached: a second selection makes no call; a refresh walks again.
    let before = fake.served().values().sum::<u64>();
    discovery.select(&ctx, &sel, "targets", false).await.unwrap();
    assert_eq!(fake.served().values().sum::<u64>(), before);
    tokio::time::advance(Duration::from_secs(301)).await;
    discovery.select(&ctx, &sel, "targets", false).await.unwrap();
    assert!(fake.served().values().sum::<u64>() > before);
}

#[tokio::test(start_paused = true)]
async fn tags_are_fetched_only_for_candidates() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    fake.set_tags("200000000003", &[("env", "prod"), ("pci", "yes")]);
    fake.set_tags("200000000004", &[("env", "prod")]);
    let discovery = Discovery::new(fake.organizations(), layer(), DiscoveryConfig::default());
    let ctx = CallContext::new();
    let sel = TargetSelector {
        organizational_unit_ids: vec!["ou-root-prodxxxx".into()],
        tags: vec![
            TagCondition { key: "env".into(), value: Some("prod".into()) },
            TagCondition { key: "pci".into(), value: None },
        ],
        states: [AccountState::Active].into(),
        ..Default::default()
    };
    let (_, selection) = discovery.select(&ctx, &sel, "targets", false).await.unwrap();
    assert_eq!(selection.selected.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["200000000003"]);
    // The security account is outside the selected OU: its tags are never read.
    assert_eq!(ctx.stats.snapshot().get("organizations:ListTagsForResource"), Some(&46));
}

#[tokio::test(start_paused = true)]
async fn a_missing_bootstrap_role_is_a_clear_per_account_failure() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    fake.with_account("200000000001", |a| a.remove_role("OrganizationAccountAccessRole"));
    let broker = CredentialBroker::new(Arc::new(fake.clone()), layer(), BrokerConfig::default());
    let ctx = CallContext::new();
    let ok = broker.bootstrap(&ctx, "200000000000", None, "crossrole-test").await.unwrap();
    assert_eq!(ok.account_id, "200000000000");
    let err = broker.bootstrap(&ctx, "200000000001", None, "crossrole-test").await.unwrap_err();
    assert!(matches!(err, Error::BootstrapUnavailable { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::BootstrapRoleUnavailable);
    assert_eq!(err.aws_code(), Some("AccessDenied"));
    assert!(err.to_string().starts_with(
        "bootstrap role OrganizationAccountAccessRole in account 200000000001 is missing or not assumable"
    ));
    // Cached per account, across operations: another operation's session reuses them.
    broker.bootstrap(&ctx, "200000000000", None, "crossrole-test").await.unwrap();
    broker.bootstrap(&ctx, "200000000000", None, "crossrole-another-operation").await.unwrap();
    assert_eq!(ctx.stats.snapshot().get("sts:AssumeRole"), Some(&2));
}

#[tokio::test(start_paused = true)]
async fn a_new_account_gets_a_grace_period() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    let broker = CredentialBroker::new(Arc::new(fake.clone()), layer(), BrokerConfig::default());
    fake.inject(Failure {
        service: Service::Sts,
        operation: Some("AssumeRole".into()),
        account: Some("200000000002".into()),
        code: "AccessDenied".into(),
        times: Some(2),
    });
    let joined = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let ctx = CallContext::new();
    broker.bootstrap(&ctx, "200000000002", Some(joined), "s1").await.unwrap();
    assert_eq!(ctx.stats.snapshot().get("sts:AssumeRole"), Some(&3));
    // An old account gets no grace (a new broker: the first one holds credentials for the account now).
    let broker = CredentialBroker::new(Arc::new(fake.clone()), layer(), BrokerConfig::default());
    fake.inject(Failure {
        service: Service::Sts,
        operation: Some("AssumeRole".into()),
        account: Some("200000000002".into()),
        code: "AccessDenied".into(),
        times: Some(1),
    });
    assert!(broker.bootstrap(&ctx, "200000000002", Some(1_000), "s2").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn reconcile_creates_reads_back_and_converges() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    let calls = layer();
    let broker = CredentialBroker::new(Arc::new(fake.clone()), calls.clone(), BrokerConfig::default());
    let ctx = CallContext::new();
    let creds = broker.bootstrap(&ctx, "200000000000", None, "s").await.unwrap();
    let iam = AccountIam { iam: fake.iam(&creds), account: creds.account_id.clone(), calls: &calls, ctx: &ctx };
    let desired = DesiredRole::from_spec(&spec(), Partition::Aws);

    assert_eq!(iam.read_role("Audit").await.unwrap(), None);
    let p = plan(&desired, None);
    let mut applied = Vec::new();
    iam.apply("Audit", p.changes(), || false, |_| Box::pin(async {}), |c| applied.push(c.summary())).await.unwrap();
    assert_eq!(applied.len(), 3);
    let observed = iam.read_role("Audit").await.unwrap().unwrap();
    assert_eq!(observed.arn, "arn:aws:iam::200000000000:role/crossrole/Audit");
    assert!(observed.attributes.trust_policy.starts_with("%7B"), "IAM returns documents URL-encoded");
    assert_eq!(plan(&desired, Some(&observed)), AccountPlan::InSync);

    // One UpdateRole carries both a session and a description change.
    let mut spec2 = spec();
    spec2.role.description = "new".into();
    spec2.role.max_session_duration = Duration::from_secs(7200);
    let d2 = DesiredRole::from_spec(&spec2, Partition::Aws);
    let ctx2 = CallContext::new();
    let iam2 = AccountIam { iam: fake.iam(&creds), account: creds.account_id.clone(), calls: &calls, ctx: &ctx2 };
    iam2.apply("Audit", plan(&d2, Some(&observed)).changes(), || false, |_| Box::pin(async {}), |_| {}).await.unwrap();
    assert_eq!(ctx2.stats.snapshot().get("iam:UpdateRole"), Some(&1));
    assert_eq!(plan(&d2, iam2.read_role("Audit").await.unwrap().as_ref()), AccountPlan::InSync);
}

#[tokio::test(start_paused = true)]
async fn lost_responses_are_found_not_failed() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    fake.add_principals(SECURITY, &["alice"], &["auditors"]);
    let calls = layer();
    let ctx = CallContext::new();
    let broker = CredentialBroker::new(Arc::new(fake.clone()), calls.clone(), BrokerConfig::default());
    let spec = spec();
    // Every first write of each kind is carried out and its response lost.
    for op in ["CreateRole", "AttachRolePolicy", "PutRolePolicy", "CreatePolicy", "CreatePolicyVersion", "DeleteRole"] {
        fake.lose_responses(LostResponse {
            service: Service::Iam,
            operation: Some(op.into()),
            account: None,
            times: Some(1),
        });
    }
    let target = "200000000005";
    let creds = broker.bootstrap(&ctx, target, None, "s").await.unwrap();
    let iam = AccountIam { iam: fake.iam(&creds), account: creds.account_id.clone(), calls: &calls, ctx: &ctx };
    let desired = DesiredRole::from_spec(&spec, Partition::Aws);
    iam.apply("Audit", plan(&desired, None).changes(), || false, |_| Box::pin(async {}), |_| {}).await.unwrap();
    assert_eq!(plan(&desired, iam.read_role("Audit").await.unwrap().as_ref()), AccountPlan::InSync);
    assert_eq!(ctx.stats.snapshot().get("iam:CreateRole"), Some(&1), "found by its effect, not sent twice");

    // The grant: a lost CreatePolicy, then updates at IAM's limit of five versions with a lost CreatePolicyVersion.
    let screds = broker.bootstrap(&ctx, SECURITY, None, "s").await.unwrap();
    let s_iam = AccountIam { iam: fake.iam(&screds), account: screds.account_id.clone(), calls: &calls, ctx: &ctx };
    let grant = spec.grant.clone().unwrap();
    let arn = grant.policy_arn(Partition::Aws);
    let principals: BTreeSet<(PrincipalKind, String)> = grant.principals().map(|(k, n)| (k, n.to_string())).collect();
    for n in 1..=7u64 {
        let accounts: BTreeSet<String> = (0..n).map(|i| format!("{:012}", 200_000_000_000 + i)).collect();
        let (doc, _) = grant_policy(Partition::Aws, "audit", "/crossrole/", "Audit", &accounts, None);
        if n == 6 {
            fake.lose_responses(LostResponse {
                service: Service::Iam,
                operation: Some("CreatePolicyVersion".into()),
                account: None,
                times: Some(1),
            });
        }
        let observed = s_iam.read_grant(&arn).await.unwrap();
        let p = plan_grant("audit", &grant.policy_name, "/crossrole/", &doc, &principals, observed.as_ref());
        s_iam.apply_grant(&arn, p.changes(), |_| {}).await.unwrap();
        let observed = s_iam.read_grant(&arn).await.unwrap();
        assert_eq!(
            plan_grant("audit", &grant.policy_name, "/crossrole/", &doc, &principals, observed.as_ref()),
            GrantPlan::InSync,
            "after update {n}"
        );
        assert!(fake.policy(SECURITY, &arn).unwrap().versions <= 5);
    }

    // A stale plan at the limit (someone added versions meanwhile): room is made, the update goes through.
    let accounts: BTreeSet<String> = (0..3u64).map(|i| format!("{:012}", 200_000_000_000 + i)).collect();
    let (doc, _) = grant_policy(Partition::Aws, "audit", "/crossrole/", "Audit", &accounts, None);
    let stale = GrantChange::UpdatePolicy { before: String::new(), after: doc.to_json(), delete_version: None };
    s_iam.apply_grant(&arn, &[stale], |_| {}).await.unwrap();
    let observed = s_iam.read_grant(&arn).await.unwrap();
    assert_eq!(
        plan_grant("audit", &grant.policy_name, "/crossrole/", &doc, &principals, observed.as_ref()),
        GrantPlan::InSync
    );

    // Deleting the role with a lost DeleteRole response.
    let gone = crossrole_core::plan::plan_delete("audit", iam.read_role("Audit").await.unwrap().as_ref());
    iam.apply("Audit", gone.changes(), || false, |_| Box::pin(async {}), |_| {}).await.unwrap();
    assert_eq!(iam.read_role("Audit").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn permanent_iam_errors_carry_their_code() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    let calls = layer();
    let ctx = CallContext::new();
    let creds = CredentialBroker::new(Arc::new(fake.clone()), calls.clone(), BrokerConfig::default())
        .bootstrap(&ctx, "200000000000", None, "s")
        .await
        .unwrap();
    fake.inject(Failure {
        service: Service::Iam,
        operation: Some("PutRolePolicy".into()),
        account: None,
        code: "MalformedPolicyDocument".into(),
        times: None,
    });
    let iam = AccountIam { iam: fake.iam(&creds), account: creds.account_id.clone(), calls: &calls, ctx: &ctx };
    let desired = DesiredRole::from_spec(&spec(), Partition::Aws);
    let err =
        iam.apply("Audit", plan(&desired, None).changes(), || false, |_| Box::pin(async {}), |_| {}).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("MalformedPolicyDocument"));
    assert_eq!(ctx.stats.snapshot().get("iam:PutRolePolicy"), Some(&1), "not retried");
}

#[tokio::test(start_paused = true)]
async fn the_trusted_side_and_verify() {
    let fake = FakeAws::new(tree(), FakeConfig::default());
    fake.add_principals(SECURITY, &["alice"], &["auditors"]);
    let calls = layer();
    let ctx = CallContext::new();
    let broker = CredentialBroker::new(Arc::new(fake.clone()), calls.clone(), BrokerConfig::default());
    let spec = spec();

    // The role in one target.
    let target = "200000000005";
    let tcreds = broker.bootstrap(&ctx, target, None, "s").await.unwrap();
    let t_iam = AccountIam { iam: fake.iam(&tcreds), account: tcreds.account_id.clone(), calls: &calls, ctx: &ctx };
    t_iam
        .apply(
            "Audit",
            plan(&DesiredRole::from_spec(&spec, Partition::Aws), None).changes(),
            || false,
            |_| Box::pin(async {}),
            |_| {},
        )
        .await
        .unwrap();

    // The grant in the trusted account.
    let screds = broker.bootstrap(&ctx, SECURITY, None, "s").await.unwrap();
    let s_iam = AccountIam { iam: fake.iam(&screds), account: screds.account_id.clone(), calls: &calls, ctx: &ctx };
    let grant = spec.grant.clone().unwrap();
    let arn = grant.policy_arn(Partition::Aws);
    let (doc, _) =
        grant_policy(Partition::Aws, "audit", "/crossrole/", "Audit", &BTreeSet::from([target.to_string()]), None);
    let principals: BTreeSet<(PrincipalKind, String)> = grant.principals().map(|(k, n)| (k, n.to_string())).collect();
    let observed = s_iam.read_grant(&arn).await.unwrap();
    let p = plan_grant("audit", &grant.policy_name, "/crossrole/", &doc, &principals, observed.as_ref());
    s_iam.apply_grant(&arn, p.changes(), |_| {}).await.unwrap();
    let observed = s_iam.read_grant(&arn).await.unwrap();
    assert_eq!(
        plan_grant("audit", &grant.policy_name, "/crossrole/", &doc, &principals, observed.as_ref()),
        GrantPlan::InSync
    );
    assert_eq!(fake.policy(SECURITY, &arn).unwrap().attachments.len(), 2);

    // Live: the trusted side assumes the role with the ExternalId and lands in the target; the fake enforces the
    // trust policy, so a wrong ExternalId is refused.
    let role_arn = "arn:aws:iam::200000000005:role/crossrole/Audit";
    let check = verify::live_check(
        &fake,
        &calls,
        &ctx,
        live(&screds, role_arn, target, &ExternalId::new("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf")),
    )
    .await;
    assert_eq!(check.outcome, CheckOutcome::Passed, "{check:?}");
    assert_eq!(check.assumed_account_id, target);
    let wrong =
        verify::live_check(&fake, &calls, &ctx, live(&screds, role_arn, target, &ExternalId::new("wrong"))).await;
    assert_eq!(wrong.outcome, CheckOutcome::Failed);
    assert!(wrong.error.contains("AccessDenied"), "{}", wrong.error);
    assert!(wrong.attempts > 1, "AccessDenied is retried until the deadline while IAM propagates");

    // Static: alice is allowed with the ExternalId and refused without it or with a wrong one.
    let trust = fake.role(target, "Audit").unwrap().attributes.trust_policy;
    let checks = verify::static_checks(&trust, &spec, &verify::principals_to_check(&spec, Partition::Aws));
    let summary: Vec<(String, CheckOutcome)> = checks.iter().map(|c| (c.principal_arn.clone(), c.outcome)).collect();
    let passed = CheckOutcome::Passed;
    assert_eq!(
        summary,
        vec![
            ("arn:aws:iam::111122223333:user/alice".to_string(), passed),
            ("arn:aws:iam::111122223333:user/alice (without the ExternalId)".to_string(), passed),
            ("arn:aws:iam::111122223333:user/alice (with a wrong ExternalId)".to_string(), passed),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_fake_throttles_over_its_rate_and_the_layer_absorbs_it() {
    let mut config = FakeConfig::default();
    config.throttle.insert(Service::Organizations, Rate { per_second: 2.0, burst: 2 });
    let fake = FakeAws::new(tree(), config);
    // The layer runs faster than the fake allows: throttles happen and are retried.
    let calls = Arc::new(CallPolicy::new(
        Rates { organizations: Rate { per_second: 20.0, burst: 20 }, ..Rates::UNLIMITED },
        RetryPolicy { max_attempts: 20, ..RetryPolicy::default() },
    ));
    let discovery = Discovery::new(fake.organizations(), calls, DiscoveryConfig::default());
    let ctx = CallContext::new();
    discovery.tree(&ctx, false).await.unwrap();
    assert!(fake.throttled() > 0);
    assert_eq!(ctx.stats.throttled(), fake.throttled());
}

fn live<'a>(
    creds: &'a crossrole_aws::api::Credentials,
    role_arn: &'a str,
    account: &'a str,
    external_id: &'a ExternalId,
) -> verify::LiveCheck<'a> {
    verify::LiveCheck {
        as_credentials: creds,
        caller_arn: "x",
        role_arn,
        account,
        external_id: Some(external_id),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test(start_paused = true)]
async fn a_revocation_is_dated_when_its_deny_is_written_after_the_narrowed_trust() {
    use crossrole_core::{
        plan::Change,
        revocation::{POLICY_NAME, Revocation, Revoke, with_revocation},
    };
    let fake = FakeAws::new(tree(), FakeConfig::default());
    let calls = layer();
    let broker = CredentialBroker::new(Arc::new(fake.clone()), calls.clone(), BrokerConfig::default());
    let ctx = CallContext::new();
    let account = "200000000007";
    let creds = broker.bootstrap(&ctx, account, None, "s").await.unwrap();
    let iam = AccountIam { iam: fake.iam(&creds), account: creds.account_id.clone(), calls: &calls, ctx: &ctx };
    let spec = |trust: &str| {
        let yaml = format!(
            "name: audit\nrole:\n  name: Audit\n  path: /crossrole/\n  trust:\n    account_ids: [\"{SECURITY}\"]\n{trust}\
             targets:\n  organizational_unit_ids: [r-root]\n"
        );
        DesiredRole::from_spec(&AccessSpec::from_yaml(&yaml).unwrap(), Partition::Aws)
    };
    iam.apply("Audit", plan(&spec(""), None).changes(), || false, |_| Box::pin(async {}), |_| {}).await.unwrap();
    let observed = iam.read_role("Audit").await.unwrap().unwrap();
    // Planned at 10:00:00Z; the deny is written at 10:02:00Z, after the trust that requires MFA.
    let planned_at = 1_796_464_800_000;
    let narrowed = spec("    require_mfa: true\n");
    let p = with_revocation(plan(&narrowed, Some(&observed)), Some(&observed), planned_at, &Revoke::On);
    let trust_when_dated = std::sync::Mutex::new(None);
    let now = || {
        let role = fake.role(account, "Audit").unwrap();
        *trust_when_dated.lock().unwrap() = Some(role.attributes.trust_policy);
        planned_at + 120_000
    };
    iam.apply_at("Audit", p.changes(), now, || false, |_| Box::pin(async {}), |_| {}).await.unwrap();
    let after = iam.read_role("Audit").await.unwrap().unwrap();
    let written = Revocation::parse(&after.inline_policies[POLICY_NAME]).unwrap();
    assert_eq!(written, Revocation::at(planned_at + 120_000, 3600), "the write's instant, not the plan's");
    assert_eq!(
        trust_when_dated.into_inner().unwrap().as_deref(),
        Some(after.attributes.trust_policy.as_str()),
        "dated once the narrowed trust was written"
    );
    assert!(after.attributes.trust_policy.contains("MultiFactorAuthPresent"), "{}", after.attributes.trust_policy);
    // `apply` writes it as planned.
    let Some(Change::RevokeSessions { revocation, .. }) =
        p.changes().iter().find(|c| matches!(c, Change::RevokeSessions { .. }))
    else {
        panic!("a revocation")
    };
    iam.apply("Audit", p.changes(), || false, |_| Box::pin(async {}), |_| {}).await.unwrap();
    let again = iam.read_role("Audit").await.unwrap().unwrap();
    assert_eq!(Revocation::parse(&again.inline_policies[POLICY_NAME]), Some(*revocation));
}
