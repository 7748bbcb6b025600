//! Images as an operation. A plan is an image that exists as bytes and references (built here, read from an
//! OCI layout or archive, or named in another repository), plus what the target registry already has: which
//! blobs, whether the manifest is there, which tags point at it. Planning only reads. [`apply`] pushes what
//! is missing by digest, gates the digest on Harbor's scan, and only then moves the tags; a re-run after
//! success finds everything in place and does nothing.

use crate::error::Error;
use crate::image::build::BuildError;
use crate::image::layout;
use crate::ops::Context;
use crate::registry::blobs::Descriptor;
use crate::registry::push::{Blob, Manifest, Stats};
use crate::registry::session::Session;
use crate::registry::{Reference, RegistryError};
use crate::settings::Settings;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;

/// An OCI layout to write (build `--oci-layout`).
pub(super) struct LayoutWrite {
    pub(super) dir: PathBuf,
    pub(super) files: Vec<(Descriptor, PathBuf)>,
    pub(super) base_layers: Vec<Descriptor>,
    pub(super) base: Option<crate::registry::repo::Repo>,
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

/// An image built elsewhere (`oci-layout:DIR[:TAG]`, `docker-archive:FILE[:TAG]`), against the registry.
pub async fn plan_push(
    ctx: &Context<'_>,
    settings: &Settings,
    from: &str,
    tags: &[String],
) -> Result<Plan, Error> {
    let image = settings.image_for("push")?;
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

/// The digests of what refers to the planned image, findable (through the API or the fallback tag).
async fn attached(s: &Session, plan: &Plan) -> Result<Vec<String>, Error> {
    match crate::registry::referrers::list(s, &plan.target.repository, &plan.digest).await {
        Ok((found, _)) => Ok(found.into_iter().map(|d| d.digest).collect()),
        Err(RegistryError::ProjectNotFound { .. }) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
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
mod built;
mod own;
mod promote;
pub mod sign;
pub use apply::apply;
pub use built::{BuildRequest, plan_build};
pub use own::{OwnRequest, plan_own};
pub use promote::plan_promote;
pub use sign::SignaturePlan;
