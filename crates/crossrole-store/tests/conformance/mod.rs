//! The journal's conformance suite: what every backend must do, written once and run against each
//! (`tests/sqlite.rs`, `tests/postgres.rs`) through [`conformance!`].

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)] // test helpers outside #[test] fns

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use crossrole_store::{
    AccessEndRow, AccountRow, Batch, BindingRow, Discovered, EventRow, Expiry, Journal, NewOperation, OperationEnd,
    OperationFilter, OperationStats, PayloadFormat, PayloadKind, Rewrite, SavedTree, StateChange, StoreError,
    StoredKind, StoredOutcome, StoredState,
};
use crossrole_store::{JournalKey, KeyEvidence};

pub type J = Arc<dyn Journal>;

pub fn new_op(id: &str, key: Option<&str>, fingerprint: &str) -> NewOperation {
    NewOperation {
        id: id.into(),
        kind: StoredKind::Apply,
        spec_name: "audit".into(),
        spec: vec![1, 2, 3],
        idempotency_key: key.map(String::from),
        request_fingerprint: fingerprint.into(),
        binding_name: None,
        created_by: "ci".into(),
        create_time: 1000,
        state: StoredState::Pending,
        dry_run: false,
    }
}

/// Declares one test per conformance case, each on a fresh journal from `$fresh` (an async expression).
#[macro_export]
macro_rules! conformance {
    ($fresh:expr) => {
        conformance!(@cases $fresh;
            operations_idempotency_and_paging,
            idempotency_keys_belong_to_their_caller,
            one_key_used_at_once_creates_one_operation,
            accounts_events_and_placements,
            a_batch_is_written_whole_or_not_at_all,
            bindings_are_versioned,
            what_discovery_read_is_kept_and_replaced,
            a_rewrite_reaches_every_payload_in_one_transaction,
            a_payload_that_cannot_be_rewritten_changes_nothing_and_is_named,
            a_new_journal_holds_records,
            retention_deletes_what_it_selects_and_nothing_else,
            the_audit_log_is_read_by_filter_page_by_page_and_expires,
            codes_this_crossroled_does_not_know_are_kept,
            a_state_moves_only_from_the_state_its_caller_saw,
            a_cancel_racing_the_end_never_changes_a_finished_operation,
            a_binding_reconciles_once_at_a_time_however_many_start_it,
            accounts_wait_for_their_bindings_reconcile_and_are_retried_a_few_times,
            the_journal_knows_the_key_it_is_written_under,
            an_access_end_is_replaced_by_the_next_and_acted_on_once,
            members_seen_keep_their_first_sighting_and_are_never_forgotten,
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let journal: conformance::J = $fresh.await;
                conformance::$case(journal).await;
            }
        )*
    };
}

pub async fn operations_idempotency_and_paging(j: J) {
    let (a, created) = j.create_operation(new_op("a", Some("k1"), "f1")).await.unwrap();
    assert!(created);
    let (again, created) = j.create_operation(new_op("b", Some("k1"), "f1")).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, a.id);
    assert!(matches!(j.create_operation(new_op("c", Some("k1"), "f2")).await, Err(StoreError::IdempotencyConflict(_))));
    for i in 0..5 {
        j.create_operation(new_op(&format!("op{i}"), None, "f")).await.unwrap();
    }
    let done = StateChange::new(&[StoredState::Pending], StoredState::Succeeded, "done").started(5).ended(9);
    assert!(j.change_state("op3", done).await.unwrap());
    let (page1, next) = j.list_operations(&OperationFilter::default(), 4, None).await.unwrap();
    assert_eq!(page1.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["op4", "op3", "op2", "op1"]);
    let (page2, end) = j.list_operations(&OperationFilter::default(), 4, next).await.unwrap();
    assert_eq!(page2.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["op0", "a"]);
    assert_eq!(end, None);
    let (done, _) = j
        .list_operations(&OperationFilter { states: vec![StoredState::Succeeded], ..Default::default() }, 10, None)
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].start_time, done[0].end_time, done[0].message.as_str()), (Some(5), Some(9), "done"));
    let (by_spec, _) = j
        .list_operations(&OperationFilter { spec_name: "other".into(), ..Default::default() }, 10, None)
        .await
        .unwrap();
    assert!(by_spec.is_empty());
    let unfinished = j.unfinished_operations().await.unwrap();
    assert_eq!(unfinished.len(), 5);
    assert_eq!(j.get_operation("a").await.unwrap().unwrap().spec, vec![1, 2, 3]);
    assert!(j.get_operation("nope").await.unwrap().is_none());
}

pub async fn idempotency_keys_belong_to_their_caller(j: J) {
    let (a, _) = j.create_operation(new_op("a", Some("k"), "f1")).await.unwrap();
    let other = NewOperation { created_by: "someone-else".into(), ..new_op("b", Some("k"), "f2") };
    let (b, created) = j.create_operation(other).await.unwrap();
    assert!(created, "another caller's key is not this caller's");
    assert_ne!(a.id, b.id);
}

pub async fn one_key_used_at_once_creates_one_operation(j: J) {
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let j = j.clone();
            tokio::spawn(async move { j.create_operation(new_op(&format!("op{i}"), Some("same"), "f")).await })
        })
        .collect();
    let mut ids = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (row, new) = t.await.unwrap().unwrap();
        created += usize::from(new);
        ids.push(row.id);
    }
    ids.dedup();
    assert_eq!((created, ids.len()), (1, 1), "one operation, and every caller got it");
}

pub async fn accounts_events_and_placements(j: J) {
    j.create_operation(new_op("a", None, "f")).await.unwrap();
    let rows = (0..5).map(|i| AccountRow {
        index: i,
        account_id: format!("{i:012}"),
        outcome: StoredOutcome::Pending,
        result: vec![],
    });
    j.put_accounts("a", rows.collect()).await.unwrap();
    let changed =
        AccountRow { index: 2, account_id: "000000000002".into(), outcome: StoredOutcome::Changed, result: vec![9] };
    j.put_accounts("a", vec![changed]).await.unwrap();
    let events = Batch {
        events: (1..=10).map(|s| EventRow { sequence: s, payload: vec![s as u8] }).collect(),
        ..Batch::default()
    };
    j.persist("a", events).await.unwrap();
    j.set_placement("audit", "222233334444", true).await.unwrap();
    j.set_placement("audit", "111122223333", true).await.unwrap();
    j.set_placement("audit", "111122223333", true).await.unwrap();
    j.set_placement("audit", "222233334444", false).await.unwrap();
    let stats = OperationStats { aws_calls: [("iam:CreateRole".to_string(), 5u64)].into(), throttled: 2 };
    j.persist("a", Batch { stats: Some(stats), ..Batch::default() }).await.unwrap();

    assert_eq!(
        j.count_accounts("a").await.unwrap(),
        BTreeMap::from([(StoredOutcome::Pending, 4), (StoredOutcome::Changed, 1)])
    );
    let changed = j.list_accounts("a", &[StoredOutcome::Changed], 10, None).await.unwrap();
    assert_eq!(changed[0].result, vec![9]);
    let page = j.list_accounts("a", &[], 2, Some(1)).await.unwrap();
    assert_eq!(page.iter().map(|r| r.index).collect::<Vec<_>>(), [2, 3]);
    let first = j.list_accounts("a", &[], 1, None).await.unwrap();
    assert_eq!(first[0].index, 0);
    let events = j.read_events("a", 7, 100).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [8, 9, 10]);
    assert_eq!(events[2].payload, vec![10]);
    assert_eq!(j.read_events("a", 0, 3).await.unwrap().len(), 3);
    assert_eq!(j.placements("audit").await.unwrap(), ["111122223333"]);
    assert!(j.placed("audit", "111122223333").await.unwrap());
    assert!(!j.placed("audit", "222233334444").await.unwrap(), "forgotten");
    assert!(!j.placed("other", "111122223333").await.unwrap(), "another spec's");
    let op = j.get_operation("a").await.unwrap().unwrap();
    assert_eq!((op.last_sequence, op.throttled_calls, op.aws_calls.get("iam:CreateRole")), (10, 2, Some(&5)));
}

pub async fn a_batch_is_written_whole_or_not_at_all(j: J) {
    j.create_operation(new_op("a", None, "f")).await.unwrap();
    let batch = |seqs: &[u64], row: u32| Batch {
        rows: vec![AccountRow {
            index: row,
            account_id: format!("{row}"),
            outcome: StoredOutcome::Pending,
            result: vec![],
        }],
        events: seqs.iter().map(|s| EventRow { sequence: *s, payload: vec![] }).collect(),
        ..Batch::default()
    };
    j.persist("a", batch(&[1, 2], 0)).await.unwrap();
    // A sequence number used twice is an error, and the batch it came in is not half-written.
    let mut again = batch(&[3, 2], 1);
    again.end = Some(crossrole_store::OperationEnd { state: StoredState::Succeeded, message: "x".into(), end_time: 5 });
    assert!(j.persist("a", again).await.is_err());
    assert_eq!(
        j.count_accounts("a").await.unwrap(),
        BTreeMap::from([(StoredOutcome::Pending, 1)]),
        "no row of the failed batch"
    );
    assert!(j.read_events("a", 2, 10).await.unwrap().is_empty(), "no event of the failed batch");
    let op = j.get_operation("a").await.unwrap().unwrap();
    assert_eq!((op.state, op.last_sequence), (StoredState::Pending, 2), "nor its end");
    // The end goes with its last event.
    let mut last = batch(&[3], 1);
    last.end =
        Some(crossrole_store::OperationEnd { state: StoredState::Succeeded, message: "done".into(), end_time: 7 });
    j.persist("a", last).await.unwrap();
    let op = j.get_operation("a").await.unwrap().unwrap();
    assert_eq!(
        (op.state, op.message.as_str(), op.end_time, op.last_sequence),
        (StoredState::Succeeded, "done", Some(7), 3)
    );
}

pub async fn bindings_are_versioned(j: J) {
    let row =
        BindingRow { name: "b".into(), version: 1, binding: vec![1], status: vec![], create_time: 1, update_time: 1 };
    assert!(j.create_binding(row.clone()).await.unwrap());
    assert!(!j.create_binding(row).await.unwrap());
    let v2 = j.update_binding("b", vec![2], Some(1), 5).await.unwrap().unwrap();
    assert_eq!((v2.version, v2.binding, v2.update_time), (2, vec![2], 5));
    assert!(matches!(
        j.update_binding("b", vec![3], Some(1), 6).await,
        Err(StoreError::VersionMismatch { actual: 2, .. })
    ));
    assert!(j.update_binding("nope", vec![3], None, 6).await.unwrap().is_none());
    j.set_binding_status("b", vec![7]).await.unwrap();
    assert_eq!(j.get_binding("b").await.unwrap().unwrap().status, vec![7]);
    let c =
        BindingRow { name: "c".into(), version: 1, binding: vec![], status: vec![], create_time: 1, update_time: 1 };
    j.create_binding(c).await.unwrap();
    let names = |rows: Vec<BindingRow>| rows.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(names(j.list_bindings(10, None).await.unwrap()), ["b", "c"]);
    assert_eq!(names(j.list_bindings(10, Some("b")).await.unwrap()), ["c"]);
    assert!(j.delete_binding("b").await.unwrap());
    assert!(!j.delete_binding("b").await.unwrap());
    assert!(j.get_binding("b").await.unwrap().is_none());
}

pub async fn what_discovery_read_is_kept_and_replaced(j: J) {
    assert_eq!(j.organization_tree(0).await.unwrap(), None);
    let d = |at: i64, p: &[u8]| Discovered { fetched_at_ms: at, payload: p.to_vec() };
    assert_eq!(j.save_organization_tree(d(1, b"old")).await.unwrap(), 1);
    assert_eq!(j.save_organization_tree(d(2, b"new")).await.unwrap(), 2, "one more at every save");
    // A tree saved again as it was walked (events patched it) is a newer revision all the same.
    assert_eq!(j.save_organization_tree(d(2, b"newer")).await.unwrap(), 3);
    assert_eq!(j.organization_tree(0).await.unwrap(), Some(SavedTree { revision: 3, tree: d(2, b"newer") }));
    assert_eq!(j.organization_tree(2).await.unwrap().map(|t| t.revision), Some(3), "newer than 2");
    assert_eq!(j.organization_tree(3).await.unwrap(), None, "nothing newer than what the caller has");
    j.save_account_tags(vec![("1".into(), d(1, b"a")), ("2".into(), d(1, b"b"))]).await.unwrap();
    j.save_account_tags(vec![("2".into(), d(3, b"c"))]).await.unwrap();
    j.save_account_tags(Vec::new()).await.unwrap();
    let mut tags = j.account_tags().await.unwrap();
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(tags, vec![("1".into(), d(1, b"a")), ("2".into(), d(3, b"c"))]);
}

pub async fn members_seen_keep_their_first_sighting_and_are_never_forgotten(j: J) {
    assert_eq!(j.members_seen().await.unwrap(), Vec::<(String, i64)>::new());
    j.note_members(10, vec!["111111111111".into(), "222222222222".into()]).await.unwrap();
    // Seen again later (and one new): the first sighting stays; one not named again is not forgotten.
    j.note_members(20, vec!["222222222222".into(), "333333333333".into()]).await.unwrap();
    j.note_members(30, Vec::new()).await.unwrap();
    assert_eq!(
        j.members_seen().await.unwrap(),
        vec![("111111111111".into(), 10), ("222222222222".into(), 10), ("333333333333".into(), 20)]
    );
}

async fn filled(j: &J, n: u32) {
    for op in ["a", "b"] {
        j.create_operation(new_op(op, None, "f")).await.unwrap();
        let rows = (0..n).map(|i| AccountRow {
            index: i,
            account_id: format!("{i}"),
            outcome: StoredOutcome::Pending,
            result: b"r".to_vec(),
        });
        let events = (1..=u64::from(n)).map(|s| EventRow { sequence: s, payload: b"e".to_vec() }).collect();
        j.persist(op, Batch { rows: rows.collect(), events, ..Batch::default() }).await.unwrap();
    }
    let binding = |name: &str| BindingRow {
        name: name.into(),
        version: 1,
        binding: b"b".to_vec(),
        status: Vec::new(),
        create_time: 1,
        update_time: 1,
    };
    j.create_binding(binding("x")).await.unwrap();
    j.create_binding(binding("y")).await.unwrap();
    j.set_binding_status("y", b"s".to_vec()).await.unwrap();
}

pub async fn a_rewrite_reaches_every_payload_in_one_transaction(j: J) {
    // More rows than a page, so that paging by key is exercised.
    filled(&j, 1203).await;
    let seen = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let counter = seen.clone();
    let rewrite: Rewrite = Box::new(move |kind, bytes| {
        *counter.lock().unwrap().entry(format!("{kind:?}")).or_default() += 1;
        Ok([b"new-".as_slice(), bytes].concat())
    });
    let done = j.rewrite_payloads(rewrite, PayloadFormat::Records).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(done, 2 + 2 * 1203 * 2 + 2 + 1, "{seen:?}");
    assert_eq!(seen["Spec"], 2);
    assert_eq!((seen["AccountResult"], seen["Event"]), (2406, 2406));
    assert_eq!((seen["Binding"], seen["BindingStatus"]), (2, 1), "an empty status is left alone");
    assert_eq!(j.get_operation("b").await.unwrap().unwrap().spec, b"new-\x01\x02\x03");
    let rows = j.list_accounts("a", &[], 2000, None).await.unwrap();
    assert!(rows.len() == 1203 && rows.iter().all(|r| r.result == b"new-r"));
    let events = j.read_events("b", 0, 2000).await.unwrap();
    assert!(events.len() == 1203 && events.iter().all(|e| e.payload == b"new-e"));
    let y = j.get_binding("y").await.unwrap().unwrap();
    assert_eq!((y.binding.as_slice(), y.status.as_slice()), (b"new-b".as_slice(), b"new-s".as_slice()));
    assert!(j.get_binding("x").await.unwrap().unwrap().status.is_empty());
    assert_eq!(j.payload_format().await.unwrap(), PayloadFormat::Records);
}

pub async fn a_payload_that_cannot_be_rewritten_changes_nothing_and_is_named(j: J) {
    filled(&j, 3).await;
    j.rewrite_payloads(Box::new(|_, b| Ok(b.to_vec())), PayloadFormat::Protobuf).await.unwrap();
    let rewrite: Rewrite = Box::new(|kind, bytes| match kind {
        PayloadKind::Event if bytes == b"e" => Err("not a message".into()),
        _ => Ok(b"changed".to_vec()),
    });
    let e = j.rewrite_payloads(rewrite, PayloadFormat::Records).await.unwrap_err().to_string();
    assert_eq!(
        e,
        "journal upgrade: events.payload (operation_id=\"a\", sequence=1): not a message; nothing was changed"
    );
    assert_eq!(j.get_operation("a").await.unwrap().unwrap().spec, vec![1, 2, 3]);
    assert_eq!(j.list_accounts("a", &[], 10, None).await.unwrap()[0].result, b"r");
    assert_eq!(j.payload_format().await.unwrap(), PayloadFormat::Protobuf);
}

pub async fn a_new_journal_holds_records(j: J) {
    assert_eq!(j.payload_format().await.unwrap(), PayloadFormat::Records);
}

pub async fn the_audit_log_is_read_by_filter_page_by_page_and_expires(j: J) {
    use crossrole_store::{AuditEntry, AuditFilter};
    let entry = |time: i64, caller: &str, method: &str, spec: &str| AuditEntry {
        id: 0,
        time,
        caller: caller.into(),
        method: method.into(),
        spec_name: spec.into(),
        operation_id: format!("op-{time}"),
        request: format!(r#"{{"n":{time}}}"#),
        outcome: "ok".into(),
        caller_subject: if caller == "ci" { "CN=ci,O=Platform".into() } else { String::new() },
    };
    for t in 1..=6 {
        let (caller, method, spec) =
            if t % 2 == 0 { ("ci", "ApplyAccess", "audit") } else { ("ops", "CancelOperation", "") };
        j.audit(entry(t * 100, caller, method, spec)).await.unwrap();
    }
    let times = |entries: Vec<AuditEntry>| entries.iter().map(|e| e.time).collect::<Vec<_>>();
    let all = j.audit_log(&AuditFilter::default(), 10, None).await.unwrap();
    assert_eq!(times(all.clone()), [600, 500, 400, 300, 200, 100]);
    assert_eq!(
        (
            all[0].spec_name.as_str(),
            all[0].operation_id.as_str(),
            all[0].request.as_str(),
            all[0].caller_subject.as_str()
        ),
        ("audit", "op-600", r#"{"n":600}"#, "CN=ci,O=Platform")
    );
    let page = j.audit_log(&AuditFilter::default(), 4, None).await.unwrap();
    let rest = j.audit_log(&AuditFilter::default(), 4, page.last().map(|e| e.id)).await.unwrap();
    assert_eq!((times(page), times(rest)), (vec![600, 500, 400, 300], vec![200, 100]));
    let by_caller = AuditFilter { caller: "ci".into(), ..AuditFilter::default() };
    assert_eq!(times(j.audit_log(&by_caller, 10, None).await.unwrap()), [600, 400, 200]);
    let window =
        AuditFilter { since: Some(200), until: Some(500), method: "CancelOperation".into(), ..AuditFilter::default() };
    assert_eq!(times(j.audit_log(&window, 10, None).await.unwrap()), [300]);
    let by_spec = AuditFilter { spec_name: "audit".into(), operation_id: "op-400".into(), ..AuditFilter::default() };
    assert_eq!(times(j.audit_log(&by_spec, 10, None).await.unwrap()), [400]);
    // By account: the entries about operations that worked on it.
    let op = |id: &str| crossrole_store::NewOperation {
        id: id.into(),
        kind: StoredKind::Apply,
        spec_name: "audit".into(),
        spec: vec![1],
        idempotency_key: None,
        request_fingerprint: String::new(),
        binding_name: None,
        created_by: "ci".into(),
        create_time: 1,
        state: StoredState::Pending,
        dry_run: false,
    };
    // A binding's scheduled reconcile (no call of its own) that worked on the account: the call that made the
    // binding is about it; an apply of a spec of the same name that did not work on it is not.
    let scheduled = crossrole_store::NewOperation { binding_name: Some("kept".into()), ..op("op-r") };
    for (id, new, account) in [
        ("op-400", op("op-400"), "222233334444"),
        ("op-600", op("op-600"), "555566667777"),
        ("op-r", scheduled, "222233334444"),
    ] {
        j.create_operation(new).await.unwrap();
        let row = crossrole_store::AccountRow {
            index: 0,
            account_id: account.into(),
            outcome: StoredOutcome::Pending,
            result: vec![1],
        };
        j.put_accounts(id, vec![row]).await.unwrap();
    }
    j.audit(entry(650, "ops", "CreateBinding", "kept")).await.unwrap();
    j.audit(entry(660, "ci", "ApplyAccess", "kept")).await.unwrap();
    let by_account = AuditFilter { account_id: "222233334444".into(), ..AuditFilter::default() };
    assert_eq!(times(j.audit_log(&by_account, 10, None).await.unwrap()), [650, 400]);
    assert_eq!(j.expire_audit(350).await.unwrap(), 3);
    assert_eq!(times(j.audit_log(&AuditFilter::default(), 10, None).await.unwrap()), [660, 650, 600, 500, 400]);
}

pub async fn retention_deletes_what_it_selects_and_nothing_else(j: J) {
    use StoredKind::{Apply, Reconcile};
    use StoredOutcome::{Changed, Failed, Running, Skipped, Unchanged};
    /// (id, kind, binding, state, ended, outcomes of its accounts)
    type Op<'a> = (&'a str, StoredKind, Option<&'a str>, StoredState, Option<i64>, &'a [StoredOutcome]);
    let (succeeded, failed, running) = (StoredState::Succeeded, StoredState::Failed, StoredState::Running);
    let ops: [Op<'_>; 8] = [
        ("old-apply", Apply, None, succeeded, Some(100), &[Changed, Unchanged]),
        ("old-failed", Apply, None, failed, Some(200), &[Failed]),
        ("running", Apply, None, running, None, &[Running]),
        ("recent-apply", Apply, None, succeeded, Some(5_000), &[Changed]),
        ("quiet-reconcile", Reconcile, Some("b"), succeeded, Some(300), &[Unchanged, Skipped]),
        ("busy-reconcile", Reconcile, Some("b"), succeeded, Some(400), &[Changed, Unchanged]),
        ("newest-of-b", Reconcile, Some("b"), succeeded, Some(500), &[Unchanged]),
        ("only-of-c", Reconcile, Some("c"), succeeded, Some(600), &[Unchanged]),
    ];
    for (id, kind, binding, state, ended, outcomes) in ops {
        let new = NewOperation { kind, binding_name: binding.map(String::from), ..new_op(id, None, "f") };
        j.create_operation(new).await.unwrap();
        let change = StateChange { ended, ..StateChange::new(&[StoredState::Pending], state, "").started(50) };
        assert!(j.change_state(id, change).await.unwrap());
        let rows = outcomes.iter().enumerate().map(|(i, o)| AccountRow {
            index: i as u32,
            account_id: format!("{i:012}"),
            outcome: *o,
            result: vec![],
        });
        let events = (1..=3).map(|s| EventRow { sequence: s, payload: vec![] }).collect();
        j.persist(id, Batch { rows: rows.collect(), events, ..Batch::default() }).await.unwrap();
    }
    let ids = |j: J| async move {
        let (rows, _) = j.list_operations(&OperationFilter::default(), 100, None).await.unwrap();
        let mut ids: Vec<String> = rows.into_iter().map(|r| r.id).collect();
        ids.sort();
        ids
    };

    // Quiet reconciles first: only those whose accounts all stayed as they were, never a binding's newest.
    let finals = vec![StoredState::Succeeded, StoredState::Failed, StoredState::Cancelled];
    let quiet = Expiry {
        final_states: finals.clone(),
        ended_before: 1_000,
        kinds: vec![Reconcile],
        outcomes: vec![Unchanged, Skipped],
        limit: 10,
    };
    assert_eq!(j.expire_operations(&quiet).await.unwrap(), 1);
    assert!(j.get_operation("quiet-reconcile").await.unwrap().is_none());
    assert!(j.read_events("quiet-reconcile", 0, 10).await.unwrap().is_empty());
    assert!(j.list_accounts("quiet-reconcile", &[], 10, None).await.unwrap().is_empty());

    // Then anything finished before the cut, a page at a time.
    let all = Expiry { final_states: finals, ended_before: 1_000, limit: 2, ..Expiry::default() };
    assert_eq!(j.expire_operations(&all).await.unwrap(), 2);
    assert_eq!(j.expire_operations(&all).await.unwrap(), 1);
    assert_eq!(j.expire_operations(&all).await.unwrap(), 0);
    assert_eq!(ids(j.clone()).await, ["newest-of-b", "only-of-c", "recent-apply", "running"]);
    assert_eq!(j.read_events("recent-apply", 0, 10).await.unwrap().len(), 3, "what is kept is whole");
    assert_eq!(j.count_accounts("newest-of-b").await.unwrap(), BTreeMap::from([(Unchanged, 1)]));
}

pub async fn codes_this_crossroled_does_not_know_are_kept(j: J) {
    // As a newer crossroled may have written them: read back as they are, found by them, and unfinished.
    let new = NewOperation { kind: StoredKind::Unknown(42), state: StoredState::Unknown(17), ..new_op("n", None, "f") };
    j.create_operation(new).await.unwrap();
    let op = j.get_operation("n").await.unwrap().unwrap();
    assert!(matches!((op.kind, op.state), (StoredKind::Unknown(42), StoredState::Unknown(17))), "{op:?}");
    let by_state = OperationFilter { states: vec![StoredState::Unknown(17)], ..Default::default() };
    let (found, _) = j.list_operations(&by_state, 10, None).await.unwrap();
    assert_eq!(found.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(), ["n"]);
    assert_eq!(j.unfinished_operations().await.unwrap().len(), 1, "a state it does not know is not a final one");
    let row = |index: u32, outcome| AccountRow { index, account_id: format!("{index}"), outcome, result: vec![] };
    j.put_accounts("n", vec![row(0, StoredOutcome::Unknown(99)), row(1, StoredOutcome::Changed)]).await.unwrap();
    assert_eq!(
        j.count_accounts("n").await.unwrap(),
        BTreeMap::from([(StoredOutcome::Changed, 1), (StoredOutcome::Unknown(99), 1)])
    );
    let unknown = j.list_accounts("n", &[StoredOutcome::Unknown(99)], 10, None).await.unwrap();
    assert!(matches!(unknown.as_slice(), [r] if r.index == 0 && matches!(r.outcome, StoredOutcome::Unknown(99))));
    let moved = StateChange::new(&[StoredState::Unknown(17)], StoredState::Unknown(18), "");
    assert!(j.change_state("n", moved).await.unwrap());
    assert!(matches!(j.get_operation("n").await.unwrap().unwrap().state, StoredState::Unknown(18)));
}

/// An operation `id` in `state`, created pending and moved there.
async fn in_state(j: &J, id: &str, kind: StoredKind, binding: Option<&str>, state: StoredState) {
    let new = NewOperation { kind, binding_name: binding.map(String::from), ..new_op(id, None, "f") };
    j.create_operation(new).await.unwrap();
    if state != StoredState::Pending {
        assert!(j.change_state(id, StateChange::new(&[StoredState::Pending], state, "")).await.unwrap());
    }
}

/// The end of an operation, as its run writes it with its last event.
fn end(state: StoredState, sequence: u64) -> Batch {
    Batch {
        events: vec![EventRow { sequence, payload: vec![] }],
        end: Some(OperationEnd { state, message: state.code().to_string(), end_time: 77 }),
        ..Batch::default()
    }
}

pub async fn a_state_moves_only_from_the_state_its_caller_saw(j: J) {
    use StoredState::{Cancelled, Cancelling, Pending, Running, Succeeded};
    in_state(&j, "a", StoredKind::Apply, None, Pending).await;
    let state = |j: J| async move { j.get_operation("a").await.unwrap().unwrap() };
    // Its run starts it; a second start finds it started.
    let start = || StateChange::new(&[Pending], Running, "").started(5);
    assert!(j.change_state("a", start()).await.unwrap());
    assert!(!j.change_state("a", start()).await.unwrap(), "it is not pending any more");
    // A cancel from what it saw; a start that read it pending before never writes over the cancel.
    assert!(j.change_state("a", StateChange::new(&[Running], Cancelling, "cancel requested")).await.unwrap());
    assert!(!j.change_state("a", start()).await.unwrap());
    let cancelling = state(j.clone()).await;
    assert_eq!(
        (cancelling.state, cancelling.message.as_str(), cancelling.start_time),
        (Cancelling, "cancel requested", Some(5))
    );
    assert!(!j.change_state("a", StateChange::new(&[Pending], Cancelling, "")).await.unwrap(), "not what it saw");
    // It ends; from then on nothing changes it: no cancel, no start, no second end.
    j.persist("a", end(Cancelled, 1)).await.unwrap();
    for from in [Pending, Running, Cancelling, Cancelled] {
        let change = StateChange::new(&[from], Cancelling, "late cancel");
        assert!(!j.change_state("a", change).await.unwrap(), "a finished operation moves from no state ({from:?})");
    }
    j.persist("a", end(Succeeded, 2)).await.unwrap();
    let ended = state(j.clone()).await;
    assert_eq!(
        (ended.state, ended.message.as_str(), ended.end_time),
        (Cancelled, "6", Some(77)),
        "its first end stands"
    );
    assert!(j.unfinished_operations().await.unwrap().is_empty());

    // A row an older crossroled left with a cancel written over its end is finished all the same: never resumed.
    in_state(&j, "b", StoredKind::Apply, None, Running).await;
    let over_the_end = StateChange::new(&[Running], Cancelling, "cancel requested").ended(9);
    assert!(j.change_state("b", over_the_end).await.unwrap());
    assert!(j.unfinished_operations().await.unwrap().is_empty(), "an operation with an end is finished");
    assert!(!j.change_state("b", StateChange::new(&[Cancelling], Running, "")).await.unwrap());
}

pub async fn a_cancel_racing_the_end_never_changes_a_finished_operation(j: J) {
    let ids: Vec<String> = (0..24).map(|i| format!("op{i:02}")).collect();
    for id in &ids {
        in_state(&j, id, StoredKind::Apply, None, StoredState::Running).await;
    }
    let races: Vec<_> = ids
        .iter()
        .map(|id| {
            let (j, id) = (j.clone(), id.clone());
            tokio::spawn(async move {
                let cancel = {
                    let (j, id) = (j.clone(), id.clone());
                    tokio::spawn(async move {
                        let change =
                            StateChange::new(&[StoredState::Running], StoredState::Cancelling, "cancel requested");
                        j.change_state(&id, change).await.unwrap()
                    })
                };
                j.persist(&id, end(StoredState::Succeeded, 1)).await.unwrap();
                cancel.await.unwrap()
            })
        })
        .collect();
    let mut cancelled_first = 0;
    for race in races {
        cancelled_first += usize::from(race.await.unwrap());
    }
    for id in &ids {
        let op = j.get_operation(id).await.unwrap().unwrap();
        // Whichever came first, the end is the operation's last word.
        assert_eq!((op.state, op.end_time, op.message.as_str()), (StoredState::Succeeded, Some(77), "3"), "{id}");
    }
    assert!(j.unfinished_operations().await.unwrap().is_empty(), "{cancelled_first} cancels came before the end");
}

pub async fn an_access_end_is_replaced_by_the_next_and_acted_on_once(j: J) {
    let row = |spec: &str, at: i64| AccessEndRow {
        spec_name: spec.into(),
        expires_at: at,
        spec: vec![7, 8],
        created_by: "ci".into(),
        update_time: 1,
        operation_id: None,
    };
    assert_eq!(j.set_access_end(row("audit", 5_000)).await.unwrap(), None);
    assert_eq!(j.set_access_end(row("later", 9_000)).await.unwrap(), None);
    assert!(j.access_ends_due(4_999).await.unwrap().is_empty(), "not before its end");
    let due: Vec<String> = j.access_ends_due(10_000).await.unwrap().into_iter().map(|r| r.spec_name).collect();
    assert_eq!(due, ["audit", "later"], "soonest first");
    // An extension replaces the end, and says which it replaced.
    let before = j.set_access_end(row("audit", 20_000)).await.unwrap().unwrap();
    assert_eq!(before.expires_at, 5_000);
    assert_eq!(j.access_end("audit").await.unwrap().unwrap().expires_at, 20_000);
    // Acted on once, however many replicas try at once, and only as the end they read.
    assert!(!j.take_access_end("audit", 5_000, "stale").await.unwrap(), "not an end it no longer has");
    let takes: Vec<_> = (0..8)
        .map(|i| {
            let j = j.clone();
            tokio::spawn(async move { j.take_access_end("audit", 20_000, &format!("op{i}")).await.unwrap() })
        })
        .collect();
    let mut taken = 0;
    for t in takes {
        taken += usize::from(t.await.unwrap());
    }
    assert_eq!(taken, 1, "one take");
    let acted = j.access_end("audit").await.unwrap().unwrap();
    assert!(acted.operation_id.as_deref().is_some_and(|o| o.starts_with("op")), "{acted:?}");
    let due: Vec<String> = j.access_ends_due(30_000).await.unwrap().into_iter().map(|r| r.spec_name).collect();
    assert_eq!(due, ["later"], "an end acted on is not due again");
    // A new end is acted on anew; clearing it makes the access last.
    j.set_access_end(row("audit", 40_000)).await.unwrap();
    assert_eq!(j.access_end("audit").await.unwrap().unwrap().operation_id, None);
    assert_eq!(j.clear_access_end("audit").await.unwrap().unwrap().expires_at, 40_000);
    assert_eq!(j.access_end("audit").await.unwrap(), None);
    assert_eq!(j.clear_access_end("audit").await.unwrap(), None);
}

pub async fn a_binding_reconciles_once_at_a_time_however_many_start_it(j: J) {
    let reconcile = |id: String, binding: &str| NewOperation {
        kind: StoredKind::Reconcile,
        binding_name: Some(binding.into()),
        ..new_op(&id, None, "f")
    };
    let starts: Vec<_> = (0..16)
        .map(|i| {
            let (j, new) = (j.clone(), reconcile(format!("r{i:02}"), "b"));
            tokio::spawn(async move { j.create_operation(new).await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut ids = Vec::new();
    for started in starts {
        let (row, new) = started.await.unwrap();
        created += usize::from(new);
        ids.push(row.id);
    }
    ids.dedup();
    assert_eq!((created, ids.len()), (1, 1), "one reconcile, and every caller got it: {ids:?}");
    let first = ids.remove(0);
    // Another binding's reconcile, and what is not a reconcile, are not held up.
    assert!(j.create_operation(reconcile("other".into(), "c")).await.unwrap().1);
    let destroy = NewOperation { kind: StoredKind::Destroy, ..reconcile("destroy".into(), "b") };
    assert!(j.create_operation(destroy).await.unwrap().1);
    // A cancel asked of it leaves it unfinished: still the one.
    assert!(
        j.change_state(&first, StateChange::new(&[StoredState::Pending], StoredState::Cancelling, "")).await.unwrap()
    );
    let (again, new) = j.create_operation(reconcile("late".into(), "b")).await.unwrap();
    assert_eq!((again.id.as_str(), new), (first.as_str(), false));
    // Once it has ended, the next one starts.
    j.persist(&first, end(StoredState::Cancelled, 1)).await.unwrap();
    let (next, new) = j.create_operation(reconcile("next".into(), "b")).await.unwrap();
    assert_eq!((next.id.as_str(), new), ("next", true));
}

pub async fn accounts_wait_for_their_bindings_reconcile_and_are_retried_a_few_times(j: J) {
    let accounts = |ids: &[&str]| ids.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let waiting = |j: J| async move {
        j.waiting_accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|w| (w.binding, w.account_id, w.attempts, w.due_at, w.operation_id))
            .collect::<Vec<_>>()
    };
    let row = |b: &str, a: &str, attempts: u32, due: i64, op: Option<&str>| {
        (b.to_string(), a.to_string(), attempts, due, op.map(String::from))
    };
    let binding = |name: &str| BindingRow {
        name: name.into(),
        version: 1,
        binding: vec![],
        status: vec![],
        create_time: 1,
        update_time: 1,
    };
    j.create_binding(binding("b")).await.unwrap();
    j.create_binding(binding("c")).await.unwrap();
    j.wait_accounts("b", &accounts(&["1", "2", "3"]), "events", 100).await.unwrap();
    j.wait_accounts("b", &accounts(&["3"]), "events", 200).await.unwrap();
    j.wait_accounts("c", &accounts(&["1"]), "events", 100).await.unwrap();
    let all = j.waiting_accounts().await.unwrap();
    assert_eq!(all[0].created_by, "events");
    assert_eq!(
        waiting(j.clone()).await,
        [
            row("b", "1", 0, 100, None),
            row("b", "2", 0, 100, None),
            row("b", "3", 0, 100, None),
            row("c", "1", 0, 100, None)
        ],
        "named again, an account keeps its earlier due time"
    );

    // A reconcile takes them; 1 and 2 fail, and 3 is named again while it runs (so it is no longer that one's).
    j.take_accounts("b", &accounts(&["1", "2", "3"]), "op1").await.unwrap();
    j.wait_accounts("b", &accounts(&["3"]), "events", 150).await.unwrap();
    j.settle_accounts("op1", &accounts(&["1", "2"]), 500, 2).await.unwrap();
    assert_eq!(
        waiting(j.clone()).await,
        [
            row("b", "1", 1, 500, None),
            row("b", "2", 1, 500, None),
            row("b", "3", 0, 100, None),
            row("c", "1", 0, 100, None)
        ]
    );
    // The next attempt: 1 fails again and has had its tries; 2 succeeds.
    j.take_accounts("b", &accounts(&["1", "2"]), "op2").await.unwrap();
    j.settle_accounts("op2", &accounts(&["1"]), 900, 2).await.unwrap();
    assert_eq!(waiting(j.clone()).await, [row("b", "3", 0, 100, None), row("c", "1", 0, 100, None)]);

    // A binding deleted takes its waiting accounts with it.
    assert!(j.delete_binding("b").await.unwrap());
    assert_eq!(waiting(j.clone()).await, [row("c", "1", 0, 100, None)]);
}

pub async fn the_journal_knows_the_key_it_is_written_under(j: J) {
    let key = JournalKey::generate().unwrap();
    // New: no check value, no records.
    assert_eq!(j.key_evidence().await.unwrap(), KeyEvidence::default());
    // Records from before the check value: one sealed value is found, with its context, and opens with its key.
    let mut op = new_op("op-1", None, "f");
    let sealed = key.seal("Wq3vT9zLk2Pp8RmX4sYc7NdB6hJf", "op-1").unwrap();
    op.spec = format!(r#"{{"v":1,"record":{{"name":"audit","role":{{"external_id":"{sealed}"}}}}}}"#).into_bytes();
    j.create_operation(op).await.unwrap();
    let evidence = j.key_evidence().await.unwrap();
    assert!(evidence.holds_records && evidence.check.is_none());
    let found = evidence.sealed.unwrap();
    assert_eq!((found.value.as_str(), found.context.as_str()), (sealed.as_str(), "op-1"));
    assert!(key.opens(&found) && !JournalKey::generate().unwrap().opens(&found));
    // Recorded once, never replaced.
    assert!(j.record_key_check(&key.check()).await.unwrap());
    assert!(!j.record_key_check(&JournalKey::generate().unwrap().check()).await.unwrap());
    let evidence = j.key_evidence().await.unwrap();
    assert_eq!(evidence.check, Some(key.check()));
    assert_eq!(evidence.sealed, None, "with a check value, no sealed value is looked for");
}
