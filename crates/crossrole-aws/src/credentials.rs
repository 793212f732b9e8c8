//! Credentials for member accounts: assume the bootstrap role, cache until shortly before expiry — across
//! operations, so that an apply right after its plan, or a reconcile every few minutes, makes no AssumeRole at all
//! (STS's quota is the calling account's, shared by every account of a rollout). A session is named after the
//! operation that opened it (CloudTrail shows that name for the session's lifetime); what each operation did is in
//! crossrole's journal.
//!
//! A bootstrap role that is missing or not assumable is a per-account failure with a clear reason, not a crash.
//! Right after an account joins the organization its role may not be assumable yet, so AccessDenied is waited out
//! (by the call layer's [`Patience`]) until the account is older than the new-account grace.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crossrole_core::names;

use crate::{
    api::{AssumeRoleRequest, AwsConnector, Credentials},
    calls::{CallContext, CallPolicy, Patience, Quota},
    error::{Error, ErrorKind},
};

/// Credential broker settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// The bootstrap role's name in every member account.
    pub bootstrap_role: String,
    /// Its IAM path (`/`, or `/crossrole/` for the role of deploy/aws/crossrole-bootstrap.yaml).
    pub bootstrap_role_path: String,
    /// Requested session duration, seconds.
    pub session_duration: u32,
    /// Credentials closer than this to expiry are renewed.
    pub refresh_before: Duration,
    /// How long after joining an account's AccessDenied is treated as "not ready yet".
    pub new_account_grace: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            bootstrap_role: "OrganizationAccountAccessRole".into(),
            bootstrap_role_path: "/".into(),
            session_duration: 3600,
            refresh_before: Duration::from_secs(300),
            new_account_grace: Duration::from_secs(600),
        }
    }
}

/// Assumes bootstrap roles and caches the credentials.
pub struct CredentialBroker {
    connector: Arc<dyn AwsConnector>,
    calls: Arc<CallPolicy>,
    config: BrokerConfig,
    cache: Mutex<HashMap<String, Credentials>>,
}

/// A session name STS accepts (`[\w+=,.@-]{2,64}`) from any text.
pub fn session_name(text: &str) -> String {
    let mut s: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) { c } else { '-' })
        .take(64)
        .collect();
    while s.len() < 2 {
        s.push('-');
    }
    s
}

impl CredentialBroker {
    /// A broker.
    pub fn new(connector: Arc<dyn AwsConnector>, calls: Arc<CallPolicy>, config: BrokerConfig) -> CredentialBroker {
        CredentialBroker { connector, calls, config, cache: Mutex::new(HashMap::new()) }
    }

    /// The bootstrap role's name.
    pub fn bootstrap_role(&self) -> &str {
        &self.config.bootstrap_role
    }

    /// The bootstrap role's path.
    pub fn bootstrap_role_path(&self) -> &str {
        &self.config.bootstrap_role_path
    }

    /// Credentials in `account` through its bootstrap role, with a session named `session` (it identifies the
    /// operation in CloudTrail). `joined_at` (Unix seconds) enables the new-account grace.
    pub async fn bootstrap(
        &self,
        ctx: &CallContext,
        account: &str,
        joined_at: Option<u64>,
        session: &str,
    ) -> Result<Credentials, Error> {
        let session = session_name(session);
        let key = account.to_string();
        if let Some(c) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned())
            && c.expiration > SystemTime::now() + self.config.refresh_before
        {
            return Ok(c);
        }
        let request = AssumeRoleRequest {
            role_arn: names::role_arn(
                self.connector.partition(),
                account,
                &self.config.bootstrap_role_path,
                &self.config.bootstrap_role,
            ),
            session_name: session,
            external_id: None,
            duration_seconds: self.config.session_duration,
        };
        let sts = self.connector.sts(None);
        let assume = || sts.assume_role(&request);
        let result = match self.grace_left(joined_at) {
            Some(left) => {
                tracing::info!(account, ?left, "the account joined recently: its bootstrap role may take a while");
                let patience = Patience {
                    kinds: &[ErrorKind::AccessDenied],
                    until: tokio::time::Instant::now() + left,
                    base: Duration::from_secs(5),
                    cap: Duration::from_secs(60),
                };
                self.calls.call_patient(ctx, Quota::own_sts(), "AssumeRole", patience, assume).await
            }
            None => self.calls.call(ctx, Quota::own_sts(), "AssumeRole", assume).await,
        };
        let creds = match result {
            Ok(c) => c,
            Err(e) if matches!(e.kind, ErrorKind::AccessDenied | ErrorKind::NotFound) => {
                return Err(Error::BootstrapUnavailable {
                    account: account.to_string(),
                    role: self.config.bootstrap_role.clone(),
                    source: e,
                });
            }
            Err(e) => return Err(e.into()),
        };
        if let Ok(mut cache) = self.cache.lock() {
            // Expired entries go now and then (not on every insert: a rollout inserts one per account).
            if cache.len() >= 1024 && cache.len().is_power_of_two() {
                let now = SystemTime::now();
                cache.retain(|_, c| c.expiration > now);
            }
            cache.insert(key, creds.clone());
        }
        Ok(creds)
    }

    /// Whether `error`, from the first call made with `account`'s bootstrap credentials, may mean the credentials
    /// are stale: the bootstrap role was deleted or replaced after they were issued (and cached), and IAM denies its
    /// old sessions everything. If so they are forgotten, and the caller assumes the role afresh and tries once more.
    pub fn stale(&self, account: &str, error: &Error) -> bool {
        let denied = matches!(error, Error::Aws(a) if a.kind == ErrorKind::AccessDenied);
        if denied && let Ok(mut cache) = self.cache.lock() {
            cache.remove(account);
        }
        denied
    }

    /// How much of the new-account grace is left for an account that joined at `joined_at` (Unix seconds).
    fn grace_left(&self, joined_at: Option<u64>) -> Option<Duration> {
        let joined = joined_at?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let age = Duration::from_secs(now.saturating_sub(joined));
        self.config.new_account_grace.checked_sub(age).filter(|left| !left.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_valid() {
        assert_eq!(session_name("crossrole-0190a1b2-apply"), "crossrole-0190a1b2-apply");
        assert_eq!(session_name("op/with spaces:and:colons"), "op-with-spaces-and-colons");
        assert_eq!(session_name(""), "--");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }
}
