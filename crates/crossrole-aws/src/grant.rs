//! The trusted side in IAM: read the AssumeRole policy and its attachments, apply grant changes.
//!
//! Like role changes, grant changes survive lost responses: `CreatePolicy` and `CreatePolicyVersion` are checked
//! for their own effect before a retry (the policy there, tagged as this spec's, with this document as its default
//! version), IAM's limit of five versions is made room for when a stale read or a lost response left it full, and
//! a removal that finds nothing to remove has reached its goal.

use std::collections::BTreeMap;

use crossrole_core::{
    grant::{GrantChange, ObservedGrant},
    policy::PolicyDocument,
    spec::owner_of,
};

use crate::{
    error::{AwsError, Error, ErrorKind},
    reconcile::AccountIam,
};

impl AccountIam<'_> {
    /// Reads the grant policy at `arn`; `None` when it does not exist.
    pub async fn read_grant(&self, arn: &str) -> Result<Option<ObservedGrant>, Error> {
        let policy = match self.call("GetPolicy", || self.iam.get_policy(arn)).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let versions = self.call("ListPolicyVersions", || self.iam.list_policy_versions(arn)).await?;
        let document =
            self.call("GetPolicyVersion", || self.iam.get_policy_version(arn, &policy.default_version_id)).await?;
        let attachments = self.pages("ListEntitiesForPolicy", |m| self.iam.list_entities_for_policy(arn, m)).await?;
        Ok(Some(ObservedGrant {
            policy_arn: arn.to_string(),
            tags: policy.tags,
            default_document: document,
            versions,
            attachments: attachments.into_iter().collect(),
        }))
    }

    /// Whether the policy at `arn` has `document` as its default version (and, with `tags`, carries this spec's
    /// ownership tags): the effect of a create whose response was lost.
    async fn has_document(
        &self,
        arn: &str,
        document: &str,
        tags: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<()>, AwsError> {
        let policy = match self.call("GetPolicy", || self.iam.get_policy(arn)).await {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(tags) = tags {
            let ours = owner_of(&policy.tags).is_some_and(|o| Some(o) == owner_of(tags));
            if !ours {
                return Ok(None);
            }
        }
        let current =
            self.call("GetPolicyVersion", || self.iam.get_policy_version(arn, &policy.default_version_id)).await?;
        let same = match (PolicyDocument::parse_observed(&current), PolicyDocument::parse_observed(document)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        Ok(same.then_some(()))
    }

    /// Writes `document` as the new default version, making room under IAM's limit of five versions if needed.
    async fn new_version(&self, arn: &str, document: &str) -> Result<(), AwsError> {
        let create = || {
            self.calls.call_write(
                self.ctx,
                self.quota(),
                "CreatePolicyVersion",
                || self.iam.create_policy_version(arn, document),
                || self.has_document(arn, document, None),
            )
        };
        match create().await {
            Err(e) if e.code.as_deref() == Some("LimitExceeded") => {
                let versions = self.call("ListPolicyVersions", || self.iam.list_policy_versions(arn)).await?;
                if let Some(oldest) = crossrole_core::grant::oldest_deletable(&versions) {
                    self.delete_version(arn, &oldest).await?;
                }
                create().await
            }
            other => other,
        }
    }

    async fn delete_version(&self, arn: &str, version: &str) -> Result<(), AwsError> {
        match self.call("DeletePolicyVersion", || self.iam.delete_policy_version(arn, version)).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Applies grant changes in order, calling `applied` after each.
    pub async fn apply_grant(
        &self,
        arn: &str,
        changes: &[GrantChange],
        mut applied: impl FnMut(&GrantChange),
    ) -> Result<(), Error> {
        for change in changes {
            match change {
                GrantChange::CreatePolicy { name, path, document, tags } => {
                    let created = self
                        .calls
                        .call_write(
                            self.ctx,
                            self.quota(),
                            "CreatePolicy",
                            || self.iam.create_policy(name, path, document, tags),
                            || self.has_document(arn, document, Some(tags)),
                        )
                        .await;
                    match created {
                        Ok(()) => {}
                        Err(e)
                            if e.kind == ErrorKind::AlreadyExists
                                && self.has_document(arn, document, Some(tags)).await? == Some(()) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                GrantChange::UpdatePolicy { after, delete_version, .. } => {
                    if let Some(v) = delete_version {
                        self.delete_version(arn, v).await?;
                    }
                    self.new_version(arn, after).await?;
                }
                GrantChange::Attach { kind, name } => {
                    let op = format!("Attach{}Policy", capitalized(kind.as_str()));
                    self.call(&op, || self.iam.attach_principal_policy(*kind, name, arn)).await?;
                }
                GrantChange::Detach { kind, name } => {
                    let op = format!("Detach{}Policy", capitalized(kind.as_str()));
                    match self.call(&op, || self.iam.detach_principal_policy(*kind, name, arn)).await {
                        // Already gone (a retry after a lost response, or the principal was deleted): done.
                        Err(e) if e.is_not_found() => {}
                        other => other?,
                    }
                }
                GrantChange::DeletePolicy { versions } => {
                    for v in versions {
                        self.delete_version(arn, v).await?;
                    }
                    match self.call("DeletePolicy", || self.iam.delete_policy(arn)).await {
                        Err(e) if e.is_not_found() => {}
                        other => other?,
                    }
                }
            }
            applied(change);
        }
        Ok(())
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}
