//! Prefect's templating (`utilities/templating`), not Jinja: `{{ name }}` placeholders matched by
//! `{{\s*([\w\.\-\[\]$]+)\s*}}`, of four kinds: step outputs (`{{ build-image.image }}`, `{{ image }}`),
//! environment (`{{ $CI_COMMIT_SHA }}`), `{{ prefect.variables.NAME }}` and
//! `{{ prefect.blocks.TYPE.NAME[.path] }}`. A placeholder that is the whole string is replaced by the typed
//! value; inline ones by Python's `str()` of it. The rules for unresolved placeholders (dropped key, empty
//! string, or kept literally) follow `apply_values`, `resolve_variables` and
//! `resolve_block_document_references` exactly; each caller passes the mode Prefect's deploy uses at that
//! step. Variables and blocks are fetched beforehand (`references`), so resolution itself is synchronous.

use regex::Regex;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\{\{\s*([\w\.\-\[\]$]+)\s*\}\})").expect("valid"));

const BLOCKS: &str = "prefect.blocks.";
const VARIABLES: &str = "prefect.variables.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standard,
    Env,
    Variable,
    Block,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Placeholder {
    full: String,
    name: String,
    kind: Kind,
}

/// The distinct placeholders of a string (Prefect collects them in a set).
fn placeholders(s: &str) -> Vec<Placeholder> {
    let mut out: Vec<Placeholder> = Vec::new();
    for c in PLACEHOLDER.captures_iter(s) {
        let full = c[1].to_string();
        let name = c[2].to_string();
        let kind = if name.starts_with(BLOCKS) {
            Kind::Block
        } else if name.starts_with(VARIABLES) {
            Kind::Variable
        } else if name.starts_with('$') {
            Kind::Env
        } else {
            Kind::Standard
        };
        if !out.iter().any(|p| p.full == full) {
            out.push(Placeholder { full, name, kind });
        }
    }
    out
}

/// The values the `{{ $VAR }}` placeholders of `v` stand for (those set): a diff treats them as it treats
/// variables and block secrets, since a team's environment holds its tokens.
pub fn env_values(v: &Value, env: &BTreeMap<String, String>, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for p in placeholders(s).into_iter().filter(|p| p.kind == Kind::Env) {
                if let Some(value) = env.get(&p.name[1..]).filter(|v| !v.is_empty()) {
                    out.push(value.clone());
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| env_values(i, env, out)),
        Value::Object(map) => map.values().for_each(|i| env_values(i, env, out)),
        _ => {}
    }
}

/// The variables of the `{{ $VAR }}` placeholders still in `v` (after resolution: those unset), which Prefect
/// registers as they are written.
pub fn unset_env(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::String(s) => {
            for p in placeholders(s).into_iter().filter(|p| p.kind == Kind::Env) {
                out.insert(p.name[1..].to_string());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| unset_env(i, out)),
        Value::Object(map) => map.values().for_each(|i| unset_env(i, out)),
        _ => {}
    }
}

/// Variables and blocks a template refers to, for fetching before resolution.
#[derive(Debug, Default)]
pub struct References {
    pub variables: BTreeSet<String>,
    /// `(block type slug, document name)`.
    pub blocks: BTreeSet<(String, String)>,
}

impl References {
    pub fn extend(&mut self, other: References) {
        self.variables.extend(other.variables);
        self.blocks.extend(other.blocks);
    }
}

pub fn references(v: &Value, out: &mut References) {
    match v {
        Value::String(s) => {
            for p in placeholders(s) {
                match p.kind {
                    Kind::Variable => {
                        out.variables.insert(p.name[VARIABLES.len()..].to_string());
                    }
                    Kind::Block => {
                        let mut parts = p.name[BLOCKS.len()..].splitn(3, '.');
                        if let (Some(t), Some(n)) = (parts.next(), parts.next()) {
                            out.blocks.insert((t.to_string(), n.to_string()));
                        }
                    }
                    _ => {}
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        Value::Object(map) => map.values().for_each(|i| references(i, out)),
        _ => {}
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("block `{0}` does not exist in Prefect")]
    MissingBlock(String),
    #[error("`{0}`: the block has no value at that path")]
    BlockPath(String),
    #[error("`{0}` is not prefect.blocks.<block-type-slug>.<block-document-name>")]
    BlockFormat(String),
}

/// Replace `{{ prefect.blocks... }}` with block data (`data`: `(type, name)` → the document's `data`, `None`
/// when it does not exist). A single-`value` block (a Secret, a String) stands for that value.
pub fn resolve_blocks(
    v: &Value,
    data: &HashMap<(String, String), Option<Value>>,
) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::String(s) => {
            let ps = placeholders(s);
            if !ps.iter().any(|p| p.kind == Kind::Block) {
                return Ok(v.clone());
            }
            if ps.len() == 1 && ps[0].full == *s {
                return block_value(&ps[0].name, data);
            }
            let mut out = s.clone();
            for p in ps.iter().filter(|p| p.kind == Kind::Block) {
                out = out.replace(&p.full, &py_str(&block_value(&p.name, data)?));
            }
            Value::String(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| resolve_blocks(i, data))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, i) in map {
                out.insert(k.clone(), resolve_blocks(i, data)?);
            }
            Value::Object(out)
        }
        other => other.clone(),
    })
}

fn block_value(
    name: &str,
    data: &HashMap<(String, String), Option<Value>>,
) -> Result<Value, TemplateError> {
    let mut parts = name[BLOCKS.len()..].splitn(3, '.');
    let (Some(t), Some(n)) = (parts.next(), parts.next()) else {
        return Err(TemplateError::BlockFormat(name.into()));
    };
    let path = parts.next();
    let doc = data
        .get(&(t.to_string(), n.to_string()))
        .cloned()
        .flatten()
        .ok_or_else(|| TemplateError::MissingBlock(format!("{t}/{n}")))?;
    let single_value = doc
        .as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key("value"));
    let points_into_value =
        path.is_some_and(|p| p == "value" || p.starts_with("value.") || p.starts_with("value["));
    let base = if single_value && !points_into_value {
        doc["value"].clone()
    } else {
        doc
    };
    match path {
        Some(p) => get_path(&base, p).ok_or_else(|| TemplateError::BlockPath(name.into())),
        None => Ok(base),
    }
}

/// Replace `{{ prefect.variables.NAME }}` (`values`: name → value, `None` when the variable does not exist,
/// which Prefect treats as an empty string).
pub fn resolve_variables(v: &Value, values: &HashMap<String, Option<Value>>) -> Value {
    match v {
        Value::String(s) => {
            let ps = placeholders(s);
            if !ps.iter().any(|p| p.kind == Kind::Variable) {
                return v.clone();
            }
            let lookup =
                |p: &Placeholder| values.get(&p.name[VARIABLES.len()..]).cloned().flatten();
            if ps.len() == 1 && ps[0].full == *s {
                return lookup(&ps[0]).unwrap_or_else(|| Value::String(String::new()));
            }
            let mut out = s.clone();
            for p in ps.iter().filter(|p| p.kind == Kind::Variable) {
                out = out.replace(&p.full, &lookup(p).map(|x| py_str(&x)).unwrap_or_default());
            }
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| resolve_variables(i, values)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, i)| (k.clone(), resolve_variables(i, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Prefect's `apply_values`: `None` is its `NotSet` (the template's only placeholder had no value). Env
/// placeholders always read `env`, whatever `values` holds.
pub fn apply_values(
    v: &Value,
    values: &Value,
    env: &BTreeMap<String, String>,
    remove_notset: bool,
    skip_prefixes: &[&str],
) -> Option<Value> {
    match v {
        Value::String(s) => {
            let mut ps = placeholders(s);
            if ps.is_empty() {
                return Some(v.clone());
            }
            ps.retain(|p| !skip_prefixes.iter().any(|pre| p.name.starts_with(pre)));
            if ps.is_empty() {
                return Some(v.clone());
            }
            if ps.len() == 1 && ps[0].full == *s && ps[0].kind == Kind::Standard {
                return get_path(values, &ps[0].name);
            }
            let mut replacements: HashMap<String, String> = HashMap::new();
            for p in &ps {
                let value = match p.kind {
                    Kind::Standard => get_path(values, &p.name),
                    Kind::Env => env.get(&p.name[1..]).map(|e| Value::String(e.clone())),
                    _ => continue,
                };
                match value {
                    Some(x) => {
                        replacements.insert(p.full.clone(), py_str(&x));
                    }
                    None if remove_notset => {
                        replacements.insert(p.full.clone(), String::new());
                    }
                    None => {}
                }
            }
            // One pass over the original, so inserted values are never themselves templates.
            let out = PLACEHOLDER.replace_all(s, |c: &regex::Captures<'_>| {
                replacements
                    .get(&c[1])
                    .cloned()
                    .unwrap_or_else(|| c[1].to_string())
            });
            Some(Value::String(out.into_owned()))
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for i in items {
                match apply_values(i, values, env, remove_notset, skip_prefixes) {
                    Some(x) => out.push(x),
                    None if !remove_notset => out.push(i.clone()),
                    None => {}
                }
            }
            Some(Value::Array(out))
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, i) in map {
                match apply_values(i, values, env, remove_notset, skip_prefixes) {
                    Some(x) => {
                        out.insert(k.clone(), x);
                    }
                    None if !remove_notset => {
                        out.insert(k.clone(), i.clone());
                    }
                    None => {}
                }
            }
            Some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

/// Prefect's `get_from_dict`: `a.b[0].c`; a dict key is matched exactly first, then as an integer.
pub fn get_path(v: &Value, path: &str) -> Option<Value> {
    let normalized = path.replace('[', ".").replace(']', "");
    let mut cur = v;
    for key in normalized.split('.').filter(|k| !k.is_empty()) {
        cur = match cur {
            Value::Object(m) => m.get(key)?,
            Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur.clone())
}

/// Python's `str()` of a JSON-ish value: strings bare, `True`/`False`/`None`, containers as `repr`.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 1e16 => format!("{f:.1}"),
            (None, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(py_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, x)| format!("'{k}': {}", py_repr(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([("SHA".to_string(), "0123abcd".to_string())])
    }

    #[test]
    fn env_pass_keeps_what_it_cannot_resolve() {
        let t = json!({"a": "{{ $SHA }}", "b": "x-{{ $UNSET }}", "c": "{{ build.image }}", "d": "v{{ $SHA }}-{{ step.tag }}"});
        let got = apply_values(&t, &json!({}), &env(), false, &[]).unwrap();
        assert_eq!(
            got,
            json!({"a": "0123abcd", "b": "x-{{ $UNSET }}", "c": "{{ build.image }}", "d": "v0123abcd-{{ step.tag }}"})
        );
        let mut unset = BTreeSet::new();
        unset_env(&got, &mut unset);
        assert_eq!(unset.into_iter().collect::<Vec<_>>(), ["UNSET"]);
    }

    #[test]
    fn step_pass_types_whole_strings_drops_and_blanks_the_rest() {
        let outputs =
            json!({"build": {"image": "r/x:1", "n": 3}, "image": "r/x:1", "tags": ["a", "b"]});
        let t = json!({"img": "{{ build.image }}", "n": "{{ build.n }}", "gone": "{{ nope }}", "inline": "t={{ tags }} {{ nope }}.", "ctx": "{{ ctx.flow_run.id }}", "env": "{{ $UNSET }}"});
        let got = apply_values(&t, &outputs, &env(), true, &["ctx."]).unwrap();
        assert_eq!(
            got,
            json!({"img": "r/x:1", "n": 3, "inline": "t=['a', 'b'] .", "ctx": "{{ ctx.flow_run.id }}", "env": ""})
        );
    }

    #[test]
    fn variables_and_blocks() {
        let vars = HashMap::from([
            ("pool".to_string(), Some(json!("k8s"))),
            ("n".to_string(), Some(json!(5))),
            ("gone".to_string(), None),
        ]);
        let t = json!({"a": "{{ prefect.variables.pool }}", "b": "{{ prefect.variables.n }}", "c": "x{{ prefect.variables.n }}y", "d": "{{ prefect.variables.gone }}"});
        assert_eq!(
            resolve_variables(&t, &vars),
            json!({"a": "k8s", "b": 5, "c": "x5y", "d": ""})
        );
        let blocks = HashMap::from([
            (
                ("secret".to_string(), "tok".to_string()),
                Some(json!({"value": "s3"})),
            ),
            (
                ("json".to_string(), "cfg".to_string()),
                Some(json!({"value": {"a": [1, 2]}})),
            ),
        ]);
        let t = json!({"s": "{{ prefect.blocks.secret.tok }}", "p": "{{ prefect.blocks.json.cfg.value.a[1] }}", "i": "k={{ prefect.blocks.secret.tok }}"});
        assert_eq!(
            resolve_blocks(&t, &blocks).unwrap(),
            json!({"s": "s3", "p": 2, "i": "k=s3"})
        );
        assert_eq!(
            resolve_blocks(&json!("{{ prefect.blocks.secret.none }}"), &blocks),
            Err(TemplateError::MissingBlock("secret/none".into()))
        );
    }
}
