//! `flowship build`: a flow image without a daemon, pushed straight to the registry (or written as an OCI
//! layout). Base + dependency layer (cached in the registry by the hash of everything that decides it) + code
//! layer, reproducible: the same inputs give the same digest on any machine.

use super::images;
use crate::cli::BuildArgs;
use crate::error::Error;
use crate::image::build::{self, BuildError, Input, Platform};
use crate::image::layout;
use crate::output::Printer;
use crate::registry::Reference;
use crate::registry::session::Session;
use crate::settings::Settings;
use std::collections::BTreeMap;
use std::sync::Arc;

fn build_error(e: BuildError) -> Error {
    match e {
        BuildError::Registry(r) => Error::Registry(r),
        e if e.is_input() => Error::Usage {
            hint: e.hint(),
            message: e.to_string(),
        },
        e => Error::Internal(e.to_string()),
    }
}

pub async fn run(args: &BuildArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let usage = |m: String, h: &str| Error::Usage {
        message: m,
        hint: Some(h.into()),
    };
    let b = &settings.build;
    let image = settings.image.as_ref().ok_or_else(|| {
        usage(
            "build needs the image repository".into(),
            "pass --image REPO, FLOWSHIP_IMAGE or image.repository",
        )
    })?;
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
    let mut tags = args.tags.clone();
    if tags.is_empty() {
        tags.extend(image.value.tag.clone().or(settings.ci.short_sha.clone()));
    }
    if tags.is_empty() && !args.no_push {
        return Err(usage(
            "no tag to push".into(),
            "pass --tag (in GitLab CI it defaults to CI_COMMIT_SHORT_SHA)",
        ));
    }
    for t in &tags {
        if !crate::registry::is_tag(t) {
            return Err(usage(
                format!("--tag `{t}` is not a valid tag"),
                "up to 128 of A-Za-z0-9_.-, not starting with `.` or `-`",
            ));
        }
    }
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
    let input = Input {
        base: base.clone(),
        platforms,
        context,
        requirements: b.requirements.as_ref().map(|r| r.value.clone()),
        python: b.python_version.as_ref().map(|p| p.value.clone()),
        workdir,
        mtime: settings.source_date.value,
        labels,
        path: settings.template_env.get("PATH").cloned(),
    };
    let repo = &image.value;
    let http = crate::http::Http::new(&settings.http_config())?;
    let base_session = Arc::new(
        Session::open(
            http.clone(),
            base.api_host(),
            settings.credential(&base.registry),
        )
        .await?,
    );
    // The target is read (dependency cache) unless the image only goes into a layout.
    let push = !args.no_push && !settings.dry_run.value;
    let target = if !args.no_push {
        let s = if base.registry == repo.registry {
            base_session.clone()
        } else {
            Arc::new(
                Session::open(http, repo.api_host(), settings.credential(&repo.registry)).await?,
            )
        };
        Some((s, repo.repository.clone()))
    } else {
        None
    };
    let _section = printer.section(
        "flowship_build",
        &format!("flowship build {}", repo.repository_ref()),
    );
    // A new Harbor project before the build reads its dependency cache from it.
    if target.is_some() {
        images::prepare(settings, repo, printer).await?;
    }
    let scratch =
        tempfile::tempdir().map_err(|e| Error::Internal(format!("temporary directory: {e}")))?;
    let built = build::build(&input, base_session.clone(), target.clone(), scratch.path())
        .await
        .map_err(build_error)?;
    for w in &built.warnings {
        printer.warn(w);
    }
    for n in &built.notes {
        printer.info(n);
    }
    let top = built.manifests.last().expect("built an image").clone();
    let digest = top.digest.clone();

    if let Some(dir) = &args.oci_layout {
        let names = if tags.is_empty() {
            vec!["latest".to_string()]
        } else {
            tags.clone()
        };
        if settings.dry_run.value {
            printer.info(&format!(
                "dry run: would write {}@{digest} to {} ({})",
                repo.repository_ref(),
                dir.display(),
                names.join(", ")
            ));
        } else {
            let mut files = built.files.clone();
            for (i, d) in built.base_layers.iter().enumerate() {
                let path = scratch.path().join(format!("base-{i}"));
                build::download(&base_session, &base.repository, d, &path)
                    .await
                    .map_err(build_error)?;
                files.push((d.clone(), path));
            }
            layout::write(dir, &files, &built.manifests, &names)?;
            printer.info(&format!(
                "wrote {}@{digest} to {} ({})",
                repo.repository_ref(),
                dir.display(),
                names.join(", ")
            ));
        }
    }
    let Some((session, repository)) = target.filter(|_| push) else {
        if settings.dry_run.value && !args.no_push {
            printer.info(&format!(
                "dry run: built {digest}; would push {} blob(s) to {}",
                built.blobs.len(),
                repo.repository_ref()
            ));
        }
        if printer.is_json() {
            printer.json(&serde_json::json!({"image": {"ref": format!("{}@{digest}", repo.repository_ref()), "digest": digest, "tags": tags, "pushed": false}}))?;
        } else {
            printer.data(&format!("{}@{digest}\n", repo.repository_ref()))?;
        }
        return Ok(());
    };
    let opts = images::options(settings, printer);
    let stats = crate::registry::push::push(
        session.clone(),
        &repository,
        built.blobs,
        &built.manifests,
        opts.clone(),
    )
    .await?;
    // Record fresh dependency layers so the next build on any runner skips the installer. Best effort: the
    // image is complete without the record, and a failure here must not fail a pushed build.
    for (tag, manifest, config, path) in built.cache_records {
        let blob = crate::registry::push::Blob {
            descriptor: config,
            source: crate::registry::blobs::Source::File(path),
            mount_from: None,
        };
        let recorded = async {
            crate::registry::push::push(
                session.clone(),
                &repository,
                vec![blob],
                std::slice::from_ref(&manifest),
                opts.clone(),
            )
            .await?;
            crate::registry::push::tag(&session, &repository, &manifest, std::slice::from_ref(&tag))
                .await
        };
        if let Err(e) = recorded.await {
            printer.warn(&format!(
                "the dependency cache record {tag} was not written ({e}); the next build installs the dependencies again"
            ));
        }
    }
    images::finish(&session, settings, repo, &top, &tags, &stats, printer).await
}
