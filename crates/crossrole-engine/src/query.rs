//! Read-only requests: selection, guardrails with the organization's context, plans and verification.

use std::{collections::BTreeSet, sync::Arc};

use crossrole_aws::{calls::CallContext, reconcile::AccountIam, verify};
use crossrole_core::{
    AccessSpec,
    grant::GrantPlan,
    guardrails::{self, Finding, OrgContext},
    org::{OrgTree, Selection},
    plan::{AccountPlan, DesiredRole},
    spec::{AccountState, TargetSelector},
};
use crossrole_proto::v1 as pb;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{
    Engine, Error,
    account::{self, Action, RunEnv, Target},
    convert, rollout,
};

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
        let members = tree.account_ids();
        Ok(guardrails::enforce(spec, self.partition(), OrgContext { member_accounts: Some(&members) })?)
    }

    fn read_env(&self, spec: &AccessSpec, session: &str) -> RunEnv {
        RunEnv {
            inner: self.inner.clone(),
            spec: Arc::new(spec.clone()),
            desired: Arc::new(DesiredRole::from_spec(spec, self.partition())),
            ctx: CallContext::new(),
            session: session.into(),
            stop: CancellationToken::new(),
            sink: None,
            write: false,
            verifier: Default::default(),
        }
    }

    async fn read_targets(&self, spec: &AccessSpec) -> Result<(Vec<Target>, Selection), Error> {
        let (_, selection) = self.select(&spec.targets, "targets", false).await?;
        let mut targets: Vec<Target> = selection
            .selected
            .iter()
            .map(|a| Target {
                index: 0,
                account_id: a.id.clone(),
                account_name: a.name.clone(),
                joined_at: a.joined_at,
                action: Action::Ensure,
            })
            .collect();
        if spec.rollout.prune {
            let selected: BTreeSet<&str> = selection.selected.iter().map(|a| a.id.as_str()).collect();
            let tree = self.inner.discovery.tree(&CallContext::new(), false).await?;
            for account in self.inner.journal.placements(&spec.name).await? {
                if let Some(a) = tree
                    .accounts
                    .get(&account)
                    .filter(|a| !selected.contains(a.id.as_str()) && a.state == AccountState::Active)
                {
                    targets.push(Target {
                        index: 0,
                        account_id: a.id.clone(),
                        account_name: a.name.clone(),
                        joined_at: a.joined_at,
                        action: Action::Remove,
                    });
                }
            }
        }
        for (i, t) in targets.iter_mut().enumerate() {
            t.index = i as u32;
        }
        Ok((targets, selection))
    }

    fn concurrency(&self, spec: &AccessSpec, n: usize) -> usize {
        spec.rollout.max_concurrency.concurrency(n).min(self.inner.config.max_concurrency).max(1)
    }

    /// What an apply would do, account by account, without changing anything.
    pub async fn plan(&self, spec: &AccessSpec) -> Result<pb::AccessPlan, Error> {
        let findings = self.guardrails(spec).await?;
        let (targets, selection) = self.read_targets(spec).await?;
        let env = self.read_env(spec, "crossrole-plan");
        let n = self.concurrency(spec, targets.len());
        let env_ref = &env;
        let accounts: Vec<pb::AccountPlan> = futures::stream::iter(targets.clone())
            .map(move |t| {
                let env = env_ref;
                async move {
                    let t = &t;
                    let mut p = pb::AccountPlan {
                        account_id: t.account_id.clone(),
                        account_name: t.account_name.clone(),
                        role_arn: env.desired.arn(env.inner.aws.partition(), &t.account_id),
                        ..Default::default()
                    };
                    match account::examine(env, t).await {
                        Err(e) => {
                            p.status = pb::AccountPlanStatus::Failed as i32;
                            p.error = Some(e);
                        }
                        Ok(x) => match x.plan {
                            AccountPlan::InSync => p.status = pb::AccountPlanStatus::InSync as i32,
                            AccountPlan::Changes(c) => {
                                p.status = pb::AccountPlanStatus::Changes as i32;
                                p.changes = c.iter().map(pb::Change::from).collect();
                            }
                            AccountPlan::Conflict { owner } => {
                                p.status = pb::AccountPlanStatus::Conflict as i32;
                                let arn = env.desired.arn(env.inner.aws.partition(), &t.account_id);
                                p.findings.push(convert::finding(&guardrails::unowned_role(&arn, owner.as_deref())));
                            }
                        },
                    }
                    p
                }
            })
            .buffered(n)
            .collect()
            .await;

        let grant = match &spec.grant {
            None => None,
            Some(g) => {
                let mut gp = pb::GrantPlan {
                    account_id: g.account_id.clone(),
                    policy_arn: g.policy_arn(self.partition()),
                    ..Default::default()
                };
                let ensure: BTreeSet<String> =
                    targets.iter().filter(|t| t.action == Action::Ensure).map(|t| t.account_id.clone()).collect();
                match self.inner.broker.bootstrap(&env.ctx, &g.account_id, None, "crossrole-plan").await {
                    Err(e) => gp.error = Some(convert::account_error(&e, pb::AccountPhase::Assume)),
                    Ok(creds) => {
                        let iam =
                            AccountIam { iam: self.inner.aws.iam(&creds), calls: &self.inner.calls, ctx: &env.ctx };
                        match iam.read_grant(&gp.policy_arn).await {
                            Err(e) => gp.error = Some(convert::account_error(&e, pb::AccountPhase::Read)),
                            Ok(observed) => match rollout::grant_plan(
                                &self.inner,
                                spec,
                                g,
                                &ensure,
                                false,
                                observed.as_ref(),
                                &env.ctx,
                            )
                            .await
                            {
                                GrantPlan::InSync => {}
                                GrantPlan::Changes(c) => gp.changes = c.iter().map(pb::Change::from).collect(),
                                GrantPlan::Conflict { owner } => {
                                    gp.error = Some(convert::own_error(
                                        "not_owned",
                                        match owner {
                                            Some(o) => format!("{} belongs to crossrole spec {o:?}", gp.policy_arn),
                                            None => format!("{} exists and is not managed by crossrole", gp.policy_arn),
                                        },
                                        pb::AccountPhase::Plan,
                                    ))
                                }
                            },
                        }
                    }
                }
                Some(gp)
            }
        };
        let accounts_with_changes = accounts.iter().filter(|a| !a.changes.is_empty()).count() as u32;
        let total_changes = accounts.iter().map(|a| a.changes.len()).sum::<usize>()
            + grant.as_ref().map(|g| g.changes.len()).unwrap_or(0);
        Ok(pb::AccessPlan {
            findings: findings.iter().map(convert::finding).collect(),
            accounts,
            skipped: skipped(&selection),
            grant,
            accounts_with_changes,
            total_changes: total_changes as u32,
        })
    }

    /// Checks each account's role against the spec, and that the trusted side can assume it.
    pub async fn verify(&self, spec: &AccessSpec) -> Result<pb::VerifyAccessResponse, Error> {
        let (_, selection) = self.select(&spec.targets, "targets", false).await?;
        let targets: Vec<Target> = selection
            .selected
            .iter()
            .enumerate()
            .map(|(i, a)| Target {
                index: i as u32,
                account_id: a.id.clone(),
                account_name: a.name.clone(),
                joined_at: a.joined_at,
                action: Action::Ensure,
            })
            .collect();
        let env = self.read_env(spec, "crossrole-verify");
        let principals = verify::principals_to_check(spec, self.partition());
        let n = self.concurrency(spec, targets.len());
        let (env_ref, principals_ref) = (&env, &principals);
        let accounts = futures::stream::iter(targets)
            .map(move |t| {
                let (env, principals) = (env_ref, principals_ref);
                async move {
                    let t = &t;
                    let role_arn = env.desired.arn(env.inner.aws.partition(), &t.account_id);
                    let mut v = pb::AccountVerification {
                        account_id: t.account_id.clone(),
                        account_name: t.account_name.clone(),
                        role_arn: role_arn.clone(),
                        ..Default::default()
                    };
                    let x = match account::examine(env, t).await {
                        Ok(x) => x,
                        Err(e) => {
                            v.conformance = pb::RoleConformance::Unknown as i32;
                            v.error = Some(e);
                            v.assume = Some(verify::live_check_skipped("the account could not be read"));
                            return v;
                        }
                    };
                    v.conformance = match &x.plan {
                        AccountPlan::InSync => pb::RoleConformance::InSync,
                        AccountPlan::Conflict { .. } => pb::RoleConformance::NotOwned,
                        AccountPlan::Changes(_) if x.observed.is_none() => pb::RoleConformance::Missing,
                        AccountPlan::Changes(c) => {
                            v.drift = c.iter().map(pb::Change::from).collect();
                            pb::RoleConformance::Drifted
                        }
                    } as i32;
                    match &x.observed {
                        None => v.assume = Some(verify::live_check_skipped("the role does not exist")),
                        Some(observed) => {
                            v.trust_checks = verify::static_checks(&observed.trust_policy, &env.spec, principals);
                            v.assume = Some(account::live_check(env, &t.account_id, &role_arn).await);
                        }
                    }
                    v
                }
            })
            .buffered(n)
            .collect()
            .await;
        Ok(pb::VerifyAccessResponse { accounts, skipped: skipped(&selection) })
    }
}

fn skipped(selection: &Selection) -> Vec<pb::SkippedAccount> {
    selection
        .skipped
        .iter()
        .map(|s| pb::SkippedAccount { account: Some(account(&s.account, "")), reason: s.reason.clone() })
        .collect()
}

/// An account for the API.
pub fn account(a: &crossrole_core::org::AccountInfo, parent_path: &str) -> pb::Account {
    pb::Account {
        id: a.id.clone(),
        name: a.name.clone(),
        email: a.email.clone(),
        state: pb::AccountState::from(a.state) as i32,
        parent_id: a.parent_id.clone(),
        parent_path: parent_path.to_string(),
        tags: Default::default(),
    }
}
