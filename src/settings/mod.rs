//! Settings: flags, environment, `flowship.yaml` and CI variables resolved once into typed sections, one per
//! capability (`build`, `upload`, `gitops`, `prefect`, ...), each value remembering its [`Source`].
//!
//! Precedence per value (see [`layers`]): flag > `FLOWSHIP_*` env (or `FLOWSHIP_*_FILE`) > `flowship.yaml`
//! (the selected environment's overlay first) > GitLab / Harbor / Prefect variables > default. Operations
//! receive these sections and never read the environment themselves. Secrets are [`Secret`]s, never come
//! from the file, and are never printed.

mod credentials;
mod env;
mod file;
mod keys;
mod layers;
mod resolve;
mod show;
mod values;

pub use crate::gitlab::CiContext;
pub use crate::source::{Source, Sourced};
pub use env::Env;
pub use resolve::{load, resolve};
pub use show::Entry;

use crate::cli::OutputFormat;
use crate::gitops::images::{Markers, Pin};
use crate::gitops::order::Monotonic;
use crate::registry::{Credential, Reference};
use crate::secret::Secret;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Settings {
    pub config_file: Option<Sourced<PathBuf>>,
    /// The environment (`--env`, `FLOWSHIP_ENV`, or GitLab's `CI_ENVIRONMENT_NAME` when the file defines it)
    /// whose `environments.E` overlay is in effect.
    pub environment: Option<Sourced<String>>,
    /// The key saved plans are signed and checked with (`FLOWSHIP_PLAN_KEY`, HMAC-SHA256).
    pub plan_key: Option<Sourced<Secret>>,
    /// Every environment the file defines.
    pub environments: Vec<String>,
    pub output: Sourced<OutputFormat>,
    /// GitLab dotenv report to write (`--dotenv`).
    pub dotenv: Option<Sourced<PathBuf>>,
    pub dry_run: Sourced<bool>,
    /// -1 quiet, 0 normal, 1 debug, 2 trace.
    pub verbosity: i8,
    pub color: bool,
    pub gitlab_ci: bool,
    /// RUST_LOG, when set: overrides -v/-q for tracing.
    pub log_filter: Option<String>,
    pub trust: TrustSettings,
    pub http: HttpSettings,
    /// The flow image: a repository, or (from flags and variables) a full `repo:tag@digest` reference.
    pub image: Option<Sourced<Reference>>,
    /// The image a job was handed by digest (`FLOWSHIP_IMAGE=repo:tag@digest`); differs from `image` when
    /// the environment keeps its images in a repository of its own.
    pub handoff: Option<Sourced<Reference>>,
    pub registry: RegistrySettings,
    pub build: BuildSettings,
    pub upload: UploadSettings,
    pub gitops: GitopsSettings,
    pub prefect: PrefectSettings,
    pub gitlab: GitlabSettings,
    pub sign: SignSettings,
    pub verify: VerifySettings,
    /// The environment's clusters (`environments.E.clusters`), in name order.
    pub clusters: Vec<Cluster>,
    pub ci: CiContext,
    /// The environment as `{{ $NAME }}` placeholders in prefect.yaml see it.
    pub template_env: BTreeMap<String, String>,
    /// The fixed timestamp of built layers and configs: `SOURCE_DATE_EPOCH`, else the commit time
    /// (`CI_COMMIT_TIMESTAMP`), else the epoch.
    pub source_date: Sourced<u64>,
}

#[derive(Debug, Default, Clone)]
pub struct TrustSettings {
    /// Extra CA bundles, trusted in addition to the system store (every source adds; trust is a union).
    pub ca_files: Vec<Sourced<PathBuf>>,
    /// `host:port` pairs that may be spoken to over plain HTTP. Nothing else ever is.
    pub plain_http: Vec<Sourced<String>>,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Attempts after the first, for transient failures.
    pub retries: Sourced<u32>,
    /// Connect timeout, and the longest silence tolerated while reading a response.
    pub timeout: Sourced<Duration>,
}

#[derive(Debug, Default, Clone)]
pub struct RegistrySettings {
    /// Credentials by registry host (`host[:port]`): for the image's registry, the base image's, and the
    /// registries a command names (promote's SRC and DST). Each credential goes to its own host only.
    pub credentials: BTreeMap<String, Credential>,
}

impl RegistrySettings {
    pub fn for_host(&self, host: &str) -> Option<Credential> {
        self.credentials.get(host).cloned()
    }
}

/// What goes into a built image.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    pub base: Option<Sourced<String>>,
    pub context: Sourced<PathBuf>,
    /// `None`: no requirements file (none given, and the context has no requirements.txt).
    pub requirements: Option<Sourced<PathBuf>>,
    /// The uv workspace root whose lock a member context uses (else found above the context).
    pub workspace: Option<Sourced<PathBuf>>,
    pub platforms: Vec<Sourced<String>>,
    pub python_version: Option<Sourced<String>>,
    pub workdir: Option<Sourced<String>>,
    /// Environment variables of the image, `(KEY, VALUE)`, checked.
    pub env: Vec<Sourced<(String, String)>>,
    /// The build machine's cache (`None`: no home to put it in, nothing is cached locally).
    pub cache_dir: Option<Sourced<PathBuf>>,
}

/// How images go to the registry, and what Harbor checks on the way.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// `None`: one streamed `PUT` per blob.
    pub chunk_size: Option<Sourced<u64>>,
    pub parallel: Sourced<usize>,
    pub create_project: Sourced<bool>,
    /// `critical`, `high`, `medium` or `low`.
    pub scan_gate: Option<Sourced<String>>,
    pub scan_timeout: Sourced<Duration>,
}

#[derive(Debug, Clone)]
pub struct GitopsSettings {
    pub repo: Option<Sourced<String>>,
    pub branch: Sourced<String>,
    pub username: Sourced<String>,
    pub token: Option<Sourced<Secret>>,
    /// Private key (OpenSSH PEM) for ssh:// and scp-like remotes.
    pub ssh_key: Option<Sourced<Secret>>,
    /// `known_hosts` file the SSH server's host key must be in (else libgit2's own `~/.ssh/known_hosts` check).
    pub known_hosts: Option<Sourced<PathBuf>>,
    pub author_name: Sourced<String>,
    pub author_email: Sourced<String>,
    pub paths: Vec<Sourced<String>>,
    pub policies: Vec<Sourced<String>>,
    /// Explicit `FILE:YAML.PATH` targets (the environment's and its clusters'); empty means "every reference
    /// under `paths`".
    pub targets: Vec<Sourced<String>>,
    pub monotonic: Option<Sourced<Monotonic>>,
    /// Whether tag-only references take the digest too.
    pub pin: Sourced<Pin>,
    /// Whether files with Flux markers are edited only at their marked fields.
    pub markers: Sourced<Markers>,
    /// `--new-name`: references move to this repository (a rename).
    pub new_name: Option<Sourced<String>>,
    /// `--expect-tag` / `--expect-digest`: what every reference must hold before the bump (compare-and-set).
    pub expect_tag: Option<Sourced<String>>,
    pub expect_digest: Option<Sourced<String>>,
    pub merge_request: Sourced<bool>,
    pub max_attempts: Sourced<u32>,
    /// Commit message template for bumps.
    pub commit_message: Option<Sourced<String>>,
}

#[derive(Debug, Clone)]
pub struct PrefectSettings {
    pub api_url: Option<Sourced<String>>,
    /// Prefect Cloud API key (Bearer).
    pub api_key: Option<Sourced<Secret>>,
    /// Self-hosted basic auth, `user:password`. Prefect 3.9 sends it in preference to the key; so do we.
    pub auth_string: Option<Sourced<Secret>>,
    pub work_pool: Option<Sourced<String>>,
    /// Prefect's project file for `register` (the first of `files`).
    pub file: Sourced<PathBuf>,
    /// Every project file, or directory to find `prefect.yaml` files under (a monorepo), in order.
    pub files: Vec<Sourced<PathBuf>>,
    pub concurrency: Sourced<usize>,
    /// Create missing work pools of this type.
    pub create_work_pool: Option<Sourced<String>>,
    /// prefect.yaml warnings are errors (exit 2, nothing written).
    pub strict: Sourced<bool>,
    /// Deployments flowship registered for a project that its files no longer name are deleted.
    pub prune: Sourced<bool>,
    /// A work pool's registry block holding another user's login may be replaced.
    pub replace_registry_block: Sourced<bool>,
    /// Smoke runs after a release: `flow/name` or `name`, with `=PARAMS_JSON`.
    pub smoke: Vec<Sourced<String>>,
    /// How long a smoke run may take, in seconds.
    pub smoke_timeout: Sourced<u64>,
    /// A failed smoke run rolls the environment back (and holds it).
    pub rollback_on_failure: Sourced<bool>,
    /// The Kubernetes secret kubernetes work pools pull images with (`imagePullSecrets`).
    pub image_pull_secret: Option<Sourced<String>>,
}

/// How pushed images are signed (cosign's format, see `sigstore`).
#[derive(Debug, Clone)]
pub struct SignSettings {
    /// The private key, PEM (`FLOWSHIP_SIGN_KEY`, or `FLOWSHIP_SIGN_KEY_FILE` naming the key file).
    pub key: Option<Sourced<Secret>>,
    /// The password of an encrypted (cosign) key.
    pub password: Option<Sourced<Secret>>,
    /// Signing was asked for: no key is then an error, not a quiet unsigned push.
    pub required: Sourced<bool>,
}

impl SignSettings {
    /// Sign when asked to, or when a key is there to sign with.
    pub fn wanted(&self) -> bool {
        self.required.value || self.key.is_some()
    }
}

/// What a release into the environment must carry.
#[derive(Debug, Default, Clone)]
pub struct VerifySettings {
    /// The public key (PEM file) the image's signature must verify with (`environments.E.verify.key`).
    pub key: Option<Sourced<PathBuf>>,
    /// The cluster's pull account (`verify.pull_username` + `FLOWSHIP_PULL_PASSWORD`): a release proves the
    /// digest is readable with it before pinning.
    pub pull: Option<crate::registry::Credential>,
}

#[derive(Debug, Default, Clone)]
pub struct GitlabSettings {
    pub api_url: Option<Sourced<String>>,
    pub project: Option<Sourced<String>>,
    pub token: Option<Sourced<Secret>>,
}

/// One cluster of the environment: its GitOps targets and its work pool.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub targets: Vec<Sourced<String>>,
    pub paths: Vec<Sourced<String>>,
    pub work_pool: Option<Sourced<String>>,
}

impl Settings {
    /// The image repository `command` needs, or the usage error (exit 2) saying where to set it.
    pub fn image_for(&self, command: &str) -> Result<&Sourced<Reference>, crate::error::Error> {
        self.image
            .as_ref()
            .ok_or_else(|| crate::error::Error::Usage {
                message: format!("{command} needs the image repository"),
                hint: Some(format!("pass {}", keys::IMAGE.where_set("REPO"))),
            })
    }

    /// Every secret value in effect, so that output paths can assert none of them leaks.
    pub fn secret_values(&self) -> Vec<String> {
        let mut out: Vec<String> = [
            &self.gitops.token,
            &self.gitops.ssh_key,
            &self.prefect.api_key,
            &self.prefect.auth_string,
            &self.gitlab.token,
            &self.plan_key,
            &self.sign.password,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.value.expose().to_string())
        .collect();
        // A PEM key leaks as much through any one of its lines as whole.
        if let Some(k) = &self.sign.key {
            out.push(k.value.expose().to_string());
            out.extend(
                k.value
                    .expose()
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 16 && !l.starts_with("-----"))
                    .map(str::to_string),
            );
        }
        for c in self.registry.credentials.values().chain(&self.verify.pull) {
            out.push(c.password.value.expose().to_string());
        }
        // Basic auth strings are `user:password`: the password alone must not show either.
        if let Some(a) = &self.prefect.auth_string
            && let Some((_, pw)) = a.value.expose().split_once(':')
        {
            out.push(pw.to_string());
        }
        // A token written into the repository URL (`https://user:token@host/...`).
        if let Some(r) = &self.gitops.repo
            && let Ok(u) = url::Url::parse(&r.value)
            && let Some(pw) = u.password()
        {
            out.push(pw.to_string());
            if let Ok(decoded) = urlencoding_decode(pw) {
                out.push(decoded);
            }
        }
        out.retain(|s| !s.is_empty());
        out
    }

    /// What the one HTTP layer needs: trust, the plain-HTTP allowlist, retries and timeouts.
    pub fn http_config(&self) -> crate::http::Config {
        crate::http::Config {
            ca_files: self.trust.ca_files.clone(),
            plain_http: self
                .trust
                .plain_http
                .iter()
                .map(|p| p.value.clone())
                .collect(),
            retries: self.http.retries.value,
            timeout: self.http.timeout.value,
        }
    }

    /// The credential for a registry host, if any was found for it.
    pub fn credential(&self, host: &str) -> Option<Credential> {
        self.registry.for_host(host)
    }

    /// Prefect's credentials, as the client sends them.
    pub fn prefect_auth(&self) -> Option<crate::prefect::Auth> {
        match (&self.prefect.auth_string, &self.prefect.api_key) {
            (Some(s), _) => Some(crate::prefect::Auth::Basic(s.value.clone())),
            (None, Some(k)) => Some(crate::prefect::Auth::Bearer(k.value.clone())),
            (None, None) => None,
        }
    }

    /// How to reach the GitOps remote `url`: credentials, trust, known hosts, plain-transport permission.
    pub fn git_access(
        &self,
        url: &str,
    ) -> Result<crate::gitops::remote::Access, crate::gitops::remote::GitError> {
        // `https://user:token@host/...` (GitLab's CI_REPOSITORY_URL shape): the token is used as the token,
        // and the URL goes on without it (libgit2 would write it into config and error messages).
        let (url, url_user, url_token) = match url::Url::parse(url) {
            Ok(mut u) if u.password().is_some() => {
                let user = (!u.username().is_empty()).then(|| u.username().to_string());
                let token = u.password().map(|p| {
                    url::form_urlencoded::parse(format!("x={p}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_else(|| p.to_string())
                });
                let _ = u.set_username("");
                let _ = u.set_password(None);
                (u.to_string(), user, token.map(Secret::new))
            }
            _ => (url.to_string(), None, None),
        };
        let explicit = self.gitops.token.as_ref().map(|t| t.value.clone());
        crate::gitops::remote::Access::new(crate::gitops::remote::AccessConfig {
            url,
            username: match (&explicit, url_user) {
                (None, Some(u)) => u,
                _ => self.gitops.username.value.clone(),
            },
            token: explicit.or(url_token),
            ssh_key: self.gitops.ssh_key.as_ref().map(|t| t.value.clone()),
            known_hosts: self.gitops.known_hosts.as_ref().map(|p| p.value.clone()),
            http: self.http_config(),
        })
    }
}

/// `%40` → `@`: a token in a URL is written percent-encoded, and may show decoded elsewhere.
fn urlencoding_decode(s: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes: Vec<u8> = url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8(bytes)
}

/// Bad configuration: exit code 2, nothing written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    File {
        path: PathBuf,
        line: Option<usize>,
        message: String,
        hint: Option<String>,
    },
    #[error("{name} names `{}`, which cannot be read: {reason}", path.display())]
    EnvFile {
        name: String,
        path: PathBuf,
        reason: String,
    },
    #[error("{origin}: `{value}` {problem}")]
    Invalid {
        origin: Source,
        value: String,
        problem: String,
        hint: Option<String>,
    },
}

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::File { hint, .. } | ConfigError::Invalid { hint, .. } => hint.clone(),
            ConfigError::EnvFile { name, .. } => {
                Some(format!("point {name} at a readable file, or unset it"))
            }
        }
    }
}
