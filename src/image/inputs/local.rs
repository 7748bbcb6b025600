//! Local packages in a requirements file: lines that name a directory (`.`, `./flows/etl`, `../shared`,
//! `file:///…`, `name @ file:///…`, with or without `-e`) are taken out of what the index installs and built
//! as wheels instead. An installer asked for `--only-binary=:all:` cannot install a directory, and the
//! dependency layer must not change when only the code does.

use super::InputError;
use std::path::{Path, PathBuf};

pub(super) struct Split {
    /// The requirements file for the index: the original when nothing was taken out, else a rewritten copy.
    pub requirements: PathBuf,
    pub local: Vec<PathBuf>,
}

/// Split `file` (whose relative paths are relative to `base`) into index requirements and local packages.
pub(super) fn split(file: &Path, base: &Path, out: &Path) -> Result<Split, InputError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        InputError::new(
            file,
            e,
            "check that the requirements file exists and is readable",
        )
    })?;
    let dir_of_file = file.parent().unwrap_or(Path::new("."));
    let mut local = Vec::new();
    let mut kept = Vec::new();
    for line in logical_lines(&text) {
        match local_dir(&line, base) {
            Some(d) => local.push(super::absolute(&d)),
            None => kept.push(anchored(&line, dir_of_file)),
        }
    }
    if local.is_empty() {
        return Ok(Split {
            requirements: file.to_path_buf(),
            local,
        });
    }
    std::fs::write(out, kept.join("\n") + "\n")
        .map_err(|e| InputError::new(out, e, "check the temporary directory"))?;
    Ok(Split {
        requirements: out.to_path_buf(),
        local,
    })
}

/// The index requirements plus the `[project] dependencies` of every local package in `split` (those that
/// name another of its local packages left out: they are built too), written to `out`.
pub(super) fn with_declared(split: &Split, out: &Path) -> Result<PathBuf, InputError> {
    let read = |d: &Path| -> Option<toml::Table> {
        std::fs::read_to_string(d.join("pyproject.toml"))
            .ok()?
            .parse()
            .ok()
    };
    let norm = |n: &str| n.to_ascii_lowercase().replace(['_', '.'], "-");
    let docs: Vec<toml::Table> = split.local.iter().filter_map(|d| read(d)).collect();
    let names: Vec<String> = docs
        .iter()
        .filter_map(|d| d.get("project")?.get("name")?.as_str().map(norm))
        .collect();
    let mut text = std::fs::read_to_string(&split.requirements)
        .map_err(|e| InputError::new(&split.requirements, e, "check the temporary directory"))?;
    for d in &docs {
        let deps = d
            .get("project")
            .and_then(|p| p.get("dependencies"))
            .and_then(toml::Value::as_array);
        for dep in deps.into_iter().flatten().filter_map(toml::Value::as_str) {
            let name: String = dep
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
                .collect();
            if !names.contains(&norm(&name)) {
                text.push_str(&format!("\n{dep}"));
            }
        }
    }
    std::fs::write(out, text + "\n")
        .map_err(|e| InputError::new(out, e, "check the temporary directory"))?;
    Ok(out.to_path_buf())
}

/// Lines with their `\` continuations joined.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in text.lines() {
        if let Some(head) = l.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
        } else {
            cur.push_str(l);
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The directory a requirement line names, if it names one that exists.
fn local_dir(line: &str, base: &Path) -> Option<PathBuf> {
    let t = line.split(" #").next()?.trim();
    let t = ["-e ", "--editable ", "--editable="]
        .iter()
        .find_map(|f| t.strip_prefix(f))
        .unwrap_or(t)
        .trim();
    if t.starts_with('-') || t.is_empty() || t.starts_with('#') {
        return None;
    }
    let spec = t.split_once(" @ ").map_or(t, |(_, u)| u.trim());
    let spec = spec.split(';').next()?.split_whitespace().next()?;
    let path = spec
        .strip_prefix("file://")
        .or_else(|| spec.strip_prefix("file:"))
        .unwrap_or(spec);
    let looks_local = path == "."
        || path.starts_with("./")
        || path.starts_with("../")
        || path.starts_with('/')
        || spec.starts_with("file:");
    let p = base.join(path);
    (looks_local && p.is_dir()).then_some(p)
}

/// A kept line in a copy that lives elsewhere: relative paths it names (`-r base.txt`, `./x.whl`,
/// `--find-links ./wheels`) made absolute against the original file's directory.
fn anchored(line: &str, dir: &Path) -> String {
    let t = line.trim();
    for flag in [
        "-r ",
        "--requirement ",
        "-c ",
        "--constraint ",
        "-f ",
        "--find-links ",
    ] {
        if let Some(rest) = t.strip_prefix(flag) {
            let rest = rest.trim();
            if !rest.contains("://") && !rest.starts_with('/') {
                return format!("{flag}{}", dir.join(rest).display());
            }
        }
    }
    if t.starts_with("./") || t.starts_with("../") {
        return dir.join(t).display().to_string();
    }
    line.to_string()
}

/// A directory that builds a wheel: a `pyproject.toml` with a `[build-system]` and a project name
/// (`[project]`, or poetry's `[tool.poetry]`), not turned off (`tool.uv.package = false`, poetry's
/// `package-mode = false`), or a `setup.py`.
pub fn is_package(dir: &Path) -> bool {
    if dir.join("setup.py").is_file() {
        return true;
    }
    let Some(doc) = std::fs::read_to_string(dir.join("pyproject.toml"))
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
    else {
        return false;
    };
    let tool = |a: &str, b: &str| {
        doc.get("tool")
            .and_then(|t| t.get(a))
            .and_then(|t| t.get(b))
    };
    let off = tool("uv", "package").and_then(toml::Value::as_bool) == Some(false)
        || tool("poetry", "package-mode").and_then(toml::Value::as_bool) == Some(false);
    let named = doc.get("project").is_some() || tool("poetry", "name").is_some();
    doc.get("build-system").is_some() && named && !off
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_taken_out_and_the_rest_is_kept_anchored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for sub in ["flows/etl", "packages/shared", "lib"] {
            std::fs::create_dir_all(p.join(sub)).unwrap();
        }
        std::fs::write(
            p.join("r.txt"),
            "./flows/etl\n-e ./packages/shared\nlib @ file:///LIB\nsix==1.16.0 \\\n    --hash=sha256:ab\n-r base.txt\n./dist/x-1-py3-none-any.whl\n",
        )
        .unwrap();
        let text = std::fs::read_to_string(p.join("r.txt")).unwrap();
        std::fs::write(
            p.join("r.txt"),
            text.replace("/LIB", &p.join("lib").display().to_string()),
        )
        .unwrap();
        let s = split(&p.join("r.txt"), p, &p.join("out.txt")).unwrap();
        assert_eq!(
            s.local,
            vec![
                p.join("flows/etl"),
                p.join("packages/shared"),
                p.join("lib")
            ]
        );
        let kept = std::fs::read_to_string(&s.requirements).unwrap();
        assert!(kept.contains("six==1.16.0      --hash=sha256:ab"), "{kept}");
        assert!(
            kept.contains(&format!("-r {}", p.join("base.txt").display())),
            "{kept}"
        );
        assert!(kept.contains(&p.join("./dist/x-1-py3-none-any.whl").display().to_string()));
        assert!(!kept.contains("flows/etl"), "{kept}");
    }

    #[test]
    fn a_named_local_package_brings_its_declared_dependencies() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("lib")).unwrap();
        std::fs::write(
            p.join("pyproject.toml"),
            "[project]\nname = \"app\"\ndependencies = [\"polars>=1\", \"my_lib\"]\n",
        )
        .unwrap();
        std::fs::write(
            p.join("lib/pyproject.toml"),
            "[project]\nname = \"my-lib\"\ndependencies = [\"httpx\"]\n",
        )
        .unwrap();
        std::fs::write(p.join("r.txt"), ".\n./lib\nsix\n").unwrap();
        let s = split(&p.join("r.txt"), p, &p.join("o.txt")).unwrap();
        let with = with_declared(&s, &p.join("w.txt")).unwrap();
        let text = std::fs::read_to_string(with).unwrap();
        assert_eq!(text, "six\n\npolars>=1\nhttpx\n", "{text}");
    }

    #[test]
    fn a_file_with_no_directory_is_used_as_it_is() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("r.txt"), "six\n./missing-dir\n").unwrap();
        let s = split(&d.path().join("r.txt"), d.path(), &d.path().join("o")).unwrap();
        assert_eq!(s.requirements, d.path().join("r.txt"));
        assert!(s.local.is_empty());
    }

    #[test]
    fn packages_have_a_build_system_and_a_name() {
        let d = tempfile::tempdir().unwrap();
        let w = |t: &str| std::fs::write(d.path().join("pyproject.toml"), t).unwrap();
        w("[project]\nname='x'\n");
        assert!(!is_package(d.path()), "no build system: a virtual project");
        w("[project]\nname='x'\n[build-system]\nrequires=['hatchling']\n");
        assert!(is_package(d.path()));
        w(
            "[project]\nname='x'\n[build-system]\nrequires=['hatchling']\n[tool.uv]\npackage=false\n",
        );
        assert!(!is_package(d.path()));
        w(
            "[tool.poetry]\nname='x'\npackage-mode=false\n[build-system]\nrequires=['poetry-core']\n",
        );
        assert!(!is_package(d.path()));
        w("[tool.poetry]\nname='x'\n[build-system]\nrequires=['poetry-core']\n");
        assert!(is_package(d.path()));
    }
}
