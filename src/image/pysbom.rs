//! The SBOM of a flow image's Python packages: CycloneDX 1.5 JSON of what the installer resolved (names
//! and versions read from the installed `*.dist-info`), with the hashes the requirements pin where they pin
//! them (`--hash=sha256:...`, as `uv export` writes), and the base image by digest. Deterministic: the
//! same build gives the same bytes (so a re-run finds the referrer in place).

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// One installed distribution.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
}

/// PEP 503's normal form: `Foo_Bar.baz` → `foo-bar-baz`.
pub fn normalize(name: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The distributions installed into `site` (its `*.dist-info/METADATA`), in name order.
pub fn installed(site: &Path) -> Vec<Package> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(site).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.extension().is_none_or(|e| e != "dist-info") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(p.join("METADATA")) else {
            continue;
        };
        // The headers end at the first blank line (the description follows).
        let header = |key: &str| {
            text.lines()
                .take_while(|l| !l.is_empty())
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        };
        if let (Some(name), Some(version)) = (header("Name:"), header("Version:")) {
            out.insert(Package { name, version });
        }
    }
    out.into_iter().collect()
}

/// The hashes a requirements file pins, by normalized `name==version`.
pub fn pinned_hashes(requirements: &str) -> BTreeMap<(String, String), Vec<String>> {
    let joined = requirements.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in joined.lines() {
        let line = line.split(" #").next().unwrap_or("");
        let mut words = line.split_whitespace();
        let Some((name, version)) = words.next().and_then(|w| w.split_once("==")) else {
            continue;
        };
        // `name[extra]==1.0 ; python_version >= "3"`: the name before any extras, the version before `;`.
        let name = normalize(name.split('[').next().unwrap_or(name));
        let version = version
            .split(';')
            .next()
            .unwrap_or(version)
            .trim()
            .to_string();
        let hashes: Vec<String> = words
            .filter_map(|w| w.strip_prefix("--hash=sha256:"))
            .map(str::to_string)
            .collect();
        if !hashes.is_empty() {
            out.entry((name, version)).or_default().extend(hashes);
        }
    }
    out
}

/// What the SBOM describes besides the packages.
pub struct Subject<'a> {
    /// `registry/repository`, and the image's digest.
    pub repository: &'a str,
    pub digest: &'a str,
    /// The base as named, and its digest.
    pub base: &'a str,
    pub base_digest: Option<&'a str>,
    pub created: &'a str,
}

fn purl(p: &Package) -> String {
    format!("pkg:pypi/{}@{}", normalize(&p.name), p.version)
}

/// The CycloneDX document.
pub fn document(s: &Subject<'_>, packages: &[Package], requirements: Option<&str>) -> Vec<u8> {
    let hashes = requirements.map(pinned_hashes).unwrap_or_default();
    let mut components: Vec<Value> = packages
        .iter()
        .map(|p| {
            let mut c = json!({
                "type": "library",
                "bom-ref": purl(p),
                "name": p.name,
                "version": p.version,
                "purl": purl(p),
            });
            if let Some(h) = hashes.get(&(normalize(&p.name), p.version.clone())) {
                c["hashes"] = json!(
                    h.iter()
                        .map(|x| json!({"alg": "SHA-256", "content": x}))
                        .collect::<Vec<_>>()
                );
            }
            c
        })
        .collect();
    let mut base = json!({"type": "container", "bom-ref": "base", "name": s.base});
    if let Some(d) = s.base_digest {
        base["hashes"] = json!([{"alg": "SHA-256", "content": d.trim_start_matches("sha256:")}]);
        base["purl"] = json!(format!(
            "pkg:oci/{}@{}",
            s.base
                .rsplit('/')
                .next()
                .unwrap_or(s.base)
                .split(':')
                .next()
                .unwrap_or(""),
            d.replace(':', "%3A")
        ));
    }
    components.push(base);
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "serialNumber": serial(s, packages),
        "metadata": {
            "timestamp": s.created,
            "tools": {"components": [{"type": "application", "name": "flowship", "version": env!("CARGO_PKG_VERSION")}]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": s.repository,
                "hashes": [{"alg": "SHA-256", "content": s.digest.trim_start_matches("sha256:")}],
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": ["base"]}],
    });
    serde_json::to_vec_pretty(&doc).expect("JSON")
}

/// A UUID from the content (a serial number must be one; this one is reproducible).
fn serial(s: &Subject<'_>, packages: &[Package]) -> String {
    let mut seed = format!("{}@{}", s.repository, s.digest);
    for p in packages {
        seed.push_str(&format!(" {}=={}", p.name, p.version));
    }
    let h = crate::registry::digest::of(seed.as_bytes());
    let x = &h["sha256:".len()..];
    format!(
        "urn:uuid:{}-{}-5{}-8{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalize_as_pep_503_says() {
        assert_eq!(normalize("Foo_Bar.baz"), "foo-bar-baz");
        assert_eq!(normalize("prefect"), "prefect");
        assert_eq!(normalize("a--b"), "a-b");
    }

    #[test]
    fn installed_packages_are_read_from_dist_info() {
        let d = tempfile::tempdir().unwrap();
        for (dir, meta) in [
            (
                "Requests-2.32.3.dist-info",
                "Metadata-Version: 2.1\nName: Requests\nVersion: 2.32.3\n\nVersion: 9\n",
            ),
            ("six-1.16.0.dist-info", "Name: six\nVersion: 1.16.0\n"),
            ("six", "not a dist-info"),
        ] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
            std::fs::write(d.path().join(dir).join("METADATA"), meta).unwrap();
        }
        assert_eq!(
            installed(d.path()),
            vec![
                Package {
                    name: "Requests".into(),
                    version: "2.32.3".into()
                },
                Package {
                    name: "six".into(),
                    version: "1.16.0".into()
                },
            ]
        );
    }

    #[test]
    fn the_sbom_lists_packages_with_pinned_hashes_and_the_base_by_digest() {
        let req = "requests==2.32.3 \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\nsix==1.16.0  # no hash\n";
        let packages = vec![
            Package {
                name: "Requests".into(),
                version: "2.32.3".into(),
            },
            Package {
                name: "six".into(),
                version: "1.16.0".into(),
            },
        ];
        let s = Subject {
            repository: "r.example.com/flows/etl",
            digest: "sha256:11",
            base: "r.example.com/base/python:3.12",
            base_digest: Some("sha256:22"),
            created: "2026-01-01T00:00:00Z",
        };
        let doc = document(&s, &packages, Some(req));
        assert_eq!(doc, document(&s, &packages, Some(req)));
        let v: Value = serde_json::from_slice(&doc).unwrap();
        let c = v["components"].as_array().unwrap();
        assert_eq!(c[0]["purl"], "pkg:pypi/requests@2.32.3");
        assert_eq!(c[0]["hashes"][1]["content"], "bbb");
        assert!(c[1].get("hashes").is_none());
        assert_eq!(c[2]["type"], "container");
        assert_eq!(c[2]["hashes"][0]["content"], "22");
        assert_eq!(v["metadata"]["component"]["hashes"][0]["content"], "11");
    }
}
