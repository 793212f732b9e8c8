//! Several live crossroleds sharing one PostgreSQL journal's work ([`PostgresOptions::shared`]): active/active.
//!
//! - **Who is alive.** Each replica registers a row in `replicas` and renews its `heartbeat_at` every fifth of its
//!   lease, on a session of its own (`session`: a busy pool cannot starve it). Times are the database's clock, so
//!   replicas with skewed clocks agree. A replica may write — the journal and AWS — until three fifths of a lease
//!   after it sent the last renewal the database confirmed ([`crate::LeaseTimes`]); past that, or finding its row
//!   lapsed, it stops writing at once and [`Coordination::writer_lost`] resolves (crossroled exits, to be
//!   restarted): it stops before any other replica may take its work, which needs a whole lease without a
//!   heartbeat.
//! - **Who runs an operation.** An operation is owned by the replica that created it (`operations.owner`). Any
//!   replica claims, with `FOR UPDATE SKIP LOCKED`, the unfinished operations whose owner is not alive (killed, or
//!   stopped and released them), and resumes them from the journal ([`Coordination::claim_operations`]). The lease
//!   fences the journal too: every write of an operation's progress ([`crate::Journal::persist`]) checks, in its
//!   transaction, that this replica owns the operation and is alive, and that its events continue the operation's
//!   sequence without a gap (`check_owner`): a replica that lost its lease cannot write over the one that took the
//!   work, and the events every replica reads are contiguous. An operation a replica claimed but cannot read (a
//!   record a newer crossroled wrote, in a rolling upgrade) it gives back, owned by no one, for a replica that can,
//!   and passes over in its later claims ([`Coordination::give_back`]).
//! - **Which (account, role) each holds.** `role_locks` rows, taken by a replica for one holder (a token), and
//!   free when that replica is not alive: two operations on different replicas never work the same role (or the
//!   same grant policy) at once.
//! - **Work for one replica only** (the binding scheduler, the Organizations events reader, retention): the
//!   replica that holds a session advisory lock on its heartbeat connection, tried at every heartbeat. When that
//!   replica's session ends, another takes it within a heartbeat.
//! - **AWS quotas.** [`Coordination::live_replicas`] counts the replicas alive, so that each takes its share of
//!   every rate bucket.
//!
//! All but the fence is the replicas' coordination ([`Replicas`]), apart from the journal.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use super::{
    PostgresJournal, PostgresOptions,
    connection::pool,
    operations::operation,
    session::{Place, Renewal, Session},
    writer,
};
use crate::{Coordination, LeaseDeadline, LeaseTimes, OPERATION_COLUMNS, OperationRow, StoreError, StoredState};

/// The database's clock, in Unix milliseconds.
pub(crate) const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

/// The advisory lock the replica that runs the work for one replica holds.
const SCHEDULER_LOCK: i64 = 0x6372_6f73_7372_6f6e;

/// This process as a replica of a shared journal.
pub(crate) struct Replica {
    /// Its id in `replicas` (random, new at every start).
    pub(crate) id: String,
    /// Its name, for messages: pid and host.
    pub(crate) name: String,
    /// Whether it runs the work for one replica.
    leader: watch::Receiver<bool>,
    heartbeat: JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// A random id for a replica.
fn replica_id() -> Result<String, StoreError> {
    let mut bytes = [0u8; 12];
    SystemRandom::new().fill(&mut bytes).map_err(|_| StoreError::Io("no random source".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Connects as a replica of a shared journal: migrates, registers, and starts the heartbeat.
pub(crate) async fn connect(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: &PostgresOptions,
    name: Arc<str>,
) -> Result<PostgresJournal, StoreError> {
    let times = LeaseTimes::of(options.lease.max(Duration::from_secs(1)));
    let Session { client, place } = Session::open(&config, tls.clone(), name.clone(), times).await?;
    let mut journal = PostgresJournal {
        pool: pool(config, tls, options)?,
        place: place.clone(),
        name: name.clone(),
        session: client.clone(),
        standby_of: None,
        replica: None,
    };
    journal.migrate().await?;
    // One writer holding the journal runs every operation: a replica alongside would run them twice. Replicas hold
    // the writer's lock shared, for their whole life: together, never with a writer.
    let alone: bool = client.query_one("SELECT pg_try_advisory_lock_shared($1)", &[&writer::WRITER_LOCK]).await?.get(0);
    if !alone {
        let holder = writer::writer_named(&client).await.unwrap_or_else(|| "another crossroled".into());
        return Err(StoreError::Locked {
            dir: name.to_string(),
            holder: format!(
                "{holder}, which writes it alone (not journal_shared); stop it first, or start every crossroled of \
                 the journal with journal_shared"
            ),
        });
    }

    // A writer that did not stop cleanly (its session ended: a lost node, a cut link) may still be writing to AWS
    // until its fence: its operations, now no one's, wait one lease before any replica claims them. Then it has
    // stopped for sure, and the replicas after this one need not wait.
    writer::wait_out_an_unclean_writer(&client, &name, times.lease).await?;
    client.execute("UPDATE journal_meta SET value = 'stopped' WHERE key = 'writer_state'", &[]).await?;

    let id = replica_id()?;
    let host = format!("crossroled pid {} on host {}", std::process::id(), crate::lock::hostname());
    let lease_ms = times.lease.as_millis() as i64;
    // Rows of replicas long dead are no one's: forget them (what they owned is free either way).
    client.execute(&format!("DELETE FROM replicas WHERE heartbeat_at + 10 * lease_ms < {NOW_MS}"), &[]).await?;
    let sent = Instant::now();
    client
        .execute(
            &format!(
                "INSERT INTO replicas (id, name, started_at, heartbeat_at, lease_ms) \
                 VALUES ($1, $2, {NOW_MS}, {NOW_MS}, $3)"
            ),
            &[&id, &host, &lease_ms],
        )
        .await?;
    place.confirmed(sent);
    let (leader_tx, leader) = watch::channel(false);
    let heartbeat = tokio::spawn(beat(client, id.clone(), place, leader_tx));
    tracing::info!(journal = %name, replica = id, lease_ms, "joined the journal's replicas");
    journal.replica = Some(Arc::new(Replica { id, name: host, leader, heartbeat }));
    Ok(journal)
}

/// Renews the lease every heartbeat (its row lapsed: it is lost), and tries for the work of one replica after
/// each confirmed renewal.
async fn beat(client: Arc<tokio_postgres::Client>, id: String, place: Place, leader: watch::Sender<bool>) {
    let renew =
        format!("UPDATE replicas SET heartbeat_at = {NOW_MS} WHERE id = $1 AND heartbeat_at + lease_ms > {NOW_MS}");
    let renewal = || async {
        Ok(match client.execute(&renew, &[&id]).await? {
            1 => Renewal::Confirmed,
            _ => Renewal::Lost("its lease lapsed before it could renew it: other replicas may run its work now".into()),
        })
    };
    let lead = || async {
        if *leader.borrow() {
            return;
        }
        match client.query_one("SELECT pg_try_advisory_lock($1)", &[&SCHEDULER_LOCK]).await {
            Ok(row) if row.get::<_, bool>(0) => {
                tracing::info!("this replica runs the binding scheduler, the events reader and retention");
                let _ = leader.send(true);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot ask for the scheduler lock"),
        }
    };
    place.keep(renewal, lead).await;
}

/// How many replicas are alive.
pub(crate) async fn alive_replicas(client: &tokio_postgres::Client) -> Result<i64, StoreError> {
    let sql = format!("SELECT count(*) FROM replicas WHERE heartbeat_at + lease_ms > {NOW_MS}");
    Ok(client.query_one(&sql, &[]).await?.get(0))
}

/// The condition that the replica `owner` (an expression) is alive: renewed within its own lease.
fn alive(owner: &str) -> String {
    format!("EXISTS (SELECT 1 FROM replicas r WHERE r.id = {owner} AND r.heartbeat_at + r.lease_ms > {NOW_MS})")
}

/// In a transaction that persists an operation's progress: checks that the replica `r` owns the operation and is
/// alive, and that `first` (the first event's sequence, if any) continues the operation's events. Locks the
/// operation's row until the transaction ends.
pub(super) async fn check_owner(
    r: &Replica,
    tx: &deadpool_postgres::Transaction<'_>,
    operation: &str,
    first: Option<u64>,
) -> Result<(), StoreError> {
    let sql = format!("SELECT last_sequence, owner, {} FROM operations WHERE id = $1 FOR UPDATE", alive("$2"));
    let row = tx.query_opt(&sql, &[&operation, &r.id]).await?;
    let Some(row) = row else { return Ok(()) };
    let (last, owner, alive): (i64, Option<String>, bool) = (row.get(0), row.get(1), row.get(2));
    if owner.as_deref() != Some(r.id.as_str()) || !alive {
        return Err(StoreError::NotOwner {
            operation: operation.to_string(),
            why: if alive { "another replica has taken it over".into() } else { "this replica's lease lapsed".into() },
        });
    }
    if let Some(first) = first
        && first != last as u64 + 1
    {
        return Err(StoreError::Io(format!(
            "operation {operation}: events must continue its sequence: the next is {}, not {first}",
            last + 1
        )));
    }
    Ok(())
}

/// The coordination of a replica sharing the journal's work.
pub(super) struct Replicas {
    /// The journal it shares (its connections, and its writes fenced by this replica's lease).
    pub(super) journal: PostgresJournal,
    /// This replica.
    pub(super) replica: Arc<Replica>,
}

#[async_trait]
impl Coordination for Replicas {
    fn shares_work(&self) -> bool {
        true
    }

    /// Claims up to `limit` unfinished operations whose owner is not alive, oldest first, but those passed over.
    async fn claim_operations(&self, limit: usize, passed_over: &[String]) -> Result<Vec<OperationRow>, StoreError> {
        let client = self.journal.writer().await?;
        let finals: Vec<i32> = StoredState::FINAL.iter().map(|s| s.code()).collect();
        let sql = format!(
            "UPDATE operations SET owner = $1 WHERE id IN (SELECT id FROM operations o WHERE o.end_time IS NULL AND NOT (state = ANY($2::integer[])) \
             AND o.owner IS DISTINCT FROM $1 AND (o.owner IS NULL OR NOT {}) AND NOT (o.id = ANY($4::text[])) \
             ORDER BY position LIMIT $3 FOR UPDATE SKIP LOCKED) AND {} RETURNING {OPERATION_COLUMNS}",
            alive("o.owner"),
            alive("$1")
        );
        let limit = limit.max(1) as i64;
        let rows = client.query(&sql, &[&self.replica.id, &finals, &limit, &passed_over]).await?;
        let mut rows: Vec<OperationRow> = rows.iter().map(operation).collect();
        rows.sort_by_key(|r| r.position);
        Ok(rows)
    }

    /// Gives back an operation it claimed: owned by no one, so that any other replica claims it at its next round.
    async fn give_back(&self, operation: &str) -> Result<(), StoreError> {
        let client = self.journal.writer().await?;
        client
            .execute("UPDATE operations SET owner = NULL WHERE id = $1 AND owner = $2", &[&operation, &self.replica.id])
            .await?;
        Ok(())
    }

    /// Takes (account, role) for one holder; the token it is held with, or `None` while a live replica holds it.
    async fn lock_role(&self, account: &str, role: &str, operation: &str) -> Result<Option<String>, StoreError> {
        let client = self.journal.writer().await?;
        let token = replica_id()?;
        let sql = format!(
            "INSERT INTO role_locks (account_id, role, owner, token, operation_id, since) \
             VALUES ($1, $2, $3, $4, $5, {NOW_MS}) ON CONFLICT (account_id, role) DO UPDATE SET owner = excluded.owner, \
             token = excluded.token, operation_id = excluded.operation_id, since = excluded.since \
             WHERE role_locks.owner = excluded.owner OR NOT {} RETURNING token",
            alive("role_locks.owner")
        );
        let row = client.query_opt(&sql, &[&account, &role, &self.replica.id, &token, &operation]).await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Gives (account, role) back, if still held with `token`.
    async fn unlock_role(&self, account: &str, role: &str, token: &str) -> Result<(), StoreError> {
        let client = self.journal.client().await?;
        client
            .execute(
                "DELETE FROM role_locks WHERE account_id = $1 AND role = $2 AND token = $3",
                &[&account, &role, &token],
            )
            .await?;
        Ok(())
    }

    /// Replicas alive now, this one included.
    async fn live_replicas(&self) -> Result<usize, StoreError> {
        let client = self.journal.client().await?;
        Ok((alive_replicas(&client).await? as usize).max(1))
    }

    /// Waits until this replica runs the work for one replica.
    async fn leader(&self) {
        let mut leader = self.replica.leader.clone();
        let _ = leader.wait_for(|l| *l).await;
    }

    /// Leaves the replicas: its operations and roles are free for the others at once, and it writes nothing more.
    async fn release(&self) -> Result<(), StoreError> {
        let r = &self.replica;
        let client = self.journal.writer().await?;
        client.execute("UPDATE operations SET owner = NULL WHERE owner = $1", &[&r.id]).await?;
        client.execute("DELETE FROM role_locks WHERE owner = $1", &[&r.id]).await?;
        client.execute("DELETE FROM replicas WHERE id = $1", &[&r.id]).await?;
        r.heartbeat.abort();
        self.journal.place.stop("this replica left the journal's replicas (it is stopping)".into());
        tracing::info!(
            replica = r.id,
            "left the journal's replicas; its unfinished operations are free for the others"
        );
        Ok(())
    }

    async fn writer_lost(&self) -> String {
        let mut lost = self.journal.place.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
        let why = self.journal.place.why().unwrap_or_default();
        format!("replica {} of the journal {} stopped writing it: {why}", self.replica.id, self.journal.name)
    }

    fn fence(&self) -> Option<LeaseDeadline> {
        Some(self.journal.place.fence())
    }
}
