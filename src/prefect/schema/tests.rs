//! Unit tests of `schema`, and its parity with Prefect's own `parameter_schema` over the corpus.

use super::*;

#[test]
fn flow_name_description_and_schema() {
    let src = "from prefect import flow\n\n@flow(name=\"etl-daily\")\ndef etl(day: str, n: int = 3):\n    \"\"\"Load.\n\n    Args:\n        day: the day\n            to load\n    \"\"\"\n";
    let f = flow_info(src, "etl").unwrap();
    assert_eq!(f.name, "etl-daily");
    assert_eq!(
        f.description.as_deref(),
        Some("Load.\n\nArgs:\n    day: the day\n        to load")
    );
    assert_eq!(
        f.schema["properties"]["day"]["description"],
        "the day\nto load"
    );
    assert_eq!(f.schema["required"], json!(["day"]));
    assert_eq!(
        flow_info("def x(): pass", "x"),
        Err(SchemaError::NotAFlow("x".into()))
    );
    assert!(matches!(
        flow_info("def (", "x"),
        Err(SchemaError::Syntax(_))
    ));
}

/// genomehubs/data's `flows/lib/conditional_import.py`: `flow` is a stand-in under `if skip_prefect():` and
/// Prefect's under `else:` (or under `try:`, with the stand-in in `except ImportError:`). Prefect is
/// installed where flows are deployed and run, so the import is the binding that counts.
#[test]
fn a_flow_decorator_bound_by_either_branch_of_an_if_or_a_try() {
    let stand_in = "def flow(*_, **__):\n        return lambda x: x\n";
    let flow = "@flow(name=\"etl\")\ndef etl(n: int = 1):\n    pass\n";
    let if_else = format!(
        "import os\n\nif os.getenv(\"SKIP_PREFECT\"):\n    {stand_in}else:\n    from prefect import flow\n\n{flow}"
    );
    let try_except =
        format!("try:\n    from prefect import flow\nexcept ImportError:\n    {stand_in}\n{flow}");
    for src in [if_else, try_except] {
        assert_eq!(
            flow_info(&src, "etl").map(|f| f.name),
            Ok("etl".into()),
            "{src}"
        );
    }
    // With no import in any branch, the stand-in is what `flow` is: not Prefect's.
    let alone = format!("if True:\n    {stand_in}\n{flow}");
    assert_eq!(
        flow_info(&alone, "etl").map(|f| f.name),
        Err(SchemaError::NotAFlow("etl".into()))
    );
}

/// prefeitura-rio's `Constants.DB_HOST.value` defaults, and domoench/prefect-df's `ModelFeatureFlags()`
/// default instance: Prefect's schema carries both defaults.
#[test]
fn enum_member_values_and_default_model_instances_are_defaults() {
    let src = "from enum import Enum\nfrom pydantic import BaseModel, Field\nfrom prefect import flow\n\nclass C(Enum):\n    HOST = \"db\"\n    PORT = 5432\n\nclass Flags(BaseModel):\n    lag: bool = False\n    days: int = Field(3, ge=1)\n    mode: str = C.HOST.value\n\nclass Needs(BaseModel):\n    x: int\n\n@flow\ndef f(host: str = C.HOST.value, port: int = C.PORT.value, name: str = C.PORT.name, flags: Flags = Flags(), other: Flags = Flags(lag=True), n: Needs = Needs(x=1), m: Needs = Needs()):\n    pass\n";
    let p = flow_info(src, "f").unwrap().schema["properties"].clone();
    assert_eq!(p["host"]["default"], "db");
    assert_eq!(p["port"]["default"], 5432);
    assert_eq!(p["name"]["default"], "PORT");
    assert_eq!(
        p["flags"]["default"],
        json!({"lag": false, "days": 3, "mode": "db"})
    );
    assert_eq!(p["other"]["default"]["lag"], true);
    assert_eq!(p["n"]["default"], json!({"x": 1}));
    // A field without a default the call does not give: unknown, left out (never guessed).
    assert!(p["m"].get("default").is_none());
}

/// Every flow of the corpus against what Prefect 3.9.1's own `parameter_schema` computed for it
/// (fixtures/schema/expected.json; the integration suite re-runs Prefect to prove the file is current).
#[test]
fn corpus_matches_prefect() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema");
    let source = std::fs::read_to_string(dir.join("corpus.py")).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    for (function, want) in expected.as_object().unwrap() {
        let got = flow_info(&source, function).unwrap();
        if function == "computed_enum" {
            // Documented: an Enum whose values are computed is "any" (looser than Prefect, never stricter).
            assert!(want["schema"]["properties"]["c"]["$ref"].is_string());
            assert_eq!(
                got.schema["properties"]["c"],
                json!({"title": "c", "position": 0})
            );
            assert!(got.schema.get("definitions").is_none());
            continue;
        }
        let mut want_schema = want["schema"].clone();
        // Prefect's `model_dump_for_openapi` adds an empty `definitions`; the server and the create payload
        // (`exclude_unset`) do not carry it.
        if want_schema["definitions"] == json!({}) {
            want_schema.as_object_mut().unwrap().remove("definitions");
        }
        if got.schema != want_schema {
            failures.push(format!(
                "{function}:\n  want {want_schema}\n  got  {}",
                got.schema
            ));
        }
        if got.name != want["flow_name"] {
            failures.push(format!(
                "{function}: name {} != {}",
                got.name, want["flow_name"]
            ));
        }
        if got.description.as_deref() != want["description"].as_str() {
            failures.push(format!(
                "{function}: description {:?} != {}",
                got.description, want["description"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Random signatures (`ci/schema-fuzz.py`) against Prefect's own `parameter_schema`: a fixed-seed set in
/// fixtures/schema/generated/, or a fresh one in `FLOWSHIP_SCHEMA_CASES` (ci/test makes one per run).
#[test]
fn generated_signatures_match_prefect() {
    let dir = std::env::var("FLOWSHIP_SCHEMA_CASES").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/schema/generated").into()
    });
    let dir = std::path::Path::new(&dir);
    let source = std::fs::read_to_string(dir.join("flows.py")).unwrap();
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut failures = Vec::new();
    let cases = expected.as_object().unwrap();
    assert!(!cases.is_empty());
    for (function, want) in cases {
        let got = flow_info(&source, function).unwrap();
        let mut want_schema = want["schema"].clone();
        if want_schema["definitions"] == json!({}) {
            want_schema.as_object_mut().unwrap().remove("definitions");
        }
        if canonical(&got.schema) != canonical(&want_schema) {
            failures.push(format!(
                "{function}:\n  want {want_schema}\n  got  {}",
                got.schema
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} generated flows differ from Prefect ({}):\n{}",
        failures.len(),
        cases.len(),
        dir.display(),
        failures
            .iter()
            .take(4)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `anyOf` and `enum` members sorted: Python caches `Union`/`Literal` types by their set of members, so a
/// permutation seen earlier in a module dictates a later one's order (flowship keeps each source's order).
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object({
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| (k, &m[k]))
                .map(|(k, x)| {
                    let mut x = canonical(x);
                    if let ("anyOf" | "enum", Value::Array(a)) = (k.as_str(), &mut x) {
                        a.sort_by_key(|e| e.to_string());
                    }
                    (k.clone(), x)
                })
                .collect()
        }),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}
