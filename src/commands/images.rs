//! What push, promote and build share: the push options from the settings, the Harbor project before a push,
//! and the hand-over after it: the image is pushed by digest, the scan gate (when configured) passes or
//! refuses it, and only then do the tags move and the dotenv report name it. A refused image is never tagged.

use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::output::Printer;
use crate::registry::Reference;
use crate::registry::blobs::UploadMode;
use crate::registry::harbor::Harbor;
use crate::registry::push::{Manifest, Options, Stats};
use crate::registry::session::Session;
use crate::settings::Settings;
use serde_json::json;

fn harbor(settings: &Settings, repo: &Reference) -> Result<Harbor, Error> {
    Ok(Harbor::new(
        crate::http::Http::new(&settings.http_config())?,
        repo.api_host(),
        // The destination registry's own credentials: never another registry's.
        settings.credential(&repo.registry),
    ))
}

/// Before anything reads or writes the repository: with `--create-project`, make sure the Harbor project
/// exists (a build reads its dependency cache from the project before it pushes).
pub async fn prepare(
    settings: &Settings,
    repo: &Reference,
    printer: &Printer,
) -> Result<(), Error> {
    if !settings.upload.create_project.value || settings.dry_run.value {
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
    let result = harbor(settings, repo)?
        .scan(&repo.repository, digest, settings.upload.scan_timeout.value)
        .await?;
    let summary: Vec<String> = crate::registry::harbor::SEVERITIES
        .iter()
        .filter_map(|s| {
            result
                .counts
                .get(*s)
                .filter(|n| **n > 0)
                .map(|n| format!("{n} {s}"))
        })
        .collect();
    let summary = if summary.is_empty() {
        "no vulnerabilities".to_string()
    } else {
        summary.join(", ")
    };
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

/// After the blobs and manifests are in (by digest): the scan gate, then the tags, then the report. In that
/// order: an image the gate refuses is never tagged, and never handed to later jobs through the dotenv report.
pub async fn finish(
    session: &Session,
    settings: &Settings,
    repo: &Reference,
    top: &Manifest,
    tags: &[String],
    stats: &Stats,
    printer: &Printer,
) -> Result<(), Error> {
    gate(settings, repo, &top.digest, printer).await?;
    crate::registry::push::tag(session, &repo.repository, top, tags).await?;
    report(
        &repo.repository_ref(),
        &top.digest,
        tags,
        stats,
        settings,
        printer,
    )
}

/// `repository` is `registry/repo`; `digest` the top manifest's.
fn report(
    repository: &str,
    digest: &str,
    tags: &[String],
    stats: &Stats,
    settings: &Settings,
    printer: &Printer,
) -> Result<(), Error> {
    let first = tags
        .first()
        .map(|t| format!("{repository}:{t}@{digest}"))
        .unwrap_or_else(|| format!("{repository}@{digest}"));
    printer.info(&format!(
        "pushed {first}: {} blob(s) uploaded ({:.1} MiB), {} already there, {} mounted, {:.2} s",
        stats.blobs_uploaded,
        stats.bytes_uploaded as f64 / 1048576.0,
        stats.blobs_skipped,
        stats.blobs_mounted,
        stats.seconds
    ));
    if printer.is_json() {
        printer.json(&json!({"image": {"ref": first, "digest": digest, "tags": tags, "repository": repository}, "push": stats}))?;
    } else {
        printer.data(&format!("{first}\n"))?;
    }
    if let Some(path) = &settings.dotenv {
        let mut d = Dotenv::default();
        d.set("FLOWSHIP_IMAGE", &first);
        d.set("FLOWSHIP_IMAGE_DIGEST", digest);
        if let Some(t) = tags.first() {
            d.set("FLOWSHIP_IMAGE_TAG", t);
        }
        d.write(&path.value, &settings.secret_values())?;
    }
    Ok(())
}
