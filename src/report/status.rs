//! `status`: each environment's pins, registry and deployments, and the drift between them.

use crate::error::Error;
use crate::gitops::commit::short;
use crate::output::Printer;
use serde_json::json;

/// Every environment's status: a table (human) or one document; exit 4 on drift, 1 when unknown.
pub fn status(envs: &[crate::ops::status::Environment], printer: &Printer) -> Result<(), Error> {
    let in_sync = envs.iter().all(|e| e.in_sync());
    if printer.is_json() {
        printer.json(&json!({"in_sync": in_sync, "environments": envs}))?;
    } else {
        let mut out = String::new();
        for e in envs {
            let name = e.environment.as_deref().unwrap_or("(default)");
            let state = match (&e.error, e.drift.is_empty()) {
                (Some(_), _) => "UNKNOWN",
                (None, true) => "in sync",
                (None, false) => "DRIFT",
            };
            out.push_str(&format!("{name}  {state}\n"));
            if let Some(p) = &e.gitops {
                out.push_str(&format!(
                    "  gitops    {} ({}, {})\n",
                    p.digest.as_deref().unwrap_or("-"),
                    p.branch,
                    short(&p.commit)
                ));
                for pl in &p.places {
                    out.push_str(&format!(
                        "            {}:{}  {}  {}\n",
                        pl.file, pl.line, pl.path, pl.value
                    ));
                }
            }
            if let Some(r) = &e.registry {
                out.push_str(&format!(
                    "  registry  {} {}{}\n",
                    r.repository,
                    match r.present {
                        Some(true) => "has the digest",
                        Some(false) => "LACKS the digest",
                        None => "-",
                    },
                    match (&r.tag, &r.tag_digest) {
                        (Some(t), Some(d)) => format!("; tag {t} -> {d}"),
                        (Some(t), None) => format!("; tag {t} missing"),
                        _ => String::new(),
                    }
                ));
            }
            for d in &e.deployments {
                out.push_str(&format!(
                    "  prefect   {:<9} {}  {}\n",
                    d.state,
                    d.name,
                    d.image.as_deref().unwrap_or("")
                ));
            }
            for p in &e.pending {
                out.push_str(&format!(
                    "  pending   {p} (the next release registers it)\n"
                ));
            }
            for d in &e.drift {
                out.push_str(&format!("  drift     {}: {}\n", d.kind, d.detail));
            }
            if let Some(err) = &e.error {
                for line in err.lines() {
                    out.push_str(&format!("  {line}\n"));
                }
            }
        }
        printer.data(&out)?;
    }
    if envs.iter().any(|e| e.error.is_some()) {
        let message = "status: an environment could not be read".to_string();
        // A refusal by configuration stays exit 2 when status reports it, as it is everywhere else.
        return Err(if envs.iter().any(|e| e.error_exit == 2) {
            Error::ReportedRefusal(message)
        } else {
            Error::Reported(message)
        });
    }
    if !in_sync {
        let drifting: Vec<&str> = envs
            .iter()
            .filter(|e| !e.in_sync())
            .map(|e| e.environment.as_deref().unwrap_or("(default)"))
            .collect();
        return Err(Error::Drift(format!(
            "status: drift in {}",
            drifting.join(", ")
        )));
    }
    Ok(())
}
