//! A standby on PostgreSQL: while another crossroled writes the journal, this one waits for the writer lock and
//! meanwhile answers reads on its own listener — operations, their account results and live events (followed from
//! the journal, at most a quarter of a second behind the writer), and bindings — so that any replica answers them.
//! Everything else is refused as UNAVAILABLE, naming the writer. The moment the lock is granted, the reads stop
//! (watchers see their stream end and resume where they were, on any replica) and the full server starts in their
//! place.

use std::sync::Arc;

use anyhow::Context;
use crossrole_aws::api::AwsConnector;
use crossrole_engine::bindings::Bindings;
use crossrole_store::{Journal, PostgresJournal, PostgresOptions};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::server::Router;

use crate::{
    auth::{AuthLayer, Tokens},
    config::Config,
    journal_key::Configured,
    serve,
    state::State,
};

/// The gRPC health service name a replica answers SERVING while it serves reads: a standby does, not ready for
/// everything else.
pub const READS: &str = "reads";

/// Reads served while waiting.
struct Reads {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Opens the journal at `url`. A standby (`options.standby`) that finds the journal held serves reads on
/// `config.listen` until it holds the journal itself; `with_health` adds gRPC health to that router.
pub(crate) async fn open(
    url: &str,
    mut options: PostgresOptions,
    config: &Config,
    aws: &Arc<dyn AwsConnector>,
    configured: &Configured,
    health: &tonic_health::server::HealthReporter,
    with_health: impl Fn(Router<crate::serve::Layers>) -> Router<crate::serve::Layers>,
) -> anyhow::Result<PostgresJournal> {
    let (tx, mut waiting) = tokio::sync::mpsc::unbounded_channel::<PostgresJournal>();
    if options.standby {
        options.while_waiting = Some(Arc::new(move |reader| {
            let _ = tx.send(reader);
        }));
    }
    let connecting = PostgresJournal::connect(url, options);
    tokio::pin!(connecting);
    let mut reads: Option<Reads> = None;
    let journal = loop {
        tokio::select! {
            journal = &mut connecting => break journal?,
            Some(reader) = waiting.recv(), if reads.is_none() => {
                let at = crossrole_store::redacted_url(url);
                reads = Some(serve_reads(reader, &at, config, aws, configured, &with_health).await?);
                health.set_service_status(READS, tonic_health::ServingStatus::Serving).await;
            }
        }
    };
    if let Some(mut reads) = reads {
        // Reads in flight get a moment; watches, which would last until their operation ends (and it cannot end
        // before this crossroled resumes it), are cut: their clients resume from the last event they saw.
        let _ = reads.stop.send(());
        if tokio::time::timeout(std::time::Duration::from_secs(1), &mut reads.task).await.is_err() {
            reads.task.abort();
            let _ = reads.task.await;
        }
        tracing::info!("stopped serving reads as a standby: this crossroled writes the journal now");
    }
    Ok(journal)
}

async fn serve_reads(
    reader: PostgresJournal,
    at: &str,
    config: &Config,
    aws: &Arc<dyn AwsConnector>,
    configured: &Configured,
    with_health: &impl Fn(Router<crate::serve::Layers>) -> Router<crate::serve::Layers>,
) -> anyhow::Result<Reads> {
    // What every write is refused with: the journal and its writer.
    let refusal = reader.standby_error().map(|e| e.to_string()).unwrap_or_default();
    // Its coordination never held the writer lock: it loses nothing, and the reading engine resumes nothing.
    let coordination = reader.coordination();
    let journal: Arc<dyn Journal> = Arc::new(reader);
    // A key the journal is not written under is refused here too, before any read is answered with it.
    let journal_key = configured.settle(journal.as_ref(), at, false).await?;
    let engine = crate::engine(config, aws.clone(), journal.clone(), coordination, journal_key);
    let state = State {
        engine: engine.clone(),
        tokens: Arc::new(Tokens::new(&config.tokens)),
        journal,
        bindings: Bindings::new(engine),
        org_events: Default::default(),
        watchers: Default::default(),
    };
    let router = with_health(serve::router(config, &state, AuthLayer::standby(state.tokens.clone(), refusal))?);
    let listener =
        TcpListener::bind(config.listen).await.with_context(|| format!("listen: cannot bind {}", config.listen))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "serving reads as a standby failed");
        }
    });
    tracing::info!(%addr, "standby: serving reads while waiting for the journal");
    Ok(Reads { stop, task })
}
