//! `crossrole inventory`: who can enter every account — start an inventory and follow it, or read one; a table, JSON
//! or CSV (RFC 4180). `crossrole import`: a spec written from the roles of one name across the organization.

use crossrole_client::{Client, proto};

use crate::{Failure, Outcome, Output, progress, views};

/// How `crossrole inventory` writes what it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
    /// CSV (RFC 4180) for spreadsheets.
    Csv,
}

/// A finding kind, as `--finding` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FindingArg {
    /// `*` can enter.
    AnyoneCanEnter,
    /// An outside account trusted without an ExternalId (the confused deputy).
    OutsideWithoutExternalId,
    /// A whole outside account trusted.
    OutsideAccountRoot,
    /// A deleted principal (IAM's unique id in its place).
    BrokenPrincipal,
    /// Not used for 90 days.
    Unused,
    /// Trusted by an account that left the organization.
    FormerMember,
    /// A crossrole-owned role not as its spec says.
    Drifted,
    /// A trust policy that does not parse.
    UnreadableTrust,
}

impl FindingArg {
    fn number(self) -> i32 {
        use proto::InventoryFindingKind as K;
        (match self {
            FindingArg::AnyoneCanEnter => K::AnyoneCanEnter,
            FindingArg::OutsideWithoutExternalId => K::OutsideWithoutExternalId,
            FindingArg::OutsideAccountRoot => K::OutsideAccountRoot,
            FindingArg::BrokenPrincipal => K::BrokenPrincipal,
            FindingArg::Unused => K::Unused,
            FindingArg::FormerMember => K::FormerMember,
            FindingArg::Drifted => K::Drifted,
            FindingArg::UnreadableTrust => K::UnreadableTrust,
        }) as i32
    }
}

/// A severity, as `--min-severity` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SeverityArg {
    /// For information.
    Info,
    /// Worth tidying.
    Low,
    /// Worth a look soon.
    Medium,
    /// Access someone should not have, likely.
    High,
    /// Anyone can enter.
    Critical,
}

impl SeverityArg {
    fn number(self) -> i32 {
        use proto::InventorySeverity as S;
        (match self {
            SeverityArg::Info => S::Info,
            SeverityArg::Low => S::Low,
            SeverityArg::Medium => S::Medium,
            SeverityArg::High => S::High,
            SeverityArg::Critical => S::Critical,
        }) as i32
    }
}

/// `crossrole inventory`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct InventoryArgs {
    /// Read the latest finished inventory instead of starting one.
    #[arg(long, conflicts_with = "operation")]
    latest: bool,
    /// Read this inventory (its operation id) instead of starting one.
    #[arg(long)]
    operation: Option<String>,
    /// Only this account (repeatable); a new inventory reads only these accounts.
    #[arg(long = "account")]
    accounts: Vec<String>,
    /// A new inventory reports a role unused after this many days without use (or never used and older than
    /// this): from 1 to 3650.
    #[arg(
        long,
        default_value_t = 90,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(u32).range(1..=3650),
        conflicts_with_all = ["latest", "operation"],
    )]
    unused_after_days: u32,
    /// Only roles this principal can enter (conditions aside; each role shows its conditions): an account id (12
    /// digits), an IAM or STS principal ARN, a service principal or a SAML/OIDC provider ARN. "Where can this
    /// principal go".
    #[arg(long, value_parser = principal_filter)]
    principal: Option<String>,
    /// Only roles of this name.
    #[arg(long)]
    role: Option<String>,
    /// Only roles with this finding.
    #[arg(long, value_enum)]
    finding: Option<FindingArg>,
    /// Only roles whose worst finding is at least this severe.
    #[arg(long, value_enum)]
    min_severity: Option<SeverityArg>,
    /// Only roles crossrole does not own.
    #[arg(long, conflicts_with = "owned")]
    unowned: bool,
    /// Only roles crossrole owns.
    #[arg(long)]
    owned: bool,
}

/// `--principal`, checked before anything is asked of crossroled (as crossroled checks it too).
fn principal_filter(p: &str) -> Result<String, String> {
    let p = p.trim();
    crossrole_core::inventory::check_principal_filter(p)?;
    Ok(p.to_string())
}

/// `crossrole import`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ImportArgs {
    /// The roles' name.
    #[arg(long)]
    role_name: String,
    /// The spec's name (default: the role's name in lowercase words, `VendorAccess` → `vendor-access`).
    #[arg(long)]
    spec_name: Option<String>,
    /// The inventory that says where the roles are (default: the latest finished one).
    #[arg(long)]
    operation: Option<String>,
    /// Write the spec to this file instead of the standard output.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

pub(crate) async fn run(client: &Client, args: InventoryArgs, format: Format) -> Outcome {
    let operation_id = match (&args.operation, args.latest) {
        (Some(id), _) => id.clone(),
        (None, true) => String::new(),
        (None, false) => {
            let request = proto::StartInventoryRequest {
                account_ids: args.accounts.clone(),
                unused_after_days: args.unused_after_days,
                ..Default::default()
            };
            let handle = client.start_inventory_with(request).await?;
            match format {
                // Progress as for an apply; the table follows.
                Format::Table => progress::follow(&handle, Output::Table).await?,
                // Nothing but the roles on the standard output.
                Format::Json | Format::Csv => {
                    handle.wait().await?;
                }
            }
            handle.id().to_string()
        }
    };
    let request = proto::ListInventoryRequest {
        operation_id,
        account_ids: args.accounts.clone(),
        principal: args.principal.clone().unwrap_or_default(),
        role_name: args.role.clone().unwrap_or_default(),
        finding: args.finding.map_or(0, FindingArg::number),
        min_severity: args.min_severity.map_or(0, SeverityArg::number),
        ownership: if args.unowned {
            proto::InventoryOwnership::Unowned as i32
        } else if args.owned {
            proto::InventoryOwnership::Owned as i32
        } else {
            0
        },
        page_size: 1000,
        page_token: String::new(),
    };
    let (operation, roles) = client.list_inventory_all(request).await?;
    let unreadable = unreadable(client, &operation.id, &args.accounts).await?;
    match format {
        Format::Json => {
            let unreadable: Vec<serde_json::Value> =
                unreadable.iter().map(|(a, why)| serde_json::json!({"account_id": a, "reason": why})).collect();
            let value = serde_json::json!({
                "operation_id": operation.id,
                "roles": roles.iter().map(json_role).collect::<Vec<_>>(),
                "unreadable": unreadable,
            });
            crate::json::print(&value);
        }
        Format::Csv => print!("{}", csv(&roles)),
        Format::Table => {
            let mut t =
                views::table(&["ACCOUNT", "ROLE", "WHO CAN ENTER", "CONDITIONS", "OWNER", "LAST USED", "FINDINGS"]);
            for r in &roles {
                t.add_row(vec![
                    r.account_id.clone(),
                    r.name.clone(),
                    who(r),
                    conditions(r),
                    owner(r),
                    last_used(r),
                    findings(r, "\n"),
                ]);
            }
            println!("{t}");
            println!("{} in inventory {}", views::count(roles.len(), "role"), operation.id);
            if !unreadable.is_empty() {
                println!("{} could not be read:", views::count(unreadable.len(), "account"));
                for (account, why) in &unreadable {
                    println!("  {account}: {why}");
                }
            }
        }
    }
    Ok(())
}

/// The accounts of the inventory that could not be read (among `only`, when given), with why.
async fn unreadable(client: &Client, operation: &str, only: &[String]) -> Result<Vec<(String, String)>, Failure> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_account_results(proto::ListAccountResultsRequest {
                operation_id: operation.to_string(),
                outcomes: vec![proto::AccountOutcome::Failed as i32],
                page_size: 1000,
                page_token: token,
            })
            .await?;
        for r in page.results {
            if only.is_empty() || only.contains(&r.account_id) {
                out.push((r.account_id, r.error.map(|e| e.message).unwrap_or_default()));
            }
        }
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

fn entrant_kind(k: i32) -> String {
    proto::EntrantKind::try_from(k)
        .map(|k| views::short(k.as_str_name(), "ENTRANT_KIND_").replace('_', " "))
        .unwrap_or_else(|_| k.to_string())
}

/// Who can enter, in short: `outside 999988887777`, `organization arn:…:role/Deployer`, `anyone`.
fn who(r: &proto::InventoryRole) -> String {
    let each: Vec<String> = r
        .entrants
        .iter()
        .map(|e| {
            let kind = entrant_kind(e.kind);
            let whole = e.whole_account && !e.account_id.is_empty();
            match proto::EntrantKind::try_from(e.kind) {
                Ok(proto::EntrantKind::Anyone) => kind,
                _ if whole => format!("{kind} {}", e.account_id),
                _ => format!("{kind} {}", e.principal),
            }
        })
        .collect();
    if each.is_empty() { "nobody".into() } else { each.join(", ") }
}

/// The conditions that guard the entrants, each said once: `ExternalId`, `MFA`, `aws:PrincipalOrgID`…
fn conditions(r: &proto::InventoryRole) -> String {
    let mut all = std::collections::BTreeSet::new();
    for c in r.entrants.iter().filter_map(|e| e.conditions.as_ref()) {
        if c.external_id {
            all.insert("ExternalId".to_string());
        }
        if c.mfa {
            all.insert("MFA".to_string());
        }
        if c.source_identity {
            all.insert("SourceIdentity".to_string());
        }
        for o in &c.organization {
            all.insert(format!("{}={}", o.key, o.values.join("|")));
        }
        if !c.principal_arns.is_empty() {
            all.insert("aws:PrincipalArn".to_string());
        }
        all.extend(c.other_keys.iter().cloned());
    }
    if all.is_empty() { "none".into() } else { all.into_iter().collect::<Vec<_>>().join(", ") }
}

fn owner(r: &proto::InventoryRole) -> String {
    if r.owner.is_empty() { "-".into() } else { r.owner.clone() }
}

fn last_used(r: &proto::InventoryRole) -> String {
    match views::time(&r.last_used_time) {
        Some(t) => t.get(..10).unwrap_or(&t).to_string(),
        None => "never".into(),
    }
}

fn severity(s: i32) -> String {
    proto::InventorySeverity::try_from(s)
        .map(|s| views::short(s.as_str_name(), "INVENTORY_SEVERITY_"))
        .unwrap_or_else(|_| s.to_string())
}

fn finding_kind(k: i32) -> String {
    proto::InventoryFindingKind::try_from(k)
        .map(|k| views::short(k.as_str_name(), "INVENTORY_FINDING_KIND_").replace('_', "-"))
        .unwrap_or_else(|_| k.to_string())
}

/// `high outside-without-external-id`, one per finding, most severe first.
fn findings(r: &proto::InventoryRole, separator: &str) -> String {
    r.findings
        .iter()
        .map(|f| format!("{} {}", severity(f.severity), finding_kind(f.kind)))
        .collect::<Vec<_>>()
        .join(separator)
}

/// Organization conditions by key.
fn organization(c: &proto::EntrantConditions) -> std::collections::BTreeMap<String, Vec<String>> {
    c.organization.iter().map(|o| (o.key.clone(), o.values.clone())).collect()
}

fn json_role(r: &proto::InventoryRole) -> serde_json::Value {
    serde_json::json!({
        "account_id": r.account_id,
        "name": r.name,
        "path": r.path,
        "arn": r.arn,
        "created": views::time(&r.create_time),
        "last_used": views::time(&r.last_used_time),
        "last_used_region": (!r.last_used_region.is_empty()).then_some(&r.last_used_region),
        "managed_policy_arns": r.managed_policy_arns,
        "inline_policy_names": r.inline_policy_names,
        "permissions_boundary_arn": (!r.permissions_boundary_arn.is_empty()).then_some(&r.permissions_boundary_arn),
        "owner": (!r.owner.is_empty()).then_some(&r.owner),
        "trust_policy": serde_json::from_str::<serde_json::Value>(&r.trust_policy).unwrap_or(serde_json::Value::Null),
        "entrants": r.entrants.iter().map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            serde_json::json!({
                "kind": entrant_kind(e.kind).replace(' ', "_"),
                "principal": e.principal,
                "account_id": (!e.account_id.is_empty()).then_some(&e.account_id),
                "whole_account": e.whole_account,
                "actions": e.actions,
                "conditions": {
                    "external_id": c.external_id,
                    "mfa": c.mfa,
                    "source_identity": c.source_identity,
                    "organization": organization(&c),
                    "principal_arns": c.principal_arns,
                    "other_keys": c.other_keys,
                },
            })
        }).collect::<Vec<_>>(),
        "findings": r.findings.iter().map(|f| serde_json::json!({
            "kind": finding_kind(f.kind),
            "severity": severity(f.severity),
            "reason": f.reason,
        })).collect::<Vec<_>>(),
    })
}

/// The roles as CSV (RFC 4180): a header, a record per role, CRLF line ends, a field quoted when it holds a comma,
/// a quote or a line break (its quotes doubled). Role names, policy names, owners and the values of trust policies
/// come from the accounts' owners: a field a spreadsheet would take for a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) is prefixed with `'`, as OWASP recommends against CSV injection.
pub(crate) fn csv(roles: &[proto::InventoryRole]) -> String {
    let header = [
        "account_id",
        "role",
        "arn",
        "who_can_enter",
        "conditions",
        "owner",
        "last_used",
        "findings",
        "managed_policies",
        "inline_policies",
        "permissions_boundary",
    ];
    let mut out = record(header.iter().map(|h| h.to_string()));
    for r in roles {
        out.push_str(&record([
            r.account_id.clone(),
            r.name.clone(),
            r.arn.clone(),
            who(r),
            conditions(r),
            r.owner.clone(),
            views::time(&r.last_used_time).unwrap_or_default(),
            findings(r, "; "),
            r.managed_policy_arns.join(" "),
            r.inline_policy_names.join(" "),
            r.permissions_boundary_arn.clone(),
        ]));
    }
    out
}

fn record(fields: impl IntoIterator<Item = String>) -> String {
    let fields: Vec<String> = fields.into_iter().map(|f| field(&f)).collect();
    format!("{}\r\n", fields.join(","))
}

/// What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn field(value: &str) -> String {
    let value = if value.starts_with(FORMULA_STARTS) { format!("'{value}") } else { value.to_string() };
    if value.contains([',', '"', '\r', '\n']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

/// `VendorAccess` → `vendor-access`: a spec name (lowercase letters, digits, dashes, a letter first).
fn spec_name_of(role: &str) -> String {
    let mut out = String::new();
    let mut prev = ' ';
    for c in role.chars() {
        if c.is_ascii_uppercase() && (prev.is_ascii_lowercase() || prev.is_ascii_digit()) {
            out.push('-');
        }
        prev = c;
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.starts_with(|c: char| c.is_ascii_lowercase()) { out } else { format!("imported-{out}") }
}

pub(crate) async fn import(client: &Client, args: ImportArgs, out: Output) -> Outcome {
    let spec_name = args.spec_name.clone().unwrap_or_else(|| spec_name_of(&args.role_name));
    let r = client.import_roles(&args.role_name, &spec_name, args.operation.as_deref().unwrap_or_default()).await?;
    if out == Output::Json {
        let differences: Vec<serde_json::Value> = r
            .differences
            .iter()
            .map(|d| serde_json::json!({"account_id": d.account_id, "aspect": d.aspect, "detail": d.detail}))
            .collect();
        let unreadable: Vec<serde_json::Value> =
            r.unreadable.iter().map(|u| serde_json::json!({"account_id": u.account_id, "reason": u.reason})).collect();
        let value = serde_json::json!({
            "operation_id": r.operation_id,
            "spec_yaml": r.spec_yaml,
            "account_ids": r.account_ids,
            "differences": differences,
            "not_expressible": r.not_expressible,
            "notes": r.notes,
            "unreadable": unreadable,
        });
        crate::json::print(&value);
        return Ok(());
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &r.spec_yaml)
                .map_err(|e| Failure::usage(format!("--out {}: cannot write: {e}", path.display())))?;
            eprintln!("wrote the spec {spec_name} to {}", path.display());
        }
        None => print!("{}", r.spec_yaml),
    }
    // What people read goes to the standard error, so that the standard output is the spec alone.
    eprintln!(
        "{} named {} in {}, from inventory {}",
        views::count(r.account_ids.len(), "role"),
        args.role_name,
        views::count(r.account_ids.len(), "account"),
        r.operation_id
    );
    if r.differences.is_empty() {
        eprintln!("every account's role is as the spec says");
    } else {
        eprintln!("accounts that differ from the spec:");
        for d in &r.differences {
            eprintln!("  {} {}: {}", d.account_id, d.aspect, d.detail);
        }
    }
    for n in &r.not_expressible {
        eprintln!("not in the spec: {n}");
    }
    for u in &r.unreadable {
        eprintln!("not read now: {}: {}", u.account_id, u.reason);
    }
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    let file = args.out.as_ref().map_or("<spec file>".to_string(), |p| p.display().to_string());
    eprintln!("nothing was changed; to take the roles over, review the spec, then `crossrole adopt -f {file}`");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_names_from_role_names() {
        assert_eq!(spec_name_of("VendorAccess"), "vendor-access");
        assert_eq!(spec_name_of("vendor_access"), "vendor-access");
        assert_eq!(spec_name_of("CI.Deploy+Role"), "ci-deploy-role");
        assert_eq!(spec_name_of("9Lives"), "imported-9-lives");
    }

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(record(["a".to_string(), "b,c".to_string()]), "a,\"b,c\"\r\n");
    }

    #[test]
    fn csv_fields_a_spreadsheet_would_take_for_a_formula_are_prefixed() {
        for (given, written) in [
            ("=1+2", "'=1+2"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "\"'\r=1\""),
            ("=HYPERLINK(\"http://x\",\"y\")", "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""),
            ("a=1", "a=1"),
            ("arn:aws:iam::999988887777:root", "arn:aws:iam::999988887777:root"),
        ] {
            assert_eq!(field(given), written, "{given:?}");
        }
        // Through the whole table: a role named by its account's owner to be a formula, and its inline policy.
        let role = proto::InventoryRole {
            account_id: "222233334444".into(),
            name: "=1+2".into(),
            inline_policy_names: vec!["@x".into(), "=y".into()],
            owner: "+cmd".into(),
            ..Default::default()
        };
        let text = csv(&[role]);
        let row = text.lines().nth(1).unwrap();
        assert!(row.starts_with("222233334444,'=1+2,"), "{row}");
        assert!(row.contains(",'+cmd,") && row.contains(",'@x =y,"), "{row}");
    }
}
