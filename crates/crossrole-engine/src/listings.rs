//! The engine's paged listings: operations, and an operation's account results. Each checks its page token before
//! the journal is asked ([`crate::pages`]), and shows a record it cannot read — damaged, a version newer than this
//! crossroled, sealed with another key — with what its columns say and why ([`Listed::Unreadable`]), so that one
//! such record never breaks the listing.

use crossrole_core::{
    ops::Outcome,
    unreadable::{Listed, ListedOperation, ListedResult, UnreadableOperation, UnreadableResult},
};
use crossrole_store::{AccountRow, OperationFilter, OperationRow};

use crate::{Engine, Error, ListFilter, pages::Listing, records, rollout};

impl Engine {
    /// Operations, newest first, a page after `token` (empty: the first); the next page's token, empty at the end.
    pub async fn list_operations(
        &self,
        filter: &ListFilter,
        page_size: usize,
        token: &str,
    ) -> Result<(Vec<ListedOperation>, String), Error> {
        let before = self.pages().read_number::<i64>(Listing::Operations, token)?;
        let filter = OperationFilter {
            states: filter.states.iter().map(|s| records::stored_state(*s)).collect(),
            spec_name: filter.spec_name.clone(),
            binding_name: filter.binding_name.clone(),
        };
        let (rows, next) = self.journal().list_operations(&filter, page_size, before).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let counts = rollout::counts(&self.inner, &row.id).await;
            out.push(match self.shown(row.clone(), counts) {
                Ok(op) => Listed::Read(op),
                Err(Error::Corrupt(reason)) => {
                    tracing::warn!(operation = row.id, %reason, "an operation in a listing cannot be read");
                    Listed::Unreadable(unreadable_operation(row, reason))
                }
                Err(other) => return Err(other),
            });
        }
        let next = next.map(|n| self.pages().issue(Listing::Operations, &n.to_string())).unwrap_or_default();
        Ok((out, next))
    }

    /// An operation's account results in target order, a page after `token` (empty: the first); the next page's
    /// token, empty at the end.
    pub async fn account_results(
        &self,
        id: &str,
        outcomes: &[Outcome],
        page_size: usize,
        token: &str,
    ) -> Result<(Vec<ListedResult>, String), Error> {
        let listing = Listing::AccountResults(id);
        let after = self.pages().read_number::<u32>(listing, token)?;
        if self.journal().get_operation(id).await?.is_none() {
            return Err(Error::NotFound(format!("operation {id}")));
        }
        let outcomes: Vec<_> = outcomes.iter().map(|o| records::stored_outcome(*o)).collect();
        let mut rows = self.journal().list_accounts(id, &outcomes, page_size + 1, after).await?;
        let next = if rows.len() > page_size {
            rows.truncate(page_size);
            rows.last().map(|r| self.pages().issue(listing, &r.index.to_string())).unwrap_or_default()
        } else {
            String::new()
        };
        let results = rows.into_iter().map(|row| listed_result(row, id)).collect();
        Ok((results, next))
    }
}

/// What the columns of an operation whose record cannot be read say.
fn unreadable_operation(row: OperationRow, reason: String) -> UnreadableOperation {
    UnreadableOperation {
        kind: records::kind_of(row.kind),
        state: records::state_of(row.state),
        spec_name: row.spec_name,
        binding_name: row.binding_name,
        created_by: row.created_by,
        create_time: row.create_time,
        start_time: row.start_time,
        end_time: row.end_time,
        message: row.message,
        last_sequence: row.last_sequence,
        id: row.id,
        reason,
    }
}

/// An account's result, or what its row says and why the rest cannot be read.
fn listed_result(row: AccountRow, operation: &str) -> ListedResult {
    match records::account_result(&row, operation) {
        Ok(result) => Listed::Read(result),
        Err(e) => {
            let reason = e.to_string();
            tracing::warn!(operation, account = row.account_id, %reason, "an account result cannot be read");
            Listed::Unreadable(UnreadableResult {
                outcome: records::outcome_of(row.outcome),
                account_id: row.account_id,
                index: row.index,
                reason,
            })
        }
    }
}
