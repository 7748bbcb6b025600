//! `docker save` / `podman save` archives. Newer ones hold an OCI layout (read as one); classic ones hold
//! `manifest.json`, the config, and uncompressed layer tars, which are compressed here (the same pinned
//! gzip as built layers) into an OCI image whose config, and so whose diff_ids, are unchanged.

use super::layout::{self, Image, LayoutError};
use super::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::{Blob, Manifest};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;

fn err(path: &Path, reason: impl Into<String>) -> LayoutError {
    LayoutError::Read {
        path: path.into(),
        reason: reason.into(),
    }
}

pub fn read(file: &Path, tag: Option<&str>, scratch: &Path) -> Result<Image, LayoutError> {
    let dir = scratch.join("archive");
    std::fs::create_dir_all(&dir).map_err(|e| err(file, e.to_string()))?;
    let f = std::fs::File::open(file).map_err(|e| err(file, e.to_string()))?;
    tar::Archive::new(std::io::BufReader::new(f))
        .unpack(&dir)
        .map_err(|e| err(file, format!("not a tar archive: {e}")))?;
    if dir.join("index.json").is_file() && dir.join("oci-layout").is_file() && tag.is_none() {
        return layout::read(&dir, None);
    }
    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read(&manifest_path).map_err(|_| {
        err(
            file,
            "has neither manifest.json nor an OCI layout (is it a docker save archive?)",
        )
    })?;
    let entries: Vec<Value> =
        serde_json::from_slice(&text).map_err(|e| err(&manifest_path, e.to_string()))?;
    let tags_of = |e: &Value| {
        e["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let entry = match tag {
        Some(t) => entries
            .iter()
            .find(|e| {
                tags_of(e)
                    .iter()
                    .any(|rt| rt == t || rt.ends_with(&format!(":{t}")))
            })
            .ok_or_else(|| LayoutError::NoTag {
                path: file.into(),
                tag: t.into(),
                known: entries
                    .iter()
                    .flat_map(tags_of)
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        None if entries.len() == 1 => &entries[0],
        None => {
            return Err(LayoutError::Ambiguous {
                path: file.into(),
                count: entries.len(),
                known: entries
                    .iter()
                    .flat_map(tags_of)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let config_path = dir.join(
        entry["Config"]
            .as_str()
            .ok_or_else(|| err(&manifest_path, "entry has no Config"))?,
    );
    let config = std::fs::read(&config_path).map_err(|e| err(&config_path, e.to_string()))?;
    let config_d = Descriptor {
        media_type: OCI_CONFIG.into(),
        digest: crate::registry::digest::of(&config),
        size: config.len() as u64,
        platform: None,
        annotations: None,
    };
    let mut blobs = vec![Blob {
        descriptor: config_d.clone(),
        source: Source::File(config_path),
        mount_from: None,
    }];
    let mut layers = Vec::new();
    for (i, l) in entry["Layers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .enumerate()
    {
        let src = dir.join(l);
        let out = scratch.join(format!("layer-{i}.tar.gz"));
        let d = compress(&src, &out).map_err(|e| err(&src, e.to_string()))?;
        blobs.push(Blob {
            descriptor: d.clone(),
            source: Source::File(out),
            mount_from: None,
        });
        layers.push(d);
    }
    let m = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_d, "layers": layers})).map_err(|e| err(file, e.to_string()))?;
    let digest = crate::registry::digest::of(&m);
    let tag = tags_of(entry)
        .first()
        .and_then(|t| t.rsplit_once(':').map(|(_, t)| t.to_string()));
    Ok(Image {
        blobs,
        manifests: vec![Manifest {
            bytes: m,
            media_type: OCI_MANIFEST.into(),
            digest,
        }],
        tag,
    })
}

/// A layer tar as `.tar.gz` (gzip kept as is).
fn compress(src: &Path, out: &Path) -> std::io::Result<Descriptor> {
    let mut f = std::fs::File::open(src)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    if n == 2 && magic == [0x1f, 0x8b] {
        std::fs::copy(src, out)?;
    } else {
        let mut input = std::io::BufReader::new(std::fs::File::open(src)?);
        let gz = flate2::GzBuilder::new()
            .mtime(0)
            .operating_system(255)
            .write(
                std::io::BufWriter::new(std::fs::File::create(out)?),
                flate2::Compression::new(1),
            );
        let mut gz = gz;
        std::io::copy(&mut input, &mut gz)?;
        gz.finish()?.flush()?;
    }
    let mut h = Sha256::new();
    let mut size = 0u64;
    let mut r = std::io::BufReader::new(std::fs::File::open(out)?);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = r.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        size += k as u64;
    }
    Ok(Descriptor {
        media_type: OCI_LAYER_GZIP.into(),
        digest: format!("sha256:{}", hex::encode(h.finalize())),
        size,
        platform: None,
        annotations: None,
    })
}
