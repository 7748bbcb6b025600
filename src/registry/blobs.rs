//! Blobs on a registry session: existence, cross-repository mount, streamed upload (one PUT, or PATCH chunks
//! of a chosen size for proxies with body limits) and download. Manifests are `manifests`'.
//!
//! flowship drives the distribution API itself rather than through oci-client: its gaps (no retries, layers held
//! in memory, no existence check before upload, a fixed 4 MiB chunk, mount scope without the source repository,
//! a declined mount treated as an error) cover nearly every call on the push path (notes: oci-push.md §1).

use super::error::{RegistryError, error_detail, harbor_missing_project};
use super::session::{Session, scope};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub platform: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    /// An artifact's type, in an index of referrers.
    #[serde(
        rename = "artifactType",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// The descriptor of `bytes` as `media_type`, with nothing else set.
    pub fn of(media_type: &str, bytes: &[u8]) -> Self {
        Descriptor {
            media_type: media_type.into(),
            digest: super::digest::of(bytes),
            size: bytes.len() as u64,
            platform: None,
            annotations: None,
            artifact_type: None,
        }
    }
}

/// Where an upload's bytes come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, read in a stream (memory stays bounded whatever the layer size).
    File(PathBuf),
    /// Another repository on another registry, copied in a stream.
    Remote {
        session: std::sync::Arc<Session>,
        repository: String,
    },
}

/// How uploads go over the wire.
#[derive(Debug, Clone, Copy)]
pub enum UploadMode {
    /// `POST` + one streamed `PUT` (fewest round trips).
    Monolithic,
    /// `POST` + `PATCH` chunks of this many bytes + `PUT`, for proxies that cap request bodies.
    Chunked(u64),
}

pub(super) fn detail(body: &str) -> String {
    body.trim().chars().take(300).collect()
}

impl Session {
    pub(super) fn push_scope(repository: &str) -> String {
        scope(repository, "pull,push")
    }

    pub(super) async fn err(&self, what: String, resp: reqwest::Response) -> RegistryError {
        let status = resp.status().as_u16();
        let body = crate::http::error_text(resp).await;
        let text = error_detail(&body);
        if let Some(project) = harbor_missing_project(&text) {
            return RegistryError::ProjectNotFound {
                registry: self.host.clone(),
                project,
            };
        }
        if status == 401 || status == 403 {
            let user = self.user().unwrap_or("anonymous").to_string();
            return RegistryError::PushDenied {
                registry: self.host.clone(),
                repository: what,
                user,
                detail: text,
            };
        }
        RegistryError::Protocol {
            registry: self.host.clone(),
            what,
            status,
            detail: text,
        }
    }

    pub async fn blob_exists(&self, repository: &str, digest: &str) -> Result<bool, RegistryError> {
        self.blob_head(&Self::push_scope(repository), repository, digest)
            .await
    }

    /// Whether a pull-only account can read the blob (the cluster's, for the pull proof).
    pub async fn blob_pullable(
        &self,
        repository: &str,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        self.blob_head(&scope(repository, "pull"), repository, digest)
            .await
    }

    async fn blob_head(
        &self,
        scopes: &str,
        repository: &str,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let resp = self.send(scopes, |r| r, Method::HEAD, &url).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            // A HEAD answer has no body to explain a refusal (Harbor: "project X not found"); the upload that
            // follows gets the registry's full answer.
            StatusCode::NOT_FOUND | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Ok(false),
            _ => Err(self.err(format!("HEAD blob {digest}"), resp).await),
        }
    }

    /// Mount `digest` from `from` into `repository`. `false` when the registry declined (202: it opened an
    /// ordinary upload session instead, which is cancelled here); the caller then uploads.
    pub async fn mount(
        &self,
        repository: &str,
        digest: &str,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let scopes = format!("{} {}", Self::push_scope(repository), scope(from, "pull"));
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let resp = self
            .send(
                &scopes,
                |r| r.header(CONTENT_LENGTH, "0"),
                Method::POST,
                &url,
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                if let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
                    let loc = self.url(loc);
                    let _ = self
                        .send(&Self::push_scope(repository), |r| r, Method::DELETE, &loc)
                        .await;
                }
                Ok(false)
            }
            _ => Err(self
                .err(format!("mount of {digest} from {from}"), resp)
                .await),
        }
    }

    /// One upload attempt in a fresh session: `POST`, then the bytes, then `PUT ?digest=`.
    pub async fn upload_once(
        &self,
        repository: &str,
        digest: &str,
        size: u64,
        source: &Source,
        mode: UploadMode,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<(), RegistryError> {
        let scopes = Self::push_scope(repository);
        let start = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let resp = self
            .send(
                &scopes,
                |r| r.header(CONTENT_LENGTH, "0"),
                Method::POST,
                &start,
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.err(format!("POST upload of {digest}"), resp).await);
        }
        let mut location = self.location(&resp)?;
        match mode {
            UploadMode::Monolithic => {
                let body = self.body(source, digest, 0, size, progress).await?;
                let url = with_digest(&location, digest);
                let resp = self
                    .send_body(&scopes, Method::PUT, &url, body, size, None)
                    .await?;
                self.finish(digest, resp).await
            }
            UploadMode::Chunked(chunk) => {
                let mut offset = 0;
                let mut failures = 0;
                while offset < size {
                    let len = chunk.min(size - offset);
                    let body = self.body(source, digest, offset, len, progress).await?;
                    let range = format!("{}-{}", offset, offset + len - 1);
                    let sent = self
                        .send_body(&scopes, Method::PATCH, &location, body, len, Some(&range))
                        .await;
                    match sent {
                        Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                            location = self.location(&resp)?;
                            offset += len;
                            failures = 0;
                        }
                        // Resume instead of starting over: ask the registry how much of the upload it has.
                        Ok(resp) if resumable(resp.status()) && failures < resume_attempts() => {
                            failures += 1;
                            self.http.note_transient();
                            (location, offset) =
                                self.resume_point(&scopes, &location, failures).await?;
                        }
                        Err(RegistryError::Transport { .. }) if failures < resume_attempts() => {
                            failures += 1;
                            self.http.note_transient();
                            (location, offset) =
                                self.resume_point(&scopes, &location, failures).await?;
                        }
                        Ok(resp) => {
                            return Err(self.err(format!("PATCH upload of {digest}"), resp).await);
                        }
                        Err(e) => return Err(e),
                    }
                }
                let url = with_digest(&location, digest);
                let resp = self
                    .send_body(
                        &scopes,
                        Method::PUT,
                        &url,
                        reqwest::Body::from(Vec::new()),
                        0,
                        None,
                    )
                    .await?;
                self.finish(digest, resp).await
            }
        }
    }

    async fn finish(&self, digest: &str, resp: reqwest::Response) -> Result<(), RegistryError> {
        if resp.status() != StatusCode::CREATED {
            return Err(self.err(format!("PUT upload of {digest}"), resp).await);
        }
        // The registry computed the digest of what it received; a mismatch would have been 400 DIGEST_INVALID.
        if let Some(d) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            && d != digest
        {
            return Err(RegistryError::Protocol {
                registry: self.host.clone(),
                what: format!("upload of {digest}"),
                status: 201,
                detail: format!("registry stored {d}"),
            });
        }
        Ok(())
    }

    fn location(&self, resp: &reqwest::Response) -> Result<String, RegistryError> {
        resp.headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| self.url(l))
            .ok_or_else(|| RegistryError::Protocol {
                registry: self.host.clone(),
                what: "upload session".into(),
                status: 202,
                detail: "no Location".into(),
            })
    }

    /// A request with a streamed body: sent once (a stream cannot be replayed), with a fresh token on 401.
    async fn send_body(
        &self,
        scopes: &str,
        method: Method,
        url: &str,
        body: reqwest::Body,
        len: u64,
        range: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut req = self
            .http
            .client()
            .request(method, url)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len);
        if let Some(r) = range {
            req = req.header(CONTENT_RANGE, r);
        }
        if let Some(a) = self.authorization_for(scopes, url).await? {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        let resp = self
            .http
            .send_once(req.body(body))
            .await
            .map_err(|source| RegistryError::Transport {
                registry: self.host.clone(),
                source,
            })?;
        // A token can expire in the middle of a long upload (Harbor's last 30 minutes): the body is gone, so
        // drop the token and let the upload start again in a fresh session, with a fresh token.
        if resp.status() == StatusCode::UNAUTHORIZED {
            self.forget_token(scopes).await;
            return Err(RegistryError::TokenExpired {
                registry: self.host.clone(),
            });
        }
        Ok(resp)
    }

    /// `len` bytes of the blob from `offset`.
    async fn body(
        &self,
        source: &Source,
        digest: &str,
        offset: u64,
        len: u64,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<reqwest::Body, RegistryError> {
        use futures_util::StreamExt;
        let bar = progress.cloned();
        // Counts the bytes as the body is sent (a no-op without a terminal).
        let count = move |n: usize| {
            if let Some(b) = &bar {
                b.inc(n as u64);
            }
        };
        match source {
            Source::File(path) => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let io = |e: std::io::Error| RegistryError::Protocol {
                    registry: self.host.clone(),
                    what: path.display().to_string(),
                    status: 0,
                    detail: e.to_string(),
                };
                let mut f = tokio::fs::File::open(path).await.map_err(io)?;
                f.seek(std::io::SeekFrom::Start(offset)).await.map_err(io)?;
                let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 * 1024)
                    .inspect(move |r| {
                        if let Ok(b) = r {
                            count(b.len());
                        }
                    });
                Ok(reqwest::Body::wrap_stream(stream))
            }
            Source::Remote {
                session,
                repository,
            } => {
                let resp = session
                    .blob_get(
                        repository,
                        digest,
                        (offset > 0 || len > 0).then_some((offset, len)),
                    )
                    .await?;
                let stream = resp.bytes_stream().inspect(move |r| {
                    if let Ok(b) = r {
                        count(b.len());
                    }
                });
                Ok(reqwest::Body::wrap_stream(stream))
            }
        }
    }

    /// `GET` a blob, following the registry's redirect to its storage (without our credentials).
    pub async fn blob_get(
        &self,
        repository: &str,
        digest: &str,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let range_header = range.map(|(o, l)| format!("bytes={}-{}", o, o + l.max(1) - 1));
        let resp = self
            .send(
                &scope(repository, "pull"),
                |r| match &range_header {
                    Some(h) => r.header(reqwest::header::RANGE, h),
                    None => r,
                },
                Method::GET,
                &url,
            )
            .await?;
        if resp.status().is_redirection() {
            let loc = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let mut req = self.http.client().get(&loc);
            if let Some(h) = &range_header {
                req = req.header(reqwest::header::RANGE, h);
            }
            let resp =
                self.http
                    .send_once(req)
                    .await
                    .map_err(|source| RegistryError::Transport {
                        registry: self.host.clone(),
                        source,
                    })?;
            return if resp.status().is_success() {
                Ok(resp)
            } else {
                Err(self.err(format!("GET blob {digest}"), resp).await)
            };
        }
        if !resp.status().is_success() {
            return Err(self.err(format!("GET blob {digest}"), resp).await);
        }
        Ok(resp)
    }

    /// A small blob (an image config, a cache record) in memory, checked against its digest and bounded in
    /// size: a registry cannot make flowship hold more than `limit` bytes, nor hand it other bytes.
    pub async fn blob_bytes(
        &self,
        repository: &str,
        digest: &str,
        limit: usize,
    ) -> Result<Vec<u8>, RegistryError> {
        let resp = self.blob_get(repository, digest, None).await?;
        let bytes = self
            .bounded(resp, limit, &format!("blob {repository}@{digest}"))
            .await?;
        let actual = super::digest::of(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.host.clone(),
                what: format!("blob {repository}@{digest}"),
                expected: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// A response body, refused beyond `limit` bytes.
    pub(super) async fn bounded(
        &self,
        mut resp: reqwest::Response,
        limit: usize,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let fail = |detail: String| RegistryError::Protocol {
            registry: self.host.clone(),
            what: what.into(),
            status: 200,
            detail,
        };
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            if out.len() + chunk.len() > limit {
                return Err(fail(format!("larger than {limit} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

/// Image configs and records flowship reads whole.
pub const MAX_CONFIG: usize = 16 << 20;

fn resumable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// Chunks retried in place (each after asking the registry where the upload stands) before the whole
/// upload starts over in a fresh session.
fn resume_attempts() -> u32 {
    8
}

impl Session {
    /// `GET` the upload session: the registry answers `204` with `Range: 0-<last byte>` and a fresh
    /// `Location`; the upload continues from the byte after.
    async fn resume_point(
        &self,
        scopes: &str,
        location: &str,
        attempt: u32,
    ) -> Result<(String, u64), RegistryError> {
        tokio::time::sleep(crate::http::Policy::new(0).backoff(attempt)).await;
        let resp = self.send(scopes, |r| r, Method::GET, location).await?;
        if resp.status() != StatusCode::NO_CONTENT {
            return Err(self.err("upload status".into(), resp).await);
        }
        let next = self.location(&resp)?;
        let range = resp
            .headers()
            .get(reqwest::header::RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let offset = match range.split_once('-') {
            // The distribution registry answers `0-0` for an upload that has nothing yet (it cannot say
            // "no bytes" in this form). A chunk is never one byte, so `0-0` is an empty upload: resuming at
            // byte 1 would drop the blob's first byte (DIGEST_INVALID at the final PUT).
            Some(("0", "0")) => 0,
            Some((_, end)) => end.parse::<u64>().map_or(0, |e| e + 1),
            None => 0,
        };
        tracing::debug!(offset, "resuming upload");
        Ok((next, offset))
    }
}

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}
