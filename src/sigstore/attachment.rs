//! cosign's signature manifest: an OCI image manifest tagged `sha256-<hex>.sig` in the image's repository,
//! one layer per signature (the payload, with the base64 signature in an annotation). This tag, not the
//! referrers API, is where containers/image (`use-sigstore-attachments: true`) and cosign's default mode look.
//! A new signature is appended to the layers already there: another signer's signatures stay. Attestations
//! (signed provenance) take the same shape at `sha256-<hex>.att`.

use crate::image::manifest::{OCI_CONFIG, OCI_MANIFEST};
use crate::registry::blobs::Descriptor;
use crate::registry::push::Manifest;
use base64::Engine;
use serde_json::{Value, json};

pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// `sha256:abc…` → `sha256-abc….sig`.
pub fn tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// `sha256:abc…` → `sha256-abc….att`: cosign's attestations, in the same shape as its signatures.
pub fn attestation_tag(digest: &str) -> String {
    format!("{}.att", digest.replacen(':', "-", 1))
}

/// The layer of one attestation: the DSSE envelope (signed inside), its predicate type in an annotation,
/// and the signature annotation empty, as cosign writes them.
pub fn attestation_layer(envelope: &[u8], predicate_type: &str) -> Descriptor {
    let mut d = Descriptor::of(super::dsse::ENVELOPE, envelope);
    let mut a = serde_json::Map::new();
    a.insert(ANNOTATION.into(), json!(""));
    a.insert("predicateType".into(), json!(predicate_type));
    d.annotations = Some(a);
    d
}

/// The layer of one signature: the payload's descriptor, the DER signature in its annotation.
pub fn layer(payload: &[u8], signature: &[u8]) -> Descriptor {
    let mut d = Descriptor::of(SIMPLE_SIGNING, payload);
    let mut a = serde_json::Map::new();
    a.insert(
        ANNOTATION.into(),
        json!(base64::engine::general_purpose::STANDARD.encode(signature)),
    );
    d.annotations = Some(a);
    d
}

/// The signature in a layer's annotation, decoded (`None`: not a signature layer).
pub fn signature_of(layer: &Descriptor) -> Option<Vec<u8>> {
    let s = layer.annotations.as_ref()?.get(ANNOTATION)?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// The layers of a signature manifest as it is in the registry (what does not read has none).
pub fn layers(manifest: &[u8]) -> Vec<Descriptor> {
    serde_json::from_slice::<Value>(manifest)
        .ok()
        .and_then(|v| serde_json::from_value(v["layers"].clone()).ok())
        .unwrap_or_default()
}

/// `existing` with `new` appended, or `None` when the very signature is there already.
pub fn merged(existing: &[Descriptor], new: &Descriptor) -> Option<Vec<Descriptor>> {
    let same = |d: &Descriptor| d.digest == new.digest && d.annotations == new.annotations;
    if existing.iter().any(same) {
        return None;
    }
    let mut out = existing.to_vec();
    out.push(new.clone());
    Some(out)
}

/// The signature manifest over `layers`, and its config (cosign's: a rootfs of the layers' digests; the
/// payloads are not compressed, so a layer's diff_id is its digest).
pub fn manifest(layers: &[Descriptor]) -> (Manifest, Descriptor, Vec<u8>) {
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| &l.digest).collect::<Vec<_>>()},
    }))
    .expect("JSON");
    let config_d = Descriptor::of(OCI_CONFIG, &config);
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_d,
        "layers": layers,
    }))
    .expect("JSON");
    (
        Manifest {
            digest: crate::registry::digest::of(&bytes),
            bytes,
            media_type: OCI_MANIFEST.into(),
        },
        config_d,
        config,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_cosigns() {
        assert_eq!(tag("sha256:abcd"), "sha256-abcd.sig");
    }

    #[test]
    fn a_signature_is_appended_once() {
        let a = layer(b"payload-a", b"sig-a");
        let b = layer(b"payload-b", b"sig-b");
        assert_eq!(signature_of(&a).unwrap(), b"sig-a");
        let one = merged(&[], &a).unwrap();
        assert!(merged(&one, &a).is_none());
        let two = merged(&one, &b).unwrap();
        assert_eq!(two.len(), 2);
        let (m, config_d, config) = manifest(&two);
        assert_eq!(layers(&m.bytes), two);
        assert_eq!(config_d.digest, crate::registry::digest::of(&config));
        let v: Value = serde_json::from_slice(&m.bytes).unwrap();
        assert_eq!(v["mediaType"], OCI_MANIFEST);
        assert_eq!(v["layers"][0]["mediaType"], SIMPLE_SIGNING);
        assert_eq!(
            v["layers"][1]["annotations"][ANNOTATION],
            base64::engine::general_purpose::STANDARD.encode(b"sig-b")
        );
    }
}
