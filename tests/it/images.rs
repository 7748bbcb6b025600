//! Images against the real distribution registries of the harness (plain, basic auth with a robot user, TLS
//! with a test CA), read back by skopeo and umoci.

use crate::harness::{Flowship, SENTINEL, flowship, svc};
use crate::proxy::{self, Fault};
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn skopeo_inspect(reference: &str, config: bool) -> serde_json::Value {
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--tls-verify=false"]);
    if config {
        c.arg("--config");
    }
    serde_json::from_str(&run(c.arg(format!("docker://{reference}")))).unwrap()
}

pub(crate) fn token() -> String {
    format!("{:x}", fastrand::u32(..))
}

/// An OCI layout with one image (a random 1 MiB file and a small one), made by umoci.
pub(crate) fn umoci_layout(dir: &Path, tag: &str) -> PathBuf {
    let layout = dir.join("layout");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    run(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:{tag}", layout.display())));
    let src = dir.join("src/app");
    std::fs::create_dir_all(&src).unwrap();
    let bytes: Vec<u8> = (0..1 << 20).map(|_| fastrand::u8(..)).collect();
    std::fs::write(src.join("big"), bytes).unwrap();
    std::fs::write(src.join("x"), "hi").unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(&src)
        .arg("/app"));
    layout
}

pub(crate) fn plain(f: Flowship) -> Flowship {
    f.env(
        "FLOWSHIP_PLAIN_HTTP",
        format!("{},{}", svc("REGISTRY_PLAIN"), svc("REGISTRY_AUTH")),
    )
}

#[test]
fn push_oci_layout_to_every_registry_kind_and_skopeo_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let want = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:v1", layout.display())));
    let want_digest = format!("sha256:{}", {
        use std::fmt::Write;
        let d = <sha2::Sha256 as sha2::Digest>::digest(want.as_bytes());
        d.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    });
    let tok = token();
    let from = format!("oci-layout:{}:v1", layout.display());
    // Plain HTTP.
    let repo = format!("{}/it/push-{tok}", svc("REGISTRY_PLAIN"));
    let doc = plain(flowship())
        .args([
            "push", "--from", &from, "--image", &repo, "--tag", "v1", "--output", "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(
        doc["image"]["digest"],
        want_digest.as_str(),
        "the manifest is pushed as exact bytes"
    );
    assert_eq!(doc["push"]["blobs_uploaded"], 2);
    assert_eq!(
        skopeo_inspect(&format!("{repo}:v1"), false)["Digest"],
        want_digest.as_str()
    );
    // Again: nothing to upload.
    let doc = plain(flowship())
        .args([
            "push", "--from", &from, "--image", &repo, "--tag", "v1", "--output", "json",
        ])
        .run()
        .success()
        .json();
    // The registry has the manifest by digest: nothing is sent, not even a HEAD per blob.
    assert_eq!(doc["push"]["blobs_uploaded"], 0);
    assert_eq!(doc["image"]["pushed"], false);
    // Basic auth with a Harbor-style robot account, in chunks of 256 KiB.
    let f = flowship();
    let user = f.file("robot", &svc("ROBOT_USER"));
    let repo = format!("{}/it/push-{tok}", svc("REGISTRY_AUTH"));
    plain(f)
        .env(
            "FLOWSHIP_REGISTRY_USERNAME_FILE",
            user.display().to_string(),
        )
        .env("FLOWSHIP_REGISTRY_PASSWORD", svc("ROBOT_PASS"))
        .args([
            "push",
            "--from",
            &from,
            "--image",
            &repo,
            "--tag",
            "v1",
            "--chunk-size",
            "256KiB",
        ])
        .run()
        .success();
    let out = run(Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--creds",
            &format!("{}:{}", svc("REGISTRY_USER"), svc("REGISTRY_PASS")),
        ])
        .arg(format!("docker://{repo}:v1")));
    assert!(out.contains(&want_digest));
    // TLS with the test CA.
    let repo = format!("{}/it/push-{tok}", svc("REGISTRY_TLS"));
    flowship()
        .env("FLOWSHIP_CA_FILE", svc("CA"))
        .args(["push", "--from", &from, "--image", &repo, "--tag", "v1"])
        .run()
        .success();
    assert_eq!(
        skopeo_inspect(&format!("{repo}:v1"), false)["Digest"],
        want_digest.as_str()
    );
}

#[test]
fn wrong_registry_password_is_exit_1_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    plain(flowship())
        .env("FLOWSHIP_REGISTRY_USERNAME", svc("REGISTRY_USER"))
        .env("FLOWSHIP_REGISTRY_PASSWORD", SENTINEL)
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &format!("{}/it/x", svc("REGISTRY_AUTH")),
            "--tag",
            "v1",
        ])
        .run()
        .code(1)
        .stderr_has("error:");
}

#[test]
fn promote_retags_mounts_and_copies_across_registries_by_digest() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let tok = token();
    let p = svc("REGISTRY_PLAIN");
    let src = format!("{p}/it/src-{tok}:v1");
    let doc = plain(flowship())
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &src,
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    let digest = doc["image"]["digest"].as_str().unwrap().to_string();
    // Same repository: only the manifest.
    let doc = plain(flowship())
        .args([
            "promote",
            &src,
            &format!("{p}/it/src-{tok}:prod"),
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(doc["image"]["digest"], digest.as_str());
    // The same repository: the manifest is there, only the tag moves.
    assert_eq!(doc["image"]["pushed"], false);
    // Another repository of the same registry: mounted.
    let doc = plain(flowship())
        .args([
            "promote",
            &src,
            &format!("{p}/prod/app-{tok}:1.0"),
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(doc["push"]["blobs_mounted"], 2);
    // Another registry: streamed across; by digest.
    let f = flowship();
    let dotenv = tempfile::tempdir().unwrap();
    let env_file = dotenv.path().join("promote.env");
    plain(f)
        .env("FLOWSHIP_CA_FILE", svc("CA"))
        .args([
            "promote",
            &format!("{p}/it/src-{tok}@{digest}"),
            &format!("{}/prod/app-{tok}:1.0", svc("REGISTRY_TLS")),
        ])
        .args(["--dotenv", env_file.to_str().unwrap()])
        .run()
        .success();
    assert_eq!(
        skopeo_inspect(
            &format!("{}/prod/app-{tok}:1.0", svc("REGISTRY_TLS")),
            false
        )["Digest"],
        digest.as_str()
    );
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env.contains(&format!("FLOWSHIP_IMAGE_DIGEST={digest}\n")),
        "{env}"
    );
    assert!(env.contains("FLOWSHIP_IMAGE_TAG=1.0\n"), "{env}");
}

#[test]
fn push_survives_a_flaky_registry() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let proxy = proxy::start_with(&svc("REGISTRY_PLAIN"), Fault::Flaky(4));
    let repo = format!("{}/it/flaky-{}", proxy.addr, token());
    let o = flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .env("FLOWSHIP_HTTP_RETRIES", "8")
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &repo,
            "--tag",
            "v1",
            "--chunk-size",
            "128KiB",
            "--output",
            "json",
        ])
        .run();
    let doc = o.success().json();
    let digest = doc["image"]["digest"].as_str().unwrap();
    let real = format!(
        "{}/{}",
        svc("REGISTRY_PLAIN"),
        repo.split_once('/').unwrap().1
    );
    assert_eq!(
        skopeo_inspect(&format!("{real}:v1"), false)["Digest"],
        digest
    );
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{real}:v1"))
        .arg(format!("oci:{}/check:v1", dir.path().display())));
}

#[test]
fn immutable_tag_is_a_policy_refusal_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let proxy = proxy::start_with(&svc("REGISTRY_PLAIN"), Fault::ImmutableTags);
    flowship()
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &format!("{}/flows/etl", proxy.addr),
            "--tag",
            "1.0",
        ])
        .run()
        .code(3)
        .stderr_has("is immutable")
        .stderr_has("hint: push a new tag");
}

#[test]
fn push_from_a_docker_archive_keeps_the_config_and_its_diff_ids() {
    let dir = tempfile::tempdir().unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let archive = dir.path().join("image.tar");
    run(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker-archive:{}:it/app:v1", archive.display())));
    let repo = format!("{}/it/archive-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .args([
            "push",
            "--from",
            &format!("docker-archive:{}", archive.display()),
            "--image",
            &repo,
        ])
        .run()
        .success();
    let pushed = skopeo_inspect(&format!("{repo}:v1"), true);
    let original: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}:v1", layout.display()))))
    .unwrap();
    assert_eq!(pushed["rootfs"]["diff_ids"], original["rootfs"]["diff_ids"]);
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{repo}:v1"))
        .arg(format!("oci:{}/back:v1", dir.path().display())));
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}/back:v1", dir.path().display()))
        .arg(dir.path().join("bundle")));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bundle/rootfs/app/x")).unwrap(),
        "hi"
    );
}
