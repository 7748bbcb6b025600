//! `flowship rollback --env E [--to previous|TAG|DIGEST|COMMIT]`, and `--lift-hold` (see `ops::rollback`).

use crate::cli::RollbackArgs;
use crate::error::Error;
use crate::ops::{Context, release, rollback};

pub async fn run(args: &RollbackArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let _section = printer.section("flowship_rollback", "flowship rollback");
    if args.lift_hold {
        if settings.dry_run.value {
            printer.info("dry run: would lift the hold");
            return Ok(());
        }
        let outcome = rollback::lift(ctx, settings, printer).await?;
        return crate::report::bump(&outcome, settings, printer);
    }
    let base = super::release_request(&args.bump, &args.register);
    let to = args.to.as_deref().unwrap_or("previous");
    let plan = rollback::plan(ctx, settings, to, args.reason.clone(), base, printer).await?;
    if settings.dry_run.value {
        return crate::report::release_plan(&plan, printer);
    }
    let outcome = release::apply(ctx, settings, plan, printer).await?;
    crate::report::release(&outcome, settings, printer)
}
