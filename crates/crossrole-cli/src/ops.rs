//! `crossrole ops`: list, get, watch, cancel, results.

use crossrole_client::{Client, proto};

use crate::{Outcome, Output, json, progress, views};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum OpsCommand {
    /// Operations, newest first.
    List {
        /// Only these states (pending, running, succeeded, failed, cancelling, cancelled).
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only this spec.
        #[arg(long)]
        spec: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// An operation.
    Get {
        /// Operation id.
        id: String,
    },
    /// Follow an operation's events (replayed from the start, then live).
    Watch {
        /// Operation id.
        id: String,
    },
    /// Ask an operation to stop.
    Cancel {
        /// Operation id.
        id: String,
    },
    /// An operation's per-account results.
    Results {
        /// Operation id.
        id: String,
        /// Only failed accounts.
        #[arg(long)]
        failed: bool,
    },
}

pub(crate) async fn run(client: &Client, cmd: OpsCommand, out: Output) -> Outcome {
    match cmd {
        OpsCommand::List { states, spec, limit } => {
            let states = states
                .iter()
                .filter_map(|s| {
                    proto::OperationState::from_str_name(&format!("OPERATION_STATE_{}", s.to_ascii_uppercase()))
                        .map(|s| s as i32)
                })
                .collect();
            let r = client
                .list_operations(proto::ListOperationsRequest {
                    states,
                    spec_name: spec.unwrap_or_default(),
                    page_size: limit.clamp(1, 1000),
                    page_token: String::new(),
                })
                .await?;
            match out {
                Output::Json => json::print(&r.operations.iter().map(json::Operation::from).collect::<Vec<_>>()),
                Output::Table => {
                    let mut t = views::table(&["ID", "KIND", "SPEC", "STATE", "ACCOUNTS", "CREATED"]);
                    for o in &r.operations {
                        t.add_row(vec![
                            o.id.clone(),
                            views::kind(o.kind),
                            o.spec.as_ref().map(|s| s.name.clone()).unwrap_or_default(),
                            if o.unreadable.is_empty() { views::state(o.state) } else { "unreadable".into() },
                            views::counts_line(&o.counts),
                            views::time(&o.create_time).unwrap_or_default(),
                        ]);
                    }
                    println!("{t}");
                }
            }
            Ok(())
        }
        OpsCommand::Get { id } => {
            let o = client.operation(&id).await?;
            match out {
                Output::Json => json::print(&json::Operation::from(&o)),
                Output::Table => {
                    println!(
                        "{} {} of spec {}: {}",
                        views::kind(o.kind),
                        o.id,
                        o.spec.as_ref().map(|s| s.name.as_str()).unwrap_or(""),
                        views::state(o.state)
                    );
                    println!("{}", views::counts_line(&o.counts));
                    if !o.message.is_empty() {
                        println!("{}", o.message);
                    }
                    let calls: u64 = o.aws_calls.values().sum();
                    println!(
                        "{calls} AWS calls ({} throttled), by {}, created {}",
                        o.throttled_calls,
                        o.created_by,
                        views::time(&o.create_time).unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        OpsCommand::Watch { id } => progress::follow(&client.operation_handle(id), out).await,
        OpsCommand::Cancel { id } => {
            let o = client.cancel(&id).await?;
            match out {
                Output::Json => json::print(&json::Operation::from(&o)),
                Output::Table => println!("operation {}: {}", o.id, views::state(o.state)),
            }
            Ok(())
        }
        OpsCommand::Results { id, failed } => {
            let mut results = client.operation_handle(id).results().await?;
            if failed {
                results.retain(|r| r.outcome == proto::AccountOutcome::Failed as i32);
            }
            match out {
                Output::Json => json::print(&results.iter().map(json::AccountResult::from).collect::<Vec<_>>()),
                Output::Table => {
                    let mut t = views::table(&["ACCOUNT", "NAME", "OUTCOME", "DETAIL"]);
                    for r in &results {
                        let detail = match &r.error {
                            _ if !r.unreadable.is_empty() => format!("unreadable: {}", r.unreadable),
                            Some(e) => e.message.clone(),
                            None => r.changes.iter().map(views::change_line).collect::<Vec<_>>().join("\n"),
                        };
                        t.add_row(vec![
                            r.account_id.clone(),
                            r.account_name.clone(),
                            views::outcome(r.outcome),
                            detail,
                        ]);
                    }
                    println!("{t}");
                }
            }
            Ok(())
        }
    }
}
