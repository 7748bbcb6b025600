//! Prefect: `prefect.yaml` (read as PyYAML reads it), Prefect's templating, parameter schemas from flow
//! source, and the REST API (auth, CSRF, deployments). Must not import Python or shell out to `prefect`.

mod client;
pub mod compare;
mod docstring;
pub mod project;
pub mod redact;
mod schedules;
pub mod schema;
pub mod template;
pub mod triggers;
pub mod yaml11;

pub use client::{Auth, Prefect, PrefectError, WorkPool};
