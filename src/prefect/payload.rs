//! What Prefect is sent for a deployment beyond what prefect.yaml says: the image pin, the environment's work
//! pools (one copy per cluster pool), the registry credentials block of a docker pool, and the fingerprint of
//! a payload. Prefect's rules, kept with Prefect: `ops` decides when they apply, not how.

use super::project::Plan;
use serde_json::{Value, json};

/// A work pool a deployment is registered into, and the cluster it stands for (suffixing the name when an
/// environment has several).
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub cluster: Option<String>,
}

/// What a worker needs to pull from the image's registry.
#[derive(Clone)]
pub struct PullCredentials {
    pub registry: String,
    pub username: String,
    pub password: crate::secret::Secret,
}

impl PullCredentials {
    /// The block document's name: `flowship-registry-<host, lowercase, [a-z0-9-] only>`.
    pub fn block_name(&self) -> String {
        let host: String = self
            .registry
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        format!("flowship-registry-{host}")
    }

    /// prefect-docker's `DockerRegistryCredentials` fields.
    pub fn block_data(&self) -> Value {
        json!({
            "username": self.username,
            "password": self.password.expose(),
            "registry_url": self.registry,
            "reauth": true,
        })
    }
}

/// `job_variables.image` = `pin`, unless the file names an image of another repository there.
pub fn pin_image(p: &mut Plan, pin: &str) {
    let repo_of = |r: &str| {
        crate::registry::Reference::parse(r)
            .ok()
            .map(|r| r.repository_ref())
    };
    let jv = p.create.entry("job_variables").or_insert_with(|| json!({}));
    if !jv.is_object() {
        *jv = json!({});
    }
    let current = jv.get("image").and_then(Value::as_str).map(str::to_string);
    let same = match &current {
        None => true,
        Some(c) => repo_of(c).is_some() && repo_of(c) == repo_of(pin),
    };
    if same {
        jv["image"] = json!(pin);
    }
}

/// The environment's pools instead of the file's: one copy of each deployment per pool, named after its
/// cluster when there are several.
pub fn place(plans: Vec<Plan>, pools: &[Pool]) -> Vec<Plan> {
    if pools.is_empty() {
        return plans;
    }
    let several = pools.len() > 1;
    let mut out = Vec::new();
    for p in plans {
        for pool in pools {
            let mut q = p.clone();
            q.work_pool = Some(pool.name.clone());
            q.create.insert("work_pool_name".into(), json!(pool.name));
            if let (true, Some(c)) = (several, &pool.cluster) {
                q.name = format!("{}-{c}", p.name);
                q.create.insert("name".into(), json!(q.name));
            }
            out.push(q);
        }
    }
    out
}

/// sha256 of what would be sent (the create body and the triggers), salted.
pub fn fingerprint(p: &Plan, salt: &str) -> String {
    let bytes =
        serde_json::to_vec(&json!({"salt": salt, "create": p.create, "triggers": p.triggers}))
            .unwrap_or_default();
    crate::registry::digest::of(&bytes)
}
