//! The SQLite journal's schema: its migrations, applied in order and counted by `PRAGMA user_version`.

use rusqlite::{Connection, params};

use crate::{PayloadFormat, StoreError};

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
pub(super) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE operations (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    state INTEGER NOT NULL,
    spec_name TEXT NOT NULL,
    spec BLOB NOT NULL,
    idempotency_key TEXT UNIQUE,
    request_fingerprint TEXT NOT NULL,
    binding_name TEXT,
    created_by TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    message TEXT NOT NULL DEFAULT '',
    aws_calls TEXT NOT NULL DEFAULT '{}',
    throttled_calls INTEGER NOT NULL DEFAULT 0,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    dry_run INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX operations_state ON operations(state);
CREATE INDEX operations_spec ON operations(spec_name);
CREATE TABLE account_results (
    operation_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    result BLOB NOT NULL,
    PRIMARY KEY (operation_id, idx)
) WITHOUT ROWID;
CREATE INDEX account_results_outcome ON account_results(operation_id, outcome);
CREATE TABLE events (
    operation_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (operation_id, sequence)
) WITHOUT ROWID;
CREATE TABLE placements (
    spec_name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (spec_name, account_id)
) WITHOUT ROWID;
CREATE TABLE bindings (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    binding BLOB NOT NULL,
    status BLOB NOT NULL,
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time INTEGER NOT NULL,
    caller TEXT NOT NULL,
    method TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL
);
"#,
    // 2: idempotency keys are unique per caller (token), not across callers.
    r#"
CREATE TABLE operations_v2 (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    state INTEGER NOT NULL,
    spec_name TEXT NOT NULL,
    spec BLOB NOT NULL,
    idempotency_key TEXT,
    request_fingerprint TEXT NOT NULL,
    binding_name TEXT,
    created_by TEXT NOT NULL,
    create_time INTEGER NOT NULL,
    start_time INTEGER,
    end_time INTEGER,
    message TEXT NOT NULL DEFAULT '',
    aws_calls TEXT NOT NULL DEFAULT '{}',
    throttled_calls INTEGER NOT NULL DEFAULT 0,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    dry_run INTEGER NOT NULL DEFAULT 0,
    UNIQUE (created_by, idempotency_key)
);
INSERT INTO operations_v2 SELECT position, id, kind, state, spec_name, spec, idempotency_key, request_fingerprint,
    binding_name, created_by, create_time, start_time, end_time, message, aws_calls, throttled_calls, last_sequence,
    dry_run FROM operations;
DROP TABLE operations;
ALTER TABLE operations_v2 RENAME TO operations;
CREATE INDEX operations_state ON operations(state);
CREATE INDEX operations_spec ON operations(spec_name);
"#,
    // 3: what the journal knows about itself; the payload format is set when this migration runs (see `init`).
    r#"
CREATE TABLE journal_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#,
    // 4: what Organizations discovery found, so that a restarted crossroled starts warm: the tree, and each
    // account's tags (one call per account to read), with when they were read.
    r#"
CREATE TABLE organization_tree (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fetched_at INTEGER NOT NULL,
    tree BLOB NOT NULL
);
CREATE TABLE account_tags (
    account_id TEXT PRIMARY KEY,
    fetched_at INTEGER NOT NULL,
    tags BLOB NOT NULL
) WITHOUT ROWID;
"#,
    // 5: retention keeps each binding's newest operation: finding it is an index lookup.
    r#"
CREATE INDEX operations_binding ON operations(binding_name, position);
"#,
    // 6: audit entries say which spec and operation they were about, and are read by time.
    r#"
ALTER TABLE audit ADD COLUMN spec_name TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN operation_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_time ON audit(time);
"#,
    // 7: audit entries name the client certificate's subject (mutual TLS), and are found by an account their
    // operations worked on.
    r#"
ALTER TABLE audit ADD COLUMN caller_subject TEXT NOT NULL DEFAULT '';
CREATE INDEX account_results_account ON account_results(account_id, operation_id);
"#,
    // 8: the tree's revision, one more at every save, so that a replica tells a newer tree from its own; the
    // accounts Organizations events named, waiting for the reconciles of the bindings they concern.
    r#"
ALTER TABLE organization_tree ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
CREATE TABLE waiting_accounts (
    binding_name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at INTEGER NOT NULL,
    operation_id TEXT,
    PRIMARY KEY (binding_name, account_id)
) WITHOUT ROWID;
"#,
    // 9: the ends of specs' access, from applies that carried one.
    r#"
CREATE TABLE access_ends (
    spec_name TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    spec BLOB NOT NULL,
    created_by TEXT NOT NULL,
    update_time INTEGER NOT NULL,
    operation_id TEXT
) WITHOUT ROWID;
CREATE INDEX access_ends_due ON access_ends(expires_at);
"#,
    // 10: every account discovery ever saw as a member, kept after it leaves (a trust naming it is then told as a
    // former member's).
    r#"
CREATE TABLE members_seen (
    account_id TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL
) WITHOUT ROWID;
"#,
];

/// The version whose migration records the payload format: journals migrated past it from an older version hold
/// protobuf payloads; journals created with it hold records.
const PAYLOAD_FORMAT_SINCE: usize = 3;

/// Migrates `conn` forward; refuses a journal newer than this crossroled.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew(version, known));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(migration)?;
        if i + 1 == PAYLOAD_FORMAT_SINCE {
            let format = if version == 0 { PayloadFormat::Records } else { PayloadFormat::Protobuf };
            tx.execute("INSERT INTO journal_meta (key, value) VALUES ('payload_format', ?1)", params![format.name()])?;
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
