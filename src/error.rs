//! The top-level error: what failed, why, what to do, and which exit code that means.
//!
//! Exit codes (README, `--help`): 0 success · 1 an operation failed · 2 bad usage, config or input (nothing
//! was written) · 3 a policy refused the release · 4 `status` found drift. Under `--output json` an error is
//! also one JSON document on stdout (`{"error": {kind, message, causes, hint, exit_code}}`).

use crate::gitops::images::EditError;
use crate::gitops::remote::GitError;
use crate::http::{CaFileError, TransportError};
use crate::settings::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error(transparent)]
    CaFile(#[from] CaFileError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error(transparent)]
    Gitlab(#[from] crate::gitlab::api::GitlabError),
    #[error(transparent)]
    Prefect(#[from] crate::prefect::PrefectError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Layout(#[from] crate::image::layout::LayoutError),
    #[error(transparent)]
    Project(#[from] crate::prefect::project::ProjectError),
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// A policy refused the release (moving a tag backwards, scan gate, immutable tag): exit 3.
    #[error("{message}")]
    Policy {
        message: String,
        hint: Option<String>,
    },
    #[error("push rejected {attempts} times (other pipelines kept pushing first); last: {last}")]
    PushRejected { attempts: u32, last: String },
    /// A command found problems it has already reported (doctor's failed checks): exit 1, no extra message.
    #[error("{0}")]
    Reported(String),
    /// Like `Reported`, but what was reported is a refusal by configuration (a plain-HTTP endpoint not
    /// listed): exit 2, as the same refusal is anywhere else.
    #[error("{0}")]
    ReportedRefusal(String),
    /// `status` found the environments out of sync (reported already): exit 4, so a scheduled pipeline can
    /// alert on it.
    #[error("{0}")]
    Drift(String),
    #[error("cannot write {what}: {reason}")]
    Output { what: String, reason: String },
    /// The machine said no (a temporary directory, a file of flowship's own): not a bug, nothing to report.
    #[error("{what}: {reason}")]
    Local { what: String, reason: String },
    /// A bug: an invariant flowship relies on did not hold.
    #[error("internal error (this is a bug in flowship, please report it): {0}")]
    Internal(String),
}

/// A request flowship refused to send (plain HTTP to an unlisted host) is a configuration problem, wherever
/// in the chain of causes it sits. (`transparent` variants forward `source()` past themselves, so callers
/// holding one check it first.)
pub fn is_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.downcast_ref::<TransportError>()
            .is_some_and(TransportError::is_config)
            || c.downcast_ref::<GitError>()
                .is_some_and(GitError::is_config)
        {
            return true;
        }
        cause = c.source();
    }
    false
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(Box::new(e))
    }
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        let refused = match self {
            Error::Git(g) => g.is_config(),
            Error::Transport(t) => t.is_config(),
            e => is_refusal(e),
        };
        if refused {
            return 2;
        }
        match self {
            Error::Config(_)
            | Error::CaFile(_)
            | Error::Usage { .. }
            | Error::ReportedRefusal(_) => 2,
            Error::Edit(EditError::Verify { .. }) => 1,
            Error::Edit(e) if e.is_policy() => 3,
            Error::Edit(_) => 2,
            Error::Git(_) | Error::PushRejected { .. } | Error::Gitlab(_) | Error::Prefect(_) => 1,
            Error::Project(_) | Error::Layout(_) => 2,
            Error::Registry(crate::registry::RegistryError::Immutable { .. }) => 3,
            Error::Registry(_) => 1,
            Error::Policy { .. } => 3,
            Error::Drift(_) => 4,
            Error::Transport(_)
            | Error::Reported(_)
            | Error::Output { .. }
            | Error::Local { .. }
            | Error::Internal(_) => 1,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Config(e) => e.hint(),
            Error::CaFile(_) => {
                Some("give a PEM file with one or more `-----BEGIN CERTIFICATE-----` blocks".into())
            }
            Error::Transport(e) => e.hint(),
            Error::Git(e) => e.hint(),
            Error::Edit(e) => e.hint(),
            Error::Gitlab(e) => e.hint(),
            Error::Prefect(e) => e.hint(),
            Error::Project(e) => e.hint(),
            Error::Registry(e) => e.hint(),
            Error::Usage { hint, .. } | Error::Policy { hint, .. } => hint.clone(),
            Error::PushRejected { .. } => Some(
                "serialise bump jobs with a GitLab resource_group, or raise --max-attempts".into(),
            ),
            Error::Local { .. } => {
                Some("check TMPDIR (or the directory named) for free space and permissions".into())
            }
            _ => None,
        }
    }

    /// `error: ...`, one `caused by:` per underlying cause, then `hint: ...`.
    pub fn render(&self) -> String {
        let mut out = format!("error: {self}");
        for c in self.causes() {
            out.push_str(&format!("\n  caused by: {c}"));
        }
        if let Some(h) = self.hint() {
            out.push_str(&format!("\nhint: {h}"));
        }
        out
    }

    /// The messages of the underlying causes, outermost first. `transparent` variants repeat their inner
    /// message as the first source: identical lines are left out.
    pub fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cause = std::error::Error::source(self);
        let mut last = self.to_string();
        while let Some(c) = cause {
            let msg = c.to_string();
            if msg != last && !last.contains(&msg) {
                out.push(msg.clone());
            }
            last = msg;
            cause = c.source();
        }
        out
    }

    /// Which outside system or kind of input the error is about: a stable word for `--output json`
    /// (`{"error": {"kind": …}}`), so a pipeline can branch on it without parsing the message.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) | Error::CaFile(_) => "config",
            Error::Usage { .. } => "usage",
            Error::Transport(_) => "transport",
            Error::Git(_) | Error::PushRejected { .. } => "git",
            Error::Edit(_) => "manifest",
            Error::Gitlab(_) => "gitlab",
            Error::Prefect(_) => "prefect",
            Error::Registry(_) => "registry",
            Error::Layout(_) => "image",
            Error::Project(_) => "project",
            Error::Policy { .. } => "policy",
            Error::Reported(_) | Error::ReportedRefusal(_) | Error::Drift(_) => "reported",
            Error::Output { .. } | Error::Local { .. } => "local",
            Error::Internal(_) => "internal",
        }
    }

    /// Whether the command already said everything about this error (its own report is the output).
    pub fn is_reported(&self) -> bool {
        matches!(
            self,
            Error::Reported(_) | Error::ReportedRefusal(_) | Error::Drift(_)
        )
    }

    /// The error as the one JSON document of `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "kind": self.kind(),
                "message": self.to_string(),
                "causes": self.causes(),
                "hint": self.hint(),
                "exit_code": self.exit_code(),
            }
        })
    }
}
