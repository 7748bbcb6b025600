//! `release`, `promote --from-env`, `rollback`: the plan (the ordered actions) and the outcome.

use super::bump::bump_narration;
use super::dotenv;
use super::image::image_vars;
use super::register::deployment_lines;
use super::register::registration_failures;
use crate::error::Error;
use crate::gitops::commit::short;
use crate::output::Printer;
use crate::settings::Settings;
use serde_json::json;

/// A release's plan (dry run, or `--plan-out`): every action, in order.
pub fn release_plan(p: &crate::ops::release::Plan, printer: &Printer) -> Result<(), Error> {
    for w in &p.image.warnings {
        printer.warn(w);
    }
    for n in p.image.notes.iter().chain(&p.gitops.notes) {
        printer.info(n);
    }
    if printer.is_json() {
        return printer.json(&json!({
            "environment": p.environment, "actions": p.actions(), "image": p.image, "gitops": p.gitops,
            "prefect": {"api_url": p.prefect.api_url, "pools": p.prefect.pools, "deployments": p.prefect.deployments},
            "dry_run": true,
        }));
    }
    let mut out = String::new();
    let i = &p.image;
    out.push_str(&format!(
        "image       {}  {}\n",
        i.reference(),
        if i.present {
            "in the registry".to_string()
        } else {
            format!(
                "push {} of {} blob(s), {:.1} MiB",
                i.blobs_missing,
                i.blobs,
                i.bytes_missing as f64 / 1048576.0
            )
        }
    ));
    for r in i.referrers.iter().filter(|r| !r.present) {
        out.push_str(&format!(
            "referrer    attach {} {}\n",
            r.artifact_type, r.digest
        ));
    }
    let untagged: Vec<&String> = i.tags.iter().filter(|t| !i.tagged.contains(t)).collect();
    if !untagged.is_empty() {
        out.push_str(&format!(
            "tags        {}\n",
            untagged
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out.push_str(&format!(
        "gitops      {} ({}): {}\n",
        p.gitops.repo,
        p.gitops.branch,
        if p.gitops.is_empty() {
            "nothing to change".to_string()
        } else {
            format!(
                "{} change(s)",
                p.gitops.changes.len() + p.gitops.extras.len()
            )
        }
    ));
    out.push_str(&p.gitops.diff);
    for e in &p.gitops.extras {
        out.push_str(&format!("    {} {}\n", e.action, e.path));
    }
    for pool in &p.prefect.pools {
        if let Some(kind) = pool.create.as_ref().filter(|_| !pool.exists) {
            out.push_str(&format!(
                "work pool   create `{}` (type {kind})\n",
                pool.name
            ));
        }
        if let Some(b) = &pool.refresh_block {
            out.push_str(&format!(
                "work pool   `{}`: update its registry credentials block `{b}` (the login changed)\n",
                pool.name
            ));
        }
    }
    out.push_str(&deployment_lines(
        &crate::ops::register::preview(&p.prefect),
        true,
    ));
    printer.data(&out)?;
    printer.info("dry run: nothing written");
    Ok(())
}

/// What a release did: one JSON document, or a summary a person reads in the job log; and the dotenv report.
pub fn release(
    o: &crate::ops::release::Outcome,
    settings: &Settings,
    printer: &Printer,
) -> Result<(), Error> {
    // What the build or the copy warned of (a shadowed package, referrers not copied) is said in a real
    // release too, not only in its dry run.
    for w in &o.image.warnings {
        printer.warn(w);
    }
    bump_narration(&o.gitops, printer);
    if printer.is_json() {
        printer.json(&json!({
            "environment": o.environment, "image": o.image, "push": o.image.stats, "gitops": o.gitops,
            "prefect": {"deployments": o.prefect.deployments}, "dry_run": false,
        }))?;
    } else {
        let mut out = String::new();
        out.push_str(&format!(
            "released {}{}\n",
            o.image.reference,
            o.environment
                .as_deref()
                .map(|e| format!(" to {e}"))
                .unwrap_or_default()
        ));
        out.push_str(&format!(
            "  image     {}\n",
            if o.image.pushed {
                "pushed"
            } else {
                "already in the registry"
            }
        ));
        let commit = o.gitops.commit.as_deref().map(short).unwrap_or("-");
        out.push_str(&format!(
            "  gitops    {} {} on {} ({})\n",
            if o.gitops.pushed {
                "committed"
            } else {
                "unchanged at"
            },
            commit,
            o.gitops.branch,
            o.gitops.repo
        ));
        if let Some(mr) = &o.gitops.merge_request {
            out.push_str(&format!(
                "  merge request {}\n",
                mr.url.as_deref().unwrap_or(&mr.source_branch)
            ));
        }
        for d in &o.prefect.deployments {
            out.push_str(&format!(
                "  {:<10}{}  {}\n",
                d.action,
                d.name,
                d.url.as_deref().unwrap_or("")
            ));
            // Why it failed belongs next to it (the summary error names only which).
            if let Some(e) = &d.error {
                out.push_str(&format!("    error: {e}\n"));
            }
        }
        printer.data(&out)?;
    }
    let mut vars = image_vars(&o.image);
    if let Some(c) = &o.gitops.commit {
        vars.push(("FLOWSHIP_GITOPS_COMMIT", c.clone()));
    }
    if let Some(e) = &o.environment {
        vars.push(("FLOWSHIP_ENVIRONMENT", e.clone()));
    }
    dotenv(settings, &vars)?;
    registration_failures(&o.prefect)
}
