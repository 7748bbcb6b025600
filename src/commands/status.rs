//! `flowship status [--env E]`: what each environment runs, live (see `ops::status`). Exit 0 when every
//! environment is in sync, 4 on drift, 1 when one could not be read (2 when that was a refusal by configuration).

use super::Environments;
use crate::error::Error;
use crate::ops::status;
use crate::output::Printer;
use crate::settings::Settings;

pub async fn run(
    settings: &Settings,
    printer: &Printer,
    other: &Environments<'_>,
) -> Result<(), Error> {
    let _section = printer.section("flowship_status", "flowship status");
    let mut envs = Vec::new();
    if settings.environment.is_some() || settings.environments.is_empty() {
        envs.push(status::environment(settings, printer).await);
    } else {
        // Every environment at once: each is a clone and a few API reads, mostly waiting on the network.
        let all: Vec<Settings> = settings
            .environments
            .iter()
            .map(|name| other(name))
            .collect::<Result<_, _>>()?;
        envs = futures_util::future::join_all(all.iter().map(|s| status::environment(s, printer)))
            .await;
    }
    crate::report::status(&envs, printer)
}
