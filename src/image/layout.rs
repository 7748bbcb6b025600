//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/...`): read one image from a layout
//! that buildah, podman, skopeo, umoci or a kaniko fork wrote, or write the image flowship built.

use super::manifest::{self, ManifestError};
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::{Blob, Manifest};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error("{}: no image tagged `{tag}` (tags here: {known})", path.display())]
    NoTag {
        path: PathBuf,
        tag: String,
        known: String,
    },
    #[error("{}: holds {count} images; say which with oci-layout:DIR:TAG (tags: {known})", path.display())]
    Ambiguous {
        path: PathBuf,
        count: usize,
        known: String,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: blob {digest} {reason}", path.display())]
    Blob {
        path: PathBuf,
        digest: String,
        reason: String,
    },
}

/// An image ready to push: blobs, and manifests with the top one last.
pub struct Image {
    pub blobs: Vec<Blob>,
    pub manifests: Vec<Manifest>,
    /// The tag the layout gave it, if any.
    pub tag: Option<String>,
}

/// `blobs/sha256/<hex>`: only ever for a digest of the right form (checked where descriptors are read), so
/// no descriptor can name a file outside the layout.
fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or("invalid");
    dir.join("blobs").join("sha256").join(hex)
}

pub fn read(dir: &Path, tag: Option<&str>) -> Result<Image, LayoutError> {
    let read_err = |p: &Path, e: String| LayoutError::Read {
        path: p.into(),
        reason: e,
    };
    let index_path = dir.join("index.json");
    let text = std::fs::read(&index_path)
        .map_err(|e| read_err(&index_path, format!("{e} (is this an OCI layout?)")))?;
    let index: Value =
        serde_json::from_slice(&text).map_err(|e| read_err(&index_path, e.to_string()))?;
    let list = index["manifests"].as_array().ok_or_else(|| {
        read_err(
            &index_path,
            "`manifests` is not a list (is this an OCI layout?)".into(),
        )
    })?;
    let entries: Vec<Descriptor> = list
        .iter()
        .map(|d| {
            let d: Descriptor = serde_json::from_value(d.clone())
                .map_err(|e| read_err(&index_path, e.to_string()))?;
            if !crate::registry::is_digest(&d.digest) {
                return Err(read_err(
                    &index_path,
                    format!("`{}` is not a sha256 digest", d.digest),
                ));
            }
            Ok(d)
        })
        .collect::<Result<_, _>>()?;
    if entries.is_empty() {
        return Err(read_err(&index_path, "names no image".into()));
    }
    let name_of = |d: &Descriptor| {
        d.annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let known = entries
        .iter()
        .filter_map(name_of)
        .collect::<Vec<_>>()
        .join(", ");
    let chosen = match tag {
        Some(t) => entries
            .iter()
            .find(|d| name_of(d).as_deref() == Some(t))
            .ok_or_else(|| LayoutError::NoTag {
                path: dir.into(),
                tag: t.into(),
                known: known.clone(),
            })?,
        None if entries.len() == 1 => &entries[0],
        None => {
            return Err(LayoutError::Ambiguous {
                path: dir.into(),
                count: entries.len(),
                known,
            });
        }
    };
    let mut manifests = Vec::new();
    let mut blobs = Vec::new();
    collect(dir, chosen, &mut manifests, &mut blobs, 0)?;
    Ok(Image {
        blobs,
        manifests,
        tag: name_of(chosen),
    })
}

/// Depth-first: children are pushed before the index that names them.
fn collect(
    dir: &Path,
    d: &Descriptor,
    manifests: &mut Vec<Manifest>,
    blobs: &mut Vec<Blob>,
    depth: usize,
) -> Result<(), LayoutError> {
    if depth > 4 {
        return Err(LayoutError::Blob {
            path: dir.into(),
            digest: d.digest.clone(),
            reason: "nests indexes deeper than any image does".into(),
        });
    }
    let path = regular_blob(dir, &d.digest)?;
    let bytes = std::fs::read(&path).map_err(|e| LayoutError::Blob {
        path: dir.into(),
        digest: d.digest.clone(),
        reason: e.to_string(),
    })?;
    if crate::registry::digest::of(&bytes) != d.digest {
        return Err(LayoutError::Blob {
            path: dir.into(),
            digest: d.digest.clone(),
            reason: "does not match its digest".into(),
        });
    }
    let (children, refs) = manifest::references(&bytes, &d.digest)?;
    for c in &children {
        collect(dir, c, manifests, blobs, depth + 1)?;
    }
    for b in refs {
        let p = regular_blob(dir, &b.digest)?;
        let size = std::fs::metadata(&p)
            .map_err(|e| LayoutError::Blob {
                path: dir.into(),
                digest: b.digest.clone(),
                reason: e.to_string(),
            })?
            .len();
        if size != b.size {
            return Err(LayoutError::Blob {
                path: dir.into(),
                digest: b.digest.clone(),
                reason: format!("is {size} bytes, its descriptor says {}", b.size),
            });
        }
        blobs.push(Blob {
            descriptor: b,
            source: Source::File(p),
            mount_from: None,
        });
    }
    manifests.push(Manifest {
        media_type: manifest::media_type(&bytes, &d.media_type),
        digest: d.digest.clone(),
        bytes,
    });
    Ok(())
}

/// A blob's path, if it is a regular file: a symlink in `blobs/` could name any file on the machine.
fn regular_blob(dir: &Path, digest: &str) -> Result<PathBuf, LayoutError> {
    let p = blob_path(dir, digest);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.is_file() => Ok(p),
        Ok(_) => Err(LayoutError::Blob {
            path: dir.into(),
            digest: digest.into(),
            reason: "is not a regular file (a symlink?)".into(),
        }),
        Err(e) => Err(LayoutError::Blob {
            path: dir.into(),
            digest: digest.into(),
            reason: e.to_string(),
        }),
    }
}

/// Write an image into a layout (creating it, or adding to it), its top manifest named `tags`.
pub fn write(
    dir: &Path,
    blobs: &[(Descriptor, PathBuf)],
    manifests: &[Manifest],
    tags: &[String],
) -> Result<(), LayoutError> {
    let err = |p: &Path, e: std::io::Error| LayoutError::Read {
        path: p.into(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(dir.join("blobs/sha256")).map_err(|e| err(dir, e))?;
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(|e| err(dir, e))?;
    for (d, src) in blobs {
        let to = blob_path(dir, &d.digest);
        if !to.exists() {
            std::fs::copy(src, &to).map_err(|e| err(&to, e))?;
        }
    }
    for m in manifests {
        std::fs::write(blob_path(dir, &m.digest), &m.bytes).map_err(|e| err(dir, e))?;
    }
    let index_path = dir.join("index.json");
    let mut index: Value = std::fs::read(&index_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(
            || json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": []}),
        );
    let top = manifests.last().expect("an image has a manifest");
    if !index.is_object() || !index["manifests"].is_array() {
        return Err(LayoutError::Read {
            path: index_path,
            reason: "is not an OCI index (`manifests` is not a list); write to a new directory"
                .into(),
        });
    }
    let entries = index["manifests"].as_array_mut().expect("checked above");
    for t in tags {
        entries.retain(|e| e["annotations"][REF_NAME] != t.as_str());
        entries.push(json!({"mediaType": top.media_type, "digest": top.digest, "size": top.bytes.len(), "annotations": {REF_NAME: t}}));
    }
    let text = serde_json::to_vec(&index).expect("json");
    std::fs::write(&index_path, text).map_err(|e| err(&index_path, e))
}
