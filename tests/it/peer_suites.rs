//! The peers' own test data, run through `flowship bump` (the real binary, a real git repository) and compared
//! with the peer's expected output byte for byte.
//!
//! Flux's image-automation-controller, `internal/update/update_test.go` `TestUpdateWithSetters`: three image
//! policies applied to `testdata/setters/original/`; the files Flux changes must equal
//! `testdata/setters/expected/`, every other file must be left as it was. One `bump --markers only --policy`
//! per policy, with the policy's latest image, is what a user of flowship would run for the same result.

use crate::harness::flowship;
use crate::release::git;
use std::path::Path;

const SETTERS: &str = "fixtures/real/image-automation-controller/internal/update/testdata/setters";

fn files(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".git")
        .collect();
    out.sort();
    out
}

#[test]
fn flux_image_automation_setters_suite() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(SETTERS);
    let work = tempfile::tempdir().unwrap();
    let seed = work.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    for f in files(&root.join("original")) {
        std::fs::copy(root.join("original").join(&f), seed.join(&f)).unwrap();
    }
    git(&seed, &["init", "-q", "-b", "main"]);
    git(&seed, &["add", "-A"]);
    git(
        &seed,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit",
            "-qm",
            "original",
        ],
    );
    let bare = work.path().join("gitops.git");
    git(
        Path::new("."),
        &[
            "clone",
            "-q",
            "--bare",
            seed.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    // The test's policies: (namespace:name, latest image).
    let digest = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be";
    let policies: [(&str, &str, &str, Option<&str>); 3] = [
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
    ];
    for (policy, image, tag, digest) in policies {
        let mut args = vec![
            "bump",
            "--repo",
            bare.to_str().unwrap(),
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
        flowship().args(args).run().success();
    }
    let out = work.path().join("out");
    git(
        Path::new("."),
        &["clone", "-q", bare.to_str().unwrap(), out.to_str().unwrap()],
    );
    let expected = files(&root.join("expected"));
    assert!(expected.len() >= 3, "{expected:?}");
    for f in files(&root.join("original")) {
        let want = if expected.contains(&f) {
            root.join("expected").join(&f)
        } else {
            root.join("original").join(&f)
        };
        assert_eq!(
            std::fs::read_to_string(out.join(&f)).unwrap(),
            std::fs::read_to_string(&want).unwrap(),
            "{f}: flowship differs from Flux ({})",
            want.display()
        );
    }
}
