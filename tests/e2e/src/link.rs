//! A TCP link between a crossroled and its database that a test can cut, as a network partition does.
//!
//! Until it is cut it forwards both ways. Cut, it closes every connection on the database's side (the server sees
//! its sessions end, as it does when its keep-alives go unanswered, and lets go of their locks) and keeps the
//! crossroled's side open and silent: what crossroled sends is never answered and never refused, so its queries
//! hang, as over a real partition. Connections made after the cut are held the same way.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// A running link; stops when dropped.
pub struct Link {
    /// Where crossroled connects: `127.0.0.1:PORT`.
    pub addr: String,
    cut: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// The crossroled side of every connection that was cut, kept open and silent.
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        if let Ok(mut held) = self.held.lock() {
            held.clear();
        }
    }
}

impl Link {
    /// A link to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Result<Link> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (cut, _) = watch::channel(false);
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let task = tokio::spawn({
            let (upstream, cut, held) = (upstream.to_string(), cut.clone(), held.clone());
            async move {
                while let Ok((down, _)) = listener.accept().await {
                    tokio::spawn(forward(down, upstream.clone(), cut.subscribe(), held.clone()));
                }
            }
        });
        Ok(Link { addr, cut, task, held })
    }

    /// Cuts the link: the database's side of every connection closes, crossroled's goes silent.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }
}

async fn forward(
    mut down: TcpStream,
    upstream: String,
    mut cut: watch::Receiver<bool>,
    held: Arc<Mutex<Vec<TcpStream>>>,
) {
    if !*cut.borrow() {
        let Ok(mut up) = TcpStream::connect(&upstream).await else { return };
        let (mut down_r, mut down_w) = down.split();
        let (mut up_r, mut up_w) = up.split();
        let ended = tokio::select! {
            _ = tokio::io::copy(&mut down_r, &mut up_w) => true,
            _ = tokio::io::copy(&mut up_r, &mut down_w) => true,
            _ = cut.wait_for(|c| *c) => false,
        };
        if ended {
            return;
        }
        // `up` is dropped here: the database sees the session end.
    }
    if let Ok(mut held) = held.lock() {
        held.push(down);
    }
}
