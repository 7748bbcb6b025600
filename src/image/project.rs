//! What a flow project's packaging says about the image it needs, checked before building so that no image
//! is silently broken: dependencies declared (a lock, `pyproject.toml`) where no requirements file is given
//! would give an image without them; a `requires-python` the base's Python does not meet would give an image
//! whose code cannot run.

use std::path::Path;

/// Lock files whose presence means the project has dependencies to install.
const LOCKS: [&str; 4] = ["uv.lock", "poetry.lock", "pylock.toml", "Pipfile.lock"];

/// Why a build without a requirements file would leave the project's declared dependencies out (the file
/// that declares them), if it would.
pub fn undeclared_install(context: &Path) -> Option<String> {
    if let Some(lock) = LOCKS.iter().find(|l| context.join(l).is_file()) {
        return Some((*lock).to_string());
    }
    let text = std::fs::read_to_string(context.join("pyproject.toml")).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    let project_deps = doc
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(toml::Value::as_array)
        .is_some_and(|d| !d.is_empty());
    let poetry_deps = doc
        .get("tool")
        .and_then(|t| t.get("poetry"))
        .and_then(|p| p.get("dependencies"))
        .and_then(toml::Value::as_table)
        .is_some_and(|d| d.keys().any(|k| k != "python"));
    (project_deps || poetry_deps).then(|| "pyproject.toml".to_string())
}

/// `[project] requires-python` of the project, if it states one.
pub fn requires_python(context: &Path) -> Option<String> {
    let text = std::fs::read_to_string(context.join("pyproject.toml")).ok()?;
    let doc: toml::Table = text.parse().ok()?;
    doc.get("project")?
        .get("requires-python")?
        .as_str()
        .map(str::to_string)
}

/// Does Python `version` (`3.11`, `3.12.4`) satisfy a PEP 440 specifier set (`>=3.10,<3.13`, `~=3.11`,
/// `==3.12.*`)? Clauses it cannot read are taken as satisfied (never stricter than the installer).
pub fn fits(spec: &str, version: &str) -> bool {
    let v = parse(version);
    spec.split(',').all(|clause| {
        let clause = clause.trim();
        let (op, want) = match clause.find(|c: char| c.is_ascii_digit()) {
            Some(i) => (clause[..i].trim(), clause[i..].trim()),
            None => return true,
        };
        let wildcard = want.ends_with(".*");
        let w = parse(want.trim_end_matches(".*"));
        let n = w.len().max(1);
        let vv: Vec<u64> = v
            .iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(n)
            .collect();
        let ww: Vec<u64> = w
            .iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(n)
            .collect();
        match op {
            ">=" => cmp(&v, &w) >= std::cmp::Ordering::Equal,
            ">" => cmp(&v, &w) == std::cmp::Ordering::Greater,
            "<=" => cmp(&v, &w) <= std::cmp::Ordering::Equal,
            "<" => cmp(&v, &w) == std::cmp::Ordering::Less,
            "==" | "===" if wildcard => vv == ww,
            "==" | "===" => {
                cmp(&v, &w) == std::cmp::Ordering::Equal
                    || v.len() < w.len() && vv[..v.len()] == ww[..v.len()]
            }
            "!=" if wildcard => vv != ww,
            "!=" => cmp(&v, &w) != std::cmp::Ordering::Equal,
            "~=" => {
                // ~=3.10 means >=3.10, ==3.*; ~=3.10.2 means >=3.10.2, ==3.10.*.
                let prefix = w.len().saturating_sub(1).max(1);
                cmp(&v, &w) >= std::cmp::Ordering::Equal
                    && v.iter().take(prefix).eq(w.iter().take(prefix))
            }
            _ => true,
        }
    })
}

fn parse(v: &str) -> Vec<u64> {
    v.split('.').map_while(|p| p.parse::<u64>().ok()).collect()
}

/// Compare versions, missing parts as 0 (`3.12` == `3.12.0`).
fn cmp(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let pad = |x: &[u64]| -> Vec<u64> {
        x.iter()
            .copied()
            .chain(std::iter::repeat(0))
            .take(n)
            .collect()
    };
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_specifiers() {
        assert!(fits(">=3.10", "3.11"));
        assert!(!fits(">=3.12", "3.11"));
        assert!(fits(">=3.9,<3.13", "3.12"));
        assert!(!fits(">=3.9,<3.12", "3.12"));
        assert!(fits("~=3.11", "3.12"));
        assert!(!fits("~=3.11.2", "3.12"));
        assert!(fits("==3.11.*", "3.11"));
        assert!(!fits("==3.12.*", "3.11"));
        assert!(fits("!=3.10", "3.11"));
        assert!(fits("something odd", "3.11"));
    }

    #[test]
    fn declared_dependencies_without_a_requirements_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(undeclared_install(d.path()), None);
        std::fs::write(
            d.path().join("pyproject.toml"),
            "[tool.ruff]\nline-length = 100\n",
        )
        .unwrap();
        assert_eq!(undeclared_install(d.path()), None);
        std::fs::write(
            d.path().join("pyproject.toml"),
            "[project]\nname = \"x\"\nrequires-python = \">=3.12\"\ndependencies = [\"pandas\"]\n",
        )
        .unwrap();
        assert_eq!(
            undeclared_install(d.path()).as_deref(),
            Some("pyproject.toml")
        );
        assert_eq!(requires_python(d.path()).as_deref(), Some(">=3.12"));
        std::fs::write(d.path().join("uv.lock"), "version = 1\n").unwrap();
        assert_eq!(undeclared_install(d.path()).as_deref(), Some("uv.lock"));
    }
}
