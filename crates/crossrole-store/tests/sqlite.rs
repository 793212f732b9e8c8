//! The journal's conformance suite on SQLite (in memory).

mod conformance;

use std::sync::Arc;

use crossrole_store::SqliteJournal;

#[allow(clippy::unwrap_used)]
async fn fresh() -> conformance::J {
    Arc::new(SqliteJournal::in_memory().unwrap())
}

conformance!(fresh());
