//! `flowship release [--env E]`: build → push by digest → scan gate → tag → bump → register, as one plan
//! (see `ops::release`). `--plan-out FILE` saves the plan (and writes nothing else); `--plan FILE` applies
//! exactly that plan.

use crate::cli::ReleaseArgs;
use crate::error::Error;
use crate::ops::release::{self, Request, Saved};
use crate::output::Printer;
use crate::settings::Settings;

/// `--plan-max-age` when none is given: a plan approved yesterday is stale.
const DEFAULT_PLAN_MAX_AGE: u64 = 24 * 3600;

pub async fn run(args: &ReleaseArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let saved = match &args.plan {
        Some(p) => Some(Saved::load(
            p,
            args.plan_max_age.unwrap_or(DEFAULT_PLAN_MAX_AGE),
        )?),
        None => None,
    };
    let req = Request {
        tags: args.tags.clone(),
        lift_hold: args.lift_hold,
        saved,
        ..super::release_request(&args.bump, &args.register)
    };
    let env = settings
        .environment
        .as_ref()
        .map(|e| format!(" to {}", e.value))
        .unwrap_or_default();
    printer.info(&format!("planning the release{env}"));
    let plan = release::plan(settings, &req, printer).await?;
    if let Some(out) = &args.plan_out {
        let text = serde_json::to_string_pretty(&plan.saved(settings))
            .map_err(|e| Error::Internal(e.to_string()))?;
        // The plan is an artifact: it must never hold a secret (payloads are fingerprints).
        if settings
            .secret_values()
            .iter()
            .any(|s| s.len() >= 4 && text.contains(s.as_str()))
        {
            return Err(Error::Internal("a secret reached the saved plan".into()));
        }
        std::fs::write(out, format!("{text}\n")).map_err(|e| Error::Output {
            what: out.display().to_string(),
            reason: e.to_string(),
        })?;
        printer.info(&format!(
            "saved the plan to {}; apply it with `flowship release --plan {}`",
            out.display(),
            out.display()
        ));
        return crate::report::release_plan(&plan, printer);
    }
    if settings.dry_run.value {
        return crate::report::release_plan(&plan, printer);
    }
    let outcome = release::apply(settings, plan, printer).await?;
    crate::report::release(&outcome, settings, printer)
}
