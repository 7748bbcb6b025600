//! `release`: the image (built here, or the one a build job handed over by digest), the GitOps bump of the
//! environment's targets, and the environment's deployments, as one plan made before the first write, then
//! applied step by step: push by digest → scan gate → tags → commit → deployments. Each step skips what is
//! already in place, so a re-run after success does nothing and a re-run after a failure finishes the job.
//!
//! A saved plan (`--plan-out`) holds no secret: the digest, the GitOps edits with the values they replace,
//! and a fingerprint of each deployment's payload. `--plan FILE` plans again and applies only if the result
//! is that plan: the same digest, every edit a compare-and-swap on the old value, the same payloads.

use super::hold::{self, Hold};
use super::{Context, bump, image, register};
use crate::error::Error;
use crate::output::Printer;
use crate::prefect::project::StepImage;
use crate::registry::Reference;
use crate::settings::Settings;

mod actions;
mod apply;
mod saved;
pub use apply::{Outcome, apply};
pub use saved::Saved;
use saved::{check_saved_deployments, check_saved_targets, conflict};

/// What the command line adds to the settings.
pub struct Request {
    pub tags: Vec<String>,
    pub mr_branch: Option<String>,
    pub push_options: Vec<String>,
    pub skip_steps: Vec<String>,
    pub lift_hold: bool,
    pub saved: Option<Saved>,
    /// The image to release instead of building one (promote between environments, rollback).
    pub image: Option<Reference>,
    /// Rollback: hold the environment at the image, with this reason.
    pub hold: Option<String>,
    /// The first line of the GitOps commit (rollback).
    pub subject: Option<String>,
    /// Register this release record's definitions instead of the checkout's (rollback to a recorded release,
    /// promotion of another environment's release).
    pub record: Option<super::record::Record>,
}

/// Everything a release will do, computed before anything is written.
pub struct Plan {
    pub environment: Option<String>,
    /// The salt of the deployments' fingerprints (a saved plan's own, else new).
    pub salt: String,
    pub image: image::Plan,
    pub bumper: bump::Bumper,
    pub gitops: bump::Plan,
    pub prefect: register::Plan,
}

/// A held environment is refused before the image is planned (a build runs the dependency installer): the hold
/// is read from the run's clone of the branch, which the GitOps plan reads afterwards without another fetch
/// (issue 19: cheap refusals first). Not for a rollback (which writes the hold), a lift, or a merge request
/// (its work branch, named after the tag, is a clone of its own).
async fn refuse_if_held(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &Request,
    environment: Option<&str>,
) -> Result<(), Error> {
    let Some(env) = environment else {
        return Ok(());
    };
    if req.hold.is_some()
        || req.lift_hold
        || settings.gitops.merge_request.value
        || settings.gitops.repo.is_none()
    {
        return Ok(());
    }
    let repository = match (&req.image, &settings.image) {
        (Some(i), _) => i.repository_ref(),
        (None, Some(i)) => i.value.repository_ref(),
        (None, None) => return Ok(()),
    };
    let branch = super::pins::reader(ctx, settings, repository, 1).await?;
    match branch.read_file(&hold::path(env)) {
        Some(text) => Err(hold::refusal(env, &text)),
        None => Ok(()),
    }
}

/// The whole plan: image, GitOps edit, deployments. Reads only (a build may run the dependency installer).
pub async fn plan(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &Request,
    printer: &Printer,
) -> Result<Plan, Error> {
    let environment = settings.environment.as_ref().map(|e| e.value.clone());
    if let Some(saved) = &req.saved
        && saved.environment != environment
    {
        return Err(Error::Usage {
            message: format!(
                "the saved plan is for environment {}, this run for {}",
                saved.environment.as_deref().unwrap_or("(none)"),
                environment.as_deref().unwrap_or("(none)")
            ),
            hint: Some("pass the same --env as when the plan was made".into()),
        });
    }
    refuse_if_held(ctx, settings, req, environment.as_deref()).await?;
    let image = {
        let _s = printer.section("flowship_release_image", "release: image");
        image_plan(ctx, settings, req).await?
    };
    if let Some(saved) = &req.saved
        && saved.image.digest != image.digest
    {
        return Err(conflict(format!(
            "the image is {} now, the saved plan says {}; nothing was written",
            image.digest, saved.image.digest
        )));
    }
    // The environment's signature policy, on the signatures the image will have: before any write. A
    // rollback goes back to what the environment ran before, checked when it was released.
    if req.hold.is_none()
        && let Some(v) = image::sign::require(settings, &image)?
    {
        printer.info(&format!(
            "signature verified: {}@{} signed for {} by key {}",
            image.repository, image.digest, v.reference, v.key
        ));
    }
    let salt = match &req.saved {
        Some(s) => s.salt.clone(),
        None => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
    };
    let prefect = {
        let _s = printer.section("flowship_release_prefect", "release: Prefect plan");
        prefect_plan(ctx, settings, req, &image, &salt, printer).await?
    };
    // The record of what is released goes into the same commit as the pin.
    let record = environment.as_deref().map(|env| {
        super::record::Record::new(
            env,
            image.reference(),
            settings.ci.commit_sha.clone(),
            prefect.sources.clone(),
            &prefect
                .deployments
                .iter()
                .map(|d| &d.plan)
                .collect::<Vec<_>>(),
            req.record
                .as_ref()
                .map(|r| r.skip_steps.clone())
                .unwrap_or_else(|| req.skip_steps.clone()),
            match &req.record {
                Some(r) => r.gitlab.clone(),
                None => register::gitlab_version(settings),
            },
        )
    });
    let (bumper, gitops) = {
        let _s = printer.section("flowship_release_gitops", "release: GitOps plan");
        gitops_plan(ctx, settings, req, &image, environment.as_deref(), record).await?
    };
    if let Some(saved) = &req.saved {
        check_saved_targets(saved, settings, &image, &gitops, &prefect)?;
        check_saved_deployments(saved, &prefect)?;
    }
    Ok(Plan {
        environment,
        salt,
        image,
        bumper,
        gitops,
        prefect,
    })
}

/// The release's image: the one given (by digest; copied into this environment's repository when that
/// differs), the saved plan's when the registry has it, else built here.
async fn image_plan(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &Request,
) -> Result<image::Plan, Error> {
    let repo = settings.image_for("release")?.value.clone();
    let mut tags = req.tags.clone();
    // A build job's handoff (`FLOWSHIP_IMAGE=repo:tag@digest`), or an image given by the caller.
    let given = req
        .image
        .clone()
        .or_else(|| settings.handoff.as_ref().map(|h| h.value.clone()))
        .or_else(|| repo.digest.as_ref().map(|_| repo.clone()));
    // A saved plan is the approval, never the source: the image is planned from the settings (built here,
    // or the build job's handoff) and must come out as the digest the plan saw.
    match given {
        Some(src) => {
            if tags.is_empty() {
                tags.extend(
                    src.tag
                        .clone()
                        .or(repo.tag.clone())
                        .or(settings.ci.short_sha.clone()),
                );
            }
            let dst = with_tag(&repo, tags.first());
            let src = match (&src.digest, &src.tag) {
                (Some(_), _) => src,
                _ => {
                    return Err(Error::Usage {
                        message: format!("the image to release, `{src}`, names no digest"),
                        hint: Some("release an image by digest (the FLOWSHIP_IMAGE a build job's dotenv report holds)".into()),
                    });
                }
            };
            let mut src_by_digest = src.clone();
            src_by_digest.tag = None;
            image::check_tags(&tags)?;
            let mut p = image::plan_promote(ctx, settings, &src_by_digest, &dst).await?;
            p.tags = tags;
            Ok(p)
        }
        None => {
            let build = image::BuildRequest {
                tags,
                push: true,
                oci_layout: None,
            };
            image::plan_build(ctx, settings, &build).await
        }
    }
}

fn with_tag(repo: &Reference, tag: Option<&String>) -> Reference {
    let mut r = repo.clone();
    r.digest = None;
    r.tag = tag.cloned().or(r.tag);
    if r.tag.is_none() {
        r.tag = Some("latest".into());
    }
    r
}

/// Flux builds a path without a `kustomization.yaml` from every `.yaml` under it, hidden directories too,
/// and fails on one that is not a Kubernetes object (a hold). A Kustomization in `.flowship/` that renders
/// nothing makes that generator take the directory as one (empty) resource and not descend into it.
const FLUX_FENCE: &str = ".flowship/kustomization.yaml";
const FLUX_FENCE_TEXT: &str = "# flowship's release records and holds: not Kubernetes objects. This Kustomization renders nothing, so\n\
# that Flux (which builds a path without kustomization.yaml from every .yaml below it) never reads them.\n\
apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n";

async fn gitops_plan(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &Request,
    image: &image::Plan,
    environment: Option<&str>,
    record: Option<super::record::Record>,
) -> Result<(bump::Bumper, bump::Plan), Error> {
    let mut r = bump::Request::new(
        settings,
        image.repository.clone(),
        image.tags.first().cloned(),
        Some(image.digest.clone()),
        req.mr_branch.clone(),
        req.push_options.clone(),
    )?;
    r.subject = req.subject.clone();
    if settings.gitops.pin.source == crate::source::Source::Default {
        // A release promises that the image a worker runs is the digest it built: every reference it edits
        // is pinned, unless `gitops.pin: keep` says otherwise (a bare `bump` keeps each reference's form).
        r.target.pin = crate::gitops::images::Pin::Always;
    }
    if let Some(saved) = &req.saved {
        r.expect = Some(saved.gitops.changes.clone());
    }
    if req.hold.is_some() {
        // A rollback moves backwards on purpose.
        r.monotonic = None;
    }
    let mut bumper = bump::open(ctx.clones(), r).await?;
    if let Some(env) = environment {
        let path = hold::path(env);
        let held = bumper.read_file(&path);
        match (&req.hold, held) {
            (Some(reason), _) => {
                let h = Hold {
                    environment: env.to_string(),
                    image: image.reference(),
                    // Who: the pipeline's user, else the commit author configured for this repository (the
                    // laptop path), else the login of whoever runs it.
                    by: settings
                        .ci
                        .user_login
                        .clone()
                        .or_else(|| {
                            (settings.gitops.author_name.source != crate::source::Source::Default)
                                .then(|| settings.gitops.author_name.value.clone())
                        })
                        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
                        .unwrap_or_else(|| "unknown".into()),
                    at: hold::now(),
                    reason: reason.clone(),
                };
                bumper.request_mut().extras.push(bump::Extra {
                    path,
                    content: Some(h.render()),
                });
                bumper
                    .request_mut()
                    .trailers
                    .push(("Flowship-Hold".into(), env.to_string()));
            }
            (None, Some(text)) if !req.lift_hold => return Err(hold::refusal(env, &text)),
            (None, Some(_)) => bumper.request_mut().extras.push(bump::Extra {
                path,
                content: None,
            }),
            (None, None) => {}
        }
        if let Some(record) = record {
            let path = super::record::path(env);
            let same = bumper
                .read_file(&path)
                .and_then(|t| super::record::Record::parse(&t))
                .is_some_and(|have| have.same_release(&record));
            if !same {
                bumper.request_mut().extras.push(bump::Extra {
                    path,
                    content: Some(record.render()),
                });
            }
        }
        let writes = bumper.request().extras.iter().any(|e| e.content.is_some());
        if writes && bumper.read_file(FLUX_FENCE).is_none() {
            bumper.request_mut().extras.push(bump::Extra {
                path: FLUX_FENCE.into(),
                content: Some(FLUX_FENCE_TEXT.into()),
            });
        }
    }
    let plan = tokio::task::spawn_blocking(move || {
        // A release whose GitOps side finds no reference to the image at all would say "nothing to change"
        // for ever: `plan` refuses that (exit 2) with what it searched and the closest references it saw.
        let p = bumper.plan()?;
        Ok::<_, Error>((bumper, p))
    })
    .await
    .map_err(|e| Error::Internal(format!("bump panicked: {e}")))??;
    Ok(plan)
}

async fn prefect_plan(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &Request,
    image: &image::Plan,
    salt: &str,
    printer: &Printer,
) -> Result<register::Plan, Error> {
    let image = StepImage {
        repository: image.repository.clone(),
        tag: image.tags.first().cloned(),
        digest: Some(image.digest.clone()),
    };
    let mut r = registration(ctx, settings, image, req.record.as_ref(), &req.skip_steps)?;
    r.salt = salt.to_string();
    register::plan(&r, printer).await
}

/// The registration of the environment's deployments with `image` (by digest) pinned, into the environment's
/// pools: the definitions `record` holds when given (what was released), else the checkout's.
pub fn registration(
    ctx: &Context<'_>,
    settings: &Settings,
    image: StepImage,
    record: Option<&super::record::Record>,
    skip_steps: &[String],
) -> Result<register::Request, Error> {
    let mut r =
        register::Request::new(ctx, settings, register::Selection::All, skip_steps.to_vec())?;
    r.pin_image = Some(match (&image.tag, &image.digest) {
        (Some(t), Some(d)) => format!("{}:{t}@{d}", image.repository),
        (_, d) => format!("{}@{}", image.repository, d.as_deref().unwrap_or_default()),
    });
    r.image = Some(image);
    r.pools = pools(settings);
    if let Some(record) = record {
        r.skip_steps = record.skip_steps.clone();
        r.gitlab = record.gitlab.clone();
        r.record = Some(record.clone());
    }
    Ok(r)
}

/// The environment's work pools: one per cluster that names one, else the environment's own (either
/// overrides the pool prefect.yaml names). None: the file's pools.
fn pools(settings: &Settings) -> Vec<register::Pool> {
    let per_cluster: Vec<register::Pool> = settings
        .clusters
        .iter()
        .filter_map(|c| {
            c.work_pool.as_ref().map(|p| register::Pool {
                name: p.value.clone(),
                cluster: Some(c.name.clone()),
            })
        })
        .collect();
    if !per_cluster.is_empty() {
        return per_cluster;
    }
    match (&settings.environment, &settings.prefect.work_pool) {
        (Some(_), Some(p)) => vec![register::Pool {
            name: p.value.clone(),
            cluster: None,
        }],
        _ => Vec::new(),
    }
}
