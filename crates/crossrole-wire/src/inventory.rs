//! The inventory: its roles (who can enter, under which conditions, findings) and an import's result, both ways.

use std::collections::BTreeMap;

use crossrole_core::inventory::{AccountDifference, Aspect, Entrant, Finding, Guards, Import, InventoryRole, LastUsed};

use crate::{
    Error, FromWire, ToWire,
    enums::{need, number},
    millis, pb, timestamp,
};

impl ToWire for InventoryRole {
    type Wire = pb::InventoryRole;

    fn to_wire(&self) -> pb::InventoryRole {
        pb::InventoryRole {
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            path: self.path.clone(),
            arn: self.arn.clone(),
            create_time: self.created.map(|s| timestamp(s.saturating_mul(1000))),
            last_used_time: self.last_used.as_ref().map(|u| timestamp(u.at.saturating_mul(1000))),
            last_used_region: self.last_used.as_ref().and_then(|u| u.region.clone()).unwrap_or_default(),
            managed_policy_arns: self.managed_policy_arns.iter().cloned().collect(),
            inline_policy_names: self.inline_policy_names.iter().cloned().collect(),
            permissions_boundary_arn: self.permissions_boundary_arn.clone().unwrap_or_default(),
            owner: self.owner.clone().unwrap_or_default(),
            trust_policy: self.trust_policy.clone(),
            entrants: self.entrants.iter().map(ToWire::to_wire).collect(),
            findings: self.findings.iter().map(ToWire::to_wire).collect(),
        }
    }
}

impl FromWire<pb::InventoryRole> for InventoryRole {
    fn from_wire(w: &pb::InventoryRole) -> Result<Self, Error> {
        let some = |s: &String| (!s.is_empty()).then(|| s.clone());
        Ok(InventoryRole {
            account_id: w.account_id.clone(),
            name: w.name.clone(),
            path: w.path.clone(),
            arn: w.arn.clone(),
            created: w.create_time.as_ref().map(|t| millis(t).div_euclid(1000)),
            last_used: w
                .last_used_time
                .as_ref()
                .map(|t| LastUsed { at: millis(t).div_euclid(1000), region: some(&w.last_used_region) }),
            managed_policy_arns: w.managed_policy_arns.iter().cloned().collect(),
            inline_policy_names: w.inline_policy_names.iter().cloned().collect(),
            permissions_boundary_arn: some(&w.permissions_boundary_arn),
            owner: some(&w.owner),
            trust_policy: w.trust_policy.clone(),
            entrants: w
                .entrants
                .iter()
                .enumerate()
                .map(|(i, e)| Entrant::from_wire(e).map_err(|e| e.under(&format!("entrants[{i}]"))))
                .collect::<Result<_, _>>()?,
            findings: w
                .findings
                .iter()
                .enumerate()
                .map(|(i, f)| Finding::from_wire(f).map_err(|e| e.under(&format!("findings[{i}]"))))
                .collect::<Result<_, _>>()?,
        })
    }
}

impl ToWire for Entrant {
    type Wire = pb::Entrant;

    fn to_wire(&self) -> pb::Entrant {
        pb::Entrant {
            kind: number(self.kind),
            principal: self.principal.clone(),
            account_id: self.account_id.clone().unwrap_or_default(),
            whole_account: self.whole_account,
            actions: self.actions.iter().cloned().collect(),
            conditions: Some(self.conditions.to_wire()),
        }
    }
}

impl FromWire<pb::Entrant> for Entrant {
    fn from_wire(w: &pb::Entrant) -> Result<Self, Error> {
        Ok(Entrant {
            kind: need("kind", w.kind)?,
            principal: w.principal.clone(),
            account_id: (!w.account_id.is_empty()).then(|| w.account_id.clone()),
            whole_account: w.whole_account,
            actions: w.actions.iter().cloned().collect(),
            conditions: w.conditions.as_ref().map(Guards::from_wire).transpose()?.unwrap_or_default(),
        })
    }
}

impl ToWire for Guards {
    type Wire = pb::EntrantConditions;

    fn to_wire(&self) -> pb::EntrantConditions {
        pb::EntrantConditions {
            external_id: self.external_id,
            mfa: self.mfa,
            organization: self
                .organization
                .iter()
                .map(|(key, values)| pb::OrganizationCondition {
                    key: key.clone(),
                    values: values.iter().cloned().collect(),
                })
                .collect(),
            source_identity: self.source_identity,
            principal_arns: self.principal_arns.iter().cloned().collect(),
            other_keys: self.other_keys.iter().cloned().collect(),
        }
    }
}

impl FromWire<pb::EntrantConditions> for Guards {
    fn from_wire(w: &pb::EntrantConditions) -> Result<Self, Error> {
        let mut organization = BTreeMap::new();
        for (i, c) in w.organization.iter().enumerate() {
            if c.key.is_empty() {
                return Err(Error::missing(&format!("organization[{i}].key")));
            }
            organization.insert(c.key.clone(), c.values.iter().cloned().collect());
        }
        Ok(Guards {
            external_id: w.external_id,
            mfa: w.mfa,
            organization,
            source_identity: w.source_identity,
            principal_arns: w.principal_arns.iter().cloned().collect(),
            other_keys: w.other_keys.iter().cloned().collect(),
        })
    }
}

impl ToWire for Finding {
    type Wire = pb::InventoryFinding;

    fn to_wire(&self) -> pb::InventoryFinding {
        pb::InventoryFinding { kind: number(self.kind), severity: number(self.severity), reason: self.reason.clone() }
    }
}

impl FromWire<pb::InventoryFinding> for Finding {
    fn from_wire(w: &pb::InventoryFinding) -> Result<Self, Error> {
        Ok(Finding { kind: need("kind", w.kind)?, severity: need("severity", w.severity)?, reason: w.reason.clone() })
    }
}

/// An aspect's name in the API (`trust`, `managed`, `inline`, `boundary`, `path`).
fn aspect_name(a: Aspect) -> &'static str {
    match a {
        Aspect::Trust => "trust",
        Aspect::Managed => "managed",
        Aspect::Inline => "inline",
        Aspect::Boundary => "boundary",
        Aspect::Path => "path",
    }
}

impl ToWire for AccountDifference {
    type Wire = pb::ImportDifference;

    fn to_wire(&self) -> pb::ImportDifference {
        pb::ImportDifference {
            account_id: self.account_id.clone(),
            aspect: aspect_name(self.aspect).into(),
            detail: self.detail.clone(),
        }
    }
}

impl FromWire<pb::ImportDifference> for AccountDifference {
    fn from_wire(w: &pb::ImportDifference) -> Result<Self, Error> {
        let aspect = [Aspect::Trust, Aspect::Managed, Aspect::Inline, Aspect::Boundary, Aspect::Path]
            .into_iter()
            .find(|a| aspect_name(*a) == w.aspect)
            .ok_or_else(|| Error::new("aspect", format!("{:?} is not an aspect this version knows", w.aspect)))?;
        Ok(AccountDifference { account_id: w.account_id.clone(), aspect, detail: w.detail.clone() })
    }
}

impl ToWire for Import {
    type Wire = pb::ImportRolesResponse;

    /// The import's spec and differences; `unreadable` and `operation_id` are the caller's to fill in.
    fn to_wire(&self) -> pb::ImportRolesResponse {
        pb::ImportRolesResponse {
            spec_yaml: self.spec_yaml.clone(),
            account_ids: self.accounts.clone(),
            differences: self.differences.iter().map(ToWire::to_wire).collect(),
            not_expressible: self.not_expressible.clone(),
            notes: self.notes.clone(),
            unreadable: Vec::new(),
            operation_id: String::new(),
        }
    }
}

impl FromWire<pb::ImportRolesResponse> for Import {
    fn from_wire(w: &pb::ImportRolesResponse) -> Result<Self, Error> {
        Ok(Import {
            spec_yaml: w.spec_yaml.clone(),
            accounts: w.account_ids.clone(),
            differences: w
                .differences
                .iter()
                .enumerate()
                .map(|(i, d)| AccountDifference::from_wire(d).map_err(|e| e.under(&format!("differences[{i}]"))))
                .collect::<Result<_, _>>()?,
            not_expressible: w.not_expressible.clone(),
            notes: w.notes.clone(),
        })
    }
}
