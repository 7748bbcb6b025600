//! `flowship status [--env E]`: what each environment runs, live (see `ops::status`). Exit 0 when every
//! environment is in sync, 4 on drift, 1 when one could not be read (2 when that was a refusal by configuration).

use crate::error::Error;
use crate::ops::{Context, status};
use crate::settings::Settings;

pub async fn run(ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let _section = printer.section("flowship_status", "flowship status");
    let mut envs = Vec::new();
    if settings.environment.is_some() || settings.environments.is_empty() {
        envs.push(status::environment(ctx, settings, printer).await);
    } else {
        // Every environment at once: each is a clone and a few API reads, mostly waiting on the network.
        // Environments on the same GitOps branch share the run's one clone of it.
        let all: Vec<std::sync::Arc<Settings>> = settings
            .environments
            .iter()
            .map(|name| ctx.environment(name))
            .collect::<Result<_, _>>()?;
        envs = futures_util::future::join_all(
            all.iter().map(|s| status::environment(ctx, s, printer)),
        )
        .await;
    }
    crate::report::status(&envs, printer)
}
