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
use std::path::{Component, Path, PathBuf};

fn err(path: &Path, reason: impl Into<String>) -> LayoutError {
    LayoutError::Read {
        path: path.into(),
        reason: reason.into(),
    }
}

/// An archive entry's name as a relative path of normal components (`./a/b` → `a/b`); `None` for anything
/// that could leave the extraction directory (`..`, an absolute path, a prefix).
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpack `file` into `dir`: regular files only, under cleaned names. Symlinks (docker save links repeated
/// layers) are resolved inside the archive, never on the file system: a link that leaves the archive, or
/// loops, is an error. Nothing outside `dir` is ever read or written.
fn unpack(file: &Path, dir: &Path) -> Result<(), LayoutError> {
    let f = std::fs::File::open(file).map_err(|e| err(file, e.to_string()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(f));
    let mut links: Vec<(PathBuf, PathBuf)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| err(file, format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(file, format!("not a tar archive: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| err(file, format!("an entry's name: {e}")))?
            .into_owned();
        let Some(name) = clean(&raw) else {
            return Err(err(
                file,
                format!("entry `{}` points outside the archive", raw.display()),
            ));
        };
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| err(file, e.to_string()))?
                .ok_or_else(|| err(file, format!("link `{}` has no target", name.display())))?;
            // Symlink targets are relative to the link's directory; hard links to the archive root.
            let base = if kind.is_symlink() {
                name.parent().map(Path::to_path_buf).unwrap_or_default()
            } else {
                PathBuf::new()
            };
            let joined = normalize(&base.join(&target)).ok_or_else(|| {
                err(
                    file,
                    format!("link `{}` points outside the archive", name.display()),
                )
            })?;
            links.push((name, joined));
            continue;
        }
        if !kind.is_file() {
            continue; // devices, fifos: never part of an image archive's metadata or layers
        }
        let to = dir.join(&name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(file, e.to_string()))?;
        }
        let mut out = std::fs::File::create(&to).map_err(|e| err(&to, e.to_string()))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| err(file, e.to_string()))?;
    }
    // Links become copies of the file they name inside the archive (chains followed, loops refused).
    for (name, _) in &links {
        let mut at = name.clone();
        for _ in 0..=links.len() {
            match links.iter().find(|(n, _)| *n == at) {
                Some((_, next)) => at = next.clone(),
                None => break,
            }
        }
        let src = dir.join(&at);
        if links.iter().any(|(n, _)| *n == at) || !src.is_file() {
            return Err(err(
                file,
                format!("link `{}` names no file in the archive", name.display()),
            ));
        }
        let to = dir.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(file, e.to_string()))?;
        }
        std::fs::copy(&src, &to).map_err(|e| err(&to, e.to_string()))?;
    }
    Ok(())
}

/// `a/b/../c` → `a/c`; `None` when `..` climbs above the root.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out: Vec<std::ffi::OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x.to_os_string()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop()?;
            }
            _ => return None,
        }
    }
    Some(out.iter().collect())
}

/// A path `manifest.json` names: relative, inside the archive, a regular file that was extracted.
fn member(dir: &Path, manifest: &Path, field: &str, name: &str) -> Result<PathBuf, LayoutError> {
    let rel = clean(Path::new(name)).ok_or_else(|| {
        err(
            manifest,
            format!("{field} `{name}` is not a path inside the archive"),
        )
    })?;
    let path = dir.join(rel);
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        _ => Err(err(
            manifest,
            format!("{field} `{name}` names no file in the archive"),
        )),
    }
}

pub fn read(file: &Path, tag: Option<&str>, scratch: &Path) -> Result<Image, LayoutError> {
    let dir = scratch.join("archive");
    std::fs::create_dir_all(&dir).map_err(|e| err(file, e.to_string()))?;
    unpack(file, &dir)?;
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
    let config_path = member(
        &dir,
        &manifest_path,
        "Config",
        entry["Config"]
            .as_str()
            .ok_or_else(|| err(&manifest_path, "entry has no Config"))?,
    )?;
    let config = std::fs::read(&config_path).map_err(|e| err(&config_path, e.to_string()))?;
    let config_d = Descriptor::of(OCI_CONFIG, &config);
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
        let src = member(&dir, &manifest_path, "Layers", l)?;
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
        artifact_type: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random JSON of the shapes these files have, and of the shapes they must not have.
    fn random_json(rng: &mut fastrand::Rng, names: &[&str]) -> String {
        let pick = |rng: &mut fastrand::Rng| names[rng.usize(..names.len())].to_string();
        match rng.u8(..8) {
            0 => "not json".into(),
            1 => "null".into(),
            2 => format!(
                r#"[{{"Config": "{}", "Layers": ["{}", "{}"], "RepoTags": ["x:1"]}}]"#,
                pick(rng),
                pick(rng),
                pick(rng)
            ),
            3 => format!(r#"[{{"Config": 5, "Layers": "{}"}}]"#, pick(rng)),
            4 => r#"{"schemaVersion": 2, "manifests": "no"}"#.into(),
            5 => format!(
                r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "{}", "size": 3}}]}}"#,
                [
                    "sha256:../../etc/passwd",
                    "sha256:abc",
                    &format!("sha256:{}", "0".repeat(64))
                ][rng.usize(..3)]
            ),
            6 => "[]".into(),
            _ => format!(
                r#"[{{"Config": "{}", "Layers": []}}, {{"Config": "{}"}}]"#,
                pick(rng),
                pick(rng)
            ),
        }
    }

    /// Panic-freedom and containment under arbitrary archives (issue 8): random entries (files, links that
    /// leave the archive or loop, `..` names, absolute names) with random metadata. Nothing is ever read or
    /// written outside the scratch directory, and nothing panics.
    #[test]
    fn arbitrary_archives_and_layouts_never_panic_or_escape() {
        let names = [
            "manifest.json",
            "config.json",
            "layer.tar",
            "a/layer.tar",
            "../escape",
            "/etc/passwd",
            "link",
            "a/../b",
            "index.json",
            "oci-layout",
            "blobs/sha256/x",
            "./manifest.json",
        ];
        let mut rng = fastrand::Rng::with_seed(31);
        let started = std::time::Instant::now();
        for round in 0..400 {
            let root = tempfile::tempdir().unwrap();
            let tar_path = root.path().join("image.tar");
            {
                let f = std::fs::File::create(&tar_path).unwrap();
                let mut b = tar::Builder::new(f);
                for _ in 0..rng.usize(0..8) {
                    let name = names[rng.usize(..names.len())];
                    let mut h = tar::Header::new_gnu();
                    let data = random_json(&mut rng, &names).into_bytes();
                    match rng.u8(..4) {
                        0 => {
                            h.set_entry_type(tar::EntryType::Symlink);
                            h.set_size(0);
                            let target = [
                                "/etc/passwd",
                                "../../etc/shadow",
                                "link",
                                "config.json",
                                "a",
                            ][rng.usize(..5)];
                            let _ = b.append_link(&mut h, name, target);
                        }
                        1 => {
                            h.set_entry_type(tar::EntryType::Link);
                            h.set_size(0);
                            let _ = b.append_link(&mut h, name, "config.json");
                        }
                        _ => {
                            h.set_size(data.len() as u64);
                            h.set_mode(0o644);
                            // set_path refuses `..`; write the raw name as a hostile archive would.
                            let raw = name.as_bytes();
                            let gnu = h.as_gnu_mut().unwrap();
                            gnu.name[..raw.len()].copy_from_slice(raw);
                            h.set_cksum();
                            let _ = b.append(&h, data.as_slice());
                        }
                    }
                }
                let _ = b.finish();
            }
            let scratch = root.path().join("scratch");
            std::fs::create_dir_all(&scratch).unwrap();
            let tag = if round % 3 == 0 { Some("1") } else { None };
            let _ = read(&tar_path, tag, &scratch);
            // Nothing outside the scratch directory: the root holds exactly the archive and the scratch dir.
            let mut left: Vec<String> = std::fs::read_dir(root.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            left.sort();
            assert_eq!(
                left,
                ["image.tar", "scratch"],
                "round {round} wrote outside the scratch dir"
            );
            for e in walkdir(&scratch) {
                let m = std::fs::symlink_metadata(&e).unwrap();
                assert!(
                    !m.file_type().is_symlink(),
                    "round {round} left a symlink: {}",
                    e.display()
                );
            }
            // The same files as an OCI layout directory.
            let _ = layout::read(&scratch.join("archive"), tag);
            if started.elapsed().as_secs() > 30 {
                break;
            }
        }
    }

    fn walkdir(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.clone());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    out.extend(walkdir(&p));
                }
            }
        }
        out
    }
}
