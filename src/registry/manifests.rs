//! Manifests on a registry session, as exact bytes: read (bounded, checked against the digest asked for) and
//! written (with the registry's answer on whether it indexed the manifest's `subject`).

use super::blobs::detail;
use super::error::RegistryError;
use super::session::{Session, scope};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

/// The manifest types flowship reads: OCI and Docker, images and indexes.
const ACCEPT: [&str; 4] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

impl Session {
    /// A manifest as exact bytes with its media type and digest; `None` when it does not exist.
    pub async fn manifest_get(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, String, String)>, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let accept = ACCEPT.join(", ");
        let resp = self
            .send(
                &scope(repository, "pull"),
                |r| r.header(reqwest::header::ACCEPT, &accept),
                Method::GET,
                &url,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            s if !s.is_success() => {
                return Err(self
                    .err(format!("GET manifest {repository}:{reference}"), resp)
                    .await);
            }
            _ => {}
        }
        let media = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = self
            .bounded(
                resp,
                MAX_MANIFEST,
                &format!("manifest {repository}:{reference}"),
            )
            .await?;
        let digest = super::digest::of(&bytes);
        // A manifest asked for by digest must be those bytes, whatever a proxy or a hostile registry serves.
        if super::is_digest(reference) && digest != reference {
            return Err(RegistryError::DigestMismatch {
                registry: self.host.clone(),
                what: format!("manifest {repository}@{reference}"),
                expected: reference.into(),
                actual: digest,
            });
        }
        Ok(Some((bytes, media, digest)))
    }

    /// The digest `reference` resolves to (`HEAD`, no body), or `None` when it does not exist. What a plan
    /// needs to know, without a manifest `GET`: Harbor's pull policies (cosign content trust, "prevent
    /// vulnerable images") refuse a `GET` of an unsigned or unscanned image even to its pusher, never a `HEAD`.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let accept = ACCEPT.join(", ");
        let resp = self
            .send(
                &scope(repository, "pull"),
                |r| r.header(reqwest::header::ACCEPT, &accept),
                Method::HEAD,
                &url,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            // A HEAD refusal has no body to say why (Harbor: "project X not found"): the GET's answer does.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(self
                .manifest_get(repository, reference)
                .await?
                .map(|(_, _, d)| d)),
            s if !s.is_success() => Err(self
                .err(format!("HEAD manifest {repository}:{reference}"), resp)
                .await),
            _ => match resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
            {
                Some(d) if super::is_digest(d) => Ok(Some(d.to_string())),
                // A registry that does not say: read it.
                _ => Ok(self
                    .manifest_get(repository, reference)
                    .await?
                    .map(|(_, _, d)| d)),
            },
        }
    }

    /// `PUT` a manifest's exact bytes under `reference` (a tag or its digest). Says whether the registry
    /// indexed the manifest's `subject` (the `OCI-Subject` answer of registries with the referrers API).
    pub async fn manifest_put(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Put, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let body = bytes.to_vec();
        let resp = self
            .send(
                &Self::push_scope(repository),
                |r| r.header(CONTENT_TYPE, media_type).body(body.clone()),
                Method::PUT,
                &url,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::OK => Ok(Put {
                subject_indexed: resp.headers().contains_key("oci-subject"),
            }),
            StatusCode::PRECONDITION_FAILED => {
                let d = detail(&crate::http::error_text(resp).await);
                Err(RegistryError::Immutable {
                    registry: self.host.clone(),
                    reference: format!("{repository}:{reference}"),
                    detail: d,
                })
            }
            _ => Err(self
                .err(format!("PUT manifest {repository}:{reference}"), resp)
                .await),
        }
    }
}

/// A registry's answer to a manifest `PUT`.
#[derive(Debug, Clone, Copy)]
pub struct Put {
    pub subject_indexed: bool,
}

/// The OCI distribution spec's suggested limit for manifests a registry accepts (and so serves).
const MAX_MANIFEST: usize = 4 << 20;
