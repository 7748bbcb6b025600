//! The bad-input corpus (issue 8): user mistakes and hostile files and answers, each with its exit code, a
//! fragment of the message that names the file or field, one that names the fix, and a check that nothing
//! was written anywhere: no tag in the registry, no ref moved in the GitOps repo, no deployment in Prefect.

use crate::fake::{self, Route};
use crate::harness::{Flowship, flowship, svc};
use std::process::Command;

struct World {
    tok: String,
    /// A GitOps repository over git://, with one HelmRelease for the image.
    repo: String,
    bare: std::path::PathBuf,
    /// The image repository in the plain registry (never pushed to by any case).
    image: String,
    prefect: String,
    /// A layout with a valid image, for cases that need a source that is fine.
    layout: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

use crate::harness::git;

fn world() -> World {
    let tok = format!("{:x}", fastrand::u32(..));
    let files = [
        (
            "apps/etl.yaml",
            "spec:\n  values:\n    image:\n      repository: harbor.example.com/flows/etl\n      tag: \"1.0.0\"\n",
        ),
        (
            "apps/alias.yaml",
            "x: &t \"1.0.0\"\nspec:\n  values:\n    image:\n      repository: harbor.example.com/flows/etl\n      tag: *t\n",
        ),
        (
            "apps/merge.yaml",
            "defaults: &d\n  tag: \"1.0.0\"\nimage:\n  <<: *d\n  repository: harbor.example.com/flows/etl\n",
        ),
        (
            "apps/dup.yaml",
            "image:\n  repository: harbor.example.com/flows/etl\n  tag: \"1.0.0\"\n  tag: \"1.0.1\"\n",
        ),
        (
            "apps/pinned.yaml",
            "image: harbor.example.com/flows/etl:1.0.0@sha256:0000000000000000000000000000000000000000000000000000000000000000\n",
        ),
    ];
    let files: Vec<(&str, String)> = files.iter().map(|(f, c)| (*f, c.to_string())).collect();
    let (name, bare) = crate::harness::seeded(&files);
    let dir = tempfile::tempdir().unwrap();
    let layout = crate::images::umoci_layout(dir.path(), "v1");
    World {
        repo: format!("{}/{name}", svc("GIT_DAEMON")),
        bare,
        image: format!("{}/corpus-{tok}/etl", svc("REGISTRY_PLAIN")),
        prefect: svc("PREFECT_PLAIN"),
        layout,
        tok,
        _dir: dir,
    }
}

impl World {
    /// A flow project in `f`'s scratch dir: `prefect.yaml` as given, and `flows/x.py` with flow
    /// `corpus-<tok>` (function `f`, parameter `n`).
    fn project(&self, f: Flowship, yaml: &str) -> Flowship {
        f.file("prefect.yaml", yaml);
        f.file(
            "flows/x.py",
            &format!("from prefect import flow\n\n@flow(name=\"corpus-{}\")\ndef f(n: int = 1):\n    pass\n", self.tok),
        );
        f.in_scratch_dir().env("PREFECT_API_URL", &self.prefect)
    }

    fn deploy(&self, extra: &str) -> String {
        format!(
            "deployments:\n- name: d\n  entrypoint: flows/x.py:f\n  work_pool: {{name: ci-pool}}\n{extra}"
        )
    }

    fn bump(&self, f: Flowship) -> Flowship {
        f.args([
            "bump",
            "--repo",
            &self.repo,
            "--image",
            "harbor.example.com/flows/etl",
            "--tag",
            "9.9.9",
        ])
    }

    fn push(&self, f: Flowship, from: &str) -> Flowship {
        f.env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN")).args([
            "push",
            "--from",
            from,
            "--image",
            &self.image,
            "--tag",
            "v1",
        ])
    }

    /// Nothing any case did is visible: the registry has no tag in the image repository, the GitOps repo
    /// has its one branch at its seed commit, Prefect has no deployment of the corpus flow.
    fn assert_untouched(&self, seed: &str) {
        let tags = Command::new("curl")
            .args([
                "-s",
                &format!(
                    "http://{}/v2/{}/tags/list",
                    svc("REGISTRY_PLAIN"),
                    self.image.split_once('/').unwrap().1
                ),
            ])
            .output()
            .unwrap();
        let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap_or_default();
        assert!(
            tags["tags"].as_array().is_none_or(|t| t.is_empty()),
            "a case tagged an image: {tags}"
        );
        assert_eq!(
            git(&self.bare, &["rev-parse", "main"]),
            seed,
            "a case moved main"
        );
        assert_eq!(
            git(&self.bare, &["for-each-ref", "--format=%(refname)"]),
            "refs/heads/main",
            "a case made a ref"
        );
        let out = Command::new("curl")
            .args([
                "-s",
                "--retry",
                "10",
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
            ])
            .args([
                "-d",
                &format!(
                    r#"{{"flows": {{"name": {{"any_": ["corpus-{}"]}}}}}}"#,
                    self.tok
                ),
            ])
            .arg(format!("{}/deployments/filter", self.prefect))
            .output()
            .unwrap();
        let found = crate::harness::last_json(&out.stdout);
        assert_eq!(
            found,
            serde_json::json!([]),
            "a case registered a deployment"
        );
    }
}

/// A tar file in `f`'s scratch dir, from `(name, kind, content or link target)`; names go in raw.
fn tar(f: &Flowship, name: &str, entries: &[(&str, char, &str)]) -> String {
    let path = f.scratch().join(name);
    let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
    for (n, kind, content) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        let raw = n.as_bytes();
        match kind {
            'l' => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.as_gnu_mut().unwrap().name[..raw.len()].copy_from_slice(raw);
                h.set_link_name(content).unwrap();
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            _ => {
                h.set_size(content.len() as u64);
                h.as_gnu_mut().unwrap().name[..raw.len()].copy_from_slice(raw);
                h.set_cksum();
                b.append(&h, content.as_bytes()).unwrap();
            }
        }
    }
    b.finish().unwrap();
    format!("docker-archive:{}", path.display())
}

/// An OCI layout directory in `f`'s scratch dir with this `index.json` (and `oci-layout`).
fn layout(f: &Flowship, index: &str) -> String {
    f.file("l/oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#);
    f.file("l/index.json", index);
    f.file("l/blobs/sha256/.keep", "");
    format!("oci-layout:{}", f.scratch().join("l").display())
}

fn sha(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A registry that serves what it should not (see each route).
fn hostile_registry() -> (fake::Fake, String, String, String) {
    let config = br#"[1, 2, 3]"#.to_vec();
    let bad_config_manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        sha(&config),
        config.len()
    );
    let wrong = format!("sha256:{}", "a".repeat(64));
    let no_layers = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1},"layers":"many"}"#;
    let traversal = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"x","digest":"sha256:../../../etc/passwd","size":1},"layers":[]}"#;
    let routes: Vec<Route> = vec![
        (
            "GET",
            "/v2/base/wrong/manifests/".into(),
            200,
            "application/vnd.oci.image.manifest.v1+json",
            bad_config_manifest.clone().into_bytes(),
        ),
        (
            "GET",
            "/v2/base/config/manifests/".into(),
            200,
            "application/vnd.oci.image.manifest.v1+json",
            bad_config_manifest.into_bytes(),
        ),
        (
            "GET",
            format!("/v2/base/config/blobs/{}", sha(&config)),
            200,
            "application/octet-stream",
            config,
        ),
        (
            "GET",
            "/v2/base/nolayers/manifests/".into(),
            200,
            "application/vnd.oci.image.manifest.v1+json",
            no_layers.into(),
        ),
        (
            "GET",
            "/v2/base/traversal/manifests/".into(),
            200,
            "application/vnd.oci.image.manifest.v1+json",
            traversal.into(),
        ),
        (
            "GET",
            "/v2/base/huge/manifests/".into(),
            200,
            "application/vnd.oci.image.manifest.v1+json",
            vec![b' '; 5 << 20],
        ),
        (
            "GET",
            "/v2/".into(),
            200,
            "application/json",
            b"{}".to_vec(),
        ),
    ];
    let f = fake::serve(routes);
    let wrong_ref = format!("{}/base/wrong@{wrong}", f.addr);
    let config_ref = format!("{}/base/config:1", f.addr);
    let addr = f.addr.clone();
    (f, addr, wrong_ref, config_ref)
}

/// A Prefect server whose deployments query never ends, or is not a list.
fn hostile_prefect(page: &str) -> fake::Fake {
    fake::serve(vec![
        (
            "GET",
            "/api/csrf-token".into(),
            422,
            "application/json",
            br#"{"detail":"CSRF protection is disabled."}"#.to_vec(),
        ),
        (
            "GET",
            "/api/work_pools/ci-pool".into(),
            200,
            "application/json",
            br#"{"name":"ci-pool","type":"process"}"#.to_vec(),
        ),
        (
            "GET",
            "/api/flows/name/".into(),
            200,
            "application/json",
            br#"{"id":"00000000-0000-0000-0000-000000000001"}"#.to_vec(),
        ),
        (
            "POST",
            "/api/flows/".into(),
            200,
            "application/json",
            br#"{"id":"00000000-0000-0000-0000-000000000001"}"#.to_vec(),
        ),
        (
            "POST",
            "/api/deployments/filter".into(),
            200,
            "application/json",
            page.as_bytes().to_vec(),
        ),
    ])
}

type Case<'a> = (
    &'static str,
    i32,
    Vec<&'static str>,
    Box<dyn Fn() -> crate::harness::Outcome + 'a>,
);

#[test]
fn every_bad_input_is_refused_clearly_and_writes_nothing() {
    let w = world();
    let seed = git(&w.bare, &["rev-parse", "main"]);
    let (reg, reg_addr, wrong_base, config_base) = hostile_registry();
    let page_of_200: String = format!(
        "[{}]",
        (0..200)
            .map(|_| {
                r#"{"id": "x", "name": "d", "flow_id": "00000000-0000-0000-0000-000000000001"}"#
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join(",")
    );
    let endless = hostile_prefect(&page_of_200);
    let not_a_list = hostile_prefect(r#"{"deployments": []}"#);
    let fine_layout = format!("oci-layout:{}:v1", w.layout.display());
    let cfg = |yaml: &'static str| {
        let f = flowship().in_scratch_dir();
        f.file("flowship.yaml", yaml);
        f
    };
    let cases: Vec<Case> = vec![
        // ---- flowship.yaml ----------------------------------------------------------------------------
        (
            "unknown key",
            2,
            vec!["flowship.yaml:2", "did you mean `branch`"],
            Box::new(|| w.bump(cfg("gitops:\n  brnch: x\n")).run()),
        ),
        (
            "unknown section",
            2,
            vec!["flowship.yaml:1", "did you mean `gitops`"],
            Box::new(|| w.bump(cfg("gitopz:\n  branch: x\n")).run()),
        ),
        (
            "registry password in the file",
            2,
            vec!["flowship.yaml", "FLOWSHIP_REGISTRY_PASSWORD"],
            Box::new(|| w.bump(cfg("registry:\n  password: x\n")).run()),
        ),
        (
            "git token in the file",
            2,
            vec!["flowship.yaml", "FLOWSHIP_GIT_TOKEN"],
            Box::new(|| w.bump(cfg("gitops:\n  token: x\n")).run()),
        ),
        (
            "prefect key in an environment",
            2,
            vec!["flowship.yaml", "PREFECT_API_KEY"],
            Box::new(|| {
                w.bump(cfg(
                    "environments:\n  prod:\n    prefect:\n      api_key: x\n",
                ))
                .run()
            }),
        ),
        (
            "tag in image.repository",
            2,
            vec!["`image.repository`", "give `harbor.example.com/flows/etl`"],
            Box::new(|| {
                cfg("image:\n  repository: harbor.example.com/flows/etl:1\n")
                    .args(["bump", "--repo", &w.repo, "--tag", "9.9.9"])
                    .run()
            }),
        ),
        (
            "bad image.repository",
            2,
            vec!["`image.repository`", "registry/project/name"],
            Box::new(|| {
                cfg("image:\n  repository: 'Harbor!/x'\n")
                    .args(["bump", "--repo", &w.repo, "--tag", "9.9.9"])
                    .run()
            }),
        ),
        (
            "prefect.api_url not a URL",
            2,
            vec!["`prefect.api_url`", "Prefect API URL such as"],
            Box::new(|| {
                w.project(cfg("prefect:\n  api_url: prefect:4200\n"), &w.deploy(""))
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "gitlab.url not a URL",
            2,
            vec!["`gitlab.url`", "GitLab API URL such as"],
            Box::new(|| w.bump(cfg("gitlab:\n  url: gitlab\n")).run()),
        ),
        (
            "paths not a list of strings",
            2,
            vec!["flowship.yaml", "gitops.paths"],
            Box::new(|| w.bump(cfg("gitops:\n  paths: {a: b}\n")).run()),
        ),
        (
            "broken YAML",
            2,
            vec!["flowship.yaml:2"],
            Box::new(|| w.bump(cfg("gitops:\n  branch: [\n")).run()),
        ),
        (
            "monotonic value",
            2,
            vec!["flowship.yaml", "semver"],
            Box::new(|| w.bump(cfg("gitops:\n  monotonic: alphabetical\n")).run()),
        ),
        (
            "scan gate value",
            2,
            vec!["`harbor.scan_gate`", "critical, high, medium or low"],
            Box::new(|| w.bump(cfg("harbor:\n  scan_gate: severe\n")).run()),
        ),
        (
            "retries not a number",
            2,
            vec!["flowship.yaml", "http"],
            Box::new(|| w.bump(cfg("http:\n  retries: many\n")).run()),
        ),
        (
            "plain_http without port",
            2,
            vec!["`tls.plain_http`", "--plain-http 127.0.0.1:5000"],
            Box::new(|| w.bump(cfg("tls:\n  plain_http: [localhost]\n")).run()),
        ),
        (
            "missing CA file",
            2,
            vec!["`tls.ca_files`", "PEM file"],
            Box::new(|| w.bump(cfg("tls:\n  ca_files: [/no/ca.pem]\n")).run()),
        ),
        (
            "chunk size unit",
            2,
            vec!["`upload.chunk_size`", "8MiB"],
            Box::new(|| {
                w.push(cfg("upload:\n  chunk_size: 8XB\n"), &fine_layout)
                    .run()
            }),
        ),
        (
            "unknown environment",
            2,
            vec!["--env", "did you mean `prod`"],
            Box::new(|| {
                w.bump(cfg("environments:\n  prod: {}\n"))
                    .args(["--env", "prd"])
                    .run()
            }),
        ),
        (
            "environment without definitions",
            2,
            vec!["--env", "define environments.<name>"],
            Box::new(|| w.bump(flowship()).args(["--env", "prod"]).run()),
        ),
        (
            "unknown key in a cluster",
            2,
            vec!["flowship.yaml", "did you mean `work_pool`"],
            Box::new(|| {
                w.bump(cfg(
                    "environments:\n  prod:\n    clusters:\n      c1: {workpool: x}\n",
                ))
                .run()
            }),
        ),
        (
            "explicit config missing",
            2,
            vec!["nope.yaml", "--config"],
            Box::new(|| w.bump(flowship()).args(["--config", "nope.yaml"]).run()),
        ),
        // ---- variables and flags ----------------------------------------------------------------------
        (
            "chunk size overflow",
            2,
            vec!["--chunk-size", "too large"],
            Box::new(|| {
                w.push(flowship(), &fine_layout)
                    .args(["--chunk-size", "99999999999999999GiB"])
                    .run()
            }),
        ),
        (
            "chunk size from a variable",
            2,
            vec!["FLOWSHIP_CHUNK_SIZE", "8MiB"],
            Box::new(|| {
                w.push(flowship().env("FLOWSHIP_CHUNK_SIZE", "lots"), &fine_layout)
                    .run()
            }),
        ),
        (
            "retries from a variable",
            2,
            vec!["FLOWSHIP_HTTP_RETRIES", "whole number"],
            Box::new(|| w.bump(flowship().env("FLOWSHIP_HTTP_RETRIES", "x")).run()),
        ),
        (
            "plain http from a variable",
            2,
            vec!["FLOWSHIP_PLAIN_HTTP", "HOST:PORT"],
            Box::new(|| {
                w.bump(flowship().env("FLOWSHIP_PLAIN_HTTP", "localhost"))
                    .run()
            }),
        ),
        (
            "source date",
            2,
            vec!["SOURCE_DATE_EPOCH", "whole number"],
            Box::new(|| w.bump(flowship().env("SOURCE_DATE_EPOCH", "today")).run()),
        ),
        (
            "commit timestamp",
            2,
            vec!["CI_COMMIT_TIMESTAMP", "ISO 8601"],
            Box::new(|| {
                w.bump(flowship().env("CI_COMMIT_TIMESTAMP", "last tuesday"))
                    .run()
            }),
        ),
        (
            "user without password",
            2,
            vec!["FLOWSHIP_REGISTRY_USERNAME", "FLOWSHIP_REGISTRY_PASSWORD"],
            Box::new(|| {
                w.push(
                    flowship().env("FLOWSHIP_REGISTRY_USERNAME", "ci"),
                    &fine_layout,
                )
                .run()
            }),
        ),
        (
            "password without user",
            2,
            vec!["FLOWSHIP_REGISTRY_PASSWORD", "FLOWSHIP_REGISTRY_USERNAME"],
            Box::new(|| {
                w.push(
                    flowship().env("FLOWSHIP_REGISTRY_PASSWORD", "pw-123456"),
                    &fine_layout,
                )
                .run()
            }),
        ),
        (
            "_FILE names no file",
            2,
            vec!["FLOWSHIP_GIT_TOKEN_FILE", "readable file"],
            Box::new(|| {
                w.bump(flowship().env("FLOWSHIP_GIT_TOKEN_FILE", "/no/token"))
                    .run()
            }),
        ),
        (
            "output format from a variable",
            2,
            vec!["FLOWSHIP_OUTPUT", "--output json"],
            Box::new(|| w.bump(flowship().env("FLOWSHIP_OUTPUT", "yaml")).run()),
        ),
        (
            "dry run from a variable",
            2,
            vec!["FLOWSHIP_DRY_RUN", "true or false"],
            Box::new(|| w.bump(flowship().env("FLOWSHIP_DRY_RUN", "maybe")).run()),
        ),
        (
            "monotonic from a variable",
            2,
            vec!["FLOWSHIP_MONOTONIC", "semver or numeric"],
            Box::new(|| w.bump(flowship().env("FLOWSHIP_MONOTONIC", "alpha")).run()),
        ),
        (
            "docker auth config",
            2,
            vec!["DOCKER_AUTH_CONFIG", "auths"],
            Box::new(|| {
                w.push(
                    flowship().env("DOCKER_AUTH_CONFIG", "{not json"),
                    &fine_layout,
                )
                .run()
            }),
        ),
        (
            "prefect api url from PREFECT_API_URL",
            2,
            vec!["PREFECT_API_URL", "Prefect API URL such as"],
            Box::new(|| {
                w.project(flowship(), &w.deploy(""))
                    .env("PREFECT_API_URL", "localhost:4200")
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "plain http to an unlisted Prefect",
            2,
            vec!["--plain-http 127.0.0.1:9", "FLOWSHIP_PLAIN_HTTP"],
            Box::new(|| {
                w.project(flowship(), &w.deploy(""))
                    .env("PREFECT_API_URL", "http://127.0.0.1:9/api")
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "git:// to an unlisted host",
            2,
            vec!["--plain-http 127.0.0.1:9", "git://127.0.0.1:9"],
            Box::new(|| {
                flowship()
                    .args([
                        "bump",
                        "--repo",
                        "git://127.0.0.1:9/g.git",
                        "--image",
                        "h.example.com/f/e",
                        "--tag",
                        "1",
                    ])
                    .run()
            }),
        ),
        // ---- references -------------------------------------------------------------------------------
        (
            "bad tag",
            2,
            vec!["--tag `-bad`", "A-Za-z0-9_.-"],
            Box::new(|| {
                flowship()
                    .args([
                        "bump",
                        "--repo",
                        &w.repo,
                        "--image",
                        "h.example.com/f/e",
                        "--tag=-bad",
                    ])
                    .run()
            }),
        ),
        (
            "bad digest",
            2,
            vec!["--digest `sha256:xyz`", "64 lowercase hex"],
            Box::new(|| w.bump(flowship()).args(["--digest", "sha256:xyz"]).run()),
        ),
        (
            "bad image",
            2,
            vec!["--image", "registry/project/name"],
            Box::new(|| {
                flowship()
                    .args([
                        "bump",
                        "--repo",
                        &w.repo,
                        "--image",
                        "UPPER/Case",
                        "--tag",
                        "1",
                    ])
                    .run()
            }),
        ),
        (
            "no tag or digest",
            2,
            vec![
                "bump needs a new tag, digest or name",
                "--tag and/or --digest",
            ],
            Box::new(|| {
                flowship()
                    .args(["bump", "--repo", &w.repo, "--image", "h.example.com/f/e"])
                    .run()
            }),
        ),
        (
            "no repository",
            2,
            vec!["bump needs the GitOps repository", "FLOWSHIP_GITOPS_REPO"],
            Box::new(|| {
                flowship()
                    .args(["bump", "--image", "h.example.com/f/e", "--tag", "1"])
                    .run()
            }),
        ),
        (
            "target not FILE:PATH",
            2,
            vec!["--target", "FILE:YAML.PATH"],
            Box::new(|| w.bump(flowship()).args(["--target", "nocolon"]).run()),
        ),
        (
            "glob",
            2,
            vec!["--paths", "apps/**/*.yaml"],
            Box::new(|| w.bump(flowship()).args(["--paths", "apps/[a"]).run()),
        ),
        (
            "push tag",
            2,
            vec!["--tag `a b`", "A-Za-z0-9_.-"],
            Box::new(|| {
                flowship()
                    .env("FLOWSHIP_PLAIN_HTTP", svc("REGISTRY_PLAIN"))
                    .args([
                        "push",
                        "--from",
                        &fine_layout,
                        "--image",
                        &w.image,
                        "--tag",
                        "a b",
                    ])
                    .run()
            }),
        ),
        (
            "push source kind",
            2,
            vec!["--from `tarball:x`", "oci-layout:DIR[:TAG]"],
            Box::new(|| w.push(flowship(), "tarball:x").run()),
        ),
        (
            "promote without tag",
            2,
            vec!["SRC names no tag or digest", "registry/repo:tag"],
            Box::new(|| {
                flowship()
                    .args(["promote", &w.image, &format!("{}:x", w.image)])
                    .run()
            }),
        ),
        (
            "promote bad destination",
            2,
            vec!["DST `h.example.com/Bad:1`", "registry/repo:tag"],
            Box::new(|| {
                flowship()
                    .args(["promote", &format!("{}:v1", w.image), "h.example.com/Bad:1"])
                    .run()
            }),
        ),
        (
            "build base",
            2,
            vec!["`NOT A REF`", "python:3.12-slim"],
            Box::new(|| {
                flowship()
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        "NOT A REF",
                    ])
                    .run()
            }),
        ),
        (
            "build platform",
            2,
            vec!["`linux`", "linux/amd64,linux/arm64"],
            Box::new(|| {
                flowship()
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        "python:3.12",
                        "--platform",
                        "linux",
                    ])
                    .run()
            }),
        ),
        (
            "build context",
            2,
            vec!["`no-such-dir`", "--context DIR"],
            Box::new(|| {
                flowship()
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        "python:3.12",
                        "--context",
                        "no-such-dir",
                    ])
                    .run()
            }),
        ),
        (
            "build requirements",
            2,
            vec!["`nope.txt`", "--requirements FILE"],
            Box::new(|| {
                flowship()
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        "python:3.12",
                        "--requirements",
                        "nope.txt",
                    ])
                    .run()
            }),
        ),
        (
            "build without base",
            2,
            vec!["build needs a base image", "FLOWSHIP_BASE_IMAGE"],
            Box::new(|| {
                flowship()
                    .args(["build", "--image", &w.image, "--tag", "1"])
                    .run()
            }),
        ),
        // ---- manifests in the GitOps repo -----------------------------------------------------------------
        (
            "alias",
            2,
            vec!["apps/alias.yaml:6", "alias"],
            Box::new(|| {
                w.bump(flowship())
                    .args(["--paths", "apps/alias.yaml"])
                    .run()
            }),
        ),
        (
            "merge key",
            2,
            vec!["apps/merge.yaml", "<<"],
            Box::new(|| {
                w.bump(flowship())
                    .args(["--paths", "apps/merge.yaml"])
                    .run()
            }),
        ),
        (
            "duplicate key",
            2,
            vec!["apps/dup.yaml", "duplicate"],
            Box::new(|| w.bump(flowship()).args(["--paths", "apps/dup.yaml"]).run()),
        ),
        (
            "digest pin, tag only",
            2,
            vec!["apps/pinned.yaml:1", "--digest"],
            Box::new(|| {
                w.bump(flowship())
                    .args(["--paths", "apps/pinned.yaml"])
                    .run()
            }),
        ),
        (
            "target file missing",
            2,
            vec!["`apps/none.yaml`", "FILE:YAML.PATH"],
            Box::new(|| {
                w.bump(flowship())
                    .args(["--target", "apps/none.yaml:spec.x"])
                    .run()
            }),
        ),
        (
            "target path missing",
            2,
            vec!["apps/etl.yaml", "spec.values.nope"],
            Box::new(|| {
                w.bump(flowship())
                    .args(["--target", "apps/etl.yaml:spec.values.nope"])
                    .run()
            }),
        ),
        // ---- prefect.yaml ---------------------------------------------------------------------------------
        (
            "no deployments list",
            2,
            vec!["prefect.yaml", "deployments"],
            Box::new(|| {
                w.project(flowship(), "deployments: 3\n")
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "not YAML",
            2,
            vec!["prefect.yaml", "line 2"],
            Box::new(|| w.project(flowship(), "a: [\n").args(["register"]).run()),
        ),
        (
            "billion laughs",
            2,
            vec!["prefect.yaml", "billion laughs"],
            Box::new(|| w.project(flowship(), &laughs()).args(["register"]).run()),
        ),
        (
            "no name",
            2,
            vec!["deployment `<unnamed>`", "needs a name"],
            Box::new(|| {
                w.project(flowship(), "deployments:\n- entrypoint: flows/x.py:f\n")
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "no entrypoint",
            2,
            vec![
                "deployment `d`",
                "entrypoint: path/to/file.py:flow_function",
            ],
            Box::new(|| {
                w.project(flowship(), "deployments:\n- name: d\n")
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "entrypoint shape",
            2,
            vec!["deployment `d`", "path/to/file.py:function"],
            Box::new(|| {
                w.project(
                    flowship(),
                    "deployments:\n- name: d\n  entrypoint: nocolon\n",
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            "entrypoint file",
            2,
            vec![
                "flows/none.py",
                "Prefect resolves entrypoints against the directory",
            ],
            Box::new(|| {
                w.project(
                    flowship(),
                    "deployments:\n- name: d\n  entrypoint: flows/none.py:f\n",
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            "entrypoint function",
            2,
            vec!["has no function `g`", "flows in ./flows/x.py: f"],
            Box::new(|| {
                w.project(
                    flowship(),
                    "deployments:\n- name: d\n  entrypoint: flows/x.py:g\n",
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            // `prefect deploy` registers it (a warning here); `--strict` makes it bad input.
            "unknown parameter under --strict",
            2,
            vec!["parameter `m`", "takes: n", "--strict"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  parameters: {m: 1}\n"))
                    .args(["register", "--strict"])
                    .run()
            }),
        ),
        (
            "parameters not a mapping",
            2,
            vec!["`parameters`", "parameters: {name: value"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  parameters: [1]\n"))
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "tags not strings",
            2,
            vec!["`tags`", "tags: [etl, nightly]"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  tags: 5\n"))
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "cron",
            2,
            vec!["cron `every day`", "0 3 * * *"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  schedules:\n  - cron: every day\n"))
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "interval",
            2,
            vec!["interval", "not positive"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  schedules:\n  - interval: -60\n"))
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "schedule kind",
            2,
            vec!["schedules", "cron, interval or rrule"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  schedules:\n  - every: day\n"))
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "step flowship cannot run",
            2,
            vec!["my.custom.step", "--skip-step"],
            Box::new(|| {
                w.project(
                    flowship(),
                    &format!("build:\n- my.custom.step: {{}}\n{}", w.deploy("")),
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            "docker step without image",
            2,
            vec!["build_docker_image", "--image REPO:TAG"],
            Box::new(|| {
                w.project(flowship(), &format!("build:\n- prefect_docker.deployments.steps.build_docker_image: {{image_name: x}}\n{}", w.deploy(""))).args(["register"]).run()
            }),
        ),
        (
            "missing block",
            2,
            vec!["secret/none", "create the block"],
            Box::new(|| {
                w.project(
                    flowship(),
                    &w.deploy("  parameters: {n: '{{ prefect.blocks.secret.none }}'}\n"),
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            "no work pool",
            2,
            vec!["names no work pool", "--work-pool"],
            Box::new(|| {
                w.project(
                    flowship(),
                    "deployments:\n- name: d\n  entrypoint: flows/x.py:f\n",
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            "work pool missing on the server",
            2,
            vec!["work pool `no-pool-x` does not exist", "--create-work-pool"],
            Box::new(|| {
                w.project(flowship(), "deployments:\n- name: d\n  entrypoint: flows/x.py:f\n  work_pool: {name: no-pool-x}\n").args(["register"]).run()
            }),
        ),
        (
            "defined twice under --strict",
            2,
            vec!["defined twice", "its own name"],
            Box::new(|| {
                w.project(
                    flowship(),
                    &format!("{}- name: d\n  entrypoint: flows/x.py:f\n", w.deploy("")),
                )
                .args(["register", "--all", "--strict"])
                .run()
            }),
        ),
        (
            "name matches nothing",
            2,
            vec!["--name `x/y`", "deployments in the file"],
            Box::new(|| {
                w.project(flowship(), &w.deploy(""))
                    .args(["register", "--name", "x/y"])
                    .run()
            }),
        ),
        (
            "several without --all",
            2,
            vec!["say which", "--all"],
            Box::new(|| {
                w.project(
                    flowship(),
                    &format!("{}- name: e\n  entrypoint: flows/x.py:f\n", w.deploy("")),
                )
                .args(["register"])
                .run()
            }),
        ),
        (
            "malformed trigger",
            2,
            vec!["trigger 1", "event"],
            Box::new(|| {
                w.project(flowship(), &w.deploy("  triggers:\n  - type: cron\n"))
                    .args(["register"])
                    .run()
            }),
        ),
        // ---- archives and layouts -------------------------------------------------------------------------
        (
            "not a tar",
            2,
            vec!["bad.tar", "tar archive"],
            Box::new(|| {
                let f = flowship();
                f.file("bad.tar", "hello");
                let from = format!("docker-archive:{}", f.scratch().join("bad.tar").display());
                w.push(f, &from).run()
            }),
        ),
        (
            "archive without manifest",
            2,
            vec!["manifest.json", "docker save"],
            Box::new(|| {
                let f = flowship();
                let a = tar(&f, "a.tar", &[("x", 'f', "y")]);
                w.push(f, &a).run()
            }),
        ),
        (
            "config outside the archive",
            2,
            vec!["manifest.json", "Config `/etc/passwd`"],
            Box::new(|| {
                let f = flowship();
                let a = tar(
                    &f,
                    "a.tar",
                    &[(
                        "manifest.json",
                        'f',
                        r#"[{"Config": "/etc/passwd", "Layers": []}]"#,
                    )],
                );
                w.push(f, &a).run()
            }),
        ),
        (
            "config through a symlink",
            2,
            vec!["a.tar", "outside the archive"],
            Box::new(|| {
                let f = flowship();
                let a = tar(
                    &f,
                    "a.tar",
                    &[
                        ("c.json", 'l', "/etc/passwd"),
                        (
                            "manifest.json",
                            'f',
                            r#"[{"Config": "c.json", "Layers": []}]"#,
                        ),
                    ],
                );
                w.push(f, &a).run()
            }),
        ),
        (
            "layer climbing out",
            2,
            vec!["Layers `../../etc/shadow`", "inside the archive"],
            Box::new(|| {
                let f = flowship();
                let a = tar(
                    &f,
                    "a.tar",
                    &[
                        ("c.json", 'f', "{}"),
                        (
                            "manifest.json",
                            'f',
                            r#"[{"Config": "c.json", "Layers": ["../../etc/shadow"]}]"#,
                        ),
                    ],
                );
                w.push(f, &a).run()
            }),
        ),
        (
            "entry climbing out",
            2,
            vec!["`../escape`", "outside the archive"],
            Box::new(|| {
                let f = flowship();
                let a = tar(&f, "a.tar", &[("../escape", 'f', "x")]);
                w.push(f, &a).run()
            }),
        ),
        (
            "manifest.json not JSON",
            2,
            vec!["manifest.json"],
            Box::new(|| {
                let f = flowship();
                let a = tar(&f, "a.tar", &[("manifest.json", 'f', "nope")]);
                w.push(f, &a).run()
            }),
        ),
        (
            "layout without index",
            2,
            vec!["index.json", "OCI layout"],
            Box::new(|| w.push(flowship(), "oci-layout:/no/such/layout").run()),
        ),
        (
            "index manifests not a list",
            2,
            vec!["index.json", "`manifests` is not a list"],
            Box::new(|| {
                let f = flowship();
                let l = layout(&f, r#"{"schemaVersion": 2, "manifests": {}}"#);
                w.push(f, &l).run()
            }),
        ),
        (
            "descriptor digest traversal",
            2,
            vec!["index.json", "not a sha256 digest"],
            Box::new(|| {
                let f = flowship();
                let l = layout(
                    &f,
                    r#"{"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:../../../etc/passwd", "size": 1}]}"#,
                );
                w.push(f, &l).run()
            }),
        ),
        (
            "blob missing",
            2,
            vec!["blob sha256:0000", "No such file"],
            Box::new(|| {
                let f = flowship();
                let l = layout(
                    &f,
                    &format!(
                        r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:{}", "size": 1}}]}}"#,
                        "0".repeat(64)
                    ),
                );
                w.push(f, &l).run()
            }),
        ),
        (
            "blob not its digest",
            2,
            vec!["does not match its digest"],
            Box::new(|| {
                let f = flowship();
                f.file(&format!("l/blobs/sha256/{}", "1".repeat(64)), "tampered");
                let l = layout(
                    &f,
                    &format!(
                        r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:{}", "size": 8}}]}}"#,
                        "1".repeat(64)
                    ),
                );
                w.push(f, &l).run()
            }),
        ),
        (
            "layout holds several",
            2,
            vec!["holds 2 images", "oci-layout:DIR:TAG"],
            Box::new(|| {
                let f = flowship();
                let d = format!("sha256:{}", "2".repeat(64));
                let l = layout(
                    &f,
                    &format!(
                        r#"{{"schemaVersion": 2, "manifests": [{{"mediaType": "m", "digest": "{d}", "size": 1}}, {{"mediaType": "m", "digest": "{d}", "size": 1}}]}}"#
                    ),
                );
                w.push(f, &l).run()
            }),
        ),
        (
            "no such tag in the layout",
            2,
            vec!["no image tagged `v9`", "tags here"],
            Box::new(|| {
                w.push(flowship(), &format!("oci-layout:{}:v9", w.layout.display()))
                    .run()
            }),
        ),
        // ---- hostile registry and Prefect answers --------------------------------------------------------------
        (
            "base manifest is not its digest",
            1,
            vec!["does not match its digest", "caching proxy"],
            Box::new(|| {
                flowship()
                    .env(
                        "FLOWSHIP_PLAIN_HTTP",
                        format!("{reg_addr},{}", svc("REGISTRY_PLAIN")),
                    )
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        &wrong_base,
                    ])
                    .run()
            }),
        ),
        (
            "base config not an object",
            2,
            vec!["config is not a JSON object", "base"],
            Box::new(|| {
                flowship()
                    .env(
                        "FLOWSHIP_PLAIN_HTTP",
                        format!("{reg_addr},{}", svc("REGISTRY_PLAIN")),
                    )
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        &config_base,
                    ])
                    .run()
            }),
        ),
        (
            "base manifest without layers",
            2,
            vec!["no layers", "base"],
            Box::new(|| {
                flowship()
                    .env(
                        "FLOWSHIP_PLAIN_HTTP",
                        format!("{reg_addr},{}", svc("REGISTRY_PLAIN")),
                    )
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        &format!("{reg_addr}/base/nolayers:1"),
                    ])
                    .run()
            }),
        ),
        (
            "base descriptor traversal",
            2,
            vec!["not a sha256 digest", "base"],
            Box::new(|| {
                flowship()
                    .env(
                        "FLOWSHIP_PLAIN_HTTP",
                        format!("{reg_addr},{}", svc("REGISTRY_PLAIN")),
                    )
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        &format!("{reg_addr}/base/traversal:1"),
                    ])
                    .run()
            }),
        ),
        (
            "huge manifest",
            1,
            vec!["larger than", "manifest"],
            Box::new(|| {
                flowship()
                    .env(
                        "FLOWSHIP_PLAIN_HTTP",
                        format!("{reg_addr},{}", svc("REGISTRY_PLAIN")),
                    )
                    .args([
                        "build",
                        "--image",
                        &w.image,
                        "--tag",
                        "1",
                        "--base",
                        &format!("{reg_addr}/base/huge:1"),
                    ])
                    .run()
            }),
        ),
        (
            "promote of a manifest that is not its digest",
            1,
            vec!["does not match its digest"],
            Box::new(|| {
                flowship()
                    .env(
                        "FLOWSHIP_PLAIN_HTTP",
                        format!("{reg_addr},{}", svc("REGISTRY_PLAIN")),
                    )
                    .args(["promote", &wrong_base, &format!("{}:v1", w.image)])
                    .run()
            }),
        ),
        (
            "endless deployment pages",
            1,
            vec!["same page", "offset"],
            Box::new(|| {
                w.project(flowship(), &w.deploy(""))
                    .env("PREFECT_API_URL", format!("http://{}/api", endless.addr))
                    .env("FLOWSHIP_PLAIN_HTTP", &endless.addr)
                    .args(["register"])
                    .run()
            }),
        ),
        (
            "deployments answer not a list",
            1,
            vec!["not a list of deployments"],
            Box::new(|| {
                w.project(flowship(), &w.deploy(""))
                    .env("PREFECT_API_URL", format!("http://{}/api", not_a_list.addr))
                    .env("FLOWSHIP_PLAIN_HTTP", &not_a_list.addr)
                    .args(["register"])
                    .run()
            }),
        ),
    ];
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    eprintln_count(cases.len());
    let mut failures = Vec::new();
    for (name, code, fragments, run) in &cases {
        let o = run();
        let text = format!("{}\n{}", o.stderr, o.stdout);
        let missing: Vec<&&str> = fragments.iter().filter(|f| !text.contains(**f)).collect();
        if o.code != *code || !missing.is_empty() {
            failures.push(format!("[{name}] want exit {code} and {missing:?}\n{o}"));
        }
    }
    drop(reg);
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    w.assert_untouched(&seed);
}

fn laughs() -> String {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let mut prev = 'a';
    for name in "bcdefghij".chars() {
        text.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        prev = name;
    }
    text.push_str("deployments: []\n");
    text
}

/// The corpus size, for the record (`cargo test corpus -- --nocapture`).
fn eprintln_count(n: usize) {
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("bad-input corpus: {n} cases\n").as_bytes(),
    );
}
