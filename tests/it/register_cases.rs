// The register tests, included once per Prefect database (see register.rs): `OPEN` names the open server.

use crate::harness::{SENTINEL, flowship, svc};
use crate::proxy;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A copy of fixtures/parity whose flow names carry `token`, so tests sharing a server never collide.
fn parity_project(token: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/parity");
    copy_dir(&src, dir.path());
    let etl = dir.path().join("flows/etl.py");
    let text = std::fs::read_to_string(&etl).unwrap();
    let text = text
        .replace(
            "@flow(name=\"etl\")",
            &format!("@flow(name=\"etl-{token}\")"),
        )
        .replace(
            "@flow\ndef report_builder",
            &format!("@flow(name=\"report-{token}\")\ndef report_builder"),
        );
    std::fs::write(&etl, text).unwrap();
    let m = dir.path().join("flows/maintenance.py");
    let text = std::fs::read_to_string(&m).unwrap().replace(
        "@flow\ndef vacuum",
        &format!("@flow(name=\"vacuum-{token}\")\ndef vacuum"),
    );
    std::fs::write(&m, text).unwrap();
    dir
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

fn token() -> String {
    format!("{:x}", fastrand::u64(..))
}

fn api(url: &str, auth: Option<&str>, method: &str, path: &str, body: Option<&str>) -> Value {
    let mut cmd = Command::new("curl");
    // SQLite answers 503 while other tests write: curl retries those (the tests check results, not timing).
    cmd.args([
        "-s",
        "--retry",
        "10",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(a) = auth {
        cmd.args(["-u", a]);
    }
    if let Some(b) = body {
        cmd.args(["-d", b]);
    }
    let out = cmd.arg(format!("{url}{path}")).output().unwrap();
    crate::harness::last_json(&out.stdout)
}

fn deployment(url: &str, auth: Option<&str>, flow: &str, name: &str) -> Value {
    api(
        url,
        auth,
        "GET",
        &format!("/deployments/name/{flow}/{name}"),
        None,
    )
}

/// A deployment as read back, without what differs between any two registrations (ids, timestamps).
fn comparable(mut d: Value) -> Value {
    let m = d.as_object_mut().unwrap();
    for k in [
        "id",
        "created",
        "updated",
        "flow_id",
        "labels",
        "work_queue_id",
        "last_polled",
        "status",
        "created_by",
        "updated_by",
    ] {
        m.remove(k);
    }
    if let Some(g) = m
        .get_mut("global_concurrency_limit")
        .and_then(Value::as_object_mut)
    {
        for k in ["id", "name", "created", "updated"] {
            g.remove(k);
        }
    }
    if let Some(s) = m.get_mut("schedules").and_then(Value::as_array_mut) {
        for sch in s {
            let o = sch.as_object_mut().unwrap();
            for k in ["id", "created", "updated", "deployment_id"] {
                o.remove(k);
            }
        }
    }
    d
}

fn parity_env(f: crate::harness::Flowship) -> crate::harness::Flowship {
    f.env("PARITY_ENV", "ci")
        .env("CI_COMMIT_SHORT_SHA", "0123abcd")
}

#[test]
fn parity_with_prefect_deploy_field_by_field() {
    let tok = token();
    let project = parity_project(&tok);
    // Prefect's own CLI into the open server (its Docker steps replaced by a stand-in: no daemon here).
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(svc("PREFECT_BIN"))
        .args(["--no-prompt", "deploy", "--all"])
        .current_dir(project.path())
        .env("PREFECT_API_URL", svc(OPEN))
        .env("PREFECT_HOME", home.path())
        .env("PYTHONPATH", project.path().join("fake_steps"))
        .env("PARITY_ENV", "ci")
        .env("CI_COMMIT_SHORT_SHA", "0123abcd")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prefect deploy failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // flowship into the server with basic auth and CSRF.
    let auth = svc("PREFECT_AUTH_STRING");
    let o = parity_env(flowship())
        .env("PREFECT_API_URL", svc("PREFECT_AUTH"))
        .env("PREFECT_API_AUTH_STRING", &auth)
        .env(
            "FLOWSHIP_IMAGE",
            "registry.example.com/flows/parity:0123abcd",
        )
        .args([
            "register",
            "--all",
            "--file",
            project.path().join("prefect.yaml").to_str().unwrap(),
            "--output",
            "json",
        ])
        .run();
    let doc = o.success().json();
    let deps = doc["prefect"]["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 4);
    assert!(
        deps.iter()
            .all(|d| d["action"] == "created" && d["id"].is_string()),
        "{doc}"
    );
    for (flow, name) in [
        (format!("etl-{tok}"), "daily"),
        (format!("etl-{tok}"), "hourly-delta"),
        (format!("report-{tok}"), "weekly-report"),
        (format!("vacuum-{tok}"), "vacuum"),
    ] {
        let theirs = comparable(deployment(&svc(OPEN), None, &flow, name));
        let ours = comparable(deployment(&svc("PREFECT_AUTH"), Some(&auth), &flow, name));
        assert!(theirs.is_object() && theirs["name"] == name, "{theirs}");
        assert_eq!(
            ours, theirs,
            "{flow}/{name} differs between flowship and prefect deploy"
        );
    }
    // And flowship reads Prefect's own registration as already done.
    let o = parity_env(flowship())
        .env("PREFECT_API_URL", svc(OPEN))
        .env(
            "FLOWSHIP_IMAGE",
            "registry.example.com/flows/parity:0123abcd",
        )
        .args([
            "register",
            "--all",
            "--dry-run",
            "--file",
            project.path().join("prefect.yaml").to_str().unwrap(),
        ])
        .run();
    o.success()
        .stderr_has("0 created, 0 updated, 4 unchanged, 0 failed");
}

fn register(project: &Path, extra: &[&str]) -> crate::harness::Outcome {
    parity_env(flowship())
        .env("PREFECT_API_URL", svc(OPEN))
        .env(
            "FLOWSHIP_IMAGE",
            "registry.example.com/flows/parity:0123abcd",
        )
        .args([
            "register",
            "--file",
            project.join("prefect.yaml").to_str().unwrap(),
        ])
        .args(extra)
        .run()
}

#[test]
fn rerun_is_unchanged_and_an_edited_schedule_updates_in_place() {
    let tok = token();
    let project = parity_project(&tok);
    register(project.path(), &["--all"])
        .success()
        .stderr_has("4 created");
    register(project.path(), &["--all"])
        .success()
        .stderr_has("0 created, 0 updated, 4 unchanged");
    let before = deployment(&svc(OPEN), None, &format!("etl-{tok}"), "daily");
    let file = project.path().join("prefect.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("cron: \"0 3 * * *\"", "cron: \"30 4 * * *\"");
    std::fs::write(&file, text).unwrap();
    let o = register(project.path(), &["--all", "--dry-run"]);
    o.success()
        .stdout_has("would be updated")
        .stdout_has("schedules:")
        .stdout_has("30 4 * * *");
    register(project.path(), &["--all"])
        .success()
        .stderr_has("1 updated, 3 unchanged");
    let after = deployment(&svc(OPEN), None, &format!("etl-{tok}"), "daily");
    assert_eq!(after["id"], before["id"], "an update keeps the deployment");
    assert_eq!(after["schedules"][0]["schedule"]["cron"], "30 4 * * *");
}

#[test]
fn selection_by_name_glob() {
    let tok = token();
    let project = parity_project(&tok);
    let doc = register(
        project.path(),
        &["--name", &format!("etl-{tok}/*"), "--output", "json"],
    )
    .success()
    .json();
    let names: Vec<&str> = doc["prefect"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("etl-{tok}/daily"),
            format!("etl-{tok}/hourly-delta")
        ]
    );
    register(project.path(), &[])
        .code(2)
        .stderr_has("say which")
        .stderr_has("--all");
    register(project.path(), &["--name", "nope/*"])
        .code(2)
        .stderr_has("matches no deployment");
}

#[test]
fn wrong_or_missing_credentials_fail_with_exit_1() {
    let project = parity_project(&token());
    let file = project.path().join("prefect.yaml");
    for auth in [Some(format!("admin:{SENTINEL}")), None] {
        let mut f = parity_env(flowship())
            .env("PREFECT_API_URL", svc("PREFECT_AUTH"))
            .env("FLOWSHIP_IMAGE", "registry.example.com/flows/parity:1");
        if let Some(a) = &auth {
            f = f.env("PREFECT_API_AUTH_STRING", a);
        }
        f.args(["register", "--all", "--file", file.to_str().unwrap()])
            .run()
            .code(1)
            .stderr_has("PREFECT_API_AUTH_STRING");
    }
}

/// The parity project with its deployments in work pool `pool`, and its prefect.yaml.
fn project_in_pool(tok: &str, pool: &str) -> (tempfile::TempDir, PathBuf) {
    let project = parity_project(tok);
    let file = project.path().join("prefect.yaml");
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("name: ci-pool", &format!("name: {pool}")),
    )
    .unwrap();
    (project, file)
}

#[test]
fn missing_work_pool_is_an_error_unless_created() {
    let tok = token();
    let pool = format!("pool-{tok}");
    let (project, file) = project_in_pool(&tok, &pool);
    register(project.path(), &["--all"])
        .code(2)
        .stderr_has(&format!("work pool `{pool}` does not exist"))
        .stderr_has("--create-work-pool");
    register(project.path(), &["--all", "--create-work-pool", "process"]).success();
    let p = api(
        &svc(OPEN),
        None,
        "GET",
        &format!("/work_pools/{pool}"),
        None,
    );
    assert_eq!(p["type"], "process");
    assert!(
        p["base_job_template"]["job_configuration"].is_object(),
        "pool lacks the default template: {p}"
    );
    // The seed's pools: docker and kubernetes, with their workers' default templates, pulling on every run.
    for kind in ["docker", "kubernetes"] {
        let named = format!("{kind}-{tok}");
        let text = std::fs::read_to_string(&file).unwrap();
        let last = text.lines().find(|l| l.contains("name: ") && l.contains(&tok)).unwrap();
        let current = last.trim().trim_start_matches("name: ").to_string();
        std::fs::write(&file, text.replace(&current, &named)).unwrap();
        register(project.path(), &["--all", "--create-work-pool", kind]).success();
        let p = api(&svc(OPEN), None, "GET", &format!("/work_pools/{named}"), None);
        assert_eq!(p["type"], kind);
        let vars = &p["base_job_template"]["variables"]["properties"];
        assert_eq!(vars["image_pull_policy"]["default"], "Always", "{kind}: {p}");
        assert!(vars["image"].is_object(), "{kind} pool lacks its worker's template: {p}");
    }
}

#[test]
fn steps_flowship_cannot_run_are_named_and_can_be_skipped() {
    let project = parity_project(&token());
    let file = project.path().join("prefect.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace(
        "build:\n",
        "build:\n  - prefect.deployments.steps.run_shell_script:\n      script: make wheel\n",
    );
    std::fs::write(&file, text).unwrap();
    register(project.path(), &["--all"])
        .code(2)
        .stderr_has("`prefect.deployments.steps.run_shell_script` runs Python")
        .stderr_has("--skip-step");
    register(
        project.path(),
        &[
            "--all",
            "--skip-step",
            "prefect.deployments.steps.run_shell_script",
        ],
    )
    .success();
    // Without an image, the Docker build step cannot be satisfied.
    parity_env(flowship())
        .env("PREFECT_API_URL", svc(OPEN))
        .args([
            "register",
            "--all",
            "--skip-step",
            "prefect.deployments.steps.run_shell_script",
            "--file",
            file.to_str().unwrap(),
        ])
        .run()
        .code(2)
        .stderr_has("needs the image")
        .stderr_has("--image");
}

#[test]
fn image_is_pinned_by_digest_and_variables_and_blocks_resolve() {
    let tok = token();
    let url = svc(OPEN);
    api(
        &url,
        None,
        "POST",
        "/variables/",
        Some(&format!(
            r#"{{"name": "queue_{tok}", "value": "fast-lane"}}"#
        )),
    );
    let secret_type = api(&url, None, "GET", "/block_types/slug/secret", None);
    let schemas = api(
        &url,
        None,
        "POST",
        "/block_schemas/filter",
        Some(&format!(
            r#"{{"block_schemas": {{"block_type_id": {{"any_": ["{}"]}}}}}}"#,
            secret_type["id"].as_str().unwrap()
        )),
    );
    let body = format!(
        r#"{{"name": "tok-{tok}", "block_type_id": "{}", "block_schema_id": "{}", "data": {{"value": "{SENTINEL}"}}}}"#,
        secret_type["id"].as_str().unwrap(),
        schemas[0]["id"].as_str().unwrap()
    );
    api(&url, None, "POST", "/block_documents/", Some(&body));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(dir.path().join("flows/f.py"), format!("from prefect import flow\n\n@flow(name=\"templ-{tok}\")\ndef f(token: str = \"\"):\n    pass\n")).unwrap();
    std::fs::write(
        dir.path().join("prefect.yaml"),
        format!(
            "build:\n- prefect_docker.deployments.steps.build_docker_image:\n    id: build-image\n    image_name: h.example.com/f/x\n    tag: latest\npull:\n- prefect.deployments.steps.git_clone:\n    repository: https://example.com/x.git\n    access_token: '{{{{ prefect.blocks.secret.tok-{tok} }}}}'\ndeployments:\n- name: d\n  entrypoint: flows/f.py:f\n  parameters:\n    token: '{{{{ prefect.blocks.secret.tok-{tok} }}}}'\n  work_pool:\n    name: ci-pool\n    work_queue_name: '{{{{ prefect.variables.queue_{tok} }}}}'\n    job_variables:\n      image: '{{{{ build-image.image }}}}'\n      note: 'built {{{{ build-image.tag }}}} from {{{{ $CI_COMMIT_SHORT_SHA }}}}'\n"
        ),
    )
    .unwrap();
    let digest = format!("sha256:{}", "a".repeat(64));
    flowship()
        .env("PREFECT_API_URL", &url)
        .env("CI_COMMIT_SHORT_SHA", "0123abcd")
        .env("FLOWSHIP_IMAGE", format!("h.example.com/f/x:1.2@{digest}"))
        .args([
            "register",
            "--file",
            dir.path().join("prefect.yaml").to_str().unwrap(),
        ])
        .run()
        .success();
    let d = deployment(&url, None, &format!("templ-{tok}"), "d");
    assert_eq!(
        d["job_variables"]["image"],
        format!("h.example.com/f/x:1.2@{digest}")
    );
    assert_eq!(d["job_variables"]["note"], "built 1.2 from 0123abcd");
    assert_eq!(d["work_queue_name"], "fast-lane");
    assert_eq!(
        d["parameters"]["token"], SENTINEL,
        "blocks resolve into the deployment, as prefect deploy does"
    );
    assert_eq!(
        d["pull_steps"][0]["prefect.deployments.steps.git_clone"]["access_token"],
        format!("{{{{ prefect.blocks.secret.tok-{tok} }}}}"),
        "pull steps keep block references for the worker"
    );
}

#[test]
fn server_stopped_mid_run_names_what_was_registered_and_a_rerun_completes() {
    let tok = token();
    let project = parity_project(&tok);
    let upstream = svc(OPEN)
        .trim_start_matches("http://")
        .trim_end_matches("/api")
        .to_string();
    // The server "stops" right after the first deployment is written (busy answers before that are retried
    // as usual, so the point of failure does not depend on load).
    let proxy = proxy::start_with(
        &upstream,
        proxy::Fault::StopAfterSuccess("POST /api/deployments/ ", 1),
    );
    let o = parity_env(flowship())
        .env("PREFECT_API_URL", format!("http://{}/api", proxy.addr))
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .env(
            "FLOWSHIP_IMAGE",
            "registry.example.com/flows/parity:0123abcd",
        )
        .env("FLOWSHIP_HTTP_RETRIES", "2")
        .args([
            "register",
            "--all",
            "--concurrency",
            "1",
            "--file",
            project.path().join("prefect.yaml").to_str().unwrap(),
        ])
        .run();
    o.code(1)
        .stderr_has("deployments failed")
        .stderr_has("registered: ")
        .stderr_has("Re-running finishes the job");
    assert!(
        o.stdout.contains("created") && o.stdout.contains("failed"),
        "some but not all were registered:\n{o}"
    );
    drop(proxy);
    register(project.path(), &["--all"])
        .success()
        .stderr_has("0 failed");
    for (flow, name) in [
        (format!("etl-{tok}"), "daily"),
        (format!("vacuum-{tok}"), "vacuum"),
    ] {
        assert_eq!(
            deployment(&svc(OPEN), None, &flow, name)["name"],
            name
        );
    }
}

#[test]
fn schema_expectations_are_what_prefect_computes_today() {
    let python = PathBuf::from(svc("PREFECT_BIN")).with_file_name("python");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(python)
        .arg(root.join("ci/prefect-schemas.py"))
        .arg(root.join("fixtures/schema/corpus.py"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh: Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("fixtures/schema/expected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        fresh, committed,
        "fixtures/schema/expected.json is stale: regenerate it with ci/prefect-schemas.py"
    );
}

#[test]
fn triggers_become_automations_owned_by_the_deployment() {
    let tok = token();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/f.py"),
        format!(
            "from prefect import flow\n\n@flow(name=\"trig-{tok}\")\ndef f(x: int = 1):\n    pass\n"
        ),
    )
    .unwrap();
    let yaml = "deployments:\n- name: on-upload\n  entrypoint: flows/f.py:f\n  work_pool: {name: ci-pool}\n  triggers:\n    - enabled: true\n      match: {prefect.resource.id: s3.bucket.uploads}\n      expect: [object.created]\n      parameters: {x: 2}\n";
    std::fs::write(dir.path().join("prefect.yaml"), yaml).unwrap();
    let run = || {
        flowship()
            .env("PREFECT_API_URL", svc(OPEN))
            .args([
                "register",
                "--file",
                dir.path().join("prefect.yaml").to_str().unwrap(),
            ])
            .run()
    };
    run().success().stderr_has("1 created");
    run().success().stderr_has("1 unchanged");
    let id = deployment(
        &svc(OPEN),
        None,
        &format!("trig-{tok}"),
        "on-upload",
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let autos = api(
        &svc(OPEN),
        None,
        "GET",
        &format!("/automations/related-to/prefect.deployment.{id}"),
        None,
    );
    let a = &autos[0];
    assert_eq!(a["name"], "on-upload__automation_1");
    assert_eq!(a["trigger"]["posture"], "Reactive");
    assert_eq!(a["actions"][0]["type"], "run-deployment");
    assert_eq!(a["actions"][0]["deployment_id"], id);
    assert_eq!(a["actions"][0]["parameters"], serde_json::json!({"x": 2}));
    let first_id = a["id"].clone();
    // Editing a trigger's job variables, delay or description is a change that applies (issue 8, item 9),
    // and the deployment ends with exactly the new automation (created first, the stale one deleted after).
    std::fs::write(
        dir.path().join("prefect.yaml"),
        yaml.replace(
            "      parameters: {x: 2}\n",
            "      parameters: {x: 2}\n      job_variables: {image: h.example.com/f/x:2}\n      schedule_after: 60\n      description: on every upload\n",
        ),
    )
    .unwrap();
    run().success().stderr_has("1 updated");
    run().success().stderr_has("1 unchanged");
    let autos = api(
        &svc(OPEN),
        None,
        "GET",
        &format!("/automations/related-to/prefect.deployment.{id}"),
        None,
    );
    assert_eq!(autos.as_array().unwrap().len(), 1, "{autos}");
    let a = &autos[0];
    assert_ne!(a["id"], first_id);
    assert_eq!(a["description"], "on every upload");
    assert_eq!(
        a["actions"][0]["job_variables"],
        serde_json::json!({"image": "h.example.com/f/x:2"})
    );
    assert_eq!(a["actions"][0]["schedule_after"], 60.0);
    // A malformed trigger is bad input: nothing is written.
    std::fs::write(
        dir.path().join("prefect.yaml"),
        yaml.replace(
            "    - enabled: true",
            "    - type: cron\n      enabled: true",
        ),
    )
    .unwrap();
    run()
        .code(2)
        .stderr_has("trigger 1 is not a mapping of type event");
}

/// A Secret block with a value (`PATCH` changes it between runs).
fn secret_block(url: &str, name: &str, value: &str) -> String {
    let secret_type = api(url, None, "GET", "/block_types/slug/secret", None);
    let schemas = api(
        url,
        None,
        "POST",
        "/block_schemas/filter",
        Some(&format!(
            r#"{{"block_schemas": {{"block_type_id": {{"any_": ["{}"]}}}}}}"#,
            secret_type["id"].as_str().unwrap()
        )),
    );
    let body = format!(
        r#"{{"name": "{name}", "block_type_id": "{}", "block_schema_id": "{}", "data": {{"value": "{value}"}}}}"#,
        secret_type["id"].as_str().unwrap(),
        schemas[0]["id"].as_str().unwrap()
    );
    api(url, None, "POST", "/block_documents/", Some(&body))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Values from secret blocks and from Prefect variables appear in no output: not in a dry run's diff, not in
/// `--output json`'s changes, not after the block's value changed (issue 8, item 3).
#[test]
fn secret_block_and_variable_values_never_reach_the_job_log() {
    let tok = token();
    let url = svc(OPEN);
    let block = secret_block(&url, &format!("api-{tok}"), &format!("{SENTINEL}-one"));
    api(
        &url,
        None,
        "POST",
        "/variables/",
        Some(&format!(
            r#"{{"name": "dsn_{tok}", "value": "{SENTINEL}-dsn"}}"#
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/f.py"),
        format!("from prefect import flow\n\n@flow(name=\"sec-{tok}\")\ndef f():\n    pass\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prefect.yaml"),
        format!(
            "deployments:\n- name: d\n  entrypoint: flows/f.py:f\n  work_pool:\n    name: ci-pool\n    job_variables:\n      env:\n        API_TOKEN: '{{{{ prefect.blocks.secret.api-{tok} }}}}'\n        DSN: 'postgres://{{{{ prefect.variables.dsn_{tok} }}}}/db'\n        LEVEL: info\n"
        ),
    )
    .unwrap();
    let file = dir.path().join("prefect.yaml").display().to_string();
    let run = |extra: &[&str]| {
        flowship()
            .env("PREFECT_API_URL", &url)
            .args(["register", "--file", &file])
            .args(extra)
            .run()
    };
    run(&[]).success();
    let d = deployment(&url, None, &format!("sec-{tok}"), "d");
    assert_eq!(
        d["job_variables"]["env"]["API_TOKEN"],
        format!("{SENTINEL}-one")
    );
    // The block's value changes: the next plan differs in that field, and says so without either value.
    api(
        &url,
        None,
        "PATCH",
        &format!("/block_documents/{block}"),
        Some(&format!(
            r#"{{"data": {{"value": "{SENTINEL}-two"}}, "merge_existing_data": false}}"#
        )),
    );
    let o = run(&["--dry-run"]);
    o.success()
        .stdout_has("<redacted>")
        .stdout_has("would be updated");
    let doc = run(&["--dry-run", "--output", "json"]).success().json();
    let change = &doc["prefect"]["deployments"][0]["changes"][0];
    assert_eq!(change["field"], "job_variables", "{doc}");
    assert_eq!(change["old"]["env"]["API_TOKEN"], "<redacted>");
    assert_eq!(change["new"]["env"]["API_TOKEN"], "<redacted>");
    assert_eq!(change["new"]["env"]["DSN"], "<redacted>");
    assert_eq!(change["new"]["env"]["LEVEL"], "info");
    run(&["--output", "json"]).success();
    assert_eq!(
        deployment(&url, None, &format!("sec-{tok}"), "d")["job_variables"]["env"]["API_TOKEN"],
        format!("{SENTINEL}-two")
    );
}

/// A docker pool's workers pull with flowship's registry credentials block. When the robot's secret is
/// rotated, the next registration updates the block and says so (the plan first, under --dry-run); one
/// after that finds it current. No password is printed on the way.
#[test]
fn a_rotated_registry_login_updates_the_pools_credentials_block() {
    let tok = token();
    let pool = format!("docker-rot-{tok}");
    let (_project, file) = project_in_pool(&tok, &pool);
    let host = format!("reg-{tok}.example.com");
    let run = |password: &str, extra: &[&str]| {
        parity_env(flowship())
            .secret(password)
            .env("PREFECT_API_URL", svc(OPEN))
            .env("FLOWSHIP_IMAGE", format!("{host}/flows/parity:0123abcd"))
            .env("FLOWSHIP_REGISTRY_USERNAME", "robot$flows+pull")
            .env("FLOWSHIP_REGISTRY_PASSWORD", password)
            .args(["register", "--all", "--create-work-pool", "docker"])
            .args(["--file", file.to_str().unwrap()])
            .args(extra)
            .run()
    };
    let stored = || {
        let name = format!("flowship-registry-{}", host.replace('.', "-"));
        api(
            &svc(OPEN),
            None,
            "GET",
            &format!(
                "/block_types/slug/docker-registry-credentials/block_documents/name/{name}?include_secrets=true"
            ),
            None,
        )["data"]["password"]
            .clone()
    };
    let (first, rotated) = (format!("first-{tok}"), format!("rotated-{tok}"));
    run(&first, &[]).success();
    assert_eq!(stored(), first.as_str());
    run(&rotated, &["--dry-run"])
        .success()
        .stderr_has("would update the registry credentials block");
    assert_eq!(stored(), first.as_str(), "a dry run wrote the block");
    run(&rotated, &[])
        .success()
        .stderr_has(&format!("of work pool `{pool}` (its login changed)"));
    assert_eq!(stored(), rotated.as_str());
    let again = run(&rotated, &[]);
    again.success();
    assert!(!again.stderr.contains("updating the registry"), "{again}");
}

/// A personal `docker login` never becomes a pool's pull login, and a block that holds another user's login
/// is replaced only when asked (`--replace-registry-block`).
#[test]
fn a_pools_registry_block_takes_only_a_pull_login_and_keeps_another_users() {
    let tok = token();
    let host = format!("reg-{tok}.example.com");
    let stored = || {
        let name = format!("flowship-registry-{}", host.replace('.', "-"));
        api(
            &svc(OPEN),
            None,
            "GET",
            &format!(
                "/block_types/slug/docker-registry-credentials/block_documents/name/{name}?include_secrets=true"
            ),
            None,
        )["data"]
            .clone()
    };
    let base = |file: &std::path::Path| {
        parity_env(flowship())
            .env("PREFECT_API_URL", svc(OPEN))
            .env("FLOWSHIP_IMAGE", format!("{host}/flows/parity:0123abcd"))
            .args(["register", "--all", "--create-work-pool", "docker"])
            .args(["--file", file.to_str().unwrap()])
    };
    let personal = format!("personal-{tok}");
    let docker_auth =
        format!(r#"{{"auths":{{"{host}":{{"username":"me","password":"{personal}"}}}}}}"#);
    // A laptop's docker login: a pool created with it gets no registry block.
    let (_a, laptop) = project_in_pool(&tok, &format!("docker-laptop-{tok}"));
    base(&laptop)
        .secret(&personal)
        .env("DOCKER_AUTH_CONFIG", &docker_auth)
        .run()
        .success();
    assert!(stored().is_null(), "a docker login filled a pool's block");
    // The pipeline's pull robot creates the block with the pool.
    let (_b, file) = project_in_pool(&tok, &format!("docker-own-{tok}"));
    let login = |user: &str, password: &str, extra: &[&str]| {
        base(&file)
            .secret(password)
            .env("FLOWSHIP_REGISTRY_USERNAME", user)
            .env("FLOWSHIP_REGISTRY_PASSWORD", password)
            .args(extra)
            .run()
    };
    let pull = format!("pull-{tok}");
    login("robot$flows+pull", &pull, &[]).success();
    assert_eq!(stored()["username"], "robot$flows+pull");
    // The hotfix path: a docker login leaves the pool's block alone.
    base(&file)
        .secret(&personal)
        .env("DOCKER_AUTH_CONFIG", &docker_auth)
        .run()
        .success();
    assert_eq!(stored()["password"], pull.as_str());
    // Another user's login: kept, and said so; replaced only when asked.
    let other = format!("other-{tok}");
    login("someone", &other, &[])
        .success()
        .stderr_has("holds the login of `robot$flows+pull`")
        .stderr_has("--replace-registry-block");
    assert_eq!(stored()["username"], "robot$flows+pull");
    login("someone", &other, &["--replace-registry-block"]).success();
    assert_eq!(stored()["username"], "someone");
}

/// A value that came from the environment through `{{ $VAR }}` is redacted in a diff on both sides: when it
/// is rotated, neither the new token nor the old one (which flowship never knew was secret) is printed.
#[test]
fn a_rotated_environment_secret_is_redacted_on_both_sides() {
    let tok = token();
    let url = svc(OPEN);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/f.py"),
        format!("from prefect import flow\n\n@flow(name=\"envsec-{tok}\")\ndef f():\n    pass\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prefect.yaml"),
        "deployments:\n- name: d\n  entrypoint: flows/f.py:f\n  work_pool:\n    name: ci-pool\n    job_variables:\n      env:\n        API_TOKEN: '{{ $ENV_API_TOKEN }}'\n        LEVEL: info\n",
    )
    .unwrap();
    let file = dir.path().join("prefect.yaml").display().to_string();
    let (old, new) = (format!("old-token-{tok}"), format!("new-token-{tok}"));
    let run = |token: &str, extra: &[&str]| {
        flowship()
            .secret(&old)
            .secret(&new)
            .env("PREFECT_API_URL", &url)
            .env("ENV_API_TOKEN", token)
            .args(["register", "--file", &file])
            .args(extra)
            .run()
    };
    run(&old, &[]).success();
    let doc = run(&new, &["--dry-run", "--output", "json"]).success().json();
    let change = &doc["prefect"]["deployments"][0]["changes"][0];
    assert_eq!(change["old"]["env"]["API_TOKEN"], "<redacted>", "{doc}");
    assert_eq!(change["new"]["env"]["API_TOKEN"], "<redacted>");
    assert_eq!(change["new"]["env"]["LEVEL"], "info");
    run(&new, &["--dry-run"]).success().stdout_has("<redacted>");
}
