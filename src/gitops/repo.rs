//! A working checkout of the GitOps branch: clone (shallow where the transport allows), commit, and push
//! safely when many pipelines push at once. A push is rejected on one of two channels (libgit2 returns
//! `NotFastForward`, or the server reports a per-ref failure through `push_update_reference` while `push`
//! returns Ok); both are caught. On rejection the caller fetches, resets to the remote tip and re-applies its
//! edit: never a rebase, never a force-push.

use super::remote::{Access, GitError};
use git2::build::RepoBuilder;
use git2::{Direction, FetchOptions, PushOptions, Repository, ResetType, Signature};
use std::path::Path;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

pub struct Checkout {
    pub repo: Repository,
    access: Access,
    branch: String,
    shallow: bool,
}

pub enum PushResult {
    Pushed,
    /// Someone else pushed first (or the server refused the ref update); the message says which.
    Rejected(String),
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
            .branch(branch)
            .fetch_options(fo)
            .clone(url, dir)
            .map_err(|e| access.classify(e, &attempts, Direction::Fetch))?;
        Ok(Self {
            repo,
            access: access.clone(),
            branch: branch.into(),
            shallow,
        })
    }

    /// Continue on a new local branch `name` from HEAD; pushes go to `name` from now on.
    pub fn start_branch(&mut self, name: &str) -> Result<(), GitError> {
        let head = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(|e| self.git_err(e))?;
        self.repo
            .branch(name, &head, false)
            .map_err(|e| self.git_err(e))?;
        self.repo
            .set_head(&format!("refs/heads/{name}"))
            .map_err(|e| self.git_err(e))?;
        self.branch = name.to_string();
        Ok(())
    }

    pub fn workdir(&self) -> &Path {
        self.repo.workdir().expect("a clone has a work tree")
    }

    pub fn head(&self) -> Option<String> {
        self.repo.head().ok()?.target().map(|o| o.to_string())
    }

    fn git_err(&self, e: git2::Error) -> GitError {
        GitError::Other {
            url: self.access.display_url(),
            detail: e.message().to_string(),
        }
    }

    /// Stage `files` (relative to the work tree) and commit them on top of HEAD.
    pub fn commit(
        &self,
        files: &[String],
        author: &Signature<'_>,
        message: &str,
    ) -> Result<String, GitError> {
        let mut index = self.repo.index().map_err(|e| self.git_err(e))?;
        for f in files {
            index.add_path(Path::new(f)).map_err(|e| self.git_err(e))?;
        }
        index.write().map_err(|e| self.git_err(e))?;
        let tree = self
            .repo
            .find_tree(index.write_tree().map_err(|e| self.git_err(e))?)
            .map_err(|e| self.git_err(e))?;
        let parent = self
            .repo
            .head()
            .and_then(|h| h.peel_to_commit())
            .map_err(|e| self.git_err(e))?;
        let oid = self
            .repo
            .commit(Some("HEAD"), author, author, message, &tree, &[&parent])
            .map_err(|e| self.git_err(e))?;
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

    /// Fetch the branch's current tip and make the work tree exactly that (our unpushed commit is dropped;
    /// the caller re-applies its edit).
    pub fn reset_to_remote(&self) -> Result<(), GitError> {
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
        let oid = self
            .repo
            .refname_to_id(&format!("refs/remotes/origin/{}", self.branch))
            .map_err(|e| self.git_err(e))?;
        let obj = self
            .repo
            .find_object(oid, None)
            .map_err(|e| self.git_err(e))?;
        self.repo
            .reset(&obj, ResetType::Hard, None)
            .map_err(|e| self.git_err(e))
    }
}
