//! `verify --rebuild PATH`: anyone can check a release by rebuilding it. The image is built again from a
//! clean checkout of the commit its provenance records, with the inputs the provenance records (the base as
//! named, the platforms, the paths, the working directory, the tags, the layer timestamp), pushed nowhere,
//! and the digests compared. flowship's builds are reproducible, so the same inputs give the same digest.

use super::image::{self, BuildRequest};
use crate::error::Error;
use crate::image::provenance::{self, Recorded};
use crate::registry::Reference;
use crate::settings::{BuildSettings, Settings, Sourced};
use std::path::{Path, PathBuf};

/// The rebuilt image's digest, and whether it is the verified one.
#[derive(Debug, serde::Serialize)]
pub struct Rebuilt {
    pub digest: String,
    pub same: bool,
}

fn usage(message: String, hint: &str) -> Error {
    Error::Usage {
        message,
        hint: Some(hint.into()),
    }
}

/// The checkout must be the recorded commit, with nothing changed or added: what is built is what is there.
fn check_checkout(checkout: &Path, commit: &str) -> Result<(), Error> {
    let hint = "check out the recorded commit into a clean directory: git clone REPO DIR && git -C DIR checkout COMMIT";
    let repo = git2::Repository::open(checkout).map_err(|e| {
        usage(
            format!(
                "--rebuild {}: not a git checkout ({})",
                checkout.display(),
                e.message()
            ),
            hint,
        )
    })?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map(|c| c.id().to_string())
        .unwrap_or_default();
    if head != commit {
        return Err(usage(
            format!(
                "--rebuild {}: the checkout is at {}, the image was built from {commit}",
                checkout.display(),
                if head.is_empty() { "no commit" } else { &head }
            ),
            hint,
        ));
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(true).include_ignored(false);
    let changed: Vec<String> = repo
        .statuses(Some(&mut opts))
        .map(|s| {
            s.iter()
                .filter_map(|e| e.path().ok().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if !changed.is_empty() {
        return Err(usage(
            format!(
                "--rebuild {}: the checkout has changes ({}): it is not the commit",
                checkout.display(),
                changed.join(", ")
            ),
            hint,
        ));
    }
    Ok(())
}

/// The recorded context and requirements, in the checkout: relative paths from its root; an absolute
/// context (a job that named its directory) is the checkout itself, and requirements inside it follow.
fn paths(checkout: &Path, r: &Recorded) -> (PathBuf, Option<PathBuf>) {
    let recorded = Path::new(&r.build.context);
    let context = if recorded.is_absolute() {
        checkout.to_path_buf()
    } else {
        checkout.join(recorded)
    };
    let requirements = r.build.requirements.as_ref().map(|q| {
        let q = Path::new(q);
        match (q.is_absolute(), q.strip_prefix(recorded)) {
            (false, _) => checkout.join(q),
            (true, Ok(inside)) => context.join(inside),
            (true, Err(_)) => q.to_path_buf(),
        }
    });
    (context, requirements)
}

/// Rebuild the image `statement` describes from `checkout`, and compare with `digest`.
pub async fn run(
    ctx: &crate::ops::Context<'_>,
    settings: &Settings,
    digest: &str,
    statement: &[u8],
    checkout: &Path,
) -> Result<Rebuilt, Error> {
    let (name, r) = provenance::recorded(statement).map_err(|e| {
        usage(
            format!("cannot rebuild: the image's provenance {e}"),
            "rebuild images that this flowship (or a newer one) built",
        )
    })?;
    if let Some(c) = &r.commit {
        check_checkout(checkout, c)?;
    }
    let (context, requirements) = paths(checkout, &r);
    let mut s = settings.clone();
    s.build = BuildSettings {
        base: Some(Sourced::default_value(r.base.clone())),
        context: Sourced::default_value(context),
        requirements: requirements.map(Sourced::default_value),
        platforms: r
            .platforms
            .iter()
            .cloned()
            .map(Sourced::default_value)
            .collect(),
        python_version: r.build.python_version.clone().map(Sourced::default_value),
        workdir: Some(Sourced::default_value(r.build.workdir.clone())),
        // A workspace member's context names its workspace itself (found above the context).
        workspace: None,
        // A rebuild proves the image from the checkout alone: nothing from this machine's cache.
        cache_dir: None,
        env: r
            .build
            .env
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| Sourced::default_value((k.to_string(), v.to_string())))
            .collect(),
    };
    s.image = Some(Sourced::default_value(Reference::parse(&name).map_err(
        |e| {
            usage(
                format!("cannot rebuild: the provenance names `{name}`: {e}"),
                "the provenance's subject is the image's repository",
            )
        },
    )?));
    s.source_date = Sourced::default_value(r.build.source_date_epoch);
    s.ci.project_url = r.repository.clone();
    s.ci.commit_sha = r.commit.clone();
    // A rebuild proves, it does not publish: nothing is signed or pushed.
    s.sign.key = None;
    s.sign.required = Sourced::default_value(false);
    let plan = image::plan_build(
        ctx,
        &s,
        &BuildRequest {
            tags: r.build.tags.clone(),
            push: false,
            oci_layout: None,
        },
    )
    .await?;
    Ok(Rebuilt {
        same: plan.digest == digest,
        digest: plan.digest,
    })
}
