//! `flowship promote SRC DST`: the same image (same digest) under another tag, repository or registry,
//! without rebuilding. Same repository: only the manifest is put under the new tag. Same registry: blobs are
//! mounted from the source repository. Another registry: blobs are streamed across, never held in memory.
//! `flowship promote --from-env A --env B`: B pinned to exactly the digest A runs (see `ops::promote`).

use crate::cli::PromoteArgs;
use crate::error::Error;
use crate::ops::{Context, image, promote, release};
use crate::output::Printer;
use crate::registry::Reference;
use crate::settings::Settings;

pub async fn run(args: &PromoteArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    if let Some(from) = &args.from_env {
        return between_environments(args, from, settings, printer, ctx).await;
    }
    let usage = |m: String, h: &str| Error::Usage {
        message: m,
        hint: Some(h.into()),
    };
    let (source, destination) = (
        args.source.clone().unwrap_or_default(),
        args.destination.clone().unwrap_or_default(),
    );
    let src = Reference::parse(&source).map_err(|e| {
        usage(
            format!("SRC `{source}`: {e}"),
            "registry/repo:tag or registry/repo@sha256:...",
        )
    })?;
    let dst = Reference::parse(&destination)
        .map_err(|e| usage(format!("DST `{destination}`: {e}"), "registry/repo:tag"))?;
    let _section = printer.section("flowship_promote", &format!("flowship promote {src} {dst}"));
    let plan = image::plan_promote(ctx, settings, &src, &dst).await?;
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
    if let Some(v) = image::sign::require(settings, &plan)? {
        printer.info(&format!(
            "signature verified: {}@{} signed for {} by key {}",
            plan.repository, plan.digest, v.reference, v.key
        ));
    }
    if settings.dry_run.value {
        return crate::report::image_plan(&plan, printer);
    }
    let outcome = image::apply(settings, plan, printer).await?;
    crate::report::image(&outcome, settings, printer)
}

async fn between_environments(
    args: &PromoteArgs,
    from: &str,
    settings: &Settings,
    printer: &Printer,
    ctx: &Context<'_>,
) -> Result<(), Error> {
    let Some(to) = settings.environment.as_ref().map(|e| e.value.clone()) else {
        return Err(Error::Usage {
            message: "promote --from-env needs the environment to promote to".into(),
            hint: Some(format!(
                "pass --env, e.g. promote --from-env {from} --env prod"
            )),
        });
    };
    if to == from {
        return Err(Error::Usage {
            message: format!("--from-env {from} and --env {to} are the same environment"),
            hint: Some("promote from one environment to another".into()),
        });
    }
    let source = ctx.environment(from)?;
    let _section = printer.section(
        "flowship_promote",
        &format!("flowship promote {from} -> {to}"),
    );
    let req = release::Request {
        subject: Some(format!("promote {from} to {to}")),
        ..super::release_request(&args.bump, &args.register)
    };
    let plan = promote::plan(ctx, &source, from, settings, req, printer).await?;
    if settings.dry_run.value {
        return crate::report::release_plan(&plan, printer);
    }
    let outcome = release::apply(ctx, settings, plan, printer).await?;
    crate::report::release(&outcome, settings, printer)
}
