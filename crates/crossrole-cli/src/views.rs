//! How things look: JSON views (enum values by name, times in RFC 3339) and tables.

use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use crossrole_client::proto;
use serde_json::{Value, json};

/// `ACCOUNT_OUTCOME_CHANGED` → `changed`.
pub(crate) fn short(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_ascii_lowercase()
}

pub(crate) fn outcome(v: i32) -> String {
    proto::AccountOutcome::try_from(v)
        .map(|o| short(o.as_str_name(), "ACCOUNT_OUTCOME_"))
        .unwrap_or_else(|_| v.to_string())
}

pub(crate) fn phase(v: i32) -> String {
    proto::AccountPhase::try_from(v).map(|o| short(o.as_str_name(), "ACCOUNT_PHASE_")).unwrap_or_else(|_| v.to_string())
}

pub(crate) fn state(v: i32) -> String {
    proto::OperationState::try_from(v)
        .map(|o| short(o.as_str_name(), "OPERATION_STATE_"))
        .unwrap_or_else(|_| v.to_string())
}

pub(crate) fn kind(v: i32) -> String {
    proto::OperationKind::try_from(v)
        .map(|o| short(o.as_str_name(), "OPERATION_KIND_"))
        .unwrap_or_else(|_| v.to_string())
}

pub(crate) fn change_kind(v: i32) -> String {
    proto::ChangeKind::try_from(v)
        .map(|o| short(o.as_str_name(), "CHANGE_KIND_").replace('_', " "))
        .unwrap_or_else(|_| v.to_string())
}

pub(crate) fn time(t: &Option<prost_types::Timestamp>) -> Value {
    match t {
        Some(t) if t.seconds > 0 => Value::String(
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t.seconds as u64)).to_string(),
        ),
        _ => Value::Null,
    }
}

pub(crate) fn change(c: &proto::Change) -> Value {
    json!({ "kind": change_kind(c.kind), "subject": c.subject, "before": c.before, "after": c.after })
}

pub(crate) fn change_line(c: &proto::Change) -> String {
    if c.subject.is_empty() { change_kind(c.kind) } else { format!("{} {}", change_kind(c.kind), c.subject) }
}

pub(crate) fn error(e: &Option<proto::AccountError>) -> Value {
    match e {
        None => Value::Null,
        Some(e) => {
            json!({ "code": e.code, "message": e.message, "aws_error_code": e.aws_error_code, "phase": phase(e.phase) })
        }
    }
}

pub(crate) fn counts(c: &Option<proto::OperationCounts>) -> Value {
    let c = (*c).unwrap_or_default();
    json!({
        "total": c.total, "pending": c.pending, "running": c.running, "changed": c.changed, "unchanged": c.unchanged,
        "failed": c.failed, "skipped": c.skipped, "not_started": c.not_started, "drifted": c.drifted,
    })
}

pub(crate) fn counts_line(c: &Option<proto::OperationCounts>) -> String {
    let c = (*c).unwrap_or_default();
    let mut parts = vec![format!("{} changed", c.changed), format!("{} unchanged", c.unchanged)];
    for (n, label) in [
        (c.failed, "failed"),
        (c.skipped, "skipped"),
        (c.not_started, "not started"),
        (c.drifted, "drifted"),
        (c.running, "running"),
        (c.pending, "pending"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    format!("{} accounts: {}", c.total, parts.join(", "))
}

pub(crate) fn operation(o: &proto::Operation) -> Value {
    json!({
        "id": o.id,
        "kind": kind(o.kind),
        "state": state(o.state),
        "spec": o.spec.as_ref().map(|s| s.name.clone()),
        "message": o.message,
        "created_by": o.created_by,
        "create_time": time(&o.create_time),
        "start_time": time(&o.start_time),
        "end_time": time(&o.end_time),
        "counts": counts(&o.counts),
        "aws_calls": o.aws_calls,
        "throttled_calls": o.throttled_calls,
        "last_sequence": o.last_sequence,
        "dry_run": o.dry_run,
        "idempotency_key": o.idempotency_key,
        "binding": o.binding_name,
    })
}

pub(crate) fn result(r: &proto::AccountResult) -> Value {
    json!({
        "account_id": r.account_id,
        "account_name": r.account_name,
        "outcome": outcome(r.outcome),
        "action": proto::AccountAction::try_from(r.action).map(|a| short(a.as_str_name(), "ACCOUNT_ACTION_")).unwrap_or_default(),
        "role_arn": r.role_arn,
        "changes": r.changes.iter().map(change).collect::<Vec<_>>(),
        "error": error(&r.error),
        "verify": r.verify.as_ref().map(|v| json!({ "passed": v.passed, "assumed_account_id": v.assumed_account_id, "attempts": v.attempts, "error": v.error })),
    })
}

pub(crate) fn event(e: &proto::OperationEvent) -> Value {
    use proto::operation_event::Event;
    let (kind, detail) = match &e.event {
        Some(Event::StateChanged(s)) => (
            "state_changed",
            json!({ "state": state(s.state), "message": s.message, "counts": s.counts.as_ref().map(|_| counts(&s.counts)) }),
        ),
        Some(Event::TargetsResolved(t)) => (
            "targets_resolved",
            json!({ "targets": t.target_count, "skipped": t.skipped_count, "cleanup": t.cleanup_count }),
        ),
        Some(Event::PhaseStarted(p)) => ("phase_started", json!({ "phase": phase(p.phase) })),
        Some(Event::ChangeApplied(c)) => ("change_applied", c.change.as_ref().map(change).unwrap_or(Value::Null)),
        Some(Event::CallRetried(r)) => (
            "call_retried",
            json!({ "call": r.call, "aws_error_code": r.aws_error_code, "attempt": r.attempt, "delay_ms": r.delay_ms }),
        ),
        Some(Event::AccountFinished(f)) => ("account_finished", f.result.as_ref().map(result).unwrap_or(Value::Null)),
        None => ("unknown", Value::Null),
    };
    json!({ "sequence": e.sequence, "time": time(&e.time), "account_id": e.account_id, "event": kind, "detail": detail })
}

pub(crate) fn check(c: &proto::CheckOutcome) -> String {
    short(c.as_str_name(), "CHECK_OUTCOME_")
}

pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic).set_header(headers.to_vec());
    t
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}
