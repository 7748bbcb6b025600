//! The resolved settings as a flat list of `key = value (source)` entries, for `flowship settings`.
//! Secrets appear as `<redacted>` with their source, so a user can see *that* and *where* a token was found.

use super::{Settings, Source, Sourced};
use serde::Serialize;
use std::fmt::Display;

#[derive(Debug, Serialize)]
pub struct Entry {
    pub key: &'static str,
    /// `None` when unset. Secrets are `<redacted>`.
    pub value: Option<serde_json::Value>,
    pub source: Option<String>,
    pub secret: bool,
}

fn entry<T: Display>(key: &'static str, v: Option<&Sourced<T>>, secret: bool) -> Entry {
    Entry {
        key,
        value: v.map(|v| {
            serde_json::Value::String(if secret {
                "<redacted>".into()
            } else {
                v.value.to_string()
            })
        }),
        source: v.map(|v| v.source.to_string()),
        secret,
    }
}

fn json_entry<T: Serialize>(key: &'static str, v: &Sourced<T>) -> Entry {
    Entry {
        key,
        value: serde_json::to_value(&v.value).ok(),
        source: Some(v.source.to_string()),
        secret: false,
    }
}

fn list_entry<T: Display>(key: &'static str, items: &[Sourced<T>]) -> Entry {
    let value = serde_json::Value::Array(
        items
            .iter()
            .map(|i| serde_json::Value::String(i.value.to_string()))
            .collect(),
    );
    let mut sources: Vec<String> = items.iter().map(|i| i.source.to_string()).collect();
    sources.dedup();
    let source = if sources.is_empty() {
        Source::Default.to_string()
    } else {
        sources.join(", ")
    };
    Entry {
        key,
        value: Some(value),
        source: Some(source),
        secret: false,
    }
}

impl Settings {
    pub fn entries(&self) -> Vec<Entry> {
        let path = self.config_file.as_ref().map(|p| p.as_ref_display());
        let cred = self.registry.credential.as_ref();
        vec![
            entry("config", path.as_ref(), false),
            json_entry("output", &self.output),
            json_entry("dry_run", &self.dry_run),
            entry(
                "dotenv",
                self.dotenv.as_ref().map(|p| p.as_ref_display()).as_ref(),
                false,
            ),
            list_entry(
                "tls.ca_files",
                &self
                    .trust
                    .ca_files
                    .iter()
                    .map(|c| c.as_ref_display())
                    .collect::<Vec<_>>(),
            ),
            list_entry("tls.plain_http", &self.trust.plain_http),
            json_entry("http.retries", &self.http.retries),
            json_entry(
                "http.timeout_secs",
                &Sourced::new(
                    self.http.timeout.value.as_secs(),
                    self.http.timeout.source.clone(),
                ),
            ),
            entry("image", self.image.as_ref(), false),
            entry("registry.username", cred.map(|c| &c.username), false),
            entry("registry.password", cred.map(|c| &c.password), true),
            entry(
                "gitops.repo",
                self.gitops.repo.as_ref().map(|r| r.redacted()).as_ref(),
                false,
            ),
            entry("gitops.branch", Some(&self.gitops.branch), false),
            entry("gitops.username", Some(&self.gitops.username), false),
            entry("gitops.token", self.gitops.token.as_ref(), true),
            entry("gitops.ssh_key", self.gitops.ssh_key.as_ref(), true),
            entry(
                "gitops.known_hosts",
                self.gitops
                    .known_hosts
                    .as_ref()
                    .map(|p| p.as_ref_display())
                    .as_ref(),
                false,
            ),
            entry("gitops.author_name", Some(&self.gitops.author_name), false),
            entry(
                "gitops.author_email",
                Some(&self.gitops.author_email),
                false,
            ),
            list_entry("gitops.paths", &self.gitops.paths),
            list_entry("gitops.policies", &self.gitops.policies),
            entry(
                "gitops.environment",
                self.gitops.environment.as_ref(),
                false,
            ),
            list_entry("gitops.targets", &self.gitops.targets),
            entry("gitops.monotonic", self.gitops.monotonic.as_ref(), false),
            entry(
                "gitops.commit_message",
                self.gitops.commit_message.as_ref(),
                false,
            ),
            entry("prefect.api_url", self.prefect.api_url.as_ref(), false),
            entry("prefect.api_key", self.prefect.api_key.as_ref(), true),
            entry(
                "prefect.auth_string",
                self.prefect.auth_string.as_ref(),
                true,
            ),
            entry("prefect.work_pool", self.prefect.work_pool.as_ref(), false),
            entry(
                "prefect.file",
                Some(&self.prefect.file.as_ref_display()),
                false,
            ),
            entry("gitlab.url", self.gitlab.api_url.as_ref(), false),
            entry("gitlab.project", self.gitlab.project.as_ref(), false),
            entry("gitlab.token", self.gitlab.token.as_ref(), true),
        ]
    }
}

impl Sourced<std::path::PathBuf> {
    fn as_ref_display(&self) -> Sourced<String> {
        Sourced::new(self.value.display().to_string(), self.source.clone())
    }
}

impl Sourced<String> {
    fn redacted(&self) -> Sourced<String> {
        Sourced::new(crate::secret::redact_url(&self.value), self.source.clone())
    }
}
