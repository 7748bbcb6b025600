//! Artifacts that refer to an image (an SBOM, a signature): OCI distribution 1.1's referrers API, and its
//! tag-schema fallback for registries without it (`<alg>-<hex>` tags holding an index of the referrers), so
//! that the artifact is found either way. A registry with the API says so by answering a manifest `PUT` with
//! `OCI-Subject`; one without answers the referrers URL with 404.

use super::blobs::{Descriptor, MAX_CONFIG};
use super::error::RegistryError;
use super::push::Manifest;
use super::session::{Session, scope};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Where a registry keeps the referrers of a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `GET /v2/<name>/referrers/<digest>`.
    Api,
    /// The `sha256-<hex>` tag.
    FallbackTag,
}

/// The tag-schema fallback tag of `digest`: `sha256:abc…` → `sha256-abc…`.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The descriptors that refer to `subject`, and where they were found.
pub async fn list(
    session: &Session,
    repository: &str,
    subject: &str,
) -> Result<(Vec<Descriptor>, Index), RegistryError> {
    let url = session.url(&format!("/v2/{repository}/referrers/{subject}"));
    let resp = session
        .send(
            &scope(repository, "pull"),
            |r| r.header(reqwest::header::ACCEPT, OCI_INDEX),
            Method::GET,
            &url,
        )
        .await?;
    // Harbor answers a missing repository or project with 404 as well; either way, nothing refers to it yet.
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok((
            fallback(session, repository, subject).await?.0,
            Index::FallbackTag,
        ));
    }
    if !resp.status().is_success() {
        return Err(session
            .err(format!("GET referrers of {repository}@{subject}"), resp)
            .await);
    }
    let bytes = crate::http::body(resp, crate::http::MAX_BODY)
        .await
        .map_err(|e| RegistryError::Protocol {
            registry: session.host().into(),
            what: format!("referrers of {repository}@{subject}"),
            status: 200,
            detail: e.to_string(),
        })?;
    Ok((descriptors(&bytes), Index::Api))
}

/// The fallback index's entries, and the index as it is (`None`: no such tag yet).
async fn fallback(
    session: &Session,
    repository: &str,
    subject: &str,
) -> Result<(Vec<Descriptor>, Option<Vec<u8>>), RegistryError> {
    match session
        .manifest_get(repository, &fallback_tag(subject))
        .await
    {
        Ok(Some((bytes, _, _))) => Ok((descriptors(&bytes), Some(bytes))),
        Ok(None) | Err(RegistryError::ProjectNotFound { .. }) => Ok((Vec::new(), None)),
        Err(e) => Err(e),
    }
}

fn descriptors(index: &[u8]) -> Vec<Descriptor> {
    serde_json::from_slice::<Value>(index)
        .ok()
        .and_then(|v| v.get("manifests").cloned())
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default()
}

/// Push `artifact` (an image manifest with a `subject`, its blobs already pushed) and make it findable: the
/// registry indexes it itself, or the fallback tag's index gains its descriptor (kept as it is otherwise).
pub async fn attach(
    session: &Session,
    repository: &str,
    subject: &str,
    artifact: &Manifest,
    descriptor: &Descriptor,
) -> Result<Index, RegistryError> {
    let put = session
        .manifest_put(
            repository,
            &artifact.digest,
            &artifact.bytes,
            &artifact.media_type,
        )
        .await?;
    if put.subject_indexed {
        return Ok(Index::Api);
    }
    let (mut entries, old) = fallback(session, repository, subject).await?;
    if entries.iter().any(|d| d.digest == descriptor.digest) {
        return Ok(Index::FallbackTag);
    }
    entries.push(descriptor.clone());
    let mut index: Value = old
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"schemaVersion": 2, "mediaType": OCI_INDEX}));
    index["manifests"] = json!(entries);
    let bytes = serde_json::to_vec(&index).map_err(|e| RegistryError::Protocol {
        registry: session.host().into(),
        what: "referrers index".into(),
        status: 0,
        detail: e.to_string(),
    })?;
    debug_assert!(bytes.len() < MAX_CONFIG);
    session
        .manifest_put(repository, &fallback_tag(subject), &bytes, OCI_INDEX)
        .await?;
    Ok(Index::FallbackTag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_tag_replaces_the_first_colon() {
        assert_eq!(fallback_tag("sha256:abcd"), "sha256-abcd");
    }

    #[test]
    fn an_index_that_does_not_read_lists_nothing() {
        assert!(descriptors(b"not json").is_empty());
        assert!(descriptors(br#"{"manifests": 3}"#).is_empty());
        let d = descriptors(
            br#"{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aa","size":3,"artifactType":"x"}]}"#,
        );
        assert_eq!(d.len(), 1);
    }
}
