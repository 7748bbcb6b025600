//! Applying an image plan: what is missing pushed by digest, the scan gate, then the tags; the layout
//! written; the dependency-cache record kept when it can be.

use super::{LayoutWrite, Outcome, Plan, build_error};
use crate::error::Error;
use crate::image::{build, layout};
use crate::output::Printer;
use crate::registry::Reference;
use crate::registry::blobs::{Source, UploadMode};
use crate::registry::harbor::Harbor;
use crate::registry::push::{Blob, Options, Stats};
use crate::registry::session::Session;
use crate::settings::Settings;
use std::sync::Arc;

pub fn options(settings: &Settings, printer: &Printer) -> Options {
    Options {
        progress: printer.progress(),
        parallel: settings.upload.parallel.value,
        mode: match &settings.upload.chunk_size {
            Some(n) => UploadMode::Chunked(n.value),
            None => UploadMode::Monolithic,
        },
        retries: settings.http.retries.value,
    }
}

fn harbor(settings: &Settings, repo: &Reference) -> Result<Harbor, Error> {
    Ok(Harbor::new(
        crate::http::Http::new(&settings.http_config())?,
        repo.api_host(),
        // The destination registry's own credentials: never another registry's.
        settings.credential(&repo.registry),
    ))
}

/// Push what is missing (by digest), gate the digest, then move the tags. Each step skips what is in place.
pub async fn apply(settings: &Settings, plan: Plan, printer: &Printer) -> Result<Outcome, Error> {
    let mut stats = Stats::default();
    if let Some(l) = &plan.layout {
        write_layout(l, &plan).await?;
        printer.info(&format!(
            "wrote {}@{} to {} ({})",
            plan.repository,
            plan.digest,
            l.dir.display(),
            layout_names(&plan).join(", ")
        ));
    }
    let Some(session) = plan.session.clone() else {
        return Ok(Outcome {
            reference: format!("{}@{}", plan.repository, plan.digest),
            digest: plan.digest.clone(),
            tags: plan.tags.clone(),
            repository: plan.repository.clone(),
            pushed: false,
            signature: None,
            warnings: plan.warnings.clone(),
            stats,
        });
    };
    let repo = plan.target.repository.clone();
    if !plan.present {
        prepare(settings, &plan.target, printer).await?;
        let opts = options(settings, printer);
        stats = crate::registry::push::push(
            session.clone(),
            &repo,
            plan.blob_list.clone(),
            &plan.manifests,
            opts.clone(),
        )
        .await?;
        record_cache(&session, &repo, &plan, opts, printer).await;
    }
    attach_referrers(&session, &repo, &plan, options(settings, printer), printer).await?;
    if let Some(a) = plan.attestation.as_ref().filter(|a| !a.present) {
        super::sign::apply(&session, &repo, a, options(settings, printer)).await?;
        printer.info(&format!(
            "attested {}@{}: {} attestation(s) at {} (the provenance, signed)",
            plan.repository, plan.digest, a.signatures, a.tag
        ));
    }
    if let Some(s) = plan.signature.as_ref().filter(|s| !s.present) {
        super::sign::apply(&session, &repo, s, options(settings, printer)).await?;
        printer.info(&format!(
            "signed {}@{}: {} signature(s) at {}{}",
            plan.repository,
            plan.digest,
            s.signatures,
            s.tag,
            s.key
                .as_ref()
                .map(|k| format!(", this run's by key {k}"))
                .unwrap_or_default()
        ));
    }
    let untagged: Vec<String> = plan
        .tags
        .iter()
        .filter(|t| !plan.tagged.contains(t))
        .cloned()
        .collect();
    // Tags only ever point at a digest that passed the gate; the gate also runs when they all do already (a
    // gate configured after an earlier run), reading the scan Harbor has instead of scanning again.
    gate(settings, &plan.target, &plan.digest, printer).await?;
    let top = plan.manifests.last().expect("an image has a manifest");
    crate::registry::push::tag(&session, &repo, top, &untagged).await?;
    Ok(Outcome {
        reference: plan.reference(),
        digest: plan.digest.clone(),
        tags: plan.tags.clone(),
        repository: plan.repository.clone(),
        pushed: !plan.present,
        signature: plan.signature.as_ref().map(|s| s.tag.clone()),
        warnings: plan.warnings.clone(),
        stats,
    })
}

/// Attach what refers to the image (its SBOM) before any tag points at it: a pulled tag has its SBOM.
async fn attach_referrers(
    session: &Arc<Session>,
    repo: &str,
    plan: &Plan,
    opts: Options,
    printer: &Printer,
) -> Result<(), Error> {
    for r in plan.referrers.iter().filter(|r| !r.present) {
        let parts = &r.parts;
        crate::registry::push::push(
            session.clone(),
            repo,
            parts.blobs.clone(),
            &[],
            opts.clone(),
        )
        .await?;
        let how = crate::registry::referrers::attach(
            session,
            repo,
            &plan.digest,
            &parts.manifest,
            &parts.descriptor,
        )
        .await?;
        printer.info(&format!(
            "attached {} {} to {}@{} ({})",
            r.artifact_type,
            r.digest,
            plan.repository,
            plan.digest,
            match how {
                crate::registry::referrers::Index::Api => "referrers API",
                crate::registry::referrers::Index::FallbackTag =>
                    "referrers tag, the registry has no referrers API",
            }
        ));
    }
    Ok(())
}

/// Record fresh dependency layers so the next build on any runner skips the installer. Best effort: the
/// image is complete without the record, and a failure here must not fail a pushed image.
async fn record_cache(
    session: &Arc<Session>,
    repo: &str,
    plan: &Plan,
    opts: Options,
    printer: &Printer,
) {
    for (tag, manifest, config, path) in &plan.cache_records {
        let blob = Blob {
            descriptor: config.clone(),
            source: Source::File(path.clone()),
            mount_from: None,
        };
        let recorded = async {
            crate::registry::push::push(
                session.clone(),
                repo,
                vec![blob],
                std::slice::from_ref(manifest),
                opts.clone(),
            )
            .await?;
            crate::registry::push::tag(session, repo, manifest, std::slice::from_ref(tag)).await
        };
        if let Err(e) = recorded.await {
            printer.warn(&format!(
                "the dependency cache record {tag} was not written ({e}); the next build installs the dependencies again"
            ));
        }
    }
}

fn layout_names(plan: &Plan) -> Vec<String> {
    if plan.tags.is_empty() {
        vec!["latest".to_string()]
    } else {
        plan.tags.clone()
    }
}

async fn write_layout(l: &LayoutWrite, plan: &Plan) -> Result<(), Error> {
    let scratch = tempfile::tempdir().map_err(|e| Error::Local {
        what: "cannot create a temporary directory".into(),
        reason: e.to_string(),
    })?;
    let mut files = l.files.clone();
    if let Some(repo) = &l.base {
        for (i, d) in l.base_layers.iter().enumerate() {
            let path = scratch.path().join(format!("base-{i}"));
            build::download(repo, d, &path).await.map_err(build_error)?;
            files.push((d.clone(), path));
        }
    }
    layout::write(&l.dir, &files, &plan.manifests, &layout_names(plan))?;
    Ok(())
}

/// With `--create-project`, make sure the Harbor project exists: part of apply, so plans stay read-only.
pub async fn prepare(
    settings: &Settings,
    repo: &Reference,
    printer: &Printer,
) -> Result<(), Error> {
    if !settings.upload.create_project.value {
        return Ok(());
    }
    let Some((project, _)) = repo.repository.split_once('/') else {
        return Ok(());
    };
    if harbor(settings, repo)?.ensure_project(project).await? {
        printer.info(&format!("created Harbor project `{project}`"));
    }
    Ok(())
}

/// With `--scan-gate`, Harbor scans the image (pushed by digest, not yet tagged), and a finding at or over
/// the gate refuses the release (exit 3) with the summary.
async fn gate(
    settings: &Settings,
    repo: &Reference,
    digest: &str,
    printer: &Printer,
) -> Result<(), Error> {
    let Some(gate) = &settings.upload.scan_gate else {
        return Ok(());
    };
    let gate = &gate.value;
    printer.info(&format!(
        "scanning {}@{digest} in Harbor (gate: {gate})",
        repo.repository_ref()
    ));
    let h = harbor(settings, repo)?;
    let result = match h.scan_overview(&repo.repository, digest).await? {
        Some(done) => done,
        None => {
            h.scan(&repo.repository, digest, settings.upload.scan_timeout.value)
                .await?
        }
    };
    let summary = result.summary();
    if crate::registry::harbor::over_gate(&result, gate) {
        return Err(Error::Policy {
            message: format!(
                "scan gate: Harbor found {summary} in {}@{digest} (gate: {gate}); the image was not tagged",
                repo.repository_ref()
            ),
            hint: Some("fix the findings (rebuild on a patched base), or allowlist accepted CVEs in the Harbor project".into()),
        });
    }
    printer.info(&format!("scan gate passed: {summary} (gate: {gate})"));
    Ok(())
}
