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
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedImage {
    pub repository: String,
    pub digest: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedGitops {
    pub repo: String,
    pub branch: String,
    pub changes: Vec<bump::Expected>,
    pub extras: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedDeployment {
    pub name: String,
    pub action: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPrefect {
    pub api_url: String,
    pub deployments: Vec<SavedDeployment>,
}

/// A plan as written by `--plan-out`: no secret in it (payloads are fingerprints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub flowship_plan: u32,
    /// Seconds since the epoch.
    pub created: u64,
    /// Mixed into the deployments' fingerprints (unsalted hashes of payloads with weak secrets in them could
    /// be matched against guesses).
    #[serde(default)]
    pub salt: String,
    /// HMAC-SHA256 of the plan without this field, under `FLOWSHIP_PLAN_KEY` (when one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    pub environment: Option<String>,
    pub source_commit: Option<String>,
    pub image: SavedImage,
    pub gitops: SavedGitops,
    pub prefect: SavedPrefect,
    pub actions: Vec<Value>,
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Saved {
    pub fn load(path: &std::path::Path, max_age: u64) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Usage {
            message: format!("saved plan `{}` cannot be read: {e}", path.display()),
            hint: Some("pass the file `release --plan-out` wrote".into()),
        })?;
        let saved: Saved = serde_json::from_str(&text).map_err(|e| Error::Usage {
            message: format!("`{}` is not a flowship plan: {e}", path.display()),
            hint: Some("pass the file `release --plan-out` wrote".into()),
        })?;
        if saved.flowship_plan != 1 {
            return Err(Error::Usage {
                message: format!("`{}` is a plan of another flowship version", path.display()),
                hint: Some("make the plan with this version".into()),
            });
        }
        let age = now().saturating_sub(saved.created);
        if age > max_age {
            return Err(Error::Policy {
                message: format!(
                    "the saved plan `{}` is {} old, older than --plan-max-age ({}); nothing was written",
                    path.display(),
                    human_duration(age),
                    human_duration(max_age)
                ),
                hint: Some("make a new plan (release --plan-out), or raise --plan-max-age".into()),
            });
        }
        Ok(saved)
    }
}

impl Saved {
    /// HMAC-SHA256 (hex) of the plan as serialised without its `mac`.
    fn mac_of(&self, key: &[u8]) -> String {
        use hmac::Mac;
        let bare = Saved {
            mac: None,
            ..self.clone()
        };
        let bytes = serde_json::to_vec(&bare).unwrap_or_default();
        let mut m =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
        m.update(&bytes);
        hex::encode(m.finalize().into_bytes())
    }

    /// Sign the plan with `key` (`FLOWSHIP_PLAN_KEY`).
    pub fn sign(&mut self, key: &[u8]) {
        self.mac = None;
        self.mac = Some(self.mac_of(key));
    }

    /// With a key, the plan must carry a valid mac (refused otherwise: edited in transit, or unsigned); a
    /// signed plan without a key to check it is refused too.
    pub fn verify(&self, key: Option<&[u8]>) -> Result<(), Error> {
        use hmac::Mac;
        match (key, &self.mac) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(conflict(
                "the saved plan is signed, and no FLOWSHIP_PLAN_KEY is set to check it; nothing was written".into(),
            )),
            (Some(_), None) => Err(conflict(
                "the saved plan is not signed, and FLOWSHIP_PLAN_KEY is set; nothing was written".into(),
            )),
            (Some(k), Some(mac)) => {
                let bare = Saved {
                    mac: None,
                    ..self.clone()
                };
                let bytes = serde_json::to_vec(&bare).unwrap_or_default();
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).expect("any key length");
                m.update(&bytes);
                let given = hex::decode(mac).unwrap_or_default();
                m.verify_slice(&given).map_err(|_| {
                    conflict("the saved plan was changed after it was made (its signature does not match FLOWSHIP_PLAN_KEY); nothing was written".into())
                })
            }
        }
    }
}

fn human_duration(s: u64) -> String {
    match s {
        s if s >= 86400 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s => format!("{}m{}s", s / 60, s % 60),
    }
}

fn conflict(message: String) -> Error {
    Error::Policy {
        message,
        hint: Some("something changed since the plan was made: make a new plan".into()),
    }
}

/// The GitOps branch, opened before the image is planned so that a hold refuses the release before any build
/// (issue 19: cheap refusals first). Only where the checkout does not depend on the image: a direct push (a
/// merge request's branch is named after the tag) into an environment, not a rollback (which writes the hold)
/// or a lift. The request's image is provisional; `gitops_plan` replaces the request before planning.
async fn open_branch_early(
    ctx: &Context<'_>,
    settings: &Settings,
    req: &Request,
    environment: Option<&str>,
) -> Result<Option<bump::Bumper>, Error> {
    let Some(env) = environment else {
        return Ok(None);
    };
    if req.hold.is_some()
        || req.lift_hold
        || settings.gitops.merge_request.value
        || settings.gitops.repo.is_none()
    {
        return Ok(None);
    }
    let repository = match (&req.image, &settings.image) {
        (Some(i), _) => i.repository_ref(),
        (None, Some(i)) => i.value.repository_ref(),
        (None, None) => return Ok(None),
    };
    let provisional = crate::registry::digest::of(b"flowship: the image is not planned yet");
    let r = bump::Request::new(
        settings,
        repository,
        None,
        Some(provisional),
        req.mr_branch.clone(),
        req.push_options.clone(),
    )?;
    let bumper = bump::open(ctx.clones(), r).await?;
    if let Some(text) = bumper.read_file(&hold::path(env)) {
        return Err(hold::refusal(env, &text));
    }
    Ok(Some(bumper))
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
    // A held environment is refused before the image is built (a build runs the dependency installer); the
    // branch opened for that check is the one the GitOps plan reads.
    let early = open_branch_early(ctx, settings, req, environment.as_deref()).await?;
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
        gitops_plan(
            ctx,
            settings,
            req,
            &image,
            environment.as_deref(),
            record,
            early,
        )
        .await?
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
    let repo = settings
        .image
        .as_ref()
        .map(|i| i.value.clone())
        .ok_or_else(|| Error::Usage {
            message: "release needs the image repository".into(),
            hint: Some("pass --image REPO, FLOWSHIP_IMAGE or image.repository".into()),
        })?;
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
    early: Option<bump::Bumper>,
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
    let mut bumper = match early {
        Some(mut b) => {
            *b.request_mut() = r;
            b
        }
        None => bump::open(ctx.clones(), r).await?,
    };
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
    let mut r = register::Request::new(
        ctx,
        settings,
        register::Selection::All,
        req.skip_steps.clone(),
    )?;
    r.salt = salt.to_string();
    r.image = Some(StepImage {
        repository: image.repository.clone(),
        tag: image.tags.first().cloned(),
        digest: Some(image.digest.clone()),
    });
    r.pin_image = Some(image.reference());
    r.pools = pools(settings);
    if let Some(record) = &req.record {
        r.skip_steps = record.skip_steps.clone();
        r.gitlab = record.gitlab.clone();
        r.record = Some(record.clone());
    }
    register::plan(&r, printer).await
}

/// The environment's work pools: one per cluster that names one, else the environment's own (either
/// overrides the pool prefect.yaml names). None: the file's pools.
pub fn pools(settings: &Settings) -> Vec<register::Pool> {
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

/// A saved plan applies where and from what it was made: the same source commit, GitOps repository and
/// branch, Prefect server. Anything else is refused (the file is an artifact other jobs can edit).
fn check_saved_targets(
    saved: &Saved,
    settings: &Settings,
    image: &image::Plan,
    gitops: &bump::Plan,
    prefect: &register::Plan,
) -> Result<(), Error> {
    let now = settings.ci.commit_sha.clone();
    if saved.source_commit.is_some() && saved.source_commit != now {
        return Err(conflict(format!(
            "the saved plan was made at commit {}, this run is at {}; nothing was written",
            saved.source_commit.as_deref().unwrap_or("-"),
            now.as_deref()
                .unwrap_or("an unknown commit (no CI_COMMIT_SHA)")
        )));
    }
    for (what, want, have) in [
        (
            "image repository",
            &saved.image.repository,
            &image.repository,
        ),
        ("GitOps repository", &saved.gitops.repo, &gitops.repo),
        ("GitOps branch", &saved.gitops.branch, &gitops.branch),
        ("Prefect server", &saved.prefect.api_url, &prefect.api_url),
    ] {
        if want != have {
            return Err(conflict(format!(
                "the saved plan is for the {what} {want}, this run's is {have}; nothing was written"
            )));
        }
    }
    Ok(())
}

fn check_saved_deployments(saved: &Saved, prefect: &register::Plan) -> Result<(), Error> {
    for d in &prefect.deployments {
        match saved.prefect.deployments.iter().find(|s| s.name == d.name) {
            Some(s) if s.fingerprint == d.fingerprint => {}
            Some(_) => {
                return Err(conflict(format!(
                    "deployment `{}` would be registered differently than the saved plan says (prefect.yaml, a variable or a block changed); nothing was written",
                    d.name
                )));
            }
            None => {
                return Err(conflict(format!(
                    "deployment `{}` is not in the saved plan; nothing was written",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

impl Plan {
    /// The plan as `--plan-out` writes it.
    pub fn saved(&self, settings: &Settings) -> Saved {
        Saved {
            flowship_plan: 1,
            created: now(),
            salt: self.salt.clone(),
            mac: None,
            environment: self.environment.clone(),
            source_commit: settings.ci.commit_sha.clone(),
            image: SavedImage {
                repository: self.image.repository.clone(),
                digest: self.image.digest.clone(),
                tags: self.image.tags.clone(),
            },
            gitops: SavedGitops {
                repo: self.gitops.repo.clone(),
                branch: self.gitops.branch.clone(),
                changes: self
                    .gitops
                    .changes
                    .iter()
                    .map(|c| bump::Expected {
                        file: c.file.clone(),
                        path: c.path.clone(),
                        old: c.old.clone(),
                        new: c.new.clone(),
                    })
                    .collect(),
                extras: self.gitops.extras.iter().map(|e| e.path.clone()).collect(),
            },
            prefect: SavedPrefect {
                api_url: self.prefect.api_url.clone(),
                deployments: self
                    .prefect
                    .deployments
                    .iter()
                    .map(|d| SavedDeployment {
                        name: d.name.clone(),
                        action: d.action.as_str().into(),
                        fingerprint: d.fingerprint.clone(),
                    })
                    .collect(),
            },
            actions: self
                .actions()
                .iter()
                .filter_map(|a| serde_json::to_value(a).ok())
                .collect(),
        }
    }

    /// One entry per thing the release does, in order (`--output json`'s `actions[]`).
    pub fn actions(&self) -> Vec<Action<'_>> {
        let i = &self.image;
        let untagged: Vec<&String> = i.tags.iter().filter(|t| !i.tagged.contains(t)).collect();
        let mut out = vec![Action::Image {
            action: if i.present { Verb::None } else { Verb::Push },
            reference: i.reference(),
            digest: &i.digest,
            blobs: i.blobs,
            blobs_missing: i.blobs_missing,
            bytes_missing: i.bytes_missing,
        }];
        out.extend(i.referrers.iter().map(|r| Action::Referrer {
            action: if r.present { Verb::None } else { Verb::Attach },
            artifact_type: &r.artifact_type,
            digest: &r.digest,
        }));
        for (attestation, s) in [(true, &i.attestation), (false, &i.signature)] {
            if let Some(s) = s {
                let (action, tag, signatures, key) = (
                    if s.present { Verb::None } else { Verb::Sign },
                    s.tag.as_str(),
                    s.signatures,
                    s.key.as_deref(),
                );
                out.push(match attestation {
                    true => Action::Attestation {
                        action,
                        tag,
                        signatures,
                        key,
                    },
                    false => Action::Signature {
                        action,
                        tag,
                        signatures,
                        key,
                    },
                });
            }
        }
        out.push(Action::Tag {
            action: if untagged.is_empty() {
                Verb::None
            } else {
                Verb::Tag
            },
            tags: untagged,
        });
        out.push(Action::Gitops {
            action: if self.gitops.is_empty() {
                Verb::None
            } else {
                Verb::Commit
            },
            repo: &self.gitops.repo,
            branch: &self.gitops.branch,
            changes: &self.gitops.changes,
            extras: &self.gitops.extras,
        });
        for p in &self.prefect.pools {
            if let Some(kind) = p.create.as_deref().filter(|_| !p.exists) {
                out.push(Action::WorkPool {
                    action: Verb::Create,
                    name: &p.name,
                    kind: Some(kind),
                    registry_block: p.registry_block.as_deref(),
                    pull_secret: None,
                });
            }
            if let Some(b) = &p.refresh_block {
                out.push(Action::WorkPool {
                    action: Verb::UpdateRegistryBlock,
                    name: &p.name,
                    kind: None,
                    registry_block: Some(b),
                    pull_secret: None,
                });
            }
            if let Some(s) = p.pull_secret.as_deref().filter(|_| p.exists) {
                out.push(Action::WorkPool {
                    action: Verb::AddPullSecret,
                    name: &p.name,
                    kind: None,
                    registry_block: None,
                    pull_secret: Some(s),
                });
            }
        }
        // A plan says what it will do, as the other steps do; the outcome says what was done.
        out.extend(self.prefect.deployments.iter().map(|d| Action::Deployment {
            action: d.action.verb(),
            name: &d.name,
            work_pool: d.work_pool.as_deref(),
            changes: &d.changes,
        }));
        out
    }
}

/// What a release will do, step by step: `actions[]` of `release --dry-run --output json` and of a saved plan.
#[derive(Debug, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Action<'a> {
    Image {
        action: Verb,
        #[serde(rename = "ref")]
        reference: String,
        digest: &'a str,
        blobs: usize,
        blobs_missing: usize,
        bytes_missing: u64,
    },
    Referrer {
        action: Verb,
        artifact_type: &'a str,
        digest: &'a str,
    },
    Attestation {
        action: Verb,
        tag: &'a str,
        signatures: usize,
        key: Option<&'a str>,
    },
    Signature {
        action: Verb,
        tag: &'a str,
        signatures: usize,
        key: Option<&'a str>,
    },
    Tag {
        action: Verb,
        tags: Vec<&'a String>,
    },
    Gitops {
        action: Verb,
        repo: &'a str,
        branch: &'a str,
        changes: &'a [crate::gitops::images::Change],
        extras: &'a [bump::ExtraChange],
    },
    WorkPool {
        action: Verb,
        name: &'a str,
        #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
        kind: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        registry_block: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pull_secret: Option<&'a str>,
    },
    Deployment {
        action: &'static str,
        name: &'a str,
        work_pool: Option<&'a str>,
        changes: &'a [crate::prefect::compare::FieldChange],
    },
}

/// What a step does: none when it is in place already.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    None,
    Push,
    Attach,
    Sign,
    Tag,
    Commit,
    Create,
    UpdateRegistryBlock,
    AddPullSecret,
}

/// What a release did.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub environment: Option<String>,
    pub image: image::Outcome,
    pub gitops: bump::Outcome,
    pub prefect: register::Outcome,
}

/// Apply the plan, step by step; each step skips what is in place. A failing step stops the release with
/// its error: the steps before it are done, and a re-run picks up from there.
pub async fn apply(
    ctx: &Context<'_>,
    settings: &Settings,
    plan: Plan,
    printer: &Printer,
) -> Result<Outcome, Error> {
    let image = {
        let _s = printer.section("flowship_release_push", "release: push, gate, tag");
        image::apply(settings, plan.image, printer).await?
    };
    if let Some(p) = super::pull_proof::check(settings, &image.reference).await? {
        printer.info(&format!(
            "pull proof: {} reads {} manifest(s) and {} blob(s){}",
            p.user,
            p.manifests,
            p.blobs,
            p.policies
                .iter()
                .map(|c| format!("; {c}"))
                .collect::<String>()
        ));
    }
    let (bumper, gitops) = {
        let _s = printer.section("flowship_release_bump", "release: GitOps commit");
        bump::apply_keeping(plan.bumper, plan.gitops).await?
    };
    // The clone a direct push went through reads the pins afterwards (a fetch); a merge request's work branch
    // is not the branch whose pins count, so that case reads the branch anew.
    let mut branch = Some(bumper).filter(|b| !b.on_work_branch());
    pause_for_tests();
    // Prefect follows what GitOps pins: a newer release that landed after our commit is registered as it
    // recorded itself, instead of ours (never our definitions with its image, nor its image with ours).
    let newer = if gitops.pushed {
        newer_release(ctx, settings, &image.digest, printer, &mut branch).await?
    } else {
        None
    };
    let mut prefect = {
        let _s = printer.section("flowship_release_register", "release: deployments");
        match &newer {
            Some(r) => register::apply(r, printer).await?,
            None => register::apply(&plan.prefect, printer).await?,
        }
    };
    // One may also land while ours registers: the last release to finish leaves both sides agreeing.
    if gitops.pushed
        && newer.is_none()
        && let Some(r) = newer_release(ctx, settings, &image.digest, printer, &mut branch).await?
    {
        prefect = register::apply(&r, printer).await?;
    }
    Ok(Outcome {
        environment: plan.environment,
        image,
        gitops,
        prefect,
    })
}

/// The registration of the release GitOps pins now, when that is not `ours` (another release landed after
/// our commit): its record's definitions with its image. `None` when ours is pinned, or the pin cannot be
/// read; a newer pin without a record is left to its own job, with a warning.
async fn newer_release(
    ctx: &Context<'_>,
    settings: &Settings,
    ours: &str,
    printer: &Printer,
    branch: &mut Option<bump::Bumper>,
) -> Result<Option<register::Plan>, Error> {
    let now = match branch.take() {
        Some(mut b) => {
            let s = settings.clone();
            let (b, pins) = tokio::task::spawn_blocking(move || {
                let pins = b.refetch().and_then(|_| super::pins::of(&s, &b));
                (b, pins)
            })
            .await
            .map_err(|e| Error::Internal(format!("pins panicked: {e}")))?;
            *branch = Some(b);
            pins
        }
        None => super::pins::read(ctx, settings).await,
    };
    let Ok(now) = now else {
        return Ok(None);
    };
    let Some(d) = now.digest.clone().filter(|d| d != ours) else {
        return Ok(None);
    };
    let Some(record) = now
        .record
        .filter(|r| r.digest().as_deref() == Some(d.as_str()))
    else {
        printer.warn(&format!(
            "a newer release pins {d} now, without a release record of flowship's: its own job registers its deployments"
        ));
        return Ok(None);
    };
    printer.info(&format!(
        "a newer release pins {d} now; registering its deployments as it recorded them"
    ));
    let repo = settings
        .image
        .as_ref()
        .map(|i| i.value.repository_ref())
        .unwrap_or_default();
    let pin = match &now.tag {
        Some(t) => format!("{repo}:{t}@{d}"),
        None => format!("{repo}@{d}"),
    };
    let mut r = register::Request::new(
        ctx,
        settings,
        register::Selection::All,
        record.skip_steps.clone(),
    )?;
    r.image = Some(StepImage {
        repository: repo,
        tag: now.tag.clone(),
        digest: Some(d.clone()),
    });
    r.pin_image = Some(pin);
    r.pools = pools(settings);
    r.gitlab = record.gitlab.clone();
    r.record = Some(record);
    Ok(Some(register::plan(&r, printer).await?))
}

/// For tests that force an interleaving: with `FLOWSHIP_TEST_PAUSE_BEFORE_REGISTER=FILE`, a release that has
/// committed writes `FILE.reached` and waits (up to two minutes) while FILE exists. Unset, nothing happens.
fn pause_for_tests() {
    let Some(gate) = std::env::var_os("FLOWSHIP_TEST_PAUSE_BEFORE_REGISTER") else {
        return;
    };
    let gate = std::path::PathBuf::from(gate);
    let _ = std::fs::write(gate.with_extension("reached"), b"");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while gate.exists() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
