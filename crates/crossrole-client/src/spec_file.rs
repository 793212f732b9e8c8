//! Spec files — the YAML (or JSON) people write and `crossrole` reads — into the API's [`proto::AccessSpec`],
//! with the feature `spec-files`. This is the CLI's own reading: the file is checked as `crossrole validate -f`
//! checks it before any server is asked, and a bad file gives the same error, every field in error named by its path
//! (`role.max_session_duration: must be whole seconds from 3600 (1h) to 43200 (12h) (IAM), got 72000s`).
//!
//! ```
//! use crossrole_client::spec_file;
//!
//! let spec = spec_file::from_yaml(
//!     "name: audit
//! role:
//!   name: Audit
//!   trust: {account_ids: [\"111122223333\"], external_id: 8f3kQ2mZ7xV1pL9wR4tY6uB0nC5hJ2dS}
//!   managed_policy_arns: [arn:aws:iam::aws:policy/SecurityAudit]
//! targets: {organizational_unit_paths: [/Root/Workloads]}
//! ",
//! )?;
//! assert_eq!(spec.role.as_ref().map(|r| r.name.as_str()), Some("Audit"));
//!
//! let bad = spec_file::from_yaml("name: audit\nrole: {name: Audit, trust: {}, max_session_duration: 20h}\n");
//! let error = bad.expect_err("20 hours is more than IAM allows");
//! assert!(error.violations().iter().any(|v| v.field == "role.max_session_duration"), "{error}");
//! # Ok::<(), spec_file::SpecFileError>(())
//! ```

use std::{
    fmt,
    path::{Path, PathBuf},
};

use crossrole_wire::ToWire;

use crate::{FieldViolation, proto};

/// A spec file that could not be read, or is not a valid spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read and is not a valid spec.
    #[error("{}", Invalid { path: path.as_deref(), violations })]
    Invalid {
        /// The file, when the spec was read from one.
        path: Option<PathBuf>,
        /// Each field in error (its path in the spec, e.g. `role.trust.external_id`) and the rule it breaks.
        violations: Vec<FieldViolation>,
    },
}

impl SpecFileError {
    /// The fields in error, when the file was read (none when it could not be).
    pub fn violations(&self) -> &[FieldViolation] {
        match self {
            SpecFileError::Read { .. } => &[],
            SpecFileError::Invalid { violations, .. } => violations,
        }
    }
}

/// How `crossrole` says a spec is invalid: the file, then each violation on a line of its own.
struct Invalid<'a> {
    path: Option<&'a Path>,
    violations: &'a [FieldViolation],
}

impl fmt::Display for Invalid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path {
            Some(path) => write!(f, "{} is not a valid spec:", path.display())?,
            None => f.write_str("not a valid spec:")?,
        }
        for v in self.violations {
            write!(f, "\n  {v}")?;
        }
        Ok(())
    }
}

/// Reads the spec file at `path`: JSON when its name ends in `.json`, YAML otherwise.
pub fn load(path: impl AsRef<Path>) -> Result<proto::AccessSpec, SpecFileError> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).map_err(|source| SpecFileError::Read { path: path.to_path_buf(), source })?;
    let json = path.extension().is_some_and(|e| e == "json");
    parse(&text, json).map_err(|e| e.of(path))
}

/// Reads a spec from the text of a YAML spec file.
pub fn from_yaml(text: &str) -> Result<proto::AccessSpec, SpecFileError> {
    parse(text, false)
}

/// Reads a spec from the text of a JSON spec file.
pub fn from_json(text: &str) -> Result<proto::AccessSpec, SpecFileError> {
    parse(text, true)
}

fn parse(text: &str, json: bool) -> Result<proto::AccessSpec, SpecFileError> {
    let parsed =
        if json { crossrole_core::AccessSpec::from_json(text) } else { crossrole_core::AccessSpec::from_yaml(text) };
    parsed.map(|spec| spec.to_wire()).map_err(|e| SpecFileError::Invalid {
        path: None,
        violations: e
            .violations()
            .iter()
            .map(|v| FieldViolation { field: v.field.clone(), description: v.rule.clone() })
            .collect(),
    })
}

impl SpecFileError {
    /// The same error, about the file at `path`.
    fn of(self, path: &Path) -> SpecFileError {
        match self {
            SpecFileError::Invalid { violations, .. } => {
                SpecFileError::Invalid { path: Some(path.to_path_buf()), violations }
            }
            read => read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/security-audit.yaml");

    #[test]
    fn a_spec_file_reads_as_the_api_spec() {
        let spec = from_yaml(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, "security-audit");
        assert_eq!(spec.role.map(|r| r.max_session_duration.map(|d| d.seconds)), Some(Some(3600)));
    }

    #[test]
    fn every_bad_field_is_named_by_its_path_under_the_files_name() {
        let dir = std::env::temp_dir().join(format!("crossrole-client-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("bad.yaml");
        let text = EXAMPLE
            .replace("max_session_duration: 1h", "max_session_duration: 20h")
            .replace("failure_tolerance: 10%", "failure_tolerance: 200%");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        let error = load(&path).expect_err("two bad fields");
        let _ = std::fs::remove_dir_all(&dir);
        let fields: Vec<&str> = error.violations().iter().map(|v| v.field.as_str()).collect();
        assert!(fields.contains(&"role.max_session_duration"), "{error}");
        assert!(fields.contains(&"rollout.failure_tolerance.percent"), "{error}");
        let said = error.to_string();
        assert!(said.starts_with(&format!("{} is not a valid spec:\n  ", path.display())), "{said}");
        assert!(
            said.contains(
                "\n  role.max_session_duration: must be whole seconds from 3600 (1h) to 43200 (12h) (IAM), got 72000s"
            ),
            "{said}"
        );
    }

    #[test]
    fn json_by_its_extension_and_a_missing_file_named() {
        let missing = load("/no/such/spec.json").expect_err("no file");
        assert!(matches!(missing, SpecFileError::Read { .. }), "{missing}");
        assert!(missing.to_string().starts_with("/no/such/spec.json: "), "{missing}");
        let shape = from_json("{\"name\": \"x\", \"role\": \"Audit\"}").expect_err("role is a mapping");
        assert!(shape.violations().iter().any(|v| v.field == "role"), "{shape}");
    }
}
