//! One writer per PostgreSQL journal, as with SQLite's data-directory lock: a crossroled holds a session advisory
//! lock on a connection of its own for its whole life, and a second crossroled on the same database is refused,
//! naming the holder, or, a standby, waits for the lock ([`PostgresOptions::standby`]) and reads meanwhile.
//!
//! The lock is PostgreSQL's, so it ends with the holder's session: a crossroled killed with -9 leaves nothing to
//! clean up, and one whose connection broke has lost it. Its coordination ([`WriterLock`]) is a single node's but
//! for that: [`Coordination::writer_lost`] resolves when the lock's session ends.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use async_trait::async_trait;

use super::{PostgresJournal, PostgresOptions, connection::pool, shared};
use crate::{Coordination, Journal, OperationRow, StoreError};

/// The advisory lock the one writer holds for its life.
pub(super) const WRITER_LOCK: i64 = 0x6372_6f73_7372_6f6d;

/// Who holds a journal `n` live replicas share, for a crossroled that would write it alone.
fn sharing(n: i64) -> String {
    format!(
        "{n} live replica(s) sharing its work (journal_shared); start this crossroled with journal_shared too, or \
         stop them first"
    )
}

/// Who last held the writer lock, as it wrote itself into `journal_meta` (nothing before the first writer).
pub(super) async fn writer_named(client: &tokio_postgres::Client) -> Option<String> {
    let row = client.query_opt("SELECT value FROM journal_meta WHERE key = 'writer'", &[]).await.ok().flatten()?;
    Some(row.get(0))
}

/// Connects as the one writer: takes the writer lock (a standby waits for it, handing a reading journal to
/// [`PostgresOptions::while_waiting`] meanwhile), migrates, and writes its name into the journal.
pub(super) async fn connect(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: &PostgresOptions,
    name: Arc<str>,
) -> Result<PostgresJournal, StoreError> {
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
                pool: pool(config.clone(), tls.clone(), options)?,
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

    let pool = pool(config, tls, options)?;
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

/// The coordination of the one writer (or of a standby's reading journal, which never held the lock): every
/// unfinished operation is its own, every role its own locks keep, and it leads at once; it has lost the journal
/// when the writer lock's session ended.
pub(super) struct WriterLock {
    pub(super) journal: PostgresJournal,
}

#[async_trait]
impl Coordination for WriterLock {
    fn shares_work(&self) -> bool {
        false
    }

    async fn claim_operations(&self, _limit: usize) -> Result<Vec<OperationRow>, StoreError> {
        self.journal.unfinished_operations().await
    }

    async fn lock_role(&self, _account: &str, _role: &str, _operation: &str) -> Result<Option<String>, StoreError> {
        Ok(Some(String::new()))
    }

    async fn unlock_role(&self, _account: &str, _role: &str, _token: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn live_replicas(&self) -> Result<usize, StoreError> {
        Ok(1)
    }

    async fn leader(&self) {}

    async fn release(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn writer_lost(&self) -> String {
        if self.journal.standby_of.is_some() {
            // A standby's reading journal never held the lock: nothing to lose.
            return std::future::pending().await;
        }
        let mut lost = self.journal.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
        format!(
            "the session holding the journal {}'s writer lock ended (the database restarted, the connection broke, or \
             someone ended it): another crossroled may hold the journal now",
            self.journal.name
        )
    }
}
