//! What a built image carries besides its signature: SLSA provenance (how it was built) and the SBOM of its
//! Python packages (what is in it), as OCI referrers of its digest, pushed with it (see `apply`) and copied
//! with it by `promote` (which copies referrers).

use super::{Plan, ReferrerParts, ReferrerPlan, attached};
use crate::error::Error;
use crate::image::build::Facts;
use crate::image::own::Referrer;
use crate::image::{artifact, provenance, pysbom};
use crate::registry::blobs::Source;
use crate::registry::push::Blob;
use crate::settings::Settings;
use std::path::Path;

/// The provenance and SBOM of the image `plan` built from `base` with `requirements`.
pub(super) async fn plan(
    settings: &Settings,
    plan: &mut Plan,
    facts: &Facts,
    base: &str,
    requirements: Option<&Path>,
    build: provenance::BuildParameters,
) -> Result<(), Error> {
    let subject = plan
        .manifests
        .last()
        .expect("an image has a manifest")
        .clone();
    let created = crate::image::time::iso8601(settings.source_date.value);
    let ci = &settings.ci;
    let f = provenance::Facts {
        repository: ci.project_url.clone(),
        commit: ci.commit_sha.clone(),
        git_ref: ci.ref_name.clone(),
        pipeline_url: ci.pipeline_url.clone(),
        job_url: ci.job_url.clone(),
        base: base.into(),
        base_digests: facts.base_digests.clone(),
        requirements_sha256: facts.requirements_sha256.clone(),
        installer: facts.installer.clone(),
        python: facts.python.clone(),
        platforms: facts.base_digests.iter().map(|(p, _)| p.clone()).collect(),
        build,
    };
    let statement = provenance::statement(&plan.repository, &plan.digest, &f);
    plan.provenance = Some(statement.clone());
    let packages = match &facts.packages {
        Some(p) => p.clone(),
        None => {
            plan.warnings.push("the SBOM lists no Python packages: the dependency layer was reused from a cache record written before flowship recorded them (a build with new requirements, or one after deleting the `flowship-deps-*` tags, records them)".into());
            Vec::new()
        }
    };
    let req_text = requirements.and_then(|r| std::fs::read_to_string(r).ok());
    // One base digest for the SBOM: the image's own platform's (the first, for an index).
    let sbom = pysbom::document(
        &pysbom::Subject {
            repository: &plan.repository,
            digest: &plan.digest,
            base,
            base_digest: facts.base_digests.first().map(|(_, d)| d.as_str()),
            created: &created,
        },
        &packages,
        req_text.as_deref(),
    );
    let scratch = plan.scratch()?;
    let io = |e: std::io::Error| Error::Local {
        what: "cannot write the image's provenance and SBOM".into(),
        reason: e.to_string(),
    };
    let made = [
        artifact::Document {
            artifact_type: provenance::MEDIA_TYPE,
            title: "provenance.intoto.json",
            bytes: &statement,
            description: "SLSA v1 provenance of the image (in-toto statement)",
        },
        artifact::Document {
            artifact_type: pysbom::MEDIA_TYPE,
            title: "sbom.python.cdx.json",
            bytes: &sbom,
            description: "CycloneDX SBOM of the image's Python packages and its base",
        },
    ]
    .iter()
    .map(|d| artifact::referrer(&subject, d, &created, scratch.path()).map_err(io))
    .collect::<Result<Vec<Referrer>, Error>>()?;
    let there = match (&plan.session, plan.present) {
        (Some(s), true) => attached(s, plan).await?,
        _ => Vec::new(),
    };
    for r in made {
        plan.referrers.push(ReferrerPlan {
            artifact_type: r.artifact_type.clone(),
            digest: r.manifest.digest.clone(),
            present: there.contains(&r.manifest.digest),
            parts: ReferrerParts {
                blobs: r
                    .files
                    .iter()
                    .map(|(d, p)| Blob {
                        descriptor: d.clone(),
                        source: Source::File(p.clone()),
                        mount_from: None,
                    })
                    .collect(),
                manifest: r.manifest,
                descriptor: r.descriptor,
            },
        });
    }
    Ok(())
}
