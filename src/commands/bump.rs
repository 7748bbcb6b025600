//! `flowship bump`: set an image's tag and/or digest in the GitOps repository, changing only those bytes;
//! commit, and push so that concurrent pipelines never lose each other's bumps (see `ops::bump`).

use crate::cli::BumpArgs;
use crate::error::Error;
use crate::ops::Context;
use crate::ops::bump::{self, Request};

pub async fn run(args: &BumpArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let image = settings.image_for("bump")?;
    // --tag/--digest, else the tag and digest of the image reference (FLOWSHIP_IMAGE=repo:tag@digest from a
    // build job's dotenv report).
    let req = Request::new(
        settings,
        image.value.repository_ref(),
        args.tag.clone().or_else(|| image.value.tag.clone()),
        args.digest.clone().or_else(|| image.value.digest.clone()),
        args.bump.mr_branch.clone(),
        args.bump.push_options.clone(),
    )?;
    let _section = printer.section(
        "flowship_bump",
        &format!("flowship bump {}", image.value.repository_ref()),
    );
    printer.info(&format!("cloning {} ({})", req.display_url(), req.branch));
    let (bumper, plan) = bump::plan(ctx.clones(), req).await?;
    if settings.dry_run.value {
        return crate::report::bump_plan(&plan, printer);
    }
    let outcome = bump::apply(bumper, plan).await?;
    crate::report::bump(&outcome, settings, printer)
}
