//! `crossrole revoke` against an in-process crossroled over the in-memory AWS: -f or --binding (one of them), the
//! accounts named, progress followed like an apply's, JSON, and a refusal without --yes when not asked.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::sync::Arc;

use assert_cmd::Command;
use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_core::{org::fixture::TreeBuilder, spec::AccountState};
use crossrole_server::{
    RunningServer,
    auth::hash_token,
    config::{Config, Flags},
};

const SPEC: &str = r#"
name: audit
role:
  name: Audit
  trust:
    account_ids: ["123456789012"]
targets:
  organizational_unit_ids: [ou-root-workload]
"#;

struct Env {
    server: RunningServer,
    fake: FakeAws,
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
    let config = Config::from_toml(
        &format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[[tokens]]\nname = \"deployer\"\nsha256 = \"{}\"\nscope = \
             \"apply\"\n",
            dir.path().join("data").display(),
            hash_token("apply-token"),
        ),
        &Flags::default(),
    )
    .unwrap();
    let server = crossrole_server::start(&config, Arc::new(fake.clone())).await.unwrap();
    std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
    Env { server, fake, dir }
}

impl Env {
    /// Runs the binary off the runtime's threads (the server runs on them).
    async fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        let mut c = Command::cargo_bin("crossrole").unwrap();
        c.env("CROSSROLE_ENDPOINT", format!("http://{}", self.server.addr))
            .env("CROSSROLE_TOKEN", "apply-token")
            .env_remove("CROSSROLE_CA_CERT")
            .args(args);
        tokio::task::spawn_blocking(move || c.assert()).await.unwrap()
    }

    fn spec(&self) -> String {
        self.dir.path().join("spec.yaml").display().to_string()
    }

    fn revoked(&self, i: u64) -> bool {
        self.fake.role(&account(i), "Audit").is_some_and(|r| r.inline_policies.contains_key("AWSRevokeOlderSessions"))
    }
}

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stdout).into_owned()
}

fn stderr(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&a.get_output().stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_follows_like_apply_in_the_accounts_named_or_everywhere_the_spec_is_applied() {
    let env = start().await;
    let spec = env.spec();
    env.run(&["apply", "-f", &spec, "--yes"]).await.success();
    assert!((0..3).all(|i| !env.revoked(i)));

    // Neither -f nor --binding, or both: a usage error, nothing started.
    let neither = env.run(&["revoke", "--yes"]).await.code(2);
    assert!(stderr(&neither).contains("--file") || stderr(&neither).contains("--binding"), "{}", stderr(&neither));
    env.run(&["revoke", "-f", &spec, "--binding", "audit", "--yes"]).await.code(2);
    assert!((0..3).all(|i| !env.revoked(i)));

    // One account named: only there, followed to the end.
    let one = env.run(&["revoke", "-f", &spec, "--account", &account(1), "--yes"]).await.success();
    let text = stdout(&one);
    assert!(text.contains("Revoke denies every session") && text.contains(&account(1)), "{text}");
    assert!(env.revoked(1) && !env.revoked(0) && !env.revoked(2), "{text}");

    // Everywhere, as JSON: the operation and its end.
    let all = env.run(&["revoke", "-f", &spec, "--yes", "-o", "json"]).await.success();
    assert!(stdout(&all).contains("revoke") || stdout(&all).contains("REVOKE"), "{}", stdout(&all));
    assert!((0..3).all(|i| env.revoked(i)));

    // A bad account id is refused by crossroled, naming the field.
    let bad = env.run(&["revoke", "-f", &spec, "--account", "12345", "--yes"]).await.failure();
    assert!(stderr(&bad).contains("account_ids"), "{}", stderr(&bad));
}
