//! crossroled attacked from outside, in-process: a read token hunting for the ExternalId in every response, the
//! journal's bytes and the logs at trace level; huge, malformed and unauthenticated requests; a second crossroled on
//! the same data directory; a damaged journal; a sequence number past what the journal can hold.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use common::*;
use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::proto;
use crossrole_proto::codec::Raw;
use crossrole_server::config::{Config, Flags};
use futures::StreamExt;
use prost::Message;
use tonic::{Code, Request, transport::Channel};

const EXTERNAL_ID: &str = "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf";
const WRONG_ID: &str = "Zz9yX8wV7uT6sR5qP4oN3mL2kJ1iHg";

/// Logs written by the server in this test process, at trace level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Captured {
    let captured = Captured::default();
    let writer = captured.clone();
    use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt};
    tracing_subscriber::registry()
        .with(crossrole_server::telemetry::cap())
        .with(crossrole_server::telemetry::filter(Some("trace,aws_smithy_runtime::client=trace")))
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone()))
        .init();
    captured
}

fn wrong_spec() -> proto::AccessSpec {
    let mut s = spec();
    s.role.as_mut().unwrap().trust.as_mut().unwrap().external_id = WRONG_ID.into();
    // The in-memory AWS refuses the wrong ExternalId, as AWS does; the live check need not wait for IAM long.
    s.rollout.as_mut().unwrap().verify =
        Some(proto::VerifyOptions { enabled: None, timeout: Some(prost_types::Duration { seconds: 1, nanos: 0 }) });
    s
}

/// Everything a token can read about the spec, its operations and its binding, as text.
async fn everything(h: &Harness, token: &str, op: &str) -> String {
    let c = h.client(token).await;
    let mut out = Vec::new();
    let mut note = |what: &str, text: String| out.push(format!("== {what}\n{text}"));
    note("describe", format!("{:?}", c.describe_organization(true).await));
    note("accounts", format!("{:?}", c.list_accounts(proto::ListAccountsRequest::default()).await));
    for (name, s) in [("right", spec()), ("wrong", wrong_spec())] {
        note(&format!("validate {name}"), format!("{:?}", c.validate(s.clone()).await));
        note(&format!("plan {name}"), format!("{:?}", c.plan(s.clone()).await));
        note(&format!("verify {name}"), format!("{:?}", c.verify(s.clone()).await));
        note(&format!("links {name}"), format!("{:?}", c.switch_role_links(s.clone()).await));
        let export = proto::ExportProfilesRequest {
            spec: Some(s.clone()),
            source_profile: "security".into(),
            ..Default::default()
        };
        let exported = c.export_profiles(export).await;
        // The one exception, documented: a token with reveal_external_ids gets it from ExportProfiles.
        note(&format!("export {name}"), format!("{:?}", exported.map(|p| p.content.replace(WRONG_ID, "<sent>"))));
    }
    note("operation", format!("{:?}", c.operation(op).await));
    note("operations", format!("{:?}", c.list_operations(proto::ListOperationsRequest::default()).await));
    note(
        "results",
        format!(
            "{:?}",
            c.list_account_results(proto::ListAccountResultsRequest { operation_id: op.into(), ..Default::default() })
                .await
        ),
    );
    let events: Vec<_> = c.operation_handle(op).events().collect().await;
    note("events", format!("{events:?}"));
    note("binding", format!("{:?}", c.binding("audit").await));
    note("bindings", format!("{:?}", c.list_bindings(proto::ListBindingsRequest::default()).await));
    note("audit", format!("{:?}", c.list_audit_events(proto::ListAuditEventsRequest::default()).await));
    out.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_external_id_never_leaves_crossroled() {
    let logs = capture_logs();
    let h = start(3, 0).await;
    let deployer = h.client("apply-token").await;
    let op = deployer.apply(spec(), None).await.unwrap();
    let done = op.wait().await.unwrap();
    assert_eq!(done.state, proto::OperationState::Succeeded as i32, "{}", done.message);
    let binding = proto::Binding { name: "audit".into(), spec: Some(spec()), ..Default::default() };
    deployer.create_binding(binding).await.unwrap();
    deployer.reconcile_binding("audit").await.unwrap().wait().await.unwrap();

    for token in ["read-token", "plan-token", "apply-token", "apply-token-2"] {
        let seen = everything(&h, token, op.id()).await;
        assert!(!seen.contains(EXTERNAL_ID), "{token} read the ExternalId:\n{}", around(&seen, EXTERNAL_ID));
        assert!(seen.contains("<redacted:"), "{token}: marks stand for it");
    }
    // The token meant for it gets it, from ExportProfiles only.
    let assumer = everything(&h, "assumer-token", op.id()).await;
    let hits: Vec<&str> = assumer.split("\n== ").filter(|s| s.contains(EXTERNAL_ID)).collect();
    assert!(!hits.is_empty() && hits.iter().all(|s| s.starts_with("export right")), "{hits:?}");

    // Not in the journal's bytes (sealed), nor in the logs at trace level.
    for entry in std::fs::read_dir(h.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!contains(&bytes, EXTERNAL_ID.as_bytes()), "{} holds the ExternalId", path.display());
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "the logs were captured at trace level");
    assert!(!logs.contains(EXTERNAL_ID), "{}", around(&logs, EXTERNAL_ID));
    assert!(!logs.contains('\u{1b}'), "no ANSI escapes when not writing to a terminal");
    h.server.stop().await.unwrap();
}

/// The redaction marks in `text`.
fn marks(text: &str) -> std::collections::BTreeSet<String> {
    text.split("<redacted:").skip(1).filter_map(|rest| rest.get(..8)).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_an_external_id_tells_a_caller_who_may_not_read_it_nothing() {
    let h = start(3, 0).await;
    let deployer = h.client("apply-token").await;
    let op = deployer.apply(spec(), None).await.unwrap();
    assert_eq!(op.wait().await.unwrap().state, proto::OperationState::Succeeded as i32);
    // The marks a read token is shown for the ExternalId crossroled holds.
    let reader = h.client("read-token").await;
    let results = reader
        .list_account_results(proto::ListAccountResultsRequest { operation_id: op.id().into(), ..Default::default() })
        .await
        .unwrap();
    let held = marks(&format!("{results:?}"));
    assert!(!held.is_empty(), "the created roles' trust policies carry marks: {results:?}");

    let verdict = |v: &proto::VerifyAccessResponse| {
        v.accounts
            .iter()
            .map(|a| {
                let checks: Vec<i32> = a.trust_checks.iter().map(|c| c.outcome).collect();
                (a.conformance, a.assume.as_ref().map(|c| c.outcome), checks, a.drift.len())
            })
            .collect::<Vec<_>>()
    };
    for token in ["read-token", "plan-token"] {
        let c = h.client(token).await;
        // The mark of what a caller sends matches no mark of what crossroled holds, nor itself in the next answer.
        for s in [spec(), wrong_spec()] {
            let first = marks(&c.validate(s.clone()).await.unwrap().trust_policy);
            let again = marks(&c.validate(s.clone()).await.unwrap().trust_policy);
            assert!(!first.is_empty() && first.is_disjoint(&held), "{token}: {first:?} against {held:?}");
            assert!(first.is_disjoint(&again), "{token}: a mark of a value sent is keyed for one answer");
        }
        // Plans and verifications answer the right ExternalId and a guess alike, and say why.
        let (right, wrong) = (c.verify(spec()).await.unwrap(), c.verify(wrong_spec()).await.unwrap());
        assert_eq!(verdict(&right), verdict(&wrong), "{token}: verify tells the guess apart");
        assert!(
            right
                .accounts
                .iter()
                .all(|a| a.assume.as_ref().is_some_and(|c| c.outcome == proto::CheckOutcome::Passed as i32))
        );
        assert!(wrong.external_id_note.contains("not compared"), "{:?}", wrong.external_id_note);
        if token == "plan-token" {
            let (right, wrong) = (c.plan(spec()).await.unwrap(), c.plan(wrong_spec()).await.unwrap());
            assert_eq!((right.total_changes, wrong.total_changes), (0, 0), "{wrong:?}");
            assert!(wrong.external_id_note.contains("not compared"));
            // Not even through an inline policy that names the guess.
            let mut named = wrong_spec();
            named.role.as_mut().unwrap().inline_policies.insert(
                "names-it".into(),
                format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":"s3:*","Resource":"*","Condition":{{"StringEquals":{{"sts:ExternalId":"{WRONG_ID}"}}}}}}]}}"#),
            );
            let shown = marks(&format!("{:?}", c.plan(named).await.unwrap()));
            assert!(!shown.is_empty() && shown.is_disjoint(&held), "{shown:?}");
        }
    }
    // A role in rotation, accepting two ExternalIds (neither of them the guess): still answered alike.
    let rotated = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SECURITY}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":["Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf","Yy8xW7vU6tS5rQ4pO3nM2lK1jI0h"]}}}}}}]}}"#
    );
    let first = results.results[0].account_id.clone();
    h.fake.with_account(&first, |a| a.set_trust_by_hand("Audit", &rotated));
    let c = h.client("plan-token").await;
    let (right, wrong) = (c.verify(spec()).await.unwrap(), c.verify(wrong_spec()).await.unwrap());
    assert_eq!(verdict(&right), verdict(&wrong), "a role with two ExternalIds tells the guess apart");
    let (right, wrong) = (c.plan(spec()).await.unwrap(), c.plan(wrong_spec()).await.unwrap());
    assert_eq!(right.total_changes, wrong.total_changes);
    let shown = marks(&format!("{wrong:?}"));
    assert!(shown.is_disjoint(&held), "{shown:?}");
    // And an apply's audit entry marks what was sent for that entry alone.
    let audit = format!("{:?}", reader.list_audit_events(proto::ListAuditEventsRequest::default()).await.unwrap());
    assert!(marks(&audit).is_disjoint(&held), "the audit log's marks can be compared with the operations'");

    // A caller who may read ExternalIds gets the comparison: a wrong one is a change of the trust policy.
    let trusted = h.client("plan-reveal-token").await;
    let plan = trusted.plan(wrong_spec()).await.unwrap();
    assert!(plan.external_id_note.is_empty());
    assert!(
        plan.accounts.iter().all(|a| a.changes.iter().any(|c| c.kind == proto::ChangeKind::UpdateTrustPolicy as i32))
    );
    let right = trusted.plan(spec()).await.unwrap();
    let changed: Vec<&str> =
        right.accounts.iter().filter(|a| !a.changes.is_empty()).map(|a| a.account_id.as_str()).collect();
    assert_eq!(changed, [first.as_str()], "only the role in rotation differs from the spec");
    // A guardrail's finding says an ExternalId is weak, never how long it is.
    let mut weak = spec();
    weak.role.as_mut().unwrap().trust.as_mut().unwrap().external_id = "Ab3dE6g9".into();
    let findings = format!("{:?}", reader.validate(weak).await.unwrap().findings);
    assert!(findings.contains("shorter than 16") && !findings.contains(" 8 "), "{findings}");
    h.server.stop().await.unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn around(text: &str, needle: &str) -> String {
    match text.find(needle) {
        Some(i) => text[i.saturating_sub(300)..(i + 100).min(text.len())].to_string(),
        None => String::new(),
    }
}

async fn raw_call(h: &Harness, token: Option<&str>, method: &'static str, body: Bytes) -> tonic::Status {
    let channel = Channel::from_shared(format!("http://{}", h.server.addr)).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    let mut request = Request::new(body);
    if let Some(t) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match grpc.unary(request, http::uri::PathAndQuery::from_static(method), Raw).await {
        Ok(_) => tonic::Status::ok(""),
        Err(s) => s,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_apply_before_work() {
    let h = start(2, 0).await;
    let huge = Bytes::from(vec![0x0a; 60 * 1024 * 1024]);
    // Without a token: refused on the headers, the body never read.
    let s = raw_call(&h, None, "/crossrole.v1.AccessService/ValidateSpec", huge.clone()).await;
    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
    // With a token but too large: refused on the length prefix, never decoded.
    let s = raw_call(&h, Some("read-token"), "/crossrole.v1.AccessService/ValidateSpec", huge).await;
    assert_eq!(s.code(), Code::OutOfRange, "{s:?}");
    assert!(s.message().contains("limit is: 4194304"), "{}", s.message());
    // Not protobuf at all: the caller's error, not the server's.
    let garbage = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    let s = raw_call(&h, Some("read-token"), "/crossrole.v1.AccessService/ValidateSpec", garbage).await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    // A read token cannot reach an apply, whatever it sends.
    let s = raw_call(&h, Some("read-token"), "/crossrole.v1.AccessService/ApplyAccess", Bytes::new()).await;
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");
    // A well-formed request still works through the same path.
    let ok = proto::DescribeOrganizationRequest { refresh: false }.encode_to_vec();
    let s = raw_call(&h, Some("read-token"), "/crossrole.v1.OrganizationService/DescribeOrganization", ok.into()).await;
    assert_eq!(s.code(), Code::Ok, "{s:?}");
    h.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_numbers_past_the_journal_and_keys_of_other_callers() {
    let h = start(2, 0).await;
    let c = h.client("apply-token").await;
    let op = c.apply(spec(), Some("deploy-7".into())).await.unwrap();
    op.wait().await.unwrap();
    let e = c.watch(op.id(), 1u64 << 63).await.err().unwrap();
    assert_eq!(e.violations()[0].field, "after_sequence", "{e}");
    // Another caller's identical key is another operation, not a view of this one.
    let other = h.client("apply-token-2").await.apply(spec(), Some("deploy-7".into())).await.unwrap();
    assert_ne!(other.id(), op.id());
    other.wait().await.unwrap();
    h.server.stop().await.unwrap();
}

fn config_in(dir: &std::path::Path) -> Config {
    Config::from_toml(&format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n", dir.display()), &Flags::default())
        .unwrap()
}

fn fake() -> Arc<FakeAws> {
    Arc::new(FakeAws::new(tree(1), FakeConfig::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_crossroled_per_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let first = crossrole_server::start(&config, fake()).await.unwrap();
    let e = format!("{:#}", crossrole_server::start(&config, fake()).await.err().unwrap());
    assert!(e.contains("is in use by crossroled pid"), "{e}");
    assert!(e.contains(&std::process::id().to_string()), "{e}");
    first.stop().await.unwrap();
    // Released at stop: a restart works.
    crossrole_server::start(&config, fake()).await.unwrap().stop().await.unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o700);
        assert_eq!(mode(&dir.path().join("journal.db")), 0o600);
        assert_eq!(mode(&dir.path().join("journal.key")), 0o600);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_or_a_wrong_key_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("journal.db"), b"").unwrap();
    let e = format!("{:#}", crossrole_server::start(&config_in(dir.path()), fake()).await.err().unwrap());
    assert!(e.contains("is damaged: the file is empty (0 bytes)"), "{e}");
    assert!(e.contains("move it away to start with an empty journal"), "{e}");

    // A journal that holds records, started with another key or with none: the start stops, saying what is
    // wrong and what to do, and nothing is written — no new key, not a byte of the journal.
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let server = crossrole_server::start(&config, fake()).await.unwrap();
    let op = server.engine.start(apply_request()).await.unwrap();
    let finished = server.engine.wait(&op.id).await.unwrap();
    server.stop().await.unwrap();
    let key_file = dir.path().join("journal.key");
    let right_key = std::fs::read_to_string(&key_file).unwrap();
    let journal = journal_files(dir.path());

    std::fs::write(&key_file, "0".repeat(64)).unwrap();
    let e = format!("{:#}", crossrole_server::start(&config, fake()).await.err().unwrap());
    assert!(e.contains("is written under another journal key than the one crossroled has"), "{e}");
    assert!(e.contains(&format!("the data directory's key {}", key_file.display())), "{e}");
    assert!(e.contains("journal_key_file") && e.contains("CROSSROLE_JOURNAL_KEY"), "{e}");
    assert!(e.contains("move the journal away"), "{e}");
    assert_eq!(journal_files(dir.path()), journal, "nothing written");
    // Another key from the environment: the message names where it came from.
    let flags = Flags { journal_key: Some("ab".repeat(32)), ..Flags::default() };
    let from_env =
        Config::from_toml(&format!("listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n", dir.path().display()), &flags)
            .unwrap();
    let e = format!("{:#}", crossrole_server::start(&from_env, fake()).await.err().unwrap());
    assert!(e.contains("(CROSSROLE_JOURNAL_KEY)"), "{e}");

    std::fs::remove_file(&key_file).unwrap();
    let e = format!("{:#}", crossrole_server::start(&config, fake()).await.err().unwrap());
    assert!(e.contains("holds records written under a journal key, and crossroled has none"), "{e}");
    assert!(e.contains(&format!("Put the journal's key back at {}", key_file.display())), "{e}");
    assert!(!key_file.exists(), "no new key made for a journal that has one");
    assert_eq!(journal_files(dir.path()), journal, "nothing written");

    // The right key back: it starts, and the journal reads as it did.
    std::fs::write(&key_file, right_key).unwrap();
    let server = crossrole_server::start(&config, fake()).await.unwrap();
    assert_eq!(server.engine.operation(&op.id).await.unwrap(), finished);
    server.stop().await.unwrap();

    // A brand-new journal still gets a key of its own in the data directory.
    let dir = tempfile::tempdir().unwrap();
    crossrole_server::start(&config_in(dir.path()), fake()).await.unwrap().stop().await.unwrap();
    assert!(dir.path().join("journal.key").exists());
}

/// An apply of the test spec, started on the engine.
fn apply_request() -> crossrole_engine::StartRequest {
    let spec = crossrole_wire::spec(Some(&spec())).unwrap();
    crossrole_engine::StartRequest::new(crossrole_core::ops::OperationKind::Apply, spec, "test")
}

/// The journal's files, byte for byte (SQLite's write-ahead log included).
fn journal_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("journal.db"))
        .map(|name| (name.clone(), std::fs::read(dir.join(&name)).unwrap()))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_from_before_the_key_check_is_judged_by_what_it_sealed() {
    // A journal whose records were written before journals kept a check of their key: an operation whose spec
    // holds a sealed ExternalId.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("journal.key");
    let right = "5a".repeat(32);
    std::fs::write(&key_file, &right).unwrap();
    let key = crossrole_store::JournalKey::read(&key_file).unwrap();
    let id = "01900000-0000-7000-8000-00000000000a";
    let mut raw = crossrole_core::spec::RawSpec::from(&crossrole_wire::spec(Some(&spec())).unwrap());
    let trust = raw.role.as_mut().unwrap().trust.as_mut().unwrap();
    trust.external_id = key.seal(EXTERNAL_ID, id).unwrap();
    let journal = crossrole_store::SqliteJournal::open(&dir.path().join("journal.db")).unwrap();
    let op = crossrole_store::NewOperation {
        id: id.into(),
        kind: crossrole_store::StoredKind::Apply,
        spec_name: "audit".into(),
        spec: crossrole_engine::records::encode_operation_spec(&raw, None),
        idempotency_key: None,
        request_fingerprint: "f".into(),
        binding_name: None,
        created_by: "test".into(),
        create_time: 1,
        state: crossrole_store::StoredState::Succeeded,
        dry_run: false,
    };
    crossrole_store::Journal::create_operation(&journal, op).await.unwrap();
    drop(journal);

    let config = config_in(dir.path());
    std::fs::write(&key_file, "1".repeat(64)).unwrap();
    let e = format!("{:#}", crossrole_server::start(&config, fake()).await.err().unwrap());
    assert!(e.contains("is written under another journal key"), "{e}");
    // With its key, it starts, and from then on the journal knows its key without opening anything.
    std::fs::write(&key_file, right).unwrap();
    crossrole_server::start(&config, fake()).await.unwrap().stop().await.unwrap();
    let journal = crossrole_store::SqliteJournal::open(&dir.path().join("journal.db")).unwrap();
    let evidence = crossrole_store::Journal::key_evidence(&journal).await.unwrap();
    assert_eq!(evidence.check, Some(key.check()));
}

#[test]
fn a_new_token_prints_a_configuration_that_loads() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crossroled"))
        .args(["token", "new", "--name", "people", "--scope", "read", "--reveal-external-ids"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let entry = &text[text.find("[[tokens]]").unwrap()..];
    let config = Config::from_toml(entry, &Flags::default()).unwrap();
    assert_eq!(config.tokens[0].name, "people");
    assert!(config.tokens[0].reveal_external_ids);
    let bogus = std::process::Command::new(env!("CARGO_BIN_EXE_crossroled"))
        .args(["token", "new", "--name", "x", "--scope", "bogus"])
        .output()
        .unwrap();
    assert!(!bogus.status.success());
    assert!(String::from_utf8_lossy(&bogus.stderr).contains("possible values: read, plan, apply, admin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ceiling_names_the_fields_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml(
        &format!(
            r#"listen = "127.0.0.1:0"
data_dir = "{}"
[[tokens]]
name = "deployer"
sha256 = "{}"
scope = "apply"
[ceiling]
permissions_boundary = "arn:${{partition}}:iam::${{account_id}}:policy/crossrole-ceiling/CrossroleCeiling"
allowed_managed_policies = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
allowed_trusted_accounts = ["{SECURITY}"]
"#,
            dir.path().display(),
            crossrole_server::auth::hash_token("t")
        ),
        &Flags::default(),
    )
    .unwrap();
    let server = crossrole_server::start(&config, fake()).await.unwrap();
    let c = crossrole_client::Client::builder()
        .endpoint(format!("http://{}", server.addr))
        .token("t")
        .connect()
        .await
        .unwrap();
    // The harness spec attaches SecurityAudit, which this ceiling does not allow; ask for another boundary too.
    let mut s = spec();
    s.role.as_mut().unwrap().permissions_boundary_arn = "arn:aws:iam::aws:policy/PowerUserAccess".into();
    for e in [c.validate(s.clone()).await.unwrap_err(), c.apply(s.clone(), None).await.err().unwrap()] {
        let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["spec.role.permissions_boundary_arn", "spec.role.managed_policy_arns[0]"], "{e}");
    }
    server.stop().await.unwrap();
}
