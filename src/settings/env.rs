//! A snapshot of the process environment, taken once in `main`. Settings read variables only through it, so
//! tests and commands see one consistent view, and every variable `NAME` can also be given as `NAME_FILE`
//! (robot account names contain `$`, which shells and GitLab expand; secrets belong in files).

use super::ConfigError;
use crate::source::{Source, Sourced};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        // Non-UTF-8 variables cannot be any of ours; skip them instead of failing on someone else's.
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    #[cfg(test)]
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The raw variable, empty counting as unset (GitLab passes unset variables as empty in places).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `NAME`, else the content of the file named by `NAME_FILE` (one trailing newline removed).
    /// `integration` marks variables that belong to GitLab, Harbor or Prefect rather than to flowship.
    pub fn get(
        &self,
        name: &str,
        integration: bool,
    ) -> Result<Option<Sourced<String>>, ConfigError> {
        if let Some(v) = self.raw(name) {
            let source = if integration {
                Source::Integration { name: name.into() }
            } else {
                Source::Env { name: name.into() }
            };
            return Ok(Some(Sourced::new(v.to_string(), source)));
        }
        let file_var = format!("{name}_FILE");
        let Some(path) = self.raw(&file_var) else {
            return Ok(None);
        };
        let path = PathBuf::from(path);
        let content = std::fs::read_to_string(&path).map_err(|e| ConfigError::EnvFile {
            name: file_var.clone(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let value = content.strip_suffix('\n').unwrap_or(&content);
        let value = value.strip_suffix('\r').unwrap_or(value).to_string();
        Ok(Some(Sourced::new(
            value,
            Source::EnvFile {
                name: file_var,
                path,
            },
        )))
    }

    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }

    pub fn is_true(&self, name: &str) -> bool {
        matches!(self.raw(name), Some("true" | "1" | "yes"))
    }
}
