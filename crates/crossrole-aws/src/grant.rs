//! The trusted side in IAM: read the AssumeRole policy and its attachments, apply grant changes.

use crossrole_core::grant::{GrantChange, ObservedGrant};

use crate::{
    error::{AwsError, Error},
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
                    self.call("CreatePolicy", || self.iam.create_policy(name, path, document, tags)).await?;
                }
                GrantChange::UpdatePolicy { after, delete_version, .. } => {
                    if let Some(v) = delete_version {
                        self.call("DeletePolicyVersion", || self.iam.delete_policy_version(arn, v)).await?;
                    }
                    self.call("CreatePolicyVersion", || self.iam.create_policy_version(arn, after)).await?;
                }
                GrantChange::Attach { kind, name } => {
                    let op = format!("Attach{}Policy", capitalized(kind.as_str()));
                    self.call(&op, || self.iam.attach_principal_policy(*kind, name, arn)).await?;
                }
                GrantChange::Detach { kind, name } => {
                    let op = format!("Detach{}Policy", capitalized(kind.as_str()));
                    match self.call(&op, || self.iam.detach_principal_policy(*kind, name, arn)).await {
                        // Already gone (the principal was deleted): the goal is reached.
                        Err(e) if e.is_not_found() => {}
                        other => other?,
                    }
                }
                GrantChange::DeletePolicy { versions } => {
                    for v in versions {
                        let r: Result<(), AwsError> =
                            self.call("DeletePolicyVersion", || self.iam.delete_policy_version(arn, v)).await;
                        match r {
                            Err(e) if e.is_not_found() => {}
                            other => other?,
                        }
                    }
                    self.call("DeletePolicy", || self.iam.delete_policy(arn)).await?;
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
