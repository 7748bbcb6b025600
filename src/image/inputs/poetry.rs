//! `poetry.lock` as pinned requirements, without poetry: the packages the main group needs (reached from
//! `[tool.poetry.dependencies]` / `[project] dependencies` through the lock's dependency edges, markers
//! carried along; or, in lock format 2.1, the packages whose `groups` hold `main`, with their `markers`),
//! each `name==version ; marker` with the lock's hashes. Directory sources come out as paths (built as
//! wheels), git and URL sources as direct references.
//!
//! Written here: no maintained Rust crate turns a poetry lock into requirements (the lock parsers on
//! crates.io list packages for audits and drop edges, markers and sources), and `poetry export` needs
//! poetry and its plugin on the build machine.

use super::InputError;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use toml::Value;

/// PEP 503 normalised name.
fn norm(n: &str) -> String {
    n.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// `a and b` for markers, `None` being "always".
fn and(a: Option<&str>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (None, None) => None,
        (Some(x), None) | (None, Some(x)) => Some(x.to_string()),
        (Some(x), Some(y)) => Some(format!("({x}) and ({y})")),
    }
}

/// A requirement edge: the package's name, the extras asked for, and its marker.
type Edge = (String, Vec<String>, Option<String>);

/// A PEP 508 string (`uvicorn[standard] (>=0.20) ; python_version < "3.12"`) as an edge.
fn pep508(s: &str) -> Option<Edge> {
    let (head, marker) = match s.split_once(';') {
        Some((h, m)) => (h, Some(m.trim().to_string())),
        None => (s, None),
    };
    let name: String = head
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    let extras = head
        .split_once('[')
        .and_then(|(_, r)| r.split_once(']'))
        .map(|(e, _)| e.split(',').map(|x| norm(x.trim())).collect())
        .unwrap_or_default();
    (!name.is_empty()).then(|| (norm(&name), extras, marker.filter(|m| !m.is_empty())))
}

/// The edges of a poetry dependency table (`name = "^1"`, `name = {version, extras, markers, optional}`, or
/// a list of those), optional ones left out.
fn table_edges(t: &toml::Table) -> Vec<Edge> {
    let mut out = Vec::new();
    for (name, v) in t {
        if norm(name) == "python" {
            continue;
        }
        let entries = match v {
            Value::Array(a) => a.clone(),
            v => vec![v.clone()],
        };
        for e in entries {
            if e.get("optional").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            let extras = e
                .get("extras")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(norm).collect())
                .unwrap_or_default();
            let marker = e.get("markers").and_then(Value::as_str).map(str::to_string);
            out.push((norm(name), extras, marker));
        }
    }
    out
}

/// What the main group asks for at the top: poetry's table and PEP 621's list.
fn roots(pyproject: &toml::Table) -> Vec<Edge> {
    let mut out = Vec::new();
    if let Some(t) = pyproject
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(Value::as_table)
    {
        out.extend(table_edges(t));
    }
    if let Some(a) = pyproject
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(Value::as_array)
    {
        out.extend(a.iter().filter_map(Value::as_str).filter_map(pep508));
    }
    out
}

/// The packages of the main group with their markers (`None`: always).
fn walk(
    packages: &BTreeMap<String, &toml::Table>,
    roots: Vec<Edge>,
    lock: &Path,
) -> Result<BTreeMap<String, Option<String>>, InputError> {
    let mut chosen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut queue: VecDeque<(Edge, bool)> = roots.into_iter().map(|e| (e, true)).collect();
    let mut seen_extras: BTreeSet<(String, String)> = BTreeSet::new();
    while let Some(((name, extras, marker), root)) = queue.pop_front() {
        let Some(pkg) = packages.get(&name) else {
            if root {
                return Err(InputError::new(
                    lock,
                    format!("`{name}` is a dependency in pyproject.toml but is not locked"),
                    "run `poetry lock` and commit poetry.lock",
                ));
            }
            continue; // an edge to a package this platform never installs (poetry leaves it out)
        };
        let existing = chosen.get(&name).cloned();
        let merged = match (&existing, &marker) {
            (None, m) => m.clone(),
            (Some(None), _) | (_, None) => None,
            (Some(Some(old)), Some(m)) if old == m || old.contains(&format!("({m})")) => {
                Some(old.clone())
            }
            // Markers past a few hundred bytes are not worth keeping: installed always.
            (Some(Some(old)), Some(m)) if old.len() + m.len() > 400 => None,
            (Some(Some(old)), Some(m)) => Some(format!("({old}) or ({m})")),
        };
        let new_extras: Vec<String> = extras
            .into_iter()
            .filter(|x| seen_extras.insert((name.clone(), x.clone())))
            .collect();
        if existing.as_ref() == Some(&merged) && new_extras.is_empty() {
            continue;
        }
        chosen.insert(name.clone(), merged.clone());
        let mut next = pkg
            .get("dependencies")
            .and_then(Value::as_table)
            .map(table_edges)
            .unwrap_or_default();
        for x in &new_extras {
            let listed = pkg
                .get("extras")
                .and_then(|e| e.get(x))
                .and_then(Value::as_array);
            next.extend(
                listed
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .filter_map(pep508),
            );
        }
        for (n, e, m) in next {
            queue.push_back(((n, e, and(merged.as_deref(), m.as_deref())), false));
        }
    }
    Ok(chosen)
}

/// The main-group packages of a lock in format 2.1 (`groups`, `markers` on each package), if it is one.
fn by_groups(
    packages: &BTreeMap<String, &toml::Table>,
) -> Option<BTreeMap<String, Option<String>>> {
    if !packages.values().any(|p| p.contains_key("groups")) {
        return None;
    }
    let mut out = BTreeMap::new();
    for (name, p) in packages {
        let groups = p.get("groups").and_then(Value::as_array)?;
        if !groups.iter().any(|g| g.as_str() == Some("main")) {
            continue;
        }
        let marker = match p.get("markers") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Table(t)) => t.get("main").and_then(Value::as_str).map(str::to_string),
            _ => None,
        };
        out.insert(name.clone(), marker);
    }
    Some(out)
}

/// One requirement line for a locked package.
fn line(ctx: &Path, p: &toml::Table, marker: Option<&str>) -> String {
    let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
    let version = p.get("version").and_then(Value::as_str).unwrap_or_default();
    let src = p.get("source").and_then(Value::as_table);
    let field = |k: &str| {
        src.and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let m = marker.map(|m| format!(" ; {m}")).unwrap_or_default();
    match field("type") {
        "directory" => {
            let url = field("url");
            if url.starts_with('/') || url.starts_with('.') {
                url.to_string()
            } else {
                format!("./{url}")
            }
        }
        "file" => format!("{name} @ file://{}{m}", ctx.join(field("url")).display()),
        "git" => {
            let rev = [field("resolved_reference"), field("reference")]
                .into_iter()
                .find(|r| !r.is_empty())
                .unwrap_or("HEAD");
            let sub = match field("subdirectory") {
                "" => String::new(),
                s => format!("#subdirectory={s}"),
            };
            format!("{name} @ git+{}@{rev}{sub}{m}", field("url"))
        }
        "url" => format!("{name} @ {}{m}", field("url")),
        _ => {
            let hashes: Vec<String> = p
                .get("files")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|f| f.get("hash").and_then(Value::as_str))
                .map(|h| format!(" --hash={h}"))
                .collect();
            format!("{name}=={version}{m}{}", hashes.concat())
        }
    }
}

/// `ctx/poetry.lock` (with `ctx/pyproject.toml`) as a requirements file at `out`.
pub(super) fn requirements(ctx: &Path, out: &Path) -> Result<(), InputError> {
    let lock_path = ctx.join("poetry.lock");
    let read = |p: &Path| -> Result<toml::Table, InputError> {
        std::fs::read_to_string(p)
            .map_err(|e| e.to_string())
            .and_then(|t| t.parse::<toml::Table>().map_err(|e| e.to_string()))
            .map_err(|e| {
                InputError::new(p, e, "fix the file (it must be TOML), or run `poetry lock`")
            })
    };
    let lock = read(&lock_path)?;
    let pyproject = read(&ctx.join("pyproject.toml"))?;
    let packages: BTreeMap<String, &toml::Table> = lock
        .get("package")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_table)
        .filter_map(|t| Some((norm(t.get("name")?.as_str()?), t)))
        .collect();
    let chosen = match by_groups(&packages) {
        Some(c) => c,
        None => walk(&packages, roots(&pyproject), &lock_path)?,
    };
    let mut text = String::from("# from poetry.lock by flowship: the main group, as locked\n");
    for (name, marker) in &chosen {
        text.push_str(&line(ctx, packages[name], marker.as_deref()));
        text.push('\n');
    }
    std::fs::write(out, text).map_err(|e| InputError::new(out, e, "check the temporary directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
[[package]]
name = "requests"
version = "2.31.0"
files = [{file = "requests-2.31.0-py3-none-any.whl", hash = "sha256:aa"}, {file = "requests-2.31.0.tar.gz", hash = "sha256:bb"}]
[package.dependencies]
idna = ">=2.5"
colorama = {version = "*", markers = "sys_platform == \"win32\""}
pysocks = {version = ">=1.5.6", optional = true}
[package.extras]
socks = ["PySocks (>=1.5.6,!=1.5.7)"]

[[package]]
name = "idna"
version = "3.7"
files = []

[[package]]
name = "colorama"
version = "0.4.6"
files = []

[[package]]
name = "PySocks"
version = "1.7.1"
files = []

[[package]]
name = "pytest"
version = "8.0.0"
files = []

[[package]]
name = "shared"
version = "0.1.0"
files = []
[package.source]
type = "directory"
url = "../shared"
"#;

    #[test]
    fn the_main_group_with_markers_hashes_and_local_sources() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("poetry.lock"), LOCK).unwrap();
        std::fs::write(
            d.path().join("pyproject.toml"),
            "[tool.poetry.dependencies]\npython = \"^3.11\"\nrequests = {version = \"^2\", extras = [\"socks\"]}\nshared = {path = \"../shared\"}\n[tool.poetry.group.dev.dependencies]\npytest = \"*\"\n",
        )
        .unwrap();
        let out = d.path().join("r.txt");
        requirements(d.path(), &out).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("requests==2.31.0 --hash=sha256:aa --hash=sha256:bb\n"),
            "{text}"
        );
        assert!(text.contains("idna==3.7\n"), "{text}");
        assert!(
            text.contains("colorama==0.4.6 ; sys_platform == \"win32\"\n"),
            "{text}"
        );
        assert!(
            text.contains("PySocks==1.7.1\n"),
            "the extra asked for: {text}"
        );
        assert!(!text.contains("pytest"), "dev group left out: {text}");
        assert!(text.contains("\n../shared\n"), "{text}");
        // A dependency that is not locked: the lock is out of date.
        std::fs::write(
            d.path().join("pyproject.toml"),
            "[project]\ndependencies = [\"requests\", \"httpx>=0.27\"]\n",
        )
        .unwrap();
        let e = requirements(d.path(), &out).unwrap_err();
        assert!(e.message.contains("`httpx`"), "{e:?}");
        assert!(e.hint.contains("poetry lock"), "{e:?}");
    }

    #[test]
    fn lock_format_2_1_says_the_groups_itself() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("poetry.lock"),
            "[[package]]\nname = \"six\"\nversion = \"1.16.0\"\ngroups = [\"main\"]\nmarkers = {main = \"python_version >= \\\"3.8\\\"\"}\nfiles = []\n[[package]]\nname = \"pytest\"\nversion = \"8\"\ngroups = [\"dev\"]\nfiles = []\n",
        )
        .unwrap();
        std::fs::write(d.path().join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
        let out = d.path().join("r.txt");
        requirements(d.path(), &out).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.contains("six==1.16.0 ; python_version >= \"3.8\"\n"),
            "{text}"
        );
        assert!(!text.contains("pytest"), "{text}");
    }
}
