//! An environment's hold: a small file in the GitOps repository (`.flowship/holds/<env>.yaml`) that a
//! rollback writes in the same commit as its re-pin. While it is there, `release` into that environment is
//! refused (exit 3), so the next automatic pipeline cannot roll forward over a rollback. It lives in the
//! GitOps repo, where the pins live: every runner sees it, it has history, and lifting it is a commit.
//! Flux does not read it (no kustomization names it).

use serde::{Deserialize, Serialize};

pub fn path(environment: &str) -> String {
    format!(".flowship/holds/{environment}.yaml")
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Hold {
    pub environment: String,
    /// The image the environment is held at.
    pub image: String,
    pub by: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub reason: String,
}

impl Hold {
    pub fn render(&self) -> String {
        let body = yaml_serde::to_string(self).unwrap_or_default();
        format!(
            "# Written by `flowship rollback`: releases into `{env}` are refused while this file exists.\n\
             # Lift it with `flowship rollback --env {env} --lift-hold`, or `flowship release --env {env} --lift-hold`.\n{body}",
            env = self.environment
        )
    }

    /// A hold file as written; `None` when it does not read as one (it is still a hold: see `describe`).
    pub fn parse(text: &str) -> Option<Self> {
        yaml_serde::from_str(text).ok()
    }
}

/// The refusal a release into a held environment gets.
pub fn refusal(environment: &str, text: &str) -> crate::error::Error {
    let who = match Hold::parse(text) {
        Some(h) => format!(
            "held at {} by {} since {} ({})",
            h.image, h.by, h.at, h.reason
        ),
        None => format!("held ({} exists)", path(environment)),
    };
    crate::error::Error::Policy {
        message: format!("environment `{environment}` is {who}; refusing to release into it"),
        hint: Some(format!(
            "lift the hold when the rollback is resolved: `flowship release --env {environment} --lift-hold`, or `flowship rollback --env {environment} --lift-hold`"
        )),
    }
}

/// Now, as RFC 3339 (UTC), without a date crate.
pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::image::time::iso8601(secs)
}
