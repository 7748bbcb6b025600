//! Applying a registration plan: missing work pools (when asked) and flows, then the deployments
//! concurrently under adaptive concurrency, each with its automations.

use super::{Action, Deployment, DeploymentOutcome, Outcome, Plan};
use crate::error::Error;
use crate::http::gate::Gate;
use crate::prefect::triggers::{automations, same_automations};
use crate::prefect::{Prefect, PrefectError};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Do what the plan says: pools, flows, then deployments (concurrently, adaptive).
pub async fn apply(plan: &Plan, printer: &crate::output::Printer) -> Result<Outcome, Error> {
    let client = plan.client.clone();
    for p in plan.pools.iter().filter(|p| !p.exists) {
        if let Some(kind) = &p.create {
            printer.info(&format!("creating work pool `{}` (type {kind})", p.name));
            let data = plan.pull_credentials.as_ref().map(|c| c.block_data());
            let pull = p.registry_block.as_deref().zip(data.as_ref());
            if let Some((block, _)) = pull {
                printer.info(&format!(
                    "  its workers pull with the registry credentials block `{block}`"
                ));
            }
            client
                .create_work_pool(&p.name, kind, pull, p.pull_secret.as_deref())
                .await?;
        }
    }
    if let Some(c) = &plan.pull_credentials {
        for (pool, block) in plan
            .pools
            .iter()
            .filter_map(|p| p.refresh_block.as_ref().map(|b| (&p.name, b)))
        {
            printer.info(&format!(
                "updating the registry credentials block `{block}` of work pool `{pool}` (its login changed)"
            ));
            client
                .refresh_registry_block(block, &c.block_data())
                .await?;
        }
    }
    for p in plan.pools.iter().filter(|p| p.exists) {
        if let (Some(secret), Some(pool)) = (&p.pull_secret, &p.existing) {
            printer.info(&format!(
                "adding the image pull secret `{secret}` to work pool `{}`",
                p.name
            ));
            client.add_pull_secret(pool, secret).await?;
        }
    }
    let mut flow_ids = plan.flow_ids.clone();
    for flow in plan
        .deployments
        .iter()
        .filter(|d| d.action != Action::Unchanged)
        .map(|d| d.plan.flow_name.clone())
        .collect::<BTreeSet<_>>()
    {
        if !flow_ids.contains_key(&flow) {
            flow_ids.insert(flow.clone(), client.create_flow(&flow).await?);
        }
    }
    let flow_ids = Arc::new(flow_ids);
    let gate = Arc::new(Gate::new(plan.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, d) in plan.deployments.iter().cloned().enumerate() {
        let (client, gate, flow_ids) = (client.clone(), gate.clone(), flow_ids.clone());
        tasks.spawn(async move {
            gate.enter().await;
            let before = client.congestion();
            let outcome = write(&client, d, &flow_ids).await;
            gate.leave(client.congestion() > before);
            (i, outcome)
        });
    }
    let mut outcomes: Vec<Option<DeploymentOutcome>> =
        (0..plan.deployments.len()).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        let (i, outcome) =
            done.map_err(|e| Error::Internal(format!("register task panicked: {e}")))?;
        outcomes[i] = Some(outcome);
    }
    let mut deployments: Vec<DeploymentOutcome> = outcomes.into_iter().flatten().collect();
    for d in deployments.iter_mut() {
        d.url =
            d.id.as_deref()
                .map(|id| crate::prefect::ui_url(&plan.api_url, id));
    }
    // Pruning only after everything else landed: a failed run deletes nothing.
    if deployments.iter().all(|d| d.action != Action::Failed) {
        for p in &plan.prune {
            printer.info(&format!(
                "deleting `{}`: project `{}` no longer names it (--prune)",
                p.name, p.project
            ));
            let result = client.delete_deployment(&p.id).await;
            deployments.push(pruned(p, result.err().map(|e| e.to_string())));
        }
    }
    Ok(Outcome { deployments })
}

fn pruned(p: &super::Pruned, error: Option<String>) -> DeploymentOutcome {
    DeploymentOutcome {
        name: p.name.clone(),
        id: Some(p.id.clone()),
        action: if error.is_some() {
            Action::Failed
        } else {
            Action::Deleted
        },
        changes: Vec::new(),
        error,
        url: None,
    }
}

/// The plan as an outcome, for a dry run (what would happen, nothing done).
pub fn preview(plan: &Plan) -> Outcome {
    Outcome {
        deployments: plan
            .deployments
            .iter()
            .map(|d| DeploymentOutcome {
                name: d.name.clone(),
                id: d.id.clone(),
                action: d.action,
                changes: d.changes.clone(),
                error: None,
                url: d
                    .id
                    .as_deref()
                    .map(|id| crate::prefect::ui_url(&plan.api_url, id)),
            })
            .chain(plan.prune.iter().map(|p| pruned(p, None)))
            .collect(),
    }
}

async fn write(
    client: &Prefect,
    d: Deployment,
    flow_ids: &HashMap<String, String>,
) -> DeploymentOutcome {
    let result = match d.action {
        Action::Unchanged => Ok(d.id.clone()),
        Action::Created => create(client, &d, flow_ids).await.map(Some),
        _ => update(client, &d).await.map(|_| d.id.clone()),
    };
    match result {
        Ok(id) => DeploymentOutcome {
            name: d.name,
            id,
            action: d.action,
            changes: d.changes,
            error: None,
            url: None,
        },
        Err(e) => DeploymentOutcome {
            name: d.name,
            id: d.id,
            action: Action::Failed,
            changes: Vec::new(),
            error: Some(match e.hint() {
                Some(h) => format!("{e} (hint: {h})"),
                None => e.to_string(),
            }),
            url: None,
        },
    }
}

async fn create(
    client: &Prefect,
    d: &Deployment,
    flow_ids: &HashMap<String, String>,
) -> Result<String, PrefectError> {
    let mut body = d.plan.create.clone();
    body.insert("flow_id".into(), json!(flow_ids.get(&d.plan.flow_name)));
    let id = client.create_deployment(&Value::Object(body)).await?;
    if !d.plan.triggers.is_empty() {
        client
            .replace_automations(&[], &automations(&d.plan.triggers, &d.plan.name, &id))
            .await
            .map_err(|e| partial(&id, "created", e))?;
    }
    Ok(id)
}

async fn update(client: &Prefect, d: &Deployment) -> Result<(), PrefectError> {
    let id = d.id.clone().unwrap_or_default();
    client
        .update_deployment(&id, &Value::Object(d.plan.update_body()))
        .await?;
    let wanted = automations(&d.plan.triggers, &d.plan.name, &id);
    if !same_automations(&d.have_automations, &wanted) {
        client
            .replace_automations(&d.have_automations, &wanted)
            .await
            .map_err(|e| partial(&id, "updated", e))?;
    }
    Ok(())
}

/// The deployment was written but its triggers were not: say so, with the id, so the report is exact.
fn partial(id: &str, done: &str, e: PrefectError) -> PrefectError {
    PrefectError::Api {
        what: format!("triggers of deployment {id} ({done}; its triggers were not)"),
        status: 0,
        detail: e.to_string(),
    }
}
