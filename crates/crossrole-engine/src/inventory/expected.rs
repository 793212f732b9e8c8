//! What crossrole expects of the roles it owns, for the inventory's drift finding: each binding's spec (a spec
//! kept true over time) and the accounts where the journal has it placed. Read once per inventory run; the roles
//! expected of one account are made when that account is classified, so no document of the whole organization is
//! held at once — only each binding's spec and its placements.

use std::collections::{BTreeMap, BTreeSet};

use crossrole_core::{AccessSpec, Partition, inventory::ExpectedRole, names::Place, plan::DesiredRole};

use crate::{Error, Inner, records, records::BindingRecord, secrets};

/// Each binding's desired role and where it is placed.
pub(super) struct Expected {
    specs: Vec<(DesiredRole, BTreeSet<String>)>,
}

impl Expected {
    /// Every binding whose spec this crossroled reads, with its placements; a binding it cannot read is left out
    /// (its roles are then classified without a drift check), and said once in the log.
    pub(super) async fn load(inner: &Inner) -> Result<Expected, Error> {
        let mut specs = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let rows = inner.journal.list_bindings(200, after.as_deref()).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.name.clone());
            for row in rows {
                let what = format!("binding {}", row.name);
                let spec = records::decode::<BindingRecord>(&row.binding, &what)
                    .and_then(|r| {
                        secrets::opened(&r.spec, &inner.config.journal_key, &format!("binding:{}", row.name), &what)
                    })
                    .and_then(|raw| Ok(AccessSpec::try_from(&raw)?));
                match spec {
                    Ok(spec) => {
                        let placed = inner.journal.placements(&spec.name).await?.into_iter().collect();
                        specs.push((DesiredRole::from_spec(&spec, inner.aws.partition()), placed));
                    }
                    Err(e) => {
                        tracing::warn!(binding = row.name, error = %e, "the inventory checks no drift for a binding it cannot read")
                    }
                }
            }
        }
        Ok(Expected { specs })
    }

    /// The roles crossrole expects in `account`, by (account id, role name).
    pub(super) fn for_account(
        &self,
        partition: Partition,
        account_id: &str,
        account_name: &str,
    ) -> BTreeMap<(String, String), ExpectedRole> {
        let place = Place { partition, account_id, account_name };
        self.specs
            .iter()
            .filter(|(_, placed)| placed.contains(account_id))
            .map(|(desired, _)| {
                let desired = desired.in_account(place);
                ((account_id.to_string(), desired.name.clone()), ExpectedRole::from_desired(&desired))
            })
            .collect()
    }
}
