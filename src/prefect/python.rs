//! The project's Python source as `prefect deploy` would import it: where a dotted module name resolves
//! (the working directory, `src/`, the directories the project's packaging declares, the flow file's own
//! directory), each file parsed at most once per run. Only the project's own files are read: a module that
//! is not found here (prefect, pydantic, the standard library) is "external" and known by name only.

use ruff_python_ast::Stmt;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A parsed module's statements. Parsed modules live for the run (a CLI parses a handful of files once):
/// leaking them lets every schema borrow from them without tying the resolver into lifetimes.
pub type Body = &'static [Stmt];

pub struct Sources {
    roots: Vec<PathBuf>,
    parsed: RefCell<HashMap<PathBuf, Option<Body>>>,
}

impl Sources {
    /// Import roots for a project run from `workdir`: the working directory (Prefect puts it on `sys.path`),
    /// `src/` (the src layout), and each directory the project's `pyproject.toml` names as a package root.
    pub fn for_workdir(workdir: &Path) -> Self {
        let mut roots = vec![workdir.to_path_buf()];
        for r in packaging_roots(workdir) {
            if !roots.contains(&r) {
                roots.push(r);
            }
        }
        let src = workdir.join("src");
        if src.is_dir() && !roots.contains(&src) {
            roots.push(src);
        }
        Self {
            roots,
            parsed: RefCell::new(HashMap::new()),
        }
    }

    /// Sources with these roots only (tests, and a single file's own directory).
    #[cfg(test)]
    pub fn with_roots(roots: Vec<PathBuf>) -> Self {
        Self {
            roots,
            parsed: RefCell::new(HashMap::new()),
        }
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// `a.b.c` → `ROOT/a/b/c.py` or `ROOT/a/b/c/__init__.py`, in the first root that has it.
    pub fn module_file(&self, dotted: &str) -> Option<PathBuf> {
        if dotted.is_empty() || dotted.split('.').any(|p| !is_identifier(p)) {
            return None;
        }
        let rel: PathBuf = dotted.split('.').collect();
        self.roots.iter().find_map(|root| {
            let file = root.join(&rel).with_extension("py");
            if file.is_file() {
                return Some(file);
            }
            let init = root.join(&rel).join("__init__.py");
            init.is_file().then_some(init)
        })
    }

    /// The dotted module name of `file` under the innermost root that contains it (`src/pkg/m.py` is
    /// `pkg.m`, not `src.pkg.m`).
    pub fn module_name(&self, file: &Path) -> Option<String> {
        let file = std::path::absolute(file).ok()?;
        let mut roots: Vec<&PathBuf> = self.roots.iter().collect();
        roots.sort_by_key(|r| std::cmp::Reverse(r.as_os_str().len()));
        roots.into_iter().find_map(|root| {
            let root = std::path::absolute(root).ok()?;
            let rel = file.strip_prefix(&root).ok()?;
            let mut parts: Vec<String> = rel
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            let last = parts.pop()?;
            let stem = last.strip_suffix(".py")?;
            if stem != "__init__" {
                parts.push(stem.to_string());
            }
            parts
                .iter()
                .all(|p| is_identifier(p))
                .then(|| parts.join("."))
        })
    }

    /// The statements of `file`, parsed once; `None` when it cannot be read or is not valid Python.
    pub fn parse(&self, file: &Path) -> Option<Body> {
        if let Some(hit) = self.parsed.borrow().get(file) {
            return *hit;
        }
        let body = std::fs::read_to_string(file)
            .ok()
            .and_then(|s| parse_source(&s).ok());
        self.parsed.borrow_mut().insert(file.to_path_buf(), body);
        body
    }
}

/// Parse `source` into statements that live for the run.
pub fn parse_source(source: &str) -> Result<Body, String> {
    let parsed = ruff_python_parser::parse_module(source).map_err(|e| e.to_string())?;
    let module: &'static _ = Box::leak(Box::new(parsed.into_syntax()));
    Ok(&module.body)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

/// Package roots `pyproject.toml` declares: setuptools' `package-dir` and `packages.find.where`, poetry's
/// `packages[].from`, hatch's wheel `packages` (their parent directories).
fn packaging_roots(workdir: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(workdir.join("pyproject.toml")) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let tool = doc.get("tool").and_then(toml::Value::as_table);
    let get = |path: &[&str]| -> Option<&toml::Value> {
        let mut v = tool?.get(path[0])?;
        for p in &path[1..] {
            v = v.as_table()?.get(*p)?;
        }
        Some(v)
    };
    let mut dirs: Vec<String> = Vec::new();
    if let Some(d) = get(&["setuptools", "package-dir", ""]).and_then(toml::Value::as_str) {
        dirs.push(d.into());
    }
    if let Some(w) =
        get(&["setuptools", "packages", "find", "where"]).and_then(toml::Value::as_array)
    {
        dirs.extend(w.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    if let Some(p) = get(&["poetry", "packages"]).and_then(toml::Value::as_array) {
        dirs.extend(p.iter().filter_map(|v| {
            v.as_table()?
                .get("from")
                .and_then(toml::Value::as_str)
                .map(str::to_string)
        }));
    }
    if let Some(p) =
        get(&["hatch", "build", "targets", "wheel", "packages"]).and_then(toml::Value::as_array)
    {
        dirs.extend(p.iter().filter_map(|v| {
            let s = v.as_str()?;
            Some(
                Path::new(s)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
        }));
    }
    dirs.into_iter()
        .filter(|d| !d.is_empty() && d != ".")
        .map(|d| workdir.join(d))
        .filter(|p| p.is_dir())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_resolve_in_roots_and_src_layouts() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        std::fs::create_dir_all(w.join("src/pkg/sub")).unwrap();
        std::fs::write(w.join("src/pkg/__init__.py"), "").unwrap();
        std::fs::write(w.join("src/pkg/sub/flows.py"), "x = 1\n").unwrap();
        std::fs::write(w.join("top.py"), "").unwrap();
        let s = Sources::for_workdir(w);
        assert_eq!(
            s.module_file("pkg.sub.flows"),
            Some(w.join("src/pkg/sub/flows.py"))
        );
        assert_eq!(s.module_file("pkg"), Some(w.join("src/pkg/__init__.py")));
        assert_eq!(s.module_file("top"), Some(w.join("top.py")));
        assert_eq!(s.module_file("../etc"), None);
        assert_eq!(
            s.module_name(&w.join("src/pkg/sub/flows.py")).as_deref(),
            Some("pkg.sub.flows")
        );
        assert!(s.parse(&w.join("src/pkg/sub/flows.py")).is_some());
    }

    #[test]
    fn packaging_declares_roots() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        std::fs::create_dir_all(w.join("lib/app")).unwrap();
        std::fs::write(
            w.join("pyproject.toml"),
            "[tool.poetry]\npackages = [{include = \"app\", from = \"lib\"}]\n",
        )
        .unwrap();
        assert!(Sources::for_workdir(w).roots().contains(&w.join("lib")));
    }
}
