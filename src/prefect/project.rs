//! `prefect.yaml` → one payload per deployment, in the order `prefect deploy` works
//! (`cli/deploy/_core.py::_run_single_deploy`): blocks, then variables, then environment; the flow (name,
//! description, parameter schema) from its source; build and push steps; schedules; step outputs; pull
//! steps. The result is what `POST /deployments/` needs, plus the fields a `PATCH` sends.

use super::schedules::schedule;
use super::schema::{self, FlowInfo};
use super::template::{self, References};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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
    fn outputs(&self) -> Value {
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

#[derive(Debug, Clone)]
pub struct GitlabVersion {
    pub commit_sha: String,
    pub branch: Option<String>,
    pub project_url: Option<String>,
    pub project_name: Option<String>,
}

/// One deployment, ready to send.
#[derive(Debug, Clone)]
pub struct Plan {
    pub flow_name: String,
    pub name: String,
    pub work_pool: Option<String>,
    /// The `POST /deployments/` body without `flow_id`.
    pub create: Map<String, Value>,
    /// Field names sent on `PATCH` (taken from `create`); `schedules` only when the file sets a non-empty list.
    pub update_fields: Vec<String>,
    pub triggers: Vec<Value>,
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

pub struct Project {
    pub file: PathBuf,
    pub dir: PathBuf,
    doc: Value,
}

impl Project {
    pub fn load(file: &Path) -> Result<Self, ProjectError> {
        let text = std::fs::read_to_string(file).map_err(|e| ProjectError::File {
            file: file.into(),
            message: format!("cannot read: {e}"),
            hint: Some("pass --file with the path of prefect.yaml".into()),
        })?;
        let doc = super::yaml11::load(&text).map_err(|e| ProjectError::File {
            file: file.into(),
            message: e.to_string(),
            hint: None,
        })?;
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
        Ok(Self {
            file: file.into(),
            dir,
            doc,
        })
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

    fn err(
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

    /// `parameters:` must be a mapping of the flow's own parameters (unless it takes `**kwargs`): a name the
    /// function does not have fails every flow run, so it is refused here, before anything is written.
    fn check_parameters(
        &self,
        name: &str,
        cfg: &Value,
        flow: &FlowInfo,
    ) -> Result<(), ProjectError> {
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
        if let Some(bad) = params.keys().find(|k| !known.contains(&k.as_str())) {
            let hint = if known.is_empty() {
                format!(
                    "flow `{}` takes no parameters: remove `parameters`",
                    flow.name
                )
            } else {
                format!("flow `{}` takes: {}", flow.name, known.join(", "))
            };
            return Err(self.err(
                name,
                format!(
                    "parameter `{bad}` is not a parameter of flow `{}`",
                    flow.name
                ),
                Some(&hint),
            ));
        }
        Ok(())
    }

    /// The section `key` for a deployment: its own, else the file's; one mapping counts as a list of one.
    fn steps(&self, deployment: &Value, key: &str) -> Option<Vec<Value>> {
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

    pub fn plan(&self, index: usize, inputs: &Inputs<'_>) -> Result<Plan, ProjectError> {
        let raw = &self.deployments()[index];
        let label = raw
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        let raw_pull = self.steps(raw, "pull");
        let build = self.steps(raw, "build").unwrap_or_default();
        let push = self.steps(raw, "push").unwrap_or_default();

        // 1. blocks, 2. variables, 3. environment (unset variables stay literal).
        let mut cfg = template::resolve_blocks(raw, inputs.blocks).map_err(|e| {
            self.err(
                &label,
                e.to_string(),
                Some("create the block in Prefect (UI, `prefect block create`), or fix the name in prefect.yaml"),
            )
        })?;
        cfg = template::resolve_variables(&cfg, inputs.variables);
        cfg = template::apply_values(&cfg, &json!({}), inputs.env, false, &[]).unwrap_or(cfg);
        let name = cfg
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                self.err(
                    &label,
                    "has no `name`",
                    Some("every deployment in prefect.yaml needs a name"),
                )
            })?;
        if name.contains(['/', '%', '&', '>', '<']) {
            return Err(self.err(&name, "names may not contain / % & > <", None));
        }

        // 4. the flow, from its source.
        let entrypoint = cfg
            .get("entrypoint")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                self.err(
                    &name,
                    "has no `entrypoint`",
                    Some("set entrypoint: path/to/file.py:flow_function"),
                )
            })?;
        let entrypoint = entrypoint.as_str();
        let (file, function) = self.entrypoint_file(entrypoint).ok_or_else(|| {
            self.err(&name, format!("entrypoint `{entrypoint}` is not path/to/file.py:function or package.module.function"), None)
        })?;
        let source = std::fs::read_to_string(&file).map_err(|e| {
            self.err(
                &name,
                format!("entrypoint file `{}` cannot be read: {e}", file.display()),
                Some("entrypoints are relative to prefect.yaml's directory"),
            )
        })?;
        let flow: FlowInfo = schema::flow_info(&source, &function).map_err(|e| {
            let flows = schema::flow_functions(&source);
            let hint = match flows.as_slice() {
                [] => format!(
                    "decorate the flow function in {} with @flow",
                    file.display()
                ),
                found => format!(
                    "flows in {}: {}; point entrypoint at one of them",
                    file.display(),
                    found.join(", ")
                ),
            };
            self.err(&name, format!("`{}` {e}", file.display()), Some(&hint))
        })?;
        self.check_parameters(&name, &cfg, &flow)?;

        // 5. the work pool must be named; its existence is checked against the server.
        let work_pool = template::get_path(&cfg, "work_pool.name")
            .and_then(|v| v.as_str().map(str::to_string))
            .or_else(|| inputs.default_work_pool.map(str::to_string));

        // 6. build and push steps, satisfied without running them.
        let mut outputs = Map::new();
        for (i, step) in build.iter().chain(push.iter()).enumerate() {
            let step = template::apply_values(
                step,
                &Value::Object(outputs.clone()),
                inputs.env,
                true,
                &[],
            )
            .unwrap_or_default();
            let Some((fqn, args)) = step.as_object().and_then(|m| m.iter().next()) else {
                continue;
            };
            if inputs.skip_steps.iter().any(|s| s == fqn) {
                continue;
            }
            let out = match fqn.as_str() {
                BUILD_DOCKER | PUSH_DOCKER => match inputs.image {
                    Some(img) => img.outputs(),
                    None => {
                        return Err(self.err(
                            &name,
                            format!("step {} `{fqn}` needs the image: flowship does not run Docker", i + 1),
                            Some("pass --image REPO:TAG[@DIGEST] (the image flowship built or pushed), or --skip-step with the step's name"),
                        ));
                    }
                },
                other => {
                    return Err(self.err(
                        &name,
                        format!("step {} `{other}` runs Python; flowship cannot run it", i + 1),
                        Some("do its work in an earlier CI job, and pass --skip-step with the step's name"),
                    ));
                }
            };
            if let Some(id) = args.get("id").and_then(Value::as_str) {
                outputs.insert(id.into(), out.clone());
            }
            if let Value::Object(o) = out {
                outputs.extend(o);
            }
        }
        let outputs = Value::Object(outputs);

        // 7. schedules, templated with step outputs; absent or null: not sent (the server keeps its own).
        let schedules = match cfg.get("schedules") {
            None | Some(Value::Null) => None,
            Some(s) => {
                let s =
                    template::apply_values(s, &outputs, inputs.env, true, &[]).unwrap_or_default();
                let list = s.as_array().cloned().unwrap_or_default();
                Some(
                    list.iter()
                        .map(|c| {
                            schedule(c).map_err(|m| {
                                self.err(
                                    &name,
                                    format!("schedules: {m}"),
                                    Some("cron: \"0 3 * * *\", interval: 3600 (seconds), or rrule: \"FREQ=DAILY\""),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
        };

        // 8. the rest with step outputs: whole-string misses drop the key, inline misses become "".
        let mut cfg = cfg;
        let triggers = cfg.as_object_mut().and_then(|m| m.remove("triggers"));
        if let Some(m) = cfg.as_object_mut() {
            m.remove("schedules");
        }
        let cfg =
            template::apply_values(&cfg, &outputs, inputs.env, true, &["ctx."]).unwrap_or_default();

        // 9. pull steps: step outputs only; variables and blocks stay for the worker.
        let pull = match raw_pull {
            Some(p) => template::apply_values(&Value::Array(p), &outputs, inputs.env, false, &[])
                .unwrap_or_default(),
            None => {
                json!([{"prefect.deployments.steps.set_working_directory": {"directory": absolute(&self.dir)}}])
            }
        };

        let get = |k: &str| cfg.get(k).filter(|v| !v.is_null()).cloned();
        let (concurrency_limit, concurrency_options) = match get("concurrency_limit") {
            Some(Value::Object(c)) => {
                let mut opts = Map::new();
                if let Some(s) = c.get("collision_strategy") {
                    opts.insert("collision_strategy".into(), s.clone());
                }
                if let Some(g) = c.get("grace_period_seconds").filter(|g| !g.is_null()) {
                    opts.insert("grace_period_seconds".into(), g.clone());
                }
                (
                    c.get("limit").cloned().unwrap_or(Value::Null),
                    Value::Object(opts),
                )
            }
            Some(v) => (v, Value::Null),
            None => (Value::Null, Value::Null),
        };
        let version = get("version").map(|v| template::py_str(&v)).or_else(|| {
            inputs
                .gitlab
                .map(|g| g.commit_sha.chars().take(8).collect())
        });
        let version = version.unwrap_or_else(|| {
            use md5::Digest;
            hex::encode(md5::Md5::digest(source.as_bytes()))
        });
        let tags = match get("tags") {
            Some(Value::Array(t)) if t.iter().all(Value::is_string) => Value::Array(t),
            Some(Value::String(s)) => json!([s]),
            None => json!([]),
            Some(other) => {
                return Err(self.err(
                    &name,
                    format!("`tags` is {other}, not a list of strings"),
                    Some("write tags: [etl, nightly]"),
                ));
            }
        };
        let mut create = Map::new();
        create.insert("name".into(), json!(name));
        create.insert("entrypoint".into(), json!(entrypoint));
        create.insert("work_pool_name".into(), json!(work_pool));
        create.insert(
            "work_queue_name".into(),
            template::get_path(&cfg, "work_pool.work_queue_name").unwrap_or(Value::Null),
        );
        create.insert(
            "job_variables".into(),
            template::get_path(&cfg, "work_pool.job_variables")
                .filter(|v| v.is_object())
                .unwrap_or(json!({})),
        );
        create.insert("parameters".into(), get("parameters").unwrap_or(json!({})));
        create.insert("parameter_openapi_schema".into(), flow.schema);
        create.insert(
            "enforce_parameter_schema".into(),
            get("enforce_parameter_schema").unwrap_or(json!(true)),
        );
        create.insert(
            "description".into(),
            get("description")
                .or_else(|| flow.description.map(Value::String))
                .unwrap_or(Value::Null),
        );
        create.insert("version".into(), json!(version));
        create.insert("tags".into(), tags);
        create.insert("paused".into(), get("paused").unwrap_or(json!(false)));
        create.insert("concurrency_limit".into(), concurrency_limit);
        create.insert("concurrency_options".into(), concurrency_options);
        create.insert("pull_steps".into(), pull);
        create.insert("path".into(), Value::Null);
        create.insert("storage_document_id".into(), Value::Null);
        create.insert("infrastructure_document_id".into(), Value::Null);
        create.insert(
            "schedules".into(),
            Value::Array(schedules.clone().unwrap_or_default()),
        );
        if let Some(g) = inputs.gitlab {
            let mut info = json!({"type": "vcs:gitlab", "version": g.commit_sha.chars().take(8).collect::<String>(), "commit_sha": g.commit_sha});
            for (k, v) in [
                ("branch", &g.branch),
                ("url", &g.project_url),
                ("repository", &g.project_name),
            ] {
                if let Some(v) = v {
                    info[k] = json!(v);
                }
            }
            create.insert("version_info".into(), info);
        }
        let mut update_fields: Vec<String> = [
            "entrypoint",
            "work_pool_name",
            "work_queue_name",
            "job_variables",
            "parameters",
            "parameter_openapi_schema",
            "enforce_parameter_schema",
            "description",
            "version",
            "tags",
            "concurrency_limit",
            "concurrency_options",
            "pull_steps",
            "path",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if cfg.get("paused").is_some_and(|p| !p.is_null()) {
            update_fields.push("paused".into());
        }
        if create.contains_key("version_info") {
            update_fields.push("version_info".into());
        }
        // `schedules: []` keeps the server's schedules on update, as `prefect deploy` does (3.9).
        if schedules.as_ref().is_some_and(|s| !s.is_empty()) {
            update_fields.push("schedules".into());
        }
        let triggers = match triggers {
            Some(Value::Array(t)) => t,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(self.err(&name, "`triggers` must be a list", None)),
        };
        for (i, t) in triggers.iter().enumerate() {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("event");
            if !t.is_object() || !matches!(kind, "event" | "metric" | "compound" | "sequence") {
                return Err(self.err(
                    &name,
                    format!(
                        "trigger {} is not a mapping of type event, metric, compound or sequence",
                        i + 1
                    ),
                    None,
                ));
            }
        }
        Ok(Plan {
            flow_name: flow.name,
            name,
            work_pool,
            create,
            update_fields,
            triggers,
        })
    }

    /// `flows/etl.py:etl` or `flows.etl.etl`, relative to the project directory.
    fn entrypoint_file(&self, entrypoint: &str) -> Option<(PathBuf, String)> {
        if let Some((path, func)) = entrypoint.rsplit_once(':') {
            return Some((self.dir.join(path), func.to_string()));
        }
        let (module, func) = entrypoint.rsplit_once('.')?;
        Some((
            self.dir.join(format!("{}.py", module.replace('.', "/"))),
            func.to_string(),
        ))
    }
}

fn absolute(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}
