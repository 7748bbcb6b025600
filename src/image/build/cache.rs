//! The registry-side cache of dependency layers: a tiny manifest in the target repository, tagged by the
//! dependency key, whose config records the layer's diff_id. A later build with the same key reuses the
//! layer without installing anything. The record also lists the packages the layer holds, for the image's
//! SBOM (a record written before it did has none), and the warnings its install gave, so a reuse warns alike.

use super::BuildError;
use crate::image::manifest::{self, OCI_MANIFEST};
use crate::image::pysbom::Package;
use crate::registry::blobs::Descriptor;
use crate::registry::push::Manifest;
use crate::registry::repo::Repo;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub fn cache_tag(key: &str) -> String {
    format!("flowship-deps-{}", &key[..32])
}

const CACHE_CONFIG: &str = "application/vnd.flowship.deps.config.v1+json";

/// The cached layer, its diff_id, the packages in it when the record lists them, and the warnings its
/// install gave (checked against the base then; the key covers what the base adds).
pub(super) type Cached = (Descriptor, String, Option<Vec<Package>>, Vec<String>);

pub(super) async fn cached_deps(repo: &Repo, key: &str) -> Result<Option<Cached>, BuildError> {
    // A Harbor project that does not exist yet (`--create-project` makes it when the image is pushed) has
    // nothing cached: the plan stays read-only.
    let found = match repo.manifest(&cache_tag(key)).await {
        Err(crate::registry::RegistryError::ProjectNotFound { .. }) => None,
        other => other?,
    };
    let Some((bytes, _, digest)) = found else {
        return Ok(None);
    };
    let (_, refs) =
        manifest::references(&bytes, &digest).map_err(|e| BuildError::Io(e.to_string()))?;
    let (Some(config), Some(layer)) = (refs.first(), refs.get(1)) else {
        return Ok(None);
    };
    let bytes = repo
        .blob_bytes(&config.digest, crate::registry::blobs::MAX_CONFIG)
        .await?;
    // A record that does not read is no record: build as if nothing were cached.
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(None);
    };
    if v["key"] != key {
        return Ok(None);
    }
    let packages = serde_json::from_value(v["packages"].clone()).ok();
    let warnings = serde_json::from_value(v["warnings"].clone()).unwrap_or_default();
    Ok(v["diff_id"]
        .as_str()
        .map(|d| (layer.clone(), d.to_string(), packages, warnings)))
}

pub(super) fn cache_record(
    key: &str,
    layer: &Descriptor,
    diff_id: &str,
    packages: &[Package],
    warnings: &[String],
    scratch: &Path,
) -> Result<(String, Manifest, Descriptor, PathBuf), BuildError> {
    let config = serde_json::to_vec(
        &json!({"key": key, "diff_id": diff_id, "packages": packages, "warnings": warnings}),
    )
    .map_err(|e| BuildError::Io(e.to_string()))?;
    let path = scratch.join(format!("cache-{}.json", &key[..16]));
    std::fs::write(&path, &config).map_err(|e| BuildError::Io(e.to_string()))?;
    let cd = Descriptor::of(CACHE_CONFIG, &config);
    let m = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cd, "layers": [layer]}),
    )
    .map_err(|e| BuildError::Io(e.to_string()))?;
    let digest = crate::registry::digest::of(&m);
    Ok((
        cache_tag(key),
        Manifest {
            bytes: m,
            media_type: OCI_MANIFEST.into(),
            digest,
        },
        cd,
        path,
    ))
}
