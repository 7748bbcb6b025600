//! Golden tests over real manifests from public repositories (fixtures/real, byte for byte, see SOURCES.md)
//! and over the traps the notes list. Each asserts the exact changes, and that no other line differs.

use super::*;
use std::path::Path;

pub(super) fn real(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/real")
        .join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub(super) fn target(repo: &str, tag: Option<&str>, digest: Option<&str>) -> Target {
    Target::new(repo, tag.map(Into::into), digest.map(Into::into))
}

pub(super) fn changes(file: &str, text: &str, t: &Target) -> Result<Vec<Change>, EditError> {
    plan(file, text, t).map(|s| s.changes)
}

/// Plan, apply, and check: the changes are exactly `want` (path, old, new), and the output differs from the
/// input on exactly those lines.
pub(super) fn golden(text: &str, t: &Target, want: &[(&str, &str, &str)]) -> String {
    let changes = changes("f.yaml", text, t).unwrap();
    let got: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.as_str(), c.new.as_str()))
        .collect();
    assert_eq!(got, want);
    let out = apply(text, &changes);
    let (a, b): (Vec<&str>, Vec<&str>) = (
        text.split_inclusive('\n').collect(),
        out.split_inclusive('\n').collect(),
    );
    assert_eq!(a.len(), b.len(), "line count changed");
    let differing: Vec<usize> = (0..a.len())
        .filter(|i| a[*i] != b[*i])
        .map(|i| i + 1)
        .collect();
    let mut lines: Vec<usize> = changes.iter().map(|c| c.line).collect();
    lines.dedup();
    assert_eq!(
        differing, lines,
        "lines other than the changed values differ"
    );
    out
}

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn prefect_worker_chart_prefect_tag() {
    let text = real("prefect-helm/charts/prefect-worker/values.yaml");
    let repo_line = text
        .lines()
        .position(|l| l.trim() == "repository: prefecthq/prefect")
        .unwrap();
    let old = text
        .lines()
        .skip(repo_line)
        .find(|l| l.trim_start().starts_with("prefectTag:"))
        .unwrap()
        .trim()
        .trim_start_matches("prefectTag:")
        .trim()
        .to_string();
    golden(
        &text,
        &target(
            "prefecthq/prefect",
            Some("3.9.1-python3.12-kubernetes"),
            None,
        ),
        &[(
            "worker.image.prefectTag",
            &old,
            "3.9.1-python3.12-kubernetes",
        )],
    );
}

#[test]
fn podinfo_helmrelease_redis_block() {
    let text = real("flux2-kustomize-helm-example/apps/base/podinfo/release.yaml");
    golden(
        &text,
        &target("public.ecr.aws/docker/library/redis", Some("8.6.3"), None),
        &[("spec.values.redis.tag", "8.6.2", "8.6.3")],
    );
}

#[test]
fn kustomize_images_new_tag() {
    let text = real("image-automation-controller/config/manager/kustomization.yaml");
    golden(
        &text,
        &target("fluxcd/image-automation-controller", Some("v1.3.0"), None),
        &[("images[0].newTag", "v1.2.0", "v1.3.0")],
    );
}

#[test]
fn deployment_image_keeps_its_comment() {
    let text = real(
        "image-automation-controller/internal/update/testdata/replace/commented/deployment.yaml",
    );
    let out = golden(
        &text,
        &target("used", Some("v2.0.0"), None),
        &[(
            "spec.template.spec.containers[0].image",
            "used:v1.0.0",
            "used:v2.0.0",
        )],
    );
    assert!(out.contains("image: used:v2.0.0 # the comment must stay!"));
}

#[test]
fn flux_setter_markers() {
    let text =
        real("image-automation-controller/internal/update/testdata/setters/original/marked.yaml");
    let mut t = target("image", Some("v1.0.1"), None);
    t.policies = vec!["automation-ns:policy".into()];
    let changes = changes("marked.yaml", &text, &t).unwrap();
    assert!(!changes.is_empty());
    let out = apply(&text, &changes);
    assert!(
        out.contains(r#"image: image:v1.0.1 # {"$imagepolicy": "automation-ns:policy"}"#),
        "{out}"
    );
}

#[test]
fn nested_values_tag_with_digest_in_one_field() {
    let text = real(
        "renovate/lib/modules/manager/helm-values/__fixtures__/multi_and_nested_image_values.yaml",
    );
    let t = target("bitnami/postgresql", Some("11.7.0-debian-9-r0"), None);
    // One of the two postgresql blocks is pinned (`tag: x@sha256:...`): a tag alone would be a lie.
    let err = changes("v.yaml", &text, &t).unwrap_err();
    assert!(matches!(err, EditError::DigestPinned { .. }), "{err}");
    // Per reference (issue 15, item 6): the pinned block stays pinned, the tag-only one stays tag-only.
    let t = target("bitnami/postgresql", Some("11.7.0-debian-9-r0"), Some(D1));
    let got = changes("v.yaml", &text, &t).unwrap();
    let mut news: Vec<String> = got.iter().map(|c| c.new.clone()).collect();
    news.sort();
    assert_eq!(
        news,
        [
            "11.7.0-debian-9-r0".to_string(),
            format!("11.7.0-debian-9-r0@{D1}")
        ]
    );
    let mut t = t;
    t.pin = Pin::Always;
    let got = changes("v.yaml", &text, &t).unwrap();
    assert!(
        got.iter()
            .all(|c| c.new == format!("11.7.0-debian-9-r0@{D1}"))
    );
}

#[test]
fn multi_document_file_edits_only_its_document() {
    let text = real("renovate/lib/modules/manager/flux/__fixtures__/multidoc.yaml");
    golden(
        &text,
        &target(
            "k8s.gcr.io/external-dns/external-dns",
            Some("v0.14.0"),
            None,
        ),
        &[("spec.values.image.tag", "v0.13.4", "v0.14.0")],
    );
}

#[test]
fn every_real_fixture_scans() {
    for entry in walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real")) {
        if entry.extension().is_some_and(|e| e == "md") {
            continue;
        }
        let text = std::fs::read_to_string(&entry).unwrap();
        yaml::scan(&text).unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

const TRAPS: &str = "\
# a HelmRelease with the usual traps
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: etl
spec:
  values:
    image:
      repository: harbor.example.com/flows/etl
      tag: \"1.19\"   # {\"$imagepolicy\": \"flux-system:etl:tag\"}

    worker:
      image: harbor.example.com/flows/etl:1.19
    config: |
      image: harbor.example.com/flows/etl:1.19
      tag: 1.19
    date: 2024-06-27
";

#[test]
fn traps_block_scalars_quotes_blank_lines() {
    let t = target("harbor.example.com/flows/etl", Some("1.20"), None);
    let out = golden(
        TRAPS,
        &t,
        &[
            ("spec.values.image.tag", "1.19", "1.20"),
            (
                "spec.values.worker.image",
                "harbor.example.com/flows/etl:1.19",
                "harbor.example.com/flows/etl:1.20",
            ),
        ],
    );
    assert!(out.contains("tag: \"1.20\"   # {\"$imagepolicy\""));
    assert!(
        out.contains(
            "    config: |\n      image: harbor.example.com/flows/etl:1.19\n      tag: 1.19\n"
        ),
        "block scalar edited:\n{out}"
    );
}

#[test]
fn plain_tag_that_reads_as_a_number_gets_quoted() {
    let text = "image:\n  repository: h.example.com/a/b\n  tag: v1\n";
    let out = golden(
        text,
        &target("h.example.com/a/b", Some("1.20"), None),
        &[("image.tag", "v1", "1.20")],
    );
    assert_eq!(
        out,
        "image:\n  repository: h.example.com/a/b\n  tag: \"1.20\"\n"
    );
}

#[test]
fn crlf_and_bom_survive() {
    let text = "\u{feff}image:\r\n  repository: h.example.com/a/b\r\n  tag: v1 # keep\r\n";
    let out = golden(
        text,
        &target("h.example.com/a/b", Some("v2"), None),
        &[("image.tag", "v1", "v2")],
    );
    assert_eq!(
        out,
        "\u{feff}image:\r\n  repository: h.example.com/a/b\r\n  tag: v2 # keep\r\n"
    );
}

#[test]
fn alias_merge_and_duplicate_are_refused() {
    let t = target("h.example.com/a/b", Some("v2"), None);
    let alias = "v: &v v1\nimage:\n  repository: h.example.com/a/b\n  tag: *v\n";
    assert!(
        matches!(
            changes("f", alias, &t),
            Err(EditError::Alias {
                line: 4,
                anchor_line: 1,
                ..
            })
        ),
        "{:?}",
        changes("f", alias, &t)
    );
    let merge = "base: &b {tag: v1}\nimage:\n  <<: *b\n  repository: h.example.com/a/b\n";
    let err = changes("f", merge, &t).unwrap_err();
    assert!(
        matches!(
            err,
            EditError::Alias {
                line: 3,
                anchor_line: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("`<<`"), "{err}");
    let dup = "image:\n  repository: h.example.com/a/b\n  tag: v1\n  tag: v1\n";
    assert!(matches!(changes("f", dup, &t), Err(EditError::Yaml { .. })));
}

#[test]
fn anchored_tag_is_edited_in_place() {
    let text = "image:\n  repository: h.example.com/a/b\n  tag: &t v1\ninit:\n  tag: *t\n";
    golden(
        text,
        &target("h.example.com/a/b", Some("v2"), None),
        &[("image.tag", "v1", "v2")],
    );
}

#[test]
fn nothing_to_change_is_empty_and_other_images_are_untouched() {
    let text = "image:\n  repository: h.example.com/a/b\n  tag: v2\nother:\n  image: h.example.com/a/c:v1\n";
    let scan = plan("f", text, &target("h.example.com/a/b", Some("v2"), None)).unwrap();
    assert!(scan.changes.is_empty());
    assert_eq!(
        scan.found.len(),
        1,
        "the reference is found even when it holds the value"
    );
}

#[test]
fn json_prefect_work_pool_template() {
    let text = "{\n  \"job_configuration\": {\"image\": \"h.example.com/flows/etl:1\"},\n  \"variables\": {\"properties\": {\"image\": {\"default\": \"x\"}}}\n}\n";
    let mut t = target("h.example.com/flows/etl", Some("2"), Some(D1));
    t.pin = Pin::Always;
    let out = golden(
        text,
        &t,
        &[(
            "job_configuration.image",
            "h.example.com/flows/etl:1",
            &format!("h.example.com/flows/etl:2@{D1}"),
        )],
    );
    serde_json::from_str::<serde_json::Value>(&out).unwrap();
}

/// Random values in every quote style: the result always re-parses to exactly the new value (the planner
/// verifies that itself; this drives it through values no fixture has).
#[test]
fn random_values_round_trip_in_every_style() {
    let alphabet: Vec<char> = "abcXYZ019.-_:@#'\"\\ {}[],&*!|>%~".chars().collect();
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..3000 {
        let len = rng.usize(1..12);
        let value: String = (0..len)
            .map(|_| alphabet[rng.usize(..alphabet.len())])
            .collect();
        let old = ["v1", "'v1'", "\"v1\""][i % 3];
        let text = format!(
            "# c\nimage:\n  repository: h.example.com/a/b # r\n  tag: {old}  # {{\"x\": 1}}\nz: [1, 2]\n"
        );
        let t = Target::new("h.example.com/a/b", Some(value.clone()), None);
        let changes = changes("f", &text, &t).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        let out = apply(&text, &changes);
        let s = yaml::scan(&out).unwrap();
        let tag = s
            .scalars
            .iter()
            .find(|x| x.path == vec![Seg::Key("image".into()), Seg::Key("tag".into())])
            .unwrap();
        assert_eq!(tag.value, value);
        assert!(out.ends_with("  # {\"x\": 1}\nz: [1, 2]\n"), "{out}");
    }
}

#[test]
fn explicit_path_sets_the_field_it_names() {
    let text = real("prefect-helm/charts/prefect-worker/values.yaml");
    let t = target("harbor.example.com/flows/etl", Some("1.2.3"), Some(D1));
    let changes = plan_path("v.yaml", &text, "worker.image.prefectTag", &t)
        .unwrap()
        .changes;
    assert_eq!(changes.len(), 1);
    // A tag-only field stays tag-only (issue 15, item 6).
    assert_eq!(changes[0].new, "1.2.3");
    assert!(matches!(
        plan_path("v.yaml", &text, "worker.image.nope", &t),
        Err(EditError::NoSuchPath { .. })
    ));
    let dep = "spec:\n  containers:\n    - image: other.example.com/x:1\n";
    assert!(matches!(
        plan_path("d.yaml", dep, "spec.containers[0].image", &t),
        Err(EditError::OtherRepository { .. })
    ));
}

/// Property test: random manifests (nesting, comments, blank lines, flow collections, anchors, block scalars
/// with image-looking lines, every quote style, several documents) with image blocks and image strings at
/// random places. After every edit the file re-parses, every scalar but the targets reads as before, and
/// the targets read as the new value.
#[test]
fn random_manifests_change_only_their_targets() {
    let mut rng = fastrand::Rng::with_seed(11);
    let repo = "harbor.example.com/flows/etl";
    for round in 0..400 {
        let mut text = String::new();
        let mut expected_targets = 0;
        let docs = rng.usize(1..4);
        for d in 0..docs {
            if d > 0 {
                text.push_str(if rng.bool() { "---\n" } else { "--- # next\n" });
            }
            let mut keys = 0;
            for k in 0..rng.usize(1..7) {
                keys += 1;
                let indent = "  ";
                match rng.usize(0..7) {
                    0 => text.push_str(&format!(
                        "k{k}: {}\n",
                        ["plain", "'single'", "\"dq\"", "12", "2024-06-27", "yes"][rng.usize(0..6)]
                    )),
                    1 => text.push_str(&format!(
                        "k{k}: |\n{indent}image: {repo}:0.1\n{indent}tag: 0.1\n"
                    )),
                    2 => text.push_str(&format!("k{k}: [a, \"b\" , {{c: d}}]  # flow\n")),
                    3 => {
                        let tag = ["\"1.0\"", "'1.0'", "v1.0", "1.0.0"][rng.usize(0..4)];
                        text.push_str(&format!("k{k}:\n{indent}# image block\n{indent}image:\n{indent}{indent}repository: {repo}\n\n{indent}{indent}tag: {tag}   # c\n"));
                        expected_targets += 1;
                    }
                    4 => {
                        let q = ["", "\"", "'"][rng.usize(0..3)];
                        text.push_str(&format!("k{k}:\n{indent}containers:\n{indent}- name: c\n{indent}  image: {q}{repo}:1.0{q}\n"));
                        expected_targets += 1;
                    }
                    5 => text.push_str(&format!("k{k}: &a{d}x{k} anchored\nr{k}: *a{d}x{k}\n")),
                    _ => text.push_str(&format!(
                        "\n# comment {k}\nk{k}:\n{indent}nested:\n{indent}{indent}deeper: [1, 2]\n"
                    )),
                }
            }
            let _ = keys;
        }
        if rng.bool() {
            text = text.replace('\n', "\r\n");
        }
        let new_tag = ["1.1", "v2", "2024-07-01", "3.0.0-rc.1", "0123"][rng.usize(0..5)];
        let t = Target::new(repo, Some(new_tag.into()), None);
        let changes =
            changes("r.yaml", &text, &t).unwrap_or_else(|e| panic!("round {round}: {e}\n{text}"));
        assert_eq!(changes.len(), expected_targets, "round {round}:\n{text}");
        let out = apply(&text, &changes);
        let before = yaml::scan(&text).unwrap();
        let after = yaml::scan(&out)
            .unwrap_or_else(|e| panic!("round {round}: output does not parse: {e}\n{out}"));
        assert_eq!(before.scalars.len(), after.scalars.len());
        for (b, a) in before.scalars.iter().zip(&after.scalars) {
            assert_eq!(b.path, a.path);
            match changes.iter().find(|c| c.start == b.start) {
                Some(c) => assert_eq!(a.value, c.new, "round {round}"),
                None => assert_eq!(
                    a.value,
                    b.value,
                    "round {round}: {} changed",
                    path_string(&b.path)
                ),
            }
        }
        // Outside the changed tokens, not a byte differs.
        let mut pos_in = 0;
        let mut pos_out = 0;
        let mut sorted: Vec<&Change> = changes.iter().collect();
        sorted.sort_by_key(|c| c.start);
        for c in sorted {
            let keep = &text[pos_in..c.start];
            assert_eq!(&out[pos_out..pos_out + keep.len()], keep);
            pos_out += keep.len() + c.replacement.len();
            pos_in = c.end;
        }
        assert_eq!(&out[pos_out..], &text[pos_in..]);
    }
}

/// Panic-freedom under arbitrary input (issue 8): random text over YAML's significant characters, and
/// mutations of every real fixture, planned for a discovered and an explicit target. Bounded in count and time.
#[test]
fn arbitrary_manifests_never_panic() {
    let alphabet: Vec<char> = "ab1 :-[]{},&*!|>'\"#?%@`\\\n\t<=~.0_/\u{feff}é\r"
        .chars()
        .collect();
    let t = target(
        "harbor.example.com/flows/etl",
        Some("1.2.3"),
        Some(&format!("sha256:{}", "a".repeat(64))),
    );
    let mut rng = fastrand::Rng::with_seed(29);
    let started = std::time::Instant::now();
    let mut inputs: Vec<String> = (0..8_000)
        .map(|_| {
            let n = rng.usize(0..160);
            let mut s: String = (0..n)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            if rng.bool() {
                s.push_str("\nimage: harbor.example.com/flows/etl:1.0\n");
            }
            s
        })
        .collect();
    for f in walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/real")) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let text = text.replace(
            "ghcr.io/stefanprodan/podinfo",
            "harbor.example.com/flows/etl",
        );
        for _ in 0..40 {
            let mut c: Vec<char> = text.chars().collect();
            for _ in 0..rng.usize(1..5) {
                if c.is_empty() {
                    break;
                }
                let i = rng.usize(..c.len());
                match rng.u8(..3) {
                    0 => c[i] = alphabet[rng.usize(..alphabet.len())],
                    1 => {
                        c.remove(i);
                    }
                    _ => c.truncate(i),
                }
            }
            inputs.push(c.into_iter().collect());
        }
    }
    for text in &inputs {
        if let Ok(changes) = crate::gitops::images::plan("f.yaml", text, &t) {
            let _ = crate::gitops::images::apply(text, &changes.changes);
        }
        let _ = crate::gitops::images::plan_path("f.yaml", text, "spec.values.image.tag", &t);
        if started.elapsed().as_secs() > 30 {
            break;
        }
    }
}

/// Renovate's `kustomize/extract` "newName with tag and digest" fixture's three forms: the tag and digest inside
/// `newName` are kept current as an image string (flowship used to stop at "no `newTag` field").
#[test]
fn kustomize_new_name_carrying_tag_and_digest() {
    let old = "sha256:b0cfe264cb1143c7c660ddfd5c482464997d62d6bc9f97f8fdf3deefce881a8c";
    let new = "sha256:9999999999999999999999999999999999999999999999999999999999999999";
    let text = format!(
        "images:\n  - name: postgres\n    newName: awesome/postgres:11@{old}\n  - name: postgres\n    \
         newName: awesome/postgres:11\n  - name: postgres\n    newName: awesome/postgres@{old}\n"
    );
    let mut t = target("awesome/postgres", Some("12"), Some(new));
    t.pin = Pin::Keep;
    golden(
        &text,
        &t,
        &[
            (
                "images[0].newName",
                &format!("awesome/postgres:11@{old}"),
                &format!("awesome/postgres:12@{new}"),
            ),
            (
                "images[1].newName",
                "awesome/postgres:11",
                "awesome/postgres:12",
            ),
            (
                "images[2].newName",
                &format!("awesome/postgres@{old}"),
                &format!("awesome/postgres:12@{new}"),
            ),
        ],
    );
}
