//! The inventory's read of one account: every role, with its trust policy, policies, boundary, tags and last use,
//! from `GetAccountAuthorizationDetails` (roles only), page by page through the call layer. It writes nothing.
//!
//! One call lists up to [`MAX_ITEMS`] roles with everything the inventory needs, where reading them one by one
//! would cost `ListRoles` and then, per role, `ListAttachedRolePolicies`, `ListRolePolicies` and a `GetRolePolicy`
//! per inline policy: at IAM's per-account rate, an account of 50 roles takes one call instead of some 150.

use crossrole_core::inventory::RoleDetail;

use crate::{error::Error, reconcile::AccountIam};

/// IAM's largest `MaxItems` for `GetAccountAuthorizationDetails`: the fewest calls per account.
pub const MAX_ITEMS: u32 = 1000;

impl AccountIam<'_> {
    /// Every role of the account, as IAM lists them (documents URL-encoded, as returned).
    pub async fn role_details(&self) -> Result<Vec<RoleDetail>, Error> {
        let roles = self
            .pages("GetAccountAuthorizationDetails", |marker| {
                self.iam.get_account_authorization_details_roles(marker, MAX_ITEMS)
            })
            .await?;
        Ok(roles)
    }
}
