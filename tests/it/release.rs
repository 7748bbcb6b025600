//! `release`, `status`, `rollback` and `promote --from-env` (issue 9) on the bundled example project, against
//! the real registry, git server and Prefect servers: staging on the open Prefect, prod (two clusters, its own
//! registry project) on the one with basic auth + CSRF.

use crate::harness::{Flowship, curl, flowship, host_of, svc};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Commit every change in the clone `clone` as a person would, and push it to its origin's main.
fn push_by_hand(clone: &Path) {
    let who = ["-c", "user.name=h", "-c", "user.email=h@example.invalid"];
    git(clone, &[&who[..], &["commit", "-qam", "by hand"]].concat());
    git(clone, &["push", "-q", "origin", "main"]);
}

pub use crate::harness::git;

/// The example project, a GitOps repo seeded from fixtures/gitops, and a flowship.yaml pointing at the local
/// services, all unique to one test.
pub struct World {
    pub tok: String,
    pub project: PathBuf,
    pub bare: PathBuf,
    pub repo_url: String,
    pub staging_repo: String,
    pub prod_repo: String,
    _dir: tempfile::TempDir,
}

pub fn copy_dir(src: &Path, dst: &Path) {
    let ok = Command::new("cp")
        .arg("-r")
        .arg(src)
        .arg(dst)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

pub fn world() -> World {
    world_with(
        &svc("REGISTRY_PLAIN"),
        &svc("PYTHON_BASE"),
        "process",
        false,
    )
}

/// The example project with its images in `reg`, built on `base`, into work pools created as `pool_type`;
/// with `deps`, the project's requirements are kept (the dependency layer is installed).
pub fn world_with(reg: &str, base: &str, pool_type: &str, deps: bool) -> World {
    let tok = format!("{:x}", fastrand::u32(..));
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = dir.path().join("example-project");
    copy_dir(&root.join("fixtures/example-project"), &project);
    // No dependencies to install in most tests (the e2e tests keep them): releases stay quick.
    if !deps {
        std::fs::write(project.join("requirements.txt"), "# none\n").unwrap();
    }
    let staging_repo = format!("{reg}/flows-{tok}/example");
    let prod_repo = format!("{reg}/flows-prod-{tok}/example");
    // The GitOps skeleton names the local registry's repositories.
    let seed = dir.path().join("gitops");
    copy_dir(&root.join("fixtures/gitops"), &seed);
    for entry in walk(&seed) {
        let text = std::fs::read_to_string(&entry).unwrap();
        let text = text
            .replace("harbor.example.com/flows-prod/example", &prod_repo)
            .replace("harbor.example.com/flows/example", &staging_repo);
        std::fs::write(&entry, text).unwrap();
    }
    let name = format!("release-{tok}.git");
    let bare = Path::new(&svc("GIT_ROOT")).join(&name);
    git(&seed, &["init", "-q", "-b", "main"]);
    git(&seed, &["add", "-A"]);
    git(
        &seed,
        &[
            "-c",
            "user.name=s",
            "-c",
            "user.email=s@example.invalid",
            "commit",
            "-q",
            "-m",
            "skeleton",
        ],
    );
    git(
        Path::new("."),
        &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
    );
    git(&seed, &["push", "-q", bare.to_str().unwrap(), "main"]);
    let repo_url = format!("{}/{name}", svc("GIT_DAEMON"));
    let config = format!(
        "image:\n  repository: {staging_repo}\n  base: {base}\n  python_version: \"3.11\"\n\
         gitops:\n  repo: {repo_url}\n  branch: main\n\
         prefect:\n  api_url: {plain}\n  create_work_pool: {pool_type}\n\
         environments:\n  staging:\n    gitops: {{paths: [\"clusters/staging/**\"]}}\n    prefect: {{work_pool: staging-{tok}}}\n\
         \x20 prod:\n    image: {{repository: {prod_repo}}}\n    prefect:\n      api_url: {authed}\n      auth_string_variable: PROD_PREFECT_API_AUTH_STRING\n\
         \x20   clusters:\n      cluster-1: {{paths: [\"clusters/cluster-1/**\"], work_pool: c1-{tok}}}\n      cluster-2: {{paths: [\"clusters/cluster-2/**\"], work_pool: c2-{tok}}}\n",
        plain = svc("PREFECT_PLAIN"),
        authed = svc("PREFECT_AUTH"),
    );
    std::fs::write(project.join("flowship.yaml"), config).unwrap();
    // Flow names unique to the test: the Prefect servers are shared.
    for (f, name) in [("flows/etl.py", "etl"), ("flows/report.py", "report")] {
        let p = project.join(f);
        let t = std::fs::read_to_string(&p).unwrap();
        std::fs::write(
            &p,
            t.replace(
                &format!("@flow(name=\"{name}\")"),
                &format!("@flow(name=\"{name}-{tok}\")"),
            ),
        )
        .unwrap();
    }
    World {
        tok,
        project,
        bare,
        repo_url,
        staging_repo,
        prod_repo,
        _dir: dir,
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

impl World {
    /// flowship in the project directory, with the registry listed and prod's credentials set.
    pub fn flowship(&self) -> Flowship {
        flowship()
            .cwd(&self.project)
            .env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN"))
            .env("PROD_PREFECT_API_AUTH_STRING", svc("PREFECT_AUTH_STRING"))
            .env("CI_COMMIT_SHORT_SHA", "aaaa1111")
    }

    /// A working copy of the GitOps repository's main branch (a person's clone), in a directory of its own.
    pub fn checkout(&self) -> (tempfile::TempDir, PathBuf) {
        let work = tempfile::tempdir().unwrap();
        let clone = work.path().join("gitops");
        git(
            Path::new("."),
            &[
                "clone",
                "-q",
                self.bare.to_str().unwrap(),
                clone.to_str().unwrap(),
            ],
        );
        (work, clone)
    }

    pub fn file_on_main(&self, f: &str) -> String {
        git(&self.bare, &["show", &format!("main:{f}")])
    }

    pub fn commits(&self) -> usize {
        git(&self.bare, &["rev-list", "--count", "main"])
            .parse()
            .unwrap()
    }

    /// A new version of the code (a new image).
    pub fn edit_code(&self, marker: &str) {
        let p = self.project.join("flows/etl.py");
        let mut t = std::fs::read_to_string(&p).unwrap();
        t.push_str(&format!("\n# {marker}\n"));
        std::fs::write(p, t).unwrap();
    }

    pub fn deployment(&self, api: &str, auth: Option<&str>, flow: &str, name: &str) -> Value {
        prefect_get(
            api,
            auth,
            &format!("/deployments/name/{flow}-{}/{name}", self.tok),
        )
    }
}

pub fn prefect_get(api: &str, auth: Option<&str>, path: &str) -> Value {
    let url = format!("{api}{path}");
    let out = match auth {
        Some(a) => crate::harness::curl(&["-u", a, &url]),
        None => crate::harness::curl(&[&url]),
    };
    crate::harness::last_json(&out)
}

fn digest_of(o: &crate::harness::Outcome) -> String {
    o.json()["image"]["digest"].as_str().unwrap().to_string()
}

#[test]
fn a_release_goes_all_the_way_and_a_rerun_changes_nothing() {
    let w = world();
    // The plan first: every action, nothing written.
    let plan = w
        .flowship()
        .args([
            "release",
            "--env",
            "staging",
            "--dry-run",
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    let actions = plan["actions"].as_array().unwrap();
    let steps: Vec<&str> = actions
        .iter()
        .map(|a| a["step"].as_str().unwrap())
        .collect();
    // The built image's provenance and SBOM (issue 20) are attached before it is tagged.
    assert_eq!(
        steps,
        [
            "image",
            "referrer",
            "referrer",
            "tag",
            "gitops",
            "work_pool",
            "deployment",
            "deployment"
        ],
        "{plan}"
    );
    assert_eq!(actions[0]["action"], "push");
    assert!(actions[0]["bytes_missing"].as_u64().unwrap() > 0);
    assert_eq!(actions[4]["action"], "commit");
    assert_eq!(actions[5]["action"], "create");
    assert_eq!(actions[5]["type"], "process");
    assert_eq!(
        actions[6]["action"], "create",
        "a plan is in the imperative, as the other steps"
    );
    assert_eq!(w.commits(), 1, "a dry run writes nothing");

    // A build warning (a symlink out of the context is left out) is said by the real release too.
    std::os::unix::fs::symlink("/etc/hostname", w.project.join("outside-link")).unwrap();
    let o = w
        .flowship()
        .args(["release", "--env", "staging", "--output", "json"])
        .run();
    let doc = o
        .success()
        .stderr_has("skipped outside-link: a symlink to /etc/hostname outside the build context")
        .json();
    let digest = digest_of(&o);
    assert_eq!(doc["image"]["pushed"], true);
    assert_eq!(doc["gitops"]["pushed"], true);
    let overlay = w.file_on_main("clusters/staging/kustomization.yaml");
    assert!(
        overlay.contains(&digest) && overlay.contains("newTag: \"aaaa1111\""),
        "{overlay}"
    );
    assert!(
        !w.file_on_main("clusters/cluster-1/kustomization.yaml")
            .contains(&digest),
        "prod is untouched"
    );
    let d = w.deployment(&svc("PREFECT_PLAIN"), None, "etl", "daily");
    assert_eq!(
        d["job_variables"]["image"],
        format!("{}:aaaa1111@{digest}", w.staging_repo)
    );
    assert_eq!(d["work_pool_name"], format!("staging-{}", w.tok));
    let log = git(&w.bare, &["log", "-1", "--format=%B", "main"]);
    assert!(log.contains("Flowship-Environment: staging"), "{log}");

    // Again: the image is in place, the pins too, the deployments equal.
    let started = std::time::Instant::now();
    let again = w
        .flowship()
        .args(["release", "--env", "staging", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(again["image"]["pushed"], false);
    assert_eq!(again["gitops"]["pushed"], false);
    assert!(
        again["prefect"]["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["action"] == "unchanged"),
        "{again}"
    );
    assert_eq!(w.commits(), 2);
    assert!(started.elapsed().as_secs_f64() < 30.0);
}

/// The README's example as written: the plan saved inside the project (the build context), then applied.
#[test]
fn the_readme_saved_plan_example_applies_with_the_plan_in_the_checkout() {
    let w = world();
    w.flowship()
        .args(["release", "--env", "staging", "--plan-out", "plan.json"])
        .run()
        .success();
    assert!(w.project.join("plan.json").is_file());
    w.flowship()
        .args(["release", "--env", "staging", "--plan", "plan.json"])
        .run()
        .success();
    assert_eq!(w.commits(), 2, "the skeleton and the release");
}

#[test]
fn a_saved_plan_applies_exactly_once_and_is_refused_when_anything_changed() {
    let w = world();
    let keep = tempfile::tempdir().unwrap();
    let plan_file = keep.path().join("plan.json");
    w.flowship()
        .args([
            "release",
            "--env",
            "staging",
            "--plan-out",
            plan_file.to_str().unwrap(),
        ])
        .run()
        .success();
    assert_eq!(w.commits(), 1, "--plan-out writes only the plan");
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["environment"], "staging");
    let o = w
        .flowship()
        .args([
            "release",
            "--env",
            "staging",
            "--plan",
            plan_file.to_str().unwrap(),
            "--output",
            "json",
        ])
        .run();
    assert_eq!(digest_of(&o), saved["image"]["digest"].as_str().unwrap());
    assert_eq!(w.commits(), 2);

    // A new plan; then someone edits the staging pin by hand: the saved edit no longer applies.
    w.edit_code("v2");
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args([
            "release",
            "--env",
            "staging",
            "--plan-out",
            plan_file.to_str().unwrap(),
        ])
        .run()
        .success();
    let (_work, clone) = w.checkout();
    let f = clone.join("clusters/staging/kustomization.yaml");
    let t = std::fs::read_to_string(&f)
        .unwrap()
        .replace("newTag: \"aaaa1111\"", "newTag: \"by-hand\"");
    std::fs::write(&f, t).unwrap();
    push_by_hand(&clone);
    let before = w.commits();
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args([
            "release",
            "--env",
            "staging",
            "--plan",
            plan_file.to_str().unwrap(),
        ])
        .run()
        .code(3)
        .stderr_has("the saved plan expected `aaaa1111`")
        .stderr_has("make a new plan");
    assert_eq!(w.commits(), before, "nothing written");
    assert_eq!(
        w.deployment(&svc("PREFECT_PLAIN"), None, "etl", "daily")["job_variables"]["image"],
        format!(
            "{}:aaaa1111@{}",
            w.staging_repo,
            saved["image"]["digest"].as_str().unwrap()
        ),
        "the deployments were not touched"
    );
    // A plan older than --plan-max-age is refused.
    std::thread::sleep(std::time::Duration::from_secs(2));
    w.flowship()
        .args([
            "release",
            "--env",
            "staging",
            "--plan",
            plan_file.to_str().unwrap(),
            "--plan-max-age",
            "1s",
        ])
        .run()
        .code(3)
        .stderr_has("older than --plan-max-age");
}

#[test]
fn status_shows_every_kind_of_drift() {
    let w = world();
    let o = w
        .flowship()
        .args(["release", "--env", "staging", "--output", "json"])
        .run();
    let digest = digest_of(&o);
    let status = |w: &World| {
        w.flowship()
            .args(["status", "--env", "staging", "--output", "json"])
            .run()
    };
    let s = status(&w);
    assert_eq!(s.code, 0, "{s}");
    assert_eq!(s.json()["in_sync"], true);
    let kinds = |o: &crate::harness::Outcome| -> Vec<String> {
        o.json()["environments"][0]["drift"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["kind"].as_str().unwrap().to_string())
            .collect()
    };
    // Prefect runs something else than GitOps pins.
    let api = svc("PREFECT_PLAIN");
    let d = w.deployment(&api, None, "etl", "daily");
    let patch = format!(
        r#"{{"job_variables": {{"image": "{}:old@sha256:{}"}}}}"#,
        w.staging_repo,
        "e".repeat(64)
    );
    let json = "Content-Type: application/json";
    let url = format!("{api}/deployments/{}", d["id"].as_str().unwrap());
    curl(&["-X", "PATCH", "-H", json, "-d", &patch, &url]);
    // A deployment of the project's flow that the file does not name.
    let flow_id = d["flow_id"].as_str().unwrap();
    let extra = format!(
        r#"{{"name": "stray", "flow_id": "{flow_id}", "work_pool_name": "staging-{}"}}"#,
        w.tok
    );
    curl(&[
        "-X",
        "POST",
        "-H",
        json,
        "-d",
        &extra,
        &format!("{api}/deployments/"),
    ]);
    // The pinned tag moves to another image.
    let layout_dir = tempfile::tempdir().unwrap();
    let layout = crate::images::umoci_layout(layout_dir.path(), "v1");
    w.flowship()
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            &w.staging_repo,
            "--tag",
            "aaaa1111",
        ])
        .run()
        .success();
    let s = status(&w);
    assert_eq!(s.code, 4, "{s}");
    let k = kinds(&s);
    for want in ["prefect_differs", "deployment_extra", "tag_moved"] {
        assert!(k.iter().any(|x| x == want), "missing {want}: {k:?}\n{s}");
    }
    // GitOps pins a digest the registry does not have; a deployment goes missing.
    let (_work, clone) = w.checkout();
    for f in ["kustomization.yaml", "flow-runner.yaml"] {
        let f = clone.join("clusters/staging").join(f);
        let t = std::fs::read_to_string(&f)
            .unwrap()
            .replace(&digest, &format!("sha256:{}", "d".repeat(64)));
        std::fs::write(&f, t).unwrap();
    }
    push_by_hand(&clone);
    let weekly = w.deployment(&api, None, "report", "weekly");
    let url = format!("{api}/deployments/{}", weekly["id"].as_str().unwrap());
    curl(&["-X", "DELETE", &url]);
    let s = status(&w);
    assert_eq!(s.code, 4, "{s}");
    let k = kinds(&s);
    for want in ["digest_missing", "deployment_missing"] {
        assert!(k.iter().any(|x| x == want), "missing {want}: {k:?}\n{s}");
    }
    // Human output names the places.
    w.flowship()
        .args(["status", "--env", "staging"])
        .run()
        .code(4)
        .stdout_has("clusters/staging/kustomization.yaml:14")
        .stdout_has("drift     digest_missing");
}

#[test]
fn a_rollback_repins_reregisters_and_holds_until_lifted() {
    let w = world();
    let first = digest_of(
        &w.flowship()
            .args(["release", "--env", "staging", "--output", "json"])
            .run(),
    );
    w.edit_code("v2");
    let second = digest_of(
        &w.flowship()
            .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
            .args(["release", "--env", "staging", "--output", "json"])
            .run(),
    );
    assert_ne!(first, second);
    let o = w
        .flowship()
        .args(["rollback", "--env", "staging", "--reason", "bad numbers"])
        .run();
    o.success().stdout_has(&first);
    let overlay = w.file_on_main("clusters/staging/kustomization.yaml");
    assert!(overlay.contains(&first), "{overlay}");
    let hold = w.file_on_main(".flowship/holds/staging.yaml");
    assert!(
        hold.contains("bad numbers") && hold.contains(&first),
        "{hold}"
    );
    let img =
        w.deployment(&svc("PREFECT_PLAIN"), None, "etl", "daily")["job_variables"]["image"].clone();
    assert_eq!(img, format!("{}:aaaa1111@{first}", w.staging_repo));
    let log = git(&w.bare, &["log", "-1", "--format=%B", "main"]);
    assert!(log.starts_with("rollback staging to "), "{log}");
    // The next automatic release is refused: exit 3, naming the hold and how to lift it.
    let commits = w.commits();
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args(["release", "--env", "staging"])
        .run()
        .code(3)
        .stderr_has("is held at")
        .stderr_has("bad numbers")
        .stderr_has("--lift-hold");
    assert_eq!(w.commits(), commits);
    // The hold is checked before any build: a requirements file the installer would choke on is never read.
    let reqs = w.project.join("requirements.txt");
    let kept = std::fs::read_to_string(&reqs).unwrap();
    std::fs::write(&reqs, "this is not a requirement ===\n").unwrap();
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "cccc3333")
        .args(["release", "--env", "staging"])
        .run()
        .code(3)
        .stderr_has("is held at");
    std::fs::write(&reqs, kept).unwrap();
    assert_eq!(w.commits(), commits);
    // Lifting: the hold goes, nothing else moves; then a release rolls forward.
    w.flowship()
        .args(["rollback", "--env", "staging", "--lift-hold"])
        .run()
        .success();
    // The lifting commit names no image: it is not a release a later rollback could go back to.
    assert!(
        !git(&w.bare, &["log", "-1", "--format=%B", "main"]).contains("Flowship-Image:"),
        "the lift commit carries an image trailer"
    );
    assert!(
        git(&w.bare, &["ls-tree", "-r", "--name-only", "main"])
            .lines()
            .all(|l| !l.contains("holds/"))
    );
    assert!(
        w.file_on_main("clusters/staging/kustomization.yaml")
            .contains(&first)
    );
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args(["release", "--env", "staging"])
        .run()
        .success();
    assert!(
        w.file_on_main("clusters/staging/kustomization.yaml")
            .contains(&second)
    );
    // And `release --lift-hold` lifts and releases in one commit.
    w.flowship()
        .args(["rollback", "--env", "staging", "--to", "aaaa1111"])
        .run()
        .success();
    let before = w.commits();
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args(["release", "--env", "staging", "--lift-hold"])
        .run()
        .success();
    assert_eq!(w.commits(), before + 1);
    assert!(
        w.file_on_main("clusters/staging/kustomization.yaml")
            .contains(&second)
    );
}

#[test]
fn promote_pins_prod_to_exactly_the_digest_staging_runs() {
    let w = world();
    let staged = digest_of(
        &w.flowship()
            .args(["release", "--env", "staging", "--output", "json"])
            .run(),
    );
    let before = w.commits();
    // As in the example pipeline: the staging job's dotenv report (FLOWSHIP_IMAGE=repo:tag@digest) reaches
    // the promote job; prod still keeps its images in its own repository.
    let handoff = format!("{}:aaaa1111@{staged}", w.staging_repo);
    let o = w
        .flowship()
        .env("FLOWSHIP_IMAGE", &handoff)
        .args([
            "promote",
            "--from-env",
            "staging",
            "--env",
            "prod",
            "--output",
            "json",
        ])
        .run();
    let doc = o.success().json();
    assert_eq!(
        doc["image"]["digest"],
        staged.as_str(),
        "the same digest, no rebuild"
    );
    assert_eq!(doc["image"]["repository"], w.prod_repo);
    assert_eq!(w.commits(), before + 1, "both clusters in one commit");
    for c in ["cluster-1", "cluster-2"] {
        let overlay = w.file_on_main(&format!("clusters/{c}/kustomization.yaml"));
        assert!(overlay.contains(&staged), "{c}: {overlay}");
    }
    // prod's Prefect (basic auth + CSRF), one deployment per cluster pool.
    let auth = svc("PREFECT_AUTH_STRING");
    for c in ["cluster-1", "cluster-2"] {
        let d = w.deployment(
            &svc("PREFECT_AUTH"),
            Some(&auth),
            "etl",
            &format!("daily-{c}"),
        );
        assert_eq!(
            d["job_variables"]["image"],
            format!("{}:aaaa1111@{staged}", w.prod_repo),
            "{d}"
        );
        let pool = if c == "cluster-1" { "c1" } else { "c2" };
        assert_eq!(d["work_pool_name"], format!("{pool}-{}", w.tok));
    }
    // The prod registry project holds the same digest.
    let skopeo = crate::images::skopeo_inspect(&format!("{}:aaaa1111", w.prod_repo), false);
    assert_eq!(skopeo["Digest"], staged.as_str());
    // Again: nothing to do.
    let again = w
        .flowship()
        .args([
            "promote",
            "--from-env",
            "staging",
            "--env",
            "prod",
            "--output",
            "json",
        ])
        .run()
        .success()
        .json();
    assert_eq!(again["gitops"]["pushed"], false);
    assert_eq!(w.commits(), before + 1);
}

#[test]
fn a_failure_at_each_step_is_finished_by_a_rerun_with_nothing_doubled() {
    let w = world();
    // The git server refuses pushes for a while: the image is pushed and tagged, then the release stops.
    let git_proxy = crate::proxy::start_with(
        &host_of(&svc("GIT_HTTP")),
        crate::proxy::Fault::Storm("git-receive-pack", 1000),
    );
    let name = w.repo_url.rsplit('/').next().unwrap().to_string();
    let via_proxy = format!("http://{}/git/{name}", git_proxy.addr);
    let o = w
        .flowship()
        .env("FLOWSHIP_GITOPS_REPO", &via_proxy)
        .env("FLOWSHIP_GIT_TOKEN", svc("GIT_TOKEN"))
        .env("FLOWSHIP_PLAIN_HTTP", &git_proxy.addr)
        .env("FLOWSHIP_HTTP_RETRIES", "1")
        .env("FLOWSHIP_MAX_ATTEMPTS", "2")
        .args(["release", "--env", "staging"])
        .run();
    assert_eq!(o.code, 1, "{o}");
    assert_eq!(w.commits(), 1);
    drop(git_proxy);
    // Prefect stops after the first deployment.
    let pf = crate::proxy::start_with(
        &host_of(&svc("PREFECT_PLAIN")),
        crate::proxy::Fault::StopAfterSuccess("POST /api/deployments/ ", 1),
    );
    let o = w
        .flowship()
        .env(
            "FLOWSHIP_PREFECT_API_URL",
            format!("http://{}/api", pf.addr),
        )
        .env("FLOWSHIP_PLAIN_HTTP", &pf.addr)
        .env("FLOWSHIP_HTTP_RETRIES", "0")
        .args(["release", "--env", "staging", "--output", "json"])
        .run();
    assert_eq!(o.code, 1, "{o}");
    let doc = o.json();
    assert_eq!(
        doc["image"]["pushed"], false,
        "the image was already there: {doc}"
    );
    assert_eq!(doc["gitops"]["pushed"], true);
    assert_eq!(w.commits(), 2);
    drop(pf);
    // A rerun on working services finishes the job: no push, no commit, the missing deployment created.
    let doc = w
        .flowship()
        .args(["release", "--env", "staging", "--output", "json"])
        .run()
        .success()
        .json();
    assert_eq!(doc["image"]["pushed"], false);
    assert_eq!(doc["gitops"]["pushed"], false);
    let actions: Vec<&str> = doc["prefect"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"unchanged") && actions.contains(&"created"),
        "{actions:?}"
    );
    assert_eq!(w.commits(), 2);
    let filter = format!(
        r#"{{"flows": {{"name": {{"any_": ["etl-{0}", "report-{0}"]}}}}}}"#,
        w.tok
    );
    let url = format!("{}/deployments/filter", svc("PREFECT_PLAIN"));
    let json = "Content-Type: application/json";
    let found = curl(&["-X", "POST", "-H", json, "-d", &filter, &url]);
    let found = crate::harness::last_json(&found);
    assert_eq!(found.as_array().unwrap().len(), 2, "no deployment doubled");
}

#[test]
fn concurrent_releases_lose_nothing_and_with_monotonic_the_newer_wins() {
    let w = world();
    let other = tempfile::tempdir().unwrap();
    let second = other.path().join("example-project");
    copy_dir(&w.project, &second);
    std::fs::write(
        second.join("flows/etl.py"),
        std::fs::read_to_string(second.join("flows/etl.py")).unwrap() + "\n# other\n",
    )
    .unwrap();
    let run = |dir: PathBuf, tag: &'static str| {
        let f = w
            .flowship()
            .cwd(&dir)
            .env("CI_COMMIT_SHORT_SHA", tag)
            .env("FLOWSHIP_MONOTONIC", "numeric")
            .args(["release", "--env", "staging", "--output", "json"]);
        std::thread::spawn(move || f.run())
    };
    let a = run(w.project.clone(), "build-100");
    let b = run(second.clone(), "build-101");
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    // Both may land (the older first), or the older is refused as older (exit 3); none is lost silently.
    for o in [&a, &b] {
        assert!(o.code == 0 || o.code == 3, "{o}");
    }
    assert_eq!(b.code, 0, "the newer release always lands: {b}");
    let overlay = w.file_on_main("clusters/staging/kustomization.yaml");
    assert!(
        overlay.contains("newTag: \"build-101\""),
        "the newer wins: {overlay}"
    );
    let log = git(&w.bare, &["log", "--format=%s", "main"]);
    if a.code == 0 {
        assert!(
            log.contains("build-100"),
            "a release that exited 0 is in the history: {log}"
        );
    }
}

/// A release is a digest *and the deployments it was released with*: a rollback across a parameter change
/// registers the old definitions, and `status` compares with what the pinned release recorded, so a new
/// commit alone is `pending`, never drift.
#[test]
fn a_rollback_restores_the_deployments_as_released_and_status_stays_in_sync_after_a_new_commit() {
    let w = world();
    let release = |sha: &str| {
        w.flowship()
            .env("CI_COMMIT_SHORT_SHA", sha)
            .args(["release", "--env", "staging", "--output", "json"])
            .run()
            .success()
            .json()["image"]["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let d1 = release("aaaa1111");
    let schema_of = || {
        w.deployment(&svc("PREFECT_PLAIN"), None, "etl", "daily")["parameter_openapi_schema"]
            ["properties"]
            .clone()
    };
    assert!(schema_of().get("region").is_none());
    // D2: the flow gains a parameter, and prefect.yaml sets it.
    let flow = w.project.join("flows/etl.py");
    let t = std::fs::read_to_string(&flow).unwrap().replace(
        "dry_run: bool = False)",
        "dry_run: bool = False, region: str = \"eu\")",
    );
    std::fs::write(&flow, t).unwrap();
    let yaml = w.project.join("prefect.yaml");
    let y = std::fs::read_to_string(&yaml).unwrap().replace(
        "      day: \"2026-01-01\"\n",
        "      day: \"2026-01-01\"\n      region: us\n",
    );
    std::fs::write(&yaml, y).unwrap();
    let d2 = release("bbbb2222");
    assert_ne!(d1, d2);
    assert!(schema_of().get("region").is_some());
    let record: Value =
        serde_json::from_str(&w.file_on_main(".flowship/releases/staging.json")).unwrap();
    assert_eq!(record["environment"], "staging");
    assert!(record["image"].as_str().unwrap().ends_with(&d2));
    // Back to D1 from this (D2) checkout: D1's definitions, not the checkout's.
    w.flowship()
        .env("FLOWSHIP_GIT_AUTHOR_NAME", "Release Bot")
        .args(["rollback", "--env", "staging", "--reason", "region broke"])
        .run()
        .success();
    // Outside GitLab the hold names the configured author (the laptop path), not "unknown".
    assert!(
        w.file_on_main(".flowship/holds/staging.yaml")
            .contains("by: Release Bot")
    );
    let d = w.deployment(&svc("PREFECT_PLAIN"), None, "etl", "daily");
    assert!(d["job_variables"]["image"].as_str().unwrap().ends_with(&d1));
    assert!(
        schema_of().get("region").is_none(),
        "the schema as D1 released it"
    );
    assert!(
        d["parameters"].get("region").is_none(),
        "the parameters as D1 released them"
    );
    // Status from the D2 checkout: in sync with what is pinned; D2's files are pending, not drift.
    let o = w.flowship().args(["status", "--env", "staging"]).run();
    o.success()
        .stdout_has("staging  in sync")
        .stdout_has("pending   prefect.yaml changed since");
    // And a commit that touches only the flow's code while staging runs D1: still no drift.
    w.edit_code("v3");
    w.flowship()
        .args(["status", "--env", "staging", "--output", "json"])
        .run()
        .success();
}

/// Forced: release A commits, release B lands completely, then A registers. A registers B's record (B's
/// definitions with B's image), never a mix; `status` from B's checkout is then in sync.
#[test]
fn a_release_overtaken_between_its_commit_and_its_registration_registers_the_newer_record() {
    let w = world();
    let other = tempfile::tempdir().unwrap();
    let b_dir = other.path().join("example-project");
    copy_dir(&w.project, &b_dir);
    // B's flow has a parameter A's has not, and its own code (another image).
    let flow = b_dir.join("flows/etl.py");
    let t = std::fs::read_to_string(&flow).unwrap().replace(
        "dry_run: bool = False)",
        "dry_run: bool = False, region: str = \"eu\")",
    );
    std::fs::write(&flow, t).unwrap();
    let gate = other.path().join("gate");
    std::fs::write(&gate, "").unwrap();
    let a = w
        .flowship()
        .env("CI_COMMIT_SHORT_SHA", "aaaa1111")
        .env(
            "FLOWSHIP_TEST_PAUSE_BEFORE_REGISTER",
            gate.to_str().unwrap(),
        )
        .args(["release", "--env", "staging"]);
    let a = std::thread::spawn(move || a.run());
    let reached = gate.with_extension("reached");
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !reached.exists() {
        assert!(
            std::time::Instant::now() < until,
            "release A never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let b = w
        .flowship()
        .cwd(&b_dir)
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args(["release", "--env", "staging", "--output", "json"])
        .run()
        .success()
        .json();
    let b_digest = b["image"]["digest"].as_str().unwrap().to_string();
    std::fs::remove_file(&gate).unwrap();
    a.join()
        .unwrap()
        .success()
        .stderr_has("a newer release pins");
    let d = w.deployment(&svc("PREFECT_PLAIN"), None, "etl", "daily");
    assert!(
        d["job_variables"]["image"]
            .as_str()
            .unwrap()
            .ends_with(&b_digest)
    );
    assert!(
        d["parameter_openapi_schema"]["properties"]["region"].is_object(),
        "B's definitions with B's image: {d}"
    );
    w.flowship()
        .cwd(&b_dir)
        .args(["status", "--env", "staging"])
        .run()
        .success()
        .stdout_has("staging  in sync");
}

/// A Kustomize `images:` entry without a `digest:` field pins by tag only: `status` reports it as drift
/// (`not_pinned`, exit 4), not as an environment it could not read (exit 1).
#[test]
fn a_kustomize_entry_without_a_digest_is_not_pinned_drift() {
    let w = world();
    w.flowship()
        .args(["release", "--env", "staging"])
        .run()
        .success();
    let (_work, clone) = w.checkout();
    let f = clone.join("clusters/staging/kustomization.yaml");
    let t: String = std::fs::read_to_string(&f)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("digest:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&f, t).unwrap();
    push_by_hand(&clone);
    w.flowship()
        .args(["status", "--env", "staging"])
        .run()
        .code(4)
        .stdout_has("not_pinned");
    // A release pins what it edits, even a reference that was tag-only (`gitops.pin` defaults to `always`
    // for a release): what a worker runs is the digest it built.
    w.edit_code("repin");
    let o = w
        .flowship()
        .args(["release", "--env", "staging", "--output", "json"])
        .run();
    let digest = digest_of(o.success());
    assert!(
        w.file_on_main("clusters/staging/kustomization.yaml")
            .contains(&digest),
        "{}",
        w.file_on_main("clusters/staging/kustomization.yaml")
    );
    w.flowship()
        .args(["status", "--env", "staging"])
        .run()
        .success();
}

/// A saved plan is the approval, never the source: edits to its image, digest, targets or Prefect server are
/// refused (exit 3, nothing written), and with FLOWSHIP_PLAN_KEY an edited or unsigned plan is refused first.
#[test]
fn a_saved_plan_cannot_be_forged() {
    let w = world();
    let keep = tempfile::tempdir().unwrap();
    let plan_file = keep.path().join("plan.json");
    let save = |extra: &[(&str, &str)]| {
        let mut f = w.flowship();
        for (k, v) in extra {
            f = f.env(k, v);
        }
        f.args([
            "release",
            "--env",
            "staging",
            "--plan-out",
            plan_file.to_str().unwrap(),
        ])
        .run()
        .success();
        serde_json::from_str::<Value>(&std::fs::read_to_string(&plan_file).unwrap()).unwrap()
    };
    let apply = |plan: &Value, extra: &[(&str, &str)]| {
        let forged = keep.path().join("forged.json");
        std::fs::write(&forged, plan.to_string()).unwrap();
        let mut f = w.flowship();
        for (k, v) in extra {
            f = f.env(k, v);
        }
        f.args([
            "release",
            "--env",
            "staging",
            "--plan",
            forged.to_str().unwrap(),
        ])
        .run()
    };
    let saved = save(&[]);
    let before = w.commits();
    for (field, value) in [
        (
            "/image/repository",
            json!(format!("{}/evil/example", svc("REGISTRY_PLAIN"))),
        ),
        ("/image/digest", json!(format!("sha256:{}", "1".repeat(64)))),
        ("/gitops/branch", json!("other")),
        ("/prefect/api_url", json!("http://127.0.0.1:9/api")),
        (
            "/source_commit",
            json!("0123456789abcdef0123456789abcdef01234567"),
        ),
    ] {
        let mut forged = saved.clone();
        *forged.pointer_mut(field).unwrap() = value;
        apply(&forged, &[])
            .code(3)
            .stderr_has("nothing was written");
        assert_eq!(w.commits(), before, "{field}: nothing written");
    }
    // Signed: an edited plan is refused before anything is planned; so is an unsigned one.
    let key = [("FLOWSHIP_PLAN_KEY", "a-plan-key-of-the-pipeline")];
    let signed = save(&key);
    assert!(signed["mac"].is_string());
    assert!(!signed.to_string().contains("a-plan-key-of-the-pipeline"));
    let mut edited = signed.clone();
    edited["created"] = json!(signed["created"].as_u64().unwrap() + 1);
    apply(&edited, &key)
        .code(3)
        .stderr_has("changed after it was made");
    apply(&saved, &key).code(3).stderr_has("not signed");
    assert_eq!(w.commits(), before);
    apply(&signed, &key).success();
}

/// `status` reports a refusal by configuration (an unlisted plain-HTTP endpoint) with exit 2, as every other
/// command does, not as a service that could not be read (exit 1).
#[test]
fn status_exits_2_when_an_endpoint_is_refused() {
    let w = world();
    w.flowship()
        .args(["release", "--env", "staging"])
        .run()
        .success();
    w.flowship()
        .args([
            "status",
            "--env",
            "staging",
            "--prefect-api-url",
            "http://127.0.0.1:9/api",
        ])
        .run()
        .code(2)
        .stdout_has("--plain-http 127.0.0.1:9");
}

/// Remote reads per release (issue 19), counted at the git server through the recording proxy, so that they
/// do not creep up: the branch is opened once (before the image is built, so a hold refuses first), pushed to
/// once, and read twice after the push (is a newer release pinned now?) by fetching into the same clone.
/// The requests one flowship run sent to the GitOps remote, counted at a recording proxy in front of the git
/// server: what a clone, fetch, ref listing or push really costs there.
struct GitReads {
    /// `POST git-upload-pack`: the exchanges of clones and fetches (a negotiation is one or two of them).
    negotiations: usize,
    /// `GET info/refs`: ref listings (each clone, fetch and `ls-remote` starts with one; a 401 challenge doubles it).
    listings: usize,
    /// `POST git-receive-pack`: pushes.
    pushes: usize,
    all: String,
}

/// Run flowship with `args` in `w`'s project, its GitOps remote reached through a recording proxy.
fn gitops_reads(w: &World, args: &[&str]) -> (crate::harness::Outcome, GitReads) {
    let proxy = crate::proxy::start_with(&host_of(&svc("GIT_HTTP")), crate::proxy::Fault::None);
    let name = w.repo_url.rsplit('/').next().unwrap().to_string();
    let o = w
        .flowship()
        .env(
            "FLOWSHIP_GITOPS_REPO",
            format!("http://{}/git/{name}", proxy.addr),
        )
        .env("FLOWSHIP_GIT_TOKEN", svc("GIT_TOKEN"))
        .env("FLOWSHIP_PLAIN_HTTP", &proxy.addr)
        .args(args)
        .run();
    let seen: Vec<String> = proxy.seen().into_iter().map(|s| s.line).collect();
    let count = |needle: String| seen.iter().filter(|l| l.starts_with(&needle)).count();
    let reads = GitReads {
        negotiations: count(format!("POST /git/{name}/git-upload-pack ")),
        listings: count(format!("GET /git/{name}/info/refs")),
        pushes: count(format!("POST /git/{name}/git-receive-pack ")),
        all: seen.join("\n"),
    };
    (o, reads)
}

impl GitReads {
    /// One fetch of the remote in the whole run (a negotiation of two exchanges: the clone), however many
    /// steps and environments read it; at most `listings` ref listings (each doubled by its 401 challenge)
    /// and `pushes` pushes.
    #[track_caller]
    fn assert_fetched_once(&self, listings: usize, pushes: usize) {
        assert!(
            self.negotiations <= 2,
            "the GitOps remote was fetched more than once:\n{}",
            self.all
        );
        assert!(
            self.listings <= listings,
            "more ref listings than {listings}:\n{}",
            self.all
        );
        assert_eq!(self.pushes, pushes, "pushes:\n{}", self.all);
    }
}

/// A world whose staging environment has been released once.
fn released() -> World {
    let w = world();
    w.flowship()
        .args(["release", "--env", "staging"])
        .run()
        .success();
    w
}

/// Issue 19: the clone, the push and its confirmation, and the two checks for a newer release after it (ref
/// listings only: the tip is our own commit, which the clone has). Before: 3 fetches (the two checks refetched).
#[test]
fn a_release_reads_the_gitops_remote_once() {
    let w = world();
    let (o, reads) = gitops_reads(&w, &["release", "--env", "staging"]);
    o.success();
    reads.assert_fetched_once(10, 1);
}

/// Issue 19: a release scans the branch's manifests for the image once, for its plan; the pins after the
/// push (what the registration follows, a newer release's included) are read from the files the plan found
/// and wrote, which are the only ones that can reference the image at the commit it pushed. Counted in
/// `-v`'s narration, one line per pass.
#[test]
fn a_release_scans_the_manifests_once() {
    let w = world();
    let o = w
        .flowship()
        .args(["release", "--env", "staging", "-v"])
        .run();
    o.success();
    let count = |what: &str| o.stderr.matches(what).count();
    assert_eq!(count("scanning the branch's manifests for"), 1, "{o}");
    assert_eq!(count("file(s) that reference"), 1, "{o}");
}

/// Issue 19: rollback fetched the branch six times (clones for the pins, the history and the release, the
/// history's deepening, two refetches after the push); now the history is cloned as deep as it needs, once, and
/// every step reads that clone.
#[test]
fn a_rollback_reads_the_gitops_remote_once() {
    let w = released();
    w.edit_code("v2");
    w.flowship()
        .env("CI_COMMIT_SHORT_SHA", "bbbb2222")
        .args(["release", "--env", "staging"])
        .run()
        .success();
    let (o, reads) = gitops_reads(&w, &["rollback", "--env", "staging"]);
    o.success();
    reads.assert_fetched_once(10, 1);
}

/// Issue 19: the source environment's pins and the target's bump read the same branch: one clone (before: two
/// clones and two refetches after the push).
#[test]
fn a_promotion_reads_the_gitops_remote_once() {
    let w = released();
    let (o, reads) = gitops_reads(&w, &["promote", "--from-env", "staging", "--env", "prod"]);
    o.success();
    reads.assert_fetched_once(10, 1);
}

/// Issue 19: status cloned the branch once per environment; environments on one branch share one clone.
#[test]
fn status_of_every_environment_reads_the_gitops_remote_once() {
    let w = released();
    let (o, reads) = gitops_reads(&w, &["status", "--output", "json"]);
    // prod was never released: drift (exit 4), read from the same clone as staging.
    o.code(4);
    assert_eq!(o.json()["environments"].as_array().unwrap().len(), 2, "{o}");
    reads.assert_fetched_once(2, 0);
}
