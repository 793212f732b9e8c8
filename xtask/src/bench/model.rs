//! Part A: the engine against a model of AWS, on a paused clock, at 100, 1,000 and 10,000 accounts, against a
//! floor computed from the model; with sensitivity rows for other quotas; then the inventory and `crossrole revoke`
//! across the organization at 1,000 and 10,000 accounts, each against its own floor.

use std::{path::Path, process::Command};

use anyhow::Result;
use serde_json::Value;

use super::{
    process::output,
    report::{Report, Spread, Table},
};

/// One model run's figures, by name.
fn model(bench: &Path, accounts: usize, options: &[&str]) -> Result<Value> {
    let mut cmd = Command::new(bench);
    cmd.args(["model", &accounts.to_string()]).args(options);
    Ok(serde_json::from_str(&output(&mut cmd)?)?)
}

/// Runs part A (`quick`: without 10,000 accounts) and writes it into `report`.
pub(super) fn run(bench: &Path, quick: bool, runs: usize, report: &mut Report) -> Result<()> {
    report.heading(2, "A. The engine against a model of AWS");
    report.paragraph([
        "The model keeps AWS's quotas where AWS keeps them: IAM per account (each target account its own bucket), \
         STS per calling account (crossroled's AssumeRoles against its account, verify's against the trusted \
         account, each session's GetCallerIdentity against its target), Organizations per organization; over a \
         quota AWS answers Throttling.",
        "Quotas: Organizations 10/s (AWS's documented request rate for most Organizations APIs), IAM 10/s per \
         account (IAM does not publish its rate; 10/s is what stays clear of it in practice), STS 100/s per caller \
         (AWS's AssumeRole quota is 600/s per account and region; 100/s is the conservative share the issue asked \
         for; 600/s is a sensitivity row).",
        "Latency per call: Organizations 100±50 ms, IAM 80±40 ms, STS 40±20 ms.",
        "crossrole is configured at 98% of the quotas, as an operator would configure it, and its concurrency is \
         its default (automatic, from the rates and the measured time per account).",
        "Verify on.",
        "The spec: a role with 2 managed policies, an inline policy and a grant to a user; the organization: OUs \
         of 500 accounts.",
        "Wall time is virtual (tokio's paused clock); CPU and memory are real (the whole process, the model of AWS \
         included).",
    ]);
    report.paragraph([
        "The floor is computed from the model, not from crossrole's settings: discovery (its Organizations calls \
         at the quota, or the chain of pages that wait for each other, whichever is longer) and the busiest bucket \
         every account shares (AssumeRoles at the STS quota, its burst going at once) overlap — an account can be \
         worked on once its page of accounts is listed, and the two are different quotas — so the longer of the \
         two counts; then the last account's calls in sequence at their mean latency, then the trusted side's.",
        "*Cold*: an apply on its own (the organization walked, every account assumed into).",
        "*Warm*: the apply right after a plan, from the plan's tree and credentials (crossroled keeps credentials \
         across operations; the operator lets an apply use a tree as old as its plan with \
         `apply_organization_max_age`, 0 by default).",
        "*Plan*: that plan, on its own (the organization walked, every account assumed into); its floor is \
         computed the same way from the calls a plan needs: discovery and its AssumeRoles at the STS quota \
         overlap, then the last account's AssumeRole and GetRole, then the trusted side's AssumeRole and \
         GetPolicy.",
    ]);

    let mut table = Table::new(&[
        "accounts",
        "cold wall (s)",
        "cold floor (s)",
        "cold wall/floor",
        "warm wall (s)",
        "warm floor (s)",
        "warm wall/floor",
        "plan wall (s)",
        "plan floor (s)",
        "plan wall/floor",
        "most in flight",
        "calls per account (IAM, STS, Orgs)",
        "re-apply IAM writes",
        "re-apply calls/account",
        "throttled",
        "CPU ms/account",
        "peak RSS (MiB)",
    ]);
    let sizes: &[usize] = if quick { &[100, 1000] } else { &[100, 1000, 10_000] };
    for &n in sizes {
        let outcomes: Vec<Value> = (0..runs).map(|_| model(bench, n, &[])).collect::<Result<_>>()?;
        row(&mut table, &n.to_string(), &outcomes);
    }
    // Sensitivity to AWS's quotas, and the concurrency crossrole had before it worked it out (10), interleaved.
    let variants: &[(&str, &[&str])] = &[
        ("1000, STS 600/s", &["--sts", "600"]),
        ("1000, IAM 20/s per account", &["--iam", "20"]),
        ("1000, STS 600/s, IAM 20/s", &["--sts", "600", "--iam", "20"]),
        ("1000, max_concurrency 10 (the old default)", &["--concurrency", "10"]),
    ];
    let mut results: Vec<Vec<Value>> = vec![Vec::new(); variants.len()];
    for _ in 0..runs {
        for (i, (_, options)) in variants.iter().enumerate() {
            results[i].push(model(bench, 1000, options)?);
        }
    }
    for ((label, _), outcomes) in variants.iter().zip(&results) {
        row(&mut table, label, outcomes);
    }
    report.table(&table);
    report.paragraph([
        "Figures are the median of the runs, [min–max] where they differ (virtual times repeat exactly: the \
         model's jitter is seeded).",
        "Targets: wall/floor ≤ 1.10, warm, at 100, 1,000 and 10,000 accounts, and the plan's too; a \
         10,000-account apply in ≤ 150 s of model time; zero IAM writes on re-apply; peak RSS under 200 MiB at \
         10,000 accounts.",
    ]);
    org_wide(bench, quick, runs, report)
}

/// The inventory and `crossrole revoke` across the organization, each against its floor.
fn org_wide(bench: &Path, quick: bool, runs: usize, report: &mut Report) -> Result<()> {
    report.paragraph([
        "*Across the organization*: the inventory of N accounts × 50 hand-made roles (six shapes of trust in turn, \
         each role with a managed policy, every third with an inline policy; each account also has its bootstrap \
         role) and `crossrole revoke` in the N accounts where the spec above is placed, in the same model, \
         quotas and headroom.",
        "The inventory's floor: per account one AssumeRole (crossroled's STS bucket, shared by every account) and \
         ceil(roles ÷ 1000) GetAccountAuthorizationDetails calls (IAM's quota, the account's own bucket); the \
         accounts overlap, so the STS bucket sets the pace, then the last account's calls in sequence at their \
         mean latency; where the organization is walked, discovery overlaps the STS bucket as for the apply \
         (different quotas; an account can be read once its page of accounts is listed). crossroled assumes into \
         an account as soon as its page is listed and reads it once the whole organization is (a trusted account \
         is judged inside or outside it), holding only the session meanwhile.",
        "Revoke's floor is the same with one GetRole (is the role this spec's?) and one PutRolePolicy (the \
         AWSRevokeOlderSessions deny) in place of the reads; each account is revoked in as soon as its page lists \
         it; it runs in a crossroled that holds no credentials (the spec applied before by another).",
        "*Organization walked*: a crossroled that holds no tree of the organization (or one older than \
         `organization_cache_ttl`, 5 minutes by default); *known*: one that read it within that time.",
        "Concurrency: each operation's own (at most 64 accounts assuming and 64 reading or writing their IAM at \
         once; the call layer's buckets set the pace).",
        "Memory: the process's resident memory once the model of AWS is seeded (its roles are the model's, held \
         by the in-memory AWS), and its peak by the end of the operation; the difference is what the operation \
         held at most.",
        "Roles found: what the inventory serves back afterwards, every page (for revoke, the roles that carry the \
         deny).",
    ]);
    let mut table = Table::new(&[
        "operation",
        "organization",
        "wall (s)",
        "floor (s)",
        "wall/floor",
        "floor's parts (s)",
        "most in flight",
        "calls per account",
        "throttled",
        "roles found",
        "CPU ms/account",
        "RSS seeded (MiB)",
        "peak RSS (MiB)",
    ]);
    let sizes: &[usize] = if quick { &[100, 1000] } else { &[1000, 10_000] };
    let cases: &[(&str, &str, &str)] = &[
        ("model-inventory", "walked", "inventory of {n} accounts × 50 roles"),
        ("model-inventory", "known", "inventory of {n} accounts × 50 roles"),
        ("model-revoke", "known", "revoke in {n} accounts"),
        ("model-revoke", "walked", "revoke in {n} accounts"),
    ];
    for &n in sizes {
        for (command, organization, label) in cases {
            let outcomes: Vec<Value> = (0..runs)
                .map(|_| {
                    let mut cmd = Command::new(bench);
                    cmd.args([*command, &n.to_string(), "--organization", organization]);
                    Ok(serde_json::from_str(&output(&mut cmd)?)?)
                })
                .collect::<Result<_>>()?;
            org_wide_row(&mut table, &label.replace("{n}", &thousands(n)), organization, &outcomes);
        }
    }
    report.table(&table);
    report.paragraph([
        "Targets (issues 32 and 33): the inventory of 10,000 accounts × 50 roles and revoke in 10,000 accounts \
         within 1.10× of their floors; the inventory's memory bounded while it streams (not every role of the \
         organization held at once).",
    ]);
    Ok(())
}

/// One row of the organization-wide table.
fn org_wide_row(table: &mut Table, label: &str, organization: &str, outcomes: &[Value]) {
    let spread = |key: &str, digits: usize| {
        Spread::of(outcomes.iter().map(|o| o[key].as_f64().unwrap_or(0.0))).bracketed(digits)
    };
    let first = &outcomes[0];
    let figures = |key: &str, digits: usize| {
        first[key]
            .as_object()
            .map(|m| {
                let parts: Vec<String> =
                    m.iter().map(|(k, v)| format!("{k} {:.digits$}", v.as_f64().unwrap_or(0.0))).collect();
                parts.join(", ")
            })
            .unwrap_or_default()
    };
    table
        .row()
        .cell(label)
        .cell(organization)
        .cell(spread("wall_s", 1))
        .cell(spread("floor_s", 1))
        .cell(spread("ratio", 3))
        .cell(figures("floor_parts_s", 1))
        .cell(&first["max_in_flight"])
        .cell(figures("calls_per_account", 2))
        .cell(spread("throttled", 0))
        .cell(spread("roles_found", 0))
        .cell(spread("cpu_ms_per_account", 2))
        .cell(spread("rss_before_mib", 0))
        .cell(spread("peak_rss_mib", 0));
}

/// `10000` as `10,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One row of the table: the figures of `outcomes` (one per run), spread where they vary; the counts of the
/// first run.
fn row(table: &mut Table, label: &str, outcomes: &[Value]) {
    let spread = |key: &str, digits: usize| {
        Spread::of(outcomes.iter().map(|o| o[key].as_f64().unwrap_or(0.0))).bracketed(digits)
    };
    let first = &outcomes[0];
    let per_account = |service: &str| first["by_service_per_account"][service].as_f64().unwrap_or(0.0);
    table
        .row()
        .cell(label)
        .cell(spread("wall_s", 1))
        .cell(spread("floor_s", 1))
        .cell(spread("ratio", 3))
        .cell(spread("warm_wall_s", 1))
        .cell(spread("warm_floor_s", 1))
        .cell(spread("warm_ratio", 3))
        .cell(spread("plan_wall_s", 1))
        .cell(spread("plan_floor_s", 1))
        .cell(spread("plan_ratio", 3))
        .cell(&first["max_in_flight"])
        .cell(format!("{:.2}, {:.2}, {:.3}", per_account("iam"), per_account("sts"), per_account("organizations")))
        .cell(&first["reapply_iam_writes"])
        .cell(spread("reapply_calls_per_account", 2))
        .cell(spread("throttled", 0))
        .cell(spread("cpu_ms_per_account", 2))
        .cell(spread("peak_rss_mib", 0));
}
