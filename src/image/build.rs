//! Building a flow image without a daemon: the base image's manifest and config from its registry, plus a
//! dependency layer and a code layer, into a new config and manifest (an index for several platforms).
//! Nothing runs inside the image; only files are added. Plan, then act: this computes every blob and
//! manifest; `commands::build` pushes them or writes a layout.

use super::context;
use super::deps::{self, Installer};
use super::layer::{self, Layer};
use super::manifest::{self, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::{Blob, Manifest};
use crate::registry::session::Session;
use crate::registry::{Reference, RegistryError};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error(transparent)]
    Deps(#[from] deps::DepsError),
    #[error("base image {base}: {reason}")]
    Base { base: String, reason: String },
    #[error("{0}")]
    Io(String),
}

impl BuildError {
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Registry(e) => e.hint(),
            BuildError::Deps(e) => e.hint(),
            BuildError::Base { .. } => {
                Some("check --base, and that it is built for every --platform".into())
            }
            _ => None,
        }
    }

    pub fn is_input(&self) -> bool {
        matches!(
            self,
            BuildError::Context(_) | BuildError::Base { .. } | BuildError::Deps(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/amd64`, `linux/arm64/v8`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut p = s.split('/');
        let (os, arch) = (p.next()?.to_string(), p.next()?.to_string());
        Some(Self {
            os,
            arch,
            variant: p.next().map(str::to_string),
        })
    }

    fn matches(&self, v: &Value) -> bool {
        v["os"] == self.os.as_str()
            && v["architecture"] == self.arch.as_str()
            && self
                .variant
                .as_deref()
                .is_none_or(|want| v["variant"].as_str().is_none_or(|have| have == want))
    }
}

pub struct Input {
    pub base: Reference,
    pub platforms: Vec<Platform>,
    pub context: PathBuf,
    pub requirements: Option<PathBuf>,
    pub python: Option<String>,
    /// Absolute path of the flow's code in the image.
    pub workdir: String,
    pub mtime: u64,
    pub labels: BTreeMap<String, String>,
    /// `PATH`, to find the dependency installer.
    pub path: Option<String>,
}

/// What was built: everything to push, and what is recorded for the dependency cache.
pub struct Built {
    pub blobs: Vec<Blob>,
    pub manifests: Vec<Manifest>,
    /// New local files (config, layers) by descriptor, for an OCI layout.
    pub files: Vec<(Descriptor, PathBuf)>,
    /// Base layers, which a layout must download (`(descriptor, base repository)`).
    pub base_layers: Vec<Descriptor>,
    /// Dependency layers to record under `(tag, manifest, config file)` after the push.
    pub cache_records: Vec<(String, Manifest, Descriptor, PathBuf)>,
    pub warnings: Vec<String>,
    /// What happened, for narration.
    pub notes: Vec<String>,
}

/// The registry-side cache of dependency layers: a tiny manifest in the target repository whose config
/// records the layer's diff_id.
pub fn cache_tag(key: &str) -> String {
    format!("flowship-deps-{}", &key[..32])
}

const CACHE_CONFIG: &str = "application/vnd.flowship.deps.config.v1+json";

pub async fn build(
    input: &Input,
    base: Arc<Session>,
    target: Option<(Arc<Session>, String)>,
    scratch: &Path,
) -> Result<Built, BuildError> {
    let base_name = input.base.to_string();
    let bad_base = |reason: String| BuildError::Base {
        base: base_name.clone(),
        reason,
    };
    let reference = input
        .base
        .digest
        .clone()
        .or(input.base.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (bytes, served, top_digest) = base
        .manifest_get(&input.base.repository, &reference)
        .await?
        .ok_or_else(|| bad_base("does not exist".into()))?;
    let top_type = manifest::media_type(&bytes, &served);

    // One platform manifest of the base per requested platform.
    let mut per_platform = Vec::new();
    if manifest::is_index(&top_type) {
        let (children, _) =
            manifest::references(&bytes, &top_digest).map_err(|e| bad_base(e.to_string()))?;
        for p in &input.platforms {
            let child = children
                .iter()
                .find(|c| c.platform.as_ref().is_some_and(|v| p.matches(v)))
                .ok_or_else(|| bad_base(format!("has no {}/{} image", p.os, p.arch)))?;
            let (b, s, d) = base
                .manifest_get(&input.base.repository, &child.digest)
                .await?
                .ok_or_else(|| bad_base("lost a child".into()))?;
            per_platform.push((p.clone(), b.clone(), manifest::media_type(&b, &s), d));
        }
    } else {
        if input.platforms.len() > 1 {
            return Err(bad_base(
                "is a single-platform image; several --platform need a multi-platform base".into(),
            ));
        }
        per_platform.push((
            input.platforms[0].clone(),
            bytes,
            top_type,
            top_digest.clone(),
        ));
    }

    let mut built = Built {
        blobs: Vec::new(),
        manifests: Vec::new(),
        files: Vec::new(),
        base_layers: Vec::new(),
        cache_records: Vec::new(),
        warnings: Vec::new(),
        notes: Vec::new(),
    };
    let io = |e: std::io::Error| BuildError::Io(e.to_string());

    // The code layer is the same for every platform.
    let dest = input.workdir.trim_start_matches('/').to_string();
    let (entries, warnings) = context::collect(&input.context, &dest)?;
    built.warnings.extend(warnings);
    let code = layer::write(&entries, input.mtime, &scratch.join("code.tar.gz")).map_err(io)?;

    // A requirements file that names nothing (empty, comments only) needs no installer and no layer.
    let requirements = input
        .requirements
        .as_ref()
        .filter(|r| names_requirements(r));
    let installer = match requirements {
        Some(_) => Some(Installer::find(input.path.as_deref())?),
        None => None,
    };
    let same_registry = target
        .as_ref()
        .is_some_and(|(s, _)| s.host() == base.host());
    let mut platform_manifests = Vec::new();
    for (platform, bytes, _media, digest) in per_platform {
        let (children, refs) =
            manifest::references(&bytes, &digest).map_err(|e| bad_base(e.to_string()))?;
        let Some(config_desc) = refs.first().filter(|_| children.is_empty()) else {
            return Err(bad_base(format!(
                "manifest {digest} for linux/{} is not an image manifest",
                platform.arch
            )));
        };
        let config_bytes = base
            .blob_bytes(
                &input.base.repository,
                &config_desc.digest,
                crate::registry::blobs::MAX_CONFIG,
            )
            .await?;
        let mut config: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| bad_base(format!("config is not JSON: {e}")))?;
        if !config.is_object() {
            return Err(bad_base("config is not a JSON object".into()));
        }

        // Dependencies: from the registry cache, else installed now.
        let mut new_layers: Vec<(Descriptor, String, &'static str)> = Vec::new();
        if let (Some(req), Some(inst)) = (requirements, &installer) {
            let python = input.python.clone().or_else(|| python_of(&config)).ok_or_else(|| {
                bad_base("does not say its Python version (no PYTHON_VERSION in its environment); pass --python-version".into())
            })?;
            let req_bytes = std::fs::read(req)
                .map_err(|e| BuildError::Io(format!("{}: {e}", req.display())))?;
            let key = deps::cache_key(&req_bytes, &platform.arch, &python, inst);
            let cached = match &target {
                Some((s, repo)) => cached_deps(s, repo, &key).await?,
                None => None,
            };
            let (desc, diff_id) = match cached {
                Some((d, diff)) => {
                    built.notes.push(format!(
                        "dependencies for linux/{}: reused from the registry ({})",
                        platform.arch,
                        cache_tag(&key)
                    ));
                    let (s, repo) = target.as_ref().expect("cache hits need a target");
                    built.blobs.push(Blob {
                        descriptor: d.clone(),
                        source: Source::Remote {
                            session: s.clone(),
                            repository: repo.clone(),
                        },
                        mount_from: None,
                    });
                    (d, diff)
                }
                None => {
                    let site = scratch.join(format!("site-{}", platform.arch));
                    std::fs::create_dir_all(&site).map_err(io)?;
                    deps::install(inst, req, &platform.arch, &python, &site)?;
                    built.notes.push(format!(
                        "dependencies for linux/{}: installed with {} for Python {python}",
                        platform.arch,
                        inst.id()
                    ));
                    let (entries, _) = context::collect(&site, deps::SITE)?;
                    let l = layer::write(
                        &entries,
                        input.mtime,
                        &scratch.join(format!("deps-{}.tar.gz", platform.arch)),
                    )
                    .map_err(io)?;
                    let d = descriptor(OCI_LAYER_GZIP, &l);
                    built.blobs.push(Blob {
                        descriptor: d.clone(),
                        source: Source::File(l.path.clone()),
                        mount_from: None,
                    });
                    built.files.push((d.clone(), l.path.clone()));
                    if target.is_some() {
                        built
                            .cache_records
                            .push(cache_record(&key, &d, &l.diff_id, scratch)?);
                    }
                    (d, l.diff_id)
                }
            };
            new_layers.push((desc, diff_id, "dependencies"));
        }
        let code_desc = descriptor(OCI_LAYER_GZIP, &code);
        if !built.files.iter().any(|(d, _)| d.digest == code.digest) {
            built.blobs.push(Blob {
                descriptor: code_desc.clone(),
                source: Source::File(code.path.clone()),
                mount_from: None,
            });
            built.files.push((code_desc.clone(), code.path.clone()));
        }
        new_layers.push((code_desc, code.diff_id.clone(), "flow code"));

        // Base layers: mounted when the base lives in the same registry, else streamed across.
        let mut layers = Vec::new();
        for l in &refs[1..] {
            let mut l = l.clone();
            l.media_type = oci_layer_type(&l.media_type);
            built.blobs.push(Blob {
                descriptor: l.clone(),
                source: Source::Remote {
                    session: base.clone(),
                    repository: input.base.repository.clone(),
                },
                mount_from: same_registry.then(|| input.base.repository.clone()),
            });
            built.base_layers.push(l.clone());
            layers.push(l);
        }
        layers.extend(new_layers.iter().map(|(d, _, _)| d.clone()));

        edit_config(&mut config, input, &new_layers);
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| BuildError::Io(e.to_string()))?;
        let config_path = scratch.join(format!("config-{}.json", platform.arch));
        std::fs::write(&config_path, &config_bytes).map_err(io)?;
        let config_d = Descriptor {
            media_type: OCI_CONFIG.into(),
            digest: crate::registry::digest::of(&config_bytes),
            size: config_bytes.len() as u64,
            platform: None,
            annotations: None,
        };
        built.blobs.push(Blob {
            descriptor: config_d.clone(),
            source: Source::File(config_path.clone()),
            mount_from: None,
        });
        built.files.push((config_d.clone(), config_path));
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_d,
            "layers": layers,
            "annotations": {
                "org.opencontainers.image.base.name": base_name,
                "org.opencontainers.image.base.digest": digest,
            },
        });
        let mb = serde_json::to_vec(&m).map_err(|e| BuildError::Io(e.to_string()))?;
        let md = crate::registry::digest::of(&mb);
        platform_manifests.push((
            platform,
            Manifest {
                bytes: mb,
                media_type: OCI_MANIFEST.into(),
                digest: md,
            },
        ));
    }

    if platform_manifests.len() == 1 {
        built.manifests.push(platform_manifests.remove(0).1);
    } else {
        let entries: Vec<Value> = platform_manifests
            .iter()
            .map(|(p, m)| {
                let mut plat = json!({"os": p.os, "architecture": p.arch});
                if let Some(v) = &p.variant {
                    plat["variant"] = json!(v);
                }
                json!({"mediaType": m.media_type, "digest": m.digest, "size": m.bytes.len(), "platform": plat})
            })
            .collect();
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
        )
        .map_err(|e| BuildError::Io(e.to_string()))?;
        let digest = crate::registry::digest::of(&index);
        built
            .manifests
            .extend(platform_manifests.into_iter().map(|(_, m)| m));
        built.manifests.push(Manifest {
            bytes: index,
            media_type: OCI_INDEX.into(),
            digest,
        });
    }
    Ok(built)
}

fn descriptor(media_type: &str, l: &Layer) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: l.digest.clone(),
        size: l.size,
        platform: None,
        annotations: None,
    }
}

/// Docker's layer media types have OCI twins for the same bytes.
fn oci_layer_type(t: &str) -> String {
    match t {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => OCI_LAYER_GZIP.into(),
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip".into()
        }
        other => other.into(),
    }
}

/// `PYTHON_VERSION=3.12.4` (official python images) → `3.12`.
fn python_of(config: &Value) -> Option<String> {
    let env = config["config"]["Env"].as_array()?;
    let v = env
        .iter()
        .filter_map(Value::as_str)
        .find_map(|e| e.strip_prefix("PYTHON_VERSION="))?;
    let mut parts = v.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

async fn cached_deps(
    session: &Session,
    repo: &str,
    key: &str,
) -> Result<Option<(Descriptor, String)>, BuildError> {
    // A Harbor project that does not exist yet (`--create-project` makes it when the image is pushed) has
    // nothing cached: the plan stays read-only.
    let found = match session.manifest_get(repo, &cache_tag(key)).await {
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
    let bytes = session
        .blob_bytes(repo, &config.digest, crate::registry::blobs::MAX_CONFIG)
        .await?;
    // A record that does not read is no record: build as if nothing were cached.
    let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(None);
    };
    if v["key"] != key {
        return Ok(None);
    }
    Ok(v["diff_id"]
        .as_str()
        .map(|d| (layer.clone(), d.to_string())))
}

fn cache_record(
    key: &str,
    layer: &Descriptor,
    diff_id: &str,
    scratch: &Path,
) -> Result<(String, Manifest, Descriptor, PathBuf), BuildError> {
    let config = serde_json::to_vec(&json!({"key": key, "diff_id": diff_id}))
        .map_err(|e| BuildError::Io(e.to_string()))?;
    let path = scratch.join(format!("cache-{}.json", &key[..16]));
    std::fs::write(&path, &config).map_err(|e| BuildError::Io(e.to_string()))?;
    let cd = Descriptor {
        media_type: CACHE_CONFIG.into(),
        digest: crate::registry::digest::of(&config),
        size: config.len() as u64,
        platform: None,
        annotations: None,
    };
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

/// The base's config plus what the flow needs: the dependencies on `PYTHONPATH` (and their scripts on
/// `PATH`), the working directory, labels, the new layers' diff_ids and history, one fixed timestamp.
fn edit_config(config: &mut Value, input: &Input, new_layers: &[(Descriptor, String, &str)]) {
    let created = super::time::iso8601(input.mtime);
    let Some(obj) = config.as_object_mut() else {
        return; // checked by the caller: configs that are not objects are refused before this
    };
    obj.insert("created".into(), json!(created));
    for k in [
        "container",
        "container_config",
        "docker_version",
        "hostname",
    ] {
        obj.remove(k);
    }
    // `"config": null` (scratch-built images) or anything else that is not an object starts afresh.
    let cfg = obj.entry("config").or_insert_with(|| json!({}));
    if !cfg.is_object() {
        *cfg = json!({});
    }
    let cfg = cfg.as_object_mut().expect("made an object above");
    let mut env: Vec<String> = cfg
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let site = format!("/{}", deps::SITE);
    set_env(&mut env, "PYTHONPATH", |old| match old {
        Some(o) if !o.is_empty() => format!("{site}:{o}"),
        _ => site.clone(),
    });
    set_env(&mut env, "PATH", |old| {
        format!(
            "{site}/bin:{}",
            old.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        )
    });
    cfg.insert("Env".into(), json!(env));
    cfg.insert("WorkingDir".into(), json!(input.workdir));
    let mut labels: Map<String, Value> = cfg
        .get("Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &input.labels {
        labels.insert(k.clone(), json!(v));
    }
    labels.insert("org.opencontainers.image.created".into(), json!(created));
    cfg.insert("Labels".into(), Value::Object(labels));
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if !rootfs.is_object() {
        *rootfs = json!({"type": "layers", "diff_ids": []});
    }
    if let Some(ids) = rootfs["diff_ids"].as_array_mut() {
        ids.extend(new_layers.iter().map(|(_, diff, _)| json!(diff)));
    }
    if let Some(history) = obj.get_mut("history").and_then(Value::as_array_mut) {
        for (_, _, what) in new_layers {
            history.push(json!({"created": created, "created_by": format!("flowship build: {what}"), "comment": "flowship"}));
        }
    }
}

fn set_env(env: &mut Vec<String>, name: &str, value: impl FnOnce(Option<&str>) -> String) {
    let prefix = format!("{name}=");
    let pos = env.iter().position(|e| e.starts_with(&prefix));
    let new = format!("{prefix}{}", value(pos.map(|i| &env[i][prefix.len()..])));
    match pos {
        Some(i) => env[i] = new,
        None => env.push(new),
    }
}

/// Download a blob into a file, checking its digest (for an OCI layout of a remote base).
pub async fn download(
    session: &Session,
    repo: &str,
    d: &Descriptor,
    to: &Path,
) -> Result<(), BuildError> {
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncWriteExt;
    let mut resp = session.blob_get(repo, &d.digest, None).await?;
    let mut f = tokio::fs::File::create(to)
        .await
        .map_err(|e| BuildError::Io(e.to_string()))?;
    let mut h = Sha256::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BuildError::Io(e.to_string()))?
    {
        h.update(&chunk);
        f.write_all(&chunk)
            .await
            .map_err(|e| BuildError::Io(e.to_string()))?;
    }
    f.flush().await.map_err(|e| BuildError::Io(e.to_string()))?;
    let got = format!("sha256:{}", hex::encode(h.finalize()));
    if got != d.digest {
        return Err(BuildError::Io(format!(
            "blob {} downloaded as {got}",
            d.digest
        )));
    }
    Ok(())
}

/// Does the requirements file name anything (a line that is neither blank nor a comment)?
fn names_requirements(path: &Path) -> bool {
    std::fs::read_to_string(path).map_or(true, |t| {
        t.lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .any(|l| !l.is_empty())
    })
}
