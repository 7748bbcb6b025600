//! The native libraries the dependency layer's shared objects need (`DT_NEEDED`) that neither the base nor
//! the layer has. Named at build time, never installed: system packages are the base's job, and a wheel that
//! bundles its libraries (auditwheel's `<pkg>.libs/`) brings them itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `(package, libraries)`: what each top-level package of `site` needs that `base_libraries` and the layer
/// itself lack, in name order.
pub fn missing(site: &Path, base_libraries: &BTreeSet<String>) -> Vec<(String, Vec<String>)> {
    let mut names = BTreeSet::new();
    let mut objects = Vec::new();
    walk(site, &mut names, &mut objects);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for so in objects {
        let Ok(mut file) = std::fs::File::open(&so) else {
            continue;
        };
        // Not ELF, or not one we read (32-bit, big-endian): nothing to say about it.
        let Ok(needed) = crate::image::elf::needed(&mut file) else {
            continue;
        };
        for lib in needed {
            if !base_libraries.contains(&lib) && !names.contains(&lib) {
                out.entry(package_of(site, &so)).or_default().insert(lib);
            }
        }
    }
    out.into_iter()
        .map(|(p, libs)| (p, libs.into_iter().collect()))
        .collect()
}

/// Every file name under `dir`, and the shared objects (`x.so`, `x.so.1`) among them.
fn walk(dir: &Path, names: &mut BTreeSet<String>, objects: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            walk(&p, names, objects);
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        if kind.is_file() && (name.ends_with(".so") || name.contains(".so.")) {
            objects.push(p);
        }
        names.insert(name);
    }
}

/// `psycopg2/_psycopg.cpython-311-x86_64-linux-gnu.so` → `psycopg2`; `numpy.libs/x.so` → `numpy`.
fn package_of(site: &Path, so: &Path) -> String {
    let rel = so.strip_prefix(site).unwrap_or(so);
    let top = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    let top = top.strip_suffix(".libs").unwrap_or(&top);
    top.split(".cpython-").next().unwrap_or(top).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_neither_the_base_nor_the_layer_has_are_named_per_package() {
        let d = tempfile::tempdir().unwrap();
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        std::fs::create_dir_all(d.path().join("pkg")).unwrap();
        std::fs::write(d.path().join("pkg/_ext.so"), &me).unwrap();
        std::fs::write(d.path().join("pkg/data.so.txt"), "not elf").unwrap();
        let none = BTreeSet::new();
        let found = missing(d.path(), &none);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "pkg");
        assert!(found[0].1.contains(&"libc.so.6".to_string()), "{found:?}");
        // The base has them all.
        let all: BTreeSet<String> = found[0].1.iter().cloned().collect();
        assert!(missing(d.path(), &all).is_empty());
        // Bundled in the layer (auditwheel's `<pkg>.libs/`).
        std::fs::create_dir_all(d.path().join("pkg.libs")).unwrap();
        for lib in &found[0].1 {
            std::fs::write(d.path().join("pkg.libs").join(lib), "").unwrap();
        }
        assert!(missing(d.path(), &none).is_empty());
    }
}
