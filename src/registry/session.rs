//! An authenticated conversation with one registry. Authentication follows the server's challenge once
//! (`GET /v2/`): none, Basic on every request, or Bearer tokens fetched per scope and cached. A 401 in the
//! middle of a push (a token outliving Harbor's 30 minutes) refetches the token and retries the request once.
//! Scopes may name several repositories: a cross-repository mount needs `pull` on the source as well
//! (oci-client asks only for the target's, its issue #235, so Harbor declines every cross-project mount).

use super::Credential;
use super::auth::{Challenge, parse_challenge};
use super::client::RegistryError;
use crate::http::Http;
use base64::Engine;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use std::collections::HashMap;
use tokio::sync::Mutex;

pub struct Session {
    pub(super) http: Http,
    pub(super) host: String,
    pub(super) base: String,
    credential: Option<Credential>,
    challenge: Challenge,
    /// Scope → `Authorization` value.
    tokens: Mutex<HashMap<String, String>>,
}

/// `repository:flows/etl:pull,push` (plus `repository:flows/base:pull` for a mount).
pub fn scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
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
        let challenge = match resp.status() {
            s if s.is_success() => Challenge::Other(String::new()),
            StatusCode::UNAUTHORIZED => resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(parse_challenge)
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
        Ok(Self {
            http,
            host: host.into(),
            base,
            credential,
            challenge,
            tokens: Mutex::new(HashMap::new()),
        })
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

    fn basic(&self) -> Option<String> {
        self.credential.as_ref().map(|c| {
            let raw = format!("{}:{}", c.username.value, c.password.value.expose());
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        })
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
                let token = self.fetch_token(realm, service.as_deref(), scopes).await?;
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

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &str,
    ) -> Result<String, RegistryError> {
        super::auth::fetch_token(
            &self.http,
            &self.host,
            realm,
            service,
            scopes,
            self.credential.as_ref(),
        )
        .await
    }

    /// Drop a cached token (it was refused); the next request fetches a new one.
    pub(super) async fn forget_token(&self, scopes: &str) {
        self.tokens.lock().await.remove(scopes);
    }

    pub(super) async fn authorization_for(
        &self,
        scopes: &str,
    ) -> Result<Option<String>, RegistryError> {
        self.authorization(scopes, false).await
    }

    /// Send with authorization for `scopes`; on 401 refetch the token once and send again.
    pub async fn send(
        &self,
        scopes: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
        method: reqwest::Method,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let mut refresh = false;
        loop {
            let auth = self.authorization(scopes, refresh).await?;
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
                .map_err(|source| RegistryError::Transport {
                    registry: self.host.clone(),
                    source,
                })?;
            if resp.status() == StatusCode::UNAUTHORIZED
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
