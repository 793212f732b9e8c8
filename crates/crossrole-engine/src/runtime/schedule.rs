//! The bindings' schedule: reconciles the bindings that are due, and removes the access whose end has come (a
//! binding's, in [`Bindings::pass`]; an apply's, in [`Expiries::pass`]), every tick and at once after a change.

use std::{sync::Arc, time::Duration};

use super::Loop;
use crate::{bindings::Bindings, expiries::Expiries};

/// The loop.
pub(crate) struct Schedule {
    bindings: Bindings,
    expiries: Expiries,
    tick: Duration,
}

impl Schedule {
    pub(crate) fn new(bindings: Bindings, tick: Duration) -> Schedule {
        let expiries = Expiries::new(bindings.engine().clone());
        Schedule { bindings, expiries, tick }
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
        if let Err(e) = self.expiries.pass().await {
            tracing::warn!(error = %e, "cannot read the ends of applies; reading again at the next tick");
        }
        self.tick
    }

    fn wake(&self) -> Option<Arc<tokio::sync::Notify>> {
        Some(self.bindings.woken())
    }
}
