//! The GitOps bump as an operation: [`Bumper::open`] clones the branch (a read), [`Bumper::plan`] computes
//! every verified edit from the tip's blobs (reads only), and [`Bumper::apply`] commits and pushes, confirming
//! the push on the remote; on a rejection it refetches, plans again on the new tip (a concurrent bump may have
//! done the work) and pushes again, with jittered backoff. Never a rebase, never a force-push.
//!
//! A request may carry the old values a saved plan expected (`expect`): then every edit is a compare-and-swap,
//! and a value that changed under the plan stops the apply before anything is written.

use crate::error::Error;
use crate::gitops::clones::{Clones, Lease};
use crate::gitops::commit::{commit_message, diff};
use crate::gitops::images::{Change, Found, Pin, Target};
use crate::gitops::order;
use crate::gitops::repo::{Checkout, PushResult};
use serde::Serialize;
use std::time::Duration;

mod find;
mod request;
use request::usage;
pub use request::{Expected, Extra, Request};

/// A file's new text and the changes that make it.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub rel: String,
    pub old: String,
    pub new: String,
    pub changes: Vec<Change>,
}

/// An extra file's edit: `old`/`new` `None` for absent.
#[derive(Debug, Clone, Serialize)]
pub struct ExtraChange {
    pub path: String,
    #[serde(skip)]
    pub new: Option<String>,
    pub action: &'static str,
}

/// What one attempt would write: computed from the tip's blobs, nothing written.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub repo: String,
    pub branch: String,
    /// The commit the plan was made on.
    pub base: String,
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<ExtraChange>,
    #[serde(skip)]
    pub files: Vec<FilePlan>,
    #[serde(skip)]
    pub diff: String,
    /// References that name the image but were left alone (placeholders, malformed digests, files that are
    /// not YAML): warnings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Found>,
    /// Every place that references the image (set already or not).
    #[serde(skip)]
    pub found: Vec<Found>,
    /// Narration from the plan (what the monotonic guard decided), for stderr.
    #[serde(skip)]
    pub notes: Vec<String>,
    /// The plan was made on the remote's merge-request branch.
    #[serde(skip)]
    pub on_mr_branch: bool,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.extras.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct MrOutcome {
    pub source_branch: String,
    pub target_branch: String,
    /// Null when opened through push options (GitLab reports the URL only in the push's remote messages).
    pub url: Option<String>,
    pub iid: Option<u64>,
    pub created: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub repo: String,
    pub branch: String,
    /// The commit that carries the change; the branch tip when there was nothing to change.
    pub commit: Option<String>,
    pub changes: Vec<Change>,
    pub pushed: bool,
    pub attempts: u32,
    pub merge_request: Option<MrOutcome>,
    #[serde(skip)]
    pub notes: Vec<String>,
    #[serde(skip)]
    pub seconds: f64,
    /// The last plan was made on the remote's MR branch: it holds the change whether or not we pushed.
    #[serde(skip)]
    pub on_mr_branch: bool,
    /// Files written besides image values (a hold record).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extras: Vec<ExtraChange>,
    /// References that name the image but were left alone.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Found>,
    /// How many places reference the image.
    #[serde(skip)]
    pub found: usize,
}

/// A clone of the branch and the request it serves. `Send`: planned in one blocking task, applied in another.
pub struct Bumper {
    req: Request,
    checkout: Lease,
    /// The last [`Bumper::references`], by the commit and image it was read for: a refetch that brought
    /// nothing new reads the same pins without scanning the manifests again.
    scanned: std::sync::Mutex<Option<(String, String, Vec<Change>)>>,
    /// The files that reference the image at a commit this bumper planned or pushed (the plan's found
    /// files and what it wrote): the only files that can reference it there, so reading the pins at that
    /// commit parses those instead of scanning the branch again.
    known: std::sync::Mutex<Option<(String, String, Vec<String>)>>,
}

impl Bumper {
    /// The run's clone of the branch, `depth` commits deep (history reads ask for more than 1); in
    /// merge-request mode a clone of its own, of the MR branch when a previous run created it.
    pub async fn open(clones: &Clones, req: Request, depth: usize) -> Result<Self, Error> {
        if req.mr.is_none() {
            let checkout = clones.lend(&req.access, &req.branch, depth).await?;
            return Ok(Self {
                req,
                checkout,
                scanned: Default::default(),
                known: Default::default(),
            });
        }
        tokio::task::spawn_blocking(move || Self::open_work_branch(req))
            .await
            .map_err(|e| Error::Internal(format!("clone panicked: {e}")))?
    }

    /// Merge-request mode: the work branch when the remote has it, else the branch it starts from.
    fn open_work_branch(req: Request) -> Result<Self, Error> {
        let Some(mr) = &req.mr else {
            return Err(Error::Internal(
                "a work branch without merge-request mode".into(),
            ));
        };
        let exists = req
            .access
            .retrying(|| req.access.list_refs(git2::Direction::Fetch))?
            .contains(&format!("refs/heads/{}", mr.branch));
        let checkout = if exists {
            let mut c = Checkout::clone_temp(&req.access, &mr.branch, 1)?;
            c.continue_branch(&req.branch);
            c
        } else {
            let mut c = Checkout::clone_temp(&req.access, &req.branch, 1)?;
            c.start_branch(&mr.branch);
            c
        };
        Ok(Self {
            req,
            checkout: Lease::own(checkout),
            scanned: Default::default(),
            known: Default::default(),
        })
    }

    /// Fetch the branch's tip again (someone may have pushed since).
    pub fn refetch(&mut self) -> Result<(), Error> {
        Ok(self.checkout.refetch()?)
    }

    /// Whether this clone is of a merge request's work branch rather than the branch itself.
    pub fn on_work_branch(&self) -> bool {
        self.req.mr.is_some()
    }

    pub fn request(&self) -> &Request {
        &self.req
    }

    pub fn request_mut(&mut self) -> &mut Request {
        &mut self.req
    }

    /// Where the branch references the image at all (whatever its tag and digest are now): the places a bump
    /// to an impossible tag and digest would change.
    pub fn references(&self) -> Result<Vec<Change>, Error> {
        let (head, image) = (self.base(), self.req.target.repository.clone());
        let mut memo = self.scanned.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((h, i, found)) = memo.as_ref()
            && *h == head
            && *i == image
        {
            return Ok(found.clone());
        }
        let found = self.scan_references()?;
        *memo = Some((head, image, found.clone()));
        Ok(found)
    }

    fn scan_references(&self) -> Result<Vec<Change>, Error> {
        // Values no manifest holds (a placeholder digest of zeros is common in skeletons).
        let probe = Target {
            tag: Some("flowship-probe-0".into()),
            digest: Some(crate::registry::digest::of(
                b"flowship: a value no manifest pins",
            )),
            // Keep: a reference pinned by tag only (a Kustomize entry without `digest:`) is read as such
            // (status reports `not_pinned`), not refused.
            pin: Pin::Keep,
            new_name: None,
            expect_tag: None,
            expect_digest: None,
            ..self.req.target.clone()
        };
        let planned = if self.req.explicit.is_empty() {
            self.plan_discovered(&probe, true)?
        } else {
            self.plan_explicit(&probe)?
        };
        Ok(planned.files.into_iter().flat_map(|f| f.changes).collect())
    }

    /// The commit the next plan is made on.
    pub fn base(&self) -> String {
        self.checkout.head().unwrap_or_default()
    }

    /// A file of the branch as cloned (a hold record, say).
    pub fn read_file(&self, path: &str) -> Option<String> {
        self.checkout.read_path(path)
    }

    /// A file as it was at `commit` of the branch (after `history` deepened the clone that far).
    pub fn read_file_at(&self, commit: &str, path: &str) -> Option<String> {
        self.checkout.read_path_at(commit, path)
    }

    /// The branch's history from the tip, newest first: `(commit, message)` for up to `max` commits (the
    /// clone is deepened as far as needed).
    pub fn history(&mut self, max: usize) -> Result<Vec<(String, String)>, Error> {
        Ok(self.checkout.history(max)?)
    }

    /// Every edit the request makes on the current base, verified; nothing written.
    pub fn plan(&self) -> Result<Plan, Error> {
        let planned = if !self.req.values {
            find::Planned::default()
        } else if self.req.explicit.is_empty() {
            self.plan_discovered(&self.req.target, true)?
        } else {
            self.plan_explicit(&self.req.target)?
        };
        if self.req.values && planned.found.is_empty() {
            return Err(self.nothing_found(&planned)?);
        }
        let files = planned.files;
        let notes = self.check_order(&files)?;
        let changes: Vec<Change> = files.iter().flat_map(|p| p.changes.clone()).collect();
        self.check_expected(&changes)?;
        let mut extras = Vec::new();
        for e in &self.req.extras {
            let old = self.checkout.read_path(&e.path);
            if old != e.content {
                extras.push(ExtraChange {
                    path: e.path.clone(),
                    action: match (&old, &e.content) {
                        (None, _) => "create",
                        (_, None) => "delete",
                        _ => "update",
                    },
                    new: e.content.clone(),
                });
            }
        }
        Ok(Plan {
            repo: self.req.access.display_url(),
            branch: self.req.branch.clone(),
            base: self.checkout.head().unwrap_or_default(),
            diff: diff(files.iter().map(|p| {
                (
                    p.rel.as_str(),
                    p.old.as_str(),
                    p.new.as_str(),
                    p.changes.as_slice(),
                )
            })),
            changes,
            extras,
            files,
            skipped: planned.skipped,
            found: planned.found,
            notes,
            on_mr_branch: self.req.mr.is_some() && self.checkout.on_push_branch(),
        })
    }

    /// Commit `plan` and push it; on a rejection plan again on the new tip, until pushed, nothing is left to
    /// change, or the attempts are used up.
    pub fn apply(&mut self, mut plan: Plan) -> Result<Outcome, Error> {
        let started = std::time::Instant::now();
        let policy = crate::http::Policy::new(self.req.max_attempts);
        let mut attempt = 1;
        loop {
            let mut outcome = Outcome {
                repo: plan.repo.clone(),
                branch: self.req.branch.clone(),
                commit: Some(plan.base.clone()),
                changes: plan.changes.clone(),
                pushed: false,
                attempts: attempt,
                merge_request: None,
                notes: plan.notes.clone(),
                seconds: 0.0,
                on_mr_branch: plan.on_mr_branch,
                extras: plan.extras.clone(),
                skipped: plan.skipped.clone(),
                found: plan.found.len(),
            };
            if plan.is_empty() {
                self.remember(&plan);
                outcome.seconds = started.elapsed().as_secs_f64();
                return Ok(outcome);
            }
            let sig =
                git2::Signature::now(&self.req.author.0, &self.req.author.1).map_err(|e| {
                    usage(
                        format!("commit author: {e}"),
                        "set FLOWSHIP_GIT_AUTHOR_NAME and FLOWSHIP_GIT_AUTHOR_EMAIL",
                    )
                })?;
            let mut files: Vec<(String, Option<String>)> = plan
                .files
                .iter()
                .map(|p| (p.rel.clone(), Some(p.new.clone())))
                .collect();
            files.extend(plan.extras.iter().map(|e| (e.path.clone(), e.new.clone())));
            let message = self.message(&plan.changes);
            let commit = self.checkout.commit(&files, &sig, &message)?;
            match self.checkout.push(&self.req.push_options)? {
                PushResult::Pushed => {
                    self.remember(&plan);
                    outcome.commit = Some(commit);
                    outcome.pushed = true;
                    outcome.seconds = started.elapsed().as_secs_f64();
                    return Ok(outcome);
                }
                PushResult::Rejected(why) if attempt >= self.req.max_attempts => {
                    return Err(Error::PushRejected {
                        attempts: attempt,
                        last: why,
                    });
                }
                PushResult::Rejected(why) => {
                    tracing::warn!(
                        "push {attempt} rejected ({why}); fetching the new tip and planning again"
                    );
                    std::thread::sleep(
                        policy
                            .backoff(attempt.min(6))
                            .max(Duration::from_millis(50)),
                    );
                    self.checkout.refetch()?;
                    attempt += 1;
                    plan = self.plan()?;
                }
            }
        }
    }

    /// The files that reference the image at the checkout's head, which `plan` made (see `known`).
    fn remember(&self, plan: &Plan) {
        let mut files: Vec<String> = plan.found.iter().map(|f| f.file.clone()).collect();
        files.extend(plan.files.iter().map(|f| f.rel.clone()));
        files.extend(plan.extras.iter().map(|e| e.path.clone()));
        files.sort();
        files.dedup();
        let image = self.req.target.repository.clone();
        *self.known.lock().unwrap_or_else(|e| e.into_inner()) = Some((self.base(), image, files));
    }

    fn message(&self, changes: &[Change]) -> String {
        let mut m = commit_message(&self.req.template, &self.req.target, &self.req.ci, changes);
        // A commit that pins no image (lifting a hold) names none: its probe target is not a release, and a
        // later rollback reads `Flowship-Image:` trailers as the releases to go back to.
        if !self.req.values {
            m = m
                .lines()
                .filter(|l| !l.starts_with("Flowship-Image: "))
                .map(|l| format!("{l}\n"))
                .collect();
        }
        if let Some(subject) = &self.req.subject {
            let rest = m
                .split_once('\n')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default();
            m = format!("{subject}\n{rest}");
        }
        for (k, v) in &self.req.trailers {
            m.push_str(&format!("{k}: {v}\n"));
        }
        m
    }

    /// A saved plan's edits are compare-and-swaps: each value it changes must still hold what the plan saw
    /// (or already what it sets), and the tip must need no edit the plan did not list.
    fn check_expected(&self, changes: &[Change]) -> Result<(), Error> {
        let Some(expect) = &self.req.expect else {
            return Ok(());
        };
        for c in changes {
            match expect.iter().find(|e| e.file == c.file && e.path == c.path) {
                Some(e) if e.old == c.old && e.new == c.new => {}
                Some(e) => {
                    return Err(Error::Policy {
                        message: format!(
                            "{}:{}: `{}` is `{}` now, but the saved plan expected `{}`; nothing was written",
                            c.file, c.line, c.path, c.old, e.old
                        ),
                        hint: Some("someone changed the GitOps repo since the plan was made: make a new plan".into()),
                    });
                }
                None => {
                    return Err(Error::Policy {
                        message: format!(
                            "{}:{}: `{}` would change from `{}`, which the saved plan does not list; nothing was written",
                            c.file, c.line, c.path, c.old
                        ),
                        hint: Some(
                            "the GitOps repo changed since the plan was made: make a new plan"
                                .into(),
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// `--monotonic`: the branch as it is now (re-checked after every fetch) must not hold a newer tag. A new
    /// tag outside the order cannot be checked, so it is refused (exit 2) rather than let through unchecked;
    /// an old value outside the order (`latest`, a commit SHA) is replaced by the first ordered one, and says so.
    fn check_order(&self, plans: &[FilePlan]) -> Result<Vec<String>, Error> {
        let mut notes = Vec::new();
        let Some(order) = &self.req.monotonic else {
            return Ok(notes);
        };
        if let Some(new) = &self.req.target.tag
            && !order::in_order(order.value, new)
        {
            return Err(usage(
                format!(
                    "--monotonic {} ({}): the new tag `{new}` is not {}, so flowship cannot tell whether it is newer",
                    order.value,
                    order.source,
                    order::describe(order.value)
                ),
                "tag releases in that order (1.4.2 / v1.4.2 for semver, a pipeline IID for numeric), or drop --monotonic for commit-SHA tags",
            ));
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
}

/// The run's clone of the request's branch (see [`Bumper::open`]).
pub async fn open(clones: &Clones, req: Request) -> Result<Bumper, Error> {
    Bumper::open(clones, req, 1).await
}

/// Open and plan (the plan in a blocking task).
pub async fn plan(clones: &Clones, req: Request) -> Result<(Bumper, Plan), Error> {
    let b = open(clones, req).await?;
    tokio::task::spawn_blocking(move || {
        let p = b.plan()?;
        Ok::<_, Error>((b, p))
    })
    .await
    .map_err(|e| Error::Internal(format!("bump panicked: {e}")))?
}

/// Apply in a blocking task, then make sure the merge request exists (merge-request mode).
pub async fn apply(bumper: Bumper, plan: Plan) -> Result<Outcome, Error> {
    apply_keeping(bumper, plan).await.map(|(_, o)| o)
}

/// `apply`, handing the branch back: a release reads the pins after its push from the same clone (a fetch,
/// not a second clone).
pub async fn apply_keeping(bumper: Bumper, plan: Plan) -> Result<(Bumper, Outcome), Error> {
    let mr = bumper.req.mr.as_ref().map(|m| m.branch.clone());
    let target_branch = bumper.req.branch.clone();
    let title_message = bumper.message(&plan.changes);
    // The API client outlives the blocking task.
    let api = bumper
        .req
        .mr
        .as_ref()
        .and_then(|m| m.api.as_ref())
        .map(|(g, p)| (g.clone(), p.clone()));
    let (bumper, outcome) = tokio::task::spawn_blocking(move || {
        let mut bumper = bumper;
        let o = bumper.apply(plan);
        (bumper, o)
    })
    .await
    .map_err(|e| Error::Internal(format!("bump panicked: {e}")))?;
    let mut outcome = outcome?;
    if let Some(branch) = mr
        && (outcome.pushed || outcome.on_mr_branch)
    {
        outcome.merge_request = Some(match api {
            Some((api, project)) => {
                let title = title_message.lines().next().unwrap_or("bump").to_string();
                let description = title_message.lines().skip(2).collect::<Vec<_>>().join("\n");
                let (mr, created) = api
                    .ensure_merge_request(&project, &branch, &target_branch, &title, &description)
                    .await?;
                MrOutcome {
                    source_branch: branch,
                    target_branch,
                    url: Some(mr.web_url),
                    iid: Some(mr.iid),
                    created,
                }
            }
            None => MrOutcome {
                source_branch: branch,
                target_branch,
                url: None,
                iid: None,
                created: outcome.pushed,
            },
        });
    }
    Ok((bumper, outcome))
}
