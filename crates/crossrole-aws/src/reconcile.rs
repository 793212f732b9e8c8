//! IAM reconcile in one account: read the observed role, apply planned changes in order.
//!
//! Reading costs `GetRole` (which carries the tags), `ListAttachedRolePolicies`, `ListRolePolicies` and one
//! `GetRolePolicy` per inline policy; a missing role costs only `GetRole`. Applying makes exactly one call per
//! change, except that a description and a session-duration change share one `UpdateRole`.
//!
//! Applying survives lost responses: every change is idempotent or made so. `CreateRole` is checked for its own
//! effect before a retry and on `EntityAlreadyExists` (the role there, with this spec's tags and trust policy, is
//! the one it created; any other role there is not, and the create fails with `EntityAlreadyExists`, having done
//! nothing); a removal that finds nothing to remove has reached its goal.

use std::sync::Arc;

use crossrole_core::{
    ops::Millis,
    plan::{Change, ObservedRole, RoleAttributes},
    policy::PolicyDocument,
    spec::owner_of,
};
use futures::{StreamExt, TryStreamExt, future::BoxFuture, stream};

use crate::{
    api::{IamApi, Page},
    calls::{CallContext, CallPolicy, Quota},
    error::{AwsError, Error},
};

/// IAM in one account, through the call layer.
pub struct AccountIam<'a> {
    /// The account's IAM.
    pub iam: Arc<dyn IamApi>,
    /// The account (its IAM quota is the one these calls count against).
    pub account: String,
    /// The call layer.
    pub calls: &'a CallPolicy,
    /// The operation's call context.
    pub ctx: &'a CallContext,
}

impl AccountIam<'_> {
    pub(crate) async fn call<T, F, Fut>(&self, operation: &str, f: F) -> Result<T, AwsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, AwsError>>,
    {
        self.calls.call(self.ctx, self.quota(), operation, f).await
    }

    /// The quota these calls count against: the account's IAM.
    pub(crate) fn quota(&self) -> Quota {
        Quota::Iam(self.account.clone())
    }

    pub(crate) async fn pages<T, F, Fut>(&self, operation: &str, mut page: F) -> Result<Vec<T>, AwsError>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Page<T>, AwsError>>,
    {
        let mut items = Vec::new();
        let mut marker = None;
        loop {
            let p = self.call(operation, || page(marker.clone())).await?;
            items.extend(p.items);
            match p.next_token {
                Some(m) if !m.is_empty() => marker = Some(m),
                _ => return Ok(items),
            }
        }
    }

    /// Whether role `name` is there and whose, asked with patience: throttling and transient failures (an IAM
    /// outage) are waited out until `until`, beyond the call layer's usual attempts. For judging an account whose
    /// write may have landed while IAM was failing.
    pub async fn find_role(
        &self,
        name: &str,
        until: tokio::time::Instant,
    ) -> Result<Option<crate::api::RoleRecord>, Error> {
        let patience = crate::calls::Patience {
            kinds: &[crate::ErrorKind::Transient, crate::ErrorKind::Throttling],
            until,
            base: std::time::Duration::from_millis(500),
            cap: std::time::Duration::from_secs(10),
        };
        match self.calls.call_patient(self.ctx, self.quota(), "GetRole", patience, || self.iam.get_role(name)).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Role `name` as `GetRole` returns it (its attributes and tags, no policies: one call); `None` when it does
    /// not exist.
    pub async fn role_record(&self, name: &str) -> Result<Option<crate::api::RoleRecord>, Error> {
        match self.call("GetRole", || self.iam.get_role(name)).await {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Inline policy `policy` of role `role` as `GetRolePolicy` returns it (URL-encoded: one call); `None` when the
    /// role has none of that name.
    pub async fn inline_policy(&self, role: &str, policy: &str) -> Result<Option<String>, Error> {
        match self.call("GetRolePolicy", || self.iam.get_role_policy(role, policy)).await {
            Ok(doc) => Ok(Some(doc)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads role `name`; `None` when it does not exist.
    pub async fn read_role(&self, name: &str) -> Result<Option<ObservedRole>, Error> {
        // GetRole first: a role that is not there (every account, the first time) costs one call, not three. The
        // two listings then go together.
        let role = match self.call("GetRole", || self.iam.get_role(name)).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let (managed, inline_names) = futures::try_join!(
            self.pages("ListAttachedRolePolicies", |m| self.iam.list_attached_role_policies(name, m)),
            self.pages("ListRolePolicies", |m| self.iam.list_role_policies(name, m)),
        )?;
        let inline: Vec<(String, String)> = stream::iter(inline_names)
            .map(|policy| async move {
                let doc = self.call("GetRolePolicy", || self.iam.get_role_policy(name, &policy)).await?;
                Ok::<_, AwsError>((policy, doc))
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        Ok(Some(ObservedRole {
            arn: role.arn,
            role_id: role.role_id,
            attributes: role.attributes,
            managed_policy_arns: managed.into_iter().collect(),
            inline_policies: inline.into_iter().collect(),
        }))
    }

    /// Whether the role `input` would create is there already, as this spec made it: its ownership tags and its
    /// trust policy. That is how a create whose response was lost is recognized.
    async fn created(&self, input: &RoleAttributes) -> Result<Option<()>, AwsError> {
        let role = match self.call("GetRole", || self.iam.get_role(&input.name)).await {
            Ok(r) => r.attributes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let ours = owner_of(&role.tags).is_some_and(|o| Some(o) == owner_of(&input.tags));
        let same_trust = match (
            PolicyDocument::parse_observed(&role.trust_policy),
            PolicyDocument::parse_observed(&input.trust_policy),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        Ok((ours && same_trust && role.path == input.path).then_some(()))
    }

    /// A removal: `NoSuchEntity` means the goal is reached (a retry after a lost response, or removed meanwhile).
    async fn remove<F, Fut>(&self, operation: &str, f: F) -> Result<(), AwsError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), AwsError>>,
    {
        match self.call(operation, f).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Applies `changes` to role `role` in order: `before` is awaited before each change is sent (the engine
    /// records it as in flight), `applied` is called after. On failure, the changes before it are applied and the
    /// error says which call failed. `stop` is asked before each change; when it says so, the changes so far stay
    /// applied and the result is [`Error::Cancelled`].
    ///
    /// A `CreateRole` that finds a role there that it did not make (one made since the role was read) fails with
    /// `EntityAlreadyExists` and nothing after it is sent: the caller reads the role and plans from what it finds.
    ///
    /// A revocation is written at the instant it was planned with; [`AccountIam::apply_at`] takes it when written.
    pub async fn apply(
        &self,
        role: &str,
        changes: &[Change],
        stop: impl Fn() -> bool,
        before: impl FnMut(&Change) -> BoxFuture<'static, ()>,
        applied: impl FnMut(&Change),
    ) -> Result<(), Error> {
        self.applied_at(role, changes, None, stop, before, applied).await
    }

    /// [`AccountIam::apply`], with each revocation's instant taken from `now` (Unix ms) at the moment its deny is
    /// sent, after the changes before it (a narrowed trust) are written: a session issued between the plan and the
    /// write is denied too. Never earlier than planned ([`crossrole_core::revocation::Revocation::written_at`]).
    pub async fn apply_at(
        &self,
        role: &str,
        changes: &[Change],
        now: impl Fn() -> Millis + Sync,
        stop: impl Fn() -> bool,
        before: impl FnMut(&Change) -> BoxFuture<'static, ()>,
        applied: impl FnMut(&Change),
    ) -> Result<(), Error> {
        self.applied_at(role, changes, Some(&now), stop, before, applied).await
    }

    async fn applied_at(
        &self,
        role: &str,
        changes: &[Change],
        now: Option<&(dyn Fn() -> Millis + Sync)>,
        stop: impl Fn() -> bool,
        mut before: impl FnMut(&Change) -> BoxFuture<'static, ()>,
        mut applied: impl FnMut(&Change),
    ) -> Result<(), Error> {
        let mut description_done = false;
        for (i, change) in changes.iter().enumerate() {
            if stop() {
                return Err(Error::Cancelled);
            }
            before(change).await;
            match change {
                Change::CreateRole(input) => {
                    let created = self
                        .calls
                        .call_write(
                            self.ctx,
                            self.quota(),
                            "CreateRole",
                            || self.iam.create_role(input),
                            || self.created(input),
                        )
                        .await;
                    match created {
                        Ok(()) => {}
                        Err(e)
                            if e.kind == crate::ErrorKind::AlreadyExists && self.created(input).await? == Some(()) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Change::UpdateTrustPolicy { after, .. } => {
                    self.call("UpdateAssumeRolePolicy", || self.iam.update_assume_role_policy(role, after)).await?;
                }
                Change::UpdateMaxSessionDuration { after, .. } => {
                    // One UpdateRole carries a later description change too.
                    let description = changes[i..].iter().find_map(|c| match c {
                        Change::UpdateDescription { after, .. } => Some(after.as_str()),
                        _ => None,
                    });
                    self.call("UpdateRole", || self.iam.update_role(role, description, Some(*after))).await?;
                    description_done = description.is_some();
                }
                Change::UpdateDescription { after, .. } => {
                    if !description_done {
                        self.call("UpdateRole", || self.iam.update_role(role, Some(after), None)).await?;
                    }
                }
                Change::PutPermissionsBoundary { after, .. } => {
                    self.call("PutRolePermissionsBoundary", || self.iam.put_role_permissions_boundary(role, after))
                        .await?;
                }
                Change::DeletePermissionsBoundary { .. } => {
                    self.remove("DeleteRolePermissionsBoundary", || self.iam.delete_role_permissions_boundary(role))
                        .await?;
                }
                Change::AttachManagedPolicy { arn } => {
                    self.call("AttachRolePolicy", || self.iam.attach_role_policy(role, arn)).await?;
                }
                Change::DetachManagedPolicy { arn } => {
                    self.remove("DetachRolePolicy", || self.iam.detach_role_policy(role, arn)).await?;
                }
                Change::PutInlinePolicy { name, after, .. } => {
                    self.call("PutRolePolicy", || self.iam.put_role_policy(role, name, after)).await?;
                }
                Change::DeleteInlinePolicy { name, .. } => {
                    self.remove("DeleteRolePolicy", || self.iam.delete_role_policy(role, name)).await?;
                }
                Change::RevokeSessions { revocation, keep_for, others, .. } => {
                    let revocation = now.map_or(*revocation, |now| revocation.written_at(now(), *keep_for));
                    // The statements a person put in the policy are written again as they were read.
                    let document = revocation.document_keeping(others);
                    let name = crossrole_core::revocation::POLICY_NAME;
                    self.call("PutRolePolicy", || self.iam.put_role_policy(role, name, &document)).await?;
                }
                // Said in the plan and the record; nothing to write.
                Change::SessionsNotRevoked { .. } => {}
                Change::TagRole { tags, .. } => {
                    self.call("TagRole", || self.iam.tag_role(role, tags)).await?;
                }
                Change::UntagRole { before } => {
                    let keys: Vec<String> = before.keys().cloned().collect();
                    self.call("UntagRole", || self.iam.untag_role(role, &keys)).await?;
                }
                Change::DeleteRole { .. } => {
                    self.remove("DeleteRole", || self.iam.delete_role(role)).await?;
                }
            }
            applied(change);
        }
        Ok(())
    }
}
