//! Settings: flags, environment, `flowship.yaml` and CI variables resolved once into one typed value.
//!
//! Precedence per value: flag > `FLOWSHIP_*` env (or `FLOWSHIP_*_FILE`) > `flowship.yaml` > GitLab / Harbor /
//! Prefect variables > default. Each value remembers its [`Source`]. Commands receive a `&Settings` and never
//! read the environment themselves. Secrets are [`Secret`]s and never come from the file.

mod env;
mod file;
mod resolve;
pub use resolve::resolve;
mod show;
mod source;
mod values;

pub use env::Env;
pub use file::{ConfigFile, ImageSection, Monotonic};
pub use show::Entry;
pub use source::{Source, Sourced};

use crate::cli::OutputFormat;
use crate::registry::{Credential, Reference};
use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
pub struct Settings {
    pub config_file: Option<Sourced<PathBuf>>,
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
    pub registry: RegistrySettings,
    pub gitops: GitopsSettings,
    pub prefect: PrefectSettings,
    pub gitlab: GitlabSettings,
    pub ci: CiContext,
    /// The environment as `{{ $NAME }}` placeholders in prefect.yaml see it.
    pub template_env: std::collections::BTreeMap<String, String>,
    /// The fixed timestamp of built layers and configs: `SOURCE_DATE_EPOCH`, else the commit time
    /// (`CI_COMMIT_TIMESTAMP`), else the epoch.
    pub source_date: Sourced<u64>,
    /// `image:` of flowship.yaml, for `build`'s defaults.
    pub file_image: ImageSection,
}

/// The GitLab job this run belongs to, for commit messages and trailers. Empty outside CI.
#[derive(Debug, Default, Clone)]
pub struct CiContext {
    pub pipeline_url: Option<String>,
    pub job_url: Option<String>,
    pub commit_sha: Option<String>,
    pub ref_name: Option<String>,
    pub project_url: Option<String>,
    pub project_name: Option<String>,
    pub short_sha: Option<String>,
}

#[derive(Debug, Default)]
pub struct TrustSettings {
    /// Extra CA bundles, trusted in addition to the system store (every source adds; trust is a union).
    pub ca_files: Vec<Sourced<PathBuf>>,
    /// `host:port` pairs that may be spoken to over plain HTTP. Nothing else ever is.
    pub plain_http: Vec<Sourced<String>>,
}

impl TrustSettings {
    pub fn allows_plain_http(&self, host_port: &str) -> bool {
        self.plain_http
            .iter()
            .any(|p| p.value.eq_ignore_ascii_case(host_port))
    }
}

#[derive(Debug)]
pub struct HttpSettings {
    /// Attempts after the first, for transient failures.
    pub retries: Sourced<u32>,
    /// Connect timeout, and the longest silence tolerated while reading a response.
    pub timeout: Sourced<Duration>,
}

#[derive(Debug, Default)]
pub struct RegistrySettings {
    /// Credentials for the registry of `image`, from wherever they were found first.
    pub credential: Option<Credential>,
    /// Credentials for other registries a command talks to (`promote` across registries), by host.
    pub others: std::collections::BTreeMap<String, Credential>,
}

impl RegistrySettings {
    pub fn credential_for(&self, image: Option<&Reference>, host: &str) -> Option<Credential> {
        match image {
            Some(i) if i.registry == host => self.credential.clone(),
            _ => self.others.get(host).cloned(),
        }
    }
}

#[derive(Debug)]
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
    /// The environment whose target set is in use.
    pub environment: Option<Sourced<String>>,
    /// Explicit `FILE:YAML.PATH` targets; empty means "every reference under `paths`".
    pub targets: Vec<Sourced<String>>,
    pub monotonic: Option<Sourced<Monotonic>>,
    /// Commit message template for bumps.
    pub commit_message: Option<Sourced<String>>,
}

#[derive(Debug)]
pub struct PrefectSettings {
    pub api_url: Option<Sourced<String>>,
    /// Prefect Cloud API key (Bearer).
    pub api_key: Option<Sourced<Secret>>,
    /// Self-hosted basic auth, `user:password`. Prefect 3.9 sends it in preference to the key; so do we.
    pub auth_string: Option<Sourced<Secret>>,
    pub work_pool: Option<Sourced<String>>,
    /// Prefect's project file for `register`.
    pub file: Sourced<PathBuf>,
}

#[derive(Debug, Default)]
pub struct GitlabSettings {
    pub api_url: Option<Sourced<String>>,
    pub project: Option<Sourced<String>>,
    pub token: Option<Sourced<Secret>>,
}

impl Settings {
    /// Every secret value in effect, so that output paths can assert none of them leaks.
    pub fn secret_values(&self) -> Vec<&str> {
        let mut out: Vec<&str> = [
            &self.gitops.token,
            &self.gitops.ssh_key,
            &self.prefect.api_key,
            &self.prefect.auth_string,
            &self.gitlab.token,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.value.expose())
        .collect();
        if let Some(c) = &self.registry.credential {
            out.push(c.password.value.expose());
        }
        out.retain(|s| !s.is_empty());
        out
    }
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
