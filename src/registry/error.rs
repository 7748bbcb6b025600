//! What can go wrong talking to a registry, each with the fix a user can make.

use crate::http::TransportError;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry {registry}: {source}")]
    Transport {
        registry: String,
        source: TransportError,
    },
    #[error("registry {registry} rejected the credentials of `{user}`{}", detail_suffix(.detail))]
    BadCredentials {
        registry: String,
        user: String,
        detail: String,
    },
    #[error("registry {registry} needs credentials, and none were found")]
    NeedsCredentials { registry: String },
    #[error("registry {registry}: project `{project}` not found")]
    ProjectNotFound { registry: String, project: String },
    #[error("registry {registry} denies `{user}` push access to {repository}{}", detail_suffix(.detail))]
    PushDenied {
        registry: String,
        repository: String,
        user: String,
        detail: String,
    },
    #[error("registry {registry} refused the token in the middle of an upload (expired)")]
    TokenExpired { registry: String },
    #[error("registry {registry}: `{reference}` is immutable; refusing to move it{}", detail_suffix(.detail))]
    Immutable {
        registry: String,
        reference: String,
        detail: String,
    },
    #[error("registry {registry}: {what} does not match its digest {expected} (got {actual})")]
    DigestMismatch {
        registry: String,
        what: String,
        expected: String,
        actual: String,
    },
    /// The registry served something that is not what it claims to be (a manifest that does not parse):
    /// the registry's fault or a hostile answer, never a flowship bug.
    #[error("registry {registry} served a malformed {what}: {detail}")]
    Malformed {
        registry: String,
        what: String,
        detail: String,
    },
    #[error("registry {registry} answered {status} to {what}{}", detail_suffix(.detail))]
    Protocol {
        registry: String,
        what: String,
        status: u16,
        detail: String,
    },
}

fn detail_suffix(d: &str) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(": {d}")
    }
}

/// A Harbor robot name whose `$` a shell or GitLab's variable expansion ate: `robot$ci+prefect` arrives as
/// `robot+prefect` (`$ci` expanded to nothing). Harbor robot names always start with `robot$`.
pub fn eaten_robot_name(user: &str) -> bool {
    user.starts_with("robot") && !user.starts_with("robot$") && user.contains('+')
}

const EATEN_ROBOT: &str = "Harbor robot names start with `robot$`; this one arrived without it, so the `$...` part was \
     probably expanded as a variable. Pass the name through FLOWSHIP_REGISTRY_USERNAME_FILE, or turn off \
     \"Expand variable reference\" for the GitLab CI/CD variable";

impl RegistryError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RegistryError::Transport { source, .. } => source.hint(),
            RegistryError::BadCredentials { user, .. }
            | RegistryError::PushDenied { user, .. }
                if eaten_robot_name(user) =>
            {
                Some(EATEN_ROBOT.into())
            }
            RegistryError::BadCredentials { user, .. } if user.contains('$') => Some(
                "robot account names contain `$`: pass it through FLOWSHIP_REGISTRY_USERNAME_FILE or an unexpanded \
                 GitLab variable (`expand: false`), never through a shell"
                    .into(),
            ),
            RegistryError::BadCredentials { .. } => Some(
                "check FLOWSHIP_REGISTRY_USERNAME/FLOWSHIP_REGISTRY_PASSWORD (or HARBOR_USERNAME/HARBOR_PASSWORD, DOCKER_AUTH_CONFIG)".into(),
            ),
            RegistryError::NeedsCredentials { .. } => Some(
                "set FLOWSHIP_REGISTRY_USERNAME and FLOWSHIP_REGISTRY_PASSWORD (or their _FILE variants), or log in with docker".into(),
            ),
            RegistryError::ProjectNotFound { .. } => Some("create the project in Harbor, or pass --create-project".into()),
            RegistryError::PushDenied { .. } => {
                Some("give the account push permission on the project (Harbor robot: repository push + artifact read)".into())
            }
            RegistryError::Immutable { .. } => Some("push a new tag (Harbor's immutable-tag rule protects this one), or promote by digest".into()),
            RegistryError::DigestMismatch { .. } => Some(
                "the registry (or a proxy in front of it) served other bytes than the digest names; check for a caching proxy rewriting manifests".into(),
            ),
            RegistryError::Malformed { .. } => Some(
                "the source registry (or a proxy in front of it) serves a broken manifest: check the image with `skopeo inspect --raw`".into(),
            ),
            RegistryError::TokenExpired { .. } => None,
            RegistryError::Protocol { .. } => None,
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The registry's own words from an OCI error body (`{"errors":[{"code","message"}]}`), or the raw body.
pub(super) fn error_detail(body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(b) if !b.errors.is_empty() => b
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        _ => body.trim().chars().take(300).collect(),
    }
}

/// Harbor answers a push into a missing project with `401 UNAUTHORIZED project X not found`.
pub(super) fn harbor_missing_project(detail: &str) -> Option<String> {
    let i = detail.find("project ")?;
    let rest = &detail[i + "project ".len()..];
    let (name, tail) = rest.split_once(' ')?;
    tail.starts_with("not found")
        .then(|| name.trim_matches(['"', '\'']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_harbors_missing_project_error() {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"project flows not found: project flows not found"}]}"#;
        assert_eq!(
            harbor_missing_project(&error_detail(body)).as_deref(),
            Some("flows")
        );
        assert_eq!(
            harbor_missing_project("UNAUTHORIZED authentication required"),
            None
        );
    }

    #[test]
    fn a_robot_name_without_its_dollar_is_recognised() {
        assert!(eaten_robot_name("robot+prefect"));
        assert!(!eaten_robot_name("robot$ci+prefect"));
        assert!(!eaten_robot_name("ciuser"));
        let e = RegistryError::PushDenied {
            registry: "h".into(),
            repository: "r".into(),
            user: "robot+prefect".into(),
            detail: String::new(),
        };
        assert!(e.hint().unwrap().contains("Expand variable reference"));
    }
}
