//! What push, promote and build share: the push options from the flags, and how a pushed image is reported
//! (stdout, JSON, the dotenv report later jobs read).

use crate::cli::UploadArgs;
use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::output::Printer;
use crate::registry::blobs::UploadMode;
use crate::registry::harbor::Harbor;
use crate::registry::push::{Options, Stats};
use crate::settings::Settings;
use serde_json::json;

/// Before a push: with `--create-project`, make sure the Harbor project exists.
pub async fn prepare(
    upload: &UploadArgs,
    settings: &Settings,
    repo: &crate::registry::Reference,
    printer: &Printer,
) -> Result<(), Error> {
    if !upload.create_project {
        return Ok(());
    }
    let harbor = Harbor::new(
        crate::http::Http::new(settings)?,
        repo.api_host(),
        settings.registry.credential.clone(),
    );
    let Some((project, _)) = repo.repository.split_once('/') else {
        return Ok(());
    };
    if harbor.ensure_project(project).await? {
        printer.info(&format!("created Harbor project `{project}`"));
    }
    Ok(())
}

/// After a push: with `--scan-gate`, Harbor scans the image, and a finding at or over the gate refuses the
/// release (exit 3) with the summary.
async fn gate(
    upload: &UploadArgs,
    settings: &Settings,
    repo: &crate::registry::Reference,
    digest: &str,
    printer: &Printer,
) -> Result<(), Error> {
    let Some(gate) = &upload.scan_gate else {
        return Ok(());
    };
    let harbor = Harbor::new(
        crate::http::Http::new(settings)?,
        repo.api_host(),
        settings.registry.credential.clone(),
    );
    printer.info(&format!(
        "scanning {}@{digest} in Harbor (gate: {gate})",
        repo.repository_ref()
    ));
    let result = harbor
        .scan(
            &repo.repository,
            digest,
            std::time::Duration::from_secs(upload.scan_timeout),
        )
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
            message: format!("scan gate: Harbor found {summary} in {}@{digest} (gate: {gate})", repo.repository_ref()),
            hint: Some("fix the findings (rebuild on a patched base), or allowlist accepted CVEs in the Harbor project".into()),
        });
    }
    printer.info(&format!("scan gate passed: {summary} (gate: {gate})"));
    Ok(())
}

pub fn options(upload: &UploadArgs, settings: &Settings, printer: &Printer) -> Options {
    Options {
        progress: printer.progress(),
        parallel: upload.parallel.max(1),
        mode: match upload.chunk_size {
            Some(n) if n > 0 => UploadMode::Chunked(n),
            _ => UploadMode::Monolithic,
        },
        retries: settings.http.retries.value,
    }
}

/// After a push: the scan gate, then the report. In that order: an image the gate refuses is never handed to
/// later jobs through the dotenv report.
pub async fn finish(
    upload: &UploadArgs,
    settings: &Settings,
    repo: &crate::registry::Reference,
    digest: &str,
    tags: &[String],
    stats: &Stats,
    printer: &Printer,
) -> Result<(), Error> {
    gate(upload, settings, repo, digest, printer).await?;
    report(
        &repo.repository_ref(),
        digest,
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
