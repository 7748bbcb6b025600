//! The pull proof before pinning (issue 20): the cluster's own pull account (`verify.pull_username` +
//! `FLOWSHIP_PULL_PASSWORD`, a pull-only robot on the Harbor stand-in) must read the released digest, and
//! Harbor's project policies that would refuse the pull (cosign content trust, "prevent vulnerable images",
//! which also refuses an image never scanned) are checked: refused with exit 3 before any GitOps write.

use crate::harness::svc;
use crate::sign::keypair;

/// A release world whose staging images live in a Harbor project with `metadata`.
fn harbor_world(metadata: &str) -> crate::release::World {
    let w = crate::release::world_with(&svc("HARBOR"), &svc("PYTHON_BASE"), "process", false);
    let project = w.staging_repo.split('/').nth(1).unwrap().to_string();
    crate::harbor::harbor(
        "POST",
        "/api/v2.0/projects",
        Some(&format!(
            r#"{{"project_name":"{project}","metadata":{metadata}}}"#
        )),
    );
    w
}

fn release(w: &crate::release::World, pull_pass: &str) -> crate::harness::Flowship {
    crate::harbor::robot(w.flowship())
        .env("FLOWSHIP_PULL_USERNAME", svc("PULL_USER"))
        .env("FLOWSHIP_PULL_PASSWORD", pull_pass)
        .secret(pull_pass)
        .args(["release", "--env", "staging"])
}

#[test]
fn a_digest_the_cluster_cannot_pull_is_never_pinned() {
    let w = harbor_world(
        r#"{"enable_content_trust_cosign":"true","prevent_vul":"true","severity":"high"}"#,
    );
    let commits = w.commits();
    // A wrong password for the cluster's account: the proof cannot read the manifest.
    release(&w, "not-the-password")
        .run()
        .code(3)
        .stderr_has("the cluster's pull account `robot$cluster+pull` cannot read it")
        .stderr_has("nothing was pinned");
    assert_eq!(w.commits(), commits);
    // The right account, but the project requires cosign signatures and the image has none.
    release(&w, &svc("PULL_PASS"))
        .run()
        .code(3)
        .stderr_has("requires cosign signatures");
    assert_eq!(w.commits(), commits);
    // Signed, but never scanned: Harbor's vulnerability policy would refuse the pull.
    let (key, _) = keypair(&w.project, "release");
    let signed =
        || release(&w, &svc("PULL_PASS")).env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap());
    signed()
        .run()
        .code(3)
        .stderr_has("has not been scanned")
        .stderr_has("harbor.scan_gate");
    assert_eq!(w.commits(), commits);
    // Signed and scanned (clean): the cluster's account reads every manifest and blob, then it is pinned.
    signed()
        .env("FLOWSHIP_SCAN_GATE", "critical")
        .run()
        .success()
        .stderr_has("pull proof: robot$cluster+pull reads")
        .stderr_has("cosign signatures required: signed")
        .stderr_has("vulnerability policy (high): passed");
    assert!(w.commits() > commits);
}

/// The pull account's password is a secret like any other: never shown by `settings`; a user name without
/// a password is a configuration error naming the fix.
#[test]
fn the_pull_account_is_configured_whole_and_its_password_never_shows() {
    let o = crate::harness::flowship()
        .env("FLOWSHIP_PULL_USERNAME", "robot$cluster+pull")
        .env("FLOWSHIP_PULL_PASSWORD", crate::harness::SENTINEL)
        .args(["settings", "--output", "json"])
        .run();
    let doc = o.json();
    assert_eq!(
        doc["settings"]["verify.pull_username"]["value"],
        "robot$cluster+pull"
    );
    assert_eq!(doc["settings"]["verify.pull_password"]["secret"], true);
    crate::harness::flowship()
        .env("FLOWSHIP_PULL_USERNAME", "robot$cluster+pull")
        .args(["settings"])
        .run()
        .code(2)
        .stderr_has("FLOWSHIP_PULL_PASSWORD");
}

/// The htpasswd registry (the CNCF distribution registry with basic auth): the cluster's account with a wrong
/// password cannot read the digest, so nothing is pinned; with its real password the proof reads every
/// manifest and blob and the release goes through.
#[test]
fn the_pull_proof_on_the_htpasswd_registry() {
    let reg = svc("REGISTRY_AUTH");
    let w = crate::release::world_with(&reg, &svc("PYTHON_BASE"), "process", false);
    let run = |pull_pass: &str| {
        w.flowship()
            .env("FLOWSHIP_PLAIN_HTTP", &reg)
            .env("FLOWSHIP_REGISTRY_USERNAME", svc("REGISTRY_USER"))
            .env("FLOWSHIP_REGISTRY_PASSWORD", svc("REGISTRY_PASS"))
            .env("FLOWSHIP_PULL_USERNAME", svc("ROBOT_USER"))
            .env("FLOWSHIP_PULL_PASSWORD", pull_pass)
            .secret(pull_pass)
            .args(["release", "--env", "staging"])
            .run()
    };
    let commits = w.commits();
    run("wrong-password")
        .code(3)
        .stderr_has("cannot read it")
        .stderr_has("nothing was pinned");
    assert_eq!(w.commits(), commits);
    run(&svc("ROBOT_PASS"))
        .success()
        .stderr_has(&format!("pull proof: {} reads", svc("ROBOT_USER")));
    assert!(w.commits() > commits);
}
