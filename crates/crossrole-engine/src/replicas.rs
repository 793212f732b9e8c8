//! Several live replicas on one shared journal ([`crossrole_store::Coordination::shares_work`]): each one claims the
//! operations whose replica died and resumes them, stops the operations it runs when a cancel is asked on another
//! replica, and takes its share of every AWS quota, following the number of replicas alive.

use crossrole_core::ops::OperationState;

use crate::{Engine, records};

impl Engine {
    /// One round of the replicas' loop ([`crate::runtime`]): the share of the quotas, the operations left by replicas that died,
    /// cancels asked elsewhere.
    pub async fn share_once(&self) {
        match self.inner.coordination.live_replicas().await {
            Ok(n) => self.inner.calls.set_share(n),
            Err(e) => tracing::warn!(error = %e, "cannot count the live replicas"),
        }
        match self.resume().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(operations = n, "took over operations whose replica stopped"),
            Err(e) => tracing::warn!(error = %e, "cannot claim operations whose replica stopped"),
        }
        self.follow_cancels().await;
    }

    /// Cancels the operations running here that a caller asked to cancel on another replica.
    async fn follow_cancels(&self) {
        let ids: Vec<String> = self
            .inner
            .running
            .lock()
            .map(|r| r.iter().filter(|(_, r)| !r.cancel.is_cancelled()).map(|(id, _)| id.clone()).collect())
            .unwrap_or_default();
        let cancelling = records::stored_state(OperationState::Cancelling);
        for id in ids {
            if let Ok(Some(row)) = self.inner.journal.get_operation(&id).await
                && row.state == cancelling
            {
                tracing::info!(operation = id, "cancel asked on another replica");
                self.cancel_running(&id);
            }
        }
    }
}
