//! A binding on the emulators: accounts that join get the role within one interval, accounts that leave lose it,
//! drift is repaired (enforce) or reported (detect).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_wire::ToWire;

const INTERVAL: u64 = 10;
const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

async fn until<F, Fut>(what: &str, limit: Duration, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if f().await {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{what}: not within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_keeps_access_true_on_the_emulators() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let server = Crossroled::start(&crossrole_e2e::test_dir("bindings")).await.unwrap();
    let c = server.client().await;
    let yaml = m
        .example_spec()
        .replace("name: security-audit", "name: sandbox-audit")
        .replace("name: SecurityAudit", "name: SandboxAudit")
        .replace("[/Root/Workloads]", "[/Root/Sandbox]");
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let sandbox: Vec<String> = m.active_under("/Root/Sandbox").iter().map(|a| a.id.clone()).collect();
    let interval = Some(prost_types::Duration { seconds: INTERVAL as i64, nanos: 0 });
    c.create_binding(proto::Binding { spec: Some(spec.clone()), reconcile_interval: interval, ..Default::default() })
        .await
        .unwrap();
    until("the first reconcile", Duration::from_secs(60), || async {
        c.binding("sandbox-audit").await.unwrap().status.is_some_and(|s| s.in_sync as usize == sandbox.len())
    })
    .await;
    for a in &sandbox {
        assert!(aws.role(a, "SandboxAudit").await.is_some());
    }

    // An account created in the selected OU gets the role within one interval (plus the reconcile itself).
    let orgs = aws.organizations();
    let created =
        orgs.create_account().account_name("sandbox-new").email("sandbox-new@example.com").send().await.unwrap();
    let new = created.create_account_status().and_then(|s| s.account_id()).unwrap().to_string();
    let root = m.ous["/Root"].clone();
    orgs.move_account()
        .account_id(&new)
        .source_parent_id(&root)
        .destination_parent_id(&m.ous["/Root/Sandbox"])
        .send()
        .await
        .unwrap();
    aws.vend(&m, &new).await;
    let took = until("enrolment of the new account", Duration::from_secs(2 * INTERVAL + 30), || async {
        aws.role(&new, "SandboxAudit").await.is_some()
    })
    .await;
    eprintln!("the new account got its role {took:?} after it joined (interval {INTERVAL}s)");

    // An account moved out of the OU loses it.
    let leaving = m.account("sandbox-00").id.clone();
    orgs.move_account()
        .account_id(&leaving)
        .source_parent_id(&m.ous["/Root/Sandbox"])
        .destination_parent_id(&m.ous["/Root/Quarantine"])
        .send()
        .await
        .unwrap();
    until("clean-up of the account that left", Duration::from_secs(2 * INTERVAL + 30), || async {
        aws.role(&leaving, "SandboxAudit").await.is_none()
    })
    .await;

    // ENFORCE: a policy attached by hand is detached.
    let drifting = m.account("sandbox-01").id.clone();
    aws.iam(&drifting).await.attach_role_policy().role_name("SandboxAudit").policy_arn(ADMIN).send().await.unwrap();
    until("repair", Duration::from_secs(2 * INTERVAL + 30), || async {
        !aws.role(&drifting, "SandboxAudit").await.unwrap().managed_policy_arns.contains(ADMIN)
    })
    .await;

    // DETECT: reported, not repaired.
    let mut b = c.binding("sandbox-audit").await.unwrap();
    b.mode = proto::BindingMode::Detect as i32;
    c.update_binding(b, 0).await.unwrap();
    let reported = m.account("sandbox-02").id.clone();
    aws.iam(&reported).await.attach_role_policy().role_name("SandboxAudit").policy_arn(ADMIN).send().await.unwrap();
    until("drift reported", Duration::from_secs(2 * INTERVAL + 30), || async {
        let s = c.binding("sandbox-audit").await.unwrap().status.unwrap();
        s.accounts.first().is_some_and(|a| a.account_id == reported && a.state == proto::SyncState::Drifted as i32)
    })
    .await;
    assert!(aws.role(&reported, "SandboxAudit").await.unwrap().managed_policy_arns.contains(ADMIN), "detect leaves it");

    // Deleting the binding removes its roles.
    let destroy = c.delete_binding("sandbox-audit", false).await.unwrap().unwrap();
    destroy.wait().await.unwrap();
    for a in sandbox.iter().filter(|a| **a != leaving).chain([&new]) {
        assert!(aws.role(a, "SandboxAudit").await.is_none(), "{a} still has the role");
    }
    // Leave the organization as found (the other tests count the Sandbox's accounts).
    orgs.move_account()
        .account_id(&new)
        .source_parent_id(&m.ous["/Root/Sandbox"])
        .destination_parent_id(&m.ous["/Root/Quarantine"])
        .send()
        .await
        .unwrap();
    orgs.move_account()
        .account_id(&leaving)
        .source_parent_id(&m.ous["/Root/Quarantine"])
        .destination_parent_id(&m.ous["/Root/Sandbox"])
        .send()
        .await
        .unwrap();
}

/// The outside tester's scenario for access that expires: a binding ending 20 s after it is made. Before the end,
/// the role is in each account and the grant names it; after, crossroled (its schedule ticking every second) has
/// removed the role, its trust with it, and the grant policy — as the emulator reads back — and says the binding
/// expired, naming the destroy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_that_expires_loses_its_access_at_its_end_on_the_emulators() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let server = Crossroled::start(&crossrole_e2e::test_dir("bindings-expiring")).await.unwrap();
    let c = server.client().await;
    let accounts: Vec<String> = m.active_under("/Root/Workloads").iter().take(2).map(|a| a.id.clone()).collect();
    let ids = accounts.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    let yaml = m
        .example_spec()
        .replace("name: security-audit", "name: expiring-audit")
        .replace("name: SecurityAudit", "name: ExpiringAudit")
        .replace("organizational_unit_paths: [/Root/Workloads]", &format!("account_ids: [{ids}]"))
        .lines()
        .filter(|l| !l.trim_start().starts_with("verify:") && !l.trim_start().starts_with("timeout:"))
        .collect::<Vec<_>>()
        .join("\n");
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let grant = format!("arn:aws:iam::{}:policy/crossrole/crossrole-assume-expiring-audit", m.security_account);
    let security = aws.iam(&m.security_account).await;

    let made = Instant::now();
    let b = c
        .create_binding(proto::Binding {
            spec: Some(spec),
            expires_in: Some(prost_types::Duration { seconds: 20, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap();
    let end = b.expires_at.unwrap();
    until("the first reconcile", Duration::from_secs(15), || async {
        c.binding("expiring-audit").await.unwrap().status.is_some_and(|s| s.in_sync as usize == accounts.len())
    })
    .await;
    assert!(made.elapsed() < Duration::from_secs(18), "the scenario needs the access in place before its end");
    let want: std::collections::BTreeSet<String> =
        accounts.iter().map(|a| format!("arn:aws:iam::{a}:role/crossrole/ExpiringAudit")).collect();
    for a in &accounts {
        let role = aws.role(a, "ExpiringAudit").await.unwrap_or_else(|| panic!("no role in {a} before the end"));
        let trust = &role.attributes.trust_policy;
        assert!(trust.contains(&m.security_account), "{a}: the trust names the security account: {trust}");
    }
    assert_eq!(crossrole_e2e::granted(&security, &grant).await, want, "the grant names the roles before the end");
    let shown = server.cli(&["bindings", "status", "expiring-audit"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("expires in"), "the CLI shows what is left: {shown}");

    // After the end: removed within a few ticks (the destroy itself takes a few seconds on the emulators).
    until("the access removed after its end", Duration::from_secs(60), || async {
        let mut none = true;
        for a in &accounts {
            none &= aws.role(a, "ExpiringAudit").await.is_none();
        }
        none && security.get_policy().policy_arn(&grant).send().await.is_err()
    })
    .await;
    let ended = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(ended.as_secs() as i64 >= end.seconds, "removed only after its end ({end:?}, now {ended:?})");
    eprintln!("the access was gone {:?} after the binding was made (its end: 20 s)", made.elapsed());
    let b = c.binding("expiring-audit").await.unwrap();
    let s = b.status.unwrap();
    assert!(!s.expiry_operation_id.is_empty(), "the binding names the destroy its end started");
    let destroy = c.operation(&s.expiry_operation_id).await.unwrap();
    assert_eq!(destroy.kind, proto::OperationKind::Destroy as i32);
    let shown = server.cli(&["bindings", "status", "expiring-audit"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("expired at") && shown.contains(&s.expiry_operation_id), "{shown}");
    c.delete_binding("expiring-audit", true).await.unwrap();
}
