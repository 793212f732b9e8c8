//! The journal on SQLite: one file, WAL mode, one connection behind a mutex, work on the blocking pool.
//!
//! Each part of the journal is a module of plain functions over the connection (`operations`, `accounts`,
//! `events`, `bindings`, `audit`, `discovered`, `payloads`, `waiting`; the schema in `schema`); [`Journal`] runs
//! them on the blocking pool.

mod accounts;
mod audit;
mod bindings;
mod discovered;
mod ends;
mod events;
mod keys;
mod operations;
mod payloads;
mod schema;
#[cfg(test)]
mod tests;
mod waiting;

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use rusqlite::Connection;

use crate::{
    AccessEndRow, AccountRow, AuditEntry, AuditFilter, Batch, BindingRow, Discovered, EventRow, Expiry, Journal,
    KeyEvidence, NewOperation, OperationFilter, OperationRow, PayloadFormat, Rewrite, SavedTree, StateChange,
    StoreError, StoredOutcome, WaitingAccount,
};

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
        schema::migrate(&mut conn)?;
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

#[async_trait]
impl Journal for SqliteJournal {
    async fn payload_format(&self) -> Result<PayloadFormat, StoreError> {
        self.run(|conn| payloads::format(conn)).await
    }

    async fn rewrite_payloads(&self, rewrite: Rewrite, format: PayloadFormat) -> Result<u64, StoreError> {
        self.run(move |conn| payloads::rewrite(conn, rewrite, format)).await
    }

    async fn key_evidence(&self) -> Result<KeyEvidence, StoreError> {
        self.run(|conn| keys::evidence(conn)).await
    }

    async fn record_key_check(&self, check: &str) -> Result<bool, StoreError> {
        let check = check.to_string();
        self.run(move |conn| keys::record(conn, &check)).await
    }

    async fn create_operation(&self, op: NewOperation) -> Result<(OperationRow, bool), StoreError> {
        self.run(move |conn| operations::create(conn, op)).await
    }

    async fn get_operation(&self, id: &str) -> Result<Option<OperationRow>, StoreError> {
        let id = id.to_string();
        self.run(move |conn| operations::get(conn, &id)).await
    }

    async fn list_operations(
        &self,
        filter: &OperationFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<(Vec<OperationRow>, Option<i64>), StoreError> {
        let filter = filter.clone();
        self.run(move |conn| operations::list(conn, &filter, page_size, before)).await
    }

    async fn change_state(&self, id: &str, change: StateChange) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |conn| operations::change_state(conn, &id, &change)).await
    }

    async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        self.run(|conn| operations::unfinished(conn)).await
    }

    async fn expire_operations(&self, expiry: &Expiry) -> Result<u64, StoreError> {
        let expiry = expiry.clone();
        self.run(move |conn| operations::expire(conn, &expiry)).await
    }

    async fn persist(&self, operation: &str, batch: Batch) -> Result<(), StoreError> {
        let operation = operation.to_string();
        self.run(move |conn| events::persist(conn, &operation, batch)).await
    }

    async fn list_accounts(
        &self,
        operation: &str,
        outcomes: &[StoredOutcome],
        page_size: usize,
        after_index: Option<u32>,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let (operation, outcomes) = (operation.to_string(), outcomes.to_vec());
        self.run(move |conn| accounts::list(conn, &operation, &outcomes, page_size, after_index)).await
    }

    async fn count_accounts(&self, operation: &str) -> Result<BTreeMap<StoredOutcome, u32>, StoreError> {
        let operation = operation.to_string();
        self.run(move |conn| accounts::count(conn, &operation)).await
    }

    async fn organization_tree(&self, newer_than: u64) -> Result<Option<SavedTree>, StoreError> {
        self.run(move |conn| discovered::tree(conn, newer_than)).await
    }

    async fn save_organization_tree(&self, tree: Discovered) -> Result<u64, StoreError> {
        self.run(move |conn| discovered::save_tree(conn, tree)).await
    }

    async fn account_tags(&self) -> Result<Vec<(String, Discovered)>, StoreError> {
        self.run(|conn| discovered::tags(conn)).await
    }

    async fn save_account_tags(&self, tags: Vec<(String, Discovered)>) -> Result<(), StoreError> {
        self.run(move |conn| discovered::save_tags(conn, tags)).await
    }

    async fn note_members(&self, at_ms: i64, account_ids: Vec<String>) -> Result<(), StoreError> {
        self.run(move |conn| discovered::note_members(conn, at_ms, account_ids)).await
    }

    async fn members_seen(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.run(|conn| discovered::members_seen(conn)).await
    }

    async fn read_events(
        &self,
        operation: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let operation = operation.to_string();
        self.run(move |conn| events::read(conn, &operation, after_sequence, limit)).await
    }

    async fn placements(&self, spec_name: &str) -> Result<Vec<String>, StoreError> {
        let spec_name = spec_name.to_string();
        self.run(move |conn| accounts::placements(conn, &spec_name)).await
    }

    async fn placed(&self, spec_name: &str, account_id: &str) -> Result<bool, StoreError> {
        let (spec_name, account_id) = (spec_name.to_string(), account_id.to_string());
        self.run(move |conn| accounts::placed(conn, &spec_name, &account_id)).await
    }

    async fn set_placement(&self, spec_name: &str, account_id: &str, present: bool) -> Result<(), StoreError> {
        let (spec_name, account_id) = (spec_name.to_string(), account_id.to_string());
        self.run(move |conn| accounts::set_placement(conn, &spec_name, &account_id, present)).await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.run(move |conn| audit::record(conn, entry)).await
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let filter = filter.clone();
        self.run(move |conn| audit::read(conn, &filter, page_size, before)).await
    }

    async fn expire_audit(&self, before: i64) -> Result<u64, StoreError> {
        self.run(move |conn| audit::expire(conn, before)).await
    }

    async fn create_binding(&self, row: BindingRow) -> Result<bool, StoreError> {
        self.run(move |conn| bindings::create(conn, row)).await
    }

    async fn update_binding(
        &self,
        name: &str,
        binding: Vec<u8>,
        expected: Option<u64>,
        time: i64,
    ) -> Result<Option<BindingRow>, StoreError> {
        let name = name.to_string();
        self.run(move |conn| bindings::update(conn, &name, binding, expected, time)).await
    }

    async fn set_binding_status(&self, name: &str, status: Vec<u8>) -> Result<(), StoreError> {
        let name = name.to_string();
        self.run(move |conn| bindings::set_status(conn, &name, status)).await
    }

    async fn get_binding(&self, name: &str) -> Result<Option<BindingRow>, StoreError> {
        let name = name.to_string();
        self.run(move |conn| bindings::get(conn, &name)).await
    }

    async fn list_bindings(&self, page_size: usize, after: Option<&str>) -> Result<Vec<BindingRow>, StoreError> {
        let after = after.unwrap_or("").to_string();
        self.run(move |conn| bindings::list(conn, page_size, &after)).await
    }

    async fn delete_binding(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.run(move |conn| bindings::delete(conn, &name)).await
    }

    async fn waiting_accounts(&self) -> Result<Vec<WaitingAccount>, StoreError> {
        self.run(|conn| waiting::list(conn)).await
    }

    async fn set_access_end(&self, row: AccessEndRow) -> Result<Option<AccessEndRow>, StoreError> {
        self.run(move |conn| ends::set(conn, row)).await
    }

    async fn clear_access_end(&self, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
        let spec_name = spec_name.to_string();
        self.run(move |conn| ends::clear(conn, &spec_name)).await
    }

    async fn access_end(&self, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
        let spec_name = spec_name.to_string();
        self.run(move |conn| ends::get(conn, &spec_name)).await
    }

    async fn access_ends_due(&self, now: i64) -> Result<Vec<AccessEndRow>, StoreError> {
        self.run(move |conn| ends::due(conn, now)).await
    }

    async fn take_access_end(&self, spec_name: &str, expires_at: i64, operation: &str) -> Result<bool, StoreError> {
        let (spec_name, operation) = (spec_name.to_string(), operation.to_string());
        self.run(move |conn| ends::take(conn, &spec_name, expires_at, &operation)).await
    }

    async fn wait_accounts(
        &self,
        binding: &str,
        accounts: &[String],
        created_by: &str,
        due_at: i64,
    ) -> Result<(), StoreError> {
        let (binding, accounts, created_by) = (binding.to_string(), accounts.to_vec(), created_by.to_string());
        self.run(move |conn| waiting::wait(conn, &binding, &accounts, &created_by, due_at)).await
    }

    async fn take_accounts(&self, binding: &str, accounts: &[String], operation: &str) -> Result<(), StoreError> {
        let (binding, accounts, operation) = (binding.to_string(), accounts.to_vec(), operation.to_string());
        self.run(move |conn| waiting::take(conn, &binding, &accounts, &operation)).await
    }

    async fn settle_accounts(
        &self,
        operation: &str,
        retry: &[String],
        due_at: i64,
        max_attempts: u32,
    ) -> Result<(), StoreError> {
        let (operation, retry) = (operation.to_string(), retry.to_vec());
        self.run(move |conn| waiting::settle(conn, &operation, &retry, due_at, max_attempts)).await
    }
}
