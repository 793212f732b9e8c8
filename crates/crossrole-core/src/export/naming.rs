//! Profile names: the template expanded once per account, made safe for INI section names (lowercase letters,
//! digits, `-`), and stable — a name never moves to another account, whatever accounts join.
//!
//! The rule depends only on each account and on the accounts that share its name, never on the order ids sort
//! in: among accounts whose names come out the same, the one that joined the organization first (its join time
//! known, and strictly before every other's) keeps the bare name; every other one carries its account id
//! (`audit-prod-eu-333344445555`). An account that joins later can never take a bare name another account has,
//! and where the join times cannot tell, no account gets the bare name (a profile disappears rather than points
//! at another account). A name that ends in another account's id gets its own id too, so a bare name can never
//! be another account's id-carrying one.

use std::collections::{BTreeMap, BTreeSet};

use super::Account;
use crate::links;

/// The default profile name template.
pub const DEFAULT_NAME_TEMPLATE: &str = "${spec}-${account_name}";

/// The variables a profile name template may use.
pub const NAME_VARIABLES: [&str; 3] = ["spec", "account_name", "account_id"];

/// Checks a profile name template: every `${…}` is one of [`NAME_VARIABLES`], and it names something.
pub fn check_name_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            return Err(format!("has an unclosed `${{` at {:?}", &rest[start..]));
        };
        let name = &rest[start + 2..start + len];
        if !NAME_VARIABLES.contains(&name) {
            let known = NAME_VARIABLES.iter().map(|v| format!("${{{v}}}")).collect::<Vec<_>>().join(", ");
            return Err(format!("uses unknown variable ${{{name}}}; known: {known}"));
        }
        rest = &rest[start + len + 1..];
    }
    if links::slug(&template.replace("${", "").replace('}', "")).is_empty() {
        return Err("must name something: letters or digits, or a variable".into());
    }
    Ok(())
}

/// `template` with each variable replaced in one pass: a value that itself holds `${…}` (an account named
/// `${account_id}`) is written as it is, never expanded again.
fn expand(template: &str, spec: &str, account_name: &str, account_id: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else { break };
        match &rest[start + 2..start + len] {
            "spec" => out.push_str(spec),
            "account_name" => out.push_str(account_name),
            "account_id" => out.push_str(account_id),
            other => out.push_str(other),
        }
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// One account's name before clashes are settled: `bare` when it may keep it alone, else it carries the id.
struct Candidate {
    name: String,
    carries_id: bool,
}

fn candidate(spec: &str, template: &str, account: &Account) -> Candidate {
    let id = account.id.as_str();
    let named = |account_name: &str| links::slug(&expand(template, spec, account_name, id));
    let name = named(&account.name);
    // Without a usable account name, the id stands in.
    if name.is_empty() || (template.contains("${account_name}") && links::slug(&account.name).is_empty()) {
        return Candidate { name: links::slug(&format!("{}-{id}", named(""))), carries_id: true };
    }
    if ends_in_another_id(&name, id) {
        return Candidate { name: format!("{name}-{id}"), carries_id: true };
    }
    Candidate { name, carries_id: false }
}

/// Whether `name` ends in `-` and twelve digits that are not `id`: the shape of another account's id-carrying name.
fn ends_in_another_id(name: &str, id: &str) -> bool {
    let Some((_, tail)) = name.rsplit_once('-') else { return false };
    tail.len() == 12 && tail.bytes().all(|b| b.is_ascii_digit()) && tail != id
}

/// The account among `sharing` that keeps the bare name: the only one, or the one that joined first, when every
/// join time is known and that one is strictly the earliest.
fn first_to_join(sharing: &[&Account]) -> Option<usize> {
    if sharing.len() == 1 {
        return Some(0);
    }
    let times: Option<Vec<u64>> = sharing.iter().map(|a| a.joined_at).collect();
    let times = times?;
    let earliest = *times.iter().min()?;
    let mut at = times.iter().enumerate().filter(|(_, t)| **t == earliest).map(|(i, _)| i);
    let first = at.next()?;
    at.next().is_none().then_some(first)
}

/// The profile name of each account, in the order given; one name per entry, each used once.
pub(super) fn profile_names(spec: &str, template: &str, accounts: &[Account]) -> Vec<String> {
    let candidates: Vec<Candidate> = accounts.iter().map(|a| candidate(spec, template, a)).collect();
    let mut sharing: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in candidates.iter().enumerate().filter(|(_, c)| !c.carries_id) {
        sharing.entry(c.name.as_str()).or_default().push(i);
    }
    let mut bare = BTreeSet::new();
    for indexes in sharing.values() {
        let group: Vec<&Account> = indexes.iter().map(|i| &accounts[*i]).collect();
        if let Some(first) = first_to_join(&group) {
            bare.insert(indexes[first]);
        }
    }
    let mut used = BTreeSet::new();
    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut name = if c.carries_id || bare.contains(&i) {
                c.name.clone()
            } else {
                format!("{}-{}", c.name, accounts[i].id)
            };
            // Only an account listed twice gets here: a number tells its entries apart.
            let base = name.clone();
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}");
                n += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, name: &str, joined_at: Option<u64>) -> Account {
        Account { id: id.into(), name: name.into(), joined_at, applied: true }
    }

    fn names(template: &str, accounts: &[Account]) -> Vec<String> {
        profile_names("audit", template, accounts)
    }

    #[test]
    fn a_name_stays_with_its_account_whatever_joins() {
        let prod = account("333344445555", "prod-eu", Some(1_600_000_000));
        assert_eq!(names(DEFAULT_NAME_TEMPLATE, std::slice::from_ref(&prod)), ["audit-prod-eu"]);
        // An account named alike joins, with a lower id: the bare name stays where it was.
        let newcomer = account("222233334444", "Prod EU", Some(1_700_000_000));
        assert_eq!(
            names(DEFAULT_NAME_TEMPLATE, &[newcomer.clone(), prod.clone()]),
            ["audit-prod-eu-222233334444", "audit-prod-eu"]
        );
        // A third, named after the newcomer's id-carrying name: it cannot take it, nor the bare one.
        let mimic = account("444455556666", "prod-eu-222233334444", Some(1_500_000_000));
        assert_eq!(
            names(DEFAULT_NAME_TEMPLATE, &[newcomer, prod, mimic]),
            ["audit-prod-eu-222233334444", "audit-prod-eu", "audit-prod-eu-222233334444-444455556666"]
        );
    }

    #[test]
    fn where_join_times_cannot_tell_every_clashing_name_carries_its_id() {
        let unknown = [account("333344445555", "prod-eu", None), account("222233334444", "Prod EU", Some(1))];
        assert_eq!(
            names(DEFAULT_NAME_TEMPLATE, &unknown),
            ["audit-prod-eu-333344445555", "audit-prod-eu-222233334444"]
        );
        let tie = [account("333344445555", "prod-eu", Some(5)), account("222233334444", "Prod EU", Some(5))];
        assert_eq!(names(DEFAULT_NAME_TEMPLATE, &tie), ["audit-prod-eu-333344445555", "audit-prod-eu-222233334444"]);
        // Alone, a name needs no join time.
        assert_eq!(names(DEFAULT_NAME_TEMPLATE, &[account("333344445555", "prod-eu", None)]), ["audit-prod-eu"]);
    }

    #[test]
    fn variables_in_an_account_name_are_not_expanded_again() {
        let odd = [account("222233334444", "${account_id} ${spec}", Some(1))];
        assert_eq!(names("${account_name}", &odd), ["account-id-spec"]);
        assert_eq!(expand("${spec}/${account_name}", "a", "${spec}", "1"), "a/${spec}");
    }
}
