//! SLSA provenance of a built image, as an in-toto v1 statement: what was built (the image by digest),
//! from what (the commit, the base by digest, the requirements by hash), by whom (flowship and its version,
//! the installer and its version) and where (the pipeline and the job). Attached as an OCI referrer of the
//! image (see `ops::image::attest`). The statement is deterministic: the same build, the same bytes.

use serde_json::{Value, json};

pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What kind of build this is: flowship's daemonless one (base + dependency layer + code layer).
pub const BUILD_TYPE: &str = "urn:flowship:build:v1";

/// Everything the statement says besides the subject.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `CI_PROJECT_URL`, `CI_COMMIT_SHA`, `CI_COMMIT_REF_NAME`.
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub git_ref: Option<String>,
    /// `CI_PIPELINE_URL`, `CI_JOB_URL`.
    pub pipeline_url: Option<String>,
    pub job_url: Option<String>,
    /// The base as named, and by digest (the platform image's, per platform).
    pub base: String,
    pub base_digests: Vec<(String, String)>,
    /// SHA-256 of what the dependency install reads (the requirements and the files they include).
    pub requirements_sha256: Option<String>,
    /// `uv 0.13.9` / `pip 25.1`.
    pub installer: Option<String>,
    pub python: Option<String>,
    /// `os/arch` of each image.
    pub platforms: Vec<String>,
    /// What a rebuild needs to make the same bytes (`verify --rebuild`).
    pub build: BuildParameters,
}

/// The build's inputs besides the checkout: paths as given (relative to the checkout, or inside the
/// context), the resolved working directory, the tags (a label holds the first) and the layer timestamp.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct BuildParameters {
    pub context: String,
    pub requirements: Option<String>,
    pub workdir: String,
    pub python_version: Option<String>,
    pub tags: Vec<String>,
    pub source_date_epoch: u64,
    /// `image.env` as `KEY=VALUE` (absent from provenance written before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
}

fn sha256_of(digest: &str) -> Value {
    match digest.split_once(':') {
        Some((alg, hex)) => json!({ alg: hex }),
        None => json!({}),
    }
}

/// The statement for the image `repository@digest`.
pub fn statement(repository: &str, digest: &str, f: &Facts) -> Vec<u8> {
    let mut deps = Vec::new();
    if let (Some(repo), Some(commit)) = (&f.repository, &f.commit) {
        let mut d = json!({"uri": format!("git+{repo}"), "digest": {"gitCommit": commit}});
        if let Some(r) = &f.git_ref {
            d["annotations"] = json!({"ref": r});
        }
        deps.push(d);
    }
    for (platform, base_digest) in &f.base_digests {
        deps.push(json!({
            "name": "base",
            "uri": format!("oci://{}", f.base),
            "digest": sha256_of(base_digest),
            "annotations": {"platform": platform},
        }));
    }
    if let Some(h) = &f.requirements_sha256 {
        deps.push(json!({"name": "requirements", "digest": {"sha256": h}}));
    }
    let mut builder_version = json!({"flowship": env!("CARGO_PKG_VERSION")});
    if let Some(i) = &f.installer {
        builder_version["installer"] = json!(i);
    }
    let v = json!({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": repository, "digest": sha256_of(digest)}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "source": {"repository": f.repository, "commit": f.commit, "ref": f.git_ref},
                    "base": f.base,
                    "platforms": f.platforms,
                    "build": f.build,
                },
                "internalParameters": {"installer": f.installer, "python": f.python},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": f.pipeline_url.clone().unwrap_or_else(|| "urn:flowship:local".into()),
                    "version": builder_version,
                },
                "metadata": {"invocationId": f.job_url},
            },
        },
    });
    serde_json::to_vec_pretty(&v).expect("JSON")
}

/// What a statement says it is about, checked: an in-toto statement of SLSA provenance whose subjects
/// include `digest`. `Ok` carries the builder and the source commit, for the report.
pub fn check(bytes: &[u8], digest: &str) -> Result<(String, Option<String>), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("is not JSON: {e}"))?;
    if v["_type"] != STATEMENT_TYPE {
        return Err(format!("is not an in-toto v1 statement ({})", v["_type"]));
    }
    if v["predicateType"] != PREDICATE_TYPE {
        return Err(format!(
            "is not SLSA v1 provenance ({})",
            v["predicateType"]
        ));
    }
    let (alg, hex) = digest.split_once(':').unwrap_or(("", ""));
    let about = v["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["digest"][alg] == hex);
    if !about {
        return Err(format!(
            "is about another image (its subjects do not name {digest})"
        ));
    }
    let run = &v["predicate"]["runDetails"]["builder"];
    let builder = format!(
        "flowship {}",
        run["version"]["flowship"].as_str().unwrap_or("?")
    );
    let commit = v["predicate"]["buildDefinition"]["externalParameters"]["source"]["commit"]
        .as_str()
        .map(str::to_string);
    Ok((builder, commit))
}

/// What a rebuild takes from a statement: the base as named, the platforms, the source and the parameters.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub base: String,
    pub platforms: Vec<String>,
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub build: BuildParameters,
}

/// The statement's subject name and what a rebuild needs, or why it cannot be rebuilt from it.
pub fn recorded(bytes: &[u8]) -> Result<(String, Recorded), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("is not JSON: {e}"))?;
    let p = &v["predicate"]["buildDefinition"]["externalParameters"];
    if v["predicate"]["buildDefinition"]["buildType"] != BUILD_TYPE {
        return Err("was not made by a flowship build".into());
    }
    let build: BuildParameters = serde_json::from_value(p["build"].clone()).map_err(|_| {
        "records no build parameters (made by a flowship before `--rebuild`)".to_string()
    })?;
    let text = |v: &Value| v.as_str().map(str::to_string);
    Ok((
        text(&v["subject"][0]["name"]).unwrap_or_default(),
        Recorded {
            base: text(&p["base"]).ok_or("records no base")?,
            platforms: p["platforms"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(text)
                .collect(),
            repository: text(&p["source"]["repository"]),
            commit: text(&p["source"]["commit"]),
            build,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_the_image_its_sources_and_its_builder() {
        let f = Facts {
            repository: Some("https://gitlab.example.com/g/p".into()),
            commit: Some("abc123".into()),
            git_ref: Some("main".into()),
            pipeline_url: Some("https://gitlab.example.com/g/p/-/pipelines/1".into()),
            job_url: Some("https://gitlab.example.com/g/p/-/jobs/2".into()),
            base: "r.example.com/base/python:3.12".into(),
            base_digests: vec![("linux/amd64".into(), "sha256:bb".into())],
            requirements_sha256: Some("cc".into()),
            installer: Some("uv 0.13.9".into()),
            python: Some("3.12".into()),
            platforms: vec!["linux/amd64".into()],
            build: BuildParameters {
                context: ".".into(),
                tags: vec!["1.0".into()],
                ..BuildParameters::default()
            },
        };
        let s = statement("r.example.com/flows/etl", "sha256:aa", &f);
        assert_eq!(s, statement("r.example.com/flows/etl", "sha256:aa", &f));
        let v: Value = serde_json::from_slice(&s).unwrap();
        assert_eq!(v["subject"][0]["digest"]["sha256"], "aa");
        let deps = &v["predicate"]["buildDefinition"]["resolvedDependencies"];
        assert_eq!(deps[0]["digest"]["gitCommit"], "abc123");
        assert_eq!(deps[1]["digest"]["sha256"], "bb");
        assert_eq!(deps[2]["digest"]["sha256"], "cc");
        assert_eq!(
            v["predicate"]["runDetails"]["builder"]["version"]["installer"],
            "uv 0.13.9"
        );
        assert_eq!(
            v["predicate"]["runDetails"]["metadata"]["invocationId"],
            "https://gitlab.example.com/g/p/-/jobs/2"
        );
        let (builder, commit) = check(&s, "sha256:aa").unwrap();
        assert_eq!(builder, format!("flowship {}", env!("CARGO_PKG_VERSION")));
        assert_eq!(commit.as_deref(), Some("abc123"));
        assert!(
            check(&s, "sha256:dd")
                .unwrap_err()
                .contains("another image")
        );
        assert!(check(b"{}", "sha256:aa").is_err());
        let (_, recorded) = recorded(&s).unwrap();
        assert_eq!(recorded.build, f.build);
        assert_eq!(recorded.base, f.base);
        assert_eq!(recorded.commit.as_deref(), Some("abc123"));
    }
}
