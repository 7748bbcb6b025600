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
use crate::registry::push::Manifest;
use crate::registry::session::Session;
use crate::settings::Settings;
use std::collections::BTreeMap;
use std::path::PathBuf;
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
    let file = &settings.file_image;
    let image = settings.image.as_ref().ok_or_else(|| {
        usage(
            "build needs the image repository".into(),
            "pass --image REPO, FLOWSHIP_IMAGE or image.repository",
        )
    })?;
    let base_ref = args.base.clone().or(file.base.clone()).ok_or_else(|| {
        usage(
            "build needs a base image".into(),
            "pass --base REF, FLOWSHIP_BASE_IMAGE or image.base (a Python image)",
        )
    })?;
    let base = Reference::parse(&base_ref)
        .map_err(|e| usage(format!("--base `{base_ref}`: {e}"), "e.g. python:3.12-slim"))?;
    let context = args
        .context
        .clone()
        .or(file.context.clone())
        .unwrap_or_else(|| PathBuf::from("."));
    if !context.is_dir() {
        return Err(usage(
            format!("build context `{}` is not a directory", context.display()),
            "pass --context DIR",
        ));
    }
    let requirements = args
        .requirements
        .clone()
        .or(file.requirements.clone())
        .or_else(|| {
            let default = context.join("requirements.txt");
            default.is_file().then_some(default)
        });
    let platform_names = if !args.platforms.is_empty() {
        args.platforms.clone()
    } else if !file.platforms.is_empty() {
        file.platforms.clone()
    } else {
        vec!["linux/amd64".into()]
    };
    let platforms = platform_names
        .iter()
        .map(|p| {
            Platform::parse(p).ok_or_else(|| {
                usage(
                    format!("--platform `{p}` is not OS/ARCH"),
                    "e.g. linux/amd64,linux/arm64",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let name = std::path::absolute(&context)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "flow".into());
    let workdir = args
        .workdir
        .clone()
        .or(file.workdir.clone())
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
        requirements,
        python: args.python_version.clone().or(file.python_version.clone()),
        workdir,
        mtime: settings.source_date.value,
        labels,
        path: settings.template_env.get("PATH").cloned(),
    };
    let repo = &image.value;
    let http = crate::http::Http::new(settings)?;
    let image_ref = settings.image.as_ref().map(|i| &i.value);
    let base_session = Arc::new(
        Session::open(
            http.clone(),
            base.api_host(),
            settings.registry.credential_for(image_ref, &base.registry),
        )
        .await?,
    );
    let push = !args.no_push && !settings.dry_run.value;
    let target = if push || (!args.no_push && settings.dry_run.value) {
        let s = if base.registry == repo.registry {
            base_session.clone()
        } else {
            Arc::new(
                Session::open(http, repo.api_host(), settings.registry.credential.clone()).await?,
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
    let digest = built
        .manifests
        .last()
        .expect("built an image")
        .digest
        .clone();

    if let Some(dir) = &args.oci_layout {
        let mut files = built.files.clone();
        for (i, d) in built.base_layers.iter().enumerate() {
            let path = scratch.path().join(format!("base-{i}"));
            build::download(&base_session, &base.repository, d, &path)
                .await
                .map_err(build_error)?;
            files.push((d.clone(), path));
        }
        let names = if tags.is_empty() {
            vec!["latest".to_string()]
        } else {
            tags.clone()
        };
        layout::write(dir, &files, &built.manifests, &names)?;
        printer.info(&format!(
            "wrote {}@{digest} to {} ({})",
            repo.repository_ref(),
            dir.display(),
            names.join(", ")
        ));
    }
    let Some((session, repository)) = target.filter(|_| push) else {
        if settings.dry_run.value {
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
    images::prepare(&args.upload, settings, repo, printer).await?;
    let opts = images::options(&args.upload, settings, printer);
    let stats = crate::registry::push::push(
        session.clone(),
        &repository,
        built.blobs,
        &built.manifests,
        &tags,
        opts.clone(),
    )
    .await?;
    // Record fresh dependency layers so the next build on any runner skips the installer.
    for (tag, manifest, config, path) in built.cache_records {
        let blob = crate::registry::push::Blob {
            descriptor: config,
            source: crate::registry::blobs::Source::File(path),
            mount_from: None,
        };
        let m: Vec<Manifest> = vec![manifest];
        crate::registry::push::push(
            session.clone(),
            &repository,
            vec![blob],
            &m,
            &[tag],
            opts.clone(),
        )
        .await?;
    }
    images::finish(
        &args.upload,
        settings,
        repo,
        &digest,
        &tags,
        &stats,
        printer,
    )
    .await
}
