//! Issue 17's proof: real public Prefect flow projects (`fixtures/real-projects/`, byte for byte with
//! `SOURCES.md`; flow files are stubs that keep their imports and signatures), each built by the real
//! `flowship build` onto the harness's Prefect base exactly as the project ships (no export by hand), pushed
//! to the local registry, and run under podman: every deployment's entrypoint loads with Prefect's own
//! `load_flow_from_entrypoint`, in the image. Projects that cannot work are refused with exit 2 and a hint.
//! `cases.json` says, per project, which of those it is and why.

use crate::harness::svc;
use crate::images::token;
use crate::packaging::podman_run;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real-projects")
}

fn case(slug: &str) -> Value {
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap())
            .unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|c| c["slug"] == slug)
        .unwrap_or_else(|| panic!("{slug} is not in cases.json"))
        .clone()
}

/// A copy of the project (the build reads the context; nothing is written into the fixture).
fn copy(slug: &str, dir: &Path) -> PathBuf {
    let to = dir.join(slug);
    let out = Command::new("cp")
        .arg("-r")
        .arg(fixtures().join(slug))
        .arg(&to)
        .output()
        .unwrap();
    assert!(out.status.success());
    to
}

/// `flowship build` of the project as its case says (its requirements choice and variables).
fn build_case(c: &Value, project: &Path, repo: &str) -> crate::harness::Outcome {
    let mut extra: Vec<String> = Vec::new();
    if let Some(r) = c["requirements"].as_str() {
        extra.extend([
            "--requirements".into(),
            project.join(r).display().to_string(),
        ]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    // Variables the project's own build needs (hatch-vcs reads its version from git, absent here).
    crate::packaging::build_with_env(
        &svc("PREFECT_BASE"),
        &project.join(c["context"].as_str().unwrap_or(".")),
        repo,
        &extra,
        c["env"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
    )
}

const LOAD: &str = "import sys\nfrom prefect.flows import load_flow_from_entrypoint\nfor e in sys.argv[1:]:\n    print('loaded', e, load_flow_from_entrypoint(e).name)\n";

/// Build the project, then, in the image under podman, load every entrypoint (and run its console script).
fn builds_and_every_flow_loads(slug: &str) {
    let c = case(slug);
    assert_eq!(c["status"], "built", "{slug}: {c}");
    let dir = tempfile::tempdir().unwrap();
    let project = copy(slug, dir.path());
    let repo = format!("{}/it/real-{}", svc("REGISTRY_PLAIN"), token());
    build_case(&c, &project, &repo).success();
    let image = format!("{repo}:1.0");
    let workdir = format!(
        "/opt/prefect/{slug}/{}",
        c["workdir"].as_str().unwrap_or(".")
    );
    let entrypoints: Vec<&str> = c["entrypoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!entrypoints.is_empty(), "{slug}: no entrypoint to load");
    let mut args = vec!["-w", &workdir, &image, "python3", "-c", LOAD];
    args.extend(entrypoints.iter().copied());
    let out = podman_run_args(&args);
    for e in &entrypoints {
        assert!(out.contains(&format!("loaded {e} ")), "{slug}: {e}:\n{out}");
    }
    if let Some(script) = c["script"].as_array() {
        let script: Vec<&str> = script.iter().filter_map(Value::as_str).collect();
        let out = podman_run(&image, &script);
        assert!(!out.trim().is_empty(), "{slug}: {script:?} printed nothing");
    }
}

/// `podman run --rm --pull always ARGS...` (options before the image), stdout.
fn podman_run_args(args: &[&str]) -> String {
    let out = Command::new("podman")
        .args(["run", "--rm", "--pull", "always"])
        .args(args)
        .output()
        .expect("podman runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "podman run {args:?}: {text}");
    text
}

/// A project that cannot give a working image is refused (exit 2, a hint naming the cause), nothing pushed.
fn is_refused(slug: &str, says: &str) {
    let c = case(slug);
    assert_eq!(c["status"], "refused", "{slug}: {c}");
    let dir = tempfile::tempdir().unwrap();
    let project = copy(slug, dir.path());
    let repo = format!("{}/it/real-{}", svc("REGISTRY_PLAIN"), token());
    build_case(&c, &project, &repo).code(2).stderr_has(says);
}

#[test]
fn uv_lock_package_with_a_console_script_prefect_pack() {
    builds_and_every_flow_loads("zzstoatzz__prefect-pack");
}

#[test]
fn uv_lock_package_with_a_source_only_dependency_prefect_modal() {
    builds_and_every_flow_loads("Ben-Epstein__prefect-modal");
}

#[test]
fn requirements_naming_the_project_itself_with_polars_idx() {
    builds_and_every_flow_loads("Baskakovs__idx");
}

#[test]
fn poetry_lock_with_three_source_only_packages_pea_pme_pulse() {
    builds_and_every_flow_loads("CamilleLarpin__pea-pme-pulse");
}

#[test]
fn requirements_with_duckdb_wolf_tracks() {
    builds_and_every_flow_loads("Axioq__wolf-tracks");
}

#[test]
fn requirements_with_pandas_numpy_pyarrow_28_flows_ingest_gcp_mssql() {
    builds_and_every_flow_loads("9MRTAE__ingest-gcp-mssql");
}

#[test]
fn projects_that_cannot_work_are_refused_with_their_cause() {
    is_refused("Artoss__labour_market_AU", "declares dependencies");
    is_refused(
        "BTHiggins__WeatherData",
        "`pywin32==311` has wheels for other platforms only",
    );
    is_refused("AuckeBos__predicting-glucose-levels", "pendulum==2.1.2");
    // A member of a uv workspace on the 3.11 base: the root's requires-python holds for it too (the
    // workspace itself builds on the 3.13 base, `uv_workspace_monorepo_on_python_3_13_pipelines_v3`).
    let slug = "RJ-SMTR__pipelines_v3";
    let c = case(slug);
    let dir = tempfile::tempdir().unwrap();
    let project = copy(slug, dir.path());
    let repo = format!("{}/it/real-{}", svc("REGISTRY_PLAIN"), token());
    crate::packaging::build_with_env(
        &svc("PREFECT_BASE"),
        &project.join(c["member"].as_str().unwrap()),
        &repo,
        &[],
        Vec::new(),
    )
    .code(2)
    .stderr_has("RJ-SMTR__pipelines_v3/pyproject.toml requires-python is `>=3.13,<3.14`");
}

/// Run in the image, in the workspace's code directory: where `pipelines.common` is imported from, which
/// distributions are installed, and any `.pth` line naming a directory (an editable install leaks one).
const WORKSPACE_CHECK: &str = "import pathlib, site, sys\nimport importlib.metadata as m\nimport pipelines.common\nprint('common from', pipelines.common.__file__)\nfor n in sys.argv[1:]:\n    try:\n        print('installed', n, m.version(n))\n    except m.PackageNotFoundError:\n        print('absent', n)\nfor d in sys.path:\n    for p in pathlib.Path(d or '.').glob('*.pth'):\n        for l in p.read_text().splitlines():\n            if l.startswith('/') or l.startswith('.'):\n                print('pth path', p, l)\n";

/// Issue 17's uv workspace monorepo: ~80 virtual members whose dependencies the root declares, shared code
/// in `pipelines/common` imported as `pipelines.common` from the repository root, Python 3.13. Built as its
/// own Dockerfile and prefect.yaml build it (the workspace root as the context, the code at
/// `/opt/prefect/pipelines_v3`) onto Debian trixie's Python 3.13: the member's flow loads, the shared code
/// comes from the code layer, nothing is editable, and a package only another member needs stays out.
#[test]
fn uv_workspace_monorepo_on_python_3_13_pipelines_v3() {
    let slug = "RJ-SMTR__pipelines_v3";
    let c = case(slug);
    assert_eq!(c["status"], "built", "{slug}: {c}");
    let dir = tempfile::tempdir().unwrap();
    let project = copy(slug, dir.path());
    let repo = format!("{}/it/real-{}", svc("REGISTRY_PLAIN"), token());
    let workdir = c["image_workdir"].as_str().unwrap();
    crate::packaging::build_with_env(
        &svc(c["base"].as_str().unwrap()),
        &project.join(c["context"].as_str().unwrap()),
        &repo,
        &["--workdir", workdir],
        Vec::new(),
    )
    .success()
    .stderr_has("dependencies from uv.lock");
    let image = format!("{repo}:1.0");
    let entrypoints: Vec<&str> = c["entrypoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut args = vec!["-w", workdir, &image, "python3", "-c", LOAD];
    args.extend(entrypoints.iter().copied());
    let out = podman_run_args(&args);
    for e in &entrypoints {
        assert!(out.contains(&format!("loaded {e} ")), "{slug}: {e}:\n{out}");
    }
    // prefect as the root pins it; jaydebeapi and impyla only for capture__serpro_autuacao (`uv sync
    // --all-packages`, the project's own Dockerfile, would install them); `common` and the members are no
    // packages (virtual): not installed, their code is in the code layer.
    let out = podman_run_args(&[
        "-w",
        workdir,
        &image,
        "python3",
        "-c",
        WORKSPACE_CHECK,
        "prefect",
        "pandas",
        "dbt-bigquery",
        "jaydebeapi",
        "impyla",
        "common",
        "capture-jae-auxiliar",
    ]);
    for want in [
        "common from /opt/prefect/pipelines_v3/pipelines/common/__init__.py",
        "installed prefect 3.7.1",
        "installed pandas ",
        "installed dbt-bigquery 1.10.1",
        "absent jaydebeapi",
        "absent impyla",
        "absent common",
        "absent capture-jae-auxiliar",
    ] {
        assert!(out.contains(want), "{slug}: no `{want}`:\n{out}");
    }
    assert!(
        !out.contains("pth path"),
        "{slug}: a .pth names a directory:\n{out}"
    );
    // The member's own context: an empty closure and only its folder, which the build says.
    crate::packaging::build_with_env(
        &svc(c["base"].as_str().unwrap()),
        &project.join(c["member"].as_str().unwrap()),
        &format!("{repo}-member"),
        &[],
        Vec::new(),
    )
    .success()
    .stderr_has("the member `capture__jae_auxiliar` is no package and declares no dependencies")
    .stderr_has("the workspace root's 20 dependencies are not its own");
}

/// A project whose frozen pins are older than the base's own packages: built (a pin wins), with a warning
/// naming every shadowed package, and the image shows why it warned (prefect no longer imports).
#[test]
fn pins_that_shadow_the_bases_packages_are_named_c3dc() {
    let slug = "CBIIT__C3DC-Prefect-Dataloader";
    let c = case(slug);
    assert_eq!(c["status"], "warned", "{slug}: {c}");
    let dir = tempfile::tempdir().unwrap();
    let project = copy(slug, dir.path());
    let repo = format!("{}/it/real-{}", svc("REGISTRY_PLAIN"), token());
    build_case(&c, &project, &repo)
        .success()
        .stderr_has("shadows the base's own packages with other versions (base → layer)")
        .stderr_has("→ 4.12.2");
    let out = Command::new("podman")
        .args(["run", "--rm", "--pull", "always", &format!("{repo}:1.0")])
        .args(["python3", "-c", "import prefect"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "prefect imported despite the shadowing"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("typing_extensions"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The collection itself: at least 12 projects, every file `SOURCES.md` calls byte for byte has the sha256
/// it records, and every case says what it is.
#[test]
fn the_collection_is_what_sources_md_says() {
    use sha2::{Digest, Sha256};
    let all: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("cases.json")).unwrap())
            .unwrap();
    let cases = all.as_array().unwrap();
    assert!(cases.len() >= 12, "{} projects", cases.len());
    let sources = std::fs::read_to_string(fixtures().join("SOURCES.md")).unwrap();
    let mut checked = 0;
    for line in sources.lines().filter(|l| l.ends_with("| byte for byte |")) {
        let cols: Vec<&str> = line
            .split('|')
            .map(|c| c.trim().trim_matches('`'))
            .collect();
        // | project | repository | commit | path | sha256 | licence | in this corpus |
        let (slug, path, sha) = (cols[1], cols[4], cols[5]);
        let bytes = std::fs::read(fixtures().join(slug).join(path))
            .unwrap_or_else(|e| panic!("{slug}/{path}: {e}"));
        assert_eq!(hex::encode(Sha256::digest(&bytes)), sha, "{slug}/{path}");
        checked += 1;
    }
    assert!(checked >= 30, "{checked} files checked");
    for c in cases {
        let status = c["status"].as_str().unwrap();
        assert!(
            ["built", "refused", "warned", "not-in-ci"].contains(&status),
            "{c}"
        );
        assert!(status == "built" || c["why"].is_string(), "{c}");
        assert!(sources.contains(c["repo"].as_str().unwrap()), "{c}");
    }
}

/// Issue 17: a real project's image runs a flow to COMPLETED through Prefect's own docker worker (podman's
/// Docker API), in a container of the pinned digest. The project's own prefect.yaml clones its GitHub
/// repository in its pull step, which this network cannot reach: the deployment is registered from a
/// prefect.yaml of the harness's (the code is in the image, where `flowship build` put it).
#[test]
fn a_real_project_runs_to_completed_through_the_docker_worker() {
    use crate::release::prefect_get;
    use crate::worker::{Worker, container_image_digest, post, run_logs, wait_for_run};
    let slug = "zzstoatzz__prefect-pack";
    let c = case(slug);
    let dir = tempfile::tempdir().unwrap();
    let project = copy(slug, dir.path());
    let tok = token();
    let repo = format!("{}/it/real-{tok}", svc("REGISTRY_PLAIN"));
    let built = build_case(&c, &project, &repo);
    let digest = built.success().json()["image"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        project.join("prefect.yaml"),
        format!(
            "name: prefect-pack\nbuild:\n  - prefect_docker.deployments.steps.build_docker_image:\n      id: build-image\n      image_name: {repo}\n      tag: \"1.0\"\npull:\n  - prefect.deployments.steps.set_working_directory:\n      directory: /opt/prefect/{slug}\ndeployments:\n  - name: print-info-{tok}\n    entrypoint: flows/hello.py:print_info\n    work_pool:\n      name: real-{tok}\n      job_variables:\n        image: \"{{{{ build-image.image }}}}\"\n"
        ),
    )
    .unwrap();
    let api = svc("PREFECT_PLAIN");
    crate::images::plain(crate::harness::flowship())
        .cwd(&project)
        .env("PREFECT_API_URL", &api)
        .env("FLOWSHIP_CREATE_WORK_POOL", "docker")
        .args(["register", "--image", &format!("{repo}:1.0@{digest}")])
        .run()
        .success();
    let d = prefect_get(
        &api,
        None,
        &format!("/deployments/name/print-info/print-info-{tok}"),
    );
    let id = d["id"].as_str().unwrap_or_else(|| panic!("{d}"));
    let worker = Worker::start(&api, &format!("real-{tok}"));
    let run = post(
        &api,
        &format!("/deployments/{id}/create_flow_run"),
        &serde_json::json!({}),
    );
    let run = wait_for_run(&api, run["id"].as_str().unwrap(), &worker);
    assert_eq!(
        run["state"]["type"],
        "COMPLETED",
        "{}\nlogs:\n{}\nworker:\n{}",
        run["state"],
        run_logs(&api, run["id"].as_str().unwrap()),
        worker.logs()
    );
    assert_eq!(container_image_digest(&run), digest);
}
