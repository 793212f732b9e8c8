//! How things look to people: enum values by their short name, times in RFC 3339, tables. `--output json` is
//! [`crate::json`].

use std::time::{Duration, UNIX_EPOCH};

use comfy_table::{ContentArrangement, Table, presets::UTF8_BORDERS_ONLY};
use crossrole_client::proto;

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

/// A time in RFC 3339 (to the second); `None` when unset.
pub(crate) fn time(t: &Option<prost_types::Timestamp>) -> Option<String> {
    match t {
        Some(t) if t.seconds > 0 => {
            Some(humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t.seconds as u64)).to_string())
        }
        _ => None,
    }
}

/// `n` of `noun`, singular or plural: `1 account`, `2 accounts`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

pub(crate) fn change_line(c: &proto::Change) -> String {
    if c.subject.is_empty() { change_kind(c.kind) } else { format!("{} {}", change_kind(c.kind), c.subject) }
}

/// Whether a change revokes a role's sessions or says they are not revoked.
pub(crate) fn is_sessions_change(kind: i32) -> bool {
    kind == proto::ChangeKind::RevokeSessions as i32 || kind == proto::ChangeKind::SessionsNotRevoked as i32
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
    format!("{}: {}", count(c.total as usize, "account"), parts.join(", "))
}

pub(crate) fn action(v: i32) -> String {
    proto::AccountAction::try_from(v).map(|a| short(a.as_str_name(), "ACCOUNT_ACTION_")).unwrap_or_default()
}

pub(crate) fn check(v: i32) -> String {
    proto::CheckOutcome::try_from(v).map(|o| short(o.as_str_name(), "CHECK_OUTCOME_")).unwrap_or_default()
}

pub(crate) fn plan_status(v: i32) -> String {
    proto::AccountPlanStatus::try_from(v)
        .map(|s| short(s.as_str_name(), "ACCOUNT_PLAN_STATUS_").replace('_', " "))
        .unwrap_or_default()
}

pub(crate) fn conformance(v: i32) -> String {
    proto::RoleConformance::try_from(v)
        .map(|c| short(c.as_str_name(), "ROLE_CONFORMANCE_").replace('_', " "))
        .unwrap_or_default()
}

pub(crate) fn account_state(v: i32) -> String {
    proto::AccountState::try_from(v).map(|s| short(s.as_str_name(), "ACCOUNT_STATE_")).unwrap_or_default()
}

pub(crate) fn mode(v: i32) -> String {
    proto::BindingMode::try_from(v).map(|m| short(m.as_str_name(), "BINDING_MODE_")).unwrap_or_default()
}

pub(crate) fn sync(v: i32) -> String {
    proto::SyncState::try_from(v).map(|m| short(m.as_str_name(), "SYNC_STATE_").replace('_', " ")).unwrap_or_default()
}

/// A binding's reconcile interval, for people (`15m`).
pub(crate) fn interval(b: &proto::Binding) -> String {
    b.reconcile_interval
        .map(|d| humantime::format_duration(Duration::from_secs(d.seconds.max(0) as u64)).to_string())
        .unwrap_or_default()
}

/// What is left of an end, for people: `expires in 3h 12m`, `expired at …`; `None`: it does not end.
pub(crate) fn ends(end: &Option<prost_types::Timestamp>) -> Option<String> {
    let end = end.as_ref()?;
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    Some(crossrole_core::expiry::left(crossrole_wire::millis(end), now))
}

/// `--expires-in`'s value, checked as clap reads it (so before anything is read or sent): a duration from now,
/// positive, in whole seconds (at least 1s). A negative one (`-1h`) is taken as the flag's value, not as another
/// flag, and refused in words; so is a part of a second (`1ns`, `500ms`: a typo for `5m` ends the access at once).
pub(crate) fn positive_duration(text: &str) -> Result<String, String> {
    const RULE: &str = "a duration from now, positive, e.g. 4h or 90m, in whole seconds (for a time, --expires-at)";
    if text.trim_start().starts_with('-') {
        return Err(format!("a negative duration ends nothing: give {RULE}"));
    }
    match humantime::parse_duration(text) {
        Err(e) => Err(format!("{e}: give {RULE}")),
        Ok(d) if d.is_zero() => Err(format!("zero would end the access at once: give {RULE}")),
        Ok(d) if d.subsec_nanos() != 0 => Err(format!(
            "must be whole seconds, at least 1s (a typo such as 5ms for 5m would end the access at once): give {RULE}"
        )),
        Ok(_) => Ok(text.to_string()),
    }
}

/// An end from `--expires-at RFC3339` or `--expires-in 4h` (at most one: clap says so), as the API takes it.
pub(crate) fn end_flags(
    at: Option<&str>,
    within: Option<&str>,
) -> Result<(Option<prost_types::Timestamp>, Option<prost_types::Duration>), crate::Failure> {
    let at = match at {
        None => None,
        Some(t) => {
            let t = humantime::parse_rfc3339_weak(t)
                .map_err(|e| crate::Failure::usage(format!("--expires-at {t:?}: {e} (an RFC 3339 time)")))?;
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            Some(prost_types::Timestamp { seconds: d.as_secs() as i64, nanos: 0 })
        }
    };
    let within = match within {
        None => None,
        Some(d) => {
            let d = humantime::parse_duration(d)
                .map_err(|e| crate::Failure::usage(format!("--expires-in {d:?}: {e} (a duration, e.g. 4h)")))?;
            Some(prost_types::Duration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 })
        }
    };
    Ok((at, within))
}

pub(crate) fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY).set_content_arrangement(ContentArrangement::Dynamic).set_header(headers.to_vec());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_account_is_singular() {
        assert_eq!(
            [count(0, "account"), count(1, "account"), count(2, "account")],
            ["0 accounts", "1 account", "2 accounts"]
        );
        let one = proto::OperationCounts { total: 1, changed: 1, ..Default::default() };
        assert_eq!(counts_line(&Some(one)), "1 account: 1 changed, 0 unchanged");
    }

    #[test]
    fn expires_in_takes_a_positive_duration_only() {
        assert_eq!(positive_duration("4h"), Ok("4h".to_string()));
        assert_eq!(positive_duration("1h 30m"), Ok("1h 30m".to_string()));
        assert_eq!(positive_duration("1s"), Ok("1s".to_string()));
        assert_eq!(positive_duration("20s"), Ok("20s".to_string()));
        let rule = "a duration from now, positive, e.g. 4h or 90m, in whole seconds (for a time, --expires-at)";
        assert_eq!(positive_duration("-1h"), Err(format!("a negative duration ends nothing: give {rule}")));
        assert_eq!(positive_duration("0s"), Err(format!("zero would end the access at once: give {rule}")));
        // A part of a second ends the access at once too (an outside tester's `1ns`, `500ms`; `5ms` for `5m`).
        for part in ["1ns", "500ms", "5ms", "1s 500ms"] {
            assert_eq!(
                positive_duration(part),
                Err(format!(
                    "must be whole seconds, at least 1s (a typo such as 5ms for 5m would end the access at once): give {rule}"
                )),
                "{part}"
            );
        }
        let said = positive_duration("soon").unwrap_err();
        assert!(said.ends_with(&format!(": give {rule}")), "{said}");
    }
}
