//! A git remote reached through libgit2: HTTPS with a token, SSH with a deploy key, `git://`, local paths.
//!
//! Two libgit2 traps are handled here once for every caller:
//! - libgit2 calls the credentials callback again after every 401, so a wrong token loops forever; we answer
//!   once per operation and fail the second call with a clear error.
//! - libgit2 (OpenSSL) does not read our CA settings; the certificate callback verifies the server's leaf
//!   certificate with rustls against the same trust as every HTTP client (system store + `--ca-file` etc.),
//!   and otherwise leaves the decision to libgit2's own verification.

use crate::secret::{Secret, redact_url};
use git2::{CertificateCheckStatus, Cred, CredentialType, Direction, RemoteCallbacks};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git remote {url}: credentials rejected{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    BadCredentials { url: String, detail: String },
    #[error("git remote {url} needs credentials, and none were found")]
    NeedsCredentials { url: String },
    #[error("git remote {url}: TLS certificate not trusted: {detail}")]
    Untrusted { url: String, detail: String },
    #[error("git remote {url} cannot be reached: {detail}")]
    Connect { url: String, detail: String },
    #[error("git remote {url}: {detail}")]
    HostKey { url: String, detail: String },
    #[error("git remote {url} refuses pushes: {detail}")]
    PushDenied { url: String, detail: String },
    #[error(
        "refusing unencrypted git transport to {host_port} ({url}): only hosts named by --plain-http are spoken to in plain"
    )]
    PlainTransport { url: String, host_port: String },
    #[error(transparent)]
    Trust(#[from] crate::http::CaFileError),
    #[error("git remote {url}: {detail}")]
    Other { url: String, detail: String },
}

impl GitError {
    pub fn hint(&self) -> Option<String> {
        match self {
            GitError::BadCredentials { .. } => Some(
                "check FLOWSHIP_GIT_TOKEN: a GitLab project or group access token with write_repository \
                 (CI_JOB_TOKEN cannot push to another project); the user name is FLOWSHIP_GIT_USERNAME, default oauth2"
                    .into(),
            ),
            GitError::NeedsCredentials { .. } => {
                Some("set FLOWSHIP_GIT_TOKEN (HTTPS) or FLOWSHIP_GIT_SSH_KEY_FILE (SSH deploy key)".into())
            }
            GitError::Untrusted { .. } => {
                Some("trust the server's CA with --ca-file FILE (or FLOWSHIP_CA_FILE, CI_SERVER_TLS_CA_FILE, SSL_CERT_FILE)".into())
            }
            GitError::Connect { .. } => Some("check the repository URL and that the git server is reachable".into()),
            GitError::PushDenied { .. } => Some("the token or deploy key needs write access (write_repository)".into()),
            GitError::HostKey { .. } => Some(
                "add the server's key to FLOWSHIP_GIT_SSH_KNOWN_HOSTS (`ssh-keyscan -p PORT HOST`), after checking it out of band".into(),
            ),
            GitError::PlainTransport { host_port, .. } => Some(format!(
                "use https:// or ssh://, or allow this exact host with --plain-http {host_port} (or FLOWSHIP_PLAIN_HTTP={host_port})"
            )),
            GitError::Trust(_) => Some("give a PEM file with one or more `-----BEGIN CERTIFICATE-----` blocks".into()),
            GitError::Other { .. } => None,
        }
    }

    /// Refused by configuration before anything was sent: bad usage (exit 2), not a failed operation.
    pub fn is_config(&self) -> bool {
        matches!(self, GitError::PlainTransport { .. } | GitError::Trust(_))
    }
}

/// What an [`Access`] is made from (resolved by `settings`).
pub struct AccessConfig {
    pub url: String,
    pub username: String,
    pub token: Option<Secret>,
    pub ssh_key: Option<Secret>,
    pub known_hosts: Option<std::path::PathBuf>,
    pub http: crate::http::Config,
}

impl Access {
    /// Run a network operation again on a connection failure (an SSH server dropping connections beyond
    /// its MaxStartups answers "Failed getting banner"; a load balancer resets one), with the HTTP layer's
    /// backoff and budget. Anything else is returned at once.
    pub fn retrying<T>(&self, mut op: impl FnMut() -> Result<T, GitError>) -> Result<T, GitError> {
        let start = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            match op() {
                Err(GitError::Connect { .. })
                    if attempt < self.policy.retries && start.elapsed() < self.policy.budget =>
                {
                    std::thread::sleep(self.policy.backoff(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// `(host, raw public key)` pairs from a known_hosts file.
type KnownHosts = Vec<(String, Vec<u8>)>;

/// How to authenticate and whom to trust, for every libgit2 network operation.
#[derive(Clone)]
pub struct Access {
    url: String,
    username: String,
    token: Option<Secret>,
    ssh_key: Option<Secret>,
    roots: Arc<RootCertStore>,
    /// Host keys from `FLOWSHIP_GIT_SSH_KNOWN_HOSTS`: `(host, key bytes)`. `None`: libgit2's own check.
    known_hosts: Option<Arc<KnownHosts>>,
    policy: crate::http::Policy,
}

impl Access {
    /// Refuses (before any connection) a plain `http://` or `git://` remote whose `host:port` is not listed
    /// with `--plain-http`: the same rule the HTTP layer applies to every other service.
    pub fn new(c: AccessConfig) -> Result<Self, GitError> {
        if let Ok(u) = url::Url::parse(&c.url)
            && matches!(u.scheme(), "http" | "git")
        {
            let hp = crate::http::host_port(&u).unwrap_or_default();
            if !c.http.allows_plain(&hp) {
                return Err(GitError::PlainTransport {
                    url: redact_url(&c.url),
                    host_port: hp,
                });
            }
        }
        Ok(Self {
            roots: Arc::new(crate::http::root_store(&c.http.ca_files)?),
            known_hosts: c
                .known_hosts
                .as_deref()
                .map(|p| Arc::new(read_known_hosts(p))),
            policy: crate::http::Policy::new(c.http.retries),
            url: c.url,
            username: c.username,
            token: c.token,
            ssh_key: c.ssh_key,
        })
    }

    /// The remote's URL as given to libgit2 (credentials never in it).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Callbacks for one operation. `attempts` counts credential requests, so the caller can tell
    /// "rejected" from "never asked".
    pub fn callbacks(&self, attempts: Arc<AtomicU32>) -> RemoteCallbacks<'static> {
        let mut cb = RemoteCallbacks::new();
        let me = self.clone();
        let configured = origin(&self.url);
        cb.credentials(move |url, username_from_url, allowed| {
            // Credentials go only where they were configured: libgit2 asks with the URL it really talks to,
            // after redirects and `url.*.insteadOf` rewrites; another scheme, host or port gets none.
            if origin(url) != configured {
                return Err(git2::Error::from_str(&format!(
                    "flowship: no credentials for {} (they belong to {})",
                    redact_url(url),
                    configured
                        .as_ref()
                        .map(|(s, h, p)| format!("{s}://{h}:{p}"))
                        .unwrap_or_default()
                )));
            }
            if attempts.fetch_add(1, Ordering::SeqCst) >= 1 {
                return Err(git2::Error::from_str("flowship: credentials rejected"));
            }
            if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
                return match &me.token {
                    Some(t) => Cred::userpass_plaintext(&me.username, t.expose()),
                    None => Err(git2::Error::from_str("flowship: no credentials")),
                };
            }
            if allowed.contains(CredentialType::SSH_KEY) {
                let user = username_from_url.unwrap_or("git");
                return match &me.ssh_key {
                    Some(k) => Cred::ssh_key_from_memory(user, None, k.expose(), None),
                    None => Err(git2::Error::from_str("flowship: no credentials")),
                };
            }
            if allowed.contains(CredentialType::USERNAME) {
                return Cred::username(username_from_url.unwrap_or("git"));
            }
            Err(git2::Error::from_str("flowship: no credentials"))
        });
        let roots = self.roots.clone();
        let known = self.known_hosts.clone();
        cb.certificate_check(move |cert, host| {
            // SSH: with a known_hosts file, the server's key must be in it; without, libgit2 decides.
            if let (Some(hk), Some(known)) = (cert.as_hostkey(), &known) {
                let key = hk.hostkey().unwrap_or_default();
                let for_host: Vec<&Vec<u8>> = known
                    .iter()
                    .filter(|(h, _)| h == host)
                    .map(|(_, k)| k)
                    .collect();
                return if for_host.iter().any(|k| k.as_slice() == key) {
                    Ok(CertificateCheckStatus::CertificateOk)
                } else if for_host.is_empty() {
                    Err(git2::Error::from_str(&format!(
                        "flowship: SSH host {host} is not in the known_hosts file"
                    )))
                } else {
                    Err(git2::Error::from_str(&format!(
                        "flowship: SSH host key of {host} does not match the known_hosts file"
                    )))
                };
            }
            let Some(x509) = cert.as_x509() else {
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            if verify_leaf(&roots, x509.data(), host) {
                Ok(CertificateCheckStatus::CertificateOk)
            } else {
                Ok(CertificateCheckStatus::CertificatePassthrough)
            }
        });
        cb
    }

    /// Connect in `direction` and list the remote's refs. A push-direction connect asks the server for
    /// receive-pack, which it grants only to accounts that may write: a permission check without a push.
    pub fn list_refs(&self, direction: Direction) -> Result<Vec<String>, GitError> {
        Ok(self
            .list_ref_ids(direction)?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    /// The remote's refs with the commits they point at (`ls-remote`).
    pub fn list_ref_ids(&self, direction: Direction) -> Result<Vec<(String, git2::Oid)>, GitError> {
        let attempts = Arc::new(AtomicU32::new(0));
        let mut remote = git2::Remote::create_detached(self.url.as_str())
            .map_err(|e| self.classify(e, &attempts, direction))?;
        let conn = remote.connect_auth(direction, Some(self.callbacks(attempts.clone())), None);
        let conn = conn.map_err(|e| self.classify(e, &attempts, direction))?;
        let refs = conn
            .list()
            .map_err(|e| self.classify(e, &attempts, direction))?;
        Ok(refs
            .iter()
            .map(|h| (h.name().to_string(), h.oid()))
            .collect())
    }

    pub fn classify(&self, e: git2::Error, attempts: &AtomicU32, direction: Direction) -> GitError {
        let url = self.display_url();
        let msg = e.message().to_string();
        let asked = attempts.load(Ordering::SeqCst);
        // libgit2 replaces the certificate callback's message with its own for SSH.
        if msg.contains("flowship: SSH host") || msg.contains("ssh hostkey") {
            return GitError::HostKey {
                url,
                detail:
                    "the SSH server's host key is not in, or does not match, the known_hosts file"
                        .into(),
            };
        }
        if let Some(i) = msg.find("flowship: no credentials for") {
            let detail = msg[i + "flowship: ".len()..]
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string();
            return GitError::Other {
                url,
                detail: format!(
                    "{detail}: the remote redirected, or git configuration (url.*.insteadOf) rewrote it; nothing was sent"
                ),
            };
        }
        if msg.contains("flowship: no credentials") {
            return GitError::NeedsCredentials { url };
        }
        if msg.contains("flowship: credentials rejected") || e.code() == git2::ErrorCode::Auth {
            return GitError::BadCredentials {
                url,
                detail: String::new(),
            };
        }
        if e.class() == git2::ErrorClass::Ssl || e.code() == git2::ErrorCode::Certificate {
            return GitError::Untrusted { url, detail: msg };
        }
        if direction == Direction::Push
            && (msg.contains("403") || msg.contains("denied") || msg.contains("not permitted"))
        {
            return GitError::PushDenied { url, detail: msg };
        }
        if asked > 0 && msg.contains("401") {
            return GitError::BadCredentials { url, detail: msg };
        }
        // An SSH server over its MaxStartups drops the connection before its banner: a connection failure.
        let ssh_dropped = e.class() == git2::ErrorClass::Ssh
            && (msg.contains("banner") || msg.contains("failed to start SSH session"));
        if e.class() == git2::ErrorClass::Net
            || e.class() == git2::ErrorClass::Os
            || e.class() == git2::ErrorClass::Http
            || ssh_dropped
        {
            return GitError::Connect { url, detail: msg };
        }
        GitError::Other { url, detail: msg }
    }
}

/// rustls verification of the server's leaf certificate for `host`. libgit2 hands over the leaf only, so a
/// chain through an intermediate verifies when that intermediate is in a CA file.
fn verify_leaf(roots: &Arc<RootCertStore>, der: &[u8], host: &str) -> bool {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider).build()
    else {
        return false;
    };
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return false;
    };
    let cert = CertificateDer::from(der.to_vec());
    verifier
        .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
        .is_ok()
}

/// `known_hosts` lines (`host[,host2] keytype base64`, `[host]:port ...`) as `(host, raw key)`; hashed
/// entries (`|1|...`) and comments are skipped.
fn read_known_hosts(path: &std::path::Path) -> KnownHosts {
    use base64::Engine;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('|'))
    {
        let mut parts = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(key)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(key) else {
            continue;
        };
        for h in hosts.split(',') {
            // libgit2 names the host without the port.
            let host = h
                .strip_prefix('[')
                .and_then(|x| x.split_once(']'))
                .map(|(h, _)| h)
                .unwrap_or(h);
            out.push((host.to_string(), raw.clone()));
        }
    }
    out
}

/// `(scheme, host, port)` of a remote URL (`ssh` for scp-like `user@host:path`), ports defaulted per scheme.
fn origin(url: &str) -> Option<(String, String, u16)> {
    if let Ok(u) = url::Url::parse(url)
        && let Some(host) = u.host_str()
    {
        let port = u.port_or_known_default().unwrap_or(match u.scheme() {
            "ssh" => 22,
            "git" => 9418,
            _ => 0,
        });
        return Some((u.scheme().to_string(), host.to_ascii_lowercase(), port));
    }
    // scp-like: `git@host:group/repo.git`
    let (before, _) = url.split_once(':')?;
    let host = before.rsplit('@').next()?;
    Some(("ssh".into(), host.to_ascii_lowercase(), 22))
}

#[cfg(test)]
mod origin_tests {
    #[test]
    fn origins() {
        let o = |u: &str| super::origin(u);
        assert_eq!(
            o("https://gitlab.example.com/g/r.git"),
            o("https://GitLab.example.com:443/x")
        );
        assert_ne!(
            o("https://h.example.com/r"),
            o("https://h.example.com:8443/r")
        );
        assert_ne!(o("http://h.example.com/r"), o("https://h.example.com/r"));
        assert_eq!(
            o("git@h.example.com:g/r.git"),
            o("ssh://git@h.example.com/g/r.git")
        );
    }
}
