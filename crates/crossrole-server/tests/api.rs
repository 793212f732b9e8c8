//! crossroled in-process on 127.0.0.1:0, driven through the SDK, over the in-memory AWS.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{sync::Arc, time::Duration};

use common::*;
use crossrole_aws::{
    Service,
    fake::{FakeAws, FakeConfig, Latency},
};
use crossrole_client::{Client, Error, proto};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
};
use futures::StreamExt;

#[tokio::test]
async fn auth_scopes_and_error_codes() {
    let h = start(3, 0).await;
    let nobody = h.client("").await;
    assert!(matches!(nobody.describe_organization(false).await, Err(Error::Unauthenticated(_))));
    let stranger = h.client("wrong").await;
    assert!(matches!(stranger.describe_organization(false).await, Err(Error::Unauthenticated(_))));
    let reader = h.client("read-token").await;
    assert_eq!(reader.describe_organization(false).await.unwrap().account_count, 5);
    assert!(matches!(reader.plan(spec()).await, Err(Error::PermissionDenied(_))));
    assert!(matches!(reader.apply(spec(), None).await, Err(Error::PermissionDenied(_))));
    let planner = h.client("plan-token").await;
    assert_eq!(planner.plan(spec()).await.unwrap().accounts.len(), 3);
    assert!(matches!(planner.apply(spec(), None).await, Err(Error::PermissionDenied(_))));

    // INVALID_ARGUMENT names each field under `spec.` with its rule.
    let deployer = h.client("apply-token").await;
    let mut bad = spec();
    bad.role.as_mut().unwrap().name = "bad name".into();
    bad.role.as_mut().unwrap().trust.as_mut().unwrap().external_id = "x".into();
    let err = deployer.apply(bad, None).await.unwrap_err();
    let fields: Vec<(&str, &str)> =
        err.violations().iter().map(|v| (v.field.as_str(), v.description.as_str())).collect();
    assert_eq!(
        fields,
        [
            ("spec.role.name", "only letters, digits and +=,.@_- are allowed (IAM), found ' '"),
            ("spec.role.trust.external_id", "must be 2 to 1224 characters (STS), got 1"),
        ]
    );
    // Guardrails refuse with field violations too.
    let mut admin = spec();
    admin.role.as_mut().unwrap().managed_policy_arns = vec!["arn:aws:iam::aws:policy/AdministratorAccess".into()];
    let err = deployer.apply(admin, None).await.unwrap_err();
    assert_eq!(err.violations()[0].field, "spec.role.managed_policy_arns");
    assert!(err.violations()[0].description.starts_with("guardrail admin-access"));
    // Unknown selectors name the field.
    let err = reader
        .list_accounts(proto::ListAccountsRequest {
            selector: Some(proto::TargetSelector {
                organizational_unit_ids: vec!["ou-root-nowhere1".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.violations()[0].field, "selector.organizational_unit_ids[0]");
    // NOT_FOUND, and a malformed id.
    assert!(matches!(reader.operation("0190a3c4-0000-7000-8000-000000000000").await, Err(Error::NotFound(_))));
    assert_eq!(reader.operation("nope").await.unwrap_err().violations()[0].field, "operation_id");
    assert_eq!(
        reader
            .list_operations(proto::ListOperationsRequest { page_size: 5000, ..Default::default() })
            .await
            .unwrap_err()
            .violations()[0]
            .field,
        "page_size"
    );
    h.server.stop().await.unwrap();
}

#[tokio::test]
async fn apply_watch_idempotency_and_cancel() {
    let h = start(12, 20).await;
    let c = h.client("apply-token").await;
    let op = c.apply(spec(), Some("deploy-1".into())).await.unwrap();
    let again = c.apply(spec(), Some("deploy-1".into())).await.unwrap();
    assert_eq!(op.id(), again.id(), "the same key is the same operation");
    let mut other = spec();
    other.role.as_mut().unwrap().description = "different".into();
    assert!(matches!(c.apply(other, Some("deploy-1".into())).await, Err(Error::FailedPrecondition(_))));

    let events: Vec<proto::OperationEvent> = op.events().map(|e| e.unwrap()).collect().await;
    let seqs: Vec<u64> = events.iter().map(|e| e.sequence).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "every event, in order, once");
    let finished =
        events.iter().filter(|e| matches!(e.event, Some(proto::operation_event::Event::AccountFinished(_)))).count();
    assert_eq!(finished, 12);
    let done = op.wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let shown = done.spec.unwrap().role.unwrap().trust.unwrap().external_id;
    assert!(shown.starts_with("<redacted:") && !shown.contains("Wq3vT9z"), "{shown}");
    assert_eq!(done.created_by, "deployer");

    // Replay after the end, resumed from a sequence.
    let tail: Vec<u64> = op.events_after(seqs[seqs.len() - 4]).map(|e| e.unwrap().sequence).collect().await;
    assert_eq!(tail, seqs[seqs.len() - 3..]);
    let results = op.results().await.unwrap();
    assert_eq!(results.len(), 12);

    // Cancelling a finished operation is FAILED_PRECONDITION; a running one stops.
    assert!(matches!(op.cancel().await, Err(Error::FailedPrecondition(_))));
    let mut slow = spec();
    slow.name = "slow".into();
    slow.role.as_mut().unwrap().name = "Slow".into();
    slow.grant = None;
    if let Some(r) = slow.rollout.as_mut() {
        r.max_concurrency = Some(proto::Limit { kind: Some(proto::limit::Kind::Count(1)) });
    }
    let running = c.apply(slow, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.cancel().await.unwrap();
    let cancelled = running.wait().await.unwrap();
    assert_eq!(cancelled.state, proto::OperationState::Cancelled as i32);
    assert!(cancelled.counts.unwrap().not_started > 0);

    let listed = c.list_operations(proto::ListOperationsRequest { page_size: 1, ..Default::default() }).await.unwrap();
    assert_eq!(listed.operations.len(), 1);
    assert!(!listed.next_page_token.is_empty());
    h.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_lagging_watcher_never_slows_the_rollout_and_misses_nothing() {
    let h = start(60, 2).await;
    let c = h.client("apply-token").await;
    let op = c.apply(spec(), None).await.unwrap();
    // The server's watch stream itself (over the wire, HTTP/2 windows would absorb the backlog): read a few events
    // live, then stop polling it while the rollout runs; its live buffer holds only 16.
    let engine = h.server.engine.clone();
    let state = crossrole_server::state::State {
        journal: engine.journal().clone(),
        bindings: crossrole_engine::bindings::Bindings::new(engine.clone()),
        org_events: Default::default(),
        watchers: Default::default(),
        engine,
        tokens: Arc::new(crossrole_server::auth::Tokens::default()),
    };
    let watchers = state.watchers.clone();
    let mut stalled = crossrole_server::services::operation::watch(state, op.id().to_string(), 0);
    let mut items = Vec::new();
    while items.len() < 5 {
        items.push(stalled.next().await.unwrap().unwrap());
    }
    assert_eq!(watchers.open(), 1, "an open stream is counted (crossrole_watchers)");
    let done = tokio::time::timeout(Duration::from_secs(60), op.wait())
        .await
        .expect("the rollout finished while a watcher stalled")
        .unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32);
    assert!(done.last_sequence > 200, "enough events to overflow the live buffer: {}", done.last_sequence);
    // Now read the rest: every event, in order, once; what it fell behind on came from the journal.
    while let Some(item) = stalled.next().await {
        items.push(item.unwrap());
    }
    assert_eq!(watchers.open(), 0, "an ended stream is not");
    let seqs: Vec<u64> = items.iter().map(|r| r.event.as_ref().unwrap().sequence).collect();
    assert_eq!(seqs, (1..=done.last_sequence).collect::<Vec<_>>());
    let first_live = items.iter().position(|r| !r.replayed).expect("some events were read live");
    assert!(
        items[first_live..].iter().any(|r| r.replayed),
        "after falling behind the live stream, the watcher caught up from the journal"
    );
    h.server.stop().await.unwrap();
}

#[tokio::test]
async fn health_reflection_and_links() {
    let h = start(2, 0).await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", h.server.addr)).unwrap().connect().await.unwrap();
    // Health needs no token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status =
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(status.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    // Reflection does.
    let mut reflection = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let refused = reflection.server_reflection_info(futures::stream::iter(vec![request.clone()])).await;
    assert_eq!(refused.unwrap_err().code(), tonic::Code::Unauthenticated);
    let mut authed = tonic::Request::new(futures::stream::iter(vec![request]));
    authed.metadata_mut().insert("authorization", "Bearer read-token".parse().unwrap());
    let mut replies = reflection.server_reflection_info(authed).await.unwrap().into_inner();
    let reply = replies.next().await.unwrap().unwrap();
    let Some(tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        reply.message_response
    else {
        panic!("unexpected reply")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for s in ["crossrole.v1.AccessService", "crossrole.v1.OperationService", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == s), "{s} missing from {names:?}");
    }

    let reader = h.client("read-token").await;
    // Never applied: no link and no profile, and each target account says why.
    let links = |include_unapplied| proto::GetSwitchRoleLinksRequest { spec: Some(spec()), include_unapplied };
    let unapplied = reader.links(links(false)).await.unwrap();
    assert!(unapplied.links.is_empty(), "{unapplied:?}");
    assert_eq!(unapplied.left_out.len(), 2);
    assert!(unapplied.left_out[0].reason.contains("crossrole has not applied spec audit"), "{unapplied:?}");
    let asked = reader.links(links(true)).await.unwrap();
    assert_eq!(asked.links.len(), 2);
    assert!(asked.left_out.is_empty() && asked.links.iter().all(|l| !l.applied));
    let export = |token: &'static str, request: proto::ExportProfilesRequest| {
        let h = &h;
        async move { h.client(token).await.export_profiles(request).await }
    };
    let request =
        proto::ExportProfilesRequest { spec: Some(spec()), source_profile: "security".into(), ..Default::default() };
    let nothing = export("assumer-token", request.clone()).await.unwrap();
    assert_eq!((nothing.profile_count, nothing.left_out.len()), (0, 2));
    assert!(!nothing.content.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "no profile, so no ExternalId");
    let applied = h.client("apply-token").await.apply(spec(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(applied.state, proto::OperationState::Succeeded as i32, "{}", applied.message);

    let links = reader.switch_role_links(spec()).await.unwrap();
    assert_eq!(links.len(), 2);
    assert!(links[0].url.is_empty() && links[0].unusable_reason.contains("ExternalId") && links[0].applied);
    // The web console sends a binding's spec back as it was shown: its ExternalId a mark. The links are the same.
    let mut shown = spec();
    shown.role.as_mut().unwrap().trust.as_mut().unwrap().external_id = "<redacted:0a1b2c3d>".into();
    assert_eq!(reader.switch_role_links(shown).await.unwrap(), links);
    // The session: one hour by default (it works under role chaining), longer when asked, never past the role's.
    assert!(export("read-token", request.clone()).await.unwrap().content.contains("duration_seconds = 3600\n"));
    let too_long = export("read-token", proto::ExportProfilesRequest { duration_seconds: 7200, ..request.clone() })
        .await
        .unwrap_err();
    assert_eq!(too_long.violations()[0].field, "duration_seconds");
    // AESR does not use a source profile, so it needs none.
    let aesr = proto::ExportProfilesRequest {
        source_profile: String::new(),
        format: proto::ExportFormat::Aesr as i32,
        ..request.clone()
    };
    assert_eq!(export("read-token", aesr).await.unwrap().profile_count, 2);
    let profiles = reader
        .export_profiles(proto::ExportProfilesRequest {
            spec: Some(spec()),
            source_profile: "security".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(profiles.profile_count, 2);
    assert!(!profiles.content.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "a plain read token never gets it");
    assert!(profiles.content.contains("# the role requires an ExternalId"));
    let assumer = h.client("assumer-token").await;
    let profiles = assumer
        .export_profiles(proto::ExportProfilesRequest {
            spec: Some(spec()),
            source_profile: "security".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(profiles.content.contains("external_id = Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "the token meant for it does");
    let missing = reader
        .export_profiles(proto::ExportProfilesRequest { spec: Some(spec()), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(missing.violations()[0].field, "source_profile");
    let json = assumer
        .export_profiles(proto::ExportProfilesRequest {
            spec: Some(spec()),
            source_profile: "security".into(),
            format: proto::ExportFormat::Json as i32,
            profile_name_template: "${account_id}".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let items: serde_json::Value = serde_json::from_str(&json.content).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 2);
    assert_eq!(items[0]["profile"], items[0]["account_id"]);
    assert_eq!(items[0]["external_id"], "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf");
    let bad = reader
        .export_profiles(proto::ExportProfilesRequest {
            spec: Some(spec()),
            source_profile: "security".into(),
            profile_name_template: "${account}".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.violations()[0].field, "profile_name_template");
    h.server.stop().await.unwrap();
}

#[tokio::test]
async fn a_restart_resumes_the_operation() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml(
        &format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nshutdown_timeout = \"5s\"\n[[tokens]]\nname = \"d\"\nsha256 = \"{}\"\nscope = \"apply\"\n", dir.path().display(), hash_token("t")),
        &Flags::default(),
    )
    .unwrap();
    let mut fake_config = FakeConfig::default();
    fake_config.latency.insert(Service::Iam, Latency { base: Duration::from_millis(30), jitter: Duration::ZERO });
    let fake = FakeAws::new(tree(30), fake_config);
    fake.add_principals(SECURITY, &["alice"], &[]);
    let server = crossrole_server::start(&config, Arc::new(fake.clone())).await.unwrap();
    let c = Client::builder().endpoint(format!("http://{}", server.addr)).token("t").connect().await.unwrap();
    let mut s = spec();
    s.rollout.as_mut().unwrap().max_concurrency = Some(proto::Limit { kind: Some(proto::limit::Kind::Count(2)) });
    let op = c.apply(s, None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.stop().await.unwrap();
    let server = crossrole_server::start(&config, Arc::new(fake.clone())).await.unwrap();
    let c = Client::builder().endpoint(format!("http://{}", server.addr)).token("t").connect().await.unwrap();
    let done = c.operation_handle(op.id()).wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    assert_eq!(fake.served().get("iam:CreateRole"), Some(&30));
    server.stop().await.unwrap();
}

/// `GET path` on `addr`, over a plain TCP connection: the status line and the body.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The value of one sample line (`name{labels} value`) in an exposition.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn prometheus_metrics_agree_with_the_operation() {
    let h = start(6, 0).await;
    let addr = h.server.metrics_addr.unwrap();
    let c = h.client("apply-token").await;
    let done = c.apply(spec(), None).await.unwrap().wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let counts = done.counts.unwrap();

    let (status, text) = http_get(addr, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(sample(&text, r#"crossrole_operations_total{kind="apply",state="succeeded"}"#), Some(1.0), "{text}");
    assert_eq!(sample(&text, r#"crossrole_accounts_total{outcome="changed"}"#), Some(f64::from(counts.changed)));
    assert_eq!(sample(&text, r#"crossrole_operation_duration_seconds_count{kind="apply"}"#), Some(1.0));
    assert_eq!(sample(&text, r#"crossrole_operation_duration_seconds_bucket{kind="apply",le="+Inf"}"#), Some(1.0));
    assert_eq!(sample(&text, "crossrole_operations_running"), Some(0.0));
    assert_eq!(sample(&text, "crossrole_aws_rate_share"), Some(1.0), "alone: the whole of every rate");
    assert!(!done.aws_calls.is_empty());
    // Every call of the operation is counted; IAM is called by the operation alone (Organizations also by the
    // discovery before it).
    for (call, n) in &done.aws_calls {
        let (service, operation) = call.split_once(':').unwrap();
        let series = format!(r#"crossrole_aws_calls_total{{service="{service}",operation="{operation}"}}"#);
        let scraped = sample(&text, &series).unwrap_or_else(|| panic!("{series} missing\n{text}"));
        if service == "iam" {
            assert_eq!(scraped, *n as f64, "{series}");
        } else {
            assert!(scraped >= *n as f64, "{series}: {scraped} < {n}");
        }
    }
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "{line}");
        assert!(!line.contains("20000000000"), "no account ids in labels: {line}");
    }
    // The journal's write times, the rate buckets (IAM's: one per account worked on), the watchers.
    assert!(sample(&text, "crossrole_journal_write_seconds_count").unwrap_or(0.0) >= 1.0, "{text}");
    assert!(sample(&text, r#"crossrole_aws_rate_buckets{service="iam"}"#).unwrap() >= f64::from(counts.changed));
    assert_eq!(sample(&text, r#"crossrole_aws_rate_limit{service="iam"}"#), Some(10.0));
    assert_eq!(sample(&text, r#"crossrole_aws_rate_buckets_backed_off{service="iam"}"#), Some(0.0));
    assert_eq!(sample(&text, "crossrole_watchers"), Some(0.0));
    assert!(http_get(addr, "/").await.0.contains("404"));
    h.server.stop().await.unwrap();
}

#[tokio::test]
async fn the_audit_log_says_who_changed_what_through_which_request() {
    let h = start(3, 0).await;
    let deployer = h.client("apply-token").await;
    let done = deployer.apply(spec(), Some("key-1".into())).await.unwrap().wait().await.unwrap();
    let refused = deployer.cancel(&done.id).await.unwrap_err();
    let other = h.client("apply-token-2").await;
    other.reconcile_binding("nope").await.unwrap_err();

    let reader = h.client("read-token").await;
    let all = reader.list_audit_events(proto::ListAuditEventsRequest::default()).await.unwrap().events;
    let methods: Vec<&str> = all.iter().map(|e| e.method.as_str()).collect();
    assert_eq!(methods, ["ReconcileBinding", "CancelOperation", "ApplyAccess"]);
    let apply = &all[2];
    assert_eq!((apply.caller.as_str(), apply.outcome.as_str()), ("deployer", "ok"));
    assert_eq!((apply.spec_name.as_str(), apply.operation_id.as_str()), ("audit", done.id.as_str()));
    let request: serde_json::Value = serde_json::from_str(&apply.request_json).unwrap();
    assert_eq!(request["idempotency_key"], "key-1");
    assert_eq!(request["spec"]["name"], "audit");
    assert!(!apply.request_json.contains("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf"), "{}", apply.request_json);
    assert!(apply.request_json.contains("<redacted:"), "{}", apply.request_json);
    assert_eq!(all[1].operation_id, done.id);
    assert!(matches!(refused, Error::FailedPrecondition(_)), "{refused:?}");
    assert_ne!(all[1].outcome, "ok", "a refused call is audited with its error");

    // Filters and pages.
    let by = |r: proto::ListAuditEventsRequest| {
        let reader = reader.clone();
        async move { reader.list_audit_events(r).await.unwrap() }
    };
    let mine = by(proto::ListAuditEventsRequest { caller: "deployer-2".into(), ..Default::default() }).await;
    assert_eq!(mine.events.len(), 1);
    let of_op = by(proto::ListAuditEventsRequest { operation_id: done.id.clone(), ..Default::default() }).await;
    assert_eq!(of_op.events.iter().map(|e| e.method.as_str()).collect::<Vec<_>>(), ["CancelOperation", "ApplyAccess"]);
    let first = by(proto::ListAuditEventsRequest { page_size: 2, ..Default::default() }).await;
    assert_eq!(first.events.len(), 2);
    let rest =
        by(proto::ListAuditEventsRequest { page_size: 2, page_token: first.next_page_token, ..Default::default() })
            .await;
    assert_eq!(
        (rest.events.len(), rest.events[0].method.as_str(), rest.next_page_token.as_str()),
        (1, "ApplyAccess", "")
    );
    let future = prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 };
    assert!(
        by(proto::ListAuditEventsRequest { start_time: Some(future), ..Default::default() }).await.events.is_empty()
    );
    let bad = reader
        .list_audit_events(proto::ListAuditEventsRequest { page_token: "x".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad.violations()[0].field, "page_token");
    // By account: who changed access to it, through which request.
    let touched =
        by(proto::ListAuditEventsRequest { account_id: format!("{:012}", 200_000_000_000u64), ..Default::default() })
            .await;
    assert_eq!(
        touched.events.iter().map(|e| e.method.as_str()).collect::<Vec<_>>(),
        ["CancelOperation", "ApplyAccess"]
    );
    let untouched = by(proto::ListAuditEventsRequest { account_id: "999999999999".into(), ..Default::default() }).await;
    assert!(untouched.events.is_empty());
    let bad = reader
        .list_audit_events(proto::ListAuditEventsRequest { account_id: "12".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(bad.violations()[0].field, "account_id");
    h.server.stop().await.unwrap();
}
