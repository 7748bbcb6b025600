//! Harbor's own REST API (`/api/v2.0`), for what a registry protocol cannot do: create a missing project and
//! gate a release on Harbor's vulnerability scan. Basic auth with the same (robot) account as the pushes.
//! Repository names inside a project are URL-encoded twice in these paths (`a/b` → `a%252Fb`).

use super::Credential;
use super::error::RegistryError;
use crate::http::Http;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const REPORT: &str = "application/vnd.security.vulnerability.report; version=1.1, application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0";

/// Harbor's severities, most severe first.
pub const SEVERITIES: [&str; 7] = [
    "Critical",
    "High",
    "Medium",
    "Low",
    "Negligible",
    "Unknown",
    "None",
];

pub struct Harbor {
    http: Http,
    host: String,
    base: String,
    credential: Option<Credential>,
}

#[derive(Debug, Clone)]
pub struct ScanResult {
    pub severity: String,
    pub counts: BTreeMap<String, u64>,
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Harbor {
    pub fn new(http: Http, host: &str, credential: Option<Credential>) -> Self {
        let base = format!("{}/api/v2.0", http.base_url(host));
        Self {
            http,
            host: host.into(),
            base,
            credential,
        }
    }

    fn err(&self, what: &str, status: u16, detail: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.host.clone(),
            what: format!("Harbor API {what}"),
            status,
            detail,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}{path}", self.base);
        let auth = self.credential.as_ref().map(super::auth::basic);
        self.http
            .send(|| {
                let mut r = self
                    .http
                    .client()
                    .request(method.clone(), &url)
                    .header("X-Accept-Vulnerabilities", REPORT);
                if let Some(a) = &auth {
                    r = r.header(AUTHORIZATION, a);
                }
                if let Some(b) = &body {
                    r = r.json(b);
                }
                r
            })
            .await
            .map_err(|source| RegistryError::Transport {
                registry: self.host.clone(),
                source,
            })
    }

    /// Is this registry a Harbor? (`systeminfo` answers without credentials.)
    pub async fn detect(&self) -> bool {
        matches!(self.call(Method::GET, "/systeminfo", None).await, Ok(r) if r.status().is_success())
    }

    pub async fn ensure_project(&self, project: &str) -> Result<bool, RegistryError> {
        let resp = self
            .call(
                Method::HEAD,
                &format!("/projects?project_name={}", enc(project)),
                None,
            )
            .await?;
        if resp.status().is_success() {
            return Ok(false);
        }
        let body = json!({"project_name": project, "metadata": {"public": "false"}});
        let resp = self.call(Method::POST, "/projects", Some(body)).await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::CONFLICT => Ok(resp.status() == StatusCode::CREATED),
            s => Err(self.err(
                "POST /projects",
                s.as_u16(),
                crate::http::error_text(resp).await,
            )),
        }
    }

    fn artifact_path(repository: &str, digest: &str) -> Option<String> {
        let (project, repo) = repository.split_once('/')?;
        Some(format!(
            "/projects/{}/repositories/{}/artifacts/{}",
            enc(project),
            enc(&enc(repo)),
            enc(digest)
        ))
    }

    /// Scan `repository@digest` and wait for the result (bounded by `timeout`).
    pub async fn scan(
        &self,
        repository: &str,
        digest: &str,
        timeout: Duration,
    ) -> Result<ScanResult, RegistryError> {
        let path = Self::artifact_path(repository, digest)
            .ok_or_else(|| self.err("scan", 0, format!("`{repository}` has no project")))?;
        let resp = self
            .call(
                Method::POST,
                &format!("{path}/scan"),
                Some(json!({"scan_type": "vulnerability"})),
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            let s = resp.status().as_u16();
            return Err(self.err("scan", s, crate::http::error_text(resp).await));
        }
        let started = Instant::now();
        let mut wait = Duration::from_millis(200);
        loop {
            let resp = self
                .call(
                    Method::GET,
                    &format!("{path}?with_scan_overview=true"),
                    None,
                )
                .await?;
            if !resp.status().is_success() {
                let s = resp.status().as_u16();
                return Err(self.err("artifact", s, crate::http::error_text(resp).await));
            }
            let art: Value = crate::http::json(resp)
                .await
                .map_err(|e| self.err("artifact", 200, e.to_string()))?;
            let overview = overview_of(&art);
            match overview["scan_status"].as_str() {
                Some("Success") => return Ok(scan_result(&overview)),
                Some(s @ ("Error" | "Stopped")) => {
                    return Err(self.err("scan", 200, format!("the scan ended {s}")));
                }
                _ if started.elapsed() > timeout => {
                    return Err(self.err(
                        "scan",
                        0,
                        format!("no result after {} s", timeout.as_secs()),
                    ));
                }
                _ => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

impl ScanResult {
    /// `2 Critical, 5 High`, most severe first, or `no vulnerabilities`.
    pub fn summary(&self) -> String {
        let found: Vec<String> = SEVERITIES
            .iter()
            .filter_map(|s| {
                self.counts
                    .get(*s)
                    .filter(|n| **n > 0)
                    .map(|n| format!("{n} {s}"))
            })
            .collect();
        match found.is_empty() {
            true => "no vulnerabilities".to_string(),
            false => found.join(", "),
        }
    }
}

/// The first scanner's overview of an artifact (`scan_overview: {<report mime>: {...}}`).
fn overview_of(art: &Value) -> Value {
    art["scan_overview"]
        .as_object()
        .and_then(|o| o.values().next())
        .cloned()
        .unwrap_or(Value::Null)
}

fn scan_result(overview: &Value) -> ScanResult {
    let counts = overview["summary"]["summary"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                .collect()
        })
        .unwrap_or_default();
    ScanResult {
        severity: overview["severity"].as_str().unwrap_or("None").to_string(),
        counts,
    }
}

/// A project's pull policies (`ProjectMetadata`): what Harbor refuses to serve.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullPolicy {
    /// `enable_content_trust_cosign`: only images with a cosign signature are served.
    pub cosign: bool,
    /// `prevent_vul` with its `severity`: images with a vulnerability at or above it (or not scanned) are not
    /// served.
    pub prevent_vulnerable: Option<String>,
}

impl Harbor {
    /// The pull policies of `project`; `None` when Harbor's API does not know the project.
    pub async fn pull_policy(&self, project: &str) -> Result<Option<PullPolicy>, RegistryError> {
        let resp = self
            .call(Method::GET, &format!("/projects/{}", enc(project)), None)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            let s = resp.status().as_u16();
            return Err(self.err("project", s, crate::http::error_text(resp).await));
        }
        let p: Value = crate::http::json(resp)
            .await
            .map_err(|e| self.err("project", 200, e.to_string()))?;
        let m = &p["metadata"];
        let on = |k: &str| m[k].as_str() == Some("true");
        Ok(Some(PullPolicy {
            cosign: on("enable_content_trust_cosign"),
            prevent_vulnerable: on("prevent_vul")
                .then(|| m["severity"].as_str().unwrap_or("low").to_string()),
        }))
    }

    /// The artifact's last finished scan, without starting one; `None` when it has none.
    pub async fn scan_overview(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<Option<ScanResult>, RegistryError> {
        let path = Self::artifact_path(repository, digest)
            .ok_or_else(|| self.err("artifact", 0, format!("`{repository}` has no project")))?;
        let resp = self
            .call(
                Method::GET,
                &format!("{path}?with_scan_overview=true"),
                None,
            )
            .await?;
        if !resp.status().is_success() {
            let s = resp.status().as_u16();
            return Err(self.err("artifact", s, crate::http::error_text(resp).await));
        }
        let art: Value = crate::http::json(resp)
            .await
            .map_err(|e| self.err("artifact", 200, e.to_string()))?;
        let overview = overview_of(&art);
        Ok((overview["scan_status"].as_str() == Some("Success")).then(|| scan_result(&overview)))
    }
}

/// Does `result` reach `gate` (`critical`, `high`, `medium`, `low`)?
pub fn over_gate(result: &ScanResult, gate: &str) -> bool {
    let limit = SEVERITIES
        .iter()
        .position(|s| s.eq_ignore_ascii_case(gate))
        .unwrap_or(0);
    SEVERITIES[..=limit]
        .iter()
        .any(|s| result.counts.get(*s).copied().unwrap_or(0) > 0 || result.severity == *s)
}
