//! `flowship register` against `prefect --no-prompt deploy --all` on prefect.yaml the way real projects write
//! it: the real public corpus of fixtures/prefect-real (each project into two fresh-named servers, every
//! deployment compared field by field), and the shapes issue 14 found registered differently (singular
//! `schedule:`, default pull steps, monorepo `--prefect-file` layouts, module entrypoints, pydantic and
//! dataclass parameters, computed Enums, `@flow` imported through a local module, flow mappings over lines).

use crate::harness::{flowship, svc};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `prefect deploy` registers, and where flowship does (both open servers of the harness).
const THEIRS: &str = "PREFECT_PLAIN";
const OURS: &str = "PREFECT_PG";

fn api(url: &str, method: &str, path: &str, body: Option<&Value>) -> Value {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "--retry",
        "10",
        "-X",
        method,
        "-H",
        "Content-Type: application/json",
    ]);
    if let Some(b) = body {
        cmd.args(["-d", &b.to_string()]);
    }
    let out = cmd.arg(format!("{url}{path}")).output().unwrap();
    assert!(out.status.success(), "curl {method} {path} failed");
    crate::harness::last_json(&out.stdout)
}

/// A process pool in both servers (`prefect deploy` needs it to exist; so does flowship without
/// `--create-work-pool`).
fn pool(name: &str) {
    for s in [THEIRS, OURS] {
        let url = svc(s);
        if api(&url, "GET", &format!("/work_pools/{name}"), None)["name"] != name {
            api(
                &url,
                "POST",
                "/work_pools/",
                Some(&json!({"name": name, "type": "process"})),
            );
        }
    }
}

/// Every deployment of a server whose flow is in `flows`, by `flow/name`, without what differs between any
/// two registrations (ids, timestamps, the server's bookkeeping).
fn deployments(server: &str, flows: &[String]) -> std::collections::BTreeMap<String, Value> {
    let url = svc(server);
    let all = api(
        &url,
        "POST",
        "/flows/filter",
        Some(&json!({"flows": {"name": {"any_": flows}}})),
    );
    let mut out = std::collections::BTreeMap::new();
    let all = all
        .as_array()
        .unwrap_or_else(|| panic!("flows/filter answered {all}"));
    for f in all {
        let ds = api(
            &url,
            "POST",
            "/deployments/filter",
            Some(&json!({"flows": {"id": {"any_": [f["id"]]}}})),
        );
        let ds = ds
            .as_array()
            .unwrap_or_else(|| panic!("deployments/filter answered {ds}"));
        for d in ds {
            out.insert(
                format!(
                    "{}/{}",
                    f["name"].as_str().unwrap(),
                    d["name"].as_str().unwrap()
                ),
                comparable(d.clone()),
            );
        }
    }
    out
}

pub fn comparable(mut d: Value) -> Value {
    let m = d.as_object_mut().unwrap();
    for k in [
        "id",
        "created",
        "updated",
        "flow_id",
        "labels",
        "work_queue_id",
        "last_polled",
        "status",
        "created_by",
        "updated_by",
    ] {
        m.remove(k);
    }
    if let Some(g) = m
        .get_mut("global_concurrency_limit")
        .and_then(Value::as_object_mut)
    {
        for k in ["id", "name", "created", "updated"] {
            g.remove(k);
        }
    }
    if let Some(s) = m.get_mut("schedules").and_then(Value::as_array_mut) {
        for sch in s.iter_mut() {
            let o = sch.as_object_mut().unwrap();
            for k in ["id", "created", "updated", "deployment_id"] {
                o.remove(k);
            }
        }
        s.sort_by_key(|x| x.to_string());
    }
    d
}

/// The `flow/deployment` names flowship registered (from its JSON outcome).
fn names_of(doc: &Value) -> Vec<String> {
    doc["prefect"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

/// The flow names flowship registered (from its JSON outcome).
fn flows_of(doc: &Value) -> Vec<String> {
    let mut flows: Vec<String> = doc["prefect"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["name"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    flows.sort();
    flows.dedup();
    flows
}

/// `prefect deploy --all --prefect-file F` for each file from `workdir`; then flowship with the same files
/// from the same directory; the deployments compared. Returns flowship's JSON outcome.
fn both(workdir: &Path, files: &[&str], env: &[(&str, &str)], extra: &[&str]) -> Value {
    both_from(workdir, files, files, env, extra)
}

/// Like [`both`], with `prefect deploy` reading `theirs` (a derived copy of each of `files`, see
/// [`Derived`]) where flowship reads `files`.
fn both_from(
    workdir: &Path,
    files: &[&str],
    theirs_files: &[&str],
    env: &[(&str, &str)],
    extra: &[&str],
) -> Value {
    let home = tempfile::tempdir().unwrap();
    for f in theirs_files {
        let mut cmd = Command::new(svc("PREFECT_BIN"));
        cmd.args(["--no-prompt", "deploy", "--all", "--prefect-file", f]);
        if let Some(i) = extra.iter().position(|a| *a == "--work-pool") {
            cmd.args(["--pool", extra[i + 1]]);
        }
        cmd.current_dir(workdir)
            .env("PREFECT_API_URL", svc(THEIRS))
            .env("PREFECT_HOME", home.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "prefect deploy --prefect-file {f} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut fl = flowship()
        .env("PREFECT_API_URL", svc(OURS))
        .cwd(workdir)
        .args(["register", "--all", "--output", "json"]);
    for (k, v) in env {
        fl = fl.env(k, v);
    }
    for f in files {
        fl = fl.args(["--file", f]);
    }
    let doc = fl.args(extra).run().success().json();
    let flows = flows_of(&doc);
    // Projects of the corpus share flow names (`etl`): a deployment another project registered in one
    // server only (flowship alone, where prefect deploy cannot run it) is not this file's.
    let mine = names_of(&doc);
    let mut ours = deployments(OURS, &flows);
    let mut theirs = deployments(THEIRS, &flows);
    // Other tests register on the same servers concurrently (the example project's `etl/daily`): a deployment
    // only prefect deploy has counts only when these files name it.
    let named: String = theirs_files
        .iter()
        .filter_map(|f| std::fs::read_to_string(workdir.join(f)).ok())
        .collect();
    theirs.retain(|k, _| {
        mine.contains(k)
            || (!ours.contains_key(k) && k.split_once('/').is_some_and(|(_, d)| named.contains(d)))
    });
    ours.retain(|k, _| mine.contains(k));
    assert_eq!(
        theirs.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>(),
        "the same deployments"
    );
    for (name, t) in &theirs {
        let t = documented(&ours[name], t.clone());
        assert_eq!(
            ours[name], t,
            "{name} differs between flowship and prefect deploy"
        );
    }
    doc
}

/// Prefect's deployment with the README's documented differences applied (README: "Where flowship
/// registers differently from prefect deploy"): a parameter whose type flowship cannot know without
/// running the module (an Enum with computed members) is "any" in flowship's schema; a flow without a
/// docstring has no description (Prefect stores the text "None").
fn documented(ours: &Value, mut theirs: Value) -> Value {
    // A flow without a docstring: Prefect stores the string "None" as its description, flowship none.
    if ours["description"].is_null() && theirs["description"] == "None" {
        theirs["description"] = Value::Null;
    }
    // An interval schedule the file gives no anchor: the server anchors it when it is created (both within
    // the same hour here); compared as equal.
    if let (Some(o), Some(t)) = (
        ours["schedules"].as_array(),
        theirs["schedules"].as_array_mut(),
    ) {
        for (a, b) in o.iter().zip(t.iter_mut()) {
            let (x, y) = (&a["schedule"]["anchor_date"], &b["schedule"]["anchor_date"]);
            if let (Some(x), Some(y)) = (x.as_str(), y.as_str())
                && x != y
                && x.get(..13) == y.get(..13)
            {
                b["schedule"]["anchor_date"] = a["schedule"]["anchor_date"].clone();
            }
        }
    }
    // A flow prefect deploy cannot import where it runs (its dependencies missing) falls back to Prefect's
    // AST loader, which leaves `version` empty; with them installed (and in flowship) it is the file's MD5.
    if theirs["version"].is_null()
        && ours["version"]
            .as_str()
            .is_some_and(|v| v.len() == 32 && v.chars().all(|c| c.is_ascii_hexdigit()))
    {
        theirs["version"] = ours["version"].clone();
    }
    let Some(o) = ours["parameter_openapi_schema"]["properties"].as_object() else {
        return theirs;
    };
    let untyped = |p: &Value| {
        ["type", "$ref", "anyOf", "enum", "const"]
            .iter()
            .all(|k| p.get(k).is_none())
    };
    if let Some(t) = theirs["parameter_openapi_schema"]["properties"].as_object_mut() {
        for (name, p) in o {
            if untyped(p) && t.get(name).is_some_and(|x| x.get("$ref").is_some()) {
                t.insert(name.clone(), p.clone());
            }
        }
    }
    // Definitions nothing refers to any more go too.
    let schema = &mut theirs["parameter_openapi_schema"];
    loop {
        let text = schema.to_string();
        let Some(defs) = schema.get_mut("definitions").and_then(Value::as_object_mut) else {
            break;
        };
        let unused: Vec<String> = defs
            .keys()
            .filter(|k| !text.contains(&format!("\"#/definitions/{k}\"")))
            .cloned()
            .collect();
        if unused.is_empty() {
            break;
        }
        for k in unused {
            defs.remove(&k);
        }
    }
    // ... and `definitions` itself once empty (the server keeps none for a schema without them).
    if let Some(o) = schema.as_object_mut()
        && o.get("definitions").is_some_and(|d| d == &json!({}))
    {
        o.remove("definitions");
    }
    theirs
}

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn token() -> String {
    format!("{:x}", fastrand::u32(..))
}

#[test]
fn a_monorepo_deployed_from_its_root_with_the_shapes_real_projects_use() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    pool("real-pool");
    let lib = "from prefect import flow as prefect_flow\n\nflow = prefect_flow\n";
    let models = format!(
        "from dataclasses import dataclass, field\nfrom enum import Enum, auto\nfrom pydantic import BaseModel, Field\n\nFLOW_NAME = \"orders-{t}\"\n\n\nclass Mode(Enum):\n    FULL = auto()\n    DELTA = auto()\n\n\nclass Computed(Enum):\n    A = \"a\".upper()\n\n\nclass Window(BaseModel):\n    \"\"\"A load window.\"\"\"\n\n    days: int = Field(1, description=\"How many days\", ge=1)\n    tables: list[str] = Field(default_factory=list)\n\n\n@dataclass\nclass Target:\n    schema: str\n    replace: bool = False\n"
    );
    let orders = "import os\nfrom typing import Optional\n\nfrom common.compat import flow\nfrom common.models import FLOW_NAME, Computed, Mode, Target, Window\n\nRETRIES = int(os.getenv(\"ORDERS_RETRIES\", \"3\"))\n\n\n@flow(name=FLOW_NAME)\ndef orders(window: Window, target: Target, mode: Mode = Mode.FULL, c: Computed = Computed.A, retries: int = RETRIES, since: Optional[str] | None = None):\n    \"\"\"Load orders.\"\"\"\n";
    let report = format!(
        "from prefect import flow\n\n\n@flow(name=\"report-{t}\")\ndef report(day: str = \"today\"):\n    pass\n"
    );
    write(
        root,
        &[
            ("common/__init__.py", ""),
            ("common/compat.py", lib),
            ("common/models.py", &models),
            ("pipelines/orders/orders.py", orders),
            ("src/reports/__init__.py", ""),
            ("src/reports/daily.py", &report),
            (
                "pipelines/orders/prefect.yaml",
                // A singular `schedule:`; an image but no pull section; a flow mapping over lines with `}`
                // at the key's indentation; a parameter the flow does not take.
                "deployments:\n- name: nightly\n  entrypoint: pipelines/orders/orders.py:orders\n  schedule:\n    cron: \"0 2 * * *\"\n    timezone: Europe/Berlin\n  parameters: {window: {days: 2}, target: {schema: raw}, stale: 1}\n  work_pool:\n    name: real-pool\n    job_variables: {\n    image: registry.example.com/flows/orders:1\n    }\n",
            ),
            (
                "pipelines/reports/prefect.yaml",
                // A module entrypoint in a src layout; schedules with an interval and an anchor date.
                "deployments:\n- name: daily\n  entrypoint: reports.daily:report\n  schedules:\n    - interval: 3600\n      anchor_date: \"2024-01-01T00:00:00\"\n      active: false\n  work_pool: {name: real-pool}\n",
            ),
        ],
    );
    let files = [
        "pipelines/orders/prefect.yaml",
        "pipelines/reports/prefect.yaml",
    ];
    // prefect deploy imports `src/` modules only from an installed package or PYTHONPATH: as a project's
    // CI has them.
    let env = [("PYTHONPATH", "src")];
    let doc = both(root, &files, &env, &[]);
    assert_eq!(doc["prefect"]["deployments"].as_array().unwrap().len(), 2);
    let d = &deployments(OURS, &[format!("orders-{t}")])[&format!("orders-{t}/nightly")];
    assert_eq!(d["schedules"][0]["schedule"]["cron"], "0 2 * * *");
    assert_eq!(
        d["pull_steps"],
        json!([{"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect"}}])
    );
    assert!(d["parameter_openapi_schema"]["definitions"]["Window"].is_object());
}

#[test]
fn warnings_register_as_prefect_does_and_strict_refuses_with_nothing_written() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    pool("real-pool");
    write(
        dir.path(),
        &[
            (
                "flows/f.py",
                &format!(
                    "from prefect import flow\n\n\n@flow(name=\"warn-{t}\")\ndef f(x: int = 1):\n    pass\n"
                ),
            ),
            (
                "prefect.yaml",
                "deployments:\n- name: a\n  entrypoint: flows/f.py:f\n  parameters: {x: 1, y: 2}\n  work_pool: {name: real-pool}\n- name: a\n  entrypoint: flows/f.py:f\n  tags: [second]\n  work_pool: {name: real-pool}\n",
            ),
        ],
    );
    let strict = flowship()
        .env("PREFECT_API_URL", svc(OURS))
        .cwd(dir.path())
        .args(["register", "--all", "--strict"])
        .run();
    strict
        .code(2)
        .stderr_has("prefect.yaml:2: deployment `a`: parameter `y` is not a parameter of flow")
        .stderr_has("defined twice in this file");
    assert!(
        deployments(OURS, &[format!("warn-{t}")]).is_empty(),
        "nothing written under --strict"
    );
    let doc = both(dir.path(), &["prefect.yaml"], &[], &[]);
    assert_eq!(doc["prefect"]["deployments"].as_array().unwrap().len(), 1);
    let d = &deployments(OURS, &[format!("warn-{t}")])[&format!("warn-{t}/a")];
    assert_eq!(d["tags"], json!(["second"]), "the last definition wins");
}

/// What the corpus found registered silently where `prefect deploy` behaves otherwise: uclh-criu's pull step
/// `{{ $PWD }}` with PWD unset (registered as written, as Prefect does, but rarely meant), datopian's
/// `schedule: []` (Prefect refuses the whole file; flowship registers no schedule). Both are warnings, so
/// `--strict` refuses them.
#[test]
fn an_unset_pull_step_variable_and_a_schedule_list_are_warned() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    pool("real-pool");
    write(
        dir.path(),
        &[
            (
                "flows/f.py",
                &format!(
                    "from prefect import flow\n\n\n@flow(name=\"env-{t}\")\ndef f():\n    pass\n"
                ),
            ),
            (
                "prefect.yaml",
                "pull:\n- prefect.deployments.steps.set_working_directory:\n    directory: '{{ $PWD }}'\ndeployments:\n- name: a\n  entrypoint: flows/f.py:f\n  schedule: []\n  work_pool: {name: real-pool}\n",
            ),
        ],
    );
    let run = |args: &[&str]| {
        flowship()
            .env("PREFECT_API_URL", svc(OURS))
            .cwd(dir.path())
            .args(["register", "--all", "--dry-run"])
            .args(args)
            .run()
    };
    run(&[])
        .success()
        .stderr_has("`{{ $PWD }}` is registered as written: PWD is not set where flowship runs")
        .stderr_has("`schedule: []` is not a mapping; no schedule is registered for it");
    run(&["--strict"]).code(2);
    let set = flowship()
        .env("PREFECT_API_URL", svc(OURS))
        .env("PWD", "/opt/app")
        .cwd(dir.path())
        .args(["register", "--all", "--dry-run"])
        .run();
    set.success();
    assert!(!set.stderr.contains("is registered as written"), "{set}");
}

#[test]
fn a_computed_flow_name_is_refused_and_a_directory_registers_every_project_under_it() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    pool("real-pool");
    write(
        dir.path(),
        &[
            (
                "a/flows.py",
                &format!(
                    "from prefect import flow\n\n\n@flow(name=\"dir-a-{t}\")\ndef a():\n    pass\n"
                ),
            ),
            (
                "a/prefect.yaml",
                "deployments:\n- name: one\n  entrypoint: a/flows.py:a\n  work_pool: {name: real-pool}\n",
            ),
            (
                "b/flows.py",
                &format!(
                    "from prefect import flow\n\n\n@flow(name=\"dir-b-{t}\")\ndef b():\n    pass\n"
                ),
            ),
            (
                "b/prefect.yaml",
                "deployments:\n- name: two\n  entrypoint: b/flows.py:b\n  work_pool: {name: real-pool}\n",
            ),
            (
                "c/flows.py",
                "import os\nfrom prefect import flow\n\n\n@flow(name=os.environ['X'] + '-etl')\ndef c():\n    pass\n",
            ),
            (
                "c/prefect.yaml",
                "deployments:\n- name: three\n  entrypoint: c/flows.py:c\n  work_pool: {name: real-pool}\n",
            ),
        ],
    );
    let run = |files: &[&str]| {
        let mut f = flowship()
            .env("PREFECT_API_URL", svc(OURS))
            .cwd(dir.path())
            .args(["register", "--all", "--output", "json"]);
        for x in files {
            f = f.args(["--file", x]);
        }
        f.run()
    };
    run(&["c/prefect.yaml"])
        .code(2)
        .stderr_has("is computed at import")
        .stderr_has("literal name");
    std::fs::remove_dir_all(dir.path().join("c")).unwrap();
    let doc = run(&["."]).success().json();
    let names: Vec<&str> = doc["prefect"]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("dir-a-{t}/one"), format!("dir-b-{t}/two")]);
}

/// One project of the real corpus (fixtures/prefect-real/projects.json).
#[derive(serde::Deserialize)]
struct Case {
    slug: String,
    #[serde(default = "dot")]
    workdir: String,
    prefect_file: String,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    skip_steps: Vec<String>,
    /// Why prefect deploy itself cannot register it here (then flowship must, and is not compared).
    #[serde(default)]
    prefect_fails: Option<String>,
    /// The file names no work pool: given to both (`prefect deploy --pool`, `flowship --work-pool`).
    #[serde(default)]
    pool: Option<String>,
    /// Why both refuse the file (flowship with exit 2, nothing written).
    #[serde(default)]
    refused: Option<String>,
    /// Where `prefect deploy` cannot run the file as it is here, the copy of it it is given instead.
    #[serde(default)]
    prefect_input: Option<Derived>,
}

/// A copy of a prefect file for `prefect deploy` alone, made at test time (the fixture stays byte for byte),
/// so that what `prefect deploy` cannot do here does not keep everything else from being compared: build
/// and push steps that need docker, git, the network or AWS (flowship reads the original with `skip_steps`
/// for them: both then template the file without those steps' outputs); Prefect 2 keys for which Prefect
/// 3.9's model refuses the whole file (flowship drops them, with a warning); a work pool for deployments
/// that name none (prefect deploy ignores `--pool` when a file has several deployments; flowship's
/// `--work-pool` is the pool of those that name none).
#[derive(serde::Deserialize)]
struct Derived {
    /// Dotted paths removed (`*` for every key or item): `build`, `deployments.*.schedules.*.catchup`.
    #[serde(default)]
    drop: Vec<String>,
    /// Deployments without `work_pool.name` get the case's `pool`.
    #[serde(default)]
    pool: bool,
    /// Why prefect deploy needs the copy.
    why: String,
}

/// PyYAML, as Prefect reads the file: load, drop paths, name the pool where none is, dump.
const DERIVE: &str = "import yaml,sys
src,dst,pool=sys.argv[1:4]
d=yaml.safe_load(open(src))
def drop(n,p):
  if isinstance(n,dict): ks=list(n) if p[0]=='*' else [p[0]] if p[0] in n else []
  elif isinstance(n,list): ks=list(range(len(n))) if p[0]=='*' else []
  else: ks=[]
  for k in ks:
    if len(p)==1: del n[k]
    else: drop(n[k],p[1:])
for p in sys.argv[4:]: drop(d,p.split('.'))
for x in d.get('deployments') or []:
  if pool and not ((x.get('work_pool') or {}).get('name')):
    x['work_pool']=dict(x.get('work_pool') or {},name=pool)
yaml.safe_dump(d,open(dst,'w'),sort_keys=False)
";

/// Writes the derived copy of `file` (relative to `workdir`) beside it; returns its path relative to
/// `workdir`.
fn derive(workdir: &Path, file: &str, d: &Derived, pool: Option<&str>) -> String {
    let to = format!("{file}.prefect-deploy.yaml");
    let python = PathBuf::from(svc("PREFECT_BIN")).with_file_name("python");
    let pool = if d.pool { pool.unwrap_or_default() } else { "" };
    let out = Command::new(python)
        .args(["-c", DERIVE])
        .arg(workdir.join(file))
        .arg(workdir.join(&to))
        .arg(pool)
        .args(&d.drop)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deriving {file}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    to
}

fn dot() -> String {
    ".".into()
}

/// Every project of the real corpus, registered by both and compared field by field.
#[test]
fn the_real_corpus_registers_as_prefect_deploy_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/prefect-real");
    let Ok(text) = std::fs::read_to_string(root.join("cases.json")) else {
        panic!("fixtures/prefect-real/cases.json is missing");
    };
    let cases: Vec<Case> = serde_json::from_str(&text).unwrap();
    assert!(cases.len() >= 20, "at least 20 real projects");
    let mut failures = Vec::new();
    for c in cases {
        let work = tempfile::tempdir().unwrap();
        copy_dir(&root.join(&c.slug), work.path());
        let workdir: PathBuf = work.path().join(&c.workdir);
        for p in pools_of(&workdir.join(&c.prefect_file), &c.env)
            .into_iter()
            .chain(c.pool.clone())
        {
            pool(&p);
        }
        let env: Vec<(&str, &str)> = c
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut extra = Vec::new();
        for s in &c.skip_steps {
            extra.push("--skip-step");
            extra.push(s.as_str());
        }
        if let Some(p) = &c.pool {
            extra.push("--work-pool");
            extra.push(p.as_str());
        }
        if c.refused.is_some() {
            let mut f = flowship().env("PREFECT_API_URL", svc(OURS)).cwd(&workdir);
            for (k, v) in &env {
                f = f.env(k, v);
            }
            let o = f
                .args(["register", "--all", "--file", &c.prefect_file])
                .args(&extra)
                .run();
            if o.code != 2 {
                failures.push(format!("{}: both should refuse, flowship: {o}", c.slug));
            }
            continue;
        }
        // Where prefect deploy itself cannot register the project (`prefect_fails` says why), flowship must.
        if c.prefect_fails.is_some() {
            let mut f = flowship().env("PREFECT_API_URL", svc(OURS)).cwd(&workdir);
            for (k, v) in &env {
                f = f.env(k, v);
            }
            let o = f
                .args(["register", "--all", "--file", &c.prefect_file])
                .args(&extra)
                .run();
            if o.code != 0 {
                failures.push(format!(
                    "{}: flowship must register what prefect deploy cannot: {o}",
                    c.slug
                ));
            }
            continue;
        }
        let theirs = match &c.prefect_input {
            Some(d) => derive(&workdir, &c.prefect_file, d, c.pool.as_deref()),
            None => c.prefect_file.clone(),
        };
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            both_from(&workdir, &[&c.prefect_file], &[&theirs], &env, &extra);
        }));
        if let Err(e) = run {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let copy = c
                .prefect_input
                .as_ref()
                .map(|d| format!(" (prefect deploy given a copy: {})", d.why))
                .unwrap_or_default();
            failures.push(format!(
                "{} {}{copy}: {}",
                c.slug,
                c.prefect_file,
                msg.chars().take(3000).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the corpus' projects differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The work pools a prefect.yaml names (read with PyYAML, as Prefect reads it; `{{ $VAR }}` from `env`).
fn pools_of(file: &Path, env: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let python = PathBuf::from(svc("PREFECT_BIN")).with_file_name("python");
    let out = Command::new(python)
        .args([
            "-c",
            "import yaml,sys,os,re\nd=yaml.safe_load(open(sys.argv[1])) or {}\nfor x in d.get('deployments') or []:\n  n=((x or {}).get('work_pool') or {}).get('name')\n  if isinstance(n,str): print(re.sub(r'\\{\\{\\s*\\$(\\w+)\\s*\\}\\}', lambda m: os.environ.get(m.group(1), m.group(0)), n))",
        ])
        .arg(file)
        .envs(env)
        .output()
        .unwrap();
    let mut pools: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.contains("{{"))
        .map(str::to_string)
        .collect();
    pools.sort();
    pools.dedup();
    pools
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

#[test]
fn prune_deletes_only_what_flowship_registered_for_the_project_and_the_file_dropped() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    pool("real-pool");
    let flow =
        format!("from prefect import flow\n\n\n@flow(name=\"prune-{t}\")\ndef f():\n    pass\n");
    let yaml = |names: &[&str]| {
        // The project's id (its `name:`) is what marks its deployments: unique per server.
        let mut y = format!("name: shop-{t}\ndeployments:\n");
        for n in names {
            y.push_str(&format!(
                "- name: {n}\n  entrypoint: flows/f.py:f\n  work_pool: {{name: real-pool}}\n"
            ));
        }
        y
    };
    write(
        dir.path(),
        &[
            ("flows/f.py", &flow),
            ("prefect.yaml", &yaml(&["keep", "drop"])),
            // Another project with the same flow: its deployment is not this project's to delete.
            (
                "other/prefect.yaml",
                "name: other\ndeployments:\n- name: theirs\n  entrypoint: flows/f.py:f\n  work_pool: {name: real-pool}\n",
            ),
        ],
    );
    let run = |args: &[&str]| {
        flowship()
            .env("PREFECT_API_URL", svc(OURS))
            .cwd(dir.path())
            .args(["register", "--all"])
            .args(args)
            .run()
    };
    run(&[]).success().stderr_has("2 created");
    run(&["--file", "other/prefect.yaml"])
        .success()
        .stderr_has("1 created");
    std::fs::write(dir.path().join("prefect.yaml"), yaml(&["keep"])).unwrap();
    run(&["--prune", "--dry-run"])
        .success()
        .stdout_has(&format!("would be deleted prune-{t}/drop"))
        .stderr_has("0 created, 0 updated, 1 unchanged, 1 deleted, 0 failed");
    assert_eq!(
        deployments(OURS, &[format!("prune-{t}")]).len(),
        3,
        "a dry run deletes nothing"
    );
    run(&["--prune"]).success().stderr_has("1 deleted");
    let left: Vec<String> = deployments(OURS, &[format!("prune-{t}")])
        .into_keys()
        .collect();
    assert_eq!(
        left,
        [format!("prune-{t}/keep"), format!("prune-{t}/theirs")]
    );
    flowship()
        .env("PREFECT_API_URL", svc(OURS))
        .cwd(dir.path())
        .args(["register", "--prune", "--name", "*/keep"])
        .run()
        .code(2)
        .stderr_has("--prune deletes what the files do not name");
}

/// Kubernetes pools get the image pull secret the environment names: on pools flowship creates, and added to
/// existing ones (planned, shown under --dry-run); a second run has nothing to add.
#[test]
fn kubernetes_pools_get_the_image_pull_secret() {
    let t = token();
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "flows/f.py",
                &format!(
                    "from prefect import flow\n\n\n@flow(name=\"k8s-{t}\")\ndef f():\n    pass\n"
                ),
            ),
            (
                "prefect.yaml",
                &format!(
                    "deployments:\n- name: a\n  entrypoint: flows/f.py:f\n  work_pool: {{name: k8s-{t}}}\n- name: b\n  entrypoint: flows/f.py:f\n  work_pool: {{name: k8s2-{t}}}\n"
                ),
            ),
        ],
    );
    let run = |args: &[&str]| {
        flowship()
            .env("PREFECT_API_URL", svc(OURS))
            .cwd(dir.path())
            .args(["register", "--create-work-pool", "kubernetes"])
            .args(if args.contains(&"--name") {
                &[][..]
            } else {
                &["--all"][..]
            })
            .args(args)
            .run()
    };
    let secrets = |pool: &str| {
        api(&svc(OURS), "GET", &format!("/work_pools/{pool}"), None)["base_job_template"]["job_configuration"]
            ["job_manifest"]["spec"]["template"]["spec"]["imagePullSecrets"]
            .clone()
    };
    // k8s2 exists first, without a secret.
    run(&["--name", "*/b"]).success();
    assert!(secrets(&format!("k8s2-{t}")).is_null());
    run(&["--image-pull-secret", "harbor-pull", "--dry-run"])
        .success()
        .stderr_has(&format!(
            "would add the image pull secret `harbor-pull` to work pool `k8s2-{t}`"
        ));
    // doctor says it too: the pool names no image pull secret (a warning), then names it (ok).
    let doctor = || {
        let doc = flowship()
            .env("PREFECT_API_URL", svc(OURS))
            .env("FLOWSHIP_IMAGE_PULL_SECRET", "harbor-pull")
            .args([
                "doctor",
                "--output",
                "json",
                "--work-pool",
                &format!("k8s2-{t}"),
            ])
            .run()
            .json();
        doc["services"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["checks"].as_array().unwrap().clone())
            .find(|c| c["check"] == "work_pool")
            .unwrap()
    };
    let before = doctor();
    assert_eq!(before["status"], "warn", "{before}");
    assert!(
        before["detail"]
            .as_str()
            .unwrap()
            .contains("no `harbor-pull`"),
        "{before}"
    );
    run(&["--image-pull-secret", "harbor-pull"]).success();
    for pool in [format!("k8s-{t}"), format!("k8s2-{t}")] {
        assert_eq!(secrets(&pool), json!([{"name": "harbor-pull"}]), "{pool}");
    }
    let after = doctor();
    assert_eq!(after["status"], "ok", "{after}");
    assert!(
        after["detail"].as_str().unwrap().contains("harbor-pull"),
        "{after}"
    );
    let again = run(&["--image-pull-secret", "harbor-pull", "--dry-run"]);
    again.success();
    assert!(
        !again.stderr.contains("would add the image pull secret"),
        "{again}"
    );
}
