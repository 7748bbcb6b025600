//! The base's own Python distributions in the resolution. Those the image's Python imports (prefect in a
//! Prefect base) are constraints (`name==version`), so the installer picks the base's versions; whatever the
//! layer then holds at the base's very version is taken out of the layer again (the base's copy is the one
//! imported anyway); a different version, which a lock can pin, stays and is reported: it shadows the base's.

use super::Dist;
use crate::image::pysbom::normalize;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// `name==version` per line, for `--constraint`: every distribution of `base`, except those `requirements`
/// pins to another version (a lock is frozen: its pin wins, and shadows).
pub fn constraints(base: &[&Dist], requirements: &str) -> String {
    let pins = pins(requirements);
    let mut out = String::new();
    for d in base {
        match pins.get(&normalize(&d.name)) {
            Some(v) if v != &d.version => {}
            _ => out.push_str(&format!("{}=={}\n", d.name, d.version)),
        }
    }
    out
}

/// Exact pins (`name==version`, `name[extra]==version ; marker`) of a requirements file, by normalized name.
fn pins(requirements: &str) -> BTreeMap<String, String> {
    let joined = requirements.replace("\\\r\n", " ").replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| {
            let spec = l
                .split('#')
                .next()?
                .split(';')
                .next()?
                .split_whitespace()
                .next()?;
            let (name, version) = spec.split_once("==")?;
            let name = name.split('[').next()?;
            Some((normalize(name), version.trim().to_string()))
        })
        .collect()
}

/// What the layer holds of what the base has.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Overlap {
    /// `(name, base's version, layer's version)`: the layer's copy is imported instead of the base's.
    pub shadowed: Vec<(String, String, String)>,
    /// Taken out of the layer: the base has the same version.
    pub removed: Vec<String>,
    /// The same version as the base's, left in (its files are not listed, so it cannot be taken out safely).
    pub duplicated: Vec<String>,
}

/// Compare `site`'s distributions with `base`'s, taking out those at the base's version.
pub fn settle(site: &Path, base: &[&Dist]) -> Overlap {
    let by_name: BTreeMap<String, &Dist> = base.iter().map(|d| (normalize(&d.name), *d)).collect();
    let mut overlap = Overlap::default();
    for info in super::dist_infos(site) {
        let Some(stem) = info.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
            continue;
        };
        let Some((name, version)) = stem.rsplit_once('-') else {
            continue;
        };
        let Some(b) = by_name.get(&normalize(name)) else {
            continue;
        };
        if b.version != version {
            overlap
                .shadowed
                .push((b.name.clone(), b.version.clone(), version.to_string()));
        } else if remove(site, &info) {
            overlap.removed.push(b.name.clone());
        } else {
            overlap.duplicated.push(b.name.clone());
        }
    }
    overlap
}

/// Delete one distribution's files (its `RECORD`, none outside `site`) and the directories it leaves
/// empty. `false` when it has no readable `RECORD`: then nothing is deleted.
fn remove(site: &Path, info: &Path) -> bool {
    let Ok(record) = std::fs::read_to_string(info.join("RECORD")) else {
        return false;
    };
    let mut dirs = Vec::new();
    for line in record.lines() {
        let path = match line.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or(""),
            None => line.split(',').next().unwrap_or(""),
        };
        let Some(rel) = inside(path) else { continue };
        let file = site.join(&rel);
        let _ = std::fs::remove_file(&file);
        let mut parent = rel.parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.push(site.join(p));
            parent = p.parent();
        }
    }
    let _ = std::fs::remove_dir_all(info);
    // Deepest first; a directory another distribution still uses is not empty and stays.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for d in dirs {
        let _ = std::fs::remove_dir(&d);
        let _ = std::fs::remove_dir_all(d.join("__pycache__"));
        let _ = std::fs::remove_dir(&d);
    }
    true
}

/// A RECORD path as a relative path that stays inside the site directory.
fn inside(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(name: &str, version: &str) -> Dist {
        Dist {
            name: name.into(),
            version: version.into(),
            site: "opt/prefect/lib/python3.11/site-packages".into(),
        }
    }

    #[test]
    fn the_bases_packages_constrain_unless_a_lock_pins_another_version() {
        let (prefect, six) = (dist("prefect", "3.9.1"), dist("six", "1.16.0"));
        let base = [&prefect, &six];
        assert_eq!(
            constraints(&base, "prefect\n"),
            "prefect==3.9.1\nsix==1.16.0\n"
        );
        let lock =
            "prefect==3.8.0 ; python_version >= \"3.9\" \\\n    --hash=sha256:ab\nSix==1.16.0\n";
        assert_eq!(constraints(&base, lock), "six==1.16.0\n");
    }

    #[test]
    fn the_same_version_is_taken_out_and_another_is_reported() {
        let d = tempfile::tempdir().unwrap();
        let site = d.path();
        let put = |p: &str| {
            std::fs::create_dir_all(site.join(p).parent().unwrap()).unwrap();
            std::fs::write(site.join(p), "x").unwrap();
        };
        for f in [
            "prefect/__init__.py",
            "prefect/cli/root.py",
            "bin/prefect",
            "ns/shared.py",
            "ns/other.py",
        ] {
            put(f);
        }
        put("prefect-3.9.1.dist-info/METADATA");
        std::fs::write(
            site.join("prefect-3.9.1.dist-info/RECORD"),
            "prefect/__init__.py,sha256=a,1\nprefect/cli/root.py,,\nbin/prefect,,\nns/shared.py,,\n../../etc/passwd,,\nprefect-3.9.1.dist-info/RECORD,,\n",
        )
        .unwrap();
        put("six-1.17.0.dist-info/METADATA");
        let (prefect, six) = (dist("prefect", "3.9.1"), dist("six", "1.16.0"));
        let o = settle(site, &[&prefect, &six]);
        assert_eq!(o.removed, ["prefect"]);
        assert_eq!(
            o.shadowed,
            [(
                "six".to_string(),
                "1.16.0".to_string(),
                "1.17.0".to_string()
            )]
        );
        assert!(!site.join("prefect").exists());
        assert!(!site.join("bin").exists());
        assert!(
            site.join("ns/other.py").exists(),
            "another package's file stays"
        );
        assert!(!site.join("prefect-3.9.1.dist-info").exists());
        assert_eq!(inside("../x"), None);
    }
}
