//! Retention's loop: every period, the finished operations and audit entries the configured ages let go leave
//! the journal ([`Engine::expire`]).

use std::time::Duration;

use super::Loop;
use crate::{Engine, Expired, Retention};

/// The loop.
pub(crate) struct Keep {
    engine: Engine,
    retention: Retention,
    period: Duration,
}

impl Keep {
    pub(crate) fn new(engine: Engine, retention: Retention, period: Duration) -> Keep {
        Keep { engine, retention, period }
    }
}

#[async_trait::async_trait]
impl Loop for Keep {
    fn name(&self) -> &'static str {
        "retention"
    }

    async fn tick(&mut self) -> Duration {
        match self.engine.expire(&self.retention, crate::now_ms()).await {
            Ok(Expired { operations: 0, audit_entries: 0 }) => {}
            Ok(n) => tracing::info!(
                operations = n.operations,
                audit_entries = n.audit_entries,
                "retention: deleted finished operations and old audit entries"
            ),
            Err(e) => tracing::warn!(error = %e, "retention: cannot delete finished operations; retrying later"),
        }
        self.period
    }
}
