//! `verify`: what holds for the image (signature, provenance, SBOMs).

use crate::error::Error;
use crate::output::Printer;
use serde_json::json;

/// A verified image: what holds, on stderr; the image by digest on stdout (or the report as JSON).
pub fn verify(
    r: &crate::ops::verify::Report,
    rebuilt: Option<&crate::ops::rebuild::Rebuilt>,
    printer: &Printer,
) -> Result<(), Error> {
    printer.info(&format!(
        "signature: verified with key {} (signed for {})",
        r.signature.key, r.signature.reference
    ));
    printer.info(&format!(
        "provenance{}: {} built it{} ({})",
        if r.provenance.signed {
            " (signed by the key)"
        } else {
            " (unsigned referrer)"
        },
        r.provenance.builder,
        r.provenance
            .commit
            .as_ref()
            .map(|c| format!(" from commit {c}"))
            .unwrap_or_default(),
        r.provenance.artifact
    ));
    if r.sboms.is_empty() {
        printer.warn("no SBOM among its referrers");
    } else {
        printer.info(&format!("SBOM: {}", r.sboms.join(", ")));
    }
    if let Some(b) = rebuilt {
        if !b.same {
            return Err(Error::Policy {
                message: format!(
                    "{}: rebuilt from the checkout as {}: not the same image",
                    r.image, b.digest
                ),
                hint: Some("the build is not reproducible from this checkout: compare the base (its tag may have moved), the installer's version and the requirements with the provenance (`--output json` shows it)".into()),
            });
        }
        printer.info(&format!("rebuilt: the same digest, {}", b.digest));
    }
    if printer.is_json() {
        printer.json(&json!({"verified": r, "rebuilt": rebuilt}))
    } else {
        printer.data(&format!("{}\n", r.image))
    }
}
