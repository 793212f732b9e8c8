//! Upgrading a journal from before crossrole's own records.
//!
//! Journals created before the engine kept its own records (`crossrole_engine::records`) hold the API's protobuf
//! messages as payloads. When crossroled starts on one, it rewrites every payload — each operation's spec, account
//! result and event, each binding and its status — from the v1 message, through the domain type (crossrole-wire),
//! into a record, in one journal transaction: either the whole journal is upgraded or, if any payload does not
//! read, nothing is, and crossroled refuses to start, naming the payload. ExternalIds stay sealed: the upgrade
//! moves the sealed text as it is. The upgrade is done once; the journal then says its payloads are records.

use std::time::Duration;

use crossrole_core::{
    binding::{BindingMode, BindingStatus},
    ops::{AccountResult, OperationEvent},
};
use crossrole_engine::records::{self, BindingRecord};
use crossrole_store::{Journal, PayloadFormat, PayloadKind};
use crossrole_wire::{FromWire, enums::Known, pb, raw_spec};
use prost::Message;

/// Upgrades `journal` if its payloads are protobuf; returns how many payloads were rewritten (`None`: nothing to
/// do).
pub async fn upgrade(journal: &dyn Journal) -> Result<Option<u64>, crossrole_store::StoreError> {
    if journal.payload_format().await? == PayloadFormat::Records {
        return Ok(None);
    }
    let n = journal.rewrite_payloads(Box::new(record), PayloadFormat::Records).await?;
    Ok(Some(n))
}

/// One payload, from its v1 message to its record.
pub fn record(kind: PayloadKind, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let wire_error = |e: crossrole_wire::Error| e.to_string();
    Ok(match kind {
        PayloadKind::Spec => records::encode(&raw_spec(&decode::<pb::AccessSpec>(bytes)?)),
        PayloadKind::AccountResult => {
            records::encode(&AccountResult::from_wire(&decode::<pb::AccountResult>(bytes)?).map_err(wire_error)?)
        }
        PayloadKind::Event => {
            records::encode(&OperationEvent::from_wire(&decode::<pb::OperationEvent>(bytes)?).map_err(wire_error)?)
        }
        PayloadKind::Binding => {
            let b = decode::<pb::Binding>(bytes)?;
            let interval = b.reconcile_interval.map(|d| d.seconds.max(0) as u64);
            records::encode(&BindingRecord {
                spec: raw_spec(&b.spec.unwrap_or_default()),
                mode: BindingMode::known(b.mode).unwrap_or(BindingMode::Enforce),
                reconcile_interval_secs: interval
                    .unwrap_or(crossrole_core::binding::DEFAULT_INTERVAL.as_secs())
                    .max(Duration::from_secs(1).as_secs()),
                // Journals from before the records held no ends.
                expires_at: None,
            })
        }
        PayloadKind::BindingStatus => {
            records::encode(&BindingStatus::from_wire(&decode::<pb::BindingStatus>(bytes)?).map_err(wire_error)?)
        }
    })
}

fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|e| format!("not a v1 message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_account_of_the_first_journals_reads_as_one() {
        let old = pb::AccountResult {
            account_id: "333333333333".into(),
            index: 4,
            outcome: pb::AccountOutcome::Skipped as i32,
            phase: pb::AccountPhase::Done as i32,
            error: Some(pb::AccountError {
                code: "account_not_active".into(),
                message: "account is SUSPENDED".into(),
                phase: pb::AccountPhase::Queued as i32,
                ..Default::default()
            }),
            ..Default::default()
        };
        let bytes = record(PayloadKind::AccountResult, &old.encode_to_vec()).unwrap();
        let r: AccountResult = records::decode(&bytes, "r").unwrap();
        assert_eq!(r.error.unwrap().code, crossrole_core::ops::ErrorCode::AccountNotActive);
        assert_eq!(r.action, None, "a skipped account is not acted on");
    }

    #[test]
    fn what_is_not_a_v1_message_is_named() {
        let e = record(PayloadKind::Event, b"{\"v\":1}").unwrap_err();
        assert!(e.starts_with("not a v1 message"), "{e}");
        let no_event = pb::OperationEvent { sequence: 1, ..Default::default() };
        assert_eq!(record(PayloadKind::Event, &no_event.encode_to_vec()).unwrap_err(), "event: required");
    }
}
