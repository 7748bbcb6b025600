//! What a manifest refers to: an index names child manifests; an image manifest names a config and layers.
//! Manifests are kept as the exact bytes they were read or written as: their digest is of those bytes.

use crate::registry::blobs::Descriptor;
use serde_json::Value;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's layer media types have OCI twins for the same bytes.
pub fn oci_layer_type(t: &str) -> String {
    match t {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into()
        }
        other => other.into(),
    }
}

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// The media type a manifest declares, else the one it was served with.
pub fn media_type(bytes: &[u8], served: &str) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| served.to_string())
}

#[derive(Debug, thiserror::Error)]
#[error("manifest {digest} is not valid: {reason}")]
pub struct ManifestError {
    pub digest: String,
    pub reason: String,
}

/// `(child manifests, blobs)` of a manifest: an index has only children; an image manifest only blobs.
pub fn references(
    bytes: &[u8],
    digest: &str,
) -> Result<(Vec<Descriptor>, Vec<Descriptor>), ManifestError> {
    let bad = |reason: String| ManifestError {
        digest: digest.into(),
        reason,
    };
    let v: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    // Every digest is checked for its form: it becomes a file name (`blobs/sha256/<hex>`) and a URL path.
    let parse = |x: &Value| {
        let d = serde_json::from_value::<Descriptor>(x.clone()).map_err(|e| bad(e.to_string()))?;
        if !crate::registry::is_digest(&d.digest) {
            return Err(bad(format!("`{}` is not a sha256 digest", d.digest)));
        }
        Ok(d)
    };
    if !v.is_object() {
        return Err(bad("is not a JSON object".into()));
    }
    if !v["manifests"].is_null() && !v["manifests"].is_array() {
        return Err(bad("`manifests` is not a list".into()));
    }
    if let Some(children) = v["manifests"].as_array() {
        return Ok((
            children.iter().map(parse).collect::<Result<_, _>>()?,
            Vec::new(),
        ));
    }
    let mut blobs = vec![parse(&v["config"])?];
    for l in v["layers"]
        .as_array()
        .ok_or_else(|| bad("no layers".into()))?
    {
        blobs.push(parse(l)?);
    }
    Ok((Vec::new(), blobs))
}
