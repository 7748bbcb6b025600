//! `flowship push --from oci-layout:DIR[:TAG]` / `docker-archive:FILE[:TAG]`: push an image built by buildah,
//! podman, skopeo, umoci or a kaniko fork, through the same engine as `build` (see `ops::image`).

use crate::cli::PushArgs;
use crate::error::Error;
use crate::ops::Context;
use crate::ops::image;

pub async fn run(args: &PushArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let plan = image::plan_push(ctx, settings, &args.from, &args.tags).await?;
    let _section = printer.section(
        "flowship_push",
        &format!("flowship push {}", plan.repository),
    );
    if settings.dry_run.value {
        return crate::report::image_plan(&plan, printer);
    }
    let outcome = image::apply(settings, plan, printer).await?;
    crate::report::image(&outcome, settings, printer)
}
