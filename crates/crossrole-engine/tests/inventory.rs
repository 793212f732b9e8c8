//! The inventory over the in-memory AWS: an organization with hand-made roles of varied shapes, every role found and
//! classified, an account that cannot be read reported alone, the roles served back filtered and paged, nothing
//! written to AWS, and a run stopped part-way resumed without reading a finished account again.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    calls::{Rate, Rates},
    fake::{FakeConfig, Latency},
};
use crossrole_core::inventory::{EntrantKind, FindingKind, InventoryRole, LastUsed, Severity};
use crossrole_engine::inventory::{InventoryQuery, InventoryRequest};
use crossrole_store::{Journal, SqliteJournal};

const VENDOR: &str = "999988887777";

fn trust(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#)
}

/// Hand-made roles: a vendor trusted without an ExternalId and with one, anyone, anyone in the organization, a
/// deleted principal, a role that wants MFA.
fn seed(w: &World) {
    let allow = |principal: &str, condition: &str| {
        trust(&format!(r#"{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"{condition}}}"#))
    };
    let roles = [
        (account(0), "VendorNoExternalId", allow(&format!(r#"{{"AWS":"arn:aws:iam::{VENDOR}:root"}}"#), "")),
        (
            account(0),
            "VendorWithExternalId",
            allow(
                &format!(r#"{{"AWS":"arn:aws:iam::{VENDOR}:root"}}"#),
                r#","Condition":{"StringEquals":{"sts:ExternalId":"Hx81-secret-value"}}"#,
            ),
        ),
        (account(1), "Anyone", allow(r#"{"AWS":"*"}"#, "")),
        (
            account(1),
            "AnyoneInTheOrganization",
            allow(r#"{"AWS":"*"}"#, r#","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"}}"#),
        ),
        (account(2), "Broken", allow(r#"{"AWS":"AROAJQABLZS4A7QSNAKE1"}"#, "")),
        (
            account(3),
            "NeedsMfa",
            allow(
                &format!(r#"{{"AWS":"arn:aws:iam::{SECURITY}:root"}}"#),
                r#","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}"#,
            ),
        ),
    ];
    for (a, name, doc) in roles {
        w.fake.with_account(&a, |s| s.create_role_by_hand(&a, name, &doc));
    }
}

async fn all_roles(w: &World, query: &InventoryQuery) -> Vec<InventoryRole> {
    w.engine.list_inventory(query, 10_000, "").await.unwrap().roles
}

fn names(roles: &[InventoryRole]) -> BTreeSet<String> {
    roles.iter().map(|r| format!("{}/{}", r.account_id, r.name)).collect()
}

#[tokio::test(start_paused = true)]
async fn an_inventory_finds_every_role_reports_an_unreadable_account_alone_and_writes_nothing() {
    let w = world(6);
    // crossrole's own roles, in the Workloads accounts.
    let applied = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    seed(&w);
    // No bootstrap role in account 5: it cannot be read.
    w.fake.with_account(&account(5), |s| s.remove_role("OrganizationAccountAccessRole"));
    w.fake.reset_counters();

    let request = InventoryRequest { created_by: "test".into(), ..InventoryRequest::default() };
    let op = w.engine.start_inventory(request).await.unwrap();
    assert_eq!(op.kind, Some(OperationKind::Inventory));
    let done = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(w.fake.iam_writes(), 0, "an inventory writes nothing to AWS: {:?}", w.fake.served());

    // Every ACTIVE account is a target; the suspended one is not.
    let results = results(&w, &op.id).await;
    let targets: BTreeSet<&str> = results.iter().map(|r| r.account_id.as_str()).collect();
    assert!(!targets.contains("299999999999"), "{targets:?}");
    let failed: Vec<&AccountResult> = results.iter().filter(|r| r.outcome == Outcome::Failed).collect();
    let failed_ids: BTreeSet<&str> = failed.iter().map(|r| r.account_id.as_str()).collect();
    assert!(failed_ids.contains(account(5).as_str()), "{failed_ids:?}");
    let why = failed.iter().find(|r| r.account_id == account(5)).unwrap().error.clone().unwrap();
    assert_eq!(why.code, ErrorCode::BootstrapRoleUnavailable, "{why:?}");
    // An unreadable account fails alone: the inventory succeeds and says how many could not be read.
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    assert_eq!(done.counts.failed as usize, failed.len());
    assert!(done.message.contains("could not be read"), "{}", done.message);
    let read: usize = results.iter().filter(|r| r.outcome == Outcome::Unchanged).count();
    assert_eq!(read + failed.len(), results.len());

    // Every role of every account read is there, each once: the hand-made ones, crossrole's, the bootstrap roles.
    let every = all_roles(&w, &InventoryQuery::default()).await;
    let found = names(&every);
    assert_eq!(found.len(), every.len(), "each role once");
    let mut expected = BTreeSet::new();
    for r in results.iter().filter(|r| r.outcome == Outcome::Unchanged) {
        for name in w.fake.role_names(&r.account_id) {
            expected.insert(format!("{}/{name}", r.account_id));
        }
    }
    assert_eq!(found, expected);
    assert!(!found.iter().any(|n| n.starts_with(&account(5))));

    let role = |account_id: &str, name: &str| {
        every.iter().find(|r| r.account_id == account_id && r.name == name).unwrap().clone()
    };
    let kinds = |r: &InventoryRole| r.findings.iter().map(|f| f.kind).collect::<BTreeSet<_>>();
    assert!(kinds(&role(&account(0), "VendorNoExternalId")).contains(&FindingKind::OutsideWithoutExternalId));
    assert!(!kinds(&role(&account(0), "VendorWithExternalId")).contains(&FindingKind::OutsideWithoutExternalId));
    assert!(!role(&account(0), "VendorWithExternalId").trust_policy.contains("Hx81-secret-value"), "no ExternalId");
    assert_eq!(role(&account(1), "Anyone").worst(), Some(Severity::Critical));
    assert!(kinds(&role(&account(2), "Broken")).contains(&FindingKind::BrokenPrincipal));
    let mfa = role(&account(3), "NeedsMfa");
    assert!(mfa.entrants.iter().any(|e| e.conditions.mfa && e.kind == EntrantKind::OrganizationAccount));
    assert_eq!(role(&account(0), "Audit").owner.as_deref(), Some("audit"), "crossrole's own");
    assert_eq!(role(&account(0), "VendorNoExternalId").owner, None);

    // Filters.
    let q = |f: fn(&mut InventoryQuery)| {
        let mut q = InventoryQuery::default();
        f(&mut q);
        q
    };
    let vendor = names(&all_roles(&w, &q(|q| q.principal = VENDOR.into())).await);
    for n in ["VendorNoExternalId", "VendorWithExternalId"] {
        assert!(vendor.contains(&format!("{}/{n}", account(0))), "{vendor:?}");
    }
    assert!(vendor.contains(&format!("{}/Anyone", account(1))), "anyone lets the vendor in too: {vendor:?}");
    assert!(!vendor.iter().any(|n| n.ends_with("/NeedsMfa") || n.ends_with("/Audit")), "{vendor:?}");
    let by_arn = names(&all_roles(&w, &q(|q| q.principal = format!("arn:aws:iam::{VENDOR}:role/Deployer"))).await);
    assert!(by_arn.contains(&format!("{}/VendorNoExternalId", account(0))), "a role of the vendor's: {by_arn:?}");
    let critical = all_roles(&w, &q(|q| q.min_severity = Some(Severity::Critical))).await;
    assert!(!critical.is_empty() && critical.iter().all(|r| r.worst() == Some(Severity::Critical)));
    let broken = names(&all_roles(&w, &q(|q| q.finding = Some(FindingKind::BrokenPrincipal))).await);
    assert_eq!(broken, [format!("{}/Broken", account(2))].into());
    let audit = all_roles(&w, &q(|q| q.owned = Some(true))).await;
    assert!(!audit.is_empty() && audit.iter().all(|r| r.name == "Audit"), "{:?}", names(&audit));
    let unowned = all_roles(&w, &q(|q| q.owned = Some(false))).await;
    assert_eq!(audit.len() + unowned.len(), every.len());
    let named = all_roles(&w, &q(|q| q.role_name = "Anyone".into())).await;
    assert_eq!(names(&named), [format!("{}/Anyone", account(1))].into());
    let mut in_one = InventoryQuery::default();
    in_one.account_ids.insert(account(1));
    assert!(all_roles(&w, &in_one).await.iter().all(|r| r.account_id == account(1)));

    // Paged, two at a time: the same roles in the same order; a token is good for its own query only.
    let mut paged = Vec::new();
    let mut token = String::new();
    loop {
        let page = w.engine.list_inventory(&InventoryQuery::default(), 2, &token).await.unwrap();
        assert!(page.roles.len() <= 2);
        paged.extend(page.roles);
        if page.next_page_token.is_empty() {
            break;
        }
        if token.is_empty() {
            let other = w.engine.list_inventory(&in_one, 2, &page.next_page_token).await.err().unwrap();
            assert!(other.to_string().contains("page_token"), "{other}");
        }
        token = page.next_page_token;
    }
    assert_eq!(paged, every);
    // The latest finished inventory is the one read; a named operation that is not one is refused.
    assert_eq!(w.engine.inventory_operation("").await.unwrap().id, op.id);
    let not_one = InventoryQuery { operation_id: applied.id, ..Default::default() };
    let refused = w.engine.list_inventory(&not_one, 5, "").await;
    assert!(matches!(refused, Err(crossrole_engine::Error::FailedPrecondition(_))));
}

#[tokio::test(start_paused = true)]
async fn a_stopped_inventory_resumes_without_reading_a_finished_account_again() {
    let dir = tempfile::tempdir().unwrap();
    let journal: Arc<dyn Journal> = Arc::new(SqliteJournal::open(&dir.path().join("j.db")).unwrap());
    let mut config = FakeConfig::default();
    for s in Service::ALL {
        config.latency.insert(s, Latency { base: Duration::from_millis(100), jitter: Duration::ZERO });
    }
    // crossroled's STS rate: 20 sessions a second, so 150 accounts take some 7 s and a stop at 3 s finds some read.
    let sts = Rate { per_second: 20.0, burst: 1 };
    let w = world_with(150, config, Rates { sts, ..Rates::UNLIMITED }, journal);
    seed(&w);
    let op =
        w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.engine.shutdown(Duration::from_secs(30)).await;
    let mid = w.engine.operation(&op.id).await.unwrap();
    assert_eq!(mid.state, OperationState::Running, "a stopped inventory stays unfinished");
    let read_before = mid.counts.unchanged;
    assert!(read_before > 0 && read_before < 150, "{:?}", mid.counts);

    let engine = w.restarted();
    assert_eq!(engine.resume().await.unwrap(), 1);
    let done = engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Succeeded, "{}", done.message);
    let results = results(&w, &op.id).await;
    let readable = results.iter().filter(|r| r.outcome == Outcome::Unchanged).count();
    let reads = w.fake.served().get("iam:GetAccountAuthorizationDetails").copied().unwrap_or(0);
    assert_eq!(reads as usize, readable, "each account read once, across the restart");
    // Every account's roles are there once.
    let roles = engine.list_inventory(&InventoryQuery::default(), 100_000, "").await.unwrap().roles;
    assert_eq!(names(&roles).len(), roles.len());
    assert!(roles.iter().any(|r| r.name == "VendorNoExternalId"));
    let events = engine.events(&op.id, 0, 100_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "no gap, no duplicate");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_inventory_says_which_accounts_it_did_not_read() {
    let mut config = FakeConfig::default();
    config.latency.insert(Service::Sts, Latency { base: Duration::from_millis(500), jitter: Duration::ZERO });
    let w = world_with(100, config, Rates::UNLIMITED, Arc::new(SqliteJournal::in_memory().unwrap()));
    let mut accounts: BTreeSet<String> = (0..100).map(account).collect();
    accounts.insert("299999999999".into());
    let request = InventoryRequest { accounts: Some(accounts), created_by: "test".into(), ..Default::default() };
    let op = w.engine.start_inventory(request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.engine.cancel(&op.id).await.unwrap();
    let done = w.engine.wait(&op.id).await.unwrap();
    assert_eq!(done.state, OperationState::Cancelled);
    assert!(done.counts.not_started > 0, "{:?}", done.counts);
    let results = results(&w, &op.id).await;
    assert_eq!(results.len(), 101, "the accounts asked for, and only those");
    let suspended = results.iter().find(|r| r.account_id == "299999999999").unwrap();
    assert_eq!(suspended.outcome, Outcome::Skipped, "an account asked for that is not ACTIVE is skipped with why");
    // An account list that is not one is refused before anything is written.
    let bad = InventoryRequest { accounts: Some(["12345".to_string()].into()), ..Default::default() };
    let e = w.engine.start_inventory(bad).await.unwrap_err().to_string();
    assert!(e.contains("account_ids"), "{e}");
}

/// The days after which a role is reported unused: from 1 to 3650, refused otherwise naming the field before
/// anything is written; kept with the inventory (the default, asked for or not, is one request).
#[tokio::test(start_paused = true)]
async fn unused_after_days_is_checked_and_kept_with_the_inventory() {
    let w = world(1);
    let request = |days: Option<u32>| InventoryRequest {
        unused_after_days: days,
        accounts: Some([account(0)].into()),
        idempotency_key: Some(format!("key-{days:?}")),
        created_by: "test".into(),
    };
    for bad in [0, 3651] {
        let e = w.engine.start_inventory(request(Some(bad))).await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "invalid input: unused_after_days: must be from 1 to 3650 days (0 or unset: the default, 90), got {bad}"
            )
        );
    }
    let (ops, _) = w.engine.list_operations(&Default::default(), 10, "").await.unwrap();
    assert!(ops.is_empty(), "nothing is written for a refused request");
    for (days, kept) in [(Some(30), Some(30)), (Some(3650), Some(3650)), (Some(90), None), (None, None)] {
        let op = w.engine.start_inventory(request(days)).await.unwrap();
        let row = w.journal.get_operation(&op.id).await.unwrap().unwrap();
        assert_eq!(records::operation_unused_after_days(&row.spec), kept, "{days:?}");
        w.engine.wait(&op.id).await.unwrap();
    }
}

/// The inventory's classification gets what its run knows: a trust naming an account that left the organization
/// (seen as a member by an earlier read, gone from this one) or one the organization lists SUSPENDED is a former
/// member's, not an outsider's; the days after which a role is unused are the request's.
#[tokio::test(start_paused = true)]
async fn an_inventory_names_accounts_that_left_and_reports_unused_roles_after_the_days_asked() {
    let w = world(4);
    let first = w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await;
    assert_eq!(w.engine.wait(&first.unwrap().id).await.unwrap().state, OperationState::Succeeded);
    // Account 3 leaves; hand-made roles trust it, the suspended account, and an outsider.
    let gone = account(3);
    w.fake.with_tree(|t| t.remove_account(&gone));
    let a = account(0);
    let allow = |who: &str| {
        trust(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{who}:root"}},"Action":"sts:AssumeRole"}}"#
        ))
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let forty_days_ago = LastUsed { at: now - 40 * 86_400, region: Some("us-east-1".into()) };
    w.fake.with_account(&a, |s| {
        s.create_role_by_hand(&a, "TrustsTheOneThatLeft", &allow(&gone));
        s.create_role_by_hand(&a, "TrustsTheSuspended", &allow("299999999999"));
        s.create_role_by_hand(&a, "TrustsAnOutsider", &allow(VENDOR));
        s.set_used_by_hand("TrustsAnOutsider", Some(now - 400 * 86_400), Some(forty_days_ago.clone()));
    });
    // The tree crossroled read is older than its cache allows: this inventory reads the organization again.
    tokio::time::advance(Duration::from_secs(3600)).await;
    let (w, a) = (&w, &a);
    let inventory = |days: Option<u32>| async move {
        let request = InventoryRequest {
            accounts: Some([a.clone()].into()),
            unused_after_days: days,
            created_by: "test".into(),
            ..Default::default()
        };
        let op = w.engine.start_inventory(request).await.unwrap();
        assert_eq!(w.engine.wait(&op.id).await.unwrap().state, OperationState::Succeeded);
        let query = InventoryQuery { operation_id: op.id.clone(), ..Default::default() };
        all_roles(w, &query).await
    };
    let roles = inventory(Some(30)).await;
    let role = |name: &str| roles.iter().find(|r| r.name == name).unwrap().clone();
    let kinds = |r: &InventoryRole| r.findings.iter().map(|f| f.kind).collect::<BTreeSet<_>>();
    for name in ["TrustsTheOneThatLeft", "TrustsTheSuspended"] {
        let r = role(name);
        assert!(kinds(&r).contains(&FindingKind::FormerMember), "{name}: {:?}", r.findings);
        assert!(r.entrants.iter().any(|e| e.kind == EntrantKind::FormerMember), "{name}: {:?}", r.entrants);
        let said = r.findings.iter().find(|f| f.kind == FindingKind::FormerMember).unwrap();
        assert!(said.reason.contains("left the organization"), "{}", said.reason);
    }
    let outsider = role("TrustsAnOutsider");
    assert!(!kinds(&outsider).contains(&FindingKind::FormerMember), "{:?}", outsider.findings);
    assert!(kinds(&outsider).contains(&FindingKind::Unused), "unused for 40 days, asked 30: {:?}", outsider.findings);
    // The default, 90 days: not unused yet.
    let roles = inventory(None).await;
    let outsider = roles.iter().find(|r| r.name == "TrustsAnOutsider").unwrap();
    assert!(!outsider.findings.iter().any(|f| f.kind == FindingKind::Unused), "{:?}", outsider.findings);
}

/// Ownership tags are tags: a role made by hand and tagged as a spec's, in an account where the journal has not
/// placed that spec, is reported (an outside tester's finding); crossrole's own roles, placed, are not.
#[tokio::test(start_paused = true)]
async fn a_role_tagged_by_hand_as_crossroles_is_reported_where_crossrole_placed_no_such_role() {
    let w = world(2);
    let applied = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    let doc = trust(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{VENDOR}:root"}},"Action":"sts:AssumeRole"}}"#
    ));
    w.fake.with_account(SECURITY, |s| {
        s.create_role_by_hand(SECURITY, "Backdoor", &doc);
        s.tag_by_hand("Backdoor", crossrole_core::spec::OWNER_TAG_KEY, crossrole_core::spec::OWNER_TAG_VALUE);
        s.tag_by_hand("Backdoor", crossrole_core::spec::SPEC_TAG_KEY, "audit");
    });
    let op = w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await;
    assert_eq!(w.engine.wait(&op.unwrap().id).await.unwrap().state, OperationState::Succeeded);
    let roles = all_roles(&w, &InventoryQuery::default()).await;
    let claims = |r: &InventoryRole| r.findings.iter().any(|f| f.reason.contains("has not placed spec audit"));
    let backdoor = roles.iter().find(|r| r.account_id == SECURITY && r.name == "Backdoor").unwrap();
    assert!(claims(backdoor), "{:?}", backdoor.findings);
    assert!(backdoor.findings.iter().any(|f| f.kind == FindingKind::Drifted && f.severity == Severity::Medium));
    let ours: Vec<&InventoryRole> = roles.iter().filter(|r| r.name == "Audit").collect();
    assert_eq!(ours.len(), 2, "{:?}", names(&roles));
    assert!(ours.iter().all(|r| !claims(r) && r.findings.iter().all(|f| f.kind != FindingKind::Drifted)), "{ours:?}");
}

/// A fresh inventory's drift findings (severity, reason) on the Audit role of each of `accounts`.
async fn audit_drift(w: &World, accounts: &[String]) -> Vec<Vec<(Severity, String)>> {
    let op = w.engine.start_inventory(InventoryRequest { created_by: "test".into(), ..Default::default() }).await;
    let op = op.unwrap();
    assert_eq!(w.engine.wait(&op.id).await.unwrap().state, OperationState::Succeeded);
    let roles = all_roles(w, &InventoryQuery { operation_id: op.id, ..Default::default() }).await;
    let drift = |account_id: &String| {
        let role = roles.iter().find(|r| &r.account_id == account_id && r.name == "Audit").unwrap();
        let drifted = role.findings.iter().filter(|f| f.kind == FindingKind::Drifted);
        drifted.map(|f| (f.severity, f.reason.clone())).collect()
    };
    accounts.iter().map(drift).collect()
}

/// The test spec with one managed policy, `arn`.
fn managing(arn: &str) -> crossrole_core::AccessSpec {
    let mut spec = spec();
    spec.role.managed_policy_arns = [arn.to_string()].into();
    spec
}

/// A role placed by a one-off apply (no binding keeps its spec) is crossrole's too: the inventory judges it against
/// the spec of the newest apply of it that succeeded — a dry run is none — and reports one changed by hand as a
/// binding's, drifted; one as applied is not.
#[tokio::test(start_paused = true)]
async fn a_role_placed_by_an_apply_and_changed_by_hand_is_reported_drifted() {
    let w = world(2);
    let applied = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    let accounts = [account(0), account(1)];
    w.fake.with_account(&accounts[0], |s| s.attach_by_hand("Audit", "arn:aws:iam::aws:policy/AdministratorAccess"));
    let reason = "owned by crossrole (spec audit) but changed outside it: managed policies attached outside the \
                  spec: arn:aws:iam::aws:policy/AdministratorAccess";
    assert_eq!(audit_drift(&w, &accounts).await, [vec![(Severity::Medium, reason.to_string())], vec![]]);

    // The spec applied again, with ReadOnlyAccess for SecurityAudit: the roles are judged by the newest apply (by
    // the first they would all have drifted); a dry run of a third spec since is no apply.
    let newer = run(&w, OperationKind::Apply, &managing("arn:aws:iam::aws:policy/ReadOnlyAccess")).await;
    assert_eq!(newer.state, OperationState::Succeeded, "{}", newer.message);
    let mut dry = start(OperationKind::Apply, &managing("arn:aws:iam::aws:policy/ViewOnlyAccess"));
    dry.dry_run = true;
    let dry = w.engine.start(dry).await.unwrap();
    assert_eq!(w.engine.wait(&dry.id).await.unwrap().state, OperationState::Succeeded);
    assert_eq!(audit_drift(&w, &accounts).await, [vec![], vec![]]);
    // crossrole revoke's deny on the roles is crossrole's own, and no drift.
    let spec = managing("arn:aws:iam::aws:policy/ReadOnlyAccess");
    let request =
        crossrole_engine::RevokeRequest { spec, accounts: None, idempotency_key: None, created_by: "t".into() };
    let revoked = w.engine.start_revoke(request).await.unwrap();
    assert_eq!(w.engine.wait(&revoked.id).await.unwrap().counts.changed, 2);
    for a in &accounts {
        let role = w.fake.role(a, "Audit").unwrap();
        assert!(role.inline_policies.contains_key(crossrole_core::revocation::POLICY_NAME), "{a}: {role:?}");
    }
    assert_eq!(audit_drift(&w, &accounts).await, [vec![], vec![]]);
}

/// An apply that failed in some accounts placed its spec in the others: a role there is judged by that apply's
/// spec, a role where it failed by the spec of the newest apply that succeeded.
#[tokio::test(start_paused = true)]
async fn a_role_is_judged_by_the_newest_apply_that_placed_it_even_one_that_failed_elsewhere() {
    let w = world(2);
    let accounts = [account(0), account(1)];
    let applied = run(&w, OperationKind::Apply, &spec()).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    // The spec with ReadOnlyAccess for SecurityAudit, applied where account 1's IAM refuses everything.
    w.fake.inject(crossrole_aws::fake::Failure {
        service: Service::Iam,
        operation: None,
        account: Some(accounts[1].clone()),
        code: "AccessDenied".into(),
        times: None,
    });
    let newer = run(&w, OperationKind::Apply, &managing("arn:aws:iam::aws:policy/ReadOnlyAccess")).await;
    assert_eq!(newer.state, OperationState::Failed, "{}", newer.message);
    w.fake.clear_failures();
    let managed = |a: &String| w.fake.role(a, "Audit").unwrap().managed_policy_arns;
    assert_eq!(managed(&accounts[0]), ["arn:aws:iam::aws:policy/ReadOnlyAccess".to_string()].into());
    assert_eq!(managed(&accounts[1]), ["arn:aws:iam::aws:policy/SecurityAudit".to_string()].into());
    // Each as the apply that placed it says: no drift in either (judged by the first apply, account 0's would
    // drift; by the newest, account 1's).
    assert_eq!(audit_drift(&w, &accounts).await, [vec![], vec![]]);
}

/// A spec a binding keeps is judged by the binding's spec, even where a one-off apply of the same name placed
/// another since: the binding's reconcile puts its own back, so what the apply made is the drift.
#[tokio::test(start_paused = true)]
async fn a_bindings_spec_wins_over_a_one_off_apply_of_the_same_name() {
    let w = world(1);
    let bindings = crossrole_engine::bindings::Bindings::new(w.engine.clone());
    let raw = crossrole_core::binding::RawBinding { spec: Some(RawSpec::from(&spec())), ..Default::default() };
    bindings.create(&raw).await.unwrap();
    let reconciled = bindings.reconcile("audit", "test").await.unwrap();
    assert_eq!(w.engine.wait(&reconciled.id).await.unwrap().state, OperationState::Succeeded);
    let accounts = [account(0)];
    assert_eq!(audit_drift(&w, &accounts).await, [vec![]]);
    let applied = run(&w, OperationKind::Apply, &managing("arn:aws:iam::aws:policy/ReadOnlyAccess")).await;
    assert_eq!(applied.state, OperationState::Succeeded, "{}", applied.message);
    let reason = "owned by crossrole (spec audit) but changed outside it: managed policies attached outside the \
                  spec: arn:aws:iam::aws:policy/ReadOnlyAccess; managed policies missing: \
                  arn:aws:iam::aws:policy/SecurityAudit";
    assert_eq!(audit_drift(&w, &accounts).await, [vec![(Severity::Medium, reason.to_string())]]);
}
