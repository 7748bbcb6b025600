//! The push engine shared by build, push and promote: blobs first (several at once, bounded), manifests last
//! as exact bytes, children before the index that names them. Per blob: `HEAD` (skip what the registry has),
//! then a cross-repository mount when the blob is in the same registry, then an upload, each attempt in a
//! fresh upload session, with backoff on transient failures.

use super::blobs::{Descriptor, Source, UploadMode};
use super::error::RegistryError;
use super::session::Session;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub source: Source,
    /// A repository of the same registry that has this blob (the base image's): mount instead of upload.
    pub mount_from: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub parallel: usize,
    pub mode: UploadMode,
    /// Upload attempts after the first, per blob.
    pub retries: u32,
    /// Per-blob progress bars (on a terminal only; see `output::Printer::progress`).
    pub progress: Option<indicatif::MultiProgress>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Stats {
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
    pub blobs_skipped: usize,
    pub blobs_mounted: usize,
    pub seconds: f64,
}

/// Push `blobs`, then `manifests` in order (children first), every one by its digest. Tags are a separate
/// step ([`tag`]), so that a gate can look at the image before anyone can pull it by tag.
pub async fn push(
    session: Arc<Session>,
    repository: &str,
    blobs: Vec<Blob>,
    manifests: &[Manifest],
    opts: Options,
) -> Result<Stats, RegistryError> {
    let started = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(opts.parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut seen = std::collections::HashSet::new();
    for blob in blobs {
        if !seen.insert(blob.descriptor.digest.clone()) {
            continue; // the same layer twice (or shared by two platforms): once is enough
        }
        let (session, permits, repository, opts) = (
            session.clone(),
            permits.clone(),
            repository.to_string(),
            opts.clone(),
        );
        tasks.spawn(async move {
            let _p = permits
                .acquire_owned()
                .await
                .expect("semaphore never closes");
            one_blob(&session, &repository, &blob, &opts).await
        });
    }
    let mut stats = Stats::default();
    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(Outcome::Skipped)) => stats.blobs_skipped += 1,
            Ok(Ok(Outcome::Mounted)) => stats.blobs_mounted += 1,
            Ok(Ok(Outcome::Uploaded(n))) => {
                stats.blobs_uploaded += 1;
                stats.bytes_uploaded += n;
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(RegistryError::Protocol {
                    registry: session.host().into(),
                    what: "blob task".into(),
                    status: 0,
                    detail: e.to_string(),
                });
            }
        }
    }
    // Never a manifest over missing blobs: a half-pushed image is not presented as pushed.
    if let Some(e) = first_error {
        return Err(e);
    }
    for m in manifests {
        session
            .manifest_put(repository, &m.digest, &m.bytes, &m.media_type)
            .await?;
    }
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Point `tags` at `top` (already pushed by digest): the same exact bytes under each tag.
pub async fn tag(
    session: &Session,
    repository: &str,
    top: &Manifest,
    tags: &[String],
) -> Result<(), RegistryError> {
    for t in tags {
        session
            .manifest_put(repository, t, &top.bytes, &top.media_type)
            .await?;
    }
    Ok(())
}

enum Outcome {
    Skipped,
    Mounted,
    Uploaded(u64),
}

async fn one_blob(
    session: &Session,
    repository: &str,
    blob: &Blob,
    opts: &Options,
) -> Result<Outcome, RegistryError> {
    let d = &blob.descriptor;
    if session.blob_exists(repository, &d.digest).await? {
        return Ok(Outcome::Skipped);
    }
    if let Some(from) = &blob.mount_from
        && from != repository
        && session.mount(repository, &d.digest, from).await?
    {
        return Ok(Outcome::Mounted);
    }
    let policy = crate::http::Policy::new(opts.retries);
    let bar = opts.progress.as_ref().map(|m| {
        let bar = m.add(indicatif::ProgressBar::new(d.size));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(d.digest.chars().take(19).collect::<String>());
        bar
    });
    let mut attempt = 0;
    loop {
        if let Some(b) = &bar {
            b.set_position(0);
        }
        match session
            .upload_once(
                repository,
                &d.digest,
                d.size,
                &blob.source,
                opts.mode,
                bar.as_ref(),
            )
            .await
        {
            Ok(()) => {
                if let Some(b) = &bar {
                    b.finish();
                }
                return Ok(Outcome::Uploaded(d.size));
            }
            Err(e) if attempt < opts.retries && retryable(&e) => {
                let wait = policy.backoff(attempt).max(Duration::from_millis(50));
                tracing::warn!(
                    "uploading blob {} failed ({e}); retrying in a fresh session in {:.1} s (retry {} of {})",
                    d.digest,
                    wait.as_secs_f64(),
                    attempt + 1,
                    opts.retries
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            Err(e) => {
                if let Some(b) = &bar {
                    b.abandon();
                }
                return Err(e);
            }
        }
    }
}

/// Failures worth a new upload session: the network, and the server's 5xx/408/429 (a proxy resetting a long
/// PATCH, a registry replica restarting). Not: denied, unknown project, a digest the server disputes.
fn retryable(e: &RegistryError) -> bool {
    match e {
        RegistryError::Transport { source, .. } => {
            !matches!(source, crate::http::TransportError::Untrusted { .. })
        }
        RegistryError::Protocol { status, .. } => {
            *status >= 500 || *status == 408 || *status == 429 || *status == 0
        }
        // The session already forgot the token; the next attempt fetches a new one.
        RegistryError::TokenExpired { .. } => true,
        _ => false,
    }
}
