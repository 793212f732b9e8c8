//! The memory budget of requests: the bytes of request bodies held at once, across every request, are bounded.
//!
//! `max_request_bytes` bounds one request; without more, many requests just under it, at once, add up (64 of 4 MiB
//! held 290 MB, and kept it). Each request's body takes permits from one semaphore — a byte each — and gives them
//! back when the request is done: its body read, decoded and handled, its answer on its way. A message takes its
//! whole length as soon as its gRPC header (a flag and the length) arrives, as tonic makes room for all of it
//! then, and its bytes take nothing more as they come: a request holds the room its message needs or none of it.
//! Taken a frame at a time instead, many requests at once each held part of the budget and none could finish (32
//! of 4 MiB in a budget of 64 MiB waited 30 s, and some were refused, in the flood of the bench's part C). A
//! request whose message does not fit waits for room, up to [`WAIT`]; then it is answered RESOURCE_EXHAUSTED, with
//! what it had taken given back at once. What a connection sends before its request is read waits outside the
//! budget: HTTP/2's receive windows keep that small ([`super::RECEIVE_WINDOW`]). Tokens are checked before (on
//! headers, [`crate::auth`]), so a caller without one never takes any of the budget.

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
    budget: Budget,
}

/// The semaphore, and what one message may take of it.
#[derive(Clone)]
struct Budget {
    semaphore: Arc<Semaphore>,
    /// Its size: what one frame takes at most (so that it can always be had once the others are done).
    size: u32,
    /// What one message's length takes at most: a longer one is refused by tonic as soon as it reads the header.
    max_message: usize,
}

impl BudgetLayer {
    /// A budget of `bytes` request bytes held at once (at least one request of `max_request` fits).
    pub(crate) fn new(bytes: usize, max_request: usize) -> BudgetLayer {
        let size = bytes.max(max_request).min(Semaphore::MAX_PERMITS).min(u32::MAX as usize);
        BudgetLayer {
            budget: Budget {
                semaphore: Arc::new(Semaphore::new(size)),
                size: u32::try_from(size).unwrap_or(u32::MAX),
                max_message: max_request,
            },
        }
    }
}

impl<S> tower::Layer<S> for BudgetLayer {
    type Service = Budgeted<S>;

    fn layer(&self, inner: S) -> Budgeted<S> {
        Budgeted { inner, budget: self.budget.clone() }
    }
}

/// The service [`BudgetLayer`] makes.
#[derive(Clone)]
pub(crate) struct Budgeted<S> {
    inner: S,
    budget: Budget,
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
                budget: self.budget.clone(),
                framing: Framing::default(),
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

/// A request body that takes from the budget as its messages' headers arrive.
struct BudgetedBody {
    inner: tonic::body::Body,
    budget: Budget,
    framing: Framing,
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
            let n = frame.data_ref().map_or(0, |data| this.framing.take(data, this.budget.max_message));
            if n == 0 {
                return Poll::Ready(Some(Ok(frame)));
            }
            let n = u32::try_from(n).unwrap_or(u32::MAX).min(this.budget.size);
            match this.budget.semaphore.clone().try_acquire_many_owned(n) {
                Ok(permit) => {
                    if let Ok(mut held) = this.held.lock() {
                        held.push(permit);
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Err(_) => {
                    let semaphore = this.budget.semaphore.clone();
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

/// Where a body is in gRPC's framing: each message a 5-byte header (a flag, then its length, big-endian) and its
/// bytes.
#[derive(Default)]
struct Framing {
    /// The header read so far.
    header: Vec<u8>,
    /// The current message's bytes still to come that its header took (none past `max_message`).
    taken: usize,
    /// Its bytes still to come past `max_message`, taken one by one (tonic refuses the message before them).
    past: usize,
}

impl Framing {
    /// What `data`, the body's next bytes, takes from the budget: a byte for each byte of a header, and a message's
    /// length (up to `max_message`) as its header ends; nothing for the bytes its header took.
    fn take(&mut self, data: &[u8], max_message: usize) -> usize {
        let mut need = 0;
        let mut rest = data;
        while !rest.is_empty() {
            let k;
            if self.taken > 0 {
                k = self.taken.min(rest.len());
                self.taken -= k;
            } else if self.past > 0 {
                k = self.past.min(rest.len());
                self.past -= k;
                need += k;
            } else {
                k = (5 - self.header.len()).min(rest.len());
                self.header.extend_from_slice(&rest[..k]);
                need += k;
                if let [_, a, b, c, d] = self.header[..] {
                    let length = u32::from_be_bytes([a, b, c, d]) as usize;
                    self.taken = length.min(max_message);
                    self.past = length - self.taken;
                    need += self.taken;
                    self.header.clear();
                }
            }
            rest = &rest[k..];
        }
        need
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

    /// A service that reads the whole body and answers at once.
    fn prompt_reader() -> Reader {
        Reader::new(tower::service_fn(|r: http::Request<tonic::body::Body>| async move {
            let answer = match r.into_body().collect().await {
                Ok(b) => format!("read {}", b.to_bytes().len()),
                Err(status) => format!("{:?}: {}", status.code(), status.message()),
            };
            Ok::<_, Infallible>(http::Response::new(answer))
        }))
    }

    /// A request whose body is the frames sent on the channel, as they are sent.
    fn streamed(frames: tokio::sync::mpsc::UnboundedReceiver<Bytes>) -> http::Request<tonic::body::Body> {
        let frames = futures::stream::unfold(frames, |mut frames| async move {
            frames.recv().await.map(|b| (Ok::<_, Infallible>(Frame::data(b)), frames))
        });
        http::Request::new(tonic::body::Body::new(http_body_util::StreamBody::new(frames)))
    }

    #[test]
    fn a_message_takes_its_length_when_its_header_ends() {
        let mut f = Framing::default();
        // A header split over two frames, then the message's bytes, then a second message of 2 bytes whole.
        assert_eq!(f.take(&[0, 0, 0], 100), 3);
        assert_eq!(f.take(&[0, 10, 1, 2], 100), 2 + 10);
        assert_eq!(f.take(&[3; 7], 100), 0);
        assert_eq!(f.take(&[4, 0, 0, 0, 0, 2, 5, 6], 100), 5 + 2, "the first message's last byte takes nothing");
        // A length past what a message may be takes that much, and its bytes past it one each.
        assert_eq!(f.take(&[0, 0, 0, 0, 200, 1, 1], 100), 5 + 100);
        assert_eq!(f.take(&[1; 150], 100), 52);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_that_together_overflow_the_budget_each_wait_for_all_of_their_room_and_are_all_served() {
        let layer = BudgetLayer::new(1000, 600);
        let service = layer.layer(prompt_reader());
        // Four messages of 395 bytes (400 with their headers), sent 100 bytes at a time, each request in turn:
        // taken a frame at a time, the four held 1000 bytes before any was whole, and none could finish.
        let mut message = vec![0, 0, 0, 1, 139];
        message.resize(400, 7);
        let mut senders = Vec::new();
        let mut answers = Vec::new();
        for _ in 0..4 {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            senders.push(tx);
            answers.push(tokio::spawn(service.clone().oneshot(streamed(rx))));
        }
        for chunk in message.chunks(100) {
            for tx in &senders {
                let _ = tx.send(Bytes::copy_from_slice(chunk));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(senders);
        let mut read = Vec::new();
        for a in answers {
            read.push(a.await.ok().and_then(|r| r.ok()).map(|r| r.into_body()).unwrap_or_default());
        }
        assert_eq!(read, ["read 400"; 4]);
        assert_eq!(layer.budget.semaphore.available_permits(), 1000);
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
        assert_eq!(layer.budget.semaphore.available_permits(), 400);
        // 500 more do not fit: it waits, then is refused once the wait runs out.
        let refused = service.clone().oneshot(request(500)).await.map(|r| r.into_body()).unwrap_or_default();
        assert!(refused.starts_with("ResourceExhausted"), "{refused}");
        assert_eq!(layer.budget.semaphore.available_permits(), 400, "the refused one gave back what it took");
        // 300 fit beside the first.
        let small = tokio::spawn(service.clone().oneshot(request(300)));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(layer.budget.semaphore.available_permits(), 100);
        release.notify_waiters();
        let mut answers = Vec::new();
        for h in [first, small] {
            answers.push(h.await.ok().and_then(|r| r.ok()).map(|r| r.into_body()).unwrap_or_default());
        }
        assert_eq!(answers, ["read 600", "read 300"]);
        assert_eq!(layer.budget.semaphore.available_permits(), 1000, "every byte back once the requests are done");
    }
}
