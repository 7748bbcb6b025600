//! One layered source for every setting: flag > `FLOWSHIP_*` variable (or `NAME_FILE`) > `flowship.yaml`
//! (the selected environment's `environments.E.<key>` first) > integration variables (`CI_*`, `HARBOR_*`,
//! `PREFECT_*`) > default. A [`Key`] names a setting in each layer once; every lookup returns the value with
//! the layer it came from, so `flowship settings` and error messages can say why a value is what it is.
//!
//! clap parses flags only (no `env = ...` on any argument): a variable read by clap would bypass `NAME_FILE`.

use super::ConfigError;
use super::env::Env;
use super::file::Loaded;
use crate::source::{Source, Sourced};
use clap::ArgMatches;
use clap::parser::ValueSource;

/// A setting as each layer names it.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// The key in `flowship.yaml` and in `flowship settings` (`gitops.branch`).
    pub name: &'static str,
    /// `(clap id, "--flag")`.
    pub flag: Option<(&'static str, &'static str)>,
    /// flowship's own variable (`NAME_FILE` works too).
    pub env: Option<&'static str>,
    /// Other tools' variables, last before the default.
    pub integration: &'static [&'static str],
}

impl Key {
    /// Where a value is set, for a hint: `--image REPO, FLOWSHIP_IMAGE or image.repository`.
    pub fn where_set(&self, placeholder: &str) -> String {
        let mut ways: Vec<String> = Vec::new();
        ways.extend(self.flag.map(|(_, f)| format!("{f} {placeholder}")));
        ways.extend(self.env.map(str::to_string));
        ways.push(self.name.to_string());
        match ways.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => ways.join(""),
        }
    }

    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            flag: None,
            env: None,
            integration: &[],
        }
    }
    pub const fn flag(mut self, id: &'static str, flag: &'static str) -> Self {
        self.flag = Some((id, flag));
        self
    }
    pub const fn env(mut self, name: &'static str) -> Self {
        self.env = Some(name);
        self
    }
    pub const fn integration(mut self, names: &'static [&'static str]) -> Self {
        self.integration = names;
        self
    }
}

/// Flag values as given on the command line: the subcommand's matches first, then the top level's.
pub struct Flags<'a> {
    top: Option<&'a ArgMatches>,
    sub: Option<&'a ArgMatches>,
}

impl<'a> Flags<'a> {
    pub fn new(matches: &'a ArgMatches) -> Self {
        Self {
            top: Some(matches),
            sub: matches.subcommand().map(|(_, m)| m),
        }
    }

    /// The raw values of flag `id`, when it was given on the command line.
    pub fn raw(&self, id: &str) -> Option<Vec<String>> {
        let given = |m: &ArgMatches| {
            // `value_source` panics for an id the command does not define: ask only once `try_get_raw` found it.
            let raw = m.try_get_raw(id).ok().flatten()?;
            (m.value_source(id) == Some(ValueSource::CommandLine))
                .then(|| raw.map(|v| v.to_string_lossy().into_owned()).collect())
        };
        self.sub
            .and_then(given)
            .or_else(|| self.top.and_then(given))
    }
}

pub struct Layers<'a> {
    pub flags: Flags<'a>,
    pub env: &'a Env,
    pub file: &'a Loaded,
    /// The environment whose overlay is read first.
    pub environment: Option<String>,
}

/// A value from `flowship.yaml`: one scalar, or a list of scalars.
enum FileValue {
    One(String),
    Many(Vec<String>),
}

fn scalar(v: &yaml_serde::Value) -> Option<String> {
    match v {
        yaml_serde::Value::String(s) => Some(s.clone()),
        yaml_serde::Value::Bool(b) => Some(b.to_string()),
        yaml_serde::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn lookup<'v>(tree: &'v yaml_serde::Value, path: &[&str]) -> Option<&'v yaml_serde::Value> {
    let mut node = tree;
    for seg in path {
        node = node.as_mapping()?.get(*seg)?;
    }
    (!node.is_null()).then_some(node)
}

impl Layers<'_> {
    /// Where `key` is found in the file, and under which name: the environment's overlay first.
    fn file_node(&self, key: &str) -> Option<(&yaml_serde::Value, String)> {
        let segs: Vec<&str> = key.split('.').collect();
        if let Some(e) = &self.environment {
            let mut path = vec!["environments", e.as_str()];
            path.extend(&segs);
            if let Some(v) = lookup(&self.file.tree, &path) {
                return Some((v, format!("environments.{e}.{key}")));
            }
            if let Some(("gitops", leaf)) = key.split_once('.')
                && let Some(v) = lookup(&self.file.tree, &["gitops", "environments", e, leaf])
            {
                return Some((v, format!("gitops.environments.{e}.{leaf}")));
            }
        }
        lookup(&self.file.tree, &segs).map(|v| (v, key.to_string()))
    }

    fn file_value(&self, key: &str) -> Option<Sourced<FileValue>> {
        let path = self.file.path.clone()?;
        let (node, name) = self.file_node(key)?;
        let value = match node {
            yaml_serde::Value::Sequence(items) => {
                FileValue::Many(items.iter().filter_map(scalar).collect())
            }
            other => FileValue::One(scalar(other)?),
        };
        Some(Sourced::new(value, Source::File { path, key: name }))
    }

    fn env_value(&self, key: &Key) -> Result<Option<Sourced<String>>, ConfigError> {
        match key.env {
            Some(name) => self.env.get(name, false),
            None => Ok(None),
        }
    }

    fn integration_value(&self, key: &Key) -> Result<Option<Sourced<String>>, ConfigError> {
        for name in key.integration {
            if let Some(v) = self.env.get(name, true)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn flag_values(&self, key: &Key) -> Option<Sourced<Vec<String>>> {
        let (id, flag) = key.flag?;
        let values = self.flags.raw(id)?;
        Some(Sourced::new(values, Source::Flag { name: flag.into() }))
    }

    /// The value the file gives under the environment's overlay (`environments.E.<key>`) only.
    pub fn environment_file_string(&self, key: &Key) -> Option<Sourced<String>> {
        let v = self.file_value(key.name)?;
        match (&v.source, v.value) {
            (Source::File { key: name, .. }, FileValue::One(s))
                if name.starts_with("environments.") =>
            {
                Some(Sourced::new(s, v.source.clone()))
            }
            _ => None,
        }
    }

    /// The first layer that has a value.
    pub fn string(&self, key: &Key) -> Result<Option<Sourced<String>>, ConfigError> {
        if let Some(f) = self.flag_values(key) {
            let source = f.source;
            if let Some(v) = f.value.into_iter().last() {
                return Ok(Some(Sourced::new(v, source)));
            }
        }
        if let Some(v) = self.env_value(key)? {
            return Ok(Some(v));
        }
        if let Some(v) = self.file_value(key.name) {
            let source = v.source;
            return match v.value {
                FileValue::One(s) => Ok(Some(Sourced::new(s, source))),
                FileValue::Many(_) => Err(ConfigError::Invalid {
                    origin: source,
                    value: "a list".into(),
                    problem: "is a list, but this setting takes one value".into(),
                    hint: Some(format!("give `{}` one value", key.name)),
                }),
            };
        }
        self.integration_value(key)
    }

    /// A list: flags replace the variable (comma-separated), which replaces the file's list.
    pub fn list(&self, key: &Key) -> Result<Vec<Sourced<String>>, ConfigError> {
        if let Some(f) = self.flag_values(key) {
            let source = f.source;
            return Ok(f
                .value
                .into_iter()
                .map(|v| Sourced::new(v, source.clone()))
                .collect());
        }
        if let Some(v) = self.env_value(key)? {
            return Ok(split(&v.value)
                .into_iter()
                .map(|s| Sourced::new(s, v.source.clone()))
                .collect());
        }
        if let Some(v) = self.file_value(key.name) {
            let items = match v.value {
                FileValue::One(s) => vec![s],
                FileValue::Many(items) => items,
            };
            return Ok(items
                .into_iter()
                .map(|s| Sourced::new(s, v.source.clone()))
                .collect());
        }
        Ok(match self.integration_value(key)? {
            Some(v) => vec![v],
            None => Vec::new(),
        })
    }

    /// A list every layer adds to (trust: CA files, plain-HTTP hosts).
    pub fn union(&self, key: &Key) -> Result<Vec<Sourced<String>>, ConfigError> {
        let mut out = Vec::new();
        if let Some(f) = self.flag_values(key) {
            for v in f.value {
                out.push(Sourced::new(v, f.source.clone()));
            }
        }
        if let Some(v) = self.env_value(key)? {
            out.extend(
                split(&v.value)
                    .into_iter()
                    .map(|s| Sourced::new(s, v.source.clone())),
            );
        }
        if let Some(v) = self.file_value(key.name) {
            let items = match v.value {
                FileValue::One(s) => vec![s],
                FileValue::Many(items) => items,
            };
            out.extend(items.into_iter().map(|s| Sourced::new(s, v.source.clone())));
        }
        for name in key.integration {
            if let Some(v) = self.env.get(name, true)? {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// A switch: a flag turns it on; a variable or the file say `true`/`false` (also `1`/`0`, `yes`/`no`).
    pub fn bool(&self, key: &Key) -> Result<Sourced<bool>, ConfigError> {
        match self.string(key)? {
            None => Ok(Sourced::default_value(false)),
            Some(v) => match v.value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(Sourced::new(true, v.source)),
                "false" | "0" | "no" | "off" | "" => Ok(Sourced::new(false, v.source)),
                _ => Err(ConfigError::Invalid {
                    origin: v.source,
                    value: v.value,
                    problem: "is not true or false".into(),
                    hint: Some(format!("set `{}` to true or false", key.name)),
                }),
            },
        }
    }

    /// A value parsed by `parse`, whose error becomes "`value` <problem>" naming the layer it came from.
    pub fn parsed<T>(
        &self,
        key: &Key,
        parse: impl Fn(&str) -> Result<T, String>,
        hint: &str,
    ) -> Result<Option<Sourced<T>>, ConfigError> {
        let Some(v) = self.string(key)? else {
            return Ok(None);
        };
        match parse(v.value.trim()) {
            Ok(t) => Ok(Some(Sourced::new(t, v.source))),
            Err(problem) => Err(ConfigError::Invalid {
                origin: v.source,
                value: v.value,
                problem,
                hint: Some(hint.into()),
            }),
        }
    }

    /// The name of the variable a secret is read from: `<key>_variable` in the file (per environment), else
    /// the defaults.
    pub fn secret_variables(&self, key: &str, defaults: &[&'static str]) -> Vec<String> {
        match self.file_value(&format!("{key}_variable")) {
            Some(Sourced {
                value: FileValue::One(name),
                ..
            }) => vec![name],
            // A GitLab job's variables belong to the job's environment: another environment (`status --env
            // dev` from a prod job) gets only the secrets its own `*_variable` keys name.
            _ if self.foreign_environment() => Vec::new(),
            _ => defaults.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Settings for an environment other than the one the GitLab job is deployed to.
    pub fn foreign_environment(&self) -> bool {
        match (&self.environment, self.env.raw("CI_ENVIRONMENT_NAME")) {
            // Only when the job's environment is one of the file's: a GitLab environment named otherwise
            // (`production` for flowship's `prod`) says nothing about which of flowship's it is.
            (Some(e), Some(job)) => {
                self.env.is_true("GITLAB_CI")
                    && e != job
                    && self.file.environments().iter().any(|k| k == job)
            }
            _ => false,
        }
    }
}

/// A variable's list: comma-separated, except inside `{...}` (a glob's alternatives).
fn split(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut cur) = (0usize, String::new());
    for c in v.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_split_on_commas_outside_braces() {
        assert_eq!(super::split("a, b,,c"), ["a", "b", "c"]);
        assert_eq!(
            super::split("apps/{x,y}/*.yaml,z"),
            ["apps/{x,y}/*.yaml", "z"]
        );
    }
}
