//! The work pools a registration's deployments point at: each must exist (or be created, when asked), a
//! docker pool flowship made keeps a current registry login, a kubernetes pool names the image pull secret.

use super::{PoolPlan, Request, usage};
use crate::error::Error;
use crate::prefect::payload::PullCredentials;
use crate::prefect::{Prefect, PrefectError};
use std::collections::BTreeSet;

/// Each pool the plans name: as it is on the server (with what to refresh), or to be created; a missing pool
/// without `--create-work-pool` is refused (exit 2).
pub(super) async fn plan(
    client: &Prefect,
    plans: &[crate::prefect::project::Plan],
    req: &Request,
    printer: &crate::output::Printer,
) -> Result<Vec<PoolPlan>, Error> {
    let mut pools = Vec::new();
    for pool in plans
        .iter()
        .filter_map(|p| p.work_pool.clone())
        .collect::<BTreeSet<_>>()
    {
        match client.work_pool(&pool).await {
            Ok(info) => pools.push(PoolPlan {
                refresh_block: stale_block(client, &info, req, printer).await?,
                pull_secret: req
                    .pull_secret
                    .clone()
                    .filter(|s| info.kind == "kubernetes" && !info.pull_secrets().contains(s)),
                name: pool,
                exists: true,
                create: None,
                registry_block: None,
                existing: Some(info),
            }),
            Err(PrefectError::WorkPoolMissing { .. }) => match &req.create_work_pool {
                Some(kind) => pools.push(PoolPlan {
                    name: pool,
                    exists: false,
                    create: Some(kind.clone()),
                    registry_block: req
                        .pull_credentials
                        .as_ref()
                        .filter(|_| kind == "docker")
                        .map(PullCredentials::block_name),
                    refresh_block: None,
                    pull_secret: req.pull_secret.clone().filter(|_| kind == "kubernetes"),
                    existing: None,
                }),
                None => {
                    let users: Vec<String> = plans
                        .iter()
                        .filter(|p| p.work_pool.as_deref() == Some(pool.as_str()))
                        .map(|p| p.full_name())
                        .collect();
                    return Err(usage(
                        format!(
                            "work pool `{pool}` does not exist (used by {})",
                            users.join(", ")
                        ),
                        "create it (`prefect work-pool create NAME --type kubernetes`), or pass --create-work-pool TYPE",
                    ));
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(pools)
}

/// The block flowship made for a docker pool's pulls, when it holds another login than `creds` (a rotated
/// secret). A pool without flowship's block is the user's to configure: left alone.
async fn stale_block(
    client: &Prefect,
    pool: &crate::prefect::WorkPool,
    req: &Request,
    printer: &crate::output::Printer,
) -> Result<Option<String>, Error> {
    let Some(c) = req
        .pull_credentials
        .as_ref()
        .filter(|_| pool.kind == "docker")
    else {
        return Ok(None);
    };
    let name = c.block_name();
    let have = client
        .block_data(crate::prefect::REGISTRY_BLOCK_TYPE, &name)
        .await?;
    let Some((data, _)) = have.filter(|(data, _)| *data != c.block_data()) else {
        return Ok(None);
    };
    let holder = data["username"].as_str().unwrap_or_default();
    if holder != c.username && !req.replace_registry_block {
        // Another account's login (a rotated password of the same user is replaced as a matter of course).
        printer.warn(&format!(
            "work pool `{}`: its registry credentials block `{name}` holds the login of `{holder}`, not `{}`; \
             left as it is (--replace-registry-block replaces it)",
            pool.name, c.username
        ));
        return Ok(None);
    }
    Ok(Some(name))
}
