//! Registration as an operation. [`plan`] reads `prefect.yaml` and the server (variables, blocks, work pools,
//! flows, the deployments of those flows and their automations) and decides, per deployment, created /
//! updated (with field diffs, secrets redacted) / unchanged; nothing is written, and bad input stops it with
//! exit 2. [`apply`] creates missing work pools (when asked) and flows, then writes the deployments
//! concurrently under adaptive concurrency, each with its automations.
//!
//! When an environment spans clusters with their own work pools, each deployment is registered once per pool
//! (`<name>-<cluster>`): Prefect keys deployments by flow and name, so one name cannot live in two pools.

use crate::error::Error;
use crate::prefect::Prefect;
use crate::prefect::compare::{FieldChange, diff};
use crate::prefect::payload::{fingerprint, pin_image, place};
use crate::prefect::project::{Inputs, Warning};
use crate::prefect::redact::redact_pair;
use crate::prefect::template::References;
use crate::prefect::triggers::{automations, same_automations};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What happens to one deployment (a plan: created, updated or unchanged) or happened (an outcome: also
/// deleted by `--prune`, or failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Created,
    Updated,
    Unchanged,
    Deleted,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Failed => "failed",
        }
    }

    /// The plan's imperative (`release --dry-run`'s `actions[]`): what it will do, as the other steps say it.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Created => "create",
            Action::Updated => "update",
            Action::Deleted => "delete",
            Action::Unchanged | Action::Failed => "none",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: reports align on `{:<10}`.
        f.pad(self.as_str())
    }
}

/// One deployment: what the server has, what the file wants, and what will happen.
#[derive(Debug, Clone, Serialize)]
pub struct Deployment {
    /// `flow/deployment`.
    pub name: String,
    pub id: Option<String>,
    /// What apply will do.
    pub action: Action,
    pub work_pool: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    /// sha256 of every byte apply would send for it (secrets included, so it changes when they do).
    pub fingerprint: String,
    #[serde(skip)]
    pub plan: crate::prefect::project::Plan,
    #[serde(skip)]
    pub have_automations: Vec<Value>,
    /// The image the server's deployment runs now (`job_variables.image`).
    #[serde(skip)]
    pub running: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolPlan {
    pub name: String,
    pub exists: bool,
    /// The type it is created with, when it does not exist and `--create-work-pool` says so.
    pub create: Option<String>,
    /// The registry credentials block its template references (a docker pool created for an image in a
    /// registry with credentials).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_block: Option<String>,
    /// flowship's registry credentials block of an existing docker pool, whose login is no longer the one
    /// flowship resolves (a rotated robot secret): updated, so that the workers keep pulling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_block: Option<String>,
    /// The image pull secret added to an existing kubernetes pool that does not name it yet, or set on one
    /// created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
    #[serde(skip)]
    pub existing: Option<crate::prefect::WorkPool>,
}

#[derive(Clone, Serialize)]
pub struct Plan {
    pub api_url: String,
    pub pools: Vec<PoolPlan>,
    pub deployments: Vec<Deployment>,
    /// Deployments of the same flows on the server that the file does not name (`flow/name`).
    pub others: Vec<String>,
    /// What the file says that `prefect deploy` accepts but is probably a mistake.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Deployments flowship registered for these projects that the files no longer name (`--prune`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prune: Vec<Pruned>,
    /// The prefect.yaml files as read (what a release records).
    #[serde(skip)]
    pub sources: Vec<crate::ops::record::RecordedProject>,
    #[serde(skip)]
    pub client: Arc<Prefect>,
    #[serde(skip)]
    flow_ids: HashMap<String, String>,
    #[serde(skip)]
    pull_credentials: Option<PullCredentials>,
    #[serde(skip)]
    concurrency: usize,
}

/// A deployment `--prune` deletes.
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    /// `flow/deployment`.
    pub name: String,
    pub id: String,
    /// The project (prefect.yaml) it was registered for.
    pub project: String,
}

/// What was done to one deployment.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentOutcome {
    pub name: String,
    pub id: Option<String>,
    pub action: Action,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Where a person sees it (the Prefect UI), when it has an id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub deployments: Vec<DeploymentOutcome>,
}

impl Outcome {
    pub fn failed(&self) -> Vec<&DeploymentOutcome> {
        self.deployments
            .iter()
            .filter(|d| d.action == Action::Failed)
            .collect()
    }
}

fn usage(m: String, h: &str) -> Error {
    Error::Usage {
        message: m,
        hint: Some(h.into()),
    }
}

/// Everything apply will do, from the file and the server; nothing written.
pub async fn plan(req: &Request, printer: &crate::output::Printer) -> Result<Plan, Error> {
    let projects = match &req.record {
        Some(r) => r.projects()?,
        None => files::load(&req.files)?,
    };
    let client = req.client.clone();
    // Variables and blocks the files refer to, fetched once. Their secret values (blocks' secret fields,
    // and variables, which hold tokens too) are redacted in every diff and scrubbed from all output.
    let (variables, blocks, secrets) =
        fetch_references(&client, &files::references(&projects)).await?;
    for s in &secrets.strong {
        printer.scrubber().add(s);
    }
    for s in &secrets.variables {
        // A variable like `prod` or `true` would blank ordinary words out of every line: only long ones are
        // scrubbed from free text; diffs redact every variable by place.
        if s.len() >= 8 {
            printer.scrubber().add(s);
        }
    }
    let sensitive = secrets.all();
    let inputs = Inputs {
        env: &req.env,
        image: req.image.as_ref(),
        skip_steps: &req.skip_steps,
        default_work_pool: req.default_work_pool.as_deref(),
        variables: &variables,
        blocks: &blocks,
        gitlab: req.gitlab.as_ref(),
    };
    let (plans, warnings) = files::plan_all(&projects, &inputs)?;
    report_warnings(&warnings, req.strict, printer)?;
    if req.prune && matches!(req.selection, Selection::Names(_)) {
        return Err(usage(
            "--prune deletes what the files do not name, so it needs every deployment of them, not --name".into(),
            "drop --name (register --all --prune), or drop --prune",
        ));
    }
    let mut plans = place(request::select(plans, &req.selection)?, &req.pools);
    if let Some(pin) = &req.pin_image {
        for p in plans.iter_mut() {
            pin_image(p, pin);
        }
    }
    for p in &plans {
        if p.work_pool.is_none() {
            return Err(usage(
                format!(
                    "{}: deployment `{}` names no work pool",
                    p.file.display(),
                    p.name
                ),
                "set work_pool.name in prefect.yaml, or --work-pool / FLOWSHIP_WORK_POOL",
            ));
        }
    }

    // Work pools must exist before deployments point at them.
    let pools = pools::plan(&client, &plans, req, printer).await?;

    let (flow_ids, existing) = existing_deployments(&client, &plans).await?;
    let prune = if req.prune {
        files::stale(&client, &projects, &plans, &flow_ids).await?
    } else {
        Vec::new()
    };
    let mut deployments = Vec::new();
    let mut others: Vec<String> = existing
        .keys()
        .filter(|(f, n)| !plans.iter().any(|p| &p.flow_name == f && &p.name == n))
        .map(|(f, n)| format!("{f}/{n}"))
        .collect();
    others.sort();
    for p in plans {
        let found = existing
            .get(&(p.flow_name.clone(), p.name.clone()))
            .cloned();
        deployments.push(compare(&client, p, found, &sensitive, &req.salt).await?);
    }
    Ok(Plan {
        api_url: client.base_url().to_string(),
        pools,
        deployments,
        others,
        warnings,
        prune,
        sources: projects
            .iter()
            .map(|p| crate::ops::record::RecordedProject {
                file: p.file.clone(),
                text: p.text.clone(),
            })
            .collect(),
        client,
        flow_ids,
        pull_credentials: req.pull_credentials.clone(),
        concurrency: req.concurrency,
    })
}

/// The flows' ids (only looked up: apply creates missing ones) and the server's deployments of those flows,
/// by `(flow, name)`, in one query.
async fn existing_deployments(
    client: &Prefect,
    plans: &[crate::prefect::project::Plan],
) -> Result<(HashMap<String, String>, HashMap<(String, String), Value>), Error> {
    let mut flow_ids = HashMap::new();
    for flow in plans
        .iter()
        .map(|p| p.flow_name.clone())
        .collect::<BTreeSet<_>>()
    {
        if let Some(id) = client.flow_id(&flow).await? {
            flow_ids.insert(flow, id);
        }
    }
    let flow_names: Vec<String> = flow_ids.keys().cloned().collect();
    let by_flow_id: HashMap<&String, &String> = flow_ids.iter().map(|(n, i)| (i, n)).collect();
    let mut existing: HashMap<(String, String), Value> = HashMap::new();
    if !flow_names.is_empty() {
        for d in client.deployments_of_flows(&flow_names).await? {
            let flow = d["flow_id"]
                .as_str()
                .and_then(|i| by_flow_id.get(&i.to_string()).copied());
            if let (Some(flow), Some(name)) = (flow, d["name"].as_str()) {
                existing.insert((flow.clone(), name.to_string()), d.clone());
            }
        }
    }

    Ok((flow_ids, existing))
}

/// Warnings on stderr; under `--strict`, exit 2 before anything is written.
fn report_warnings(
    warnings: &[Warning],
    strict: bool,
    printer: &crate::output::Printer,
) -> Result<(), Error> {
    for w in warnings {
        printer.warn(&w.to_string());
    }
    if strict && !warnings.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "{} warning{} about prefect.yaml under --strict; nothing was registered",
                warnings.len(),
                if warnings.len() == 1 { "" } else { "s" }
            ),
            hint: Some("fix what each warning names, or drop --strict / FLOWSHIP_STRICT".into()),
        });
    }
    Ok(())
}

/// One deployment's action: created, or compared field by field (and its automations) with the server's.
async fn compare(
    client: &Prefect,
    plan: crate::prefect::project::Plan,
    existing: Option<Value>,
    sensitive: &[String],
    salt: &str,
) -> Result<Deployment, Error> {
    let fingerprint = fingerprint(&plan, salt);
    let Some(existing) = existing else {
        return Ok(Deployment {
            name: plan.full_name(),
            id: None,
            action: Action::Created,
            work_pool: plan.work_pool.clone(),
            changes: Vec::new(),
            fingerprint,
            plan,
            have_automations: Vec::new(),
            running: None,
        });
    };
    let id = existing["id"].as_str().unwrap_or_default().to_string();
    let update = plan.update_body();
    let mut changes = diff(&existing, &update);
    let wanted = automations(&plan.triggers, &plan.name, &id);
    // (One GET per existing deployment: automations are not part of the deployment read model.)
    let have = client.owned_automations(&id).await?;
    if !same_automations(&have, &wanted) {
        changes.push(FieldChange {
            field: "triggers".into(),
            old: json!(have.len()),
            new: json!(wanted.len()),
        });
    }
    // Redacted by where a value came from: a field whose template names an environment variable, a
    // variable or a block secret is `<redacted>` on both sides (the old side holds the value before rotation).
    let mut secrets = sensitive.to_vec();
    secrets.extend(plan.from_env.iter().cloned());
    for c in changes.iter_mut() {
        redact_pair(&mut c.old, &mut c.new, &secrets);
    }
    Ok(Deployment {
        name: plan.full_name(),
        id: Some(id),
        action: if changes.is_empty() {
            Action::Unchanged
        } else {
            Action::Updated
        },
        work_pool: plan.work_pool.clone(),
        changes,
        fingerprint,
        plan,
        have_automations: have,
        running: existing["job_variables"]["image"]
            .as_str()
            .map(str::to_string),
    })
}

mod apply;
mod files;
mod pools;
mod request;
pub use crate::prefect::payload::{Pool, PullCredentials};
pub use apply::{apply, preview};
pub use request::{Request, Selection, gitlab_version};

/// Values that must not be shown: blocks' secret fields, and Prefect variables.
#[derive(Default)]
struct Sensitive {
    strong: Vec<String>,
    variables: Vec<String>,
}

impl Sensitive {
    fn all(&self) -> Vec<String> {
        self.strong.iter().chain(&self.variables).cloned().collect()
    }
}

type Fetched = (
    HashMap<String, Option<Value>>,
    HashMap<(String, String), Option<Value>>,
    Sensitive,
);

async fn fetch_references(client: &Arc<Prefect>, refs: &References) -> Result<Fetched, Error> {
    let mut sensitive = Sensitive::default();
    let mut variables = HashMap::new();
    for name in &refs.variables {
        let v = client.variable(name).await?;
        if let Some(v) = &v {
            crate::prefect::redact::strings(v, &mut sensitive.variables);
        }
        variables.insert(name.clone(), v);
    }
    let mut blocks = HashMap::new();
    for (kind, name) in &refs.blocks {
        let found = client.block_data(kind, name).await?;
        let data = found.map(|(data, secrets)| {
            sensitive.strong.extend(secrets);
            data
        });
        blocks.insert((kind.clone(), name.clone()), data);
    }
    sensitive.variables.retain(|s| !s.is_empty());
    Ok((variables, blocks, sensitive))
}

#[cfg(test)]
mod action_tests {
    #[test]
    fn an_action_pads_like_a_string() {
        assert_eq!(format!("[{:<9}]", super::Action::Created), "[created  ]");
    }
}
