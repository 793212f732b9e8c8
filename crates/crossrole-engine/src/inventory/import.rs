//! A spec written from the roles of one name across the organization (`crossrole import`): the accounts where an
//! inventory found a role of that name are read again, now, through the bootstrap role (the inventory keeps no
//! policy documents, and an import is taken from what is there), and core's `import` writes the common trust and
//! permissions as a spec, listing the accounts that differ. It writes nothing to AWS and never copies an ExternalId.

use std::collections::BTreeSet;

use crossrole_aws::{calls::CallContext, reconcile::AccountIam};
use crossrole_core::{
    inventory::{Context, Import, import},
    ops::{Operation, Outcome},
};

use crate::{Engine, Error, records};

/// What an import found.
#[derive(Debug, Clone)]
pub struct ImportedRoles {
    /// The inventory that said where the roles are.
    pub operation: Operation,
    /// The spec and how each account differs from it.
    pub import: Import,
    /// Accounts where the inventory found the role but that could not be read now, with why; they are not in the
    /// spec's targets.
    pub unreadable: Vec<(String, String)>,
}

impl Engine {
    /// Writes a spec named `spec_name` from the roles named `role_name` that the inventory `operation_id` (empty:
    /// the latest finished one) found, as they are now.
    pub async fn import_roles(
        &self,
        operation_id: &str,
        role_name: &str,
        spec_name: &str,
    ) -> Result<ImportedRoles, Error> {
        if role_name.is_empty() {
            return Err(Error::Invalid(crossrole_core::Error::invalid("role_name", "required")));
        }
        let operation = self.inventory_operation(operation_id).await?;
        let accounts = self.accounts_with(&operation.id, role_name).await?;
        if accounts.is_empty() {
            return Err(Error::NotFound(format!("a role named {role_name} in inventory {}", operation.id)));
        }
        let inner = &self.inner;
        let ctx = CallContext::new();
        let tree = inner.discovery.tree(&ctx, false).await?;
        let mut context = Context::new(tree.organization.id.clone(), inner.aws.partition(), crate::now_ms() / 1000);
        context.member_account_ids = tree.account_ids();
        let session = format!("crossrole-import-{}", &operation.id[..operation.id.len().min(8)]);
        let mut roles = Vec::new();
        let mut unreadable = Vec::new();
        for account in accounts {
            let joined = tree.accounts.get(&account).and_then(|a| a.joined_at);
            let read = async {
                let credentials = inner.broker.bootstrap(&ctx, &account, joined, &session).await?;
                let iam = AccountIam {
                    iam: inner.aws.iam(&credentials),
                    account: account.clone(),
                    calls: &inner.calls,
                    ctx: &ctx,
                };
                iam.role_details().await
            };
            match read.await {
                Ok(details) => match details.into_iter().find(|d| d.name == role_name) {
                    Some(role) => roles.push(role),
                    None => unreadable.push((account, format!("no role named {role_name} there any more"))),
                },
                Err(e) => unreadable.push((account, e.to_string())),
            }
        }
        if roles.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "no role named {role_name} could be read now: {}",
                unreadable.iter().map(|(a, why)| format!("{a}: {why}")).collect::<Vec<_>>().join("; ")
            )));
        }
        let import = import(spec_name, &roles, &context)?;
        Ok(ImportedRoles { operation, import, unreadable })
    }

    /// The accounts where the inventory `id` found a role named `name`.
    async fn accounts_with(&self, id: &str, name: &str) -> Result<BTreeSet<String>, Error> {
        let read = [records::stored_outcome(Outcome::Unchanged)];
        let mut accounts = BTreeSet::new();
        let mut after = None;
        loop {
            let rows = self.journal().list_accounts(id, &read, 200, after).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.index);
            for row in rows {
                if records::inventory_roles(&row, id)?.iter().any(|r| r.name == name) {
                    accounts.insert(row.account_id);
                }
            }
        }
        Ok(accounts)
    }
}
