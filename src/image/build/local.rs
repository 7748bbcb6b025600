//! The project layer: the local packages' wheels (the project itself, workspace members, path dependencies)
//! installed into the dependency layer's directory, as a layer of their own between the dependencies and
//! the code. It changes with the code and is never cached; the dependency layer under it stays cached.

use super::{BuildError, Builder, Platform, descriptor, io};
use crate::image::deps::{self, Installer};
use crate::image::manifest::OCI_LAYER_GZIP;
use crate::image::{context, layer, wheels};
use crate::registry::blobs::{Descriptor, Source};
use crate::registry::push::Blob;
use std::path::PathBuf;

impl Builder<'_> {
    pub(super) fn project_layer(
        &mut self,
        platform: &Platform,
        t: &super::target::BaseTarget,
        built: &[PathBuf],
        inst: &Installer,
    ) -> Result<(Descriptor, String, &'static str), BuildError> {
        let site = self.scratch.join(format!("project-{}", platform.arch));
        std::fs::create_dir_all(&site).map_err(io)?;
        let to = deps::Target {
            arch: &platform.arch,
            python: &t.python,
            libc: t.libc(),
            constraints: None,
        };
        wheels::install(inst, built, &to, &site)?;
        // A local package with a C extension is built for the build machine: it must still load on the base.
        if let Some(u) = crate::image::base::fit::check(&site, &t.python, t.libc()) {
            return Err(BuildError::Unfit {
                base: self.base_name.clone(),
                package: u.package,
                version: u.version,
                tag: u.tag,
                reason: u.reason,
            });
        }
        let names: Vec<String> = built
            .iter()
            .filter_map(|w| w.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        self.built.notes.push(format!(
            "project for linux/{}: {} installed from wheels",
            platform.arch,
            names.join(", ")
        ));
        let (entries, _) = context::collect(&site, deps::SITE)?;
        let l = layer::write(
            &entries,
            self.input.mtime,
            &self
                .scratch
                .join(format!("project-{}.tar.gz", platform.arch)),
        )
        .map_err(io)?;
        let d = descriptor(OCI_LAYER_GZIP, &l);
        self.built.blobs.push(Blob {
            descriptor: d.clone(),
            source: Source::File(l.path.clone()),
            mount_from: None,
        });
        self.built.files.push((d.clone(), l.path.clone()));
        Ok((d, l.diff_id, "project"))
    }
}
