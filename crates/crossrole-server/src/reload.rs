//! The API tokens, read again without a restart: on SIGHUP (`main.rs`), and whenever the tokens file's content
//! changes — polled by its hash every [`POLL`], so that a Kubernetes Secret mounted as the file lands without a
//! signal (its update swaps a symlink; no file event is needed, and nothing to install).
//!
//! A reload reads the tokens as at start ([`TokensSource::load`]: the configuration file's own and the file's,
//! checked) and replaces them whole: a removed token is refused from the next request on. One that fails — a file
//! that does not read or does not check — keeps the tokens in force, and says why. Every reload is logged and
//! written to the audit log as `ReloadTokens` by `crossroled`, with what set it off and how it went (token names
//! and counts only).

use std::{path::Path, sync::Arc, time::Duration};

use crossrole_store::{AuditEntry, Journal};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::{
    auth::Tokens,
    config::{ConfigError, TokensSource},
    state::now_ms,
};

/// How often the tokens file is looked at.
pub const POLL: Duration = Duration::from_secs(2);

/// Reads the tokens again into the ones the server checks.
pub struct TokenReloader {
    source: TokensSource,
    tokens: Arc<Tokens>,
    journal: Arc<dyn Journal>,
    /// The hash of the tokens file's content last acted on (`None`: it did not read), so that one change is one
    /// reload, also when it fails.
    seen: Mutex<Option<[u8; 32]>>,
}

impl TokenReloader {
    /// A reloader of `source` into `tokens`, auditing into `journal`; the file as it is now counts as seen.
    pub fn new(source: TokensSource, tokens: Arc<Tokens>, journal: Arc<dyn Journal>) -> TokenReloader {
        let seen = Mutex::new(source.file.as_deref().and_then(content_hash));
        TokenReloader { source, tokens, journal, seen }
    }

    /// Reads the tokens again, `trigger` saying why (`SIGHUP`); returns how many are in force, or why the ones in
    /// force stay.
    pub async fn reload(&self, trigger: &str) -> Result<usize, ConfigError> {
        let mut seen = self.seen.lock().await;
        *seen = self.source.file.as_deref().and_then(content_hash);
        let result = self.source.load().map(|tokens| (self.tokens.replace(&tokens), tokens));
        drop(seen);
        let outcome = match &result {
            Ok((n, tokens)) => {
                let names: Vec<&str> = tokens.iter().map(|t| t.name.as_str()).collect();
                tracing::info!(target: "audit", trigger, tokens = n, names = ?names, "tokens reloaded");
                "ok".to_string()
            }
            Err(e) => {
                tracing::error!(target: "audit", trigger, error = %e, "tokens not reloaded: the tokens in force stay");
                format!("not reloaded, the tokens in force stay: {e}")
            }
        };
        self.audit(trigger, result.as_ref().ok().map(|(n, _)| *n), outcome).await;
        result.map(|(n, _)| n)
    }

    /// Reloads when the tokens file's content changed since it was last seen.
    async fn check_file(&self) {
        let Some(path) = self.source.file.as_deref() else { return };
        if *self.seen.lock().await == content_hash(path) {
            return;
        }
        let _ = self.reload("the tokens file changed").await;
    }

    /// Looks at the tokens file every `every`, for ever (nothing to do without one).
    pub async fn watch(self: Arc<Self>, every: Duration) {
        if self.source.file.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.check_file().await;
        }
    }

    async fn audit(&self, trigger: &str, in_force: Option<usize>, outcome: String) {
        let request = serde_json::json!({
            "trigger": trigger,
            "tokens_file": self.source.file.as_ref().map(|p| p.display().to_string()),
            "tokens": in_force,
        });
        let entry = AuditEntry {
            id: 0,
            time: now_ms(),
            caller: "crossroled".into(),
            caller_subject: String::new(),
            method: "ReloadTokens".into(),
            spec_name: String::new(),
            operation_id: String::new(),
            request: request.to_string(),
            outcome,
        };
        if let Err(e) = self.journal.audit(entry).await {
            tracing::warn!(error = %e, "cannot record a reload of the tokens in the audit log");
        }
    }
}

/// The hash of a file's content; `None` when it does not read.
fn content_hash(path: &Path) -> Option<[u8; 32]> {
    std::fs::read(path).ok().map(|bytes| Sha256::digest(&bytes).into())
}
