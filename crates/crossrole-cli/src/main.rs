//! `crossrole`: the command line for the crossrole control plane.
//!
//! Exit codes scripts can rely on: 0 everything succeeded; 1 the operation (or a verification) failed in some
//! accounts; 2 bad usage or input (including a spec the server refuses); 3 the server could not be reached or
//! refused the credentials.

mod access;
mod adopt;
mod audit;
mod bindings;
mod console;
mod exports;
mod files;
mod inventory;
mod json;
mod ops;
mod org;
mod progress;
mod revoke;
mod views;

#[cfg(test)]
mod printed_commands;

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use crossrole_client::{Client, Tls};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Output {
    /// Tables for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// Output format, as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum OutputArg {
    /// Tables for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
    /// CSV (RFC 4180), for spreadsheets: `crossrole inventory` only.
    Csv,
}

#[derive(Debug, Parser)]
#[command(
    name = "crossrole",
    version,
    about = "Cross-account IAM access across an AWS Organization, through crossroled"
)]
struct Cli {
    /// crossroled's address.
    #[arg(long, env = "CROSSROLE_ENDPOINT", default_value = "http://127.0.0.1:50051", global = true)]
    endpoint: String,
    /// API token.
    #[arg(long, env = "CROSSROLE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// CA certificate (PEM) to trust for TLS.
    #[arg(long, env = "CROSSROLE_CA_CERT", global = true)]
    ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, env = "CROSSROLE_CLIENT_CERT", global = true, requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, env = "CROSSROLE_CLIENT_KEY", global = true, requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t, global = true)]
    output: OutputArg,
    #[command(subcommand)]
    command: Command,
}

/// Selector flags shared by `accounts`.
#[derive(Debug, Clone, clap::Args, Default)]
pub(crate) struct SelectorArgs {
    /// The spec file whose targets to list, as plan and apply select them (instead of the selector flags).
    #[arg(
        long,
        short,
        conflicts_with_all = ["ous", "ou_paths", "accounts", "tags", "exclude_accounts", "exclude_ous", "direct_only", "include_management_account", "states"]
    )]
    pub(crate) file: Option<PathBuf>,
    /// OU id (or root id), recursive unless --direct-only.
    #[arg(long = "ou")]
    pub(crate) ous: Vec<String>,
    /// OU path, e.g. /Root/Workloads.
    #[arg(long = "ou-path")]
    pub(crate) ou_paths: Vec<String>,
    /// Account id.
    #[arg(long = "account")]
    pub(crate) accounts: Vec<String>,
    /// Tag condition: key=value, or key (exists).
    #[arg(long = "tag")]
    pub(crate) tags: Vec<String>,
    /// Account to exclude.
    #[arg(long = "exclude-account")]
    pub(crate) exclude_accounts: Vec<String>,
    /// OU to exclude (with its descendants).
    #[arg(long = "exclude-ou")]
    pub(crate) exclude_ous: Vec<String>,
    /// Only accounts directly in the OUs.
    #[arg(long)]
    pub(crate) direct_only: bool,
    /// Allow the management account.
    #[arg(long)]
    pub(crate) include_management_account: bool,
    /// Account states to select (default ACTIVE).
    #[arg(long = "state", value_parser = ["ACTIVE", "SUSPENDED", "PENDING_ACTIVATION", "PENDING_CLOSURE", "CLOSED"])]
    pub(crate) states: Vec<String>,
    /// Read the organization from AWS instead of the server's cache.
    #[arg(long)]
    pub(crate) refresh: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The organization's OU tree.
    Org {
        /// Read from AWS instead of the cache.
        #[arg(long)]
        refresh: bool,
    },
    /// Accounts a selector (or a spec's targets, -f) matches.
    Accounts(SelectorArgs),
    /// Validate a spec and run the guardrails (no AWS call).
    Validate(access::SpecArgs),
    /// What an apply would change, per account. Changes nothing.
    Plan(access::PlanArgs),
    /// Show the plan, ask, apply, and follow the rollout live.
    Apply(access::ApplyArgs),
    /// Take over roles made by hand: show how each differs from the spec, and apply it where a person approves.
    Adopt(adopt::AdoptArgs),
    /// Show what would be removed, ask, and remove what the spec created (only roles crossrole owns).
    Destroy(access::DestroyArgs),
    /// For an incident: revoke every session of a spec's (or binding's) role issued before now, in every account
    /// where it is applied or those named.
    Revoke(revoke::RevokeArgs),
    /// Check each account's role, and that the trusted side can assume it.
    Verify(access::SpecArgs),
    /// Switch Role console links per account where crossrole applied the spec.
    Links(exports::LinksArgs),
    /// Export the role in every account where crossrole applied the spec, for the tools people switch roles with
    /// (AWS CLI, AESR, granted, JSON).
    Export(exports::ExportArgs),
    /// Sign in to the AWS console as the spec's role in one account (also a role that requires an ExternalId).
    Console(console::ConsoleArgs),
    /// Operations: list, get, watch, cancel, results.
    #[command(subcommand)]
    Ops(ops::OpsCommand),
    /// Bindings: specs crossroled keeps true over time.
    #[command(subcommand)]
    Bindings(bindings::BindingsCommand),
    /// Who can enter every account: start an inventory of every role of the organization and show it (or read
    /// one with --latest or --operation), as a table, JSON or CSV.
    Inventory(inventory::InventoryArgs),
    /// Write a spec from the roles of one name that the latest inventory found across the organization, listing
    /// the accounts whose role differs; nothing is changed.
    Import(inventory::ImportArgs),
    /// The audit log: who changed what, when, through which request (secrets redacted).
    Audit(audit::AuditArgs),
    /// Print a new high-entropy ExternalId.
    ExternalId,
    /// Print shell completions.
    Completions {
        /// The shell to write completions for.
        shell: clap_complete::Shell,
    },
}

/// A failure and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure { code: 2, message: message.into() }
    }

    pub(crate) fn accounts(message: impl Into<String>) -> Failure {
        Failure { code: 1, message: message.into() }
    }
}

impl From<crossrole_client::Error> for Failure {
    fn from(e: crossrole_client::Error) -> Failure {
        use crossrole_client::Error as E;
        let code = match &e {
            E::InvalidArgument { .. } | E::NotFound(_) | E::FailedPrecondition(_) | E::Aborted(_) => 2,
            E::Unauthenticated(_)
            | E::PermissionDenied(_)
            | E::Unavailable { .. }
            | E::ResourceExhausted { .. }
            | E::Connect(_) => 3,
            E::Other { .. } => 1,
        };
        // Field errors are listed below, each once: the summary above them would say them all again.
        let mut message = if e.violations().is_empty() { e.to_string() } else { "invalid request:".to_string() };
        if let Some(after) = e.retry_after() {
            message.push_str(&format!(" (crossroled advises trying again in {}s)", after.as_secs()));
        }
        for v in e.violations() {
            message.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
        Failure { code, message }
    }
}

pub(crate) type Outcome = Result<(), Failure>;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("crossrole: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

async fn connect(cli: &Cli) -> Result<Client, Failure> {
    let mut b = Client::builder().endpoint(&cli.endpoint).token(cli.token.clone().unwrap_or_default());
    if cli.endpoint.starts_with("https://") || cli.ca_cert.is_some() || cli.client_cert.is_some() {
        let mut tls = Tls::new();
        if let Some(ca) = &cli.ca_cert {
            tls = tls.ca_certificate(
                std::fs::read(ca).map_err(|e| Failure::usage(format!("--ca-cert {}: {e}", ca.display())))?,
            );
        }
        if let (Some(c), Some(k)) = (&cli.client_cert, &cli.client_key) {
            let cert = std::fs::read(c).map_err(|e| Failure::usage(format!("--client-cert {}: {e}", c.display())))?;
            let key = std::fs::read(k).map_err(|e| Failure::usage(format!("--client-key {}: {e}", k.display())))?;
            tls = tls.identity(cert, key);
        }
        b = b.tls(tls);
    }
    b.connect().await.map_err(|e| unreachable(&cli.endpoint, e))
}

/// Why crossroled could not be reached, naming the address and what to check.
fn unreachable(endpoint: &str, e: crossrole_client::Error) -> Failure {
    let crossrole_client::Error::Connect(message) = &e else { return e.into() };
    let cause = message.strip_prefix(&format!("{endpoint}: ")).unwrap_or(message);
    let address = "give its address with --endpoint or CROSSROLE_ENDPOINT";
    let message = if let (Some(rest), true) = (endpoint.strip_prefix("https://"), cause.contains("InvalidContentType"))
    {
        format!(
            "crossroled at {endpoint} did not answer in TLS: it serves plain HTTP there; use http://{rest}, or turn \
             TLS on in crossroled's configuration"
        )
    } else if cause.contains("Connection refused") {
        format!(
            "cannot reach crossroled at {endpoint}: nothing accepts connections there; check that crossroled is \
             running and listens on that address, or {address}"
        )
    } else {
        format!("cannot reach crossroled at {endpoint}: {cause}; check that crossroled is running there, or {address}")
    };
    Failure { code: 3, message }
}

async fn run(cli: Cli) -> Outcome {
    match &cli.command {
        Command::ExternalId => {
            println!("{}", crossrole_core::guardrails::generate_external_id(&mut rand::rng()));
            return Ok(());
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "crossrole", &mut std::io::stdout());
            return Ok(());
        }
        Command::Validate(args) => {
            // Validate locally first: a file error needs no server.
            access::load(&args.file)?;
        }
        // An account given by id needs no server.
        Command::Console(args) if args.by_id() => return console::run(None, args.clone()).await,
        _ => {}
    }
    let client = connect(&cli).await?;
    let format = match cli.output {
        OutputArg::Table => inventory::Format::Table,
        OutputArg::Json => inventory::Format::Json,
        OutputArg::Csv => inventory::Format::Csv,
    };
    let out = match (cli.output, &cli.command) {
        (OutputArg::Csv, Command::Inventory(_)) => Output::Table,
        (OutputArg::Csv, _) => return Err(Failure::usage("--output csv: only `crossrole inventory` writes CSV")),
        (OutputArg::Json, _) => Output::Json,
        (OutputArg::Table, _) => Output::Table,
    };
    match cli.command {
        Command::Org { refresh } => org::tree(&client, refresh, out).await,
        Command::Accounts(sel) => org::accounts(&client, sel, out).await,
        Command::Validate(args) => access::validate(&client, args, out).await,
        Command::Plan(args) => access::plan(&client, args, out).await,
        Command::Apply(args) => access::apply(&client, args, out).await,
        Command::Adopt(args) => adopt::adopt(&client, args, out).await,
        Command::Destroy(args) => access::destroy(&client, args, out).await,
        Command::Revoke(args) => revoke::revoke(&client, args, out).await,
        Command::Verify(args) => access::verify(&client, args, out).await,
        Command::Links(args) => exports::links(&client, args, out).await,
        Command::Export(args) => exports::export(&client, args).await,
        Command::Console(args) => console::run(Some(&client), args).await,
        Command::Ops(cmd) => ops::run(&client, cmd, out).await,
        Command::Bindings(cmd) => bindings::run(&client, cmd, out).await,
        Command::Audit(args) => audit::run(&client, args, out).await,
        Command::Inventory(args) => inventory::run(&client, args, format).await,
        Command::Import(args) => inventory::import(&client, args, out).await,
        Command::ExternalId | Command::Completions { .. } => Ok(()),
    }
}
