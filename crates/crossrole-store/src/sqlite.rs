//! The journal on SQLite: one file, WAL mode, one connection behind a mutex, work on the blocking pool.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    AUDIT_COLUMNS, AccountRow, AuditEntry, AuditFilter, AuditValue, Batch, BindingRow, Discovered, EventRow, Expiry,
    Journal, NewOperation, OPERATION_COLUMNS, OperationFilter, OperationRow, PAYLOADS, PayloadFormat, PayloadKind,
    PayloadPlace, Rewrite, StoreError,
};

/// Schema migrations, applied in order; `PRAGMA user_version` counts the applied ones.
const MIGRATIONS: &[&str] = &[
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
];

/// The version whose migration records the payload format: journals migrated past it from an older version hold
/// protobuf payloads; journals created with it hold records.
const PAYLOAD_FORMAT_SINCE: usize = 3;

/// The SQLite journal.
#[derive(Clone)]
pub struct SqliteJournal {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteJournal {
    /// Opens the journal at `path`, migrating it forward; creates it (mode 0600) only when no file is there.
    ///
    /// A file that is there but empty, not a SQLite database, or fails SQLite's integrity check is refused with
    /// [`StoreError::Damaged`]: taking it as a new journal would silently forget every placement and operation,
    /// so starting fresh is the operator's explicit act (moving the file away).
    pub fn open(path: &Path) -> Result<SqliteJournal, StoreError> {
        let damaged = |why: String| StoreError::Damaged { path: path.display().to_string(), why };
        match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => return Err(damaged("the file is empty (0 bytes)".into())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::key::private_file(path)
                    .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", path.display())))?;
            }
            Err(e) => return Err(StoreError::Io(format!("cannot read {}: {e}", path.display()))),
        }
        let conn = Connection::open(path)?;
        let check: Result<String, rusqlite::Error> = conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
        match check {
            Ok(ok) if ok == "ok" => {}
            Ok(problem) => return Err(damaged(format!("SQLite's integrity check failed: {problem}"))),
            Err(e) => return Err(damaged(format!("it is not a readable SQLite database: {e}"))),
        }
        Self::init(conn)
    }

    /// An in-memory journal, for tests.
    pub fn in_memory() -> Result<SqliteJournal, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<SqliteJournal, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
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
                tx.execute(
                    "INSERT INTO journal_meta (key, value) VALUES ('payload_format', ?1)",
                    params![format.name()],
                )?;
            }
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(SqliteJournal { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }
}

fn operation(row: &rusqlite::Row<'_>) -> rusqlite::Result<OperationRow> {
    let calls: String = row.get(12)?;
    Ok(OperationRow {
        id: row.get(0)?,
        kind: row.get(1)?,
        state: row.get(2)?,
        spec_name: row.get(3)?,
        spec: row.get(4)?,
        idempotency_key: row.get(5)?,
        binding_name: row.get(6)?,
        created_by: row.get(7)?,
        create_time: row.get(8)?,
        start_time: row.get(9)?,
        end_time: row.get(10)?,
        message: row.get(11)?,
        aws_calls: serde_json::from_str(&calls).unwrap_or_default(),
        throttled_calls: row.get::<_, i64>(13)? as u64,
        last_sequence: row.get::<_, i64>(14)? as u64,
        position: row.get(15)?,
        dry_run: row.get(16)?,
    })
}

fn binding(row: &rusqlite::Row<'_>) -> rusqlite::Result<BindingRow> {
    Ok(BindingRow {
        name: row.get(0)?,
        version: row.get::<_, i64>(1)? as u64,
        binding: row.get(2)?,
        status: row.get(3)?,
        create_time: row.get(4)?,
        update_time: row.get(5)?,
    })
}

fn get_operation(conn: &Connection, id: &str) -> Result<Option<OperationRow>, StoreError> {
    Ok(conn
        .query_row(&format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = ?1"), [id], operation)
        .optional()?)
}

/// Rewrites one payload column, a page at a time in key order (keyset pagination: memory stays flat however large
/// the journal).
fn rewrite_column(
    tx: &rusqlite::Transaction<'_>,
    (kind, table, keys, column): PayloadPlace,
    rewrite: &mut Rewrite,
) -> Result<u64, StoreError> {
    use rusqlite::types::Value;
    let keys: Vec<&str> = keys.iter().map(|(k, _)| *k).collect();
    let key_list = keys.join(", ");
    let n = keys.len();
    let placeholders = (1..=n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let first = format!("SELECT {key_list}, {column} FROM {table} ORDER BY {key_list} LIMIT 500");
    let next = format!(
        "SELECT {key_list}, {column} FROM {table} WHERE ({key_list}) > ({placeholders}) ORDER BY {key_list} LIMIT 500"
    );
    let update = format!(
        "UPDATE {table} SET {column} = ?1 WHERE {}",
        keys.iter().enumerate().map(|(i, k)| format!("{k} = ?{}", i + 2)).collect::<Vec<_>>().join(" AND ")
    );
    let mut after: Option<Vec<Value>> = None;
    let mut done = 0;
    loop {
        let page: Vec<(Vec<Value>, Vec<u8>)> = {
            let mut stmt = tx.prepare(if after.is_some() { &next } else { &first })?;
            let params = rusqlite::params_from_iter(after.iter().flatten());
            stmt.query_map(params, |r| {
                let key = (0..n).map(|i| r.get::<_, Value>(i)).collect::<Result<Vec<_>, _>>()?;
                Ok((key, r.get::<_, Vec<u8>>(n)?))
            })?
            .collect::<Result<_, _>>()?
        };
        let Some((last, _)) = page.last() else { return Ok(done) };
        after = Some(last.clone());
        for (key, payload) in page {
            if payload.is_empty() && kind == PayloadKind::BindingStatus {
                continue;
            }
            let new = rewrite(kind, &payload).map_err(|why| {
                let at = keys
                    .iter()
                    .zip(&key)
                    .map(|(k, v)| match v {
                        Value::Text(t) => format!("{k}={t:?}"),
                        Value::Integer(i) => format!("{k}={i}"),
                        other => format!("{k}={other:?}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                StoreError::Rewrite(format!("{table}.{column} ({at}): {why}"))
            })?;
            let mut values: Vec<Value> = vec![Value::Blob(new)];
            values.extend(key);
            tx.execute(&update, rusqlite::params_from_iter(values))?;
            done += 1;
        }
    }
}

#[async_trait]
impl Journal for SqliteJournal {
    async fn payload_format(&self) -> Result<PayloadFormat, StoreError> {
        self.run(|conn| {
            let value: Option<String> = conn
                .query_row("SELECT value FROM journal_meta WHERE key = 'payload_format'", [], |r| r.get(0))
                .optional()?;
            PayloadFormat::from_name(value.as_deref())
        })
        .await
    }

    async fn rewrite_payloads(&self, mut rewrite: Rewrite, format: PayloadFormat) -> Result<u64, StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let mut done = 0;
            for place in PAYLOADS {
                done += rewrite_column(&tx, *place, &mut rewrite)?;
            }
            tx.execute(
                "INSERT OR REPLACE INTO journal_meta (key, value) VALUES ('payload_format', ?1)",
                params![format.name()],
            )?;
            tx.commit()?;
            Ok(done)
        })
        .await
    }

    async fn create_operation(&self, op: NewOperation) -> Result<(OperationRow, bool), StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            if let Some(key) = &op.idempotency_key {
                let existing = tx
                    .query_row(
                        &format!(
                            "SELECT {OPERATION_COLUMNS}, request_fingerprint FROM operations \
                             WHERE created_by = ?1 AND idempotency_key = ?2"
                        ),
                        [&op.created_by, key],
                        |r| Ok((operation(r)?, r.get::<_, String>(17)?)),
                    )
                    .optional()?;
                if let Some((row, fingerprint)) = existing {
                    if fingerprint != op.request_fingerprint {
                        return Err(StoreError::IdempotencyConflict(key.clone()));
                    }
                    return Ok((row, false));
                }
            }
            tx.execute(
                "INSERT INTO operations (id, kind, state, spec_name, spec, idempotency_key, request_fingerprint, binding_name, \
                 created_by, create_time, dry_run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    op.id,
                    op.kind,
                    op.state,
                    op.spec_name,
                    op.spec,
                    op.idempotency_key,
                    op.request_fingerprint,
                    op.binding_name,
                    op.created_by,
                    op.create_time,
                    op.dry_run
                ],
            )?;
            let row = get_operation(&tx, &op.id)?.ok_or_else(|| StoreError::Task("inserted operation vanished".into()))?;
            tx.commit()?;
            Ok((row, true))
        })
        .await
    }

    async fn get_operation(&self, id: &str) -> Result<Option<OperationRow>, StoreError> {
        let id = id.to_string();
        self.run(move |conn| get_operation(conn, &id)).await
    }

    async fn list_operations(
        &self,
        filter: &OperationFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<(Vec<OperationRow>, Option<i64>), StoreError> {
        let filter = filter.clone();
        self.run(move |conn| {
            let mut sql = format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE position < ?1");
            let mut args: Vec<Box<dyn rusqlite::ToSql>> = vec![Box::new(before.unwrap_or(i64::MAX))];
            if !filter.states.is_empty() {
                let marks: Vec<String> = filter.states.iter().map(|s| s.to_string()).collect();
                sql.push_str(&format!(" AND state IN ({})", marks.join(",")));
            }
            if !filter.spec_name.is_empty() {
                args.push(Box::new(filter.spec_name.clone()));
                sql.push_str(&format!(" AND spec_name = ?{}", args.len()));
            }
            if !filter.binding_name.is_empty() {
                args.push(Box::new(filter.binding_name.clone()));
                sql.push_str(&format!(" AND binding_name = ?{}", args.len()));
            }
            sql.push_str(&format!(" ORDER BY position DESC LIMIT {}", page_size + 1));
            let mut stmt = conn.prepare(&sql)?;
            let mut rows: Vec<OperationRow> = stmt
                .query_map(rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())), operation)?
                .collect::<Result<_, _>>()?;
            let next = if rows.len() > page_size {
                rows.truncate(page_size);
                rows.last().map(|r| r.position)
            } else {
                None
            };
            Ok((rows, next))
        })
        .await
    }

    async fn set_operation_state(
        &self,
        id: &str,
        state: i32,
        message: &str,
        started: Option<i64>,
        ended: Option<i64>,
    ) -> Result<(), StoreError> {
        let (id, message) = (id.to_string(), message.to_string());
        self.run(move |conn| {
            conn.execute(
                "UPDATE operations SET state = ?2, message = ?3, start_time = COALESCE(?4, start_time), \
                 end_time = COALESCE(?5, end_time) WHERE id = ?1",
                params![id, state, message, started, ended],
            )?;
            Ok(())
        })
        .await
    }

    async fn unfinished_operations(&self, final_states: &[i32]) -> Result<Vec<OperationRow>, StoreError> {
        let marks: Vec<String> = final_states.iter().map(|s| s.to_string()).collect();
        self.run(move |conn| {
            let sql = format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE state NOT IN ({}) ORDER BY position",
                marks.join(",")
            );
            let mut stmt = conn.prepare(&sql)?;
            let rows = stmt.query_map([], operation)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn expire_operations(&self, expiry: &Expiry) -> Result<u64, StoreError> {
        let select = expiry.select_sql("?1");
        let ended_before = expiry.ended_before;
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let ids: Vec<String> = {
                let mut stmt = tx.prepare(&select)?;
                stmt.query_map([ended_before], |r| r.get(0))?.collect::<Result<_, _>>()?
            };
            for table in ["events", "account_results"] {
                let mut stmt = tx.prepare_cached(&format!("DELETE FROM {table} WHERE operation_id = ?1"))?;
                for id in &ids {
                    stmt.execute([id])?;
                }
            }
            {
                let mut stmt = tx.prepare_cached("DELETE FROM operations WHERE id = ?1")?;
                for id in &ids {
                    stmt.execute([id])?;
                }
            }
            tx.commit()?;
            Ok(ids.len() as u64)
        })
        .await
    }

    async fn persist(&self, operation: &str, batch: Batch) -> Result<(), StoreError> {
        let operation = operation.to_string();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO account_results (operation_id, idx, account_id, outcome, result) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for r in &batch.rows {
                    stmt.execute(params![operation, r.index, r.account_id, r.outcome, r.result])?;
                }
            }
            let mut last = 0;
            {
                // A plain INSERT: a sequence number used twice is a bug to report, not a row to drop.
                let mut stmt =
                    tx.prepare_cached("INSERT INTO events (operation_id, sequence, payload) VALUES (?1, ?2, ?3)")?;
                for e in &batch.events {
                    last = last.max(e.sequence);
                    stmt.execute(params![operation, e.sequence as i64, e.payload])?;
                }
            }
            if let Some(stats) = &batch.stats {
                let calls = serde_json::to_string(&stats.aws_calls).unwrap_or_else(|_| "{}".into());
                tx.execute(
                    "UPDATE operations SET aws_calls = ?2, throttled_calls = ?3 WHERE id = ?1",
                    params![operation, calls, stats.throttled as i64],
                )?;
            }
            if last > 0 {
                tx.execute(
                    "UPDATE operations SET last_sequence = MAX(last_sequence, ?2) WHERE id = ?1",
                    params![operation, last as i64],
                )?;
            }
            if let Some(end) = &batch.end {
                tx.execute(
                    "UPDATE operations SET state = ?2, message = ?3, end_time = ?4 WHERE id = ?1",
                    params![operation, end.state, end.message, end.end_time],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_accounts(
        &self,
        operation: &str,
        outcomes: &[i32],
        page_size: usize,
        after_index: Option<u32>,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let operation = operation.to_string();
        let filter = if outcomes.is_empty() {
            String::new()
        } else {
            format!(" AND outcome IN ({})", outcomes.iter().map(|o| o.to_string()).collect::<Vec<_>>().join(","))
        };
        self.run(move |conn| {
            let sql = format!(
                "SELECT idx, account_id, outcome, result FROM account_results WHERE operation_id = ?1 AND idx > ?2{filter} \
                 ORDER BY idx LIMIT ?3"
            );
            let mut stmt = conn.prepare(&sql)?;
            let after = after_index.map(i64::from).unwrap_or(-1);
            let rows = stmt
                .query_map(params![operation, after, page_size as i64], |r| {
                    Ok(AccountRow { index: r.get(0)?, account_id: r.get(1)?, outcome: r.get(2)?, result: r.get(3)? })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn count_accounts(&self, operation: &str) -> Result<BTreeMap<i32, u32>, StoreError> {
        let operation = operation.to_string();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT outcome, COUNT(*) FROM account_results WHERE operation_id = ?1 GROUP BY outcome",
            )?;
            let rows = stmt
                .query_map([operation], |r| Ok((r.get::<_, i32>(0)?, r.get::<_, u32>(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn organization_tree(&self) -> Result<Option<Discovered>, StoreError> {
        self.run(|conn| {
            Ok(conn
                .query_row("SELECT fetched_at, tree FROM organization_tree WHERE id = 1", [], |r| {
                    Ok(Discovered { fetched_at_ms: r.get(0)?, payload: r.get(1)? })
                })
                .optional()?)
        })
        .await
    }

    async fn save_organization_tree(&self, tree: Discovered) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO organization_tree (id, fetched_at, tree) VALUES (1, ?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET fetched_at = excluded.fetched_at, tree = excluded.tree",
                params![tree.fetched_at_ms, tree.payload],
            )?;
            Ok(())
        })
        .await
    }

    async fn account_tags(&self) -> Result<Vec<(String, Discovered)>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn.prepare_cached("SELECT account_id, fetched_at, tags FROM account_tags")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, Discovered { fetched_at_ms: r.get(1)?, payload: r.get(2)? })))?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn save_account_tags(&self, tags: Vec<(String, Discovered)>) -> Result<(), StoreError> {
        self.run(move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO account_tags (account_id, fetched_at, tags) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (account_id) DO UPDATE SET fetched_at = excluded.fetched_at, tags = excluded.tags",
                )?;
                for (account, d) in tags {
                    stmt.execute(params![account, d.fetched_at_ms, d.payload])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn read_events(
        &self,
        operation: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let operation = operation.to_string();
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT sequence, payload FROM events WHERE operation_id = ?1 AND sequence > ?2 ORDER BY sequence LIMIT ?3",
            )?;
            let rows = stmt
                .query_map(params![operation, after_sequence as i64, limit as i64], |r| {
                    Ok(EventRow { sequence: r.get::<_, i64>(0)? as u64, payload: r.get(1)? })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn placements(&self, spec_name: &str) -> Result<Vec<String>, StoreError> {
        let spec_name = spec_name.to_string();
        self.run(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT account_id FROM placements WHERE spec_name = ?1 ORDER BY account_id")?;
            let rows = stmt.query_map([spec_name], |r| r.get(0))?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn placed(&self, spec_name: &str, account_id: &str) -> Result<bool, StoreError> {
        let (spec_name, account_id) = (spec_name.to_string(), account_id.to_string());
        self.run(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT 1 FROM placements WHERE spec_name = ?1 AND account_id = ?2")?;
            Ok(stmt.exists(params![spec_name, account_id])?)
        })
        .await
    }

    async fn set_placement(&self, spec_name: &str, account_id: &str, present: bool) -> Result<(), StoreError> {
        let (spec_name, account_id) = (spec_name.to_string(), account_id.to_string());
        self.run(move |conn| {
            if present {
                conn.execute(
                    "INSERT OR IGNORE INTO placements (spec_name, account_id) VALUES (?1, ?2)",
                    params![spec_name, account_id],
                )?;
            } else {
                conn.execute(
                    "DELETE FROM placements WHERE spec_name = ?1 AND account_id = ?2",
                    params![spec_name, account_id],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn audit(&self, e: AuditEntry) -> Result<(), StoreError> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO audit (time, caller, method, spec_name, operation_id, request, outcome, caller_subject) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    e.time,
                    e.caller,
                    e.method,
                    e.spec_name,
                    e.operation_id,
                    e.request,
                    e.outcome,
                    e.caller_subject
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (clause, values) = filter.clause();
        self.run(move |conn| {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE {clause} ORDER BY id DESC LIMIT ?");
            let mut stmt = conn.prepare(&sql)?;
            let mut bound: Vec<rusqlite::types::Value> = vec![before.unwrap_or(i64::MAX).into()];
            bound.extend(values.into_iter().map(|v| match v {
                AuditValue::Int(n) => n.into(),
                AuditValue::Text(t) => t.into(),
            }));
            bound.push((page_size as i64).into());
            let rows = stmt
                .query_map(rusqlite::params_from_iter(bound), |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        time: r.get(1)?,
                        caller: r.get(2)?,
                        method: r.get(3)?,
                        spec_name: r.get(4)?,
                        operation_id: r.get(5)?,
                        request: r.get(6)?,
                        outcome: r.get(7)?,
                        caller_subject: r.get(8)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn expire_audit(&self, before: i64) -> Result<u64, StoreError> {
        self.run(move |conn| Ok(conn.execute("DELETE FROM audit WHERE time < ?1", [before])? as u64)).await
    }

    async fn create_binding(&self, row: BindingRow) -> Result<bool, StoreError> {
        self.run(move |conn| {
            let n = conn.execute(
                "INSERT OR IGNORE INTO bindings (name, version, binding, status, create_time, update_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.name, row.version as i64, row.binding, row.status, row.create_time, row.update_time],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn update_binding(
        &self,
        name: &str,
        binding_blob: Vec<u8>,
        expected: Option<u64>,
        time: i64,
    ) -> Result<Option<BindingRow>, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            let tx = conn.transaction()?;
            let Some(current) = tx
                .query_row(
                    "SELECT name, version, binding, status, create_time, update_time FROM bindings WHERE name = ?1",
                    [&name],
                    binding,
                )
                .optional()?
            else {
                return Ok(None);
            };
            if let Some(expected) = expected.filter(|e| *e != current.version) {
                return Err(StoreError::VersionMismatch { name, expected, actual: current.version });
            }
            tx.execute(
                "UPDATE bindings SET version = version + 1, binding = ?2, update_time = ?3 WHERE name = ?1",
                params![name, binding_blob, time],
            )?;
            let row = tx.query_row(
                "SELECT name, version, binding, status, create_time, update_time FROM bindings WHERE name = ?1",
                [&name],
                binding,
            )?;
            tx.commit()?;
            Ok(Some(row))
        })
        .await
    }

    async fn set_binding_status(&self, name: &str, status: Vec<u8>) -> Result<(), StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            conn.execute("UPDATE bindings SET status = ?2 WHERE name = ?1", params![name, status])?;
            Ok(())
        })
        .await
    }

    async fn get_binding(&self, name: &str) -> Result<Option<BindingRow>, StoreError> {
        let name = name.to_string();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT name, version, binding, status, create_time, update_time FROM bindings WHERE name = ?1",
                    [name],
                    binding,
                )
                .optional()?)
        })
        .await
    }

    async fn list_bindings(&self, page_size: usize, after: Option<&str>) -> Result<Vec<BindingRow>, StoreError> {
        let after = after.unwrap_or("").to_string();
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT name, version, binding, status, create_time, update_time FROM bindings WHERE name > ?1 ORDER BY name LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, page_size as i64], binding)?.collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn delete_binding(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.run(move |conn| Ok(conn.execute("DELETE FROM bindings WHERE name = ?1", [name])? == 1)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_op(id: &str, key: Option<&str>, fingerprint: &str) -> NewOperation {
        NewOperation {
            id: id.into(),
            kind: 1,
            spec_name: "audit".into(),
            spec: vec![1, 2, 3],
            idempotency_key: key.map(String::from),
            request_fingerprint: fingerprint.into(),
            binding_name: None,
            created_by: "ci".into(),
            create_time: 1000,
            state: 1,
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
                    .map(|i| AccountRow { index: i, account_id: format!("{i:012}"), outcome: 1, result: vec![] })
                    .collect(),
            )
            .await
            .unwrap();
            j.put_accounts(
                "a",
                vec![AccountRow { index: 2, account_id: "000000000002".into(), outcome: 3, result: vec![9] }],
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
            again.rows.push(AccountRow { index: 4, account_id: "000000000004".into(), outcome: 6, result: vec![] });
            assert!(j.persist("a", again).await.is_err());
            j.set_placement("audit", "222233334444", true).await.unwrap();
            j.set_placement("audit", "111122223333", true).await.unwrap();
            j.set_placement("audit", "222233334444", false).await.unwrap();
            let stats =
                crate::OperationStats { aws_calls: [("iam:CreateRole".to_string(), 5u64)].into(), throttled: 2 };
            j.persist("a", Batch { stats: Some(stats), ..Batch::default() }).await.unwrap();
        }
        let j = SqliteJournal::open(&path).unwrap();
        let counts = j.count_accounts("a").await.unwrap();
        assert_eq!(counts, BTreeMap::from([(1, 4), (3, 1)]), "the failed batch wrote no row");
        assert!(j.read_events("a", 10, 10).await.unwrap().is_empty(), "the failed batch wrote no event");
        let changed = j.list_accounts("a", &[3], 10, None).await.unwrap();
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
        assert_eq!(j.organization_tree().await.unwrap(), Some(d(2, b"tree")));
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
}
