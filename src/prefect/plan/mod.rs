//! One deployment of `prefect.yaml` planned, step by step in the order `prefect deploy` works
//! (`cli/deploy/_core.py::_run_single_deploy`): blocks, variables, environment; the flow from its source;
//! build and push steps; schedules; step outputs; pull steps; then the bodies `POST` and `PATCH` send.

use super::project::{Inputs, Plan, Project, ProjectError, Warning};
use super::schedules::Schedules;
use super::schema::{self, FlowInfo, scope::World};
use super::template;
use serde_json::{Map, Value, json};

// Steps 6 and 9 (build, push and pull steps) and step 7 (schedules), each in its own file.
mod schedules;
mod steps;

impl Project {
    pub fn plan(&self, index: usize, inputs: &Inputs<'_>) -> Result<Plan, ProjectError> {
        let raw = &self.deployments()[index];
        let label = raw
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>")
            .to_string();
        let cfg = self.resolved(raw, inputs, &label)?;
        let name = self.name_of(&cfg, &label)?;
        let mut warnings = Vec::new();
        let (entrypoint, recorded, beside_file) =
            self.flow_of(index, &name, &cfg, inputs, &mut warnings)?;
        let flow = recorded.info.clone();
        self.check_parameters(index, &name, &cfg, &flow, &mut warnings)?;
        // 5. the work pool must be named; its existence is checked against the server.
        let work_pool = template::get_path(&cfg, "work_pool.name")
            .and_then(|v| v.as_str().map(str::to_string))
            .or_else(|| inputs.default_work_pool.map(str::to_string));
        let outputs = self.step_outputs(&name, raw, inputs)?;
        let schedules = self.schedules_of(index, &name, &cfg, &outputs, inputs, &mut warnings)?;
        // Where the flow was found is where a worker without other instructions runs it from.
        let base = if beside_file {
            self.dir.clone()
        } else {
            self.workdir.clone()
        };
        let pull = self.pull_steps(raw, &cfg, &outputs, inputs, &base);
        let (cfg, triggers) = rest(cfg, &outputs, inputs);
        let head = Head {
            name: &name,
            entrypoint: &entrypoint,
            work_pool: &work_pool,
            source_md5: &recorded.source_md5,
        };
        let create = self.create_body(
            &head,
            &cfg,
            flow.schema,
            flow.description,
            pull,
            &schedules,
            inputs,
        )?;
        self.warn_unset_env(index, &name, &create, &mut warnings);
        let update_fields = update_fields(&cfg, &create, &schedules);
        let triggers = self.check_triggers(&name, triggers)?;
        let mut from_env = Vec::new();
        template::env_values(raw, inputs.env, &mut from_env);
        Ok(Plan {
            from_env,
            file: self.file.clone(),
            flow_name: flow.name,
            name,
            work_pool,
            create,
            update_fields,
            triggers,
            warnings,
            entrypoint,
            flow: recorded,
        })
    }

    /// A `{{ $VAR }}` left in what is registered: `VAR` is unset where flowship runs. `prefect deploy` reads
    /// its own environment and leaves it so too, but where it runs `VAR` is usually set (`$PWD` always is, in
    /// a shell): a deployment with the placeholder in it is rarely what was meant.
    fn warn_unset_env(
        &self,
        index: usize,
        name: &str,
        create: &Map<String, Value>,
        warnings: &mut Vec<Warning>,
    ) {
        let mut unset = std::collections::BTreeSet::new();
        for (k, v) in create {
            // The parameter schema is the flow's source text, not a template.
            if k != "parameter_openapi_schema" {
                template::unset_env(v, &mut unset);
            }
        }
        for var in unset {
            warnings.push(self.warning(
                index,
                name,
                format!("`{{{{ ${var} }}}}` is registered as written: {var} is not set where flowship runs"),
                format!("set {var} in flowship's environment as it is where `prefect deploy` runs (`$PWD`: the directory it runs in)"),
            ));
        }
    }

    /// Steps 1 to 3: blocks, then variables, then the environment (unset variables stay literal).
    fn resolved(
        &self,
        raw: &Value,
        inputs: &Inputs<'_>,
        label: &str,
    ) -> Result<Value, ProjectError> {
        let mut cfg = template::resolve_blocks(raw, inputs.blocks).map_err(|e| {
            self.err(
                label,
                e.to_string(),
                Some("create the block in Prefect (UI, `prefect block create`), or fix the name in prefect.yaml"),
            )
        })?;
        cfg = template::resolve_variables(&cfg, inputs.variables);
        cfg = template::apply_values(&cfg, &json!({}), inputs.env, false, &[]).unwrap_or(cfg);
        Ok(cfg)
    }

    fn name_of(&self, cfg: &Value, label: &str) -> Result<String, ProjectError> {
        let name = cfg
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                self.err(
                    label,
                    "has no `name`",
                    Some("every deployment in prefect.yaml needs a name"),
                )
            })?;
        if name.contains(['/', '%', '&', '>', '<']) {
            return Err(self.err(&name, "names may not contain / % & > <", None));
        }
        Ok(name)
    }

    /// Step 4: the flow, from its source (or the release record's): `(entrypoint, flow, found beside
    /// prefect.yaml only)`.
    fn flow_of(
        &self,
        index: usize,
        name: &str,
        cfg: &Value,
        inputs: &Inputs<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(String, super::project::RecordedFlow, bool), ProjectError> {
        let entrypoint = cfg
            .get("entrypoint")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                self.err(
                    name,
                    "has no `entrypoint`",
                    Some("set entrypoint: path/to/file.py:flow_function"),
                )
            })?;
        if let Some(recorded) = &self.recorded {
            let flow = recorded.get(&entrypoint).cloned().ok_or_else(|| {
                self.err(
                    name,
                    format!("the release record has no flow for entrypoint `{entrypoint}`"),
                    Some("the record is damaged: release again instead of rolling back to it"),
                )
            })?;
            return Ok((entrypoint, flow, false));
        }
        let entry = self.entrypoint_file(&entrypoint).map_err(|m| {
            self.err(
                name,
                m,
                Some("run flowship from the directory `prefect deploy` runs in (usually the repository root), or fix `entrypoint`"),
            )
        })?;
        if entry.beside_file {
            warnings.push(self.warning(
                index,
                name,
                format!(
                    "entrypoint `{entrypoint}` was found relative to {}, not to the working directory {} as Prefect resolves it (`prefect deploy` would fail here)",
                    self.dir.display(),
                    self.workdir.display()
                ),
                format!("run flowship from {}, or write the entrypoint relative to {}", self.dir.display(), self.workdir.display()),
            ));
        }
        let flow = self.flow_from_source(name, &entry, inputs.env)?;
        Ok((entrypoint, flow, entry.beside_file))
    }

    /// The flow at `entrypoint` as the checkout's source says (for `status`: what a release would record
    /// now); `None` when it cannot be read.
    pub fn source_flow(&self, entrypoint: &str) -> Option<super::project::RecordedFlow> {
        let entry = self.entrypoint_file(entrypoint).ok()?;
        self.flow_from_source(entrypoint, &entry, &std::collections::BTreeMap::new())
            .ok()
    }

    /// Name, description, schema and version of the flow an entry points at, from its source file.
    fn flow_from_source(
        &self,
        name: &str,
        entry: &super::project::Entry,
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<super::project::RecordedFlow, ProjectError> {
        let file = &entry.file;
        let source = std::fs::read_to_string(file).map_err(|e| {
            self.err(
                name,
                format!("entrypoint file `{}` cannot be read: {e}", file.display()),
                None,
            )
        })?;
        let body = self.sources.parse(file).ok_or_else(|| {
            let e = super::python::parse_source(&source)
                .err()
                .unwrap_or_default();
            self.err(
                name,
                format!("`{}` is not valid Python: {e}", file.display()),
                None,
            )
        })?;
        let mut sources_env = env.clone();
        for (k, v) in std::env::vars() {
            sources_env.entry(k).or_insert(v);
        }
        let world = World::new(&self.sources, &sources_env);
        let scope = world.file_scope(file, body);
        let flow: FlowInfo = schema::flow_in(&world, scope, &entry.object).map_err(|e| {
            let flows = schema::flows_in(&world, scope, body);
            let hint = match (&e, flows.as_slice()) {
                (schema::SchemaError::ComputedName(_), _) => {
                    "give @flow a literal name (or a module constant), so that the flow's name is known before it runs".to_string()
                }
                (_, []) => format!("decorate the flow function in {} with @flow", file.display()),
                (_, found) => format!(
                    "flows in {}: {}; point entrypoint at one of them",
                    file.display(),
                    found.join(", ")
                ),
            };
            self.err(name, format!("`{}` {e}", file.display()), Some(&hint))
        })?;
        use md5::Digest;
        let source_md5 = hex::encode(md5::Md5::digest(source.as_bytes()));
        Ok(super::project::RecordedFlow {
            info: flow,
            source_md5,
        })
    }

    /// The `POST /deployments/` body (without `flow_id`).
    #[allow(clippy::too_many_arguments)]
    fn create_body(
        &self,
        head: &Head<'_>,
        cfg: &Value,
        schema: Value,
        description: Option<String>,
        pull: Value,
        schedules: &Schedules,
        inputs: &Inputs<'_>,
    ) -> Result<Map<String, Value>, ProjectError> {
        let (name, entrypoint, work_pool, source_md5) =
            (head.name, head.entrypoint, head.work_pool, head.source_md5);
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
        let version = version.unwrap_or_else(|| source_md5.to_string());
        let tags = match get("tags") {
            Some(Value::Array(t)) if t.iter().all(Value::is_string) => Value::Array(t),
            Some(Value::String(s)) => json!([s]),
            None => json!([]),
            Some(other) => {
                return Err(self.err(
                    name,
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
            template::get_path(cfg, "work_pool.work_queue_name").unwrap_or(Value::Null),
        );
        create.insert(
            "job_variables".into(),
            template::get_path(cfg, "work_pool.job_variables")
                .filter(|v| v.is_object())
                .unwrap_or(json!({})),
        );
        create.insert("parameters".into(), get("parameters").unwrap_or(json!({})));
        create.insert("parameter_openapi_schema".into(), schema);
        create.insert(
            "enforce_parameter_schema".into(),
            get("enforce_parameter_schema").unwrap_or(json!(true)),
        );
        create.insert(
            "description".into(),
            get("description")
                .or_else(|| description.map(Value::String))
                .unwrap_or(Value::Null),
        );
        create.insert("version".into(), json!(version));
        create.insert("tags".into(), tags);
        create.insert("paused".into(), get("paused").unwrap_or(json!(false)));
        create.insert("concurrency_limit".into(), concurrency_limit);
        create.insert("concurrency_options".into(), concurrency_options);
        create.insert("pull_steps".into(), pull);
        // Only on create (the API cannot change labels later): which project made it, for `--prune`.
        create.insert(
            "labels".into(),
            json!({super::project::PROJECT_LABEL: self.id()}),
        );
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
        Ok(create)
    }

    fn check_triggers(
        &self,
        name: &str,
        triggers: Option<Value>,
    ) -> Result<Vec<Value>, ProjectError> {
        let triggers = match triggers {
            Some(Value::Array(t)) => t,
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(self.err(name, "`triggers` must be a list", None)),
        };
        for (i, t) in triggers.iter().enumerate() {
            let kind = t.get("type").and_then(Value::as_str).unwrap_or("event");
            if !t.is_object() || !matches!(kind, "event" | "metric" | "compound" | "sequence") {
                return Err(self.err(
                    name,
                    format!(
                        "trigger {} is not a mapping of type event, metric, compound or sequence",
                        i + 1
                    ),
                    None,
                ));
            }
        }
        Ok(triggers)
    }
}

/// What names a deployment, for building its body.
struct Head<'a> {
    name: &'a str,
    entrypoint: &'a str,
    work_pool: &'a Option<String>,
    source_md5: &'a str,
}

/// Step 8: the rest with step outputs (whole-string misses drop the key, inline misses become ""); the
/// triggers taken out for their own pass.
fn rest(mut cfg: Value, outputs: &Value, inputs: &Inputs<'_>) -> (Value, Option<Value>) {
    let triggers = cfg.as_object_mut().and_then(|m| m.remove("triggers"));
    if let Some(m) = cfg.as_object_mut() {
        m.remove("schedules");
    }
    let cfg =
        template::apply_values(&cfg, outputs, inputs.env, true, &["ctx."]).unwrap_or_default();
    (cfg, triggers)
}

/// Python's truthiness for a YAML value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Field names sent on `PATCH`; `schedules` only when the file sets a non-empty list.
fn update_fields(cfg: &Value, create: &Map<String, Value>, schedules: &Schedules) -> Vec<String> {
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
    update_fields
}
