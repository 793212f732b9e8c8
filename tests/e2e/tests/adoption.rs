//! Who can enter every account, and roles made by hand taken over, on the emulators: the seed made roles by hand
//! in a few accounts (a vendor outside the organization with and without an ExternalId, `*` with and without an
//! organization condition, a principal since deleted, an account closed since — Organizations lists it SUSPENDED,
//! and a trust naming it is a former member's —, MFA, a service, and roles of one name to adopt); crossroled
//! inventories the organization and each of them is reported as seeded (who can enter, under which conditions, the
//! findings, no owner); `crossrole adopt` shows the hand-made roles of the spec's name, takes over only the
//! accounts approved (read back from the emulator: crossrole's ownership tags and the spec's trust there, the
//! others as they were), and the spec planned again changes nothing; a second inventory names the new owner.
//!
//! What the inventory says a trust policy lets in is judged against an evaluator crossrole did not write in
//! `inventory_judge`; here the question is whether the roles of a real (emulated) organization reach it whole.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Instant,
};

use crossrole_client::{Client, proto};
use crossrole_core::{
    AccessSpec,
    plan::{AccountPlan, DesiredRole},
    policy::PolicyDocument,
};
use crossrole_e2e::{Aws, Crossroled, HandMade, Manifest};

/// The adopted spec's ExternalId (never to appear in what crossrole reports).
const EXTERNAL_ID: &str = "adopt-e2e-Q7mZ2xV1pL9wR4tY6uB0nC5h";
/// The vendor's ExternalId the seed wrote into a hand-made trust.
const VENDOR_EXTERNAL_ID: &str = "vendor-backup-7f3a";

/// Every role of one finished inventory of the whole organization (through the SDK), by (account, name); and the
/// operation.
async fn inventory(client: &Client) -> (proto::Operation, BTreeMap<(String, String), proto::InventoryRole>) {
    let done = client.start_inventory(vec![], None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "the inventory: {}", done.message);
    let (listed, all) = client
        .list_inventory_all(proto::ListInventoryRequest {
            operation_id: done.id.clone(),
            page_size: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.id, done.id);
    let mut roles = BTreeMap::new();
    for r in all {
        let key = (r.account_id.clone(), r.name.clone());
        assert!(roles.insert(key.clone(), r).is_none(), "{key:?} listed twice");
    }
    (done, roles)
}

/// The roles `filter` lists from inventory `id`, as (account, name).
async fn filtered(client: &Client, id: &str, filter: proto::ListInventoryRequest) -> BTreeSet<(String, String)> {
    let request = proto::ListInventoryRequest { operation_id: id.to_string(), ..filter };
    let (_, roles) = client.list_inventory_all(request).await.unwrap();
    roles.into_iter().map(|r| (r.account_id, r.name)).collect()
}

/// The role as the seed made it is the role the inventory reports: entrants (kind, account, guards), findings,
/// the most severe first, and no owner.
fn check_seeded(m: &Manifest, seeded: &HandMade, got: &proto::InventoryRole) {
    let at = format!("{} in {}", seeded.name, seeded.account_name);
    assert_eq!(got.owner, "", "{at}: made by hand, owned by nobody");
    assert_eq!(got.path, seeded.path, "{at}");
    assert!(!got.trust_policy.is_empty(), "{at}: its trust policy parses");
    let kind = |k: &str| proto::EntrantKind::from_str_name(&format!("ENTRANT_KIND_{}", k.to_uppercase())).unwrap();
    let mut entrants: Vec<(i32, String, BTreeSet<&str>)> = got
        .entrants
        .iter()
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            let mut guards = BTreeSet::new();
            for (on, name) in
                [(c.external_id, "external_id"), (c.mfa, "mfa"), (!c.organization.is_empty(), "organization")]
            {
                if on {
                    guards.insert(name);
                }
            }
            (e.kind, e.account_id.clone(), guards)
        })
        .collect();
    entrants.sort();
    let mut want: Vec<(i32, String, BTreeSet<&str>)> = seeded
        .entrants
        .iter()
        .map(|(k, account, guards)| {
            (kind(k) as i32, account.clone().unwrap_or_default(), guards.iter().map(String::as_str).collect())
        })
        .collect();
    want.sort();
    assert_eq!(entrants, want, "{at}: who can enter, and under which conditions ({:?})", got.entrants);
    if let Some(id) = &seeded.deleted_principal {
        assert_eq!(got.entrants[0].principal, *id, "{at}: the deleted principal's unique id");
    }
    for e in got.entrants.iter().filter(|e| e.kind == proto::EntrantKind::OrganizationAccount as i32) {
        assert_eq!(e.account_id, m.security_account, "{at}");
    }
    let finding = |k: &str| {
        proto::InventoryFindingKind::from_str_name(&format!("INVENTORY_FINDING_KIND_{}", k.to_uppercase())).unwrap()
    };
    let kinds: BTreeSet<i32> = got.findings.iter().map(|f| f.kind).collect();
    let want: BTreeSet<i32> = seeded.findings.iter().map(|k| finding(k) as i32).collect();
    assert_eq!(kinds, want, "{at}: findings {:?}", got.findings);
    let severity = |s: &str| {
        proto::InventorySeverity::from_str_name(&format!("INVENTORY_SEVERITY_{}", s.to_uppercase())).unwrap() as i32
    };
    assert_eq!(
        got.findings.first().map(|f| f.severity),
        seeded.most_severe.as_deref().map(severity),
        "{at}: the most severe finding first {:?}",
        got.findings
    );
    assert!(
        got.findings.windows(2).all(|w| w[0].severity >= w[1].severity),
        "{at}: most severe first {:?}",
        got.findings
    );
    assert!(got.findings.iter().all(|f| !f.reason.is_empty()), "{at}: every finding says why");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_reports_the_hand_made_roles_and_adopt_takes_over_only_those_approved() {
    let m = Manifest::load();
    assert!(m.hand_made.len() >= 10, "the seed made the hand-made roles ({})", m.hand_made.len());
    let aws = Aws::new().await;
    let dir = crossrole_e2e::test_dir("adoption");
    let server = Crossroled::start(&dir).await.unwrap();
    let client = server.client().await;
    eprintln!(
        "the emulator ({}) {} a deleted principal to its unique id{}",
        m.mode,
        if m.emulator_rewrites_deleted_principals { "rewrote" } else { "did not rewrite" },
        if m.emulator_rewrites_deleted_principals { "" } else { "; the seed wrote the unique id IAM leaves" }
    );

    // 1. The inventory of the whole organization: every hand-made role as seeded.
    let started = Instant::now();
    let (op, roles) = inventory(&client).await;
    let accounts: BTreeSet<&str> = roles.keys().map(|(a, _)| a.as_str()).collect();
    eprintln!(
        "inventory: {} roles in {} accounts in {:.1}s (operation {})",
        roles.len(),
        accounts.len(),
        started.elapsed().as_secs_f64(),
        op.id
    );
    for seeded in &m.hand_made {
        let got = roles
            .get(&(seeded.account_id.clone(), seeded.name.clone()))
            .unwrap_or_else(|| panic!("{} in {}: not in the inventory", seeded.name, seeded.account_name));
        check_seeded(&m, seeded, got);
    }
    // Every ACTIVE account with its bootstrap role was read (the role is there, trusted by the management
    // account); the SUSPENDED one was not.
    for a in m.accounts.iter().filter(|a| a.state == "ACTIVE" && a.bootstrap) {
        let bootstrap = roles
            .get(&(a.id.clone(), "OrganizationAccountAccessRole".to_string()))
            .unwrap_or_else(|| panic!("{}: its bootstrap role is not in the inventory", a.name));
        assert_eq!(bootstrap.owner, "");
        assert!(
            bootstrap
                .entrants
                .iter()
                .any(|e| e.kind == proto::EntrantKind::OrganizationAccount as i32
                    && e.account_id == m.management_account),
            "{}: the management account enters its bootstrap role ({:?})",
            a.name,
            bootstrap.entrants
        );
    }
    assert!(!accounts.contains(m.closed_account.as_str()), "the SUSPENDED account is not read");
    // The findings at high or above are exactly the vendor trusted without an ExternalId and `*`.
    let high: BTreeSet<(&str, &str)> = roles
        .values()
        .filter(|r| r.findings.first().is_some_and(|f| f.severity >= proto::InventorySeverity::High as i32))
        .map(|r| (r.account_id.as_str(), r.name.as_str()))
        .collect();
    let seeded_high: BTreeSet<(&str, &str)> = m
        .hand_made
        .iter()
        .filter(|h| matches!(h.most_severe.as_deref(), Some("high" | "critical")))
        .map(|h| (h.account_id.as_str(), h.name.as_str()))
        .collect();
    assert_eq!(high, seeded_high, "the roles with a high or critical finding");
    // The API's filters: by finding, by the principal that can enter ("where can this principal go": the roles
    // naming the vendor's account, and those that let anyone in), and by ownership.
    let seeded_with = |f: &dyn Fn(&HandMade) -> bool| -> BTreeSet<(String, String)> {
        m.hand_made.iter().filter(|h| f(h)).map(|h| (h.account_id.clone(), h.name.clone())).collect()
    };
    let deputies = filtered(
        &client,
        &op.id,
        proto::ListInventoryRequest {
            finding: proto::InventoryFindingKind::OutsideWithoutExternalId as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(deputies, seeded_with(&|h| h.findings.iter().any(|f| f == "outside_without_external_id")));
    let vendor = m.hand_made.iter().find_map(|h| h.entrants.iter().find(|e| e.0 == "outside_account")).unwrap();
    let vendor = vendor.1.clone().unwrap();
    let reach =
        filtered(&client, &op.id, proto::ListInventoryRequest { principal: vendor.clone(), ..Default::default() })
            .await;
    let named = seeded_with(&|h| h.entrants.iter().any(|e| e.0 == "anyone" || e.1.as_deref() == Some(&vendor)));
    assert_eq!(reach, named, "where the vendor's account {vendor} can go");
    let unowned = filtered(
        &client,
        &op.id,
        proto::ListInventoryRequest { ownership: proto::InventoryOwnership::Unowned as i32, ..Default::default() },
    )
    .await;
    assert!(seeded_with(&|_| true).is_subset(&unowned), "every hand-made role is unowned");
    // The CLI over the same inventory: JSON and CSV.
    let json = server.cli(&["inventory", "--latest", "--finding", "outside-without-external-id", "-o", "json"]);
    let text = String::from_utf8_lossy(&json.stdout);
    assert!(json.status.success(), "crossrole inventory -o json: {}", String::from_utf8_lossy(&json.stderr));
    let value: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(value["operation_id"], op.id.as_str(), "--latest reads the inventory just made");
    let by_cli: BTreeSet<(String, String)> = value["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["account_id"].as_str().unwrap().to_string(), r["name"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(by_cli, deputies, "crossrole inventory --finding outside-without-external-id");
    let csv = server.cli(&["inventory", "--latest", "--min-severity", "high", "-o", "csv"]);
    assert!(csv.status.success(), "crossrole inventory -o csv: {}", String::from_utf8_lossy(&csv.stderr));
    let csv = String::from_utf8_lossy(&csv.stdout);
    let records: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(records[0].starts_with("account_id,role,"), "a header first: {csv}");
    assert_eq!(records.len(), 1 + seeded_high.len(), "a record per role at high or above: {csv}");
    for (account, name) in &seeded_high {
        assert!(records.iter().any(|r| r.starts_with(&format!("{account},{name},"))), "{name} in {account}: {csv}");
    }
    let listed = format!("{roles:?}{text}{csv}");
    assert!(!listed.contains(VENDOR_EXTERNAL_ID), "the inventory carries no ExternalId's value");

    // 2. adopt --dry-run shows each hand-made role of the spec's name, and takes nothing over.
    let to_adopt: Vec<&HandMade> = m.hand_made.iter().filter(|h| h.adopt).collect();
    assert!(to_adopt.len() >= 3, "three hand-made roles of one name to adopt");
    let name = to_adopt[0].name.clone();
    let yaml = format!(
        "name: legacy-audit\nrole:\n  name: {name}\n  path: /crossrole/\n  description: Audit access, managed by \
         crossrole\n  trust:\n    account_ids: [\"{}\"]\n    external_id: {EXTERNAL_ID}\n  managed_policy_arns: \
         [arn:aws:iam::aws:policy/SecurityAudit]\n  tags:\n    team: security\ntargets:\n  account_ids: [{}]\n\
         rollout:\n  verify: {{enabled: false}}\n",
        m.security_account,
        to_adopt.iter().map(|h| format!("\"{}\"", h.account_id)).collect::<Vec<_>>().join(", ")
    );
    let spec_file = dir.join("legacy-audit.yaml");
    std::fs::write(&spec_file, &yaml).unwrap();
    let spec_arg = spec_file.to_str().unwrap();
    let spec = AccessSpec::from_yaml(&yaml).unwrap();
    let mut before = BTreeMap::new();
    for h in &to_adopt {
        before.insert(h.account_id.clone(), aws.role(&h.account_id, &name).await.unwrap());
    }
    let started = Instant::now();
    let shown = server.cli(&["adopt", "-f", spec_arg, "--dry-run", "-o", "json"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "adopt --dry-run: {}", String::from_utf8_lossy(&shown.stderr));
    let shown: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let candidates: BTreeSet<&str> =
        shown["candidates"].as_array().unwrap().iter().map(|c| c["account_id"].as_str().unwrap()).collect();
    assert_eq!(candidates, to_adopt.iter().map(|h| h.account_id.as_str()).collect(), "adopt --dry-run: {text}");
    for c in shown["candidates"].as_array().unwrap() {
        let kinds: Vec<&str> = c["changes"].as_array().unwrap().iter().map(|x| x["kind"].as_str().unwrap()).collect();
        assert!(!kinds.is_empty(), "a takeover changes something: {c}");
    }
    assert!(!text.contains(EXTERNAL_ID), "adopt shows no ExternalId's value");
    for h in &to_adopt {
        assert_eq!(aws.role(&h.account_id, &name).await.unwrap(), before[&h.account_id], "a dry run changes nothing");
    }

    // 3. Two of the three taken over, by account; the third left as it was.
    let (adopted, left) = to_adopt.split_at(2);
    let mut args = vec!["adopt", "-f", spec_arg, "--yes"];
    for h in adopted {
        args.extend(["--account", h.account_id.as_str()]);
    }
    let took = server.cli(&args);
    assert!(
        took.status.success(),
        "crossrole adopt: {}\n{}",
        String::from_utf8_lossy(&took.stdout),
        String::from_utf8_lossy(&took.stderr)
    );
    eprintln!("adopt (dry run, then two accounts taken over) in {:.1}s", started.elapsed().as_secs_f64());
    let desired = DesiredRole::from_spec(&spec, crossrole_core::Partition::Aws);
    for h in adopted {
        let role = aws.role(&h.account_id, &name).await.unwrap();
        assert_eq!(role.attributes.tags, desired.tags, "{}: crossrole's ownership tags", h.account_name);
        assert_eq!(
            crossrole_core::spec::owner_of(&role.attributes.tags),
            Some("legacy-audit"),
            "{}: owned by the spec",
            h.account_name
        );
        assert_eq!(
            PolicyDocument::parse_observed(&role.attributes.trust_policy).unwrap(),
            desired.trust_policy,
            "{}: the spec's trust",
            h.account_name
        );
        assert_eq!(role.managed_policy_arns, spec.role.managed_policy_arns, "{}", h.account_name);
        // The trust now asks for an ExternalId it did not: the sessions issued before are revoked (IAM's
        // AWSRevokeOlderSessions deny, crossrole's to remove later); the hand-made inline policy is gone.
        let inline: Vec<&str> = role.inline_policies.keys().map(String::as_str).collect();
        assert_eq!(inline, [crossrole_core::revocation::POLICY_NAME], "{}: inline policies", h.account_name);
        assert_eq!(role.arn, before[&h.account_id].arn, "{}: taken over in place, not made anew", h.account_name);
        assert_eq!(crossrole_core::plan::plan(&desired, Some(&role)), AccountPlan::InSync, "{}", h.account_name);
    }
    for h in left {
        assert_eq!(
            aws.role(&h.account_id, &name).await.unwrap(),
            before[&h.account_id],
            "{}: not approved, untouched",
            h.account_name
        );
    }
    let audit = server.cli(&["audit", "--since", "1h", "-o", "json"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        adopted.iter().all(|h| audit.contains(&h.account_id)),
        "the audit trail names the accounts approved: {audit:.600}"
    );

    // 4. The spec planned again: nothing to change; the account not approved is still a conflict.
    let plan = client.plan(crossrole_wire::ToWire::to_wire(&spec)).await.unwrap();
    assert_eq!(plan.total_changes, 0, "applied again, the spec changes nothing: {plan:?}");
    let status: BTreeMap<&str, i32> = plan.accounts.iter().map(|a| (a.account_id.as_str(), a.status)).collect();
    for h in adopted {
        assert_eq!(status[h.account_id.as_str()], proto::AccountPlanStatus::InSync as i32, "{}", h.account_name);
    }
    for h in left {
        assert_eq!(status[h.account_id.as_str()], proto::AccountPlanStatus::Conflict as i32, "{}", h.account_name);
    }

    // 5. The inventory again: the roles taken over say their owner, with no finding; the rest as before.
    let (_, after) = inventory(&client).await;
    for h in adopted {
        let r = &after[&(h.account_id.clone(), name.clone())];
        assert_eq!(r.owner, "legacy-audit", "{}", h.account_name);
        assert!(
            r.findings.is_empty(),
            "{}: in sync with its spec, nothing to report: {:?}",
            h.account_name,
            r.findings
        );
        assert!(
            r.entrants.iter().all(|e| e.conditions.as_ref().is_some_and(|c| c.external_id)),
            "{}: entered only with the spec's ExternalId",
            h.account_name
        );
    }
    for h in m.hand_made.iter().filter(|h| !adopted.iter().any(|a| a.account_id == h.account_id)) {
        check_seeded(&m, h, &after[&(h.account_id.clone(), h.name.clone())]);
    }
    assert!(!format!("{after:?}").contains(EXTERNAL_ID), "the inventory carries no ExternalId's value");

    // 6. An approval is of one role, by the unique id IAM gave it (read back through the SDK, not crossrole): the
    // plan gives the role's id, an approval naming another id (a role deleted and made again since) takes nothing
    // over and says to run adopt again, and the approval of this very role would.
    let h = &left[0];
    let role_id = aws.role(&h.account_id, &name).await.unwrap().role_id;
    assert!(crossrole_core::names::check_role_id(&role_id).is_ok(), "{}: IAM's RoleId {role_id:?}", h.account_name);
    let approving = |id: &str| {
        let mut s = spec.clone();
        s.role.adopt_accounts = [h.account_id.clone()].into();
        s.role.adopt_role_ids = [(h.account_id.clone(), id.to_string())].into();
        crossrole_wire::ToWire::to_wire(&s)
    };
    let plan = client.plan(approving("AROAANOTHERROLE000001")).await.unwrap();
    let here = plan.accounts.iter().find(|a| a.account_id == h.account_id).unwrap();
    assert_eq!(here.status, proto::AccountPlanStatus::Conflict as i32, "{here:?}");
    assert_eq!(here.role_id, role_id, "the plan gives the role's id as IAM does");
    assert!(
        here.findings.iter().any(|f| f.message.contains(&role_id) && f.message.contains("run `crossrole adopt")),
        "{here:?}"
    );
    let plan = client.plan(approving(&role_id)).await.unwrap();
    let here = plan.accounts.iter().find(|a| a.account_id == h.account_id).unwrap();
    assert_eq!(
        here.status,
        proto::AccountPlanStatus::Changes as i32,
        "the role approved would be taken over: {here:?}"
    );
    assert_eq!(aws.role(&h.account_id, &name).await.unwrap(), before[&h.account_id], "planned only: untouched");
}
