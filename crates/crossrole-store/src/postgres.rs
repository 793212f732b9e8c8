//! The PostgreSQL journal: the same [`Journal`] as SQLite, on a database the operator already runs, backs up and
//! fails over.
//!
//! Selected by a `postgres://` URL. Versioned migrations run when crossroled starts, in one transaction under an
//! advisory lock, so two crossroleds starting together do not both migrate; a schema newer than this crossroled is
//! refused. TLS as the URL's `sslmode` asks (`disable`, `prefer`, `require`), the server's certificate verified
//! against the system's roots and, when given, the operator's CA file. The password comes from the URL or, better,
//! from [`PostgresOptions::password`] (crossroled reads it from a file or the environment); it is never logged.
//!
//! **One writer**, as with SQLite's data-directory lock: a crossroled holds a session advisory lock on a connection
//! of its own for its whole life, and a second crossroled on the same database is refused, naming the holder. The
//! lock is PostgreSQL's, so it ends with the holder's session: a crossroled killed with -9 leaves nothing to clean
//! up. With [`PostgresOptions::standby`], a second crossroled waits for the lock instead of being refused, and
//! takes the journal over the moment the holder's session ends (then resumes what the holder left unfinished):
//! active/passive high availability. If the writer's connection is lost, every write fails from then on (another
//! crossroled may hold the journal by now) and [`Journal::writer_lost`] resolves: crossroled then stops, to be
//! restarted. With [`PostgresOptions::shared`] instead, every replica works: operations are owned by the replica
//! running them and claimed by another when their owner dies, and roles are locked across replicas (`shared`).
//!
//! Writes that go together are one transaction, as in SQLite: an event batch with its account rows, counters and
//! end ([`Journal::persist`]); a rewrite of every payload ([`Journal::rewrite_payloads`]).

use std::{
    collections::BTreeMap,
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls_pki_types::pem::PemObject;
use tokio_postgres::{Row, types::ToSql};

mod shared;

use crate::{
    AUDIT_COLUMNS, AccountRow, AuditEntry, AuditFilter, AuditValue, Batch, BindingRow, Discovered, EventRow, Expiry,
    Journal, NewOperation, OPERATION_COLUMNS, OperationFilter, OperationRow, PAYLOADS, PayloadFormat, PayloadKind,
    PayloadPlace, Rewrite, StoreError,
};

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
];

/// The advisory lock migrations run under (any value; "crossrole" in ASCII, shortened).
const MIGRATION_LOCK: i64 = 0x6372_6f73_7372_6f6c;
/// The advisory lock the one writer holds for its life.
pub(crate) const WRITER_LOCK: i64 = 0x6372_6f73_7372_6f6d;

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
    /// Whether this process still holds the writer lock (its connection is alive).
    writer: Arc<AtomicBool>,
    /// Told when the writer lock's connection ends.
    lost: tokio::sync::watch::Receiver<bool>,
    /// The database, for messages (no password).
    name: Arc<str>,
    /// The connection holding the writer lock; the lock ends when the last clone of the journal is dropped.
    _lock: Arc<tokio_postgres::Client>,
    /// A standby's reading journal: who writes the journal meanwhile.
    standby_of: Option<Arc<str>>,
    /// This process as one of several live replicas sharing the journal's work.
    replica: Option<Arc<shared::Replica>>,
}

/// Who holds a journal `n` live replicas share, for a crossroled that would write it alone.
fn sharing(n: i64) -> String {
    format!(
        "{n} live replica(s) sharing its work (journal_shared); start this crossroled with journal_shared too, or \
         stop them first"
    )
}

/// Who last held the writer lock, as it wrote itself into `journal_meta` (nothing before the first writer).
async fn writer_named(client: &tokio_postgres::Client) -> Option<String> {
    let row = client.query_opt("SELECT value FROM journal_meta WHERE key = 'writer'", &[]).await.ok().flatten()?;
    Some(row.get(0))
}

/// The URL without its password, for messages.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

fn tls(options: &PostgresOptions) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|e| StoreError::Io(format!("cannot read {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| StoreError::Io(format!("{}: not a PEM certificate: {e}", path.display())))?;
            roots.add(cert).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(StoreError::Io(format!("{} holds no certificate", path.display())));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Io(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The journal's connection pool.
fn pool(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: &PostgresOptions,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(options.pool_size.max(2))
        .build()
        .map_err(|e| StoreError::Io(format!("journal pool: {e}")))
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
        let tls = tls(&options)?;
        if options.shared {
            return shared::connect(config, tls, &options, name).await;
        }
        let unreachable = |e: tokio_postgres::Error| StoreError::Io(format!("cannot reach the journal {name}: {e}"));

        // The writer lock, on a connection of its own held for the life of the process.
        let (writer_client, connection) = config.connect(tls.clone()).await.map_err(unreachable)?;
        let writer = Arc::new(AtomicBool::new(true));
        let alive = writer.clone();
        let lock_name = name.clone();
        let (lost_tx, lost) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(journal = %lock_name, error = %e, "lost the journal's writer connection");
            }
            alive.store(false, Ordering::SeqCst);
            let _ = lost_tx.send(true);
        });
        let lock_client = Arc::new(writer_client);
        let got: bool = lock_client.query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK]).await?.get(0);
        if !got {
            let holder = match shared::alive_replicas(&lock_client).await {
                Ok(n) if n > 0 => sharing(n),
                _ => writer_named(&lock_client).await.unwrap_or_else(|| "another crossroled".into()),
            };
            if !options.standby {
                return Err(StoreError::Locked { dir: name.to_string(), holder });
            }
            // A standby: the lock is granted the moment the holder's session ends (a crash, a kill -9, a stop,
            // a broken connection), and this crossroled goes on from there. Meanwhile it may read.
            tracing::info!(journal = %name, %holder, "standby: waiting to take the journal over");
            if let Some(hand_over) = &options.while_waiting {
                hand_over(PostgresJournal {
                    pool: pool(config.clone(), tls.clone(), &options)?,
                    writer: Arc::new(AtomicBool::new(false)),
                    lost: lost.clone(),
                    name: name.clone(),
                    _lock: lock_client.clone(),
                    standby_of: Some(holder.clone().into()),
                    replica: None,
                });
            }
            lock_client.execute("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK]).await?;
            let previous = writer_named(&lock_client).await.unwrap_or(holder);
            tracing::info!(journal = %name, %previous, "took the journal over");
        }

        let pool = pool(config, tls, &options)?;
        let journal = PostgresJournal { pool, writer, lost, name, _lock: lock_client, standby_of: None, replica: None };
        journal.migrate().await?;
        // Replicas sharing the journal's work run its operations: one writer alongside would run them twice.
        let shared = shared::alive_replicas(&journal._lock).await?;
        if shared > 0 {
            return Err(StoreError::Locked { dir: journal.name.to_string(), holder: sharing(shared) });
        }
        let holder = format!("crossroled pid {} on host {}", std::process::id(), crate::lock::hostname());
        journal
            ._lock
            .execute(
                "INSERT INTO journal_meta (key, value) VALUES ('writer', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&holder],
            )
            .await?;
        Ok(journal)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
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
        if !self.writer.load(Ordering::SeqCst) {
            if let Some(r) = self.shared() {
                let why = r.why.lock().ok().and_then(|w| w.clone()).unwrap_or_default();
                return Err(StoreError::Io(format!(
                    "replica {} ({}) writes nothing more to the journal {}: {why}",
                    r.id, r.name, self.name
                )));
            }
            return Err(StoreError::Io(format!(
                "the connection holding the journal {}'s writer lock was lost: another crossroled may hold it now, so \
                 this one writes nothing more (restart it)",
                self.name
            )));
        }
        self.client().await
    }
}

fn operation(row: &Row) -> OperationRow {
    let calls: String = row.get(12);
    OperationRow {
        id: row.get(0),
        kind: row.get(1),
        state: row.get(2),
        spec_name: row.get(3),
        spec: row.get(4),
        idempotency_key: row.get(5),
        binding_name: row.get(6),
        created_by: row.get(7),
        create_time: row.get(8),
        start_time: row.get(9),
        end_time: row.get(10),
        message: row.get(11),
        aws_calls: serde_json::from_str(&calls).unwrap_or_default(),
        throttled_calls: row.get::<_, i64>(13) as u64,
        last_sequence: row.get::<_, i64>(14) as u64,
        position: row.get(15),
        dry_run: row.get(16),
    }
}

const BINDING_COLUMNS: &str = "name, version, binding, status, create_time, update_time";

fn binding(row: &Row) -> BindingRow {
    BindingRow {
        name: row.get(0),
        version: row.get::<_, i64>(1) as u64,
        binding: row.get(2),
        status: row.get(3),
        create_time: row.get(4),
        update_time: row.get(5),
    }
}

/// Rewrites one payload column a page at a time in key order (keyset pagination: memory stays flat). Keys travel
/// as text and are cast back to their type in the query.
async fn rewrite_column(
    tx: &deadpool_postgres::Transaction<'_>,
    (kind, table, keys, column): PayloadPlace,
    rewrite: &mut Rewrite,
) -> Result<u64, StoreError> {
    let key_list = keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ");
    // Aliased: an output column named like a key would be what ORDER BY sorts by (as text: "10" before "2").
    let as_text =
        keys.iter().enumerate().map(|(i, (k, _))| format!("{k}::text AS key_{i}")).collect::<Vec<_>>().join(", ");
    let params = |from: usize| {
        keys.iter().enumerate().map(|(i, (_, t))| format!("${}::text::{t}", i + from)).collect::<Vec<_>>()
    };
    let first = format!("SELECT {as_text}, {column} FROM {table} ORDER BY {key_list} LIMIT 500");
    let next = format!(
        "SELECT {as_text}, {column} FROM {table} WHERE ({key_list}) > ({}) ORDER BY {key_list} LIMIT 500",
        params(1).join(", ")
    );
    let update = format!(
        "UPDATE {table} SET {column} = $1 WHERE {}",
        keys.iter().zip(params(2)).map(|((k, _), p)| format!("{k} = {p}")).collect::<Vec<_>>().join(" AND ")
    );
    let n = keys.len();
    let mut after: Option<Vec<String>> = None;
    let mut done = 0;
    loop {
        let rows = match &after {
            None => tx.query(&first, &[]).await?,
            Some(key) => {
                let args: Vec<&(dyn ToSql + Sync)> = key.iter().map(|k| k as &(dyn ToSql + Sync)).collect();
                tx.query(&next, &args).await?
            }
        };
        let Some(last) = rows.last() else { return Ok(done) };
        after = Some((0..n).map(|i| last.get::<_, String>(i)).collect());
        for row in &rows {
            let key: Vec<String> = (0..n).map(|i| row.get(i)).collect();
            let payload: Vec<u8> = row.get(n);
            if payload.is_empty() && kind == PayloadKind::BindingStatus {
                continue;
            }
            let new = rewrite(kind, &payload).map_err(|why| {
                let at = keys
                    .iter()
                    .zip(&key)
                    .map(|((k, t), v)| if *t == "text" { format!("{k}={v:?}") } else { format!("{k}={v}") })
                    .collect::<Vec<_>>()
                    .join(", ");
                StoreError::Rewrite(format!("{table}.{column} ({at}): {why}"))
            })?;
            let mut args: Vec<&(dyn ToSql + Sync)> = vec![&new];
            args.extend(key.iter().map(|k| k as &(dyn ToSql + Sync)));
            tx.execute(&update, &args).await?;
            done += 1;
        }
    }
}

#[async_trait]
impl Journal for PostgresJournal {
    async fn writer_lost(&self) -> String {
        if let Some(r) = self.shared() {
            let mut lost = self.lost.clone();
            let _ = lost.wait_for(|lost| *lost).await;
            let why = r.why.lock().ok().and_then(|w| w.clone()).unwrap_or_default();
            return format!("replica {} of the journal {} stopped writing it: {why}", r.id, self.name);
        }
        if self.standby_of.is_some() {
            // A standby's reading journal never held the lock: nothing to lose.
            return std::future::pending().await;
        }
        let mut lost = self.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
        format!(
            "the session holding the journal {}'s writer lock ended (the database restarted, the connection broke, or \
             someone ended it): another crossroled may hold the journal now",
            self.name
        )
    }

    async fn payload_format(&self) -> Result<PayloadFormat, StoreError> {
        let client = self.client().await?;
        let value: Option<String> = client
            .query_opt("SELECT value FROM journal_meta WHERE key = 'payload_format'", &[])
            .await?
            .map(|r| r.get(0));
        PayloadFormat::from_name(value.as_deref())
    }

    async fn rewrite_payloads(&self, mut rewrite: Rewrite, format: PayloadFormat) -> Result<u64, StoreError> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let mut done = 0;
        for place in PAYLOADS {
            done += rewrite_column(&tx, *place, &mut rewrite).await?;
        }
        let format = format.name();
        tx.execute(
            "INSERT INTO journal_meta (key, value) VALUES ('payload_format', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&format],
        )
        .await?;
        tx.commit().await?;
        Ok(done)
    }

    async fn organization_tree(&self) -> Result<Option<Discovered>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt("SELECT fetched_at, tree FROM organization_tree WHERE id = 1", &[])
            .await?
            .map(|r| Discovered { fetched_at_ms: r.get(0), payload: r.get(1) }))
    }

    async fn save_organization_tree(&self, tree: Discovered) -> Result<(), StoreError> {
        let client = self.writer().await?;
        client
            .execute(
                "INSERT INTO organization_tree (id, fetched_at, tree) VALUES (1, $1, $2) \
                 ON CONFLICT (id) DO UPDATE SET fetched_at = excluded.fetched_at, tree = excluded.tree",
                &[&tree.fetched_at_ms, &tree.payload],
            )
            .await?;
        Ok(())
    }

    async fn account_tags(&self) -> Result<Vec<(String, Discovered)>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query("SELECT account_id, fetched_at, tags FROM account_tags", &[])
            .await?
            .iter()
            .map(|r| (r.get(0), Discovered { fetched_at_ms: r.get(1), payload: r.get(2) }))
            .collect())
    }

    async fn save_account_tags(&self, tags: Vec<(String, Discovered)>) -> Result<(), StoreError> {
        let (mut ids, mut times, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
        for (id, d) in tags {
            ids.push(id);
            times.push(d.fetched_at_ms);
            payloads.push(d.payload);
        }
        let client = self.writer().await?;
        client
            .execute(
                "INSERT INTO account_tags (account_id, fetched_at, tags) \
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bytea[]) \
                 ON CONFLICT (account_id) DO UPDATE SET fetched_at = excluded.fetched_at, tags = excluded.tags",
                &[&ids, &times, &payloads],
            )
            .await?;
        Ok(())
    }

    async fn create_operation(&self, op: NewOperation) -> Result<(OperationRow, bool), StoreError> {
        let client = self.writer().await?;
        // Two requests with the same key, on any connection: the unique constraint decides, and the loser reads
        // the winner's operation.
        let inserted = client
            .query_opt(
                &format!(
                    "INSERT INTO operations (id, kind, state, spec_name, spec, idempotency_key, request_fingerprint, \
                     binding_name, created_by, create_time, dry_run, owner) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
                     $11, $12) \
                     ON CONFLICT (created_by, idempotency_key) DO NOTHING RETURNING {OPERATION_COLUMNS}"
                ),
                &[
                    &op.id,
                    &op.kind,
                    &op.state,
                    &op.spec_name,
                    &op.spec,
                    &op.idempotency_key,
                    &op.request_fingerprint,
                    &op.binding_name,
                    &op.created_by,
                    &op.create_time,
                    &op.dry_run,
                    &self.shared().map(|r| r.id.clone()),
                ],
            )
            .await?;
        if let Some(row) = inserted {
            return Ok((operation(&row), true));
        }
        let key = op.idempotency_key.clone().unwrap_or_default();
        let row = client
            .query_one(
                &format!(
                    "SELECT {OPERATION_COLUMNS}, request_fingerprint FROM operations \
                     WHERE created_by = $1 AND idempotency_key = $2"
                ),
                &[&op.created_by, &key],
            )
            .await?;
        if row.get::<_, String>(17) != op.request_fingerprint {
            return Err(StoreError::IdempotencyConflict(key));
        }
        Ok((operation(&row), false))
    }

    async fn get_operation(&self, id: &str) -> Result<Option<OperationRow>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(&format!("SELECT {OPERATION_COLUMNS} FROM operations WHERE id = $1"), &[&id])
            .await?
            .map(|r| operation(&r)))
    }

    async fn list_operations(
        &self,
        filter: &OperationFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<(Vec<OperationRow>, Option<i64>), StoreError> {
        let client = self.client().await?;
        let before = before.unwrap_or(i64::MAX);
        let limit = page_size as i64 + 1;
        let rows = client
            .query(
                &format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE position < $1 \
                     AND (cardinality($2::integer[]) = 0 OR state = ANY($2)) \
                     AND ($3 = '' OR spec_name = $3) AND ($4 = '' OR binding_name = $4) \
                     ORDER BY position DESC LIMIT $5"
                ),
                &[&before, &filter.states, &filter.spec_name, &filter.binding_name, &limit],
            )
            .await?;
        let mut rows: Vec<OperationRow> = rows.iter().map(operation).collect();
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|r| r.position)
        } else {
            None
        };
        Ok((rows, next))
    }

    async fn set_operation_state(
        &self,
        id: &str,
        state: i32,
        message: &str,
        started: Option<i64>,
        ended: Option<i64>,
    ) -> Result<(), StoreError> {
        let client = self.writer().await?;
        client
            .execute(
                "UPDATE operations SET state = $2, message = $3, start_time = COALESCE($4, start_time), \
                 end_time = COALESCE($5, end_time) WHERE id = $1",
                &[&id, &state, &message, &started, &ended],
            )
            .await?;
        Ok(())
    }

    async fn unfinished_operations(&self, final_states: &[i32]) -> Result<Vec<OperationRow>, StoreError> {
        let client = self.client().await?;
        let states = final_states.to_vec();
        Ok(client
            .query(
                &format!(
                    "SELECT {OPERATION_COLUMNS} FROM operations WHERE NOT (state = ANY($1::integer[])) ORDER BY position"
                ),
                &[&states],
            )
            .await?
            .iter()
            .map(operation)
            .collect())
    }

    async fn expire_operations(&self, expiry: &Expiry) -> Result<u64, StoreError> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let ids: Vec<String> =
            tx.query(&expiry.select_sql("$1"), &[&expiry.ended_before]).await?.iter().map(|r| r.get(0)).collect();
        for table in ["events", "account_results"] {
            tx.execute(&format!("DELETE FROM {table} WHERE operation_id = ANY($1)"), &[&ids]).await?;
        }
        tx.execute("DELETE FROM operations WHERE id = ANY($1)", &[&ids]).await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
    }

    async fn persist(&self, operation_id: &str, batch: Batch) -> Result<(), StoreError> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        if let Some(r) = self.shared() {
            let first = batch.events.iter().map(|e| e.sequence).min();
            self.check_owner(r, &tx, operation_id, first).await?;
        }
        if !batch.rows.is_empty() {
            let (mut idx, mut ids, mut outcomes, mut results) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for r in batch.rows {
                idx.push(r.index as i32);
                ids.push(r.account_id);
                outcomes.push(r.outcome);
                results.push(r.result);
            }
            tx.execute(
                "INSERT INTO account_results (operation_id, idx, account_id, outcome, result) \
                 SELECT $1, * FROM UNNEST($2::integer[], $3::text[], $4::integer[], $5::bytea[]) \
                 ON CONFLICT (operation_id, idx) DO UPDATE SET account_id = excluded.account_id, \
                 outcome = excluded.outcome, result = excluded.result",
                &[&operation_id, &idx, &ids, &outcomes, &results],
            )
            .await?;
        }
        let last = batch.events.iter().map(|e| e.sequence).max().unwrap_or(0) as i64;
        if !batch.events.is_empty() {
            let (mut sequences, mut payloads) = (Vec::new(), Vec::new());
            for e in batch.events {
                sequences.push(e.sequence as i64);
                payloads.push(e.payload);
            }
            // A plain INSERT: a sequence number used twice is a bug to report, not a row to drop.
            tx.execute(
                "INSERT INTO events (operation_id, sequence, payload) \
                 SELECT $1, * FROM UNNEST($2::bigint[], $3::bytea[])",
                &[&operation_id, &sequences, &payloads],
            )
            .await?;
        }
        if let Some(stats) = &batch.stats {
            let calls = serde_json::to_string(&stats.aws_calls).unwrap_or_else(|_| "{}".into());
            tx.execute(
                "UPDATE operations SET aws_calls = $2, throttled_calls = $3 WHERE id = $1",
                &[&operation_id, &calls, &(stats.throttled as i64)],
            )
            .await?;
        }
        if last > 0 {
            tx.execute(
                "UPDATE operations SET last_sequence = GREATEST(last_sequence, $2) WHERE id = $1",
                &[&operation_id, &last],
            )
            .await?;
        }
        if let Some(end) = &batch.end {
            tx.execute(
                "UPDATE operations SET state = $2, message = $3, end_time = $4 WHERE id = $1",
                &[&operation_id, &end.state, &end.message, &end.end_time],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_accounts(
        &self,
        operation: &str,
        outcomes: &[i32],
        page_size: usize,
        after_index: Option<u32>,
    ) -> Result<Vec<AccountRow>, StoreError> {
        let client = self.client().await?;
        let after = after_index.map(i64::from).unwrap_or(-1);
        let outcomes = outcomes.to_vec();
        Ok(client
            .query(
                "SELECT idx, account_id, outcome, result FROM account_results WHERE operation_id = $1 AND idx > $2::bigint \
                 AND (cardinality($3::integer[]) = 0 OR outcome = ANY($3)) ORDER BY idx LIMIT $4",
                &[&operation, &after, &outcomes, &(page_size as i64)],
            )
            .await?
            .iter()
            .map(|r| AccountRow {
                index: r.get::<_, i32>(0) as u32,
                account_id: r.get(1),
                outcome: r.get(2),
                result: r.get(3),
            })
            .collect())
    }

    async fn count_accounts(&self, operation: &str) -> Result<BTreeMap<i32, u32>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT outcome, COUNT(*) FROM account_results WHERE operation_id = $1 GROUP BY outcome",
                &[&operation],
            )
            .await?
            .iter()
            .map(|r| (r.get::<_, i32>(0), r.get::<_, i64>(1) as u32))
            .collect())
    }

    async fn read_events(
        &self,
        operation: &str,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<EventRow>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(
                "SELECT sequence, payload FROM events WHERE operation_id = $1 AND sequence > $2 ORDER BY sequence \
                 LIMIT $3",
                &[&operation, &(after_sequence as i64), &(limit as i64)],
            )
            .await?
            .iter()
            .map(|r| EventRow { sequence: r.get::<_, i64>(0) as u64, payload: r.get(1) })
            .collect())
    }

    async fn placements(&self, spec_name: &str) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query("SELECT account_id FROM placements WHERE spec_name = $1 ORDER BY account_id", &[&spec_name])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    async fn placed(&self, spec_name: &str, account_id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let sql = "SELECT 1 FROM placements WHERE spec_name = $1 AND account_id = $2";
        Ok(client.query_opt(sql, &[&spec_name, &account_id]).await?.is_some())
    }

    async fn set_placement(&self, spec_name: &str, account_id: &str, present: bool) -> Result<(), StoreError> {
        let client = self.writer().await?;
        let sql = if present {
            "INSERT INTO placements (spec_name, account_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM placements WHERE spec_name = $1 AND account_id = $2"
        };
        client.execute(sql, &[&spec_name, &account_id]).await?;
        Ok(())
    }

    async fn audit(&self, e: AuditEntry) -> Result<(), StoreError> {
        let client = self.writer().await?;
        client
            .execute(
                "INSERT INTO audit (time, caller, method, spec_name, operation_id, request, outcome, caller_subject) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &e.time,
                    &e.caller,
                    &e.method,
                    &e.spec_name,
                    &e.operation_id,
                    &e.request,
                    &e.outcome,
                    &e.caller_subject,
                ],
            )
            .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        page_size: usize,
        before: Option<i64>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let (clause, values) = filter.clause();
        // `?` → `$n`, in order.
        let mut n = 0;
        let clause: String = clause
            .split('?')
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part.to_string()
                } else {
                    n += 1;
                    format!("${n}{part}")
                }
            })
            .collect();
        let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE {clause} ORDER BY id DESC LIMIT ${}", n + 1);
        let before = before.unwrap_or(i64::MAX);
        let limit = page_size as i64;
        let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&before];
        for v in &values {
            params.push(match v {
                AuditValue::Int(t) => t,
                AuditValue::Text(t) => t,
            });
        }
        params.push(&limit);
        let client = self.client().await?;
        Ok(client
            .query(&sql, &params)
            .await?
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                time: r.get(1),
                caller: r.get(2),
                method: r.get(3),
                spec_name: r.get(4),
                operation_id: r.get(5),
                request: r.get(6),
                outcome: r.get(7),
                caller_subject: r.get(8),
            })
            .collect())
    }

    async fn expire_audit(&self, before: i64) -> Result<u64, StoreError> {
        let client = self.writer().await?;
        Ok(client.execute("DELETE FROM audit WHERE time < $1", &[&before]).await?)
    }

    async fn create_binding(&self, row: BindingRow) -> Result<bool, StoreError> {
        let client = self.writer().await?;
        let n = client
            .execute(
                &format!(
                    "INSERT INTO bindings ({BINDING_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                ),
                &[&row.name, &(row.version as i64), &row.binding, &row.status, &row.create_time, &row.update_time],
            )
            .await?;
        Ok(n == 1)
    }

    async fn update_binding(
        &self,
        name: &str,
        binding_blob: Vec<u8>,
        expected: Option<u64>,
        time: i64,
    ) -> Result<Option<BindingRow>, StoreError> {
        let mut client = self.writer().await?;
        let tx = client.transaction().await?;
        let Some(current) = tx
            .query_opt(&format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name = $1 FOR UPDATE"), &[&name])
            .await?
            .map(|r| binding(&r))
        else {
            return Ok(None);
        };
        if let Some(expected) = expected.filter(|e| *e != current.version) {
            return Err(StoreError::VersionMismatch { name: name.to_string(), expected, actual: current.version });
        }
        let row = tx
            .query_one(
                &format!(
                    "UPDATE bindings SET version = version + 1, binding = $2, update_time = $3 WHERE name = $1 \
                     RETURNING {BINDING_COLUMNS}"
                ),
                &[&name, &binding_blob, &time],
            )
            .await?;
        tx.commit().await?;
        Ok(Some(binding(&row)))
    }

    async fn set_binding_status(&self, name: &str, status: Vec<u8>) -> Result<(), StoreError> {
        let client = self.writer().await?;
        client.execute("UPDATE bindings SET status = $2 WHERE name = $1", &[&name, &status]).await?;
        Ok(())
    }

    async fn get_binding(&self, name: &str) -> Result<Option<BindingRow>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(&format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name = $1"), &[&name])
            .await?
            .map(|r| binding(&r)))
    }

    async fn list_bindings(&self, page_size: usize, after: Option<&str>) -> Result<Vec<BindingRow>, StoreError> {
        let client = self.client().await?;
        let after = after.unwrap_or("");
        Ok(client
            .query(
                &format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE name > $1 ORDER BY name LIMIT $2"),
                &[&after, &(page_size as i64)],
            )
            .await?
            .iter()
            .map(binding)
            .collect())
    }

    fn shares_work(&self) -> bool {
        self.shared().is_some()
    }

    async fn claim_operations(&self, final_states: &[i32], limit: usize) -> Result<Vec<OperationRow>, StoreError> {
        match self.shared() {
            Some(r) => self.claim(r, final_states, limit).await,
            None => self.unfinished_operations(final_states).await,
        }
    }

    async fn lock_role(&self, account: &str, role: &str, operation: &str) -> Result<Option<String>, StoreError> {
        match self.shared() {
            Some(r) => self.take_role(r, account, role, operation).await,
            None => Ok(Some(String::new())),
        }
    }

    async fn unlock_role(&self, account: &str, role: &str, token: &str) -> Result<(), StoreError> {
        match self.shared() {
            Some(_) => self.give_role(account, role, token).await,
            None => Ok(()),
        }
    }

    async fn live_replicas(&self) -> Result<usize, StoreError> {
        match self.shared() {
            Some(_) => self.count_alive().await,
            None => Ok(1),
        }
    }

    async fn leader(&self) {
        if let Some(r) = self.shared() {
            self.lead(r).await;
        }
    }

    async fn release(&self) -> Result<(), StoreError> {
        match self.shared() {
            Some(r) => self.leave(r).await,
            None => Ok(()),
        }
    }

    async fn delete_binding(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.writer().await?;
        Ok(client.execute("DELETE FROM bindings WHERE name = $1", &[&name]).await? == 1)
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
