//! `flowship.yaml`: the project's checked-in configuration. Parsed strictly: an unknown key is an error with a
//! did-you-mean, and secrets are refused outright (they belong in CI variables or `*_FILE` files, never in a
//! file that gets committed).

use super::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub image: ImageSection,
    #[serde(default)]
    pub registry: RegistrySection,
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
    #[serde(default)]
    pub platforms: Vec<String>,
    pub python_version: Option<String>,
    pub workdir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitopsSection {
    pub repo: Option<String>,
    pub branch: Option<String>,
    pub username: Option<String>,
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    /// `known_hosts` file for SSH remotes.
    pub known_hosts: Option<String>,
    /// Globs (relative to the repository root) of the files `bump` may edit.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Flux image policies (`namespace:name`) that stand for `image.repository` in `$imagepolicy` markers.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Refuse to move a tag backwards: `semver` or `numeric` (the last number in the tag, e.g. a pipeline IID).
    pub monotonic: Option<Monotonic>,
    /// Commit message template: {image} {repository} {tag} {digest} {changes} {pipeline_url} {job_url}.
    pub commit_message: Option<String>,
    /// Named target sets: `bump --env prod` (or a GitLab job with `environment: prod`) uses `environments.prod`.
    #[serde(default)]
    pub environments: std::collections::BTreeMap<String, EnvironmentSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSection {
    pub branch: Option<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    /// Explicit `FILE:YAML.PATH` targets; when present, only these are edited.
    #[serde(default)]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Monotonic {
    Semver,
    Numeric,
}

impl std::fmt::Display for Monotonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Monotonic::Semver => "semver",
            Monotonic::Numeric => "numeric",
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefectSection {
    pub api_url: Option<String>,
    pub work_pool: Option<String>,
    /// Prefect's project file [default: prefect.yaml].
    pub file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitlabSection {
    pub url: Option<String>,
    /// The GitOps repository's project path (`group/project`) for API calls [default: from the repo URL].
    pub project: Option<String>,
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
    ("secret", "a CI variable"),
];

impl ConfigFile {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            path: path.to_owned(),
            line: None,
            message: e.to_string(),
            hint: None,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        yaml_serde::from_str(text).map_err(|e| {
            let line = e.location().map(|l| l.line());
            let message = e.to_string();
            let hint = unknown_key_hint(&message);
            ConfigError::File {
                path: path.to_owned(),
                line,
                message: strip_location(&message),
                hint,
            }
        })
    }
}

/// serde says "unknown field `regsitry`, expected one of `image`, `registry`, ..."; turn that into a fix.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, expected) = rest.split_once('`')?;
    if let Some((_, var)) = SECRET_KEYS.iter().find(|(k, _)| unknown.contains(k)) {
        return Some(format!(
            "secrets are never read from flowship.yaml (it is committed); set {var}, or {var}_FILE naming a file"
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ConfigError {
        ConfigFile::parse(Path::new("flowship.yaml"), text).unwrap_err()
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
    }

    #[test]
    fn empty_file_is_default() {
        let c = ConfigFile::parse(Path::new("f"), "\n").unwrap();
        assert!(c.image.repository.is_none());
    }
}
