//! Registry credentials from wherever users already keep them, first match wins:
//! `FLOWSHIP_REGISTRY_USERNAME`/`_PASSWORD` (flag, env, `_FILE`, or `registry.username` in the file) >
//! `HARBOR_USERNAME`/`HARBOR_PASSWORD` (GitLab's Harbor integration, when `HARBOR_HOST` is this registry or
//! unset) > `DOCKER_AUTH_CONFIG` > `$DOCKER_CONFIG/config.json` (default `~/.docker/config.json`), including
//! `credHelpers` / `credsStore` (`docker-credential-<name> get`).

use super::{ConfigError, Env, Source, Sourced};
use crate::registry::Credential;
use crate::secret::Secret;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

pub fn resolve(
    host: &str,
    username: Option<Sourced<String>>,
    password: Option<Sourced<Secret>>,
    env: &Env,
) -> Result<Option<Credential>, ConfigError> {
    resolve_for(host, username, password, env, true)
}

/// As [`resolve`]; `target` says whether `host` is the registry the image goes to. GitLab's Harbor
/// integration without `HARBOR_HOST` is for that registry only: never for a base image's registry.
pub fn resolve_for(
    host: &str,
    username: Option<Sourced<String>>,
    password: Option<Sourced<Secret>>,
    env: &Env,
    target: bool,
) -> Result<Option<Credential>, ConfigError> {
    match (username, password) {
        (Some(u), Some(p)) => {
            return Ok(Some(Credential {
                username: u,
                password: p,
            }));
        }
        (Some(u), None) => {
            return Err(ConfigError::Invalid {
                origin: u.source,
                value: u.value,
                problem: "is a registry user name without a password".into(),
                hint: Some("set FLOWSHIP_REGISTRY_PASSWORD, or FLOWSHIP_REGISTRY_PASSWORD_FILE naming a file".into()),
            });
        }
        (None, Some(p)) => {
            return Err(ConfigError::Invalid {
                origin: p.source,
                value: "<redacted>".into(),
                problem: "is a registry password without a user name".into(),
                hint: Some("set FLOWSHIP_REGISTRY_USERNAME (robot accounts: FLOWSHIP_REGISTRY_USERNAME_FILE)".into()),
            });
        }
        (None, None) => {}
    }

    let harbor_host = env.raw("HARBOR_HOST");
    let for_this = match harbor_host {
        Some(h) => h.eq_ignore_ascii_case(host),
        None => target,
    };
    if for_this
        && let (Some(u), Some(p)) = (
            env.get("HARBOR_USERNAME", true)?,
            env.get("HARBOR_PASSWORD", true)?,
        )
    {
        return Ok(Some(Credential {
            username: u,
            password: p.map(Secret::new),
        }));
    }

    if let Some(json) = env.get("DOCKER_AUTH_CONFIG", true)? {
        let cfg: DockerConfig =
            serde_json::from_str(&json.value).map_err(|e| ConfigError::Invalid {
                origin: json.source.clone(),
                value: "<redacted>".into(),
                // Not serde's message: it quotes the value it choked on, which may be a secret.
                problem: format!(
                    "is not a Docker auth config (JSON {} at line {}, column {})",
                    kind_of(&e),
                    e.line(),
                    e.column()
                ),
                hint: Some(
                    r#"expected {"auths": {"host": {"auth": "base64(user:password)"}}}"#.into(),
                ),
            })?;
        if let Some(c) = lookup(&cfg, host, &json.source.to_string())? {
            return Ok(Some(c));
        }
    }

    let dir = match env.raw("DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d),
        None => match env.raw("HOME") {
            Some(h) => PathBuf::from(h).join(".docker"),
            None => return Ok(None),
        },
    };
    let path = dir.join("config.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let cfg: DockerConfig = serde_json::from_str(&text).map_err(|e| ConfigError::File {
        path: path.clone(),
        line: Some(e.line()),
        message: format!(
            "not a Docker config (JSON {} at column {})",
            kind_of(&e),
            e.column()
        ),
        hint: Some(
            "fix or remove it, or give credentials with FLOWSHIP_REGISTRY_USERNAME/_PASSWORD"
                .into(),
        ),
    })?;
    lookup(&cfg, host, &path.display().to_string())
}

/// What kind of JSON error, without the value it quotes.
fn kind_of(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "of the wrong shape",
        serde_json::error::Category::Eof => "cut short",
        serde_json::error::Category::Io => "unreadable",
    }
}

fn lookup(cfg: &DockerConfig, host: &str, origin: &str) -> Result<Option<Credential>, ConfigError> {
    if let Some(helper) = cfg.cred_helpers.get(host) {
        return run_helper(helper, host, &format!("{origin} credHelpers")).map(Some);
    }
    let hub = host == "docker.io" || host == "registry-1.docker.io";
    let entry = cfg.auths.iter().find(|(k, _)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        k.eq_ignore_ascii_case(host) || (hub && k == "index.docker.io")
    });
    if let Some((key, e)) = entry {
        let source = Source::DockerConfig {
            origin: format!("{origin} auths[{key}]"),
        };
        let (u, p) = match (&e.auth, &e.username, &e.password) {
            (_, Some(u), Some(p)) => (u.clone(), p.clone()),
            (Some(a), _, _) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match raw.as_deref().and_then(|s| s.split_once(':')) {
                    Some((u, p)) => (u.to_string(), p.to_string()),
                    None => {
                        return Err(ConfigError::Invalid {
                            origin: source,
                            value: "<redacted>".into(),
                            problem: "has an `auth` that is not base64 of user:password".into(),
                            hint: None,
                        });
                    }
                }
            }
            _ => return Ok(None),
        };
        return Ok(Some(Credential {
            username: Sourced::new(u, source.clone()),
            password: Sourced::new(Secret::new(p), source),
        }));
    }
    if let Some(store) = &cfg.creds_store {
        return run_helper(store, host, &format!("{origin} credsStore")).map(Some);
    }
    Ok(None)
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

fn run_helper(name: &str, host: &str, origin: &str) -> Result<Credential, ConfigError> {
    let program = format!("docker-credential-{name}");
    let source = Source::DockerConfig {
        origin: format!("{origin} ({program})"),
    };
    let fail = |problem: String| ConfigError::Invalid {
        origin: source.clone(),
        value: host.into(),
        problem,
        hint: Some(format!(
            "check that `{program}` is on PATH and knows this registry, or set FLOWSHIP_REGISTRY_USERNAME/_PASSWORD"
        )),
    };
    let mut cmd = Command::new(&program);
    // A credential helper gets none of flowship's own secrets.
    crate::image::deps::scrubbed(&mut cmd);
    let mut child = cmd
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| fail(format!("could not be asked for credentials: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(host.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("failed: {e}")))?;
    if !out.status.success() {
        // Helpers print "credentials not found in native keychain" for an unknown host: that means anonymous.
        return Err(fail(format!("found no credentials ({})", out.status)));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| fail("answered something that is not credentials JSON".into()))?;
    Ok(Credential {
        username: Sourced::new(answer.username, source.clone()),
        password: Sourced::new(Secret::new(answer.secret), source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_auth_config_auth_field_decodes() {
        let auth = base64::engine::general_purpose::STANDARD.encode("robot$p+ci:s3cret");
        let json = format!(r#"{{"auths":{{"https://harbor.example.com":{{"auth":"{auth}"}}}}}}"#);
        let env = Env::from_pairs(&[("DOCKER_AUTH_CONFIG", &json)]);
        let c = resolve("harbor.example.com", None, None, &env)
            .unwrap()
            .unwrap();
        assert_eq!(c.username.value, "robot$p+ci");
        assert_eq!(c.password.value.expose(), "s3cret");
        assert!(
            resolve("other.example.com", None, None, &env)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn harbor_integration_without_its_host_is_for_the_target_registry_only() {
        let env = Env::from_pairs(&[("HARBOR_USERNAME", "u"), ("HARBOR_PASSWORD", "p")]);
        assert!(
            resolve_for("h.example.com", None, None, &env, true)
                .unwrap()
                .is_some()
        );
        assert!(
            resolve_for("docker.io", None, None, &env, false)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn harbor_integration_applies_only_to_its_host() {
        let env = Env::from_pairs(&[
            ("HARBOR_HOST", "h.example.com"),
            ("HARBOR_USERNAME", "u"),
            ("HARBOR_PASSWORD", "p"),
        ]);
        assert!(
            resolve("h.example.com", None, None, &env)
                .unwrap()
                .is_some()
        );
        assert!(
            resolve("x.example.com", None, None, &env)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn user_without_password_is_an_error_that_names_the_fix() {
        let u = Sourced::new(
            "ci".to_string(),
            Source::Env {
                name: "FLOWSHIP_REGISTRY_USERNAME".into(),
            },
        );
        let err = resolve("h", Some(u), None, &Env::default()).unwrap_err();
        assert!(err.hint().unwrap().contains("FLOWSHIP_REGISTRY_PASSWORD"));
    }
}
