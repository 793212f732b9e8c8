//! Reaching the database: TLS as the URL asks, the server verified against the system's roots and the operator's
//! CA, a pool of connections, and the URL without its password for messages.

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls_pki_types::pem::PemObject;

use super::PostgresOptions;
use crate::StoreError;

/// The URL without its password, for messages.
pub fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

pub(super) fn tls(options: &PostgresOptions) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = &options.ca_file {
        let pem = std::fs::read(path).map_err(|e| StoreError::Io(format!("cannot read {}: {e}", path.display())))?;
        let mut added = 0;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| StoreError::Io(format!("{}: not a PEM certificate: {e}", path.display())))?;
            roots.add(cert).map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(StoreError::Io(format!("{} holds no certificate", path.display())));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Io(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The journal's connection pool.
pub(super) fn pool(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: &PostgresOptions,
) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(config, tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(options.pool_size.max(2))
        .build()
        .map_err(|e| StoreError::Io(format!("journal pool: {e}")))
}
