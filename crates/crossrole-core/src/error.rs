//! The crate's one error type, and the field violation that names what is wrong and where.

use std::fmt;

/// One problem with an input: where it is (a field path such as `role.trust.external_id` or
/// `role.inline_policies["audit"].Statement[0].Effect`) and which rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldViolation {
    /// Path of the field, in the spec's own (proto and file) names.
    pub field: String,
    /// The rule that is broken, for people.
    pub rule: String,
}

impl FieldViolation {
    /// A violation of `rule` at `field`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        FieldViolation { field: field.into(), rule: rule.into() }
    }
}

impl fmt::Display for FieldViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { write!(f, "{}", self.rule) } else { write!(f, "{}: {}", self.field, self.rule) }
    }
}

/// Errors of crossrole-core. Each carries every violation found, not only the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input breaks one or more rules.
    #[error("invalid input: {}", Violations(.0))]
    Invalid(Vec<FieldViolation>),
    /// The spec is valid but raises guardrail errors that it does not waive.
    #[error("refused by guardrails: {}", Violations(.0))]
    Refused(Vec<FieldViolation>),
}

impl Error {
    /// The violations, whichever the kind of error.
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            Error::Invalid(v) | Error::Refused(v) => v,
        }
    }

    /// The same error with every field named under `prefix` (`spec` → `spec.role.name`; a violation of the whole
    /// input becomes one of `prefix`).
    pub fn under(self, prefix: &str) -> Error {
        let fix = |v: Vec<FieldViolation>| {
            v.into_iter()
                .map(|f| {
                    let field = if f.field.is_empty() { prefix.to_string() } else { format!("{prefix}.{}", f.field) };
                    FieldViolation { field, rule: f.rule }
                })
                .collect()
        };
        match self {
            Error::Invalid(v) => Error::Invalid(fix(v)),
            Error::Refused(v) => Error::Refused(fix(v)),
        }
    }

    /// An `Invalid` error with a single violation.
    pub fn invalid(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldViolation::new(field, rule)])
    }
}

struct Violations<'a>(&'a [FieldViolation]);

impl fmt::Display for Violations<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// Collects violations while walking an input, so that one pass reports every problem.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    found: Vec<FieldViolation>,
}

impl Collector {
    pub(crate) fn push(&mut self, field: impl Into<String>, rule: impl Into<String>) {
        self.found.push(FieldViolation::new(field, rule));
    }

    pub(crate) fn extend(&mut self, other: impl IntoIterator<Item = FieldViolation>) {
        self.found.extend(other);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// `Ok(value)` when nothing was found, else every violation.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, Error> {
        if self.found.is_empty() { Ok(value) } else { Err(Error::Invalid(self.found)) }
    }
}
