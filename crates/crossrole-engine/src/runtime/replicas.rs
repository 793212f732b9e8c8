//! The claims of a replica on a shared journal: every round, its share of the AWS quotas (the replicas alive), the
//! operations dead replicas left (claimed and resumed), and the cancels asked on other replicas
//! ([`Engine::share_once`]).

use std::time::Duration;

use super::Loop;
use crate::Engine;

/// The loop.
pub(crate) struct Claims {
    engine: Engine,
    every: Duration,
}

impl Claims {
    pub(crate) fn new(engine: Engine, every: Duration) -> Claims {
        Claims { engine, every }
    }
}

#[async_trait::async_trait]
impl Loop for Claims {
    fn name(&self) -> &'static str {
        "replicas"
    }

    async fn tick(&mut self) -> Duration {
        self.engine.share_once().await;
        self.every
    }
}
