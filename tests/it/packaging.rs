//! Issue 17: projects as they are shaped in the wild, built by the real `flowship build` onto the real Python
//! base and run under podman: a package (its wheel in a project layer of its own, above a dependency layer
//! that code changes leave cached, its console script on `PATH`), a member of a uv workspace (only its
//! closure, its workspace dependencies as wheels), and poetry.lock / pylock.toml projects.

use crate::harness::{Outcome, flowship, svc};
use crate::images::{plain, run, skopeo_inspect, token};
use std::path::{Path, PathBuf};
use std::process::Command;

/// uv (the harness's) on a PATH of its own, with the system's tools after it.
pub(crate) fn uv_path(dir: &Path) -> String {
    let bin = dir.join("uv-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let _ = std::os::unix::fs::symlink(svc("UV"), bin.join("uv"));
    format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display())
}

/// uv's cache, shared between runs (beside the harness's uv): wheels are downloaded once per machine.
pub(crate) fn uv_cache() -> String {
    let uv = PathBuf::from(svc("UV"));
    let cache = uv.parent().unwrap().parent().unwrap().join("uv-cache");
    cache.display().to_string()
}

/// Run the harness's uv in `dir` (for `uv lock`, `uv export`), trusting the system's CA store.
pub(crate) fn uv(dir: &Path, args: &[&str]) -> String {
    run(Command::new(svc("UV"))
        .args(args)
        .current_dir(dir)
        .env("UV_CACHE_DIR", uv_cache())
        .env("UV_SYSTEM_CERTS", "1")
        .env("UV_NATIVE_TLS", "1"))
}

/// `flowship build` of `context` onto `base` into `repo:1.0`, with uv on PATH.
pub(crate) fn build(base: &str, context: &Path, repo: &str, extra: &[&str]) -> Outcome {
    build_with_env(base, context, repo, extra, Vec::new())
}

/// [`build`] with more variables.
pub(crate) fn build_with_env(
    base: &str,
    context: &Path,
    repo: &str,
    extra: &[&str],
    env: Vec<(String, String)>,
) -> Outcome {
    // uv's directory outside the project: a workspace's `members` globs would take it for a member.
    let scratch = tempfile::tempdir().unwrap();
    let mut f = plain(flowship());
    for (k, v) in env {
        f = f.env(&k, v);
    }
    f.env("PATH", uv_path(scratch.path()))
        .env("UV_CACHE_DIR", uv_cache())
        .build_onto(repo, base, context)
        .args(["-v"])
        .args(extra)
        .run()
}

/// `podman run` of `image` with `args`; stdout, or a panic with what went wrong.
pub(crate) fn podman_run(image: &str, args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(["run", "--rm", "--pull", "always", image])
        .args(args)
        .output()
        .expect("podman runs");
    assert!(
        out.status.success(),
        "podman run {image} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn layers(reference: &str) -> Vec<String> {
    skopeo_inspect(reference, false)["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const HATCH: &str =
    "[build-system]\nrequires = [\"hatchling\"]\nbuild-backend = \"hatchling.build\"\n";

/// A src-layout package with a console script, a flow file that imports it, and a locked dependency.
fn package_project(dir: &Path, name: &str, value: &str) -> PathBuf {
    let p = dir.join(name);
    write(
        &p.join("pyproject.toml"),
        &format!(
            "[project]\nname = \"{name}\"\nversion = \"0.1.0\"\nrequires-python = \">=3.10\"\ndependencies = [\"six==1.16.0\"]\n[project.scripts]\n{name}-hello = \"{name}.cli:main\"\n[dependency-groups]\ndev = [\"idna==3.7\"]\n{HATCH}"
        ),
    );
    write(&p.join(format!("src/{name}/__init__.py")), "");
    write(
        &p.join(format!("src/{name}/cli.py")),
        &format!(
            "import six\n\ndef main():\n    print('hello from {value} with six', six.__version__)\n"
        ),
    );
    write(
        &p.join("flows/flow.py"),
        &format!("from {name}.cli import main\n"),
    );
    p
}

/// Issue 17: a package project (src layout) is installed from its wheel, in a layer between the dependencies
/// and the code; its console script runs in the image under podman with the image's Python; a code-only
/// change rebuilds the project and code layers and reuses the dependency layer from the registry.
#[test]
fn a_package_is_installed_from_its_wheel_and_a_code_change_keeps_the_dependency_layer() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("pkg{}", token());
    let project = package_project(dir.path(), &name, "v1");
    uv(&project, &["lock", "--quiet"]);
    let repo = format!("{}/it/package-{}", svc("REGISTRY_PLAIN"), token());
    let base = svc("PYTHON_BASE");
    let first = build(&base, &project, &repo, &[]);
    first.success().stderr_has("installed from wheels");
    let before = layers(&format!("{repo}:1.0"));
    let out = podman_run(&format!("{repo}:1.0"), &[&format!("{name}-hello")]);
    assert_eq!(out.trim(), "hello from v1 with six 1.16.0");
    // The dev group is left out; nothing is editable.
    let listing = podman_run(
        &format!("{repo}:1.0"),
        &[
            "sh",
            "-c",
            "ls /opt/flowship/site-packages; cat /opt/flowship/site-packages/*.pth 2>/dev/null; true",
        ],
    );
    assert!(!listing.contains("idna"), "{listing}");
    assert!(!listing.contains(".pth"), "{listing}");
    // A code-only change.
    write(
        &project.join(format!("src/{name}/cli.py")),
        "import six\n\ndef main():\n    print('hello from v2 with six', six.__version__)\n",
    );
    let second = build(&base, &project, &repo, &[]);
    second.success().stderr_has("reused from the registry");
    let after = layers(&format!("{repo}:1.0"));
    assert_eq!(
        before.len(),
        after.len(),
        "base + dependencies + project + code"
    );
    let n = before.len();
    assert_eq!(
        before[n - 3],
        after[n - 3],
        "the dependency layer is the same blob"
    );
    assert_ne!(before[n - 2], after[n - 2], "the project layer changed");
    let out = podman_run(&format!("{repo}:1.0"), &[&format!("{name}-hello")]);
    assert_eq!(out.trim(), "hello from v2 with six 1.16.0");
}

/// Issue 17: a flow-code-only change rebuilds no wheel: the package's wheel and its installed files come from
/// the local cache (`FLOWSHIP_CACHE_DIR`), so the project layer is the same blob and only the code layer
/// changes; a change to the package's own code rebuilds the wheel, and the image runs the new code (a
/// stale wheel would print v1).
#[test]
fn a_flow_code_change_reuses_the_wheel_and_a_package_change_rebuilds_it() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("pkg{}", token());
    let project = package_project(dir.path(), &name, "v1");
    uv(&project, &["lock", "--quiet"]);
    let repo = format!("{}/it/wheel-cache-{}", svc("REGISTRY_PLAIN"), token());
    let base = svc("PYTHON_BASE");
    let cache = dir.path().join("flowship-cache");
    let env = || {
        vec![(
            "FLOWSHIP_CACHE_DIR".to_string(),
            cache.display().to_string(),
        )]
    };
    let first = build_with_env(&base, &project, &repo, &[], env());
    first.success().stderr_has("installed from wheels");
    let before = layers(&format!("{repo}:1.0"));
    write(
        &project.join("flows/flow.py"),
        &format!("from {name}.cli import main\n\nmain()\n"),
    );
    let second = build_with_env(&base, &project, &repo, &[], env());
    second
        .success()
        .stderr_has("wheel reused from the local cache")
        .stderr_has("installed files reused from the local cache");
    let after = layers(&format!("{repo}:1.0"));
    let n = before.len();
    assert_eq!(
        before[..n - 1],
        after[..n - 1],
        "base, dependencies and project are the same blobs"
    );
    assert_ne!(before[n - 1], after[n - 1], "the code layer changed");
    write(
        &project.join(format!("src/{name}/cli.py")),
        "import six\n\ndef main():\n    print('hello from v2 with six', six.__version__)\n",
    );
    let third = build_with_env(&base, &project, &repo, &[], env());
    third.success().stderr_has("installed from wheels");
    assert!(!third.stderr.contains("wheel reused"), "{third}");
    let out = podman_run(&format!("{repo}:1.0"), &[&format!("{name}-hello")]);
    assert_eq!(out.trim(), "hello from v2 with six 1.16.0");
}

/// Issue 17: a member of a uv workspace (the context is `flows/etl`, the lock is at the root) gets only its
/// own dependency closure, and the workspace package it imports is built and installed as a wheel.
#[test]
fn a_uv_workspace_member_gets_its_closure_and_its_workspace_dependency() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mono");
    let t = token();
    write(
        &root.join("pyproject.toml"),
        &format!(
            "[project]\nname = \"mono{t}\"\nversion = \"0\"\nrequires-python = \">=3.10\"\n[tool.uv.workspace]\nmembers = [\"packages/*\", \"flows/*\"]\n"
        ),
    );
    write(
        &root.join("packages/shared/pyproject.toml"),
        &format!(
            "[project]\nname = \"shared{t}\"\nversion = \"0.1\"\nrequires-python = \">=3.10\"\ndependencies = [\"six==1.16.0\"]\n{HATCH}[tool.hatch.build.targets.wheel]\npackages = [\"shared\"]\n"
        ),
    );
    write(
        &root.join("packages/shared/shared/__init__.py"),
        "VALUE = 'shared code'\n",
    );
    write(
        &root.join("flows/etl/pyproject.toml"),
        &format!(
            "[project]\nname = \"etl{t}\"\nversion = \"0.1\"\nrequires-python = \">=3.10\"\ndependencies = [\"shared{t}\", \"idna==3.7\"]\n[tool.uv.sources]\nshared{t} = {{ workspace = true }}\n"
        ),
    );
    write(
        &root.join("flows/etl/flow.py"),
        "import idna, six\nfrom shared import VALUE\nprint(VALUE)\n",
    );
    write(
        &root.join("flows/other/pyproject.toml"),
        &format!(
            "[project]\nname = \"other{t}\"\nversion = \"0.1\"\nrequires-python = \">=3.10\"\ndependencies = [\"certifi\"]\n"
        ),
    );
    uv(&root, &["lock", "--quiet"]);
    let repo = format!("{}/it/workspace-{}", svc("REGISTRY_PLAIN"), token());
    build(&svc("PYTHON_BASE"), &root.join("flows/etl"), &repo, &[]).success();
    let image = format!("{repo}:1.0");
    assert_eq!(
        podman_run(&image, &["python3", "flow.py"]).trim(),
        "shared code"
    );
    let listing = podman_run(&image, &["ls", "/opt/flowship/site-packages"]);
    assert!(
        !listing.contains("certifi"),
        "another member's dependency:\n{listing}"
    );
    // Named explicitly (image.workspace) from a context outside it: the same member.
    let repo2 = format!("{}/it/workspace-{}", svc("REGISTRY_PLAIN"), token());
    build(
        &svc("PYTHON_BASE"),
        &root.join("flows/etl"),
        &repo2,
        &["--workspace", root.to_str().unwrap()],
    )
    .success();
}

/// Issue 17: poetry.lock (main group, as locked) and pylock.toml projects build without any export by hand.
#[test]
fn poetry_and_pylock_projects_are_installed_as_locked() {
    let dir = tempfile::tempdir().unwrap();
    let t = token();
    let poetry = dir.path().join("poetry");
    write(
        &poetry.join("pyproject.toml"),
        &format!(
            "[tool.poetry]\nname = \"p{t}\"\nversion = \"0.1.0\"\ndescription = \"\"\nauthors = []\npackage-mode = false\n[tool.poetry.dependencies]\npython = \"^3.10\"\nsix = \"^1.16\"\n[tool.poetry.group.dev.dependencies]\nidna = \"*\"\n"
        ),
    );
    write(
        &poetry.join("poetry.lock"),
        "[[package]]\nname = \"six\"\nversion = \"1.16.0\"\ndescription = \"\"\noptional = false\npython-versions = \">=2.7\"\nfiles = []\n\n[[package]]\nname = \"idna\"\nversion = \"3.7\"\ndescription = \"\"\noptional = false\npython-versions = \">=3.5\"\nfiles = []\n\n[metadata]\nlock-version = \"2.0\"\npython-versions = \"^3.10\"\ncontent-hash = \"0\"\n",
    );
    write(
        &poetry.join("flow.py"),
        "import six\nprint(six.__version__)\n",
    );
    let repo = format!("{}/it/poetry-{}", svc("REGISTRY_PLAIN"), token());
    build(&svc("PYTHON_BASE"), &poetry, &repo, &[])
        .success()
        .stderr_has("poetry.lock");
    let image = format!("{repo}:1.0");
    assert_eq!(podman_run(&image, &["python3", "flow.py"]).trim(), "1.16.0");
    let listing = podman_run(&image, &["ls", "/opt/flowship/site-packages"]);
    assert!(
        !listing.contains("idna"),
        "the dev group is left out:\n{listing}"
    );

    // pylock.toml, as uv writes it from a lock.
    let pylock = dir.path().join("pylock");
    write(
        &pylock.join("pyproject.toml"),
        &format!(
            "[project]\nname = \"l{t}\"\nversion = \"0\"\nrequires-python = \">=3.10\"\ndependencies = [\"six==1.16.0\"]\n"
        ),
    );
    uv(&pylock, &["lock", "--quiet"]);
    uv(
        &pylock,
        &[
            "export",
            "--quiet",
            "--format",
            "pylock.toml",
            "-o",
            "pylock.toml",
        ],
    );
    std::fs::remove_file(pylock.join("uv.lock")).unwrap();
    write(
        &pylock.join("flow.py"),
        "import six\nprint(six.__version__)\n",
    );
    let repo = format!("{}/it/pylock-{}", svc("REGISTRY_PLAIN"), token());
    build(&svc("PYTHON_BASE"), &pylock, &repo, &[])
        .success()
        .stderr_has("pylock.toml");
    assert_eq!(
        podman_run(&format!("{repo}:1.0"), &["python3", "flow.py"]).trim(),
        "1.16.0"
    );
}

/// Issue 17: without uv, pip builds the project's wheel (`pip wheel --no-deps`) and installs it for the
/// target; the console script runs in the image as with uv.
#[test]
fn without_uv_pip_builds_and_installs_the_project() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("pip{}", token());
    let project = package_project(dir.path(), &name, "pip");
    std::fs::write(project.join("requirements.txt"), "six==1.16.0\n.\n").unwrap();
    let repo = format!("{}/it/package-pip-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .args([
            "build",
            "--image",
            &repo,
            "--tag",
            "1.0",
            "--base",
            &svc("PYTHON_BASE"),
        ])
        .args(["--context", project.to_str().unwrap(), "-v"])
        .run()
        .success()
        .stderr_has("installed with pip")
        .stderr_has("installed from wheels");
    let out = podman_run(&format!("{repo}:1.0"), &[&format!("{name}-hello")]);
    assert_eq!(out.trim(), "hello from pip with six 1.16.0");
}

/// A package index of the test's own that asks for a password (Basic auth): `python3 -m http.server` with a
/// check of the `Authorization` header in front, serving `simple/<name>/` pages over `dir`.
struct PrivateIndex {
    child: std::process::Child,
    url: String,
}

impl Drop for PrivateIndex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn private_index(dir: &Path, user: &str, password: &str) -> PrivateIndex {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = r#"
import base64, functools, http.server, sys
want = "Basic " + base64.b64encode(sys.argv[2].encode()).decode()
class H(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.end_headers()
            return
        super().do_GET()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), functools.partial(H, directory=sys.argv[3])).serve_forever()
"#;
    let child = Command::new("python3")
        .args([
            "-c",
            script,
            &port.to_string(),
            &format!("{user}:{password}"),
        ])
        .arg(dir)
        .spawn()
        .unwrap();
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    PrivateIndex {
        child,
        url: format!("http://127.0.0.1:{port}/simple"),
    }
}

/// Issue 17: a uv project whose dependency comes from its own `[[tool.uv.index]]` (explicit, pinned with
/// `[tool.uv.sources]`) behind a password: the index reaches the installer through the export, the
/// password through `~/.netrc` (NETRC) or uv's `UV_INDEX_<NAME>_PASSWORD`, and the password is in no output
/// and in no part of the image. An
/// index url holding the password itself is exit 2, the password not printed.
#[test]
fn a_projects_own_index_reaches_the_installer_and_its_password_stays_out() {
    let dir = tempfile::tempdir().unwrap();
    let t = token();
    let (name, password) = (format!("private{t}"), format!("idx-sentinel-{t}"));
    // The package the index serves.
    let lib = dir.path().join("lib");
    write(
        &lib.join("pyproject.toml"),
        &format!("[project]\nname = \"{name}\"\nversion = \"1.0\"\n{HATCH}"),
    );
    write(
        &lib.join(format!("src/{name}/__init__.py")),
        "WHERE = 'private index'\n",
    );
    let served = dir.path().join("served");
    let pkg_dir = served.join("simple").join(&name);
    std::fs::create_dir_all(&pkg_dir).unwrap();
    uv(
        &lib,
        &[
            "build",
            "--wheel",
            "--quiet",
            "--out-dir",
            pkg_dir.to_str().unwrap(),
        ],
    );
    let wheel = std::fs::read_dir(&pkg_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".whl"))
        .unwrap();
    write(
        &pkg_dir.join("index.html"),
        &format!("<a href=\"{wheel}\">{wheel}</a>\n"),
    );
    let index = private_index(&served, "reader", &password);
    let netrc = dir.path().join("netrc");
    write(
        &netrc,
        &format!("machine 127.0.0.1 login reader password {password}\n"),
    );
    // The flow project: no package of its own, one dependency from the private index.
    let project = dir.path().join("flow");
    let pyproject = |url: &str| {
        format!(
            "[project]\nname = \"flow\"\nversion = \"0.1\"\nrequires-python = \">=3.10\"\ndependencies = [\"{name}\"]\n[tool.uv]\npackage = false\n[[tool.uv.index]]\nname = \"private\"\nurl = \"{url}\"\nexplicit = true\n[tool.uv.sources]\n{name} = {{ index = \"private\" }}\n"
        )
    };
    write(&project.join("pyproject.toml"), &pyproject(&index.url));
    write(
        &project.join("flows/flow.py"),
        &format!("import {name}\nprint({name}.WHERE)\n"),
    );
    run(Command::new(svc("UV"))
        .args(["lock", "--quiet"])
        .current_dir(&project)
        .env("UV_CACHE_DIR", uv_cache())
        .env("NETRC", &netrc));
    let repo = format!("{}/it/private-index-{t}", svc("REGISTRY_PLAIN"));
    let netrc_env = || vec![("NETRC".to_string(), netrc.display().to_string())];
    let scratch = tempfile::tempdir().unwrap();
    let built = plain(flowship())
        .env("PATH", uv_path(scratch.path()))
        .env("UV_CACHE_DIR", uv_cache())
        .env("NETRC", netrc.display().to_string())
        .secret(&password)
        .build_onto(&repo, &svc("PYTHON_BASE"), &project)
        .run();
    built.success();
    let image = format!("{repo}:1.0");
    let out = podman_run(&image, &["python3", "/opt/prefect/flow/flows/flow.py"]);
    assert_eq!(out.trim(), "private index");
    let config = skopeo_inspect(&image, true).to_string();
    assert!(!config.contains(&password), "{config}");
    let everything = podman_run(
        &image,
        &[
            "sh",
            "-c",
            "cat -v /opt/flowship/site-packages/*/* 2>/dev/null; true",
        ],
    );
    assert!(!everything.contains(&password));
    // The password from uv's variables for the named index instead of ~/.netrc (another repository: no
    // dependency layer to reuse, the installer runs).
    let repo2 = format!("{repo}-vars");
    let scratch = tempfile::tempdir().unwrap();
    plain(flowship())
        .env("PATH", uv_path(scratch.path()))
        .env("UV_CACHE_DIR", uv_cache())
        .env("UV_INDEX_PRIVATE_USERNAME", "reader")
        .env("UV_INDEX_PRIVATE_PASSWORD", &password)
        .secret(&password)
        .build_onto(&repo2, &svc("PYTHON_BASE"), &project)
        .run()
        .success();
    let out = podman_run(
        &format!("{repo2}:1.0"),
        &["python3", "/opt/prefect/flow/flows/flow.py"],
    );
    assert_eq!(out.trim(), "private index");
    // The password in the index's url: refused before anything is built, and not printed.
    let with_password = index
        .url
        .replace("http://", &format!("http://reader:{password}@"));
    write(&project.join("pyproject.toml"), &pyproject(&with_password));
    run(Command::new(svc("UV"))
        .args(["lock", "--quiet"])
        .current_dir(&project)
        .env("UV_CACHE_DIR", uv_cache()));
    let refused = build_with_env(&svc("PYTHON_BASE"), &project, &repo, &[], netrc_env());
    refused
        .code(2)
        .stderr_has("has a credential in its url")
        .stderr_has("UV_INDEX_PRIVATE_USERNAME");
    assert!(
        !refused.stderr.contains(&password) && !refused.stdout.contains(&password),
        "{refused}"
    );
}
