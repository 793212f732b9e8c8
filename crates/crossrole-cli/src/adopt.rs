//! `crossrole adopt`: bring roles people made by hand under a spec, never without a person's approval.
//!
//! For the spec's target accounts where a role of its name exists without crossrole's ownership, it shows how each
//! differs from the spec (the changes a takeover makes, in the order crossroled makes them: the boundary first),
//! asks which to take over (all, or account by account; `--all` / `--account` say it up front), and applies the
//! spec with `role.adopt_accounts` set to the approved accounts and `role.adopt_role_ids` to the unique id of each
//! role shown there — planned once more and applied as that plan or not at all. Only the roles shown are taken
//! over: one deleted and made again since (another id) is reported not owned. The apply is an operation in the
//! journal and a call in the audit trail, with the token that approved it and the accounts and roles it approved
//! (the request's spec). A role of another crossrole spec is never taken over.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::IsTerminal,
    path::PathBuf,
};

use crossrole_client::{Client, proto};

use crate::{Failure, Outcome, Output, access, json, views};

/// `crossrole adopt`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Without --all or --account, each account is asked about in turn (a terminal is needed). \
    The takeover is planned again with the approved accounts and applied as that plan or not at all.")]
pub(crate) struct AdoptArgs {
    /// The spec file (without role.adopt_existing, role.adopt_accounts or role.adopt_role_ids: adopt writes the
    /// approved accounts and roles).
    #[arg(long, short)]
    file: PathBuf,
    /// Approve taking over the role in every account shown.
    #[arg(long, conflicts_with = "accounts")]
    all: bool,
    /// Approve taking over the role in this account (repeatable); the others shown are left as they are.
    #[arg(long = "account", value_name = "ACCOUNT_ID")]
    accounts: Vec<String>,
    /// Show how each hand-made role differs from the spec, and take nothing over.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask before applying the spec's other changes (in accounts not taken over).
    #[arg(long, short)]
    yes: bool,
    /// Plan from the organization read now (see `crossrole plan --refresh`).
    #[arg(long)]
    refresh: bool,
    /// Start the operation, print its id and return without following it.
    #[arg(long)]
    no_wait: bool,
}

/// One account where a hand-made role can be taken over, and what the takeover changes.
#[derive(Debug, serde::Serialize)]
struct Candidate {
    account_id: String,
    account_name: String,
    role_arn: String,
    /// IAM's unique id of the role: the one approved, and no other of its name.
    role_id: String,
    changes: Vec<Takeover>,
}

/// One change of a takeover, as shown (and compared with the plan applied).
#[derive(Debug, PartialEq, Eq, serde::Serialize)]
struct Takeover {
    kind: String,
    subject: String,
    before: String,
    after: String,
}

impl From<&proto::Change> for Takeover {
    fn from(c: &proto::Change) -> Takeover {
        Takeover {
            kind: views::change_kind(c.kind),
            subject: c.subject.clone(),
            before: c.before.clone(),
            after: c.after.clone(),
        }
    }
}

impl Takeover {
    /// Whether `self` and `other` are the same change: an ExternalId's redaction mark differs from one answer to
    /// the next (it is made for each), the ExternalId it stands for does not.
    fn same(&self, other: &Takeover) -> bool {
        let unmarked = |s: &str| {
            let mut out = String::with_capacity(s.len());
            let mut rest = s;
            while let Some(at) = rest.find("<redacted:") {
                out.push_str(&rest[..at]);
                out.push_str("<redacted>");
                rest = rest[at..].find('>').map_or("", |end| &rest[at + end + 1..]);
            }
            out.push_str(rest);
            out
        };
        (self.kind.as_str(), self.subject.as_str()) == (other.kind.as_str(), other.subject.as_str())
            && unmarked(&self.before) == unmarked(&other.before)
            && unmarked(&self.after) == unmarked(&other.after)
    }
}

#[derive(Debug, serde::Serialize)]
struct Shown<'a> {
    candidates: &'a [Candidate],
    left_alone: &'a [(String, String)],
    approved: &'a BTreeSet<String>,
    dry_run: bool,
    external_id_note: &'a str,
}

pub(crate) async fn adopt(client: &Client, args: AdoptArgs, out: Output) -> Outcome {
    let spec = access::load(&args.file)?;
    let role =
        spec.role.as_ref().ok_or_else(|| Failure::usage(format!("{}: role: is required", args.file.display())))?;
    if role.adopt_existing || !role.adopt_accounts.is_empty() || !role.adopt_role_ids.is_empty() {
        return Err(Failure::usage(format!(
            "{}: role.adopt_existing / role.adopt_accounts / role.adopt_role_ids: adopt writes the accounts and roles \
             approved itself; give it the spec without them",
            args.file.display()
        )));
    }
    let read = if args.refresh { proto::OrganizationRead::Fresh } else { proto::OrganizationRead::AsApply };
    let plan = |spec: proto::AccessSpec| async move {
        client.plan_read(spec, read).await.map_err(|e| access::needs_scope(e, "crossrole adopt", "apply"))
    };

    // The conflicts as the spec stands, then the same accounts planned as taken over: those still in conflict
    // belong to another spec (never adopted), the rest are hand-made roles and their takeover.
    let before = plan(spec.clone()).await?;
    let conflicts: Vec<&proto::AccountPlan> =
        before.accounts.iter().filter(|a| a.status == proto::AccountPlanStatus::Conflict as i32).collect();
    // Each hand-made role by its unique id: the takeover shown, and approved, is of that role and no later one.
    let role_ids: BTreeMap<String, String> =
        conflicts.iter().filter(|a| !a.role_id.is_empty()).map(|a| (a.account_id.clone(), a.role_id.clone())).collect();
    let shown = with_adopt_accounts(&spec, &role_ids, conflicts.iter().map(|a| a.account_id.clone()).collect());
    let taken = if conflicts.is_empty() { None } else { Some(plan(shown).await?) };
    let mut candidates = Vec::new();
    let mut left_alone = Vec::new();
    for a in &conflicts {
        let over = taken.as_ref().and_then(|p| p.accounts.iter().find(|t| t.account_id == a.account_id));
        match over.filter(|t| t.status == proto::AccountPlanStatus::Changes as i32) {
            Some(t) => candidates.push(Candidate {
                account_id: t.account_id.clone(),
                account_name: t.account_name.clone(),
                role_arn: t.role_arn.clone(),
                role_id: a.role_id.clone(),
                changes: t.changes.iter().map(Takeover::from).collect(),
            }),
            None => {
                let why = a.findings.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join("; ");
                left_alone.push((a.account_id.clone(), why));
            }
        }
    }
    let known: BTreeSet<&str> = candidates.iter().map(|c| c.account_id.as_str()).collect();
    for account in &args.accounts {
        if !known.contains(account.as_str()) {
            return Err(Failure::usage(format!(
                "--account {account}: no hand-made role {:?} to take over there (the accounts that have one: {})",
                role.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                }
            )));
        }
    }
    let human = out == Output::Table;
    // A token that may not read ExternalIds is planned with each role's own in place of the spec's (no plan tells
    // such a caller whether a guess is right), so the diff cannot show whether the takeover changes it.
    let external_id_note = match (&role.trust, taken.as_ref()) {
        (Some(t), Some(p)) if !t.external_id.is_empty() && !p.external_id_note.is_empty() => {
            "this token may not read ExternalIds, so the diff cannot show whether a role's ExternalId differs from \
             the spec's; taking a role over keeps the role's own (one that requires none gets the spec's). Adopt with \
             a token that may read them (reveal_external_ids) to see and set it, or rotate it after with \
             `crossrole apply -f <spec file> --write-external-id`"
        }
        _ => "",
    };
    if human {
        show(&role.name, &candidates, &left_alone, &taken);
        if !external_id_note.is_empty() && !candidates.is_empty() {
            println!("Note: {external_id_note}.");
        }
    }
    let approved: BTreeSet<String> = if args.dry_run || candidates.is_empty() {
        BTreeSet::new()
    } else if args.all {
        known.iter().map(|a| a.to_string()).collect()
    } else if !args.accounts.is_empty() {
        args.accounts.iter().cloned().collect()
    } else if human {
        ask(&candidates)?
    } else {
        return Err(Failure::usage("-o json takes no answers: approve with --all or --account"));
    };
    if !human {
        json::print(&Shown {
            candidates: &candidates,
            left_alone: &left_alone,
            approved: &approved,
            dry_run: args.dry_run,
            external_id_note,
        });
    }
    if args.dry_run {
        return Ok(());
    }
    if approved.is_empty() {
        if human {
            println!("Nothing taken over.");
        }
        return Ok(());
    }

    // Planned again as it will be applied: the approved accounts, and the spec's other changes with them.
    let adopting = with_adopt_accounts(&spec, &role_ids, approved.clone());
    let confirmed = plan(adopting.clone()).await?;
    let shown_changes: BTreeMap<&str, &[Takeover]> =
        candidates.iter().map(|c| (c.account_id.as_str(), c.changes.as_slice())).collect();
    for a in confirmed.accounts.iter().filter(|a| approved.contains(&a.account_id)) {
        let now: Vec<Takeover> = a.changes.iter().map(Takeover::from).collect();
        let same = |shown: &&[Takeover]| shown.len() == now.len() && shown.iter().zip(&now).all(|(s, n)| s.same(n));
        if !shown_changes.get(a.account_id.as_str()).is_some_and(same) {
            return Err(Failure::usage(format!(
                "not adopted: the role in {} changed since it was shown; run crossrole adopt again",
                a.account_id
            )));
        }
    }
    let elsewhere: usize = confirmed
        .accounts
        .iter()
        .filter(|a| !approved.contains(&a.account_id) && a.status == proto::AccountPlanStatus::Changes as i32)
        .count();
    if elsewhere > 0 && human {
        println!(
            "The spec also changes {} where nothing is taken over (as `crossrole apply -f <spec file>` would):",
            views::count(elsewhere, "account")
        );
        for a in confirmed
            .accounts
            .iter()
            .filter(|a| !approved.contains(&a.account_id) && a.status == proto::AccountPlanStatus::Changes as i32)
        {
            let changes: Vec<String> = a.changes.iter().map(views::change_line).collect();
            println!("  {} {}: {}", a.account_id, a.account_name, changes.join(", "));
        }
        if !args.yes && !access::confirm("Apply those too, with the takeover?")? {
            return Err(Failure::usage("not adopted"));
        }
    } else if elsewhere > 0 && !args.yes {
        return Err(Failure::usage(format!(
            "not adopted: the spec also changes {} where nothing is taken over; refusing to change them without --yes",
            views::count(elsewhere, "account")
        )));
    }
    if human {
        println!(
            "Taking over role {:?} in {} ({}); the audit trail records this call, its token and the accounts.",
            role.name,
            views::count(approved.len(), "account"),
            approved.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    let handle = client.apply_confirmed(adopting, None, confirmed.fingerprint).await.map_err(access::refused_plan)?;
    access::started(handle, args.no_wait, out).await
}

/// `spec` taking over, in each of `accounts`, the role of the id `role_ids` gives there.
fn with_adopt_accounts(
    spec: &proto::AccessSpec,
    role_ids: &BTreeMap<String, String>,
    accounts: BTreeSet<String>,
) -> proto::AccessSpec {
    let mut spec = spec.clone();
    if let Some(role) = spec.role.as_mut() {
        role.adopt_role_ids =
            accounts.iter().filter_map(|a| role_ids.get(a).map(|id| (a.clone(), id.clone()))).collect();
        role.adopt_accounts = accounts.into_iter().collect();
    }
    spec
}

/// What each takeover changes, as a diff of what is there against the spec.
fn show(role: &str, candidates: &[Candidate], left_alone: &[(String, String)], taken: &Option<proto::AccessPlan>) {
    if candidates.is_empty() {
        println!("No hand-made role {role:?} in the spec's target accounts: nothing to take over.");
    }
    for c in candidates {
        println!("{} {}: {} {} (made without crossrole)", c.account_id, c.account_name, c.role_arn, c.role_id);
        for change in &c.changes {
            let subject = if change.subject.is_empty() { String::new() } else { format!(" {}", change.subject) };
            println!("  {}{subject}", change.kind);
            for line in diff_lines(&change.before, &change.after) {
                println!("    {line}");
            }
        }
    }
    for (account, why) in left_alone {
        println!("{account}: left alone: {why}");
    }
    if let Some(p) = taken.as_ref().filter(|p| !p.findings.is_empty()) {
        for f in &p.findings {
            println!("note: {}", f.message);
        }
    }
}

/// Asks account by account: `y` takes this one over, `n` leaves it, `a` takes this one and the rest, `q` stops
/// asking (what was approved so far stands).
fn ask(candidates: &[Candidate]) -> Result<BTreeSet<String>, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "refusing to take over roles without a person's approval: answer in a terminal, or approve with --all or \
             --account",
        ));
    }
    let mut approved = BTreeSet::new();
    for (i, c) in candidates.iter().enumerate() {
        eprint!("Take over {} in {} {}? [y/N/a(ll)/q(uit)] ", c.role_arn, c.account_id, c.account_name);
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).map_err(|e| Failure::usage(e.to_string()))?;
        match answer.trim() {
            "y" | "Y" | "yes" => {
                approved.insert(c.account_id.clone());
            }
            "a" | "all" => {
                approved.extend(candidates[i..].iter().map(|c| c.account_id.clone()));
                break;
            }
            "q" | "quit" => break,
            _ => {}
        }
    }
    Ok(approved)
}

/// A line diff (longest common subsequence) of `before` and `after`: `- ` lines only there, `+ ` lines only in
/// the spec, `  ` lines in both. Policy documents come pretty-printed, one element per line.
pub(crate) fn diff_lines(before: &str, after: &str) -> Vec<String> {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(format!("  {}", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push(format!("- {}", a[i]));
            i += 1;
        } else {
            out.push(format!("+ {}", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Takeover, diff_lines};

    #[test]
    fn a_change_is_the_same_whatever_mark_its_external_id_was_given() {
        let change = |after: &str| Takeover {
            kind: "update trust policy".into(),
            subject: String::new(),
            before: String::new(),
            after: after.into(),
        };
        let a = change(r#"{"sts:ExternalId": "<redacted:27985619>"}"#);
        assert!(a.same(&change(r#"{"sts:ExternalId": "<redacted:0a1b2c3d>"}"#)));
        assert!(!a.same(&change(r#"{"sts:ExternalId": "<redacted:27985619>", "x": 1}"#)));
        assert!(!a.same(&change("")));
    }

    #[test]
    fn a_diff_keeps_what_both_have_and_marks_the_rest() {
        let before = "{\n  \"a\": 1,\n  \"b\": 2\n}";
        let after = "{\n  \"a\": 1,\n  \"c\": 3\n}";
        assert_eq!(diff_lines(before, after), ["  {", "    \"a\": 1,", "-   \"b\": 2", "+   \"c\": 3", "  }"]);
        assert_eq!(diff_lines("", "x"), ["+ x"]);
        assert_eq!(diff_lines("x", ""), ["- x"]);
        assert!(diff_lines("", "").is_empty());
    }
}
