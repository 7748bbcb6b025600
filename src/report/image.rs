//! `build`, `push`, `promote`: the image plan (a dry run) and the pushed image, and its dotenv variables.

use super::dotenv;
use crate::error::Error;
use crate::output::Printer;
use crate::settings::Settings;
use serde_json::json;

/// An image plan, as a dry run shows it.
pub fn image_plan(p: &crate::ops::image::Plan, printer: &Printer) -> Result<(), Error> {
    for w in &p.warnings {
        printer.warn(w);
    }
    for n in &p.notes {
        printer.info(n);
    }
    printer.info(&format!(
        "dry run: {} is {}; {} of {} blob(s) ({:.1} MiB) to upload, tags {} to set",
        p.reference(),
        if p.present {
            "in the registry already"
        } else {
            "not in the registry"
        },
        p.blobs_missing,
        p.blobs,
        p.bytes_missing as f64 / 1048576.0,
        p.tags
            .iter()
            .filter(|t| !p.tagged.contains(t))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(s) = p.signature.as_ref().filter(|s| !s.present) {
        printer.info(&format!(
            "dry run: would write {} signature(s) to {}{}",
            s.signatures,
            s.tag,
            s.key
                .as_ref()
                .map(|k| format!(", signing with key {k}"))
                .unwrap_or_default()
        ));
    }
    if printer.is_json() {
        printer.json(&json!({"image": p, "dry_run": true}))
    } else {
        printer.data(&format!("{}\n", p.reference()))
    }
}

/// A pushed (or laid out) image: narration, the reference on stdout, the dotenv report.
pub fn image(
    o: &crate::ops::image::Outcome,
    settings: &Settings,
    printer: &Printer,
) -> Result<(), Error> {
    for w in &o.warnings {
        printer.warn(w);
    }
    if o.pushed {
        printer.info(&format!(
            "pushed {}: {} blob(s) uploaded ({:.1} MiB), {} already there, {} mounted, {:.2} s",
            o.reference,
            o.stats.blobs_uploaded,
            o.stats.bytes_uploaded as f64 / 1048576.0,
            o.stats.blobs_skipped,
            o.stats.blobs_mounted,
            o.stats.seconds
        ));
    } else {
        printer.info(&format!("{} is in place; nothing to push", o.reference));
    }
    if printer.is_json() {
        printer.json(&json!({"image": o, "push": o.stats}))?;
    } else {
        printer.data(&format!("{}\n", o.reference))?;
    }
    dotenv(settings, &image_vars(o))
}

/// `FLOWSHIP_IMAGE` (repo:tag@digest), `FLOWSHIP_IMAGE_DIGEST`, `FLOWSHIP_IMAGE_TAG`.
pub fn image_vars(o: &crate::ops::image::Outcome) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("FLOWSHIP_IMAGE", o.reference.clone()),
        ("FLOWSHIP_IMAGE_DIGEST", o.digest.clone()),
    ];
    if let Some(t) = o.tags.first() {
        v.push(("FLOWSHIP_IMAGE_TAG", t.clone()));
    }
    v
}
