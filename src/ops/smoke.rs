//! Smoke runs: after a release registered its deployments, run the ones asked for once (`--smoke
//! flow/name[=PARAMS_JSON]`, `prefect.smoke` per environment), with the pinned image as the run's own job
//! variable, and wait (bounded) for a final state. "The deploy looks green while flows quietly run old code"
//! (Prefect #22428) is answered by a run that is checked to have been handed the pinned digest and to have
//! finished COMPLETED. A failed run fails the release (exit 1) with the run's state message and its Prefect
//! page; with `--rollback-on-failure` the environment is rolled back and held first, in the same job.

use crate::error::Error;
use crate::prefect::Prefect;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// One smoke run's result.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub deployment: String,
    pub flow_run: String,
    /// The final state type (`COMPLETED`, `FAILED`, `CRASHED`, `CANCELLED`), or `TIMEOUT`.
    pub state: String,
    pub message: Option<String>,
    /// The image the run was handed.
    pub image: Option<String>,
    pub url: String,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.state == "COMPLETED"
    }
}

/// `flow/name[=PARAMS_JSON]` → (`flow/name`, parameters).
pub fn parse(spec: &str) -> Result<(String, Value), Error> {
    let (name, params) = match spec.split_once('=') {
        Some((n, p)) => (n.trim(), Some(p)),
        None => (spec.trim(), None),
    };
    let params = match params {
        None => json!({}),
        Some(p) => serde_json::from_str::<Value>(p)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| Error::Usage {
                message: format!("--smoke `{spec}`: the parameters are not a JSON object"),
                hint: Some(r#"write --smoke 'etl/daily={"day": "2026-01-01"}'"#.into()),
            })?,
    };
    if name.is_empty() {
        return Err(Error::Usage {
            message: format!("--smoke `{spec}` names no deployment"),
            hint: Some("write --smoke flow/deployment".into()),
        });
    }
    Ok((name.to_string(), params))
}

/// The registered deployments (`flow/name` with their ids) a smoke spec names: exactly, by deployment name,
/// or every cluster's copy (`name-<cluster>`).
pub fn matches<'a>(want: &str, deployments: &'a [(String, String)]) -> Vec<&'a (String, String)> {
    deployments
        .iter()
        .filter(|(full, _)| {
            let short = full.split_once('/').map(|(_, n)| n).unwrap_or(full);
            full == want
                || short == want
                || want.split_once('/').is_some_and(|(f, n)| {
                    full.starts_with(&format!("{f}/{n}-")) && !short[n.len() + 1..].contains('/')
                })
                || (!want.contains('/') && short.starts_with(&format!("{want}-")))
        })
        .collect()
}

/// Run each deployment once with `image` and wait for it, up to `timeout`.
pub async fn run_all(
    client: &Prefect,
    api_url: &str,
    targets: &[(String, String, Value)],
    image: &str,
    timeout: Duration,
    printer: &crate::output::Printer,
) -> Result<Vec<Run>, Error> {
    let mut started = Vec::new();
    for (name, id, params) in targets {
        let body = json!({"parameters": params, "job_variables": {"image": image}});
        let run = client.create_flow_run(id, &body).await?;
        printer.info(&format!("smoke run of {name}: flow run {run}"));
        started.push((name.clone(), run));
    }
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    for (name, id) in started {
        let url = flow_run_url(api_url, &id);
        let run = loop {
            let run = client.flow_run(&id).await?.unwrap_or_default();
            let state = run["state"]["type"].as_str().unwrap_or("").to_string();
            if ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"].contains(&state.as_str()) {
                break Some(run);
            }
            if Instant::now() >= deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        };
        out.push(match run {
            Some(r) => Run {
                deployment: name,
                flow_run: id,
                state: r["state"]["type"].as_str().unwrap_or("").to_string(),
                message: r["state"]["message"].as_str().map(str::to_string),
                image: r["job_variables"]["image"].as_str().map(str::to_string),
                url,
            },
            None => Run {
                deployment: name,
                flow_run: id,
                state: "TIMEOUT".into(),
                message: Some(format!(
                    "no final state after {} s (is a worker polling the pool?)",
                    timeout.as_secs()
                )),
                image: Some(image.to_string()),
                url,
            },
        });
    }
    Ok(out)
}

/// The Prefect UI page of a flow run.
fn flow_run_url(api_url: &str, id: &str) -> String {
    crate::prefect::ui_url(api_url, id).replace("/deployments/deployment/", "/runs/flow-run/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_matches() {
        assert_eq!(parse("etl/daily").unwrap(), ("etl/daily".into(), json!({})));
        assert_eq!(
            parse(r#"etl/daily={"day": "x"}"#).unwrap().1,
            json!({"day": "x"})
        );
        assert!(parse("etl/daily=[1]").is_err());
        let ds = vec![
            ("etl/daily-cluster-1".to_string(), "1".to_string()),
            ("etl/daily-cluster-2".to_string(), "2".to_string()),
            ("report/weekly".to_string(), "3".to_string()),
        ];
        assert_eq!(matches("etl/daily", &ds).len(), 2);
        assert_eq!(matches("weekly", &ds).len(), 1);
        assert_eq!(matches("report/weekly", &ds).len(), 1);
        assert!(matches("nope", &ds).is_empty());
    }
}
