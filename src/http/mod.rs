//! The one place that builds HTTP clients and sends requests with retries. Owns: TLS trust (rustls + ring,
//! extra CAs), plain-HTTP permission (only for hosts named by `--plain-http`), timeouts, retry/backoff, and
//! turning transport failures into errors a user can act on. Must not know any service's API.

pub mod gate;
mod retry;
mod tls;

pub use retry::{Policy, is_transient, retry_after};
pub use tls::{CaFileError, root_store};

use crate::source::Sourced;
use reqwest::{RequestBuilder, Response};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const USER_AGENT: &str = concat!("flowship/", env!("CARGO_PKG_VERSION"));

/// What every client is built from (resolved by `settings`).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Extra CA bundles, with where each was configured (for errors).
    pub ca_files: Vec<Sourced<PathBuf>>,
    /// `host:port` pairs that may be spoken to over plain HTTP (and `git://`). Nothing else ever is.
    pub plain_http: Vec<String>,
    pub retries: u32,
    pub timeout: Duration,
}

impl Config {
    /// Is plain (unencrypted) transport to `host:port` allowed?
    pub fn allows_plain(&self, host_port: &str) -> bool {
        self.plain_http
            .iter()
            .any(|p| p.eq_ignore_ascii_case(host_port))
    }
}

/// One `reqwest::Client` per trust configuration for the whole run: every operation that asks for a client
/// (a release asks in several places) gets the same one, so the system's root store is loaded and parsed
/// once, and connections to the same host are pooled across the run's steps. Keyed by what the client is
/// built from (the extra CA files and the timeout); plain-HTTP permission and retries stay per [`Http`].
fn shared_client(config: &Config) -> Result<reqwest::Client, CaFileError> {
    type Key = (Vec<PathBuf>, Duration);
    static CLIENTS: std::sync::Mutex<Vec<(Key, reqwest::Client)>> =
        std::sync::Mutex::new(Vec::new());
    let key: Key = (
        config.ca_files.iter().map(|c| c.value.clone()).collect(),
        config.timeout,
    );
    let mut clients = CLIENTS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, c)) = clients.iter().find(|(k, _)| *k == key) {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls::client_config(&config.ca_files)?)
        .user_agent(USER_AGENT)
        .connect_timeout(config.timeout)
        .read_timeout(config.timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        // Redirects would carry Authorization to wherever they point; registries redirect blob GETs to
        // storage, which callers handle themselves.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client from a valid rustls config always builds");
    clients.push((key, client.clone()));
    Ok(client)
}

/// `host:port` of a URL, with the scheme's default port when it names none.
pub fn host_port(url: &url::Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default().or(match url.scheme() {
        "git" => Some(9418),
        _ => None,
    })?;
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    policy: Policy,
    plain_http: Vec<String>,
    /// Transient answers (busy, rate-limited, gateway) and retried transport failures seen so far: callers
    /// that run requests in parallel read it to back off (see `register`).
    transient: Arc<AtomicU64>,
}

/// A request that never got an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("the TLS certificate of {url} is not trusted: {detail}")]
    Untrusted { url: String, detail: String },
    #[error("TLS with {url} failed: {detail}")]
    Tls { url: String, detail: String },
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    #[error("{url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error(
        "refusing plain HTTP to {host_port} ({url}): only hosts named by --plain-http are spoken to unencrypted"
    )]
    PlainHttp { url: String, host_port: String },
    #[error("request to {url} failed: {detail}")]
    Other { url: String, detail: String },
}

impl TransportError {
    pub fn hint(&self) -> Option<String> {
        match self {
            TransportError::Untrusted { detail, .. } if detail.contains("CaUsedAsEndEntity") => Some(
                "the server presents a self-signed CA certificate as its own; serve a leaf certificate signed by a CA, \
                 and pass that CA with --ca-file"
                    .into(),
            ),
            TransportError::Untrusted { .. } => {
                Some("trust the server's CA with --ca-file FILE (or FLOWSHIP_CA_FILE, CI_SERVER_TLS_CA_FILE, SSL_CERT_FILE)".into())
            }
            TransportError::Tls { url, .. } if url.starts_with("https://") => Some(
                "if this server speaks plain HTTP (a local registry), allow it with --plain-http HOST:PORT".into(),
            ),
            TransportError::Connect { .. } => Some("check the URL, that the service is running, and the network path to it".into()),
            TransportError::Timeout { .. } => Some("raise FLOWSHIP_HTTP_TIMEOUT_SECS if the server is just slow".into()),
            TransportError::PlainHttp { host_port, .. } => Some(format!(
                "use https://, or allow this exact host with --plain-http {host_port} (or FLOWSHIP_PLAIN_HTTP={host_port}, tls.plain_http)"
            )),
            _ => None,
        }
    }
}

impl TransportError {
    /// A refusal by configuration (plain HTTP to an unlisted host): bad usage, not a service failure.
    pub fn is_config(&self) -> bool {
        matches!(self, TransportError::PlainHttp { .. })
    }
}

impl Http {
    pub fn new(config: &Config) -> Result<Self, CaFileError> {
        let client = shared_client(config)?;
        Ok(Self {
            client,
            policy: Policy::new(config.retries),
            plain_http: config
                .plain_http
                .iter()
                .map(|p| p.to_ascii_lowercase())
                .collect(),
            transient: Arc::default(),
        })
    }

    /// For building requests; they are sent through [`Http::send`] or [`Http::send_once`], which apply the
    /// plain-HTTP rule to every URL (tokens realms, upload locations and storage redirects included).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The one rule for unencrypted transport: `http://` only to a listed `host:port`.
    pub fn check_url(&self, url: &url::Url) -> Result<(), TransportError> {
        if url.scheme() != "http" {
            return Ok(());
        }
        let hp = host_port(url).unwrap_or_default();
        if self.plain_http.iter().any(|p| p.eq_ignore_ascii_case(&hp)) {
            return Ok(());
        }
        Err(TransportError::PlainHttp {
            url: crate::secret::redact_url(url.as_str()),
            host_port: hp,
        })
    }

    pub fn transient_count(&self) -> u64 {
        self.transient.load(Ordering::Relaxed)
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `https://host:port`, or `http://` when the user named this exact `host:port` with `--plain-http`.
    pub fn base_url(&self, host_port: &str) -> String {
        let scheme = if self
            .plain_http
            .iter()
            .any(|p| p.eq_ignore_ascii_case(host_port))
        {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host_port}")
    }

    /// One attempt, for callers that retry at a higher level (a blob upload retries with a fresh session).
    pub async fn send_once(&self, req: RequestBuilder) -> Result<Response, TransportError> {
        let req = req.build().map_err(|e| TransportError::Other {
            url: String::new(),
            detail: e.to_string(),
        })?;
        self.check_url(req.url())?;
        let url = req.url().to_string();
        self.client
            .execute(req)
            .await
            .map_err(|e| classify(&e, &url, self.policy.max_delay))
    }

    /// Count a transient failure a caller retried itself (for adaptive concurrency).
    pub fn note_transient(&self) {
        self.transient.fetch_add(1, Ordering::Relaxed);
    }

    /// Send with retries on transport failures and transient statuses. `build` makes a fresh request for each
    /// attempt (bodies are consumed by sending). A transient status on the last attempt is returned as the
    /// response, for the caller's own error message.
    pub async fn send(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, TransportError> {
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            let req = build().build().map_err(|e| TransportError::Other {
                url: String::new(),
                detail: e.to_string(),
            })?;
            let url = req.url().clone();
            self.check_url(&url)?;
            // A read may also be retried on a 500: the CNCF registry's filesystem driver answers one to a
            // HEAD racing a concurrent upload of the same blob ("invalid checksum digest format").
            let read = matches!(*req.method(), reqwest::Method::GET | reqwest::Method::HEAD);
            let result = self.client.execute(req).await;
            let last = attempt >= self.policy.retries || start.elapsed() >= self.policy.budget;
            let (wait, status) = match result {
                Ok(resp)
                    if (is_transient(resp.status()) || (read && resp.status().as_u16() == 500))
                        && !last =>
                {
                    let wait = retry_after(resp.headers()).map(|d| d.min(self.policy.max_delay));
                    (
                        wait.unwrap_or_else(|| self.policy.backoff(attempt)),
                        Some(resp.status().as_u16()),
                    )
                }
                Ok(resp) => return Ok(resp),
                Err(e) if !last && retryable(&e) => (self.policy.backoff(attempt), None),
                Err(e) => return Err(classify(&e, url.as_str(), self.policy.max_delay)),
            };
            self.transient.fetch_add(1, Ordering::Relaxed);
            say_retry(
                url.host_str().unwrap_or("the server"),
                &status.map_or("with a transport failure".to_string(), |s| s.to_string()),
                wait,
                attempt + 1,
                self.policy.retries,
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }
}

/// Every retry flowship makes is said at the default level (`HOST answered 503; retrying in 1.2 s (retry 1
/// of 5)`): a slow run that is riding out a busy server should say so, not look hung or hide a flaky service.
pub fn say_retry(host: &str, answer: &str, wait: Duration, retry: u32, of: u32) {
    tracing::warn!(
        "{host} answered {answer}; retrying in {:.1} s (retry {retry} of {of})",
        wait.as_secs_f64()
    );
}

fn retryable(e: &reqwest::Error) -> bool {
    // A certificate problem does not heal by waiting.
    !matches!(
        classify(e, "", Duration::ZERO),
        TransportError::Untrusted { .. } | TransportError::Tls { .. }
    )
}

/// Walk the error's causes to find out what really happened: rustls certificate errors, refused connections,
/// timeouts. reqwest's own message ("error sending request") says none of it.
pub fn classify(e: &reqwest::Error, url: &str, timeout: Duration) -> TransportError {
    let url = crate::secret::redact_url(url);
    if let Some(tls) = find_rustls(e) {
        return match tls {
            rustls::Error::InvalidCertificate(cert) => TransportError::Untrusted {
                url,
                detail: format!("{cert:?}"),
            },
            other => TransportError::Tls {
                url,
                detail: other.to_string(),
            },
        };
    }
    let mut deepest = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        deepest = c.to_string();
        cause = c.source();
    }
    if e.is_timeout() {
        return TransportError::Timeout {
            url,
            secs: timeout.as_secs(),
        };
    }
    if e.is_connect() {
        // A TLS client talking to a plain-HTTP server sees garbage, not a certificate.
        if deepest.contains("InvalidContentType") || deepest.contains("corrupt message") {
            return TransportError::Tls {
                url,
                detail: deepest,
            };
        }
        return TransportError::Connect {
            url,
            detail: deepest,
        };
    }
    TransportError::Other {
        url,
        detail: deepest,
    }
}

/// The rustls error behind a request failure. hyper wraps it in `io::Error`s (twice, as of hyper-rustls 0.27),
/// and `io::Error::source` skips the wrapped error, so descend through `get_ref` as well as `source`.
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(t) = e.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && let Some(t) = find_rustls(inner)
    {
        return Some(t);
    }
    e.source().and_then(find_rustls)
}

/// The most flowship reads of an answer it parses (a token, an API page, a referrers list): 16 MiB. A server
/// that sends more (hostile, or broken) gets an error, not flowship's memory.
pub const MAX_BODY: usize = 16 << 20;
/// The most of an error answer kept for a message.
pub const MAX_ERROR_BODY: usize = 64 << 10;

/// The one bounded body reader: an answer's bytes, streamed, refused past `max`.
pub async fn body(resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("the answer is larger than {} MiB", max >> 20));
    }
    let mut resp = resp;
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {} MiB", max >> 20));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An error answer's text, for a message: at most [`MAX_ERROR_BODY`] of it, never an error itself.
pub async fn error_text(resp: reqwest::Response) -> String {
    let mut resp = resp;
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSON answer, read through [`body`].
pub async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, String> {
    let bytes = body(resp, MAX_BODY).await?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}
