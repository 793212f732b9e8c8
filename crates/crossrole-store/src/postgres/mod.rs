//! The PostgreSQL journal: the same [`Journal`] as SQLite, on a database the operator already runs, backs up and
//! fails over.
//!
//! Selected by a `postgres://` URL. Versioned migrations run when crossroled starts, in one transaction under an
//! advisory lock, so two crossroleds starting together do not both migrate; a schema newer than this crossroled is
//! refused (`schema`). TLS as the URL's `sslmode` asks (`disable`, `prefer`, `require`), the server's certificate
//! verified against the system's roots and, when given, the operator's CA file (`connection`). The password comes
//! from the URL or, better, from [`PostgresOptions::password`] (crossroled reads it from a file or the
//! environment); it is never logged.
//!
//! **One writer** (`writer`), as with SQLite's data-directory lock: a crossroled holds a session advisory lock on a
//! connection of its own for its whole life, and a second crossroled on the same database is refused, naming the
//! holder. The lock is PostgreSQL's, so it ends with the holder's session: a crossroled killed with -9 leaves
//! nothing to clean up. With [`PostgresOptions::standby`], a second crossroled waits for the lock instead of being
//! refused, and takes the journal over the moment the holder's session ends (then resumes what the holder left
//! unfinished): active/passive high availability. The writer's lock and a replica's lease are held on a session
//! of their own (`session`), renewed every heartbeat: if a renewal is not confirmed in time, every write fails
//! from then on — the journal's, and AWS's through the call layer's fence (another crossroled may hold the journal
//! soon) — and its coordination's [`Coordination::writer_lost`] resolves: crossroled then stops, to be restarted. With [`PostgresOptions::shared`] instead, every replica works:
//! operations are owned by the replica running them and claimed by another when their owner dies, and roles are
//! locked across replicas (`shared`). Either way, [`PostgresJournal::coordination`] is how its crossroleds share
//! the work, apart from the journal.
//!
//! Writes that go together are one transaction, as in SQLite: an event batch with its account rows, counters and
//! end ([`Journal::persist`]); a rewrite of every payload ([`Journal::rewrite_payloads`]). Each part of the journal
//! is a module of functions over a connection (`operations`, `accounts`, `events`, `bindings`, `audit`,
//! `discovered`, `payloads`, `waiting`).

mod accounts;
mod audit;
mod bindings;
mod connection;
mod discovered;
mod ends;
mod events;
mod keys;
mod operations;
mod payloads;
mod schema;
mod session;
mod shared;
mod waiting;
mod writer;

use std::{collections::BTreeMap, path::PathBuf, str::FromStr, sync::Arc};

use async_trait::async_trait;
use deadpool_postgres::Pool;

pub use connection::redacted_url;

use crate::{
    AccessEndRow, AccountRow, AuditEntry, AuditFilter, Batch, BindingRow, Coordination, Discovered, EventRow, Expiry,
    Journal, KeyEvidence, NewOperation, OperationFilter, OperationRow, PayloadFormat, Rewrite, SavedTree, StateChange,
    StoreError, StoredOutcome, WaitingAccount,
};

/// How to reach the database, besides its URL.
#[derive(Clone)]
pub struct PostgresOptions {
    /// The password, when not in the URL (read by crossroled from a file or the environment).
    pub password: Option<String>,
    /// A CA certificate file (PEM) to verify the server with, besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Connections in the pool (16 by default; at least 2).
    pub pool_size: usize,
    /// When another crossroled holds the journal, wait to take it over (a standby) instead of being refused.
    pub standby: bool,
    /// A standby's journal for reading while it waits is handed here (it refuses every write with
    /// [`StoreError::Standby`]), so that the standby can answer reads meanwhile.
    pub while_waiting: Option<Arc<dyn Fn(PostgresJournal) + Send + Sync>>,
    /// Share the journal's work with other live replicas (active/active; see `shared`) instead of one writer.
    pub shared: bool,
    /// With `shared`: how long a replica is alive without renewing its lease (15 s by default). Another replica
    /// takes a killed one's operations after this long.
    pub lease: std::time::Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            password: None,
            ca_file: None,
            pool_size: 16,
            standby: false,
            while_waiting: None,
            shared: false,
            lease: std::time::Duration::from_secs(15),
        }
    }
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .field("standby", &self.standby)
            .field("while_waiting", &self.while_waiting.is_some())
            .field("shared", &self.shared)
            .field("lease", &self.lease)
            .finish()
    }
}

/// The PostgreSQL journal.
#[derive(Clone)]
pub struct PostgresJournal {
    pool: Pool,
    /// Whether, and until when, this process may write: it holds the writer lock, or, a replica, its lease,
    /// renewed in time. Every write checks it: the lock or lease fences the journal.
    place: session::Place,
    /// The database, for messages (no password).
    name: Arc<str>,
    /// The session holding the writer lock or the lease; it ends when the last clone of the journal is dropped.
    session: Arc<tokio_postgres::Client>,
    /// A standby's reading journal: who writes the journal meanwhile.
    standby_of: Option<Arc<str>>,
    /// This process as one of several live replicas sharing the journal's work.
    replica: Option<Arc<shared::Replica>>,
}

impl PostgresJournal {
    /// Connects to `url`, takes the writer lock (or, `shared`, joins the replicas) and migrates the schema forward.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresJournal, StoreError> {
        let name: Arc<str> = redacted_url(url).into();
        let mut config =
            tokio_postgres::Config::from_str(url).map_err(|e| StoreError::Io(format!("journal URL {name}: {e}")))?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        config.application_name("crossroled");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // A crossroled paused or cut off inside a transaction must not hold its rows locked past its lease: the
        // database ends such a session (the one that takes the work over would skip the locked rows forever).
        let lease_ms = options.lease.as_millis().max(1000);
        let options_of_url = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        config.options(format!("{options_of_url}-c idle_in_transaction_session_timeout={lease_ms}"));
        let tls = connection::tls(&options)?;
        if options.shared {
            shared::connect(config, tls, &options, name).await
        } else {
            writer::connect(config, tls, &options, name).await
        }
    }

    /// How the crossroleds of this journal share its work, as it was connected: the one writer's (which loses the
    /// journal when its lock's session ends), or, `shared`, this replica's among the others.
    pub fn coordination(&self) -> Arc<dyn Coordination> {
        match &self.replica {
            Some(replica) => Arc::new(shared::Replicas { journal: self.clone(), replica: replica.clone() }),
            None => Arc::new(writer::WriterLock { journal: self.clone() }),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        schema::migrate(&mut self.client().await?).await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| StoreError::Io(format!("journal {}: {e}", self.name)))
    }

    /// For a standby's reading journal, what its writes are refused with.
    pub fn standby_error(&self) -> Option<StoreError> {
        let holder = self.standby_of.as_ref()?;
        Some(StoreError::Standby { journal: self.name.to_string(), holder: holder.to_string() })
    }

    /// A client for a write: refused once the writer lock may be lost, and always on a standby.
    async fn writer(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if let Some(refused) = self.standby_error() {
            return Err(refused);
        }
        if !self.place.may_write() {
            let why = self.place.why().unwrap_or_else(|| "its place was not renewed in time".into());
            return Err(StoreError::Io(match &self.replica {
                Some(r) => {
                    format!("replica {} ({}) writes nothing more to the journal {}: {why}", r.id, r.name, self.name)
                }
                None => format!(
                    "this crossroled writes nothing more to the journal {} (another may hold it now; restart it): {why}",
                    self.name
                ),
            }));
        }
        self.client().await
    }
}

#[async_trait]
impl Journal for PostgresJournal {
    async fn payload_format(&self) -> Result<PayloadFormat, StoreError> {
        payloads::format(&*self.client().await?).await
    }

    async fn rewrite_payloads(&self, rewrite: Rewrite, format: PayloadFormat) -> Result<u64, StoreError> {
        payloads::rewrite(&mut self.writer().await?, rewrite, format).await
    }

    async fn key_evidence(&self) -> Result<KeyEvidence, StoreError> {
        keys::evidence(&*self.client().await?).await
    }

    async fn record_key_check(&self, check: &str) -> Result<bool, StoreError> {
        keys::record(&*self.writer().await?, check).await
    }

    async fn organization_tree(&self, newer_than: u64) -> Result<Option<SavedTree>, StoreError> {
        discovered::tree(&*self.client().await?, newer_than).await
    }

    async fn save_organization_tree(&self, tree: Discovered) -> Result<u64, StoreError> {
        discovered::save_tree(&*self.writer().await?, tree).await
    }

    async fn account_tags(&self) -> Result<Vec<(String, Discovered)>, StoreError> {
        discovered::tags(&*self.client().await?).await
    }

    async fn save_account_tags(&self, tags: Vec<(String, Discovered)>) -> Result<(), StoreError> {
        discovered::save_tags(&*self.writer().await?, tags).await
    }

    async fn note_members(&self, at_ms: i64, account_ids: Vec<String>) -> Result<(), StoreError> {
        discovered::note_members(&*self.writer().await?, at_ms, account_ids).await
    }

    async fn members_seen(&self) -> Result<Vec<(String, i64)>, StoreError> {
        discovered::members_seen(&*self.client().await?).await
    }

    async fn create_operation(&self, op: NewOperation) -> Result<(OperationRow, bool), StoreError> {
        let owner = self.replica.as_ref().map(|r| r.id.clone());
        operations::create(&mut self.writer().await?, op, owner).await
    }

    async fn get_operation(&self, id: &str) -> Result<Option<OperationRow>, StoreError> {
        operations::get(&*self.client().await?, id).await
    }

    async fn list_operations(
        &self,
        filter: &OperationFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<(Vec<OperationRow>, Option<i64>), StoreError> {
        operations::list(&*self.client().await?, filter, page_size, before).await
    }

    async fn change_state(&self, id: &str, change: StateChange) -> Result<bool, StoreError> {
        operations::change_state(&*self.writer().await?, id, &change).await
    }

    async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError> {
        operations::unfinished(&*self.client().await?).await
    }

    async fn expire_operations(&self, expiry: &Expiry) -> Result<u64, StoreError> {
        operations::expire(&mut self.writer().await?, expiry).await
    }

    async fn persist(&self, operation: &str, batch: Batch) -> Result<(), StoreError> {
        events::persist(&mut self.writer().await?, self.replica.as_deref(), operation, batch).await
    }

    async fn list_accounts(
        &self,
        operation: &str,
        outcomes: &[StoredOutcome],
        page_size: usize,
        after_index: Option<u32>,
    ) -> Result<Vec<AccountRow>, StoreError> {
        accounts::list(&*self.client().await?, operation, outcomes, page_size, after_index).await
    }

    async fn count_accounts(&self, operation: &str) -> Result<BTreeMap<StoredOutcome, u32>, StoreError> {
        accounts::count(&*self.client().await?, operation).await
    }

    async fn read_events(
        &self,
        operation: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        events::read(&*self.client().await?, operation, after_sequence, limit).await
    }

    async fn placements(&self, spec_name: &str) -> Result<Vec<String>, StoreError> {
        accounts::placements(&*self.client().await?, spec_name).await
    }

    async fn placed(&self, spec_name: &str, account_id: &str) -> Result<bool, StoreError> {
        accounts::placed(&*self.client().await?, spec_name, account_id).await
    }

    async fn set_placement(&self, spec_name: &str, account_id: &str, present: bool) -> Result<(), StoreError> {
        accounts::set_placement(&*self.writer().await?, spec_name, account_id, present).await
    }

    async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        audit::record(&*self.writer().await?, entry).await
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        audit::read(&*self.client().await?, filter, page_size, before).await
    }

    async fn expire_audit(&self, before: i64) -> Result<u64, StoreError> {
        audit::expire(&*self.writer().await?, before).await
    }

    async fn create_binding(&self, row: BindingRow) -> Result<bool, StoreError> {
        bindings::create(&*self.writer().await?, row).await
    }

    async fn update_binding(
        &self,
        name: &str,
        binding: Vec<u8>,
        expected: Option<u64>,
        time: i64,
    ) -> Result<Option<BindingRow>, StoreError> {
        bindings::update(&mut self.writer().await?, name, binding, expected, time).await
    }

    async fn set_binding_status(&self, name: &str, status: Vec<u8>) -> Result<(), StoreError> {
        bindings::set_status(&*self.writer().await?, name, status).await
    }

    async fn get_binding(&self, name: &str) -> Result<Option<BindingRow>, StoreError> {
        bindings::get(&*self.client().await?, name).await
    }

    async fn list_bindings(&self, page_size: usize, after: Option<&str>) -> Result<Vec<BindingRow>, StoreError> {
        bindings::list(&*self.client().await?, page_size, after).await
    }

    async fn delete_binding(&self, name: &str) -> Result<bool, StoreError> {
        bindings::delete(&mut self.writer().await?, name).await
    }

    async fn waiting_accounts(&self) -> Result<Vec<WaitingAccount>, StoreError> {
        waiting::list(&*self.client().await?).await
    }

    async fn set_access_end(&self, row: AccessEndRow) -> Result<Option<AccessEndRow>, StoreError> {
        ends::set(&mut self.writer().await?, row).await
    }

    async fn clear_access_end(&self, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
        ends::clear(&mut self.writer().await?, spec_name).await
    }

    async fn access_end(&self, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError> {
        ends::get(&**self.client().await?, spec_name).await
    }

    async fn access_ends_due(&self, now: i64) -> Result<Vec<AccessEndRow>, StoreError> {
        ends::due(&**self.client().await?, now).await
    }

    async fn take_access_end(&self, spec_name: &str, expires_at: i64, operation: &str) -> Result<bool, StoreError> {
        ends::take(&**self.writer().await?, spec_name, expires_at, operation).await
    }

    async fn wait_accounts(
        &self,
        binding: &str,
        accounts: &[String],
        created_by: &str,
        due_at: i64,
    ) -> Result<(), StoreError> {
        waiting::wait(&*self.writer().await?, binding, accounts, created_by, due_at).await
    }

    async fn take_accounts(&self, binding: &str, accounts: &[String], operation: &str) -> Result<(), StoreError> {
        waiting::take(&*self.writer().await?, binding, accounts, operation).await
    }

    async fn settle_accounts(
        &self,
        operation: &str,
        retry: &[String],
        due_at: i64,
        max_attempts: u32,
    ) -> Result<(), StoreError> {
        waiting::settle(&mut self.writer().await?, operation, retry, due_at, max_attempts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_messages() {
        assert_eq!(redacted_url("postgres://crossrole:s3cret@db:5432/j"), "postgres://crossrole@db:5432/j");
        assert_eq!(redacted_url("postgres://db/j"), "postgres://db/j");
        let o = PostgresOptions { password: Some("s3cret".into()), ..PostgresOptions::default() };
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
