//! Prefect: `prefect.yaml` (read as PyYAML reads it), Prefect's templating, parameter schemas from flow
//! source, and the REST API (auth, CSRF, deployments). Must not import Python or shell out to `prefect`.

mod client;
pub mod compare;
mod docstring;
pub mod payload;
pub mod plan;
pub mod probe;
pub mod project;
pub mod python;
pub mod redact;
mod schedules;
pub mod schema;
pub mod template;
pub mod triggers;
pub mod yaml11;

pub use client::{Auth, Prefect, PrefectError, REGISTRY_BLOCK_TYPE, WorkPool};

/// The Prefect UI page of a deployment, from the API URL: self-hosted `http://host:4200/api` →
/// `http://host:4200/deployments/deployment/ID`; Prefect Cloud
/// `https://api.prefect.cloud/api/accounts/A/workspaces/W` →
/// `https://app.prefect.cloud/account/A/workspace/W/deployments/deployment/ID`.
pub fn ui_url(api_url: &str, id: &str) -> String {
    let api = api_url.trim_end_matches('/');
    if let Some(rest) = api.strip_prefix("https://api.prefect.cloud/api/accounts/")
        && let Some((account, ws)) = rest.split_once("/workspaces/")
    {
        return format!(
            "https://app.prefect.cloud/account/{account}/workspace/{ws}/deployments/deployment/{id}"
        );
    }
    let base = api.strip_suffix("/api").unwrap_or(api);
    format!("{base}/deployments/deployment/{id}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ui_urls() {
        assert_eq!(
            super::ui_url("http://p:4200/api", "x"),
            "http://p:4200/deployments/deployment/x"
        );
        assert_eq!(
            super::ui_url(
                "https://api.prefect.cloud/api/accounts/a1/workspaces/w1",
                "x"
            ),
            "https://app.prefect.cloud/account/a1/workspace/w1/deployments/deployment/x"
        );
    }
}
