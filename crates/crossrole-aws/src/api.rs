//! The narrow traits crossrole needs from AWS, one method per API call, speaking crossrole's types.
//!
//! Implementations make exactly one request per call and never retry: the call layer ([`crate::calls`]) is the
//! only place that rate-limits and retries. `sdk` wraps the AWS SDK for Rust; `fake` is an in-memory AWS.

use std::{collections::BTreeMap, fmt, sync::Arc, time::SystemTime};

use async_trait::async_trait;
use crossrole_core::{
    Partition, inventory::RoleDetail, org::AccountInfo, org::OrganizationInfo, plan::RoleAttributes,
    secret::ExternalId, spec::PrincipalKind,
};

use crate::error::AwsError;

/// A page of results and the token for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Next token; `None` on the last page. A page may be empty and still have a next token.
    pub next_token: Option<String>,
}

/// Temporary credentials. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The AWS access key id (`ASIA…` for temporary credentials).
    pub access_key_id: String,
    /// The secret that signs requests; never logged or returned.
    pub secret_access_key: String,
    /// The session token of temporary credentials; never logged or returned.
    pub session_token: String,
    /// When they expire.
    pub expiration: SystemTime,
    /// The account they act in.
    pub account_id: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expiration", &self.expiration)
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// An AssumeRole request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRoleRequest {
    /// The role to assume.
    pub role_arn: String,
    /// Session name (`[\w+=,.@-]{2,64}`).
    pub session_name: String,
    /// ExternalId, if the role wants one.
    pub external_id: Option<ExternalId>,
    /// Session duration in seconds (900–43200).
    pub duration_seconds: u32,
}

/// `GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// The account the credentials act in.
    pub account: String,
    /// The identity's ARN (an assumed-role session, user or root).
    pub arn: String,
}

/// An OU as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuRecord {
    /// The unit's id (`ou-…`).
    pub id: String,
    /// Its display name, not unique among siblings in AWS.
    pub name: String,
}

/// A role as `GetRole` returns it (tags included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    /// The role's ARN.
    pub arn: String,
    /// IAM's unique id of the role (`RoleId`, `AROA…`): a role deleted and made again under the same name gets
    /// another one.
    pub role_id: String,
    /// Its name, path, description, session duration, trust policy (as returned: URL-encoded), boundary and tags.
    pub attributes: RoleAttributes,
}

/// A managed policy as `GetPolicy` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRecord {
    /// The policy's ARN.
    pub arn: String,
    /// The version IAM enforces (`v1`, `v2`, …).
    pub default_version_id: String,
    /// Its tags; crossrole's ownership tags say which spec owns it.
    pub tags: BTreeMap<String, String>,
}

/// AWS Organizations, read-only.
#[async_trait]
pub trait OrganizationsApi: Send + Sync {
    /// `DescribeOrganization`.
    async fn describe_organization(&self) -> Result<OrganizationInfo, AwsError>;
    /// `ListRoots` (one page).
    async fn list_roots(&self, next_token: Option<String>) -> Result<Page<OuRecord>, AwsError>;
    /// `ListOrganizationalUnitsForParent` (one page).
    async fn list_organizational_units_for_parent(
        &self,
        parent_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<OuRecord>, AwsError>;
    /// `ListAccountsForParent` (one page). `parent_id` of each account is set to `parent_id`.
    async fn list_accounts_for_parent(
        &self,
        parent_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<AccountInfo>, AwsError>;
    /// `DescribeAccount`: the account if it is a member of the organization (any state), `None` if it is not
    /// (`AccountNotFoundException`). Its `parent_id` is empty: the call does not say.
    async fn describe_account(&self, account_id: &str) -> Result<Option<AccountInfo>, AwsError>;
    /// `ListParents` of an account: the id of the root or unit it is in.
    async fn list_parent(&self, account_id: &str) -> Result<String, AwsError>;
    /// `ListTagsForResource` of an account (one page).
    async fn list_tags_for_resource(
        &self,
        account_id: &str,
        next_token: Option<String>,
    ) -> Result<Page<(String, String)>, AwsError>;
}

/// STS, as some identity.
#[async_trait]
pub trait StsApi: Send + Sync {
    /// `AssumeRole`.
    async fn assume_role(&self, request: &AssumeRoleRequest) -> Result<Credentials, AwsError>;
    /// `GetCallerIdentity`.
    async fn get_caller_identity(&self) -> Result<CallerIdentity, AwsError>;
}

/// IAM in one account.
#[async_trait]
pub trait IamApi: Send + Sync {
    /// `GetRole`; `NotFound` when it does not exist.
    async fn get_role(&self, name: &str) -> Result<RoleRecord, AwsError>;
    /// `ListAttachedRolePolicies` (one page of policy ARNs).
    async fn list_attached_role_policies(&self, role: &str, marker: Option<String>) -> Result<Page<String>, AwsError>;
    /// `ListRolePolicies` (one page of inline policy names).
    async fn list_role_policies(&self, role: &str, marker: Option<String>) -> Result<Page<String>, AwsError>;
    /// `GetRolePolicy`: the document as returned (URL-encoded).
    async fn get_role_policy(&self, role: &str, policy: &str) -> Result<String, AwsError>;
    /// `CreateRole`: the role with its trust policy (JSON), boundary and tags (ownership tags included, so the role is
    /// never untagged).
    async fn create_role(&self, role: &RoleAttributes) -> Result<(), AwsError>;
    /// `UpdateAssumeRolePolicy`.
    async fn update_assume_role_policy(&self, role: &str, document: &str) -> Result<(), AwsError>;
    /// `UpdateRole`: description and/or maximum session duration.
    async fn update_role(
        &self,
        role: &str,
        description: Option<&str>,
        max_session_duration: Option<u32>,
    ) -> Result<(), AwsError>;
    /// `PutRolePermissionsBoundary`.
    async fn put_role_permissions_boundary(&self, role: &str, arn: &str) -> Result<(), AwsError>;
    /// `DeleteRolePermissionsBoundary`.
    async fn delete_role_permissions_boundary(&self, role: &str) -> Result<(), AwsError>;
    /// `AttachRolePolicy`.
    async fn attach_role_policy(&self, role: &str, arn: &str) -> Result<(), AwsError>;
    /// `DetachRolePolicy`.
    async fn detach_role_policy(&self, role: &str, arn: &str) -> Result<(), AwsError>;
    /// `PutRolePolicy`.
    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), AwsError>;
    /// `DeleteRolePolicy`.
    async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), AwsError>;
    /// `TagRole`.
    async fn tag_role(&self, role: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError>;
    /// `UntagRole`.
    async fn untag_role(&self, role: &str, keys: &[String]) -> Result<(), AwsError>;
    /// `DeleteRole`.
    async fn delete_role(&self, role: &str) -> Result<(), AwsError>;
    /// `GetAccountAuthorizationDetails` with `Filter=[Role]`: one page of the account's roles, each with its trust
    /// policy and inline documents as IAM returned them (URL-encoded), its managed policies, boundary, tags and
    /// `RoleLastUsed`. `max_items` is IAM's `MaxItems` (1 to 1000); IAM may return fewer with a marker.
    async fn get_account_authorization_details_roles(
        &self,
        marker: Option<String>,
        max_items: u32,
    ) -> Result<Page<RoleDetail>, AwsError>;

    /// `GetPolicy`; `NotFound` when it does not exist.
    async fn get_policy(&self, arn: &str) -> Result<PolicyRecord, AwsError>;
    /// `GetPolicyVersion`: the document as returned (URL-encoded).
    async fn get_policy_version(&self, arn: &str, version: &str) -> Result<String, AwsError>;
    /// `ListPolicyVersions`: (id, is default, created Unix seconds).
    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<crossrole_core::grant::PolicyVersion>, AwsError>;
    /// `CreatePolicy`.
    async fn create_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), AwsError>;
    /// `CreatePolicyVersion` as the new default.
    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), AwsError>;
    /// `DeletePolicyVersion`.
    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), AwsError>;
    /// `DeletePolicy`.
    async fn delete_policy(&self, arn: &str) -> Result<(), AwsError>;
    /// `ListEntitiesForPolicy` (one page).
    async fn list_entities_for_policy(
        &self,
        arn: &str,
        marker: Option<String>,
    ) -> Result<Page<(PrincipalKind, String)>, AwsError>;
    /// `Attach{User,Group,Role}Policy`.
    async fn attach_principal_policy(&self, kind: PrincipalKind, name: &str, arn: &str) -> Result<(), AwsError>;
    /// `Detach{User,Group,Role}Policy`.
    async fn detach_principal_policy(&self, kind: PrincipalKind, name: &str, arn: &str) -> Result<(), AwsError>;
}

/// A message received from an SQS queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    /// SQS's id of the message.
    pub id: String,
    /// What deletes this receipt of it.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
}

/// The SQS queue crossroled reads Organizations events from.
#[async_trait]
pub trait QueueApi: Send + Sync {
    /// `ReceiveMessage`: up to `max` (at most 10) messages, waiting up to `wait` (long polling, at most 20 s) for
    /// the first.
    async fn receive(&self, max: u32, wait: std::time::Duration) -> Result<Vec<QueueMessage>, AwsError>;
    /// `DeleteMessageBatch` of at most 10 receipts; the receipts SQS did not delete are returned with why.
    async fn delete(&self, receipt_handles: &[String]) -> Result<Vec<(String, String)>, AwsError>;
}

/// Hands out clients: Organizations and STS as crossroled itself, STS and IAM as assumed credentials.
pub trait AwsConnector: Send + Sync {
    /// The partition crossroled runs in.
    fn partition(&self) -> Partition;
    /// Organizations, as crossroled.
    fn organizations(&self) -> Arc<dyn OrganizationsApi>;
    /// STS as crossroled (`None`) or as assumed credentials.
    fn sts(&self, credentials: Option<&Credentials>) -> Arc<dyn StsApi>;
    /// IAM as assumed credentials (IAM is global: one client per account, never per region).
    fn iam(&self, credentials: &Credentials) -> Arc<dyn IamApi>;
    /// The SQS queue at `url`, as crossroled.
    fn queue(&self, url: &str) -> Arc<dyn QueueApi>;
    /// Sends nothing at all once `fence` has passed, down to the sockets (the call layer fences each write
    /// attempt; this closes what is already on its way out). Nothing to do for an AWS in memory.
    fn fence_sockets(&self, _fence: crate::fence::Fence) {}
}
