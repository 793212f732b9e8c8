//! The crossrole journal: operations, their specs, per-account results, the event log, where specs are applied
//! (placements), bindings and the audit log; and, apart from it, the coordination of the crossroleds that run it.
//!
//! [`Journal`] is the interface the engine and the server use to store; it only stores. [`SqliteJournal`]
//! implements it on one SQLite file (WAL mode), created with its schema on first open and migrated forward by
//! `PRAGMA user_version`: the embedded default. [`PostgresJournal`] implements it on PostgreSQL, for operators who
//! keep state in a database they run and back up. Both pass one conformance suite (`tests/conformance`). Each
//! backend is a module per part of the journal (operations, accounts, events, bindings, audit, what discovery
//! read, the accounts events named waiting for a reconcile, payload rewrites).
//!
//! What several crossroleds may write at the same instant is decided in the journal, not in any one's memory: an
//! operation's state moves only from the state its writer read, and never once it has ended
//! ([`Journal::change_state`]); a binding has at most one unfinished reconcile ([`Journal::create_operation`]);
//! the organization's tree has a revision, so that each tells a newer tree from its own.
//!
//! Payloads (specs, account results, events, bindings and their status) are the engine's records, stored as bytes
//! next to the columns that are queried, so the journal does not need to understand them. Secrets inside them are
//! sealed with the [`JournalKey`] by the engine before they get here. The journal says which format its payloads
//! are in ([`Journal::payload_format`]): journals from before the engine's own records hold the API's protobuf
//! messages, and [`Journal::rewrite_payloads`] upgrades them in one transaction. The columns queried by an
//! operation's kind and state and an account's outcome hold integer codes, typed where they cross the trait
//! ([`StoredKind`], [`StoredState`], [`StoredOutcome`]; a code this crossroled does not know reads as `Unknown`).
//!
//! [`Coordination`] is who runs what. One process writes a journal ([`SingleNode`]): [`DataDirLock`] holds the
//! data directory for the life of a crossroled, or PostgreSQL's writer lock the database. An event batch, the
//! account rows written with it and the operation's counters are one transaction ([`Journal::persist`]). Or, on
//! PostgreSQL with `shared`, several live replicas share one journal's work: operations owned by the replica that
//! runs them and claimed by another when it dies, (account, role) locks across replicas (the replicas'
//! coordination, `postgres::shared`), and each write of progress checked by the journal against its owner.

mod codes;
mod coordination;
mod key;
mod lock;
mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;

pub use codes::{StoredKind, StoredOutcome, StoredState};
pub use coordination::{Coordination, LeaseDeadline, LeaseTimes, SingleNode};
pub use key::{JournalKey, KeyEvidence, SealedValue, private_file};
pub use lock::DataDirLock;
pub use postgres::{PostgresJournal, PostgresOptions, redacted_url};
pub use sqlite::SqliteJournal;

/// Errors of the journal.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed.
    #[error("journal: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("journal: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// An idempotency key was reused for a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// A binding's version did not match.
    #[error("binding {name:?} is at version {actual}, not {expected}")]
    VersionMismatch {
        /// Binding.
        name: String,
        /// Expected version.
        expected: u64,
        /// Stored version.
        actual: u64,
    },
    /// The journal file is newer than this crossroled understands.
    #[error("journal schema version {0} is newer than this crossroled supports ({1}); upgrade crossroled")]
    SchemaTooNew(i64, i64),
    /// A blocking task failed.
    #[error("journal task failed: {0}")]
    Task(String),
    /// The journal file is there but unusable; crossroled refuses to start rather than start over.
    #[error(
        "the journal {path} is damaged: {why}. crossroled will not take it for a new journal (that would forget \
         every operation and where every spec is applied). Restore it from a backup, or move it away to start \
         with an empty journal"
    )]
    Damaged {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// Another process holds the journal (its data directory, or the PostgreSQL database's writer lock).
    #[error("the journal {dir} is in use by {holder}; one crossroled per journal (stop it first)")]
    Locked {
        /// The directory.
        dir: String,
        /// Who holds it.
        holder: String,
    },
    /// This crossroled is a standby: it reads the journal while another one, the writer, holds it.
    #[error(
        "this crossroled is a standby: the journal {journal} is written by {holder}; it answers reads of operations \
         and bindings, and takes over when the writer stops; send changes to the writer"
    )]
    Standby {
        /// The journal (no password).
        journal: String,
        /// Who writes it.
        holder: String,
    },
    /// This replica may not write an operation's progress: it does not own it (any more).
    #[error("operation {operation}: this replica no longer runs it ({why}); it writes nothing more of it")]
    NotOwner {
        /// The operation.
        operation: String,
        /// Why.
        why: String,
    },
    /// A file could not be read or written.
    #[error("journal: {0}")]
    Io(String),
    /// The journal key is missing, malformed, or not the one sealed values were written with.
    #[error("{0}")]
    Key(String),
    /// A payload could not be rewritten; nothing was.
    #[error("journal upgrade: {0}; nothing was changed")]
    Rewrite(String),
}

/// A new operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOperation {
    /// The operation's id (a UUID v7, so ids sort by creation).
    pub id: String,
    /// What it does.
    pub kind: StoredKind,
    /// The name of the spec it runs (indexed for listing).
    pub spec_name: String,
    /// Encoded spec.
    pub spec: Vec<u8>,
    /// Client idempotency key.
    pub idempotency_key: Option<String>,
    /// Fingerprint of the request, to tell a retry from a reuse of the key.
    pub request_fingerprint: String,
    /// Binding that started it.
    pub binding_name: Option<String>,
    /// Token name of the caller.
    pub created_by: String,
    /// Unix milliseconds.
    pub create_time: i64,
    /// Initial state.
    pub state: StoredState,
    /// Detect only.
    pub dry_run: bool,
}

/// A stored operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationRow {
    /// The operation's id.
    pub id: String,
    /// What it does.
    pub kind: StoredKind,
    /// Where it is.
    pub state: StoredState,
    /// The name of the spec it runs.
    pub spec_name: String,
    /// Encoded spec.
    pub spec: Vec<u8>,
    /// The key its caller sent to make retries safe, if any.
    pub idempotency_key: Option<String>,
    /// Binding.
    pub binding_name: Option<String>,
    /// Creator.
    pub created_by: String,
    /// Unix ms.
    pub create_time: i64,
    /// Unix ms.
    pub start_time: Option<i64>,
    /// Unix ms.
    pub end_time: Option<i64>,
    /// Why it failed or stopped early; empty otherwise.
    pub message: String,
    /// AWS call counters (`service:Operation` → count).
    pub aws_calls: BTreeMap<String, u64>,
    /// Calls AWS throttled during it.
    pub throttled_calls: u64,
    /// Latest event sequence.
    pub last_sequence: u64,
    /// Insertion order.
    pub position: i64,
    /// Detect only.
    pub dry_run: bool,
}

/// One account of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// Position in target order.
    pub index: u32,
    /// The account the row is about.
    pub account_id: String,
    /// Where it is.
    pub outcome: StoredOutcome,
    /// Encoded result.
    pub result: Vec<u8>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Sequence, from 1 per operation.
    pub sequence: u64,
    /// Encoded event.
    pub payload: Vec<u8>,
}

/// An operation's AWS call counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationStats {
    /// Calls by `service:Operation`, retries included.
    pub aws_calls: BTreeMap<String, u64>,
    /// Calls AWS throttled.
    pub throttled: u64,
}

/// What one [`Journal::persist`] writes, in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Account rows (insert or replace by index).
    pub rows: Vec<AccountRow>,
    /// Events, each with a sequence number not used before for the operation.
    pub events: Vec<EventRow>,
    /// The operation's counters, when they changed.
    pub stats: Option<OperationStats>,
    /// The operation's end, written with its last event: a reader that sees the final event sees the final state.
    /// Written only over an unfinished operation: one that has ended keeps the end it has.
    pub end: Option<OperationEnd>,
}

/// A change of an operation's state ([`Journal::change_state`]), made only from the state its caller saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    /// The states it may move from: the one its caller read (a cancel), or the ones a move allows (a start moves
    /// only a pending operation, never one a cancel was asked of).
    pub from: Vec<StoredState>,
    /// The state it moves to.
    pub to: StoredState,
    /// Why, or what; replaces the operation's message.
    pub message: String,
    /// Sets the start time (Unix ms), if given.
    pub started: Option<i64>,
    /// Sets the end time (Unix ms), if given: the operation is finished then, and never changes again.
    pub ended: Option<i64>,
}

impl StateChange {
    /// A move from `from` to `to`, with `message` and no times.
    pub fn new(from: &[StoredState], to: StoredState, message: &str) -> StateChange {
        StateChange { from: from.to_vec(), to, message: message.to_string(), started: None, ended: None }
    }

    /// The same, setting the start time.
    pub fn started(self, at: i64) -> StateChange {
        StateChange { started: Some(at), ..self }
    }

    /// The same, setting the end time.
    pub fn ended(self, at: i64) -> StateChange {
        StateChange { ended: Some(at), ..self }
    }

    /// The states as their codes, for a query.
    pub(crate) fn codes_from(&self) -> Vec<i32> {
        self.from.iter().map(|s| s.code()).collect()
    }
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationEnd {
    /// Its final state.
    pub state: StoredState,
    /// Why it failed or stopped early; empty otherwise.
    pub message: String,
    /// When it ended, in Unix milliseconds.
    pub end_time: i64,
}

/// Filter for listing operations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperationFilter {
    /// States; empty for any.
    pub states: Vec<StoredState>,
    /// Spec name; empty for any.
    pub spec_name: String,
    /// Binding name; empty for any.
    pub binding_name: String,
}

/// The end of a spec's access, from an apply that carried one: at `expires_at` the schedule destroys the spec's
/// access, once (it records the destroy in `operation_id`, only over an end still not acted on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEndRow {
    /// The spec's name (one end per spec: a later apply's end replaces it).
    pub spec_name: String,
    /// When the access ends, Unix ms.
    pub expires_at: i64,
    /// The spec to destroy then: the engine's record, its ExternalId sealed.
    pub spec: Vec<u8>,
    /// Who set it.
    pub created_by: String,
    /// When it was set, Unix ms.
    pub update_time: i64,
    /// The destroy that acted on it, once one has.
    pub operation_id: Option<String>,
}

/// A stored binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRow {
    /// The binding's name (its spec's).
    pub name: String,
    /// Its version, from 1, one up with every update.
    pub version: u64,
    /// Encoded binding (spec, mode, interval).
    pub binding: Vec<u8>,
    /// Encoded status.
    pub status: Vec<u8>,
    /// Unix ms.
    pub create_time: i64,
    /// Unix ms.
    pub update_time: i64,
}

/// The organization's tree as the journal keeps it, with its revision: one more at every save, whichever replica
/// saved it, so that a replica tells at once whether the journal holds a newer tree than its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedTree {
    /// The revision (from 1).
    pub revision: u64,
    /// The tree, and when it was walked.
    pub tree: Discovered,
}

/// An account an Organizations event named, waiting in the journal for a reconcile of a binding it concerns: so
/// that it is reconciled once that binding's running reconcile ends, and again if that fails, whichever replica
/// runs the schedule by then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingAccount {
    /// The binding.
    pub binding: String,
    /// The account.
    pub account_id: String,
    /// Who named it (the reconcile says it was them).
    pub created_by: String,
    /// Reconciles of it that failed so far.
    pub attempts: u32,
    /// Not reconciled before this time (Unix ms).
    pub due_at: i64,
    /// The reconcile that took it, if one did.
    pub operation_id: Option<String>,
}

/// Something Organizations discovery read, kept so that a restarted crossroled starts warm: when it was read
/// (Unix milliseconds) and the engine's record of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// When it was read from Organizations, Unix milliseconds.
    pub fetched_at_ms: i64,
    /// The record (opaque to the journal).
    pub payload: Vec<u8>,
}

/// An audit record of a mutating call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its position in the log (set by the journal; ignored when recording).
    pub id: i64,
    /// Unix ms.
    pub time: i64,
    /// Token name.
    pub caller: String,
    /// The subject of the client certificate the call came with (mutual TLS), RFC 4514; empty for none.
    pub caller_subject: String,
    /// gRPC method.
    pub method: String,
    /// The spec (or binding) it was about; empty for none.
    pub spec_name: String,
    /// The operation it started or acted on; empty for none.
    pub operation_id: String,
    /// The request, as JSON, with secrets redacted.
    pub request: String,
    /// The outcome (`ok`, or the status code).
    pub outcome: String,
}

/// Which audit entries to read; empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// At or after this time (Unix ms).
    pub since: Option<i64>,
    /// Before this time (Unix ms).
    pub until: Option<i64>,
    /// This token's.
    pub caller: String,
    /// This method's.
    pub method: String,
    /// About this spec or binding.
    pub spec_name: String,
    /// About this operation.
    pub operation_id: String,
    /// About this account: calls about an operation that worked on it, and the calls that made or changed a
    /// binding whose reconciles worked on it (those run without a call of their own): who changed access to it,
    /// when, through which request.
    pub account_id: String,
}

impl AuditFilter {
    /// The WHERE clause for both backends: `?` stands for the next parameter; returns the clause and the values
    /// in order (times as i64, the rest as text).
    pub(crate) fn clause(&self) -> (String, Vec<AuditValue>) {
        let mut parts = vec!["id < ?".to_string()];
        let mut values = Vec::new();
        if let Some(t) = self.since {
            parts.push("time >= ?".into());
            values.push(AuditValue::Int(t));
        }
        if let Some(t) = self.until {
            parts.push("time < ?".into());
            values.push(AuditValue::Int(t));
        }
        for (column, value) in [
            ("caller", &self.caller),
            ("method", &self.method),
            ("spec_name", &self.spec_name),
            ("operation_id", &self.operation_id),
        ] {
            if !value.is_empty() {
                parts.push(format!("{column} = ?"));
                values.push(AuditValue::Text(value.clone()));
            }
        }
        if !self.account_id.is_empty() {
            parts.push(
                "(operation_id IN (SELECT operation_id FROM account_results WHERE account_id = ?) \
                 OR (method LIKE '%Binding' AND spec_name IN (SELECT o.binding_name FROM operations o \
                 JOIN account_results r ON r.operation_id = o.id WHERE r.account_id = ? AND o.binding_name IS NOT NULL)))"
                    .into(),
            );
            values.push(AuditValue::Text(self.account_id.clone()));
            values.push(AuditValue::Text(self.account_id.clone()));
        }
        (parts.join(" AND "), values)
    }
}

/// A value bound into an audit query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuditValue {
    Int(i64),
    Text(String),
}

/// The columns an audit entry is read from, in [`AuditEntry`]'s order.
pub(crate) const AUDIT_COLUMNS: &str =
    "id, time, caller, method, spec_name, operation_id, request, outcome, caller_subject";

/// The format of a journal's payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// The API's protobuf messages (journals created before crossrole 0.2).
    Protobuf,
    /// The engine's own versioned records.
    Records,
}

impl PayloadFormat {
    /// Its name in `journal_meta`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            PayloadFormat::Protobuf => "protobuf",
            PayloadFormat::Records => "records",
        }
    }

    /// The format a journal's `journal_meta` names.
    pub(crate) fn from_name(name: Option<&str>) -> Result<PayloadFormat, StoreError> {
        match name {
            Some("records") => Ok(PayloadFormat::Records),
            Some("protobuf") => Ok(PayloadFormat::Protobuf),
            other => {
                Err(StoreError::Io(format!("the journal's payload format {other:?} is not one this crossroled knows")))
            }
        }
    }
}

/// The columns an [`OperationRow`] is read from, in its fields' order (both backends).
pub(crate) const OPERATION_COLUMNS: &str = "id, kind, state, spec_name, spec, idempotency_key, binding_name, \
     created_by, create_time, start_time, end_time, message, aws_calls, throttled_calls, last_sequence, position, dry_run";

/// Where a kind of payload lives: table, key columns (each with its PostgreSQL type), payload column.
pub(crate) type PayloadPlace = (PayloadKind, &'static str, &'static [(&'static str, &'static str)], &'static str);

/// Where each kind of payload lives, for a rewrite of them all (both backends).
pub(crate) const PAYLOADS: &[PayloadPlace] = &[
    (PayloadKind::Spec, "operations", &[("id", "text")], "spec"),
    (PayloadKind::AccountResult, "account_results", &[("operation_id", "text"), ("idx", "integer")], "result"),
    (PayloadKind::Event, "events", &[("operation_id", "text"), ("sequence", "bigint")], "payload"),
    (PayloadKind::Binding, "bindings", &[("name", "text")], "binding"),
    (PayloadKind::BindingStatus, "bindings", &[("name", "text")], "status"),
];

/// Which payload a rewrite is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// An operation's spec.
    Spec,
    /// An account's result in an operation.
    AccountResult,
    /// An operation's event.
    Event,
    /// A binding.
    Binding,
    /// A binding's status (never empty when given).
    BindingStatus,
}

/// Rewrites one payload: given its kind and bytes, the new bytes, or why it cannot be rewritten.
pub type Rewrite = Box<dyn FnMut(PayloadKind, &[u8]) -> Result<Vec<u8>, String> + Send>;

/// Which finished operations [`Journal::expire_operations`] deletes, with their account rows and events. The newest
/// operation of each binding is always kept (its status points at it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expiry {
    /// Only operations in one of these states (the final ones).
    pub final_states: Vec<StoredState>,
    /// Only operations that ended before this time (Unix ms).
    pub ended_before: i64,
    /// Only operations of these kinds; any kind when empty.
    pub kinds: Vec<StoredKind>,
    /// Only operations whose every account row has one of these outcomes; any when empty.
    pub outcomes: Vec<StoredOutcome>,
    /// At most this many in one call, so that one transaction stays short.
    pub limit: usize,
}

impl Expiry {
    /// The ids of the operations to delete, oldest first (both backends' SQL: the sets are integers, inlined).
    pub(crate) fn select_sql(&self, ended_before: &str) -> String {
        let states = codes::sql_list(self.final_states.iter().map(|s| s.code()));
        let mut sql = format!(
            "SELECT o.id FROM operations o WHERE o.state IN ({}) AND o.end_time IS NOT NULL AND o.end_time < \
             {ended_before} AND (COALESCE(o.binding_name, '') = '' OR o.position < (SELECT MAX(b.position) FROM \
             operations b WHERE b.binding_name = o.binding_name))",
            if states.is_empty() { "NULL".to_string() } else { states }
        );
        if !self.kinds.is_empty() {
            sql.push_str(&format!(" AND o.kind IN ({})", codes::sql_list(self.kinds.iter().map(|k| k.code()))));
        }
        if !self.outcomes.is_empty() {
            sql.push_str(&format!(
                " AND NOT EXISTS (SELECT 1 FROM account_results a WHERE a.operation_id = o.id AND a.outcome NOT IN \
                 ({}))",
                codes::sql_list(self.outcomes.iter().map(|o| o.code()))
            ));
        }
        sql.push_str(&format!(" ORDER BY o.position LIMIT {}", self.limit.max(1)));
        sql
    }
}

/// The journal: what crossroled stores, and nothing of who runs it (that is [`Coordination`]).
#[async_trait]
pub trait Journal: Send + Sync {
    /// The format of the payloads.
    async fn payload_format(&self) -> Result<PayloadFormat, StoreError>;
    /// What the journal says of the key it is written under (read only: a standby may ask).
    async fn key_evidence(&self) -> Result<KeyEvidence, StoreError>;
    /// Records `check` as the journal key's check value, unless the journal has one: a check value, once recorded,
    /// is never replaced. Returns whether it did (another crossroled may have been first: read the evidence again).
    async fn record_key_check(&self, check: &str) -> Result<bool, StoreError>;
    /// The organization's tree as discovery last saved it, if its revision is above `newer_than` (0: any).
    async fn organization_tree(&self, newer_than: u64) -> Result<Option<SavedTree>, StoreError>;
    /// Saves the tree discovery walked or learned, replacing the one before; returns its revision, one more than
    /// the one before.
    async fn save_organization_tree(&self, tree: Discovered) -> Result<u64, StoreError>;
    /// Each account's tags as discovery last read them, by account id.
    async fn account_tags(&self) -> Result<Vec<(String, Discovered)>, StoreError>;
    /// Saves tags discovery read (in one transaction), replacing those read before for the same accounts.
    async fn save_account_tags(&self, tags: Vec<(String, Discovered)>) -> Result<(), StoreError>;
    /// Records that these accounts were seen as members of the organization (in whatever state), at `at_ms`: an
    /// account seen before keeps its first sighting. Kept after an account leaves, so that a trust naming an
    /// account that left is told from one naming a stranger.
    async fn note_members(&self, at_ms: i64, account_ids: Vec<String>) -> Result<(), StoreError>;
    /// Every account ever recorded by [`Journal::note_members`], with when it was first seen (Unix ms), by id.
    async fn members_seen(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Rewrites every payload with `rewrite` and records `format`, in one transaction: if any payload cannot be
    /// rewritten, nothing is changed and the error names it. Returns how many payloads were rewritten.
    async fn rewrite_payloads(&self, rewrite: Rewrite, format: PayloadFormat) -> Result<u64, StoreError>;
    /// Creates an operation, or returns the existing one for an idempotency key the same caller (`created_by`)
    /// used before (the bool is `false`). A binding reconciles once at a time: a reconcile of a binding that has an
    /// unfinished reconcile is not created, and that one is returned (`false`) — decided in the journal, so also
    /// between replicas that start one at the same instant.
    async fn create_operation(&self, op: NewOperation) -> Result<(OperationRow, bool), StoreError>;
    /// An operation.
    async fn get_operation(&self, id: &str) -> Result<Option<OperationRow>, StoreError>;
    /// Operations matching `filter`, newest first, `page_size` at a time, before position `before`.
    async fn list_operations(
        &self,
        filter: &OperationFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<(Vec<OperationRow>, Option<i64>), StoreError>;
    /// Moves an operation's state as `change` says, compare-and-set: only an unfinished operation (no end time, not
    /// in a final state) that is in one of `change.from` — the state its caller read — moves. Returns whether it
    /// moved; a caller that lost a race reads the operation again. A finished operation is never changed.
    async fn change_state(&self, id: &str, change: StateChange) -> Result<bool, StoreError>;
    /// Operations not finished (no end time, not in a final state, [`StoredState::FINAL`]), oldest first.
    async fn unfinished_operations(&self) -> Result<Vec<OperationRow>, StoreError>;
    /// Deletes the operations `expiry` selects, with their account rows and events, in one transaction; returns
    /// how many.
    async fn expire_operations(&self, expiry: &Expiry) -> Result<u64, StoreError>;
    /// Writes a batch in one transaction: account rows (insert or replace), events (a sequence number used twice
    /// is an error), the counters, and the last event sequence.
    async fn persist(&self, operation: &str, batch: Batch) -> Result<(), StoreError>;
    /// Writes account rows (insert or replace).
    async fn put_accounts(&self, operation: &str, rows: Vec<AccountRow>) -> Result<(), StoreError> {
        self.persist(operation, Batch { rows, ..Batch::default() }).await
    }
    /// Account rows in index order after `after_index`, filtered by outcome (empty for any).
    async fn list_accounts(
        &self,
        operation: &str,
        outcomes: &[StoredOutcome],
        page_size: usize,
        after_index: Option<u32>,
    ) -> Result<Vec<AccountRow>, StoreError>;
    /// Accounts by outcome.
    async fn count_accounts(&self, operation: &str) -> Result<BTreeMap<StoredOutcome, u32>, StoreError>;
    /// Events after `after_sequence`, at most `limit`.
    async fn read_events(
        &self,
        operation: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError>;
    /// Accounts where the spec was applied.
    async fn placements(&self, spec_name: &str) -> Result<Vec<String>, StoreError>;
    /// Whether the spec is recorded as applied in the account.
    async fn placed(&self, spec_name: &str, account_id: &str) -> Result<bool, StoreError>;
    /// Records (`present`) or forgets a placement.
    async fn set_placement(&self, spec_name: &str, account_id: &str, present: bool) -> Result<(), StoreError>;
    /// Records an audit entry.
    async fn audit(&self, entry: AuditEntry) -> Result<(), StoreError>;
    /// Audit entries matching `filter`, newest first, `page_size` at a time, before id `before` (the previous
    /// page's last).
    async fn audit_log(
        &self,
        filter: &AuditFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Deletes audit entries recorded before `before` (Unix ms); returns how many.
    async fn expire_audit(&self, before: i64) -> Result<u64, StoreError>;
    /// Creates a binding; fails if the name exists.
    async fn create_binding(&self, row: BindingRow) -> Result<bool, StoreError>;
    /// Replaces a binding as a new version; `expected` guards concurrent updates.
    async fn update_binding(
        &self,
        name: &str,
        binding: Vec<u8>,
        expected: Option<u64>,
        time: i64,
    ) -> Result<Option<BindingRow>, StoreError>;
    /// Stores a binding's status.
    async fn set_binding_status(&self, name: &str, status: Vec<u8>) -> Result<(), StoreError>;
    /// A binding.
    async fn get_binding(&self, name: &str) -> Result<Option<BindingRow>, StoreError>;
    /// Bindings by name after `after`.
    async fn list_bindings(&self, page_size: usize, after: Option<&str>) -> Result<Vec<BindingRow>, StoreError>;
    /// Deletes a binding, and the accounts waiting for its reconcile.
    async fn delete_binding(&self, name: &str) -> Result<bool, StoreError>;
    /// The accounts waiting for a reconcile, by binding and account.
    async fn waiting_accounts(&self) -> Result<Vec<WaitingAccount>, StoreError>;
    /// Makes `accounts` wait for a reconcile of `binding` from `due_at`, named by `created_by`: anew (no failed
    /// attempt, taken by no reconcile), keeping the earlier due time of one already waiting.
    async fn wait_accounts(
        &self,
        binding: &str,
        accounts: &[String],
        created_by: &str,
        due_at: i64,
    ) -> Result<(), StoreError>;
    /// Records that the reconcile `operation` of `binding` took those of `accounts` that are waiting.
    async fn take_accounts(&self, binding: &str, accounts: &[String], operation: &str) -> Result<(), StoreError>;
    /// Sets the end of `row.spec_name`'s access, replacing the one it had (acted on or not); returns that one.
    async fn set_access_end(&self, row: AccessEndRow) -> Result<Option<AccessEndRow>, StoreError>;
    /// Removes the end of a spec's access (its access lasts); returns the one it had.
    async fn clear_access_end(&self, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError>;
    /// The end of a spec's access, if it has one.
    async fn access_end(&self, spec_name: &str) -> Result<Option<AccessEndRow>, StoreError>;
    /// The ends that have come by `now` and that no destroy has acted on, soonest first.
    async fn access_ends_due(&self, now: i64) -> Result<Vec<AccessEndRow>, StoreError>;
    /// Records that the destroy `operation` acted on the end `expires_at` of `spec_name`: only when that is still
    /// its end and none has acted on it (`false` otherwise).
    async fn take_access_end(&self, spec_name: &str, expires_at: i64, operation: &str) -> Result<bool, StoreError>;
    /// Settles the accounts the reconcile `operation` took: those in `retry` wait again, due at `due_at` with one
    /// failed attempt more, unless that makes `max_attempts`; the others wait no more. Accounts named again since
    /// it took them (no longer its) are left waiting.
    async fn settle_accounts(
        &self,
        operation: &str,
        retry: &[String],
        due_at: i64,
        max_attempts: u32,
    ) -> Result<(), StoreError>;
}
