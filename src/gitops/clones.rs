//! One clone per remote and branch for the whole run: every step that reads or writes the GitOps branch (the
//! hold check, pins, the release history, the bump, the reads after the push) borrows the same checkout, so a
//! run fetches each remote once, however many steps and environments read it. A checkout is lent to one
//! borrower at a time; another borrower of the same branch waits for it (environments read concurrently share
//! the first one's clone), so a borrower must not ask for a branch it already holds.

use super::remote::{Access, GitError};
use super::repo::Checkout;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use tokio::sync::{Mutex as Slot, OwnedMutexGuard};

type Key = (String, String);

#[derive(Default)]
pub struct Clones {
    slots: Mutex<HashMap<Key, Arc<Slot<Option<Checkout>>>>>,
}

/// A checkout borrowed from the run's [`Clones`] (returned when dropped), or one of its own (a merge
/// request's work branch, which no other step reads).
pub struct Lease(Held);

enum Held {
    Shared(OwnedMutexGuard<Option<Checkout>>),
    Own(Box<Checkout>),
}

impl Clones {
    /// The run's checkout of `branch`, at least `depth` commits deep: cloned on first use, deepened (one
    /// fetch) when a borrower needs more history than it has, else as it is.
    pub async fn lend(
        &self,
        access: &Access,
        branch: &str,
        depth: usize,
    ) -> Result<Lease, GitError> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((access.url().to_string(), branch.to_string()))
            .or_default()
            .clone();
        let mut held = slot.lock_owned().await;
        let url = access.display_url();
        let (access, branch) = (access.clone(), branch.to_string());
        let held = tokio::task::spawn_blocking(move || {
            match held.as_mut() {
                Some(c) => c.deepen(depth)?,
                None => *held = Some(Checkout::clone_temp(&access, &branch, depth)?),
            }
            Ok::<_, GitError>(held)
        })
        .await
        .map_err(|e| GitError::Other {
            url,
            detail: format!("the clone's task failed: {e}"),
        })??;
        Ok(Lease(Held::Shared(held)))
    }
}

impl Lease {
    /// A checkout no other step shares.
    pub fn own(checkout: Checkout) -> Self {
        Lease(Held::Own(Box::new(checkout)))
    }
}

impl Deref for Lease {
    type Target = Checkout;
    fn deref(&self) -> &Checkout {
        match &self.0 {
            Held::Shared(g) => g.as_ref().expect("a lent slot holds its checkout"),
            Held::Own(c) => c,
        }
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Checkout {
        match &mut self.0 {
            Held::Shared(g) => g.as_mut().expect("a lent slot holds its checkout"),
            Held::Own(c) => c,
        }
    }
}
