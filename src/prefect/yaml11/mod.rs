//! `prefect.yaml` as Prefect reads it: PyYAML's `safe_load`, i.e. YAML 1.1. Plain `yes`/`on` are booleans,
//! `0755` is octal, `1_000` an int, `2024-01-01` a date, `<<: *anchor` merges. serde-based YAML crates follow
//! YAML 1.2 (or libyaml's strings) here, so this loader resolves plain scalars itself, from the parser's events,
//! into JSON values (dates and timestamps become their ISO strings, as they do once Prefect sends them).

use nodes::{Ids, KeyId, Node, Pairs};
use saphyr_parser::{Event, Parser, ScalarStyle};
use serde_json::{Number, Value};
use std::collections::HashMap;
use std::rc::Rc;

mod nodes;
mod quirks;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct LoadError {
    pub line: usize,
    pub message: String,
}

enum Frame {
    /// Items, their pairs (when mappings: a list of mappings may be merged), anchor.
    Seq(Vec<Value>, Vec<Option<Rc<Pairs>>>, usize),
    /// Own pairs, the pending key, the merges seen (in order), anchor.
    Map(Pairs, Option<(String, KeyId)>, Vec<Node>, usize),
}

/// How many values aliases may expand to, in all. A real prefect.yaml reuses a few anchored mappings; a file
/// whose aliases nest aliases ("billion laughs") would otherwise grow exponentially in memory.
const MAX_EXPANDED: usize = 100_000;

/// Deepest nesting accepted (the value is dropped recursively; a million `[` must not overflow the stack).
const MAX_DEPTH: usize = 256;

/// Values in `v`, counting `v`.
fn nodes(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(nodes).sum::<usize>(),
        Value::Object(m) => 1 + m.values().map(nodes).sum::<usize>(),
        _ => 1,
    }
}

/// The first document of `text` as JSON, with PyYAML's YAML 1.1 resolution.
pub fn load(text: &str) -> Result<Value, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(line) = quirks::stray_tab(text) {
        return Err(LoadError {
            line,
            message: "a tab outside a quoted or block scalar (PyYAML, which Prefect reads with, refuses it): use spaces".into(),
        });
    }
    match load_events(text) {
        // PyYAML lets a flow collection's lines go back to (or left of) its block's indentation
        // (`job_variables: {` … `image: x` … `}` at the key's column); saphyr follows the spec and refuses
        // them. Such a document is read again with those lines indented past the block, which changes no
        // value (flow content folds its line breaks and leading blanks).
        Err(e) if e.message.contains("indentation") => match quirks::reindent(text) {
            Some(fixed) if fixed != text => load_events(&fixed).map_err(|_| e),
            _ => Err(e),
        },
        other => other,
    }
}

/// The state of one read: the open collections, the anchors (with what a merge of them copies), and how
/// much aliases have expanded.
struct Reader {
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize)>,
    expanded: usize,
    ids: Ids,
}

fn load_events(text: &str) -> Result<Value, LoadError> {
    let text_ends_in_newline = text.ends_with('\n');
    let text_chars = text.chars().count();
    let mut parser = Parser::new_from_str(text);
    let mut r = Reader {
        stack: Vec::new(),
        anchors: HashMap::new(),
        expanded: 0,
        ids: Ids::default(),
    };
    let mut root: Option<Value> = None;
    while let Some(ev) = parser.next_event() {
        let (event, span) = ev.map_err(|e| LoadError {
            line: e.marker().line(),
            message: e.info().to_string(),
        })?;
        let line = span.start.line();
        let err = |message: String| LoadError { line, message };
        let node = match event {
            Event::StreamEnd | Event::DocumentEnd if root.is_some() => break,
            Event::MappingStart(..) | Event::SequenceStart(..) if r.stack.len() >= MAX_DEPTH => {
                return Err(err(format!("nests deeper than {MAX_DEPTH} levels")));
            }
            Event::MappingStart(anchor, _) => {
                r.stack
                    .push(Frame::Map(Vec::new(), None, Vec::new(), anchor));
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                r.stack.push(Frame::Seq(Vec::new(), Vec::new(), anchor));
                continue;
            }
            Event::MappingEnd => r.end_mapping().map_err(err)?,
            Event::SequenceEnd => r.end_sequence().map_err(err)?,
            Event::Alias(id) => r.alias(id).map_err(err)?,
            Event::Scalar(text, style, anchor, tag) => {
                let explicit_str = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let plain = style == ScalarStyle::Plain && !explicit_str;
                let is_key = matches!(r.stack.last(), Some(Frame::Map(_, None, ..)));
                // PyYAML resolves a plain `=` to YAML 1.1's value type and `<<` to the merge type, and has
                // constructors for neither outside a merge key: `prefect deploy` fails on such a file.
                if plain && (&*text == "=" || (&*text == "<<" && !is_key)) {
                    return Err(err(format!(
                        "a plain `{text}` cannot be read (PyYAML has no constructor for it): quote it"
                    )));
                }
                let v = if !plain {
                    let mut t = text.to_string();
                    // A block scalar that runs to the end of a file without a final line break has no
                    // line break to keep (PyYAML); the parser behind us reads the end as one.
                    if matches!(style, ScalarStyle::Literal | ScalarStyle::Folded)
                        && !text_ends_in_newline
                        && span.end.index() >= text_chars
                        && t.ends_with('\n')
                    {
                        t.pop();
                    }
                    Value::String(t)
                } else {
                    resolve_plain(&text)
                };
                let node = Node::leaf(v, r.ids.of_scalar(&text));
                if anchor != 0 {
                    r.anchors.insert(anchor, (node.clone(), 1));
                }
                node
            }
            _ => continue,
        };
        if r.stack.is_empty() {
            root = Some(node.value);
        } else {
            r.attach(node);
        }
    }
    Ok(root.unwrap_or(Value::Null))
}

impl Reader {
    fn end_mapping(&mut self) -> Result<Node, String> {
        let Some(Frame::Map(own, _, merges, anchor)) = self.stack.pop() else {
            return Err("unbalanced mapping".into());
        };
        let node = nodes::mapping(own, &merges, self.ids.fresh())
            .map_err(|()| "a merge key (`<<`) must name a mapping".to_string())?;
        if anchor != 0 {
            let size = nodes(&node.value);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }

    fn end_sequence(&mut self) -> Result<Node, String> {
        let Some(Frame::Seq(items, pairs, anchor)) = self.stack.pop() else {
            return Err("unbalanced sequence".into());
        };
        let node = Node {
            value: Value::Array(items),
            pairs: None,
            items: Some(Rc::new(pairs)),
            id: self.ids.fresh(),
        };
        if anchor != 0 {
            let size = nodes(&node.value);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        Ok(node)
    }

    fn alias(&mut self, id: usize) -> Result<Node, String> {
        let (node, size) = self
            .anchors
            .get(&id)
            .ok_or_else(|| "alias to an unknown anchor".to_string())?;
        self.expanded += size;
        if self.expanded > MAX_EXPANDED {
            return Err(format!(
                "its aliases expand to more than {MAX_EXPANDED} values (aliases nested in aliases: a \"billion laughs\" file?)"
            ));
        }
        Ok(node.clone())
    }

    /// `node` into the open collection: an item, a key, a key's value, or a merge.
    fn attach(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => {}
            Some(Frame::Seq(items, pairs, _)) => {
                pairs.push(node.pairs.clone());
                items.push(node.value);
            }
            Some(Frame::Map(own, key, merges, _)) => match key.take() {
                None => {
                    let k = match node.value {
                        Value::String(s) => s,
                        Value::Null => "null".into(),
                        other => other.to_string(),
                    };
                    *key = Some((k, node.id));
                }
                Some((k, _)) if k == "<<" => merges.push(node),
                Some((k, id)) => own.push((k, node.value, id)),
            },
        }
    }
}

/// The 1-based line on which each entry of the top-level sequence `key` starts (for messages that point
/// at a deployment); empty when the document does not parse.
pub fn item_lines(text: &str, key: &str) -> Vec<usize> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut key_next = true;
    let mut want = false;
    let mut in_list = false;
    let mut out = Vec::new();
    while let Some(Ok((event, span))) = parser.next_event() {
        let starts = matches!(
            event,
            Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Scalar(..)
                | Event::Alias(..)
        );
        if starts && in_list && depth == 2 {
            out.push(span.start.line());
        }
        match &event {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if depth == 1 {
                    if !key_next && want && matches!(event, Event::SequenceStart(..)) {
                        in_list = true;
                    }
                    key_next = !key_next;
                    want = false;
                }
                depth += 1;
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.saturating_sub(1);
                if depth == 1 {
                    in_list = false;
                }
            }
            Event::Scalar(v, ..) if depth == 1 => {
                want = key_next && v.as_ref() == key;
                key_next = !key_next;
            }
            Event::Alias(..) if depth == 1 => {
                want = false;
                key_next = !key_next;
            }
            _ => {}
        }
    }
    out
}

/// PyYAML's implicit resolvers (yaml/resolver.py), in its order.
fn resolve_plain(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(i) = int_11(s) {
        return Value::Number(Number::from(i));
    }
    if let Some(f) = float_11(s)
        && let Some(n) = Number::from_f64(f)
    {
        return Value::Number(n);
    }
    if let Some(ts) = timestamp(s) {
        return Value::String(ts);
    }
    Value::String(s.to_string())
}

fn int_11(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let v = if let Some(b) = clean.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(h) = clean.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if clean.contains(':') {
        // Sexagesimal: 190:20:30.
        if !body.starts_with(|c: char| ('1'..='9').contains(&c)) {
            return None;
        }
        let mut acc = 0i64;
        for (i, part) in clean.split(':').enumerate() {
            let p: i64 = part.parse().ok()?;
            if i > 0 && !(0..60).contains(&p) {
                return None;
            }
            acc = acc.checked_mul(60)?.checked_add(p)?;
        }
        acc
    } else if clean.len() > 1 && clean.starts_with('0') {
        if !clean.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return None;
        }
        i64::from_str_radix(&clean, 8).ok()?
    } else {
        if !clean.bytes().all(|b| b.is_ascii_digit()) || body.starts_with('_') {
            return None;
        }
        clean.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

fn float_11(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // PyYAML: [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)? | \.[0-9_]+(?:[eE][-+][0-9]+)? | sexagesimal.
    if let Some(f) = sexagesimal_float(s) {
        return Some(f);
    }
    let re = regex_float();
    if !re.is_match(s) {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// `190:20:30.15` → 685230.15 (`[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*`).
fn sexagesimal_float(s: &str) -> Option<f64> {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*$").expect("valid")
    });
    if !RE.is_match(s) {
        return None;
    }
    let clean = s.replace('_', "");
    let (neg, body) = match clean.as_bytes().first()? {
        b'-' => (true, &clean[1..]),
        b'+' => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    let mut acc = 0.0f64;
    for part in body.split(':') {
        acc = acc * 60.0 + part.parse::<f64>().ok()?;
    }
    Some(if neg { -acc } else { acc })
}

fn regex_float() -> &'static regex::Regex {
    static RE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?)$",
        )
        .expect("valid")
    });
    &RE
}

/// PyYAML's timestamps, as Prefect sends them (pydantic's JSON form of the `datetime` PyYAML made):
/// `2024-01-01` stays; `2001-12-14 1:59:43.10 +5` → `2001-12-14T01:59:43.100000+05:00`; UTC → `Z`.
fn timestamp(s: &str) -> Option<String> {
    static DATE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$").expect("valid")
    });
    static FULL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9]{1,2})(?::([0-9]{2}))?))?$",
        )
        .expect("valid")
    });
    if DATE.is_match(s) {
        return Some(s.to_string());
    }
    let c = FULL.captures(s)?;
    let n = |i: usize| {
        c.get(i)
            .map(|m| m.as_str().parse::<u32>().unwrap_or(0))
            .unwrap_or(0)
    };
    let mut out = format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}",
        &c[1],
        n(2),
        n(3),
        n(4),
        n(5),
        n(6)
    );
    // Microseconds: the first six digits, as PyYAML reads them; none when zero, as Python prints them.
    let frac = c.get(7).map(|m| m.as_str()).unwrap_or("");
    let micros: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    if micros != "000000" {
        out.push('.');
        out.push_str(&micros);
    }
    match c.get(8).map(|m| m.as_str()) {
        None => {}
        Some("Z") => out.push('Z'),
        Some(_) => {
            let (h, m) = (n(10), n(11));
            if h == 0 && m == 0 {
                out.push('Z');
            } else {
                out.push_str(&format!("{}{h:02}:{m:02}", &c[9]));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_like_pyyaml() {
        let v = load("a: yes\nb: 'yes'\nc: 0755\nd: 1_000\ne: 1.5\nf: ~\ng: 2024-01-01\nh: 190:20:30\ni: 0x1F\nj: 1.2.3\nk: !!str 12\nl: -3\n").unwrap();
        assert_eq!(
            v,
            json!({"a": true, "b": "yes", "c": 493, "d": 1000, "e": 1.5, "f": null, "g": "2024-01-01", "h": 685230, "i": 31, "j": "1.2.3", "k": "12", "l": -3})
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let text = "defs:\n  pool: &p {name: k8s, job_variables: {image: x}}\n  t: &t [a, b]\ndep:\n  work_pool:\n    <<: *p\n    name: other\n  tags: *t\n";
        let v = load(text).unwrap();
        assert_eq!(
            v["dep"]["work_pool"],
            json!({"name": "other", "job_variables": {"image": "x"}})
        );
        assert_eq!(v["dep"]["tags"], json!(["a", "b"]));
    }

    /// Found by the differential test (ci/test's seed 15272): a merge copies PyYAML's flattened pairs of the
    /// mapping it names, so a shadowed merged pair comes back for a one-letter key, not for a longer one
    /// (values from PyYAML 6.0.4).
    #[test]
    fn merges_copy_the_flattened_pairs_as_pyyaml_does() {
        let text = "a: &a {n: 1, key: 1}\nb: &b\n  <<: *a\n  n: 2\n  key: 2\nc:\n  <<: *b\nd:\n  <<: [*a, *b]\n";
        let v = load(text).unwrap();
        assert_eq!(v["b"], json!({"n": 2, "key": 2}));
        assert_eq!(v["c"], json!({"n": 1, "key": 2}));
        assert_eq!(v["d"], json!({"n": 1, "key": 2}));
        let a = "x: &a {key: 1, k: 1}\ny: &b {key: 2, k: 2}\nz:\n  <<: [*a, *b]\n";
        assert_eq!(load(a).unwrap()["z"], json!({"key": 2, "k": 1}));
    }

    #[test]
    fn a_billion_laughs_is_an_error_not_memory_exhaustion() {
        let mut text = String::from(
            "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
        );
        let mut prev = 'a';
        for name in "bcdefghij".chars() {
            text.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
            prev = name;
        }
        let e = load(&text).unwrap_err();
        assert!(e.message.contains("billion laughs"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let e = load(&"[".repeat(100_000)).unwrap_err();
        assert!(
            e.message.contains("nests deeper") || e.message.contains("recursion limit"),
            "{e}"
        );
    }

    /// Panic-freedom under arbitrary input: random strings over YAML's significant characters (bounded in
    /// count and time), and mutations of a real prefect.yaml.
    #[test]
    fn arbitrary_input_never_panics() {
        let alphabet: Vec<char> = "ab1 :-[]{},&*!|>'\"#?%@`\\\n\t<=~.0x_".chars().collect();
        let mut rng = fastrand::Rng::with_seed(23);
        let started = std::time::Instant::now();
        for _ in 0..20_000 {
            let n = rng.usize(0..120);
            let s: String = (0..n)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let _ = load(&s);
            if started.elapsed().as_secs() > 20 {
                break;
            }
        }
        let real = include_str!("../../../fixtures/parity/prefect.yaml");
        for _ in 0..3_000 {
            let mut b: Vec<u8> = real.as_bytes().to_vec();
            for _ in 0..rng.usize(1..6) {
                let i = rng.usize(..b.len());
                match rng.u8(..3) {
                    0 => b[i] = alphabet[rng.usize(..alphabet.len())] as u8,
                    1 => {
                        b.remove(i);
                    }
                    _ => b.truncate(i),
                }
                if b.is_empty() {
                    break;
                }
            }
            let _ = load(&String::from_utf8_lossy(&b));
        }
    }
}

/// The loader against PyYAML over generated documents (`ci/yaml-fuzz.py`): the committed corpus, or the cases
/// in `FLOWSHIP_YAML_CASES` (ci/test writes a fresh seed's there): the same value, or an error in both.
#[cfg(test)]
mod differential {
    #[test]
    fn differential_with_pyyaml() {
        let path = std::env::var("FLOWSHIP_YAML_CASES").unwrap_or_else(|_| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/yaml/pyyaml-cases.jsonl"
            )
            .into()
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let mut failures = Vec::new();
        let mut count = 0;
        for line in text.lines().filter(|l| !l.is_empty()) {
            let case: serde_json::Value = serde_json::from_str(line).unwrap();
            let doc = case["doc"].as_str().unwrap();
            let got = super::load(doc);
            count += 1;
            let same = match (&got, case["error"].as_bool().unwrap()) {
                (Err(_), true) => true,
                (Ok(v), false) => same_value(v, &case["value"]),
                _ => false,
            };
            if !same {
                failures.push(format!(
                    "--- document\n{doc}--- PyYAML: {}\n--- flowship: {got:?}",
                    if case["error"] == true {
                        "error".to_string()
                    } else {
                        case["value"].to_string()
                    }
                ));
            }
        }
        assert!(count > 0, "no cases in {path}");
        assert!(
            failures.is_empty(),
            "{} of {count} documents differ from PyYAML ({path}):\n{}",
            failures.len(),
            failures
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Equal as JSON, with numbers compared by value (PyYAML's `1.0` and `1` are the same here).
    fn same_value(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        match (a, b) {
            (V::Number(x), V::Number(y)) => x.as_f64() == y.as_f64() && x.is_f64() == y.is_f64(),
            (V::Array(x), V::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
            }
            (V::Object(x), V::Object(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
            }
            _ => a == b,
        }
    }
}
