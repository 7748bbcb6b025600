use crate::harness::{SENTINEL, flowship};
use serde_json::Value;

fn setting<'a>(doc: &'a Value, key: &str) -> &'a Value {
    &doc["settings"][key]
}

#[test]
fn precedence_is_flag_then_env_then_file_then_integration() {
    let f = flowship().in_scratch_dir();
    f.file(
        "flowship.yaml",
        "image:\n  repository: file.example.com/flows/etl\nprefect:\n  api_url: http://file.example.com/api\n  work_pool: from-file\n",
    );
    let o = f
        .env("FLOWSHIP_IMAGE", "env.example.com/flows/etl")
        .env("PREFECT_API_URL", "http://integration.example.com/api")
        .env("FLOWSHIP_WORK_POOL", "from-env")
        .args([
            "settings",
            "--output",
            "json",
            "--image",
            "flag.example.com/flows/etl",
        ])
        .run();
    let doc = o.success().json();
    assert_eq!(
        setting(&doc, "image.repository")["value"],
        "flag.example.com/flows/etl"
    );
    assert_eq!(setting(&doc, "image.repository")["source"], "flag --image");
    assert_eq!(
        setting(&doc, "prefect.api_url")["value"],
        "http://file.example.com/api"
    );
    assert_eq!(
        setting(&doc, "prefect.api_url")["source"],
        "flowship.yaml `prefect.api_url`"
    );
    assert_eq!(
        setting(&doc, "prefect.work_pool")["source"],
        "env FLOWSHIP_WORK_POOL"
    );
    assert_eq!(setting(&doc, "gitops.branch")["source"], "default");
    assert_eq!(setting(&doc, "config")["value"], "flowship.yaml");

    // Without the file, the integration variable is used.
    let o = flowship()
        .env("PREFECT_API_URL", "http://integration.example.com/api")
        .args(["settings", "--output", "json"])
        .run();
    let doc = o.success().json();
    assert_eq!(
        setting(&doc, "prefect.api_url")["source"],
        "env PREFECT_API_URL"
    );
}

#[test]
fn every_setting_is_listed_with_its_source() {
    let doc = flowship()
        .args(["settings", "--output", "json"])
        .run()
        .success()
        .json();
    let map = doc["settings"].as_object().unwrap();
    for key in [
        "config",
        "output",
        "dry_run",
        "tls.ca_files",
        "tls.plain_http",
        "http.retries",
        "http.timeout_secs",
        "image.repository",
        "registry.username",
        "registry.password",
        "gitops.repo",
        "gitops.branch",
        "gitops.username",
        "gitops.token",
        "gitops.ssh_key",
        "prefect.api_url",
        "prefect.api_key",
        "prefect.auth_string",
        "prefect.work_pool",
        "gitlab.url",
        "gitlab.token",
    ] {
        let e = map
            .get(key)
            .unwrap_or_else(|| panic!("settings lacks {key}"));
        if !e["value"].is_null() {
            assert!(
                e["source"].is_string(),
                "{key} has a value but no source: {e}"
            );
        }
    }
    assert_eq!(map["http.retries"]["source"], "default");
    assert_eq!(map["http.retries"]["value"], 5);
}

#[test]
fn file_variants_read_values_from_files() {
    let f = flowship();
    let user = f.file("robot-user", "robot$flows+ci\n");
    let pass = f.file("robot-pass", &format!("{SENTINEL}\n"));
    let o = f
        .env("FLOWSHIP_IMAGE", "harbor.example.com/flows/etl")
        .env(
            "FLOWSHIP_REGISTRY_USERNAME_FILE",
            user.display().to_string(),
        )
        .env(
            "FLOWSHIP_REGISTRY_PASSWORD_FILE",
            pass.display().to_string(),
        )
        .args(["settings", "--output", "json"])
        .run();
    let doc = o.success().json();
    assert_eq!(
        setting(&doc, "registry.username")["value"],
        "robot$flows+ci"
    );
    assert!(
        setting(&doc, "registry.username")["source"]
            .as_str()
            .unwrap()
            .starts_with("env FLOWSHIP_REGISTRY_USERNAME_FILE (")
    );
    assert_eq!(setting(&doc, "registry.password")["value"], "<redacted>");
}

#[test]
fn a_sentinel_in_every_secret_variable_appears_in_no_output() {
    let f = flowship();
    let token_file = f.file("tok", SENTINEL);
    let auth = base64_auth(&format!("u:{SENTINEL}"));
    let run = |args: &[&str]| {
        flowship()
            .env("FLOWSHIP_IMAGE", "127.0.0.1:1/flows/etl")
            .env("FLOWSHIP_REGISTRY_USERNAME", "ci")
            .env("FLOWSHIP_REGISTRY_PASSWORD", SENTINEL)
            .env(
                "FLOWSHIP_GITOPS_REPO",
                format!("https://oauth2:{SENTINEL}@127.0.0.1:1/g/gitops.git"),
            )
            .env("FLOWSHIP_GIT_TOKEN_FILE", token_file.display().to_string())
            .env("FLOWSHIP_GIT_SSH_KEY", SENTINEL)
            .env("FLOWSHIP_GITLAB_TOKEN", SENTINEL)
            .env("FLOWSHIP_PLAN_KEY", SENTINEL)
            .env("FLOWSHIP_SIGN_KEY", SENTINEL)
            .env("FLOWSHIP_SIGN_PASSWORD", SENTINEL)
            .env("COSIGN_PASSWORD", SENTINEL)
            .env("PREFECT_API_URL", "http://127.0.0.1:1/api")
            .env("PREFECT_API_KEY", SENTINEL)
            .env("PREFECT_API_AUTH_STRING", format!("admin:{SENTINEL}"))
            .env("HARBOR_PASSWORD", SENTINEL)
            .env(
                "DOCKER_AUTH_CONFIG",
                format!(r#"{{"auths":{{"127.0.0.1:1":{{"auth":"{auth}"}}}}}}"#),
            )
            .env("CI_JOB_TOKEN", SENTINEL)
            .env("FLOWSHIP_PLAIN_HTTP", "127.0.0.1:1")
            .env("FLOWSHIP_HTTP_RETRIES", "0")
            .args(args)
            .run()
    };
    // The harness fails any run whose stdout or stderr contains the sentinel.
    run(&["settings"]).success();
    run(&["settings", "--output", "json"]).success();
    run(&["doctor", "-vv"]).code(1);
    run(&["doctor", "--output", "json", "-vv"]).code(1);
}

fn base64_auth(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn unknown_key_is_an_error_with_file_line_and_did_you_mean() {
    let f = flowship().in_scratch_dir();
    f.file(
        "flowship.yaml",
        "gitops:\n  repo: https://g.example.com/x.git\n  brnch: main\n",
    );
    let o = f.args(["settings"]).run();
    o.code(2)
        .stderr_has("flowship.yaml:3")
        .stderr_has("brnch")
        .stderr_has("hint: did you mean `branch`?");
}

#[test]
fn secrets_in_the_config_file_are_refused() {
    let f = flowship().in_scratch_dir();
    f.file(
        "flowship.yaml",
        &format!("registry:\n  username: ci\n  password: {SENTINEL}\n"),
    );
    f.args(["settings"])
        .run()
        .code(2)
        .stderr_has("FLOWSHIP_REGISTRY_PASSWORD");
}

#[test]
fn explicit_config_must_exist() {
    flowship()
        .args(["settings", "--config", "nope.yaml"])
        .run()
        .code(2)
        .stderr_has("nope.yaml");
}

#[test]
fn image_repository_in_the_file_may_not_carry_a_tag() {
    let f = flowship().in_scratch_dir();
    f.file(
        "flowship.yaml",
        "image:\n  repository: harbor.example.com/flows/etl:1.0\n",
    );
    f.args(["settings"])
        .run()
        .code(2)
        .stderr_has("flowship.yaml `image.repository`")
        .stderr_has("hint: give `harbor.example.com/flows/etl`");
    // From a variable, a full reference is the dotenv handoff of a build job.
    let doc = flowship()
        .env("FLOWSHIP_IMAGE", "harbor.example.com/flows/etl:1.0")
        .args(["settings", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(
        setting(&doc, "image.repository")["value"],
        "harbor.example.com/flows/etl:1.0"
    );
}

#[test]
fn missing_ca_file_and_bad_plain_http_are_usage_errors() {
    flowship()
        .args(["settings", "--ca-file", "/no/such/ca.pem"])
        .run()
        .code(2)
        .stderr_has("/no/such/ca.pem");
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", "localhost")
        .args(["settings"])
        .run()
        .code(2)
        .stderr_has("HOST:PORT");
}

#[test]
fn docker_config_credentials_are_found() {
    let f = flowship();
    let auth = base64_auth(&format!("robot$flows+ci:{SENTINEL}"));
    f.file(
        "docker/config.json",
        &format!(r#"{{"auths":{{"https://harbor.example.com":{{"auth":"{auth}"}}}}}}"#),
    );
    let dir = f.scratch().join("docker");
    let doc = f
        .env("DOCKER_CONFIG", dir.display().to_string())
        .env("FLOWSHIP_IMAGE", "harbor.example.com/flows/etl")
        .args(["settings", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(
        setting(&doc, "registry.username")["value"],
        "robot$flows+ci"
    );
    assert!(
        setting(&doc, "registry.username")["source"]
            .as_str()
            .unwrap()
            .contains("config.json auths[https://harbor.example.com]")
    );
}

#[test]
fn human_settings_show_sources() {
    flowship()
        .env("FLOWSHIP_GITOPS_BRANCH", "prod")
        .args(["settings"])
        .run()
        .success()
        .stdout_has("gitops.branch")
        .stdout_has("prod  (env FLOWSHIP_GITOPS_BRANCH)");
}

/// Every variable flowship reads works as `NAME_FILE` too (issue 8, item 10): the value and its source.
#[test]
fn every_variable_can_be_given_as_a_file() {
    let cases: &[(&str, &str, &str, serde_json::Value)] = &[
        (
            "FLOWSHIP_IMAGE",
            "image.repository",
            "h.example.com/f/etl",
            "h.example.com/f/etl".into(),
        ),
        (
            "FLOWSHIP_BASE_IMAGE",
            "image.base",
            "python:3.12",
            "python:3.12".into(),
        ),
        ("FLOWSHIP_CONTEXT", "image.context", "src", "src".into()),
        (
            "FLOWSHIP_WORKSPACE",
            "image.workspace",
            "mono",
            "mono".into(),
        ),
        (
            "FLOWSHIP_PLATFORMS",
            "image.platforms",
            "linux/arm64",
            serde_json::json!(["linux/arm64"]),
        ),
        (
            "FLOWSHIP_PYTHON_VERSION",
            "image.python_version",
            "3.12",
            "3.12".into(),
        ),
        ("FLOWSHIP_WORKDIR", "image.workdir", "/app", "/app".into()),
        (
            "FLOWSHIP_SCAN_GATE",
            "harbor.scan_gate",
            "high",
            "high".into(),
        ),
        (
            "FLOWSHIP_SCAN_TIMEOUT",
            "harbor.scan_timeout_secs",
            "60",
            60.into(),
        ),
        (
            "FLOWSHIP_CREATE_PROJECT",
            "harbor.create_project",
            "true",
            true.into(),
        ),
        (
            "FLOWSHIP_CHUNK_SIZE",
            "upload.chunk_size",
            "8MiB",
            8388608.into(),
        ),
        ("FLOWSHIP_PARALLEL", "upload.parallel", "2", 2.into()),
        (
            "FLOWSHIP_MERGE_REQUEST",
            "gitops.merge_request",
            "true",
            true.into(),
        ),
        (
            "FLOWSHIP_MONOTONIC",
            "gitops.monotonic",
            "semver",
            "semver".into(),
        ),
        (
            "FLOWSHIP_GITOPS_PIN",
            "gitops.pin",
            "always",
            "always".into(),
        ),
        (
            "FLOWSHIP_GITOPS_MARKERS",
            "gitops.markers",
            "only",
            "only".into(),
        ),
        (
            "FLOWSHIP_MAX_ATTEMPTS",
            "gitops.max_attempts",
            "3",
            3.into(),
        ),
        (
            "FLOWSHIP_GITOPS_BRANCH",
            "gitops.branch",
            "prod",
            "prod".into(),
        ),
        (
            "FLOWSHIP_GITOPS_PATHS",
            "gitops.paths",
            "apps/**",
            serde_json::json!(["apps/**"]),
        ),
        (
            "FLOWSHIP_COMMIT_MESSAGE",
            "gitops.commit_message",
            "bump {tag}",
            "bump {tag}".into(),
        ),
        ("FLOWSHIP_DRY_RUN", "dry_run", "true", true.into()),
        (
            "FLOWSHIP_WORK_POOL",
            "prefect.work_pool",
            "k8s",
            "k8s".into(),
        ),
        (
            "FLOWSHIP_PREFECT_CONCURRENCY",
            "prefect.concurrency",
            "2",
            2.into(),
        ),
        (
            "FLOWSHIP_CREATE_WORK_POOL",
            "prefect.create_work_pool",
            "docker",
            "docker".into(),
        ),
        (
            "FLOWSHIP_GITLAB_PROJECT",
            "gitlab.project",
            "g/p",
            "g/p".into(),
        ),
        ("FLOWSHIP_HTTP_RETRIES", "http.retries", "2", 2.into()),
    ];
    for (var, key, value, shown) in cases {
        let f = flowship();
        let path = f.file(&format!("{var}.txt"), &format!("{value}\n"));
        let doc = f
            .env(&format!("{var}_FILE"), path.display().to_string())
            .args(["settings", "--output", "json"])
            .run()
            .success()
            .json();
        let e = setting(&doc, key);
        assert_eq!(&e["value"], shown, "{var}_FILE → {key}: {e}");
        assert!(
            e["source"]
                .as_str()
                .unwrap()
                .starts_with(&format!("env {var}_FILE (")),
            "{var}_FILE → {key}: {e}"
        );
    }
    // The output format and the environment, too.
    let f = flowship().in_scratch_dir();
    f.file("flowship.yaml", "environments:\n  prod: {}\n");
    let out = f.file("out.txt", "json\n");
    let env = f.file("env.txt", "prod\n");
    let doc = f
        .env("FLOWSHIP_OUTPUT_FILE", out.display().to_string())
        .env("FLOWSHIP_ENV_FILE", env.display().to_string())
        .args(["settings"])
        .run()
        .success()
        .json();
    assert_eq!(setting(&doc, "environment")["value"], "prod");
}

/// Every key an environment may set takes effect for that environment, and `settings` says where it came
/// from (issue 8, item 2).
#[test]
fn every_environment_key_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("flowship.yaml");
    std::fs::write(
        &cfg,
        "image:\n  repository: h.example.com/flows/etl\ngitops:\n  repo: https://g.example.com/gitops.git\n  \
         environments:\n    legacy:\n      branch: legacy-branch\n      targets: ['a.yaml:x.y']\n\
         environments:\n  prod:\n    image: {repository: h.example.com/prod/etl}\n    gitops:\n      \
         repo: https://g.example.com/prod.git\n      branch: prod\n      paths: ['clusters/**']\n      \
         monotonic: numeric\n      merge_request: true\n    prefect:\n      api_url: https://prefect-prod.example.com/api\n      \
         work_pool: prod-pool\n      auth_string_variable: PROD_PREFECT_AUTH\n    harbor: {scan_gate: critical}\n    \
         clusters:\n      c1: {targets: ['clusters/c1/etl.yaml:spec.values.image.tag'], work_pool: c1-pool}\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let doc = flowship()
        .env("PROD_PREFECT_AUTH", format!("admin:{SENTINEL}"))
        .args([
            "settings", "--config", &cfg, "--env", "prod", "--output", "json",
        ])
        .run()
        .success()
        .json();
    for (key, value) in [
        ("image.repository", "h.example.com/prod/etl"),
        ("gitops.repo", "https://g.example.com/prod.git"),
        ("gitops.branch", "prod"),
        ("gitops.monotonic", "numeric"),
        ("prefect.api_url", "https://prefect-prod.example.com/api"),
        ("prefect.work_pool", "prod-pool"),
        ("harbor.scan_gate", "critical"),
        ("clusters.c1.work_pool", "c1-pool"),
    ] {
        assert_eq!(setting(&doc, key)["value"], value, "{key}");
    }
    assert_eq!(setting(&doc, "gitops.merge_request")["value"], true);
    assert!(
        setting(&doc, "gitops.branch")["source"]
            .as_str()
            .unwrap()
            .ends_with("flowship.yaml `environments.prod.gitops.branch`")
    );
    assert_eq!(
        setting(&doc, "prefect.auth_string")["source"],
        "env PROD_PREFECT_AUTH"
    );
    assert_eq!(
        setting(&doc, "gitops.targets")["value"],
        serde_json::json!(["clusters/c1/etl.yaml:spec.values.image.tag"])
    );
    // The older place, gitops.environments.E, still works.
    let doc = flowship_settings_in(&cfg, &["--env", "legacy"]);
    assert_eq!(setting(&doc, "gitops.branch")["value"], "legacy-branch");
    assert!(
        setting(&doc, "gitops.branch")["source"]
            .as_str()
            .unwrap()
            .ends_with("flowship.yaml `gitops.environments.legacy.branch`")
    );
    // Without an environment, the top level.
    let doc = flowship_settings_in(&cfg, &[]);
    assert_eq!(setting(&doc, "gitops.branch")["value"], "main");
    assert_eq!(
        setting(&doc, "image.repository")["value"],
        "h.example.com/flows/etl"
    );
}

fn flowship_settings_in(cfg: &str, extra: &[&str]) -> Value {
    let mut args = vec!["settings", "--output", "json", "--config", cfg];
    args.extend(extra);
    flowship().args(args).run().success().json()
}

#[test]
fn a_commit_timestamp_that_does_not_parse_is_an_error() {
    flowship()
        .env("CI_COMMIT_TIMESTAMP", "yesterday")
        .args(["settings"])
        .run()
        .code(2)
        .stderr_has("CI_COMMIT_TIMESTAMP")
        .stderr_has("ISO 8601");
    let doc = flowship()
        .env("CI_COMMIT_TIMESTAMP", "2024-06-27T10:20:30+02:00")
        .args(["settings", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(setting(&doc, "source_date")["value"], 1719476430);
}

#[test]
fn settings_show_build_upload_and_other_registries() {
    let doc = flowship()
        .env("FLOWSHIP_IMAGE", "h.example.com/flows/etl")
        .env("FLOWSHIP_BASE_IMAGE", "base.example.com/python:3.12")
        .env(
            "DOCKER_AUTH_CONFIG",
            r#"{"auths":{"base.example.com":{"username":"puller","password":"pw-1234"}}}"#,
        )
        .args(["settings", "--output", "json"])
        .run()
        .success()
        .json();
    for key in [
        "image.base",
        "image.context",
        "image.platforms",
        "upload.chunk_size",
        "harbor.scan_gate",
        "source_date",
    ] {
        assert!(doc["settings"].get(key).is_some(), "settings lacks {key}");
    }
    assert_eq!(
        setting(&doc, "registry.base.example.com.username")["value"],
        "puller"
    );
    assert_eq!(
        setting(&doc, "registry.base.example.com.password")["value"],
        "<redacted>"
    );
}

/// Credentials inside URLs: from a variable they become a secret and leave the URL (shown, logged, saved in
/// plans without them); in the committed flowship.yaml they are exit 2.
#[test]
fn credentials_in_urls_are_secrets_from_variables_and_refused_in_the_file() {
    let o = flowship()
        .env(
            "PREFECT_API_URL",
            format!("http://admin:{SENTINEL}@prefect.example.com:4200/api"),
        )
        .args(["settings", "--output", "json"])
        .run();
    let doc = o.success().json();
    assert_eq!(
        setting(&doc, "prefect.api_url")["value"],
        "http://prefect.example.com:4200/api"
    );
    assert!(
        setting(&doc, "prefect.auth_string")["value"].is_string(),
        "the URL's credentials are the basic auth string: {doc}"
    );
    for (key, yaml) in [
        (
            "prefect.api_url",
            "prefect:\n  api_url: http://admin:s3cret@prefect.example.com/api\n",
        ),
        (
            "gitops.repo",
            "gitops:\n  repo: https://oauth2:glpat-s3cret@gitlab.example.com/g/r.git\n",
        ),
    ] {
        let f = flowship().in_scratch_dir();
        f.file("flowship.yaml", yaml);
        let o = f.args(["settings"]).run();
        o.code(2).stderr_has("in a file that is committed");
        assert!(!o.stderr.contains("s3cret"), "{key}: {o}");
    }
}

/// Environment and cluster names become paths and trailers: `../../x` is exit 2 naming the line.
#[test]
fn environment_and_cluster_names_are_plain_names() {
    for yaml in [
        "environments:\n  ../../x:\n    prefect: {work_pool: p}\n",
        "environments:\n  prod:\n    clusters:\n      ../evil: {work_pool: p}\n",
    ] {
        let f = flowship().in_scratch_dir();
        f.file("flowship.yaml", yaml);
        f.args(["settings"])
            .run()
            .code(2)
            .stderr_has("is not a plain name");
    }
}

/// A malformed `DOCKER_AUTH_CONFIG` is an error that does not echo what it holds.
#[test]
fn a_malformed_docker_auth_config_does_not_echo_its_secret() {
    flowship()
        .env("FLOWSHIP_IMAGE", "h.example.com/f/etl")
        .env(
            "DOCKER_AUTH_CONFIG",
            format!("{{\"auths\": \"{SENTINEL}\"}}"),
        )
        .args(["settings"])
        .run()
        .code(2)
        .stderr_has("is not a Docker auth config");
}

/// A GitLab job deployed to one environment does not lend its secrets to another: `--env dev` from the
/// staging job gets only what dev's `*_variable` keys name (issue 16, item 7). Outside such a job (a
/// laptop, or a job without an environment of the file) the defaults apply.
#[test]
fn a_jobs_secrets_stay_with_its_environment() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("flowship.yaml");
    std::fs::write(
        &cfg,
        "environments:\n  staging: {}\n  dev: {}\n  prod:\n    prefect: {auth_string_variable: PROD_AUTH}\n",
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let run = |env: &str, job: Option<&str>| {
        let mut f = flowship()
            .env("GITLAB_CI", "true")
            .env("PREFECT_API_AUTH_STRING", format!("admin:{SENTINEL}"))
            .env("FLOWSHIP_GIT_TOKEN", SENTINEL)
            .env("PROD_AUTH", format!("prod:{SENTINEL}"));
        if let Some(j) = job {
            f = f.env("CI_ENVIRONMENT_NAME", j);
        }
        f.args([
            "settings", "--output", "json", "--config", &cfg, "--env", env,
        ])
        .run()
        .success()
        .json()
    };
    let doc = run("staging", Some("staging"));
    assert_eq!(
        setting(&doc, "prefect.auth_string")["source"],
        "env PREFECT_API_AUTH_STRING"
    );
    let doc = run("dev", Some("staging"));
    assert!(
        setting(&doc, "prefect.auth_string")["value"].is_null(),
        "{doc}"
    );
    assert!(setting(&doc, "gitops.token")["value"].is_null(), "{doc}");
    let doc = run("prod", Some("staging"));
    assert_eq!(
        setting(&doc, "prefect.auth_string")["source"],
        "env PROD_AUTH"
    );
    // A job whose GitLab environment is not one of the file's, or no job environment at all.
    let doc = run("dev", Some("production"));
    assert_eq!(
        setting(&doc, "prefect.auth_string")["source"],
        "env PREFECT_API_AUTH_STRING"
    );
    let doc = run("dev", None);
    assert!(!setting(&doc, "prefect.auth_string")["value"].is_null());
}
