//! The IAM judge from the e2e suite: requests evaluated by `@cloud-copilot/iam-simulate` (strict mode), an IAM
//! policy evaluator crossrole did not write, through `xtask/iam-judge/judge.mjs`. The emulators enforce no IAM
//! policy at all; what IAM would allow or refuse is decided here, never by crossrole's own evaluator.
//!
//! `cargo xtask e2e` installs the judge and sets `IAM_JUDGE` (the script) and `IAM_JUDGE_MODULES` (its packages).

use std::{io::Write, process::Stdio};

use serde::Deserialize;
use serde_json::{Value, json};

/// A request for the judge: its name, the decision expected and iam-simulate's simulation.
#[derive(Debug, Clone)]
pub struct Case {
    /// What it is, for the table.
    pub name: String,
    /// `Allowed`, `ExplicitlyDenied`, `ImplicitlyDenied` or `Denied` (either).
    pub expect: &'static str,
    /// The simulation, in iam-simulate's shape.
    pub simulation: Value,
}

/// The judge's decision on one case.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    /// The case's name.
    pub name: String,
    /// What was expected.
    pub expect: String,
    /// `Allowed`, `ExplicitlyDenied`, `ImplicitlyDenied`, or `Invalid` (strict mode refused the request).
    pub decision: String,
    /// The statements that decided it.
    pub deciding: Vec<String>,
    /// Whether it is what was expected.
    pub ok: bool,
    /// Why the request was invalid.
    #[serde(default)]
    pub error: Option<String>,
}

/// A request to assume `role_arn` made by `principal` (an IAM ARN) of `principal_account`, with `context`.
pub fn assume_role(principal: &str, role_arn: &str, context: Value) -> Value {
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    json!({
        "principal": principal,
        "action": "sts:AssumeRole",
        "resource": {"resource": role_arn, "accountId": account},
        "contextVariables": context,
    })
}

/// A simulation: `request` with the caller's identity policies, and the resource's policy (a trust policy).
pub fn simulation(request: Value, identity_policies: &[(&str, Value)], resource_policy: Option<Value>) -> Value {
    let mut s = json!({
        "request": request,
        "identityPolicies": identity_policies.iter().map(|(n, p)| json!({"name": n, "policy": p})).collect::<Vec<_>>(),
        "serviceControlPolicies": [],
        "resourceControlPolicies": [],
    });
    if let Some(p) = resource_policy {
        s["resourcePolicy"] = p;
    }
    s
}

/// Judges `cases`; prints the table under `title` (nextest shows it with the test's output) and returns the
/// decisions. Panics, saying how to run it, outside `cargo xtask e2e`.
pub fn judge(title: &str, cases: &[Case]) -> Vec<Decision> {
    let script =
        std::env::var("IAM_JUDGE").expect("IAM_JUDGE: run through `cargo xtask e2e`, which installs the judge");
    let modules = std::env::var("IAM_JUDGE_MODULES").expect("IAM_JUDGE_MODULES: run through `cargo xtask e2e`");
    let input: Vec<Value> =
        cases.iter().map(|c| json!({"name": c.name, "expect": c.expect, "simulation": c.simulation})).collect();
    let out = std::env::temp_dir().join(format!("crossrole-judge-{}-{}.json", std::process::id(), rand_suffix()));
    let mut child = std::process::Command::new("node")
        .arg(&script)
        .env("IAM_JUDGE_MODULES", &modules)
        .env("IAM_JUDGE_OUT", &out)
        .env("IAM_JUDGE_TITLE", title)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (the IAM judge)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(serde_json::to_string(&input).expect("cases as JSON").as_bytes())
        .expect("send the cases to the judge");
    let done = child.wait_with_output().expect("the judge's output");
    eprintln!("{}", String::from_utf8_lossy(&done.stdout));
    let rows = std::fs::read_to_string(&out).unwrap_or_else(|_| {
        panic!("the judge wrote no decisions ({}): {}", done.status, String::from_utf8_lossy(&done.stderr))
    });
    let _ = std::fs::remove_file(&out);
    serde_json::from_str(&rows).expect("the judge's decisions")
}

/// Judges `cases` and fails the test, listing them, unless every decision is the one expected.
pub fn judge_all(title: &str, cases: &[Case]) -> Vec<Decision> {
    assert!(!cases.is_empty(), "{title}: nothing to judge");
    let rows = judge(title, cases);
    let wrong: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| {
            format!(
                "{}: expected {}, judged {} {:?}{}",
                r.name,
                r.expect,
                r.decision,
                r.deciding,
                r.error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{title}: {} of {} not as expected:\n{}", wrong.len(), rows.len(), wrong.join("\n"));
    rows
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos() as u64).unwrap_or_default()
}
