//! Harbor behaviour, against the stand-in for Harbor's REST API (ci/standins/harbor.py, following Harbor's
//! swagger), which forwards the registry protocol itself to the real distribution registry.

use crate::harness::{Flowship, flowship, svc};
use std::process::Command;

/// An OCI layout with one image of random content (a new digest each time), as `push --from` takes it.
fn layout(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    format!(
        "oci-layout:{}:v1",
        crate::images::umoci_layout(dir, "v1").display()
    )
}

pub(crate) fn robot(f: Flowship) -> Flowship {
    let user = f.file("robot-user", &svc("ROBOT_USER"));
    f.env("FLOWSHIP_PLAIN_HTTP", svc("HARBOR"))
        .env(
            "FLOWSHIP_REGISTRY_USERNAME_FILE",
            user.display().to_string(),
        )
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
}

pub(crate) fn project() -> String {
    format!("proj{:x}", fastrand::u32(..))
}

fn control(body: &str) {
    let ok = Command::new("curl")
        .args([
            "-sf",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
        ])
        .arg(format!("http://{}/__control/findings", svc("HARBOR")))
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn missing_project_is_named_and_created_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let from = layout(dir.path());
    let p = project();
    let image = format!("{}/{p}/etl", svc("HARBOR"));
    robot(flowship())
        .args(["push", "--from", &from, "--image", &image, "--tag", "1.0"])
        .run()
        .code(1)
        .stderr_has(&format!("project `{p}` not found"))
        .stderr_has("--create-project");
    robot(flowship())
        .args([
            "push",
            "--from",
            &from,
            "--image",
            &image,
            "--tag",
            "1.0",
            "--create-project",
        ])
        .run()
        .success()
        .stderr_has(&format!("created Harbor project `{p}`"));
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{}:{}", svc("REGISTRY_USER"), svc("REGISTRY_PASS")),
        ])
        .arg(format!("docker://{image}:1.0"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scan_gate_refuses_with_exit_3_and_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let from = layout(dir.path());
    let p = project();
    control(&format!(
        r#"{{"repository": "{p}/etl", "summary": {{"High": 2, "Low": 5}}}}"#
    ));
    let image = format!("{}/{p}/etl", svc("HARBOR"));
    robot(flowship())
        .args([
            "push",
            "--from",
            &from,
            "--image",
            &image,
            "--tag",
            "1.0",
            "--create-project",
            "--scan-gate",
            "high",
        ])
        .run()
        .code(3)
        .stderr_has("scan gate: Harbor found 2 High, 5 Low")
        .stderr_has("(gate: high)");
    // Pushed by digest for the scan, never tagged: nobody can pull a refused image by its tag.
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!(
            "http://{}/v2/{p}/etl/manifests/1.0",
            svc("REGISTRY_PLAIN")
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "404",
        "the refused image was tagged"
    );
    robot(flowship())
        .args([
            "push",
            "--from",
            &from,
            "--image",
            &image,
            "--tag",
            "1.0",
            "--scan-gate",
            "critical",
        ])
        .run()
        .success()
        .stderr_has("scan gate passed: 2 High, 5 Low (gate: critical)");
}

#[test]
fn immutable_tag_rule_refuses_a_second_push_with_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let p = project();
    let image = format!("{}/{p}/etl", svc("HARBOR"));
    robot(flowship())
        .args([
            "push",
            "--from",
            &layout(dir.path()),
            "--image",
            &image,
            "--tag",
            "1.0",
            "--create-project",
        ])
        .run()
        .success();
    let rule = r#"{"action":"immutable","template":"immutable_template","priority":0,"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"1.*"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}"#;
    let ok = Command::new("curl")
        .args([
            "-sf",
            "-u",
            &format!("{}:{}", svc("ROBOT_USER"), svc("ROBOT_PASS")),
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            rule,
        ])
        .arg(format!(
            "http://{}/api/v2.0/projects/{p}/immutabletagrules",
            svc("HARBOR")
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let other = tempfile::tempdir().unwrap();
    robot(flowship())
        .args([
            "push",
            "--from",
            &layout(other.path()),
            "--image",
            &image,
            "--tag",
            "1.0",
        ])
        .run()
        .code(3)
        .stderr_has("is immutable");
    // A new tag is fine.
    let third = tempfile::tempdir().unwrap();
    robot(flowship())
        .args([
            "push",
            "--from",
            &layout(third.path()),
            "--image",
            &image,
            "--tag",
            "2.0",
        ])
        .run()
        .success();
}

#[test]
fn doctor_reports_harbor_and_its_version() {
    robot(flowship())
        .env("FLOWSHIP_IMAGE", format!("{}/library/etl", svc("HARBOR")))
        .args(["doctor"])
        .run()
        .success()
        .stdout_has("Harbor v2.15.2-standin")
        .stdout_has("accepted for `robot$ci+prefect`");
}

/// A build into a Harbor project that does not exist yet: `--create-project` creates it before the build
/// reads its dependency cache from it (issue 8, item 5), from the flag or FLOWSHIP_CREATE_PROJECT.
#[test]
fn build_creates_a_missing_project_first() {
    for how in ["flag", "variable"] {
        let p = project();
        let f = robot(flowship());
        f.file("flows/etl.py", "print('hi')\n");
        f.file("requirements.txt", "");
        let mut f = f
            .env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN"))
            .env("FLOWSHIP_IMAGE", format!("{}/{p}/etl", svc("HARBOR")))
            .args([
                "build",
                "--base",
                &svc("PYTHON_BASE"),
                "--python-version",
                "3.11",
                "--tag",
                "1.0",
            ]);
        f = if how == "flag" {
            f.args(["--create-project"])
        } else {
            f.env("FLOWSHIP_CREATE_PROJECT", "true")
        };
        f.in_scratch_dir()
            .run()
            .success()
            .stderr_has(&format!("created Harbor project `{p}`"));
    }
}

/// Harbor's REST API or its registry, as the robot: the body of the answer.
pub(crate) fn harbor(method: &str, path: &str, body: Option<&str>) -> String {
    let auth = format!("{}:{}", svc("ROBOT_USER"), svc("ROBOT_PASS"));
    let mut c = Command::new("curl");
    c.args([
        "-sf",
        "-u",
        &auth,
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(b) = body {
        c.args(["-d", b]);
    }
    crate::images::run(c.arg(format!("http://{}{path}", svc("HARBOR"))))
}

pub(crate) fn create_project(p: &str) {
    harbor(
        "POST",
        "/api/v2.0/projects",
        Some(&format!(r#"{{"project_name":"{p}"}}"#)),
    );
}

/// The accessories Harbor shows for `repo@digest` (`repo` inside project `p`).
pub(crate) fn accessories(p: &str, repo: &str, digest: &str) -> serde_json::Value {
    serde_json::from_str(&harbor(
        "GET",
        &format!("/api/v2.0/projects/{p}/repositories/{repo}/artifacts/{digest}/accessories"),
        None,
    ))
    .unwrap()
}

/// `build --self-image` of the static binary into `image`, tag 0.1.0, reproducibly.
fn self_image(f: Flowship, image: &str) -> Flowship {
    f.static_binary()
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .args([
            "build",
            "--self-image",
            "--tag",
            "0.1.0",
            "--output",
            "json",
        ])
        .args(["--image", image])
}

/// flowship's own image pushed to Harbor, which has the referrers API: the SBOM's manifest PUT is answered
/// with `OCI-Subject`, so no fallback tag is written, the referrers API lists it, Harbor shows it as the
/// image's accessory, and a re-run finds it there and attaches nothing again.
#[test]
fn the_own_image_sbom_is_an_accessory_harbor_shows() {
    let p = project();
    create_project(&p);
    let build = || {
        self_image(
            robot(flowship()),
            &format!("{}/{p}/flowship", svc("HARBOR")),
        )
        .run()
    };
    let first = build();
    first.success();
    assert!(first.stderr.contains("(referrers API)"), "{first}");
    let digest = first.json()["image"]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    let referrers: serde_json::Value = serde_json::from_str(&harbor(
        "GET",
        &format!("/v2/{p}/flowship/referrers/{digest}"),
        None,
    ))
    .unwrap();
    let listed = referrers["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{referrers}");
    assert_eq!(listed[0]["artifactType"], "application/vnd.cyclonedx+json");
    let shown = accessories(&p, "flowship", &digest);
    assert_eq!(shown[0]["digest"], listed[0]["digest"], "{shown}");
    let tags = harbor("GET", &format!("/v2/{p}/flowship/tags/list"), None);
    assert!(
        !tags.contains("sha256-"),
        "a fallback tag was written: {tags}"
    );

    let again = build();
    again.success();
    assert_eq!(again.json()["image"]["pushed"], false, "{again}");
    assert!(!again.stderr.contains("attached"), "{again}");
}

/// A promote copies what refers to the image with it: flowship's own image, built into the CNCF registry
/// (fallback tag), promoted to a Harbor project keeps its SBOM there (referrers API, shown as an accessory),
/// and a promote within the CNCF registry to another repository keeps it too (fallback tag, blobs mounted).
/// A rerun finds everything in place.
#[test]
fn promote_carries_the_sbom_with_the_image() {
    let src = format!(
        "{}/it/own-{}",
        svc("REGISTRY_PLAIN"),
        crate::images::token()
    );
    let built = self_image(
        flowship().env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN")),
        &src,
    )
    .run();
    built.success();
    let digest = built.json()["image"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let sbom = |reference: &str| -> Vec<String> {
        let tag = format!("{reference}:{}", digest.replacen(':', "-", 1));
        let index: serde_json::Value = serde_json::from_str(&crate::images::run(
            Command::new("skopeo")
                .args(["inspect", "--raw", "--tls-verify=false"])
                .arg(format!("docker://{tag}")),
        ))
        .unwrap();
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let want = sbom(&src);
    assert_eq!(want.len(), 1);

    let p = project();
    create_project(&p);
    let promote = |dst: &str| {
        robot(flowship())
            .env(
                "FLOWSHIP_PLAIN_HTTP",
                format!("{},{}", svc("REGISTRY_PLAIN"), svc("HARBOR")),
            )
            .args(["promote", &format!("{src}:0.1.0"), dst])
            .run()
    };
    let to_harbor = format!("{}/{p}/flowship:0.1.0", svc("HARBOR"));
    promote(&to_harbor).success().stderr_has("(referrers API)");
    let shown = accessories(&p, "flowship", &digest);
    assert_eq!(shown[0]["digest"], want[0].as_str(), "{shown}");
    let again = promote(&to_harbor);
    again.success();
    assert!(!again.stderr.contains("attached"), "{again}");

    let other = format!(
        "{}/it/own-copy-{}",
        svc("REGISTRY_PLAIN"),
        crate::images::token()
    );
    promote(&format!("{other}:0.1.0"))
        .success()
        .stderr_has("referrers tag");
    assert_eq!(sbom(&other), want);
}
