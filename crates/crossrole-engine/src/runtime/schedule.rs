//! The bindings' schedule: reconciles the bindings that are due, every tick and at once after a change
//! ([`Bindings::pass`]).

use std::{sync::Arc, time::Duration};

use super::Loop;
use crate::bindings::Bindings;

/// The loop.
pub(crate) struct Schedule {
    bindings: Bindings,
    tick: Duration,
}

impl Schedule {
    pub(crate) fn new(bindings: Bindings, tick: Duration) -> Schedule {
        Schedule { bindings, tick }
    }
}

#[async_trait::async_trait]
impl Loop for Schedule {
    fn name(&self) -> &'static str {
        "schedule"
    }

    async fn tick(&mut self) -> Duration {
        if let Err(e) = self.bindings.pass().await {
            tracing::warn!(error = %e, "reconcile pass failed; retrying at the next tick");
        }
        self.tick
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.bindings.woken())
    }
}
