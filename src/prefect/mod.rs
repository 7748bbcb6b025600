//! Prefect's REST API: authentication (Cloud API key, self-hosted basic auth, CSRF tokens) and the calls
//! flowship makes. `prefect.yaml`, templating and parameter schemas join this module with `register`.
//! Must not import Python or shell out to `prefect`.

mod client;

pub use client::{Prefect, PrefectError, WorkPool};
