//! Building a flow image without a daemon: the base image's manifest and config from its registry, plus a
//! dependency layer and a code layer, into a new config and manifest (an index for several platforms).
//! Nothing runs inside the image; only files are added. Plan, then act: this computes every blob and
//! manifest; `commands::build` pushes them or writes a layout.

mod cache;
mod config;
mod dependencies;
mod local;
mod target;

use super::context;
use super::deps::{self, Installer};
use super::layer::{self, Layer};
use super::manifest::{self, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::{Blob, Manifest};
use crate::registry::repo::Repo;
use crate::registry::{Reference, RegistryError};
use config::edit_config;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Context(#[from] context::ContextError),
    #[error(transparent)]
    Deps(#[from] deps::DepsError),
    #[error(transparent)]
    Wheel(#[from] super::wheels::WheelError),
    #[error("base image {base}: {reason}")]
    Base { base: String, reason: String },
    #[error("{0}")]
    Io(String),
    #[error(
        "`{package}` {version} does not fit base image {base}: its wheel is tagged `{tag}`, {reason}"
    )]
    Unfit {
        base: String,
        package: String,
        version: String,
        tag: String,
        reason: String,
    },
    #[error("base image {base} has Python {python}; {file} requires-python is `{requires}`")]
    Python {
        base: String,
        python: String,
        requires: String,
        file: String,
    },
}

impl BuildError {
    pub fn hint(&self) -> Option<String> {
        match self {
            BuildError::Registry(e) => e.hint(),
            BuildError::Deps(e) => e.hint(),
            BuildError::Wheel(e) => e.hint(),
            BuildError::Base { .. } => {
                Some("check --base, and that it is built for every --platform".into())
            }
            BuildError::Unfit { .. } => Some(
                "pin a version with a wheel for this base, or use a newer base (--base)".into(),
            ),
            BuildError::Python { .. } => Some(
                "build on a base with a Python that fits (--base), or fix requires-python".into(),
            ),
            _ => None,
        }
    }

    pub fn is_input(&self) -> bool {
        matches!(
            self,
            BuildError::Context(_)
                | BuildError::Base { .. }
                | BuildError::Deps(_)
                | BuildError::Python { .. }
                | BuildError::Unfit { .. }
                | BuildError::Wheel(super::wheels::WheelError::Build { .. })
                | BuildError::Wheel(super::wheels::WheelError::Install { .. })
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
    /// Local packages built as wheels into the project layer (the project itself, workspace members).
    pub local: Vec<PathBuf>,
    /// Directories besides the context whose `requires-python` the base's Python must meet (a uv
    /// workspace's root).
    pub python_from: Vec<PathBuf>,
    pub python: Option<String>,
    /// Absolute path of the flow's code in the image.
    pub workdir: String,
    pub mtime: u64,
    pub labels: BTreeMap<String, String>,
    /// `image.env`: set in the image's config (`PYTHONPATH`/`PATH` joined after flowship's own entries).
    pub env: Vec<(String, String)>,
    /// `PATH`, to find the dependency installer.
    pub path: Option<String>,
    /// Where the installer takes packages from ([`deps::index_config`]), for the cache key.
    pub index: String,
    /// The build machine's cache (`cache.dir`): local packages' wheels and installed files.
    pub cache: Option<PathBuf>,
    /// The project's named indexes, `(name, url)` ([`deps::Target::indexes`]).
    pub indexes: Vec<(String, String)>,
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
    /// What the build resolved, for the image's provenance and SBOM.
    pub facts: Facts,
}

/// What a build resolved: the base by digest, the installer, the requirements' hash, the packages.
#[derive(Debug, Default, Clone)]
pub struct Facts {
    /// `(os/arch, digest)` of the base's platform image, per platform.
    pub base_digests: Vec<(String, String)>,
    /// `uv 0.13.9` / `pip 25.1`, when anything was to be installed.
    pub installer: Option<String>,
    pub python: Option<String>,
    /// SHA-256 (hex) of what the install reads: the requirements and what they include.
    pub requirements_sha256: Option<String>,
    /// The installed distributions (every platform's), `None` when a reused layer's record did not list them.
    pub packages: Option<Vec<crate::image::pysbom::Package>>,
}

/// One build: the inputs, where the base and the target live, the scratch directory, and what is made.
struct Builder<'a> {
    input: &'a Input,
    base: Repo,
    /// The repository the image goes to, read for its dependency cache (`None`: a layout only).
    target: Option<Repo>,
    scratch: &'a Path,
    base_name: String,
    built: Built,
}

/// What a platform's image installs: the dependencies (requirements, installer) and the local packages'
/// wheels.
type Installs<'a> = (
    Option<(&'a PathBuf, &'a Installer)>,
    Option<(&'a [PathBuf], &'a Installer)>,
);

/// A platform's image of the base: `(platform, manifest bytes, digest)`.
type BaseManifest = (Platform, Vec<u8>, String);

pub async fn build(
    input: &Input,
    base: Repo,
    target: Option<Repo>,
    scratch: &Path,
) -> Result<Built, BuildError> {
    let mut b = Builder {
        input,
        base,
        target,
        scratch,
        base_name: input.base.to_string(),
        built: Built {
            blobs: Vec::new(),
            manifests: Vec::new(),
            files: Vec::new(),
            base_layers: Vec::new(),
            cache_records: Vec::new(),
            warnings: Vec::new(),
            notes: Vec::new(),
            facts: Facts {
                packages: Some(Vec::new()),
                ..Facts::default()
            },
        },
    };
    let per_platform = b.base_manifests().await?;
    // The code layer is the same for every platform.
    let dest = input.workdir.trim_start_matches('/').to_string();
    let (entries, warnings) = context::collect(&input.context, &dest)?;
    b.built.warnings.extend(warnings);
    let code = layer::write(&entries, input.mtime, &scratch.join("code.tar.gz")).map_err(io)?;
    // A requirements file that names nothing (empty, comments only) needs no installer and no layer.
    let requirements = input
        .requirements
        .as_ref()
        .filter(|r| names_requirements(r));
    let installer = match requirements.is_some() || !input.local.is_empty() {
        true => Some(Installer::find(input.path.as_deref())?),
        false => None,
    };
    let deps = requirements.zip(installer.as_ref());
    b.built.facts.installer = installer.as_ref().map(|i| i.id().to_string());
    if let Some(r) = requirements {
        let inputs = deps::inputs(r)?;
        b.built.facts.requirements_sha256 =
            Some(crate::registry::digest::of(&inputs)["sha256:".len()..].to_string());
    }
    // Wheels are built once: a local package is pure Python or fails to build here.
    let built_wheels = match &installer {
        Some(inst) if !input.local.is_empty() => {
            let cache = super::cache::Local::at(input.cache.as_deref());
            let (wheels, notes) = super::wheels::build(
                inst,
                &input.local,
                &scratch.join("wheels"),
                input.mtime,
                cache.as_ref(),
            )?;
            b.built.notes.extend(notes);
            wheels
        }
        _ => Vec::new(),
    };
    let local = installer
        .as_ref()
        .filter(|_| !built_wheels.is_empty())
        .map(|i| (built_wheels.as_slice(), i));
    let mut platform_manifests = Vec::new();
    for (platform, bytes, digest) in per_platform {
        b.built
            .facts
            .base_digests
            .push((format!("{}/{}", platform.os, platform.arch), digest.clone()));
        let m = b
            .platform_image(&platform, &bytes, &digest, &code, (deps, local))
            .await?;
        platform_manifests.push((platform, m));
    }
    b.index(platform_manifests)?;
    Ok(b.built)
}

fn io(e: std::io::Error) -> BuildError {
    BuildError::Io(e.to_string())
}

impl Builder<'_> {
    fn bad_base(&self, reason: String) -> BuildError {
        BuildError::Base {
            base: self.base_name.clone(),
            reason,
        }
    }

    /// One platform manifest of the base per requested platform (an index resolves to its children).
    async fn base_manifests(&self) -> Result<Vec<BaseManifest>, BuildError> {
        let input = self.input;
        let reference = input
            .base
            .digest
            .clone()
            .or(input.base.tag.clone())
            .unwrap_or_else(|| "latest".into());
        let (bytes, served, top_digest) = self
            .base
            .manifest(&reference)
            .await?
            .ok_or_else(|| self.bad_base("does not exist".into()))?;
        let top_type = manifest::media_type(&bytes, &served);
        if !manifest::is_index(&top_type) {
            if input.platforms.len() > 1 {
                return Err(self.bad_base(
                    "is a single-platform image; several --platform need a multi-platform base"
                        .into(),
                ));
            }
            return Ok(vec![(input.platforms[0].clone(), bytes, top_digest)]);
        }
        let (children, _) =
            manifest::references(&bytes, &top_digest).map_err(|e| self.bad_base(e.to_string()))?;
        let mut out = Vec::new();
        for p in &input.platforms {
            let child = children
                .iter()
                .find(|c| c.platform.as_ref().is_some_and(|v| p.matches(v)))
                .ok_or_else(|| self.bad_base(format!("has no {}/{} image", p.os, p.arch)))?;
            let (b, _, d) = self
                .base
                .manifest(&child.digest)
                .await?
                .ok_or_else(|| self.bad_base("lost a child".into()))?;
            out.push((p.clone(), b, d));
        }
        Ok(out)
    }

    /// The image for one platform: the base's layers (mounted or streamed), the dependency and code layers,
    /// the edited config, and the manifest naming them.
    async fn platform_image(
        &mut self,
        platform: &Platform,
        bytes: &[u8],
        digest: &str,
        code: &Layer,
        (deps, local): Installs<'_>,
    ) -> Result<Manifest, BuildError> {
        let input = self.input;
        let (children, refs) =
            manifest::references(bytes, digest).map_err(|e| self.bad_base(e.to_string()))?;
        let Some(config_desc) = refs.first().filter(|_| children.is_empty()) else {
            return Err(self.bad_base(format!(
                "manifest {digest} for linux/{} is not an image manifest",
                platform.arch
            )));
        };
        let config_bytes = self
            .base
            .blob_bytes(&config_desc.digest, crate::registry::blobs::MAX_CONFIG)
            .await?;
        let mut config: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.bad_base(format!("config is not JSON: {e}")))?;
        if !config.is_object() {
            return Err(self.bad_base("config is not a JSON object".into()));
        }
        // The base's layers are read only when something is installed or checked against its Python.
        let dirs: Vec<&PathBuf> = std::iter::once(&input.context)
            .chain(&input.python_from)
            .collect();
        let specs: Vec<(&PathBuf, String)> = dirs
            .into_iter()
            .filter_map(|d| Some((d, crate::image::project::requires_python(d)?)))
            .collect();
        let t = match deps.is_some() || local.is_some() || !specs.is_empty() {
            true => Some(self.target(&config, &refs[1..]).await?),
            false => None,
        };
        // Code that needs another Python than the base has cannot run in the image: refused here, not at
        // the first flow run. The context's own, and its uv workspace root's (uv holds every member to it).
        for (dir, spec) in specs {
            let py = &t.as_ref().expect("read when there is a spec").python;
            if !crate::image::project::fits(&spec, py) {
                return Err(BuildError::Python {
                    base: self.base_name.clone(),
                    python: py.clone(),
                    requires: spec,
                    file: dir.join("pyproject.toml").display().to_string(),
                });
            }
        }
        let mut new_layers: Vec<(Descriptor, String, &'static str)> = Vec::new();
        if let (Some((req, inst)), Some(t)) = (deps, &t) {
            new_layers.push(self.deps_layer(platform, t, req, inst).await?);
        }
        if let (Some((wheels, inst)), Some(t)) = (local, &t) {
            new_layers.push(self.project_layer(platform, t, wheels, inst)?);
        }
        let code_desc = descriptor(OCI_LAYER_GZIP, code);
        if !self
            .built
            .files
            .iter()
            .any(|(d, _)| d.digest == code.digest)
        {
            self.built.blobs.push(Blob {
                descriptor: code_desc.clone(),
                source: Source::File(code.path.clone()),
                mount_from: None,
            });
            self.built
                .files
                .push((code_desc.clone(), code.path.clone()));
        }
        new_layers.push((code_desc, code.diff_id.clone(), "flow code"));

        // Base layers: mounted when the base lives in the same registry, else streamed across.
        let same_registry = self
            .target
            .as_ref()
            .is_some_and(|t| t.same_registry(&self.base));
        let mut layers = Vec::new();
        for l in &refs[1..] {
            let mut l = l.clone();
            l.media_type = manifest::oci_layer_type(&l.media_type);
            self.built.blobs.push(Blob {
                descriptor: l.clone(),
                source: self.base.source(),
                mount_from: same_registry.then(|| self.base.name().to_string()),
            });
            self.built.base_layers.push(l.clone());
            layers.push(l);
        }
        layers.extend(new_layers.iter().map(|(d, _, _)| d.clone()));
        edit_config(&mut config, input, &new_layers);
        let config_d = self.file_blob(
            &format!("config-{}.json", platform.arch),
            OCI_CONFIG,
            &serde_json::to_vec(&config).map_err(|e| BuildError::Io(e.to_string()))?,
        )?;
        let m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_d,
            "layers": layers,
            "annotations": {
                "org.opencontainers.image.base.name": self.base_name,
                "org.opencontainers.image.base.digest": digest,
            },
        });
        let mb = serde_json::to_vec(&m).map_err(|e| BuildError::Io(e.to_string()))?;
        Ok(Manifest {
            digest: crate::registry::digest::of(&mb),
            bytes: mb,
            media_type: OCI_MANIFEST.into(),
        })
    }

    /// The installed files in `site` as a layer at the image's site-packages (`name.tar.gz` in the scratch
    /// directory), to be pushed.
    fn site_layer(&mut self, site: &Path, name: &str) -> Result<(Descriptor, Layer), BuildError> {
        let (entries, _) = context::collect(site, deps::SITE)?;
        let l = layer::write(
            &entries,
            self.input.mtime,
            &self.scratch.join(format!("{name}.tar.gz")),
        )
        .map_err(io)?;
        let d = descriptor(OCI_LAYER_GZIP, &l);
        self.built.blobs.push(Blob {
            descriptor: d.clone(),
            source: Source::File(l.path.clone()),
            mount_from: None,
        });
        self.built.files.push((d.clone(), l.path.clone()));
        Ok((d, l))
    }

    /// `bytes` as a blob in the scratch directory.
    fn file_blob(
        &mut self,
        name: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Descriptor, BuildError> {
        let path = self.scratch.join(name);
        std::fs::write(&path, bytes).map_err(io)?;
        let d = Descriptor::of(media_type, bytes);
        self.built.blobs.push(Blob {
            descriptor: d.clone(),
            source: Source::File(path.clone()),
            mount_from: None,
        });
        self.built.files.push((d.clone(), path));
        Ok(d)
    }

    /// One platform: its manifest is the image. Several: an index over them, children first.
    fn index(
        &mut self,
        mut platform_manifests: Vec<(Platform, Manifest)>,
    ) -> Result<(), BuildError> {
        if platform_manifests.len() == 1 {
            self.built.manifests.push(platform_manifests.remove(0).1);
            return Ok(());
        }
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
        self.built
            .manifests
            .extend(platform_manifests.into_iter().map(|(_, m)| m));
        self.built.manifests.push(Manifest {
            bytes: index,
            media_type: OCI_INDEX.into(),
            digest,
        });
        Ok(())
    }
}

fn descriptor(media_type: &str, l: &Layer) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: l.digest.clone(),
        size: l.size,
        platform: None,
        annotations: None,
        artifact_type: None,
    }
}

/// Download a blob into a file, checking its digest (for an OCI layout of a remote base).
pub async fn download(repo: &Repo, d: &Descriptor, to: &Path) -> Result<(), BuildError> {
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncWriteExt;
    let mut resp = repo.blob(&d.digest).await?;
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
