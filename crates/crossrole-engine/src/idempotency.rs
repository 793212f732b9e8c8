//! An idempotency key reused for another request: the journal only says the request's fingerprint is not the one
//! the key's first request had ([`crossrole_store::StoreError::IdempotencyConflict`]); this finds that request among
//! the spec's operations and names the field that differs, so the caller knows what it changed.
//!
//! The fingerprint covers the kind, the dry run, the spec, the confirmed plan, the former grants released and the
//! end as it was asked
//! ([`crate::StartRequest::end`]). The end is compared as asked, not as the time it comes to: an `expires_in`
//! retried later is the same request (the first end stands); the same key with another duration, another
//! `expires_at`, one of the two instead of the other, or an end added or left out is another request, refused.

use crossrole_core::{
    expiry::{RawEnd, rfc3339},
    ops::OperationKind,
    spec::RawSpec,
};
use crossrole_store::{OperationFilter, OperationRow};

use crate::{Engine, Error, StartRequest, records};

/// The error for `request`, whose idempotency key started an operation for a different request: it names
/// `idempotency_key` and the field that differs (`expires_in`, `expires_at`, `spec`, `plan_fingerprint`, …).
pub(crate) async fn reused(engine: &Engine, request: &StartRequest, raw: &RawSpec, confirmed: Option<&str>) -> Error {
    let key = request.idempotency_key.clone().unwrap_or_default();
    let first = match first_with_key(engine, request, &key).await {
        Ok(first) => first,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the first request of a reused idempotency key");
            None
        }
    };
    let (field, why) = match first {
        None => ("spec", format!("its first request was for another spec than {:?}", request.spec.name)),
        Some(row) => differs(engine, request, raw, confirmed, &row),
    };
    Error::IdempotencyKeyReused {
        field: field.to_string(),
        message: format!(
            "idempotency_key {key:?} was already used for a different request ({field} differs: {why}); nothing was \
             done: send the first request again to get its operation, or use a new idempotency_key"
        ),
    }
}

/// The operation the caller's key started, among the spec's.
async fn first_with_key(engine: &Engine, request: &StartRequest, key: &str) -> Result<Option<OperationRow>, Error> {
    let filter = OperationFilter { spec_name: request.spec.name.clone(), ..Default::default() };
    let mut before = None;
    loop {
        let (rows, next) = engine.inner.journal.list_operations(&filter, 200, before).await?;
        let found =
            rows.iter().find(|r| r.idempotency_key.as_deref() == Some(key) && r.created_by == request.created_by);
        if let Some(row) = found {
            return Ok(Some(row.clone()));
        }
        match next {
            Some(next) if !rows.is_empty() => before = Some(next),
            _ => return Ok(None),
        }
    }
}

/// The field of `request` that is not what `first` asked, and how.
fn differs(
    engine: &Engine,
    request: &StartRequest,
    raw: &RawSpec,
    confirmed: Option<&str>,
    first: &OperationRow,
) -> (&'static str, String) {
    let kind = records::kind_of(first.kind);
    if kind != Some(request.kind) {
        let was = kind.map_or("an operation of another kind", OperationKind::as_str);
        return ("idempotency_key", format!("it started a {was}, this is a {}", request.kind.as_str()));
    }
    if first.dry_run != request.dry_run {
        return ("dry_run", format!("the first was {}a dry run", if first.dry_run { "" } else { "not " }));
    }
    if engine.spec_of(first).is_ok_and(|spec| &spec != raw) {
        return ("spec", "the spec is not the one the first request applied".into());
    }
    // A plan made again carries another fingerprint: when the end asked differs too, that is what the caller
    // changed (the CLI plans again before each apply), and it is named instead.
    let planned = records::operation_confirmed_plan(&first.spec);
    if planned.as_deref() != confirmed && records::operation_end(&first.spec) == request.end {
        return ("plan_fingerprint", "the confirmed plan is not the first request's".into());
    }
    let released = records::operation_release(&first.spec).accounts;
    if released != request.release_former_grants {
        let list = |a: &std::collections::BTreeSet<String>| {
            if a.is_empty() { "none".to_string() } else { a.iter().cloned().collect::<Vec<_>>().join(", ") }
        };
        let why = format!("the first released {}, this one {}", list(&released), list(&request.release_former_grants));
        return ("release_former_grants", why);
    }
    let taken = records::operation_external_ids(&first.spec);
    if taken != request.external_ids {
        let why = format!(
            "the first request's ExternalIds were {}, this one's {} (write_external_id)",
            taken.as_str(),
            request.external_ids.as_str()
        );
        return ("write_external_id", why);
    }
    let (was, now) = (records::operation_end(&first.spec), request.end);
    let field = match (was, now) {
        (_, RawEnd { expires_in: Some(_), .. })
        | (RawEnd { expires_in: Some(_), .. }, RawEnd { expires_at: None, .. }) => "expires_in",
        _ => "expires_at",
    };
    (field, format!("the first request asked for {}, this one for {}", shown(&was), shown(&now)))
}

/// An end as asked, in words.
fn shown(end: &RawEnd) -> String {
    match (end.expires_at, end.expires_in) {
        (Some(at), _) => format!("expires_at {}", rfc3339(at)),
        (None, Some(d)) if d.nanos == 0 => format!("expires_in {}s", d.seconds),
        (None, Some(d)) => format!("expires_in {}.{:09}s", d.seconds, d.nanos),
        (None, None) => "no end".into(),
    }
}
