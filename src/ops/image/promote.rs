//! An image promoted from another repository or registry by digest: its manifests as they are (exact bytes),
//! its blobs mounted (same registry) or streamed across, and what refers to it (an SBOM, signatures) with it.

use super::{Plan, ReferrerParts, ReferrerPlan, attached, compare, sign, usage};
use crate::error::Error;
use crate::image::manifest;
use crate::ops::Context;
use crate::registry::Reference;
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::{Blob, Manifest};
use crate::registry::session::Session;
use crate::settings::Settings;
use std::sync::Arc;

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
