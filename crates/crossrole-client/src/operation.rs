//! A handle on a long-running operation: its events as a stream, waiting for the end, cancelling.

use std::time::Duration;

use futures::{Stream, StreamExt};

use crate::{Client, Error, proto};

/// Whether a state is final.
pub fn is_final(state: i32) -> bool {
    [proto::OperationState::Succeeded, proto::OperationState::Failed, proto::OperationState::Cancelled]
        .iter()
        .any(|s| *s as i32 == state)
}

/// A handle on an operation.
#[derive(Debug, Clone)]
pub struct OperationHandle {
    client: Client,
    operation: proto::Operation,
}

impl OperationHandle {
    pub(crate) fn new(client: Client, operation: proto::Operation) -> OperationHandle {
        OperationHandle { client, operation }
    }

    /// The operation id.
    pub fn id(&self) -> &str {
        &self.operation.id
    }

    /// The operation as it was when the handle was made.
    pub fn initial(&self) -> &proto::Operation {
        &self.operation
    }

    /// The operation now.
    pub async fn get(&self) -> Result<proto::Operation, Error> {
        self.client.operation(self.id()).await
    }

    /// Asks the operation to stop.
    pub async fn cancel(&self) -> Result<proto::Operation, Error> {
        self.client.cancel(self.id()).await
    }

    /// Every event from the start, then live events until the operation ends. If the connection drops, the
    /// stream reconnects and resumes after the last event it yielded; it never repeats or skips one.
    pub fn events(&self) -> impl Stream<Item = Result<proto::OperationEvent, Error>> + Send + 'static {
        self.events_after(0)
    }

    /// Like [`OperationHandle::events`], after sequence `after`.
    pub fn events_after(
        &self,
        after: u64,
    ) -> impl Stream<Item = Result<proto::OperationEvent, Error>> + Send + 'static {
        let client = self.client.clone();
        let id = self.operation.id.clone();
        async_stream::try_stream! {
            let mut last = after;
            let mut failures = 0u32;
            loop {
                let mut stream = match client.watch(&id, last).await {
                    Ok(s) => s,
                    // Watching is cheap and resumable: any unavailability is waited out.
                    Err(e) if (e.is_retryable() || matches!(e, Error::Unavailable { .. })) && failures < client.retries.max(1) * 3 => {
                        failures += 1;
                        tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10)))).await;
                        continue;
                    }
                    Err(e) => Err(e)?,
                };
                let mut ended = false;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(r) => {
                            let Some(event) = r.event else { continue };
                            if event.sequence <= last {
                                continue;
                            }
                            last = event.sequence;
                            failures = 0;
                            let done = matches!(&event.event, Some(proto::operation_event::Event::StateChanged(s)) if is_final(s.state));
                            yield event;
                            if done {
                                ended = true;
                                break;
                            }
                        }
                        Err(e) if e.is_retryable() || matches!(e, Error::Unavailable { .. } | Error::Other { code: tonic::Code::Unknown | tonic::Code::Internal, .. }) => break,
                        Err(e) => Err(e)?,
                    }
                }
                if ended {
                    break;
                }
                // The stream ended without the final event: the connection dropped. Resume.
                failures += 1;
                if failures > client.retries.max(1) * 3 {
                    Err(Error::Unavailable {
                        message: format!("lost the event stream of operation {id} after sequence {last}"),
                        retry_after: None,
                        reached_server: true,
                    })?;
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(10)))).await;
            }
        }
    }

    /// Waits for the operation to end and returns it.
    pub async fn wait(&self) -> Result<proto::Operation, Error> {
        let events = self.events();
        futures::pin_mut!(events);
        while let Some(e) = events.next().await {
            e?;
        }
        self.get().await
    }

    /// Every per-account result, in target order.
    pub async fn results(&self) -> Result<Vec<proto::AccountResult>, Error> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self
                .client
                .list_account_results(proto::ListAccountResultsRequest {
                    operation_id: self.id().to_string(),
                    outcomes: vec![],
                    page_size: 1000,
                    page_token: token,
                })
                .await?;
            out.extend(page.results);
            if page.next_page_token.is_empty() {
                return Ok(out);
            }
            token = page.next_page_token;
        }
    }
}
