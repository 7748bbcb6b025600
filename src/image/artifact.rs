//! An OCI artifact that refers to an image (an SBOM, provenance): an image manifest with `artifactType`,
//! the empty config, the document as its one layer, and the image as its `subject`, as OCI 1.1 and
//! `oras attach` make them. Deterministic: the same document, the same artifact digest.

use super::manifest::OCI_MANIFEST;
use super::own::Referrer;
use crate::registry::blobs::Descriptor;
use crate::registry::push::Manifest;
use serde_json::json;
use std::path::Path;

/// OCI 1.1's empty config (`{}`).
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// What an artifact holds: its type (also its layer's media type), its file name, its bytes.
pub struct Document<'a> {
    pub artifact_type: &'a str,
    pub title: &'a str,
    pub bytes: &'a [u8],
    pub description: &'a str,
}

/// The artifact for `doc`, referring to `subject`; its blobs written to `scratch`.
pub fn referrer(
    subject: &Manifest,
    doc: &Document<'_>,
    created: &str,
    scratch: &Path,
) -> std::io::Result<Referrer> {
    let doc_path = scratch.join(doc.title);
    std::fs::write(&doc_path, doc.bytes)?;
    let doc_d = Descriptor::of(doc.artifact_type, doc.bytes);
    let empty_path = scratch.join("empty.json");
    std::fs::write(&empty_path, b"{}")?;
    let empty_d = Descriptor::of(EMPTY, b"{}");
    let mut layer = serde_json::to_value(&doc_d).expect("JSON");
    layer["annotations"] = json!({"org.opencontainers.image.title": doc.title});
    let annotations = json!({
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.description": doc.description,
    });
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": doc.artifact_type,
        "config": empty_d,
        "layers": [layer],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.bytes.len()},
        "annotations": annotations,
    }))
    .expect("JSON");
    let manifest = Manifest {
        digest: crate::registry::digest::of(&bytes),
        bytes,
        media_type: OCI_MANIFEST.into(),
    };
    let descriptor = Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: manifest.digest.clone(),
        size: manifest.bytes.len() as u64,
        platform: None,
        annotations: annotations.as_object().cloned(),
        artifact_type: Some(doc.artifact_type.into()),
    };
    Ok(Referrer {
        manifest,
        descriptor,
        artifact_type: doc.artifact_type.into(),
        files: vec![(empty_d, empty_path), (doc_d, doc_path)],
    })
}
