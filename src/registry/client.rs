//! A registry endpoint with its credentials, and the operations `doctor` needs. Authentication follows the
//! server's challenge: Basic on every request, or a bearer token fetched from the realm for the scope needed.

use super::Credential;
use super::auth::{Challenge, granted_actions, parse_challenge};
use crate::http::{Http, TransportError};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: {source}")]
    Transport {
        registry: String,
        source: TransportError,
    },
    #[error("registry {registry} rejected the credentials of `{user}`{}", detail_suffix(.detail))]
    BadCredentials {
        registry: String,
        user: String,
        detail: String,
    },
    #[error("registry {registry} needs credentials, and none were found")]
    NeedsCredentials { registry: String },
    #[error("registry {registry}: project `{project}` not found")]
    ProjectNotFound { registry: String, project: String },
    #[error("registry {registry} denies `{user}` push access to {repository}{}", detail_suffix(.detail))]
    PushDenied {
        registry: String,
        repository: String,
        user: String,
        detail: String,
    },
    #[error("registry {registry} refused the token in the middle of an upload (expired)")]
    TokenExpired { registry: String },
    #[error("registry {registry}: `{reference}` is immutable; refusing to move it{}", detail_suffix(.detail))]
    Immutable {
        registry: String,
        reference: String,
        detail: String,
    },
    #[error("registry {registry} answered {status} to {what}{}", detail_suffix(.detail))]
    Protocol {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

impl RegistryError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Transport { source, .. } => source.hint(),
            RegistryError::BadCredentials { user, .. } if user.contains('$') => Some(
                "robot account names contain `$`: pass it through FLOWSHIP_REGISTRY_USERNAME_FILE or an unexpanded \
                 GitLab variable (`expand: false`), never through a shell"
                    .into(),
            ),
            RegistryError::BadCredentials { .. } => Some(
                "check FLOWSHIP_REGISTRY_USERNAME/FLOWSHIP_REGISTRY_PASSWORD (or HARBOR_USERNAME/HARBOR_PASSWORD, DOCKER_AUTH_CONFIG)".into(),
            ),
            RegistryError::NeedsCredentials { .. } => Some(
                "set FLOWSHIP_REGISTRY_USERNAME and FLOWSHIP_REGISTRY_PASSWORD (or their _FILE variants), or log in with docker".into(),
            ),
            RegistryError::ProjectNotFound { .. } => Some("create the project in Harbor, or pass --create-project".into()),
            RegistryError::PushDenied { .. } => {
                Some("give the account push permission on the project (Harbor robot: repository push + artifact read)".into())
            }
            RegistryError::Immutable { .. } => Some("push a new tag (Harbor's immutable-tag rule protects this one), or promote by digest".into()),
            RegistryError::TokenExpired { .. } => None,
            RegistryError::Protocol { .. } => None,
        }
    }
}

/// What the push-permission check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushCheck {
    /// The token's `access` claim grants push.
    Granted,
    /// An upload session was opened and cancelled.
    SessionOpened,
}

pub struct Registry {
    http: Http,
    host: String,
    base: String,
    credential: Option<Credential>,
}

/// The answer to an unauthenticated `GET /v2/`.
#[derive(Debug, Clone)]
pub struct Ping {
    pub url: String,
    pub status: u16,
    pub challenge: Challenge,
    pub api_version: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's own words from an OCI error body (`{"errors":[{"code","message"}]}`), or the raw body.
pub(super) fn error_detail(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().chars().take(300).collect(),
    }
}

impl Registry {
    pub fn new(http: Http, host: &str, credential: Option<Credential>) -> Self {
        let base = http.base_url(host);
        Self {
            http,
            host: host.to_string(),
            base,
            credential,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn user(&self) -> Option<&str> {
        self.credential.as_ref().map(|c| c.username.value.as_str())
    }

    fn transport(&self, source: TransportError) -> RegistryError {
        RegistryError::Transport {
            registry: self.host.clone(),
            source,
        }
    }

    pub async fn ping(&self) -> Result<Ping, RegistryError> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .http
            .send(|| self.http.client().get(&url))
            .await
            .map_err(|e| self.transport(e))?;
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let challenge = header(WWW_AUTHENTICATE.as_str())
            .map(|h| parse_challenge(&h))
            .unwrap_or(Challenge::Other(String::new()));
        Ok(Ping {
            url,
            status: resp.status().as_u16(),
            challenge,
            api_version: header("docker-distribution-api-version"),
        })
    }

    /// Prove the credentials work, returning the `Authorization` header value to use for `repository` with
    /// pull+push scope (None: anonymous access is all the registry wants).
    pub async fn authorize(
        &self,
        ping: &Ping,
        repository: &str,
    ) -> Result<Option<String>, RegistryError> {
        match (&ping.challenge, ping.status) {
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
                            .get(&ping.url)
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
            (Challenge::Bearer { realm, service }, _) => {
                let token = self
                    .fetch_token(realm, service.as_deref(), repository, "pull,push")
                    .await?;
                Ok(Some(format!("Bearer {token}")))
            }
            (Challenge::Other(h), s) => Err(RegistryError::Protocol {
                registry: self.host.clone(),
                what: "GET /v2/".into(),
                status: s,
                detail: format!("unsupported authentication challenge `{h}`"),
            }),
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        repository: &str,
        actions: &str,
    ) -> Result<String, RegistryError> {
        let scopes = super::session::scope(repository, actions);
        super::auth::fetch_token(
            &self.http,
            &self.host,
            realm,
            service,
            &scopes,
            self.credential.as_ref(),
        )
        .await
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
        let resp = self
            .http
            .send(|| {
                let req = self
                    .http
                    .client()
                    .post(&url)
                    .header(reqwest::header::CONTENT_LENGTH, "0");
                match auth {
                    Some(a) => req.header(AUTHORIZATION, a),
                    None => req,
                }
            })
            .await
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status == StatusCode::ACCEPTED {
            if let Some(loc) = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
            {
                let loc = if loc.starts_with("http") {
                    loc.to_string()
                } else {
                    format!("{}{loc}", self.base)
                };
                // Best effort: an abandoned session is purged by the registry anyway.
                let _ = self
                    .http
                    .send(|| {
                        let req = self.http.client().delete(&loc);
                        match auth {
                            Some(a) => req.header(AUTHORIZATION, a),
                            None => req,
                        }
                    })
                    .await;
            }
            return Ok(PushCheck::SessionOpened);
        }
        let body = resp.text().await.unwrap_or_default();
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
        let resp = self.http.client().get(&url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.json::<SystemInfo>().await.ok()?.harbor_version
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
        let detail = error_detail(&resp.text().await.unwrap_or_default());
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
        let detail = error_detail(&resp.text().await.unwrap_or_default());
        RegistryError::Protocol {
            registry: self.host.clone(),
            what: what.into(),
            status: status.as_u16(),
            detail,
        }
    }
}

fn basic(c: &Credential) -> String {
    use base64::Engine;
    let raw = format!("{}:{}", c.username.value, c.password.value.expose());
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Harbor answers a push into a missing project with `401 UNAUTHORIZED project X not found`.
pub(super) fn harbor_missing_project(detail: &str) -> Option<String> {
    let i = detail.find("project ")?;
    let rest = &detail[i + "project ".len()..];
    let (name, tail) = rest.split_once(' ')?;
    tail.starts_with("not found")
        .then(|| name.trim_matches(['"', '\'']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_harbors_missing_project_error() {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"project flows not found: project flows not found"}]}"#;
        assert_eq!(
            harbor_missing_project(&error_detail(body)).as_deref(),
            Some("flows")
        );
        assert_eq!(
            harbor_missing_project("UNAUTHORIZED authentication required"),
            None
        );
    }
}
