//! The project layer: the local packages' wheels (the project itself, workspace members, path dependencies)
//! installed into the dependency layer's directory, as a layer of their own between the dependencies and
//! the code. The dependency layer under it stays cached in the registry; the installed files are kept in the
//! local cache by the wheels' bytes, which `sources` keeps unchanged while the package's files are.

use super::{BuildError, Builder, Platform, io};
use crate::image::cache::{Key, Local};
use crate::image::deps::{self, Installer};
use crate::image::wheels;
use crate::registry::blobs::Descriptor;
use std::path::PathBuf;

/// What the installed files depend on: the wheels' bytes, the target platform and Python, the installer.
fn installed_key(
    wheels: &[PathBuf],
    arch: &str,
    python: &str,
    libc: Option<&crate::image::base::Libc>,
    inst: &Installer,
) -> Option<String> {
    let mut k = Key::new("project");
    k.add(arch.as_bytes())
        .add(python.as_bytes())
        .add(format!("{libc:?}").as_bytes())
        .add(inst.id().as_bytes());
    for w in wheels {
        k.add(&crate::image::cache::file_digest(w)?);
    }
    Some(k.finish())
}

impl Builder<'_> {
    pub(super) fn project_layer(
        &mut self,
        platform: &Platform,
        t: &super::target::BaseTarget,
        built: &[PathBuf],
        inst: &Installer,
    ) -> Result<(Descriptor, String, &'static str), BuildError> {
        let names: Vec<String> = built
            .iter()
            .filter_map(|w| w.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        let cache = Local::at(self.input.cache.as_deref());
        let key = installed_key(built, &platform.arch, &t.python, t.libc(), inst);
        let site = match cache
            .as_ref()
            .zip(key.as_ref())
            .and_then(|(c, k)| c.get("project", k))
        {
            // The same wheels installed for the same target: the same files.
            Some(site) => {
                self.built.notes.push(format!(
                    "project for linux/{}: {} (installed files reused from the local cache)",
                    platform.arch,
                    names.join(", ")
                ));
                site
            }
            None => {
                let site = self.scratch.join(format!("project-{}", platform.arch));
                std::fs::create_dir_all(&site).map_err(io)?;
                let to = deps::Target {
                    arch: &platform.arch,
                    python: &t.python,
                    libc: t.libc(),
                    constraints: None,
                    // Local wheels install without their dependencies: no index is asked.
                    indexes: &[],
                };
                wheels::install(inst, built, &to, &site)?;
                // A local package with a C extension is built for the build machine: it must still load on
                // the base.
                self.check_fit(&site, t)?;
                if let (Some(c), Some(k)) = (&cache, &key) {
                    c.put("project", k, &site);
                }
                self.built.notes.push(format!(
                    "project for linux/{}: {} installed from wheels",
                    platform.arch,
                    names.join(", ")
                ));
                site
            }
        };
        let (d, l) = self.site_layer(&site, &format!("project-{}", platform.arch))?;
        Ok((d, l.diff_id, "project"))
    }
}
