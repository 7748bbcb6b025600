//! The peers' own test data, run through `flowship bump` (the real binary, a real git repository) and compared
//! with the peer's expected output byte for byte: files the peer changes must equal its expected files, every
//! other file must be left as it was. Each policy the peer's test applies is one
//! `bump --markers only --policy NS:NAME` with the policy's latest image: what a flowship user runs for the
//! same result.

use crate::harness::flowship;
use crate::release::git;
use std::path::{Path, PathBuf};

const FLUX: &str = "fixtures/real/image-automation-controller/internal";

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Flux's `testutil.ReplaceMarker`: `SETTER_SITE` becomes the policy's setter comment.
fn with_marker(text: String, marker: Option<&str>) -> String {
    match marker {
        Some(policy) => text.replace("SETTER_SITE", &format!(r#"{{"$imagepolicy": "{policy}"}}"#)),
        None => text,
    }
}

struct Case<'a> {
    original: &'a str,
    expected: &'a str,
    /// The target policy written where the data says `SETTER_SITE`.
    marker: Option<&'a str>,
    /// `(namespace:name, image, tag, digest)` of each policy, applied in order.
    policies: &'a [(&'a str, &'a str, &'a str, Option<&'a str>)],
    /// The automation's update path, as `--paths`.
    paths: Option<&'a str>,
}

fn run(case: Case<'_>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(FLUX);
    let (original, expected) = (root.join(case.original), root.join(case.expected));
    let work = tempfile::tempdir().unwrap();
    let seed = work.path().join("seed");
    for f in files(&original) {
        let text = std::fs::read_to_string(original.join(&f)).unwrap();
        std::fs::create_dir_all(seed.join(&f).parent().unwrap()).unwrap();
        std::fs::write(seed.join(&f), with_marker(text, case.marker)).unwrap();
    }
    git(&seed, &["init", "-q", "-b", "main"]);
    git(&seed, &["add", "-A"]);
    let who = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"];
    git(&seed, &[&who[..], &["commit", "-qm", "original"]].concat());
    let bare = work.path().join("gitops.git");
    let (s, b) = (seed.to_str().unwrap(), bare.to_str().unwrap());
    git(Path::new("."), &["clone", "-q", "--bare", s, b]);
    for (policy, image, tag, digest) in case.policies {
        let mut args = vec![
            "bump",
            "--repo",
            b,
            "--image",
            image,
            "--tag",
            tag,
            "--policy",
            policy,
            "--markers",
            "only",
        ];
        if let Some(d) = digest {
            args.extend(["--digest", d]);
        }
        if let Some(p) = case.paths {
            args.extend(["--paths", p]);
        }
        // A policy no marker names: Flux changes nothing and says nothing; flowship refuses a bump that finds
        // no reference (exit 2, nothing written), a documented difference.
        let marked = files(&seed).iter().any(|f| {
            std::fs::read_to_string(seed.join(f))
                .unwrap()
                .contains(&format!("\"{policy}"))
        });
        let o = flowship().args(args).run();
        if marked {
            o.success();
        } else {
            o.code(2).stderr_has("no reference");
        }
    }
    let out = work.path().join("out");
    git(Path::new("."), &["clone", "-q", b, out.to_str().unwrap()]);
    let changed = files(&expected);
    assert!(!changed.is_empty());
    assert_eq!(files(&out), files(&original), "the files of the repository");
    for f in files(&original) {
        let want = if changed.contains(&f) {
            expected.join(&f)
        } else {
            original.join(&f)
        };
        assert_eq!(
            std::fs::read_to_string(out.join(&f)).unwrap(),
            with_marker(std::fs::read_to_string(&want).unwrap(), case.marker),
            "{}: flowship differs from Flux ({})",
            f.display(),
            want.display()
        );
    }
}

/// `internal/update/update_test.go` `TestUpdateWithSetters`: three policies over `testdata/setters`.
#[test]
fn flux_update_with_setters() {
    let digest = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be";
    run(Case {
        original: "update/testdata/setters/original",
        expected: "update/testdata/setters/expected",
        marker: None,
        policies: &[
            (
                "automation-ns:policy",
                "index.repo.fake/updated",
                "v1.0.1",
                None,
            ),
            ("automation-ns:unchanged", "image", "v1.0.0", None),
            (
                "automation-ns:policy-with-digest",
                "image",
                "v1.0.0",
                Some(digest),
            ),
        ],
        paths: None,
    });
}

/// `internal/policy/applier_test.go` `TestApplyPolicies`: one policy, several policies, an update path.
#[test]
fn flux_apply_policies() {
    run(Case {
        original: "policy/testdata/appconfig",
        expected: "policy/testdata/appconfig-setters-expected",
        marker: Some("test-ns:policy1"),
        policies: &[("test-ns:policy1", "helloworld", "1.0.1", None)],
        paths: None,
    });
    run(Case {
        original: "policy/testdata/appconfig",
        expected: "policy/testdata/appconfig-setters-expected",
        marker: Some("test-ns:policy2"),
        policies: &[
            ("test-ns:policy1", "foo", "1.1.1", None),
            ("test-ns:policy2", "helloworld", "1.0.1", None),
            ("test-ns:policy3", "bar", "2.2.2", None),
        ],
        paths: None,
    });
    run(Case {
        original: "policy/testdata/pathconfig",
        expected: "policy/testdata/pathconfig-expected",
        marker: Some("test-ns:policy1"),
        policies: &[("test-ns:policy1", "helloworld", "1.0.1", None)],
        paths: Some("yes/**"),
    });
}
