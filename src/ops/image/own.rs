//! `flowship build --self-image`: the image of the flowship that runs (its own binary), planned like any
//! other image (what the registry lacks, which tags point where) plus its SBOM referrer.

use super::{LayoutWrite, Plan, ReferrerParts, ReferrerPlan, attached, compare, usage};
use crate::error::Error;
use crate::image::manifest;
use crate::image::own::{self, Base, Input, OwnError};
use crate::registry::Reference;
use crate::registry::blobs::Source;
use crate::registry::push::Blob;
use crate::registry::session::Session;
use crate::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct OwnRequest {
    pub tags: Vec<String>,
    pub push: bool,
    pub oci_layout: Option<PathBuf>,
    /// `None`: from scratch; else the base (e.g. a Python image for build jobs).
    pub base: Option<String>,
    /// `SRC:DEST` files to add.
    pub add: Vec<String>,
}

/// Where the machine keeps its CA bundle: `SSL_CERT_FILE`, else the usual places (Debian, Fedora, Alpine).
fn ca_bundle(settings: &Settings) -> PathBuf {
    if let Some(f) = settings.template_env.get("SSL_CERT_FILE") {
        return PathBuf::from(f);
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .unwrap_or_else(|| PathBuf::from("/etc/ssl/certs/ca-certificates.crt"))
}

fn parse_add(add: &[String]) -> Result<Vec<(PathBuf, String)>, Error> {
    add.iter()
        .map(|a| {
            let bad = || {
                usage(
                    format!("--add `{a}` is not FILE:/PATH/IN/IMAGE"),
                    "e.g. --add /usr/bin/busybox:/bin/sh",
                )
            };
            let (src, dest) = a.rsplit_once(':').ok_or_else(bad)?;
            if src.is_empty()
                || !dest.starts_with('/')
                || dest.ends_with('/')
                || dest.split('/').any(|c| c == ".." || c == ".")
            {
                return Err(bad());
            }
            Ok((PathBuf::from(src), dest.to_string()))
        })
        .collect()
}

fn own_error(e: OwnError) -> Error {
    match e {
        OwnError::Input { .. } => Error::Usage {
            hint: e.hint(),
            message: e.to_string(),
        },
        OwnError::Io(m) => Error::Local {
            what: "building flowship's own image".into(),
            reason: m,
        },
    }
}

/// The base's platform manifest for `arch`, its config and its layers.
async fn read_base(session: &Session, base: &Reference, arch: &str) -> Result<Base, Error> {
    let bad = |reason: String| {
        usage(
            format!("base image {base} {reason}"),
            "pass --base with a linux image of the binary's architecture",
        )
    };
    let reference = base
        .digest
        .clone()
        .or(base.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let (mut bytes, served, mut digest) = session
        .manifest_get(&base.repository, &reference)
        .await?
        .ok_or_else(|| bad("does not exist".into()))?;
    if manifest::is_index(&manifest::media_type(&bytes, &served)) {
        let (children, _) =
            manifest::references(&bytes, &digest).map_err(|e| bad(e.to_string()))?;
        let child = children
            .iter()
            .find(|c| {
                c.platform
                    .as_ref()
                    .is_some_and(|p| p["os"] == "linux" && p["architecture"] == arch)
            })
            .ok_or_else(|| bad(format!("has no linux/{arch} image")))?;
        (bytes, _, digest) = session
            .manifest_get(&base.repository, &child.digest)
            .await?
            .ok_or_else(|| bad("lost a child manifest".into()))?;
    }
    let (children, refs) = manifest::references(&bytes, &digest).map_err(|e| bad(e.to_string()))?;
    let Some(config_d) = refs.first().filter(|_| children.is_empty()) else {
        return Err(bad("is not an image".into()));
    };
    let config_bytes = session
        .blob_bytes(
            &base.repository,
            &config_d.digest,
            crate::registry::blobs::MAX_CONFIG,
        )
        .await?;
    let config: serde_json::Value = serde_json::from_slice(&config_bytes)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| bad("has a config that is not a JSON object".into()))?;
    let layers = refs[1..]
        .iter()
        .map(|l| {
            let mut l = l.clone();
            l.media_type = manifest::oci_layer_type(&l.media_type);
            l
        })
        .collect();
    Ok(Base {
        name: base.to_string(),
        digest,
        config,
        layers,
    })
}

fn labels(settings: &Settings) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("org.opencontainers.image.title", "flowship".to_string()),
        (
            "org.opencontainers.image.description",
            env!("CARGO_PKG_DESCRIPTION").to_string(),
        ),
        (
            "org.opencontainers.image.version",
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        (
            "org.opencontainers.image.licenses",
            env!("CARGO_PKG_LICENSE").to_string(),
        ),
        (
            "org.opencontainers.image.created",
            crate::image::time::iso8601(settings.source_date.value),
        ),
    ]);
    if let Some(s) = &settings.ci.commit_sha {
        l.insert("org.opencontainers.image.revision", s.clone());
    }
    if let Some(u) = &settings.ci.project_url {
        l.insert("org.opencontainers.image.source", u.clone());
    }
    l.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub async fn plan_own(
    ctx: &crate::ops::Context<'_>,
    settings: &Settings,
    req: &OwnRequest,
) -> Result<Plan, Error> {
    let image = settings.image_for("build --self-image")?;
    let base = req
        .base
        .as_ref()
        .map(|b| {
            Reference::parse(b)
                .map_err(|e| usage(format!("--base `{b}`: {e}"), "e.g. python:3.12-slim"))
        })
        .transpose()?;
    let mut tags = req.tags.clone();
    if tags.is_empty() {
        let v = env!("CARGO_PKG_VERSION");
        tags.push(match base {
            Some(_) => format!("{v}-python"),
            None => v.to_string(),
        });
    }
    super::check_tags(&tags)?;
    let binary = std::env::current_exe().map_err(|e| Error::Local {
        what: "cannot find this flowship binary".into(),
        reason: e.to_string(),
    })?;
    // Bad input before any request: a binary the image cannot run.
    let arch = own::check_binary(&binary, base.is_none()).map_err(own_error)?;
    let add = parse_add(&req.add)?;
    let repo = image.value.clone();
    let target = match req.push {
        true => Some(ctx.registry(settings, &repo).await?),
        false => None,
    };
    let base_read = match &base {
        Some(b) => {
            let s = ctx.registry(settings, b).await?;
            Some((read_base(&s, b, arch).await?, s, b.repository.clone()))
        }
        None => None,
    };
    let scratch = Arc::new(tempfile::tempdir().map_err(|e| Error::Local {
        what: "cannot create a temporary directory".into(),
        reason: e.to_string(),
    })?);
    let base_session = base_read.as_ref().map(|(_, s, r)| (s.clone(), r.clone()));
    let input = Input {
        binary,
        ca_bundle: ca_bundle(settings),
        add,
        base: base_read.map(|(b, _, _)| b),
        mtime: settings.source_date.value,
        labels: labels(settings),
    };
    let made = own::make(&input, scratch.path()).map_err(own_error)?;
    let same_registry = base.as_ref().is_some_and(|b| b.registry == repo.registry);
    let mut blobs: Vec<Blob> = Vec::new();
    if let Some((s, r)) = &base_session {
        blobs.extend(made.base_layers.iter().map(|d| Blob {
            descriptor: d.clone(),
            source: Source::Remote {
                session: s.clone(),
                repository: r.clone(),
            },
            mount_from: same_registry.then(|| r.clone()),
        }));
    }
    blobs.extend(made.files.iter().map(|(d, p)| Blob {
        descriptor: d.clone(),
        source: Source::File(p.clone()),
        mount_from: None,
    }));
    let layout = req.oci_layout.clone().map(|dir| LayoutWrite {
        dir,
        files: made.files.clone(),
        base_layers: made.base_layers.clone(),
        base: base_session
            .clone()
            .map(|(s, r)| crate::registry::repo::Repo::new(s, r)),
    });
    let mut plan = compare(
        target.clone(),
        repo,
        blobs,
        vec![made.manifest.clone()],
        tags,
    )
    .await?;
    let present = match (&target, plan.present) {
        (Some(s), true) => attached(s, &plan)
            .await?
            .contains(&made.sbom.manifest.digest),
        _ => false,
    };
    plan.referrers = vec![ReferrerPlan {
        artifact_type: made.sbom.artifact_type.clone(),
        digest: made.sbom.manifest.digest.clone(),
        present,
        parts: ReferrerParts {
            blobs: made
                .sbom
                .files
                .iter()
                .map(|(d, p)| Blob {
                    descriptor: d.clone(),
                    source: Source::File(p.clone()),
                    mount_from: None,
                })
                .collect(),
            manifest: made.sbom.manifest,
            descriptor: made.sbom.descriptor,
        },
    }];
    plan.layout = layout;
    plan.notes.push(format!(
        "flowship {} for linux/{}, {}",
        env!("CARGO_PKG_VERSION"),
        made.arch,
        match &base {
            Some(b) => format!("on {b}"),
            None => "from scratch".into(),
        }
    ));
    plan._scratch = Some(scratch);
    super::sign::plan(settings, &mut plan, None).await?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_takes_a_file_and_an_absolute_clean_path() {
        assert!(parse_add(&["/usr/bin/busybox:/bin/sh".into()]).is_ok());
        for bad in ["busybox", "x:bin/sh", "x:/bin/", "x:/a/../b", ":/bin/sh"] {
            assert!(parse_add(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
