//! What the installs target, as the base says it: its Python (read from its layers, not only from its
//! `PYTHON_VERSION`), its libc, and the packages its Python already imports. And the checks of an installed
//! layer against it: wheel tags (exit 2), the base's packages shadowed or duplicated, native libraries the
//! base lacks (warnings).

use super::config::{env_of, python_of};
use super::{BuildError, Builder};
use crate::image::base::{self, BaseIndex, Dist, Libc};
use crate::registry::blobs::Descriptor;
use serde_json::Value;
use std::path::Path;

/// One platform's target: the Python to install for, and what the base's layers say (when they were read).
pub(super) struct BaseTarget {
    /// `3.11`.
    pub python: String,
    pub index: Option<BaseIndex>,
    /// The image's `python3`, as found in the layers.
    pub interpreter: Option<base::Python>,
}

impl BaseTarget {
    pub fn libc(&self) -> Option<&Libc> {
        self.index.as_ref().and_then(|i| i.libc.as_ref())
    }

    /// The base's distributions the image's Python imports.
    pub fn visible(&self) -> Vec<&Dist> {
        match (&self.index, &self.interpreter) {
            (Some(i), Some(py)) => i.visible_dists(py),
            _ => Vec::new(),
        }
    }
}

impl Builder<'_> {
    pub(super) fn warn(&mut self, w: String) {
        if !self.built.warnings.contains(&w) {
            self.built.warnings.push(w);
        }
    }

    /// The base's Python: `--python-version` when given; else the `python3` its layers hold (on its `PATH`),
    /// which wins over a `PYTHON_VERSION` that disagrees (the variable is only a claim); else
    /// `PYTHON_VERSION`. A base with none of them has no Python for the image to run: exit 2.
    pub(super) async fn target(
        &mut self,
        config: &Value,
        layers: &[Descriptor],
    ) -> Result<BaseTarget, BuildError> {
        let index = self.base_index(layers).await;
        let path = env_of(config, "PATH");
        let found = index.as_ref().and_then(|i| i.python(path.as_deref()));
        let declared = python_of(config);
        let base = self.base_name.clone();
        let python = match (self.input.python.clone(), &found, declared) {
            (Some(given), Some(f), _) if f.version != given => {
                self.warn(format!(
                    "--python-version {given} is used, but base image {base} runs Python {} (/{})",
                    f.version, f.interpreter
                ));
                given
            }
            (Some(given), _, _) => given,
            (None, Some(f), Some(d)) if f.version != d => {
                self.warn(format!("base image {base} says PYTHON_VERSION={d}, but its python3 is Python {} (/{}): installing for {}", f.version, f.interpreter, f.version));
                f.version.clone()
            }
            (None, Some(f), _) => f.version.clone(),
            (None, None, Some(d)) => {
                if index.is_some() {
                    self.warn(format!("base image {base} has no python3 in its layers; installing for its PYTHON_VERSION={d}"));
                }
                d
            }
            (None, None, None) => {
                let why = match index {
                    Some(_) => {
                        "has no Python (no python3 on its PATH, nor in /usr/local/bin or /usr/bin): build on a base with Python (a python:3.X image, or one with python3 installed)"
                    }
                    None => {
                        "does not say its Python version (no PYTHON_VERSION in its environment, and its layers could not be read): pass --python-version"
                    }
                };
                return Err(self.bad_base(why.into()));
            }
        };
        Ok(BaseTarget {
            python,
            index,
            interpreter: found,
        })
    }

    /// The base's index, read once per set of layers (cached on disk); `None`, with a warning, when a layer
    /// cannot be read: the build goes on with what the base's config says.
    async fn base_index(&mut self, layers: &[Descriptor]) -> Option<BaseIndex> {
        let cache = self.input.cache.clone();
        match base::index(&self.base, layers, cache.as_deref()).await {
            Ok(i) => Some(i),
            Err(e) => {
                self.warn(format!(
                    "base image {}: {e}; its Python, libc and packages are not checked",
                    self.base_name
                ));
                None
            }
        }
    }

    /// Every wheel installed in `site` loads on the base (its Python, its libc), else exit 2 naming it.
    pub(super) fn check_fit(&self, site: &Path, t: &BaseTarget) -> Result<(), BuildError> {
        match base::fit::check(site, &t.python, t.libc()) {
            None => Ok(()),
            Some(u) => Err(BuildError::Unfit {
                base: self.base_name.clone(),
                package: u.package,
                version: u.version,
                tag: u.tag,
                reason: u.reason,
            }),
        }
    }

    /// Check a freshly installed layer against the base: a wheel that cannot load there is exit 2; the
    /// base's packages the layer shadows or repeats, and the native libraries it needs and the base lacks, are
    /// returned as warnings (the same version as the base's is taken out of the layer first).
    pub(super) fn check_layer(
        &mut self,
        site: &Path,
        t: &BaseTarget,
    ) -> Result<Vec<String>, BuildError> {
        self.check_fit(site, t)?;
        let mut warnings = Vec::new();
        let overlap = base::dists::settle(site, &t.visible());
        if !overlap.shadowed.is_empty() {
            let list: Vec<String> = overlap
                .shadowed
                .iter()
                .map(|(n, b, l)| format!("{n} {b} → {l}"))
                .collect();
            warnings.push(format!(
                "the dependency layer shadows the base's own packages with other versions (base → layer): {}; the image imports the layer's",
                list.join(", ")
            ));
        }
        if !overlap.duplicated.is_empty() {
            warnings.push(format!(
                "the dependency layer repeats packages the base has at the same version: {}",
                overlap.duplicated.join(", ")
            ));
        }
        if !overlap.removed.is_empty() {
            let n = overlap.removed.len();
            let mut list = overlap.removed[..n.min(8)].join(", ");
            if n > 8 {
                list.push_str(&format!(" and {} more", n - 8));
            }
            self.built.notes.push(format!(
                "left to the base (it has the same versions): {list}"
            ));
        }
        // Without a libc the base runs no native code at all; naming every library would say nothing more.
        if let Some(index) = t.index.as_ref().filter(|i| i.libc.is_some()) {
            for (package, libs) in base::needs::missing(site, &index.libraries) {
                warnings.push(format!(
                    "{package} needs {}, which the base does not have: system packages are the base's job; build on a base that has them",
                    libs.join(", ")
                ));
            }
        }
        Ok(warnings)
    }
}
