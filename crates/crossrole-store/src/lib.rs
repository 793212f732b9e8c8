//! The crossrole operation journal: operations, their specs, per-account state and the event log, in SQLite.
