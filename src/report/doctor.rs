//! `doctor`: the table of checks per system (human), or `{ok, services}` (JSON). The checks themselves are
//! `commands::doctor`'s.

use crate::error::Error;
use crate::output::{Printer, Style};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Failed because the configuration forbids it (plain HTTP to an unlisted host): exit 2, not 1.
    #[serde(skip)]
    pub refused: bool,
}

#[derive(Debug, Serialize)]
pub struct ServiceReport {
    pub service: &'static str,
    /// What was checked (image repository, redacted repo URL, API URL), or null when not configured.
    pub target: Option<String>,
    pub checks: Vec<Check>,
}

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
