//! A health check's row, as `doctor` shows it: each system's probe (`registry::probe`, `gitops::probe`,
//! `prefect::probe`) returns these, so that what a check means stays with the system it checks and `doctor`
//! keeps only the table. Data only: nothing here talks to a service.

use crate::http::TransportError;
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

pub fn check(check: &'static str, status: Status, detail: impl Into<String>) -> Check {
    Check {
        check,
        status,
        detail: detail.into(),
        hint: None,
        refused: false,
    }
}

pub fn fail(name: &'static str, detail: impl Into<String>, hint: Option<String>) -> Check {
    Check {
        check: name,
        status: Status::Fail,
        detail: detail.into(),
        hint,
        refused: false,
    }
}

/// A failed check from an error, remembering whether the configuration forbade the request.
pub fn failed<E: std::error::Error + 'static>(
    name: &'static str,
    e: &E,
    hint: Option<String>,
) -> Check {
    Check {
        refused: crate::error::is_refusal(e),
        ..fail(name, e.to_string(), hint)
    }
}

/// A request flowship would not send: plain transport to a host not named by `--plain-http`.
pub fn refused(
    checks: &mut Vec<Check>,
    detail: String,
    hint: Option<String>,
    later: &[&'static str],
) {
    checks.push(Check {
        refused: true,
        ..fail("tls", detail, hint)
    });
    skip_rest(checks, later, "not contacted: plain transport refused");
}

pub fn skip_rest(checks: &mut Vec<Check>, names: &[&'static str], why: &str) {
    for n in names {
        checks.push(check(n, Status::Skip, why));
    }
}

/// Reachability and TLS rows for a transport failure: a certificate problem means the server was reached.
pub fn transport_rows(
    checks: &mut Vec<Check>,
    e: &TransportError,
    message: String,
    hint: Option<String>,
) {
    match e {
        TransportError::PlainHttp { .. } => checks.push(Check {
            refused: true,
            ..fail("reachable", message, hint)
        }),
        TransportError::Untrusted { .. } | TransportError::Tls { .. } => {
            checks.push(check("reachable", Status::Ok, "connected"));
            checks.push(fail("tls", message, hint));
        }
        _ => {
            checks.push(fail("reachable", message, hint));
            checks.push(check("tls", Status::Skip, "not reached"));
        }
    }
}

/// The rows of a service that was not reached: reachability and TLS from the transport failure (when it was
/// one), every later check skipped.
pub fn unreached(
    transport: Option<&TransportError>,
    message: String,
    hint: Option<String>,
    later: &[&'static str],
) -> Vec<Check> {
    let mut checks = Vec::new();
    match transport {
        Some(t) => transport_rows(&mut checks, t, message, hint),
        None => checks.push(fail("reachable", message, hint)),
    }
    skip_rest(&mut checks, later, "not reached");
    checks
}
