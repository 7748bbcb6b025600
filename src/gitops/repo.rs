//! The GitOps branch as objects, not files: a bare, shallow clone (where the transport allows it), planning
//! reads blobs straight from the tip's tree, and a commit writes only the changed blobs and the trees on their
//! paths. No work tree is ever checked out, so a bump costs the same in a repo of 50 files or 50,000.
//!
//! Pushing is safe when many pipelines push at once. A push is rejected on one of two channels (libgit2
//! returns `NotFastForward`, or the server reports a per-ref failure through `push_update_reference` while
//! `push` returns Ok); both are caught. On rejection the caller refetches the tip and re-plans on it: never a
//! rebase, never a force-push.

use super::remote::{Access, GitError};
use git2::build::{RepoBuilder, TreeUpdateBuilder};
use git2::{
    Direction, FetchOptions, FileMode, Oid, PushOptions, Repository, Signature, TreeWalkMode,
    TreeWalkResult,
};
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

pub struct Checkout {
    repo: Repository,
    access: Access,
    /// The branch pushes go to.
    branch: String,
    /// The commit plans are made against: the branch tip as last fetched, or our own commit.
    base: Oid,
    shallow: bool,
}

pub enum PushResult {
    Pushed,
    /// Someone else pushed first (or the server refused the ref update); the message says which.
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

impl Checkout {
    pub fn clone(access: &Access, url: &str, branch: &str, dir: &Path) -> Result<Self, GitError> {
        let shallow = shallow_ok(url);
        let attempts = Arc::new(AtomicU32::new(0));
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(access.callbacks(attempts.clone()));
        if shallow {
            fo.depth(1);
        }
        let repo = RepoBuilder::new()
            .bare(true)
            .branch(branch)
            .fetch_options(fo)
            .clone(url, dir)
            .map_err(|e| access.classify(e, &attempts, Direction::Fetch))?;
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
            base: tip,
            shallow,
        })
    }

    fn git_err(&self, e: git2::Error) -> GitError {
        GitError::Other {
            url: self.access.display_url(),
            detail: e.message().to_string(),
        }
    }

    fn remote_tip(&self, branch: &str) -> Result<Oid, GitError> {
        self.repo
            .refname_to_id(&format!("refs/remotes/origin/{branch}"))
            .or_else(|_| self.repo.refname_to_id(&format!("refs/heads/{branch}")))
            .map_err(|e| self.git_err(e))
    }

    /// The commit the next plan is made against.
    pub fn head(&self) -> Option<String> {
        Some(self.base.to_string())
    }

    /// Continue on a new branch `name` (merge-request mode); pushes go there from now on.
    pub fn start_branch(&mut self, name: &str) {
        self.branch = name.to_string();
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

    /// A blob's text; `None` for binary or non-UTF-8 content (never a manifest).
    pub fn read(&self, oid: Oid) -> Option<String> {
        let blob = self.repo.find_blob(oid).ok()?;
        String::from_utf8(blob.content().to_vec()).ok()
    }

    /// The text of `path` in the base commit, if it is a file.
    pub fn read_path(&self, path: &str) -> Option<String> {
        let tree = self.repo.find_commit(self.base).ok()?.tree().ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        self.read(entry.id())
    }

    /// Commit new contents for `files` on top of the base; the branch's local ref points at it.
    pub fn commit(
        &mut self,
        files: &[(String, String)],
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

    pub fn push(&self, push_options: &[String]) -> Result<PushResult, GitError> {
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

    /// Fetch the branch's current tip and plan against it from now on (our unpushed commit is dropped; the
    /// caller re-applies its edit).
    pub fn refetch(&mut self) -> Result<(), GitError> {
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| self.git_err(e))?;
        let attempts = Arc::new(AtomicU32::new(0));
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(self.access.callbacks(attempts.clone()));
        if self.shallow {
            fo.depth(1);
        }
        let spec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", self.branch);
        remote
            .fetch(&[spec.as_str()], Some(&mut fo), None)
            .map_err(|e| self.access.classify(e, &attempts, Direction::Fetch))?;
        self.base = self.remote_tip(&self.branch.clone())?;
        Ok(())
    }
}
