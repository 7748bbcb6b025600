//! Single settings that need more than "first source wins": trust (every source adds), numbers, image
//! references, URLs, and the environment a bump's target set comes from.

use super::resolve::{Flags, Resolver};
use super::{ConfigError, Source, Sourced, TrustSettings};
use crate::registry::Reference;
use std::path::PathBuf;

pub(super) fn resolve_trust(
    r: &Resolver<'_>,
    g: &crate::cli::GlobalArgs,
) -> Result<TrustSettings, ConfigError> {
    let mut trust = TrustSettings::default();
    for p in &g.ca_files {
        trust.ca_files.push(Sourced::new(
            p.clone(),
            Source::Flag {
                name: "--ca-file".into(),
            },
        ));
    }
    if let Some(v) = r.env.get("FLOWSHIP_CA_FILE", false)? {
        trust.ca_files.push(v.map(PathBuf::from));
    }
    if let Some(path) = &r.file_path {
        for p in &r.file.tls.ca_files {
            trust.ca_files.push(Sourced::new(
                p.clone(),
                Source::File {
                    path: path.clone(),
                    key: "tls.ca_files".into(),
                },
            ));
        }
    }
    for name in ["CI_SERVER_TLS_CA_FILE", "SSL_CERT_FILE"] {
        if let Some(v) = r.env.raw(name) {
            trust.ca_files.push(Sourced::new(
                PathBuf::from(v),
                Source::Integration { name: name.into() },
            ));
        }
    }
    for ca in &trust.ca_files {
        if !ca.value.is_file() {
            return Err(ConfigError::Invalid {
                origin: ca.source.clone(),
                value: ca.value.display().to_string(),
                problem: "is not a readable file".into(),
                hint: Some("give the path of a PEM file holding the CA certificate(s)".into()),
            });
        }
    }

    let mut plain: Vec<Sourced<String>> = g
        .plain_http
        .iter()
        .map(|h| {
            Sourced::new(
                h.clone(),
                Source::Flag {
                    name: "--plain-http".into(),
                },
            )
        })
        .collect();
    if let Some(v) = r.env.get("FLOWSHIP_PLAIN_HTTP", false)? {
        plain.extend(
            v.value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|h| Sourced::new(h.to_string(), v.source.clone())),
        );
    }
    if let Some(path) = &r.file_path {
        plain.extend(r.file.tls.plain_http.iter().map(|h| {
            Sourced::new(
                h.clone(),
                Source::File {
                    path: path.clone(),
                    key: "tls.plain_http".into(),
                },
            )
        }));
    }
    for p in &plain {
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
    trust.plain_http = plain;
    Ok(trust)
}

pub(super) fn number(
    r: &Resolver<'_>,
    env: &str,
    key: &str,
    file: Option<u64>,
    default: u64,
) -> Result<Sourced<u64>, ConfigError> {
    if let Some(v) = r.env.get(env, false)? {
        let n = v
            .value
            .trim()
            .parse::<u64>()
            .map_err(|_| ConfigError::Invalid {
                origin: v.source.clone(),
                value: v.value.clone(),
                problem: "is not a whole number".into(),
                hint: None,
            })?;
        return Ok(Sourced::new(n, v.source));
    }
    if let (Some(n), Some(path)) = (file, &r.file_path) {
        return Ok(Sourced::new(
            n,
            Source::File {
                path: path.clone(),
                key: key.into(),
            },
        ));
    }
    Ok(Sourced::default_value(default))
}

pub(super) fn parse_repository(
    s: Sourced<String>,
    _r: &Resolver<'_>,
) -> Result<Sourced<Reference>, ConfigError> {
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
    match url::Url::parse(&u.value) {
        Ok(p) if matches!(p.scheme(), "http" | "https") => Ok(Sourced::new(
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

/// `--env`/`FLOWSHIP_ENV` must name an environment of the file; GitLab's `CI_ENVIRONMENT_NAME` is used only
/// when the file defines it (a job's environment need not have a target set).
pub(super) fn resolve_environment(
    r: &Resolver<'_>,
    flags: &Flags<'_>,
    bump: Option<&crate::cli::BumpArgs>,
) -> Result<Option<Sourced<String>>, ConfigError> {
    let known = &r.file.gitops.environments;
    if let Some(e) = flags.get(
        bump.and_then(|b| b.environment.as_ref()),
        "environment",
        "--env",
        "FLOWSHIP_ENV",
    ) {
        if !known.contains_key(&e.value) {
            let names: Vec<&str> = known.keys().map(String::as_str).collect();
            let hint = match names.iter().max_by(|a, b| {
                strsim::jaro_winkler(&e.value, a).total_cmp(&strsim::jaro_winkler(&e.value, b))
            }) {
                Some(best) if strsim::jaro_winkler(&e.value, best) > 0.75 => {
                    format!("did you mean `{best}`?")
                }
                _ if names.is_empty() => {
                    "define gitops.environments.<name> in flowship.yaml".into()
                }
                _ => format!("known environments: {}", names.join(", ")),
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
    Ok(r.env
        .get("CI_ENVIRONMENT_NAME", true)?
        .filter(|e| known.contains_key(&e.value)))
}
