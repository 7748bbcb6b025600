//! The seed's runtime with real parts: the example project released onto the Prefect base, Prefect's own
//! docker worker (prefect-docker) pulling the pinned digest through podman's Docker API, and each deployment's
//! flow run COMPLETED in a container of that digest, with the dependency layer imported and the deployment's
//! parameters applied. Once with the plain registry, once with the htpasswd registry, whose credentials reach
//! the worker through the registry credentials block flowship creates with the work pool.

use crate::harness::svc;
use crate::release::{World, git, prefect_get, world_with};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `prefect worker start --type docker` against podman's socket, stopped when dropped.
pub(crate) struct Worker {
    child: Child,
    log: std::path::PathBuf,
    _home: tempfile::TempDir,
}

impl Worker {
    pub(crate) fn start(api: &str, pool: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let log = home.path().join("worker.log");
        let prefect = svc("PREFECT_BIN");
        let child = Command::new(&prefect)
            .args(["worker", "start", "--pool", pool, "--type", "docker"])
            .env_clear()
            .env(
                "PATH",
                Path::new(&prefect).parent().unwrap().display().to_string() + ":/usr/bin:/bin",
            )
            .env("HOME", home.path())
            .env("PREFECT_HOME", home.path().join("prefect"))
            .env("PREFECT_API_URL", api)
            .env("DOCKER_HOST", format!("unix://{}", svc("PODMAN_SOCK")))
            .env("PREFECT_WORKER_QUERY_SECONDS", "1")
            .env("PREFECT_WORKER_PREFETCH_SECONDS", "5")
            .env("DO_NOT_TRACK", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(home.path().join("worker.err")).unwrap())
            .spawn()
            .expect("prefect worker starts");
        Worker {
            child,
            log,
            _home: home,
        }
    }

    pub(crate) fn logs(&self) -> String {
        let err = self.log.with_file_name("worker.err");
        format!(
            "{}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default(),
            std::fs::read_to_string(err).unwrap_or_default()
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST, retried while the server is busy (its SQLite database is shared by every test running at once).
pub(crate) fn post(api: &str, path: &str, body: &Value) -> Value {
    let mut last = String::new();
    for _ in 0..10 {
        let out = Command::new("curl")
            .args([
                "-s",
                "-w",
                "\n%{http_code}",
                "-H",
                "Content-Type: application/json",
                "-d",
            ])
            .arg(body.to_string())
            .arg(format!("{api}{path}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (json, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
        if code.starts_with('2') {
            return serde_json::from_str(json).unwrap();
        }
        last = format!("{code}: {json}");
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("POST {path}: {last}");
}

/// Wait for a terminal state; `(state type, the run)`.
pub(crate) fn wait_for_run(api: &str, id: &str, worker: &Worker) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let run = prefect_get(api, None, &format!("/flow_runs/{id}"));
        let state = run["state"]["type"].as_str().unwrap_or("").to_string();
        if ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"].contains(&state.as_str()) {
            return run;
        }
        assert!(
            Instant::now() < deadline,
            "flow run {id} still {state} after 300 s; the worker said:\n{}",
            worker.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub(crate) fn run_logs(api: &str, id: &str) -> String {
    let logs = post(
        api,
        "/logs/filter",
        &json!({"logs": {"flow_run_id": {"any_": [id]}}, "limit": 200}),
    );
    logs.as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The image digest of the container a flow run ran in (prefect-docker records `<host>:<container id>`;
/// containers are kept, `auto_remove` being off by default).
pub(crate) fn container_image_digest(run: &Value) -> String {
    let pid = run["infrastructure_pid"]
        .as_str()
        .expect("the worker recorded its container");
    let container = pid.rsplit(':').next().unwrap();
    let out = Command::new("podman")
        .args(["inspect", "--format", "{{.ImageDigest}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn release_and_run(w: &World, f: impl Fn(crate::harness::Flowship) -> crate::harness::Flowship) {
    let api = svc("PREFECT_PLAIN");
    let doc = f(w.flowship())
        .args(["release", "--env", "staging", "--output", "json"])
        .run()
        .success()
        .json();
    let digest = doc["image"]["digest"].as_str().unwrap().to_string();
    let pool = format!("staging-{}", w.tok);
    let pool_doc = prefect_get(&api, None, &format!("/work_pools/{pool}"));
    assert_eq!(pool_doc["type"], "docker", "{pool_doc}");
    assert_eq!(
        pool_doc["base_job_template"]["variables"]["properties"]["image_pull_policy"]["default"],
        "Always"
    );
    let worker = Worker::start(&api, &pool);
    let mut runs = Vec::new();
    for (flow, name) in [("etl", "daily"), ("report", "weekly")] {
        let d = w.deployment(&api, None, flow, name);
        let image = d["job_variables"]["image"].as_str().unwrap().to_string();
        assert!(image.ends_with(&format!("@{digest}")), "{image}");
        let run = post(
            &api,
            &format!("/deployments/{}/create_flow_run", d["id"].as_str().unwrap()),
            &json!({}),
        );
        runs.push((name, run["id"].as_str().unwrap().to_string()));
    }
    for (name, id) in runs {
        let run = wait_for_run(&api, &id, &worker);
        // The run's logs reach the API in batches: the last ones may land after its final state.
        let mut logs = run_logs(&api, &id);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !logs.contains("Finished in state") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
            logs = run_logs(&api, &id);
        }
        assert_eq!(
            run["state"]["type"],
            "COMPLETED",
            "{name}: {}\nflow run logs:\n{logs}\nworker:\n{}",
            run["state"],
            worker.logs()
        );
        assert_eq!(
            container_image_digest(&run),
            digest,
            "{name} ran in another image"
        );
        match name {
            "daily" => assert_eq!(run["parameters"]["day"], "2026-01-01"),
            _ => {
                assert!(
                    logs.contains("six 1.16.0 from /opt/flowship/site-packages/six.py"),
                    "{logs}"
                );
                assert!(
                    logs.contains("report over 2 week(s)"),
                    "the deployment's parameters: {logs}"
                );
            }
        }
    }
}

#[test]
fn the_docker_worker_runs_each_released_deployment_in_the_pinned_digest() {
    let w = world_with(&svc("REGISTRY_PLAIN"), &svc("PREFECT_BASE"), "docker", true);
    release_and_run(&w, |f| f);
}

#[test]
fn a_private_registry_reaches_the_worker_through_the_credentials_block() {
    // By the name `localhost`: podman's Docker API logs in to plain-HTTP registries under that name only (a
    // real Harbor speaks TLS and needs no such thing).
    let reg = svc("REGISTRY_AUTH").replace("127.0.0.1", "localhost");
    let w = world_with(&reg, &svc("PREFECT_BASE_AUTH"), "docker", true);
    release_and_run(&w, |f| {
        f.env("FLOWSHIP_PLAIN_HTTP", &reg)
            .env("FLOWSHIP_REGISTRY_USERNAME", svc("REGISTRY_USER"))
            .env("FLOWSHIP_REGISTRY_PASSWORD", svc("REGISTRY_PASS"))
    });
    // The pool's template references the block flowship made, and the block holds the registry's login.
    let api = svc("PREFECT_PLAIN");
    let pool = prefect_get(&api, None, &format!("/work_pools/staging-{}", w.tok));
    let reference =
        &pool["base_job_template"]["variables"]["properties"]["registry_credentials"]["default"];
    let id = reference["$ref"]["block_document_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{pool}"));
    let block = prefect_get(&api, None, &format!("/block_documents/{id}"));
    assert_eq!(block["data"]["username"], svc("REGISTRY_USER"));
    assert_eq!(block["data"]["registry_url"], reg);
    assert_ne!(
        block["data"]["password"],
        svc("REGISTRY_PASS"),
        "shown obfuscated"
    );
    let _ = git(&w.bare, &["log", "-1", "--format=%H", "main"]);
}

/// `release --smoke`: the released deployment runs once on Prefect's docker worker, handed the pinned digest,
/// and must finish COMPLETED; a failing run fails the release, and with `--rollback-on-failure` the
/// environment goes back to the previous release and is held, in the same job.
#[test]
fn a_smoke_run_proves_a_release_and_a_failing_one_rolls_it_back() {
    let w = world_with(&svc("REGISTRY_PLAIN"), &svc("PREFECT_BASE"), "docker", true);
    let api = svc("PREFECT_PLAIN");
    let release = |sha: &str, extra: &[&str]| {
        w.flowship()
            .env("CI_COMMIT_SHORT_SHA", sha)
            .args(["release", "--env", "staging"])
            .args(extra)
            .run()
    };
    release("aaaa1111", &[]).success();
    let worker = Worker::start(&api, &format!("staging-{}", w.tok));
    w.edit_code("v2");
    let good = release("bbbb2222", &["--smoke", "daily", "--smoke-timeout", "240"]);
    good.success().stderr_has("COMPLETED");
    let pinned = w.deployment(&api, None, "etl", "daily")["job_variables"]["image"]
        .as_str()
        .unwrap()
        .to_string();
    w.edit_code("v3");
    // `day` is not a date: the run fails in the flow's own parameter validation.
    let bad = release(
        "cccc3333",
        &[
            "--smoke",
            r#"daily={"day": "not-a-date"}"#,
            "--smoke-timeout",
            "240",
            "--rollback-on-failure",
        ],
    );
    bad.code(1)
        .stderr_has("smoke run failed")
        .stderr_has("rolled back and is held");
    assert_eq!(
        w.deployment(&api, None, "etl", "daily")["job_variables"]["image"],
        pinned.as_str(),
        "back on the release before it; worker:\n{}",
        worker.logs()
    );
    assert!(
        w.file_on_main(".flowship/holds/staging.yaml")
            .contains("smoke run failed")
    );
}
