//! The resolved settings as a flat list of `key = value (source)` entries, for `flowship settings`: every
//! section, exactly as an operation would receive it. Secrets appear as `<redacted>` with their source, so a
//! user can see *that* and *where* a token was found.

use super::{Settings, Source, Sourced};
use serde::Serialize;
use serde_json::Value;
use std::fmt::Display;

#[derive(Debug, Serialize)]
pub struct Entry {
    pub key: String,
    /// `None` when unset. Secrets are `<redacted>`.
    pub value: Option<Value>,
    pub source: Option<String>,
    pub secret: bool,
}

#[derive(Default)]
struct Entries(Vec<Entry>);

impl Entries {
    fn one<T: Display>(&mut self, key: &str, v: Option<&Sourced<T>>) {
        self.0.push(Entry {
            key: key.into(),
            value: v.map(|v| Value::String(v.value.to_string())),
            source: v.map(|v| v.source.to_string()),
            secret: false,
        });
    }

    fn json<T: Serialize>(&mut self, key: &str, v: &Sourced<T>) {
        self.0.push(Entry {
            key: key.into(),
            value: serde_json::to_value(&v.value).ok(),
            source: Some(v.source.to_string()),
            secret: false,
        });
    }

    fn secret<T>(&mut self, key: &str, v: Option<&Sourced<T>>) {
        self.0.push(Entry {
            key: key.into(),
            value: v.map(|_| Value::String("<redacted>".into())),
            source: v.map(|v| v.source.to_string()),
            secret: true,
        });
    }

    fn list<T: Display>(&mut self, key: &str, items: &[Sourced<T>]) {
        let value = Value::Array(
            items
                .iter()
                .map(|i| Value::String(i.value.to_string()))
                .collect(),
        );
        let mut sources: Vec<String> = items.iter().map(|i| i.source.to_string()).collect();
        sources.dedup();
        let source = if sources.is_empty() {
            Source::Default.to_string()
        } else {
            sources.join(", ")
        };
        self.0.push(Entry {
            key: key.into(),
            value: Some(value),
            source: Some(source),
            secret: false,
        });
    }
}

fn display(p: &Sourced<std::path::PathBuf>) -> Sourced<String> {
    Sourced::new(p.value.display().to_string(), p.source.clone())
}

impl Settings {
    pub fn entries(&self) -> Vec<Entry> {
        let mut e = Entries::default();
        e.one("config", self.config_file.as_ref().map(display).as_ref());
        e.one("environment", self.environment.as_ref());
        e.json("output", &self.output);
        e.json("dry_run", &self.dry_run);
        e.one("dotenv", self.dotenv.as_ref().map(display).as_ref());
        e.list(
            "tls.ca_files",
            &self.trust.ca_files.iter().map(display).collect::<Vec<_>>(),
        );
        e.list("tls.plain_http", &self.trust.plain_http);
        e.json("http.retries", &self.http.retries);
        e.json(
            "http.timeout_secs",
            &Sourced::new(
                self.http.timeout.value.as_secs(),
                self.http.timeout.source.clone(),
            ),
        );
        e.one(super::keys::IMAGE.name, self.image.as_ref());
        if self.handoff.as_ref().map(|h| &h.value) != self.image.as_ref().map(|i| &i.value) {
            e.one("image.handoff", self.handoff.as_ref());
        }
        self.registry_entries(&mut e);
        self.build_entries(&mut e);
        self.gitops_entries(&mut e);
        self.prefect_entries(&mut e);
        self.sign_entries(&mut e);
        e.one("gitlab.url", self.gitlab.api_url.as_ref());
        e.one("gitlab.project", self.gitlab.project.as_ref());
        e.secret("gitlab.token", self.gitlab.token.as_ref());
        e.json("source_date", &self.source_date);
        e.0
    }

    fn registry_entries(&self, e: &mut Entries) {
        // The image's registry under the plain keys; every other registry by host.
        let image_host = self.image.as_ref().map(|i| i.value.registry.clone());
        let main = image_host
            .as_deref()
            .and_then(|h| self.registry.credentials.get(h));
        e.one("registry.username", main.map(|c| &c.username));
        e.secret("registry.password", main.map(|c| &c.password));
        for (host, c) in &self.registry.credentials {
            if Some(host) != image_host.as_ref() {
                e.one(&format!("registry.{host}.username"), Some(&c.username));
                e.secret(&format!("registry.{host}.password"), Some(&c.password));
            }
        }
    }

    fn build_entries(&self, e: &mut Entries) {
        let b = &self.build;
        e.one("image.base", b.base.as_ref());
        e.one("image.context", Some(&display(&b.context)));
        e.one(
            "image.requirements",
            b.requirements.as_ref().map(display).as_ref(),
        );
        e.one(
            "image.workspace",
            b.workspace.as_ref().map(display).as_ref(),
        );
        e.list("image.platforms", &b.platforms);
        e.one("image.python_version", b.python_version.as_ref());
        e.one("image.workdir", b.workdir.as_ref());
        e.one(
            super::keys::CACHE_DIR.name,
            b.cache_dir.as_ref().map(display).as_ref(),
        );
        e.list(
            super::keys::IMAGE_ENV.name,
            &b.env
                .iter()
                .map(|s| Sourced::new(format!("{}={}", s.value.0, s.value.1), s.source.clone()))
                .collect::<Vec<_>>(),
        );
        let u = &self.upload;
        // Shown under its file key; unset means one streamed PUT per blob.
        match &u.chunk_size {
            Some(c) => e.json(super::keys::CHUNK_SIZE.name, c),
            None => e.json(
                super::keys::CHUNK_SIZE.name,
                &Sourced::default_value("none (monolithic: one streamed PUT)".to_string()),
            ),
        }
        e.json("upload.parallel", &u.parallel);
        e.json("harbor.create_project", &u.create_project);
        e.one("harbor.scan_gate", u.scan_gate.as_ref());
        e.json(
            "harbor.scan_timeout_secs",
            &Sourced::new(
                u.scan_timeout.value.as_secs(),
                u.scan_timeout.source.clone(),
            ),
        );
    }

    fn gitops_entries(&self, e: &mut Entries) {
        let g = &self.gitops;
        let repo = g
            .repo
            .as_ref()
            .map(|r| Sourced::new(crate::secret::redact_url(&r.value), r.source.clone()));
        e.one("gitops.repo", repo.as_ref());
        e.one("gitops.branch", Some(&g.branch));
        e.one("gitops.username", Some(&g.username));
        e.secret("gitops.token", g.token.as_ref());
        e.secret("gitops.ssh_key", g.ssh_key.as_ref());
        e.one(
            "gitops.known_hosts",
            g.known_hosts.as_ref().map(display).as_ref(),
        );
        e.one("gitops.author_name", Some(&g.author_name));
        e.one("gitops.author_email", Some(&g.author_email));
        e.list("gitops.paths", &g.paths);
        e.list("gitops.policies", &g.policies);
        e.list("gitops.targets", &g.targets);
        e.one("gitops.monotonic", g.monotonic.as_ref());
        e.one("gitops.pin", Some(&g.pin));
        e.one("gitops.markers", Some(&g.markers));
        e.one("bump.new_name", g.new_name.as_ref());
        e.one("bump.expect_tag", g.expect_tag.as_ref());
        e.one("bump.expect_digest", g.expect_digest.as_ref());
        e.json("gitops.merge_request", &g.merge_request);
        e.json("gitops.max_attempts", &g.max_attempts);
        e.one("gitops.commit_message", g.commit_message.as_ref());
        for c in &self.clusters {
            e.list(&format!("clusters.{}.targets", c.name), &c.targets);
            e.one(
                &format!("clusters.{}.work_pool", c.name),
                c.work_pool.as_ref(),
            );
        }
    }

    fn prefect_entries(&self, e: &mut Entries) {
        let p = &self.prefect;
        e.one("prefect.api_url", p.api_url.as_ref());
        e.secret("prefect.api_key", p.api_key.as_ref());
        e.secret("prefect.auth_string", p.auth_string.as_ref());
        e.one("prefect.work_pool", p.work_pool.as_ref());
        let files: Vec<String> = p
            .files
            .iter()
            .map(|f| f.value.display().to_string())
            .collect();
        e.one(
            "prefect.file",
            Some(&Sourced::new(files.join(", "), p.file.source.clone())),
        );
        e.json("prefect.concurrency", &p.concurrency);
        e.one("prefect.create_work_pool", p.create_work_pool.as_ref());
        e.json("prefect.strict", &p.strict);
        e.json("prefect.prune", &p.prune);
        let smoke: Vec<String> = p.smoke.iter().map(|s| s.value.clone()).collect();
        if let Some(first) = p.smoke.first() {
            e.one(
                "prefect.smoke",
                Some(&Sourced::new(smoke.join(", "), first.source.clone())),
            );
        }
        e.json("prefect.smoke_timeout", &p.smoke_timeout);
        e.json("prefect.rollback_on_failure", &p.rollback_on_failure);
        e.one("prefect.image_pull_secret", p.image_pull_secret.as_ref());
    }

    fn sign_entries(&self, e: &mut Entries) {
        e.secret("sign.key", self.sign.key.as_ref());
        e.secret("sign.password", self.sign.password.as_ref());
        e.json("sign.required", &self.sign.required);
        e.one("verify.key", self.verify.key.as_ref().map(display).as_ref());
        e.one(
            "verify.pull_username",
            self.verify.pull.as_ref().map(|c| &c.username),
        );
        e.secret(
            "verify.pull_password",
            self.verify.pull.as_ref().map(|c| &c.password),
        );
    }
}
