//! A spec's ExternalId on its way in and out of the engine: sealed for the journal, opened from it, or replaced by
//! its mark for callers and logs.

use crossrole_core::{
    secret::{REDACTED_PREFIX, Redactor},
    spec::RawSpec,
};
use crossrole_store::JournalKey;

fn external_id(spec: &mut RawSpec) -> Option<&mut String> {
    spec.role.as_mut().and_then(|r| r.trust.as_mut()).map(|t| &mut t.external_id).filter(|e| !e.is_empty())
}

/// The spec as shown to API callers and written to logs: the ExternalId replaced by its mark.
pub fn redacted(spec: &RawSpec, redactor: &Redactor) -> RawSpec {
    let mut spec = spec.clone();
    if let Some(e) = external_id(&mut spec)
        && !Redactor::is_mark(e)
    {
        *e = if JournalKey::is_sealed(e) { format!("{REDACTED_PREFIX}>") } else { redactor.mark(e) };
    }
    spec
}

/// The spec as the journal keeps it: the ExternalId sealed with the journal key, bound to `context`.
pub fn sealed(spec: &RawSpec, key: &JournalKey, context: &str) -> Result<RawSpec, crate::Error> {
    let mut spec = spec.clone();
    if let Some(e) = external_id(&mut spec) {
        *e = key.seal(e, context)?;
    }
    Ok(spec)
}

/// The spec as the journal kept it, with its ExternalId opened; `what` names the record in errors (`the spec of
/// operation …`): one sealed with another key is unreadable, as a damaged record is.
pub fn opened(spec: &RawSpec, key: &JournalKey, context: &str, what: &str) -> Result<RawSpec, crate::Error> {
    let mut spec = spec.clone();
    if let Some(e) = external_id(&mut spec) {
        *e = key.open(e, context).map_err(|_| {
            crate::Error::Corrupt(format!(
                "{what} holds an ExternalId sealed with another journal key than this crossroled's"
            ))
        })?;
    }
    Ok(spec)
}
