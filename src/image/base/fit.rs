//! Whether the wheels the installer put into the dependency layer can run on the base: every installed
//! distribution's tags (`*.dist-info/WHEEL`, `Tag:` lines) against the base's Python and libc. The installer
//! is told the target already; this is the proof, because a `--find-links` directory, a direct URL or an
//! installer's own choice can still bring a wheel the base cannot load.

use super::Libc;
use std::path::Path;

/// A distribution none of whose tags fit the base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    pub package: String,
    pub version: String,
    pub tag: String,
    pub reason: String,
}

/// The first distribution in `site` (in name order) whose wheel fits neither the base's Python `python`
/// (`3.11`) nor its libc.
pub fn check(site: &Path, python: &str, libc: Option<&Libc>) -> Option<Unfit> {
    super::dist_infos(site).into_iter().find_map(|d| {
        let text = std::fs::read_to_string(d.join("WHEEL")).ok()?;
        let tags: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Tag:"))
            .map(str::trim)
            .collect();
        if tags.iter().any(|t| fits(t, python, libc).is_ok()) {
            return None;
        }
        let tag = tags.first()?.to_string();
        let reason = fits(&tag, python, libc).err()?;
        let stem = d.file_stem()?.to_string_lossy().into_owned();
        let (package, version) = stem.rsplit_once('-').unwrap_or((stem.as_str(), ""));
        Some(Unfit {
            package: package.to_string(),
            version: version.to_string(),
            tag,
            reason,
        })
    })
}

/// Does one tag (`cp311-cp311-manylinux_2_17_x86_64`) fit? `Err` says why not.
pub(crate) fn fits(tag: &str, python: &str, libc: Option<&Libc>) -> Result<(), String> {
    let mut parts = tag.splitn(3, '-');
    let (Some(py), Some(abi), Some(platform)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(()); // not a tag we can read: never stricter than the installer
    };
    let want = format!("cp{}", python.replace('.', ""));
    let minor = |t: &str| t.strip_prefix("cp3").and_then(|m| m.parse::<u32>().ok());
    let base_minor = python.split('.').nth(1).and_then(|m| m.parse::<u32>().ok());
    if abi.starts_with("cp") && abi.trim_end_matches('m') != want {
        return Err(format!(
            "built for CPython ABI `{abi}`, the base has Python {python}"
        ));
    }
    if abi == "abi3"
        && let (Some(needs), Some(has)) = (minor(py), base_minor)
        && needs > has
    {
        return Err(format!(
            "needs Python 3.{needs} or newer, the base has Python {python}"
        ));
    }
    platform
        .split('.')
        .map(|p| platform_fits(p, libc))
        .find(Result::is_ok)
        .unwrap_or_else(|| platform_fits(platform.split('.').next().unwrap_or(platform), libc))
}

fn platform_fits(platform: &str, libc: Option<&Libc>) -> Result<(), String> {
    if platform == "any" || platform.starts_with("linux_") {
        return Ok(());
    }
    if platform.starts_with("musllinux_") {
        return match libc {
            Some(Libc::Glibc { .. }) => Err("a musl wheel, and the base's libc is glibc".into()),
            _ => Ok(()),
        };
    }
    let Some(needs) = manylinux(platform) else {
        return Err("for another operating system".into());
    };
    match libc {
        Some(Libc::Musl) => Err("a glibc (manylinux) wheel, and the base's libc is musl".into()),
        Some(Libc::Glibc { version: Some(has) }) if version(has) < needs => Err(format!(
            "needs glibc {}.{}, the base has glibc {has}",
            needs.0, needs.1
        )),
        _ => Ok(()),
    }
}

/// The glibc a manylinux platform tag needs: `manylinux_2_28_x86_64` → (2, 28); the legacy names by PEP 600.
pub(crate) fn manylinux(platform: &str) -> Option<(u32, u32)> {
    for (legacy, v) in [
        ("manylinux1_", (2, 5)),
        ("manylinux2010_", (2, 12)),
        ("manylinux2014_", (2, 17)),
    ] {
        if platform.starts_with(legacy) {
            return Some(v);
        }
    }
    let mut p = platform.strip_prefix("manylinux_")?.split('_');
    Some((p.next()?.parse().ok()?, p.next()?.parse().ok()?))
}

/// `2.36` → (2, 36).
pub(crate) fn version(v: &str) -> (u32, u32) {
    let mut p = v.split('.').map(|x| x.parse().unwrap_or(0));
    (p.next().unwrap_or(0), p.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_against_the_bases_python_and_libc() {
        let glibc = Libc::Glibc {
            version: Some("2.36".into()),
        };
        let g = Some(&glibc);
        assert!(fits("py3-none-any", "3.11", g).is_ok());
        assert!(fits("cp311-cp311-manylinux_2_17_x86_64", "3.11", g).is_ok());
        assert!(fits("cp311-cp311-manylinux2014_x86_64", "3.11", g).is_ok());
        assert!(fits("cp39-abi3-manylinux_2_28_x86_64", "3.11", g).is_ok());
        let e = fits("cp311-cp311-manylinux_2_99_x86_64", "3.11", g).unwrap_err();
        assert!(
            e.contains("needs glibc 2.99, the base has glibc 2.36"),
            "{e}"
        );
        assert!(
            fits("cp312-cp312-manylinux_2_17_x86_64", "3.11", g)
                .unwrap_err()
                .contains("`cp312`")
        );
        assert!(fits("cp312-abi3-manylinux_2_17_x86_64", "3.11", g).is_err());
        assert!(
            fits("cp311-cp311-musllinux_1_2_x86_64", "3.11", g)
                .unwrap_err()
                .contains("musl")
        );
        let musl = Libc::Musl;
        assert!(
            fits("cp311-cp311-manylinux1_x86_64", "3.11", Some(&musl))
                .unwrap_err()
                .contains("musl")
        );
        assert!(fits("cp311-cp311-musllinux_1_2_x86_64", "3.11", Some(&musl)).is_ok());
        assert!(
            fits("cp311-cp311-manylinux_2_99_x86_64", "3.11", None).is_ok(),
            "unknown libc: not checked"
        );
        assert!(fits("cp311-cp311-win_amd64", "3.11", g).is_err());
    }

    #[test]
    fn a_wheel_fits_when_any_of_its_tags_does() {
        let d = tempfile::tempdir().unwrap();
        let write = |dist: &str, tags: &[&str]| {
            let p = d.path().join(dist);
            std::fs::create_dir_all(&p).unwrap();
            let text: String = tags.iter().map(|t| format!("Tag: {t}\n")).collect();
            std::fs::write(p.join("WHEEL"), format!("Wheel-Version: 1.0\n{text}")).unwrap();
        };
        write("six-1.16.0.dist-info", &["py2-none-any", "py3-none-any"]);
        write(
            "fast-1.0.dist-info",
            &[
                "cp311-cp311-manylinux_2_99_x86_64",
                "cp311-cp311-manylinux_2_17_x86_64",
            ],
        );
        let glibc = Libc::Glibc {
            version: Some("2.36".into()),
        };
        assert_eq!(check(d.path(), "3.11", Some(&glibc)), None);
        write("new-2.0.dist-info", &["cp311-cp311-manylinux_2_99_x86_64"]);
        let unfit = check(d.path(), "3.11", Some(&glibc)).unwrap();
        assert_eq!(
            (unfit.package.as_str(), unfit.version.as_str()),
            ("new", "2.0")
        );
        assert_eq!(unfit.tag, "cp311-cp311-manylinux_2_99_x86_64");
    }
}
