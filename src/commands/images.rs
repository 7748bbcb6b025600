//! What push, promote and build share: the push options from the flags, and how a pushed image is reported
//! (stdout, JSON, the dotenv report later jobs read).

use crate::cli::UploadArgs;
use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::output::Printer;
use crate::registry::blobs::UploadMode;
use crate::registry::push::{Options, Stats};
use crate::settings::Settings;
use serde_json::json;

pub fn options(upload: &UploadArgs, settings: &Settings) -> Options {
    Options {
        parallel: upload.parallel.max(1),
        mode: match upload.chunk_size {
            Some(n) if n > 0 => UploadMode::Chunked(n),
            _ => UploadMode::Monolithic,
        },
        retries: settings.http.retries.value,
    }
}

/// `repository` is `registry/repo`; `digest` the top manifest's.
pub fn report(
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
