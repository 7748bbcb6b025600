//! `flowship bump`: set an image's tag and/or digest in the GitOps repository, changing only those bytes;
//! commit, and push so that concurrent pipelines never lose each other's bumps.
//!
//! Plan, then act: clone → plan every matching file (verified edits) → nothing to change? done → dry run?
//! print the diff → commit → push; on rejection fetch + hard reset to the remote tip, plan again on the fresh
//! files (a concurrent bump of the same image may have done the work), commit, push, with jittered backoff.

use crate::cli::BumpArgs;
use crate::error::Error;
use crate::gitlab::dotenv::Dotenv;
use crate::gitops::commit::{DEFAULT_MESSAGE, commit_message, diff};
use crate::gitops::images::{self, Change, Target};
use crate::gitops::order;
use crate::gitops::order::Monotonic;
use crate::gitops::remote::Access;
use crate::gitops::repo::{Checkout, PushResult};
use crate::output::Printer;
use crate::registry::{is_digest, is_tag};
use crate::settings::Settings;
use crate::settings::Sourced;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Serialize)]
struct MrReport {
    source_branch: String,
    target_branch: String,
    /// Null when opened through push options (GitLab reports the URL only in the push's remote messages).
    url: Option<String>,
    iid: Option<u64>,
    created: bool,
}

#[derive(Debug, Serialize)]
struct Outcome {
    repo: String,
    branch: String,
    /// The commit that carries the change; the branch tip when there was nothing to change.
    commit: Option<String>,
    changes: Vec<Change>,
    pushed: bool,
    attempts: u32,
    merge_request: Option<MrReport>,
    #[serde(skip)]
    mr_branch_has_change: bool,
    #[serde(skip)]
    diff: String,
    /// Narration from the plan (what the monotonic guard decided), for stderr.
    #[serde(skip)]
    notes: Vec<String>,
}

pub async fn run(args: &BumpArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let usage = |message: &str, hint: &str| Error::Usage {
        message: message.into(),
        hint: Some(hint.into()),
    };
    let image = settings.image.as_ref().ok_or_else(|| {
        usage(
            "bump needs the image repository",
            "pass --image REPO, FLOWSHIP_IMAGE or image.repository",
        )
    })?;
    let repo = settings.gitops.repo.as_ref().ok_or_else(|| {
        usage(
            "bump needs the GitOps repository",
            "pass --repo URL, FLOWSHIP_GITOPS_REPO or gitops.repo",
        )
    })?;
    // --tag/--digest, else the tag and digest of the image reference (FLOWSHIP_IMAGE=repo:tag@digest from a
    // build job's dotenv report).
    let tag = args.tag.clone().or_else(|| image.value.tag.clone());
    let digest = args.digest.clone().or_else(|| image.value.digest.clone());
    if tag.is_none() && digest.is_none() {
        return Err(usage(
            "bump needs a new tag or digest",
            "pass --tag and/or --digest, or --image REPO:TAG@DIGEST",
        ));
    }
    if let Some(t) = &tag
        && !is_tag(t)
    {
        return Err(usage(
            &format!("--tag `{t}` is not a valid tag"),
            "up to 128 of A-Za-z0-9_.-, not starting with `.` or `-`",
        ));
    }
    if let Some(d) = &digest
        && !is_digest(d)
    {
        return Err(usage(
            &format!("--digest `{d}` is not a digest"),
            "give sha256: followed by 64 lowercase hex digits",
        ));
    }
    let target = Target {
        repository: image.value.repository_ref(),
        tag,
        digest,
        policies: settings
            .gitops
            .policies
            .iter()
            .map(|p| p.value.clone())
            .collect(),
    };
    let mut builder = GlobSetBuilder::new();
    for p in &settings.gitops.paths {
        let glob = Glob::new(&p.value).map_err(|e| {
            usage(
                &format!("{}: `{}` is not a glob: {e}", p.source, p.value),
                "use globs like apps/**/*.yaml",
            )
        })?;
        builder.add(glob);
    }
    let globs = builder
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    let access = settings.git_access(&repo.value)?;
    let mut explicit: Vec<(String, String)> = Vec::new();
    for t in &settings.gitops.targets {
        match t.value.split_once(':') {
            Some((f, p)) if !f.is_empty() && !p.is_empty() => {
                explicit.push((f.to_string(), p.to_string()))
            }
            _ => {
                return Err(usage(
                    &format!("{}: `{}` is not FILE:YAML.PATH", t.source, t.value),
                    "e.g. apps/prod/worker.yaml:spec.values.worker.image.prefectTag",
                ));
            }
        }
    }
    let author = (
        settings.gitops.author_name.value.clone(),
        settings.gitops.author_email.value.clone(),
    );
    let template = settings
        .gitops
        .commit_message
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_else(|| DEFAULT_MESSAGE.into());
    let message = commit_message(&template, &target, &settings.ci, &[]);
    let merge_request = settings.gitops.merge_request.value;
    let mr_branch = merge_request.then(|| {
        args.mr_branch.clone().unwrap_or_else(|| {
            let name = target.repository.rsplit('/').next().unwrap_or("image");
            let version = target.tag.clone().unwrap_or_else(|| {
                target
                    .digest
                    .as_deref()
                    .unwrap_or("")
                    .trim_start_matches("sha256:")
                    .chars()
                    .take(12)
                    .collect()
            });
            format!("flowship/{name}-{version}")
        })
    });
    let gitlab_api = match (&settings.gitlab.api_url, &settings.gitlab.token) {
        (Some(url), Some(token)) if merge_request => Some(crate::gitlab::api::Gitlab::new(
            crate::http::Http::new(&settings.http_config())?,
            &url.value,
            token.value.clone(),
        )),
        _ => None,
    };
    let mut push_options = args.push_options.clone();
    if let (Some(_), None) = (&mr_branch, &gitlab_api) {
        push_options.push("merge_request.create".into());
        push_options.push(format!(
            "merge_request.target={}",
            settings.gitops.branch.value
        ));
        push_options.push(format!(
            "merge_request.title={}",
            message.lines().next().unwrap_or("bump")
        ));
        push_options.push("merge_request.remove_source_branch".into());
    }
    let job = Job {
        url: access.url().to_string(),
        access,
        branch: settings.gitops.branch.value.clone(),
        target,
        globs,
        author,
        template,
        ci: settings.ci.clone(),
        dry_run: settings.dry_run.value,
        push_options,
        mr_branch: mr_branch.clone(),
        max_attempts: settings.gitops.max_attempts.value,
        explicit,
        monotonic: settings.gitops.monotonic.clone(),
    };
    let _section = printer.section(
        "flowship_bump",
        &format!("flowship bump {}", image.value.repository_ref()),
    );
    printer.info(&format!(
        "cloning {} ({})",
        job.access.display_url(),
        job.branch
    ));
    let started = Instant::now();
    let target_branch = job.branch.clone();
    let mut outcome = tokio::task::spawn_blocking(move || job.run())
        .await
        .map_err(|e| Error::Internal(format!("bump panicked: {e}")))??;
    if let Some(branch) = mr_branch
        && !settings.dry_run.value
        && (outcome.pushed || outcome.mr_branch_has_change)
    {
        outcome.merge_request = Some(match &gitlab_api {
            Some(api) => {
                let project = match &settings.gitlab.project {
                    Some(p) => p.value.clone(),
                    None => project_from_url(&repo.value).ok_or_else(|| {
                        usage(
                            "cannot tell the GitOps project's path from its URL",
                            "set FLOWSHIP_GITLAB_PROJECT (group/project)",
                        )
                    })?,
                };
                let title = message.lines().next().unwrap_or("bump").to_string();
                let description = message.lines().skip(2).collect::<Vec<_>>().join("\n");
                let (mr, created) = api
                    .ensure_merge_request(&project, &branch, &target_branch, &title, &description)
                    .await?;
                MrReport {
                    source_branch: branch,
                    target_branch,
                    url: Some(mr.web_url),
                    iid: Some(mr.iid),
                    created,
                }
            }
            None => MrReport {
                source_branch: branch,
                target_branch,
                url: None,
                iid: None,
                created: outcome.pushed,
            },
        });
    }
    report(&outcome, settings, printer, started)
}

struct Job {
    access: Access,
    url: String,
    branch: String,
    target: Target,
    globs: GlobSet,
    author: (String, String),
    /// The commit message template, rendered with each attempt's changes.
    template: String,
    ci: crate::settings::CiContext,
    dry_run: bool,
    push_options: Vec<String>,
    max_attempts: u32,
    /// `(file, yaml path)` targets; empty means discover every reference under `globs`.
    explicit: Vec<(String, String)>,
    monotonic: Option<Sourced<Monotonic>>,
    mr_branch: Option<String>,
}

/// A file's new text and the changes that make it.
struct FilePlan {
    rel: String,
    old: String,
    new: String,
    changes: Vec<Change>,
}

impl Job {
    fn run(self) -> Result<Outcome, Error> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::Internal(format!("temporary directory: {e}")))?;
        // Merge-request mode works on its own branch: continued when a previous run created it.
        let (mut checkout, mr_branch_existed) = match &self.mr_branch {
            Some(b)
                if self
                    .access
                    .list_refs(git2::Direction::Fetch)?
                    .contains(&format!("refs/heads/{b}")) =>
            {
                (
                    Checkout::clone(&self.access, &self.url, b, dir.path())?,
                    true,
                )
            }
            _ => (
                Checkout::clone(&self.access, &self.url, &self.branch, dir.path())?,
                false,
            ),
        };
        match (&self.mr_branch, mr_branch_existed) {
            (Some(b), false) => checkout.start_branch(b),
            (Some(_), true) => checkout.continue_branch(&self.branch),
            (None, _) => {}
        }
        let policy = crate::http::Policy::new(self.max_attempts);
        let mut attempt = 1;
        loop {
            let plans = if self.explicit.is_empty() {
                self.plan(&checkout)?
            } else {
                self.plan_explicit(&checkout)?
            };
            let notes = self.check_order(&plans)?;
            let changes: Vec<Change> = plans.iter().flat_map(|p| p.changes.clone()).collect();
            let mut outcome = Outcome {
                repo: self.access.display_url(),
                branch: self.branch.clone(),
                commit: checkout.head(),
                changes,
                pushed: false,
                attempts: attempt,
                merge_request: None,
                // The plan was made on the remote's MR branch: whatever it needs is there (now or after
                // this push), so the merge request is ensured.
                mr_branch_has_change: self.mr_branch.is_some() && checkout.on_push_branch(),
                notes,
                diff: diff(plans.iter().map(|p| {
                    (
                        p.rel.as_str(),
                        p.old.as_str(),
                        p.new.as_str(),
                        p.changes.as_slice(),
                    )
                })),
            };
            if plans.is_empty() || self.dry_run {
                return Ok(outcome);
            }
            let sig =
                git2::Signature::now(&self.author.0, &self.author.1).map_err(|e| Error::Usage {
                    message: format!("commit author: {e}"),
                    hint: Some("set FLOWSHIP_GIT_AUTHOR_NAME and FLOWSHIP_GIT_AUTHOR_EMAIL".into()),
                })?;
            let files: Vec<(String, String)> = plans
                .iter()
                .map(|p| (p.rel.clone(), p.new.clone()))
                .collect();
            let all: Vec<Change> = plans.iter().flat_map(|p| p.changes.clone()).collect();
            let message = commit_message(&self.template, &self.target, &self.ci, &all);
            let commit = checkout.commit(&files, &sig, &message)?;
            match checkout.push(&self.push_options)? {
                PushResult::Pushed => {
                    outcome.commit = Some(commit);
                    outcome.pushed = true;
                    return Ok(outcome);
                }
                PushResult::Rejected(why) if attempt >= self.max_attempts => {
                    return Err(Error::PushRejected {
                        attempts: attempt,
                        last: why,
                    });
                }
                PushResult::Rejected(why) => {
                    tracing::info!(attempt, %why, "push rejected; fetching the new tip and re-applying");
                    std::thread::sleep(
                        policy
                            .backoff(attempt.min(6))
                            .max(Duration::from_millis(50)),
                    );
                    checkout.refetch()?;
                    attempt += 1;
                }
            }
        }
    }
    /// `--monotonic`: the branch as it is now (re-checked after every fetch) must not hold a newer tag. A new
    /// tag outside the order cannot be checked, so it is refused (exit 2) rather than let through unchecked;
    /// an old value outside the order (`latest`, a commit SHA) is replaced by the first ordered one, and says so.
    fn check_order(&self, plans: &[FilePlan]) -> Result<Vec<String>, Error> {
        let mut notes = Vec::new();
        let Some(order) = &self.monotonic else {
            return Ok(notes);
        };
        if let Some(new) = &self.target.tag
            && !order::in_order(order.value, new)
        {
            return Err(Error::Usage {
                message: format!(
                    "--monotonic {} ({}): the new tag `{new}` is not {}, so flowship cannot tell whether it is newer",
                    order.value,
                    order.source,
                    order::describe(order.value)
                ),
                hint: Some(
                    "tag releases in that order (1.4.2 / v1.4.2 for semver, a pipeline IID for numeric), or drop --monotonic for commit-SHA tags"
                        .into(),
                ),
            });
        }
        for c in plans.iter().flat_map(|p| &p.changes) {
            let (Some(old), Some(new)) = (order::tag_of(&c.old), order::tag_of(&c.new)) else {
                continue;
            };
            match order::compare(order.value, old, new) {
                Some(std::cmp::Ordering::Greater) => {
                    return Err(Error::Policy {
                        message: format!("{}:{}: `{}` is at {old}, newer than {new} ({} order, {}); refusing to move it backwards", c.file, c.line, c.path, order.value, order.source),
                        hint: Some("a newer release already landed; re-run the newer pipeline, or bump without --monotonic to roll back on purpose".into()),
                    });
                }
                None => notes.push(format!(
                    "{}:{}: `{old}` is not {}; replacing it with `{new}` (the first ordered tag here)",
                    c.file,
                    c.line,
                    order::describe(order.value)
                )),
                _ => {}
            }
        }
        Ok(notes)
    }

    fn plan_explicit(&self, checkout: &Checkout) -> Result<Vec<FilePlan>, Error> {
        let mut out: Vec<FilePlan> = Vec::new();
        for (rel, path) in &self.explicit {
            let text = match out.iter().find(|p| p.rel == *rel) {
                Some(p) => p.old.clone(),
                None => checkout.read_path(rel).ok_or_else(|| Error::Usage {
                    message: format!(
                        "target file `{rel}` is not a text file in the GitOps repository"
                    ),
                    hint: Some(
                        "targets are FILE:YAML.PATH with FILE relative to the repository root"
                            .into(),
                    ),
                })?,
            };
            let changes = images::plan_path(rel, &text, path, &self.target)?;
            if changes.is_empty() {
                continue;
            }
            match out.iter_mut().find(|p| p.rel == *rel) {
                Some(p) => {
                    let fresh: Vec<Change> = changes
                        .into_iter()
                        .filter(|c| !p.changes.iter().any(|x| x.start == c.start))
                        .collect();
                    p.changes.extend(fresh);
                    p.new = images::apply(&p.old, &p.changes);
                }
                None => {
                    let new = images::apply(&text, &changes);
                    out.push(FilePlan {
                        rel: rel.clone(),
                        old: text,
                        new,
                        changes,
                    });
                }
            }
        }
        Ok(out)
    }

    fn plan(&self, checkout: &Checkout) -> Result<Vec<FilePlan>, Error> {
        // Cheap screen before parsing: a file that names neither the repository nor a policy has nothing to do.
        let needle = self
            .target
            .repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.target.repository)
            .to_string();
        let mut out = Vec::new();
        for entry in checkout.files()? {
            let rel = entry.path;
            if !self.globs.is_match(&rel) {
                continue;
            }
            let Some(text) = checkout.read(entry.oid) else {
                continue;
            };
            if !text.contains(&needle)
                && !self
                    .target
                    .policies
                    .iter()
                    .any(|p| text.contains(p.as_str()))
            {
                continue;
            }
            let changes = images::plan(&rel, &text, &self.target)?;
            if changes.is_empty() {
                continue;
            }
            let new = images::apply(&text, &changes);
            out.push(FilePlan {
                rel,
                old: text,
                new,
                changes,
            });
        }
        Ok(out)
    }
}

/// `group/project` from `https://host/group/project.git` or `git@host:group/project.git`.
fn project_from_url(url: &str) -> Option<String> {
    let path = match url::Url::parse(url) {
        Ok(u) if u.has_host() => u.path().to_string(),
        _ => url.split_once(':')?.1.to_string(),
    };
    let p = path.trim_matches('/').trim_end_matches(".git").to_string();
    (!p.is_empty()).then_some(p)
}

fn report(
    o: &Outcome,
    settings: &Settings,
    printer: &Printer,
    started: Instant,
) -> Result<(), Error> {
    if printer.is_json() {
        printer.json(&serde_json::json!({ "gitops": o, "dry_run": settings.dry_run.value }))?;
    } else if settings.dry_run.value && !o.changes.is_empty() {
        printer.data(&o.diff)?;
    } else {
        for c in &o.changes {
            printer.data(&format!(
                "{}:{}  {}  {} -> {}\n",
                c.file, c.line, c.path, c.old, c.new
            ))?;
        }
    }
    for n in &o.notes {
        printer.info(n);
    }
    let secs = started.elapsed().as_secs_f64();
    match (o.changes.is_empty(), settings.dry_run.value, o.pushed) {
        (true, _, _) => printer.info(&format!(
            "nothing to change: {} already set on {} ({secs:.1} s)",
            o.repo, o.branch
        )),
        (false, true, _) => printer.info(&format!(
            "dry run: {} change(s) planned, nothing written",
            o.changes.len()
        )),
        (false, false, _) => printer.info(&format!(
            "pushed {} to {} ({} change(s), attempt {}, {secs:.1} s)",
            o.commit
                .as_deref()
                .map(|c| &c[..12.min(c.len())])
                .unwrap_or("?"),
            o.branch,
            o.changes.len(),
            o.attempts
        )),
    }
    if let Some(mr) = &o.merge_request {
        let what = if mr.created { "opened" } else { "reusing open" };
        match &mr.url {
            Some(u) => printer.info(&format!(
                "{what} merge request {u} ({} -> {})",
                mr.source_branch, mr.target_branch
            )),
            None => printer.info(&format!(
                "merge request requested with push options ({} -> {})",
                mr.source_branch, mr.target_branch
            )),
        }
    }
    if let (Some(path), Some(commit), false) = (&settings.dotenv, &o.commit, settings.dry_run.value)
    {
        let mut d = Dotenv::default();
        d.set("FLOWSHIP_GITOPS_COMMIT", commit);
        d.write(&path.value, &settings.secret_values())?;
    }
    Ok(())
}
