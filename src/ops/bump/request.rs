//! What a bump is asked to do, resolved once from the settings: the image target, which files and values,
//! the commit's author and message, merge-request mode, and what a saved plan expects.

use crate::error::Error;
use crate::gitlab::CiContext;
use crate::gitops::commit::{DEFAULT_MESSAGE, commit_message};
use crate::gitops::images::Target;
use crate::gitops::order::Monotonic;
use crate::gitops::remote::Access;
use crate::registry::{is_digest, is_tag};
use crate::settings::{Settings, Sourced};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// A file flowship writes besides image values (the environment's hold record): `None` deletes it.
#[derive(Debug, Clone)]
pub struct Extra {
    pub path: String,
    pub content: Option<String>,
}

/// The value a saved plan expected at a place, and what it set there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub file: String,
    pub path: String,
    pub old: String,
    pub new: String,
}

/// Merge-request mode: the work branch, and the GitLab API when a token is set (else push options).
pub struct MergeRequest {
    pub branch: String,
    pub api: Option<(crate::gitlab::api::Gitlab, String)>,
}

/// What to bump where, resolved once from the settings.
pub struct Request {
    pub access: Access,
    pub branch: String,
    pub target: Target,
    pub(super) globs: GlobSet,
    /// The globs as written, for messages.
    pub(super) glob_list: Vec<String>,
    /// `(file, yaml path)` targets; empty means discover every reference under `globs`.
    pub(super) explicit: Vec<(String, String)>,
    pub(super) author: (String, String),
    /// The commit message template, rendered with each attempt's changes.
    pub(super) template: String,
    pub(super) ci: CiContext,
    pub push_options: Vec<String>,
    pub(super) max_attempts: u32,
    pub monotonic: Option<Sourced<Monotonic>>,
    pub mr: Option<MergeRequest>,
    /// Extra trailers for the commit message (`Flowship-Environment`, `Flowship-Rollback`).
    pub trailers: Vec<(String, String)>,
    pub extras: Vec<Extra>,
    pub expect: Option<Vec<Expected>>,
    /// The first line of the commit message instead of the template's (a rollback, a hold lifted).
    pub subject: Option<String>,
    /// Whether image values are planned at all (lifting a hold writes only its record).
    pub values: bool,
}

pub(super) fn usage(message: impl Into<String>, hint: &str) -> Error {
    Error::Usage {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

impl Request {
    /// A request that sets no value of its own: for reading the branch (pins, history, a hold), or for writing
    /// only extra files (`values = false`: lifting a hold). Its digest is one no manifest holds.
    pub fn reading(settings: &Settings, repository: String) -> Result<Self, Error> {
        let probe = format!("sha256:{}", "0".repeat(64));
        Self::new(settings, repository, None, Some(probe), None, Vec::new())
    }

    /// The request for `repository` at `tag`/`digest`, from the settings in effect (an environment's overlay
    /// included). `mr_branch`: the `--mr-branch` flag; `push_options`: `--push-option`s.
    pub fn new(
        settings: &Settings,
        repository: String,
        tag: Option<String>,
        digest: Option<String>,
        mr_branch: Option<String>,
        mut push_options: Vec<String>,
    ) -> Result<Self, Error> {
        let repo = settings.gitops.repo.as_ref().ok_or_else(|| {
            usage(
                "bump needs the GitOps repository",
                "pass --repo URL, FLOWSHIP_GITOPS_REPO or gitops.repo",
            )
        })?;
        // A rename alone (`--new-name`, a move to a mirror) keeps every tag and digest as it is.
        if tag.is_none() && digest.is_none() && settings.gitops.new_name.is_none() {
            return Err(usage(
                "bump needs a new tag, digest or name",
                "pass --tag and/or --digest (or --image REPO:TAG@DIGEST), or --new-name REPO",
            ));
        }
        check_values(settings, tag.as_deref(), digest.as_deref())?;
        let g = &settings.gitops;
        let target = Target {
            pin: g.pin.value,
            markers: g.markers.value,
            new_name: g.new_name.as_ref().map(|n| n.value.clone()),
            expect_tag: g.expect_tag.as_ref().map(|t| t.value.clone()),
            expect_digest: g.expect_digest.as_ref().map(|d| d.value.clone()),
            policies: settings
                .gitops
                .policies
                .iter()
                .map(|p| p.value.clone())
                .collect(),
            ..Target::new(&repository, tag, digest)
        };
        let (globs, explicit) = targets(settings)?;
        let template = settings
            .gitops
            .commit_message
            .as_ref()
            .map(|m| m.value.clone())
            .unwrap_or_else(|| DEFAULT_MESSAGE.into());
        let branch = settings.gitops.branch.value.clone();
        let mr = match settings.gitops.merge_request.value {
            false => None,
            true => {
                let branch = mr_branch.unwrap_or_else(|| default_mr_branch(&target));
                let api = crate::gitlab::api::for_merge_requests(settings, &repo.value)?;
                if api.is_none() {
                    let title = commit_message(&template, &target, &settings.ci, &[]);
                    push_options.extend(crate::gitlab::merge_request_push_options(
                        &settings.gitops.branch.value,
                        title.lines().next().unwrap_or("bump"),
                    ));
                }
                Some(MergeRequest { branch, api })
            }
        };
        let mut trailers = Vec::new();
        if let Some(e) = &settings.environment {
            trailers.push(("Flowship-Environment".to_string(), e.value.clone()));
        }
        Ok(Self {
            access: settings.git_access(&repo.value)?,
            branch,
            target,
            globs,
            glob_list: settings
                .gitops
                .paths
                .iter()
                .map(|p| p.value.clone())
                .collect(),
            explicit,
            author: (
                settings.gitops.author_name.value.clone(),
                settings.gitops.author_email.value.clone(),
            ),
            template,
            ci: settings.ci.clone(),
            push_options,
            max_attempts: settings.gitops.max_attempts.value,
            monotonic: settings.gitops.monotonic.clone(),
            mr,
            trailers,
            extras: Vec::new(),
            expect: None,
            subject: None,
            values: true,
        })
    }

    pub fn display_url(&self) -> String {
        self.access.display_url()
    }
}

/// The values a bump would write, checked before anything is read: the tag, the digest, the new name, the
/// values a compare-and-swap expects.
fn check_values(settings: &Settings, tag: Option<&str>, digest: Option<&str>) -> Result<(), Error> {
    if let Some(t) = tag
        && !is_tag(t)
    {
        return Err(usage(
            format!("--tag `{t}` is not a valid tag"),
            "up to 128 of A-Za-z0-9_.-, not starting with `.` or `-`",
        ));
    }
    if let Some(d) = digest
        && !is_digest(d)
    {
        return Err(usage(
            format!("--digest `{d}` is not a digest"),
            "give sha256: followed by 64 lowercase hex digits",
        ));
    }
    let g = &settings.gitops;
    if let Some(n) = &g.new_name
        && crate::registry::Reference::parse(&n.value)
            .map(|r| r.tag.is_some() || r.digest.is_some())
            .unwrap_or(true)
    {
        return Err(usage(
            format!("{}: `{}` is not an image repository", n.source, n.value),
            "give registry/path without a tag or digest, e.g. harbor.example.com/flows/etl",
        ));
    }
    if let Some(t) = g.expect_tag.as_ref().filter(|t| !is_tag(&t.value)) {
        return Err(usage(
            format!("{}: `{}` is not a valid tag", t.source, t.value),
            "up to 128 of A-Za-z0-9_.-, not starting with `.` or `-`",
        ));
    }
    if let Some(d) = g.expect_digest.as_ref().filter(|d| !is_digest(&d.value)) {
        return Err(usage(
            format!("{}: `{}` is not a digest", d.source, d.value),
            "give sha256: followed by 64 lowercase hex digits",
        ));
    }
    Ok(())
}

/// Where to look: `gitops.paths` as globs, and `gitops.targets` as `(file, yaml path)` pairs.
fn targets(settings: &Settings) -> Result<(GlobSet, Vec<(String, String)>), Error> {
    let mut builder = GlobSetBuilder::new();
    for p in &settings.gitops.paths {
        let glob = Glob::new(&p.value).map_err(|e| {
            usage(
                format!("{}: `{}` is not a glob: {e}", p.source, p.value),
                "use globs like apps/**/*.yaml",
            )
        })?;
        builder.add(glob);
    }
    let globs = builder
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let mut explicit = Vec::new();
    for t in &settings.gitops.targets {
        match t.value.split_once(':') {
            Some((f, p)) if !f.is_empty() && !p.is_empty() => {
                explicit.push((f.to_string(), p.to_string()))
            }
            _ => {
                return Err(usage(
                    format!("{}: `{}` is not FILE:YAML.PATH", t.source, t.value),
                    "e.g. apps/prod/worker.yaml:spec.values.worker.image.prefectTag",
                ));
            }
        }
    }
    Ok((globs, explicit))
}

/// `flowship/<image name>-<tag or short digest>`.
fn default_mr_branch(t: &Target) -> String {
    let name = t.repository.rsplit('/').next().unwrap_or("image");
    let version = t.tag.clone().unwrap_or_else(|| {
        t.digest
            .as_deref()
            .unwrap_or("")
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect()
    });
    format!("flowship/{name}-{version}")
}
