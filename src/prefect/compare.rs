//! What the server has for a deployment against what the file wants, field by field, knowing where the
//! server normalises (schedules, concurrency limits, numbers).

use serde::Serialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Serialize, Clone)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// Field-level differences between the server's deployment and what the file wants.
pub fn diff(existing: &Value, wanted: &Map<String, Value>) -> Vec<FieldChange> {
    let mut out = Vec::new();
    for (field, want) in wanted {
        let have = match field.as_str() {
            // `concurrency_limit: 1` comes back as a global concurrency limit object.
            "concurrency_limit" => existing["global_concurrency_limit"]["limit"].clone(),
            // Not part of the read model: the server keeps it, nothing to compare.
            "version_info" if existing.get("version_info").is_none() => continue,
            // No queue named: the server puts the deployment in the pool's default queue.
            "work_queue_name" if want.is_null() => continue,
            _ => existing.get(field).cloned().unwrap_or(Value::Null),
        };
        let equal = match field.as_str() {
            "schedules" => same_schedules(&have, want),
            _ => same(&have, want),
        };
        if !equal {
            let old = if field == "schedules" {
                shown_schedules(&have)
            } else {
                have
            };
            out.push(FieldChange {
                field: field.clone(),
                old,
                new: want.clone(),
            });
        }
    }
    out
}

/// Schedules as the server stores them: it fills defaults (`day_or`, `anchor_date`, `timezone`), injects
/// `DTSTART` into rrules and writes intervals as floats. Compare what the file says.
fn same_schedules(have: &Value, want: &Value) -> bool {
    let (Some(h), Some(w)) = (have.as_array(), want.as_array()) else {
        return same(have, want);
    };
    h.len() == w.len()
        && h.iter().zip(w).all(|(h, w)| {
            let hs = &h["schedule"];
            w["schedule"].as_object().is_some_and(|ws| {
                ws.iter().all(|(k, v)| match k.as_str() {
                    "rrule" => hs[k]
                        .as_str()
                        .zip(v.as_str())
                        .is_some_and(|(a, b)| a == b || a.ends_with(&format!("\n{b}"))),
                    "anchor_date" => hs[k]
                        .as_str()
                        .zip(v.as_str())
                        .is_some_and(|(a, b)| norm_date(a) == norm_date(b)),
                    _ => same(&hs[k], v),
                })
            }) && same(&h["active"], &w["active"])
                && same(&h["parameters"], &w["parameters"])
                && (w.get("slug").is_none() || same(&h["slug"], &w["slug"]))
        })
}

/// The server's schedules as the file would write them (no ids, timestamps or owner), for diffs.
fn shown_schedules(have: &Value) -> Value {
    let Some(list) = have.as_array() else {
        return have.clone();
    };
    Value::Array(
        list.iter()
            .map(|s| {
                let mut o = json!({"schedule": s["schedule"], "active": s["active"], "parameters": s["parameters"]});
                if !s["slug"].is_null() {
                    o["slug"] = s["slug"].clone();
                }
                o
            })
            .collect(),
    )
}

fn norm_date(s: &str) -> &str {
    s.trim_end_matches('Z').trim_end_matches("+00:00")
}

/// JSON equality with numbers compared by value (`3600` == `3600.0`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Every key of `want` is in `have` with the same value (the server adds defaults).
pub fn subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|x| subset(v, x))),
        _ => same(want, have),
    }
}
