//! Packages published only as source (an sdist, no wheel). A pure-Python one builds into the same files on
//! any machine, so it is built here (uv, with the build machine's Python) and installed into the dependency
//! layer's directory; one whose build yields platform code (a C extension) would be built for the build
//! machine, not the image, and is refused, naming it.

use super::deps::{DepsError, scrubbed, uv_trust};
use std::path::Path;
use std::process::Command;

/// `name==version` of the package uv says has no usable wheel, if its output says so.
pub fn source_only(output: &str) -> Option<String> {
    // uv: "Because grpclib==0.4.7 has no usable wheels and you require grpclib==0.4.7, ..."
    let before = output.split(" has no usable wheels").next()?;
    if before.len() == output.len() {
        return None;
    }
    let pin = before.rsplit([' ', '\n']).next()?.trim();
    (pin.contains("==") && !pin.contains(['/', '@'])).then(|| pin.to_string())
}

/// Build `pin` (`name==version`) from its sdist and install it, alone, into `target`; refused unless the
/// result is pure Python (`Root-Is-Purelib: true`).
pub fn build_pure(pin: &str, target: &Path) -> Result<(), DepsError> {
    let failed = |output: String| DepsError::Failed {
        installer: format!("uv (building {pin} from source)"),
        platform: "the build machine".into(),
        python: "its own".into(),
        code: 2,
        output,
    };
    let mut cmd = Command::new("uv");
    cmd.args([
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--target",
    ])
    .arg(target)
    .arg(pin)
    .env("PYTHONDONTWRITEBYTECODE", "1")
    .env_remove("VIRTUAL_ENV");
    for (k, v) in uv_trust(|k| std::env::var_os(k).is_some()) {
        cmd.env(k, v);
    }
    let out = scrubbed(&mut cmd).output().map_err(|e| DepsError::Io {
        path: target.into(),
        reason: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(failed(String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let name = pin.split("==").next().unwrap_or(pin);
    if !is_pure(target, name) {
        return Err(failed(format!(
            "{pin} has no wheel and its source builds platform code (a C extension): built here it would be built for the build machine, not the image; pin a version that ships a wheel for the target"
        )));
    }
    Ok(())
}

/// Does the `*.dist-info/WHEEL` of `name` in `site` say `Root-Is-Purelib: true`?
fn is_pure(site: &Path, name: &str) -> bool {
    let norm = |n: &str| n.to_ascii_lowercase().replace(['-', '.'], "_");
    std::fs::read_dir(site)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let f = e.file_name().to_string_lossy().into_owned();
            f.ends_with(".dist-info") && norm(f.split('-').next().unwrap_or("")) == norm(name)
        })
        .any(|e| {
            std::fs::read_to_string(e.path().join("WHEEL"))
                .is_ok_and(|w| w.lines().any(|l| l.trim() == "Root-Is-Purelib: true"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uv_names_the_source_only_package() {
        let out = "  × No solution found when resolving dependencies:\n  ╰─▶ Because neo4j==4.4.12 has no usable wheels and you require neo4j==4.4.12, we can conclude that your requirements are unsatisfiable.";
        assert_eq!(source_only(out).as_deref(), Some("neo4j==4.4.12"));
        assert_eq!(
            source_only("Because x has no wheels with a matching platform tag"),
            None
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("neo4j-4.4.12.dist-info")).unwrap();
        std::fs::write(
            d.path().join("neo4j-4.4.12.dist-info/WHEEL"),
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n",
        )
        .unwrap();
        assert!(is_pure(d.path(), "neo4j"));
        assert!(!is_pure(d.path(), "grpclib"));
    }
}
