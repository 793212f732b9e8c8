//! The Organizations events queue in the fake: messages in, received (in flight until deleted), deleted.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use async_trait::async_trait;

use super::World;
use crate::{
    api::{QueueApi, QueueMessage},
    error::AwsError,
};

/// A queue's messages.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    waiting: VecDeque<QueueMessage>,
    in_flight: Vec<QueueMessage>,
    sent: u64,
    deleted: u64,
}

impl Queue {
    pub(crate) fn send(&mut self, body: &str) {
        self.sent += 1;
        let id = format!("m-{}", self.sent);
        self.waiting.push_back(QueueMessage { receipt_handle: format!("r-{id}"), id, body: body.to_string() });
    }

    /// Received and not deleted messages become visible again (their visibility timeout ran out).
    pub(crate) fn redeliver(&mut self) {
        for m in self.in_flight.drain(..).rev() {
            self.waiting.push_front(m);
        }
    }

    /// (waiting, in flight, deleted).
    pub(crate) fn counts(&self) -> (usize, usize, u64) {
        (self.waiting.len(), self.in_flight.len(), self.deleted)
    }
}

pub(crate) struct FakeQueue {
    pub(crate) world: Arc<World>,
}

#[async_trait]
impl QueueApi for FakeQueue {
    async fn receive(&self, max: u32, wait: Duration) -> Result<Vec<QueueMessage>, AwsError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            {
                let mut q = self.world.queue.lock().unwrap_or_else(|e| e.into_inner());
                let n = q.waiting.len().min(max.clamp(1, 10) as usize);
                if n > 0 {
                    let got: Vec<QueueMessage> = q.waiting.drain(..n).collect();
                    q.in_flight.extend(got.iter().cloned());
                    return Ok(got);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(vec![]);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn delete(&self, receipt_handles: &[String]) -> Result<Vec<(String, String)>, AwsError> {
        let mut q = self.world.queue.lock().unwrap_or_else(|e| e.into_inner());
        let mut failed = Vec::new();
        for r in receipt_handles {
            match q.in_flight.iter().position(|m| &m.receipt_handle == r) {
                Some(i) => {
                    q.in_flight.remove(i);
                    q.deleted += 1;
                }
                None => failed.push((r.clone(), "ReceiptHandleIsInvalid".to_string())),
            }
        }
        Ok(failed)
    }
}
