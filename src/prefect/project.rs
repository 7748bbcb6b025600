//! `prefect.yaml` → one payload per deployment, in the order `prefect deploy` works
//! (`cli/deploy/_core.py::_run_single_deploy`): blocks, then variables, then environment; the flow (name,
//! description, parameter schema) from its source; build and push steps; schedules; step outputs; pull
//! steps. The result is what `POST /deployments/` needs, plus the fields a `PATCH` sends.

use super::schema::FlowInfo;
use super::template::{self, References};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The label flowship gives the deployments it creates: the project's id (see [`Project::id`]).
pub const PROJECT_LABEL: &str = "flowship.project";

pub const BUILD_DOCKER: &str = "prefect_docker.deployments.steps.build_docker_image";
pub const PUSH_DOCKER: &str = "prefect_docker.deployments.steps.push_docker_image";

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{}: {message}", file.display())]
    File {
        file: PathBuf,
        message: String,
        hint: Option<String>,
    },
    #[error("{}: deployment `{deployment}`: {message}", file.display())]
    Deployment {
        file: PathBuf,
        deployment: String,
        message: String,
        hint: Option<String>,
    },
}

impl ProjectError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ProjectError::File { hint, .. } | ProjectError::Deployment { hint, .. } => hint.clone(),
        }
    }
}

/// The image that build/push steps stand for: the one flowship built, or `--image`.
#[derive(Debug, Clone)]
pub struct StepImage {
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl StepImage {
    /// The outputs `build_docker_image` / `push_docker_image` return; `image` pinned by digest when known.
    pub(super) fn outputs(&self) -> Value {
        let tag = self.tag.clone().unwrap_or_else(|| "latest".into());
        let image = match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => format!("{}:{t}@{d}", self.repository),
            (None, Some(d)) => format!("{}@{d}", self.repository),
            _ => format!("{}:{tag}", self.repository),
        };
        json!({"image_name": self.repository, "tag": tag, "image": image, "additional_tags": []})
    }
}

/// Everything a plan needs from outside the file.
pub struct Inputs<'a> {
    pub env: &'a BTreeMap<String, String>,
    pub image: Option<&'a StepImage>,
    pub skip_steps: &'a [String],
    pub default_work_pool: Option<&'a str>,
    pub variables: &'a HashMap<String, Option<Value>>,
    pub blocks: &'a HashMap<(String, String), Option<Value>>,
    /// `CI_COMMIT_SHA` etc. when running in GitLab CI: version and version_info come from them.
    pub gitlab: Option<&'a GitlabVersion>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GitlabVersion {
    pub commit_sha: String,
    pub branch: Option<String>,
    pub project_url: Option<String>,
    pub project_name: Option<String>,
}

/// Something `prefect deploy` accepts that is probably a mistake, or that flowship reads differently from
/// it: registered as Prefect would, said on stderr, and refused under `--strict`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    pub file: PathBuf,
    /// 1-based line of the deployment's entry (0 when unknown).
    pub line: usize,
    pub deployment: String,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.line > 0 {
            format!("{}:{}", self.file.display(), self.line)
        } else {
            self.file.display().to_string()
        };
        write!(
            f,
            "{at}: deployment `{}`: {} (fix: {})",
            self.deployment, self.message, self.fix
        )
    }
}

/// One deployment, ready to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The prefect.yaml it comes from.
    pub file: PathBuf,
    pub flow_name: String,
    pub name: String,
    pub work_pool: Option<String>,
    /// The `POST /deployments/` body without `flow_id`.
    pub create: Map<String, Value>,
    /// Field names sent on `PATCH` (taken from `create`); `schedules` only when the file sets a non-empty list.
    pub update_fields: Vec<String>,
    pub triggers: Vec<Value>,
    pub warnings: Vec<Warning>,
    /// The entrypoint and the flow as its source said (what a release records).
    pub entrypoint: String,
    pub flow: RecordedFlow,
    /// The values its `{{ $VAR }}` templates stood for: redacted in diffs like variables and block secrets.
    pub from_env: Vec<String>,
}

impl Plan {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.flow_name, self.name)
    }

    pub fn update_body(&self) -> Map<String, Value> {
        self.update_fields
            .iter()
            .filter_map(|k| self.create.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }
}

/// A flow as a release recorded it (`ops::record`): what its source said then, so that a rollback registers
/// the deployment as it was released, whatever the checkout holds now.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedFlow {
    #[serde(flatten)]
    pub info: FlowInfo,
    /// Prefect's default version: the MD5 of the flow file.
    pub source_md5: String,
}

pub struct Project {
    pub file: PathBuf,
    pub dir: PathBuf,
    /// Where entrypoints and the default pull step resolve: the working directory, as for `prefect deploy
    /// --prefect-file` (a monorepo deploys `pipelines/x/prefect.yaml` from its root).
    pub workdir: PathBuf,
    doc: Value,
    /// The line each entry of `deployments:` starts on.
    lines: Vec<usize>,
    /// The project's Python modules, parsed once for all deployments.
    pub(super) sources: super::python::Sources,
    /// The file's text, as read.
    pub text: String,
    /// Flows by entrypoint, from a release record: used instead of the sources.
    pub(super) recorded: Option<BTreeMap<String, RecordedFlow>>,
}

impl Project {
    pub fn load(file: &Path) -> Result<Self, ProjectError> {
        let text = std::fs::read_to_string(file).map_err(|e| ProjectError::File {
            file: file.into(),
            message: format!("cannot read: {e}"),
            hint: Some("pass --file with the path of prefect.yaml".into()),
        })?;
        Self::from_text(file, text, None)
    }

    /// A project from its text (a release record's), its flows from `recorded` when given.
    pub fn from_text(
        file: &Path,
        text: String,
        recorded: Option<BTreeMap<String, RecordedFlow>>,
    ) -> Result<Self, ProjectError> {
        let doc = super::yaml11::load(&text).map_err(|e| ProjectError::File {
            file: file.into(),
            message: e.to_string(),
            hint: None,
        })?;
        let lines = super::yaml11::item_lines(&text, "deployments");
        if !doc.get("deployments").is_some_and(Value::is_array) {
            return Err(ProjectError::File {
                file: file.into(),
                message: "has no `deployments:` list".into(),
                hint: None,
            });
        }
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        let workdir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let sources = super::python::Sources::for_workdir(&workdir);
        Ok(Self {
            file: file.into(),
            dir,
            workdir,
            doc,
            lines,
            sources,
            text,
            recorded,
        })
    }

    /// What identifies the project across runs (the label flowship marks its deployments with, for
    /// `--prune`): prefect.yaml's own `name:`, else its path relative to the working directory.
    pub fn id(&self) -> String {
        if let Some(n) = self
            .doc
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return n.to_string();
        }
        let abs = std::path::absolute(&self.file).unwrap_or_else(|_| self.file.clone());
        abs.strip_prefix(&self.workdir)
            .map(Path::to_path_buf)
            .unwrap_or(abs)
            .display()
            .to_string()
    }

    /// A warning about deployment `index`.
    pub fn warning(
        &self,
        index: usize,
        deployment: &str,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Warning {
        Warning {
            file: self.file.clone(),
            line: self.lines.get(index).copied().unwrap_or(0),
            deployment: deployment.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub fn deployments(&self) -> &[Value] {
        self.doc["deployments"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Every variable and block the deployments refer to (pull steps excluded: those stay for the worker).
    pub fn references(&self) -> References {
        let mut r = References::default();
        for d in self.deployments() {
            let mut entry = d.clone();
            if let Some(m) = entry.as_object_mut() {
                m.remove("pull");
            }
            template::references(&entry, &mut r);
        }
        r
    }

    pub(super) fn err(
        &self,
        deployment: &str,
        message: impl Into<String>,
        hint: Option<&str>,
    ) -> ProjectError {
        ProjectError::Deployment {
            file: self.file.clone(),
            deployment: deployment.into(),
            message: message.into(),
            hint: hint.map(Into::into),
        }
    }

    /// `parameters:` must be a mapping. A name the flow does not take (unless it takes `**kwargs`) is
    /// registered, as `prefect deploy` does (the server accepts it; the flow run fails on it), with a warning.
    pub(super) fn check_parameters(
        &self,
        index: usize,
        name: &str,
        cfg: &Value,
        flow: &FlowInfo,
        warnings: &mut Vec<Warning>,
    ) -> Result<(), ProjectError> {
        if cfg.get("parameters").is_some_and(Value::is_null) {
            warnings.push(self.warning(
                index,
                name,
                "`parameters:` is empty (null); registered as no parameters (`prefect deploy` refuses the whole file for it)",
                "remove the key, or write parameters: {}",
            ));
        }
        let Some(params) = cfg.get("parameters").filter(|v| !v.is_null()) else {
            return Ok(());
        };
        let Some(params) = params.as_object() else {
            return Err(self.err(
                name,
                format!("`parameters` is {params}, not a mapping"),
                Some("write parameters: {name: value, ...}"),
            ));
        };
        if flow.open {
            return Ok(());
        }
        let known: Vec<&str> = flow.schema["properties"]
            .as_object()
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        // A value outside an Enum or Literal the flow declares: the server refuses the deployment
        // (enforce_parameter_schema), after others may have been written. Refused here, before any write.
        let enforced = cfg.get("enforce_parameter_schema") != Some(&Value::Bool(false));
        for (k, v) in params.iter().filter(|_| enforced) {
            let Some(allowed) = allowed_values(&flow.schema, k) else {
                continue;
            };
            if !allowed.contains(v) && !v.as_str().is_some_and(|s| s.contains("{{")) {
                return Err(self.err(
                    name,
                    format!(
                        "parameter `{k}` is {v}, not one of the values flow `{}` takes: {}",
                        flow.name,
                        allowed.iter().map(Value::to_string).collect::<Vec<_>>().join(", ")
                    ),
                    Some("the server refuses it (enforce_parameter_schema): use one of those values, or leave the parameter out"),
                ));
            }
        }
        for bad in params.keys().filter(|k| !known.contains(&k.as_str())) {
            let fix = if known.is_empty() {
                format!(
                    "flow `{}` takes no parameters: remove `parameters`",
                    flow.name
                )
            } else {
                format!(
                    "remove it; flow `{}` takes: {}",
                    flow.name,
                    known.join(", ")
                )
            };
            warnings.push(self.warning(
                index,
                name,
                format!(
                    "parameter `{bad}` is not a parameter of flow `{}`: its flow runs will fail",
                    flow.name
                ),
                fix,
            ));
        }
        Ok(())
    }

    /// The file's own section `key` (null when absent).
    pub(super) fn file_section(&self, key: &str) -> Value {
        self.doc.get(key).cloned().unwrap_or(Value::Null)
    }

    /// The section `key` for a deployment: its own, else the file's; one mapping counts as a list of one.
    pub(super) fn steps(&self, deployment: &Value, key: &str) -> Option<Vec<Value>> {
        let v = match deployment.get(key) {
            Some(v) => v,
            None => self.doc.get(key)?,
        };
        Some(match v {
            Value::Null => return None,
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
    }
}

/// Where an entrypoint's source is: the file, and the object in it (`flow` or `Class.method`).
pub(super) struct Entry {
    pub file: PathBuf,
    pub object: String,
    /// Found only relative to prefect.yaml's directory, where Prefect would not look.
    pub beside_file: bool,
}

impl Project {
    /// An entrypoint as Prefect's `import_object` reads it: `path/to/file.py:flow` relative to the working
    /// directory; `package.module:flow` or `package.module.flow` as a module, found in the import roots
    /// (working directory, `src/`, the packaging's roots). flowship's earlier rule (relative to prefect.yaml's
    /// directory) is still accepted, with a warning, where Prefect's finds nothing.
    pub(super) fn entrypoint_file(&self, entrypoint: &str) -> Result<Entry, String> {
        if let Some((path, object)) = entrypoint.rsplit_once(':')
            && (path.ends_with(".py") || path.contains('/'))
        {
            // Relative to the working directory, as people read it in messages (`./flows/etl.py`).
            let at_workdir = Path::new(".").join(path);
            if self.workdir.join(path).is_file() {
                return Ok(Entry {
                    file: at_workdir,
                    object: object.into(),
                    beside_file: false,
                });
            }
            let beside = self.dir.join(path);
            if beside.is_file() && self.dir != self.workdir && self.dir != Path::new(".") {
                return Ok(Entry {
                    file: beside,
                    object: object.into(),
                    beside_file: true,
                });
            }
            return Err(format!(
                "entrypoint file `{path}` is not in {} (Prefect resolves entrypoints against the directory `prefect deploy` runs in)",
                self.workdir.display()
            ));
        }
        let (module, object) = match entrypoint.rsplit_once(':') {
            Some((m, o)) => (m, o.to_string()),
            None => {
                let (m, o) = entrypoint.rsplit_once('.').ok_or_else(|| {
                    format!("entrypoint `{entrypoint}` is not path/to/file.py:function or package.module:function")
                })?;
                (m, o.to_string())
            }
        };
        match self.sources.module_file(module) {
            Some(file) => Ok(Entry {
                file,
                object,
                beside_file: false,
            }),
            None => Err(format!(
                "module `{module}` of entrypoint `{entrypoint}` is not found under {}",
                self.sources
                    .roots()
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

pub(super) fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

/// The only values parameter `name` may take, when its schema says so (an Enum or a Literal, directly or
/// through `$ref`); `None` when any value of some type may do.
fn allowed_values(schema: &Value, name: &str) -> Option<Vec<Value>> {
    let mut prop = schema["properties"].get(name)?;
    if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
        prop = schema["definitions"].get(r.strip_prefix("#/definitions/")?)?;
    }
    if let Some(c) = prop.get("const") {
        return Some(vec![c.clone()]);
    }
    prop.get("enum").and_then(Value::as_array).cloned()
}
