//! An inventory's roles, served back page by page and filtered: by account, by who can enter ("where can this
//! principal go"), by role name, finding, severity and ownership. Read from the journal's account rows a few at a
//! time, so a page costs what it shows, not the whole organization.

use std::collections::BTreeSet;

use crossrole_core::{
    inventory::{EntrantKind, FindingKind, InventoryRole, Probe, ProbeCaller, Severity, entrant_for},
    ops::{Operation, OperationKind, OperationState, Outcome},
};
use crossrole_store::OperationFilter;

use super::INVENTORY_SPEC_NAME;
use crate::{Engine, Error, pages::Listing, records};

/// Which roles to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryQuery {
    /// The inventory to read; empty: the latest finished one.
    pub operation_id: String,
    /// Only roles in these accounts; empty for any.
    pub account_ids: BTreeSet<String>,
    /// Only roles this principal is named as able to enter (conditions aside; each role says its conditions): an
    /// account id (any principal of it), an IAM ARN, a service (`ec2.amazonaws.com`) or a federated provider's ARN.
    /// Empty for any.
    pub principal: String,
    /// Only roles of this name; empty for any.
    pub role_name: String,
    /// Only roles with a finding of this kind.
    pub finding: Option<FindingKind>,
    /// Only roles whose worst finding is at least this severe.
    pub min_severity: Option<Severity>,
    /// Only roles crossrole owns (`Some(true)`) or does not (`Some(false)`).
    pub owned: Option<bool>,
}

/// A page of an inventory's roles.
#[derive(Debug, Clone)]
pub struct InventoryPage {
    /// The inventory they come from.
    pub operation: Operation,
    /// The roles, in account order, then as IAM listed them.
    pub roles: Vec<InventoryRole>,
    /// The next page's token; empty at the end.
    pub next_page_token: String,
}

/// Account rows read at a time.
const ROWS_AT_ONCE: usize = 50;

impl InventoryQuery {
    /// Whether `role` is one the query asks for.
    pub fn selects(&self, role: &InventoryRole) -> bool {
        (self.account_ids.is_empty() || self.account_ids.contains(&role.account_id))
            && (self.role_name.is_empty() || self.role_name == role.name)
            && self.finding.is_none_or(|k| role.findings.iter().any(|f| f.kind == k))
            && self.min_severity.is_none_or(|min| role.worst().is_some_and(|w| w >= min))
            && self.owned.is_none_or(|owned| role.owner.is_some() == owned)
            && (self.principal.is_empty() || lets_in(role, &self.principal))
    }

    /// What page tokens of this query are bound to (another query's token is refused).
    fn key(&self, operation: &str) -> String {
        format!(
            "{operation}\u{0}{:?}\u{0}{}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
            self.account_ids, self.principal, self.role_name, self.finding, self.min_severity, self.owned
        )
    }
}

/// Whether `principal` is named among `role`'s entrants (an account id: any principal of that account).
fn lets_in(role: &InventoryRole, principal: &str) -> bool {
    let is_account = principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit());
    if is_account
        && role.entrants.iter().any(|e| e.kind == EntrantKind::Anyone || e.account_id.as_deref() == Some(principal))
    {
        return true;
    }
    let caller = if is_account {
        ProbeCaller::Iam { arn: format!("arn:aws:iam::{principal}:root") }
    } else if principal.ends_with(".amazonaws.com") && !principal.starts_with("arn:") {
        if principal == "cognito-identity.amazonaws.com" {
            ProbeCaller::Federated { provider: principal.to_string() }
        } else {
            ProbeCaller::Service { name: principal.to_string() }
        }
    } else if principal.contains(":saml-provider/") || principal.contains(":oidc-provider/") {
        ProbeCaller::Federated { provider: principal.to_string() }
    } else {
        ProbeCaller::Iam { arn: principal.to_string() }
    };
    entrant_for(role, &Probe::new(caller)).is_some()
}

impl Engine {
    /// The inventory `id`, or the latest finished one (succeeded or failed) when `id` is empty.
    pub async fn inventory_operation(&self, id: &str) -> Result<Operation, Error> {
        if !id.is_empty() {
            let op = self.operation(id).await?;
            if op.kind != Some(OperationKind::Inventory) {
                return Err(Error::FailedPrecondition(format!("operation {id} is not an inventory")));
            }
            return Ok(op);
        }
        let filter = OperationFilter {
            states: [OperationState::Succeeded, OperationState::Failed].map(records::stored_state).to_vec(),
            spec_name: INVENTORY_SPEC_NAME.into(),
            binding_name: String::new(),
        };
        let (rows, _) = self.journal().list_operations(&filter, 1, None).await?;
        match rows.into_iter().next() {
            Some(row) => self.operation(&row.id).await,
            None => Err(Error::NotFound("a finished inventory (start one: crossrole inventory)".into())),
        }
    }

    /// A page of at most `page_size` roles of an inventory that `query` selects, after `token` (empty: the first).
    pub async fn list_inventory(
        &self,
        query: &InventoryQuery,
        page_size: usize,
        token: &str,
    ) -> Result<InventoryPage, Error> {
        let page_size = page_size.max(1);
        let operation = self.inventory_operation(&query.operation_id).await?;
        let key = query.key(&operation.id);
        // A token is (account index, roles of it already given), for this inventory and query only.
        let (mut index, mut skip) = match self.pages().read(Listing::Inventory(&key), token)? {
            None => (0u32, 0usize),
            Some(position) => {
                let parsed = position.split_once(':').and_then(|(i, s)| Some((i.parse().ok()?, s.parse().ok()?)));
                parsed.ok_or_else(|| Error::Corrupt("an inventory page token of ours does not read".into()))?
            }
        };
        let mut roles = Vec::new();
        let read = [records::stored_outcome(Outcome::Unchanged)];
        loop {
            let rows = self.journal().list_accounts(&operation.id, &read, ROWS_AT_ONCE, index.checked_sub(1)).await?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                if row.index > index {
                    // The account the token named is gone from the read ones: start at the next one's first role.
                    skip = 0;
                }
                if !query.account_ids.is_empty() && !query.account_ids.contains(&row.account_id) {
                    (index, skip) = (row.index + 1, 0);
                    continue;
                }
                let all = records::inventory_roles(&row, &operation.id)?;
                for (n, role) in all.into_iter().enumerate().skip(skip) {
                    if !query.selects(&role) {
                        continue;
                    }
                    if roles.len() == page_size {
                        let next = self.pages().issue(Listing::Inventory(&key), &format!("{}:{n}", row.index));
                        return Ok(InventoryPage { operation, roles, next_page_token: next });
                    }
                    roles.push(role);
                }
                (index, skip) = (row.index + 1, 0);
            }
        }
        Ok(InventoryPage { operation, roles, next_page_token: String::new() })
    }
}
