//! The GitOps branch as objects, not files: a bare, shallow clone (where the transport allows it), planning
//! reads blobs straight from the tip's tree, and a commit writes only the changed blobs and the trees on their
//! paths. No work tree is ever checked out, so a bump costs the same in a repo of 50 files or 50,000.
//!
//! A push is never reported as done until it is confirmed, on every transport:
//! - over the network, the server's ref update is a compare-and-swap already (receive-pack refuses a
//!   non-fast-forward); a rejection is caught on both of libgit2's channels (`NotFastForward`, or a per-ref
//!   failure through `push_update_reference` while `push` returns Ok). Then the remote is asked again
//!   (`ls-remote`, and a fetch when the tip moved on): only a branch that contains the commit confirms it.
//!   A push whose answer was lost (connection dropped after the server applied it) is confirmed the same way.
//! - to a local path, libgit2's local transport moves the ref without a compare-and-swap (concurrent pushes
//!   lose each other's commits), so flowship writes the objects into the remote's object database itself and
//!   moves the ref with `reference_matching` against the tip the plan was made on (a locked, checked update,
//!   as git's own receive-pack does).
//!
//! An unconfirmed push is a rejection: the caller refetches the tip and re-plans on it (never a rebase, never a
//! force-push). The remote's state is only ever read from the remote: a local ref never stands for it.

use super::remote::{Access, GitError};
use git2::build::{RepoBuilder, TreeUpdateBuilder};
use git2::{
    Direction, FetchOptions, FileMode, Oid, PushOptions, Repository, Signature, TreeWalkMode,
    TreeWalkResult,
};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

pub struct Checkout {
    repo: Repository,
    access: Access,
    /// The branch pushes go to (the merge-request branch in MR mode).
    branch: String,
    /// The branch a push branch starts from when the remote does not have it (the MR's target).
    start: String,
    /// The commit plans are made against: the remote tip as last fetched, or our own commit on it.
    base: Oid,
    /// The remote's tip of `branch` that `base` was planned on: what the ref must still be for our push to
    /// apply. `None`: the remote has no such branch (a new MR branch), and it must not appear meanwhile.
    expected: Option<Oid>,
    /// How many commits deep the history was fetched (`None`: all of it; local paths cannot fetch shallow).
    depth: Option<usize>,
    /// The remote repository's directory, for local-path remotes (`/srv/gitops.git`, `file://...`).
    local: Option<PathBuf>,
    /// The directory the clone lives in, when the checkout made it (removed with the checkout).
    _dir: Option<tempfile::TempDir>,
}

pub enum PushResult {
    Pushed,
    /// Someone else pushed first, the server refused the ref update, or the push could not be confirmed;
    /// the message says which.
    Rejected(String),
}

/// A file in the tip's tree.
pub struct Entry {
    pub path: String,
    pub oid: Oid,
}

/// libgit2 cannot fetch shallow from local paths (`shallow fetch is not supported by the local transport`).
fn shallow_ok(url: &str) -> bool {
    ["https://", "http://", "git://", "ssh://"]
        .iter()
        .any(|p| url.starts_with(p))
        || (url.contains('@') && url.contains(':') && !url.contains("://"))
}

/// The directory of a local-path remote; `None` for network remotes.
pub fn local_path(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return url::Url::parse(url)
            .ok()
            .and_then(|u| u.to_file_path().ok())
            .or_else(|| Some(PathBuf::from(rest)));
    }
    let scp_like = url.contains(':') && !url.starts_with('/') && !url.starts_with('.');
    (!url.contains("://") && !scp_like).then(|| PathBuf::from(url))
}

/// Depth of the fetch that confirms a push when the tip moved on: enough for every concurrent pipeline's
/// commit on top of ours (a deeper history is re-planned instead, which is just as safe).
const CONFIRM_DEPTH: i32 = 64;

impl Checkout {
    /// Clone `branch` of the access's remote, `depth` commits deep where the transport allows it, into a
    /// temporary directory the checkout owns.
    pub fn clone_temp(access: &Access, branch: &str, depth: usize) -> Result<Self, GitError> {
        let dir = tempfile::tempdir().map_err(|e| GitError::Other {
            url: access.display_url(),
            detail: format!("cannot create a temporary directory: {e}"),
        })?;
        let mut c = Self::clone(access, access.url(), branch, dir.path(), depth)?;
        c._dir = Some(dir);
        Ok(c)
    }

    pub fn clone(
        access: &Access,
        url: &str,
        branch: &str,
        dir: &Path,
        depth: usize,
    ) -> Result<Self, GitError> {
        let shallow = shallow_ok(url);
        let depth = depth.clamp(1, i32::MAX as usize);
        let repo = access.retrying(|| {
            // A failed attempt may leave a partial clone behind.
            let _ = std::fs::remove_dir_all(dir);
            let attempts = Arc::new(AtomicU32::new(0));
            let mut fo = FetchOptions::new();
            fo.remote_callbacks(access.callbacks(attempts.clone()));
            // No off-site redirect is followed (the credentials callback refuses other origins as well).
            fo.follow_redirects(git2::RemoteRedirect::None);
            if shallow {
                fo.depth(depth as i32);
            }
            RepoBuilder::new()
                .bare(true)
                .branch(branch)
                .fetch_options(fo)
                .clone(url, dir)
                .map_err(|e| access.classify(e, &attempts, Direction::Fetch))
        })?;
        // Straight after the clone, both refs are what the remote has.
        let tip = repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
            .or_else(|_| repo.refname_to_id(&format!("refs/heads/{branch}")))
            .map_err(|e| GitError::Other {
                url: access.display_url(),
                detail: e.message().to_string(),
            })?;
        Ok(Self {
            repo,
            access: access.clone(),
            branch: branch.into(),
            start: branch.into(),
            base: tip,
            expected: Some(tip),
            depth: shallow.then_some(depth),
            local: local_path(url),
            _dir: None,
        })
    }

    fn git_err(&self, e: git2::Error) -> GitError {
        GitError::Other {
            url: self.access.display_url(),
            detail: e.message().to_string(),
        }
    }

    /// The commit the next plan is made against.
    pub fn head(&self) -> Option<String> {
        Some(self.base.to_string())
    }

    /// Continue on a new branch `name` (merge-request mode); pushes go there from now on, and the remote must
    /// not have it yet.
    pub fn start_branch(&mut self, name: &str) {
        self.branch = name.to_string();
        self.expected = None;
    }

    /// Push to `name`, which the remote has (a re-run continuing its MR branch); `start` is where it began.
    pub fn continue_branch(&mut self, start: &str) {
        self.start = start.to_string();
    }

    /// Is the base the remote's push branch (rather than the start branch a new push branch begins from)?
    pub fn on_push_branch(&self) -> bool {
        self.expected.is_some()
    }

    /// Every blob of the base commit's tree, with `/`-separated paths.
    pub fn files(&self) -> Result<Vec<Entry>, GitError> {
        let tree = self
            .repo
            .find_commit(self.base)
            .and_then(|c| c.tree())
            .map_err(|e| self.git_err(e))?;
        let mut out = Vec::new();
        tree.walk(TreeWalkMode::PreOrder, |root, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob)
                && let Ok(name) = entry.name()
            {
                out.push(Entry {
                    path: format!("{root}{name}"),
                    oid: entry.id(),
                });
            }
            TreeWalkResult::Ok
        })
        .map_err(|e| self.git_err(e))?;
        Ok(out)
    }

    /// A blob's text; `None` for binary or non-UTF-8 content (never a manifest), and for a blob larger than
    /// any manifest (its size is read from the object header first, so a hostile repository's huge blob is
    /// never inflated into memory).
    pub fn read(&self, oid: Oid) -> Option<String> {
        const MAX_MANIFEST: usize = 16 << 20;
        let (size, _) = self.repo.odb().ok()?.read_header(oid).ok()?;
        if size > MAX_MANIFEST {
            tracing::warn!(%oid, size, "a blob larger than 16 MiB is not read as a manifest");
            return None;
        }
        let blob = self.repo.find_blob(oid).ok()?;
        String::from_utf8(blob.content().to_vec()).ok()
    }

    /// The text of `path` in the base commit, if it is a file.
    pub fn read_path(&self, path: &str) -> Option<String> {
        self.read_path_at(&self.base.to_string(), path)
    }

    /// A file as it was at `commit` (one the clone has: see `history`).
    pub fn read_path_at(&self, commit: &str, path: &str) -> Option<String> {
        let oid = git2::Oid::from_str(commit).ok()?;
        let tree = self.repo.find_commit(oid).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        self.read(entry.id())
    }

    /// Commit new contents for `files` (`None`: delete the file) on top of the base; the branch's local ref
    /// points at it.
    pub fn commit(
        &mut self,
        files: &[(String, Option<String>)],
        author: &Signature<'_>,
        message: &str,
    ) -> Result<String, GitError> {
        let parent = self
            .repo
            .find_commit(self.base)
            .map_err(|e| self.git_err(e))?;
        let base_tree = parent.tree().map_err(|e| self.git_err(e))?;
        let mut update = TreeUpdateBuilder::new();
        for (path, content) in files {
            let Some(content) = content else {
                update.remove(path);
                continue;
            };
            let mode = base_tree
                .get_path(Path::new(path))
                .map(|e| e.filemode())
                .unwrap_or(i32::from(FileMode::Blob));
            let mode = if mode == i32::from(FileMode::BlobExecutable) {
                FileMode::BlobExecutable
            } else {
                FileMode::Blob
            };
            let blob = self
                .repo
                .blob(content.as_bytes())
                .map_err(|e| self.git_err(e))?;
            update.upsert(path, blob, mode);
        }
        let tree_oid = update
            .create_updated(&self.repo, &base_tree)
            .map_err(|e| self.git_err(e))?;
        let tree = self.repo.find_tree(tree_oid).map_err(|e| self.git_err(e))?;
        let oid = self
            .repo
            .commit(None, author, author, message, &tree, &[&parent])
            .map_err(|e| self.git_err(e))?;
        self.repo
            .reference(
                &format!("refs/heads/{}", self.branch),
                oid,
                true,
                "flowship bump",
            )
            .map_err(|e| self.git_err(e))?;
        self.base = oid;
        Ok(oid.to_string())
    }

    /// Push the base commit to the branch, and confirm that the remote branch now contains it.
    pub fn push(&mut self, push_options: &[String]) -> Result<PushResult, GitError> {
        let commit = self.base;
        if let Some(dir) = self.local.clone() {
            let result = self.push_local(&dir, commit);
            if let Ok(PushResult::Pushed) = result {
                self.expected = Some(commit);
            }
            return result;
        }
        let sent = self.push_network(push_options);
        let result = self.confirm(sent, commit);
        if let Ok(PushResult::Pushed) = result {
            // The remote's tip is our commit now: a later plan on this checkout is made on what it has.
            self.expected = Some(commit);
        }
        result
    }

    /// Whether the push `sent` really landed `commit` on the branch (asking the remote when unsure).
    fn confirm(
        &mut self,
        sent: Result<PushResult, GitError>,
        commit: Oid,
    ) -> Result<PushResult, GitError> {
        match sent {
            Ok(PushResult::Rejected(why)) => Ok(PushResult::Rejected(why)),
            Ok(PushResult::Pushed) => match self.contains(commit)? {
                true => Ok(PushResult::Pushed),
                false => Ok(PushResult::Rejected(
                    "the server accepted the push, but the branch does not contain the commit"
                        .into(),
                )),
            },
            // The answer may have been lost after the server applied the push: ask it.
            Err(e @ (GitError::Connect { .. } | GitError::Other { .. })) => {
                match self.contains(commit) {
                    Ok(true) => {
                        tracing::info!(error = %e, "the push's answer was lost, but the branch has the commit");
                        Ok(PushResult::Pushed)
                    }
                    Ok(false) => Ok(PushResult::Rejected(format!(
                        "push failed ({e}); the branch does not have the commit"
                    ))),
                    Err(_) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn push_network(&self, push_options: &[String]) -> Result<PushResult, GitError> {
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| self.git_err(e))?;
        let attempts = Arc::new(AtomicU32::new(0));
        let mut cb = self.access.callbacks(attempts.clone());
        let refused: Arc<Mutex<Option<String>>> = Arc::default();
        let r = refused.clone();
        cb.push_update_reference(move |refname, status| {
            if let Some(s) = status {
                *r.lock().expect("not poisoned") = Some(format!("{refname}: {s}"));
            }
            Ok(())
        });
        let mut po = PushOptions::new();
        po.remote_callbacks(cb);
        po.follow_redirects(git2::RemoteRedirect::None);
        let opts: Vec<&str> = push_options.iter().map(String::as_str).collect();
        if !opts.is_empty() {
            po.remote_push_options(&opts);
        }
        let spec = format!("refs/heads/{0}:refs/heads/{0}", self.branch); // no leading '+': never force
        match remote.push(&[spec.as_str()], Some(&mut po)) {
            Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
                Ok(PushResult::Rejected(e.message().to_string()))
            }
            Err(e) => Err(self.access.classify(e, &attempts, Direction::Push)),
            Ok(()) => match refused.lock().expect("not poisoned").take() {
                Some(why) if why.contains("hook declined") || why.contains("protected") => {
                    Err(GitError::PushDenied {
                        url: self.access.display_url(),
                        detail: why,
                    })
                }
                Some(why) => Ok(PushResult::Rejected(why)),
                None => Ok(PushResult::Pushed),
            },
        }
    }

    /// Does the remote branch contain `commit` now? Its tip is asked for first (one round trip); when the tip
    /// has moved on, the new commits are fetched and searched for ours.
    fn contains(&mut self, commit: Oid) -> Result<bool, GitError> {
        let refs = self
            .access
            .retrying(|| self.access.list_ref_ids(Direction::Fetch))?;
        let full = format!("refs/heads/{}", self.branch);
        let Some(tip) = refs.iter().find(|(n, _)| *n == full).map(|(_, o)| *o) else {
            return Ok(false);
        };
        if tip == commit {
            return Ok(true);
        }
        self.fetch(&self.branch.clone(), CONFIRM_DEPTH)?;
        Ok(self.repo.graph_descendant_of(tip, commit).unwrap_or(false))
    }

    /// Local-path remote: the objects straight into its object database, then the ref moved by a
    /// compare-and-swap against the tip the plan was made on.
    fn push_local(&mut self, dir: &Path, commit: Oid) -> Result<PushResult, GitError> {
        let remote = Repository::open(dir).map_err(|e| self.git_err(e))?;
        // The new commit and what only it reaches: a pack the remote indexes itself.
        let mut walk = self.repo.revwalk().map_err(|e| self.git_err(e))?;
        walk.push(commit).map_err(|e| self.git_err(e))?;
        if let Some(old) = self.expected {
            walk.hide(old).map_err(|e| self.git_err(e))?;
        }
        let mut pb = self.repo.packbuilder().map_err(|e| self.git_err(e))?;
        pb.insert_walk(&mut walk).map_err(|e| self.git_err(e))?;
        let odb = remote.odb().map_err(|e| self.git_err(e))?;
        let mut writer = odb.packwriter().map_err(|e| self.git_err(e))?;
        let mut io_err = None;
        pb.foreach(|chunk| match writer.write_all(chunk) {
            Ok(()) => true,
            Err(e) => {
                io_err = Some(e);
                false
            }
        })
        .map_err(|e| self.git_err(e))?;
        if let Some(e) = io_err {
            return Err(GitError::Other {
                url: self.access.display_url(),
                detail: format!("writing objects: {e}"),
            });
        }
        writer.commit().map_err(|e| self.git_err(e))?;
        let name = format!("refs/heads/{}", self.branch);
        let moved = match self.expected {
            Some(old) => remote.reference_matching(&name, commit, true, old, "flowship bump"),
            None => remote.reference(&name, commit, false, "flowship bump"),
        };
        match moved {
            Ok(_) => Ok(PushResult::Pushed),
            // Someone moved (or created, or is moving) the ref since we read it.
            Err(e)
                if matches!(
                    e.code(),
                    git2::ErrorCode::Modified | git2::ErrorCode::Locked | git2::ErrorCode::Exists
                ) =>
            {
                Ok(PushResult::Rejected(e.message().to_string()))
            }
            Err(e) => Err(self.git_err(e)),
        }
    }

    /// `(commit, message)` from the base back, newest first, up to `max` (a shallow clone is deepened to
    /// `max` first).
    pub fn history(&mut self, max: usize) -> Result<Vec<(String, String)>, GitError> {
        self.deepen(max)?;
        let mut walk = self.repo.revwalk().map_err(|e| self.git_err(e))?;
        walk.push(self.base).map_err(|e| self.git_err(e))?;
        let mut out = Vec::new();
        for oid in walk.take(max) {
            let Ok(oid) = oid else { break };
            let Ok(c) = self.repo.find_commit(oid) else {
                break;
            };
            out.push((oid.to_string(), c.message().unwrap_or_default().to_string()));
        }
        Ok(out)
    }

    /// Make the history at least `depth` commits deep (a fetch only when the clone is shallower).
    pub fn deepen(&mut self, depth: usize) -> Result<(), GitError> {
        let depth = depth.clamp(1, i32::MAX as usize);
        match self.depth {
            Some(have) if have < depth => {
                let branch = self.branch.clone();
                self.fetch(&branch, depth as i32)?;
                self.depth = Some(depth);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Fetch `branch` into `refs/remotes/origin/<branch>`.
    fn fetch(&self, branch: &str, depth: i32) -> Result<(), GitError> {
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| self.git_err(e))?;
        let spec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        self.access.retrying(|| {
            let attempts = Arc::new(AtomicU32::new(0));
            let mut fo = FetchOptions::new();
            fo.remote_callbacks(self.access.callbacks(attempts.clone()));
            fo.follow_redirects(git2::RemoteRedirect::None);
            if self.depth.is_some() {
                fo.depth(depth);
            }
            remote
                .fetch(&[spec.as_str()], Some(&mut fo), None)
                .map_err(|e| self.access.classify(e, &attempts, Direction::Fetch))
        })
    }

    /// Fetch the branch's current tip and plan against it from now on (our unpushed commit is dropped; the
    /// caller re-applies its edit). A push branch the remote does not have (yet, or any more) starts again
    /// from the start branch's tip.
    pub fn refetch(&mut self) -> Result<(), GitError> {
        let refs = self
            .access
            .retrying(|| self.access.list_ref_ids(Direction::Fetch))?;
        let tip_of = |b: &str| {
            let full = format!("refs/heads/{b}");
            refs.iter().find(|(n, _)| *n == full).map(|(_, o)| *o)
        };
        let branch = self.branch.clone();
        if let Some(tip) = tip_of(&branch) {
            let tip = self.fetched_tip(&branch, tip)?;
            self.base = tip;
            self.expected = Some(tip);
            return Ok(());
        }
        let start = self.start.clone();
        let Some(tip) = tip_of(&start) else {
            return Err(GitError::Other {
                url: self.access.display_url(),
                detail: format!("branch `{start}` is gone from the remote"),
            });
        };
        self.base = self.fetched_tip(&start, tip)?;
        self.expected = None;
        Ok(())
    }

    /// Bring `branch` to the remote's tip `listed` (as `ls-remote` just said) and return what the
    /// remote-tracking ref now holds (the fetched state, never a local branch). A tip the clone has already
    /// (our own pushed commit, most often) is not fetched again.
    fn fetched_tip(&self, branch: &str, listed: Oid) -> Result<Oid, GitError> {
        let tracking = format!("refs/remotes/origin/{branch}");
        if self.repo.find_commit(listed).is_ok() {
            self.repo
                .reference(
                    &tracking,
                    listed,
                    true,
                    "flowship: the remote's tip, known here",
                )
                .map_err(|e| self.git_err(e))?;
            return Ok(listed);
        }
        self.fetch(branch, 1)?;
        self.repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
            .map_err(|e| self.git_err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;
    use std::path::PathBuf;

    #[test]
    fn local_paths_are_told_from_network_remotes() {
        assert_eq!(local_path("/srv/g.git"), Some(PathBuf::from("/srv/g.git")));
        assert_eq!(
            local_path("file:///srv/g.git"),
            Some(PathBuf::from("/srv/g.git"))
        );
        assert_eq!(local_path("./g.git"), Some(PathBuf::from("./g.git")));
        assert_eq!(local_path("git@gitlab.example.com:g/p.git"), None);
        assert_eq!(local_path("https://gitlab.example.com/g/p.git"), None);
        assert_eq!(local_path("git://127.0.0.1:9418/g.git"), None);
    }
}
