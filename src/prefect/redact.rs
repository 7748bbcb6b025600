//! Values that came from secrets (a Secret block's `value`, any block field Prefect marks secret, and Prefect
//! variables, which teams use for tokens too) never reach a diff. A diff compares what the server has with
//! what the file renders to: the new side holds today's secret, the old side the previous one, which flowship
//! cannot know. So redaction goes by place, not only by value: every JSON path whose new string contains a
//! secret is `<redacted>` on both sides, and any string on either side that contains one is too.

use serde_json::Value;

pub const REDACTED: &str = "<redacted>";

/// The secret values of a block document: the string leaves under each of its schema's secret fields
/// (`secret_fields`, dotted, `*` for any key; Prefect writes them for SecretStr/SecretDict fields), and under
/// properties marked `format: password` or `writeOnly`. A Secret block's `value` is always secret.
pub fn block_secrets(block_type: &str, data: &Value, schema_fields: &Value) -> Vec<String> {
    let mut paths: Vec<String> = schema_fields["secret_fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    if let Some(props) = schema_fields["properties"].as_object() {
        for (k, p) in props {
            if p["format"] == "password" || p["writeOnly"] == true {
                paths.push(k.clone());
            }
        }
    }
    if block_type == "secret" {
        paths.push("value".into());
    }
    let mut out = Vec::new();
    for p in paths {
        let segs: Vec<&str> = p.split('.').collect();
        collect_at(data, &segs, &mut out);
    }
    out.retain(|s| !s.is_empty());
    out.sort();
    out.dedup();
    out
}

fn collect_at(v: &Value, segs: &[&str], out: &mut Vec<String>) {
    match segs.split_first() {
        None => strings(v, out),
        Some((&"*", rest)) => match v {
            Value::Object(m) => m.values().for_each(|c| collect_at(c, rest, out)),
            Value::Array(a) => a.iter().for_each(|c| collect_at(c, rest, out)),
            _ => {}
        },
        Some((seg, rest)) => {
            if let Some(c) = v.get(*seg) {
                collect_at(c, rest, out);
            }
        }
    }
}

/// Every string leaf (numbers too: a numeric secret is still a secret).
pub fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|c| strings(c, out)),
        Value::Object(m) => m.values().for_each(|c| strings(c, out)),
        _ => {}
    }
}

/// Does `s` hold a secret? Short secrets only by equality (a 2-character secret would match everywhere).
fn holds(s: &str, secrets: &[String]) -> bool {
    secrets
        .iter()
        .any(|x| s == x || (x.len() >= 4 && s.contains(x.as_str())))
}

/// Redact `old` and `new` of one diff entry (see the module comment).
pub fn redact_pair(old: &mut Value, new: &mut Value, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    let mut tainted = Vec::new();
    find(new, &mut Vec::new(), secrets, &mut tainted);
    for path in &tainted {
        for side in [&mut *old, &mut *new] {
            if let Some(slot) = at_mut(side, path) {
                *slot = Value::String(REDACTED.into());
            }
        }
    }
    scrub(old, secrets);
    scrub(new, secrets);
}

fn find(v: &Value, here: &mut Vec<String>, secrets: &[String], out: &mut Vec<Vec<String>>) {
    match v {
        Value::String(_) | Value::Number(_) => {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if holds(&text, secrets) {
                out.push(here.clone());
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                here.push(i.to_string());
                find(c, here, secrets, out);
                here.pop();
            }
        }
        Value::Object(m) => {
            for (k, c) in m {
                here.push(k.clone());
                find(c, here, secrets, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut node = v;
    for seg in path {
        node = match node {
            Value::Object(m) => m.get_mut(seg)?,
            Value::Array(a) => a.get_mut(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Any leaf holding a secret becomes `<redacted>`.
pub fn scrub(v: &mut Value, secrets: &[String]) {
    match v {
        Value::String(s) if holds(s, secrets) => *v = Value::String(REDACTED.into()),
        Value::Number(n) if holds(&n.to_string(), secrets) => *v = Value::String(REDACTED.into()),
        Value::Array(a) => a.iter_mut().for_each(|c| scrub(c, secrets)),
        Value::Object(m) => m.values_mut().for_each(|c| scrub(c, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_secret_is_redacted_on_both_sides() {
        let secrets = vec!["new-secret-value".to_string()];
        let mut old = json!({"env": {"TOKEN": "old-secret-value", "LEVEL": "info"}});
        let mut new = json!({"env": {"TOKEN": "new-secret-value", "LEVEL": "debug"}});
        redact_pair(&mut old, &mut new, &secrets);
        assert_eq!(
            old,
            json!({"env": {"TOKEN": "<redacted>", "LEVEL": "info"}})
        );
        assert_eq!(
            new,
            json!({"env": {"TOKEN": "<redacted>", "LEVEL": "debug"}})
        );
    }

    #[test]
    fn secrets_inside_strings_and_short_ones() {
        let secrets = vec!["hunter2-xyz".to_string(), "7".to_string()];
        let mut v = json!({"url": "https://u:hunter2-xyz@h/", "n": 7, "m": "170"});
        scrub(&mut v, &secrets);
        assert_eq!(
            v,
            json!({"url": "<redacted>", "n": "<redacted>", "m": "170"})
        );
    }

    #[test]
    fn block_secret_fields() {
        let data = json!({"username": "u", "password": "p4ss", "extra": {"a": {"token": "t1"}, "b": {"token": "t2"}}});
        let fields = json!({"secret_fields": ["password", "extra.*.token"], "properties": {}});
        assert_eq!(
            block_secrets("custom", &data, &fields),
            vec!["p4ss", "t1", "t2"]
        );
        let fields = json!({"properties": {"key": {"type": "string", "format": "password", "writeOnly": true}}});
        assert_eq!(
            block_secrets("x", &json!({"key": "k3y"}), &fields),
            vec!["k3y"]
        );
        assert_eq!(
            block_secrets("secret", &json!({"value": "v"}), &json!({})),
            vec!["v"]
        );
    }
}
