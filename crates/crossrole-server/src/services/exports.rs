//! What people copy to use a spec's role: Switch Role links and exported profiles, only for the target accounts
//! where crossrole applied the spec (the journal's placements: the role there is crossrole's), unless the caller
//! asks for the others; every account left out is named with why.

use std::{collections::BTreeSet, time::Duration};

use crossrole_core::{
    AccessSpec,
    export::{self, Account, LeftOut},
    links::{SwitchRoleLink, switch_role_link},
};
use crossrole_wire::pb;

use crate::{auth::Caller, error::ApiError, state::State};

/// The spec's target accounts, each marked with whether crossrole applied the spec there.
async fn targets(state: &State, s: &AccessSpec) -> Result<Vec<Account>, ApiError> {
    let (_, selection) = state.engine.select(&s.targets, "spec.targets", false).await?;
    let placed: BTreeSet<String> = state.engine.journal().placements(&s.name).await?.into_iter().collect();
    Ok(selection
        .selected
        .into_iter()
        .map(|a| Account { applied: placed.contains(&a.id), id: a.id, name: a.name, joined_at: a.joined_at })
        .collect())
}

/// A link carries no ExternalId, only whether the role needs one (then it is a console command, not a link): a
/// spec sent back as it was shown to a caller who may not read ExternalIds — a binding's, in the web console —
/// has its ExternalId as a mark, which stands here for "one is set".
fn unmarked(mut spec: Option<pb::AccessSpec>) -> Option<pb::AccessSpec> {
    if let Some(trust) = spec.as_mut().and_then(|s| s.role.as_mut()).and_then(|r| r.trust.as_mut())
        && crossrole_core::secret::Redactor::is_mark(&trust.external_id)
    {
        trust.external_id = "marked-external-id".into();
    }
    spec
}

fn left_out(accounts: Vec<LeftOut>) -> Vec<pb::LeftOutAccount> {
    accounts
        .into_iter()
        .map(|l| pb::LeftOutAccount { account_id: l.account_id, account_name: l.account_name, reason: l.reason })
        .collect()
}

/// `GetSwitchRoleLinks`.
pub(crate) async fn links(
    state: &State,
    r: &pb::GetSwitchRoleLinksRequest,
) -> Result<pb::GetSwitchRoleLinksResponse, ApiError> {
    let s = crate::state::spec(unmarked(r.spec.clone()).as_ref())?;
    let partition = state.engine.partition();
    let accounts = targets(state, &s).await?;
    let (usable, left) = export::usable(&s, &accounts, r.include_unapplied);
    let links = usable
        .into_iter()
        .map(|a| {
            let (url, reason) = match switch_role_link(&s, partition, &a.id, &a.name) {
                SwitchRoleLink::Url(u) => (u, String::new()),
                SwitchRoleLink::Unusable(r) => (String::new(), r),
            };
            pb::SwitchRoleLink {
                role_arn: s.role.arn(partition, &a.id),
                account_id: a.id.clone(),
                account_name: a.name.clone(),
                url,
                unusable_reason: reason,
                applied: a.applied,
            }
        })
        .collect();
    Ok(pb::GetSwitchRoleLinksResponse { links, left_out: left_out(left) })
}

fn format(value: i32) -> Result<export::Format, ApiError> {
    match pb::ExportFormat::try_from(value) {
        Ok(pb::ExportFormat::Unspecified | pb::ExportFormat::AwsConfig) => Ok(export::Format::AwsConfig),
        Ok(pb::ExportFormat::Aesr) => Ok(export::Format::Aesr),
        Ok(pb::ExportFormat::Json) => Ok(export::Format::Json),
        Err(_) => Err(ApiError::field("format", &format!("unknown value {value}"))),
    }
}

/// The request's options, each checked, naming the field it breaks.
fn options<'a>(
    s: &AccessSpec,
    r: &'a pb::ExportProfilesRequest,
    format: export::Format,
    caller: &Caller,
) -> Result<export::Options<'a>, ApiError> {
    if r.source_profile.is_empty() && format == export::Format::AwsConfig {
        return Err(ApiError::field(
            "source_profile",
            "required for AWS config profiles: the profile holding the trusted side's credentials",
        ));
    }
    if !r.profile_name_template.is_empty()
        && let Err(rule) = export::check_name_template(&r.profile_name_template)
    {
        return Err(ApiError::field("profile_name_template", &rule));
    }
    let session = (r.duration_seconds != 0).then(|| Duration::from_secs(u64::from(r.duration_seconds)));
    if let Some(session) = session {
        export::check_session(s, session).map_err(|rule| ApiError::field("duration_seconds", &rule))?;
    }
    Ok(export::Options {
        source_profile: &r.source_profile,
        mfa_serial: (!r.mfa_serial.is_empty()).then_some(r.mfa_serial.as_str()),
        reveal_external_id: caller.reveal_external_ids,
        name_template: (!r.profile_name_template.is_empty()).then_some(r.profile_name_template.as_str()),
        include_unapplied: r.include_unapplied,
        session,
    })
}

/// `ExportProfiles`: the one response that carries an ExternalId, and only to a token with `reveal_external_ids`.
pub(crate) async fn profiles(
    state: &State,
    caller: &Caller,
    r: &pb::ExportProfilesRequest,
) -> Result<pb::ExportProfilesResponse, ApiError> {
    let s = crate::state::spec(r.spec.as_ref())?;
    let format = format(r.format)?;
    let options = options(&s, r, format, caller)?;
    let accounts = targets(state, &s).await?;
    let exported = export::export(&s, state.engine.partition(), &accounts, format, options);
    Ok(pb::ExportProfilesResponse {
        content: exported.text,
        profile_count: exported.profiles as u32,
        left_out: left_out(exported.left_out),
    })
}
