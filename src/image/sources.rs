//! What a local package's wheel is made from, so that a wheel built once is reused until one of those
//! files changes, and a flow-code-only change (a flow file beside the package, outside it) rebuilds no
//! wheel. The backend (hatchling, setuptools, uv_build, poetry-core, …) decides what a wheel carries, and
//! flowship does not model each backend's rules; it learns them from a wheel the backend built:
//!
//! - the *roots*: each file in the wheel is found among the package's files by its content and path (the
//!   wheel's `pkg/mod.py` is the directory's `src/pkg/mod.py`), and the directory (or module) it sits
//!   under is a root. A wheel holding a file found nowhere in the directory (one a build hook generated) has
//!   no roots, and its package is rebuilt every time;
//! - the key: the package's top-level files (pyproject.toml, setup.py, README…) and every file
//!   pyproject.toml names, by content; the path of every file in the directory (a new package or module
//!   anywhere changes it); every file under the roots, by content; the build tool; the variables build
//!   backends read (`SETUPTOOLS_SCM_*`, `HATCH_*`, …); and, when the version comes from git (a dynamic
//!   version or a setup.py), the commit and whether the tree is dirty.
//!
//! The wheel's timestamps (`SOURCE_DATE_EPOCH`) are left out of the key: installed files carry the layer's
//! own timestamp, so a reused wheel installs the same files.

use super::cache::Key;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Directories never part of a package's build (VCS data, caches, environments, setuptools' outputs).
const SKIPPED: [&str; 12] = [
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".venv",
    "node_modules",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".eggs",
];

/// Past this many files the directory is not fingerprinted (its wheel is built every time).
const MAX_FILES: usize = 20_000;

/// Variables build backends read, by prefix.
const BACKEND_VARS: [&str; 6] = [
    "SETUPTOOLS_SCM",
    "HATCH_",
    "PDM_",
    "POETRY_DYNAMIC_VERSIONING",
    "VERSIONINGIT",
    "FLIT_",
];

/// The files of a package directory, by path relative to it (`/`-separated), sorted.
pub struct Tree {
    pub files: Vec<String>,
}

impl Tree {
    /// `None` when the directory is too large to fingerprint or cannot be read.
    pub fn read(dir: &Path) -> Option<Self> {
        let mut files = Vec::new();
        walk(dir, "", &mut files).ok()?;
        (files.len() <= MAX_FILES).then(|| {
            files.sort();
            Self { files }
        })
    }
}

fn skipped(rel: &str, name: &str) -> bool {
    SKIPPED.contains(&name)
        || name.ends_with(".egg-info")
        // setuptools writes these beside the package while building.
        || (rel.is_empty() && (name == "build" || name == "dist"))
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir.join(rel))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if skipped(rel, &name) {
            continue;
        }
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let t = e.file_type()?;
        if t.is_dir() {
            if super::cache::is_tagged(&e.path()) {
                continue;
            }
            walk(dir, &path, out)?;
        } else {
            out.push(path);
        }
        if out.len() > MAX_FILES {
            return Ok(());
        }
    }
    Ok(())
}

/// How the package builds: `tool` (`uv build`/`pip wheel` and its version), its top-level files and the files
/// pyproject.toml names, by content, the backends' variables, and git's state when the version comes from
/// it. Roots are recorded under this key.
pub fn build_key(dir: &Path, tree: &Tree, tool: &str, env: &BTreeMap<String, String>) -> String {
    let mut k = Key::new("wheel-build");
    k.add(tool.as_bytes());
    for f in tree.files.iter().filter(|f| !f.contains('/')) {
        add_file(&mut k, dir, f);
    }
    let pyproject = std::fs::read_to_string(dir.join("pyproject.toml")).unwrap_or_default();
    let doc: toml::Table = pyproject.parse().unwrap_or_default();
    let mut named = BTreeSet::new();
    strings(&toml::Value::Table(doc.clone()), &mut named);
    for s in named {
        let rel = s.trim_start_matches("./").trim_end_matches('/');
        if rel.is_empty() || rel.contains("..") || rel.starts_with('/') {
            continue;
        }
        let inside = format!("{rel}/");
        for f in tree
            .files
            .iter()
            .filter(|f| *f == rel || f.starts_with(&inside))
        {
            add_file(&mut k, dir, f);
        }
    }
    let pretend = env
        .keys()
        .any(|v| v.starts_with("SETUPTOOLS_SCM_PRETEND_VERSION"));
    for (name, value) in env
        .iter()
        .filter(|(n, _)| BACKEND_VARS.iter().any(|p| n.starts_with(p)))
    {
        k.add(name.as_bytes()).add(value.as_bytes());
    }
    if !pretend && version_from_vcs(&doc, tree) {
        k.add(git_state(dir).as_bytes());
    }
    k.finish()
}

fn add_file(k: &mut Key, dir: &Path, rel: &str) {
    k.add(rel.as_bytes());
    match super::cache::file_digest(&dir.join(rel)) {
        Some(h) => k.add(&h),
        None => k.add(b"unreadable"),
    };
}

/// Every string in a TOML document (keys' values only).
fn strings(v: &toml::Value, out: &mut BTreeSet<String>) {
    match v {
        toml::Value::String(s) => {
            out.insert(s.clone());
        }
        toml::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        toml::Value::Table(t) => t.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// A dynamic version (setuptools-scm, hatch-vcs, …) or a setup.py, which may compute one from anything.
fn version_from_vcs(doc: &toml::Table, tree: &Tree) -> bool {
    let dynamic = doc
        .get("project")
        .and_then(|p| p.get("dynamic"))
        .and_then(toml::Value::as_array)
        .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("version")));
    dynamic || tree.files.iter().any(|f| f == "setup.py")
}

/// The commit and the dirty state of the repository holding `dir` (empty outside git).
fn git_state(dir: &Path) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "describe",
            "--tags",
            "--long",
            "--dirty",
            "--always",
            "--abbrev=40",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => String::new(),
    }
}

/// The full key: the build key, every path in the directory, and the content of every file under the
/// roots.
pub fn key(dir: &Path, build_key: &str, tree: &Tree, roots: &[String]) -> String {
    let mut k = Key::new("wheel");
    k.add(build_key.as_bytes());
    for f in &tree.files {
        k.add(f.as_bytes());
        if roots
            .iter()
            .any(|r| f == r || f.starts_with(&format!("{r}/")))
        {
            add_file(&mut k, dir, f);
        }
    }
    k.finish()
}

/// The roots of a wheel built from `dir`: for each file the wheel carries (its metadata aside), the
/// directory or module of `dir` it came from. `None` when a file is found nowhere in `dir`.
pub fn roots(dir: &Path, tree: &Tree, wheel: &Path) -> Option<Vec<String>> {
    let mut by_content: BTreeMap<[u8; 32], Vec<&str>> = BTreeMap::new();
    for f in &tree.files {
        by_content
            .entry(super::cache::file_digest(&dir.join(f))?)
            .or_default()
            .push(f);
    }
    let mut roots = BTreeSet::new();
    for (name, hash) in wheel_files(wheel)? {
        let inside = carried_path(&name)?;
        let Some(inside) = inside else { continue };
        let suffix = format!("/{inside}");
        let found: Vec<&&str> = by_content
            .get(&hash)?
            .iter()
            .filter(|p| **p == inside || p.ends_with(&suffix))
            .collect();
        if found.is_empty() {
            return None;
        }
        let top = inside.split('/').next().unwrap_or(inside);
        for p in found {
            let prefix = &p[..p.len() - inside.len()];
            roots.insert(format!("{prefix}{top}"));
        }
    }
    Some(roots.into_iter().collect())
}

/// The path a wheel's entry has in the package's sources: `Some(None)` for its metadata (`*.dist-info/`),
/// the part under `*.data/<scheme>/` for data and scripts.
fn carried_path(name: &str) -> Option<Option<&str>> {
    let (first, rest) = name.split_once('/').unwrap_or((name, ""));
    if first.ends_with(".dist-info") {
        return Some(None);
    }
    if first.ends_with(".data") {
        let (_, under) = rest.split_once('/')?;
        return Some(Some(under));
    }
    Some(Some(name))
}

/// The files of a wheel, by name, with their contents' SHA-256.
fn wheel_files(wheel: &Path) -> Option<Vec<(String, [u8; 32])>> {
    let f = std::fs::File::open(wheel).ok()?;
    let mut z = zip::ZipArchive::new(f).ok()?;
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut e = z.by_index(i).ok()?;
        if e.is_dir() {
            continue;
        }
        let mut h = Sha256::new();
        std::io::copy(&mut e, &mut h).ok()?;
        let name = e.name().ok()?.to_string();
        out.push((name, h.finalize().into()));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn wheel(at: &Path, files: &[(&str, &str)]) {
        let mut z = zip::ZipWriter::new(std::fs::File::create(at).unwrap());
        for (name, text) in files {
            z.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            z.write_all(text.as_bytes()).unwrap();
        }
        z.finish().unwrap();
    }

    fn project() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            "pyproject.toml",
            "[project]\nname = \"etl\"\nversion = \"1\"\n",
        );
        write(d.path(), "src/etl/__init__.py", "");
        write(d.path(), "src/etl/jobs.py", "JOB = 1\n");
        write(d.path(), "flows/hello.py", "print('hi')\n");
        write(d.path(), "tests/__init__.py", "");
        d
    }

    #[test]
    fn the_roots_are_where_the_wheels_files_come_from() {
        let d = project();
        let tree = Tree::read(d.path()).unwrap();
        let w = tempfile::tempdir().unwrap();
        let whl = w.path().join("etl.whl");
        wheel(
            &whl,
            &[
                ("etl/__init__.py", ""),
                ("etl/jobs.py", "JOB = 1\n"),
                ("etl-1.dist-info/METADATA", "Name: etl\n"),
            ],
        );
        assert_eq!(roots(d.path(), &tree, &whl).unwrap(), vec!["src/etl"]);
        // A file the backend generated is found nowhere: no roots, no reuse.
        wheel(&whl, &[("etl/_version.py", "V = '1.2'\n")]);
        assert_eq!(roots(d.path(), &tree, &whl), None);
    }

    #[test]
    fn flow_code_outside_the_roots_keeps_the_key_and_package_code_changes_it() {
        let d = project();
        let env = BTreeMap::new();
        let roots = vec!["src/etl".to_string()];
        let k = |d: &Path| {
            let tree = Tree::read(d).unwrap();
            key(d, &build_key(d, &tree, "uv 1", &env), &tree, &roots)
        };
        let first = k(d.path());
        write(d.path(), "flows/hello.py", "print('changed')\n");
        assert_eq!(k(d.path()), first, "a flow file is not the package");
        write(d.path(), "src/etl/jobs.py", "JOB = 2\n");
        let changed = k(d.path());
        assert_ne!(changed, first);
        write(d.path(), "newpkg/__init__.py", "");
        assert_ne!(
            k(d.path()),
            changed,
            "a new package anywhere may be picked up"
        );
        let before_readme = k(d.path());
        write(d.path(), "README.md", "# etl\n");
        assert_ne!(
            k(d.path()),
            before_readme,
            "top-level files are the metadata's"
        );
        write(d.path(), "src/etl/__pycache__/jobs.cpython-312.pyc", "x");
        write(d.path(), "build/lib/etl/jobs.py", "x");
        let tree = Tree::read(d.path()).unwrap();
        assert!(
            !tree
                .files
                .iter()
                .any(|f| f.contains("__pycache__") || f.starts_with("build/"))
        );
    }

    #[test]
    fn backend_variables_and_named_files_are_in_the_build_key() {
        let d = project();
        write(
            d.path(),
            "pyproject.toml",
            "[project]\nname = \"etl\"\nversion = \"1\"\nreadme = \"docs/about.md\"\n",
        );
        write(d.path(), "docs/about.md", "one\n");
        let tree = Tree::read(d.path()).unwrap();
        let mut env = BTreeMap::new();
        let a = build_key(d.path(), &tree, "uv 1", &env);
        env.insert("HATCH_BUILD_CLEAN".to_string(), "1".to_string());
        let b = build_key(d.path(), &tree, "uv 1", &env);
        assert_ne!(a, b);
        write(d.path(), "docs/about.md", "two\n");
        assert_ne!(build_key(d.path(), &tree, "uv 1", &env), b);
        assert_ne!(build_key(d.path(), &tree, "pip 25", &env), b);
    }
}
