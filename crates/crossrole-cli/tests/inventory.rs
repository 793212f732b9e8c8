//! `crossrole inventory` and `crossrole import` against an in-process crossroled over the in-memory AWS: the
//! table, JSON and CSV (read back with a real CSV parser: a field with a comma, quotes and a line break), the
//! filters, `--output csv` refused elsewhere, and a spec imported from hand-made roles.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::{collections::BTreeSet, sync::Arc};

use assert_cmd::Command;
use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_core::{org::fixture::TreeBuilder, spec::AccountState};
use crossrole_server::{
    RunningServer,
    auth::hash_token,
    config::{Config, Flags},
};

const VENDOR: &str = "999988887777";

struct Env {
    server: RunningServer,
    dir: tempfile::TempDir,
}

fn account(i: u64) -> String {
    format!("{:012}", 200_000_000_000 + i)
}

async fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut b =
        TreeBuilder::new("o-abcdefghij", "123456789012", "r-root").unit("r-root", "ou-root-workload", "Workloads");
    for i in 0..3u64 {
        b = b.account("ou-root-workload", &account(i), &format!("prod-{i}"), AccountState::Active);
    }
    let fake = FakeAws::new(b.build(), FakeConfig::default());
    let vendor = |condition: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{VENDOR}:root"}},"Action":"sts:AssumeRole"{condition}}}]}}"#
        )
    };
    for i in 0..3u64 {
        let a = account(i);
        let condition = if i == 0 { "" } else { r#","Condition":{"StringEquals":{"sts:ExternalId":"Qz7-secret"}}"# };
        fake.with_account(&a, |s| {
            s.create_role_by_hand(&a, "VendorAccess", &vendor(condition));
            s.attach_by_hand("VendorAccess", "arn:aws:iam::aws:policy/ReadOnlyAccess");
        });
    }
    // Anyone in the organization, with a condition key that makes CSV work: a comma, quotes and a line break.
    let anyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abcdefghij"},"StringLike":{"aws:PrincipalTag/a,\"b\"\nc":"x"}}}]}"#;
    fake.with_account(&account(1), |s| s.create_role_by_hand(&account(1), "Anyone", anyone));
    let config = Config::from_toml(
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[[tokens]]\nname = \"planner\"\nsha256 = \"{}\"\nscope = \"plan\"\n",
            dir.path().join("data").display(),
            hash_token("plan-token"),
        ),
        &Flags::default(),
    )
    .unwrap();
    let server = crossrole_server::start(&config, Arc::new(fake)).await.unwrap();
    Env { server, dir }
}

impl Env {
    /// Runs the binary off the runtime's threads (the server runs on them).
    async fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        let mut c = Command::cargo_bin("crossrole").unwrap();
        c.env("CROSSROLE_ENDPOINT", format!("http://{}", self.server.addr))
            .env("CROSSROLE_TOKEN", "plan-token")
            .env_remove("CROSSROLE_CA_CERT")
            .args(args);
        tokio::task::spawn_blocking(move || c.assert()).await.unwrap()
    }
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_as_a_table_json_and_csv_filtered_and_an_import() {
    let env = start().await;
    // Before any inventory, --latest finds none.
    env.run(&["inventory", "--latest"]).await.code(2);

    // Started and followed: the table, with who can enter, conditions, owner, last use and findings.
    let table = env.run(&["inventory"]).await.success();
    let text = stdout(&table);
    for column in ["ACCOUNT", "ROLE", "WHO CAN ENTER", "CONDITIONS", "OWNER", "LAST USED", "FINDINGS"] {
        assert!(text.contains(column), "{column}: {text}");
    }
    assert!(text.contains("VendorAccess") && text.contains(&format!("outside account {VENDOR}")), "{text}");
    assert!(text.contains("outside-without-external-id") && text.contains("ExternalId"), "{text}");
    assert!(text.contains("never"), "never used: {text}");
    assert!(!text.contains("Qz7-secret"), "no ExternalId shown: {text}");

    // JSON of the latest, filtered: where can the vendor go.
    let json = env.run(&["inventory", "--latest", "--principal", VENDOR, "-o", "json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&stdout(&json)).unwrap();
    let names: BTreeSet<String> = v["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{}/{}", r["account_id"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    let mut expected: BTreeSet<String> = (0..3).map(|i| format!("{}/VendorAccess", account(i))).collect();
    expected.insert(format!("{}/Anyone", account(1)));
    assert_eq!(names, expected);
    // A malformed principal is refused naming the flag and the rule, before any inventory is started.
    for bad in ["not-a-principal", "arn:aws:iam::99998888777:root"] {
        let refused = env.run(&["inventory", "--principal", bad, "-o", "json"]).await.code(2);
        let e = stderr(&refused);
        assert!(e.contains("--principal") && e.contains(bad) && e.contains("12 digits"), "{e}");
        assert!(stdout(&refused).is_empty(), "no roles: {}", stdout(&refused));
    }
    let again = env.run(&["inventory", "--latest", "--principal", VENDOR, "-o", "json"]).await.success();
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(again["operation_id"], v["operation_id"], "no inventory was started by the refused ones");
    let deputy =
        env.run(&["inventory", "--latest", "--finding", "outside-without-external-id", "-o", "json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&stdout(&deputy)).unwrap();
    assert_eq!(v["roles"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["roles"][0]["account_id"], account(0));

    // CSV, read back by a real CSV parser: every record whole, the awkward field as it was.
    let csv_out = env.run(&["inventory", "--latest", "--unowned", "-o", "csv"]).await.success();
    let text = stdout(&csv_out);
    assert!(text.contains("\r\n"), "CRLF line ends");
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!((&headers[0], headers.len()), ("account_id", 11));
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert!(records.iter().all(|r| r.len() == 11), "every record has every field");
    let anyone = records.iter().find(|r| &r[1] == "Anyone").unwrap();
    assert!(anyone[4].contains("aws:PrincipalOrgID=o-abcdefghij"), "{anyone:?}");
    assert!(anyone[4].contains("aws:principaltag/a,\"b\"\nc"), "comma, quotes and line break kept: {anyone:?}");
    let vendor0 = records.iter().find(|r| &r[0] == account(0).as_str() && &r[1] == "VendorAccess").unwrap();
    assert_eq!(&vendor0[2], &format!("arn:aws:iam::{}:role/VendorAccess", account(0)));
    assert_eq!(&vendor0[8], "arn:aws:iam::aws:policy/ReadOnlyAccess");
    let all = env.run(&["inventory", "--latest", "--unowned", "-o", "json"]).await.success();
    let v: serde_json::Value = serde_json::from_str(&stdout(&all)).unwrap();
    assert_eq!(records.len(), v["roles"].as_array().unwrap().len(), "a record per role");

    // --output csv is the inventory's alone.
    let refused = env.run(&["ops", "list", "-o", "csv"]).await.code(2);
    assert!(stderr(&refused).contains("only `crossrole inventory` writes CSV"), "{}", stderr(&refused));

    // An import: the spec in a file, what differs on the standard error.
    let spec_file = env.dir.path().join("vendor.yaml");
    let import =
        env.run(&["import", "--role-name", "VendorAccess", "--out", spec_file.to_str().unwrap()]).await.success();
    let spec = std::fs::read_to_string(&spec_file).unwrap();
    assert!(spec.contains("name: vendor-access") && spec.contains(VENDOR), "{spec}");
    assert!(!spec.contains("Qz7-secret"), "an ExternalId is never copied");
    let said = stderr(&import);
    assert!(said.contains(&account(0)) && said.contains("trust"), "{said}");
    assert!(said.contains("crossrole adopt -f"), "{said}");
    env.run(&["import", "--role-name", "NoSuchRole"]).await.code(2);
}

/// `--unused-after-days` takes 1 to 3650, refused otherwise naming the flag before crossroled is reached (none
/// listens here); it starts a new inventory, so it is refused beside `--latest`.
#[test]
fn unused_after_days_is_checked_as_the_flags_are_read() {
    for (value, rule) in
        [("0", "0 is not in 1..=3650"), ("3651", "3651 is not in 1..=3650"), ("-5", "-5 is not in 1..=3650")]
    {
        let line = ["--endpoint", "http://127.0.0.1:9", "inventory", "--unused-after-days", value];
        let out = Command::cargo_bin("crossrole").unwrap().args(line).assert().code(2);
        let said = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(said.contains(rule) && !said.contains("cannot reach"), "{value}: {said}");
    }
    let line = ["--endpoint", "http://127.0.0.1:9", "inventory", "--latest", "--unused-after-days", "30"];
    let out = Command::cargo_bin("crossrole").unwrap().args(line).assert().code(2);
    let said = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(said.contains("'--latest' cannot be used with '--unused-after-days <UNUSED_AFTER_DAYS>'"), "{said}");
}
