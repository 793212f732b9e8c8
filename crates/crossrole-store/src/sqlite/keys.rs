//! What the SQLite journal says of the key it is written under: its check value, whether it holds records, and
//! one of its sealed values.

use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    KeyEvidence, SealedValue, StoreError,
    key::{CHECK_META_KEY, HOLDS_RECORDS, SEALED_BYTES},
};

pub(super) fn evidence(conn: &Connection) -> Result<KeyEvidence, StoreError> {
    let check: Option<String> =
        conn.query_row("SELECT value FROM journal_meta WHERE key = ?1", [CHECK_META_KEY], |r| r.get(0)).optional()?;
    let holds_records: bool = conn.query_row(HOLDS_RECORDS, [], |r| r.get(0))?;
    let sealed = if check.is_none() && holds_records { sealed_value(conn)? } else { None };
    Ok(KeyEvidence { check, holds_records, sealed })
}

/// One sealed value of the journal's: in an operation's spec, else in a binding.
fn sealed_value(conn: &Connection) -> Result<Option<SealedValue>, StoreError> {
    let found: Option<(String, Vec<u8>)> = conn
        .query_row("SELECT id, spec FROM operations WHERE instr(spec, ?1) > 0 LIMIT 1", [SEALED_BYTES], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    if let Some((id, spec)) = found {
        return Ok(SealedValue::in_payload(&spec, id));
    }
    let found: Option<(String, Vec<u8>)> = conn
        .query_row("SELECT name, binding FROM bindings WHERE instr(binding, ?1) > 0 LIMIT 1", [SEALED_BYTES], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(found.and_then(|(name, binding)| SealedValue::in_payload(&binding, format!("binding:{name}"))))
}

pub(super) fn record(conn: &Connection, check: &str) -> Result<bool, StoreError> {
    let changed = conn.execute(
        "INSERT INTO journal_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
        params![CHECK_META_KEY, check],
    )?;
    Ok(changed == 1)
}
