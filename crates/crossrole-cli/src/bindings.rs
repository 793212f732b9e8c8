//! `crossrole bindings`: specs crossroled keeps true over time.

use std::path::PathBuf;

use crossrole_client::{Client, proto};

use crate::{Failure, Outcome, Output, access, json, progress, views};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum BindingsCommand {
    /// Create or update a binding from a spec file.
    Apply {
        /// The spec file.
        #[arg(long, short)]
        file: PathBuf,
        /// Binding name (defaults to the spec's name, which must match).
        #[arg(long)]
        name: Option<String>,
        /// enforce (repair and enrol) or detect (only report).
        #[arg(long, default_value = "enforce", value_parser = ["enforce", "detect"])]
        mode: String,
        /// Reconcile interval, e.g. 15m.
        #[arg(long, default_value = "15m")]
        every: String,
        /// End the binding's access at this time (RFC 3339, e.g. 2026-12-05T18:00:00Z); an update with a new
        /// end extends it, and one with none makes it last.
        #[arg(long, conflicts_with = "expires_in")]
        expires_at: Option<String>,
        /// End the binding's access this long from now (e.g. 4h).
        #[arg(long, allow_hyphen_values = true, value_parser = crate::views::positive_duration)]
        expires_in: Option<String>,
    },
    /// Bindings.
    List,
    /// A binding's per-account status, drifted and failed accounts first.
    Status {
        /// Binding name.
        name: String,
    },
    /// Reconcile a binding now and follow it.
    Reconcile {
        /// Binding name.
        name: String,
    },
    /// Delete a binding and, unless --keep-roles, what it created.
    Delete {
        /// Binding name.
        name: String,
        /// Keep the roles; only forget the binding.
        #[arg(long)]
        keep_roles: bool,
    },
}

pub(crate) async fn run(client: &Client, cmd: BindingsCommand, out: Output) -> Outcome {
    match cmd {
        BindingsCommand::Apply { file, name, mode: m, every, expires_at, expires_in } => {
            let (expires_at, expires_in) = views::end_flags(expires_at.as_deref(), expires_in.as_deref())?;
            let spec = access::load(&file)?;
            let name = name.unwrap_or_else(|| spec.name.clone());
            let every =
                humantime::parse_duration(&every).map_err(|e| Failure::usage(format!("--every {every:?}: {e}")))?;
            let binding = proto::Binding {
                name: name.clone(),
                spec: Some(spec),
                mode: if m == "detect" { proto::BindingMode::Detect } else { proto::BindingMode::Enforce } as i32,
                reconcile_interval: Some(prost_types::Duration { seconds: every.as_secs() as i64, nanos: 0 }),
                expires_at,
                expires_in,
                ..Default::default()
            };
            let stored = match client.binding(&name).await {
                Ok(_) => client.update_binding(binding, 0).await?,
                Err(crossrole_client::Error::NotFound(_)) => client.create_binding(binding).await?,
                Err(e) => return Err(e.into()),
            };
            match out {
                Output::Json => json::print(&json::BindingStored::from(&stored)),
                Output::Table => println!(
                    "binding {} is at version {} ({}, every {}{})",
                    stored.name,
                    stored.version,
                    views::mode(stored.mode),
                    views::interval(&stored),
                    views::ends(&stored.expires_at).map(|e| format!(", {e}")).unwrap_or_default()
                ),
            }
            Ok(())
        }
        BindingsCommand::List => {
            let r =
                client.list_bindings(proto::ListBindingsRequest { page_size: 1000, page_token: String::new() }).await?;
            match out {
                Output::Json => json::print(&r.bindings.iter().map(json::BindingRow::from).collect::<Vec<_>>()),
                Output::Table => {
                    let mut t = views::table(&[
                        "NAME",
                        "VERSION",
                        "MODE",
                        "EVERY",
                        "IN SYNC",
                        "DRIFTED",
                        "FAILED",
                        "LAST RECONCILE",
                        "ENDS",
                    ]);
                    for b in &r.bindings {
                        let s = b.status.clone().unwrap_or_default();
                        t.add_row(vec![
                            b.name.clone(),
                            b.version.to_string(),
                            if b.unreadable.is_empty() { views::mode(b.mode) } else { "unreadable".into() },
                            views::interval(b),
                            s.in_sync.to_string(),
                            s.drifted.to_string(),
                            s.failed.to_string(),
                            views::time(&s.last_reconcile_time).unwrap_or_else(|| "never".into()).to_string(),
                            views::ends(&b.expires_at).unwrap_or_else(|| "never".into()),
                        ]);
                    }
                    println!("{t}");
                }
            }
            Ok(())
        }
        BindingsCommand::Status { name } => {
            let b = client.binding(&name).await?;
            let s = b.status.clone().unwrap_or_default();
            match out {
                Output::Json => json::print(&json::BindingStatus::from(&b)),
                Output::Table => {
                    let removed = if s.removed > 0 { format!(", {} removed", s.removed) } else { String::new() };
                    println!(
                        "binding {} v{} ({}, every {}): {} in sync, {} drifted, {} failed, {} pending{removed}; last \
                         reconcile {}",
                        b.name,
                        b.version,
                        views::mode(b.mode),
                        views::interval(&b),
                        s.in_sync,
                        s.drifted,
                        s.failed,
                        s.pending,
                        views::time(&s.last_reconcile_time).unwrap_or_else(|| "never".into())
                    );
                    if let Some(ends) = views::ends(&b.expires_at) {
                        // Once it has expired, what became of its roles: being removed, or removed (and when).
                        let removal = if s.expiry_operation_id.is_empty() {
                            String::new()
                        } else if s.last_operation_id == s.expiry_operation_id {
                            format!(
                                "; its roles were removed at {} by operation {}",
                                views::time(&s.last_reconcile_time).unwrap_or_default(),
                                s.expiry_operation_id
                            )
                        } else {
                            format!("; its roles are being removed by operation {}", s.expiry_operation_id)
                        };
                        println!("{ends}{removal}");
                    }
                    let mut t = views::table(&["ACCOUNT", "NAME", "STATE", "DETAIL", "LAST RECONCILE"]);
                    for a in &s.accounts {
                        let detail = match &a.error {
                            Some(e) => e.message.clone(),
                            None => a.changes.iter().map(views::change_line).collect::<Vec<_>>().join("\n"),
                        };
                        t.add_row(vec![
                            a.account_id.clone(),
                            a.account_name.clone(),
                            views::sync(a.state),
                            detail,
                            views::time(&a.last_reconcile_time).unwrap_or_default(),
                        ]);
                    }
                    println!("{t}");
                }
            }
            Ok(())
        }
        BindingsCommand::Reconcile { name } => {
            let handle = client.reconcile_binding(&name).await?;
            progress::follow(&handle, out).await
        }
        BindingsCommand::Delete { name, keep_roles } => {
            match client.delete_binding(&name, keep_roles).await? {
                Some(handle) => progress::follow(&handle, out).await?,
                None => println!("binding {name} deleted; its roles are kept"),
            }
            Ok(())
        }
    }
}
