//! Spec commands: validate, plan, apply, destroy, verify (links and export: [`crate::exports`]).

use std::{io::IsTerminal, path::PathBuf};

use crossrole_client::{Client, proto};

use crate::{Failure, Outcome, Output, json, progress, views};

/// A spec file.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SpecArgs {
    /// The spec file (YAML, or JSON by its .json extension).
    #[arg(long, short)]
    pub(crate) file: PathBuf,
}

/// A plan, for `--refresh`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    spec: SpecArgs,
    #[command(flatten)]
    release: ReleaseArgs,
    #[command(flatten)]
    external_id: ExternalIdArgs,
    /// Read the organization now — the whole of it, and the tags of every account a tag condition looks at —
    /// instead of from crossroled's cache (up to `organization_cache_ttl` old; tags up to
    /// `organization_tags_max_age`).
    #[arg(long)]
    refresh: bool,
}

/// Former grants given up on.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReleaseArgs {
    /// Give up on the former grant in this trusted account (repeatable): the policy crossrole placed where the
    /// spec's grant was before it was removed or moved, which crossrole can no longer read (the account closed, gone
    /// from the organization, or its bootstrap role removed). It is left where it is, the plan says so and who asked,
    /// and once the apply succeeds it is not looked for again. Refused for an account with no such grant.
    #[arg(long = "release-former-grant", value_name = "ACCOUNT_ID")]
    accounts: Vec<String>,
}

/// The ExternalId's rotation, for a token that may not read ExternalIds.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ExternalIdArgs {
    /// Write the spec's ExternalId to every existing role, and revoke the role's sessions with it (a rotation, a
    /// leaked ExternalId). Without it, a token that may not read ExternalIds (`reveal_external_ids` false) is shown
    /// each role's own ExternalId in place of the spec's — no plan tells it whether the one it sent is AWS's — and
    /// the apply keeps each existing role's own. With it, the plan shows the trust rewritten and the revocation in
    /// every account whose role exists, whatever ExternalId AWS holds, and the apply writes exactly that. A token
    /// that may read ExternalIds needs no flag: the spec's is compared, and written where it differs.
    #[arg(long)]
    write_external_id: bool,
}

/// Destroy (and what apply shares with it).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DestroyArgs {
    /// The spec file.
    #[arg(long, short)]
    file: PathBuf,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    yes: bool,
    /// Idempotency key: the same request sent again with it gets the operation it started. `crossrole apply`
    /// plans before it applies, so run again it sends the same request only with `--plan` (a saved plan); a plan
    /// made again that changed is another request, refused: use a new key.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Start the operation, print its id and return without following it.
    #[arg(long)]
    no_wait: bool,
}

/// Apply: the plan shown is the plan applied.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "The plan shown (and confirmed, or printed with --yes) is the plan applied: crossroled \
    refuses the apply, with nothing done, when the accounts it targets are no longer the plan's, and leaves untouched \
    each account whose role changed since the plan. Plan again then.")]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    common: DestroyArgs,
    #[command(flatten)]
    release: ReleaseArgs,
    #[command(flatten)]
    external_id: ExternalIdArgs,
    /// Apply a plan saved with `crossrole plan -f SPEC -o json > FILE` (after review): it is applied as it is, or
    /// not at all, without planning again or asking.
    #[arg(long, value_name = "FILE", conflicts_with = "refresh")]
    plan: Option<PathBuf>,
    /// Plan from the organization read now, its tags included (see `crossrole plan --refresh`).
    #[arg(long)]
    refresh: bool,
    /// End the access at this time (RFC 3339, e.g. 2026-12-05T18:00:00Z): crossroled destroys it then. Applying
    /// again with a new end extends it; without one, the end stays.
    #[arg(long, conflicts_with = "expires_in")]
    expires_at: Option<String>,
    /// End the access this long from now (e.g. 4h).
    #[arg(long, allow_hyphen_values = true, value_parser = crate::views::positive_duration)]
    expires_in: Option<String>,
}

/// Loads and validates a spec file locally, as the SDK does (`crossrole_client::spec_file`).
pub(crate) fn load(path: &PathBuf) -> Result<proto::AccessSpec, Failure> {
    crossrole_client::spec_file::load(path).map_err(|e| Failure::usage(e.to_string()))
}

fn finding_line(f: &proto::Finding) -> String {
    let severity = proto::FindingSeverity::try_from(f.severity)
        .map(|s| views::short(s.as_str_name(), "FINDING_SEVERITY_"))
        .unwrap_or_default();
    let guardrail = proto::Guardrail::try_from(f.guardrail)
        .map(|g| views::short(g.as_str_name(), "GUARDRAIL_").replace('_', "-"))
        .unwrap_or_default();
    let waived = if f.waiver_reason.is_empty() { String::new() } else { format!(" (waived: {})", f.waiver_reason) };
    format!("{severity} {guardrail} at {}: {}{waived}", f.field, f.message)
}

pub(crate) async fn validate(client: &Client, args: SpecArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let r = client.validate(spec).await?;
    match out {
        Output::Json => json::print(&json::Validation {
            valid: true,
            findings: r.findings.iter().map(finding_line).collect(),
            trust_policy: &r.trust_policy,
        }),
        Output::Table => {
            println!("{} is valid.", args.file.display());
            for f in &r.findings {
                println!("  {}", finding_line(f));
            }
            println!("trust policy:\n{}", r.trust_policy);
        }
    }
    Ok(())
}

fn print_plan(plan: &proto::AccessPlan) {
    for f in &plan.findings {
        println!("{}", finding_line(f));
    }
    // Accounts that get the same changes are shown together: plans of large organizations stay readable.
    let mut groups: std::collections::BTreeMap<Vec<String>, Vec<&proto::AccountPlan>> =
        std::collections::BTreeMap::new();
    let mut t = views::table(&["ACCOUNTS", "STATUS", "CHANGES"]);
    for a in &plan.accounts {
        if a.status == proto::AccountPlanStatus::Changes as i32 {
            groups.entry(a.changes.iter().map(views::change_line).collect()).or_default().push(a);
        }
    }
    let names = |accounts: &[&proto::AccountPlan]| {
        let mut shown: Vec<String> =
            accounts.iter().take(4).map(|a| format!("{} {}", a.account_id, a.account_name)).collect();
        if accounts.len() > 4 {
            shown.push(format!("… and {} more", accounts.len() - 4));
        }
        format!("{}\n{}", views::count(accounts.len(), "account"), shown.join("\n"))
    };
    for (changes, accounts) in &groups {
        t.add_row(vec![names(accounts), "changes".to_string(), changes.join("\n")]);
    }
    for a in plan.accounts.iter().filter(|a| {
        a.status != proto::AccountPlanStatus::Changes as i32 && a.status != proto::AccountPlanStatus::InSync as i32
    }) {
        let detail = match &a.error {
            Some(e) => e.message.clone(),
            None => a.findings.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; "),
        };
        t.add_row(vec![format!("{} {}", a.account_id, a.account_name), views::plan_status(a.status), detail]);
    }
    let in_sync: Vec<&proto::AccountPlan> =
        plan.accounts.iter().filter(|a| a.status == proto::AccountPlanStatus::InSync as i32).collect();
    if !in_sync.is_empty() {
        t.add_row(vec![names(&in_sync), "in sync".to_string(), String::new()]);
    }
    println!("{t}");
    if let Some(g) = &plan.grant {
        if let Some(e) = &g.error {
            println!("trusted side ({}): cannot plan: {}", g.account_id, e.message);
        } else if g.changes.is_empty() {
            println!("trusted side ({}): {} is in sync", g.account_id, g.policy_arn);
        } else {
            println!("trusted side ({}):", g.account_id);
            for c in &g.changes {
                println!("  {}", views::change_line(c));
                // Whose sessions a cut revokes, or that they stay: said in full, before anything is written.
                if views::is_sessions_change(c.kind) {
                    println!("    {}", c.after);
                }
                // A former grant given up on: who released it, and why it could not be read.
                if c.kind == proto::ChangeKind::FormerGrantReleased as i32 {
                    println!("    {} ({})", c.after, c.before);
                }
            }
        }
    }
    for s in &plan.skipped {
        println!("skipped {}: {}", s.account.as_ref().map(|a| a.id.as_str()).unwrap_or(""), s.reason);
    }
    let count = |st: proto::AccountPlanStatus| plan.accounts.iter().filter(|a| a.status == st as i32).count();
    println!(
        "Plan: {} in {}; {} in sync, {}, {} could not be read.",
        views::count(plan.total_changes as usize, "change"),
        views::count(plan.accounts_with_changes as usize, "account"),
        count(proto::AccountPlanStatus::InSync),
        views::count(count(proto::AccountPlanStatus::Conflict), "conflict"),
        count(proto::AccountPlanStatus::Failed)
    );
    if !plan.external_id_note.is_empty() {
        println!("Note: {}.", plan.external_id_note);
    }
}

/// How old what a plan read of the organization is, for people; `hint`, when it is not just now, says how to read
/// it now.
fn read_times(plan: &proto::AccessPlan, hint: &str) -> Option<String> {
    let age = |t: &prost_types::Timestamp| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.seconds.max(0) as u64);
        std::time::SystemTime::now().duration_since(at).unwrap_or_default().as_secs()
    };
    let said = |secs: u64| match secs {
        0 => "just now".to_string(),
        n => format!("{} ago", humantime::format_duration(std::time::Duration::from_secs(n))),
    };
    let tree = age(plan.organization_read_time.as_ref()?);
    let tags = plan.tags_read_time.as_ref().map(age);
    let mut line = format!("The organization was read {}", said(tree));
    if let Some(tags) = tags {
        line.push_str(&format!(", its account tags {}", said(tags)));
    }
    if !hint.is_empty() && tree.max(tags.unwrap_or(0)) > 0 {
        line.push_str(&format!(" ({hint})"));
    }
    Some(format!("{line}."))
}

pub(crate) async fn plan(client: &Client, args: PlanArgs, out: Output) -> Outcome {
    let spec = load(&args.spec.file)?;
    let read = if args.refresh { proto::OrganizationRead::Fresh } else { proto::OrganizationRead::Cached };
    let request = proto::PlanAccessRequest {
        spec: Some(spec),
        organization_read: read as i32,
        release_former_grants: args.release.accounts,
        write_external_id: args.external_id.write_external_id,
        ..Default::default()
    };
    let plan = client.plan_request(request).await?;
    match out {
        Output::Json => json::print(&json::Plan::new(&plan, finding_line)),
        Output::Table => {
            print_plan(&plan);
            if let Some(line) = read_times(&plan, "crossroled's cache; --refresh reads it now") {
                println!("{line}");
            }
        }
    }
    if plan.accounts.iter().any(|a| a.status == proto::AccountPlanStatus::Failed as i32) {
        return Err(Failure::accounts(""));
    }
    Ok(())
}

/// A refusal for want of scope, said for the command that was run: its first call (the plan, before an apply) may
/// need less than the command does, and naming that call's scope would send the person for the wrong token.
pub(crate) fn needs_scope(e: crossrole_client::Error, command: &str, scope: &str) -> Failure {
    if let crossrole_client::Error::PermissionDenied(m) = &e {
        let token = m.split(", this call needs").next().unwrap_or(m);
        return Failure {
            code: 3,
            message: format!("permission denied: {token}; `{command}` needs a token with scope {scope}"),
        };
    }
    e.into()
}

pub(crate) fn confirm(question: &str) -> Result<bool, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage("refusing to change anything without --yes in a non-interactive session"));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).map_err(|e| Failure::usage(e.to_string()))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// The fingerprint of a plan saved with `crossrole plan -o json`.
fn saved_plan(path: &PathBuf) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| Failure::usage(format!("--plan {}: {e}", path.display())))?;
    let saved: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Failure::usage(format!(
            "--plan {}: not a plan saved from `crossrole plan -f <spec file> -o json` ({e})",
            path.display()
        ))
    })?;
    match saved.get("fingerprint").and_then(|f| f.as_str()) {
        Some(f) if !f.is_empty() => Ok(f.to_string()),
        _ => Err(Failure::usage(format!(
            "--plan {}: the plan has no fingerprint; save the output of `crossrole plan -f <spec file> -o json`",
            path.display()
        ))),
    }
}

/// `crossrole apply`: plans as the apply reads the organization, shows the plan, asks (unless `--yes`), and
/// applies that plan — its fingerprint goes with the apply, so crossroled applies it or nothing. With `--plan`,
/// the plan saved before is applied that way, without planning or asking again.
pub(crate) async fn apply(client: &Client, args: ApplyArgs, out: Output) -> Outcome {
    let spec = load(&args.common.file)?;
    let human = out == Output::Table;
    let (expires_at, expires_in) = views::end_flags(args.expires_at.as_deref(), args.expires_in.as_deref())?;
    let ending = expires_at.is_some() || expires_in.is_some();
    let fingerprint = match &args.plan {
        Some(path) => saved_plan(path)?,
        None => {
            // The plan needs less than the apply: a token that may only read is told what the command needs.
            let read = if args.refresh { proto::OrganizationRead::Fresh } else { proto::OrganizationRead::AsApply };
            let request = proto::PlanAccessRequest {
                spec: Some(spec.clone()),
                organization_read: read as i32,
                release_former_grants: args.release.accounts.clone(),
                write_external_id: args.external_id.write_external_id,
                ..Default::default()
            };
            let plan = client.plan_request(request).await.map_err(|e| needs_scope(e, "crossrole apply", "apply"))?;
            if human {
                print_plan(&plan);
                if let Some(line) = read_times(&plan, "") {
                    println!("{line}");
                }
            }
            // An apply with an end sets it even when nothing else changes (an extension).
            if plan.total_changes == 0 && !ending {
                if human {
                    println!("Nothing to change.");
                } else {
                    json::print(&json::NoChanges { changes: 0 });
                }
                return Ok(());
            }
            if !args.common.yes
                && plan.total_changes > 0
                && !confirm(&format!(
                    "Apply {} in {}?",
                    views::count(plan.total_changes as usize, "change"),
                    views::count(plan.accounts_with_changes as usize, "account")
                ))?
            {
                return Err(Failure::usage("not applied"));
            }
            plan.fingerprint
        }
    };
    let request = proto::ApplyAccessRequest {
        spec: Some(spec),
        idempotency_key: args.common.idempotency_key.clone().unwrap_or_default(),
        plan_fingerprint: fingerprint,
        expires_at,
        expires_in,
        release_former_grants: args.release.accounts,
        write_external_id: args.external_id.write_external_id,
        ..Default::default()
    };
    let (handle, end) = client.apply_request(request).await.map_err(refused_plan)?;
    if human && let Some(ends) = views::ends(&end) {
        println!("The access {ends} ({}).", views::time(&end).unwrap_or_default());
    }
    started_ending(handle, args.common.no_wait, out, Some(&end)).await
}

/// An apply crossroled refused because what it would do is not the plan confirmed: said as such.
pub(crate) fn refused_plan(e: crossrole_client::Error) -> Failure {
    match &e {
        crossrole_client::Error::FailedPrecondition(m) if m.contains("plan again") => {
            Failure::usage(format!("not applied: {m}"))
        }
        _ => e.into(),
    }
}

/// Follows an operation just started, or (`no_wait`) says how to.
pub(crate) async fn started(handle: crossrole_client::OperationHandle, no_wait: bool, out: Output) -> Outcome {
    started_ending(handle, no_wait, out, None).await
}

/// [`started`], for an apply when `apply_end` is given: its JSON says the end of the access it applies.
async fn started_ending(
    handle: crossrole_client::OperationHandle,
    no_wait: bool,
    out: Output,
    apply_end: Option<&Option<prost_types::Timestamp>>,
) -> Outcome {
    if no_wait {
        match (out, apply_end) {
            (Output::Json, Some(end)) => json::print(&json::Applied::new(handle.initial(), end)),
            (Output::Json, None) => json::print(&json::Operation::from(handle.initial())),
            (Output::Table, _) => {
                println!("operation {} started; follow it with `crossrole ops watch {}`", handle.id(), handle.id())
            }
        }
        return Ok(());
    }
    progress::follow_ending(&handle, out, apply_end).await
}

pub(crate) async fn destroy(client: &Client, args: DestroyArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let human = out == Output::Table;
    {
        let targets = client
            .list_accounts(proto::ListAccountsRequest {
                selector: spec.targets.clone(),
                page_size: 1,
                ..Default::default()
            })
            .await?
            .total_size;
        let role = spec.role.as_ref().map(|r| r.name.clone()).unwrap_or_default();
        if human {
            println!(
                "Destroy removes role {role} (and the trusted side's policy) from the {targets} selected accounts and every account where spec {:?} was applied before; roles crossrole does not own are left alone.",
                spec.name
            );
        }
        if !args.yes && !confirm("Destroy?")? {
            return Err(Failure::usage("not destroyed"));
        }
    }
    let handle = client.destroy(spec, args.idempotency_key.clone()).await?;
    started(handle, args.no_wait, out).await
}

pub(crate) async fn verify(client: &Client, args: SpecArgs, out: Output) -> Outcome {
    let spec = load(&args.file)?;
    let r = client.verify(spec).await?;
    let outcome = |c: Option<&proto::AssumeCheck>| c.map(|c| views::check(c.outcome)).unwrap_or_default();
    let mut bad = 0;
    for a in &r.accounts {
        let live_failed = a.assume.as_ref().is_some_and(|c| c.outcome == proto::CheckOutcome::Failed as i32);
        let static_failed = a.trust_checks.iter().any(|c| c.outcome == proto::CheckOutcome::Failed as i32);
        if a.conformance != proto::RoleConformance::InSync as i32 || live_failed || static_failed {
            bad += 1;
        }
    }
    match out {
        Output::Json => json::print(&json::Verification::from(&r)),
        Output::Table => {
            let mut t = views::table(&["ACCOUNT", "NAME", "ROLE", "LIVE ASSUME", "TRUST POLICY CHECKS"]);
            for a in &r.accounts {
                let live = match &a.assume {
                    Some(c) if c.outcome == proto::CheckOutcome::Passed as i32 => {
                        format!("passed → {} ({} attempts)", c.assumed_account_id, c.attempts)
                    }
                    Some(c) => format!("{}: {}", outcome(Some(c)), c.error),
                    None => String::new(),
                };
                let passed = a.trust_checks.iter().filter(|c| c.outcome == proto::CheckOutcome::Passed as i32).count();
                let mut checks = format!("{passed}/{} passed", a.trust_checks.len());
                for c in a.trust_checks.iter().filter(|c| c.outcome != proto::CheckOutcome::Passed as i32) {
                    checks.push_str(&format!("\n{}: {}", c.principal_arn, c.reason));
                }
                let mut role = views::conformance(a.conformance);
                for d in &a.drift {
                    role.push_str(&format!("\n{}", views::change_line(d)));
                }
                t.add_row(vec![a.account_id.clone(), a.account_name.clone(), role, live, checks]);
            }
            println!("{t}");
            println!("{} of {} verified", r.accounts.len() - bad, views::count(r.accounts.len(), "account"));
            if !r.external_id_note.is_empty() {
                println!("Note: {}.", r.external_id_note);
            }
        }
    }
    if bad > 0 { Err(Failure::accounts(format!("{} did not verify", views::count(bad, "account")))) } else { Ok(()) }
}
