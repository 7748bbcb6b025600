//! The real distribution registry in token mode (Harbor's and Docker Hub's flow: a `Bearer` challenge and
//! JWTs from a token service, ci/standins/token.py), with a robot account that may push under `flows/` only.

use crate::harness::{Flowship, SENTINEL, flowship, svc};
use serde_json::Value;
use std::process::Command;

fn robot(f: Flowship) -> Flowship {
    let user = f.file("robot-user", &svc("ROBOT_USER"));
    f.env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_TOKEN"))
        .env(
            "FLOWSHIP_REGISTRY_USERNAME_FILE",
            user.display().to_string(),
        )
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
}

/// An OCI layout with one image of random content (a new digest each time), as `push --from` takes it.
fn layout(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    format!(
        "oci-layout:{}:v1",
        crate::images::umoci_layout(dir, "v1").display()
    )
}

fn check(doc: &Value, name: &str) -> String {
    let checks = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "registry")
        .unwrap()["checks"]
        .as_array()
        .unwrap()
        .clone();
    checks
        .iter()
        .find(|c| c["check"] == name)
        .map(|c| {
            format!(
                "{} {}",
                c["status"].as_str().unwrap(),
                c["detail"].as_str().unwrap()
            )
        })
        .unwrap()
}

#[test]
fn doctor_reads_push_permission_from_the_token() {
    let reg = svc("REGISTRY_TOKEN");
    let doc = robot(flowship())
        .env("FLOWSHIP_IMAGE", format!("{reg}/flows/etl"))
        .args(["doctor", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(check(&doc, "push"), "ok token grants push to flows/etl");
    let o = robot(flowship())
        .env("FLOWSHIP_IMAGE", format!("{reg}/other/etl"))
        .args(["doctor", "--output", "json"])
        .run();
    o.code(1);
    assert!(check(&o.json(), "push").starts_with("fail registry"), "{o}");
}

#[test]
fn push_and_mount_across_repositories_with_scoped_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let reg = svc("REGISTRY_TOKEN");
    let tok = format!("{:x}", fastrand::u32(..));
    let src = format!("{reg}/flows/src-{tok}");
    let doc = robot(flowship())
        .args([
            "push",
            "--from",
            &layout(dir.path()),
            "--image",
            &src,
            "--tag",
            "v1",
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(doc["push"]["blobs_uploaded"], 2);
    // A mount needs a token naming both repositories (pull on the source): 2 blobs mounted, none uploaded.
    let doc = robot(flowship())
        .args([
            "promote",
            &format!("{src}:v1"),
            &format!("{reg}/flows/dst-{tok}:v1"),
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(doc["push"]["blobs_mounted"], 2, "{doc}");
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{}:{}", svc("REGISTRY_USER"), svc("REGISTRY_PASS")),
        ])
        .arg(format!("docker://{reg}/flows/dst-{tok}:v1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Outside its prefix the robot may pull but not push.
    robot(flowship())
        .args([
            "push",
            "--from",
            &layout(&dir.path().join("b")),
            "--image",
            &format!("{reg}/other/x-{tok}"),
            "--tag",
            "v1",
        ])
        .run()
        .code(1)
        .stderr_has("denies");
}

#[test]
fn wrong_password_against_the_token_service() {
    let dir = tempfile::tempdir().unwrap();
    let reg = svc("REGISTRY_TOKEN");
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("REGISTRY_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", SENTINEL)
        .args([
            "push",
            "--from",
            &layout(dir.path()),
            "--image",
            &format!("{reg}/flows/x"),
            "--tag",
            "v1",
        ])
        .run()
        .code(1)
        .stderr_has("rejected the credentials of `ciuser`");
}

#[test]
fn a_token_expiring_mid_upload_is_renewed_and_the_push_completes() {
    let dir = tempfile::tempdir().unwrap();
    let proxy =
        crate::proxy::start_with(&svc("REGISTRY_TOKEN"), crate::proxy::Fault::ExpireTokenOnce);
    let user = dir.path().join("user");
    std::fs::write(&user, svc("ROBOT_USER")).unwrap();
    let repo = format!("{}/flows/expiry-{:x}", proxy.addr, fastrand::u32(..));
    let doc = flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .env(
            "FLOWSHIP_REGISTRY_USERNAME_FILE",
            user.display().to_string(),
        )
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
        .args([
            "push",
            "--from",
            &layout(dir.path()),
            "--image",
            &repo,
            "--tag",
            "v1",
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(doc["push"]["blobs_uploaded"], 2);
}
