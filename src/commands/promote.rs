//! `flowship promote SRC DST`: the same image (same digest) under another tag, repository or registry,
//! without rebuilding. Same repository: only the manifest is put under the new tag. Same registry: blobs are
//! mounted from the source repository. Another registry: blobs are streamed across, never held in memory.

use super::images;
use crate::cli::PromoteArgs;
use crate::error::Error;
use crate::image::manifest;
use crate::output::Printer;
use crate::registry::blobs::Source;
use crate::registry::push::{Blob, Manifest};
use crate::registry::session::Session;
use crate::registry::{Reference, RegistryError};
use crate::settings::Settings;
use std::sync::Arc;

pub async fn run(args: &PromoteArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let usage = |m: String, h: &str| Error::Usage {
        message: m,
        hint: Some(h.into()),
    };
    let src = Reference::parse(&args.source).map_err(|e| {
        usage(
            format!("SRC `{}`: {e}", args.source),
            "registry/repo:tag or registry/repo@sha256:...",
        )
    })?;
    let dst = Reference::parse(&args.destination).map_err(|e| {
        usage(
            format!("DST `{}`: {e}", args.destination),
            "registry/repo:tag",
        )
    })?;
    let reference = src.digest.clone().or(src.tag.clone()).ok_or_else(|| {
        usage(
            "SRC names no tag or digest".into(),
            "registry/repo:tag or registry/repo@sha256:...",
        )
    })?;
    let tag = dst
        .tag
        .clone()
        .or(src.tag.clone())
        .ok_or_else(|| usage("DST names no tag".into(), "registry/repo:tag"))?;
    let http = crate::http::Http::new(&settings.http_config())?;
    let src_session = Arc::new(
        Session::open(
            http.clone(),
            src.api_host(),
            settings.credential(&src.registry),
        )
        .await?,
    );
    let same_registry = src.registry == dst.registry;
    let dst_session = if same_registry {
        src_session.clone()
    } else {
        Arc::new(Session::open(http, dst.api_host(), settings.credential(&dst.registry)).await?)
    };
    let _section = printer.section("flowship_promote", &format!("flowship promote {src} {dst}"));

    // The manifests, exact bytes, children before the index.
    let mut manifests = Vec::new();
    let mut blobs = Vec::new();
    let top = fetch(&src_session, &src.repository, &reference).await?;
    if let Some(want) = &src.digest
        && &top.digest != want
    {
        return Err(Error::Registry(RegistryError::Protocol {
            registry: src.registry.clone(),
            what: format!("GET manifest {reference}"),
            status: 200,
            detail: format!("served {} instead", top.digest),
        }));
    }
    let (children, refs) = manifest::references(&top.bytes, &top.digest)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut all_refs = refs;
    for c in children {
        let m = fetch(&src_session, &src.repository, &c.digest).await?;
        let (_, r) = manifest::references(&m.bytes, &m.digest)
            .map_err(|e| Error::Internal(e.to_string()))?;
        all_refs.extend(r);
        manifests.push(m);
    }
    let digest = top.digest.clone();
    manifests.push(top);
    for d in all_refs {
        blobs.push(Blob {
            descriptor: d,
            source: Source::Remote {
                session: src_session.clone(),
                repository: src.repository.clone(),
            },
            mount_from: same_registry.then(|| src.repository.clone()),
        });
    }
    if settings.dry_run.value {
        printer.info(&format!(
            "dry run: would promote {digest} to {}:{tag} ({} blob(s))",
            dst.repository_ref(),
            blobs.len()
        ));
        return Ok(());
    }
    images::prepare(settings, &dst, printer).await?;
    let tags = vec![tag];
    let top = manifests.last().expect("the top manifest").clone();
    let stats = crate::registry::push::push(
        dst_session.clone(),
        &dst.repository,
        blobs,
        &manifests,
        images::options(settings, printer),
    )
    .await?;
    images::finish(&dst_session, settings, &dst, &top, &tags, &stats, printer).await
}

async fn fetch(session: &Session, repository: &str, reference: &str) -> Result<Manifest, Error> {
    let (bytes, served, digest) = session
        .manifest_get(repository, reference)
        .await?
        .ok_or_else(|| Error::Usage {
            message: format!("{}/{repository}:{reference} does not exist", session.host()),
            hint: Some("check the source reference".into()),
        })?;
    Ok(Manifest {
        media_type: manifest::media_type(&bytes, &served),
        digest,
        bytes,
    })
}
