//! The dependency layer of one platform: reused from the registry cache when its key is recorded there (no
//! installer run), else installed for the target the base describes, checked against the base, and recorded.

use super::cache::{Cached, cache_record, cache_tag, cached_deps};
use super::target::BaseTarget;
use super::{BuildError, Builder, Platform, io};
use crate::image::deps::{self, Installer};
use crate::registry::blobs::Descriptor;
use crate::registry::push::Blob;
use std::path::{Path, PathBuf};

impl Builder<'_> {
    /// The dependency layer: from the registry cache (no installer run), else installed now for the target
    /// platform and recorded for the next build.
    pub(super) async fn deps_layer(
        &mut self,
        platform: &Platform,
        t: &BaseTarget,
        req: &Path,
        inst: &Installer,
    ) -> Result<(Descriptor, String, &'static str), BuildError> {
        let input = self.input;
        let python = t.python.clone();
        let inputs = deps::inputs(req)?;
        let constraints = self.constraints(platform, t, req)?;
        // What the base adds to the key: the platform tag its libc allows, and its packages' constraints.
        let (_, tag) = deps::platform_tags(&platform.arch, t.libc());
        let text = constraints.as_ref().map(|(_, c)| c.as_str()).unwrap_or("");
        let key = deps::cache_key(
            &inputs,
            &platform.arch,
            &python,
            inst,
            &input.index,
            &format!("{tag}\n{text}"),
        );
        let cached = match &self.target {
            Some(repo) => cached_deps(repo, &key).await?,
            None => None,
        };
        self.built.facts.python.get_or_insert(python.clone());
        if let (Some(c), Some(repo)) = (cached, self.target.clone()) {
            return Ok(self.reuse(platform, &key, c, &repo));
        }
        let site = self.scratch.join(format!("site-{}", platform.arch));
        std::fs::create_dir_all(&site).map_err(io)?;
        let to = deps::Target {
            arch: &platform.arch,
            python: &python,
            libc: t.libc(),
            constraints: constraints.as_ref().map(|(p, _)| p.as_path()),
            indexes: &self.input.indexes,
        };
        let done = deps::install(inst, req, &to, &site)?;
        let mut warnings = self.check_layer(&site, t)?;
        if done.unconstrained {
            warnings.insert(0, "the requirements cannot be met with the base's own package versions: installed without them as constraints".into());
        }
        let packages = crate::image::pysbom::installed(&site);
        self.add_packages(Some(packages.clone()));
        self.built.notes.push(format!(
            "dependencies for linux/{}: installed with {} for Python {python} ({tag})",
            platform.arch,
            inst.id()
        ));
        if !done.from_source.is_empty() {
            self.built.notes.push(format!(
                "built from source (pure Python, published without a wheel): {}",
                done.from_source.join(", ")
            ));
        }
        for w in &warnings {
            self.warn(w.clone());
        }
        let (d, l) = self.site_layer(&site, &format!("deps-{}", platform.arch))?;
        if self.target.is_some() {
            self.built.cache_records.push(cache_record(
                &key,
                &d,
                &l.diff_id,
                &packages,
                &warnings,
                self.scratch,
            )?);
        }
        Ok((d, l.diff_id, "dependencies"))
    }

    /// A layer recorded under `key`: its packages and its warnings (recorded with it) join the image's.
    fn reuse(
        &mut self,
        platform: &Platform,
        key: &str,
        (d, diff, packages, warnings): Cached,
        repo: &crate::registry::repo::Repo,
    ) -> (Descriptor, String, &'static str) {
        self.add_packages(packages);
        for w in warnings {
            self.warn(w);
        }
        self.built.notes.push(format!(
            "dependencies for linux/{}: reused from the registry ({})",
            platform.arch,
            cache_tag(key)
        ));
        self.built.blobs.push(Blob {
            descriptor: d.clone(),
            source: repo.source(),
            mount_from: None,
        });
        (d, diff, "dependencies")
    }

    /// The base's packages as constraints (`name==version` lines, in a file), when it has any the image's
    /// Python imports.
    fn constraints(
        &self,
        platform: &Platform,
        t: &BaseTarget,
        req: &Path,
    ) -> Result<Option<(PathBuf, String)>, BuildError> {
        let visible = t.visible();
        if visible.is_empty() {
            return Ok(None);
        }
        let requirements = std::fs::read_to_string(req).map_err(io)?;
        let text = crate::image::base::dists::constraints(&visible, &requirements);
        if text.is_empty() {
            return Ok(None);
        }
        let path = self
            .scratch
            .join(format!("base-constraints-{}.txt", platform.arch));
        std::fs::write(&path, &text).map_err(io)?;
        Ok(Some((path, text)))
    }

    /// The packages of one platform's dependency layer join the image's (unknown stays unknown).
    fn add_packages(&mut self, packages: Option<Vec<crate::image::pysbom::Package>>) {
        let known = &mut self.built.facts.packages;
        match (known.as_mut(), packages) {
            (Some(all), Some(p)) => {
                all.extend(p);
                all.sort();
                all.dedup();
            }
            _ => *known = None,
        }
    }
}
