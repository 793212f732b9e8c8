//! `crossrole audit`: who changed what, when, through which request.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossrole_client::{Client, proto};

use crate::{Failure, Outcome, Output, json, views};

/// Audit log filters.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only events in the last while, e.g. 24h or 7d.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Only calls made with this token (its name).
    #[arg(long)]
    caller: Option<String>,
    /// Only calls of this method (ApplyAccess, DestroyAccess, CancelOperation, CreateBinding, ...).
    #[arg(long)]
    method: Option<String>,
    /// Only calls about this spec or binding.
    #[arg(long)]
    spec: Option<String>,
    /// Only calls that started or acted on this operation.
    #[arg(long)]
    operation: Option<String>,
    /// Only calls about this account: about operations that worked on it, or that made or changed a binding whose
    /// reconciles did. Who changed access to it, and when.
    #[arg(long)]
    account: Option<String>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

pub(crate) async fn run(client: &Client, args: AuditArgs, out: Output) -> Outcome {
    if args.limit == 0 {
        return Err(Failure::usage("--limit: at least 1"));
    }
    let start_time = args.since.map(|d| {
        let at = SystemTime::now().checked_sub(d).unwrap_or(UNIX_EPOCH);
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        prost_types::Timestamp { seconds: since.as_secs() as i64, nanos: since.subsec_nanos() as i32 }
    });
    let mut events = Vec::new();
    let mut token = String::new();
    while events.len() < args.limit {
        let page = client
            .list_audit_events(proto::ListAuditEventsRequest {
                start_time,
                caller: args.caller.clone().unwrap_or_default(),
                method: args.method.clone().unwrap_or_default(),
                spec_name: args.spec.clone().unwrap_or_default(),
                operation_id: args.operation.clone().unwrap_or_default(),
                account_id: args.account.clone().unwrap_or_default(),
                page_size: (args.limit - events.len()).min(1000) as u32,
                page_token: token,
                ..Default::default()
            })
            .await?;
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    match out {
        Output::Json => {
            let items: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "time": views::time(&e.time),
                        "caller": e.caller,
                        "caller_subject": e.caller_subject,
                        "method": e.method,
                        "spec": e.spec_name,
                        "operation_id": e.operation_id,
                        "outcome": e.outcome,
                        "request": serde_json::from_str::<serde_json::Value>(&e.request_json)
                            .unwrap_or_else(|_| serde_json::Value::String(e.request_json.clone())),
                    })
                })
                .collect();
            json::print(&items);
        }
        Output::Table => {
            let mut t = views::table(&["TIME", "CALLER", "METHOD", "SPEC", "OPERATION", "OUTCOME"]);
            for e in &events {
                let outcome: String = e.outcome.chars().take(80).collect();
                // The client certificate's subject, when the call came with one (mutual TLS).
                let caller = if e.caller_subject.is_empty() {
                    e.caller.clone()
                } else {
                    format!("{} ({})", e.caller, e.caller_subject)
                };
                t.add_row(vec![
                    views::time(&e.time).unwrap_or_default(),
                    caller,
                    e.method.clone(),
                    e.spec_name.clone(),
                    e.operation_id.clone(),
                    outcome,
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}
