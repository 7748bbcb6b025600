//! `flowship register`: create or update Prefect deployments from Prefect's own `prefect.yaml`, without Python.
//!
//! Plan, then act: every selected deployment is planned first (templating, flow schema from source, steps)
//! and any bad input stops the run before anything is written (exit 2). Then work pools are checked (or
//! created with `--create-work-pool`), flows created (idempotent), and each deployment looked up by name:
//! absent → `POST` (created), present and different → `PATCH` (updated; keeps schedule ids and runs, as
//! `prefect deploy` does), present and equal → nothing (unchanged). Deployments go concurrently, bounded.

use crate::cli::RegisterArgs;
use crate::error::Error;
use crate::http::gate::Gate;
use crate::output::Printer;
use crate::prefect::compare::{FieldChange, diff};
use crate::prefect::project::{GitlabVersion, Inputs, Plan, Project, StepImage};
use crate::prefect::template::References;
use crate::prefect::triggers::{automations, same_automations};
use crate::prefect::{Prefect, PrefectError};
use crate::settings::Settings;
use globset::Glob;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

#[derive(Debug, Serialize)]
struct Outcome {
    /// `flow/deployment`.
    name: String,
    id: Option<String>,
    /// created | updated | unchanged | failed (with --dry-run: what would happen).
    action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    changes: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub async fn run(args: &RegisterArgs, settings: &Settings, printer: &Printer) -> Result<(), Error> {
    let usage = |m: String, h: &str| Error::Usage {
        message: m,
        hint: Some(h.into()),
    };
    let api_url = settings.prefect.api_url.as_ref().ok_or_else(|| {
        usage(
            "register needs the Prefect API URL".into(),
            "set PREFECT_API_URL, FLOWSHIP_PREFECT_API_URL or prefect.api_url",
        )
    })?;
    let file = settings.prefect.file.value.clone();
    let project = Project::load(&file)?;
    let client = Arc::new(Prefect::new(
        crate::http::Http::new(&settings.http_config())?,
        &api_url.value,
        settings.prefect_auth(),
    ));
    let _section = printer.section(
        "flowship_register",
        &format!("flowship register ({})", file.display()),
    );

    // Variables and blocks the file refers to, fetched once. Their secret values (blocks' secret fields,
    // and variables, which hold tokens too) are redacted in every diff and scrubbed from all output.
    let refs = project.references();
    let (variables, blocks, secrets) = fetch_references(&client, &refs).await?;
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
    let sensitive: Arc<Vec<String>> = Arc::new(secrets.all());

    let image = settings.image.as_ref().map(|i| StepImage {
        repository: i.value.repository_ref(),
        tag: i.value.tag.clone(),
        digest: i.value.digest.clone(),
    });
    let gitlab = match (&settings.ci.commit_sha, settings.gitlab_ci) {
        (Some(sha), true) => Some(GitlabVersion {
            commit_sha: sha.clone(),
            branch: settings.ci.ref_name.clone(),
            project_url: settings.ci.project_url.clone(),
            project_name: settings.ci.project_name.clone(),
        }),
        _ => None,
    };
    let inputs = Inputs {
        env: &settings.template_env,
        image: image.as_ref(),
        skip_steps: &args.skip_steps,
        default_work_pool: settings
            .prefect
            .work_pool
            .as_ref()
            .map(|p| p.value.as_str()),
        variables: &variables,
        blocks: &blocks,
        gitlab: gitlab.as_ref(),
    };
    let mut plans = Vec::new();
    for i in 0..project.deployments().len() {
        plans.push(project.plan(i, &inputs)?);
    }
    let mut seen = BTreeSet::new();
    for p in &plans {
        if !seen.insert(p.full_name()) {
            return Err(usage(
                format!(
                    "{}: deployment `{}` is defined twice",
                    file.display(),
                    p.full_name()
                ),
                "give each deployment of a flow its own name",
            ));
        }
    }
    let plans = select(plans, args)?;
    for p in &plans {
        if p.work_pool.is_none() {
            return Err(usage(
                format!(
                    "{}: deployment `{}` names no work pool",
                    file.display(),
                    p.name
                ),
                "set work_pool.name in prefect.yaml, or --work-pool / FLOWSHIP_WORK_POOL",
            ));
        }
    }
    let dry_run = settings.dry_run.value;

    // Work pools must exist before deployments point at them.
    let pools: BTreeSet<String> = plans.iter().filter_map(|p| p.work_pool.clone()).collect();
    for pool in &pools {
        match client.work_pool(pool).await {
            Ok(_) => {}
            Err(PrefectError::WorkPoolMissing { .. }) => {
                match (&settings.prefect.create_work_pool, dry_run) {
                    (Some(kind), false) => {
                        let kind = &kind.value;
                        printer.info(&format!("creating work pool `{pool}` (type {kind})"));
                        client.create_work_pool(pool, kind).await?;
                    }
                    (Some(_), true) => {
                        printer.info(&format!("dry run: would create work pool `{pool}`"))
                    }
                    (None, _) => {
                        let users: Vec<String> = plans
                            .iter()
                            .filter(|p| p.work_pool.as_deref() == Some(pool))
                            .map(Plan::full_name)
                            .collect();
                        return Err(usage(
                            format!(
                                "work pool `{pool}` does not exist (used by {})",
                                users.join(", ")
                            ),
                            "create it (`prefect work-pool create NAME --type kubernetes`), or pass --create-work-pool TYPE",
                        ));
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }

    // Flows, once each: created (`POST /flows/` is idempotent), or in a dry run only looked up.
    let mut flow_ids: HashMap<String, String> = HashMap::new();
    for flow in plans
        .iter()
        .map(|p| p.flow_name.clone())
        .collect::<BTreeSet<_>>()
    {
        let id = if dry_run {
            client.flow_id(&flow).await?
        } else {
            Some(client.create_flow(&flow).await?)
        };
        if let Some(id) = id {
            flow_ids.insert(flow, id);
        }
    }
    let flow_ids = Arc::new(flow_ids);

    // What the server has for these flows, in one query: deployments are matched by (flow, name) locally.
    let flow_names: Vec<String> = plans
        .iter()
        .map(|p| p.flow_name.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut existing: HashMap<(String, String), Value> = HashMap::new();
    let by_flow_id: HashMap<String, String> = flow_ids
        .iter()
        .map(|(name, id)| (id.clone(), name.clone()))
        .collect();
    for d in client.deployments_of_flows(&flow_names).await? {
        let flow = by_flow_id
            .get(d["flow_id"].as_str().unwrap_or_default())
            .cloned();
        if let (Some(flow), Some(name)) = (flow, d["name"].as_str()) {
            existing.insert((flow, name.to_string()), d.clone());
        }
    }
    let existing = Arc::new(existing);

    let gate = Arc::new(Gate::new(settings.prefect.concurrency.value));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, plan) in plans.iter().cloned().enumerate() {
        let (client, gate, flow_ids, existing) = (
            client.clone(),
            gate.clone(),
            flow_ids.clone(),
            existing.clone(),
        );
        tasks.spawn(async move {
            gate.enter().await;
            let before = client.congestion();
            let found = existing
                .get(&(plan.flow_name.clone(), plan.name.clone()))
                .cloned();
            let outcome = apply(&client, plan, found, &flow_ids, dry_run).await;
            gate.leave(client.congestion() > before);
            (i, outcome)
        });
    }
    let mut outcomes: Vec<Option<Outcome>> = (0..plans.len()).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (i, outcome) =
            done.map_err(|e| Error::Internal(format!("register task panicked: {e}")))?;
        outcomes[i] = Some(outcome);
    }
    let mut outcomes: Vec<Outcome> = outcomes.into_iter().flatten().collect();
    for c in outcomes.iter_mut().flat_map(|o| o.changes.iter_mut()) {
        crate::prefect::redact::redact_pair(&mut c.old, &mut c.new, &sensitive);
    }
    report(&outcomes, dry_run, printer)?;
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.action == "failed").collect();
    if !failed.is_empty() {
        let done: Vec<&str> = outcomes
            .iter()
            .filter(|o| o.action != "failed")
            .map(|o| o.name.as_str())
            .collect();
        return Err(Error::Reported(format!(
            "register: {} of {} deployments failed ({}); registered: {}. Re-running finishes the job",
            failed.len(),
            outcomes.len(),
            failed
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            if done.is_empty() {
                "none".to_string()
            } else {
                done.join(", ")
            }
        )));
    }
    Ok(())
}

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

/// `--all`, or `--name FLOW/DEPLOYMENT` globs; with neither, a file with one deployment means that one.
fn select(plans: Vec<Plan>, args: &RegisterArgs) -> Result<Vec<Plan>, Error> {
    if args.all || (args.names.is_empty() && plans.len() == 1) {
        return Ok(plans);
    }
    if args.names.is_empty() {
        let names: Vec<String> = plans.iter().map(Plan::full_name).collect();
        return Err(Error::Usage {
            message: format!("prefect.yaml has {} deployments; say which", plans.len()),
            hint: Some(format!(
                "pass --all, or --name FLOW/DEPLOYMENT (globs) for any of: {}",
                names.join(", ")
            )),
        });
    }
    let mut out = Vec::new();
    for pattern in &args.names {
        let glob = Glob::new(pattern)
            .map_err(|e| Error::Usage {
                message: format!("--name `{pattern}`: {e}"),
                hint: None,
            })?
            .compile_matcher();
        let hits: Vec<&Plan> = plans
            .iter()
            .filter(|p| glob.is_match(p.full_name()) || glob.is_match(&p.name))
            .collect();
        if hits.is_empty() {
            let names: Vec<String> = plans.iter().map(Plan::full_name).collect();
            return Err(Error::Usage {
                message: format!("--name `{pattern}` matches no deployment"),
                hint: Some(format!("deployments in the file: {}", names.join(", "))),
            });
        }
        for h in hits {
            if !out.iter().any(|p: &Plan| p.full_name() == h.full_name()) {
                out.push(h.clone());
            }
        }
    }
    Ok(out)
}

async fn apply(
    client: &Prefect,
    plan: Plan,
    existing: Option<Value>,
    flow_ids: &HashMap<String, String>,
    dry_run: bool,
) -> Outcome {
    let name = plan.full_name();
    match apply_inner(client, &plan, existing, flow_ids, dry_run).await {
        Ok((id, action, changes)) => Outcome {
            name,
            id,
            action,
            changes,
            error: None,
        },
        Err(e) => {
            let msg = match e.hint() {
                Some(h) => format!("{e} (hint: {h})"),
                None => e.to_string(),
            };
            Outcome {
                name,
                id: None,
                action: "failed",
                changes: Vec::new(),
                error: Some(msg),
            }
        }
    }
}

async fn apply_inner(
    client: &Prefect,
    plan: &Plan,
    existing: Option<Value>,
    flow_ids: &HashMap<String, String>,
    dry_run: bool,
) -> Result<(Option<String>, &'static str, Vec<FieldChange>), PrefectError> {
    let Some(existing) = existing else {
        if dry_run {
            return Ok((None, "created", Vec::new()));
        }
        let mut body = plan.create.clone();
        body.insert("flow_id".into(), json!(flow_ids.get(&plan.flow_name)));
        let id = client.create_deployment(&Value::Object(body)).await?;
        if !plan.triggers.is_empty() {
            client
                .replace_automations(&[], &automations(&plan.triggers, &plan.name, &id))
                .await
                .map_err(|e| partial(&id, "created", e))?;
        }
        return Ok((Some(id), "created", Vec::new()));
    };
    let id = existing["id"].as_str().unwrap_or_default().to_string();
    let update = plan.update_body();
    let mut changes = diff(&existing, &update);
    let wanted = automations(&plan.triggers, &plan.name, &id);
    let have = client.owned_automations(&id).await?;
    // (One GET per existing deployment: automations are not part of the deployment read model.)
    if !same_automations(&have, &wanted) {
        changes.push(FieldChange {
            field: "triggers".into(),
            old: json!(have.len()),
            new: json!(wanted.len()),
        });
    }
    if changes.is_empty() {
        return Ok((Some(id), "unchanged", changes));
    }
    if !dry_run {
        client
            .update_deployment(&id, &Value::Object(update))
            .await?;
        if !same_automations(&have, &wanted) {
            client
                .replace_automations(&have, &wanted)
                .await
                .map_err(|e| partial(&id, "updated", e))?;
        }
    }
    Ok((Some(id), "updated", changes))
}

/// The deployment was written but its triggers were not: say so, with the id, so the report is exact.
fn partial(id: &str, done: &str, e: PrefectError) -> PrefectError {
    PrefectError::Api {
        what: format!("triggers of deployment {id} ({done}; its triggers were not)"),
        status: 0,
        detail: e.to_string(),
    }
}

fn report(outcomes: &[Outcome], dry_run: bool, printer: &Printer) -> Result<(), Error> {
    if printer.is_json() {
        return printer.json(&json!({"prefect": {"deployments": outcomes}, "dry_run": dry_run}));
    }
    let width = outcomes.iter().map(|o| o.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for o in outcomes {
        let action = if dry_run && o.action != "failed" {
            format!("would be {}", o.action)
        } else {
            o.action.to_string()
        };
        out.push_str(&format!(
            "{:<16} {:<width$}  {}\n",
            action,
            o.name,
            o.id.as_deref().unwrap_or("")
        ));
        for c in &o.changes {
            out.push_str(&format!(
                "    {}: {} -> {}\n",
                c.field,
                compact(&c.old),
                compact(&c.new)
            ));
        }
        if let Some(e) = &o.error {
            out.push_str(&format!("    error: {e}\n"));
        }
    }
    printer.data(&out)?;
    let count = |a: &str| outcomes.iter().filter(|o| o.action == a).count();
    printer.info(&format!(
        "{}{} created, {} updated, {} unchanged, {} failed",
        if dry_run { "dry run: " } else { "" },
        count("created"),
        count("updated"),
        count("unchanged"),
        count("failed")
    ));
    Ok(())
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}…",
            &s[..s.char_indices().nth(117).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}
