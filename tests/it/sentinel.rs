//! No secret is ever printed, logged, written to an artifact or committed (issue 8, "the sentinel test
//! extended"): a git token inside the repository URL, the GitLab API token, a registry password going
//! through the token flow, checked in stdout and stderr (also at -vv), the dotenv report, the commit message
//! and JSON output. (Secret blocks and Prefect variables: `register::{sqlite,postgres}::secret_block_and_variable_values_...`.)

use crate::harness::{SENTINEL, flowship, host_of, svc};
use std::process::Command;

use crate::harness::git;

/// A GitOps repository with one HelmRelease-shaped file, on every git server.
fn seeded() -> (String, std::path::PathBuf) {
    crate::harness::seeded(&[(
        "release.yaml",
        "spec:\n  values:\n    image:\n      repository: harbor.example.com/flows/etl\n      tag: \"1.0.0\"\n".into(),
    )])
}

#[test]
fn a_git_token_inside_the_url_works_and_shows_nowhere() {
    let (name, bare) = seeded();
    let token = svc("GIT_TOKEN");
    let https = svc("GIT_HTTPS");
    let url = format!("https://oauth2:{token}@{}/git/{name}", host_of(&https));
    let keep = tempfile::tempdir().unwrap();
    let dotenv = keep.path().join("gitops.env");
    for extra in [&["-vv"][..], &["--output", "json"][..]] {
        let tag = if extra[0] == "-vv" { "1.1.0" } else { "1.2.0" };
        flowship()
            .secret(&token)
            .env("FLOWSHIP_CA_FILE", svc("CA"))
            .env("FLOWSHIP_GITOPS_REPO", &url)
            .args([
                "bump",
                "--image",
                "harbor.example.com/flows/etl",
                "--tag",
                tag,
            ])
            .args(["--dotenv", dotenv.to_str().unwrap()])
            .args(extra)
            .run()
            .success();
    }
    let log = git(&bare, &["log", "--format=%B%n%an%n%ae", "main"]);
    assert!(log.contains("1.2.0"), "the bump did not land: {log}");
    assert!(!log.contains(&token), "the token went into a commit");
    assert!(!std::fs::read_to_string(&dotenv).unwrap().contains(&token));
    // And `settings` shows the URL without it.
    flowship()
        .secret(&token)
        .env("FLOWSHIP_GITOPS_REPO", &url)
        .args(["settings"])
        .run()
        .success()
        .stdout_has(&format!("https://{}/git/{name}", host_of(&https)));
}

#[test]
fn a_wrong_git_token_in_the_url_is_an_error_without_it() {
    let (name, _) = seeded();
    let url = format!(
        "https://oauth2:{SENTINEL}@{}/git/{name}",
        host_of(&svc("GIT_HTTPS"))
    );
    flowship()
        .env("FLOWSHIP_CA_FILE", svc("CA"))
        .env("FLOWSHIP_GITOPS_REPO", &url)
        .args([
            "-vv",
            "bump",
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "2.0.0",
        ])
        .run()
        .code(1)
        .stderr_has("credentials rejected");
}

#[test]
fn the_gitlab_token_shows_nowhere() {
    let (name, _) = seeded();
    let repo = format!("{}/{name}", svc("GIT_DAEMON"));
    let api_token = svc("GITLAB_TOKEN");
    let project = format!("platform/{}", name.trim_end_matches(".git"));
    let doc = flowship()
        .secret(&api_token)
        .env("FLOWSHIP_GITLAB_URL", svc("GITLAB_API"))
        .env("FLOWSHIP_GITLAB_TOKEN", &api_token)
        .env("FLOWSHIP_GITLAB_PROJECT", &project)
        .args([
            "-vv",
            "bump",
            "--merge-request",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
        ])
        .args(["--tag", "1.3.0", "--output", "json"])
        .run()
        .success()
        .json();
    assert!(doc["gitops"]["merge_request"]["url"].is_string());
    // A wrong one (the sentinel) is refused by GitLab, and the error does not repeat it.
    flowship()
        .env("FLOWSHIP_GITLAB_URL", svc("GITLAB_API"))
        .env("FLOWSHIP_GITLAB_TOKEN", SENTINEL)
        .env("FLOWSHIP_GITLAB_PROJECT", &project)
        .args([
            "-vv",
            "bump",
            "--merge-request",
            "--repo",
            &repo,
            "--image",
            "harbor.example.com/flows/etl",
        ])
        .args(["--tag", "1.4.0"])
        .run()
        .code(1);
}

#[test]
fn a_registry_password_in_the_token_flow_shows_nowhere() {
    let reg = svc("REGISTRY_TOKEN");
    let dir = tempfile::tempdir().unwrap();
    let layout = crate::images::umoci_layout(dir.path(), "v1");
    let keep = tempfile::tempdir().unwrap();
    let dotenv = keep.path().join("build.env");
    let pass = svc("ROBOT_PASS");
    flowship()
        .secret(&pass)
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("ROBOT_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", &pass)
        .args([
            "-vv",
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
        ])
        .args([
            "--image",
            &format!("{reg}/flows/sentinel-{:x}", fastrand::u32(..)),
            "--tag",
            "v1",
        ])
        .args(["--dotenv", dotenv.to_str().unwrap(), "--output", "json"])
        .run()
        .success();
    assert!(!std::fs::read_to_string(&dotenv).unwrap().contains(&pass));
    // The sentinel as the password: refused, and not repeated in the error.
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("ROBOT_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", SENTINEL)
        .env("FLOWSHIP_IMAGE", format!("{reg}/flows/etl"))
        .args(["-vv", "doctor"])
        .run()
        .code(1);
}

/// The registry password a docker pool's credentials block is made of: it reaches Prefect's block (its
/// purpose) and nothing else — not the plan (`--dry-run`), the JSON outcome, the narration at -vv.
#[test]
fn a_registry_password_for_the_pools_credentials_block_shows_nowhere() {
    let api = svc("PREFECT_PLAIN");
    let pool = format!("sentinel-pool-{:x}", fastrand::u32(..));
    let digest = format!("sha256:{}", "ab".repeat(32));
    let register = |dry: bool| {
        let f = flowship();
        f.file(
            "flows/etl.py",
            "from prefect import flow\n\n@flow\ndef etl():\n    pass\n",
        );
        f.file(
            "prefect.yaml",
            &format!(
                "name: sentinel\nprefect-version: 3.9.1\ndeployments:\n  - name: daily\n    entrypoint: flows/etl.py:etl\n    work_pool:\n      name: {pool}\n      job_variables:\n        image: x\n"
            ),
        );
        let f = f
            .env("PREFECT_API_URL", &api)
            .env(
                "FLOWSHIP_IMAGE",
                format!("harbor.example.com/flows/etl:1@{digest}"),
            )
            .env("FLOWSHIP_REGISTRY_USERNAME", "robot$ci+pull")
            .env("FLOWSHIP_REGISTRY_PASSWORD", SENTINEL)
            .args(["-vv", "register", "--all", "--create-work-pool", "docker"])
            .args(["--output", "json"])
            .in_scratch_dir();
        if dry { f.args(["--dry-run"]) } else { f }.run()
    };
    register(true).success();
    register(false).success();
    let block: serde_json::Value = serde_json::from_str(&crate::images::run(
        Command::new("curl").arg("-sf").arg(format!(
            "{api}/block_types/slug/docker-registry-credentials/block_documents/name/flowship-registry-harbor-example-com?include_secrets=true"
        )),
    ))
    .unwrap();
    assert_eq!(block["data"]["password"], SENTINEL, "{block}");
}
