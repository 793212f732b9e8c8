//! Configuration: a TOML file, `CROSSROLE_*` environment variables and flags, validated at start.
//!
//! Precedence: flags and their environment twins over the file over the defaults. Defaults run on a laptop:
//! listen on 127.0.0.1:50051, the journal in `./crossrole-data`. Tokens are stored as SHA-256 hashes; the
//! plain tokens never appear in the configuration or the logs. Every error names the setting.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use crossrole_aws::calls::{Rate, Rates, RetryPolicy};
use serde::Deserialize;

/// Token scopes, each including the ones before it: `read` < `plan` < `apply` < `admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read organization, operations, links; verify.
    Read,
    /// Read, and plan changes (reads AWS, changes nothing).
    Plan,
    /// Apply, destroy, cancel; bindings.
    Apply,
    /// Everything.
    Admin,
}

impl Scope {
    /// The name in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Plan => "plan",
            Scope::Apply => "apply",
            Scope::Admin => "admin",
        }
    }
}

/// An API token: its name (shown in audit logs and operations), the SHA-256 of its value, its scope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who the token belongs to, as the audit log and `created_by` name it.
    pub name: String,
    /// Hex SHA-256 of the token (`crossroled token hash` computes it).
    pub sha256: String,
    /// What the token may do.
    pub scope: Scope,
    /// May read ExternalIds: `ExportProfiles` writes them into the profiles it returns. Meant for the tokens of
    /// the people who assume the roles; off by default, whatever the scope.
    #[serde(default)]
    pub reveal_external_ids: bool,
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// AWS settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AwsConfig {
    /// The bootstrap role crossroled assumes in every member account.
    pub bootstrap_role: String,
    /// Its IAM path.
    pub bootstrap_role_path: String,
    /// `aws`, `aws-us-gov` or `aws-cn`; from the region when unset.
    pub partition: Option<String>,
    /// How long the organization's tree is cached for reads (plans, listings, verification).
    #[serde(with = "humantime_serde_compat")]
    pub organization_cache_ttl: Duration,
    /// How old a tree an apply may work from; 0 (the default) walks the organization anew for every apply.
    #[serde(with = "humantime_serde_compat")]
    pub apply_organization_max_age: Duration,
    /// How old an account's tags may be before a tag selector reads them again (one call per account). New
    /// accounts' tags are read at once; a changed tag is seen within this time, or at once with a refresh.
    #[serde(with = "humantime_serde_compat")]
    pub organization_tags_max_age: Duration,
    /// How long after joining an account's AccessDenied means "not ready yet".
    #[serde(with = "humantime_serde_compat")]
    pub new_account_grace: Duration,
    /// Calls per second to Organizations, for the organization.
    pub organizations_rate: f64,
    /// Calls per second to IAM, per account (each target account has its own quota).
    pub iam_rate: f64,
    /// Calls per second to STS, per calling account (crossroled's own, and the trusted side's for verify).
    pub sts_rate: f64,
    /// Attempts of one AWS call that AWS throttles or fails transiently, the first included.
    pub max_attempts: u32,
    /// The longest wait between two attempts (the waits double from 100 ms up to it, with full jitter).
    #[serde(with = "humantime_serde_compat")]
    pub max_backoff: Duration,
}

impl Default for AwsConfig {
    fn default() -> Self {
        let rates = Rates::default();
        AwsConfig {
            bootstrap_role: "OrganizationAccountAccessRole".into(),
            bootstrap_role_path: "/".into(),
            partition: None,
            organization_cache_ttl: Duration::from_secs(300),
            apply_organization_max_age: Duration::ZERO,
            organization_tags_max_age: Duration::from_secs(900),
            new_account_grace: Duration::from_secs(600),
            organizations_rate: rates.organizations.per_second,
            iam_rate: rates.iam.per_second,
            sts_rate: rates.sts.per_second,
            max_attempts: RetryPolicy::default().max_attempts,
            max_backoff: RetryPolicy::default().cap,
        }
    }
}

impl AwsConfig {
    /// The call layer's rates.
    pub fn rates(&self) -> Rates {
        let rate = |r: f64| Rate { per_second: r, burst: r.ceil().max(1.0) as u32 };
        Rates { organizations: rate(self.organizations_rate), iam: rate(self.iam_rate), sts: rate(self.sts_rate) }
    }

    /// The call layer's retries.
    pub fn retry(&self) -> RetryPolicy {
        RetryPolicy { max_attempts: self.max_attempts, cap: self.max_backoff, ..RetryPolicy::default() }
    }
}

/// The organization's ceiling on what crossrole may grant (`[ceiling]`); see deploy/README.md, "The ceiling".
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CeilingConfig {
    /// The permissions boundary every role carries (`${account_id}`, `${partition}` allowed).
    pub permissions_boundary: Option<String>,
    /// The IAM path every role lives under.
    pub role_path: Option<String>,
    /// Managed policy ARNs (wildcards allowed) a role may have; empty allows any.
    pub allowed_managed_policies: Vec<String>,
    /// Accounts a trust policy may name; with `trust_within_organization`, also the organization's.
    pub allowed_trusted_accounts: Vec<String>,
    /// Allow trusting any account of the organization.
    pub trust_within_organization: bool,
}

impl CeilingConfig {
    fn into_ceiling(self) -> Result<crossrole_core::ceiling::Ceiling, ConfigError> {
        let ceiling = crossrole_core::ceiling::Ceiling {
            permissions_boundary: self.permissions_boundary,
            role_path: self.role_path,
            allowed_managed_policies: self.allowed_managed_policies,
            allowed_trusted_accounts: self.allowed_trusted_accounts.into_iter().collect(),
            trust_within_organization: self.trust_within_organization,
        };
        ceiling.validate().map_err(|e| {
            let v = e.violations().first().cloned();
            match v {
                Some(v) => err(v.field, v.rule),
                None => err("ceiling", e.to_string()),
            }
        })?;
        Ok(ceiling)
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// For people.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The file's shape.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    tokens: Vec<TokenConfig>,
    tokens_file: Option<PathBuf>,
    tls: Option<TlsConfig>,
    #[serde(default)]
    aws: AwsConfig,
    reconcile_tick: Option<String>,
    max_concurrency: Option<usize>,
    shutdown_timeout: Option<String>,
    watch_buffer: Option<usize>,
    console: Option<bool>,
    journal_key_file: Option<PathBuf>,
    max_request_bytes: Option<usize>,
    request_budget_bytes: Option<usize>,
    health_listen: Option<String>,
    metrics_listen: Option<String>,
    #[serde(default)]
    ceiling: CeilingConfig,
    journal: Option<String>,
    journal_password_file: Option<PathBuf>,
    journal_ca_file: Option<PathBuf>,
    journal_standby: Option<bool>,
    journal_shared: Option<bool>,
    journal_lease: Option<String>,
    #[serde(default)]
    retention: RetentionFile,
    organization_events: Option<OrganizationEventsFile>,
    #[serde(default)]
    emulator_testing: EmulatorTestingFile,
}

/// `[emulator_testing]`: settings for tests against AWS emulators only, which crossroled refuses unless its IAM
/// and STS endpoints are an emulator's ([`Config::check_emulator_testing`]).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EmulatorTestingFile {
    revocation_hold: Option<String>,
}

/// `[organization_events]`: the SQS queue EventBridge feeds with AWS Organizations events.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OrganizationEventsFile {
    queue_url: Option<String>,
    wait: Option<String>,
    resync: Option<String>,
}

/// Organizations events: where crossroled reads them, and how long each receive waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationEvents {
    /// The queue's URL (`https://sqs.us-east-1.amazonaws.com/<account>/<name>`).
    pub queue_url: String,
    /// How long a receive waits for a message (long polling, 1 to 20 s).
    pub wait: Duration,
    /// How old a tree of the organization bindings' reconciles may work from, the events keeping it true; the
    /// organization is read again at most this often, the safety net for events that did not arrive.
    pub resync: Duration,
}

/// `[retention]`: how long finished operations stay in the journal (durations like "90d", or "forever").
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    operations: Option<String>,
    quiet_reconciles: Option<String>,
    audit: Option<String>,
}

/// Where the journal is.
#[derive(Debug, Clone)]
pub enum JournalConfig {
    /// SQLite, `journal.db` in the data directory (the default).
    Sqlite,
    /// PostgreSQL at `url` (no password in it).
    Postgres {
        /// `postgres://user@host:port/database?sslmode=…`.
        url: String,
        /// The password (from a file or the environment; never printed) and the CA file.
        options: crossrole_store::PostgresOptions,
    },
}

/// Where the journal key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalKeySource {
    /// `CROSSROLE_JOURNAL_KEY`: 64 hex characters.
    Env(String),
    /// A key file that must exist (`journal_key_file`, `--journal-key-file`).
    File(PathBuf),
    /// `journal.key` in the data directory, created on first start: convenient, but a copy of the data directory
    /// then carries the key with the journal.
    DataDir,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the journal lives (SQLite), the journal key (by default) and the lock on both.
    pub data_dir: PathBuf,
    /// The journal: SQLite in the data directory, or PostgreSQL.
    pub journal: JournalConfig,
    /// How logs are written: text for people, JSON for collectors.
    pub log_format: LogFormat,
    /// API tokens.
    pub tokens: Vec<TokenConfig>,
    /// Where they come from, to read them again without a restart (SIGHUP, or a change of the tokens file).
    pub tokens_source: TokensSource,
    /// TLS, if any.
    pub tls: Option<TlsConfig>,
    /// AWS endpoints, bootstrap role, rates and the organization cache.
    pub aws: AwsConfig,
    /// How often the reconcile loop looks for due bindings.
    pub reconcile_tick: Duration,
    /// Ceiling on any operation's concurrency.
    pub max_concurrency: usize,
    /// How long in-flight work gets on SIGTERM.
    pub shutdown_timeout: Duration,
    /// Live events buffered per operation; a watcher further behind catches up from the journal.
    pub watch_buffer: usize,
    /// Serve the web console under `/console/` on the listener (`console`, true by default).
    pub console: bool,
    /// Where the journal key comes from.
    pub journal_key: JournalKeySource,
    /// Largest request accepted, in bytes; larger ones are refused before they are read.
    pub max_request_bytes: usize,
    /// The request bytes held at once, across every request: past it, a request waits for room, then is refused.
    pub request_budget_bytes: usize,
    /// A second, plaintext listener serving only gRPC health, for probes that cannot speak TLS or mutual TLS.
    pub health_listen: Option<SocketAddr>,
    /// A plaintext HTTP listener serving Prometheus metrics at `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// The organization's ceiling on what crossrole may grant.
    pub ceiling: crossrole_core::ceiling::Ceiling,
    /// How long finished operations stay in the journal.
    pub retention: crossrole_engine::Retention,
    /// Where AWS Organizations events come from, if they do.
    pub organization_events: Option<OrganizationEvents>,
    /// For tests on emulators only (`emulator_testing.revocation_hold`): the longest an `AWSRevokeOlderSessions`
    /// deny is kept, instead of the role's longest session (whole seconds). Refused against AWS.
    pub revocation_hold: Option<Duration>,
}

/// Whether `url`'s host is one of AWS's own (`*.amazonaws.com`, `*.amazonaws.com.cn`, `*.api.aws`, `*.on.aws`):
/// an endpoint URL set to AWS itself (a FIPS or VPC endpoint, say) is still AWS.
fn is_aws_endpoint(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') { host } else { host.split(':').next().unwrap_or_default() };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ["amazonaws.com", "amazonaws.com.cn", "api.aws", "on.aws"]
        .iter()
        .any(|aws| host == *aws || host.ends_with(&format!(".{aws}")))
}

/// Default [`Config::request_budget_bytes`]: 32 MiB of request messages at once. A message in flight costs two to
/// three times its bytes (the buffer it is read into, the decoded message, the handler's copy): the default before,
/// 64 MiB, let 64 requests of 4 MiB at once peak near 200 MiB. 32 MiB keeps them well within crossroled's 200 MiB
/// target (docs/benchmarks.md, part C) and still holds eight requests of the largest size, or thousands of specs.
/// A `max_request_bytes` above it raises it to that.
pub const DEFAULT_REQUEST_BUDGET_BYTES: usize = 32 * 1024 * 1024;

/// Default [`Config::max_request_bytes`]: a spec at IAM's limits is far smaller.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// The command line (each flag has a `CROSSROLE_*` twin).
#[derive(Debug, Clone, clap::Parser, Default)]
#[command(
    name = "crossroled",
    version,
    about = "The crossrole control plane: cross-account IAM access across an AWS Organization"
)]
pub struct Flags {
    /// Configuration file (TOML).
    #[arg(long, env = "CROSSROLE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:50051].
    #[arg(long, env = "CROSSROLE_LISTEN", global = true)]
    pub listen: Option<String>,
    /// Data directory for the journal [default: ./crossrole-data].
    #[arg(long, env = "CROSSROLE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "CROSSROLE_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,
    /// Bootstrap role to assume in member accounts [default: OrganizationAccountAccessRole].
    #[arg(long, env = "CROSSROLE_BOOTSTRAP_ROLE", global = true)]
    pub bootstrap_role: Option<String>,
    /// The bootstrap role's IAM path [default: /].
    #[arg(long, env = "CROSSROLE_BOOTSTRAP_ROLE_PATH", global = true)]
    pub bootstrap_role_path: Option<String>,
    /// A plaintext listener serving only gRPC health, for probes that cannot speak TLS (e.g. 0.0.0.0:50052).
    #[arg(long, env = "CROSSROLE_HEALTH_LISTEN", global = true)]
    pub health_listen: Option<String>,
    /// A plaintext HTTP listener serving Prometheus metrics at /metrics (e.g. 0.0.0.0:9090).
    #[arg(long, env = "CROSSROLE_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<String>,
    /// File holding the journal key (64 hex characters) [default: journal.key in the data directory].
    #[arg(long, env = "CROSSROLE_JOURNAL_KEY_FILE", global = true)]
    pub journal_key_file: Option<PathBuf>,
    /// The journal key itself, 64 hex characters (an environment secret; never a flag, never printed).
    #[arg(skip)]
    pub journal_key: Option<String>,
    /// The journal: `sqlite` (in the data directory) or a `postgres://user@host/database` URL [default: sqlite].
    #[arg(long, env = "CROSSROLE_JOURNAL", global = true)]
    pub journal: Option<String>,
    /// The SQS queue EventBridge feeds with AWS Organizations events (its URL); crossroled reacts to them.
    #[arg(long, env = "CROSSROLE_ORGANIZATION_EVENTS_QUEUE", global = true)]
    pub organization_events_queue: Option<String>,
    /// The PostgreSQL journal's password (an environment secret; never a flag, never printed).
    #[arg(skip)]
    pub journal_password: Option<String>,
    /// On a PostgreSQL journal another crossroled holds: wait to take it over (a standby) instead of stopping.
    #[arg(long, env = "CROSSROLE_JOURNAL_STANDBY", global = true)]
    pub journal_standby: Option<bool>,
    /// On a PostgreSQL journal: share its work with the other live crossroleds on it (active/active replicas).
    #[arg(long, env = "CROSSROLE_JOURNAL_SHARED", global = true)]
    pub journal_shared: Option<bool>,
}

impl Flags {
    /// The flags with the secrets that come only from the environment.
    pub fn with_env_secrets(mut self) -> Flags {
        self.journal_key = std::env::var("CROSSROLE_JOURNAL_KEY").ok().filter(|k| !k.trim().is_empty());
        self.journal_password = std::env::var("CROSSROLE_JOURNAL_PASSWORD").ok().filter(|p| !p.is_empty());
        self
    }
}

/// The journal's settings: `journal` (flag, env, file), its password (env, or a file) and CA file.
fn journal_config(flags: &Flags, file: &FileConfig) -> Result<JournalConfig, ConfigError> {
    let standby = flags.journal_standby.or(file.journal_standby).unwrap_or(false);
    let shared = flags.journal_shared.or(file.journal_shared).unwrap_or(false);
    if standby && shared {
        return Err(err(
            "journal_shared",
            "cannot go with journal_standby: shared replicas all work (active/active), a standby waits (active/passive); \
             choose one"
                .to_string(),
        ));
    }
    let lease = match &file.journal_lease {
        None => std::time::Duration::from_secs(15),
        Some(text) => {
            let lease = humantime::parse_duration(text)
                .map_err(|e| err("journal_lease", format!("not a duration ({e}); for example \"15s\"")))?;
            if !(std::time::Duration::from_secs(2)..=std::time::Duration::from_secs(600)).contains(&lease) {
                return Err(err("journal_lease", "must be between 2s and 10m".to_string()));
            }
            lease
        }
    };
    let sqlite = || match (standby, shared, &file.journal_lease) {
        // SQLite's one writer is the process holding the data directory: there is no journal to take over.
        (true, _, _) => Err(err(
            "journal_standby",
            "needs a PostgreSQL journal (journal = \"postgres://…\"): a standby takes over a journal it shares"
                .to_string(),
        )),
        (_, true, _) | (_, _, Some(_)) => Err(err(
            if shared { "journal_shared" } else { "journal_lease" },
            "needs a PostgreSQL journal (journal = \"postgres://…\"): replicas share the work of a journal in a \
             database they all reach"
                .to_string(),
        )),
        _ => Ok(JournalConfig::Sqlite),
    };
    let (text, setting) = match (&flags.journal, &file.journal) {
        (Some(j), _) => (j.trim().to_string(), "journal (--journal / CROSSROLE_JOURNAL)"),
        (None, Some(j)) => (j.trim().to_string(), "journal"),
        (None, None) => return sqlite(),
    };
    if text.is_empty() || text == "sqlite" {
        return sqlite();
    }
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return Err(err(setting, "must be sqlite or a postgres:// URL".to_string()));
    }
    let userinfo = text.split_once("://").map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default());
    if userinfo.is_some_and(|u| u.rsplit_once('@').is_some_and(|(creds, _)| creds.contains(':'))) {
        return Err(err(
            setting,
            "holds a password: put it in journal_password_file or CROSSROLE_JOURNAL_PASSWORD instead, so that it is \
             never shown with the URL"
                .to_string(),
        ));
    }
    // libpq takes credentials in the query too (`?password=`, `sslpassword=`, `passfile=`): refused alike.
    let query = text.split_once('?').map(|(_, q)| q).unwrap_or_default();
    for param in query.split('&').filter_map(|kv| kv.split('=').next()) {
        if ["password", "sslpassword", "passfile", "sslkey"].iter().any(|p| p.eq_ignore_ascii_case(param)) {
            return Err(err(
                setting,
                format!(
                    "holds a credential in its query ({param}=): put the password in journal_password_file or \
                     CROSSROLE_JOURNAL_PASSWORD instead, so that it is never shown with the URL"
                ),
            ));
        }
    }
    let password = match (&flags.journal_password, &file.journal_password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| err("journal_password_file", format!("cannot read {}: {e}", path.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        (None, None) => None,
    };
    let options = crossrole_store::PostgresOptions {
        password,
        ca_file: file.journal_ca_file.clone(),
        standby,
        shared,
        lease,
        ..crossrole_store::PostgresOptions::default()
    };
    Ok(JournalConfig::Postgres { url: text, options })
}

/// The names crossroled itself acts under (a binding's reconciles, the Organizations events reader): a token
/// may not take one, or the journal and the audit log could not tell who did what.
pub const SYSTEM_ACTORS: &[&str] = &["reconciler", "organizations-events", "crossroled", "crossrole"];

/// Where the tokens come from: the configuration file's `[[tokens]]` and the tokens file, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokensSource {
    /// The configuration file's own (read once, at start).
    pub inline: Vec<TokenConfig>,
    /// The tokens file (read again on reload).
    pub file: Option<PathBuf>,
}

impl TokensSource {
    /// The tokens now: the inline ones and the file's, checked as at start. An error names the setting, and the
    /// tokens in force stay as they are.
    pub fn load(&self) -> Result<Vec<TokenConfig>, ConfigError> {
        let mut tokens = self.inline.clone();
        if let Some(path) = &self.file {
            tokens.extend(read_tokens_file(path)?);
        }
        check_tokens(&tokens)?;
        Ok(tokens.into_iter().map(|t| TokenConfig { sha256: t.sha256.to_ascii_lowercase(), ..t }).collect())
    }
}

/// The `[[tokens]]` of a tokens file (nothing else may be in it).
pub fn read_tokens_file(path: &Path) -> Result<Vec<TokenConfig>, ConfigError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TokensFile {
        #[serde(default)]
        tokens: Vec<TokenConfig>,
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| err("tokens_file", format!("cannot read {}: {e}", path.display())))?;
    let file: TokensFile =
        toml::from_str(&text).map_err(|e| err(format!("tokens_file {}", path.display()), e.message().to_string()))?;
    Ok(file.tokens)
}

/// Checks tokens: each named, once, by a name that is not a [`SYSTEM_ACTORS`]'s, with a well-formed hash.
pub fn check_tokens(tokens: &[TokenConfig]) -> Result<(), ConfigError> {
    let mut names = std::collections::BTreeSet::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.name.is_empty() {
            return Err(err(format!("tokens[{i}].name"), "required"));
        }
        if SYSTEM_ACTORS.iter().any(|a| a.eq_ignore_ascii_case(t.name.trim())) {
            return Err(err(
                format!("tokens[{i}].name"),
                format!("{:?} is the name crossroled itself acts under; give the token another", t.name),
            ));
        }
        if !names.insert(t.name.clone()) {
            return Err(err(format!("tokens[{i}].name"), format!("{:?} is used twice", t.name)));
        }
        if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(
                format!("tokens[{i}].sha256"),
                "must be the 64 hex characters of the token's SHA-256 (`crossroled token hash`)",
            ));
        }
    }
    Ok(())
}

/// A configuration error, naming the setting.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    /// The setting, e.g. `tokens[0].sha256` or `listen (CROSSROLE_LISTEN)`.
    pub setting: String,
    /// What is wrong.
    pub problem: String,
}

fn err(setting: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.into(), problem: problem.into() }
}

impl Config {
    /// Reads the file named by the flags (if any) and applies the flags, and the secrets from the environment
    /// (`CROSSROLE_JOURNAL_KEY`), over it.
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let flags = &flags.clone().with_env_secrets();
        let file = match &flags.config {
            None => FileConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err("config (CROSSROLE_CONFIG)", format!("cannot read {}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| {
                    let span = e.span().map(|s| format!(" (at byte {})", s.start)).unwrap_or_default();
                    err(format!("config file {}", path.display()), format!("{}{span}", e.message()))
                })?
            }
        };
        Config::from_parts(file, flags)
    }

    /// Parses a configuration file's text (for tests).
    pub fn from_toml(text: &str, flags: &Flags) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| err("config file", e.message().to_string()))?;
        Config::from_parts(file, flags)
    }

    fn from_parts(mut file: FileConfig, flags: &Flags) -> Result<Config, ConfigError> {
        // Tokens may live in their own file (a Kubernetes Secret, say): `[[tokens]]` entries only.
        let tokens_source = TokensSource { inline: file.tokens.clone(), file: file.tokens_file.clone() };
        if let Some(path) = &file.tokens_file {
            file.tokens.extend(read_tokens_file(path)?);
        }
        let (listen_text, listen_setting) = match (&flags.listen, &file.listen) {
            (Some(l), _) => (l.clone(), "listen (--listen / CROSSROLE_LISTEN)"),
            (None, Some(l)) => (l.clone(), "listen"),
            (None, None) => ("127.0.0.1:50051".into(), "listen"),
        };
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| err(listen_setting, format!("{listen_text:?} is not an address like 127.0.0.1:50051")))?;
        let journal = journal_config(flags, &file)?;
        let data_dir = flags.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("crossrole-data"));
        let mut aws = file.aws;
        if let Some(r) = &flags.bootstrap_role {
            aws.bootstrap_role = r.clone();
        }
        if let Some(p) = &flags.bootstrap_role_path {
            aws.bootstrap_role_path = p.clone();
        }
        if !aws.bootstrap_role_path.starts_with('/') || !aws.bootstrap_role_path.ends_with('/') {
            return Err(err(
                "aws.bootstrap_role_path",
                format!("{:?} is not an IAM path like / or /crossrole/", aws.bootstrap_role_path),
            ));
        }
        if aws.bootstrap_role.is_empty() || aws.bootstrap_role.len() > 64 {
            return Err(err("aws.bootstrap_role", "must be an IAM role name of 1 to 64 characters"));
        }
        if let Some(p) = &aws.partition
            && crossrole_core::Partition::parse(p).is_none()
        {
            return Err(err("aws.partition", format!("{p:?} is not aws, aws-us-gov or aws-cn")));
        }
        for (name, rate) in [
            ("aws.organizations_rate", aws.organizations_rate),
            ("aws.iam_rate", aws.iam_rate),
            ("aws.sts_rate", aws.sts_rate),
        ] {
            if !(rate > 0.0 && rate <= 10_000.0) {
                return Err(err(name, format!("must be a rate in calls per second from 0 to 10000, got {rate}")));
            }
        }
        if !(1..=20).contains(&aws.max_attempts) {
            return Err(err("aws.max_attempts", format!("must be from 1 to 20, got {}", aws.max_attempts)));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(&aws.max_backoff) {
            return Err(err("aws.max_backoff", "must be between 100ms and 5m".to_string()));
        }
        check_tokens(&file.tokens)?;
        if let Some(tls) = &file.tls {
            for (name, path) in
                [("tls.cert", Some(&tls.cert)), ("tls.key", Some(&tls.key)), ("tls.client_ca", tls.client_ca.as_ref())]
            {
                if let Some(p) = path
                    && !Path::new(p).is_file()
                {
                    return Err(err(name, format!("{} is not a readable file", p.display())));
                }
            }
        }
        let duration = |text: Option<String>, setting: &str, default: Duration| match text {
            None => Ok(default),
            Some(t) => humantime::parse_duration(&t)
                .map_err(|e| err(setting, format!("{t:?} is not a duration like \"30s\": {e}"))),
        };
        let retention = {
            let age = |text: &Option<String>, setting: &str, default: Option<Duration>| match text.as_deref() {
                Some("forever") => Ok(None),
                Some(_) => duration(text.clone(), setting, Duration::ZERO).map(Some),
                None => Ok(default),
            };
            let defaults = crossrole_engine::Retention::default();
            crossrole_engine::Retention {
                operations: age(&file.retention.operations, "retention.operations", defaults.operations)?,
                quiet_reconciles: age(
                    &file.retention.quiet_reconciles,
                    "retention.quiet_reconciles",
                    defaults.quiet_reconciles,
                )?,
                audit: age(&file.retention.audit, "retention.audit", defaults.audit)?,
            }
        };
        let journal_key = match (&flags.journal_key, &flags.journal_key_file, &file.journal_key_file) {
            (Some(k), _, _) => JournalKeySource::Env(k.clone()),
            (None, Some(f), _) => JournalKeySource::File(f.clone()),
            (None, None, Some(f)) => JournalKeySource::File(f.clone()),
            (None, None, None) => JournalKeySource::DataDir,
        };
        if matches!(journal, JournalConfig::Postgres { .. }) && journal_key == JournalKeySource::DataDir {
            return Err(err(
                "journal_key_file",
                "a PostgreSQL journal needs its key from CROSSROLE_JOURNAL_KEY or journal_key_file: a key created in \
                 one crossroled's data directory is not there for the crossroled that takes the journal over",
            ));
        }
        if let JournalKeySource::File(f) = &journal_key
            && !f.is_file()
        {
            return Err(err("journal_key_file", format!("{} is not a readable file", f.display())));
        }
        let max_request_bytes = file.max_request_bytes.unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
        if !(64 * 1024..=256 * 1024 * 1024).contains(&max_request_bytes) {
            return Err(err("max_request_bytes", "must be from 65536 (64 KiB) to 268435456 (256 MiB)"));
        }
        // Unset, the budget holds at least one request of the largest size.
        let request_budget_bytes =
            file.request_budget_bytes.unwrap_or(DEFAULT_REQUEST_BUDGET_BYTES.max(max_request_bytes));
        if !(max_request_bytes..=1024 * 1024 * 1024).contains(&request_budget_bytes) {
            return Err(err(
                "request_budget_bytes",
                format!("must be from max_request_bytes ({max_request_bytes}) to 1073741824 (1 GiB)"),
            ));
        }
        let health_listen = match (&flags.health_listen, &file.health_listen) {
            (None, None) => None,
            (Some(text), _) | (None, Some(text)) => Some(text.parse::<SocketAddr>().map_err(|_| {
                err(
                    "health_listen (--health-listen / CROSSROLE_HEALTH_LISTEN)",
                    format!("{text:?} is not an address like 0.0.0.0:50052"),
                )
            })?),
        };
        let metrics_listen = match (&flags.metrics_listen, &file.metrics_listen) {
            (None, None) => None,
            (Some(text), _) | (None, Some(text)) => Some(text.parse::<SocketAddr>().map_err(|_| {
                err(
                    "metrics_listen (--metrics-listen / CROSSROLE_METRICS_LISTEN)",
                    format!("{text:?} is not an address like 0.0.0.0:9090"),
                )
            })?),
        };
        let organization_events = {
            let from_file = file.organization_events.clone().unwrap_or_default();
            match flags.organization_events_queue.clone().or(from_file.queue_url) {
                None if from_file.wait.is_some() || from_file.resync.is_some() => {
                    return Err(err("organization_events.queue_url", "is required with organization_events settings"));
                }
                None => None,
                Some(url) => {
                    let setting = "organization_events.queue_url (--organization-events-queue)";
                    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 1024 {
                        return Err(err(
                            setting,
                            format!(
                                "{url:?} is not an SQS queue URL like https://sqs.us-east-1.amazonaws.com/123456789012/crossrole-organization-events"
                            ),
                        ));
                    }
                    let wait = duration(from_file.wait, "organization_events.wait", Duration::from_secs(20))?;
                    if !(Duration::from_secs(1)..=Duration::from_secs(20)).contains(&wait) {
                        return Err(err("organization_events.wait", "must be from 1s to 20s (SQS's long polling)"));
                    }
                    let resync =
                        duration(from_file.resync, "organization_events.resync", Duration::from_secs(6 * 3600))?;
                    Some(OrganizationEvents { queue_url: url, wait, resync })
                }
            }
        };
        let revocation_hold = match file.emulator_testing.revocation_hold.clone() {
            None => None,
            Some(text) => {
                let setting = "emulator_testing.revocation_hold";
                let hold = duration(Some(text), setting, Duration::ZERO)?;
                if hold.subsec_nanos() != 0 || !(1..=43_200).contains(&hold.as_secs()) {
                    return Err(err(setting, "must be whole seconds from 1s to 12h"));
                }
                Some(hold)
            }
        };
        let max_concurrency = file.max_concurrency.unwrap_or(256);
        if !(1..=4096).contains(&max_concurrency) {
            return Err(err("max_concurrency", "must be from 1 to 4096"));
        }
        Ok(Config {
            listen,
            data_dir,
            journal,
            log_format: flags.log_format.or(file.log_format).unwrap_or_default(),
            tokens: file
                .tokens
                .iter()
                .map(|t| TokenConfig { sha256: t.sha256.to_ascii_lowercase(), ..t.clone() })
                .collect(),
            tokens_source,
            tls: file.tls,
            aws,
            reconcile_tick: duration(file.reconcile_tick, "reconcile_tick", Duration::from_secs(15))?,
            max_concurrency,
            shutdown_timeout: duration(file.shutdown_timeout, "shutdown_timeout", Duration::from_secs(30))?,
            watch_buffer: match file.watch_buffer {
                None => 1024,
                Some(n) if (16..=1_000_000).contains(&n) => n,
                Some(_) => return Err(err("watch_buffer", "must be from 16 to 1000000")),
            },
            console: file.console.unwrap_or(true),
            journal_key,
            max_request_bytes,
            request_budget_bytes,
            health_listen,
            metrics_listen,
            ceiling: file.ceiling.into_ceiling()?,
            retention,
            organization_events,
            revocation_hold,
        })
    }

    /// Refuses the settings meant for tests on emulators (`[emulator_testing]`) unless crossroled's IAM and STS
    /// calls go to an emulator: an endpoint URL is configured for each (`iam`, `sts`: as the SDK resolves them) and
    /// neither is AWS's own. A revocation kept shorter than the role's sessions would, in AWS, leave the sessions
    /// it revokes valid once the deny is gone.
    pub fn check_emulator_testing(&self, iam: Option<&str>, sts: Option<&str>) -> Result<(), ConfigError> {
        let Some(hold) = self.revocation_hold else { return Ok(()) };
        for (service, url) in [("IAM", iam), ("STS", sts)] {
            let problem = match url {
                None => format!(
                    "no endpoint URL is configured for {service} (AWS_ENDPOINT_URL_{service} or AWS_ENDPOINT_URL), \
                     so crossroled would call AWS itself"
                ),
                Some(u) if is_aws_endpoint(u) => format!("{service}'s endpoint URL {u} is AWS's own"),
                Some(_) => continue,
            };
            return Err(err(
                "emulator_testing.revocation_hold",
                format!(
                    "is for tests on AWS emulators only, and {problem}: a revocation kept {}s would leave the \
                     sessions it revokes valid once its deny is removed; remove the setting",
                    hold.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// `serde` for durations written like `"5m"`.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a duration like \"5m\": {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, flags: Flags) -> Result<Config, String> {
        Config::from_toml(text, &flags).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_run_on_a_laptop() {
        let c = load("", Flags::default()).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(c.data_dir, PathBuf::from("crossrole-data"));
        assert_eq!(c.aws.bootstrap_role, "OrganizationAccountAccessRole");
        assert!(c.tokens.is_empty());
    }

    #[test]
    fn the_budget_of_request_bytes_holds_at_least_one_request_of_the_largest_size() {
        let budget = |text: &str| load(text, Flags::default()).map(|c| c.request_budget_bytes);
        assert_eq!(budget(""), Ok(DEFAULT_REQUEST_BUDGET_BYTES));
        assert_eq!(budget("max_request_bytes = 67108864"), Ok(67108864), "unset, it grows with the request limit");
        assert_eq!(
            budget("max_request_bytes = 67108864\nrequest_budget_bytes = 33554432"),
            Err("request_budget_bytes: must be from max_request_bytes (67108864) to 1073741824 (1 GiB)".into()),
            "set, it is checked"
        );
    }

    #[test]
    fn flags_win_over_the_file() {
        let c = load(
            "listen = \"127.0.0.1:1\"\ndata_dir = \"/a\"",
            Flags { listen: Some("127.0.0.1:2".into()), ..Flags::default() },
        )
        .unwrap();
        assert_eq!((c.listen.port(), c.data_dir), (2, PathBuf::from("/a")));
    }

    #[test]
    fn organization_events_come_from_a_queue_named_in_the_file_or_a_flag() {
        assert_eq!(load("", Flags::default()).unwrap().organization_events, None);
        let file = "[organization_events]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/a\"\nwait = \"5s\"";
        let events = load(file, Flags::default()).unwrap().organization_events.unwrap();
        assert_eq!(
            (events.queue_url.as_str(), events.wait),
            ("https://sqs.us-east-1.amazonaws.com/1/a", Duration::from_secs(5))
        );
        let flag = Flags { organization_events_queue: Some("http://127.0.0.1:4566/1/b".into()), ..Flags::default() };
        let events = load("", flag).unwrap().organization_events.unwrap();
        assert_eq!((events.queue_url.as_str(), events.wait), ("http://127.0.0.1:4566/1/b", Duration::from_secs(20)));
    }

    #[test]
    fn tokens_can_live_in_their_own_file() {
        let dir = std::env::temp_dir().join(format!("crossrole-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tokens.toml");
        std::fs::write(
            &file,
            format!("[[tokens]]\nname = \"ci\"\nscope = \"plan\"\nsha256 = \"{}\"\n", "a".repeat(64)),
        )
        .unwrap();
        let c = load(&format!("tokens_file = \"{}\"", file.display()), Flags::default()).unwrap();
        assert_eq!(c.tokens.len(), 1);
        assert_eq!(c.tokens[0].scope, Scope::Plan);
        assert!(
            load("tokens_file = \"/no/such/tokens.toml\"", Flags::default())
                .unwrap_err()
                .starts_with("tokens_file: cannot read")
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn errors_name_the_setting() {
        let cases: &[(&str, Flags, &str)] = &[
            (
                "",
                Flags { listen: Some("localhost".into()), ..Flags::default() },
                "listen (--listen / CROSSROLE_LISTEN): \"localhost\" is not an address like 127.0.0.1:50051",
            ),
            (
                "[[tokens]]\nname = \"ci\"\nsha256 = \"abc\"\nscope = \"apply\"",
                Flags::default(),
                "tokens[0].sha256: must be the 64 hex characters",
            ),
            (
                "[[tokens]]\nname = \"ci\"\nsha256 = \"abc\"\nscope = \"root\"",
                Flags::default(),
                "config file: unknown variant `root`",
            ),
            ("[aws]\niam_rate = 0", Flags::default(), "aws.iam_rate: must be a rate"),
            ("[aws]\nmax_attempts = 0", Flags::default(), "aws.max_attempts: must be from 1 to 20, got 0"),
            ("[aws]\nmax_backoff = \"10ms\"", Flags::default(), "aws.max_backoff: must be between 100ms and 5m"),
            ("[aws]\norganization_cache_ttl = \"soon\"", Flags::default(), "config file: \"soon\" is not a duration"),
            (
                "[aws]\npartition = \"mars\"",
                Flags::default(),
                "aws.partition: \"mars\" is not aws, aws-us-gov or aws-cn",
            ),
            (
                "[tls]\ncert = \"/nope.pem\"\nkey = \"/nope.key\"",
                Flags::default(),
                "tls.cert: /nope.pem is not a readable file",
            ),
            ("lisen = \"x\"", Flags::default(), "config file: unknown field `lisen`"),
            ("reconcile_tick = \"often\"", Flags::default(), "reconcile_tick: \"often\" is not a duration"),
            (
                "[retention]\noperations = \"a while\"",
                Flags::default(),
                "retention.operations: \"a while\" is not a duration",
            ),
            (
                "[organization_events]\nqueue_url = \"sqs://q\"",
                Flags::default(),
                "organization_events.queue_url (--organization-events-queue): \"sqs://q\" is not an SQS queue URL",
            ),
            (
                "[organization_events]\nqueue_url = \"https://sqs.us-east-1.amazonaws.com/1/q\"\nwait = \"1m\"",
                Flags::default(),
                "organization_events.wait: must be from 1s to 20s",
            ),
            (
                "[organization_events]\nwait = \"5s\"",
                Flags::default(),
                "organization_events.queue_url: is required with organization_events settings",
            ),
            (
                "[ceiling]\npermissions_boundary = \"arn:aws:iam::${account}:policy/C\"",
                Flags::default(),
                "ceiling.permissions_boundary: uses unknown variable ${account}",
            ),
            (
                "[ceiling]\nallowed_trusted_accounts = [\"1234\"]",
                Flags::default(),
                "ceiling.allowed_trusted_accounts[0]:",
            ),
            ("journal = \"mysql://db/j\"", Flags::default(), "journal: must be sqlite or a postgres:// URL"),
            (
                "",
                Flags { journal: Some("postgres://crossrole:hunter2@db/j".into()), ..Flags::default() },
                "journal (--journal / CROSSROLE_JOURNAL): holds a password: put it in journal_password_file",
            ),
            (
                "journal = \"postgres://crossrole@db/j\"\njournal_password_file = \"/no/such/file\"",
                Flags::default(),
                "journal_password_file: cannot read /no/such/file",
            ),
            (
                "journal = \"postgres://crossrole@db/j\"",
                Flags::default(),
                "journal_key_file: a PostgreSQL journal needs its key from CROSSROLE_JOURNAL_KEY or journal_key_file",
            ),
            ("journal_standby = true", Flags::default(), "journal_standby: needs a PostgreSQL journal"),
            ("journal_shared = true", Flags::default(), "journal_shared: needs a PostgreSQL journal"),
            (
                "journal = \"postgres://crossrole@db/j\"\njournal_shared = true\njournal_standby = true",
                Flags::default(),
                "journal_shared: cannot go with journal_standby",
            ),
            (
                "journal = \"postgres://crossrole@db/j\"\njournal_shared = true\njournal_lease = \"1s\"",
                Flags::default(),
                "journal_lease: must be between 2s and 10m",
            ),
        ];
        for (text, flags, expected) in cases {
            let got = load(text, flags.clone()).unwrap_err();
            assert!(got.starts_with(expected), "{text}: got {got:?}, wanted {expected:?}");
        }
    }

    #[test]
    fn the_revocation_hold_is_refused_unless_iam_and_sts_go_to_an_emulator() {
        let held = load("[emulator_testing]\nrevocation_hold = \"5s\"", Flags::default()).unwrap();
        assert_eq!(held.revocation_hold, Some(Duration::from_secs(5)));
        let emulator = Some("http://127.0.0.1:4566");
        assert!(held.check_emulator_testing(emulator, emulator).is_ok());
        assert!(held.check_emulator_testing(Some("http://localstack:4566/"), Some("https://moto.test")).is_ok());
        for (iam, sts, why) in [
            (None, None, "no endpoint URL is configured for IAM (AWS_ENDPOINT_URL_IAM or AWS_ENDPOINT_URL)"),
            (emulator, None, "no endpoint URL is configured for STS (AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL)"),
            (Some("https://iam.amazonaws.com"), emulator, "IAM's endpoint URL https://iam.amazonaws.com is AWS's own"),
            (Some("https://iam-fips.amazonaws.com/"), emulator, "is AWS's own"),
            (emulator, Some("https://sts.us-east-1.amazonaws.com:443"), "STS's endpoint URL"),
            (emulator, Some("https://sts.cn-north-1.amazonaws.com.cn"), "is AWS's own"),
            (emulator, Some("https://sts.us-east-1.api.aws"), "is AWS's own"),
        ] {
            let e = held.check_emulator_testing(iam, sts).unwrap_err();
            assert_eq!(e.setting, "emulator_testing.revocation_hold", "{iam:?} {sts:?}");
            assert!(e.problem.starts_with("is for tests on AWS emulators only"), "{}", e.problem);
            assert!(e.problem.contains(why), "{iam:?} {sts:?}: {}", e.problem);
            assert!(e.problem.contains("kept 5s") && e.problem.ends_with("remove the setting"), "{}", e.problem);
        }
        // Without the setting, nothing is asked of the endpoints.
        let plain = load("", Flags::default()).unwrap();
        assert_eq!(plain.revocation_hold, None);
        assert!(plain.check_emulator_testing(None, None).is_ok());
        // The value is checked too.
        for bad in ["0s", "1500ms", "13h", "soon"] {
            let e = load(&format!("[emulator_testing]\nrevocation_hold = \"{bad}\""), Flags::default()).unwrap_err();
            assert!(e.starts_with("emulator_testing.revocation_hold: "), "{bad}: {e}");
        }
        assert!(load("[emulator_testing]\nrevocation = \"5s\"", Flags::default()).is_err(), "unknown keys refused");
    }
}
