//! `bump`: its plan (the diff, or the changes as JSON), its outcome, and the narration `release` reuses.

use super::dotenv;
use crate::error::Error;
use crate::ops::bump;
use crate::output::Printer;
use crate::settings::Settings;
use serde_json::{Value, json};

/// A bump's plan, as a dry run shows it: the diff (human) or the changes (JSON).
pub fn bump_plan(plan: &bump::Plan, printer: &Printer) -> Result<(), Error> {
    for n in &plan.notes {
        printer.info(n);
    }
    skipped(&plan.skipped, printer);
    if printer.is_json() {
        let gitops = json!({
            "repo": plan.repo, "branch": plan.branch, "commit": plan.base, "changes": plan.changes,
            "extras": plan.extras, "pushed": false, "attempts": 0, "merge_request": Value::Null,
            "skipped": plan.skipped,
        });
        return printer.json(&json!({ "gitops": gitops, "dry_run": true }));
    }
    if plan.is_empty() {
        printer.info(&format!(
            "nothing to change: {} reference(s) already set on {} of {}",
            plan.found.len(),
            plan.branch,
            plan.repo
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
    skipped(&o.skipped, printer);
    for e in &o.extras {
        let done = match e.action {
            "create" => "wrote",
            "delete" => "removed",
            _ => "updated",
        };
        printer.info(&format!("{done} {}", e.path));
    }
    if o.changes.is_empty() && !o.pushed {
        printer.info(&format!(
            "nothing to change: {} reference(s) already set on {} of {} ({:.1} s)",
            o.found, o.branch, o.repo, o.seconds
        ));
    } else {
        printer.info(&format!(
            "pushed {} to {} ({} change(s), attempt {}, {:.1} s)",
            short(o.commit.as_deref().unwrap_or("?")),
            o.branch,
            o.changes.len() + o.extras.len(),
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

/// References that name the image but were left as they are: never silent.
fn skipped(list: &[crate::gitops::images::Found], printer: &Printer) {
    for f in list {
        let at = if f.path.is_empty() {
            String::new()
        } else {
            format!(" `{}`", f.path)
        };
        printer.warn(&format!(
            "{}:{}{at} = `{}` left as it is: {}",
            f.file,
            f.line,
            f.value,
            f.reason.as_deref().unwrap_or("not readable")
        ));
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

use crate::gitops::commit::short;
