//! What Flux would apply after a release: `kubectl kustomize` of every cluster overlay (kustomize 5.7, as
//! Flux's kustomize-controller builds it) renders the pinned digest for the flow's workloads, and the
//! HelmRelease flowship edited renders through `helm template` of its local chart with the values it pins.

use crate::harness::svc;
use crate::release::{git, world};
use serde::Deserialize;
use std::path::Path;
use std::process::Command;

fn tool(name: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(svc(name))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn documents(text: &str) -> Vec<yaml_serde::Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| yaml_serde::Value::deserialize(d).unwrap())
        .collect()
}

#[test]
fn kustomize_and_helm_render_the_digest_each_cluster_is_pinned_to() {
    let w = world();
    let staged = w
        .flowship()
        .args(["release", "--env", "staging", "--output", "json"])
        .run()
        .success()
        .json()["image"]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    w.flowship()
        .args(["promote", "--from-env", "staging", "--env", "prod"])
        .run()
        .success();
    let (dir, repo) = w.checkout();
    let mut helm_releases = 0;
    for (cluster, image) in [
        ("staging", Some(&w.staging_repo)),
        ("cluster-1", Some(&w.prod_repo)),
        ("cluster-2", Some(&w.prod_repo)),
        ("dev", None),
    ] {
        // Every overlay still renders, released or not.
        let out = tool(
            "KUBECTL",
            &["kustomize", &format!("clusters/{cluster}")],
            &repo,
        );
        let Some(image) = image else { continue };
        let want = format!("{image}:aaaa1111@{staged}");
        assert!(
            out.contains(&format!("image: {want}")),
            "{cluster} renders another image:\n{out}"
        );
        for doc in documents(&out) {
            if doc["kind"].as_str() != Some("HelmRelease") {
                continue;
            }
            helm_releases += 1;
            let values = dir.path().join(format!("{cluster}-values.yaml"));
            std::fs::write(
                &values,
                yaml_serde::to_string(&doc["spec"]["values"]).unwrap(),
            )
            .unwrap();
            let chart = doc["spec"]["chart"]["spec"]["chart"].as_str().unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap();
            let rendered = tool(
                "HELM",
                &["template", name, chart, "-f", values.to_str().unwrap()],
                &repo,
            );
            assert!(
                rendered.contains(&format!("image: \"{want}\"")),
                "helm template of {chart}:\n{rendered}"
            );
        }
    }
    assert_eq!(helm_releases, 1, "the staging overlay's HelmRelease");
}

/// The paths Flux's kustomize-controller builds a directory without `kustomization.yaml` from: every
/// directory holding one (not descended into) and every other `.yaml`/`.yml` file, hidden ones too.
fn flux_generated(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if p.is_dir() {
            if rel == ".git" {
                continue;
            }
            if ["kustomization.yaml", "kustomization.yml", "Kustomization"]
                .iter()
                .any(|k| p.join(k).exists())
            {
                out.push(rel);
            } else {
                flux_generated(&p, root, out);
            }
        } else if rel.ends_with(".yaml") || rel.ends_with(".yml") {
            out.push(rel);
        }
    }
}

/// What flowship adds to the GitOps repository (release records, holds) never breaks Flux: after a
/// release and a rollback (a hold), every overlay renders, `.flowship/` renders nothing, and the repository
/// root builds as Flux's generated kustomization builds it.
#[test]
fn the_records_and_holds_flowship_commits_never_break_a_flux_build() {
    let w = world();
    w.flowship()
        .args(["release", "--env", "staging"])
        .run()
        .success();
    w.edit_code("second");
    w.flowship()
        .args(["release", "--env", "staging"])
        .run()
        .success();
    w.flowship()
        .args(["rollback", "--env", "staging", "--reason", "render test"])
        .run()
        .success();
    let (_dir, repo) = w.checkout();
    assert!(repo.join(".flowship/holds/staging.yaml").exists());
    assert!(repo.join(".flowship/releases/staging.json").exists());
    for cluster in ["staging", "cluster-1", "cluster-2", "dev"] {
        tool(
            "KUBECTL",
            &["kustomize", &format!("clusters/{cluster}")],
            &repo,
        );
    }
    assert_eq!(
        tool("KUBECTL", &["kustomize", ".flowship"], &repo).trim(),
        "",
        ".flowship renders nothing"
    );
    // The repository root, as Flux's generator reads it, gains `.flowship` as one (empty) Kustomization and
    // none of the files in it; everything else is as in the skeleton before any release.
    let mut after = Vec::new();
    flux_generated(&repo, &repo, &mut after);
    let first = git(&repo, &["rev-list", "--max-parents=0", "HEAD"]);
    git(&repo, &["checkout", "-q", first.trim()]);
    let mut before = Vec::new();
    flux_generated(&repo, &repo, &mut before);
    assert!(
        !before.iter().any(|r| r.starts_with(".flowship")),
        "{before:?}"
    );
    before.push(".flowship".into());
    before.sort();
    after.sort();
    assert_eq!(after, before, "what Flux reads from the repository root");
}
