//! The new image config: the base's, plus what the flow needs to run.

use super::Input;
use crate::image::deps;
use crate::registry::blobs::Descriptor;
use serde_json::{Map, Value, json};

/// The base's Python `major.minor`, from the `PYTHON_VERSION` the official images set.
pub(super) fn python_of(config: &Value) -> Option<String> {
    let v = env_of(config, "PYTHON_VERSION")?;
    let mut parts = v.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

/// A variable of the base's environment (`config.Env`).
pub(super) fn env_of(config: &Value, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    config["config"]["Env"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .find_map(|e| e.strip_prefix(&prefix).map(str::to_string))
}

/// The base's config plus what the flow needs: the dependencies on `PYTHONPATH` (and their scripts on
/// `PATH`), the working directory, labels, the new layers' diff_ids and history, one fixed timestamp.
pub(super) fn edit_config(
    config: &mut Value,
    input: &Input,
    new_layers: &[(Descriptor, String, &str)],
) {
    let created = crate::image::time::iso8601(input.mtime);
    let Some(obj) = config.as_object_mut() else {
        return; // checked by the caller: configs that are not objects are refused before this
    };
    obj.insert("created".into(), json!(created));
    for k in [
        "container",
        "container_config",
        "docker_version",
        "hostname",
    ] {
        obj.remove(k);
    }
    // `"config": null` (scratch-built images) or anything else that is not an object starts afresh.
    let cfg = obj.entry("config").or_insert_with(|| json!({}));
    if !cfg.is_object() {
        *cfg = json!({});
    }
    let cfg = cfg.as_object_mut().expect("made an object above");
    let mut env: Vec<String> = cfg
        .get("Env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let site = format!("/{}", deps::SITE);
    set_env(&mut env, "PYTHONPATH", |old| match old {
        Some(o) if !o.is_empty() => format!("{site}:{o}"),
        _ => site.clone(),
    });
    set_env(&mut env, "PATH", |old| {
        format!(
            "{site}/bin:{}",
            old.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        )
    });
    for (k, v) in &input.env {
        match k.as_str() {
            // flowship's own entries stay first: the dependencies must stay importable and their scripts found.
            "PYTHONPATH" | "PATH" => set_env(&mut env, k, |old| match old {
                Some(o) => {
                    let (ours, theirs) = o.split_once(':').unwrap_or((o, ""));
                    [ours, v.as_str(), theirs]
                        .iter()
                        .filter(|p| !p.is_empty())
                        .copied()
                        .collect::<Vec<_>>()
                        .join(":")
                }
                None => v.clone(),
            }),
            _ => set_env(&mut env, k, |_| v.clone()),
        }
    }
    cfg.insert("Env".into(), json!(env));
    cfg.insert("WorkingDir".into(), json!(input.workdir));
    let mut labels: Map<String, Value> = cfg
        .get("Labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &input.labels {
        labels.insert(k.clone(), json!(v));
    }
    labels.insert("org.opencontainers.image.created".into(), json!(created));
    cfg.insert("Labels".into(), Value::Object(labels));
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    if !rootfs.is_object() {
        *rootfs = json!({"type": "layers", "diff_ids": []});
    }
    if let Some(ids) = rootfs["diff_ids"].as_array_mut() {
        ids.extend(new_layers.iter().map(|(_, diff, _)| json!(diff)));
    }
    if let Some(history) = obj.get_mut("history").and_then(Value::as_array_mut) {
        for (_, _, what) in new_layers {
            history.push(json!({"created": created, "created_by": format!("flowship build: {what}"), "comment": "flowship"}));
        }
    }
}

fn set_env(env: &mut Vec<String>, name: &str, value: impl FnOnce(Option<&str>) -> String) {
    let prefix = format!("{name}=");
    let pos = env.iter().position(|e| e.starts_with(&prefix));
    let new = format!("{prefix}{}", value(pos.map(|i| &env[i][prefix.len()..])));
    match pos {
        Some(i) => env[i] = new,
        None => env.push(new),
    }
}
