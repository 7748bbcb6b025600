//! flowship's own image, made by flowship's own builder (no Dockerfile, no daemon): the static binary at
//! `/usr/local/bin/flowship`, a CA bundle, a writable `/tmp` and a non-root user, from scratch or on a base
//! (the `-python` variant for build jobs), with `org.opencontainers.image.*` labels and annotations, and an
//! SBOM of the binary's Rust packages as an artifact that refers to the image. Files only, nothing runs;
//! the same binary and inputs give the same digest.

pub mod sbom;

use super::layer::{self, Entry};
use super::manifest::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::registry::blobs::Descriptor;
use crate::registry::push::Manifest;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the binary goes, and what the image runs.
pub const BINARY: &str = "usr/local/bin/flowship";
/// The non-root user (distroless' `nonroot`): numeric, so that it holds on any base.
pub const USER: &str = "65532:65532";
const CA: &str = "etc/ssl/certs/ca-certificates.crt";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";

#[derive(Debug, thiserror::Error)]
pub enum OwnError {
    #[error("{path}: {reason}")]
    Input {
        path: String,
        reason: String,
        hint: String,
    },
    #[error("{0}")]
    Io(String),
}

impl OwnError {
    pub fn hint(&self) -> Option<String> {
        match self {
            OwnError::Input { hint, .. } => Some(hint.clone()),
            OwnError::Io(_) => None,
        }
    }
}

/// A base image already read: its platform manifest's digest, config and layers.
pub struct Base {
    pub name: String,
    pub digest: String,
    pub config: Value,
    pub layers: Vec<Descriptor>,
}

pub struct Input {
    pub binary: PathBuf,
    pub ca_bundle: PathBuf,
    /// More files, `(source, absolute path in the image)`; later ones win.
    pub add: Vec<(PathBuf, String)>,
    /// `None`: from scratch.
    pub base: Option<Base>,
    pub mtime: u64,
    pub labels: BTreeMap<String, String>,
}

/// An artifact that refers to the image, with its own blobs.
pub struct Referrer {
    pub manifest: Manifest,
    /// The artifact as an entry of a referrers index (with its `artifactType`).
    pub descriptor: Descriptor,
    pub artifact_type: String,
    pub files: Vec<(Descriptor, PathBuf)>,
}

pub struct Made {
    pub manifest: Manifest,
    /// New blobs (the layer, the config), as files.
    pub files: Vec<(Descriptor, PathBuf)>,
    pub base_layers: Vec<Descriptor>,
    pub sbom: Referrer,
    pub arch: &'static str,
}

fn io(e: impl std::fmt::Display) -> OwnError {
    OwnError::Io(e.to_string())
}

fn input_error(path: &Path, reason: impl Into<String>, hint: &str) -> OwnError {
    OwnError::Input {
        path: path.display().to_string(),
        reason: reason.into(),
        hint: hint.into(),
    }
}

/// The binary's architecture (OCI's name); a binary that needs a loader is refused from scratch.
pub fn check_binary(binary: &Path, from_scratch: bool) -> Result<&'static str, OwnError> {
    let bytes = std::fs::read(binary)
        .map_err(|e| input_error(binary, e.to_string(), "pass the flowship binary"))?;
    let b = crate::image::elf::inspect(&bytes).map_err(|r| {
        input_error(
            binary,
            r,
            "run the flowship built for Linux (x86_64 or aarch64)",
        )
    })?;
    if let (Some(loader), true) = (&b.interpreter, from_scratch) {
        return Err(input_error(
            binary,
            format!(
                "is dynamically linked (it needs {loader}), and an image from scratch has no loader"
            ),
            "build flowship statically: cargo build --release --features static --target x86_64-unknown-linux-musl (ci/image does)",
        ));
    }
    Ok(b.arch)
}

fn layer_entries(input: &Input) -> Result<BTreeMap<String, Entry>, OwnError> {
    let mut entries = BTreeMap::new();
    entries.insert(
        BINARY.to_string(),
        Entry::File {
            source: input.binary.clone(),
            executable: true,
        },
    );
    if !input.ca_bundle.is_file() {
        return Err(input_error(
            &input.ca_bundle,
            "is not a file",
            "pass the CA bundle the image should trust with --add FILE:/etc/ssl/certs/ca-certificates.crt, or install ca-certificates",
        ));
    }
    entries.insert(
        CA.to_string(),
        Entry::File {
            source: input.ca_bundle.clone(),
            executable: false,
        },
    );
    entries.insert("tmp".to_string(), Entry::SharedDir);
    if input.base.is_none() {
        // From scratch there is no /etc/passwd: name the user, so that tools that look it up find it.
        let passwd = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n";
        let group = "root:x:0:\nnonroot:x:65532:\n";
        for (path, text) in [("etc/passwd", passwd), ("etc/group", group)] {
            entries.insert(
                path.to_string(),
                Entry::Data {
                    bytes: text.as_bytes().to_vec(),
                    executable: false,
                },
            );
        }
    }
    for (source, dest) in &input.add {
        let meta = std::fs::metadata(source)
            .map_err(|e| input_error(source, e.to_string(), "--add takes FILE:/PATH/IN/IMAGE"))?;
        if !meta.is_file() {
            return Err(input_error(
                source,
                "is not a file",
                "--add takes FILE:/PATH/IN/IMAGE",
            ));
        }
        use std::os::unix::fs::PermissionsExt;
        entries.insert(
            dest.trim_start_matches('/').to_string(),
            Entry::File {
                source: source.clone(),
                executable: meta.permissions().mode() & 0o111 != 0,
            },
        );
    }
    Ok(entries)
}

/// The image's config: the base's (or an empty one) with the user, the entrypoint, the environment, the
/// labels, the new layer's diff_id and history, and one fixed timestamp.
fn config(input: &Input, arch: &str, diff_id: &str) -> Value {
    let created = super::time::iso8601(input.mtime);
    let mut config = match &input.base {
        Some(b) => b.config.clone(),
        None => {
            json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "history": []})
        }
    };
    config["created"] = json!(created);
    if !config["config"].is_object() {
        config["config"] = json!({});
    }
    let c = &mut config["config"];
    let mut env: Vec<String> = c["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .filter(|e| !e.starts_with("HOME=") && !e.starts_with("SSL_CERT_FILE="))
        .collect();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/bin:/usr/bin:/bin".into());
    }
    // HOME: the non-root user's, writable; SSL_CERT_FILE: the bundle, for tools other than flowship too.
    env.push("HOME=/tmp".into());
    env.push(format!("SSL_CERT_FILE=/{CA}"));
    c["Env"] = json!(env);
    c["User"] = json!(USER);
    c["Entrypoint"] = json!([format!("/{BINARY}")]);
    // The base's command (a shell) would become flowship's arguments.
    if let Some(o) = c.as_object_mut() {
        o.remove("Cmd");
    }
    c["WorkingDir"] = json!("/tmp");
    let mut labels: Map<String, Value> = c["Labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in &input.labels {
        labels.insert(k.clone(), json!(v));
    }
    c["Labels"] = Value::Object(labels);
    if !config["rootfs"]["diff_ids"].is_array() {
        config["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("made an array above")
        .push(json!(diff_id));
    if !config["history"].is_array() {
        config["history"] = json!([]);
    }
    config["history"]
        .as_array_mut()
        .expect("made an array above")
        .push(json!({"created": created, "created_by": "flowship build --self-image", "comment": "flowship"}));
    config
}

fn file(
    scratch: &Path,
    name: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<(Descriptor, PathBuf), OwnError> {
    let path = scratch.join(name);
    std::fs::write(&path, bytes).map_err(io)?;
    Ok((Descriptor::of(media_type, bytes), path))
}

fn manifest(value: &Value) -> Manifest {
    let bytes = serde_json::to_vec(value).expect("JSON");
    Manifest {
        digest: crate::registry::digest::of(&bytes),
        bytes,
        media_type: OCI_MANIFEST.into(),
    }
}

pub fn make(input: &Input, scratch: &Path) -> Result<Made, OwnError> {
    let arch = check_binary(&input.binary, input.base.is_none())?;
    let entries = layer_entries(input)?;
    let l = layer::write(&entries, input.mtime, &scratch.join("flowship.tar.gz")).map_err(io)?;
    let layer_d = Descriptor {
        media_type: OCI_LAYER_GZIP.into(),
        digest: l.digest.clone(),
        size: l.size,
        platform: None,
        annotations: None,
        artifact_type: None,
    };
    let cfg = config(input, arch, &l.diff_id);
    let (config_d, config_path) = file(
        scratch,
        "config.json",
        OCI_CONFIG,
        &serde_json::to_vec(&cfg).map_err(io)?,
    )?;
    let mut layers: Vec<Descriptor> = input
        .base
        .as_ref()
        .map(|b| b.layers.clone())
        .unwrap_or_default();
    let base_layers = layers.clone();
    layers.push(layer_d.clone());
    let mut annotations: Map<String, Value> = input
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if let Some(b) = &input.base {
        annotations.insert("org.opencontainers.image.base.name".into(), json!(b.name));
        annotations.insert(
            "org.opencontainers.image.base.digest".into(),
            json!(b.digest),
        );
    }
    let image = manifest(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_d,
        "layers": layers,
        "annotations": annotations,
    }));
    let sbom = sbom_referrer(input, &image, scratch)?;
    Ok(Made {
        files: vec![(layer_d, l.path), (config_d, config_path)],
        manifest: image,
        base_layers,
        sbom,
        arch,
    })
}

/// The SBOM as an OCI artifact: an image manifest with `artifactType`, the empty config, the document as
/// its one layer, and the image as its `subject`.
fn sbom_referrer(input: &Input, image: &Manifest, scratch: &Path) -> Result<Referrer, OwnError> {
    let created = super::time::iso8601(input.mtime);
    let (doc_d, doc_path) = file(
        scratch,
        "sbom.cdx.json",
        sbom::MEDIA_TYPE,
        &sbom::document(&created),
    )?;
    let (empty_d, empty_path) = file(scratch, "empty.json", EMPTY, b"{}")?;
    let mut layer = serde_json::to_value(&doc_d).map_err(io)?;
    layer["annotations"] = json!({"org.opencontainers.image.title": "sbom.cdx.json"});
    let annotations = json!({
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.description": "CycloneDX SBOM of flowship's Rust packages (from Cargo.lock)",
    });
    let m = manifest(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": sbom::MEDIA_TYPE,
        "config": empty_d,
        "layers": [layer],
        "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.bytes.len()},
        "annotations": annotations,
    }));
    let descriptor = Descriptor {
        media_type: OCI_MANIFEST.into(),
        digest: m.digest.clone(),
        size: m.bytes.len() as u64,
        platform: None,
        annotations: annotations.as_object().cloned(),
        artifact_type: Some(sbom::MEDIA_TYPE.into()),
    };
    Ok(Referrer {
        manifest: m,
        descriptor,
        artifact_type: sbom::MEDIA_TYPE.into(),
        files: vec![(empty_d, empty_path), (doc_d, doc_path)],
    })
}
