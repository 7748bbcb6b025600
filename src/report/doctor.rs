//! `doctor`: the table of checks per system (human), or `{ok, services}` (JSON). The checks themselves are
//! each system's probe (`registry::probe`, `gitops::probe`, `prefect::probe`), gathered by `commands::doctor`.

use crate::error::Error;
use crate::output::{Printer, Style};
use crate::probe::{ServiceReport, Status};

/// Every system's checks, as a table or one JSON document.
pub fn doctor(reports: &[ServiceReport], ok: bool, printer: &Printer) -> Result<(), Error> {
    if printer.is_json() {
        return printer.json(&serde_json::json!({ "ok": ok, "services": reports }));
    }
    printer.data(&render(reports, printer))
}

fn render(reports: &[ServiceReport], printer: &Printer) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "{}  {}\n",
            printer.paint(r.service, Style::Bold),
            r.target.as_deref().unwrap_or("")
        ));
        for c in &r.checks {
            let mark = match c.status {
                Status::Ok => printer.paint("ok  ", Style::Ok),
                Status::Warn => printer.paint("warn", Style::Warn),
                Status::Fail => printer.paint("FAIL", Style::Fail),
                Status::Skip => printer.paint("skip", Style::Dim),
            };
            out.push_str(&format!("  {mark}  {:<12} {}\n", c.check, c.detail));
            if let Some(h) = &c.hint {
                out.push_str(&format!("        {:<12} hint: {h}\n", ""));
            }
        }
    }
    out
}
