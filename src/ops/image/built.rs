//! An image built here: the base read from its registry, the dependency and project layers made by `image`,
//! labels and the provenance's build parameters, then compared with the target registry.

use super::{LayoutWrite, Plan, attest, build_error, check_tags, compare, sign, usage};
use crate::error::Error;
use crate::image::build::{self, Input, Platform};
use crate::ops::Context;
use crate::registry::Reference;
use crate::registry::repo::Repo;
use crate::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What `build` is asked for besides the settings: tags, and whether to push or write a layout.
pub struct BuildRequest {
    pub tags: Vec<String>,
    pub push: bool,
    pub oci_layout: Option<PathBuf>,
}

/// Build the image (base read from its registry, dependency and code layers made here) and compare it with
/// the target registry. The dependency installer may run; nothing is written to any registry.
pub async fn plan_build(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &BuildRequest,
) -> Result<Plan, Error> {
    let b = &settings.build;
    let image = settings.image_for("build")?;
    let Sources {
        base,
        context,
        platforms,
        workdir,
    } = sources(settings)?;
    let mut tags = req.tags.clone();
    if tags.is_empty() {
        tags.extend(image.value.tag.clone().or(settings.ci.short_sha.clone()));
    }
    if tags.is_empty() && req.push {
        return Err(usage(
            "no tag to push".into(),
            "pass --tag (in GitLab CI it defaults to CI_COMMIT_SHORT_SHA)",
        ));
    }
    check_tags(&tags)?;
    let labels = labels(settings, &tags, &base);
    let parameters = parameters(settings, &context, &workdir, &tags);
    let scratch = Arc::new(tempfile::tempdir().map_err(|e| Error::Local {
        what: "cannot create a temporary directory".into(),
        reason: e.to_string(),
    })?);
    let index = crate::image::deps::index_config(&settings.template_env);
    // What the project installs: its lock or requirements file (the dependency layer) and its local
    // packages (the project layer). Refused here, before anything is built, when it cannot be read.
    let chosen = crate::image::inputs::choose(&crate::image::inputs::Request {
        context: &context,
        requirements: b.requirements.as_ref().map(|r| r.value.as_path()),
        workspace: b.workspace.as_ref().map(|w| w.value.as_path()),
        path: settings.template_env.get("PATH").map(String::as_str),
        scratch: scratch.path(),
        cache: b.cache_dir.as_ref().map(|d| d.value.as_path()),
        index: &index,
    })
    .map_err(|e| usage(e.message, &e.hint))?;
    // The file the dependency layer installs from: its hashes go into the SBOM.
    let requirements = chosen.requirements.clone();
    let input = Input {
        base: base.clone(),
        platforms,
        context,
        requirements: chosen.requirements,
        local: chosen.local,
        python_from: chosen.python_from,
        indexes: chosen.indexes,
        python: b.python_version.as_ref().map(|p| p.value.clone()),
        workdir,
        mtime: settings.source_date.value,
        labels,
        env: image_env(settings)?,
        path: settings.template_env.get("PATH").cloned(),
        index,
        cache: b.cache_dir.as_ref().map(|d| d.value.clone()),
    };
    let repo = image.value.clone();
    let base_repo = Repo::new(ctx.registry(settings, &base).await?, &base.repository);
    // The target is read (dependency cache, what it has) unless the image only goes into a layout.
    let target = match req.push {
        true => Some(ctx.registry(settings, &repo).await?),
        false => None,
    };
    let target_repo = target.clone().map(|s| Repo::new(s, &repo.repository));
    let built = build::build(&input, base_repo.clone(), target_repo, scratch.path())
        .await
        .map_err(build_error)?;
    let layout = req.oci_layout.clone().map(|dir| LayoutWrite {
        dir,
        files: built.files.clone(),
        base_layers: built.base_layers.clone(),
        base: Some(base_repo),
    });
    let mut plan = compare(target, repo, built.blobs, built.manifests, tags).await?;
    plan.cache_records = built.cache_records;
    plan.layout = layout;
    plan.notes = chosen.notes;
    plan.notes
        .extend(chosen.from.map(|f| format!("dependencies from {f}")));
    plan.notes.extend(built.notes);
    plan.warnings = chosen.warnings;
    plan.warnings.extend(built.warnings);
    plan._scratch = Some(scratch);
    let base_name = base.to_string();
    attest::plan(
        settings,
        &mut plan,
        &built.facts,
        &base_name,
        requirements.as_deref(),
        parameters,
    )
    .await?;
    sign::plan(settings, &mut plan, None).await?;
    Ok(plan)
}

/// What a build is made from, checked before anything is read: the base image, the context directory, the
/// platforms, the project's directory in the image.
struct Sources {
    base: Reference,
    context: PathBuf,
    platforms: Vec<Platform>,
    workdir: String,
}

fn sources(settings: &Settings) -> Result<Sources, Error> {
    let b = &settings.build;
    let base_ref = b.base.as_ref().ok_or_else(|| {
        usage(
            "build needs a base image".into(),
            "pass --base REF, FLOWSHIP_BASE_IMAGE or image.base (a Python image)",
        )
    })?;
    let base = Reference::parse(&base_ref.value).map_err(|e| {
        usage(
            format!("{}: `{}`: {e}", base_ref.source, base_ref.value),
            "e.g. python:3.12-slim",
        )
    })?;
    let context = b.context.value.clone();
    if !context.is_dir() {
        return Err(usage(
            format!(
                "{}: build context `{}` is not a directory",
                b.context.source,
                context.display()
            ),
            "pass --context DIR",
        ));
    }
    if let Some(r) = &b.requirements
        && !r.value.is_file()
    {
        return Err(usage(
            format!(
                "{}: requirements file `{}` does not exist",
                r.source,
                r.value.display()
            ),
            "pass --requirements FILE, or leave it out to build without dependencies",
        ));
    }
    let platforms = b
        .platforms
        .iter()
        .map(|p| {
            Platform::parse(&p.value).ok_or_else(|| {
                usage(
                    format!("{}: `{}` is not OS/ARCH", p.source, p.value),
                    "e.g. linux/amd64,linux/arm64",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = std::path::absolute(&context)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "flow".into());
    let workdir = b
        .workdir
        .as_ref()
        .map(|w| w.value.clone())
        .unwrap_or_else(|| format!("/opt/prefect/{name}"));
    Ok(Sources {
        base,
        context,
        platforms,
        workdir,
    })
}

/// The image's OCI labels: source, revision, version, base.
fn labels(settings: &Settings, tags: &[String], base: &Reference) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(u) = &settings.ci.project_url {
        labels.insert("org.opencontainers.image.source".to_string(), u.clone());
    }
    if let Some(s) = &settings.ci.commit_sha {
        labels.insert("org.opencontainers.image.revision".to_string(), s.clone());
    }
    if let Some(t) = tags.first() {
        labels.insert("org.opencontainers.image.version".to_string(), t.clone());
    }
    labels.insert(
        "org.opencontainers.image.base.name".to_string(),
        base.to_string(),
    );
    labels
}

/// What the provenance records of the build's inputs (`verify --rebuild` builds again from it).
fn parameters(
    settings: &Settings,
    context: &std::path::Path,
    workdir: &str,
    tags: &[String],
) -> crate::image::provenance::BuildParameters {
    let b = &settings.build;
    crate::image::provenance::BuildParameters {
        context: context.display().to_string(),
        requirements: b
            .requirements
            .as_ref()
            .map(|r| r.value.display().to_string()),
        workdir: workdir.to_string(),
        python_version: b.python_version.as_ref().map(|p| p.value.clone()),
        tags: tags.to_vec(),
        source_date_epoch: settings.source_date.value,
        env: b
            .env
            .iter()
            .map(|e| format!("{}={}", e.value.0, e.value.1))
            .collect(),
    }
}

/// `image.env`, refused when a value holds a secret: anyone who can pull the image reads its config.
fn image_env(settings: &Settings) -> Result<Vec<(String, String)>, Error> {
    let secrets = settings.secret_values();
    let mut out = Vec::new();
    for e in &settings.build.env {
        let (k, v) = &e.value;
        if secrets
            .iter()
            .any(|s| s.len() >= 4 && v.contains(s.as_str()))
        {
            return Err(usage(
                format!(
                    "{}: the image variable `{k}` holds a secret; an image's config is readable by anyone who can pull it",
                    e.source
                ),
                "give secrets to flow runs at run time (a Prefect Secret block, the work pool's environment), not in the image",
            ));
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}
