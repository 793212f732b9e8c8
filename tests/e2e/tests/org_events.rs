//! Organizations events on the emulators: an account created in the organization, and the events EventBridge
//! would send for it put on an SQS queue (LocalStack's, or moto's), gets its role within seconds — with a
//! binding whose interval is an hour, and no walk of the organization in between.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::time::{Duration, Instant};

use crossrole_client::proto;
use crossrole_core::AccessSpec;
use crossrole_e2e::{Aws, Crossroled, Manifest};
use crossrole_wire::ToWire;

/// The value of one series in crossroled's `/metrics`.
async fn scrape(port: u16, series: &str) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok()).unwrap_or(0.0)
}

/// Organizations' calls that walk the tree or list accounts.
async fn walks(port: u16) -> f64 {
    let mut n = 0.0;
    for op in ["ListAccounts", "ListAccountsForParent", "ListOrganizationalUnitsForParent", "ListRoots"] {
        n += scrape(port, &format!(r#"crossrole_aws_calls_total{{service="organizations",operation="{op}"}}"#)).await;
    }
    n
}

/// An event as EventBridge delivers Organizations' CloudTrail records: from the organization's management account
/// (`management`), in us-east-1.
fn event(management: &str, detail_type: &str, detail: serde_json::Value) -> String {
    serde_json::json!({
        "version": "0", "id": uuid_like(), "detail-type": detail_type, "source": "aws.organizations",
        "account": management, "time": "2026-11-29T12:00:00Z", "region": "us-east-1", "resources": [],
        "detail": detail,
    })
    .to_string()
}

fn uuid_like() -> String {
    format!("{:032x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_created_in_the_organization_gets_its_role_from_the_event_within_seconds() {
    let m = Manifest::load();
    let aws = Aws::new().await;
    let sqs = aws.sqs();
    let queue = sqs.create_queue().queue_name("crossrole-organization-events").send().await.unwrap();
    let queue = queue.queue_url().unwrap().to_string();
    let metrics = crossrole_e2e::free_port();
    let extra = format!(
        "metrics_listen = \"127.0.0.1:{metrics}\"\n[organization_events]\nqueue_url = \"{queue}\"\nwait = \"2s\"\n"
    );
    let server = Crossroled::start_with(&crossrole_e2e::test_dir("org_events"), &extra).await.unwrap();
    let c = server.client().await;

    let yaml = m
        .example_spec()
        .replace("name: security-audit", "name: events-audit")
        .replace("name: SecurityAudit", "name: EventsAudit")
        .replace("[/Root/Workloads]", "[/Root/Sandbox]");
    let spec: proto::AccessSpec = AccessSpec::from_yaml(&yaml).unwrap().to_wire();
    let hour = Some(prost_types::Duration { seconds: 3600, nanos: 0 });
    c.create_binding(proto::Binding { spec: Some(spec), reconcile_interval: hour, ..Default::default() })
        .await
        .unwrap();
    let sandbox = m.active_under("/Root/Sandbox").len();
    let started = Instant::now();
    loop {
        let s = c.binding("events-audit").await.unwrap().status.unwrap_or_default();
        if s.in_sync as usize == sandbox && s.running_operation_id.is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the first reconcile: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // An account is created and moved into the selected OU, as account vending would.
    let orgs = aws.organizations();
    let created =
        orgs.create_account().account_name("events-new").email("events-new@example.com").send().await.unwrap();
    let new = created.create_account_status().and_then(|s| s.account_id()).unwrap().to_string();
    let root = m.ous["/Root"].clone();
    let sandbox_ou = m.ous["/Root/Sandbox"].clone();
    orgs.move_account()
        .account_id(&new)
        .source_parent_id(&root)
        .destination_parent_id(&sandbox_ou)
        .send()
        .await
        .unwrap();
    aws.vend(&m, &new).await;
    let walks_before = walks(metrics).await;

    // The two events EventBridge sends for it.
    let created_event = event(
        &m.management_account,
        "AWS Service Event via CloudTrail",
        serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "CreateAccountResult",
            "serviceEventDetails": {"createAccountStatus": {"state": "SUCCEEDED", "accountId": new}}}),
    );
    let moved_event = event(
        &m.management_account,
        "AWS API Call via CloudTrail",
        serde_json::json!({"eventSource": "organizations.amazonaws.com", "eventName": "MoveAccount",
            "requestParameters": {"accountId": new, "sourceParentId": root, "destinationParentId": sandbox_ou}}),
    );
    let sent = Instant::now();
    for body in [created_event, moved_event, "not an event".to_string()] {
        sqs.send_message().queue_url(&queue).message_body(body).send().await.unwrap();
    }
    let mut arrived = true;
    while aws.role(&new, "EventsAudit").await.is_none() {
        if sent.elapsed() > Duration::from_secs(30) {
            arrived = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = sent.elapsed();
    let walked = walks(metrics).await - walks_before;
    let joined = scrape(metrics, r#"crossrole_organization_events_total{kind="joined"}"#).await;
    let malformed = scrape(metrics, r#"crossrole_organization_events_total{kind="malformed"}"#).await;
    // The binding's status records the reconcile once it has ended (the role exists a moment before).
    let mut status = c.binding("events-audit").await.unwrap().status.unwrap();
    for _ in 0..100 {
        if status.accounts.iter().any(|a| a.account_id == new) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = c.binding("events-audit").await.unwrap().status.unwrap();
    }
    let op = c.operation(&status.last_operation_id).await.unwrap();

    // Leave the organization as found before judging (the other scenarios count the Sandbox's accounts): roles
    // removed, the new account out of the Sandbox.
    c.delete_binding("events-audit", false).await.unwrap().unwrap().wait().await.unwrap();
    orgs.move_account()
        .account_id(&new)
        .source_parent_id(&sandbox_ou)
        .destination_parent_id(&m.ous["/Root/Quarantine"])
        .send()
        .await
        .unwrap();

    assert!(arrived, "no role in the new account 30 s after its events");
    eprintln!(
        "the new account had its role {:.1} s after its events were sent (binding interval 1 h); Organizations \
         walk calls in between: {walked}; events read: joined {joined}, malformed {malformed}",
        took.as_secs_f64()
    );
    assert_eq!(walked, 0.0, "no walk of the organization between the event and the role");
    assert!(took < Duration::from_secs(15), "within seconds: {took:?}");
    assert_eq!(malformed, 1.0);
    assert_eq!(op.account_scope, std::slice::from_ref(&new), "a reconcile of the new account alone");
    assert_eq!(op.created_by, "organizations-events");
    sqs.delete_queue().queue_url(&queue).send().await.unwrap();
}
