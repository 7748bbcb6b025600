//! Images as an operation. A plan is an image that exists as bytes and references (built here, read from an
//! OCI layout or archive, or named in another repository), plus what the target registry already has: which
//! blobs, whether the manifest is there, which tags point at it. Planning only reads. [`apply`] pushes what
//! is missing by digest, gates the digest on Harbor's scan, and only then moves the tags; a re-run after
//! success finds everything in place and does nothing.

use crate::error::Error;
use crate::image::build::{self, BuildError, Input, Platform};
use crate::image::{layout, manifest};
use crate::ops::Context;
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::{Blob, Manifest, Stats};
use crate::registry::session::Session;
use crate::registry::{Reference, RegistryError};
use crate::settings::Settings;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An OCI layout to write (build `--oci-layout`).
pub(super) struct LayoutWrite {
    pub(super) dir: PathBuf,
    pub(super) files: Vec<(Descriptor, PathBuf)>,
    pub(super) base_layers: Vec<Descriptor>,
    pub(super) base: Option<(Arc<Session>, String)>,
}

#[derive(Serialize)]
pub struct Plan {
    /// `registry/repository`.
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
    /// Blobs the image references (configs and layers).
    pub blobs: usize,
    /// Of those, how many the registry lacks, and their bytes (a same-registry mount may still spare some).
    pub blobs_missing: usize,
    pub bytes_missing: u64,
    /// The registry has the manifest by digest already.
    pub present: bool,
    /// Tags that already point at the digest.
    pub tagged: Vec<String>,
    /// Artifacts that refer to the image (its SBOM), pushed with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<ReferrerPlan>,
    /// Its cosign signature manifest (the `.sig` tag), when anything signs it or it is signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<SignaturePlan>,
    /// Its cosign attestations (the `.att` tag): the provenance, signed, when this run signs a build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<SignaturePlan>,
    /// The provenance statement of a built image, for its attestation.
    #[serde(skip)]
    pub(super) provenance: Option<Vec<u8>>,
    #[serde(skip)]
    pub(super) target: Reference,
    #[serde(skip)]
    pub(super) session: Option<Arc<Session>>,
    #[serde(skip)]
    pub(super) blob_list: Vec<Blob>,
    #[serde(skip)]
    pub manifests: Vec<Manifest>,
    #[serde(skip)]
    pub(super) cache_records: Vec<(String, Manifest, Descriptor, PathBuf)>,
    #[serde(skip)]
    pub(super) layout: Option<LayoutWrite>,
    #[serde(skip)]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// Scratch files the plan's blobs live in.
    #[serde(skip)]
    _scratch: Option<Arc<tempfile::TempDir>>,
}

/// An artifact to attach to the image, and whether the registry has it, findable, already.
#[derive(Serialize)]
pub struct ReferrerPlan {
    pub artifact_type: String,
    pub digest: String,
    pub present: bool,
    #[serde(skip)]
    pub(super) parts: ReferrerParts,
}

/// What attaching a referrer pushes: its blobs (made here, or in the source repository of a promote), its
/// manifest, and its entry in a referrers index.
pub(super) struct ReferrerParts {
    pub manifest: Manifest,
    pub descriptor: Descriptor,
    pub blobs: Vec<Blob>,
}

impl Plan {
    pub fn reference(&self) -> String {
        match self.tags.first() {
            Some(t) => format!("{}:{t}@{}", self.repository, self.digest),
            None => format!("{}@{}", self.repository, self.digest),
        }
    }

    /// The plan's scratch directory (made on first use), where made blobs wait for the push.
    fn scratch(&mut self) -> Result<Arc<tempfile::TempDir>, Error> {
        if let Some(s) = &self._scratch {
            return Ok(s.clone());
        }
        let s = Arc::new(tempfile::tempdir().map_err(|e| Error::Local {
            what: "cannot create a temporary directory".into(),
            reason: e.to_string(),
        })?);
        self._scratch = Some(s.clone());
        Ok(s)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// `repo:tag@digest` (the first tag), as later jobs read it.
    #[serde(rename = "ref")]
    pub reference: String,
    pub digest: String,
    pub tags: Vec<String>,
    pub repository: String,
    pub pushed: bool,
    /// The signature manifest's tag, when the image is signed (this run's signature, or copied ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// What the plan warned about (referrers that could not be copied): carried to the report, never lost.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub stats: Stats,
}

fn usage(m: String, h: &str) -> Error {
    Error::Usage {
        message: m,
        hint: Some(h.into()),
    }
}

pub(super) fn build_error(e: BuildError) -> Error {
    match e {
        BuildError::Registry(r) => Error::Registry(r),
        e if e.is_input() => Error::Usage {
            hint: e.hint(),
            message: e.to_string(),
        },
        // A file or directory of the build's own (the disk, a temporary directory): the machine said no.
        e => Error::Local {
            what: "building the image".into(),
            reason: e.to_string(),
        },
    }
}

/// Every tag, wherever it came from: a tag is a path segment of registry URLs.
pub(crate) fn check_tags(tags: &[String]) -> Result<(), Error> {
    for t in tags {
        if !crate::registry::is_tag(t) {
            return Err(usage(
                format!("--tag `{t}` is not a valid tag"),
                "up to 128 of A-Za-z0-9_.-, not starting with `.` or `-`",
            ));
        }
    }
    Ok(())
}

/// What `build` is asked for besides the settings: tags, and whether to push or write a layout.
pub struct BuildRequest {
    pub tags: Vec<String>,
    pub push: bool,
    pub oci_layout: Option<PathBuf>,
}

/// Build the image (base read from its registry, dependency and code layers made here) and compare it with
/// the target registry. The dependency installer may run; nothing is written to any registry.
pub async fn plan_build(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &BuildRequest,
) -> Result<Plan, Error> {
    let b = &settings.build;
    let image = settings.image.as_ref().ok_or_else(|| {
        usage(
            "build needs the image repository".into(),
            "pass --image REPO, FLOWSHIP_IMAGE or image.repository",
        )
    })?;
    let Sources {
        base,
        context,
        platforms,
        workdir,
    } = sources(settings)?;
    let mut tags = req.tags.clone();
    if tags.is_empty() {
        tags.extend(image.value.tag.clone().or(settings.ci.short_sha.clone()));
    }
    if tags.is_empty() && req.push {
        return Err(usage(
            "no tag to push".into(),
            "pass --tag (in GitLab CI it defaults to CI_COMMIT_SHORT_SHA)",
        ));
    }
    check_tags(&tags)?;
    let labels = labels(settings, &tags, &base);
    let parameters = parameters(settings, &context, &workdir, &tags);
    let scratch = Arc::new(tempfile::tempdir().map_err(|e| Error::Local {
        what: "cannot create a temporary directory".into(),
        reason: e.to_string(),
    })?);
    // What the project installs: its lock or requirements file (the dependency layer) and its local
    // packages (the project layer). Refused here, before anything is built, when it cannot be read.
    let chosen = crate::image::inputs::choose(&crate::image::inputs::Request {
        context: &context,
        requirements: b.requirements.as_ref().map(|r| r.value.as_path()),
        workspace: b.workspace.as_ref().map(|w| w.value.as_path()),
        path: settings.template_env.get("PATH").map(String::as_str),
        scratch: scratch.path(),
    })
    .map_err(|e| usage(e.message, &e.hint))?;
    // The file the dependency layer installs from: its hashes go into the SBOM.
    let requirements = chosen.requirements.clone();
    let input = Input {
        base: base.clone(),
        platforms,
        context,
        requirements: chosen.requirements,
        local: chosen.local,
        python_from: chosen.python_from,
        python: b.python_version.as_ref().map(|p| p.value.clone()),
        workdir,
        mtime: settings.source_date.value,
        labels,
        env: image_env(settings)?,
        path: settings.template_env.get("PATH").cloned(),
        index: crate::image::deps::index_config(&settings.template_env),
    };
    let repo = image.value.clone();
    let base_session = ctx.registry(settings, &base).await?;
    // The target is read (dependency cache, what it has) unless the image only goes into a layout.
    let target = match req.push {
        true => Some((
            ctx.registry(settings, &repo).await?,
            repo.repository.clone(),
        )),
        false => None,
    };
    let built = build::build(&input, base_session.clone(), target.clone(), scratch.path())
        .await
        .map_err(build_error)?;
    let layout = req.oci_layout.clone().map(|dir| LayoutWrite {
        dir,
        files: built.files.clone(),
        base_layers: built.base_layers.clone(),
        base: Some((base_session.clone(), base.repository.clone())),
    });
    let mut plan = compare(
        target.map(|(s, _)| s),
        repo,
        built.blobs,
        built.manifests,
        tags,
    )
    .await?;
    plan.cache_records = built.cache_records;
    plan.layout = layout;
    plan.notes = chosen.notes;
    plan.notes
        .extend(chosen.from.map(|f| format!("dependencies from {f}")));
    plan.notes.extend(built.notes);
    plan.warnings = chosen.warnings;
    plan.warnings.extend(built.warnings);
    plan._scratch = Some(scratch);
    let base_name = base.to_string();
    attest::plan(
        settings,
        &mut plan,
        &built.facts,
        &base_name,
        requirements.as_deref(),
        parameters,
    )
    .await?;
    sign::plan(settings, &mut plan, None).await?;
    Ok(plan)
}

/// What a build is made from, checked before anything is read: the base image, the context directory, the
/// platforms, the project's directory in the image.
struct Sources {
    base: Reference,
    context: PathBuf,
    platforms: Vec<Platform>,
    workdir: String,
}

fn sources(settings: &Settings) -> Result<Sources, Error> {
    let b = &settings.build;
    let base_ref = b.base.as_ref().ok_or_else(|| {
        usage(
            "build needs a base image".into(),
            "pass --base REF, FLOWSHIP_BASE_IMAGE or image.base (a Python image)",
        )
    })?;
    let base = Reference::parse(&base_ref.value).map_err(|e| {
        usage(
            format!("{}: `{}`: {e}", base_ref.source, base_ref.value),
            "e.g. python:3.12-slim",
        )
    })?;
    let context = b.context.value.clone();
    if !context.is_dir() {
        return Err(usage(
            format!(
                "{}: build context `{}` is not a directory",
                b.context.source,
                context.display()
            ),
            "pass --context DIR",
        ));
    }
    if let Some(r) = &b.requirements
        && !r.value.is_file()
    {
        return Err(usage(
            format!(
                "{}: requirements file `{}` does not exist",
                r.source,
                r.value.display()
            ),
            "pass --requirements FILE, or leave it out to build without dependencies",
        ));
    }
    let platforms = b
        .platforms
        .iter()
        .map(|p| {
            Platform::parse(&p.value).ok_or_else(|| {
                usage(
                    format!("{}: `{}` is not OS/ARCH", p.source, p.value),
                    "e.g. linux/amd64,linux/arm64",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = std::path::absolute(&context)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "flow".into());
    let workdir = b
        .workdir
        .as_ref()
        .map(|w| w.value.clone())
        .unwrap_or_else(|| format!("/opt/prefect/{name}"));
    Ok(Sources {
        base,
        context,
        platforms,
        workdir,
    })
}

/// The image's OCI labels: source, revision, version, base.
fn labels(settings: &Settings, tags: &[String], base: &Reference) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(u) = &settings.ci.project_url {
        labels.insert("org.opencontainers.image.source".to_string(), u.clone());
    }
    if let Some(s) = &settings.ci.commit_sha {
        labels.insert("org.opencontainers.image.revision".to_string(), s.clone());
    }
    if let Some(t) = tags.first() {
        labels.insert("org.opencontainers.image.version".to_string(), t.clone());
    }
    labels.insert(
        "org.opencontainers.image.base.name".to_string(),
        base.to_string(),
    );
    labels
}

/// What the provenance records of the build's inputs (`verify --rebuild` builds again from it).
fn parameters(
    settings: &Settings,
    context: &std::path::Path,
    workdir: &str,
    tags: &[String],
) -> crate::image::provenance::BuildParameters {
    let b = &settings.build;
    crate::image::provenance::BuildParameters {
        context: context.display().to_string(),
        requirements: b
            .requirements
            .as_ref()
            .map(|r| r.value.display().to_string()),
        workdir: workdir.to_string(),
        python_version: b.python_version.as_ref().map(|p| p.value.clone()),
        tags: tags.to_vec(),
        source_date_epoch: settings.source_date.value,
        env: b
            .env
            .iter()
            .map(|e| format!("{}={}", e.value.0, e.value.1))
            .collect(),
    }
}

/// An image built elsewhere (`oci-layout:DIR[:TAG]`, `docker-archive:FILE[:TAG]`), against the registry.
pub async fn plan_push(
    ctx: &Context<'_>,
    settings: &Settings,
    from: &str,
    tags: &[String],
) -> Result<Plan, Error> {
    let image = settings.image.as_ref().ok_or_else(|| {
        usage(
            "push needs the image repository".into(),
            "pass --image REPO or FLOWSHIP_IMAGE",
        )
    })?;
    let scratch = Arc::new(tempfile::tempdir().map_err(|e| Error::Local {
        what: "cannot create a temporary directory".into(),
        reason: e.to_string(),
    })?);
    let (kind, rest) = from.split_once(':').unwrap_or(("", ""));
    // `DIR:TAG` / `FILE:TAG`: a trailing `:tag` that is not part of a path.
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !p.is_empty() => {
            (PathBuf::from(p), Some(t.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    };
    let img = match kind {
        "oci-layout" => layout::read(&path, tag.as_deref())?,
        "docker-archive" => crate::image::archive::read(&path, tag.as_deref(), scratch.path())?,
        _ => {
            return Err(usage(
                format!("--from `{from}` is not a source flowship reads"),
                "use oci-layout:DIR[:TAG] or docker-archive:FILE[:TAG]",
            ));
        }
    };
    let mut tags = tags.to_vec();
    if tags.is_empty() {
        tags.extend(image.value.tag.clone().or(img.tag.clone()));
    }
    if tags.is_empty() {
        return Err(usage(
            "no tag to push".into(),
            "pass --tag, or a layout entry with a tag",
        ));
    }
    check_tags(&tags)?;
    let repo = image.value.clone();
    let session = ctx.registry(settings, &repo).await?;
    let mut plan = compare(Some(session), repo, img.blobs, img.manifests, tags).await?;
    plan._scratch = Some(scratch);
    sign::plan(settings, &mut plan, None).await?;
    Ok(plan)
}

/// `src` (by tag or digest) as it would be in `dst`: the same manifests, exact bytes, the same digest.
pub async fn plan_promote(
    ctx: &Context<'_>,
    settings: &Settings,
    src: &Reference,
    dst: &Reference,
) -> Result<Plan, Error> {
    let reference = src.digest.clone().or(src.tag.clone()).ok_or_else(|| {
        usage(
            "SRC names no tag or digest".into(),
            "registry/repo:tag or registry/repo@sha256:...",
        )
    })?;
    let tag = dst
        .tag
        .clone()
        .or(src.tag.clone())
        .ok_or_else(|| usage("DST names no tag".into(), "registry/repo:tag"))?;
    let src_session = ctx.registry(settings, src).await?;
    let same_registry = src.registry == dst.registry;
    let dst_session = ctx.registry(settings, dst).await?;
    // The manifests, exact bytes, children before the index (each verified against its digest on the way).
    let top = fetch(&src_session, &src.repository, &reference).await?;
    let malformed = |digest: &str, e: &dyn std::fmt::Display| {
        Error::Registry(crate::registry::RegistryError::Malformed {
            registry: src.registry.clone(),
            what: format!("manifest {}@{digest}", src.repository),
            detail: e.to_string(),
        })
    };
    let (children, refs) =
        manifest::references(&top.bytes, &top.digest).map_err(|e| malformed(&top.digest, &e))?;
    let mut all_refs = refs;
    let mut manifests = Vec::new();
    for c in children {
        let m = fetch(&src_session, &src.repository, &c.digest).await?;
        let (_, r) =
            manifest::references(&m.bytes, &m.digest).map_err(|e| malformed(&m.digest, &e))?;
        all_refs.extend(r);
        manifests.push(m);
    }
    let top_digest = top.digest.clone();
    manifests.push(top);
    let (referrers, warning) =
        source_referrers(&src_session, src, &top_digest, same_registry).await;
    let blobs = remote_blobs(all_refs, &src_session, &src.repository, same_registry);
    let mut target = dst.clone();
    target.tag = None;
    target.digest = None;
    let mut plan = compare(
        Some(dst_session.clone()),
        target,
        blobs,
        manifests,
        vec![tag],
    )
    .await?;
    plan.warnings.extend(warning);
    // One listing at the destination answers for every referrer.
    let there = if plan.present && !referrers.is_empty() {
        attached(&dst_session, &plan).await?
    } else {
        Vec::new()
    };
    for parts in referrers {
        let present = there.contains(&parts.manifest.digest);
        plan.referrers.push(ReferrerPlan {
            artifact_type: parts.descriptor.artifact_type.clone().unwrap_or_default(),
            digest: parts.manifest.digest.clone(),
            present,
            parts,
        });
    }
    let from = sign::From {
        session: &src_session,
        repository: &src.repository,
        same_registry,
    };
    sign::plan(settings, &mut plan, Some(from)).await?;
    Ok(plan)
}

/// What refers to the image in the source repository (an SBOM, a signature), to copy with it: the same
/// manifests and blobs, so that the promoted digest keeps them. Listing them is not the promise itself; a
/// source that cannot list them promotes the image alone, with a warning that says so.
async fn source_referrers(
    session: &Arc<Session>,
    src: &Reference,
    digest: &str,
    same_registry: bool,
) -> (Vec<ReferrerParts>, Option<String>) {
    let listed = match crate::registry::referrers::list(session, &src.repository, digest).await {
        Ok((found, _)) => found,
        Err(e) => {
            return (
                Vec::new(),
                Some(format!(
                    "the referrers of {}@{digest} were not copied: {e}",
                    src.repository_ref()
                )),
            );
        }
    };
    let mut out = Vec::new();
    for d in listed {
        let m = match fetch(session, &src.repository, &d.digest).await {
            Ok(m) => m,
            Err(e) => return (out, Some(format!("referrer {}: {e}", d.digest))),
        };
        // An artifact is one manifest and its blobs; an index of artifacts is not copied (none here makes one).
        let Ok((children, refs)) = manifest::references(&m.bytes, &m.digest) else {
            continue;
        };
        // A cosign signature manifest that the registry lists as a referrer (Harbor does) travels by its
        // `.sig` tag instead (see `sign`), merged with the destination's.
        if crate::sigstore::attachment::layers(&m.bytes)
            .iter()
            .any(|l| l.media_type == crate::sigstore::attachment::SIMPLE_SIGNING)
        {
            continue;
        }
        if !children.is_empty() {
            continue;
        }
        let blobs = remote_blobs(refs, session, &src.repository, same_registry);
        out.push(ReferrerParts {
            manifest: m,
            descriptor: d,
            blobs,
        });
    }
    (out, None)
}

/// Blobs copied from `repository` on `session`'s registry: mounted when the destination is the same registry.
fn remote_blobs(
    descriptors: Vec<Descriptor>,
    session: &Arc<Session>,
    repository: &str,
    same_registry: bool,
) -> Vec<Blob> {
    descriptors
        .into_iter()
        .map(|d| Blob {
            descriptor: d,
            source: Source::Remote {
                session: session.clone(),
                repository: repository.into(),
            },
            mount_from: same_registry.then(|| repository.into()),
        })
        .collect()
}

/// The digests of what refers to the planned image, findable (through the API or the fallback tag).
async fn attached(s: &Session, plan: &Plan) -> Result<Vec<String>, Error> {
    match crate::registry::referrers::list(s, &plan.target.repository, &plan.digest).await {
        Ok((found, _)) => Ok(found.into_iter().map(|d| d.digest).collect()),
        Err(RegistryError::ProjectNotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

async fn fetch(session: &Session, repository: &str, reference: &str) -> Result<Manifest, Error> {
    let (bytes, served, digest) = session
        .manifest_get(repository, reference)
        .await?
        .ok_or_else(|| Error::Usage {
            message: format!("{}/{repository}:{reference} does not exist", session.host()),
            hint: Some("check the source reference".into()),
        })?;
    Ok(Manifest {
        media_type: manifest::media_type(&bytes, &served),
        digest,
        bytes,
    })
}

/// What the target registry already has of this image: blobs (`HEAD`), the manifest, the tags.
async fn compare(
    session: Option<Arc<Session>>,
    mut target: Reference,
    blob_list: Vec<Blob>,
    manifests: Vec<Manifest>,
    tags: Vec<String>,
) -> Result<Plan, Error> {
    target.tag = None;
    target.digest = None;
    let digest = manifests
        .last()
        .expect("an image has a manifest")
        .digest
        .clone();
    let mut seen = std::collections::HashSet::new();
    let unique: Vec<&Blob> = blob_list
        .iter()
        .filter(|b| seen.insert(b.descriptor.digest.clone()))
        .collect();
    let (mut present, mut tagged, mut missing, mut bytes) = (false, Vec::new(), 0, 0u64);
    if let Some(s) = &session {
        let repo = &target.repository;
        present = digest_present(s, repo, &digest).await?;
        if present {
            for t in &tags {
                if let Ok(Some(d)) = s.manifest_digest(repo, t).await
                    && d == digest
                {
                    tagged.push(t.clone());
                }
            }
        } else {
            for b in &unique {
                let there = match s.blob_exists(repo, &b.descriptor.digest).await {
                    Ok(t) => t,
                    Err(RegistryError::ProjectNotFound { .. }) => false,
                    Err(e) => return Err(e.into()),
                };
                if !there {
                    missing += 1;
                    bytes += b.descriptor.size;
                }
            }
        }
    } else {
        missing = unique.len();
        bytes = unique.iter().map(|b| b.descriptor.size).sum();
    }
    Ok(Plan {
        repository: target.repository_ref(),
        digest,
        tags,
        blobs: unique.len(),
        blobs_missing: missing,
        bytes_missing: bytes,
        present,
        tagged,
        referrers: Vec::new(),
        signature: None,
        attestation: None,
        provenance: None,
        target,
        session,
        blob_list,
        manifests,
        cache_records: Vec::new(),
        layout: None,
        notes: Vec::new(),
        warnings: Vec::new(),
        _scratch: None,
    })
}

/// Is the manifest `digest` in `repo`? A missing Harbor project is "no".
async fn digest_present(s: &Session, repo: &str, digest: &str) -> Result<bool, Error> {
    match s.manifest_digest(repo, digest).await {
        Ok(found) => Ok(found.is_some()),
        Err(RegistryError::ProjectNotFound { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

mod apply;
mod attest;
mod own;
pub mod sign;
pub use apply::apply;
pub use own::{OwnRequest, plan_own};
pub use sign::SignaturePlan;

/// `image.env`, refused when a value holds a secret: anyone who can pull the image reads its config.
fn image_env(settings: &Settings) -> Result<Vec<(String, String)>, Error> {
    let secrets = settings.secret_values();
    let mut out = Vec::new();
    for e in &settings.build.env {
        let (k, v) = &e.value;
        if secrets
            .iter()
            .any(|s| s.len() >= 4 && v.contains(s.as_str()))
        {
            return Err(usage(
                format!(
                    "{}: the image variable `{k}` holds a secret; an image's config is readable by anyone who can pull it",
                    e.source
                ),
                "give secrets to flow runs at run time (a Prefect Secret block, the work pool's environment), not in the image",
            ));
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}
