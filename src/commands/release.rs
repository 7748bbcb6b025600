//! `flowship release [--env E]`: build → push by digest → scan gate → tag → bump → register, as one plan
//! (see `ops::release`). `--plan-out FILE` saves the plan (and writes nothing else); `--plan FILE` applies
//! exactly that plan.

use crate::cli::ReleaseArgs;
use crate::error::Error;
use crate::ops::release::{self, Request, Saved};
use crate::ops::{Context, smoke};
use crate::settings::Settings;

/// `--plan-max-age` when none is given: a plan approved yesterday is stale.
const DEFAULT_PLAN_MAX_AGE: u64 = 24 * 3600;

pub async fn run(args: &ReleaseArgs, ctx: &Context<'_>) -> Result<(), Error> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let saved = match &args.plan {
        Some(p) => Some(Saved::load(
            p,
            args.plan_max_age.unwrap_or(DEFAULT_PLAN_MAX_AGE),
        )?),
        None => None,
    };
    // Checked before anything else is planned: a plan edited in transit never gets as far as a build.
    if let Some(s) = &saved {
        s.verify(
            settings
                .plan_key
                .as_ref()
                .map(|k| k.value.expose().as_bytes()),
        )?;
    }
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
    let plan = release::plan(ctx, settings, &req, printer).await?;
    if let Some(out) = &args.plan_out {
        let mut saved = plan.saved(settings);
        if let Some(k) = &settings.plan_key {
            saved.sign(k.value.expose().as_bytes());
        }
        let text =
            serde_json::to_string_pretty(&saved).map_err(|e| Error::Internal(e.to_string()))?;
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
    // Smoke runs are checked against the plan before anything is written: a name that matches no
    // deployment is bad input, not a failure after the release.
    let smoke = smoke_targets(settings, &plan)?;
    if settings.dry_run.value {
        return crate::report::release_plan(&plan, printer);
    }
    let client = plan.prefect.client.clone();
    let api_url = plan.prefect.api_url.clone();
    let pin = plan.image.reference();
    let outcome = release::apply(ctx, settings, plan, printer).await?;
    crate::report::release(&outcome, settings, printer)?;
    if smoke.is_empty() {
        return Ok(());
    }
    let targets: Vec<(String, String, serde_json::Value)> = smoke
        .into_iter()
        .filter_map(|(name, params)| {
            let id = outcome
                .prefect
                .deployments
                .iter()
                .find(|d| d.name == name)?
                .id
                .clone()?;
            Some((name, id, params))
        })
        .collect();
    let timeout = std::time::Duration::from_secs(settings.prefect.smoke_timeout.value);
    let runs = smoke::run_all(&client, &api_url, &targets, &pin, timeout, printer).await?;
    let failed: Vec<&smoke::Run> = runs.iter().filter(|r| !r.passed()).collect();
    for r in &runs {
        printer.info(&format!(
            "smoke run of {}: {} in {} ({})",
            r.deployment,
            r.state,
            r.image.as_deref().unwrap_or("?"),
            r.url
        ));
    }
    if failed.is_empty() {
        return Ok(());
    }
    let why = failed
        .iter()
        .map(|r| {
            format!(
                "{} {}{} ({})",
                r.deployment,
                r.state,
                r.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default(),
                r.url
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if settings.prefect.rollback_on_failure.value {
        printer.warn(&format!("smoke run failed: {why}; rolling back"));
        let base = super::release_request(&args.bump, &args.register);
        let plan = crate::ops::rollback::plan(
            ctx,
            settings,
            "previous",
            Some(format!("smoke run failed after releasing {pin}")),
            base,
            printer,
        )
        .await?;
        let back = release::apply(ctx, settings, plan, printer).await?;
        crate::report::release(&back, settings, printer)?;
        return Err(Error::Reported(format!(
            "release: the smoke run failed ({why}); the environment was rolled back and is held"
        )));
    }
    Err(Error::Reported(format!(
        "release: the smoke run failed: {why}"
    )))
}

/// The deployments `--smoke` names, with their parameters, resolved against what the release registers.
fn smoke_targets(
    settings: &Settings,
    plan: &release::Plan,
) -> Result<Vec<(String, serde_json::Value)>, Error> {
    let names: Vec<(String, String)> = plan
        .prefect
        .deployments
        .iter()
        .map(|d| (d.name.clone(), String::new()))
        .collect();
    let mut out = Vec::new();
    for spec in &settings.prefect.smoke {
        let (want, params) = smoke::parse(&spec.value)?;
        let hits = smoke::matches(&want, &names);
        if hits.is_empty() {
            return Err(Error::Usage {
                message: format!(
                    "{}: smoke run `{want}` names no deployment of this release",
                    spec.source
                ),
                hint: Some(format!(
                    "deployments: {}",
                    names
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            });
        }
        for (name, _) in hits {
            out.push((name.clone(), params.clone()));
        }
    }
    Ok(out)
}
