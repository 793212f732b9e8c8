//! The SDK's HTTP client, whose sockets write nothing once the fence has passed.
//!
//! The call layer checks the fence before each write attempt and whenever the attempt waits ([`crate::fence`]),
//! but a request the SDK has handed to the HTTP client is written by the connection's own task: a process paused
//! (SIGSTOP, a frozen VM) just after the hand-over would send it the moment it goes on, past its deadline. So the
//! sockets check too: every write to a connection — the request's bytes, TLS included — is refused at or after the
//! deadline, and the connection fails. Once the fence has passed this process sends nothing more to AWS at all,
//! read or write: it is stopping.
//!
//! A connection given up — at the fence, or at a write attempt's limit — is reset, not closed (SO_LINGER 0): what
//! the kernel still holds of its request is discarded, never retransmitted later (a signed request stays valid for
//! minutes), so nothing of it can reach AWS after the attempt that sent it.
//!
//! It is hyper's client over rustls (ring, the platform's roots), as the SDK's own, with a 5 s connect timeout.

use std::{
    io,
    pin::Pin,
    sync::{Arc, RwLock},
    task::{Context, Poll},
    time::Duration,
};

use aws_smithy_runtime_api::client::{
    http::{HttpConnector, HttpConnectorFuture, SharedHttpClient, SharedHttpConnector, http_client_fn},
    orchestrator::HttpResponse,
    result::ConnectorError,
};
use aws_smithy_types::body::SdkBody;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::{
    client::legacy::{
        Client,
        connect::{Connected, Connection, HttpConnector as TcpConnector},
    },
    rt::{TokioExecutor, TokioIo},
};

use crate::fence::Fence;

/// The fence the sockets check; set once the journal's coordination is known.
#[derive(Clone, Default)]
pub(crate) struct SocketFence(Arc<RwLock<Fence>>);

impl SocketFence {
    pub(crate) fn set(&self, fence: Fence) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    fn lapsed(&self) -> bool {
        self.0.read().unwrap_or_else(|e| e.into_inner()).lapsed_now()
    }
}

/// The SDK's HTTP client, its sockets fenced by `fence`.
pub(crate) fn client(fence: SocketFence) -> io::Result<SharedHttpClient> {
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()?
        .https_or_http()
        .enable_http1()
        .wrap_connector(Abortive(tcp));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(Fenced { inner: https, fence });
    let connector = SharedHttpConnector::new(Sdk { client });
    Ok(http_client_fn(move |_, _| connector.clone()))
}

/// The connector the SDK calls.
#[derive(Clone, Debug)]
struct Sdk<C: Clone> {
    client: Client<C, SdkBody>,
}

impl<C> HttpConnector for Sdk<C>
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + std::fmt::Debug + 'static,
{
    fn call(&self, request: aws_smithy_runtime_api::client::orchestrator::HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let sent = self.client.request(request);
        HttpConnectorFuture::new(async move {
            let response = sent.await.map_err(|e| ConnectorError::io(e.into()))?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// TCP connections reset when dropped (SO_LINGER 0).
#[derive(Clone)]
struct Abortive(TcpConnector);

impl tower_service::Service<hyper::Uri> for Abortive {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            socket2::SockRef::from(io.inner()).set_linger(Some(Duration::ZERO))?;
            Ok(io)
        })
    }
}

/// A connector whose connections are fenced.
#[derive(Clone)]
struct Fenced<C> {
    inner: C,
    fence: SocketFence,
}

impl<C> std::fmt::Debug for Fenced<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fenced")
    }
}

impl<C> tower_service::Service<hyper::Uri> for Fenced<C>
where
    C: tower_service::Service<hyper::Uri>,
    C::Future: Send + 'static,
    C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = FencedIo<C::Response>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let fence = self.fence.clone();
        if fence.lapsed() {
            return Box::pin(async { Err(fenced().into()) });
        }
        let connecting = self.inner.call(uri);
        Box::pin(async move { Ok(FencedIo { io: connecting.await.map_err(Into::into)?, fence }) })
    }
}

fn fenced() -> io::Error {
    io::Error::other("not sent: this crossroled's lease on the journal may have lapsed; it sends nothing more to AWS")
}

/// A connection whose writes are refused once the fence has passed.
struct FencedIo<T> {
    io: T,
    fence: SocketFence,
}

impl<T: Read + Unpin> Read for FencedIo<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for FencedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.fence.lapsed() {
            return Poll::Ready(Err(fenced()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.fence.lapsed() {
            return Poll::Ready(Err(fenced()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.fence.lapsed() {
            return Poll::Ready(Err(fenced()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T: Connection> Connection for FencedIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::http::HttpClient;
    use tokio::{io::AsyncReadExt, net::TcpListener, sync::watch, time::Instant};

    use super::*;

    #[tokio::test]
    async fn a_connection_given_up_is_reset_and_the_kernel_sends_nothing_more_of_it() {
        use tower_service::Service;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: hyper::Uri = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        let io = Abortive(tcp).call(uri).await.unwrap();
        let (mut accepted, _) = listener.accept().await.unwrap();
        drop(io);
        let mut buf = [0u8; 16];
        let read = accepted.read(&mut buf).await;
        assert_eq!(read.map_err(|e| e.kind()), Err(io::ErrorKind::ConnectionReset), "closed, not reset");
    }

    /// A listener that answers every request with an empty 200, and counts the bytes it was sent.
    async fn server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = received.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let counted = counted.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        counted.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                        use tokio::io::AsyncWriteExt;
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
                    }
                });
            }
        });
        (url, received)
    }

    fn request(url: &str) -> aws_smithy_runtime_api::client::orchestrator::HttpRequest {
        let r = http::Request::builder().method("POST").uri(url).body(SdkBody::from("Action=CreateRole")).unwrap();
        r.try_into().unwrap()
    }

    #[tokio::test]
    async fn nothing_leaves_a_socket_once_the_fence_has_passed() {
        let (url, received) = server().await;
        let fence = SocketFence::default();
        let (renew, until) = watch::channel(Instant::now() + Duration::from_secs(60));
        fence.set(Fence::lease(until, Duration::from_secs(5)));
        let client = client(fence).unwrap();
        let settings = Default::default();
        let components =
            aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder::for_tests().build().unwrap();
        let connector = client.http_connector(&settings, &components);
        let answered = connector.call(request(&url)).await.unwrap();
        assert_eq!(answered.status().as_u16(), 200);
        let before = received.load(std::sync::atomic::Ordering::SeqCst);
        assert!(before > 0);
        // The deadline passes: the open, pooled connection writes nothing more, nor does a new one.
        renew.send(Instant::now()).unwrap();
        assert!(connector.call(request(&url)).await.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), before, "bytes left after the deadline");
    }
}
