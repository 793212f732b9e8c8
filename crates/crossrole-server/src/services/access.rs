//! `AccessService`: validate, plan, apply, destroy, verify, links and profiles.

use crossrole_core::{
    expiry::{self, RawEnd},
    grant::former::Release,
    guardrails, names,
    ops::{Millis, OperationKind},
    policy::trust_policy,
    spec::Choice,
};
use crossrole_engine::{ConfirmedPlan, OrganizationRead, RevokeRequest, StartRequest, expiries::Expiries, redacted};
use crossrole_wire::{
    ToWire,
    enums::choice,
    pb::{self, access_service_server::AccessService},
    raw_spec,
};
use tonic::{Request, Response, Status};

use crate::{
    config::Scope,
    error::ApiError,
    state::{Audited, State, spec, under_spec},
};

/// The service.
pub struct Access(pub State);

fn idempotency_key(key: &str) -> Result<Option<String>, ApiError> {
    match key.chars().count() {
        0 => Ok(None),
        1..=128 => Ok(Some(key.to_string())),
        n => Err(ApiError::field("idempotency_key", &format!("at most 128 characters, got {n}"))),
    }
}

/// The former grants a plan or an apply gives up on: 12-digit account ids, each once (whether the spec has an
/// unreadable former grant in each is the engine's to say).
fn release_former_grants(accounts: &[String], by: &str) -> Result<Release, ApiError> {
    let mut release = Release { accounts: Default::default(), by: by.to_string() };
    for (i, account) in accounts.iter().enumerate() {
        let field = format!("release_former_grants[{i}]");
        names::check_account_id(account).map_err(|rule| ApiError::field(&field, &rule))?;
        if !release.accounts.insert(account.clone()) {
            return Err(ApiError::field(&field, &format!("names account {account} more than once")));
        }
    }
    Ok(release)
}

/// The spec as an apply or plan that asks to keep the sessions runs it: its role's `revoke_sessions_on_narrowing`
/// turned off, so the operation's record says it too.
fn keeping_sessions(spec: Option<pb::AccessSpec>, keep: bool) -> Option<pb::AccessSpec> {
    let mut spec = spec;
    if keep && let Some(role) = spec.as_mut().and_then(|s| s.role.as_mut()) {
        role.revoke_sessions_on_narrowing = Some(false);
    }
    spec
}

/// What an apply or a destroy asks, as sent.
#[derive(Default)]
struct Asked {
    spec: Option<pb::AccessSpec>,
    /// The idempotency key (empty: none).
    key: String,
    /// The confirmed plan's fingerprint (empty: none; an apply only).
    plan: String,
    /// The end (an apply only).
    end: RawEnd,
    /// The former grants given up on, by trusted account (an apply only).
    released: Vec<String>,
    /// Write the spec's ExternalId to every existing role (an apply only; `write_external_id`).
    write_external_id: bool,
}

impl Access {
    /// Starts an apply or a destroy of the spec in `request`, with its idempotency key and (an apply) the
    /// fingerprint of the plan it carries (empty: none) and its end. Returns the operation and the end the spec's
    /// access has now: an apply's end is put in the journal before the apply starts (and put back as it was if the
    /// apply does not start), so no access it grants outlives a crash without its end; an apply without one keeps
    /// the end the spec has; a destroy removes it.
    async fn start(
        &self,
        request: Request<Asked>,
        kind: OperationKind,
        method: &str,
    ) -> Result<(pb::Operation, Option<Millis>), ApiError> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let Asked { spec: wire, key, plan, end: raw_end, released, write_external_id } = request.into_inner();
        let spec_name = wire.as_ref().map(|w| w.name.clone()).unwrap_or_default();
        let mut request = serde_json::json!({
            // Marked for this entry alone: the audit log is read by tokens that may not read ExternalIds, and a
            // stable mark of a value a caller sent could be compared with the marks of the ones crossroled holds.
            "spec": wire.as_ref().map(|w| redacted(&raw_spec(w), &crate::state::one_time_redactor())),
            "idempotency_key": key,
        });
        if !released.is_empty() {
            // Who gave up on which former grants: the audit entry's caller.
            request["release_former_grants"] = released.clone().into();
        }
        if !plan.is_empty() {
            // That the apply carried a confirmed plan, not the fingerprint: it is a keyed digest of the spec.
            request["confirmed_plan"] = serde_json::Value::Bool(true);
        }
        if write_external_id {
            request["write_external_id"] = serde_json::Value::Bool(true);
        }
        let expiries = Expiries::new(self.0.engine.clone());
        let mut ends: Option<(Option<Millis>, Option<Millis>)> = None;
        let result: Result<pb::Operation, ApiError> = async {
            let s = spec(wire.as_ref())?;
            let key = idempotency_key(&key)?;
            let release = release_former_grants(&released, &caller.name)?;
            let end = expiry::end(&raw_end, self.0.engine.now(), "").map_err(|v| ApiError::Invalid(vec![v]))?;
            if kind == OperationKind::Apply {
                self.0.engine.guardrails(&s).await.map_err(under_spec)?;
            }
            let request = StartRequest {
                idempotency_key: key,
                confirmed: (!plan.is_empty()).then(|| ConfirmedPlan { fingerprint: plan, audience: caller.audience() }),
                // The end as asked is part of the request: the same key with another end is refused.
                end: raw_end,
                release_former_grants: release.accounts,
                external_ids: caller.audience().external_ids(write_external_id),
                ..StartRequest::new(kind, s.clone(), caller.name.clone())
            };
            // A retry (its idempotency key started its operation) changes no end: an `expires_in` counted again
            // from now would move the end the first request set.
            let retry = self.0.engine.started_before(&request).await.map_err(under_spec)?;
            let changes = !retry && (end.is_some() || kind == OperationKind::Destroy);
            let before = if changes { expiries.set(&s, end, &caller.name).await } else { expiries.get(&s.name).await }
                .map_err(ApiError::from)?;
            let pending = before.as_ref().filter(|b| b.operation_id.is_none()).map(|b| b.expires_at);
            ends = Some((pending, if changes { end } else { pending }));
            let started = self.0.engine.start(request).await.map(|op| op.to_wire()).map_err(under_spec);
            if started.is_err() {
                // Nothing started: the spec's access keeps the end it had.
                if changes {
                    let restored = before.filter(|b| b.operation_id.is_none()).map(|b| b.expires_at);
                    if let Err(e) = expiries.set(&s, restored, &caller.name).await {
                        tracing::warn!(spec = s.name, error = %e, "cannot put back the end of the spec's access");
                    }
                }
                ends = None;
            }
            started
        }
        .await;
        if let Some((before, after)) = ends {
            // What the end was and is: an extension (or a removal) is on record with both.
            request["previous_expires_at"] = before.map(expiry::rfc3339).into();
            request["expires_at"] = after.map(expiry::rfc3339).into();
        }
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        let operation_id = result.as_ref().map(|op| op.id.clone()).unwrap_or_default();
        self.0.audit(&caller, method, Audited { spec_name, operation_id, request }, &outcome).await;
        Ok((result?, ends.and_then(|(_, after)| after)))
    }
}

#[tonic::async_trait]
impl AccessService for Access {
    async fn validate_spec(
        &self,
        request: Request<pb::ValidateSpecRequest>,
    ) -> Result<Response<pb::ValidateSpecResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Read)?;
        let s = spec(request.get_ref().spec.as_ref())?;
        // No AWS call: the organization's accounts are used only if they are already known.
        let cached = self.0.engine.discovery().cached_tree().await;
        let s = self.0.engine.within_ceiling_of(s, cached.as_deref()).map_err(under_spec)?;
        let members = cached.as_ref().map(|t| t.account_ids());
        let findings = guardrails::enforce(
            &s,
            self.0.engine.partition(),
            guardrails::OrgContext { member_accounts: members.as_ref() },
        )
        .map_err(|e| under_spec(e.into()))?;
        Ok(Response::new(pb::ValidateSpecResponse {
            findings: findings.iter().map(ToWire::to_wire).collect(),
            // The mark of a value the caller sent is keyed for this answer alone unless it may read ExternalIds:
            // else it could be compared with the marks of the ExternalIds crossroled holds.
            trust_policy: self
                .0
                .redactor_for(&caller)
                .policy_text(&trust_policy(&s.role.trust, self.0.engine.partition()).to_pretty_json()),
        }))
    }

    async fn plan_access(
        &self,
        request: Request<pb::PlanAccessRequest>,
    ) -> Result<Response<pb::PlanAccessResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Plan)?;
        let wire = keeping_sessions(request.get_ref().spec.clone(), request.get_ref().keep_sessions);
        let s = spec(wire.as_ref())?;
        let read = match choice::<OrganizationRead>(request.get_ref().organization_read) {
            Choice::Unspecified => OrganizationRead::Cached,
            Choice::Is(read) => read,
            Choice::Unknown(n) => {
                let rule = format!("{n} is not a value this version knows");
                return Err(ApiError::field("organization_read", &rule).into());
            }
        };
        let release = release_former_grants(&request.get_ref().release_former_grants, &caller.name)?;
        let external_ids = caller.audience().external_ids(request.get_ref().write_external_id);
        let plan = self.0.engine.plan_as(&s, external_ids, read, &release).await.map_err(under_spec)?;
        Ok(Response::new(pb::PlanAccessResponse { plan: Some(plan.to_wire()) }))
    }

    async fn apply_access(
        &self,
        request: Request<pb::ApplyAccessRequest>,
    ) -> Result<Response<pb::ApplyAccessResponse>, Status> {
        let (meta, ext, r) = request.into_parts();
        let wire = keeping_sessions(r.spec, r.keep_sessions);
        let end = crossrole_wire::raw_end(r.expires_at.as_ref(), r.expires_in.as_ref());
        let (op, end) = self
            .start(
                Request::from_parts(
                    meta,
                    ext,
                    Asked {
                        spec: wire,
                        key: r.idempotency_key,
                        plan: r.plan_fingerprint,
                        end,
                        released: r.release_former_grants,
                        write_external_id: r.write_external_id,
                    },
                ),
                OperationKind::Apply,
                "ApplyAccess",
            )
            .await?;
        Ok(Response::new(pb::ApplyAccessResponse {
            operation: Some(op),
            expires_at: end.map(crossrole_wire::timestamp),
        }))
    }

    async fn destroy_access(
        &self,
        request: Request<pb::DestroyAccessRequest>,
    ) -> Result<Response<pb::DestroyAccessResponse>, Status> {
        let (meta, ext, r) = request.into_parts();
        let (op, _) = self
            .start(
                Request::from_parts(meta, ext, Asked { spec: r.spec, key: r.idempotency_key, ..Asked::default() }),
                OperationKind::Destroy,
                "DestroyAccess",
            )
            .await?;
        Ok(Response::new(pb::DestroyAccessResponse { operation: Some(op) }))
    }

    async fn revoke_sessions(
        &self,
        request: Request<pb::RevokeSessionsRequest>,
    ) -> Result<Response<pb::RevokeSessionsResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Apply)?;
        let r = request.into_inner();
        let audited = serde_json::json!({
            "spec": r.spec.as_ref().map(|w| redacted(&raw_spec(w), &crate::state::one_time_redactor())),
            "binding_name": r.binding_name,
            "account_ids": r.account_ids,
            "idempotency_key": r.idempotency_key,
        });
        let spec_name = r.spec.as_ref().map_or_else(|| r.binding_name.clone(), |s| s.name.clone());
        let result: Result<pb::Operation, ApiError> = async {
            let key = idempotency_key(&r.idempotency_key)?;
            let accounts = (!r.account_ids.is_empty()).then(|| r.account_ids.iter().cloned().collect());
            if r.account_ids.len() != accounts.as_ref().map_or(0, |a: &std::collections::BTreeSet<String>| a.len()) {
                return Err(ApiError::field("account_ids", "names an account more than once"));
            }
            let op = match (&r.spec, r.binding_name.as_str()) {
                (Some(_), "") => {
                    let spec = spec(r.spec.as_ref())?;
                    let created_by = caller.name.clone();
                    let request = RevokeRequest { spec, accounts, idempotency_key: key, created_by };
                    self.0.engine.start_revoke(request).await.map_err(under_spec)?
                }
                (None, "") => return Err(ApiError::field("spec", "give the spec, or binding_name")),
                (Some(_), _) => return Err(ApiError::field("binding_name", "give the spec or binding_name, not both")),
                (None, name) => self.0.bindings.revoke(name, accounts, key, &caller.name).await?,
            };
            Ok(op.to_wire())
        }
        .await;
        let outcome = result.as_ref().map(|_| ()).map_err(|e| e.to_string());
        let operation_id = result.as_ref().map(|op| op.id.clone()).unwrap_or_default();
        let about = Audited { spec_name, operation_id, request: audited };
        self.0.audit(&caller, "RevokeSessions", about, &outcome).await;
        Ok(Response::new(pb::RevokeSessionsResponse { operation: Some(result?) }))
    }

    async fn verify_access(
        &self,
        request: Request<pb::VerifyAccessRequest>,
    ) -> Result<Response<pb::VerifyAccessResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Read)?;
        let s = spec(request.get_ref().spec.as_ref())?;
        Ok(Response::new(self.0.engine.verify_for(&s, caller.audience()).await.map_err(ApiError::from)?.to_wire()))
    }

    async fn get_switch_role_links(
        &self,
        request: Request<pb::GetSwitchRoleLinksRequest>,
    ) -> Result<Response<pb::GetSwitchRoleLinksResponse>, Status> {
        self.0.caller(&request, Scope::Read)?;
        Ok(Response::new(super::exports::links(&self.0, request.get_ref()).await?))
    }

    /// The one response that carries an ExternalId, and only to a token with `reveal_external_ids`: it exists to
    /// hand the ExternalId to the people who assume the role. Other tokens get the profiles with a note instead.
    async fn export_profiles(
        &self,
        request: Request<pb::ExportProfilesRequest>,
    ) -> Result<Response<pb::ExportProfilesResponse>, Status> {
        let caller = self.0.caller(&request, Scope::Read)?;
        Ok(Response::new(super::exports::profiles(&self.0, &caller, request.get_ref()).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_names_each_bad_account_by_its_place_in_the_list() {
        let field = |accounts: &[&str]| match release_former_grants(
            &accounts.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "ops",
        ) {
            Err(ApiError::Invalid(v)) => (v[0].field.clone(), v[0].rule.clone()),
            other => panic!("{other:?}"),
        };
        assert_eq!(field(&["111122223333", "1111"]).0, "release_former_grants[1]");
        let (at, rule) = field(&["111122223333", "111122223333"]);
        assert_eq!(
            (at.as_str(), rule.as_str()),
            ("release_former_grants[1]", "names account 111122223333 more than once")
        );
        let release = release_former_grants(&["111122223333".into()], "ops").unwrap();
        assert_eq!((release.accounts.len(), release.by.as_str()), (1, "ops"));
    }
}
