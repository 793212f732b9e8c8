//! What only the SQLite journal has: its file, its migrations, its refusal of a damaged one.

use super::{schema::MIGRATIONS, *};
use crate::{SavedTree, StoredKind, StoredState};

fn new_op(id: &str, key: Option<&str>, fingerprint: &str) -> NewOperation {
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

#[tokio::test]
async fn accounts_events_placements_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let j = SqliteJournal::open(&path).unwrap();
        j.create_operation(new_op("a", None, "f")).await.unwrap();
        j.put_accounts(
            "a",
            (0..5)
                .map(|i| AccountRow {
                    index: i,
                    account_id: format!("{i:012}"),
                    outcome: StoredOutcome::Pending,
                    result: vec![],
                })
                .collect(),
        )
        .await
        .unwrap();
        j.put_accounts(
            "a",
            vec![AccountRow {
                index: 2,
                account_id: "000000000002".into(),
                outcome: StoredOutcome::Changed,
                result: vec![9],
            }],
        )
        .await
        .unwrap();
        let events = |r: std::ops::RangeInclusive<u64>| Batch {
            events: r.map(|s| EventRow { sequence: s, payload: vec![s as u8] }).collect(),
            ..Batch::default()
        };
        j.persist("a", events(1..=10)).await.unwrap();
        // A sequence number used twice is an error, and the batch it came in is not half-written.
        let mut again = events(11..=12);
        again.events.push(EventRow { sequence: 10, payload: vec![99] });
        again.rows.push(AccountRow {
            index: 4,
            account_id: "000000000004".into(),
            outcome: StoredOutcome::Skipped,
            result: vec![],
        });
        assert!(j.persist("a", again).await.is_err());
        j.set_placement("audit", "222233334444", true).await.unwrap();
        j.set_placement("audit", "111122223333", true).await.unwrap();
        j.set_placement("audit", "222233334444", false).await.unwrap();
        let stats = crate::OperationStats { aws_calls: [("iam:CreateRole".to_string(), 5u64)].into(), throttled: 2 };
        j.persist("a", Batch { stats: Some(stats), ..Batch::default() }).await.unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    let counts = j.count_accounts("a").await.unwrap();
    assert_eq!(
        counts,
        BTreeMap::from([(StoredOutcome::Pending, 4), (StoredOutcome::Changed, 1)]),
        "the failed batch wrote no row"
    );
    assert!(j.read_events("a", 10, 10).await.unwrap().is_empty(), "the failed batch wrote no event");
    let changed = j.list_accounts("a", &[StoredOutcome::Changed], 10, None).await.unwrap();
    assert_eq!(changed[0].result, vec![9]);
    let page = j.list_accounts("a", &[], 2, Some(1)).await.unwrap();
    assert_eq!(page.iter().map(|r| r.index).collect::<Vec<_>>(), [2, 3]);
    let events = j.read_events("a", 7, 100).await.unwrap();
    assert_eq!(events.iter().map(|e| e.sequence).collect::<Vec<_>>(), [8, 9, 10]);
    assert_eq!(events[2].payload, vec![10]);
    assert_eq!(j.placements("audit").await.unwrap(), ["111122223333"]);
    let op = j.get_operation("a").await.unwrap().unwrap();
    assert_eq!((op.last_sequence, op.throttled_calls, op.aws_calls.get("iam:CreateRole")), (10, 2, Some(&5)));
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    SqliteJournal::open(&path).unwrap();
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let known = MIGRATIONS.len() as i64;
    assert!(matches!(SqliteJournal::open(&path), Err(StoreError::SchemaTooNew(99, k)) if k == known));
}

#[tokio::test]
async fn what_discovery_read_outlives_a_restart() {
    // What is kept and replaced is the conformance suite's; here, that it is in the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let d = |at: i64, p: &[u8]| Discovered { fetched_at_ms: at, payload: p.to_vec() };
    let j = SqliteJournal::open(&path).unwrap();
    j.save_organization_tree(d(2, b"tree")).await.unwrap();
    j.save_account_tags(vec![("1".into(), d(1, b"a"))]).await.unwrap();
    drop(j);
    let j = SqliteJournal::open(&path).unwrap();
    assert_eq!(j.organization_tree(0).await.unwrap(), Some(SavedTree { revision: 1, tree: d(2, b"tree") }));
    assert_eq!(j.account_tags().await.unwrap(), vec![("1".into(), d(1, b"a"))]);
}

#[tokio::test]
async fn a_journal_written_by_version_1_migrates_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO operations (id, kind, state, spec_name, spec, idempotency_key, request_fingerprint, \
             created_by, create_time) VALUES ('old', 1, 3, 'audit', x'00', 'k', 'f', 'ci', 5)",
            [],
        )
        .unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    let old = j.get_operation("old").await.unwrap().unwrap();
    assert_eq!((old.idempotency_key.as_deref(), old.create_time), (Some("k"), 5));
    let (again, created) = j.create_operation(new_op("new", Some("k"), "f")).await.unwrap();
    assert!(!created);
    assert_eq!(again.id, "old");
}

#[tokio::test]
async fn a_tree_saved_before_trees_had_revisions_is_revision_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    {
        let conn = Connection::open(&path).unwrap();
        for migration in &MIGRATIONS[..7] {
            conn.execute_batch(migration).unwrap();
        }
        conn.pragma_update(None, "user_version", 7).unwrap();
        conn.execute("INSERT INTO organization_tree (id, fetched_at, tree) VALUES (1, 5, x'01')", []).unwrap();
    }
    let j = SqliteJournal::open(&path).unwrap();
    let d = |at: i64, p: &[u8]| Discovered { fetched_at_ms: at, payload: p.to_vec() };
    assert_eq!(j.organization_tree(0).await.unwrap(), Some(SavedTree { revision: 1, tree: d(5, &[1]) }));
    assert_eq!(j.save_organization_tree(d(6, &[2])).await.unwrap(), 2);
}

#[tokio::test]
async fn an_old_journal_says_its_payloads_are_protobuf_and_a_new_one_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    assert_eq!(SqliteJournal::open(&path).unwrap().payload_format().await.unwrap(), PayloadFormat::Protobuf);
    // Opening it again changes nothing.
    assert_eq!(SqliteJournal::open(&path).unwrap().payload_format().await.unwrap(), PayloadFormat::Protobuf);
    let fresh = SqliteJournal::in_memory().unwrap();
    assert_eq!(fresh.payload_format().await.unwrap(), PayloadFormat::Records);
}

#[test]
fn a_damaged_journal_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    std::fs::write(&path, b"").unwrap();
    let e = SqliteJournal::open(&path).err().unwrap().to_string();
    assert!(e.contains("is damaged: the file is empty (0 bytes)"), "{e}");
    std::fs::write(&path, b"this is not a database, just some text long enough to look like a header").unwrap();
    let e = SqliteJournal::open(&path).err().unwrap().to_string();
    assert!(e.contains("is damaged: it is not a readable SQLite database"), "{e}");

    // Garbage in the middle of a real journal.
    std::fs::remove_file(&path).unwrap();
    {
        let j = SqliteJournal::open(&path).unwrap();
        let conn = j.conn.lock().unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.execute("CREATE TABLE filler (x BLOB)", []).unwrap();
        for _ in 0..200 {
            conn.execute("INSERT INTO filler VALUES (randomblob(1000))", []).unwrap();
        }
        conn.execute("CREATE INDEX filler_x ON filler(x)", []).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 8192] {
        *b = 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let e = SqliteJournal::open(&path).err().unwrap().to_string();
    assert!(e.contains("is damaged"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_new_journal_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    SqliteJournal::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
}
