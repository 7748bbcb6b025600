//! Trust: the system store (or Mozilla's roots when a scratch image has none) plus every extra CA file the
//! settings name. rustls with the ring provider: pure Rust except ring's small C/asm core, so the static musl
//! build needs no C toolchain beyond what ring ships.

use crate::source::Sourced;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("CA file `{}` ({source_desc}) holds no usable certificate: {reason}", path.display())]
pub struct CaFileError {
    pub path: PathBuf,
    pub source_desc: String,
    pub reason: String,
}

pub fn root_store(ca_files: &[Sourced<PathBuf>]) -> Result<RootCertStore, CaFileError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if roots.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for ca in ca_files {
        add_ca_file(&mut roots, ca)?;
    }
    Ok(roots)
}

fn add_ca_file(roots: &mut RootCertStore, ca: &Sourced<PathBuf>) -> Result<(), CaFileError> {
    let err = |reason: String| CaFileError {
        path: ca.value.clone(),
        source_desc: ca.source.to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&ca.value)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no PEM `CERTIFICATE` block found".into()));
    }
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(err("no certificate in it could be parsed".into()));
    }
    Ok(())
}

pub fn client_config(ca_files: &[Sourced<PathBuf>]) -> Result<rustls::ClientConfig, CaFileError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(root_store(ca_files)?)
        .with_no_client_auth();
    Ok(config)
}
