//! A journal written before crossrole's own records (its payloads the v1 API's protobuf messages) is upgraded once
//! when crossroled starts, and reads the same through the API afterwards; one that cannot be upgraded stops the
//! start and is left as it was.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::*;
use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::{Client, proto};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
};
use crossrole_store::{
    AccountRow, Batch, BindingRow, EventRow, Journal, JournalKey, NewOperation, PayloadFormat, SqliteJournal,
    StoredKind, StoredOutcome, StoredState,
};
use futures::StreamExt;
use prost::Message;

const OP: &str = "0190a1b2-0000-7000-8000-0000000000aa";
const EXTERNAL_ID: &str = "Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf";

fn account(i: u64) -> String {
    format!("{:012}", 200_000_000_000 + i)
}

fn config(dir: &std::path::Path) -> Config {
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[[tokens]]\nname = \"reader\"\nsha256 = \"{}\"\nscope = \"read\"\n",
        dir.display(),
        hash_token("read-token")
    );
    Config::from_toml(&text, &Flags::default()).unwrap()
}

fn ts(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// The journal as crossroled 0.1 left it: a finished apply over two accounts (one changed, one skipped as the
/// first journals recorded skips: no action, the reason only as text), its events, and a DETECT binding.
async fn old_journal(dir: &std::path::Path) -> (proto::AccessSpec, Vec<proto::OperationEvent>) {
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let (key, _) = JournalKey::read_or_create(&dir.join("journal.key")).unwrap();
    let journal = SqliteJournal::open(&dir.join("journal.db")).unwrap();
    journal.rewrite_payloads(Box::new(|_, b| Ok(b.to_vec())), PayloadFormat::Protobuf).await.unwrap();

    let shown = spec();
    let mut stored = shown.clone();
    let trust = stored.role.as_mut().unwrap().trust.as_mut().unwrap();
    trust.external_id = key.seal(EXTERNAL_ID, OP).unwrap();
    journal
        .create_operation(NewOperation {
            id: OP.into(),
            kind: StoredKind::from_code(proto::OperationKind::Apply as i32),
            spec_name: shown.name.clone(),
            spec: stored.encode_to_vec(),
            idempotency_key: Some("k".into()),
            request_fingerprint: "f".into(),
            binding_name: None,
            created_by: "deployer".into(),
            create_time: 1_700_000_000_000,
            state: StoredState::from_code(proto::OperationState::Succeeded as i32),
            dry_run: false,
        })
        .await
        .unwrap();
    let changed = proto::AccountResult {
        account_id: account(1),
        account_name: "acct-1".into(),
        index: 0,
        outcome: proto::AccountOutcome::Changed as i32,
        phase: proto::AccountPhase::Done as i32,
        role_arn: format!("arn:aws:iam::{}:role/Audit", account(1)),
        changes: vec![proto::Change {
            kind: proto::ChangeKind::CreateRole as i32,
            subject: String::new(),
            before: String::new(),
            after: "Audit".into(),
        }],
        verify: Some(proto::AssumeCheckSummary {
            passed: true,
            assumed_account_id: account(1),
            attempts: 2,
            error: String::new(),
        }),
        end_time: ts(1_700_000_005),
        action: proto::AccountAction::Ensure as i32,
        ..Default::default()
    };
    let skipped = proto::AccountResult {
        account_id: account(2),
        index: 1,
        outcome: proto::AccountOutcome::Skipped as i32,
        phase: proto::AccountPhase::Done as i32,
        error: Some(proto::AccountError {
            code: "account_not_active".into(),
            message: "account is SUSPENDED".into(),
            phase: proto::AccountPhase::Queued as i32,
            ..Default::default()
        }),
        ..Default::default()
    };
    use proto::operation_event::Event;
    let events = vec![
        proto::OperationEvent {
            sequence: 1,
            time: ts(1_700_000_001),
            account_id: String::new(),
            event: Some(Event::TargetsResolved(proto::TargetsResolved {
                target_count: 1,
                skipped_count: 1,
                cleanup_count: 0,
            })),
        },
        proto::OperationEvent {
            sequence: 2,
            time: ts(1_700_000_005),
            account_id: account(1),
            event: Some(Event::AccountFinished(proto::AccountFinished { result: Some(changed.clone()) })),
        },
        proto::OperationEvent {
            sequence: 3,
            time: ts(1_700_000_006),
            account_id: String::new(),
            event: Some(Event::StateChanged(proto::OperationStateChanged {
                state: proto::OperationState::Succeeded as i32,
                message: String::new(),
                counts: Some(proto::OperationCounts { total: 2, changed: 1, skipped: 1, ..Default::default() }),
            })),
        },
    ];
    let row = |r: &proto::AccountResult| AccountRow {
        index: r.index,
        account_id: r.account_id.clone(),
        outcome: StoredOutcome::from_code(r.outcome),
        result: r.encode_to_vec(),
    };
    journal
        .persist(
            OP,
            Batch {
                rows: vec![row(&changed), row(&skipped)],
                events: events.iter().map(|e| EventRow { sequence: e.sequence, payload: e.encode_to_vec() }).collect(),
                ..Batch::default()
            },
        )
        .await
        .unwrap();

    let mut binding_spec = shown.clone();
    let trust = binding_spec.role.as_mut().unwrap().trust.as_mut().unwrap();
    trust.external_id = key.seal(EXTERNAL_ID, &format!("binding:{}", shown.name)).unwrap();
    let binding = proto::Binding {
        name: shown.name.clone(),
        spec: Some(binding_spec),
        mode: proto::BindingMode::Detect as i32,
        reconcile_interval: Some(prost_types::Duration { seconds: 600, nanos: 0 }),
        ..Default::default()
    };
    // Not due: reconciled at version 1, next in a year, so the status read back is the one written here.
    let status = proto::BindingStatus {
        last_reconcile_time: ts(1_700_000_000),
        last_operation_id: OP.into(),
        next_reconcile_time: ts(4_000_000_000),
        in_sync: 1,
        reconciled_version: 1,
        accounts: vec![proto::BindingAccountStatus {
            account_id: account(1),
            account_name: "acct-1".into(),
            state: proto::SyncState::InSync as i32,
            last_reconcile_time: ts(1_700_000_000),
            ..Default::default()
        }],
        ..Default::default()
    };
    let row = BindingRow {
        name: shown.name.clone(),
        version: 1,
        binding: binding.encode_to_vec(),
        status: Vec::new(),
        create_time: 1_600_000_000_000,
        update_time: 1_600_000_000_000,
    };
    journal.create_binding(row).await.unwrap();
    journal.set_binding_status(&shown.name, status.encode_to_vec()).await.unwrap();
    (shown, events)
}

fn fake() -> Arc<FakeAws> {
    Arc::new(FakeAws::new(tree(3), FakeConfig::default()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_journal_is_upgraded_once_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (shown, events) = old_journal(dir.path()).await;
    let server = crossrole_server::start(&config(dir.path()), fake()).await.unwrap();
    let mark = server.engine.redactor().mark(EXTERNAL_ID);
    let c = Client::builder().endpoint(format!("http://{}", server.addr)).token("read-token").connect().await.unwrap();

    let op = c.operation(OP).await.unwrap();
    assert_eq!((op.kind, op.state), (proto::OperationKind::Apply as i32, proto::OperationState::Succeeded as i32));
    let mut expected = shown.clone();
    expected.role.as_mut().unwrap().trust.as_mut().unwrap().external_id = mark.clone();
    assert_eq!(op.spec.unwrap(), expected, "the sealed ExternalId moved as it was and still opens");
    let counts = op.counts.unwrap();
    assert_eq!((counts.total, counts.changed, counts.skipped), (2, 1, 1));

    let results = c
        .list_account_results(proto::ListAccountResultsRequest { operation_id: OP.into(), ..Default::default() })
        .await
        .unwrap()
        .results;
    let finished = match &events[1].event {
        Some(proto::operation_event::Event::AccountFinished(f)) => f.result.clone().unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(results[0], finished);
    let error = results[1].error.clone().unwrap();
    assert_eq!(
        (error.code.as_str(), error.reason, results[1].action),
        (
            "account_not_active",
            proto::AccountErrorReason::AccountNotActive as i32,
            proto::AccountAction::Unspecified as i32
        )
    );

    let replayed: Vec<proto::OperationEvent> =
        c.watch(OP, 0).await.unwrap().map(|r| r.unwrap().event.unwrap()).collect().await;
    assert_eq!(replayed, events, "every event reads back as it was written");

    let b = c.binding(&shown.name).await.unwrap();
    assert_eq!((b.mode, b.reconcile_interval.unwrap().seconds), (proto::BindingMode::Detect as i32, 600));
    assert_eq!(b.spec.unwrap().role.unwrap().trust.unwrap().external_id, mark);
    let status = b.status.unwrap();
    assert_eq!((status.in_sync, status.reconciled_version, status.accounts.len()), (1, 1, 1));
    assert_eq!(status.next_reconcile_time, ts(4_000_000_000));
    server.stop().await.unwrap();

    let journal = SqliteJournal::open(&dir.path().join("journal.db")).unwrap();
    assert_eq!(journal.payload_format().await.unwrap(), PayloadFormat::Records);
    drop(journal);
    // A second start finds nothing to upgrade and reads the same.
    let server = crossrole_server::start(&config(dir.path()), fake()).await.unwrap();
    let op = server.engine.operation(OP).await.unwrap();
    assert_eq!(op.counts.changed, 1);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_that_cannot_be_upgraded_stops_the_start_and_is_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    old_journal(dir.path()).await;
    let journal = SqliteJournal::open(&dir.path().join("journal.db")).unwrap();
    journal
        .persist(OP, Batch { events: vec![EventRow { sequence: 4, payload: vec![0xff, 0xff] }], ..Batch::default() })
        .await
        .unwrap();
    drop(journal);
    let e = format!("{:#}", crossrole_server::start(&config(dir.path()), fake()).await.err().unwrap());
    assert!(e.contains("cannot upgrade the journal"), "{e}");
    assert!(e.contains("events.payload (operation_id=\"0190a1b2-0000-7000-8000-0000000000aa\", sequence=4)"), "{e}");
    assert!(e.contains("nothing was changed"), "{e}");
    let journal = SqliteJournal::open(&dir.path().join("journal.db")).unwrap();
    assert_eq!(journal.payload_format().await.unwrap(), PayloadFormat::Protobuf);
    let spec = journal.get_operation(OP).await.unwrap().unwrap().spec;
    assert!(proto::AccessSpec::decode(spec.as_slice()).is_ok(), "the spec is still the old message");
}
