//! TLS and mutual TLS between the SDK and crossroled.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::sync::Arc;

use crossrole_aws::fake::{FakeAws, FakeConfig};
use crossrole_client::{Client, Tls};
use crossrole_core::{org::fixture::TreeBuilder, spec::AccountState};
use crossrole_server::{
    auth::hash_token,
    config::{Config, Flags},
    health::{self, Probe},
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

struct Pki {
    ca_pem: String,
    server: (String, String),
    client: (String, String),
    stranger: (String, String),
}

fn pki() -> Pki {
    let make_ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    };
    let (ca_pem, ca) = make_ca("crossrole test CA");
    let (_, other_ca) = make_ca("someone else's CA");
    let leaf = |issuer: &Issuer<'_, KeyPair>, names: Vec<String>, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        server: leaf(&ca, vec!["localhost".into()], "crossroled"),
        client: leaf(&ca, vec![], "ci"),
        stranger: leaf(&other_ca, vec![], "mallory"),
        ca_pem,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    };
    let (cert, key, ca) =
        (write("server.pem", &pki.server.0), write("server.key", &pki.server.1), write("ca.pem", &pki.ca_pem));
    let config = Config::from_toml(
        &format!(
            "listen = \"127.0.0.1:0\"\nhealth_listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[tls]\ncert = \"{cert}\"\nkey = \"{key}\"\nclient_ca = \"{ca}\"\n[[tokens]]\nname = \"ci\"\nsha256 = \"{}\"\nscope = \"apply\"\n",
            dir.path().join("data").display(),
            hash_token("t")
        ),
        &Flags::default(),
    )
    .unwrap();
    let tree = TreeBuilder::new("o-abcdefghij", "123456789012", "r-root")
        .account("r-root", "111122223333", "a", AccountState::Active)
        .build();
    let server = crossrole_server::start(&config, Arc::new(FakeAws::new(tree, FakeConfig::default()))).await.unwrap();
    let endpoint = format!("https://localhost:{}", server.addr.port());

    // The right CA and a client certificate from it: served.
    let tls = Tls::new().ca_certificate(pki.ca_pem.clone()).identity(pki.client.0.clone(), pki.client.1.clone());
    let client = Client::builder().endpoint(&endpoint).token("t").tls(tls).connect().await.unwrap();
    assert_eq!(client.describe_organization(false).await.unwrap().account_count, 2);
    // The audit log names the client certificate's subject beside the token.
    assert!(client.cancel("01a228d1-0281-70e7-ab24-8c8574b14c8e").await.is_err(), "no such operation");
    let audit = client.list_audit_events(Default::default()).await.unwrap();
    let entry = audit.events.first().expect("the cancel is audited");
    assert_eq!((entry.caller.as_str(), entry.caller_subject.as_str()), ("ci", "CN=ci"));

    // No client certificate, or one from another CA: refused during the handshake.
    let anonymous = Client::builder()
        .endpoint(&endpoint)
        .token("t")
        .tls(Tls::new().ca_certificate(pki.ca_pem.clone()))
        .retries(0)
        .connect()
        .await;
    let refused = match anonymous {
        Err(_) => true,
        Ok(c) => c.describe_organization(false).await.is_err(),
    };
    assert!(refused, "a client without a certificate must not be served");
    let stranger = Client::builder()
        .endpoint(&endpoint)
        .token("t")
        .tls(Tls::new().ca_certificate(pki.ca_pem.clone()).identity(pki.stranger.0.clone(), pki.stranger.1.clone()))
        .retries(0)
        .connect()
        .await;
    let refused = match stranger {
        Err(_) => true,
        Ok(c) => c.describe_organization(false).await.is_err(),
    };
    assert!(refused, "a certificate from another CA must not be served");

    // A client that does not trust the server's CA does not connect.
    let untrusting = Client::builder()
        .endpoint(&endpoint)
        .token("t")
        .tls(Tls::new().ca_certificate(pki_other_ca()))
        .retries(0)
        .connect()
        .await;
    let failed = match untrusting {
        Err(_) => true,
        Ok(c) => c.describe_organization(false).await.is_err(),
    };
    assert!(failed, "the client verifies the server's certificate");

    // Health checks with mutual TLS on: the plaintext health listener (what probes use, by default)...
    let mut probe_config = config.clone();
    probe_config.health_listen = server.health_addr;
    health::check(&Probe::default(), Some(&probe_config)).await.unwrap();
    // ...and the API listener itself, with the CA and a client certificate.
    let (client_cert, client_key) = (write("client.pem", &pki.client.0), write("client.key", &pki.client.1));
    let tls_probe = Probe {
        endpoint: Some(endpoint.clone()),
        ca_cert: Some(ca.clone().into()),
        client_identity: Some((client_cert.into(), client_key.into())),
        domain: None,
    };
    health::check(&tls_probe, None).await.unwrap();
    // Without the CA it says what to give, rather than "connecting to HTTPS without TLS enabled".
    let e = health::check(&Probe { endpoint: Some(endpoint.clone()), ..Probe::default() }, None).await.unwrap_err();
    assert!(format!("{e:#}").contains("give --ca-cert"), "{e:#}");
    // Without a client certificate, the TLS listener refuses it.
    assert!(health::check(&Probe { client_identity: None, ..tls_probe }, None).await.is_err());
    server.stop().await.unwrap();
}

fn pki_other_ca() -> String {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}
