//! Records crossroled cannot read, as the API shows them: the message with what is known, and `unreadable` saying
//! why. Only one way: a client never sends them.

use crossrole_core::unreadable::{Listed, UnreadableBinding, UnreadableOperation, UnreadableResult};

use crate::{ToWire, pb, timestamp};

impl<T, U> ToWire for Listed<T, U>
where
    T: ToWire,
    U: ToWire<Wire = T::Wire>,
{
    type Wire = T::Wire;

    fn to_wire(&self) -> T::Wire {
        match self {
            Listed::Read(t) => t.to_wire(),
            Listed::Unreadable(u) => u.to_wire(),
        }
    }
}

impl ToWire for UnreadableOperation {
    type Wire = pb::Operation;

    fn to_wire(&self) -> pb::Operation {
        pb::Operation {
            id: self.id.clone(),
            kind: self.kind.map(|k| k.to_wire() as i32).unwrap_or(0),
            state: self.state.map(|s| s.to_wire() as i32).unwrap_or(0),
            spec: Some(pb::AccessSpec { name: self.spec_name.clone(), ..Default::default() }),
            binding_name: self.binding_name.clone().unwrap_or_default(),
            created_by: self.created_by.clone(),
            create_time: Some(timestamp(self.create_time)),
            start_time: self.start_time.map(timestamp),
            end_time: self.end_time.map(timestamp),
            message: self.message.clone(),
            last_sequence: self.last_sequence,
            unreadable: self.reason.clone(),
            ..Default::default()
        }
    }
}

impl ToWire for UnreadableResult {
    type Wire = pb::AccountResult;

    fn to_wire(&self) -> pb::AccountResult {
        pb::AccountResult {
            account_id: self.account_id.clone(),
            index: self.index,
            outcome: self.outcome.map(|o| o.to_wire() as i32).unwrap_or(0),
            unreadable: self.reason.clone(),
            ..Default::default()
        }
    }
}

impl ToWire for UnreadableBinding {
    type Wire = pb::Binding;

    fn to_wire(&self) -> pb::Binding {
        pb::Binding {
            name: self.name.clone(),
            version: self.version,
            create_time: Some(timestamp(self.create_time)),
            update_time: Some(timestamp(self.update_time)),
            unreadable: self.reason.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use crossrole_core::ops::{OperationKind, Outcome};

    use super::*;

    #[test]
    fn an_unreadable_record_shows_what_is_known_and_why() {
        let op = UnreadableOperation {
            id: "0190".into(),
            kind: Some(OperationKind::Apply),
            state: None,
            spec_name: "audit".into(),
            binding_name: None,
            created_by: "ci".into(),
            create_time: 1_500,
            start_time: None,
            end_time: None,
            message: String::new(),
            last_sequence: 3,
            reason: "a version 2 record".into(),
        };
        let w = Listed::<crossrole_core::ops::Operation, _>::Unreadable(op).to_wire();
        assert_eq!((w.id.as_str(), w.state, w.unreadable.as_str()), ("0190", 0, "a version 2 record"));
        assert_eq!(w.kind, pb::OperationKind::Apply as i32);
        assert_eq!(w.spec.map(|s| s.name), Some("audit".into()));
        let r =
            UnreadableResult { account_id: "1".into(), index: 2, outcome: Some(Outcome::Failed), reason: "x".into() };
        assert_eq!(r.to_wire().outcome, pb::AccountOutcome::Failed as i32);
        let b = UnreadableBinding { name: "b".into(), version: 4, create_time: 0, update_time: 0, reason: "y".into() };
        assert_eq!((b.to_wire().version, b.to_wire().unreadable), (4, "y".to_string()));
    }
}
