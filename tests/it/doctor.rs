//! `flowship doctor` against every variant of the real services: success, wrong password, untrusted CA,
//! service down, each with its message and exit code.

use crate::harness::{Flowship, Outcome, SENTINEL, flowship, svc};
use serde_json::Value;

/// The checks of one service from `doctor --output json`, as `(check, status)` pairs.
fn statuses(doc: &Value, service: &str) -> Vec<(String, String)> {
    let s = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == service)
        .unwrap();
    s["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["check"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn status_of(doc: &Value, service: &str, check: &str) -> String {
    statuses(doc, service)
        .into_iter()
        .find(|(c, _)| c == check)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no {service}.{check}"))
}

fn doctor_json(f: Flowship, code: i32) -> (Value, Outcome) {
    let o = f.args(["doctor", "--output", "json"]).run();
    o.code(code);
    (o.json(), o)
}

fn registry(f: Flowship, host: &str) -> Flowship {
    f.env("FLOWSHIP_IMAGE", format!("{host}/flows/etl"))
}

// ---- registry -------------------------------------------------------------------------------------------

#[test]
fn registry_plain_http_is_green() {
    let host = svc("REGISTRY_PLAIN");
    let (doc, _) = doctor_json(registry(flowship(), &host).args(["--plain-http", &host]), 0);
    assert_eq!(doc["ok"], true);
    assert_eq!(status_of(&doc, "registry", "push"), "ok");
    assert_eq!(status_of(&doc, "registry", "tls"), "warn");
}

#[test]
fn registry_basic_auth_accepts_user_and_robot() {
    let host = svc("REGISTRY_AUTH");
    for (user, pass) in [
        (svc("REGISTRY_USER"), svc("REGISTRY_PASS")),
        (svc("ROBOT_USER"), svc("ROBOT_PASS")),
    ] {
        let f = flowship();
        // Robot names carry `$`: hand them over in a file, as users are told to.
        let user_file = f.file("user", &user);
        let f = registry(f, &host)
            .env("FLOWSHIP_PLAIN_HTTP", &host)
            .env(
                "FLOWSHIP_REGISTRY_USERNAME_FILE",
                user_file.display().to_string(),
            )
            .env("FLOWSHIP_REGISTRY_PASSWORD", &pass);
        let o = f.args(["doctor"]).run();
        o.success()
            .stdout_has(&format!("accepted for `{user}`"))
            .stdout_has("may push to flows/etl");
    }
}

#[test]
fn registry_wrong_password_fails_credentials_with_exit_1() {
    let host = svc("REGISTRY_AUTH");
    let f = registry(flowship(), &host)
        .env("FLOWSHIP_PLAIN_HTTP", &host)
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("REGISTRY_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", SENTINEL);
    let (doc, o) = doctor_json(f, 1);
    assert_eq!(status_of(&doc, "registry", "credentials"), "fail");
    assert_eq!(status_of(&doc, "registry", "push"), "skip");
    o.stdout_has("rejected the credentials of `ciuser`")
        .stderr_has("error: doctor: 1 check failed");
}

#[test]
fn registry_without_credentials_says_which_variables_to_set() {
    let host = svc("REGISTRY_AUTH");
    registry(flowship(), &host)
        .env("FLOWSHIP_PLAIN_HTTP", &host)
        .args(["doctor"])
        .run()
        .code(1)
        .stdout_has("needs credentials")
        .stdout_has("FLOWSHIP_REGISTRY_USERNAME");
}

#[test]
fn registry_tls_with_the_test_ca_is_green() {
    let host = svc("REGISTRY_TLS");
    let (doc, _) = doctor_json(
        registry(flowship(), &host).args(["--ca-file", &svc("CA")]),
        0,
    );
    assert_eq!(status_of(&doc, "registry", "tls"), "ok");
    // The same CA through GitLab's variable.
    let (doc, _) = doctor_json(
        registry(flowship(), &host).env("CI_SERVER_TLS_CA_FILE", svc("CA")),
        0,
    );
    assert_eq!(status_of(&doc, "registry", "tls"), "ok");
}

#[test]
fn registry_untrusted_ca_fails_tls_naming_the_fix() {
    let host = svc("REGISTRY_TLS");
    for f in [
        registry(flowship(), &host),
        registry(flowship(), &host).env("FLOWSHIP_CA_FILE", svc("OTHER_CA")),
    ] {
        let o = f.args(["doctor"]).run();
        o.code(1)
            .stdout_has("is not trusted")
            .stdout_has("hint: trust the server's CA with --ca-file");
    }
}

#[test]
fn plain_http_registry_without_permission_is_not_spoken_to_in_plain() {
    let host = svc("REGISTRY_PLAIN");
    registry(flowship(), &host)
        .args(["doctor"])
        .run()
        .code(1)
        .stdout_has("--plain-http");
}

#[test]
fn registry_down_fails_reachable() {
    let (doc, o) = doctor_json(
        registry(flowship(), "127.0.0.1:9").env("FLOWSHIP_HTTP_RETRIES", "0"),
        1,
    );
    assert_eq!(status_of(&doc, "registry", "reachable"), "fail");
    assert!(o.stdout.contains("cannot connect"), "{o}");
}

// ---- git ------------------------------------------------------------------------------------------------

#[test]
fn git_daemon_is_green() {
    let (doc, _) = doctor_json(
        flowship().env(
            "FLOWSHIP_GITOPS_REPO",
            format!("{}/gitops.git", svc("GIT_DAEMON")),
        ),
        0,
    );
    assert_eq!(status_of(&doc, "gitops", "push"), "ok");
    assert_eq!(status_of(&doc, "gitops", "branch"), "ok");
}

#[test]
fn git_https_with_token_and_ca_is_green() {
    let f = flowship()
        .env(
            "FLOWSHIP_GITOPS_REPO",
            format!("{}/gitops.git", svc("GIT_HTTPS")),
        )
        .env("FLOWSHIP_GIT_TOKEN", svc("GIT_TOKEN"))
        .env("FLOWSHIP_CA_FILE", svc("CA"));
    let (doc, _) = doctor_json(f, 0);
    assert_eq!(status_of(&doc, "gitops", "tls"), "ok");
    assert_eq!(status_of(&doc, "gitops", "credentials"), "ok");
}

#[test]
fn git_wrong_token_fails_once_without_looping() {
    // A path of its own, so the server's log shows this test's requests only (nginx refuses before git looks).
    let repo = format!("doctor-{:x}.git", fastrand::u64(..));
    let f = flowship()
        .env(
            "FLOWSHIP_GITOPS_REPO",
            format!("{}/{repo}", svc("GIT_HTTP")),
        )
        .env("FLOWSHIP_GIT_TOKEN", SENTINEL);
    let (doc, o) = doctor_json(f, 1);
    assert_eq!(status_of(&doc, "gitops", "credentials"), "fail");
    assert!(o.stdout.contains("credentials rejected"), "{o}");
    let with_token = crate::harness::git_http_requests(&repo)
        .into_iter()
        .filter(|(u, _)| u == "oauth2")
        .count();
    assert_eq!(
        with_token, 1,
        "a rejected token must be sent once, not in a loop"
    );
}

#[test]
fn git_https_untrusted_ca_fails_tls() {
    let f = flowship()
        .env(
            "FLOWSHIP_GITOPS_REPO",
            format!("{}/gitops.git", svc("GIT_HTTPS")),
        )
        .env("FLOWSHIP_GIT_TOKEN", svc("GIT_TOKEN"));
    let (doc, o) = doctor_json(f, 1);
    assert_eq!(status_of(&doc, "gitops", "tls"), "fail", "{o}");
}

#[test]
fn git_missing_branch_and_down_server_fail() {
    let f = flowship()
        .env(
            "FLOWSHIP_GITOPS_REPO",
            format!("{}/gitops.git", svc("GIT_DAEMON")),
        )
        .env("FLOWSHIP_GITOPS_BRANCH", "no-such-branch");
    let (doc, _) = doctor_json(f, 1);
    assert_eq!(status_of(&doc, "gitops", "branch"), "fail");
    let (doc, _) = doctor_json(
        flowship()
            .env("FLOWSHIP_GITOPS_REPO", "git://127.0.0.1:9/gitops.git")
            .env("FLOWSHIP_PLAIN_HTTP", "127.0.0.1:9"),
        1,
    );
    assert_eq!(status_of(&doc, "gitops", "reachable"), "fail");
}

// ---- prefect --------------------------------------------------------------------------------------------

#[test]
fn prefect_open_server_is_green_with_version_and_pool() {
    let f = flowship()
        .env("PREFECT_API_URL", svc("PREFECT_PLAIN"))
        .env("FLOWSHIP_WORK_POOL", "ci-pool");
    let (doc, o) = doctor_json(f, 0);
    assert_eq!(status_of(&doc, "prefect", "work_pool"), "ok");
    assert!(o.stdout.contains("Prefect 3.9"), "{o}");
    assert!(o.stdout.contains("protection off"), "{o}");
}

#[test]
fn prefect_basic_auth_with_csrf_is_green() {
    let f = flowship()
        .env("PREFECT_API_URL", svc("PREFECT_AUTH"))
        .env("PREFECT_API_AUTH_STRING", svc("PREFECT_AUTH_STRING"))
        .env("FLOWSHIP_WORK_POOL", "ci-pool");
    let (doc, o) = doctor_json(f, 0);
    assert_eq!(status_of(&doc, "prefect", "csrf"), "ok");
    assert!(o.stdout.contains("protection on"), "{o}");
}

#[test]
fn prefect_wrong_or_missing_auth_fails_credentials() {
    let f = flowship()
        .env("PREFECT_API_URL", svc("PREFECT_AUTH"))
        .env("PREFECT_API_AUTH_STRING", format!("admin:{SENTINEL}"));
    let (doc, o) = doctor_json(f, 1);
    assert_eq!(status_of(&doc, "prefect", "credentials"), "fail");
    assert!(o.stdout.contains("PREFECT_API_AUTH_STRING"), "{o}");
    let (doc, o) = doctor_json(flowship().env("PREFECT_API_URL", svc("PREFECT_AUTH")), 1);
    assert_eq!(status_of(&doc, "prefect", "credentials"), "fail");
    assert!(o.stdout.contains("needs credentials"), "{o}");
}

#[test]
fn prefect_missing_work_pool_and_down_server_fail() {
    let f = flowship()
        .env("PREFECT_API_URL", svc("PREFECT_PLAIN"))
        .env("FLOWSHIP_WORK_POOL", "no-such-pool");
    let (doc, o) = doctor_json(f, 1);
    assert_eq!(status_of(&doc, "prefect", "work_pool"), "fail");
    assert!(
        o.stdout.contains("prefect work-pool create no-such-pool"),
        "{o}"
    );
    let (doc, _) = doctor_json(
        flowship()
            .env("PREFECT_API_URL", "http://127.0.0.1:9/api")
            .env("FLOWSHIP_PLAIN_HTTP", "127.0.0.1:9")
            .env("FLOWSHIP_HTTP_RETRIES", "0"),
        1,
    );
    assert_eq!(status_of(&doc, "prefect", "reachable"), "fail");
}

// ---- all together ---------------------------------------------------------------------------------------

#[test]
fn everything_configured_through_flowship_yaml_is_green() {
    let f = flowship().in_scratch_dir();
    let reg = svc("REGISTRY_TLS");
    f.file(
        "flowship.yaml",
        &format!(
            "image:\n  repository: {reg}/flows/etl\ngitops:\n  repo: {}/gitops.git\nprefect:\n  api_url: {}\n  work_pool: ci-pool\ntls:\n  ca_files: [{}]\n",
            svc("GIT_DAEMON"),
            svc("PREFECT_PLAIN"),
            svc("CA")
        ),
    );
    let o = f.env("GITLAB_CI", "true").args(["doctor"]).run();
    o.success();
    // GitLab collapsible sections frame the narration on stderr, never stdout.
    o.stderr_has("\x1b[0Ksection_start:")
        .stderr_has("\x1b[0Ksection_end:");
    assert!(!o.stdout.contains("section_start"), "{o}");
}

#[test]
fn nothing_configured_skips_everything_and_says_how() {
    flowship()
        .args(["doctor"])
        .run()
        .success()
        .stdout_has("FLOWSHIP_IMAGE")
        .stdout_has("FLOWSHIP_GITOPS_REPO");
}
