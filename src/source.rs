//! Where a setting's value came from. Every resolved value carries one, so `flowship settings` can say why a
//! value is what it is, and errors can point at the flag, variable or file line to change.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A command-line flag, e.g. `--image`.
    Flag { name: String },
    /// An environment variable, read directly.
    Env { name: String },
    /// A `NAME_FILE` environment variable: the value is the content of `path`.
    EnvFile { name: String, path: PathBuf },
    /// A key in `flowship.yaml`.
    File { path: PathBuf, key: String },
    /// A GitLab predefined or integration variable, or another tool's own variable (`PREFECT_API_URL`).
    Integration { name: String },
    /// Docker's credential store: `DOCKER_AUTH_CONFIG`, `config.json` or a credential helper.
    DockerConfig { origin: String },
    /// Built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag { name } => write!(f, "flag {name}"),
            Source::Env { name } => write!(f, "env {name}"),
            Source::EnvFile { name, path } => write!(f, "env {name} ({})", path.display()),
            Source::File { path, key } => write!(f, "{} `{key}`", path.display()),
            Source::Integration { name } => write!(f, "env {name}"),
            Source::DockerConfig { origin } => write!(f, "{origin}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: Source) -> Self {
        Self { value, source }
    }

    pub fn default_value(value: T) -> Self {
        Self {
            value,
            source: Source::Default,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            source: self.source,
        }
    }
}
