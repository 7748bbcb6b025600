//! `flowship build` against the real plain registry: read back by skopeo and umoci, reproducible, cached
//! dependencies, several platforms, and a built image that runs its flow under chroot.

use crate::harness::{flowship, svc};
use crate::images::{plain, run, skopeo_inspect, token};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small base image in the plain registry: an umoci image with `PYTHON_VERSION` set, the way official
/// python images declare theirs.
pub(crate) fn base_image(dir: &Path) -> String {
    let layout = dir.join("base");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let r = format!("{}:3.11", layout.display());
    run(Command::new("umoci").args(["new", "--image", &r]));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &r,
        "--config.env",
        "PYTHON_VERSION=3.11.7",
        "--config.env",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "--os",
        "linux",
        "--architecture",
        "amd64",
    ]));
    let src = dir.join("basesrc/etc");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("os-release"), "ID=test\n").unwrap();
    run(Command::new("umoci")
        .args(["insert", "--image", &r])
        .arg(dir.join("basesrc"))
        .arg("/"));
    let repo = format!("{}/it/base-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:3.11", layout.display()),
            "--image",
            &repo,
            "--tag",
            "3.11",
        ])
        .run()
        .success();
    format!("{repo}:3.11")
}

/// A copy of the example flow project, with a fresh mtime on every file.
pub(crate) fn flow_project(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("example-project");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/example-project");
    run(Command::new("cp").arg("-r").arg(&src).arg(&p));
    run(Command::new("touch")
        .arg("-d")
        .arg(format!("@{}", 1_600_000_000 + fastrand::u32(..1_000_000)))
        .arg(p.join("flows/etl.py")));
    std::fs::set_permissions(
        p.join("flows/etl.py"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    p
}

#[test]
fn build_pushes_an_image_umoci_unpacks_with_code_deps_env_labels() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(dir.path());
    let repo = format!("{}/it/etl-{}", svc("REGISTRY_PLAIN"), token());
    let o = plain(flowship())
        .env("CI_COMMIT_SHA", "0123456789abcdef0123456789abcdef01234567")
        .env("CI_PROJECT_URL", "https://gitlab.example.com/data/etl")
        .env("CI_COMMIT_TIMESTAMP", "2026-11-27T03:00:00+00:00")
        .build_onto(&repo, &base, &project)
        .run();
    let doc = o.success().json();
    let digest = doc["image"]["digest"].as_str().unwrap().to_string();
    let config = skopeo_inspect(&format!("{repo}:1.0"), true);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"PYTHONPATH=/opt/flowship/site-packages"),
        "{env:?}"
    );
    assert!(
        env.contains(&"PATH=/opt/flowship/site-packages/bin:/usr/local/bin:/usr/bin:/bin"),
        "{env:?}"
    );
    assert_eq!(
        config["config"]["WorkingDir"],
        "/opt/prefect/example-project"
    );
    let labels = &config["config"]["Labels"];
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://gitlab.example.com/data/etl"
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2026-11-27T03:00:00Z"
    );
    assert_eq!(labels["org.opencontainers.image.version"], "1.0");
    assert_eq!(config["created"], "2026-11-27T03:00:00Z");
    assert_eq!(config["architecture"], "amd64");
    // Unpack with umoci and look at the files.
    let oci = dir.path().join("oci");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{repo}@{digest}"))
        .arg(format!("oci:{}:1.0", oci.display())));
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:1.0", oci.display()))
        .arg(&bundle));
    let root = bundle.join("rootfs");
    assert!(root.join("etc/os-release").is_file(), "base layer present");
    let etl = root.join("opt/prefect/example-project/flows/etl.py");
    assert!(etl.is_file());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&etl).unwrap().permissions().mode() & 0o777,
        0o644,
        "modes are normalised, not taken from disk (0600)"
    );
    assert!(
        root.join("opt/flowship/site-packages/six.py").is_file(),
        "the dependency is installed in the layer"
    );
    assert!(!root.join("opt/prefect/example-project/.git").exists());
    // Manifest annotations name the base.
    let raw: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}:1.0"))))
    .unwrap();
    assert_eq!(
        raw["annotations"]["org.opencontainers.image.base.name"],
        base.as_str()
    );
}

#[test]
fn builds_are_reproducible_and_reuse_cached_dependencies() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let repo = format!("{}/it/repro-{}", svc("REGISTRY_PLAIN"), token());
    let build = |project: &Path| {
        plain(flowship())
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .build_onto(&repo, &base, project)
            .args(["-v"])
            .run()
    };
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let first = build(&flow_project(&a));
    let second = build(&flow_project(&b)); // separate copy, other mtimes and modes on disk
    first.success();
    second.success();
    assert_eq!(
        first.json()["image"]["digest"],
        second.json()["image"]["digest"],
        "same inputs, same digest"
    );
    assert!(first.stderr.contains("installed"), "{}", first.stderr);
    assert!(
        second.stderr.contains("reused"),
        "the second build must not run the installer:\n{}",
        second.stderr
    );
    // And written as an OCI layout instead, the same digest.
    let layout = dir.path().join("layout");
    let o = plain(flowship())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args([
            "build",
            "--no-push",
            "--oci-layout",
            layout.to_str().unwrap(),
            "--image",
            &repo,
            "--tag",
            "1.0",
            "--base",
            &base,
        ])
        .args([
            "--context",
            flow_project(&dir.path().join("c")).to_str().unwrap(),
        ])
        .run();
    o.success();
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:1.0", layout.display())));
    assert!(
        o.stdout
            .contains(first.json()["image"]["digest"].as_str().unwrap()),
        "{o}\n{raw}"
    );
}

/// The image runs: a real Python base (Debian + python3), the e2e flow project with a real dependency on
/// top; unpacked and run under chroot with the image's own environment and working directory, the flow
/// module imports the dependency from the dependency layer.
#[test]
fn the_built_image_runs_its_flow_under_chroot() {
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("{}/it/e2e-{}", svc("REGISTRY_PLAIN"), token());
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/e2e-flow");
    let doc = plain(flowship())
        .build_onto(&repo, &svc("PYTHON_BASE"), &project)
        .run()
        .success()
        .json();
    let digest = doc["image"]["digest"].as_str().unwrap().to_string();
    let oci = dir.path().join("oci");
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{repo}@{digest}"))
        .arg(format!("oci:{}:1.0", oci.display())));
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:1.0", oci.display()))
        .arg(&bundle));
    let runtime: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(bundle.join("config.json")).unwrap())
            .unwrap();
    let env: Vec<String> = runtime["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    let cwd = runtime["process"]["cwd"].as_str().unwrap().to_string();
    assert_eq!(cwd, "/opt/prefect/e2e-flow");
    let out = Command::new("chroot")
        .arg(bundle.join("rootfs"))
        .arg("/usr/bin/env")
        .arg("-i")
        .args(&env)
        .args([
            "/bin/sh",
            "-c",
            &format!("cd {cwd} && exec python3 -m flows.hello"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the flow did not run:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("hello from flowship"), "{stdout}");
    assert!(
        stdout.contains("six 1.16.0 from /opt/flowship/site-packages/six.py"),
        "{stdout}"
    );
    assert!(stdout.contains("python 3.11"), "{stdout}");
}

#[test]
fn several_platforms_build_one_image_each_under_an_index() {
    let dir = tempfile::tempdir().unwrap();
    // A two-platform base: two umoci images and an OCI index naming both.
    let layout = dir.path().join("multi");
    run(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    for (tag, arch) in [("amd64", "amd64"), ("arm64", "arm64")] {
        let r = format!("{}:{tag}", layout.display());
        run(Command::new("umoci").args(["new", "--image", &r]));
        run(Command::new("umoci").args([
            "config",
            "--image",
            &r,
            "--os",
            "linux",
            "--architecture",
            arch,
            "--config.env",
            "PYTHON_VERSION=3.11.7",
        ]));
    }
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let manifests: Vec<serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let arch = m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string();
            serde_json::json!({"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"], "platform": {"os": "linux", "architecture": arch}})
        })
        .collect();
    let multi = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})).unwrap();
    let digest = {
        use sha2::Digest;
        format!(
            "sha256:{}",
            sha2::Sha256::digest(&multi)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        )
    };
    std::fs::write(layout.join("blobs/sha256").join(&digest[7..]), &multi).unwrap();
    index["manifests"].as_array_mut().unwrap().push(serde_json::json!({
        "mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": multi.len(),
        "annotations": {"org.opencontainers.image.ref.name": "multi"}
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let base = format!("{}/it/multibase-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:multi", layout.display()),
            "--image",
            &base,
            "--tag",
            "3.11",
        ])
        .run()
        .success();

    let repo = format!("{}/it/multi-{}", svc("REGISTRY_PLAIN"), token());
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/e2e-flow");
    plain(flowship())
        .args([
            "build",
            "--image",
            &repo,
            "--tag",
            "1.0",
            "--base",
            &format!("{base}:3.11"),
            "--context",
            project.to_str().unwrap(),
        ])
        .args(["--platform", "linux/amd64,linux/arm64"])
        .run()
        .success()
        .stderr_has("dependencies for linux/arm64");
    let raw: serde_json::Value = serde_json::from_str(&run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{repo}:1.0"))))
    .unwrap();
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let out = run(Command::new("skopeo")
            .args([
                "inspect",
                "--config",
                "--tls-verify=false",
                "--override-arch",
                arch,
            ])
            .arg(format!("docker://{repo}:1.0")));
        let config: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(config["architecture"], arch);
        assert_eq!(config["config"]["WorkingDir"], "/opt/prefect/e2e-flow");
    }
}

/// The dependency-cache record is a convenience: when writing it fails, the pushed image is still reported
/// and handed over (issue 8, item 9).
#[test]
fn a_failed_cache_record_does_not_fail_a_pushed_build() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let proxy = crate::proxy::start_with(
        &svc("REGISTRY_PLAIN"),
        crate::proxy::Fault::FailTagsStartingWith("flowship-deps-"),
    );
    let keep = tempfile::tempdir().unwrap();
    let dotenv = keep.path().join("build.env");
    let o = plain(flowship())
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .env("FLOWSHIP_HTTP_RETRIES", "0")
        .args([
            "build",
            "--image",
            &format!("{}/it/nocache-{}", proxy.addr, token()),
            "--tag",
            "1.0",
        ])
        .args([
            "--base",
            &base,
            "--context",
            flow_project(dir.path()).to_str().unwrap(),
        ])
        .args(["--dotenv", dotenv.to_str().unwrap()])
        .run();
    o.success()
        .stderr_has("dependency cache record")
        .stderr_has("was not written");
    assert!(
        std::fs::read_to_string(&dotenv)
            .unwrap()
            .contains("FLOWSHIP_IMAGE=")
    );
}

/// `--dry-run` writes nothing, an OCI layout included (issue 8, item 9).
#[test]
fn a_dry_run_writes_no_layout() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let layout = dir.path().join("layout");
    plain(flowship())
        .args([
            "--dry-run",
            "build",
            "--no-push",
            "--oci-layout",
            layout.to_str().unwrap(),
        ])
        .args([
            "--image",
            &format!("{}/it/dry-{}", svc("REGISTRY_PLAIN"), token()),
            "--tag",
            "1.0",
        ])
        .args([
            "--base",
            &base,
            "--context",
            flow_project(dir.path()).to_str().unwrap(),
        ])
        .run()
        .success()
        .stderr_has("dry run: would write");
    assert!(!layout.exists(), "a dry run wrote the layout");
}

/// Builds `project` onto `base` into a fresh repository with `path` as PATH; the outcome and the image's
/// layer count.
fn build_with_path(base: &str, project: &Path, path: &str) -> (crate::harness::Outcome, usize) {
    let repo = format!("{}/it/installer-{}", svc("REGISTRY_PLAIN"), token());
    let o = plain(flowship())
        .env("PATH", path)
        .args(["build", "--image", &repo, "--tag", "1.0", "--base", base])
        .args(["--context", project.to_str().unwrap(), "-v"])
        .run();
    o.success();
    let layers = skopeo_inspect(&format!("{repo}:1.0"), false)["Layers"]
        .as_array()
        .map_or(0, Vec::len);
    (o, layers)
}

/// A requirements file that names nothing (comments, blank lines) runs no installer: with neither uv nor pip
/// on PATH the build succeeds, and the image is the base plus the code layer.
#[test]
fn a_requirements_file_naming_nothing_runs_no_installer() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(&dir.path().join("p"));
    std::fs::write(project.join("requirements.txt"), "# nothing yet\n\n   \n").unwrap();
    let empty = dir.path().join("no-tools");
    std::fs::create_dir_all(&empty).unwrap();
    let (o, layers) = build_with_path(&base, &project, empty.to_str().unwrap());
    assert_eq!(layers, 2, "base + code, no dependency layer:\n{o}");
    assert!(!o.stderr.contains("dependencies for"), "{o}");
}

/// uv is preferred over pip when both are on PATH, and what it installs is what pip would: the dependency in
/// the dependency layer.
#[test]
fn uv_is_preferred_over_pip_when_on_path() {
    let uv = svc("UV");
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(&dir.path().join("p"));
    // A requirement no other test builds, so the registry's dependency cache cannot answer for uv.
    std::fs::write(
        project.join("requirements.txt"),
        format!("six==1.16.0\n# {}\n", token()),
    )
    .unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&uv, bin.join("uv")).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let (o, layers) = build_with_path(&base, &project, &path);
    assert!(
        o.stderr.contains("installed with uv 0.13"),
        "uv, not pip, installed the dependencies:\n{o}"
    );
    assert_eq!(layers, 3, "base + dependencies + code:\n{o}");
}

/// A project that declares dependencies (a lock, `pyproject.toml`) but has no requirements file, or whose
/// `requires-python` the base's Python does not meet, is refused before anything is pushed: never a
/// silently broken image.
#[test]
fn declared_dependencies_without_requirements_and_a_python_that_does_not_fit_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(&dir.path().join("p"));
    std::fs::remove_file(project.join("requirements.txt")).unwrap();
    std::fs::write(
        project.join("pyproject.toml"),
        "[project]\nname = \"p\"\nversion = \"1\"\nrequires-python = \">=3.12\"\ndependencies = [\"six\"]\n",
    )
    .unwrap();
    let repo = format!("{}/it/declared-{}", svc("REGISTRY_PLAIN"), token());
    let build = || {
        plain(flowship())
            .args(["build", "--image", &repo, "--tag", "1.0", "--base", &base])
            .args(["--context", project.to_str().unwrap()])
            .run()
    };
    build()
        .code(2)
        .stderr_has("pyproject.toml declares dependencies, but there is no requirements file")
        .stderr_has("uv export --frozen");
    std::fs::write(project.join("requirements.txt"), "# exported: none\n").unwrap();
    build()
        .code(2)
        .stderr_has("has Python 3.11")
        .stderr_has("requires-python is `>=3.12`");
    let pushed = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{repo}:1.0"))
        .output()
        .unwrap();
    assert!(!pushed.status.success(), "nothing pushed");
}

/// A uv project (pyproject.toml + uv.lock, no requirements file) is built with exactly the locked versions;
/// a lock out of date with pyproject.toml is refused, as `uv sync --locked` refuses it.
#[test]
fn a_uv_lock_is_installed_as_locked_and_a_stale_lock_is_refused() {
    let uv = svc("UV");
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(&dir.path().join("p"));
    std::fs::remove_file(project.join("requirements.txt")).unwrap();
    let pyproject = |deps: &str| {
        std::fs::write(
            project.join("pyproject.toml"),
            format!("[project]\nname = \"p-{}\"\nversion = \"1\"\nrequires-python = \">=3.10\"\ndependencies = [{deps}]\n\n[dependency-groups]\ndev = [\"idna==3.7\"]\n", token()),
        )
        .unwrap();
    };
    pyproject("\"six==1.16.0\"");
    let lock = Command::new(&uv)
        .arg("lock")
        .current_dir(&project)
        .env("UV_SYSTEM_CERTS", "1")
        .env("UV_NATIVE_TLS", "1")
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "{}",
        String::from_utf8_lossy(&lock.stderr)
    );
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&uv, bin.join("uv")).unwrap();
    let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
    let (o, layers) = build_with_path(&base, &project, &path);
    assert_eq!(layers, 3, "base + the locked dependencies + code:\n{o}");
    // A dependency added to pyproject.toml but not locked: refused, naming the fix.
    pyproject("\"six==1.16.0\", \"idna\"");
    let repo = format!("{}/it/stale-lock-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .env("PATH", &path)
        .args(["build", "--image", &repo, "--tag", "1.0", "--base", &base])
        .args(["--context", project.to_str().unwrap()])
        .run()
        .code(2)
        .stderr_has("uv.lock is out of date")
        .stderr_has("uv lock");
}

/// The installer (a child process) gets none of flowship's secret variables: a stand-in `uv` records the
/// environment it was given.
#[test]
fn the_installer_gets_no_secret_variable() {
    use crate::harness::SENTINEL;
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(&dir.path().join("p"));
    std::fs::write(
        project.join("requirements.txt"),
        format!("six\n# {}\n", token()),
    )
    .unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let dump = dir.path().join("env.txt");
    let uv = bin.join("uv");
    std::fs::write(
        &uv,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'uv 0.0.1'; exit 0; fi\nenv >> {}\nexit 1\n",
            dump.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&uv, std::fs::Permissions::from_mode(0o755)).unwrap();
    let repo = format!("{}/it/scrubbed-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env("FLOWSHIP_GIT_TOKEN", SENTINEL)
        .env("PREFECT_API_AUTH_STRING", format!("admin:{SENTINEL}"))
        .env("HARBOR_PASSWORD", SENTINEL)
        .args(["build", "--image", &repo, "--tag", "1.0", "--base", &base])
        .args(["--context", project.to_str().unwrap()])
        .run()
        .code(2);
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(seen.contains("PATH="), "the stand-in ran: {seen}");
    assert!(
        !seen.contains(SENTINEL),
        "a secret reached the installer:\n{seen}"
    );
}

/// `--image-env` / `image.env` set the image's environment: `PYTHONPATH` joins after flowship's dependency
/// path (a monorepo's `src`), others are set as given; a value holding a secret is refused (exit 2) before
/// anything is pushed, since anyone who can pull reads an image's config.
#[test]
fn image_env_sets_the_images_environment_and_never_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let project = flow_project(dir.path());
    let repo = format!("{}/it/env-{}", svc("REGISTRY_PLAIN"), token());
    let build = |extra: &[&str]| {
        plain(flowship())
            .env("FLOWSHIP_GIT_TOKEN", crate::harness::SENTINEL)
            .args(["build", "--image", &repo, "--tag", "1.0", "--base", &base])
            .args(["--context", project.to_str().unwrap()])
            .args(extra)
            .run()
    };
    build(&[
        "--image-env",
        "PYTHONPATH=/opt/prefect/example-project/src",
        "--image-env",
        "FLOWS_MODE=batch",
    ])
    .success();
    let config = skopeo_inspect(&format!("{repo}:1.0"), true);
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"PYTHONPATH=/opt/flowship/site-packages:/opt/prefect/example-project/src"),
        "{env:?}"
    );
    assert!(env.contains(&"FLOWS_MODE=batch"), "{env:?}");
    build(&[
        "--image-env",
        &format!("TOKEN={}", crate::harness::SENTINEL),
    ])
    .code(2)
    .stderr_has("holds a secret");
    build(&["--image-env", "not a variable"])
        .code(2)
        .stderr_has("is not KEY=VALUE");
}
