//! Annotations → JSON schema as pydantic v2 writes it for Prefect: builtins, `Optional`/unions (flattened, as
//! Python's `typing` flattens them), parametrised containers, `Literal`, dates, UUIDs, paths, type aliases,
//! and the project's own Enums, pydantic models and dataclasses (as `$ref`s into `definitions`). What it cannot
//! type precisely is "any" (`{}`).

use super::scope::{Found, Scope, World};
use super::{enums, models};
use ruff_python_ast::{self as ast, Expr};
use serde_json::{Map, Value, json};

/// Builds schemas, collecting the definitions they refer to.
pub struct Types<'w, 's> {
    pub world: &'w World<'s>,
    pub defs: Map<String, Value>,
    /// Definitions being built (a model that refers to itself).
    building: Vec<String>,
}

impl<'w, 's> Types<'w, 's> {
    pub fn new(world: &'w World<'s>) -> Self {
        Self {
            world,
            defs: Map::new(),
            building: Vec::new(),
        }
    }

    pub fn of(&mut self, scope: &'static Scope, e: &Expr) -> Value {
        self.of_depth(scope, e, 0)
    }

    fn of_depth(&mut self, scope: &'static Scope, e: &Expr, depth: usize) -> Value {
        if depth > 32 {
            return json!({});
        }
        // Forward references: `x: "int"`.
        if let Expr::StringLiteral(s) = e {
            return match ruff_python_parser::parse_expression(s.value.to_str()) {
                Ok(p) => {
                    let expr: &'static _ = Box::leak(Box::new(p.into_expr()));
                    self.of_depth(scope, expr, depth + 1)
                }
                Err(_) => json!({}),
            };
        }
        if let Expr::NoneLiteral(_) = e {
            return json!({"type": "null"});
        }
        if let Expr::BinOp(b) = e
            && matches!(b.op, ast::Operator::BitOr)
        {
            let mut members = Vec::new();
            self.union_members(scope, e, &mut members, depth);
            return any_of(members);
        }
        if let Expr::Subscript(s) = e {
            return self.generic(scope, s, depth);
        }
        match self.world.resolve(scope, e) {
            Some(Found::External(q)) => simple(short(q)).unwrap_or_else(|| json!({})),
            Some(Found::Class(s, c)) => self.class(s, c),
            // A type alias: `Tables = list[str]`.
            Some(Found::Const(s, c)) => self.of_depth(s, c, depth + 1),
            _ => json!({}),
        }
    }

    /// A project class: an Enum, a pydantic model or a dataclass, as a `$ref`; anything else "any".
    fn class(&mut self, scope: &'static Scope, c: &'static ast::StmtClassDef) -> Value {
        let name = c.name.as_str().to_string();
        let reference = json!({"$ref": format!("#/definitions/{name}")});
        if self.defs.contains_key(&name) || self.building.contains(&name) {
            return reference;
        }
        if enums::kind(self.world, scope, c).is_some() {
            return match enums::definition(self.world, scope, c) {
                Some(d) => {
                    self.defs.insert(name, d);
                    reference
                }
                None => json!({}),
            };
        }
        if models::is_model(self.world, scope, c) {
            self.building.push(name.clone());
            let d = models::definition(self, scope, c);
            self.building.pop();
            return match d {
                Some(d) => {
                    self.defs.insert(name, d);
                    reference
                }
                None => json!({}),
            };
        }
        json!({})
    }

    fn union_members(
        &mut self,
        scope: &'static Scope,
        e: &Expr,
        out: &mut Vec<Value>,
        depth: usize,
    ) {
        match e {
            Expr::BinOp(b) if matches!(b.op, ast::Operator::BitOr) => {
                self.union_members(scope, &b.left, out, depth);
                self.union_members(scope, &b.right, out, depth);
            }
            other => out.push(self.of_depth(scope, other, depth + 1)),
        }
    }

    fn generic(&mut self, scope: &'static Scope, s: &ast::ExprSubscript, depth: usize) -> Value {
        let base = self.world.external(scope, &s.value).unwrap_or_default();
        let args: Vec<&Expr> = match &*s.slice {
            Expr::Tuple(t) => t.elts.iter().collect(),
            other => vec![other],
        };
        let d = depth + 1;
        match short(base) {
            "Optional" => {
                let inner = self.of_depth(scope, args[0], d);
                any_of(vec![inner, json!({"type": "null"})])
            }
            "Union" => {
                let mut members = Vec::new();
                for a in &args {
                    self.union_members(scope, a, &mut members, d);
                }
                any_of(members)
            }
            "Annotated" => self.of_depth(scope, args[0], d),
            "list" | "List" | "Sequence" | "Iterable" => {
                json!({"type": "array", "items": self.of_depth(scope, args[0], d)})
            }
            "set" | "Set" | "frozenset" | "FrozenSet" => {
                json!({"type": "array", "items": self.of_depth(scope, args[0], d), "uniqueItems": true})
            }
            "dict" | "Dict" | "Mapping" => {
                let v = args
                    .get(1)
                    .map(|a| self.of_depth(scope, a, d))
                    .unwrap_or(json!({}));
                json!({"type": "object", "additionalProperties": additional(v.as_object().cloned().unwrap_or_default())})
            }
            "tuple" | "Tuple" => {
                if args.len() == 2 && matches!(args[1], Expr::EllipsisLiteral(_)) {
                    return json!({"type": "array", "items": self.of_depth(scope, args[0], d)});
                }
                let items: Vec<Value> = args.iter().map(|a| self.of_depth(scope, a, d)).collect();
                json!({"type": "array", "prefixItems": items, "minItems": items.len(), "maxItems": items.len()})
            }
            "Literal" => {
                let values: Option<Vec<Value>> =
                    args.iter().map(|a| self.world.value(scope, a)).collect();
                // A Literal of something the source does not state: "any", never an empty enum.
                let Some(values) = values.filter(|v| !v.is_empty()) else {
                    return json!({});
                };
                let kind = if values.iter().all(Value::is_string) {
                    Some("string")
                } else if values.iter().all(Value::is_boolean) {
                    Some("boolean")
                } else if values.iter().all(|v| v.is_i64() || v.is_u64()) {
                    Some("integer")
                } else {
                    None
                };
                // pydantic: one value is a `const`, several an `enum`.
                let mut out = match values.as_slice() {
                    [one] => json!({"const": one}),
                    _ => json!({"enum": values}),
                };
                if let Some(k) = kind {
                    out["type"] = json!(k);
                }
                out
            }
            _ => json!({}),
        }
    }
}

fn short(q: &str) -> &str {
    const PLAIN_MODULES: [&str; 4] = ["typing", "typing_extensions", "collections.abc", "builtins"];
    match q.rsplit_once('.') {
        Some((module, name)) if PLAIN_MODULES.contains(&module) => name,
        _ => q,
    }
}

/// Plain (unparametrised) types.
fn simple(q: &str) -> Option<Value> {
    Some(match q {
        "str" => json!({"type": "string"}),
        "int" => json!({"type": "integer"}),
        "float" => json!({"type": "number"}),
        "bool" => json!({"type": "boolean"}),
        "bytes" => json!({"type": "string", "format": "binary"}),
        "None" | "NoneType" => json!({"type": "null"}),
        "list" | "List" | "Sequence" | "Iterable" => json!({"type": "array", "items": {}}),
        "tuple" | "Tuple" => json!({"type": "array", "items": {}}),
        "set" | "Set" | "frozenset" | "FrozenSet" => {
            json!({"type": "array", "items": {}, "uniqueItems": true})
        }
        "dict" | "Dict" | "Mapping" => json!({"type": "object", "additionalProperties": true}),
        "datetime.date" => json!({"type": "string", "format": "date"}),
        "datetime.datetime" => json!({"type": "string", "format": "date-time"}),
        "datetime.time" => json!({"type": "string", "format": "time"}),
        "datetime.timedelta" => json!({"type": "string", "format": "duration"}),
        "uuid.UUID" => json!({"type": "string", "format": "uuid"}),
        "pathlib.Path" => json!({"type": "string", "format": "path"}),
        _ => return None,
    })
}

/// `additionalProperties` for a value schema: pydantic writes `true` for "any".
pub fn additional(v: Map<String, Value>) -> Value {
    if v.is_empty() {
        Value::Bool(true)
    } else {
        Value::Object(v)
    }
}

/// A union as pydantic writes it: nested unions flattened and repeated members dropped (Python's `typing`
/// does both: `Optional[int] | None` is `int | None`); "any" stays a member (`Optional[Any]` is
/// `anyOf: [{}, null]`); null last; one member stands alone.
pub fn any_of(members: Vec<Value>) -> Value {
    let mut flat: Vec<Value> = Vec::new();
    for m in members {
        let parts = match m.get("anyOf").and_then(Value::as_array) {
            Some(a) if m.as_object().is_some_and(|o| o.len() == 1) => a.clone(),
            _ => vec![m],
        };
        for p in parts {
            if !flat.contains(&p) {
                flat.push(p);
            }
        }
    }
    // pydantic makes a union with None "nullable": null goes last, whatever its place in the source.
    let null = json!({"type": "null"});
    if let Some(i) = flat.iter().position(|m| *m == null) {
        let n = flat.remove(i);
        flat.push(n);
    }
    match flat.len() {
        1 => flat.into_iter().next().unwrap_or(json!({})),
        _ => json!({"anyOf": flat}),
    }
}
