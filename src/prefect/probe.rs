//! The Prefect server's health, for `doctor`: what can be checked without side effects.

use super::{Auth, Prefect, PrefectError, WorkPool};
use crate::probe::{Check, Status, check, failed, skip_rest, unreached};

/// The work pool the configuration names, and what it should have.
pub struct PoolWanted {
    pub name: Option<String>,
    /// The type a registration creates it as when it is missing (`prefect.create_work_pool`).
    pub create: Option<String>,
    /// The image pull secret a kubernetes pool must name (`prefect.image_pull_secret`).
    pub pull_secret: Option<String>,
    /// The image's registry needs a login.
    pub private_registry: bool,
}

/// The server `client` talks to: reachable, TLS, credentials (`auth`, what the client sends) accepted, CSRF,
/// the work pool `pool` names, permission to create deployments (self-hosted only), version.
pub async fn checks(client: &Prefect, auth: Option<&Auth>, pool: &PoolWanted) -> Vec<Check> {
    let mut checks = Vec::new();
    let later = ["credentials", "csrf", "work_pool", "deployments", "version"];
    if let Err(e) = client.health().await {
        let transport = match &e {
            PrefectError::Transport { source, .. } => Some(source),
            _ => None,
        };
        return unreached(transport, e.to_string(), e.hint(), &later);
    }
    checks.push(check("reachable", Status::Ok, "GET /health answered"));
    checks.push(if client.base_url().starts_with("https://") {
        check("tls", Status::Ok, "certificate trusted")
    } else {
        check("tls", Status::Warn, "plain HTTP")
    });
    let version = match client.server_version().await {
        Ok(v) => {
            let how = match auth {
                Some(Auth::Basic(_)) => "basic auth accepted",
                Some(Auth::Bearer(_)) => "API key accepted",
                None => "server needs no credentials",
            };
            checks.push(check("credentials", Status::Ok, how));
            v
        }
        Err(e) => {
            checks.push(failed("credentials", &e, e.hint()));
            skip_rest(&mut checks, &later[1..], "credentials not accepted");
            return checks;
        }
    };
    checks.push(match client.csrf_enabled().await {
        Ok(true) => check("csrf", Status::Ok, "protection on; token obtained"),
        Ok(false) => check("csrf", Status::Ok, "protection off"),
        Err(e) => failed("csrf", &e, e.hint()),
    });
    checks.push(match &pool.name {
        None => Check {
            check: "work_pool",
            status: Status::Skip,
            detail: "none configured".into(),
            hint: Some("set --work-pool, FLOWSHIP_WORK_POOL or prefect.work_pool".into()),
            refused: false,
        },
        Some(name) => match client.work_pool(name).await {
            Ok(p) => pool_check(pool, &p),
            // Missing, and the first release or register makes it: what the configuration asks for.
            Err(PrefectError::WorkPoolMissing { .. }) if pool.create.is_some() => check(
                "work_pool",
                Status::Ok,
                format!(
                    "`{name}` does not exist yet; created as type {} by the first registration",
                    pool.create.as_deref().unwrap_or_default()
                ),
            ),
            Err(e) => failed("work_pool", &e, e.hint()),
        },
    });
    checks.push(if client.is_cloud() {
        check(
            "deployments",
            Status::Skip,
            "Prefect Cloud roles cannot be checked without side effects",
        )
    } else {
        check(
            "deployments",
            Status::Ok,
            "self-hosted: every authenticated client may create deployments",
        )
    });
    checks.push(check(
        "version",
        Status::Ok,
        version
            .map(|v| format!("Prefect {v}"))
            .unwrap_or_else(|| "not reported".into()),
    ));
    checks
}

/// An existing pool; a Kubernetes pool pulling from a registry that needs a login, with no image pull secret
/// in its job template, is a warning: its pods could not pull the image a release pins.
fn pool_check(pool: &PoolWanted, p: &WorkPool) -> Check {
    let secrets = p.pull_secrets();
    let wanted = pool.pull_secret.as_ref();
    let missing = match wanted {
        Some(w) => !secrets.contains(w),
        None => pool.private_registry && secrets.is_empty(),
    };
    if p.kind == "kubernetes" && missing {
        return Check {
            check: "work_pool",
            status: Status::Warn,
            detail: format!(
                "`{}` exists (type kubernetes) but names {} image pull secret; its pods cannot pull from a registry that needs a login",
                p.name,
                wanted.map_or("no".to_string(), |w| format!("no `{w}`"))
            ),
            hint: Some(
                "set --image-pull-secret / prefect.image_pull_secret (the next register adds it to the pool's job template)".into(),
            ),
            refused: false,
        };
    }
    let named = match secrets.is_empty() {
        true => String::new(),
        false => format!(", image pull secret(s) {}", secrets.join(", ")),
    };
    check(
        "work_pool",
        Status::Ok,
        format!("`{}` exists (type {}){named}", p.name, p.kind),
    )
}
