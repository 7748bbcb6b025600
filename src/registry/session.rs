//! The one registry client: an authenticated conversation with one registry. Authentication follows the
//! server's challenge once (`GET /v2/`): none, Basic on every request, or Bearer tokens fetched per scope and
//! cached. A 401 in the middle of a push (a token outliving Harbor's 30 minutes) refetches the token and
//! retries the request once. Scopes may name several repositories: a cross-repository mount needs `pull` on
//! the source as well (oci-client asks only for the target's, its issue #235, so Harbor declines every
//! cross-project mount).
//!
//! Credentials go to this registry only: a request to any other origin (an upload `Location` or a storage
//! redirect on another host) carries no `Authorization`, and the Basic credentials go to the token realm the
//! registry names only through the HTTP layer, which refuses plain HTTP to unlisted hosts.

use super::Credential;
use super::auth::{Challenge, basic, granted_actions, parse_challenge};
use super::error::{RegistryError, error_detail, harbor_missing_project};
use crate::http::{Http, TransportError};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use std::collections::HashMap;
use tokio::sync::Mutex;

pub struct Session {
    pub(super) http: Http,
    pub(super) host: String,
    pub(super) base: String,
    /// `host:port` of `base`, for the same-origin rule.
    origin: String,
    credential: Option<Credential>,
    challenge: Challenge,
    ping: Ping,
    /// Scope → `Authorization` value.
    tokens: Mutex<HashMap<String, String>>,
}

/// The answer to the unauthenticated `GET /v2/` a session starts with.
#[derive(Debug, Clone)]
pub struct Ping {
    pub url: String,
    pub status: u16,
    pub api_version: Option<String>,
}

/// What the push-permission check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushCheck {
    /// The token's `access` claim grants push.
    Granted,
    /// An upload session was opened and cancelled.
    SessionOpened,
}

/// `repository:flows/etl:pull,push` (plus `repository:flows/base:pull` for a mount).
pub fn scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

fn origin_of(url: &str) -> Option<String> {
    crate::http::host_port(&url::Url::parse(url).ok()?)
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub async fn open(
        http: Http,
        host: &str,
        credential: Option<Credential>,
    ) -> Result<Self, RegistryError> {
        let base = http.base_url(host);
        let url = format!("{base}/v2/");
        let resp = http
            .send(|| http.client().get(&url))
            .await
            .map_err(|source| RegistryError::Transport {
                registry: host.into(),
                source,
            })?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let challenge = match resp.status() {
            s if s.is_success() => Challenge::Other(String::new()),
            StatusCode::UNAUTHORIZED => header(WWW_AUTHENTICATE.as_str())
                .map(|h| parse_challenge(&h))
                .unwrap_or(Challenge::Basic),
            s => {
                return Err(RegistryError::Protocol {
                    registry: host.into(),
                    what: "GET /v2/".into(),
                    status: s.as_u16(),
                    detail: String::new(),
                });
            }
        };
        let ping = Ping {
            url: url.clone(),
            status: resp.status().as_u16(),
            api_version: header("docker-distribution-api-version"),
        };
        Ok(Self {
            origin: origin_of(&base).unwrap_or_default(),
            http,
            host: host.into(),
            base,
            credential,
            challenge,
            ping,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    pub fn ping(&self) -> &Ping {
        &self.ping
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn user(&self) -> Option<&str> {
        self.credential.as_ref().map(|c| c.username.value.as_str())
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    /// Is `url` on this registry (same scheme default port, host and port)? Only then does it get credentials.
    pub fn is_own(&self, url: &str) -> bool {
        origin_of(url).is_some_and(|o| o.eq_ignore_ascii_case(&self.origin))
            && url.starts_with(self.base.split("://").next().unwrap_or("https"))
    }

    fn basic(&self) -> Option<String> {
        self.credential.as_ref().map(basic)
    }

    fn transport(&self, source: TransportError) -> RegistryError {
        RegistryError::Transport {
            registry: self.host.clone(),
            source,
        }
    }

    /// The `Authorization` value for `scopes` (space-separated), fetching a token when the registry wants one.
    async fn authorization(
        &self,
        scopes: &str,
        refresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        match &self.challenge {
            Challenge::Bearer { realm, service } => {
                let mut cache = self.tokens.lock().await;
                if !refresh && let Some(t) = cache.get(scopes) {
                    return Ok(Some(t.clone()));
                }
                let token = super::auth::fetch_token(
                    &self.http,
                    &self.host,
                    realm,
                    service.as_deref(),
                    scopes,
                    self.credential.as_ref(),
                )
                .await?;
                let value = format!("Bearer {token}");
                cache.insert(scopes.to_string(), value.clone());
                Ok(Some(value))
            }
            Challenge::Basic => match self.basic() {
                Some(b) => Ok(Some(b)),
                None => Err(RegistryError::NeedsCredentials {
                    registry: self.host.clone(),
                }),
            },
            Challenge::Other(_) => Ok(None),
        }
    }

    /// Drop a cached token (it was refused); the next request fetches a new one.
    pub(super) async fn forget_token(&self, scopes: &str) {
        self.tokens.lock().await.remove(scopes);
    }

    /// The `Authorization` for a request to `url`: none for another origin, whatever the scopes.
    pub(super) async fn authorization_for(
        &self,
        scopes: &str,
        url: &str,
    ) -> Result<Option<String>, RegistryError> {
        if !self.is_own(url) {
            return Ok(None);
        }
        self.authorization(scopes, false).await
    }

    /// Send with authorization for `scopes` (when `url` is this registry's); on 401 refetch the token once
    /// and send again.
    pub async fn send(
        &self,
        scopes: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        method: Method,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let own = self.is_own(url);
        let mut refresh = false;
        loop {
            let auth = if own {
                self.authorization(scopes, refresh).await?
            } else {
                None
            };
            let resp = self
                .http
                .send(|| {
                    let r = build(self.http.client().request(method.clone(), url));
                    match &auth {
                        Some(a) => r.header(AUTHORIZATION, a),
                        None => r,
                    }
                })
                .await
                .map_err(|e| self.transport(e))?;
            if resp.status() == StatusCode::UNAUTHORIZED
                && own
                && !refresh
                && matches!(self.challenge, Challenge::Bearer { .. })
            {
                refresh = true;
                continue;
            }
            return Ok(resp);
        }
    }
}

/// What `doctor` asks of a registry, without side effects.
impl Session {
    /// Prove the credentials work, returning the `Authorization` value for `repository` with pull+push scope
    /// (None: anonymous access is all the registry wants).
    pub async fn authorize(&self, repository: &str) -> Result<Option<String>, RegistryError> {
        match (&self.challenge, self.ping.status) {
            (_, 200) => Ok(None),
            (Challenge::Basic, _) => {
                let Some(c) = &self.credential else {
                    return Err(RegistryError::NeedsCredentials {
                        registry: self.host.clone(),
                    });
                };
                let auth = basic(c);
                let resp = self
                    .http
                    .send(|| {
                        self.http
                            .client()
                            .get(&self.ping.url)
                            .header(AUTHORIZATION, &auth)
                    })
                    .await
                    .map_err(|e| self.transport(e))?;
                match resp.status() {
                    s if s.is_success() => Ok(Some(auth)),
                    StatusCode::UNAUTHORIZED => Err(self.bad_credentials(c, resp).await),
                    s => Err(self.protocol("GET /v2/ with credentials", s, resp).await),
                }
            }
            (Challenge::Bearer { .. }, _) => {
                self.authorization(&scope(repository, "pull,push"), true)
                    .await
            }
            (Challenge::Other(h), s) => Err(RegistryError::Protocol {
                registry: self.host.clone(),
                what: "GET /v2/".into(),
                status: s,
                detail: format!("unsupported authentication challenge `{h}`"),
            }),
        }
    }

    /// Is the account allowed to push to `repository`? Decided from the token's `access` claim when it has one;
    /// otherwise by opening an upload session and cancelling it at once (no blob, no tag, nothing left behind).
    pub async fn check_push(
        &self,
        repository: &str,
        auth: Option<&str>,
    ) -> Result<PushCheck, RegistryError> {
        if let Some(token) = auth.and_then(|a| a.strip_prefix("Bearer "))
            && let Some(actions) = granted_actions(token, repository)
        {
            return if actions.iter().any(|a| a == "push" || a == "*") {
                Ok(PushCheck::Granted)
            } else {
                Err(self.push_denied(repository, format!("token grants {actions:?}")))
            };
        }
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base);
        let scopes = scope(repository, "pull,push");
        let resp = self
            .send(
                &scopes,
                |r| r.header(reqwest::header::CONTENT_LENGTH, "0"),
                Method::POST,
                &url,
            )
            .await?;
        let status = resp.status();
        if status == StatusCode::ACCEPTED {
            if let Some(loc) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                // Best effort: an abandoned session is purged by the registry anyway. A `Location` on another
                // host gets no credentials (`send`).
                let loc = self.url(loc);
                let _ = self.send(&scopes, |r| r, Method::DELETE, &loc).await;
            }
            return Ok(PushCheck::SessionOpened);
        }
        let body = crate::http::error_text(resp).await;
        let detail = error_detail(&body);
        if let Some(project) = harbor_missing_project(&detail) {
            return Err(RegistryError::ProjectNotFound {
                registry: self.host.clone(),
                project,
            });
        }
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(self.push_denied(repository, detail))
            }
            s => Err(RegistryError::Protocol {
                registry: self.host.clone(),
                what: format!("POST {url}"),
                status: s.as_u16(),
                detail,
            }),
        }
    }

    /// Harbor's version, when this registry is a Harbor (its REST API answers `systeminfo` without auth).
    pub async fn harbor_version(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct SystemInfo {
            harbor_version: Option<String>,
        }
        let url = format!("{}/api/v2.0/systeminfo", self.base);
        let resp = self
            .http
            .send_once(self.http.client().get(&url))
            .await
            .ok()?;
        if !resp.status().is_success() {
            return None;
        }
        crate::http::json::<SystemInfo>(resp)
            .await
            .ok()?
            .harbor_version
    }

    fn push_denied(&self, repository: &str, detail: String) -> RegistryError {
        RegistryError::PushDenied {
            registry: self.host.clone(),
            repository: repository.into(),
            user: self.user().unwrap_or("anonymous").into(),
            detail,
        }
    }

    async fn bad_credentials(&self, c: &Credential, resp: reqwest::Response) -> RegistryError {
        let detail = error_detail(&crate::http::error_text(resp).await);
        if let Some(project) = harbor_missing_project(&detail) {
            return RegistryError::ProjectNotFound {
                registry: self.host.clone(),
                project,
            };
        }
        RegistryError::BadCredentials {
            registry: self.host.clone(),
            user: c.username.value.clone(),
            detail,
        }
    }

    async fn protocol(
        &self,
        what: &str,
        status: StatusCode,
        resp: reqwest::Response,
    ) -> RegistryError {
        let detail = error_detail(&crate::http::error_text(resp).await);
        RegistryError::Protocol {
            registry: self.host.clone(),
            what: what.into(),
            status: status.as_u16(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_compare_host_and_port() {
        assert_eq!(
            super::origin_of("https://h.example.com/v2/").as_deref(),
            Some("h.example.com:443")
        );
        assert_eq!(
            super::origin_of("http://127.0.0.1:5000/x").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_ne!(
            super::origin_of("https://storage.example.com/b"),
            super::origin_of("https://h.example.com/")
        );
    }
}
