//! The organization: its OU tree and accounts, out to the API (and accounts back, for skipped accounts).

use std::collections::BTreeMap;

use crossrole_core::org::{AccountInfo, OrgTree};

use crate::{Error, FromWire, ToWire, enums::need, pb};

/// An account as the API shows it, with the path of its OU and its tags (`Default` when not read).
pub fn account(a: &AccountInfo, parent_path: &str, tags: BTreeMap<String, String>) -> pb::Account {
    pb::Account {
        id: a.id.clone(),
        name: a.name.clone(),
        email: a.email.clone(),
        state: a.state.to_wire() as i32,
        parent_id: a.parent_id.clone(),
        parent_path: parent_path.to_string(),
        tags: tags.into_iter().collect(),
    }
}

impl FromWire<pb::Account> for AccountInfo {
    /// The account without what the API does not carry (when it joined).
    fn from_wire(w: &pb::Account) -> Result<Self, Error> {
        Ok(AccountInfo {
            id: w.id.clone(),
            name: w.name.clone(),
            email: w.email.clone(),
            state: need("state", w.state)?,
            parent_id: w.parent_id.clone(),
            joined_at: None,
        })
    }
}

/// The OU `id` and everything under it.
fn unit(tree: &OrgTree, id: &str) -> pb::OrganizationalUnit {
    let u = &tree.units[id];
    pb::OrganizationalUnit {
        id: u.id.clone(),
        name: u.name.clone(),
        path: tree.path_of(id),
        parent_id: u.parent_id.clone().unwrap_or_default(),
        children: u.children.iter().filter(|c| tree.units.contains_key(*c)).map(|c| unit(tree, c)).collect(),
        account_ids: u.accounts.clone(),
    }
}

impl ToWire for OrgTree {
    type Wire = pb::Organization;

    fn to_wire(&self) -> pb::Organization {
        pb::Organization {
            id: self.organization.id.clone(),
            arn: self.organization.arn.clone(),
            management_account_id: self.organization.management_account_id.clone(),
            root: self.units.contains_key(&self.root_id).then(|| unit(self, &self.root_id)),
            account_count: self.accounts.len() as u32,
        }
    }
}
