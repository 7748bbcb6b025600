//! Issue 15: the shapes and semantics of the tools that do the same job (Flux, Argo CD Image Updater,
//! Renovate, kustomize), as golden tests of the planner.

use super::tests::{changes, golden, target};
use super::*;

/// Issue 15, item 8: tag fields named otherwise, and the places other tools keep images.
#[test]
fn shapes_other_tools_use() {
    let t = target("harbor.example.com/flows/etl", Some("1.1.0"), None);
    // Bitnami-style `version`, and `imageTag` beside a tag-less `image`.
    golden(
        "a:\n  image:\n    registry: harbor.example.com\n    repository: flows/etl\n    version: 1.0.0\nb:\n  image: harbor.example.com/flows/etl\n  imageTag: \"1.0.0\"\n",
        &t,
        &[
            ("a.image.version", "1.0.0", "1.1.0"),
            ("b.imageTag", "1.0.0", "1.1.0"),
        ],
    );
    // `*image` keys in any case, Kubernetes image volumes.
    golden(
        "inline_image: harbor.example.com/flows/etl:1.0.0\nSidecarImage: harbor.example.com/flows/etl:1.0.0\nvolumes:\n  - name: v\n    image:\n      reference: harbor.example.com/flows/etl:1.0.0\n",
        &t,
        &[
            (
                "inline_image",
                "harbor.example.com/flows/etl:1.0.0",
                "harbor.example.com/flows/etl:1.1.0",
            ),
            (
                "SidecarImage",
                "harbor.example.com/flows/etl:1.0.0",
                "harbor.example.com/flows/etl:1.1.0",
            ),
            (
                "volumes[0].image.reference",
                "harbor.example.com/flows/etl:1.0.0",
                "harbor.example.com/flows/etl:1.1.0",
            ),
        ],
    );
    // Argo CD's .argocd-source-<app>.yaml: kustomize image strings and Helm parameters.
    golden(
        "kustomize:\n  images:\n    - harbor.example.com/flows/etl:1.0.0\n    - app=harbor.example.com/flows/etl:1.0.0\nhelm:\n  parameters:\n    - name: image.name\n      value: harbor.example.com/flows/etl\n      forcestring: true\n    - name: image.tag\n      value: 1.0.0\n      forcestring: true\n",
        &t,
        &[
            (
                "kustomize.images[0]",
                "harbor.example.com/flows/etl:1.0.0",
                "harbor.example.com/flows/etl:1.1.0",
            ),
            (
                "kustomize.images[1]",
                "app=harbor.example.com/flows/etl:1.0.0",
                "app=harbor.example.com/flows/etl:1.1.0",
            ),
            ("helm.parameters[1].value", "1.0.0", "1.1.0"),
        ],
    );
    // Flux OCIRepository.
    golden(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nspec:\n  url: oci://harbor.example.com/flows/etl\n  ref:\n    tag: 1.0.0\n",
        &t,
        &[("spec.ref.tag", "1.0.0", "1.1.0")],
    );
}

/// Issue 15, items 3 and 11: merged repositories are references; edits through aliases name the alias.
#[test]
fn merge_keys_and_aliases_resolve() {
    let t = target("harbor.example.com/flows/etl", Some("2"), None);
    let text = "base: &b\n  repository: harbor.example.com/flows/etl\napi:\n  image:\n    <<: [*b]\n    tag: \"1\"\n";
    golden(text, &t, &[("api.image.tag", "1", "2")]);
    let text = "attrs: &attrs\n  tag: \"1\"\nimage:\n  repository: harbor.example.com/flows/etl\n  attributes: *attrs\n";
    let err = plan_path("f.yaml", text, "image.attributes.tag", &t).unwrap_err();
    assert_eq!(
        err.to_string(),
        "f.yaml:5: `image.attributes.tag` comes from the alias `*attrs` (anchor `&attrs` on line 1); editing it there would change every place that uses the anchor"
    );
    // An anchor that is not itself a reference cannot move through its alias; one that is, is edited, and
    // its aliases follow.
    let scan = plan(
        "f.yaml",
        "a: &img harbor.example.com/flows/etl:1\nimage: *img\n",
        &t,
    );
    assert!(
        matches!(scan, Err(EditError::Alias { line: 2, .. })),
        "{scan:?}"
    );
    let scan = plan(
        "f.yaml",
        "image: &img harbor.example.com/flows/etl:1\ninitImage: *img\n",
        &t,
    )
    .unwrap();
    assert_eq!(scan.changes.len(), 1);
    assert_eq!(scan.found.len(), 2);
}

/// Issue 15, item 9 and 10: marker-only files, renames, compare-and-set.
#[test]
fn markers_only_renames_and_expectations() {
    let text = "a:\n  image: harbor.example.com/flows/etl:1 # {\"$imagepolicy\": \"ns:etl\"}\nb:\n  image: harbor.example.com/flows/etl:1\n";
    let mut t = target("harbor.example.com/flows/etl", Some("2"), None);
    t.policies = vec!["ns:etl".into()];
    t.markers = Markers::Only;
    golden(
        text,
        &t,
        &[(
            "a.image",
            "harbor.example.com/flows/etl:1",
            "harbor.example.com/flows/etl:2",
        )],
    );
    let mut t = target("harbor.example.com/flows/etl", Some("2"), None);
    t.new_name = Some("harbor.example.com/flows-prod/etl".into());
    golden(
        "images:\n  - name: etl\n    newName: harbor.example.com/flows/etl\n    newTag: \"1\"\nimage: harbor.example.com/flows/etl:1\n",
        &t,
        &[
            (
                "images[0].newName",
                "harbor.example.com/flows/etl",
                "harbor.example.com/flows-prod/etl",
            ),
            ("images[0].newTag", "1", "2"),
            (
                "image",
                "harbor.example.com/flows/etl:1",
                "harbor.example.com/flows-prod/etl:2",
            ),
        ],
    );
    let mut t = target("harbor.example.com/flows/etl", Some("2"), None);
    t.expect_tag = Some("1".into());
    let text = "image: harbor.example.com/flows/etl:0\n";
    let err = changes("f.yaml", text, &t).unwrap_err();
    assert!(err.is_policy(), "{err}");
    assert!(
        changes("f.yaml", "image: harbor.example.com/flows/etl:2\n", &t)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        changes("f.yaml", "image: harbor.example.com/flows/etl:1\n", &t)
            .unwrap()
            .len(),
        1
    );
}

/// Flux's own setter test: `setters/original/kustomization.yml` → `setters/expected/kustomization.yml`, byte
/// for byte, as two bumps (one per image policy the file marks).
#[test]
fn flux_setters_testdata_byte_for_byte() {
    let dir = "image-automation-controller/internal/update/testdata/setters";
    let original = super::tests::real(&format!("{dir}/original/kustomization.yml"));
    let expected = super::tests::real(&format!("{dir}/expected/kustomization.yml"));
    let mut first = target("index.repo.fake/updated", Some("v1.0.1"), None);
    first.policies = vec!["automation-ns:policy".into()];
    let out = apply(&original, &changes("k.yml", &original, &first).unwrap());
    let digest = "sha256:6745aaad46d795c9836632e1fb62f24b7e7f4c843144da8e47a5465c411a14be";
    let mut second = target("image", Some("v1.0.0"), Some(digest));
    second.policies = vec!["automation-ns:policy-with-digest".into()];
    let out = apply(&out, &changes("k.yml", &out, &second).unwrap());
    assert_eq!(out, expected);
}

/// Renovate's kustomize `digest.yaml` fixture: digest-only items keep their form and take the new digest;
/// invalid digests are reported and left alone; a tag alone cannot move a digest-pinned item.
#[test]
fn renovate_kustomize_digest_fixture() {
    let text =
        super::tests::real("renovate/lib/modules/manager/kustomize/__fixtures__/digest.yaml");
    let d = format!("sha256:{}", "c".repeat(64));
    let t = target("postgres", None, Some(&d));
    let scan = plan("k.yaml", &text, &t).unwrap();
    let paths: Vec<&str> = scan.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        ["images[0].digest", "images[1].digest", "images[2].digest"]
    );
    let skipped: Vec<&str> = scan.skipped.iter().map(|f| f.value.as_str()).collect();
    assert_eq!(
        skipped,
        [
            "02641143766",
            "b0cfe264cb1143c7c660ddfd5c482464997d62d6bc9f97f8fdf3deefce881a8c"
        ]
    );
    let err = changes("k.yaml", &text, &target("postgres", Some("12"), None)).unwrap_err();
    assert!(
        matches!(err, EditError::DigestPinned { line: 6, .. }),
        "{err:?}"
    );
}
