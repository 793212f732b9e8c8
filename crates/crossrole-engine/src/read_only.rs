//! Read-only requests: selection, guardrails with the organization's context, plans and verification.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    sync::Arc,
};

use crossrole_aws::{calls::CallContext, reconcile::AccountIam, verify};
use crossrole_core::{
    AccessSpec,
    ceiling::Organization,
    grant::{
        GrantChange, GrantPlan,
        cut::{self, GrantCut},
        former::{Former, Place, Release},
    },
    guardrails::{self, Finding, OrgContext},
    ops::{
        AccessPlan, AccountError, AccountPlanView, AccountVerification, AssumeCheck, Conformance, ErrorCode,
        GrantPlanView, Millis, OrganizationRead, Phase, PlanStatus, ShownChange, SkippedAccount, Verification,
    },
    org::{OrgTree, Selection},
    plan::{AccountPlan, DesiredRole},
    spec::{TargetSelector, TrustedGrant},
};
use futures::{StreamExt, stream::FuturesUnordered};
use tokio_util::sync::CancellationToken;

use crate::{
    Engine, Error,
    account::{self, Action, RunEnv, Target},
    confirmed,
    pace::Pace,
    rollout::{self, Taken, TargetFinder},
    targets::{self, Resolved, Skip, Standing},
};

/// Who a plan or a verification is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// A caller who may read ExternalIds (a token with `reveal_external_ids`, or crossroled itself): the request's
    /// ExternalId is compared with the one each role requires, as an apply would.
    Trusted,
    /// A caller who may not read ExternalIds. Nothing it sees may depend on whether the ExternalId it sent is the
    /// one in AWS, or it could guess the ExternalId one request at a time: each role's own ExternalId stands in for
    /// the request's (the plan shows no ExternalId change, the checks and the live AssumeRole use the role's), the
    /// marks in the answer are keyed for this answer alone, and the answer says so
    /// ([`EXTERNAL_ID_NOT_COMPARED`]).
    Blind,
}

impl Audience {
    /// What a plan or an apply for this audience does with the spec's ExternalId in roles that exist; `write`: the
    /// request asks the spec's written everywhere (`write_external_id`), which changes nothing for a caller who may
    /// read ExternalIds (compared, it is written where it differs).
    pub fn external_ids(self, write: bool) -> ExternalIds {
        match (self, write) {
            (Audience::Trusted, _) => ExternalIds::Compared,
            (Audience::Blind, false) => ExternalIds::Kept,
            (Audience::Blind, true) => ExternalIds::Written,
        }
    }
}

/// What a plan, and the apply that carries it out, does with the spec's ExternalId in the roles that exist. A role
/// that does not exist yet is created with the spec's, and one that requires no ExternalId is given the spec's,
/// whatever this says (no ExternalId in AWS to compare the request's with). The plan a caller confirms is planned
/// this way, and so is its apply: the apply never writes an ExternalId, nor revokes sessions for one, that its plan
/// did not show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExternalIds {
    /// The spec's is compared with each role's and written where it differs, with the revocation of the sessions
    /// that goes with it: for a caller who may read ExternalIds ([`Audience::Trusted`]), and crossroled's own runs
    /// (a binding's reconcile, a destroy).
    #[default]
    Compared,
    /// Each role's own stands in for the spec's ([`Audience::Blind`] by default): the plan shows no ExternalId
    /// change and the apply keeps each role's own — no answer depends on whether the one sent is AWS's.
    Kept,
    /// The spec's is written to every role that exists, with the revocation of its sessions, whatever AWS holds —
    /// shown so in the plan for every such role ([`Audience::Blind`] asking `write_external_id`): a rotation
    /// without an oracle.
    Written,
}

impl ExternalIds {
    /// Whom an answer planned this way is for: a caller who may read ExternalIds only when they are compared.
    pub fn audience(self) -> Audience {
        match self {
            ExternalIds::Compared => Audience::Trusted,
            ExternalIds::Kept | ExternalIds::Written => Audience::Blind,
        }
    }

    /// In words, for records and messages: `compared`, `kept`, `written`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExternalIds::Compared => "compared",
            ExternalIds::Kept => "kept",
            ExternalIds::Written => "written",
        }
    }

    /// Refused (INVALID_ARGUMENT naming `write_external_id`) when it writes the spec's ExternalId and `spec` has
    /// none.
    pub(crate) fn check(self, spec: &AccessSpec) -> Result<(), Error> {
        if self == ExternalIds::Written && spec.role.trust.external_id.is_none() {
            return Err(Error::Invalid(crossrole_core::Error::invalid(
                "write_external_id",
                "the spec has no role.trust.external_id to write: give one, or leave write_external_id out",
            )));
        }
        Ok(())
    }
}

/// What a plan or verification for [`Audience::Blind`] says about the ExternalId.
pub const EXTERNAL_ID_NOT_COMPARED: &str = "the ExternalId in the request was not compared with the ones in AWS: this \
    token may not read ExternalIds (reveal_external_ids), so each role's own ExternalId was used in its place, and \
    the marks in this answer match nothing outside it; an apply of this plan keeps each existing role's own \
    ExternalId (a new role, or one that requires none, gets the request's): to rotate it, plan and apply with \
    write_external_id, which writes the request's ExternalId to every existing role and revokes its sessions";

/// What a plan for [`Audience::Blind`] asking `write_external_id` says about the ExternalId.
pub const EXTERNAL_ID_WRITTEN: &str = "the ExternalId in the request was not compared with the ones in AWS: this \
    token may not read ExternalIds (reveal_external_ids), and write_external_id was asked, so this plan writes the \
    request's ExternalId to every existing role and revokes its sessions, whatever ExternalId the role holds now; the \
    marks in this answer match nothing outside it";

impl Engine {
    /// The accounts `selector` selects (the cached tree unless `refresh`).
    pub async fn select(
        &self,
        selector: &TargetSelector,
        at: &str,
        refresh: bool,
    ) -> Result<(Arc<OrgTree>, Selection), Error> {
        Ok(self.inner.discovery.select(&CallContext::new(), selector, at, refresh).await?)
    }

    /// Runs the guardrails with what the organization tells (its accounts); refuses a blocked spec.
    pub async fn guardrails(&self, spec: &AccessSpec) -> Result<Vec<Finding>, Error> {
        let tree = self.inner.discovery.tree(&CallContext::new(), false).await?;
        let members = self.members_of(spec, &tree).await?;
        Ok(guardrails::enforce(spec, self.partition(), OrgContext { member_accounts: Some(&members) })?)
    }

    /// The organization's accounts as `tree` has them, and each account the spec trusts that `tree` does not have
    /// confirmed a member or not by `DescribeAccount`: a tree may be a part of the organization (an apply's plan
    /// reads afresh only the units it selects) or older than an account's joining, and a member the tree leaves
    /// out is no account "outside the organization".
    async fn members_of(&self, spec: &AccessSpec, tree: &OrgTree) -> Result<BTreeSet<String>, Error> {
        let mut members = tree.account_ids();
        let unknown: Vec<String> =
            guardrails::membership_checked(spec).into_iter().filter(|a| !members.contains(a)).collect();
        if !unknown.is_empty() {
            members.extend(self.inner.discovery.members_now(&CallContext::new(), &unknown).await?);
        }
        Ok(members)
    }

    /// `spec` under the organization's ceiling: refused (each field named) when it reaches past it, else with the
    /// ceiling's boundary set when it has none. An account the spec trusts that the tree lacks (it may be older
    /// than the account's joining) is asked about (`DescribeAccount`) before it is taken for an outsider, as for
    /// the guardrails ([`Engine::guardrails`]).
    pub async fn within_ceiling(&self, spec: AccessSpec) -> Result<AccessSpec, Error> {
        let ceiling = &self.inner.config.ceiling;
        if ceiling.is_empty() {
            return Ok(spec);
        }
        let tree = self.inner.discovery.tree(&CallContext::new(), false).await?;
        let mut members = tree.account_ids();
        let unknown: Vec<String> =
            ceiling.membership_decides(&spec).into_iter().filter(|a| !members.contains(a)).collect();
        if !unknown.is_empty() {
            members.extend(self.inner.discovery.members_now(&CallContext::new(), &unknown).await?);
        }
        self.under_ceiling(spec, Some(&tree.organization.id), Some(&members))
    }

    /// [`Engine::within_ceiling`] with what is known of the organization, and no call (`None`: nothing yet; rules
    /// that need it are checked as if no account belonged to it). An account that joined after `tree` was read is
    /// taken for an outsider: for an answer that makes no call (validation), not for one that acts.
    pub fn within_ceiling_of(&self, spec: AccessSpec, tree: Option<&OrgTree>) -> Result<AccessSpec, Error> {
        let members = tree.map(|t| t.account_ids());
        self.under_ceiling(spec, tree.map(|t| t.organization.id.as_str()), members.as_ref())
    }

    fn under_ceiling(
        &self,
        spec: AccessSpec,
        id: Option<&str>,
        accounts: Option<&BTreeSet<String>>,
    ) -> Result<AccessSpec, Error> {
        let ceiling = &self.inner.config.ceiling;
        if ceiling.is_empty() {
            return Ok(spec);
        }
        ceiling.check(&spec, Organization { id, accounts })?;
        Ok(ceiling.apply(spec))
    }

    fn read_env(&self, spec: &AccessSpec, session: &str, external_ids: ExternalIds) -> RunEnv {
        let blind = external_ids.audience() == Audience::Blind;
        RunEnv {
            external_ids,
            operation: String::new(),
            inner: self.inner.clone(),
            spec: Arc::new(spec.clone()),
            desired: Arc::new(DesiredRole::from_spec(spec, self.partition())),
            ctx: CallContext::new(),
            session: session.into(),
            stop: CancellationToken::new(),
            sink: None,
            write: false,
            verifier: Default::default(),
            confirmed: None,
            redactor: if blind {
                crossrole_core::secret::Redactor::for_one_response(&mut rand::rng())
            } else {
                self.inner.redactor.clone()
            },
        }
    }

    /// What an apply would do, account by account, without changing anything: the same targets, skips and
    /// reasons ([`targets::resolve`]), the same per-account path, and the grant an apply reaching these plans would
    /// write ([`targets::grant_accounts`]). Its accounts are planned as the organization's pages list them
    /// ([`each_target`]).
    pub async fn plan(&self, spec: &AccessSpec) -> Result<AccessPlan, Error> {
        self.plan_for(spec, Audience::Trusted).await
    }

    /// [`Engine::plan`] for `audience`.
    pub async fn plan_for(&self, spec: &AccessSpec, audience: Audience) -> Result<AccessPlan, Error> {
        self.plan_with(spec, audience, OrganizationRead::Cached).await
    }

    /// [`Engine::plan`] for `audience`, the organization read as `read` says. The plan carries its fingerprint,
    /// for an apply to carry ([`crate::StartRequest::confirmed`]).
    pub async fn plan_with(
        &self,
        spec: &AccessSpec,
        audience: Audience,
        read: OrganizationRead,
    ) -> Result<AccessPlan, Error> {
        self.plan_releasing(spec, audience, read, &Release::default()).await
    }

    /// [`Engine::plan_with`], giving up on the former grants `release` names that cannot be read: the plan shows
    /// each left in place, released by whom, instead of the error, and its fingerprint covers it. Refused
    /// (INVALID_ARGUMENT naming `release_former_grants`) for an account where the spec has no former grant, or
    /// whose former grant can be read.
    pub async fn plan_releasing(
        &self,
        spec: &AccessSpec,
        audience: Audience,
        read: OrganizationRead,
        release: &Release,
    ) -> Result<AccessPlan, Error> {
        self.plan_as(spec, audience.external_ids(false), read, release).await
    }

    /// [`Engine::plan_releasing`], the spec's ExternalId planned as `external_ids` says (and for the audience it
    /// is for, [`ExternalIds::audience`]): the plan an apply asking the same carries out. Its fingerprint covers it.
    /// [`ExternalIds::Written`] is refused (INVALID_ARGUMENT naming `write_external_id`) for a spec without an
    /// ExternalId.
    pub async fn plan_as(
        &self,
        spec: &AccessSpec,
        external_ids: ExternalIds,
        read: OrganizationRead,
        release: &Release,
    ) -> Result<AccessPlan, Error> {
        external_ids.check(spec)?;
        let spec = &self.within_ceiling(spec.clone()).await?;
        let env = self.read_env(spec, "crossrole-plan", external_ids);
        let config = self.inner.discovery.config();
        let max_age = match read {
            OrganizationRead::Cached => config.cache_ttl,
            OrganizationRead::AsApply => config.apply_max_age,
            OrganizationRead::Fresh => {
                // The whole organization and the tags the selector looks at, read now and kept: the selection
                // below is made from them.
                self.inner.discovery.select(&env.ctx, &spec.targets, "targets", true).await?;
                config.cache_ttl
            }
        };
        let env_ref = &env;
        let (examined, resolved): (Vec<(AccountPlanView, Standing)>, _) = each_target(
            &env,
            max_age,
            |_| true,
            move |t| {
                let env = env_ref;
                async move {
                    let t = &t;
                    let role_arn = env.desired.arn(env.inner.aws.partition(), &t.account_id);
                    let mut p = AccountPlanView {
                        account_id: t.account_id.clone(),
                        account_name: t.account_name.clone(),
                        role_arn: role_arn.clone(),
                        status: PlanStatus::InSync,
                        changes: Vec::new(),
                        findings: Vec::new(),
                        error: None,
                        role_id: String::new(),
                    };
                    let mut standing = Standing::Out;
                    let examined = account::examine(env, t).await;
                    if let Ok(x) = &examined {
                        p.role_id = x.observed.as_ref().map(|o| o.role_id.clone()).unwrap_or_default();
                    }
                    match examined {
                        Err(e) => {
                            p.status = PlanStatus::Failed;
                            p.error = Some(e);
                            standing = Standing::Failed;
                        }
                        Ok(x) => match x.plan {
                            AccountPlan::InSync => standing = Standing::InPlace,
                            AccountPlan::Changes(c) => {
                                p.status = PlanStatus::Changes;
                                p.changes = c.iter().map(|c| c.shown(&env.redactor)).collect();
                                standing = Standing::InPlace;
                            }
                            AccountPlan::Conflict { owner } => {
                                p.status = PlanStatus::Conflict;
                                // The role found, whose path may not be the spec's.
                                let found = x.observed.as_ref().map_or(&role_arn, |o| &o.arn);
                                p.findings.push(account::unowned(env, t, x.observed.as_ref(), found, owner.as_deref()));
                            }
                        },
                    }
                    if t.action == Action::Remove {
                        standing = Standing::Out;
                    }
                    (p, standing)
                }
            },
        )
        .await?;
        // The guardrails passed (the targets are not resolved otherwise): what they find, from the organization the
        // targets were resolved from.
        let members = self.members_of(spec, &resolved.tree).await?;
        let findings = guardrails::enforce(spec, self.partition(), OrgContext { member_accounts: Some(&members) })?;

        // The grants the spec had before and no longer has (its `grant` removed, or moved) are cut as its own is.
        let former = rollout::former::places(&self.inner, spec).await?;
        rollout::former::check_released_places(spec, &former, release)?;
        let (grant, grant_found) = match &spec.grant {
            None if former.is_empty() => (None, confirmed::Found::Nothing),
            g => {
                let placements: BTreeSet<String> =
                    self.inner.journal.placements(&spec.name).await?.into_iter().collect();
                let ensure =
                    targets::grant_accounts(examined.iter().map(|(p, s)| (p.account_id.as_str(), *s)), &placements);
                let removed: BTreeSet<String> = resolved
                    .targets
                    .iter()
                    .filter(|t| t.action == Action::Remove)
                    .map(|t| t.account_id.clone())
                    .collect();
                let sessions_in = cut::sessions_in(&placements, &ensure, &removed);
                let touched: BTreeSet<String> = resolved
                    .targets
                    .iter()
                    .map(|t| t.account_id.clone())
                    .chain(resolved.skipped.iter().map(|s| s.account.id.clone()))
                    .collect();
                let left = cut::unnamed(&placements, &touched, &ensure);
                let cut_in = (&sessions_in, &left);
                self.plan_grant(spec, g.as_ref(), (&former, release), &ensure, cut_in, &env.ctx).await?
            }
        };
        let fingerprint =
            self.fingerprint_of(spec, external_ids, &resolved.targets, examined.iter().map(|(p, _)| p), grant_found);
        let (organization_read_time, tags_read_time) = self.read_times(spec, &resolved);
        Ok(AccessPlan {
            findings,
            accounts: examined.into_iter().map(|(p, _)| p).collect(),
            skipped: skipped(&resolved.skipped, &resolved.tree),
            grant,
            external_id_note: note(&env),
            organization_read_time,
            tags_read_time,
            fingerprint,
        })
    }

    /// The fingerprint of a plan of `spec`, its ExternalId planned as `external_ids` says, that found `plans` in
    /// `targets`, and `grant` of the trusted side being cut.
    fn fingerprint_of<'a>(
        &self,
        spec: &AccessSpec,
        external_ids: ExternalIds,
        targets: &[Target],
        plans: impl IntoIterator<Item = &'a AccountPlanView>,
        grant: confirmed::Found,
    ) -> String {
        let key = confirmed::key(&self.inner.config.journal_key);
        let actions: BTreeMap<&str, Action> = targets.iter().map(|t| (t.account_id.as_str(), t.action)).collect();
        let accounts = plans.into_iter().map(|p| {
            let action = actions.get(p.account_id.as_str()).copied().unwrap_or(Action::Ensure);
            let found = match p.status {
                PlanStatus::Failed => confirmed::Found::Unread,
                _ => confirmed::found(&key, action, &p.changes),
            };
            (p.account_id.clone(), action, found)
        });
        let raw = crossrole_core::spec::RawSpec::from(spec);
        confirmed::Fingerprint::new(&key, &raw, external_ids, accounts).with_grant(grant).encode(&key)
    }

    /// When the organization the targets were selected from was read, and the oldest tags the selector's tag
    /// conditions looked at (Unix ms).
    fn read_times(&self, spec: &AccessSpec, resolved: &Resolved) -> (Option<Millis>, Option<Millis>) {
        let millis = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0)
        };
        let discovery = &self.inner.discovery;
        let tree = discovery.read_time(&resolved.tree).map(millis);
        if spec.targets.tags.is_empty() {
            return (tree, None);
        }
        let looked_at = crossrole_core::org::resolve(&resolved.tree, &spec.targets, "targets")
            .map(|s| s.accounts_needing_tags())
            .unwrap_or_else(|_| {
                let targets = resolved.targets.iter().map(|t| t.account_id.clone());
                targets.chain(resolved.skipped.iter().map(|s| s.account.id.clone())).collect()
            });
        (tree, discovery.tags_read_time(&looked_at).map(millis))
    }

    /// The trusted side's plan for the roles of `ensure`, after removing the spec's former grants (`former`:
    /// [`rollout::former::places`]) — with, when it cuts the grant (a former one, or the spec's), the revocation of
    /// the sessions (or that they stay, opted out): in `cut_in.0` ([`cut::sessions_in`]) when it is cut from
    /// principals, else in those of `cut_in.1` ([`cut::unnamed`]) it stops naming — and what it found of the cut
    /// for the fingerprint; AWS errors are the plan's, reading the organization fails the request. A former grant
    /// that cannot be read is the plan's error, unless `former.1` releases it: then it is shown left in place. No
    /// view when the spec has no grant and no former one is left.
    async fn plan_grant(
        &self,
        spec: &AccessSpec,
        g: Option<&TrustedGrant>,
        former: (&BTreeSet<Place>, &Release),
        ensure: &BTreeSet<String>,
        cut_in: (&BTreeSet<String>, &BTreeSet<String>),
        ctx: &CallContext,
    ) -> Result<(Option<GrantPlanView>, confirmed::Found), Error> {
        let (former, release) = former;
        let mut formers = Vec::new();
        let mut released: Vec<(&Place, ShownChange)> = Vec::new();
        for place in former {
            match rollout::former::read(&self.inner, spec, place, ctx, "crossrole-plan").await {
                Ok(found) => formers.extend(found),
                Err(error) => match (rollout::former::Unread { place, error }).outcome(&self.inner, release) {
                    Ok(change) => released.push((place, change)),
                    Err(e) => {
                        let gp = GrantPlanView {
                            account_id: place.0.clone(),
                            policy_arn: rollout::former::arn_of(&self.inner, place),
                            changes: Vec::new(),
                            error: Some(e),
                        };
                        return Ok((Some(gp), confirmed::Found::Unread));
                    }
                },
            }
        }
        let released_in: BTreeSet<String> = released.iter().map(|(p, _)| p.0.clone()).collect();
        if let Some(readable) = release.accounts.iter().find(|a| !released_in.contains(*a)) {
            return Err(Error::Invalid(crossrole_core::Error::invalid(
                "release_former_grants",
                format!(
                    "account {readable}: its former grant can be read, and crossrole removes it: there is nothing to \
                     release"
                ),
            )));
        }
        let (account_id, policy_arn) = match (g, formers.first(), released.first()) {
            (Some(g), _, _) => (g.account_id.clone(), g.policy_arn(self.partition())),
            // No grant now: the view is the former one's.
            (None, Some(f), _) => (f.account_id.clone(), f.policy_arn.clone()),
            (None, None, Some((place, _))) => (place.0.clone(), rollout::former::arn_of(&self.inner, place)),
            (None, None, None) => return Ok((None, confirmed::Found::Nothing)),
        };
        let mut gp = GrantPlanView {
            account_id,
            policy_arn,
            changes: released.into_iter().map(|(_, c)| c).chain(formers.iter().flat_map(Former::shown)).collect(),
            error: None,
        };
        let mut changes: Vec<GrantChange> = formers.iter().flat_map(Former::cut_from).collect();
        if let Some(g) = g {
            let open = || async {
                let creds = self
                    .inner
                    .broker
                    .bootstrap(ctx, &g.account_id, None, "crossrole-plan")
                    .await
                    .map_err(|e| account::error_from(&e, Phase::Assume))?;
                let iam = AccountIam {
                    iam: self.inner.aws.iam(&creds),
                    account: creds.account_id.clone(),
                    calls: &self.inner.calls,
                    ctx,
                };
                Ok::<_, AccountError>(iam.read_grant(&gp.policy_arn).await)
            };
            let mut observed = open().await;
            if let Ok(Err(e)) = &observed
                && self.inner.broker.stale(&g.account_id, e)
            {
                observed = open().await;
            }
            let observed = match observed {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    gp.error = Some(account::error_from(&e, Phase::Read));
                    return Ok((Some(gp), confirmed::Found::Unread));
                }
                Err(e) => {
                    gp.error = Some(e);
                    return Ok((Some(gp), confirmed::Found::Unread));
                }
            };
            match rollout::grant_plan(&self.inner, spec, g, Some(ensure), observed.as_ref(), ctx).await? {
                GrantPlan::InSync => {}
                GrantPlan::Changes(c) => {
                    gp.changes.extend(c.iter().map(|c| c.shown()));
                    changes.extend(c);
                }
                GrantPlan::Conflict { owner } => {
                    gp.error = Some(AccountError::new(
                        ErrorCode::NotOwned,
                        match owner {
                            Some(o) => format!("{} belongs to crossrole spec {o:?}", gp.policy_arn),
                            None => format!("{} exists and is not managed by crossrole", gp.policy_arn),
                        },
                        Phase::Plan,
                    ));
                    return Ok((Some(gp), confirmed::Found::Nothing));
                }
            }
        }
        // Shown after the grant's own changes: the sessions are revoked once it is cut.
        let (sessions_in, left) = cut_in;
        let cut = GrantCut::of(&changes, &spec.role.name, sessions_in.clone(), left, rollout::cut_revoke(spec));
        gp.changes.extend(cut.as_ref().map(GrantCut::shown));
        let key = confirmed::key(&self.inner.config.journal_key);
        Ok((Some(gp), confirmed::grant_found_releasing(&key, cut.as_ref(), &released_in)))
    }

    /// Checks each account's role against the spec, and that the trusted side can assume it.
    pub async fn verify(&self, spec: &AccessSpec) -> Result<Verification, Error> {
        self.verify_for(spec, Audience::Trusted).await
    }

    /// [`Engine::verify`] for `audience`.
    pub async fn verify_for(&self, spec: &AccessSpec, audience: Audience) -> Result<Verification, Error> {
        let spec = &self.within_ceiling(spec.clone()).await?;
        let env = self.read_env(spec, "crossrole-verify", audience.external_ids(false));
        let principals = verify::principals_to_check(spec, self.partition());
        let (env_ref, principals_ref) = (&env, &principals);
        let (accounts, resolved) = each_target(
            &env,
            self.inner.discovery.config().cache_ttl,
            |t| t.action == Action::Ensure,
            move |t| {
                let (env, principals) = (env_ref, principals_ref);
                async move {
                    let t = &t;
                    let role_arn = env.desired.arn(env.inner.aws.partition(), &t.account_id);
                    let mut v = AccountVerification {
                        account_id: t.account_id.clone(),
                        account_name: t.account_name.clone(),
                        role_arn: role_arn.clone(),
                        conformance: Conformance::Unknown,
                        drift: Vec::new(),
                        assume: AssumeCheck::skipped("the account could not be read"),
                        trust_checks: Vec::new(),
                        error: None,
                    };
                    let x = match account::examine(env, t).await {
                        Ok(x) => x,
                        Err(e) => {
                            v.error = Some(e);
                            return v;
                        }
                    };
                    v.conformance = match &x.plan {
                        AccountPlan::InSync => Conformance::InSync,
                        AccountPlan::Conflict { .. } => Conformance::NotOwned,
                        AccountPlan::Changes(_) if x.observed.is_none() => Conformance::Missing,
                        AccountPlan::Changes(c) => {
                            v.drift = c.iter().map(|c| c.shown(&env.redactor)).collect();
                            Conformance::Drifted
                        }
                    };
                    match &x.observed {
                        None => v.assume = AssumeCheck::skipped("the role does not exist"),
                        // Not this spec's: crossrole checks only what it owns (its bootstrap role in the trusted
                        // account may assume only crossrole's roles).
                        Some(_) if v.conformance == Conformance::NotOwned => {
                            v.assume =
                                AssumeCheck::skipped("the role is not this spec's; crossrole checks only its own")
                        }
                        Some(observed) => {
                            // For a caller who may not read ExternalIds, the role's own stands in for the request's.
                            let seen = account::seen_by(env, Some(observed));
                            let spec = seen.as_ref().map_or(&env.spec, |(s, _)| s);
                            v.trust_checks = verify::static_checks(&observed.attributes.trust_policy, spec, principals);
                            let external_id = spec.role.trust.external_id.as_ref();
                            v.assume = account::live_check(env, &t.account_id, &role_arn, external_id).await;
                        }
                    }
                    v
                }
            },
        )
        .await?;
        Ok(Verification { accounts, skipped: skipped(&resolved.skipped, &resolved.tree), external_id_note: note(&env) })
    }
}

/// Runs `each` on the targets of `env`'s spec that `keep` keeps, as the organization's pages list them (a
/// [`TargetFinder`], as an apply's targets are found: from the tree discovery keeps while it is younger than
/// `max_age`, else read anew), as many at once as an apply's pace allows; returns their results in the selection's order — as
/// if every target had been known before the first was examined — and the selection. An account found selected
/// that the final selection does not have (it moved while the organization was read) is left out.
async fn each_target<T, F, Fut>(
    env: &RunEnv,
    max_age: std::time::Duration,
    keep: impl Fn(&Target) -> bool,
    each: F,
) -> Result<(Vec<T>, Resolved), Error>
where
    F: Fn(Target) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let (inner, spec) = (&env.inner, &env.spec);
    let mut finding = TargetFinder::start(inner.clone(), spec.clone(), false, max_age, None, env.ctx.clone(), true);
    // Until the targets are all known, limits that are percentages are of the accounts the organization read
    // before selected, or of those found so far if more (as in a run).
    let expected = targets::expected(inner, spec).await.unwrap_or(0);
    let mut pace =
        Pace::new(spec.rollout.max_concurrency, expected, inner.config.max_concurrency, inner.calls.shared_rates());
    let mut queue: VecDeque<Target> = VecDeque::new();
    let mut running = FuturesUnordered::new();
    let mut done: HashMap<String, T> = HashMap::new();
    let mut resolved: Option<Resolved> = None;
    loop {
        let known = resolved.as_ref().map_or(finding.handed_out().max(expected), |r| r.targets.len());
        let at_once = pace.targets(known);
        while running.len() < at_once
            && let Some(t) = queue.pop_front()
        {
            let each = &each;
            running.push(async move { (t.account_id.clone(), each(t).await) });
        }
        if running.is_empty() && !finding.selecting() {
            break;
        }
        tokio::select! {
            arrival = finding.arrival(), if finding.selecting() => match finding.take(arrival) {
                Taken::Found(found) => queue.extend(found.into_iter().filter(|t| keep(t))),
                Taken::Complete(found, complete) => {
                    let complete = complete?;
                    queue.extend(found.into_iter().filter(|t| keep(t)));
                    queue.extend(finding.remainder(&complete).into_iter().filter(|t| keep(t)));
                    resolved = Some(complete);
                }
            },
            Some((account, out)) = running.next(), if !running.is_empty() => {
                done.insert(account, out);
            }
        }
    }
    let resolved = resolved.ok_or_else(|| Error::FailedPrecondition("the targets were not resolved".into()))?;
    let results = resolved.targets.iter().filter(|t| keep(t)).filter_map(|t| done.remove(&t.account_id)).collect();
    Ok((results, resolved))
}

/// The note an answer for [`Audience::Blind`] carries when the spec has an ExternalId.
fn note(env: &RunEnv) -> String {
    match env.external_ids {
        _ if env.spec.role.trust.external_id.is_none() => String::new(),
        ExternalIds::Compared => String::new(),
        ExternalIds::Kept => EXTERNAL_ID_NOT_COMPARED.to_string(),
        ExternalIds::Written => EXTERNAL_ID_WRITTEN.to_string(),
    }
}

fn skipped(skips: &[Skip], tree: &OrgTree) -> Vec<SkippedAccount> {
    skips
        .iter()
        .map(|s| SkippedAccount {
            account: s.account.clone(),
            parent_path: tree.path_of(&s.account.parent_id),
            reason: s.reason.clone(),
        })
        .collect()
}
