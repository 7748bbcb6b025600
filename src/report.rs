//! The one reporter: every operation's plan or outcome rendered as human text (data on stdout, narration on
//! stderr), as one JSON document (`--output json`), and as the GitLab dotenv report (`--dotenv`). Operations
//! never print their results; commands hand them here.

use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::ops::bump;
use crate::output::Printer;
use crate::settings::Settings;
use serde_json::{Value, json};

/// Write the dotenv report (when asked for) with these variables; never in a dry run.
pub fn dotenv(settings: &Settings, vars: &[(&str, String)]) -> Result<(), Error> {
    let Some(path) = &settings.dotenv else {
        return Ok(());
    };
    if settings.dry_run.value || vars.is_empty() {
        return Ok(());
    }
    let mut d = Dotenv::default();
    for (k, v) in vars {
        d.set(k, v);
    }
    d.write(&path.value, &settings.secret_values())
}

/// A bump's plan, as a dry run shows it: the diff (human) or the changes (JSON).
pub fn bump_plan(plan: &bump::Plan, printer: &Printer) -> Result<(), Error> {
    for n in &plan.notes {
        printer.info(n);
    }
    if printer.is_json() {
        let gitops = json!({
            "repo": plan.repo, "branch": plan.branch, "commit": plan.base, "changes": plan.changes,
            "extras": plan.extras, "pushed": false, "attempts": 0, "merge_request": Value::Null,
        });
        return printer.json(&json!({ "gitops": gitops, "dry_run": true }));
    }
    if plan.is_empty() {
        printer.info(&format!(
            "nothing to change: {} already set on {}",
            plan.repo, plan.branch
        ));
        return Ok(());
    }
    printer.data(&plan.diff)?;
    for e in &plan.extras {
        printer.info(&format!("would {} {}", e.action, e.path));
    }
    printer.info(&format!(
        "dry run: {} change(s) planned, nothing written",
        plan.changes.len() + plan.extras.len()
    ));
    Ok(())
}

/// Human lines for a bump's changes (stdout).
pub fn bump_lines(o: &bump::Outcome) -> String {
    o.changes
        .iter()
        .map(|c| {
            format!(
                "{}:{}  {}  {} -> {}\n",
                c.file, c.line, c.path, c.old, c.new
            )
        })
        .collect()
}

/// Narration for a bump's outcome (stderr).
pub fn bump_narration(o: &bump::Outcome, printer: &Printer) {
    for n in &o.notes {
        printer.info(n);
    }
    if o.changes.is_empty() && !o.pushed {
        printer.info(&format!(
            "nothing to change: {} already set on {} ({:.1} s)",
            o.repo, o.branch, o.seconds
        ));
    } else {
        printer.info(&format!(
            "pushed {} to {} ({} change(s), attempt {}, {:.1} s)",
            short(o.commit.as_deref().unwrap_or("?")),
            o.branch,
            o.changes.len(),
            o.attempts,
            o.seconds
        ));
    }
    if let Some(mr) = &o.merge_request {
        let what = if mr.created { "opened" } else { "reusing open" };
        match &mr.url {
            Some(u) => printer.info(&format!(
                "{what} merge request {u} ({} -> {})",
                mr.source_branch, mr.target_branch
            )),
            None => printer.info(&format!(
                "merge request requested with push options ({} -> {})",
                mr.source_branch, mr.target_branch
            )),
        }
    }
}

/// A bump's outcome, as `flowship bump` reports it.
pub fn bump(o: &bump::Outcome, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    if printer.is_json() {
        printer.json(&json!({ "gitops": o, "dry_run": false }))?;
    } else {
        printer.data(&bump_lines(o))?;
    }
    bump_narration(o, printer);
    let vars: Vec<(&str, String)> = o
        .commit
        .iter()
        .map(|c| ("FLOWSHIP_GITOPS_COMMIT", c.clone()))
        .collect();
    dotenv(settings, &vars)
}

pub fn short(commit: &str) -> &str {
    &commit[..12.min(commit.len())]
}
