//! Access that expires: the end a binding or an apply may carry, given as a time (`expires_at`) or as a duration
//! (`expires_in`, turned into a time once, when the binding or the apply is made, by the server's clock), checked
//! against `now`, and how much of it is left.
//!
//! At its end crossroled removes the access it granted (a binding's or a spec's destroy); the engine holds the end
//! in the journal and its schedule acts on it. What is here is pure: the caller passes `now`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{FieldViolation, ops::Millis, spec::RawDuration};

/// The furthest ahead an end may lie: access meant to last longer than this is not "access that expires".
pub const MAX_AHEAD: Duration = Duration::from_secs(366 * 24 * 3600);

/// The nearest an end may lie: an end sooner than this would end the access before it was of use.
pub const MIN_AHEAD: Duration = Duration::from_secs(1);

/// An end as given: at most one of the two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawEnd {
    /// When the access ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// How long after its creation the access ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<RawDuration>,
}

impl RawEnd {
    /// Whether neither is given.
    pub fn is_empty(&self) -> bool {
        self.expires_at.is_none() && self.expires_in.is_none()
    }
}

/// The end `raw` gives at `now` (`None`: none given), its fields named under `under` (`binding`; empty: a request's
/// own fields).
/// Rules: not both; a duration is whole seconds, at least 1s (a part of a second, `1ns` or `500ms`, would end the
/// access at once, as zero would: it is a typo for something else); the end is at least [`MIN_AHEAD`] after `now`
/// (a time with a part of a second keeps it, to the millisecond) and at most [`MAX_AHEAD`] after it.
pub fn end(raw: &RawEnd, now: Millis, under: &str) -> Result<Option<Millis>, FieldViolation> {
    let field = |name: &str| if under.is_empty() { name.to_string() } else { format!("{under}.{name}") };
    let (at_field, in_field) = (field("expires_at"), field("expires_in"));
    let max_ms = MAX_AHEAD.as_millis() as i64;
    let at = match (raw.expires_at, raw.expires_in) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(FieldViolation::new(in_field, "give either expires_at or expires_in, not both"));
        }
        (Some(at), None) => {
            if at <= now {
                return Err(FieldViolation::new(
                    at_field,
                    format!("must be in the future (it is {}, now is {})", rfc3339(at), rfc3339(now)),
                ));
            }
            if at - now < MIN_AHEAD.as_millis() as i64 {
                return Err(FieldViolation::new(
                    at_field,
                    format!("must be at least 1s in the future (it is {}ms after now)", at - now),
                ));
            }
            if at - now > max_ms {
                return Err(FieldViolation::new(
                    at_field,
                    format!("must be at most 366 days ahead (it is {})", rfc3339(at)),
                ));
            }
            at
        }
        (None, Some(d)) => {
            if d.seconds < 0 || d.nanos < 0 || (d.seconds == 0 && d.nanos == 0) {
                return Err(FieldViolation::new(in_field, "must be positive"));
            }
            if d.nanos != 0 {
                return Err(FieldViolation::new(
                    in_field,
                    format!(
                        "must be whole seconds, at least 1s, got {} (a typo such as 5ms for 5m would end the access at once)",
                        shown(d)
                    ),
                ));
            }
            if d.seconds > MAX_AHEAD.as_secs() as i64 {
                return Err(FieldViolation::new(in_field, format!("must be at most 366 days, got {}s", d.seconds)));
            }
            now.saturating_add(d.seconds * 1000 + i64::from(d.nanos) / 1_000_000)
        }
    };
    Ok(Some(at))
}

/// A duration as given, in the unit that shows its part of a second: `1ns`, `500ms`, `2.5s`.
fn shown(d: RawDuration) -> String {
    match (d.seconds, d.nanos) {
        (0, n) if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        (0, n) if n % 1000 == 0 => format!("{}us", n / 1000),
        (0, n) => format!("{n}ns"),
        (s, n) => format!("{s}.{}s", format!("{n:09}").trim_end_matches('0')),
    }
}

/// Whether an end has come at `now`.
pub fn has_ended(end: Option<Millis>, now: Millis) -> bool {
    end.is_some_and(|e| e <= now)
}

/// What is left of an end at `now`, for people: `expires in 3h 12m`, `expired at 2026-12-05T06:00:00Z`.
pub fn left(end: Millis, now: Millis) -> String {
    if end <= now {
        return format!("expired at {}", rfc3339(end));
    }
    let secs = ((end - now) + 999) / 1000;
    let (d, h, m, s) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s > 0 && m < 10 => format!("{m}m {s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    };
    format!("expires in {text}")
}

/// A time as RFC 3339, to the second, in UTC.
pub fn rfc3339(ms: Millis) -> String {
    let t = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_seconds(t.max(SystemTime::UNIX_EPOCH)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_764_900_000_000;

    fn check(raw: RawEnd, expect: Result<Option<Millis>, (&str, &str)>) {
        let got = end(&raw, NOW, "binding").map_err(|v| (v.field, v.rule));
        match (got, expect) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err((field, why)), Err((f, w))) => {
                assert_eq!(field, f);
                assert!(why.contains(w), "{why:?} does not say {w:?}");
            }
            (got, expect) => panic!("got {got:?}, expected {expect:?}"),
        }
    }

    fn within(seconds: i64) -> RawEnd {
        RawEnd { expires_in: Some(RawDuration { seconds, nanos: 0 }), ..Default::default() }
    }

    fn at(ms: Millis) -> RawEnd {
        RawEnd { expires_at: Some(ms), ..Default::default() }
    }

    #[test]
    fn an_end_is_a_time_after_now_and_not_absurdly_far() {
        check(RawEnd::default(), Ok(None));
        check(within(4 * 3600), Ok(Some(NOW + 4 * 3600 * 1000)));
        check(at(NOW + 1000), Ok(Some(NOW + 1000)));
        check(at(NOW + 1500), Ok(Some(NOW + 1500)));
        check(at(NOW + 1), Err(("binding.expires_at", "must be at least 1s in the future (it is 1ms after now)")));
        check(at(NOW + 999), Err(("binding.expires_at", "at least 1s in the future")));
        check(at(NOW), Err(("binding.expires_at", "must be in the future")));
        check(at(NOW - 60_000), Err(("binding.expires_at", "must be in the future")));
        check(at(NOW + 367 * 86_400_000), Err(("binding.expires_at", "at most 366 days")));
        check(within(0), Err(("binding.expires_in", "must be positive")));
        check(within(-5), Err(("binding.expires_in", "must be positive")));
        // A part of a second ends the access at once, as zero would (an outside tester's `1ns`, `500ms`).
        let part = |seconds, nanos| RawEnd { expires_in: Some(RawDuration { seconds, nanos }), ..Default::default() };
        check(part(0, 1), Err(("binding.expires_in", "must be whole seconds, at least 1s, got 1ns")));
        check(part(0, 500_000_000), Err(("binding.expires_in", "must be whole seconds, at least 1s, got 500ms")));
        check(part(2, 500_000_000), Err(("binding.expires_in", "got 2.5s")));
        check(part(0, -1), Err(("binding.expires_in", "must be positive")));
        check(within(1), Ok(Some(NOW + 1000)));
        check(within(20), Ok(Some(NOW + 20_000)));
        check(within(367 * 86_400), Err(("binding.expires_in", "at most 366 days")));
        let both = RawEnd { expires_at: Some(NOW + 1000), expires_in: Some(RawDuration { seconds: 1, nanos: 0 }) };
        check(both, Err(("binding.expires_in", "not both")));
        let v = end(&at(NOW), NOW, "").unwrap_err();
        assert_eq!(v.field, "expires_at", "a request's own field");
    }

    #[test]
    fn what_is_left_reads_as_people_say_it() {
        let h = 3_600_000;
        assert_eq!(left(NOW + 3 * h + 12 * 60_000, NOW), "expires in 3h 12m");
        assert_eq!(left(NOW + 20_000, NOW), "expires in 20s");
        assert_eq!(left(NOW + 90_000, NOW), "expires in 1m 30s");
        assert_eq!(left(NOW + 26 * h, NOW), "expires in 1d 2h");
        assert_eq!(left(NOW, NOW), "expired at 2025-12-05T02:00:00Z");
        assert!(has_ended(Some(NOW), NOW) && !has_ended(Some(NOW + 1), NOW) && !has_ended(None, NOW));
    }
}
