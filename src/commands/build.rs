//! `flowship build`: a flow image without a daemon, pushed straight to the registry (or written as an OCI
//! layout). Base + dependency layer (cached in the registry by the hash of everything that decides it) + code
//! layer, reproducible: the same inputs give the same digest on any machine (see `ops::image`).

use crate::cli::BuildArgs;
use crate::error::Error;
use crate::ops::Context;
use crate::ops::image::{self, BuildRequest, OwnRequest};

pub async fn run(args: &BuildArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let repository = settings
        .image
        .as_ref()
        .map(|i| i.value.repository_ref())
        .unwrap_or_default();
    let _section = printer.section("flowship_build", &format!("flowship build {repository}"));
    let plan = if args.self_image {
        let req = OwnRequest {
            tags: args.tags.clone(),
            push: !args.no_push,
            oci_layout: args.oci_layout.clone(),
            // The flag only: a flow project's `image.base` is the flow's base, not flowship's.
            base: args.build.base.clone(),
            add: args.add.clone(),
        };
        image::plan_own(ctx, settings, &req).await?
    } else {
        let req = BuildRequest {
            tags: args.tags.clone(),
            push: !args.no_push,
            oci_layout: args.oci_layout.clone(),
        };
        image::plan_build(ctx, settings, &req).await?
    };
    if settings.dry_run.value {
        if let Some(dir) = &args.oci_layout {
            printer.info(&format!(
                "dry run: would write {} to {}",
                plan.reference(),
                dir.display()
            ));
        }
        return crate::report::image_plan(&plan, printer);
    }
    for n in &plan.notes {
        printer.info(n);
    }
    // The plan's warnings travel in the outcome, which the report renders.
    let outcome = image::apply(settings, plan, printer).await?;
    crate::report::image(&outcome, settings, printer)
}
