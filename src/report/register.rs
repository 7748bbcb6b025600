//! `register`: the deployments it creates or updates, and why a failed one failed.

use crate::error::Error;
use crate::ops::register::Action;
use crate::output::Printer;
use serde_json::{Value, json};

/// Deployments as `flowship register` reports them; failures make it exit 1, naming what was done.
pub fn register(
    o: &crate::ops::register::Outcome,
    dry_run: bool,
    printer: &Printer,
) -> Result<(), Error> {
    if printer.is_json() {
        printer.json(&json!({"prefect": {"deployments": o.deployments}, "dry_run": dry_run}))?;
    } else {
        printer.data(&deployment_lines(o, dry_run))?;
    }
    let count = |a: Action| o.deployments.iter().filter(|d| d.action == a).count();
    let deleted = match count(Action::Deleted) {
        0 => String::new(),
        n => format!(", {n} deleted"),
    };
    printer.info(&format!(
        "{}{} created, {} updated, {} unchanged{deleted}, {} failed",
        if dry_run { "dry run: " } else { "" },
        count(Action::Created),
        count(Action::Updated),
        count(Action::Unchanged),
        count(Action::Failed)
    ));
    registration_failures(o)
}

/// exit 1 when a deployment failed, naming which were registered (a re-run finishes the job).
pub fn registration_failures(o: &crate::ops::register::Outcome) -> Result<(), Error> {
    let failed = o.failed();
    if failed.is_empty() {
        return Ok(());
    }
    let done: Vec<&str> = o
        .deployments
        .iter()
        .filter(|d| d.action != Action::Failed)
        .map(|d| d.name.as_str())
        .collect();
    Err(Error::Reported(format!(
        "register: {} of {} deployments failed ({}); registered: {}. Re-running finishes the job",
        failed.len(),
        o.deployments.len(),
        failed
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if done.is_empty() {
            "none".to_string()
        } else {
            done.join(", ")
        }
    )))
}

/// One line per deployment (action, name, id), its field changes, and its error.
pub fn deployment_lines(o: &crate::ops::register::Outcome, dry_run: bool) -> String {
    let width = o
        .deployments
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for d in &o.deployments {
        let action = if dry_run && d.action != Action::Failed {
            format!("would be {}", d.action)
        } else {
            d.action.to_string()
        };
        out.push_str(&format!(
            "{:<16} {:<width$}  {}\n",
            action,
            d.name,
            d.id.as_deref().unwrap_or("")
        ));
        for c in &d.changes {
            out.push_str(&format!(
                "    {}: {} -> {}\n",
                c.field,
                compact(&c.old),
                compact(&c.new)
            ));
        }
        if let Some(e) = &d.error {
            out.push_str(&format!("    error: {e}\n"));
        }
    }
    out
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}
