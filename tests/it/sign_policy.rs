//! Signed images where they are required and shown (issue 20): `environments.E.verify.key` refusing what its
//! key did not sign before any write, and the Harbor stand-in listing signature, provenance and SBOM as the
//! image's accessories. The signing itself is `sign.rs`.

use crate::build::{base_image, flow_project};
use crate::harness::{flowship, svc};
use crate::images::{plain, token};
use crate::sign::{key_lines, keypair, sig_manifest};
use base64::Engine;
use std::process::Command;

/// `environments.prod.verify.key`: promote and release into prod refuse (exit 3) an image its key did not
/// sign, before writing anything; once signed by that key, the promotion goes through.
#[test]
fn an_environment_with_verify_key_takes_only_images_its_key_signed() {
    let w = crate::release::world();
    let (key, public) = keypair(&w.project, "release");
    let (other_key, _) = keypair(&w.project, "other");
    let config = w.project.join("flowship.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "  prod:\n",
            &format!("  prod:\n    verify: {{key: {}}}\n", public.display()),
        ),
    )
    .unwrap();
    // Staging takes unsigned images.
    w.flowship()
        .args(["release", "--env", "staging"])
        .run()
        .success();
    let commits = w.commits();
    let promote = || {
        w.flowship()
            .args(["promote", "--from-env", "staging", "--env", "prod"])
            .run()
    };
    promote()
        .code(3)
        .stderr_has("environment `prod` requires images signed by")
        .stderr_has("is not signed")
        .stderr_has("nothing was written");
    assert_eq!(w.commits(), commits, "the refused promotion committed");
    let prod_tags = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{}", w.prod_repo))
        .output()
        .unwrap();
    // The registry answered that the repository does not exist (not: skopeo could not ask).
    assert!(
        !prod_tags.status.success() && String::from_utf8_lossy(&prod_tags.stderr).contains("404"),
        "the refused promotion copied the image, or the registry was not asked: {}",
        String::from_utf8_lossy(&prod_tags.stderr)
    );

    // Signed by another key: refused all the same, naming it.
    w.flowship()
        .env("FLOWSHIP_SIGN_KEY_FILE", other_key.to_str().unwrap())
        .args(["release", "--env", "prod"])
        .run()
        .code(3)
        .stderr_has("is signed, but not with the key");
    assert_eq!(w.commits(), commits);

    // Staging's release signed with prod's key (the same digest: the build is reproducible): promoted.
    w.flowship()
        .env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap())
        .args(["release", "--env", "staging"])
        .run()
        .success()
        .stderr_has("signed ");
    promote().success().stderr_has("signature verified");
    assert!(w.commits() > commits);
    let pinned = w.file_on_main("clusters/cluster-1/kustomization.yaml");
    assert!(pinned.contains(&w.prod_repo), "{pinned}");
    for l in key_lines(&key) {
        assert!(!pinned.contains(&l));
    }
}

/// Harbor (its stand-in here, following Harbor's cosign middleware and referrers API) shows what a signed
/// build carries as accessories of the image: the signature, the provenance and the SBOM; `verify` reads them
/// through the referrers API, and a promotion out of Harbor carries the signature by its tag.
#[test]
fn harbor_shows_the_signature_provenance_and_sbom_as_accessories() {
    use crate::harbor::{accessories, create_project, project, robot};
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "cosign");
    let base = base_image(dir.path());
    let project_dir = flow_project(dir.path());
    std::fs::write(project_dir.join("requirements.txt"), "# none\n").unwrap();
    let p = project();
    create_project(&p);
    let repo = format!("{}/{p}/etl", svc("HARBOR"));
    let o = plain(robot(flowship()))
        .env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap())
        .build_onto(&repo, &base, &project_dir)
        .run();
    o.success().stderr_has("referrers API");
    let digest = o.json()["image"]["digest"].as_str().unwrap().to_string();
    let shown = accessories(&p, "etl", &digest);
    let mut types: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    types.sort();
    assert_eq!(
        types,
        ["signature.cosign", "subject.accessory", "subject.accessory"],
        "{shown}"
    );
    plain(robot(flowship()))
        .args([
            "verify",
            &format!("{repo}@{digest}"),
            "--key",
            public.to_str().unwrap(),
        ])
        .run()
        .success()
        .stderr_has("SBOM");
    // Out of Harbor: the signature goes by its tag (not as a referrer), the other two as referrers.
    let dst = format!("{}/it/from-harbor-{}", svc("REGISTRY_PLAIN"), token());
    let login = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        svc("ROBOT_USER"),
        svc("ROBOT_PASS")
    ));
    plain(flowship())
        .env("FLOWSHIP_PLAIN_HTTP", svc("HARBOR"))
        .env(
            "DOCKER_AUTH_CONFIG",
            serde_json::json!({"auths": {svc("HARBOR"): {"auth": login}}}).to_string(),
        )
        .args(["promote", &format!("{repo}:1.0"), &format!("{dst}:1.0")])
        .run()
        .success();
    assert_eq!(
        sig_manifest(&dst, &digest)["layers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    plain(flowship())
        .args([
            "verify",
            &format!("{dst}@{digest}"),
            "--key",
            public.to_str().unwrap(),
        ])
        .run()
        .success();
}

/// `doctor` reads the keys a push and a release will need: a key that does not open fails there, not at the
/// first push; a signing key that is not the environment's verify key is a warning naming both.
#[test]
fn doctor_checks_the_signing_key_and_the_verify_key() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = keypair(dir.path(), "cosign");
    let (_, other) = keypair(dir.path(), "other");
    let doc = flowship()
        .env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap())
        .env("FLOWSHIP_VERIFY_KEY", other.to_str().unwrap())
        .args(["doctor", "--output", "json"])
        .run();
    let signing = doc.success().json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "signing")
        .cloned()
        .unwrap();
    let status: Vec<(&str, &str)> = signing["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["check"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        status,
        [("key", "ok"), ("verify_key", "ok"), ("pair", "warn")],
        "{signing}"
    );
    flowship()
        .env("FLOWSHIP_SIGN_KEY", crate::harness::SENTINEL)
        .args(["doctor"])
        .run()
        .code(1)
        .stdout_has("the signing key is not a PEM private key");
}
