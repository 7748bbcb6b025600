//! flowship's own images (`build --self-image`), made of the static release binary: small, labelled,
//! non-root, reproducible, with the SBOM attached as a referrer; read back by skopeo, run by podman and under
//! chroot.

use crate::harness::{flowship, svc};
use crate::images::{run, skopeo_inspect, token};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Debian's busybox-static, the slim image's `/bin/sh` (what `ci/image` adds).
fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("busybox-static is installed (ci/install)")
}

fn own_image(repo: &str, tag: &str, base: Option<&str>) -> Value {
    let mut args = vec![
        "build".to_string(),
        "--self-image".into(),
        "--image".into(),
        repo.into(),
        "--tag".into(),
        tag.into(),
        "--add".into(),
        format!("{}:/bin/sh", busybox()),
        "--output".into(),
        "json".into(),
    ];
    if let Some(b) = base {
        args.extend(["--base".to_string(), b.to_string()]);
    }
    flowship()
        .static_binary()
        .env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN"))
        .env("SOURCE_DATE_EPOCH", "1767225600")
        .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
        .args(args)
        .run()
        .success()
        .json()
}

fn raw(reference: &str) -> Value {
    serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))))
    .unwrap()
}

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(args)
        .output()
        .expect("podman runs")
}

#[test]
fn the_slim_image_is_small_labelled_non_root_reproducible_and_has_its_sbom() {
    let repo = format!("{}/it/flowship-{}", svc("REGISTRY_PLAIN"), token());
    let first = own_image(&repo, "0.1.0", None);
    let digest = first["image"]["digest"].as_str().unwrap().to_string();
    assert_eq!(first["image"]["pushed"], true);
    // The same binary and inputs: the same digest, and nothing to do.
    let again = own_image(&repo, "0.1.0", None);
    assert_eq!(again["image"]["digest"], digest.as_str());
    assert_eq!(again["image"]["pushed"], false);

    let m = raw(&format!("{repo}@{digest}"));
    let compressed: u64 = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(
        compressed <= 15 * 1000 * 1000,
        "the slim image is {compressed} bytes compressed"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.title"],
        "flowship"
    );
    assert_eq!(
        m["annotations"]["org.opencontainers.image.revision"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    let cfg = skopeo_inspect(&format!("{repo}@{digest}"), true);
    assert_eq!(cfg["config"]["User"], "65532:65532");
    assert_eq!(cfg["config"]["Entrypoint"][0], "/usr/local/bin/flowship");
    assert_eq!(cfg["created"], "2026-01-01T00:00:00Z");
    assert_eq!(
        cfg["config"]["Labels"]["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );

    // The registry has no referrers API: the SBOM is listed under the fallback tag, refers to the image, and
    // is a CycloneDX document of the binary's Rust packages.
    let index = raw(&format!("{repo}:{}", digest.replacen(':', "-", 1)));
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index}");
    assert_eq!(entries[0]["artifactType"], "application/vnd.cyclonedx+json");
    let sbom_manifest = raw(&format!(
        "{repo}@{}",
        entries[0]["digest"].as_str().unwrap()
    ));
    assert_eq!(sbom_manifest["subject"]["digest"], digest.as_str());
    let blob = sbom_manifest["layers"][0]["digest"].as_str().unwrap();
    let doc: Value = serde_json::from_str(&run(Command::new("curl").arg("-sf").arg(format!(
        "http://{}/v2/{}/blobs/{blob}",
        svc("REGISTRY_PLAIN"),
        repo.split_once('/').unwrap().1
    ))))
    .unwrap();
    assert_eq!(doc["bomFormat"], "CycloneDX");
    let names: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for n in ["reqwest", "rustls", "git2", "tokio"] {
        assert!(names.contains(&n), "{n} is not in the SBOM");
    }
}

#[test]
fn the_images_run_under_podman_and_chroot() {
    let repo = format!("{}/it/flowship-{}", svc("REGISTRY_PLAIN"), token());
    let slim = own_image(&repo, "0.1.0", None)["image"]["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let python = own_image(&repo, "0.1.0-python", Some(&svc("PYTHON_BASE")))["image"]["ref"]
        .as_str()
        .unwrap()
        .to_string();
    let version = format!("flowship {}", env!("CARGO_PKG_VERSION"));

    let out = podman(&["run", "--rm", "--pull", "always", &slim, "--version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with(&version),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // doctor from the container against the TLS registry, trusting the test CA passed in as a file.
    let ca = format!("{}:/ca.crt:ro", svc("CA"));
    let tls = svc("REGISTRY_TLS");
    let out = podman(&[
        "run",
        "--rm",
        "-v",
        &ca,
        "-e",
        &format!("FLOWSHIP_IMAGE={tls}/flows/etl"),
        &slim,
        "doctor",
        "--ca-file",
        "/ca.crt",
    ]);
    assert!(
        out.status.success(),
        "doctor in the container:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The image's user and shell, as a CI job sees them.
    let out = podman(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        &slim,
        "-c",
        "id -u; touch /tmp/x && echo writable",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "65532\nwritable\n");
    // The -python variant: Python from its base, and the binary.
    let out = podman(&[
        "run",
        "--rm",
        "--pull",
        "always",
        "--entrypoint",
        "/bin/sh",
        &python,
        "-c",
        "python3 --version && flowship --version",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Python 3.11") && stdout.contains(&version),
        "{stdout}"
    );

    // Without podman: unpacked by umoci, run under chroot.
    let dir = tempfile::tempdir().unwrap();
    let oci = dir.path().join("oci");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{repo}@{}",
            slim.rsplit_once('@').unwrap().1
        ))
        .arg(format!("oci:{}:slim", oci.display())));
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:slim", oci.display()))
        .arg(&bundle));
    let out = run(Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .args(["/usr/local/bin/flowship", "--version"]));
    assert!(out.starts_with(&version), "{out}");
}

#[test]
fn a_dynamically_linked_flowship_is_refused_from_scratch_and_nothing_is_pushed() {
    let repo = format!("{}/it/flowship-{}", svc("REGISTRY_PLAIN"), token());
    // The binary under test is the debug build for glibc: it needs a loader.
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN"))
        .args(["build", "--self-image", "--image", &repo, "--tag", "0.1.0"])
        .run()
        .code(2)
        .stderr_has("is dynamically linked")
        .stderr_has("--target x86_64-unknown-linux-musl");
    let tags = Command::new("curl")
        .arg("-s")
        .arg(format!(
            "http://{}/v2/{}/tags/list",
            svc("REGISTRY_PLAIN"),
            repo.split_once('/').unwrap().1
        ))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&tags.stdout).contains("NAME_UNKNOWN"),
        "{}",
        String::from_utf8_lossy(&tags.stdout)
    );
}
