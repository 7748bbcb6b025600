//! `flowship bump` against the shapes and semantics of the tools that do the same job (issue 15): no silent
//! wrong edit, no silent no-op, and the manifest shapes Flux, Argo CD Image Updater, Renovate and kustomize
//! users have. Each test runs the real binary against a seeded repository on the git daemon.

use crate::bump::{file_at_head, git};
use crate::harness::{Outcome, flowship, seeded, svc};
use std::path::Path;

const ETL: &str = "harbor.example.com/flows/etl";

/// `flowship bump --repo <git daemon> --image ETL <args>` on a fresh repository seeded with `files`.
fn bump_seeded(files: &[(&str, &str)], args: &[&str]) -> (Outcome, std::path::PathBuf) {
    let owned: Vec<(&str, String)> = files.iter().map(|(f, c)| (*f, c.to_string())).collect();
    let (name, bare) = seeded(&owned);
    let o = flowship()
        .args([
            "bump",
            "--repo",
            &format!("{}/{name}", svc("GIT_DAEMON")),
            "--image",
            ETL,
        ])
        .args(args)
        .run();
    (o, bare)
}

fn assert_untouched(bare: &Path) {
    assert_eq!(
        git(bare, &["rev-list", "--count", "main"]),
        "1",
        "nothing may be pushed"
    );
}

/// Item 1: no reference to the image at all is bad input (exit 2) naming the image, the paths searched and
/// the closest references seen; "already set" only where a reference holds the value.
#[test]
fn issue15_no_reference_is_exit_2_not_already_set() {
    let files = [(
        "apps/other.yaml",
        "spec:\n  containers:\n    - image: harbor.example.com/flows/etl-worker:1.0.0\n    - image: docker.io/library/redis:7\n",
    )];
    let (o, bare) = bump_seeded(&files, &["--tag", "2.0.0"]);
    o.code(2)
        .stderr_has("no reference to harbor.example.com/flows/etl ")
        .stderr_has("**/*.yaml")
        .stderr_has("apps/other.yaml:3 spec.containers[0].image = harbor.example.com/flows/etl-worker:1.0.0")
        .stderr_has("hint: check --image");
    assert!(!o.stderr.contains("already set"), "{o}");
    assert_untouched(&bare);
    // A reference that holds the value: that is "already set", exit 0.
    let set = [("a.yaml", "image: harbor.example.com/flows/etl:2.0.0\n")];
    let (o, bare) = bump_seeded(&set, &["--tag", "2.0.0"]);
    o.success()
        .stderr_has("nothing to change: 1 reference(s) already set");
    assert_untouched(&bare);
}

/// Item 2: a kustomize `newTag: tag@digest` keeps its pin: a tag alone is refused, tag and digest write the
/// same form back.
#[test]
fn issue15_kustomize_new_tag_with_a_digest_keeps_its_form() {
    let d1 = format!("sha256:{}", "1".repeat(64));
    let d2 = format!("sha256:{}", "2".repeat(64));
    let k =
        format!("images:\n  - name: {ETL}\n    newTag: \"11@{d1}\" # renovate keeps this form\n");
    let (o, bare) = bump_seeded(&[("kustomization.yaml", &k)], &["--tag", "12"]);
    o.code(2)
        .stderr_has("kustomization.yaml:3")
        .stderr_has("pinned to digest")
        .stderr_has("hint: pass --digest");
    assert_untouched(&bare);
    let (o, bare) = bump_seeded(
        &[("kustomization.yaml", &k)],
        &["--tag", "12", "--digest", &d2],
    );
    o.success();
    assert_eq!(
        file_at_head(&bare, "kustomization.yaml"),
        k.replace(&format!("11@{d1}"), &format!("12@{d2}"))
            .trim_end()
    );
}

/// Item 3: a repository that arrives through a merge key is a reference like a literal one; an edit that
/// would have to go through an alias is refused naming the alias, its anchor's line and the fix.
#[test]
fn issue15_merge_keys_are_resolved_and_alias_edits_refused() {
    let values = format!(
        "x-image: &app-image\n  repository: {ETL}\n  pullPolicy: IfNotPresent\napi:\n  image:\n    <<: *app-image\n    tag: \"1.0.0\"\nworker:\n  image:\n    repository: {ETL}\n    tag: \"1.0.0\"\n"
    );
    let (o, bare) = bump_seeded(&[("values.yaml", &values)], &["--tag", "1.1.0"]);
    o.success();
    assert_eq!(
        file_at_head(&bare, "values.yaml"),
        values.replace("\"1.0.0\"", "\"1.1.0\"").trim_end(),
        "both blocks are bumped"
    );
    let aliased = format!(
        "versions:\n  etl: &etl-version \"1.0.0\"\nimage:\n  repository: {ETL}\n  tag: *etl-version\n"
    );
    let (o, bare) = bump_seeded(&[("values.yaml", &aliased)], &["--tag", "1.1.0"]);
    o.code(2)
        .stderr_has("values.yaml:5: `image.tag` comes from the alias `*etl-version`")
        .stderr_has("anchor `&etl-version` on line 2")
        .stderr_has("hint: give `image` its own `tag:`");
    assert_untouched(&bare);
}

/// Item 4: Flux's `:name` setter writes the policy's image name; a whole-image marker writes the policy's
/// image (name and tag), as Flux does, not the file's old repository.
#[test]
fn issue15_flux_name_setter_and_whole_image_marker() {
    let k = "images:\n  - name: app\n    newName: registry.old.example.com/team/app # {\"$imagepolicy\": \"flux-system:app:name\"}\n    newTag: 1.0.0 # {\"$imagepolicy\": \"flux-system:app:tag\"}\n";
    let d = "spec:\n  containers:\n    - image: registry.old.example.com/team/app:1.0.0 # {\"$imagepolicy\": \"flux-system:app\"}\n";
    let (o, bare) = bump_seeded(
        &[("kustomization.yaml", k), ("deploy.yaml", d)],
        &["--tag", "2.0.0", "--policy", "flux-system:app"],
    );
    o.success();
    assert_eq!(
        file_at_head(&bare, "kustomization.yaml"),
        k.replace("registry.old.example.com/team/app", ETL)
            .replace("1.0.0", "2.0.0")
            .trim_end()
    );
    assert_eq!(
        file_at_head(&bare, "deploy.yaml"),
        d.replace(
            "registry.old.example.com/team/app:1.0.0",
            &format!("{ETL}:2.0.0")
        )
        .trim_end()
    );
}

/// Item 5: references that name the image but cannot be read (a template placeholder, a malformed digest) are
/// reported, never skipped silently; alone, they make the bump exit 2.
#[test]
fn issue15_unreadable_references_are_reported() {
    let files = [
        (
            "ci.yaml",
            "image: harbor.example.com/flows/etl:{GENERATED_TAG}\n",
        ),
        (
            "pinned.yaml",
            "image: harbor.example.com/flows/etl:1.0.0@sha256:abc\n",
        ),
        ("ok.yaml", "image: harbor.example.com/flows/etl:1.0.0\n"),
    ];
    let (o, bare) = bump_seeded(&files, &["--tag", "1.1.0"]);
    o.success()
        .stderr_has("warning: ci.yaml:1 `image` = `harbor.example.com/flows/etl:{GENERATED_TAG}` left as it is")
        .stderr_has("warning: pinned.yaml:1 `image`")
        .stderr_has("sha256:abc");
    assert_eq!(
        file_at_head(&bare, "ok.yaml"),
        "image: harbor.example.com/flows/etl:1.1.0"
    );
    let (o, bare) = bump_seeded(&files[..1], &["--tag", "1.1.0"]);
    o.code(2)
        .stderr_has("no reference to harbor.example.com/flows/etl")
        .stderr_has("ci.yaml:1 image = harbor.example.com/flows/etl:{GENERATED_TAG}");
    assert_untouched(&bare);
}

/// Item 6: pin what was pinned, keep tag-only what was tag-only; `--pin always` pins every reference.
#[test]
fn issue15_per_reference_pinning() {
    let d1 = format!("sha256:{}", "1".repeat(64));
    let d2 = format!("sha256:{}", "2".repeat(64));
    let pinned = format!("image: {ETL}:1.0.0@{d1}\n");
    let plain = format!("image: {ETL}:1.0.0\n");
    let files = [
        ("pinned.yaml", pinned.as_str()),
        ("plain.yaml", plain.as_str()),
    ];
    let (o, bare) = bump_seeded(&files, &["--tag", "1.1.0", "--digest", &d2]);
    o.success();
    assert_eq!(
        file_at_head(&bare, "pinned.yaml"),
        format!("image: {ETL}:1.1.0@{d2}")
    );
    assert_eq!(
        file_at_head(&bare, "plain.yaml"),
        format!("image: {ETL}:1.1.0")
    );
    let (o, bare) = bump_seeded(
        &files,
        &["--tag", "1.1.0", "--digest", &d2, "--pin", "always"],
    );
    o.success();
    assert_eq!(
        file_at_head(&bare, "plain.yaml"),
        format!("image: {ETL}:1.1.0@{d2}")
    );
}

/// Item 7: a chart's templates (not YAML) under a broad glob are skipped (said under -v), unless a glob names
/// the file.
#[test]
fn issue15_chart_templates_are_skipped_unless_named() {
    let template = "{{- if .Values.enabled }}\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"etl.fullname\" . }}\nspec:\n  template:\n    spec:\n      containers:\n        - image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n{{- end }}\n";
    let values = format!("image:\n  repository: {ETL}\n  tag: 1.0.0\n");
    let files = [
        ("charts/x/templates/deployment.yaml", template),
        ("charts/x/values.yaml", values.as_str()),
    ];
    let (o, bare) = bump_seeded(&files, &["--tag", "1.1.0", "-v"]);
    o.success()
        .stderr_has("charts/x/templates/deployment.yaml: skipped, not YAML");
    assert!(file_at_head(&bare, "charts/x/values.yaml").contains("tag: 1.1.0"));
    let (o, bare) = bump_seeded(
        &files,
        &[
            "--tag",
            "1.1.0",
            "--paths",
            "charts/x/templates/deployment.yaml",
        ],
    );
    o.code(2)
        .stderr_has("charts/x/templates/deployment.yaml: line ")
        .stderr_has("not valid YAML");
    assert_untouched(&bare);
}

/// Item 8: tag fields and image places of other tools, bumped in one commit, every other byte kept.
#[test]
fn issue15_shapes_other_tools_use() {
    let files = [
        (
            "bitnami.yaml",
            "image:\n  registry: harbor.example.com\n  repository: flows/etl\n  version: 1.0.0 # bitnami\n".to_string(),
        ),
        (
            "legacy.yaml",
            format!("image: {ETL}\nimageTag: \"1.0.0\"\n"),
        ),
        (
            "inline.yaml",
            format!("config:\n  inline_image: {ETL}:1.0.0\n"),
        ),
        (
            "volume.yaml",
            format!(
                "spec:\n  volumes:\n    - name: models\n      image:\n        reference: {ETL}:1.0.0\n        pullPolicy: IfNotPresent\n"
            ),
        ),
        (
            ".argocd-source-etl.yaml",
            format!("kustomize:\n  images:\n    - {ETL}:1.0.0\n"),
        ),
        (
            "oci.yaml",
            format!(
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: etl\nspec:\n  url: oci://{ETL}\n  ref:\n    tag: 1.0.0\n"
            ),
        ),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(f, c)| (*f, c.as_str())).collect();
    let (o, bare) = bump_seeded(&refs, &["--tag", "1.1.0"]);
    o.success();
    for (f, c) in &files {
        assert_eq!(
            file_at_head(&bare, f),
            c.replace("1.0.0", "1.1.0").trim_end(),
            "{f}"
        );
    }
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]), "2");
}

/// Item 9: `--markers only`: in a file with `$imagepolicy` markers, only the marked fields change.
#[test]
fn issue15_markers_only_edits_marked_fields() {
    let text = format!(
        "a:\n  image: {ETL}:1.0.0 # {{\"$imagepolicy\": \"flux-system:etl\"}}\nb:\n  image: {ETL}:1.0.0\n"
    );
    let (o, bare) = bump_seeded(
        &[("f.yaml", &text)],
        &[
            "--tag",
            "1.1.0",
            "--policy",
            "flux-system:etl",
            "--markers",
            "only",
        ],
    );
    o.success();
    assert_eq!(
        file_at_head(&bare, "f.yaml"),
        text.replacen("1.0.0", "1.1.0", 1).trim_end()
    );
}

/// Item 10: renames, and compare-and-set on the current value (exit 3 when the file holds something else).
#[test]
fn issue15_renames_and_compare_and_set() {
    let k = format!("images:\n  - name: etl\n    newName: {ETL}\n    newTag: 1.0.0\n");
    let (o, bare) = bump_seeded(
        &[("kustomization.yaml", &k)],
        &[
            "--new-name",
            "harbor.example.com/flows-prod/etl",
            "--tag",
            "1.1.0",
        ],
    );
    o.success();
    assert_eq!(
        file_at_head(&bare, "kustomization.yaml"),
        k.replace("flows/etl", "flows-prod/etl")
            .replace("1.0.0", "1.1.0")
            .trim_end()
    );
    let (o, bare) = bump_seeded(
        &[("kustomization.yaml", &k)],
        &["--tag", "1.1.0", "--expect-tag", "0.9.0"],
    );
    o.code(3).stderr_has(
        "kustomization.yaml:4: `images[0].newTag` holds tag `1.0.0`, not the expected `0.9.0`",
    );
    assert_untouched(&bare);
    let (o, bare) = bump_seeded(
        &[("kustomization.yaml", &k)],
        &["--tag", "1.1.0", "--expect-tag", "1.0.0"],
    );
    o.success();
    assert!(file_at_head(&bare, "kustomization.yaml").contains("newTag: 1.1.0"));
}

/// Item 11: an explicit target through an alias names the line and the alias, not "no scalar value".
#[test]
fn issue15_explicit_target_through_an_alias_names_it() {
    let values = format!(
        "attrs: &attrs\n  tag: \"1.0.0\"\nimage:\n  repository: {ETL}\n  attributes: *attrs\n"
    );
    let (o, bare) = bump_seeded(
        &[("values.yaml", &values)],
        &[
            "--tag",
            "1.1.0",
            "--target",
            "values.yaml:image.attributes.tag",
        ],
    );
    o.code(2)
        .stderr_has("values.yaml:5: `image.attributes.tag` comes from the alias `*attrs` (anchor `&attrs` on line 1)")
        .stderr_has("hint: give `image.attributes` its own `tag:`");
    assert_untouched(&bare);
}
