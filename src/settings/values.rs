//! Single settings that need more than "first layer wins": trust (every layer adds), numbers, sizes, image
//! references, URLs, secrets (from the variable the file names), registry credentials per host, the
//! environment, and the one timestamp of built layers.

use super::layers::{Key, Layers};
use super::{ConfigError, Env, RegistrySettings, Source, Sourced, TrustSettings, keys as k};
use crate::registry::Reference;
use crate::secret::Secret;
use std::path::PathBuf;

pub(super) fn trust(l: &Layers<'_>) -> Result<TrustSettings, ConfigError> {
    let ca_files: Vec<Sourced<PathBuf>> = l
        .union(&k::CA_FILES)?
        .into_iter()
        .map(|s| s.map(PathBuf::from))
        .collect();
    for ca in &ca_files {
        if !ca.value.is_file() {
            return Err(ConfigError::Invalid {
                origin: ca.source.clone(),
                value: ca.value.display().to_string(),
                problem: "is not a readable file".into(),
                hint: Some("give the path of a PEM file holding the CA certificate(s)".into()),
            });
        }
    }
    let plain_http = l.union(&k::PLAIN_HTTP)?;
    for p in &plain_http {
        let ok = p
            .value
            .rsplit_once(':')
            .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            return Err(ConfigError::Invalid {
                origin: p.source.clone(),
                value: p.value.clone(),
                problem: "is not HOST:PORT".into(),
                hint: Some("name the exact host and port, e.g. --plain-http 127.0.0.1:5000".into()),
            });
        }
    }
    Ok(TrustSettings {
        ca_files,
        plain_http,
    })
}

pub(super) fn number(l: &Layers<'_>, key: &Key, default: u64) -> Result<Sourced<u64>, ConfigError> {
    Ok(l.parsed(
        key,
        |s| s.parse::<u64>().map_err(|_| "is not a whole number".into()),
        &format!("give `{}` as a whole number", key.name),
    )?
    .unwrap_or_else(|| Sourced::default_value(default)))
}

pub(super) use crate::cli::parse_size;

pub(super) fn parse_repository(s: Sourced<String>) -> Result<Sourced<Reference>, ConfigError> {
    let parsed = Reference::parse(&s.value).map_err(|e| ConfigError::Invalid {
        origin: s.source.clone(),
        value: s.value.clone(),
        problem: format!("is not an image repository: {e}"),
        hint: Some("use registry/project/name, e.g. harbor.example.com/flows/etl".into()),
    })?;
    // On the command line and in variables the image may carry a tag and digest (the dotenv handoff
    // `FLOWSHIP_IMAGE=repo:tag@digest` from a build job); the file names the repository only.
    if matches!(s.source, Source::File { .. }) && (parsed.tag.is_some() || parsed.digest.is_some())
    {
        return Err(ConfigError::Invalid {
            origin: s.source,
            value: s.value,
            problem: "names a tag or digest, but this setting is the repository".into(),
            hint: Some(format!(
                "give `{}` in image.repository; tags come from --tag or FLOWSHIP_IMAGE",
                parsed.repository_ref()
            )),
        });
    }
    Ok(Sourced::new(parsed, s.source))
}

pub(super) fn check_url(u: Sourced<String>, what: &str) -> Result<Sourced<String>, ConfigError> {
    Ok(check_url_userinfo(u, what)?.0)
}

/// An http(s) URL without credentials in it, and the `user:password` it carried, as a secret. Credentials
/// written into a committed `flowship.yaml` are refused (exit 2); from a variable or a flag they are taken
/// out of the URL (which is then printed, logged and saved in plans) and kept only as a secret.
pub(super) fn check_url_userinfo(
    u: Sourced<String>,
    what: &str,
) -> Result<(Sourced<String>, Option<Sourced<Secret>>), ConfigError> {
    if let Ok(mut p) = url::Url::parse(&u.value)
        && (!p.username().is_empty() || p.password().is_some())
    {
        if matches!(u.source, crate::source::Source::File { .. }) {
            return Err(ConfigError::Invalid {
                origin: u.source,
                value: crate::secret::redact_url(&u.value),
                problem: "has credentials in it, in a file that is committed".into(),
                hint: Some(
                    "remove them from the URL, and give them in a variable (PREFECT_API_AUTH_STRING, FLOWSHIP_GITLAB_TOKEN, ...)".into(),
                ),
            });
        }
        let user = percent_decode(p.username());
        let pass = p.password().map(percent_decode).unwrap_or_default();
        let _ = p.set_username("");
        let _ = p.set_password(None);
        let secret = Sourced::new(Secret::new(format!("{user}:{pass}")), u.source.clone());
        let stripped = Sourced::new(p.to_string(), u.source);
        return Ok((check_plain(stripped, what)?, Some(secret)));
    }
    Ok((check_plain(u, what)?, None))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_plain(u: Sourced<String>, what: &str) -> Result<Sourced<String>, ConfigError> {
    match url::Url::parse(&u.value) {
        Ok(p) if matches!(p.scheme(), "http" | "https") && p.has_host() => Ok(Sourced::new(
            u.value.trim_end_matches('/').to_string(),
            u.source,
        )),
        _ => Err(ConfigError::Invalid {
            origin: u.source,
            value: crate::secret::redact_url(&u.value),
            problem: "is not an http(s) URL".into(),
            hint: Some(format!("give {what}")),
        }),
    }
}

/// A secret from the first variable that has it: the one `<key>_variable` names in the file (for the
/// environment in effect), else the defaults. Never from a flag or the file itself.
pub(super) fn secret(
    l: &Layers<'_>,
    key: &str,
    defaults: &[&'static str],
) -> Result<Option<Sourced<Secret>>, ConfigError> {
    let names = l.secret_variables(key, defaults);
    let custom = names
        .iter()
        .map(String::as_str)
        .ne(defaults.iter().copied());
    for n in &names {
        // Prefect's own variables are "integration" variables; a name the file gives is the user's own.
        let integration = !custom && !n.starts_with("FLOWSHIP_");
        if let Some(v) = l.env.get(n, integration)? {
            return Ok(Some(v.map(Secret::new)));
        }
    }
    Ok(None)
}

/// `--env`/`FLOWSHIP_ENV` must name an environment of the file; GitLab's `CI_ENVIRONMENT_NAME` is used only
/// when the file defines it (a job's environment need not be one of flowship's).
pub(super) fn environment(
    l: &Layers<'_>,
    env: &Env,
    known: &[String],
) -> Result<Option<Sourced<String>>, ConfigError> {
    if let Some(e) = l.string(&k::ENVIRONMENT)? {
        if !known.contains(&e.value) {
            let best = known.iter().max_by(|a, b| {
                strsim::jaro_winkler(&e.value, a).total_cmp(&strsim::jaro_winkler(&e.value, b))
            });
            let hint = match best {
                Some(best) if strsim::jaro_winkler(&e.value, best) > 0.75 => {
                    format!("did you mean `{best}`?")
                }
                _ if known.is_empty() => "define environments.<name> in flowship.yaml".into(),
                _ => format!("known environments: {}", known.join(", ")),
            };
            return Err(ConfigError::Invalid {
                origin: e.source,
                value: e.value,
                problem: "is not an environment of flowship.yaml".into(),
                hint: Some(hint),
            });
        }
        return Ok(Some(e));
    }
    Ok(env
        .get("CI_ENVIRONMENT_NAME", true)?
        .filter(|e| known.contains(&e.value)))
}

/// `SOURCE_DATE_EPOCH`, else `CI_COMMIT_TIMESTAMP`, else the epoch. A value that does not parse is an error:
/// silently building with the epoch would give an image that claims to be from 1970.
pub(super) fn source_date(env: &Env) -> Result<Sourced<u64>, ConfigError> {
    if let Some(s) = env.get("SOURCE_DATE_EPOCH", true)? {
        let n = s
            .value
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError::Invalid {
                origin: s.source.clone(),
                value: s.value.clone(),
                problem: "is not seconds since the epoch".into(),
                hint: Some(
                    "set SOURCE_DATE_EPOCH to a whole number, e.g. $(git log -1 --format=%ct)"
                        .into(),
                ),
            })?;
        return Ok(Sourced::new(n, s.source));
    }
    if let Some(ts) = env.get("CI_COMMIT_TIMESTAMP", true)? {
        return match crate::image::time::parse_iso8601(&ts.value) {
            Some(n) => Ok(Sourced::new(n, ts.source)),
            None => Err(ConfigError::Invalid {
                origin: ts.source,
                value: ts.value,
                problem: "is not an ISO 8601 time (2024-06-27T10:20:30+02:00)".into(),
                hint: Some("unset it, or set SOURCE_DATE_EPOCH, which takes precedence".into()),
            }),
        };
    }
    Ok(Sourced::default_value(0))
}

/// Credentials for every registry flowship will talk to: the image's, the base image's, the environments'
/// image registries, and the ones the command names (promote's SRC and DST, verify's IMAGE). The explicit user/password
/// (`FLOWSHIP_REGISTRY_*`) belong to the target registry only: the image's, or promote's destination.
pub(super) fn registry_credentials(
    l: &Layers<'_>,
    cli: &crate::cli::Cli,
    image: Option<&Sourced<Reference>>,
    base: Option<&Sourced<String>>,
) -> Result<RegistrySettings, ConfigError> {
    let user = l.string(&k::REGISTRY_USERNAME)?;
    let password = secret(l, "registry.password", k::REGISTRY_PASSWORD_VARS)?;
    let (promote_src, promote_dst) = match cli.command.promote_refs() {
        Some((s, d)) => (
            Reference::parse(s).ok().map(|r| r.registry),
            Reference::parse(d).ok().map(|r| r.registry),
        ),
        // `verify IMAGE` reads that image's registry, with the explicit credentials.
        None => (
            None,
            cli.command
                .verify_ref()
                .and_then(|v| Reference::parse(v).ok())
                .map(|r| r.registry),
        ),
    };
    let target = promote_dst
        .clone()
        .or_else(|| image.map(|i| i.value.registry.clone()));
    let mut hosts: Vec<String> = target.iter().cloned().collect();
    hosts.extend(promote_src);
    hosts.extend(
        base.and_then(|b| Reference::parse(&b.value).ok())
            .map(|r| r.registry),
    );
    let mut out = RegistrySettings::default();
    match (&target, &user, &password) {
        // Explicit credentials without a registry to give them to: still check they come in pairs.
        (None, Some(_), _) | (None, _, Some(_)) => {
            super::credentials::resolve("", user.clone(), password.clone(), l.env)?;
        }
        _ => {}
    }
    for host in hosts {
        if out.credentials.contains_key(&host) {
            continue;
        }
        let (u, p) = if Some(&host) == target.as_ref() {
            (user.clone(), password.clone())
        } else {
            (None, None)
        };
        let is_target = Some(&host) == target.as_ref();
        if let Some(c) = super::credentials::resolve_for(&host, u, p, l.env, is_target)? {
            out.credentials.insert(host, c);
        }
    }
    Ok(out)
}
