//! `crossroled`: the crossrole gRPC control plane.

use std::{io::Read, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags, Scope},
};

#[derive(Debug, Parser)]
#[command(
    name = "crossroled",
    version,
    about = "The crossrole control plane: cross-account IAM access across an AWS Organization"
)]
struct Cli {
    #[command(flatten)]
    flags: Flags,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Check the configuration and exit.
    CheckConfig,
    /// Ask a running crossroled whether it serves (gRPC health); exit 0 if it does. For container health checks.
    ///
    /// By default it asks the plaintext health listener (`health_listen`) when one is configured, else the main
    /// listener, which with TLS needs --ca-cert (and --client-cert/--client-key under mutual TLS).
    Healthcheck {
        /// Address to ask, http:// or https:// [default: from the configuration].
        #[arg(long)]
        endpoint: Option<String>,
        /// PEM CA bundle that signed crossroled's certificate (https).
        #[arg(long)]
        ca_cert: Option<std::path::PathBuf>,
        /// PEM client certificate, for mutual TLS.
        #[arg(long, requires = "client_key")]
        client_cert: Option<std::path::PathBuf>,
        /// PEM client key, for mutual TLS.
        #[arg(long, requires = "client_cert")]
        client_key: Option<std::path::PathBuf>,
        /// Server name to verify, when it is not the endpoint's host.
        #[arg(long)]
        tls_domain: Option<String>,
    },
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Make a new random token; print it once, and the configuration entry holding its hash.
    New {
        /// Token name (shown in audit logs).
        #[arg(long)]
        name: String,
        /// Scope.
        #[arg(long, value_enum, default_value = "read")]
        scope: Scope,
        /// Let the token read ExternalIds (ExportProfiles writes them): for the people who assume the roles.
        #[arg(long)]
        reveal_external_ids: bool,
    },
    /// Read a token on stdin and print its SHA-256 for the configuration.
    Hash,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crossroled: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Token(TokenCommand::New { name, scope, reveal_external_ids }) => {
            use rand::{Rng, distr::Alphanumeric};
            let token: String = rand::rng().sample_iter(&Alphanumeric).take(48).map(char::from).collect();
            let token = format!("crt_{token}");
            println!("token (shown once; give it to the client as CROSSROLE_TOKEN): {token}");
            let mut entry = toml::Table::new();
            entry.insert("name".into(), name.into());
            entry.insert("sha256".into(), hash_token(&token).into());
            entry.insert("scope".into(), scope.as_str().into());
            if reveal_external_ids {
                entry.insert("reveal_external_ids".into(), true.into());
            }
            let mut doc = toml::Table::new();
            doc.insert("tokens".into(), toml::Value::Array(vec![toml::Value::Table(entry)]));
            println!("\n{}", toml::to_string(&doc)?);
            Ok(())
        }
        Command::Token(TokenCommand::Hash) => {
            let mut token = String::new();
            std::io::stdin().read_to_string(&mut token)?;
            println!("{}", hash_token(token.trim()));
            Ok(())
        }
        Command::CheckConfig => {
            let config = Config::load(&cli.flags)?;
            if config.revocation_hold.is_some() {
                // Where `serve` would send its calls: the test setting is refused here as it would be there.
                let partition = config.aws.partition.as_deref().and_then(crossrole_core::Partition::parse);
                let endpoints = crossrole_aws::sdk::SdkConnector::from_env(partition).await.endpoint_urls();
                config.check_emulator_testing(endpoints.iam.as_deref(), endpoints.sts.as_deref())?;
            }
            println!(
                "configuration is valid: listen {}, data_dir {}, {} tokens",
                config.listen,
                config.data_dir.display(),
                config.tokens.len()
            );
            Ok(())
        }
        Command::Healthcheck { endpoint, ca_cert, client_cert, client_key, tls_domain } => {
            let config = if endpoint.is_none() { Some(Config::load(&cli.flags)?) } else { None };
            let probe = crossrole_server::health::Probe {
                endpoint,
                ca_cert,
                client_identity: client_cert.zip(client_key),
                domain: tls_domain,
            };
            crossrole_server::health::check(&probe, config.as_ref()).await?;
            println!("serving");
            Ok(())
        }
        Command::Serve => serve(cli.flags).await,
    }
}

async fn serve(flags: Flags) -> anyhow::Result<()> {
    let config = Config::load(&flags)?;
    let telemetry = crossrole_server::telemetry::init(config.log_format)?;
    if config.tokens.is_empty() {
        tracing::warn!(
            "no API tokens are configured: every call but health will be refused (see `crossroled token new`)"
        );
    }
    let partition = config.aws.partition.as_deref().and_then(crossrole_core::Partition::parse);
    let aws = crossrole_aws::sdk::SdkConnector::from_env(partition).await;
    let endpoints = aws.endpoint_urls();
    config.check_emulator_testing(endpoints.iam.as_deref(), endpoints.sts.as_deref())?;
    // Caught from now on: a SIGHUP while starting is answered once started, and never stops crossroled.
    let hangups = hangups()?;
    let mut server = crossrole_server::start(&config, Arc::new(aws)).await.context("starting")?;
    let _reloads = ReloadOnHangup(tokio::spawn(reload_on_hangup(hangups, server.tokens())));
    telemetry.register(&server.engine);
    let signal = shutdown_signal();
    tokio::select! {
        result = server.wait() => {
            telemetry.shutdown();
            return result;
        }
        name = signal => tracing::info!(signal = name, "shutting down: no new calls; in-flight work stops at its next step and resumes at the next start"),
    }
    let result = server.stop().await;
    telemetry.shutdown();
    result
}

/// SIGHUP, caught (its default would stop the process).
#[cfg(unix)]
type Hangups = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> anyhow::Result<Hangups> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).context("cannot catch SIGHUP")
}

#[cfg(not(unix))]
fn hangups() -> anyhow::Result<Hangups> {
    Ok(())
}

/// Reads the tokens again at every SIGHUP; a reload that fails keeps the tokens in force (the reloader logs and
/// audits why).
#[cfg(unix)]
async fn reload_on_hangup(mut hangups: Hangups, tokens: Arc<crossrole_server::reload::TokenReloader>) {
    while hangups.recv().await.is_some() {
        let _ = tokens.reload("SIGHUP").await;
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_: Hangups, _: Arc<crossrole_server::reload::TokenReloader>) {}

/// The SIGHUP task, ended with the server.
struct ReloadOnHangup(tokio::task::JoinHandle<()>);

impl Drop for ReloadOnHangup {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn shutdown_signal() -> &'static str {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
                "SIGTERM"
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<&'static str>();
    tokio::select! {
        s = ctrl_c => s,
        s = term => s,
    }
}
