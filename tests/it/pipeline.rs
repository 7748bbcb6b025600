//! The example project's `.gitlab-ci.yml` in a real CI runner: gitlab-ci-local with podman runs build ->
//! release-staging -> promote-prod (the manual job), every job in flowship's own images (made by `ci/image`
//! of the static binary and pulled from the local registry), the digest passed on by the dotenv reports.

use crate::harness::svc;
use crate::images::token;
use crate::release::git;
use std::path::Path;
use std::process::Command;

fn script(name: &str) -> Command {
    let mut c = Command::new("bash");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("ci").join(name));
    c
}

fn dotenv(path: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} not in {}:\n{text}", path.display()))
        .to_string()
}

#[test]
fn the_example_pipeline_runs_in_gitlab_ci_local_in_flowships_own_images() {
    let reg = svc("REGISTRY_PLAIN");
    let repo = format!("{reg}/it/flowship-{}", token());
    let out = script("image")
        .args([&repo, "--python-base", &svc("PYTHON_BASE")])
        .env("FLOWSHIP_BIN", svc("STATIC_BIN"))
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ci/image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = refs.lines().collect();
    assert_eq!(lines.len(), 2, "one ref@digest per image: {refs}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        lines[0].starts_with(&format!("{repo}:{version}@sha256:")),
        "{refs}"
    );
    assert!(
        lines[1].starts_with(&format!("{repo}:{version}-python@sha256:")),
        "{refs}"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = script("pipeline")
        .arg(format!("{repo}:{version}"))
        .arg(dir.path())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the pipeline failed:\n{log}");
    for job in ["build", "release-staging", "promote-prod"] {
        assert!(log.contains(&format!("PASS  {job}")), "{job}:\n{log}");
    }
    // The digest the build job made is what staging and prod run: passed on by the dotenv reports.
    let reports = dir
        .path()
        .join("example-project/.gitlab-ci-local/artifacts");
    let built = dotenv(
        &reports.join("build/.gitlab-ci-reports/dotenv/build.env"),
        "FLOWSHIP_IMAGE_DIGEST",
    );
    let promoted = dotenv(
        &reports.join("promote-prod/.gitlab-ci-reports/dotenv/promote.env"),
        "FLOWSHIP_IMAGE_DIGEST",
    );
    assert_eq!(built, promoted);
    let gitops = dir.path().join("gitops.git");
    for c in ["staging", "cluster-1", "cluster-2"] {
        let overlay = git(
            &gitops,
            &["show", &format!("main:clusters/{c}/kustomization.yaml")],
        );
        assert!(overlay.contains(&built), "{c}:\n{overlay}");
    }
    let prod = crate::images::skopeo_inspect(&format!("{reg}/flows-prod/example@{built}"), false);
    assert_eq!(prod["Digest"], built.as_str());
}

/// `ci/image` plans both images before pushing either: a Python base that cannot be read stops it with the
/// fix named, and nothing is pushed (not even the slim image, which needs no base).
#[test]
fn ci_image_with_an_unreadable_python_base_pushes_nothing() {
    let reg = svc("REGISTRY_PLAIN");
    let name = format!("it/flowship-nobase-{}", token());
    let out = script("image")
        .args([
            &format!("{reg}/{name}"),
            "--python-base",
            &format!("{reg}/it/no-such-base:1"),
        ])
        .env("FLOWSHIP_BIN", svc("STATIC_BIN"))
        .env("FLOWSHIP_PLAIN_HTTP", &reg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stderr.contains("--python-base"), "{stderr}");
    let tags = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{reg}/v2/{name}/tags/list"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tags.stdout),
        "404",
        "something was pushed"
    );
}
