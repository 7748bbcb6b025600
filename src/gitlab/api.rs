//! GitLab's REST API: merge requests, for `bump --merge-request`. `PRIVATE-TOKEN` auth (a project or group
//! access token with `api` scope); `CI_JOB_TOKEN` cannot create merge requests (GitLab allows it GET only).

use crate::http::{Http, TransportError};
use crate::secret::Secret;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum GitlabError {
    #[error("GitLab API {url}: {source}")]
    Transport { url: String, source: TransportError },
    #[error("GitLab API rejected the token (401)")]
    Unauthorized,
    #[error("GitLab API: project `{project}` not found (or the token cannot see it)")]
    ProjectNotFound { project: String },
    #[error("GitLab API answered {status} to {what}: {detail}")]
    Api {
        what: String,
        status: u16,
        detail: String,
    },
}

impl GitlabError {
    pub fn hint(&self) -> Option<String> {
        match self {
            GitlabError::Transport { source, .. } => source.hint(),
            GitlabError::Unauthorized => Some("check FLOWSHIP_GITLAB_TOKEN: an access token with the `api` scope".into()),
            GitlabError::ProjectNotFound { .. } => Some(
                "set FLOWSHIP_GITLAB_PROJECT to the GitOps project's path (group/project) and give the token access".into(),
            ),
            GitlabError::Api { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MergeRequest {
    pub iid: u64,
    pub web_url: String,
    #[serde(default)]
    pub state: String,
}

#[derive(Clone)]
pub struct Gitlab {
    http: Http,
    base: String,
    token: Secret,
}

impl Gitlab {
    pub fn new(http: Http, api_url: &str, token: Secret) -> Self {
        Self {
            http,
            base: api_url.trim_end_matches('/').to_string(),
            token,
        }
    }

    fn project_url(&self, project: &str) -> String {
        let id: String = url::form_urlencoded::byte_serialize(project.as_bytes()).collect();
        format!("{}/projects/{id}/merge_requests", self.base)
    }

    async fn check(
        &self,
        what: &str,
        project: &str,
        resp: reqwest::Response,
    ) -> Result<reqwest::Response, GitlabError> {
        match resp.status() {
            s if s.is_success() => Ok(resp),
            StatusCode::UNAUTHORIZED => Err(GitlabError::Unauthorized),
            StatusCode::NOT_FOUND => Err(GitlabError::ProjectNotFound {
                project: project.into(),
            }),
            s => Err(GitlabError::Api {
                what: what.into(),
                status: s.as_u16(),
                detail: crate::http::error_text(resp).await,
            }),
        }
    }

    /// Open a merge request, or return the one already open for `source` (GitLab answers 409 to a second).
    pub async fn ensure_merge_request(
        &self,
        project: &str,
        source: &str,
        target: &str,
        title: &str,
        description: &str,
    ) -> Result<(MergeRequest, bool), GitlabError> {
        let url = self.project_url(project);
        let body = serde_json::json!({
            "source_branch": source, "target_branch": target, "title": title,
            "description": description, "remove_source_branch": true,
        });
        let transport = |source| GitlabError::Transport {
            url: self.base.clone(),
            source,
        };
        let resp = self
            .http
            .send(|| {
                self.http
                    .client()
                    .post(&url)
                    .header("PRIVATE-TOKEN", self.token.expose())
                    .json(&body)
            })
            .await
            .map_err(transport)?;
        if resp.status() != StatusCode::CONFLICT {
            let resp = self.check("POST merge_requests", project, resp).await?;
            let mr = crate::http::json(resp)
                .await
                .map_err(|e| GitlabError::Api {
                    what: "POST merge_requests".into(),
                    status: 201,
                    detail: e.to_string(),
                })?;
            return Ok((mr, true));
        }
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", "opened")
            .append_pair("source_branch", source)
            .finish();
        let list_url = format!("{url}?{q}");
        let resp = self
            .http
            .send(|| {
                self.http
                    .client()
                    .get(&list_url)
                    .header("PRIVATE-TOKEN", self.token.expose())
            })
            .await
            .map_err(transport)?;
        let resp = self.check("GET merge_requests", project, resp).await?;
        let list: Vec<MergeRequest> =
            crate::http::json(resp)
                .await
                .map_err(|e| GitlabError::Api {
                    what: "GET merge_requests".into(),
                    status: 200,
                    detail: e.to_string(),
                })?;
        list.into_iter()
            .next()
            .map(|mr| (mr, false))
            .ok_or_else(|| GitlabError::Api {
                what: "POST merge_requests".into(),
                status: 409,
                detail: format!(
                    "GitLab reports an open merge request for `{source}`, but lists none"
                ),
            })
    }
}

/// The API client and project path a merge request is opened with, when the API is configured (URL and
/// token); `None` means GitLab's push options instead. A plain-HTTP API URL not listed is refused now,
/// before anything is pushed: the merge request comes after the push.
pub fn for_merge_requests(
    settings: &crate::settings::Settings,
    repo_url: &str,
) -> Result<Option<(Gitlab, String)>, crate::error::Error> {
    use crate::error::Error;
    let (Some(url), Some(token)) = (&settings.gitlab.api_url, &settings.gitlab.token) else {
        return Ok(None);
    };
    let project = match &settings.gitlab.project {
        Some(p) => p.value.clone(),
        None => project_from_url(repo_url).ok_or_else(|| Error::Usage {
            message: "cannot tell the GitOps project's path from its URL".into(),
            hint: Some("set FLOWSHIP_GITLAB_PROJECT (group/project)".into()),
        })?,
    };
    let http = crate::http::Http::new(&settings.http_config())?;
    if let Ok(parsed) = url::Url::parse(&url.value)
        && let Err(e) = http.check_url(&parsed)
    {
        return Err(Error::Usage {
            message: format!("{}: {e}", url.source),
            hint: e.hint(),
        });
    }
    Ok(Some((
        Gitlab::new(http, &url.value, token.value.clone()),
        project,
    )))
}

/// `group/project` from `https://host/group/project.git` or `git@host:group/project.git`.
pub fn project_from_url(url: &str) -> Option<String> {
    let path = match url::Url::parse(url) {
        Ok(u) if u.has_host() => u.path().to_string(),
        _ => url.split_once(':')?.1.to_string(),
    };
    let p = path.trim_matches('/').trim_end_matches(".git").to_string();
    (!p.is_empty()).then_some(p)
}
