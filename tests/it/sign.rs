//! Signed flow images (issue 20): cosign's signature format checked by tools that are not flowship (openssl
//! for the cryptography, skopeo's `sigstoreSigned` policy with `use-sigstore-attachments` for where and how
//! it is stored), provenance and an SBOM as referrers, `flowship verify`, and `environments.E.verify.key`
//! refusing what its key did not sign before any GitOps write.

use crate::build::{base_image, flow_project};
use crate::harness::{flowship, svc};
use crate::images::{plain, run, token, umoci_layout};
use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An ECDSA P-256 key pair as `cosign generate-key-pair` makes them (unencrypted PKCS#8 here): the private
/// key's path and the public key's.
pub(crate) fn keypair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let pem = run(Command::new("sh")
        .arg("-c")
        .arg("openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt"));
    std::fs::write(&private, pem).unwrap();
    run(Command::new("openssl")
        .args(["ec", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    (private, public)
}

/// The key's base64 lines: none may appear anywhere.
pub(crate) fn key_lines(private: &Path) -> Vec<String> {
    std::fs::read_to_string(private)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::to_string)
        .collect()
}

/// What the registry serves at `path` (plain HTTP, no auth).
fn get(path: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sf", "-H"])
        .arg("Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
        .arg(format!("http://{}/v2/{path}", svc("REGISTRY_PLAIN")))
        .output()
        .unwrap();
    assert!(out.status.success(), "GET {path}");
    out.stdout
}

fn repo_path(repo: &str) -> &str {
    repo.split_once('/').unwrap().1
}

/// The `.sig` manifest of `repo@digest`, as the registry serves it.
pub(crate) fn sig_manifest(repo: &str, digest: &str) -> Value {
    let tag = format!("{}.sig", digest.replacen(':', "-", 1));
    serde_json::from_slice(&get(&format!("{}/manifests/{tag}", repo_path(repo)))).unwrap()
}

/// openssl's verdict on signature layer `i`: the payload blob and the DER signature in its annotation,
/// under `public`. Returns the payload too.
fn openssl_verifies(repo: &str, digest: &str, i: usize, public: &Path) -> (bool, Value) {
    let layer = &sig_manifest(repo, digest)["layers"][i];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = get(&format!(
        "{}/blobs/{}",
        repo_path(repo),
        layer["digest"].as_str().unwrap()
    ));
    let sig = base64::engine::general_purpose::STANDARD
        .decode(
            layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let ok = openssl_verifies_bytes(&payload, &sig, public);
    (ok, serde_json::from_slice(&payload).unwrap())
}

/// openssl's verdict on `sig` (DER ECDSA) over `data` under `public`.
fn openssl_verifies_bytes(data: &[u8], sig: &[u8], public: &Path) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data"), data).unwrap();
    std::fs::write(dir.path().join("sig"), sig).unwrap();
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(dir.path().join("sig"))
        .arg(dir.path().join("data"))
        .output()
        .unwrap()
        .status
        .success()
}

/// What skopeo's signature policy says about pulling `reference`: a `sigstoreSigned` requirement with
/// `public` for the plain registry, signatures found through `use-sigstore-attachments`.
fn policy_verdict(reference: &str, public: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let host = svc("REGISTRY_PLAIN");
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {host.clone(): [{
                "type": "sigstoreSigned",
                "keyPath": public,
                "signedIdentity": {"type": "matchRepository"},
            }]}},
        })
        .to_string(),
    )
    .unwrap();
    let regd = dir.path().join("registries.d");
    std::fs::create_dir_all(&regd).unwrap();
    std::fs::write(
        regd.join("flowship-test.yaml"),
        format!("docker:\n  {host}:\n    use-sigstore-attachments: true\n"),
    )
    .unwrap();
    let out = Command::new("skopeo")
        .arg("copy")
        .arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&regd)
        .arg("--src-tls-verify=false")
        .arg(format!("docker://{reference}"))
        .arg(format!("dir:{}", dir.path().join("out").display()))
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

/// Debian's skopeo and podman are built without sigstore verification ("Debian-local change: sigstore
/// disabled"): they find the signature through the attachment tag, then stop. Where they are built with it,
/// the verdict is checked in full.
const SIGSTORE_DISABLED: &str = "sigstore disabled";

#[test]
fn a_signed_push_is_what_openssl_and_skopeos_policy_check() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "cosign");
    let (_, other) = keypair(dir.path(), "other");
    let layout = umoci_layout(dir.path(), "v1");
    let repo = format!("{}/it/signed-{}", svc("REGISTRY_PLAIN"), token());
    let push = |repo: &str, signed: bool| {
        let mut f = plain(flowship()).args([
            "push",
            "--from",
            &format!("oci-layout:{}:v1", layout.display()),
            "--image",
            repo,
            "--output",
            "json",
        ]);
        for l in key_lines(&key) {
            f = f.secret(l);
        }
        if signed {
            f = f.env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap());
        }
        f.run()
    };
    let o = push(&repo, true);
    o.success().stderr_has("signed ").stderr_has(".sig");
    let digest = o.json()["image"]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        o.json()["image"]["signature"],
        format!("{}.sig", digest.replacen(':', "-", 1))
    );

    // The signature is cosign's: ECDSA over SHA-256 of the payload, DER, base64 in the annotation.
    let (ok, payload) = openssl_verifies(&repo, &digest, 0, &public);
    assert!(ok, "openssl does not verify the signature with the key");
    assert!(!openssl_verifies(&repo, &digest, 0, &other).0);
    assert_eq!(
        payload,
        serde_json::json!({
            "critical": {
                "identity": {"docker-reference": repo},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": null,
        })
    );

    // A re-run finds the signature in place (RFC 6979: the same signature) and writes nothing.
    let again = push(&repo, true);
    again.success();
    assert!(!again.stderr.contains("signed "), "{again}");
    assert_eq!(
        sig_manifest(&repo, &digest)["layers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // skopeo's policy: the signed image's signature is found and checked; the same digest unsigned (in
    // another repository) is refused for having none.
    let unsigned = format!("{}/it/unsigned-{}", svc("REGISTRY_PLAIN"), token());
    push(&unsigned, false).success();
    let refused = policy_verdict(&format!("{unsigned}@{digest}"), &public).unwrap_err();
    assert!(refused.contains("no signature exists"), "{refused}");
    match policy_verdict(&format!("{repo}@{digest}"), &public) {
        Ok(()) => {
            let wrong = policy_verdict(&format!("{repo}@{digest}"), &other).unwrap_err();
            assert!(!wrong.contains("no signature exists"), "{wrong}");
        }
        Err(e) => assert!(
            e.contains(SIGSTORE_DISABLED),
            "skopeo refused a flowship-signed image: {e}"
        ),
    }
}

#[test]
fn a_signed_build_carries_provenance_and_an_sbom_and_verify_checks_all_three() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "cosign");
    let (other_key, other) = keypair(dir.path(), "other");
    let base = base_image(dir.path());
    let project = flow_project(dir.path());
    // uv export's shape: pinned, with hashes (the wheel's and the sdist's).
    std::fs::write(
        project.join("requirements.txt"),
        "six==1.16.0 \\\n    --hash=sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926 \\\n    --hash=sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n",
    )
    .unwrap();
    // The project is a checkout: `verify --rebuild` checks it is the recorded commit, unchanged.
    let git = |args: &[&str]| crate::harness::git(&project, args);
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-qm",
        "flow",
    ]);
    let commit = git(&["rev-parse", "HEAD"]);
    let repo = format!("{}/it/attested-{}", svc("REGISTRY_PLAIN"), token());
    let o = plain(flowship())
        .env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap())
        .env("CI_COMMIT_SHA", &commit)
        .env("CI_PROJECT_URL", "https://gitlab.example.com/data/etl")
        .env(
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/data/etl/-/pipelines/7",
        )
        .env("CI_JOB_URL", "https://gitlab.example.com/data/etl/-/jobs/8")
        .build_onto(&repo, &base, &project)
        .run();
    o.success();
    let digest = o.json()["image"]["digest"].as_str().unwrap().to_string();
    let image = format!("{repo}@{digest}");

    // flowship verify: the signature, the provenance, the SBOM.
    let v = plain(flowship())
        .args(["verify", &image, "--key", public.to_str().unwrap()])
        .run();
    v.success()
        .stderr_has("signature: verified")
        .stderr_has("provenance (signed by the key): flowship")
        .stderr_has(&format!("from commit {commit}"))
        .stderr_has("SBOM: application/vnd.cyclonedx+json");
    assert_eq!(v.stdout.trim(), image);
    let wrong = plain(flowship())
        .args(["verify", &image, "--key", other.to_str().unwrap()])
        .run();
    wrong.code(3).stderr_has("is signed, but not with the key");

    // The referrers, read without flowship: the registry has no referrers API, so the fallback tag's index.
    let index: Value = serde_json::from_slice(&get(&format!(
        "{}/manifests/{}",
        repo_path(&repo),
        digest.replacen(':', "-", 1)
    )))
    .unwrap();
    let kinds: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["artifactType"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "application/vnd.in-toto+json",
            "application/vnd.cyclonedx+json"
        ]
    );
    let doc = |i: usize| -> Value {
        let m: Value = serde_json::from_slice(&get(&format!(
            "{}/manifests/{}",
            repo_path(&repo),
            index["manifests"][i]["digest"].as_str().unwrap()
        )))
        .unwrap();
        assert_eq!(m["subject"]["digest"], digest.as_str());
        serde_json::from_slice(&get(&format!(
            "{}/blobs/{}",
            repo_path(&repo),
            m["layers"][0]["digest"].as_str().unwrap()
        )))
        .unwrap()
    };
    let provenance = doc(0);
    assert_eq!(provenance["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        provenance["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );
    let p = &provenance["predicate"];
    assert_eq!(
        p["runDetails"]["builder"]["id"],
        "https://gitlab.example.com/data/etl/-/pipelines/7"
    );
    assert_eq!(
        p["runDetails"]["metadata"]["invocationId"],
        "https://gitlab.example.com/data/etl/-/jobs/8"
    );
    let installer = p["runDetails"]["builder"]["version"]["installer"]
        .as_str()
        .unwrap();
    assert!(
        installer.starts_with("uv ") || installer.starts_with("pip "),
        "{installer}"
    );
    let deps = p["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(deps[0]["digest"]["gitCommit"], commit.as_str());
    assert_eq!(deps[1]["name"], "base");
    assert!(deps[1]["digest"]["sha256"].as_str().unwrap().len() == 64);
    assert_eq!(deps[2]["name"], "requirements");
    let sbom = doc(1);
    let six = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "six")
        .unwrap_or_else(|| panic!("six is not in the SBOM: {sbom}"));
    assert_eq!(six["version"], "1.16.0");
    assert_eq!(six["purl"], "pkg:pypi/six@1.16.0");
    assert_eq!(six["hashes"].as_array().unwrap().len(), 2);
    let base_c = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "container")
        .unwrap();
    assert_eq!(base_c["hashes"][0]["content"], deps[1]["digest"]["sha256"]);

    // The signed provenance is cosign's attestation: a DSSE envelope at the `.att` tag, whose signature
    // openssl verifies over DSSE's pre-authentication encoding, holding the same statement.
    let att: Value = serde_json::from_slice(&get(&format!(
        "{}/manifests/{}.att",
        repo_path(&repo),
        digest.replacen(':', "-", 1)
    )))
    .unwrap();
    let layer = &att["layers"][0];
    assert_eq!(layer["mediaType"], "application/vnd.dsse.envelope.v1+json");
    assert_eq!(
        layer["annotations"]["predicateType"],
        "https://slsa.dev/provenance/v1"
    );
    let envelope: Value = serde_json::from_slice(&get(&format!(
        "{}/blobs/{}",
        repo_path(&repo),
        layer["digest"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let b64 = base64::engine::general_purpose::STANDARD;
    let statement = b64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let mut pae = format!(
        "DSSEv1 28 application/vnd.in-toto+json {} ",
        statement.len()
    )
    .into_bytes();
    pae.extend_from_slice(&statement);
    let sig = b64
        .decode(envelope["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    assert!(openssl_verifies_bytes(&pae, &sig, &public));
    assert!(!openssl_verifies_bytes(&pae, &sig, &other));
    let attested: Value = serde_json::from_slice(&statement).unwrap();
    assert_eq!(
        attested["subject"][0]["digest"]["sha256"],
        digest.trim_start_matches("sha256:")
    );

    // Anyone can check it by rebuilding from the checkout (the installer runs here; nothing is pushed).
    let verify_rebuild = || {
        plain(flowship())
            .args([
                "verify",
                &image,
                "--key",
                public.to_str().unwrap(),
                "--rebuild",
                project.to_str().unwrap(),
            ])
            .run()
    };
    verify_rebuild()
        .success()
        .stderr_has(&format!("rebuilt: the same digest, {digest}"));
    std::fs::write(project.join("flows/extra.py"), "x = 1\n").unwrap();
    verify_rebuild()
        .code(2)
        .stderr_has("the checkout has changes (flows/extra.py)");
    std::fs::remove_file(project.join("flows/extra.py")).unwrap();

    // A second build reuses the dependency layer from the registry; the SBOM still lists what it holds, so
    // the referrers are the same and nothing new is written.
    let again = plain(flowship())
        .env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap())
        .env("CI_COMMIT_SHA", &commit)
        .env("CI_PROJECT_URL", "https://gitlab.example.com/data/etl")
        .env(
            "CI_PIPELINE_URL",
            "https://gitlab.example.com/data/etl/-/pipelines/7",
        )
        .env("CI_JOB_URL", "https://gitlab.example.com/data/etl/-/jobs/8")
        .args([
            "build",
            "--image",
            &repo,
            "--tag",
            "1.0",
            "--base",
            &base,
            "--context",
            project.to_str().unwrap(),
        ])
        .run();
    again.success().stderr_has("reused from the registry");
    assert!(!again.stderr.contains("attached"), "{again}");
    assert!(!again.stderr.contains("signed "), "{again}");

    // promote carries all three; a key at the promote adds its own signature, for the new repository.
    let dst = format!("{}/it/promoted-{}:1.0", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .env("FLOWSHIP_SIGN_KEY_FILE", other_key.to_str().unwrap())
        .args(["promote", &format!("{repo}:1.0"), &dst])
        .run()
        .success();
    let dst_repo = dst.rsplit_once(':').unwrap().0;
    // The attestation travels too: signed by the build's key; the promote's key signed no provenance.
    for (k, provenance) in [
        (&public, "provenance (signed by the key)"),
        (&other, "provenance (unsigned referrer)"),
    ] {
        plain(flowship())
            .args([
                "verify",
                &format!("{dst_repo}@{digest}"),
                "--key",
                k.to_str().unwrap(),
            ])
            .run()
            .success()
            .stderr_has(provenance)
            .stderr_has("SBOM");
    }
    let (ok, payload) = openssl_verifies(dst_repo, &digest, 1, &other);
    assert!(ok);
    assert_eq!(
        payload["critical"]["identity"]["docker-reference"],
        dst_repo
    );
}

#[test]
fn signing_without_a_key_is_refused_and_the_key_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = keypair(dir.path(), "cosign");
    let pem = std::fs::read_to_string(&key).unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let repo = format!("{}/it/needs-key-{}", svc("REGISTRY_PLAIN"), token());
    let from = format!("oci-layout:{}:v1", layout.display());

    // Asked for and no key: exit 2 before anything is pushed.
    plain(flowship())
        .args(["push", "--from", &from, "--image", &repo, "--sign"])
        .run()
        .code(2)
        .stderr_has("signing was asked for, and there is no signing key")
        .stderr_has("FLOWSHIP_SIGN_KEY");
    let listed = Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(format!("docker://{repo}"))
        .output()
        .unwrap();
    assert!(!listed.status.success(), "the refused push wrote {repo}");

    // A key that is not one: named by where it came from, never quoted.
    plain(flowship())
        .env("FLOWSHIP_SIGN_KEY", crate::harness::SENTINEL)
        .args(["push", "--from", &from, "--image", &repo])
        .run()
        .code(2)
        .stderr_has("FLOWSHIP_SIGN_KEY: the signing key is not a PEM private key");

    // The key in a masked variable, with every narration on: no line of it in any output, nor in what is
    // pushed.
    let mut f = plain(flowship())
        .env("FLOWSHIP_SIGN_KEY", &pem)
        .env("RUST_LOG", "trace")
        .args(["-vv", "push", "--from", &from, "--image", &repo, "--sign"]);
    for l in key_lines(&key) {
        f = f.secret(l);
    }
    let o = f.run();
    o.success().stderr_has("signed ");
    let mut s = flowship().env("FLOWSHIP_SIGN_KEY", &pem).args(["settings"]);
    for l in key_lines(&key) {
        s = s.secret(l);
    }
    s.run().success().stdout_has("sign.key");
    let digest = o.stdout.trim().rsplit_once('@').unwrap().1.to_string();
    let sig = serde_json::to_string(&sig_manifest(&repo, &digest)).unwrap();
    let (ok, payload) = openssl_verifies(&repo, &digest, 0, &public);
    assert!(ok);
    for l in key_lines(&key) {
        assert!(!sig.contains(&l) && !payload.to_string().contains(&l));
    }
}

/// `cosign.key` as `cosign generate-key-pair` writes it: the PKCS#8 key sealed with NaCl secretbox under a
/// key scrypt derives from the password, in a JSON document in an `ENCRYPTED SIGSTORE PRIVATE KEY` block.
fn cosign_encrypted(private: &Path, password: &str) -> String {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let pem = std::fs::read_to_string(private).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let b64 = base64::engine::general_purpose::STANDARD;
    let der = b64.decode(body).unwrap();
    let (salt, nonce): ([u8; 32], [u8; 24]) = (
        std::array::from_fn(|_| fastrand::u8(..)),
        std::array::from_fn(|_| fastrand::u8(..)),
    );
    let mut key = [0u8; 32];
    // cosign uses N = 2^15 or 2^16; 2^12 keeps the test quick and reads the same way.
    scrypt::scrypt(
        password.as_bytes(),
        &salt,
        &scrypt::Params::new(12, 8, 1, 32).unwrap(),
        &mut key,
    )
    .unwrap();
    let sealed = crypto_secretbox::XSalsa20Poly1305::new(&key.into())
        .encrypt(crypto_secretbox::Nonce::from_slice(&nonce), der.as_ref())
        .unwrap();
    let doc = serde_json::json!({
        "kdf": {"name": "scrypt", "params": {"N": 4096, "r": 8, "p": 1}, "salt": b64.encode(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64.encode(nonce)},
        "ciphertext": b64.encode(sealed),
    });
    let text = b64.encode(serde_json::to_vec(&doc).unwrap());
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n{}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        lines.join("\n")
    )
}

#[test]
fn a_cosign_encrypted_key_signs_with_its_password_and_the_password_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let (plain_key, public) = keypair(dir.path(), "cosign");
    let password = format!("pw-{}", crate::harness::SENTINEL);
    let key = dir.path().join("cosign-encrypted.key");
    std::fs::write(&key, cosign_encrypted(&plain_key, &password)).unwrap();
    let layout = umoci_layout(dir.path(), "v1");
    let repo = format!("{}/it/encrypted-{}", svc("REGISTRY_PLAIN"), token());
    let push = |password_var: &str, password: &str| {
        plain(flowship())
            .env("FLOWSHIP_SIGN_KEY_FILE", key.to_str().unwrap())
            .env(password_var, password)
            .secret(password)
            .args([
                "push",
                "--from",
                &format!("oci-layout:{}:v1", layout.display()),
                "--image",
                &repo,
            ])
            .run()
    };
    push("COSIGN_PASSWORD", "not-it")
        .code(2)
        .stderr_has("could not be decrypted: the password is wrong")
        .stderr_has("FLOWSHIP_SIGN_PASSWORD");
    let o = push("COSIGN_PASSWORD", &password);
    o.success().stderr_has("signed ");
    let digest = o.stdout.trim().rsplit_once('@').unwrap().1.to_string();
    assert!(openssl_verifies(&repo, &digest, 0, &public).0);
    // FLOWSHIP_SIGN_PASSWORD is read first; the same key signs the same way, so nothing changes.
    push("FLOWSHIP_SIGN_PASSWORD", &password).success();
    assert_eq!(
        sig_manifest(&repo, &digest)["layers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
