//! A Prefect API endpoint with its credentials.

mod blocks;
pub use blocks::REGISTRY_BLOCK_TYPE;
mod resources;

use crate::http::{Http, TransportError};
use crate::secret::Secret;
use base64::Engine;
use reqwest::header::AUTHORIZATION;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum PrefectError {
    #[error("Prefect API {url}: {source}")]
    Transport { url: String, source: TransportError },
    #[error("Prefect API {url} rejected the credentials ({how})")]
    Unauthorized { url: String, how: String },
    #[error("Prefect API {url} needs credentials, and none were found")]
    NeedsCredentials { url: String },
    #[error("Prefect API {url}: work pool `{name}` does not exist")]
    WorkPoolMissing { url: String, name: String },
    #[error("Prefect API answered {status} to {what}: {detail}")]
    Api {
        what: String,
        status: u16,
        detail: String,
    },
}

impl PrefectError {
    pub fn hint(&self) -> Option<String> {
        match self {
            PrefectError::Transport { source, .. } => source.hint(),
            PrefectError::Unauthorized { how, .. } if how.starts_with("basic") => {
                Some("check PREFECT_API_AUTH_STRING (`user:password`, as the server's PREFECT_SERVER_API_AUTH_STRING)".into())
            }
            PrefectError::Unauthorized { .. } => Some("check PREFECT_API_KEY and that it belongs to this workspace".into()),
            PrefectError::NeedsCredentials { .. } => {
                Some("set PREFECT_API_AUTH_STRING (self-hosted basic auth) or PREFECT_API_KEY (Prefect Cloud)".into())
            }
            PrefectError::WorkPoolMissing { name, .. } => {
                Some(format!("create it first (`prefect work-pool create {name} --type kubernetes`), or name an existing pool"))
            }
            PrefectError::Api { .. } => None,
        }
    }
}

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    Basic(Secret),
    Bearer(Secret),
}

#[derive(Debug, Clone, Deserialize)]
pub struct WorkPool {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub base_job_template: serde_json::Value,
}

impl WorkPool {
    /// The image pull secrets a Kubernetes pool's job manifest names (`spec.template.spec.imagePullSecrets`).
    pub fn pull_secrets(&self) -> Vec<String> {
        pull_secrets_of(&self.base_job_template)
    }
}

/// Where a Kubernetes job template keeps its pod spec.
fn pod_spec(template: &mut serde_json::Value) -> &mut serde_json::Value {
    &mut template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
}

pub fn pull_secrets_of(template: &serde_json::Value) -> Vec<String> {
    template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_string))
        .collect()
}

/// A Kubernetes job template with `secret` among its pod's image pull secrets.
pub fn with_pull_secret(mut template: serde_json::Value, secret: &str) -> serde_json::Value {
    if pull_secrets_of(&template).iter().any(|s| s == secret) {
        return template;
    }
    let spec = pod_spec(&mut template);
    if !spec.is_object() {
        return template;
    }
    let list = spec.as_object_mut().map(|o| {
        o.entry("imagePullSecrets")
            .or_insert_with(|| serde_json::json!([]))
    });
    if let Some(serde_json::Value::Array(a)) = list {
        a.push(serde_json::json!({"name": secret}));
    }
    template
}

pub struct Prefect {
    http: Http,
    base: String,
    auth: Option<Auth>,
    /// `(token, client id)` once fetched; `Some(None)` once the server said CSRF protection is off.
    csrf: Mutex<Option<Option<(String, String)>>>,
}

impl Prefect {
    /// `auth`: Prefect 3.9 prefers the auth string when both are set (client/orchestration/__init__.py), and
    /// so does `Settings::prefect_auth`.
    pub fn new(http: Http, api_url: &str, auth: Option<Auth>) -> Self {
        Self {
            http,
            base: api_url.trim_end_matches('/').to_string(),
            auth,
            csrf: Mutex::new(None),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Busy answers (503 from SQLite, 429) and retried failures so far, for adaptive concurrency.
    pub fn congestion(&self) -> u64 {
        self.http.transient_count()
    }

    pub fn is_cloud(&self) -> bool {
        self.base.starts_with("https://api.prefect.cloud/")
    }

    fn auth_how(&self) -> String {
        match &self.auth {
            Some(Auth::Basic(_)) => "basic auth from PREFECT_API_AUTH_STRING".into(),
            Some(Auth::Bearer(_)) => "API key from PREFECT_API_KEY".into(),
            None => "no credentials".into(),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self
            .http
            .client()
            .request(method, format!("{}{path}", self.base));
        match &self.auth {
            Some(Auth::Basic(s)) => req.header(
                AUTHORIZATION,
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(s.expose())
                ),
            ),
            Some(Auth::Bearer(k)) => req.header(AUTHORIZATION, format!("Bearer {}", k.expose())),
            None => req,
        }
    }

    fn transport(&self, source: TransportError) -> PrefectError {
        PrefectError::Transport {
            url: self.base.clone(),
            source,
        }
    }

    async fn check(
        &self,
        what: &str,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, PrefectError> {
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if self.auth.is_none() => {
                Err(PrefectError::NeedsCredentials {
                    url: self.base.clone(),
                })
            }
            StatusCode::UNAUTHORIZED => Err(PrefectError::Unauthorized {
                url: self.base.clone(),
                how: self.auth_how(),
            }),
            s => {
                let detail = api_detail(&crate::http::error_text(resp).await);
                Err(PrefectError::Api {
                    what: what.into(),
                    status: s.as_u16(),
                    detail,
                })
            }
        }
    }

    /// `GET /health`: reachable, TLS trusted. Needs no credentials.
    pub async fn health(&self) -> Result<(), PrefectError> {
        let url = format!("{}/health", self.base);
        let resp = self
            .http
            .send(|| self.http.client().get(&url))
            .await
            .map_err(|e| self.transport(e))?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(PrefectError::Api {
                what: "GET /health".into(),
                status: s.as_u16(),
                detail: crate::http::error_text(resp).await,
            }),
        }
    }

    /// The server's version, which also proves the credentials: every endpoint but health needs them.
    /// Prefect Cloud has no `/admin/version`; there a lookup of a flow that cannot exist answers 404 to an
    /// accepted key and 401 to a rejected one.
    pub async fn server_version(&self) -> Result<Option<String>, PrefectError> {
        let resp = self
            .http
            .send(|| self.request(Method::GET, "/admin/version"))
            .await
            .map_err(|e| self.transport(e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            let probe = "/flows/00000000-0000-0000-0000-000000000000";
            let resp = self
                .http
                .send(|| self.request(Method::GET, probe))
                .await
                .map_err(|e| self.transport(e))?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(None);
            }
            self.check("GET /flows/{id}", resp).await?;
            return Ok(None);
        }
        let resp = self.check("GET /admin/version", resp).await?;
        Ok(crate::http::json::<String>(resp).await.ok())
    }

    /// Whether the server wants CSRF tokens on writes (fetching one when it does).
    pub async fn csrf_enabled(&self) -> Result<bool, PrefectError> {
        Ok(self.csrf_token().await?.is_some())
    }

    async fn csrf_token(&self) -> Result<Option<(String, String)>, PrefectError> {
        let mut guard = self.csrf.lock().await;
        if let Some(known) = guard.as_ref() {
            return Ok(known.clone());
        }
        if self.is_cloud() {
            *guard = Some(None);
            return Ok(None);
        }
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let client = format!("flowship-{}", std::process::id());
        let path = format!("/csrf-token?client={client}");
        let resp = self
            .http
            .send(|| self.request(Method::GET, &path))
            .await
            .map_err(|e| self.transport(e))?;
        // 422 "CSRF protection is disabled." (and 404 on servers that predate it) mean: no token needed.
        let value = if matches!(
            resp.status(),
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::NOT_FOUND
        ) {
            None
        } else {
            let resp = self.check("GET /csrf-token", resp).await?;
            let t: Token = crate::http::json(resp)
                .await
                .map_err(|e| PrefectError::Api {
                    what: "GET /csrf-token".into(),
                    status: 200,
                    detail: format!("not a token: {e}"),
                })?;
            Some((t.token, client))
        };
        *guard = Some(value.clone());
        Ok(value)
    }

    pub async fn work_pool(&self, name: &str) -> Result<WorkPool, PrefectError> {
        let path = format!("/work_pools/{}", urlencode(name));
        let resp = self
            .http
            .send(|| self.request(Method::GET, &path))
            .await
            .map_err(|e| self.transport(e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(PrefectError::WorkPoolMissing {
                url: self.base.clone(),
                name: name.into(),
            });
        }
        let resp = self.check("GET /work_pools/{name}", resp).await?;
        crate::http::json(resp)
            .await
            .map_err(|e| PrefectError::Api {
                what: "GET /work_pools/{name}".into(),
                status: 200,
                detail: e.to_string(),
            })
    }
}

/// What `register` needs from the API. Writes carry CSRF headers when the server wants them; an expired
/// token (403 "Invalid CSRF token") is refetched once.
impl Prefect {
    async fn write(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, PrefectError> {
        self.write_with(method, path, body, true).await
    }

    /// A write that must not be repeated blindly: a transport failure is returned at once (the server may
    /// have applied it), while busy answers (the request was not processed) are still retried.
    async fn write_once(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, PrefectError> {
        self.write_with(method, path, body, false).await
    }

    async fn write_with(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
        retry_transport: bool,
    ) -> Result<reqwest::Response, PrefectError> {
        for attempt in 0..2 {
            let csrf = self.csrf_token().await?;
            let build = || {
                let mut r = self.request(method.clone(), path).json(body);
                if let Some((token, client)) = &csrf {
                    r = r
                        .header("Prefect-Csrf-Token", token)
                        .header("Prefect-Csrf-Client", client);
                }
                r
            };
            let resp = if retry_transport {
                self.http.send(build).await
            } else {
                self.send_busy_retried(build).await
            }
            .map_err(|e| self.transport(e))?;
            if resp.status() == StatusCode::FORBIDDEN && attempt == 0 {
                let text = crate::http::error_text(resp).await;
                if text.contains("CSRF") {
                    *self.csrf.lock().await = None;
                    continue;
                }
                return Err(PrefectError::Api {
                    what: format!("{method} {path}"),
                    status: 403,
                    detail: text,
                });
            }
            return Ok(resp);
        }
        Err(PrefectError::Api {
            what: format!("{method} {path}"),
            status: 403,
            detail: "CSRF token refused twice".into(),
        })
    }

    /// One attempt per transport failure (returned), but busy answers retried with the usual backoff.
    async fn send_busy_retried(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<reqwest::Response, TransportError> {
        let policy = self.http.policy().clone();
        let mut attempt = 0;
        loop {
            let resp = self.http.send_once(build()).await?;
            if !crate::http::is_transient(resp.status()) || attempt >= policy.retries {
                return Ok(resp);
            }
            self.http.note_transient();
            let wait = crate::http::retry_after(resp.headers())
                .map(|d| d.min(policy.max_delay))
                .unwrap_or_else(|| policy.backoff(attempt));
            crate::http::say_retry(
                resp.url().host_str().unwrap_or("Prefect"),
                resp.status().as_str(),
                wait,
                attempt + 1,
                policy.retries,
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn json_of(
        &self,
        what: &str,
        resp: reqwest::Response,
    ) -> Result<serde_json::Value, PrefectError> {
        let resp = self.check(what, resp).await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(serde_json::Value::Null);
        }
        crate::http::json(resp)
            .await
            .map_err(|e| PrefectError::Api {
                what: what.into(),
                status: 200,
                detail: format!("not JSON: {e}"),
            })
    }

    async fn get_optional(
        &self,
        what: &str,
        path: &str,
    ) -> Result<Option<serde_json::Value>, PrefectError> {
        let resp = self
            .http
            .send(|| self.request(Method::GET, path))
            .await
            .map_err(|e| self.transport(e))?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        self.json_of(what, resp).await.map(Some)
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Prefect's error bodies: `{"detail": ...}` or, for 422, `{"exception_detail": [{loc, msg}], ...}`.
fn api_detail(text: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return text.chars().take(400).collect();
    };
    if let Some(items) = v["exception_detail"].as_array() {
        let parts: Vec<String> = items
            .iter()
            .map(|i| {
                let loc: Vec<String> = i["loc"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|l| {
                        l.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| l.to_string())
                    })
                    .collect();
                format!("{}: {}", loc.join("."), i["msg"].as_str().unwrap_or(""))
            })
            .collect();
        return parts.join("; ");
    }
    match &v["detail"] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => text.chars().take(400).collect(),
        other => other.to_string(),
    }
}
