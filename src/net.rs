//! The one HTTP client connector: HTTPS through rustls (aws-lc-rs), trusting
//! the system's certificate authorities and `--ca-file`'s, or plain HTTP.
//! The HTTP delivery target and GitHub's API client both connect through it.

use std::sync::Arc;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// Native roots (and `SSL_CERT_FILE`) and `ca_pem`'s, TLS through rustls
/// with aws-lc-rs.
pub fn https_connector(ca_pem: Option<&str>) -> Result<HttpsConnector<HttpConnector>, String> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        // A certificate the store cannot take is left out, as browsers do.
        let _ = roots.add(cert);
    }
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.unwrap_or("").as_bytes()) {
        let cert = cert.map_err(|e| format!("--ca-file: {e}"))?;
        roots.add(cert).map_err(|e| format!("--ca-file: {e}"))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http))
}
