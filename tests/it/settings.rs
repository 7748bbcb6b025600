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
        setting(&doc, "image")["value"],
        "flag.example.com/flows/etl"
    );
    assert_eq!(setting(&doc, "image")["source"], "flag --image");
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
        "image",
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
            .env("PREFECT_API_URL", "http://127.0.0.1:1/api")
            .env("PREFECT_API_KEY", SENTINEL)
            .env("PREFECT_API_AUTH_STRING", format!("admin:{SENTINEL}"))
            .env("HARBOR_PASSWORD", SENTINEL)
            .env(
                "DOCKER_AUTH_CONFIG",
                format!(r#"{{"auths":{{"127.0.0.1:1":{{"auth":"{auth}"}}}}}}"#),
            )
            .env("CI_JOB_TOKEN", SENTINEL)
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
        setting(&doc, "image")["value"],
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
