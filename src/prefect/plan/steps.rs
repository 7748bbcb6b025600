//! Steps 6 and 9 of a deployment's plan: build and push steps (satisfied without running them) and the
//! pull steps a worker runs.

use super::super::project::{BUILD_DOCKER, Inputs, PUSH_DOCKER, Project, ProjectError, absolute};
use super::super::template;
use super::truthy;
use serde_json::{Map, Value, json};

impl Project {
    /// Step 6: build and push steps, satisfied without running them; their outputs for later templates.
    pub(super) fn step_outputs(
        &self,
        name: &str,
        raw: &Value,
        inputs: &Inputs<'_>,
    ) -> Result<Value, ProjectError> {
        let build = self.steps(raw, "build").unwrap_or_default();
        let push = self.steps(raw, "push").unwrap_or_default();
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
                            name,
                            format!("step {} `{fqn}` needs the image: flowship does not run Docker", i + 1),
                            Some("pass --image REPO:TAG[@DIGEST] (the image flowship built or pushed), or --skip-step with the step's name"),
                        ));
                    }
                },
                other => {
                    return Err(self.err(
                        name,
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
        Ok(Value::Object(outputs))
    }

    /// Step 9: pull steps, with step outputs only; variables and blocks stay for the worker. Without a
    /// `pull:` section, the step `prefect deploy --no-prompt` generates (`_generate_default_pull_action`): a
    /// `dockerfile: auto` image build → `/opt/prefect/<working directory's name>`; another image build → none;
    /// an image in the job variables → `/opt/prefect`; else the working directory itself.
    pub(super) fn pull_steps(
        &self,
        raw: &Value,
        cfg: &Value,
        outputs: &Value,
        inputs: &Inputs<'_>,
        base: &std::path::Path,
    ) -> Value {
        let set_dir = |d: String| json!([{"prefect.deployments.steps.set_working_directory": {"directory": d}}]);
        match self.steps(raw, "pull") {
            Some(p) if !(p.len() == 1 && p[0] == json!({})) => {
                template::apply_values(&Value::Array(p), outputs, inputs.env, false, &[])
                    .unwrap_or_default()
            }
            _ => {
                // `deploy_config.get("build") or actions["build"]`: an empty or null section of the
                // deployment falls back to the file's.
                let builds = match raw.get("build").filter(|b| truthy(b)) {
                    Some(b) => b.clone(),
                    None => self.file_section("build"),
                };
                let builds = match builds {
                    Value::Array(a) => a,
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                let docker = builds
                    .iter()
                    .find_map(|s| s.get(BUILD_DOCKER).filter(|v| truthy(v)));
                match docker {
                    Some(step)
                        if step.get("dockerfile").and_then(Value::as_str) == Some("auto") =>
                    {
                        let dir = base
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        set_dir(format!("/opt/prefect/{dir}"))
                    }
                    Some(_) => Value::Null,
                    None if template::get_path(cfg, "work_pool.job_variables.image")
                        .is_some_and(|v| truthy(&v)) =>
                    {
                        set_dir("/opt/prefect".into())
                    }
                    None => set_dir(absolute(base)),
                }
            }
        }
    }
}
