//! `flowship register`: create or update Prefect deployments from Prefect's own `prefect.yaml`, without Python
//! (see `ops::register`).

use crate::cli::RegisterArgs;
use crate::error::Error;
use crate::ops::Context;
use crate::ops::register::{self, Request, Selection};

pub async fn run(args: &RegisterArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let selection = if args.all {
        Selection::All
    } else if !args.names.is_empty() {
        Selection::Names(args.names.clone())
    } else {
        Selection::Default
    };
    let req = Request::new(ctx, settings, selection, args.register.skip_steps.clone())?;
    let _section = printer.section(
        "flowship_register",
        &format!(
            "flowship register ({})",
            req.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    let plan = register::plan(&req, printer).await?;
    if settings.dry_run.value {
        for p in plan.pools.iter().filter(|p| !p.exists) {
            printer.info(&format!("dry run: would create work pool `{}`", p.name));
        }
        for p in &plan.pools {
            if let Some(s) = p.pull_secret.as_ref().filter(|_| p.exists) {
                printer.info(&format!(
                    "dry run: would add the image pull secret `{s}` to work pool `{}`",
                    p.name
                ));
            }
            if let Some(b) = &p.refresh_block {
                printer.info(&format!(
                    "dry run: would update the registry credentials block `{b}` of work pool `{}` (its login changed)",
                    p.name
                ));
            }
        }
        return crate::report::register(&register::preview(&plan), true, printer);
    }
    let outcome = register::apply(&plan, printer).await?;
    crate::report::register(&outcome, false, printer)
}
