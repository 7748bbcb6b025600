//! Enum classes as pydantic describes them: `{"enum": [values], "title": Name, "type": ...}`, with the
//! class docstring as `description`. Members whose values the source does not state (computed, functional
//! API, values from elsewhere) make the enum unknown: its parameter is then "any", looser than Prefect's
//! schema and never stricter (an `{"enum": []}` would make the server refuse every value).

use super::scope::{Found, Scope, World};
use crate::prefect::docstring::cleandoc;
use ruff_python_ast::{self as ast, Expr, Stmt};
use serde_json::{Value, json};

/// Which kind of enum a class is (through its bases, also local ones).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Plain,
    Str,
}

pub fn kind(w: &World<'_>, scope: &'static Scope, c: &ast::StmtClassDef) -> Option<Kind> {
    kind_hops(w, scope, c, 0)
}

fn kind_hops(
    w: &World<'_>,
    scope: &'static Scope,
    c: &ast::StmtClassDef,
    hops: usize,
) -> Option<Kind> {
    if hops > 8 {
        return None;
    }
    let bases = c.arguments.as_ref()?;
    let mut found = None;
    for b in bases.args.iter() {
        match w.resolve(scope, b) {
            Some(Found::External(q)) => {
                let short = q.rsplit('.').next().unwrap_or(q);
                if q.starts_with("enum.") && short.ends_with("Enum") {
                    found = Some(if short == "StrEnum" {
                        Kind::Str
                    } else {
                        Kind::Plain
                    });
                }
            }
            Some(Found::Class(s, parent)) => {
                if let Some(k) = kind_hops(w, s, parent, hops + 1) {
                    found = Some(k);
                }
            }
            _ => {}
        }
    }
    found
}

/// The members and their values, in order; `None` when any value is unknown.
pub fn members(
    w: &World<'_>,
    scope: &'static Scope,
    c: &ast::StmtClassDef,
) -> Option<Vec<(String, Value)>> {
    let kind = kind(w, scope, c)?;
    let mut out: Vec<(String, Value)> = Vec::new();
    for s in c.body.iter() {
        let (name, value) = match s {
            Stmt::Assign(a) => match a.targets.as_slice() {
                [Expr::Name(n)] => (n.id.to_string(), &*a.value),
                _ => return None,
            },
            Stmt::AnnAssign(a) => match (&*a.target, &a.value) {
                (Expr::Name(n), Some(v)) => (n.id.to_string(), &**v),
                _ => continue,
            },
            _ => continue,
        };
        if name.starts_with('_') {
            continue;
        }
        let v = match value {
            Expr::Call(call)
                if w.external(scope, &call.func)
                    .is_some_and(|q| q == "enum.auto" || q == "auto") =>
            {
                auto(kind, &name, &out)?
            }
            other => w.value(scope, other)?,
        };
        // A second name for an existing value is an alias, not a member.
        if !out.iter().any(|(_, have)| *have == v) {
            out.push((name, v));
        }
    }
    Some(out)
}

/// `auto()`: the lower-cased name in a `StrEnum`, else one more than the last integer (from 1).
fn auto(kind: Kind, name: &str, before: &[(String, Value)]) -> Option<Value> {
    if kind == Kind::Str {
        return Some(Value::String(name.to_lowercase()));
    }
    match before.last() {
        None => Some(json!(1)),
        Some((_, Value::Number(n))) => Some(json!(n.as_i64()? + 1)),
        Some(_) => None,
    }
}

/// The definition pydantic writes for an enum, or `None` when its members are unknown.
pub fn definition(w: &World<'_>, scope: &'static Scope, c: &ast::StmtClassDef) -> Option<Value> {
    let members = members(w, scope, c)?;
    if members.is_empty() {
        return None;
    }
    let values: Vec<Value> = members.into_iter().map(|(_, v)| v).collect();
    let mut out = json!({"title": c.name.as_str(), "enum": values});
    if values.iter().all(Value::is_string) {
        out["type"] = json!("string");
    } else if values.iter().all(|v| v.is_i64()) {
        out["type"] = json!("integer");
    } else if values.iter().all(Value::is_number) {
        out["type"] = json!("number");
    }
    if let Some(d) = class_doc(c) {
        out["description"] = json!(d);
    }
    Some(out)
}

/// The class's own docstring, cleaned as `inspect.cleandoc` does.
pub fn class_doc(c: &ast::StmtClassDef) -> Option<String> {
    match c.body.first()? {
        Stmt::Expr(e) => match &*e.value {
            Expr::StringLiteral(s) => Some(cleandoc(s.value.to_str())),
            _ => None,
        },
        _ => None,
    }
}
