//! Issue 17: the base is part of the build. Its Python is read from its layers (not only `PYTHON_VERSION`),
//! its own packages constrain the install (a Prefect base's prefect is not installed twice; a lock pinning
//! another version is installed and reported as shadowing), a wheel that cannot load on it is exit 2
//! naming the package, and a native library its `.so` files need and it lacks is named.

use crate::build::base_image;
use crate::harness::{flowship, svc};
use crate::images::{plain, run, skopeo_inspect, token};
use crate::packaging::{build, build_with_env, uv};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `base` copied to a repository of its own with its environment replaced by `env` (`PYTHON_VERSION`
/// dropped or changed); the layers are the same.
fn rebased(base: &str, env: &[&str], dir: &Path) -> String {
    let layout = dir.join(format!("rebased-{}", token()));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{base}"))
        .arg(format!("oci:{}:b", layout.display())));
    let mut c = Command::new("umoci");
    c.args(["config", "--image", &format!("{}:b", layout.display())])
        .args(["--clear=config.env"]);
    for e in env {
        c.args(["--config.env", e]);
    }
    run(&mut c);
    let repo = format!("{}/it/rebased-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:b", layout.display()),
        ])
        .args(["--image", &repo, "--tag", "b"])
        .run()
        .success();
    format!("{repo}:b")
}

/// `base` with every layer recompressed with zstd (`application/vnd.oci.image.layer.v1.tar+zstd`, as
/// `podman push --compression-format zstd` writes), in a repository of its own.
fn zstd_base(base: &str, dir: &Path) -> String {
    use sha2::{Digest, Sha256};
    let layout = dir.join(format!("zstd-{}", token()));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{base}"))
        .arg(format!("oci:{}:b", layout.display())));
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let put = |bytes: &[u8]| {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        std::fs::write(blob(&digest), bytes).unwrap();
        digest
    };
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    let m_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&m_digest)).unwrap()).unwrap();
    for layer in manifest["layers"].as_array_mut().unwrap() {
        let gz = blob(layer["digest"].as_str().unwrap());
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("zcat '{}' | zstd -q -1 -c", gz.display()))
            .output()
            .unwrap();
        assert!(out.status.success());
        layer["digest"] = serde_json::json!(put(&out.stdout));
        layer["size"] = serde_json::json!(out.stdout.len());
        layer["mediaType"] = serde_json::json!("application/vnd.oci.image.layer.v1.tar+zstd");
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    index["manifests"][0]["digest"] = serde_json::json!(put(&bytes));
    index["manifests"][0]["size"] = serde_json::json!(bytes.len());
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let repo = format!("{}/it/zstd-base-{}", svc("REGISTRY_PLAIN"), token());
    plain(flowship())
        .args([
            "push",
            "--from",
            &format!("oci-layout:{}:b", layout.display()),
        ])
        .args(["--image", &repo, "--tag", "b"])
        .run()
        .success();
    format!("{repo}:b")
}

/// Issue 17: a base whose layers are zstd-compressed is read like a gzip one (its Python, its packages),
/// not skipped with a warning.
#[test]
fn a_zstd_base_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let base = zstd_base(&svc("PYTHON_BASE"), dir.path());
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{base}")));
    assert!(raw.contains("tar+zstd"), "{raw}");
    let p = project(dir.path(), "six==1.16.0\n");
    let repo = format!("{}/it/on-zstd-{}", svc("REGISTRY_PLAIN"), token());
    let o = build(&base, &p, &repo, &[]);
    o.success()
        .stderr_has("for Python 3.11 (x86_64-manylinux_2_36)");
    assert!(!o.stderr.contains("not checked"), "{o}");
}

fn project(dir: &Path, requirements: &str) -> PathBuf {
    let p = dir.join(format!("project-{}", token()));
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("requirements.txt"), requirements).unwrap();
    std::fs::write(p.join("flow.py"), "print('flow')\n").unwrap();
    p
}

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Issue 17: a base that does not declare `PYTHON_VERSION` gets its Python from its layers; one whose
/// `PYTHON_VERSION` is wrong is installed for the Python it really has, with a warning; one with no Python
/// at all is exit 2. The index is kept in the cache directory and read from there the next time.
#[test]
fn the_bases_python_is_read_from_its_layers() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let cached = |e: Vec<(String, String)>| {
        let mut e = e;
        e.push(("FLOWSHIP_CACHE_DIR".into(), cache.display().to_string()));
        e
    };
    let p = project(dir.path(), "six==1.16.0\n");
    let undeclared = rebased(&svc("PYTHON_BASE"), &[PATH], dir.path());
    let repo = format!("{}/it/base-python-{}", svc("REGISTRY_PLAIN"), token());
    build_with_env(&undeclared, &p, &repo, &[], cached(Vec::new()))
        .success()
        .stderr_has("for Python 3.11 (x86_64-manylinux_2_36)");
    // The next build reads the index from the cache directory, not the layers: a doctored index shows it.
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.join("base-index"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    std::fs::write(&entries[0], text.replace("python3.11", "python3.12")).unwrap();
    build_with_env(&undeclared, &p, &repo, &[], cached(Vec::new()))
        .success()
        .stderr_has("for Python 3.12");
    std::fs::write(&entries[0], text).unwrap();

    let wrong = rebased(
        &svc("PYTHON_BASE"),
        &[PATH, "PYTHON_VERSION=3.9"],
        dir.path(),
    );
    build(&wrong, &p, &repo, &[])
        .success()
        .stderr_has("says PYTHON_VERSION=3.9, but its python3 is Python 3.11")
        .stderr_has("installing for 3.11");

    let no_python = rebased(&base_image(dir.path()), &[PATH], dir.path());
    build(&no_python, &p, &repo, &[])
        .code(2)
        .stderr_has("has no Python")
        .stderr_has("build on a base with Python");
}

/// The files of the `from_end`-th layer from the top of `image` (0: the code layer).
fn layer_files(image: &str, from_end: usize) -> Vec<String> {
    let layers = skopeo_inspect(image, false)["Layers"]
        .as_array()
        .unwrap()
        .clone();
    let digest = layers[layers.len() - 1 - from_end]
        .as_str()
        .unwrap()
        .to_string();
    let (repo, _) = image.rsplit_once(':').unwrap();
    let (host, path) = repo.split_once('/').unwrap();
    let url = format!("http://{host}/v2/{path}/blobs/{digest}");
    let out = run(Command::new("sh")
        .arg("-c")
        .arg(format!("curl -sfL '{url}' | tar tz")));
    out.lines().map(str::to_string).collect()
}

/// Issue 17: on the Prefect base, a requirements file asking for `prefect` unpinned installs no second
/// prefect (the base's packages are constraints; what the layer holds at the base's version is left to the
/// base), and a lock pinning another version of a package the base has installs it and says it shadows the
/// base's.
#[test]
fn the_bases_packages_constrain_the_install_and_shadowing_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let base = svc("PREFECT_BASE");
    let p = project(dir.path(), "prefect\n");
    let repo = format!("{}/it/base-constraints-{}", svc("REGISTRY_PLAIN"), token());
    let o = build(&base, &p, &repo, &[]);
    o.success().stderr_has("left to the base");
    assert!(!o.stderr.contains("shadows"), "{o}");
    let files = layer_files(&format!("{repo}:1.0"), 1);
    assert!(
        !files
            .iter()
            .any(|f| f.contains("/prefect/") || f.contains("prefect-3")),
        "a second prefect in the dependency layer: {files:?}"
    );

    // A lock pins six 1.16.0; the base has 1.17.0: installed as locked, and reported.
    let locked = dir.path().join("locked");
    std::fs::create_dir_all(&locked).unwrap();
    std::fs::write(
        locked.join("pyproject.toml"),
        format!(
            "[project]\nname = \"locked{}\"\nversion = \"0\"\nrequires-python = \">=3.10\"\ndependencies = [\"six==1.16.0\"]\n",
            token()
        ),
    )
    .unwrap();
    uv(&locked, &["lock", "--quiet"]);
    build(&base, &locked, &repo, &[])
        .success()
        .stderr_has("shadows the base's own packages")
        .stderr_has("six 1.17.0 → 1.16.0");
    let files = layer_files(&format!("{repo}:1.0"), 1);
    assert!(files.iter().any(|f| f.ends_with("/six.py")), "{files:?}");
}

/// A wheel of `name` 1.0 tagged `tag` in its file name and `wheel_tag` in its `WHEEL`, holding `files`.
fn wheel(dir: &Path, name: &str, tag: &str, wheel_tag: &str, files: &[(&str, &Path)]) -> PathBuf {
    let src = dir.join(format!("src-{name}"));
    let info = src.join(format!("{name}-1.0.dist-info"));
    std::fs::create_dir_all(src.join(name)).unwrap();
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(src.join(name).join("__init__.py"), "").unwrap();
    for (to, from) in files {
        std::fs::copy(from, src.join(name).join(to)).unwrap();
    }
    std::fs::write(
        info.join("METADATA"),
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n"),
    )
    .unwrap();
    std::fs::write(
        info.join("WHEEL"),
        format!("Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: false\nTag: {wheel_tag}\n"),
    )
    .unwrap();
    let mut record: Vec<String> = vec![format!("{name}/__init__.py,,")];
    record.extend(files.iter().map(|(to, _)| format!("{name}/{to},,")));
    for f in ["METADATA", "WHEEL", "RECORD"] {
        record.push(format!("{name}-1.0.dist-info/{f},,"));
    }
    std::fs::write(info.join("RECORD"), record.join("\n") + "\n").unwrap();
    let whl = dir.join("wheels").join(format!("{name}-1.0-{tag}.whl"));
    std::fs::create_dir_all(whl.parent().unwrap()).unwrap();
    run(Command::new("zip")
        .args(["-qr"])
        .arg(&whl)
        .args([name.to_string(), format!("{name}-1.0.dist-info")])
        .current_dir(&src));
    whl
}

/// Issue 17: a wheel that cannot load on the base is exit 2 naming the package and the fix, whether the
/// installer refuses it (a `--find-links` wheel for a newer glibc than the base's) or lets it through (tags
/// it does not read); a `.so` that needs a library the base lacks builds, with a warning naming both.
#[test]
fn wheels_that_do_not_fit_the_base_are_refused_and_missing_libraries_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = svc("PYTHON_BASE");
    let repo = format!("{}/it/base-fit-{}", svc("REGISTRY_PLAIN"), token());
    let t = token();
    let newer = format!("newer{t}");
    wheel(
        d,
        &newer,
        "cp311-cp311-manylinux_2_99_x86_64",
        "cp311-cp311-manylinux_2_99_x86_64",
        &[],
    );
    let p = project(
        d,
        &format!("--find-links {}\n{newer}\n", d.join("wheels").display()),
    );
    build(&base, &p, &repo, &[])
        .code(2)
        .stderr_has(&format!("`{newer}` has no wheel for this base"))
        .stderr_has("pin a version with a wheel for this base, or use a newer base");

    let odd = format!("odd{t}");
    let whl = wheel(
        d,
        &odd,
        "py3-none-any",
        "cp311-cp311-manylinux_2_99_x86_64",
        &[],
    );
    let p = project(d, &format!("{}\n", whl.display()));
    build(&base, &p, &repo, &[])
        .code(2)
        .stderr_has(&format!("`{odd}` 1.0 does not fit base image"))
        .stderr_has("needs glibc 2.99, the base has glibc 2.36")
        .stderr_has("pin a version with a wheel for this base, or use a newer base");

    // A shared object whose DT_NEEDED names a library no one has.
    std::fs::write(d.join("stub.c"), "int missing_fn(void) { return 1; }\n").unwrap();
    std::fs::write(
        d.join("ext.c"),
        "int missing_fn(void);\nint ext(void) { return missing_fn(); }\n",
    )
    .unwrap();
    run(Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-o",
            "libdoesnotexist.so.1",
            "-Wl,-soname,libdoesnotexist.so.1",
            "stub.c",
        ])
        .current_dir(d));
    run(Command::new("cc")
        .args([
            "-shared",
            "-fPIC",
            "-o",
            "_ext.so",
            "ext.c",
            "-Wl,--no-as-needed",
            "-L.",
            "-l:libdoesnotexist.so.1",
        ])
        .current_dir(d));
    let needy = format!("needy{t}");
    let whl = wheel(
        d,
        &needy,
        "py3-none-any",
        "py3-none-any",
        &[("_ext.so", &d.join("_ext.so"))],
    );
    let p = project(d, &format!("{}\n", whl.display()));
    build(&base, &p, &repo, &[])
        .success()
        .stderr_has(&format!(
            "{needy} needs libdoesnotexist.so.1, which the base does not have"
        ))
        .stderr_has("system packages are the base's job");
}
