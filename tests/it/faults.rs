//! Faults on the wire (issue 8), through the fault proxy in front of the real servers: a git push whose
//! connection drops before the server has it, or after the server applied it but before the answer; a
//! Prefect server answering 503 for a while, or resetting after a create but before its answer. Nothing is
//! lost, nothing doubled, and a rerun completes.

use crate::harness::{flowship, host_of, svc};
use crate::proxy::{self, Fault};
use std::path::Path;
use std::process::Command;

use crate::harness::git;

/// A GitOps repository with one HelmRelease-shaped file, on every git server.
fn seeded() -> (String, std::path::PathBuf) {
    crate::harness::seeded(&[(
        "release.yaml",
        "spec:\n  values:\n    image:\n      repository: harbor.example.com/flows/etl\n      tag: \"1.0.0\"\n".into(),
    )])
}

fn bump_through(proxy: &proxy::FaultProxy, name: &str, tag: &str) -> crate::harness::Outcome {
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .env("FLOWSHIP_GIT_TOKEN", svc("GIT_TOKEN"))
        .args([
            "bump",
            "--repo",
            &format!("http://{}/git/{name}", proxy.addr),
        ])
        .args(["--image", "harbor.example.com/flows/etl", "--tag", tag])
        .run()
}

#[test]
fn a_push_whose_answer_was_lost_is_confirmed_not_repeated() {
    let (name, bare) = seeded();
    let proxy = proxy::start_with(
        &host_of(&svc("GIT_HTTP")),
        Fault::DropOnce("POST ", "git-receive-pack", true),
    );
    bump_through(&proxy, &name, "1.1.0").success();
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"]),
        "2",
        "one commit, neither lost nor doubled"
    );
    assert!(git(&bare, &["show", "main:release.yaml"]).contains("tag: \"1.1.0\""));
    // The receive-pack request did reach the server once (its answer was the one lost).
    let pushes = proxy
        .seen()
        .iter()
        .filter(|s| s.line.contains("git-receive-pack") && s.line.starts_with("POST"))
        .count();
    assert_eq!(pushes, 1, "{:?}", proxy.seen());
    bump_through(&proxy, &name, "1.1.0")
        .success()
        .stderr_has("nothing to change");
}

#[test]
fn a_push_dropped_on_the_way_is_pushed_again() {
    let (name, bare) = seeded();
    let proxy = proxy::start_with(
        &host_of(&svc("GIT_HTTP")),
        Fault::DropOnce("POST ", "git-receive-pack", false),
    );
    bump_through(&proxy, &name, "1.2.0").success();
    assert_eq!(
        git(&bare, &["rev-list", "--count", "main"]),
        "2",
        "one commit, neither lost nor doubled"
    );
    assert!(git(&bare, &["show", "main:release.yaml"]).contains("tag: \"1.2.0\""));
}

/// A project of three deployments of one flow, one of them with a trigger.
fn project(tok: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/f.py"),
        format!("from prefect import flow\n\n@flow(name=\"faults-{tok}\")\ndef f(x: int = 1):\n    pass\n"),
    )
    .unwrap();
    let mut yaml = String::from("deployments:\n");
    for d in ["a", "b", "c"] {
        yaml.push_str(&format!(
            "- name: {d}\n  entrypoint: flows/f.py:f\n  work_pool: {{name: ci-pool}}\n"
        ));
    }
    yaml.push_str("  triggers:\n    - enabled: true\n      match: {prefect.resource.id: s3.bucket.x}\n      expect: [object.created]\n");
    std::fs::write(dir.path().join("prefect.yaml"), yaml).unwrap();
    dir
}

fn register(dir: &Path, api: &str, plain: &str) -> crate::harness::Outcome {
    flowship()
        .env("PREFECT_API_URL", api)
        .env("FLOWSHIP_PLAIN_HTTP", plain)
        .args([
            "register",
            "--all",
            "--file",
            dir.join("prefect.yaml").to_str().unwrap(),
        ])
        .run()
}

fn api(method: &str, path: &str, body: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-s",
            "--retry",
            "10",
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ])
        .arg(format!("{}{path}", svc("PREFECT_PLAIN")))
        .output()
        .unwrap();
    crate::harness::last_json(&out.stdout)
}

/// Exactly the three deployments, once each, and exactly one automation on `c`.
fn assert_once_each(tok: &str) {
    let found = api(
        "POST",
        "/deployments/filter",
        &format!(r#"{{"flows": {{"name": {{"any_": ["faults-{tok}"]}}}}}}"#),
    );
    let mut names: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "no deployment missing or doubled");
    let c = found
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "c")
        .unwrap();
    let autos = api(
        "GET",
        &format!(
            "/automations/related-to/prefect.deployment.{}",
            c["id"].as_str().unwrap()
        ),
        "",
    );
    assert_eq!(
        autos.as_array().map(Vec::len),
        Some(1),
        "one automation, not two: {autos}"
    );
}

#[test]
fn a_busy_prefect_is_ridden_out_without_duplicates() {
    let tok = format!("{:x}", fastrand::u32(..));
    let dir = project(&tok);
    let up = host_of(&svc("PREFECT_PLAIN"));
    let proxy = proxy::start_with(&up, Fault::Storm("POST /api/deployments/ ", 4));
    let api_url = format!("http://{}/api", proxy.addr);
    // A retry is said at the default level (a slow run that is retrying must not look hung).
    register(dir.path(), &api_url, &proxy.addr)
        .success()
        .stderr_has("3 created")
        .stderr_has("answered 503; retrying in");
    assert_once_each(&tok);
    register(dir.path(), &api_url, &proxy.addr)
        .success()
        .stderr_has("3 unchanged");
}

#[test]
fn a_create_whose_answer_was_lost_is_not_made_twice() {
    for what in ["POST /api/deployments/ ", "POST /api/automations/ "] {
        let tok = format!("{:x}", fastrand::u32(..));
        let dir = project(&tok);
        let proxy = proxy::start_with(
            &host_of(&svc("PREFECT_PLAIN")),
            Fault::DropOnce(what, "", true),
        );
        let api_url = format!("http://{}/api", proxy.addr);
        register(dir.path(), &api_url, &proxy.addr).success();
        assert_once_each(&tok);
        register(dir.path(), &api_url, &proxy.addr)
            .success()
            .stderr_has("3 unchanged");
    }
}

#[test]
fn a_storm_longer_than_the_retries_fails_clearly_and_a_rerun_completes() {
    let tok = format!("{:x}", fastrand::u32(..));
    let dir = project(&tok);
    let proxy = proxy::start_with(
        &host_of(&svc("PREFECT_PLAIN")),
        Fault::Storm("POST /api/deployments/ ", 1000),
    );
    let o = flowship()
        .env("PREFECT_API_URL", format!("http://{}/api", proxy.addr))
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .env("FLOWSHIP_HTTP_RETRIES", "1")
        .args([
            "register",
            "--all",
            "--file",
            dir.path().join("prefect.yaml").to_str().unwrap(),
        ])
        .run();
    o.code(1).stderr_has("Re-running finishes the job");
    drop(proxy);
    register(
        dir.path(),
        &svc("PREFECT_PLAIN"),
        &host_of(&svc("PREFECT_PLAIN")),
    )
    .success()
    .stderr_has("3 created");
    assert_once_each(&tok);
}

/// An answer far larger than anything flowship parses (a hostile or broken server) is an error, read no
/// further than the bound: flowship's peak memory stays small (≤ 256 MiB) with a 96 MiB answer.
#[test]
fn an_oversized_answer_is_refused_within_a_memory_bound() {
    let big = {
        let mut b = b"{\"name\": \"".to_vec();
        b.resize(96 << 20, b'x');
        b.extend_from_slice(b"\"}");
        b
    };
    let fake = crate::fake::serve(vec![
        (
            "GET",
            "/api/work_pools/".into(),
            200,
            "application/json",
            big,
        ),
        (
            "GET",
            "/api/csrf-token".into(),
            422,
            "application/json",
            b"{}".to_vec(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("flows")).unwrap();
    std::fs::write(
        dir.path().join("flows/f.py"),
        "from prefect import flow\n\n@flow\ndef f():\n    pass\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prefect.yaml"),
        "deployments:\n- name: d\n  entrypoint: flows/f.py:f\n  work_pool: {name: p}\n",
    )
    .unwrap();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "peak-rss-kib=%M"])
        .arg(env!("CARGO_BIN_EXE_flowship"))
        .args(["register", "--all"])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("PREFECT_API_URL", format!("http://{}/api", fake.addr))
        .env("FLOWSHIP_PLAIN_HTTP", &fake.addr)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("larger than 16 MiB"), "{stderr}");
    let kib: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-rss-kib="))
        .and_then(|v| v.trim().parse().ok())
        .expect("time reports the peak");
    assert!(kib <= 256 * 1024, "peak RSS {kib} KiB");
}
