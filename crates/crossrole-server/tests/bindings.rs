//! Bindings over the in-memory AWS: enrolment, clean-up, repair (enforce), report (detect), restart, delete.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{sync::Arc, time::Duration};

use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::{Client, proto};
use crossrole_core::{AccessSpec, org::fixture::TreeBuilder, spec::AccountState};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
};
use crossrole_wire::ToWire;

const SECURITY: &str = "111122223333";

fn account(i: u64) -> String {
    format!("{:012}", 200_000_000_000 + i)
}

fn spec() -> proto::AccessSpec {
    AccessSpec::from_yaml(&format!(
        "name: kept\nrole:\n  name: Kept\n  trust:\n    account_ids: [\"{SECURITY}\"]\n    external_id: Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf\n  managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]\ntargets:\n  organizational_unit_paths: [/Root/Workloads]\nrollout:\n  prune: true\n"
    ))
    .unwrap()
    .to_wire()
}

fn config(dir: &std::path::Path) -> Config {
    Config::from_toml(
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nreconcile_tick = \"200ms\"\n[[tokens]]\nname = \"ops\"\nsha256 = \"{}\"\nscope = \"apply\"\n",
            dir.display(),
            hash_token("t")
        ),
        &Flags::default(),
    )
    .unwrap()
}

async fn client(addr: std::net::SocketAddr) -> Client {
    Client::builder().endpoint(format!("http://{addr}")).token("t").connect().await.unwrap()
}

/// Waits until the binding's last reconcile is newer than `after` and returns the binding.
async fn next_status(c: &Client, after: &str) -> proto::Binding {
    for _ in 0..200 {
        let b = c.binding("kept").await.unwrap();
        let s = b.status.clone().unwrap_or_default();
        if !s.last_operation_id.is_empty() && s.last_operation_id != after && s.running_operation_id.is_empty() {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reconcile finished")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binding_keeps_access_true() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .unit("r-root", "ou-root-elsewher", "Elsewhere")
        .account("r-root", SECURITY, "security", AccountState::Active);
    for i in 0..4 {
        tree = tree.account("ou-root-workload", &account(i), &format!("w-{i}"), AccountState::Active);
    }
    let fake = FakeAws::new(tree.build(), FakeConfig::default());
    let server = crossrole_server::start(&config(dir.path()), Arc::new(fake.clone())).await.unwrap();
    let c = client(server.addr).await;

    // Invalid bindings name the field.
    let bad = proto::Binding {
        spec: Some(spec()),
        reconcile_interval: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
        ..Default::default()
    };
    assert_eq!(c.create_binding(bad).await.unwrap_err().violations()[0].field, "binding.reconcile_interval");
    let mut wrong = spec();
    wrong.role.as_mut().unwrap().name = "no good".into();
    assert_eq!(
        c.create_binding(proto::Binding { spec: Some(wrong), ..Default::default() }).await.unwrap_err().violations()[0]
            .field,
        "binding.spec.role.name"
    );

    // Created: reconciled at once, every account in sync.
    let b = c
        .create_binding(proto::Binding {
            spec: Some(spec()),
            reconcile_interval: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((b.name.as_str(), b.version), ("kept", 1));
    let b = next_status(&c, "").await;
    let s = b.status.clone().unwrap();
    assert_eq!((s.in_sync, s.drifted, s.failed), (4, 0, 0));
    assert!((0..4).all(|i| fake.role(&account(i), "Kept").is_some()));
    let first = s.last_operation_id.clone();
    let op = c.operation(&first).await.unwrap();
    assert_eq!((op.kind, op.binding_name.as_str()), (proto::OperationKind::Reconcile as i32, "kept"));

    // A new account in the OU, one moved out, a policy attached by hand: the next reconcile enrols, cleans up, repairs.
    fake.with_tree(|t| {
        t.accounts.insert(
            account(9),
            crossrole_core::org::AccountInfo {
                id: account(9),
                name: "w-9".into(),
                email: "w9@example.com".into(),
                state: AccountState::Active,
                parent_id: "ou-root-workload".into(),
                joined_at: None,
            },
        );
        t.accounts.get_mut(&account(0)).unwrap().parent_id = "ou-root-elsewher".into();
    });
    fake.with_account(&account(9), |a| {
        a.create_role_by_hand(&account(9), "OrganizationAccountAccessRole", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#);
        a.attach_by_hand("OrganizationAccountAccessRole", "arn:aws:iam::aws:policy/AdministratorAccess");
    });
    fake.with_account(&account(2), |a| a.attach_by_hand("Kept", "arn:aws:iam::aws:policy/AdministratorAccess"));
    let reconcile = c.reconcile_binding("kept").await.unwrap();
    // Asking again while it runs returns the same operation.
    assert_eq!(c.reconcile_binding("kept").await.unwrap().id(), reconcile.id());
    reconcile.wait().await.unwrap();
    let b = next_status(&c, &first).await;
    let s = b.status.clone().unwrap();
    assert!(fake.role(&account(9), "Kept").is_some(), "enrolled");
    assert!(fake.role(&account(0), "Kept").is_none(), "cleaned up");
    assert!(
        !fake
            .role(&account(2), "Kept")
            .unwrap()
            .managed_policy_arns
            .contains("arn:aws:iam::aws:policy/AdministratorAccess"),
        "repaired"
    );
    assert_eq!((s.in_sync, s.drifted), (4, 0));

    // A reconcile with nothing to change makes no IAM write.
    fake.reset_counters();
    let quiet = c.reconcile_binding("kept").await.unwrap().wait().await.unwrap();
    assert_eq!(fake.iam_writes(), 0, "{:?}", fake.served());
    assert_eq!(quiet.counts.unwrap().unchanged, 4);

    // DETECT: drift is reported, not repaired; drifted accounts come first.
    // Round trip: what GetBinding returns (ExternalId redacted) can be sent back as an update.
    let mut detect = c.binding("kept").await.unwrap();
    let shown = &detect.spec.as_ref().unwrap().role.as_ref().unwrap().trust.as_ref().unwrap().external_id;
    assert!(shown.starts_with("<redacted:") && !shown.contains("Wq3vT9z"), "{shown}");
    detect.mode = proto::BindingMode::Detect as i32;
    let v2 = c.update_binding(detect, 1).await.unwrap();
    assert_eq!(v2.version, 2);
    assert!(matches!(c.update_binding(v2.clone(), 1).await, Err(crossrole_client::Error::Aborted(_))), "stale version");
    fake.with_account(&account(3), |a| a.attach_by_hand("Kept", "arn:aws:iam::aws:policy/AdministratorAccess"));
    let before = c.binding("kept").await.unwrap().status.unwrap().last_operation_id;
    c.reconcile_binding("kept").await.unwrap().wait().await.unwrap();
    let b = next_status(&c, &before).await;
    let s = b.status.unwrap();
    assert_eq!(s.drifted, 1);
    assert_eq!(s.accounts[0].account_id, account(3));
    assert_eq!(s.accounts[0].changes[0].kind, proto::ChangeKind::DetachManagedPolicy as i32);
    assert!(
        fake.role(&account(3), "Kept")
            .unwrap()
            .managed_policy_arns
            .contains("arn:aws:iam::aws:policy/AdministratorAccess"),
        "detect does not repair"
    );
    assert_eq!(s.reconciled_version, 2);

    // Bindings survive a restart.
    server.stop().await.unwrap();
    let server = crossrole_server::start(&config(dir.path()), Arc::new(fake.clone())).await.unwrap();
    let c = client(server.addr).await;
    let listed = c.list_bindings(proto::ListBindingsRequest::default()).await.unwrap();
    assert_eq!(listed.bindings.len(), 1);
    assert_eq!(listed.bindings[0].status.as_ref().unwrap().drifted, 1);

    // Deleting it removes what it created.
    let destroy = c.delete_binding("kept", false).await.unwrap().unwrap();
    destroy.wait().await.unwrap();
    assert!((1..4).chain([9]).all(|i| fake.role(&account(i), "Kept").is_none()));
    assert!(matches!(c.binding("kept").await, Err(crossrole_client::Error::NotFound(_))));
    server.stop().await.unwrap();
}

/// An Organizations event in the shape EventBridge delivers it: an account created.
fn account_created(id: &str) -> String {
    serde_json::json!({
        "version": "0", "id": "e-1", "detail-type": "AWS Service Event via CloudTrail", "source": "aws.organizations",
        "account": "123456789012", "time": "2026-11-29T12:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"eventSource": "organizations.amazonaws.com", "eventName": "CreateAccountResult",
            "serviceEventDetails": {"createAccountStatus": {"state": "SUCCEEDED", "accountId": id}}},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organizations_event_enrols_a_new_account_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let mut tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .account("r-root", SECURITY, "security", AccountState::Active);
    for i in 0..3 {
        tree = tree.account("ou-root-workload", &account(i), &format!("w-{i}"), AccountState::Active);
    }
    let fake = FakeAws::new(tree.build(), FakeConfig::default());
    let mut config = config(dir.path());
    config.organization_events = Some(crossrole_server::config::OrganizationEvents {
        queue_url: "https://sqs.us-east-1.amazonaws.com/123456789012/events".into(),
        wait: Duration::from_secs(1),
        resync: Duration::from_secs(3600),
    });
    let server = crossrole_server::start(&config, Arc::new(fake.clone())).await.unwrap();
    let c = client(server.addr).await;
    let hour = Some(prost_types::Duration { seconds: 3600, nanos: 0 });
    c.create_binding(proto::Binding { spec: Some(spec()), reconcile_interval: hour, ..Default::default() })
        .await
        .unwrap();
    let first = next_status(&c, "").await.status.unwrap();
    assert_eq!(first.in_sync, 3);

    // A message that is not an event is deleted, and changes nothing.
    fake.send_to_queue("{\"hello\": 1}");
    let new = account(7);
    fake.join(crossrole_core::org::AccountInfo {
        id: new.clone(),
        name: "w-7".into(),
        email: String::new(),
        state: AccountState::Active,
        parent_id: "ou-root-workload".into(),
        joined_at: None,
    });
    fake.reset_counters();
    fake.send_to_queue(&account_created(&new));
    let b = next_status(&c, &first.last_operation_id).await;
    let s = b.status.unwrap();
    assert_eq!(s.in_sync, 4, "{s:?}");
    assert!(fake.role(&new, "Kept").is_some());
    assert_eq!(s.next_reconcile_time, first.next_reconcile_time, "the interval's schedule stays");
    let op = c.operation(&s.last_operation_id).await.unwrap();
    assert_eq!(
        (op.created_by.as_str(), op.account_scope.as_slice()),
        ("organizations-events", [new.clone()].as_slice())
    );
    let walks: Vec<String> = fake
        .served()
        .into_keys()
        .filter(|k| k.contains("ListAccounts") || k.contains("ListOrganizationalUnits"))
        .collect();
    assert!(walks.is_empty(), "no walk of the organization: {walks:?}");
    for _ in 0..100 {
        if fake.queue_counts() == (0, 0, 2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.queue_counts(), (0, 0, 2), "both messages deleted once handled");

    // A full reconcile works from the tree the events keep true: it reads the roles, not the organization.
    fake.reset_counters();
    let full = c.reconcile_binding("kept").await.unwrap();
    let b = next_status(&c, &s.last_operation_id).await;
    assert_eq!(b.status.unwrap().last_operation_id, full.id());
    let reads: Vec<String> = fake.served().into_keys().filter(|k| k.starts_with("organizations:")).collect();
    assert!(reads.is_empty(), "no Organizations call within the resync age: {reads:?}");
    assert!(fake.served().keys().any(|k| k.starts_with("iam:")));
    server.stop().await.unwrap();
}

/// The audit entries of `method`, newest first, their requests as JSON.
async fn audited(c: &Client, method: &str) -> Vec<serde_json::Value> {
    let events = c.list_audit_events(proto::ListAuditEventsRequest::default()).await.unwrap().events;
    events.iter().filter(|e| e.method == method).map(|e| serde_json::from_str(&e.request_json).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_end_is_validated_and_its_extension_audited_with_the_old_and_the_new_end() {
    let dir = tempfile::tempdir().unwrap();
    let tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .account("r-root", SECURITY, "security", AccountState::Active)
        .account("ou-root-workload", &account(0), "w-0", AccountState::Active);
    let fake = FakeAws::new(tree.build(), FakeConfig::default());
    let server = crossrole_server::start(&config(dir.path()), Arc::new(fake.clone())).await.unwrap();
    let c = client(server.addr).await;
    let hours = |h: i64| Some(prost_types::Duration { seconds: h * 3600, nanos: 0 });

    // An end in the past, or both forms at once, is refused naming the field.
    let past = proto::Binding {
        spec: Some(spec()),
        expires_at: Some(prost_types::Timestamp { seconds: 1_000_000_000, nanos: 0 }),
        ..Default::default()
    };
    let e = c.create_binding(past).await.unwrap_err();
    assert_eq!(e.violations()[0].field, "binding.expires_at", "{e:?}");
    assert!(e.violations()[0].description.contains("must be in the future"), "{e:?}");
    let both = proto::Binding {
        spec: Some(spec()),
        expires_at: Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 }),
        expires_in: hours(1),
        ..Default::default()
    };
    assert_eq!(c.create_binding(both).await.unwrap_err().violations()[0].field, "binding.expires_in");

    let created =
        c.create_binding(proto::Binding { spec: Some(spec()), expires_in: hours(4), ..Default::default() }).await;
    let first_end = created.unwrap().expires_at.unwrap();
    let extended = c
        .update_binding(proto::Binding { spec: Some(spec()), expires_in: hours(8), ..Default::default() }, 0)
        .await
        .unwrap();
    let second_end = extended.expires_at.unwrap();
    assert!(second_end.seconds >= first_end.seconds + 4 * 3600 - 5, "{first_end:?} → {second_end:?}");
    let rfc = |t: &prost_types::Timestamp| crossrole_core::expiry::rfc3339(crossrole_wire::millis(t));
    let updates = audited(&c, "UpdateBinding").await;
    assert_eq!(updates[0]["previous_expires_at"], rfc(&first_end));
    assert_eq!(updates[0]["expires_at"], rfc(&second_end));
    assert_eq!(audited(&c, "CreateBinding").await[0]["expires_at"], rfc(&first_end));

    // An apply's end: set, extended by an apply with a new one, kept by one without, each audited.
    let mut applied = spec();
    applied.name = "applied".into();
    let apply =
        |expires_in| proto::ApplyAccessRequest { spec: Some(applied.clone()), expires_in, ..Default::default() };
    let refused = c.apply_request(apply(Some(prost_types::Duration { seconds: -1, nanos: 0 }))).await.unwrap_err();
    assert_eq!(refused.violations()[0].field, "expires_in");
    // A part of a second, which a gRPC caller can send, would end the access at once: refused for an apply and a
    // binding alike, naming the field and the rule, nothing created.
    for nanos in [1, 500_000_000] {
        let part = Some(prost_types::Duration { seconds: 0, nanos });
        let refused = c.apply_request(apply(part)).await.unwrap_err();
        assert_eq!(refused.violations()[0].field, "expires_in", "{refused:?}");
        assert!(refused.violations()[0].description.contains("must be whole seconds, at least 1s"), "{refused:?}");
        let mut bound = spec();
        bound.name = "sub-second".into();
        let refused =
            c.create_binding(proto::Binding { spec: Some(bound), expires_in: part, ..Default::default() }).await;
        let refused = refused.unwrap_err();
        assert_eq!(refused.violations()[0].field, "binding.expires_in", "{refused:?}");
        assert!(refused.violations()[0].description.contains("must be whole seconds, at least 1s"), "{refused:?}");
    }
    let (_, a1) = c.apply_request(apply(hours(1))).await.unwrap();
    let (_, a2) = c.apply_request(apply(hours(2))).await.unwrap();
    let (_, a3) = c.apply_request(apply(None)).await.unwrap();
    let (a1, a2) = (a1.unwrap(), a2.unwrap());
    assert_eq!(a3.as_ref(), Some(&a2), "an apply without an end keeps the spec's");
    let applies = audited(&c, "ApplyAccess").await;
    assert_eq!(
        (applies[1]["previous_expires_at"].clone(), applies[1]["expires_at"].clone()),
        (rfc(&a1).into(), rfc(&a2).into())
    );
    assert_eq!(applies[0]["expires_at"], rfc(&a2));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_retried_with_its_idempotency_key_keeps_the_end_it_computed_the_first_time() {
    let dir = tempfile::tempdir().unwrap();
    let tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .account("r-root", SECURITY, "security", AccountState::Active)
        .account("ou-root-workload", &account(0), "w-0", AccountState::Active);
    let fake = FakeAws::new(tree.build(), FakeConfig::default());
    let server = crossrole_server::start(&config(dir.path()), Arc::new(fake.clone())).await.unwrap();
    let c = client(server.addr).await;
    let apply = |key: &str| proto::ApplyAccessRequest {
        spec: Some(spec()),
        idempotency_key: key.into(),
        expires_in: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
        ..Default::default()
    };
    let (first, end) = c.apply_request(apply("apply-1")).await.unwrap();
    let end = end.unwrap();
    // The response was lost, say: the client sends the same request again, a while later.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (again, retried_end) = c.apply_request(apply("apply-1")).await.unwrap();
    assert_eq!(again.id(), first.id(), "the retry is the same operation");
    assert_eq!(retried_end, Some(end), "the retry keeps the end computed the first time");
    let applies = audited(&c, "ApplyAccess").await;
    let rfc = |t: &prost_types::Timestamp| crossrole_core::expiry::rfc3339(crossrole_wire::millis(t));
    assert_eq!(applies[0]["expires_at"], rfc(&end), "{}", applies[0]);
    // What the journal holds: an apply without an end reports the spec's as it is.
    let (_, kept) =
        c.apply_request(proto::ApplyAccessRequest { spec: Some(spec()), ..Default::default() }).await.unwrap();
    assert_eq!(kept, Some(end));
    // A new key is a new apply: its end is computed anew, from now.
    let (_, extended) = c.apply_request(apply("apply-2")).await.unwrap();
    assert!(crossrole_wire::millis(&extended.unwrap()) >= crossrole_wire::millis(&end) + 1000);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_with_a_used_idempotency_key_and_another_end_is_refused_and_changes_no_end() {
    let dir = tempfile::tempdir().unwrap();
    let tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .unit("r-root", "ou-root-workload", "Workloads")
        .account("r-root", SECURITY, "security", AccountState::Active)
        .account("ou-root-workload", &account(0), "w-0", AccountState::Active);
    let fake = FakeAws::new(tree.build(), FakeConfig::default());
    let server = crossrole_server::start(&config(dir.path()), Arc::new(fake.clone())).await.unwrap();
    let c = client(server.addr).await;
    let apply = |hours: i64| proto::ApplyAccessRequest {
        spec: Some(spec()),
        idempotency_key: "apply-1".into(),
        expires_in: Some(prost_types::Duration { seconds: hours * 3600, nanos: 0 }),
        ..Default::default()
    };
    let (first, end) = c.apply_request(apply(1)).await.unwrap();
    let refused = c.apply_request(apply(8)).await.unwrap_err();
    let crossrole_client::Error::FailedPrecondition(message) = &refused else { panic!("{refused:?}") };
    assert!(message.contains("idempotency_key \"apply-1\"") && message.contains("(expires_in differs"), "{message}");
    assert!(message.contains("expires_in 3600s, this one for expires_in 28800s"), "{message}");
    // Nothing was written: the spec's end is the first request's, and the same request still returns its operation.
    let (again, kept) = c.apply_request(apply(1)).await.unwrap();
    assert_eq!((again.id(), kept), (first.id(), end));
    let refusal = &audited(&c, "ApplyAccess").await[1];
    assert!(refusal["expires_at"].is_null(), "the refusal set no end: {refusal}");
    server.stop().await.unwrap();
}
