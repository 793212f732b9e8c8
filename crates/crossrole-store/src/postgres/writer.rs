//! One writer per PostgreSQL journal, as with SQLite's data-directory lock: a crossroled holds a session advisory
//! lock on a connection of its own for its whole life, and a second crossroled on the same database is refused,
//! naming the holder, or, a standby, waits for the lock ([`PostgresOptions::standby`]) and reads meanwhile.
//!
//! The lock is PostgreSQL's, so it ends with the holder's session: a crossroled killed with -9 leaves nothing to
//! clean up, and one whose connection broke has lost it. The writer checks its session every heartbeat and writes
//! only until the fence after the last answer ([`crate::LeaseTimes`]); a new writer whose predecessor did not stop
//! cleanly waits a lease first. Its coordination ([`WriterLock`]) is a single node's but for that:
//! [`Coordination::writer_lost`] resolves when the lock's session may be gone.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use tokio::time::Instant;

use super::{
    PostgresJournal, PostgresOptions,
    connection::pool,
    session::{Renewal, Session},
    shared,
};
use crate::{Coordination, Journal, LeaseDeadline, LeaseTimes, OperationRow, StoreError};

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
/// [`PostgresOptions::while_waiting`] meanwhile), migrates, and writes its name into the journal. A writer that
/// did not stop cleanly may still be writing to AWS for a while after its lock ended (its connection was cut, or it
/// was paused): then this one waits one lease before it writes anything ([`crate::LeaseTimes`]).
pub(super) async fn connect(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: &PostgresOptions,
    name: Arc<str>,
) -> Result<PostgresJournal, StoreError> {
    let times = LeaseTimes::of(options.lease.max(Duration::from_secs(1)));
    // The writer lock, on a session of its own held for the life of the process.
    let Session { client, place } = Session::open(&config, tls.clone(), name.clone(), times).await?;
    let got: bool = client.query_one("SELECT pg_try_advisory_lock($1)", &[&WRITER_LOCK]).await?.get(0);
    if !got {
        let holder = match shared::alive_replicas(&client).await {
            Ok(n) if n > 0 => sharing(n),
            _ => writer_named(&client).await.unwrap_or_else(|| "another crossroled".into()),
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
                place: place.clone(),
                name: name.clone(),
                session: client.clone(),
                standby_of: Some(holder.clone().into()),
                replica: None,
            });
        }
        client.execute("SELECT pg_advisory_lock($1)", &[&WRITER_LOCK]).await?;
        let previous = writer_named(&client).await.unwrap_or(holder);
        tracing::info!(journal = %name, %previous, "took the journal over");
    }

    let journal = PostgresJournal {
        pool: pool(config, tls, options)?,
        place,
        name,
        session: client,
        standby_of: None,
        replica: None,
    };
    journal.migrate().await?;
    // Replicas sharing the journal's work run its operations: one writer alongside would run them twice.
    let shared = shared::alive_replicas(&journal.session).await?;
    if shared > 0 {
        return Err(StoreError::Locked { dir: journal.name.to_string(), holder: sharing(shared) });
    }
    wait_out_an_unclean_writer(&journal.session, &journal.name, times.lease).await?;
    let holder = format!("crossroled pid {} on host {}", std::process::id(), crate::lock::hostname());
    let sent = Instant::now();
    journal
        .session
        .batch_execute(&format!(
            "INSERT INTO journal_meta (key, value) VALUES ('writer', {holder}), ('writer_state', 'writing') \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            holder = quoted(&holder)
        ))
        .await?;
    journal.place.confirmed(sent);
    tokio::spawn(journal.place.clone().keep(alive(Arc::downgrade(&journal.session)), || async {}));
    Ok(journal)
}

/// Waits one lease when the journal's last writer did not stop cleanly: it may still be writing to AWS until its
/// fence, which is within a lease of its last renewal. (Writers and replicas of a journal share `journal_lease`.)
pub(super) async fn wait_out_an_unclean_writer(
    session: &tokio_postgres::Client,
    journal: &str,
    lease: Duration,
) -> Result<(), StoreError> {
    let last = session.query_opt("SELECT value FROM journal_meta WHERE key = 'writer_state'", &[]).await?;
    if last.is_some_and(|row| row.get::<_, String>(0) != "stopped") {
        let previous = writer_named(session).await.unwrap_or_else(|| "the last writer".into());
        tracing::warn!(
            journal,
            %previous,
            wait_s = lease.as_secs_f64(),
            "the last writer did not stop cleanly and may still be writing to AWS for a while: waiting one lease \
             before writing"
        );
        tokio::time::sleep(lease).await;
    }
    Ok(())
}

/// `text` as an SQL string literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The writer's renewal: its session answers, so it still holds the lock (a session lock ends only with its
/// session). Once the journal is dropped, there is nothing to renew.
fn alive(
    session: std::sync::Weak<tokio_postgres::Client>,
) -> impl FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Renewal, StoreError>> + Send>> {
    move || {
        let session = session.clone();
        Box::pin(async move {
            let Some(client) = session.upgrade() else {
                return Ok(Renewal::Lost("the journal was closed".into()));
            };
            client.query_one("SELECT 1", &[]).await?;
            Ok(Renewal::Confirmed)
        })
    }
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

    async fn claim_operations(&self, _limit: usize, passed_over: &[String]) -> Result<Vec<OperationRow>, StoreError> {
        let mut rows = self.journal.unfinished_operations().await?;
        rows.retain(|r| !passed_over.contains(&r.id));
        Ok(rows)
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

    /// Stops writing, and says in the journal that it stopped cleanly: the next writer need not wait for it.
    async fn release(&self) -> Result<(), StoreError> {
        if self.journal.standby_of.is_some() || !self.journal.place.may_write() {
            return Ok(());
        }
        self.journal.place.stop("this crossroled is stopping".into());
        self.journal
            .session
            .execute("UPDATE journal_meta SET value = 'stopped' WHERE key = 'writer_state'", &[])
            .await?;
        Ok(())
    }

    fn fence(&self) -> Option<LeaseDeadline> {
        self.journal.standby_of.is_none().then(|| self.journal.place.fence())
    }

    async fn writer_lost(&self) -> String {
        if self.journal.standby_of.is_some() {
            // A standby's reading journal never held the lock: nothing to lose.
            return std::future::pending().await;
        }
        let mut lost = self.journal.place.lost.clone();
        let _ = lost.wait_for(|lost| *lost).await;
        format!(
            "this crossroled stopped writing the journal {} (its writer lock may be lost: another crossroled may hold \
             the journal soon): {}",
            self.journal.name,
            self.journal.place.why().unwrap_or_default()
        )
    }
}
