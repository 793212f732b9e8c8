//! `crossroled healthcheck`: asks a crossroled whether it serves (gRPC health), over plaintext, TLS or mutual TLS.
//!
//! Probes that cannot present a client certificate (Kubernetes' gRPC probes, most load balancers) use the
//! plaintext health listener (`health_listen`), which serves gRPC health and nothing else. The main listener's
//! health is reachable too, with the CA that signed the server's certificate and, under mutual TLS, a client
//! certificate.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

use crate::config::Config;

/// How to reach the health service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// `http://…` or `https://…`; from the configuration when unset.
    pub endpoint: Option<String>,
    /// PEM CA bundle that signed the server's certificate (https).
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate and key, for mutual TLS.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// The name to verify in the server's certificate, when it is not the endpoint's host.
    pub domain: Option<String>,
}

/// The endpoint a probe asks by default: the health listener if there is one, else the main listener.
pub fn default_endpoint(config: &Config) -> String {
    let local = |addr: std::net::SocketAddr| {
        let mut a = addr;
        if a.ip().is_unspecified() {
            a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        a
    };
    match config.health_listen {
        Some(h) => format!("http://{}", local(h)),
        None if config.tls.is_some() => format!("https://{}", local(config.listen)),
        None => format!("http://{}", local(config.listen)),
    }
}

/// Asks `endpoint` (or the configured one) whether crossroled serves; `Ok` when it does.
pub async fn check(probe: &Probe, config: Option<&Config>) -> anyhow::Result<()> {
    let endpoint = match (&probe.endpoint, config) {
        (Some(e), _) => e.clone(),
        (None, Some(c)) => default_endpoint(c),
        (None, None) => bail!("no endpoint: give --endpoint, or a configuration"),
    };
    let mut e = Endpoint::from_shared(endpoint.clone())
        .with_context(|| format!("{endpoint:?} is not an endpoint like http://127.0.0.1:50052"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    if endpoint.starts_with("https://") {
        let ca = match &probe.ca_cert {
            Some(ca) => ca.clone(),
            None => bail!(
                "{endpoint} uses TLS: give --ca-cert (the CA that signed crossroled's certificate; with mutual TLS \
                 also --client-cert and --client-key), or ask the plaintext health listener (health_listen)"
            ),
        };
        let pem = std::fs::read(&ca).with_context(|| format!("--ca-cert: cannot read {}", ca.display()))?;
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        if let Some((cert, key)) = &probe.client_identity {
            let cert = std::fs::read(cert).with_context(|| format!("--client-cert: cannot read {}", cert.display()))?;
            let key = std::fs::read(key).with_context(|| format!("--client-key: cannot read {}", key.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        if let Some(d) = &probe.domain {
            tls = tls.domain_name(d.clone());
        }
        e = e.tls_config(tls).context("TLS")?;
    }
    let channel = e.connect().await.with_context(|| format!("cannot reach {endpoint}"))?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: String::new() })
        .await
        .with_context(|| format!("{endpoint} did not answer the health check"))?
        .into_inner()
        .status;
    if status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        let name = ServingStatus::try_from(status).map(|s| s.as_str_name()).unwrap_or("UNKNOWN");
        bail!("{endpoint} is not serving ({name})")
    }
}
