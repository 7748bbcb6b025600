//! `flowship promote SRC DST`: the same image (same digest) under another tag, repository or registry,
//! without rebuilding. Same repository: only the manifest is put under the new tag. Same registry: blobs are
//! mounted from the source repository. Another registry: blobs are streamed across, never held in memory.
//! (`promote --from-env A --env B`, between environments, is `ops::release`.)

use crate::cli::PromoteArgs;
use crate::error::Error;
use crate::ops::image;
use crate::output::Printer;
use crate::registry::Reference;
use crate::settings::Settings;

pub async fn run(args: &PromoteArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let usage = |m: String, h: &str| Error::Usage {
        message: m,
        hint: Some(h.into()),
    };
    let src = Reference::parse(&args.source).map_err(|e| {
        usage(
            format!("SRC `{}`: {e}", args.source),
            "registry/repo:tag or registry/repo@sha256:...",
        )
    })?;
    let dst = Reference::parse(&args.destination).map_err(|e| {
        usage(
            format!("DST `{}`: {e}", args.destination),
            "registry/repo:tag",
        )
    })?;
    let _section = printer.section("flowship_promote", &format!("flowship promote {src} {dst}"));
    let plan = image::plan_promote(settings, &src, &dst).await?;
    if let Some(want) = &src.digest
        && &plan.digest != want
    {
        return Err(Error::Registry(
            crate::registry::RegistryError::DigestMismatch {
                registry: src.registry.clone(),
                what: format!("manifest {}", src.repository),
                expected: want.clone(),
                actual: plan.digest.clone(),
            },
        ));
    }
    if settings.dry_run.value {
        return crate::report::image_plan(&plan, printer);
    }
    let outcome = image::apply(settings, plan, printer).await?;
    crate::report::image(&outcome, settings, printer)
}
