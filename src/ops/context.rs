//! The run's context: what every operation of one run shares instead of building its own. The GitOps clones
//! (one fetch per remote and branch, however many steps and environments read it) and the settings of the
//! file's other environments (resolved once each, on first use). Commands make one and hand it to the
//! operations; an operation never opens a remote the context already holds.

use crate::error::Error;
use crate::gitops::clones::Clones;
use crate::settings::Settings;
use std::sync::{Arc, Mutex};

/// Settings for another environment of the file, by name.
pub type Environments<'a> = dyn Fn(&str) -> Result<Settings, Error> + Sync + 'a;

pub struct Context<'a> {
    resolve: &'a Environments<'a>,
    environments: Mutex<Vec<(String, Arc<Settings>)>>,
    clones: Clones,
}

impl<'a> Context<'a> {
    pub fn new(resolve: &'a Environments<'a>) -> Self {
        Self {
            resolve,
            environments: Mutex::default(),
            clones: Clones::default(),
        }
    }

    /// The settings of environment `name` (the selected one's overlay replaced by `name`'s), resolved once.
    pub fn environment(&self, name: &str) -> Result<Arc<Settings>, Error> {
        let cached = self
            .environments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone());
        if let Some(s) = cached {
            return Ok(s);
        }
        let s = Arc::new((self.resolve)(name)?);
        self.environments
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_string(), s.clone()));
        Ok(s)
    }

    /// The run's GitOps clones.
    pub fn clones(&self) -> &Clones {
        &self.clones
    }
}
