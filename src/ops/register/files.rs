//! Which prefect.yaml files a run registers (`--file` repeated, or a directory standing for every
//! `prefect.yaml` under it), and their deployments planned together: one plan for a monorepo.

use super::Pruned;
use crate::error::Error;
use crate::prefect::project::{Inputs, Plan, Project, Warning};
use crate::prefect::template::References;
use std::path::{Path, PathBuf};

/// Directories never searched for project files.
const SKIP_DIRS: [&str; 6] = [
    "node_modules",
    "__pycache__",
    "venv",
    "site-packages",
    "target",
    "dist",
];

/// The files `paths` name: files as given; directories searched (sorted, hidden and vendored directories
/// skipped) for `prefect.yaml`. A directory with none is an error, not an empty run.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let before = out.len();
            walk(p, &mut out, 0);
            if out.len() == before {
                return Err(Error::Usage {
                    message: format!("{}: no prefect.yaml under this directory", p.display()),
                    hint: Some("pass --file with the path of a prefect.yaml, or a directory that holds some".into()),
                });
            }
        } else if !out.contains(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 12 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            if !name.starts_with('.') && !SKIP_DIRS.contains(&name.as_str()) {
                walk(&path, out, depth + 1);
            }
        } else if kind.is_file() && name == "prefect.yaml" && !out.contains(&path) {
            out.push(path);
        }
    }
}

/// The projects, loaded.
pub fn load(files: &[PathBuf]) -> Result<Vec<Project>, Error> {
    files
        .iter()
        .map(|f| Project::load(f).map_err(Error::from))
        .collect()
}

/// Every variable and block the projects refer to.
pub fn references(projects: &[Project]) -> References {
    let mut all = References::default();
    for p in projects {
        all.extend(p.references());
    }
    all
}

/// Every deployment of every project, in file order. `prefect deploy` deploys each entry in turn, so a
/// name given twice ends as the last one: the same here, with a warning.
pub fn plan_all(
    projects: &[Project],
    inputs: &Inputs<'_>,
) -> Result<(Vec<Plan>, Vec<Warning>), Error> {
    let mut plans: Vec<Plan> = Vec::new();
    let mut warnings = Vec::new();
    for project in projects {
        for i in 0..project.deployments().len() {
            let mut p = project.plan(i, inputs)?;
            warnings.append(&mut p.warnings);
            if let Some(earlier) = plans.iter().position(|q| q.full_name() == p.full_name()) {
                let first = plans.remove(earlier);
                let place = if first.file == p.file {
                    "twice in this file".to_string()
                } else {
                    format!("also in {}", first.file.display())
                };
                warnings.push(project.warning(
                    i,
                    &p.name,
                    format!(
                        "`{}` is defined {place}; the last definition is registered, as `prefect deploy` does",
                        p.full_name()
                    ),
                    "remove one of them, or give each deployment of a flow its own name",
                ));
            }
            plans.push(p);
        }
    }
    Ok((plans, warnings))
}

/// The deployments flowship registered for these projects (by their label) that none of the plans names
/// any more: what `--prune` deletes. Placement (`<name>-<cluster>`) is applied to plans before this.
pub async fn stale(
    client: &crate::prefect::Prefect,
    projects: &[Project],
    plans: &[Plan],
    flow_ids: &std::collections::HashMap<String, String>,
) -> Result<Vec<Pruned>, Error> {
    let mut out = Vec::new();
    for project in projects {
        let id = project.id();
        for d in client
            .deployments_labelled(crate::prefect::project::PROJECT_LABEL, &id)
            .await?
        {
            let (Some(name), Some(dep_id), Some(flow_id)) =
                (d["name"].as_str(), d["id"].as_str(), d["flow_id"].as_str())
            else {
                continue;
            };
            let named = plans.iter().any(|p| {
                p.name == name && flow_ids.get(&p.flow_name).map(String::as_str) == Some(flow_id)
            });
            if named {
                continue;
            }
            let flow = client
                .flow_name_of(flow_id)
                .await?
                .unwrap_or_else(|| flow_id.to_string());
            out.push(Pruned {
                name: format!("{flow}/{name}"),
                id: dep_id.to_string(),
                project: id.clone(),
            });
        }
    }
    Ok(out)
}
