//! The SBOM of flowship's own binary: CycloneDX 1.5 JSON of the Rust packages it is built from, read from the
//! `Cargo.lock` and `Cargo.toml` compiled into it (so any flowship can describe itself, wherever it runs). The
//! packages are the closure of `[dependencies]` over the lock file's resolve, which names every platform's and
//! every feature's packages the lock resolved: a superset of what one binary links, never a subset.

use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const LOCK: &str = include_str!("../../../Cargo.lock");
const MANIFEST: &str = include_str!("../../../Cargo.toml");

/// CycloneDX's JSON media type, as an OCI artifact type.
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

#[derive(Deserialize)]
struct Lock {
    package: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

#[derive(Deserialize)]
struct Manifest {
    package: Root,
    dependencies: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct Root {
    name: String,
    version: String,
    license: Option<String>,
}

fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

/// The SBOM document, the same bytes for the same sources: `created` is the image's timestamp and the serial
/// number is derived from the content.
pub fn document(created: &str) -> Vec<u8> {
    let lock: Lock = toml::from_str(LOCK).expect("Cargo.lock compiled in is valid TOML");
    let manifest: Manifest =
        toml::from_str(MANIFEST).expect("Cargo.toml compiled in is valid TOML");
    let mut by_name: BTreeMap<&str, Vec<&Package>> = BTreeMap::new();
    for p in &lock.package {
        by_name.entry(&p.name).or_default().push(p);
    }
    // A lock file dependency is `name` when one version is locked, else `name version` (and maybe `(source)`).
    let resolve = |dep: &str| -> Option<&Package> {
        let mut parts = dep.split(' ');
        let name = parts.next()?;
        let candidates = by_name.get(name)?;
        match parts.next() {
            Some(v) => candidates.iter().copied().find(|p| p.version == v),
            None => candidates.first().copied(),
        }
    };
    let root = &manifest.package;
    let root_pkg = by_name
        .get(root.name.as_str())
        .and_then(|v| v.iter().copied().find(|p| p.source.is_none()));
    let direct: Vec<&Package> = root_pkg
        .map(|r| {
            r.dependencies
                .iter()
                .filter_map(|d| resolve(d))
                .filter(|p| manifest.dependencies.contains_key(&p.name))
                .collect()
        })
        .unwrap_or_default();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut todo = direct.clone();
    let mut included: Vec<&Package> = Vec::new();
    while let Some(p) = todo.pop() {
        if !seen.insert((p.name.clone(), p.version.clone())) {
            continue;
        }
        included.push(p);
        todo.extend(p.dependencies.iter().filter_map(|d| resolve(d)));
    }
    included.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    let root_ref = purl(&root.name, &root.version);
    let components: Vec<Value> = included
        .iter()
        .map(|p| {
            let mut c = json!({
                "type": "library",
                "bom-ref": purl(&p.name, &p.version),
                "name": p.name,
                "version": p.version,
                "purl": purl(&p.name, &p.version),
            });
            if let Some(sum) = &p.checksum {
                c["hashes"] = json!([{"alg": "SHA-256", "content": sum}]);
            }
            c
        })
        .collect();
    let mut dependencies = vec![json!({
        "ref": root_ref,
        "dependsOn": direct.iter().map(|p| purl(&p.name, &p.version)).collect::<BTreeSet<_>>(),
    })];
    for p in &included {
        let on: BTreeSet<String> = p
            .dependencies
            .iter()
            .filter_map(|d| resolve(d))
            .map(|d| purl(&d.name, &d.version))
            .collect();
        dependencies.push(json!({"ref": purl(&p.name, &p.version), "dependsOn": on}));
    }
    let mut root_component = json!({
        "type": "application",
        "bom-ref": root_ref,
        "name": root.name,
        "version": root.version,
        "purl": root_ref,
    });
    if let Some(l) = &root.license {
        root_component["licenses"] = json!([{"expression": l}]);
    }
    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": root.name, "version": root.version}]},
            "component": root_component,
        },
        "components": components,
        "dependencies": dependencies,
    });
    // A serial number is a UUID; this one is the content's hash in UUID form, so that it is reproducible.
    let body = serde_json::to_vec(&doc).expect("JSON");
    let h = crate::registry::digest::of(&body);
    let x = &h["sha256:".len()..];
    doc["serialNumber"] = json!(format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    ));
    serde_json::to_vec_pretty(&doc).expect("JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_dependencies_and_not_the_dev_only_ones() {
        let doc: Value = serde_json::from_slice(&document("2026-01-01T00:00:00Z")).unwrap();
        assert_eq!(doc["bomFormat"], "CycloneDX");
        let names: Vec<&str> = doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        for n in ["reqwest", "rustls", "git2", "serde", "tokio", "libgit2-sys"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert!(!names.contains(&"flowship"));
        let with_hash = doc["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["hashes"][0]["content"].is_string())
            .count();
        assert_eq!(
            with_hash,
            names.len(),
            "every crates.io package has its checksum"
        );
        assert_eq!(
            document("2026-01-01T00:00:00Z"),
            document("2026-01-01T00:00:00Z")
        );
    }
}
