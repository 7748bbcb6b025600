//! `flowship.yaml`: the project's checked-in configuration. Parsed twice from the same text: into typed
//! sections, strictly (an unknown key is an error with file, line and a did-you-mean; secrets are refused
//! outright, they belong in CI variables or `*_FILE` files), and into a plain tree that [`super::layers`]
//! looks keys up in, with the selected environment's overlay (`environments.E.<key>`) first.

// The sections are the file's schema: serde checks the file against them (unknown keys refused with the
// known ones named, types checked), while values are read by key through `Layers`, with their sources; so
// most fields are never read as fields.
#![allow(dead_code)]

use super::ConfigError;
use crate::gitops::images::{Markers, Pin};
use crate::gitops::order::Monotonic;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The typed view: it exists to validate the file (every key known, every value of its type).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub image: ImageSection,
    #[serde(default)]
    pub registry: RegistrySection,
    #[serde(default)]
    pub upload: UploadSection,
    #[serde(default)]
    pub harbor: HarborSection,
    #[serde(default)]
    pub gitops: GitopsSection,
    #[serde(default)]
    pub prefect: PrefectSection,
    #[serde(default)]
    pub gitlab: GitlabSection,
    #[serde(default)]
    pub tls: TlsSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub sign: SignSection,
    #[serde(default)]
    pub verify: VerifySection,
    /// Where a release goes: each environment overrides any of the sections above, and may span clusters.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentSection>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSection {
    /// `registry/project/name`, without tag.
    pub repository: Option<String>,
    /// Base image for `build`.
    pub base: Option<String>,
    pub context: Option<PathBuf>,
    pub requirements: Option<PathBuf>,
    /// The uv workspace root the context is a member of.
    pub workspace: Option<PathBuf>,
    #[serde(default)]
    pub platforms: Vec<String>,
    pub python_version: Option<String>,
    pub workdir: Option<String>,
    /// Environment variables of the image, `KEY=VALUE`.
    #[serde(default)]
    pub env: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub username: Option<String>,
    /// The name of the variable that holds the password (the password itself never goes in this file).
    pub password_variable: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSection {
    pub chunk_size: Option<yaml_serde::Value>,
    pub parallel: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HarborSection {
    pub create_project: Option<bool>,
    pub scan_gate: Option<String>,
    pub scan_timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitopsSection {
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub username: Option<String>,
    pub token_variable: Option<String>,
    pub ssh_key_variable: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// `known_hosts` file for SSH remotes.
    pub known_hosts: Option<String>,
    /// Globs (relative to the repository root) of the files `bump` may edit.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Explicit `FILE:YAML.PATH` targets; when present, only these are edited.
    #[serde(default)]
    pub targets: Vec<String>,
    /// Flux image policies (`namespace:name`) that stand for `image.repository` in `$imagepolicy` markers.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Refuse to move a tag backwards: `semver` or `numeric` (the last number in the tag, e.g. a pipeline IID).
    pub monotonic: Option<Monotonic>,
    /// `keep` (pin what was pinned) or `always` (every reference gets the digest).
    pub pin: Option<Pin>,
    /// `any`, or `only`: in a file with Flux `$imagepolicy` markers, edit only the marked fields.
    pub markers: Option<Markers>,
    pub merge_request: Option<bool>,
    pub max_attempts: Option<u64>,
    /// Commit message template: {image} {repository} {tag} {digest} {changes} {pipeline_url} {job_url}.
    pub commit_message: Option<String>,
    /// The older place for per-environment GitOps keys: `gitops.environments.E.branch` is read as
    /// `environments.E.gitops.branch`.
    #[serde(default)]
    pub environments: BTreeMap<String, EnvGitopsSection>,
}

/// GitOps keys an environment may override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvGitopsSection {
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub username: Option<String>,
    pub token_variable: Option<String>,
    pub ssh_key_variable: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    #[serde(default)]
    pub policies: Vec<String>,
    pub monotonic: Option<Monotonic>,
    pub pin: Option<Pin>,
    pub markers: Option<Markers>,
    pub merge_request: Option<bool>,
    pub commit_message: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSection {
    #[serde(default)]
    pub image: EnvImageSection,
    #[serde(default)]
    pub registry: RegistrySection,
    #[serde(default)]
    pub harbor: HarborSection,
    #[serde(default)]
    pub gitops: EnvGitopsSection,
    #[serde(default)]
    pub prefect: PrefectSection,
    #[serde(default)]
    pub sign: SignSection,
    /// What a release into this environment must carry (a signature by `verify.key`).
    #[serde(default)]
    pub verify: VerifySection,
    /// Cluster overlays of this environment: their targets are changed in one commit, and each cluster's
    /// work pool gets the deployments.
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvImageSection {
    pub repository: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub targets: Vec<String>,
    pub work_pool: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefectSection {
    pub api_url: Option<String>,
    pub work_pool: Option<String>,
    /// Prefect's project file [default: prefect.yaml].
    pub file: Option<PathBuf>,
    pub concurrency: Option<u64>,
    pub create_work_pool: Option<String>,
    /// Warnings about prefect.yaml (what `prefect deploy` accepts but is probably wrong) become errors.
    pub strict: Option<bool>,
    /// Delete the project's deployments (marked by flowship) that the files no longer name.
    pub prune: Option<bool>,
    /// Replace a work pool's registry-credentials block that holds another user.
    pub replace_registry_block: Option<bool>,
    /// Deployments (`flow/name[=PARAMS_JSON]`) a release runs once and waits for.
    #[serde(default)]
    pub smoke: Vec<String>,
    pub smoke_timeout: Option<u64>,
    pub rollback_on_failure: Option<bool>,
    /// The Kubernetes secret (a pull-only registry login) the environment's kubernetes pools pull with.
    pub image_pull_secret: Option<String>,
    /// Names of the variables that hold this server's credentials (defaults: Prefect's own).
    pub auth_string_variable: Option<String>,
    pub api_key_variable: Option<String>,
}

/// Signing pushed images. The key itself never goes in this file: `FLOWSHIP_SIGN_KEY(_FILE)`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignSection {
    /// Every push must be signed: no key is an error.
    pub required: Option<bool>,
    /// Names of the variables that hold the key and its password.
    pub key_variable: Option<String>,
    pub password_variable: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySection {
    /// The public key (a PEM file, e.g. cosign.pub) the released image's signature must verify with.
    pub key: Option<PathBuf>,
    /// The account the cluster pulls with: the released digest must be readable with it before it is pinned.
    pub pull_username: Option<String>,
    /// The variable holding that account's password [default: FLOWSHIP_PULL_PASSWORD].
    pub pull_password_variable: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabSection {
    pub url: Option<String>,
    /// The GitOps repository's project path (`group/project`) for API calls [default: from the repo URL].
    pub project: Option<String>,
    pub token_variable: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    #[serde(default)]
    pub plain_http: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub retries: Option<u32>,
    pub timeout_secs: Option<u64>,
}

/// Keys that would hold a secret, and the variable to use instead.
const SECRET_KEYS: &[(&str, &str)] = &[
    ("password", "FLOWSHIP_REGISTRY_PASSWORD"),
    ("token", "FLOWSHIP_GIT_TOKEN or FLOWSHIP_GITLAB_TOKEN"),
    ("api_key", "PREFECT_API_KEY"),
    ("auth_string", "PREFECT_API_AUTH_STRING"),
    ("ssh_key", "FLOWSHIP_GIT_SSH_KEY_FILE"),
    ("secret", "a CI variable"),
    ("key", "FLOWSHIP_SIGN_KEY"),
];

/// The file as loaded: its path, the validated sections, and the tree keys are looked up in.
#[derive(Debug, Default)]
pub struct Loaded {
    pub path: Option<PathBuf>,
    pub typed: ConfigFile,
    pub tree: yaml_serde::Value,
}

impl Loaded {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            line: None,
            message: e.to_string(),
            hint: Some(
                "pass --config with the path of flowship.yaml, or unset FLOWSHIP_CONFIG".into(),
            ),
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self {
                path: Some(path.to_owned()),
                ..Self::default()
            });
        }
        let err = |e: yaml_serde::Error| {
            let line = e.location().map(|l| l.line());
            let message = e.to_string();
            ConfigError::File {
                path: path.to_owned(),
                line,
                hint: unknown_key_hint(&message),
                message: strip_location(&message),
            }
        };
        let typed: ConfigFile = yaml_serde::from_str(text).map_err(err)?;
        let tree: yaml_serde::Value = yaml_serde::from_str(text).map_err(err)?;
        // Environment and cluster names become paths (`.flowship/holds/<env>.yaml`), trailers and
        // deployment names: plain names only.
        let names = typed
            .environments
            .iter()
            .flat_map(|(e, s)| {
                std::iter::once(("environment", e)).chain(s.clusters.keys().map(|c| ("cluster", c)))
            })
            .chain(typed.gitops.environments.keys().map(|e| ("environment", e)));
        for (what, name) in names {
            if !plain_name(name) {
                let line = text
                    .lines()
                    .position(|l| l.trim_start().starts_with(&format!("{name}:")))
                    .map(|i| i + 1);
                return Err(ConfigError::File {
                    path: path.to_owned(),
                    line,
                    message: format!("{what} name `{name}` is not a plain name"),
                    hint: Some(
                        "use letters, digits, `.`, `_` and `-` (not starting with `.` or `-`)"
                            .into(),
                    ),
                });
            }
        }
        Ok(Self {
            path: Some(path.to_owned()),
            typed,
            tree,
        })
    }

    /// Every environment the file defines, in either place.
    pub fn environments(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .typed
            .environments
            .keys()
            .chain(self.typed.gitops.environments.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// serde says "unknown field `regsitry`, expected one of `image`, `registry`, ..."; turn that into a fix.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, expected) = rest.split_once('`')?;
    if let Some((_, var)) = SECRET_KEYS.iter().find(|(k, _)| unknown.contains(k)) {
        return Some(format!(
            "secrets are never read from flowship.yaml (it is committed); set {var}, or {var}_FILE naming a file \
             (a `*_variable` key may name the variable)"
        ));
    }
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(unknown, c), *c))
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, c)) => Some(format!("did you mean `{c}`?")),
        None => Some(format!("known keys here: {}", candidates.join(", "))),
    }
}

/// The error's location is reported separately, as `file:line`.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// `prod`, `eu-west.1`, `cluster_2`: what may stand in a path segment, a git trailer and a deployment name.
fn plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !s.contains("..")
        && s.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        Loaded::parse(Path::new("flowship.yaml"), text).unwrap_err()
    }

    #[test]
    fn unknown_key_suggests_the_close_one() {
        let ConfigError::File {
            line,
            hint,
            message,
            ..
        } = err("gitops:\n  repo: x\n  brnch: main\n")
        else {
            panic!()
        };
        assert_eq!(line, Some(3));
        assert_eq!(hint.as_deref(), Some("did you mean `branch`?"), "{message}");
        assert!(message.contains("brnch"));
    }

    #[test]
    fn secrets_in_the_file_are_refused_with_the_variable_to_use() {
        let ConfigError::File { hint, .. } = err("registry:\n  password: hunter2\n") else {
            panic!()
        };
        assert!(hint.unwrap().contains("FLOWSHIP_REGISTRY_PASSWORD"));
        let ConfigError::File { hint, .. } =
            err("environments:\n  prod:\n    prefect:\n      auth_string: a:b\n")
        else {
            panic!()
        };
        assert!(hint.unwrap().contains("PREFECT_API_AUTH_STRING"));
    }

    #[test]
    fn empty_file_is_default() {
        let c = Loaded::parse(Path::new("f"), "\n").unwrap();
        assert!(c.typed.image.repository.is_none());
    }

    #[test]
    fn environments_from_both_places() {
        let c = Loaded::parse(
            Path::new("f"),
            "gitops:\n  environments:\n    prod: {branch: prod}\nenvironments:\n  staging: {}\n",
        )
        .unwrap();
        assert_eq!(c.environments(), vec!["prod", "staging"]);
    }
}
