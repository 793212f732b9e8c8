//! The memory budget of requests: the bytes of request bodies held at once, across every request, are bounded.
//!
//! `max_request_bytes` bounds one request; without more, many requests just under it, at once, add up (64 of 4 MiB
//! held 290 MB, and kept it). Each request's body takes permits from one semaphore as its bytes arrive — a byte
//! each — and gives them back when the request is done: its body read, decoded and handled, its answer on its
//! way. A request whose bytes do not fit waits for room, up to [`WAIT`]; then it is answered RESOURCE_EXHAUSTED,
//! with what it had read given back at once. Tokens are checked before (on headers, [`crate::auth`]), so a caller
//! without one never takes any of the budget.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

use crate::error::ApiError;

/// How long a request waits for room in the budget before it is refused.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The budget, shared by every request of a listener.
#[derive(Clone)]
pub(crate) struct BudgetLayer {
    semaphore: Arc<Semaphore>,
}

impl BudgetLayer {
    /// A budget of `bytes` request bytes held at once (at least one request of `max_request` fits).
    pub(crate) fn new(bytes: usize, max_request: usize) -> BudgetLayer {
        let bytes = bytes.max(max_request).min(Semaphore::MAX_PERMITS);
        BudgetLayer { semaphore: Arc::new(Semaphore::new(bytes)) }
    }
}

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;

    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted { inner, semaphore: self.semaphore.clone() }
    }
}

/// The service [`BudgetLayer`] makes.
#[derive(Clone)]
pub(crate) struct Budgeted<S> {
    inner: S,
    semaphore: Arc<Semaphore>,
}

/// The permits a request holds: given back when the body and the answer are both done with them.
type Held = Arc<Mutex<Vec<OwnedSemaphorePermit>>>;

impl<S, ResBody> tower::Service<http::Request<tonic::body::Body>> for Budgeted<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let held: Held = Arc::default();
        let request = request.map(|body| {
            tonic::body::Body::new(BudgetedBody {
                inner: body,
                semaphore: self.semaphore.clone(),
                held: held.clone(),
                waiting: None,
                pending: None,
            })
        });
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            // The request is handled: what its body took goes back (the body itself may still be dropped later).
            drop(held);
            answer
        })
    }
}

/// A request body that takes from the budget as its bytes arrive.
struct BudgetedBody {
    inner: tonic::body::Body,
    semaphore: Arc<Semaphore>,
    held: Held,
    /// Room being waited for, and the frame that needs it.
    waiting: Option<Pin<Box<dyn Future<Output = Option<OwnedSemaphorePermit>> + Send>>>,
    pending: Option<Frame<Bytes>>,
}

impl Body for BudgetedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if let Some(waiting) = this.waiting.as_mut() {
                match waiting.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => {
                        this.waiting = None;
                        this.pending = None;
                        // What it took goes back at once: it will not be handled.
                        if let Ok(mut held) = this.held.lock() {
                            held.clear();
                        }
                        let busy = ApiError::Busy(
                            "crossroled holds as many request bytes as its budget allows; try again shortly".into(),
                        );
                        return Poll::Ready(Some(Err(Status::from(busy))));
                    }
                    Poll::Ready(Some(permit)) => {
                        this.waiting = None;
                        if let Ok(mut held) = this.held.lock() {
                            held.push(permit);
                        }
                        return Poll::Ready(this.pending.take().map(Ok));
                    }
                }
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let n = frame.data_ref().map_or(0, Bytes::len);
            if n == 0 {
                return Poll::Ready(Some(Ok(frame)));
            }
            let n = u32::try_from(n).unwrap_or(u32::MAX);
            match this.semaphore.clone().try_acquire_many_owned(n) {
                Ok(permit) => {
                    if let Ok(mut held) = this.held.lock() {
                        held.push(permit);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Err(_) => {
                    let semaphore = this.semaphore.clone();
                    this.pending = Some(frame);
                    this.waiting = Some(Box::pin(async move {
                        tokio::time::timeout(WAIT, semaphore.acquire_many_owned(n)).await.ok()?.ok()
                    }));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.waiting.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt;
    use tower::{Layer, ServiceExt};

    use super::*;

    /// A service that reads the whole body, then holds it until `release` (a handler still at work).
    type Reader =
        tower::util::BoxCloneSyncService<http::Request<tonic::body::Body>, http::Response<String>, Infallible>;

    fn reader(release: Arc<tokio::sync::Notify>) -> Reader {
        Reader::new(tower::service_fn(move |r: http::Request<tonic::body::Body>| {
            let release = release.clone();
            async move {
                let answer = match r.into_body().collect().await {
                    Ok(b) => {
                        release.notified().await;
                        format!("read {}", b.to_bytes().len())
                    }
                    Err(status) => format!("{:?}: {}", status.code(), status.message()),
                };
                Ok::<_, Infallible>(http::Response::new(answer))
            }
        }))
    }

    fn request(bytes: usize) -> http::Request<tonic::body::Body> {
        http::Request::new(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(vec![0u8; bytes]))))
    }

    #[tokio::test(start_paused = true)]
    async fn requests_past_the_budget_wait_for_room_then_are_refused_and_what_they_took_goes_back() {
        let layer = BudgetLayer::new(1000, 600);
        let release = Arc::new(tokio::sync::Notify::new());
        let service = layer.layer(reader(release.clone()));
        // 600 bytes held by a request being handled.
        let first = tokio::spawn(service.clone().oneshot(request(600)));
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(layer.semaphore.available_permits(), 400);
        // 500 more do not fit: it waits, then is refused once the wait runs out.
        let refused = service.clone().oneshot(request(500)).await.map(|r| r.into_body()).unwrap_or_default();
        assert!(refused.starts_with("ResourceExhausted"), "{refused}");
        assert_eq!(layer.semaphore.available_permits(), 400, "the refused one gave back what it took");
        // 300 fit beside the first.
        let small = tokio::spawn(service.clone().oneshot(request(300)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(layer.semaphore.available_permits(), 100);
        release.notify_waiters();
        let mut answers = Vec::new();
        for h in [first, small] {
            answers.push(h.await.ok().and_then(|r| r.ok()).map(|r| r.into_body()).unwrap_or_default());
        }
        assert_eq!(answers, ["read 600", "read 300"]);
        assert_eq!(layer.semaphore.available_permits(), 1000, "every byte back once the requests are done");
    }
}
