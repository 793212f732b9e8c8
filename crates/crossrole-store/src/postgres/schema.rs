//! The PostgreSQL journal's schema: one migration per version, the version kept in `crossrole_schema`, applied in
//! one transaction under an advisory lock so that two crossroleds starting together do not both migrate.

use crate::StoreError;

/// The schema, one migration per version (the version is the count applied, kept in `crossrole_schema`).
const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's journal has at its version 4, in PostgreSQL's types.
    r#"
CREATE TABLE journal_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO journal_meta (key, value) VALUES ('payload_format', 'records');
CREATE TABLE operations (
    position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind INTEGER NOT NULL,
    state INTEGER NOT NULL,
    spec_name TEXT NOT NULL,
    spec BYTEA NOT NULL,
    idempotency_key TEXT,
    request_fingerprint TEXT NOT NULL,
    binding_name TEXT,
    created_by TEXT NOT NULL,
    create_time BIGINT NOT NULL,
    start_time BIGINT,
    end_time BIGINT,
    message TEXT NOT NULL DEFAULT '',
    aws_calls TEXT NOT NULL DEFAULT '{}',
    throttled_calls BIGINT NOT NULL DEFAULT 0,
    last_sequence BIGINT NOT NULL DEFAULT 0,
    dry_run BOOLEAN NOT NULL DEFAULT FALSE,
    UNIQUE (created_by, idempotency_key)
);
CREATE INDEX operations_state ON operations (state);
CREATE INDEX operations_spec ON operations (spec_name);
CREATE TABLE account_results (
    operation_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    outcome INTEGER NOT NULL,
    result BYTEA NOT NULL,
    PRIMARY KEY (operation_id, idx)
);
CREATE INDEX account_results_outcome ON account_results (operation_id, outcome);
CREATE TABLE events (
    operation_id TEXT NOT NULL,
    sequence BIGINT NOT NULL,
    payload BYTEA NOT NULL,
    PRIMARY KEY (operation_id, sequence)
);
CREATE TABLE placements (
    spec_name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    PRIMARY KEY (spec_name, account_id)
);
CREATE TABLE bindings (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    binding BYTEA NOT NULL,
    status BYTEA NOT NULL,
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL
);
CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time BIGINT NOT NULL,
    caller TEXT NOT NULL,
    method TEXT NOT NULL,
    request TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE TABLE organization_tree (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fetched_at BIGINT NOT NULL,
    tree BYTEA NOT NULL
);
CREATE TABLE account_tags (
    account_id TEXT PRIMARY KEY,
    fetched_at BIGINT NOT NULL,
    tags BYTEA NOT NULL
);
"#,
    // 2: retention keeps each binding's newest operation: finding it is an index lookup.
    r#"
CREATE INDEX operations_binding ON operations (binding_name, position);
"#,
    // 3: audit entries say which spec and operation they were about, and are read by time.
    r#"
ALTER TABLE audit ADD COLUMN spec_name TEXT NOT NULL DEFAULT '';
ALTER TABLE audit ADD COLUMN operation_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_time ON audit (time);
"#,
    // 4: audit entries name the client certificate's subject (mutual TLS), and are found by an account their
    // operations worked on.
    r#"
ALTER TABLE audit ADD COLUMN caller_subject TEXT NOT NULL DEFAULT '';
CREATE INDEX account_results_account ON account_results (account_id, operation_id);
"#,
    // 5: several live replicas share the work (`shared`): who is alive, who runs which operation, and which
    // (account, role) each holds.
    r#"
CREATE TABLE replicas (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lease_ms BIGINT NOT NULL
);
ALTER TABLE operations ADD COLUMN owner TEXT;
CREATE INDEX operations_unfinished ON operations (position) WHERE end_time IS NULL;
CREATE TABLE role_locks (
    account_id TEXT NOT NULL,
    role TEXT NOT NULL,
    owner TEXT NOT NULL,
    token TEXT NOT NULL,
    operation_id TEXT NOT NULL,
    since BIGINT NOT NULL,
    PRIMARY KEY (account_id, role)
);
"#,
    // 6: the tree's revision, one more at every save, so that a replica tells a newer tree from its own; the
    // accounts Organizations events named, waiting for the reconciles of the bindings they concern.
    r#"
ALTER TABLE organization_tree ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
CREATE TABLE waiting_accounts (
    binding_name TEXT NOT NULL,
    account_id TEXT NOT NULL,
    created_by TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at BIGINT NOT NULL,
    operation_id TEXT,
    PRIMARY KEY (binding_name, account_id)
);
"#,
    // 7: the ends of specs' access, from applies that carried one.
    r#"
CREATE TABLE access_ends (
    spec_name TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    spec BYTEA NOT NULL,
    created_by TEXT NOT NULL,
    update_time BIGINT NOT NULL,
    operation_id TEXT
);
CREATE INDEX access_ends_due ON access_ends(expires_at);
"#,
    // 8: every account discovery ever saw as a member, kept after it leaves (a trust naming it is then told as a
    // former member's).
    r#"
CREATE TABLE members_seen (
    account_id TEXT PRIMARY KEY,
    first_seen BIGINT NOT NULL
);
"#,
];

/// The advisory lock migrations run under (any value; "crossrole" in ASCII, shortened).
const MIGRATION_LOCK: i64 = 0x6372_6f73_7372_6f6c;

/// Migrates the schema forward in one transaction; refuses a schema newer than this crossroled.
pub(super) async fn migrate(client: &mut deadpool_postgres::Object) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS crossrole_schema (version INTEGER NOT NULL)").await?;
    let version: i64 = match tx.query_opt("SELECT version FROM crossrole_schema", &[]).await? {
        Some(row) => i64::from(row.get::<_, i32>(0)),
        None => {
            tx.execute("INSERT INTO crossrole_schema (version) VALUES (0)", &[]).await?;
            0
        }
    };
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::SchemaTooNew(version, known));
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(migration).await?;
        tx.execute("UPDATE crossrole_schema SET version = $1", &[&((i + 1) as i32)]).await?;
    }
    tx.commit().await?;
    Ok(())
}
