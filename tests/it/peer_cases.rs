//! Every case of the peers' own test suites (`fixtures/peer-suites/`: Flux image automation, Argo CD Image
//! Updater, kustomize, Renovate; byte for byte, see its SOURCES.md) run through `flowship bump` against a real
//! git remote, and compared with what the peer's test expects, the way the peer's test compares.
//!
//! What flowship does with each case is recorded in `fixtures/peer-suites/flowship.tsv` (case, verdict, reason);
//! a verdict other than `same` names a reason the README's "Peer suites" table explains. The test fails when a
//! case's verdict changes either way, when a reason is undocumented, or when more than ten cases are shapes
//! flowship does not handle. `FLOWSHIP_IT_PEER_RECORD=1` rewrites the table from what was observed.

use crate::harness::{flowship, git};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SUITES: &str = "fixtures/peer-suites";
/// The tag extraction cases are bumped to: a value no fixture holds.
const PROBE_TAG: &str = "9.9.9-flowship-probe";
/// The digest extraction cases are pinned to, where a reference is pinned.
const PROBE_DIGEST: &str =
    "sha256:9999999999999999999999999999999999999999999999999999999999999999";
/// Cases of shapes flowship does not handle (the issue's bound).
const MAX_UNSUPPORTED: usize = 10;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SUITES)
}

/// Every file under `dir`, relative to it (symlinks included as entries, `.git` left out).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The text of a file, or `None` for a missing file or a dangling symlink.
fn read(p: &Path) -> Option<String> {
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// Flux's `testutil.ReplaceMarker`, then the peers' placeholder digests made real, applied to inputs and
/// expected files alike.
fn preprocess(case: &Value, text: String) -> String {
    let mut text = match (
        s(&case["preprocess"]["replace"]),
        s(&case["preprocess"]["with"]),
    ) {
        (Some(from), Some(to)) => text.replace(from, to),
        _ => text,
    };
    for (fake, real) in fake_digests(case) {
        text = text.replace(&fake, &real);
    }
    // Placeholders the files hold (`@sha256:1111…`, `digest: sha12345`), likewise; not in Renovate's
    // extraction cases, which are about malformed values.
    if case["compare"] == "extract" {
        return text;
    }
    let held =
        regex::Regex::new(r"(@|(?m:^|\s)(?:digest|newDigest):[ \t]*)([A-Za-z0-9][A-Za-z0-9:_-]*)")
            .unwrap();
    held.replace_all(&text, |c: &regex::Captures| match &c[2] {
        d if is_digest(d) || d == "sha256" => c[0].to_string(),
        d => format!("{}{}", &c[1], real_digest(d)),
    })
    .into_owned()
}

/// The peers' tests use placeholder digests (`sha23456`, `12345`, `sha256:p0o9…`); flowship accepts only
/// `sha256:` and 64 hex digits. Each placeholder stands for a real-shaped digest derived from it, in the
/// arguments, the inputs and the expected files alike, so the case keeps its meaning.
fn fake_digests(case: &Value) -> Vec<(String, String)> {
    let mut seen = vec![
        &case["new"]["digest"],
        &case["renovate_upgrade"]["currentDigest"],
    ];
    seen.extend(
        case["new"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| &u["digest"]),
    );
    let mut out: Vec<(String, String)> = seen
        .into_iter()
        .filter_map(Value::as_str)
        .filter(|d| !is_digest(d) && !matches!(*d, "*" | "sha256:"))
        .map(|d| (d.to_string(), real_digest(d)))
        .collect();
    // Longest first: a placeholder that is the prefix of another must not cut it.
    out.sort_by_key(|(f, _)| std::cmp::Reverse(f.len()));
    out.dedup();
    out
}

fn is_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn real_digest(fake: &str) -> String {
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(fake.as_bytes()))
    )
}

fn digest_arg(case: &Value, d: &str) -> Option<String> {
    match d {
        "*" => None,
        d if is_digest(d) || d == "sha256:" => Some(d.to_string()),
        d => Some(preprocess(case, d.to_string())),
    }
}

/// One `flowship bump` the case stands for: the arguments after `bump --repo R`.
type Invocation = Vec<String>;

/// `image[:tag][@digest]` of a Flux policy's latest image.
fn split_ref(r: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match r.split_once('@') {
        Some((a, d)) => (a, Some(d.to_string())),
        None => (r, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (
            rest[..slash + i].to_string(),
            Some(rest[slash + i + 1..].to_string()),
            digest,
        ),
        None => (rest.to_string(), None, digest),
    }
}

fn bump_args(
    case: &Value,
    image: &str,
    tag: Option<&str>,
    digest: Option<&str>,
    name: Option<&str>,
) -> Invocation {
    let mut a = vec!["--image".to_string(), image.to_string()];
    if let Some(t) = tag.filter(|t| *t != "*" && !t.is_empty()) {
        a.extend(["--tag".into(), t.into()]);
    }
    if let Some(d) = digest.and_then(|d| digest_arg(case, d)) {
        // The peers set the digest they are given on every reference: the same as `--pin always`.
        a.extend(["--digest".into(), d, "--pin".into(), "always".into()]);
    }
    if let Some(n) = name.filter(|n| *n != "*" && *n != image) {
        a.extend(["--new-name".into(), n.into()]);
    }
    a
}

/// Argo CD's configured Helm keys (`helm.image-tag: image.tag`, `helm.image-spec: image.spec`) are what
/// flowship's `--target FILE:PATH` says: these fields, and no search.
fn helm_targets(case: &Value) -> Option<(String, Vec<String>)> {
    let keys = case["writeback"]["helm_keys"].as_object()?;
    let file = s(&case["target_path"]).map(String::from).or_else(|| {
        s(&case["writeback"]["target"])?
            .strip_prefix("helmvalues:")
            .map(|f| f.trim_start_matches("./").to_string())
    })?;
    let mut paths = Vec::new();
    for (role, key) in keys {
        let ks: Vec<&str> = match key {
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            k => k.as_str().into_iter().collect(),
        };
        for k in ks {
            // The name key names the image, it is not changed by a tag update.
            if role != "image-name" && !k.ends_with(".name") {
                paths.push(format!("{file}:{k}"));
            }
        }
    }
    Some((file, paths))
}

/// What flowship is asked to do for a case, or why the case is no bump at all.
fn invocations(case: &Value, seed: &Path) -> Result<Vec<Invocation>, &'static str> {
    let new = &case["new"];
    if let Some(policies) = case["policies"].as_object() {
        let text: String = files(seed)
            .iter()
            .filter_map(|f| read(&seed.join(f)))
            .collect();
        let mut out = Vec::new();
        for (policy, r) in policies {
            // A policy no marker names: Flux changes nothing; flowship is not run for it.
            if !text.contains(&format!("\"{policy}")) {
                continue;
            }
            let (image, tag, digest) = split_ref(r.as_str().unwrap());
            let mut a = bump_args(case, &image, tag.as_deref(), digest.as_deref(), None);
            a.extend(["--policy".into(), policy.clone()]);
            if case["markers"] == true {
                a.extend(["--markers".into(), "only".into()]);
            }
            if let Some(p) = s(&case["scope"]["update.path"]) {
                a.extend([
                    "--paths".into(),
                    format!("{}/**", p.trim_start_matches("./")),
                ]);
            }
            out.push(a);
        }
        return if out.is_empty() {
            Err("no-marker-for-policy")
        } else {
            Ok(out)
        };
    }
    if case["compare"] == "extract" {
        return match case["image"].as_array() {
            Some(images) => Ok(images
                .iter()
                .map(|i| {
                    // Pinned references take the probe digest, tag-only ones stay tag-only.
                    let mut a = bump_args(
                        case,
                        i.as_str().unwrap(),
                        Some(PROBE_TAG),
                        Some(PROBE_DIGEST),
                        None,
                    );
                    let pin = a.iter().position(|x| x == "always").unwrap();
                    a[pin] = "keep".into();
                    a
                })
                .collect()),
            None => Err("extract-nothing"),
        };
    }
    if new.get("helm_params").is_some() || new.get("tag_suffix").is_some() {
        return Err("not-an-image-edit");
    }
    if let Some(list) = new.as_array() {
        return list
            .iter()
            .map(|u| {
                if let Some(key) = s(&u["key"]) {
                    let file = case["inputs"][0].as_str().ok_or("no-input-file")?;
                    let tag = s(&u["tag"]).ok_or("no-new-value")?;
                    return Ok(target_args(tag, &[format!("{file}:{key}")]));
                }
                if let Some((file, _)) = helm_targets(case) {
                    let image = s(&u["image"]).unwrap_or("unused");
                    // Argo CD's keys per alias: `nginx: [nginx.image.name, nginx.image.tag]`.
                    let alias = s(&u["alias"]).unwrap_or(image);
                    let keys = case["writeback"]["helm_keys"][alias]
                        .as_array()
                        .ok_or("no-helm-key")?;
                    let paths: Vec<String> = keys
                        .iter()
                        .filter_map(Value::as_str)
                        .filter(|k| !k.ends_with(".name"))
                        .map(|k| format!("{file}:{k}"))
                        .collect();
                    let mut a = target_args(s(&u["tag"]).ok_or("no-new-value")?, &paths);
                    a[1] = image.to_string();
                    return Ok(a);
                }
                let image = s(&u["image"]).ok_or("no-image")?;
                Ok(bump_args(
                    case,
                    image,
                    s(&u["tag"]),
                    s(&u["digest"]),
                    s(&u["name"]),
                ))
            })
            .collect();
    }
    if let Some(key) = s(&new["key"]) {
        let file = case["inputs"][0].as_str().ok_or("no-input-file")?;
        let value = s(&new["value"]).or(s(&new["tag"])).ok_or("no-new-value")?;
        return Ok(vec![target_args(value, &[format!("{file}:{key}")])]);
    }
    if let Some(images) = new["kustomize_images"].as_array() {
        // Argo CD's `name[=new][:tag]` list, applied in order.
        return Ok(images
            .iter()
            .map(|i| {
                let (image, tag, digest) = split_ref(i.as_str().unwrap());
                let tag = tag.or_else(|| s(&new["tag"]).map(String::from));
                bump_args(case, &image, tag.as_deref(), digest.as_deref(), None)
            })
            .collect());
    }
    let image = s(&case["image"]).ok_or("no-image")?;
    if !new.is_object() {
        return Err("no-new-value");
    }
    if let Some((_, paths)) = helm_targets(case) {
        let tag = s(&new["tag"])
            .filter(|t| !t.is_empty())
            .ok_or("no-new-value")?;
        let mut a = target_args(tag, &paths);
        a[1] = image.to_string();
        return Ok(vec![a]);
    }
    let mut a = bump_args(
        case,
        image,
        s(&new["tag"]),
        s(&new["digest"]),
        s(&new["name"]),
    );
    if let Some(u) = case.get("renovate_upgrade") {
        // Renovate's "wrong version" check: the file must hold the version it extracted.
        if let Some(cur) = s(&u["currentValue"]) {
            a.extend(["--expect-tag".into(), cur.into()]);
        }
    }
    if a.len() == 2 {
        return Err("no-new-value");
    }
    Ok(vec![a])
}

/// `--target` each path with `tag`: the fields named, no search (the image is not looked for).
fn target_args(tag: &str, paths: &[String]) -> Invocation {
    let mut a: Invocation = ["--image", "unused", "--tag", tag]
        .map(String::from)
        .to_vec();
    for p in paths {
        a.extend(["--target".into(), p.clone()]);
    }
    a
}

/// What one run of a case gave: the exit code of the first failing bump (0 when all succeeded) and the files
/// of the branch afterwards.
struct Run {
    code: i32,
    stderr: String,
    after: BTreeMap<PathBuf, Option<String>>,
    before: BTreeMap<PathBuf, Option<String>>,
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    let who = ["-c", "user.name=t", "-c", "user.email=t@example.invalid"];
    git(
        dir,
        &[&who[..], &["commit", "-q", "--allow-empty", "-m", message]].concat(),
    );
}

fn run_case(dir: &Path, case: &Value) -> Result<Run, &'static str> {
    let work = tempfile::tempdir().unwrap();
    let seed = work.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    let before_dir = dir.join("before");
    for f in files(&before_dir) {
        let src = before_dir.join(&f);
        let dst = seed.join(&f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if src.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            std::fs::write(&dst, preprocess(case, read(&src).unwrap())).unwrap();
        }
    }
    if files(&seed).is_empty() && case["peer_result"] == "edit" {
        // The peer writes a file that is not there (an override file, a values file).
        return Err("creates-file");
    }
    let calls = invocations(case, &seed)?;
    git(&seed, &["init", "-q", "-b", "main"]);
    commit_all(&seed, "original");
    let bare = work.path().join("gitops.git");
    let (sd, b) = (seed.to_str().unwrap(), bare.to_str().unwrap());
    git(Path::new("."), &["clone", "-q", "--bare", sd, b]);
    let mut code = 0;
    let mut stderr = String::new();
    let calls_seen = calls.clone();
    for call in calls {
        let o = flowship().args(["bump", "--repo", b]).args(&call).run();
        if o.code != 0 && code == 0 {
            code = o.code;
            stderr = o.stderr;
            // Extraction probes are one bump per image, each on its own; an update stops at its first refusal.
            if case["compare"] != "extract" {
                break;
            }
        }
    }
    let out = work.path().join("out");
    git(Path::new("."), &["clone", "-q", b, out.to_str().unwrap()]);
    if let Ok(dump) = std::env::var("FLOWSHIP_IT_PEER_DUMP") {
        // For looking at a difference by hand: the branch after flowship, and the arguments it was given.
        let to = Path::new(&dump).join(dir.strip_prefix(root()).unwrap());
        std::fs::create_dir_all(&to).unwrap();
        let copy = std::process::Command::new("cp")
            .arg("-rT")
            .arg(&out)
            .arg(&to)
            .status();
        assert!(copy.unwrap().success());
        std::fs::write(
            to.join(".flowship-args"),
            format!("{calls_seen:?}\n{stderr}"),
        )
        .unwrap();
    }
    let snapshot = |d: &Path| -> BTreeMap<PathBuf, Option<String>> {
        files(d)
            .into_iter()
            .map(|f| (f.clone(), read(&d.join(&f))))
            .collect()
    };
    Ok(Run {
        code,
        stderr,
        after: snapshot(&out),
        before: snapshot(&seed),
    })
}

#[path = "peer_compare.rs"]
mod compare;

use compare::{Verdict, verdict};

/// The recorded verdicts: `case \t verdict \t reason`.
fn recorded() -> BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(root().join("flowship.tsv")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut p = l.split('\t');
            let case = p.next().unwrap().to_string();
            let v = p.next().unwrap_or_default().to_string();
            let r = p.next().unwrap_or_default().to_string();
            (case, (v, r))
        })
        .collect()
}

fn cases() -> Vec<(String, PathBuf, Value)> {
    let mut out = Vec::new();
    for peer in ["flux", "argo", "kustomize", "renovate"] {
        let mut dirs: Vec<_> = std::fs::read_dir(root().join(peer))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for d in dirs {
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(d.join("case.json")).unwrap())
                    .unwrap();
            let id = format!("{peer}/{}", d.file_name().unwrap().to_str().unwrap());
            out.push((id, d, case));
        }
    }
    out
}

fn observe(dir: &Path, case: &Value) -> Verdict {
    match run_case(dir, case) {
        Err(why) => Verdict::NotRun(why.to_string()),
        Ok(run) => verdict(dir, case, &run),
    }
}

#[test]
fn every_peer_case_is_equal_or_a_documented_difference() {
    let all = cases();
    let results: Vec<(String, Verdict)> = std::thread::scope(|scope| {
        let chunks: Vec<_> = all.chunks(all.len().div_ceil(2)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .map(|(id, d, c)| (id.clone(), observe(d, c)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let want = recorded();
    if std::env::var("FLOWSHIP_IT_PEER_RECORD").is_ok() {
        let mut text = String::from(
            "# flowship's verdict on every peer case (tests/it/peer_cases.rs); reasons: README, \"Peer suites\"\n",
        );
        for (id, v) in &results {
            let reason = want.get(id).map(|(_, r)| r.as_str()).unwrap_or("");
            text.push_str(&format!("{id}\t{}\t{reason}\t{}\n", v.kind(), v.detail()));
        }
        std::fs::write(root().join("flowship.tsv"), text).unwrap();
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut failures = Vec::new();
    let mut unsupported = 0;
    for (id, v) in &results {
        let Some((kind, reason)) = want.get(id) else {
            failures.push(format!(
                "{id}: not recorded (observed {} {})",
                v.kind(),
                v.detail()
            ));
            continue;
        };
        if kind != v.kind() {
            failures.push(format!(
                "{id}: recorded {kind}, observed {}: {}",
                v.kind(),
                v.detail()
            ));
        }
        if v.kind() != "same" && !readme.contains(&format!("`{reason}`")) {
            failures.push(format!(
                "{id}: {} without a documented reason ({reason:?})",
                v.kind()
            ));
        }
        if reason.starts_with("unsupported-") {
            unsupported += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} peer cases:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    assert!(
        unsupported <= MAX_UNSUPPORTED,
        "{unsupported} cases are unsupported shapes"
    );
}
