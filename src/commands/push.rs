//! `flowship push --from oci-layout:DIR[:TAG]`: push an image built by buildah, podman, skopeo, umoci or a
//! kaniko fork, through the same engine as `build` (skip what exists, parallel streamed uploads, manifest last).

use super::images;
use crate::cli::PushArgs;
use crate::error::Error;
use crate::image::layout;
use crate::output::Printer;
use crate::registry::session::Session;
use crate::settings::Settings;
use std::path::PathBuf;
use std::sync::Arc;

pub async fn run(args: &PushArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let usage = |m: String, h: &str| Error::Usage {
        message: m,
        hint: Some(h.into()),
    };
    let image = settings.image.as_ref().ok_or_else(|| {
        usage(
            "push needs the image repository".into(),
            "pass --image REPO or FLOWSHIP_IMAGE",
        )
    })?;
    let scratch =
        tempfile::tempdir().map_err(|e| Error::Internal(format!("temporary directory: {e}")))?;
    let (kind, rest) = args.from.split_once(':').unwrap_or(("", ""));
    // `DIR:TAG` / `FILE:TAG`: a trailing `:tag` that is not part of a path.
    let (path, tag) = match rest.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') && !p.is_empty() => {
            (PathBuf::from(p), Some(t.to_string()))
        }
        _ => (PathBuf::from(rest), None),
    };
    let img = match kind {
        "oci-layout" => layout::read(&path, tag.as_deref())?,
        "docker-archive" => crate::image::archive::read(&path, tag.as_deref(), scratch.path())?,
        _ => {
            return Err(usage(
                format!("--from `{}` is not a source flowship reads", args.from),
                "use oci-layout:DIR[:TAG] or docker-archive:FILE[:TAG]",
            ));
        }
    };
    let mut tags = args.tags.clone();
    if tags.is_empty() {
        tags.extend(image.value.tag.clone().or(img.tag.clone()));
    }
    if tags.is_empty() {
        return Err(usage(
            "no tag to push".into(),
            "pass --tag, or a layout entry with a tag",
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
    let repo = &image.value;
    let top = img
        .manifests
        .last()
        .expect("an image has a manifest")
        .clone();
    if settings.dry_run.value {
        printer.info(&format!(
            "dry run: would push {} blob(s) and {} manifest(s) to {} as {}",
            img.blobs.len(),
            img.manifests.len(),
            repo.repository_ref(),
            tags.join(", ")
        ));
        return Ok(());
    }
    let _section = printer.section(
        "flowship_push",
        &format!("flowship push {}", repo.repository_ref()),
    );
    images::prepare(settings, repo, printer).await?;
    let http = crate::http::Http::new(&settings.http_config())?;
    let session =
        Arc::new(Session::open(http, repo.api_host(), settings.credential(&repo.registry)).await?);
    let stats = crate::registry::push::push(
        session.clone(),
        &repo.repository,
        img.blobs,
        &img.manifests,
        images::options(settings, printer),
    )
    .await?;
    images::finish(&session, settings, repo, &top, &tags, &stats, printer).await
}
