//! A flow's parameter schema, from its source, without Python: the same JSON schema Prefect 3.9 computes
//! (`utilities/callables.py::parameter_schema`, pydantic v2) for builtin types, `Optional`/unions, parametrised
//! `list`/`dict`/`tuple`/`set`, `Literal`, `date`/`datetime`, `Enum` classes of the same file, defaults,
//! Google-style `Args:` descriptions and positions. What it cannot type precisely is "any" (`{}`), never an
//! error: the worker validates against the schema, so too loose is safe and too strict is not.
//! Also finds the flow's name (`@flow(name=...)`, else the function name with `_` → `-`) and description.

use super::docstring::{cleandoc, google_args};
use ruff_python_ast::{self as ast, Expr, Stmt};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub struct FlowInfo {
    pub name: String,
    pub description: Option<String>,
    pub schema: Value,
    /// The function takes `**kwargs`: any parameter name is accepted.
    pub open: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("not valid Python: {0}")]
    Syntax(String),
    #[error("has no function `{0}`")]
    NoFunction(String),
    #[error("function `{0}` is not decorated with @flow")]
    NotAFlow(String),
}

/// What the module defines that annotations and defaults refer to.
struct Module<'a> {
    /// Local name → qualified name (`dt` → `datetime.datetime`, `Optional` → `typing.Optional`).
    aliases: HashMap<String, String>,
    /// Enum classes: name → member name → value.
    enums: HashMap<String, Vec<(String, Value)>>,
    /// Module-level constants with literal values.
    constants: HashMap<String, &'a Expr>,
}

pub fn flow_info(source: &str, function: &str) -> Result<FlowInfo, SchemaError> {
    let parsed =
        ruff_python_parser::parse_module(source).map_err(|e| SchemaError::Syntax(e.to_string()))?;
    let body = &parsed.syntax().body;
    let mut m = Module {
        aliases: HashMap::new(),
        enums: HashMap::new(),
        constants: HashMap::new(),
    };
    for stmt in body.iter() {
        collect(stmt, &mut m);
    }
    let f = body
        .iter()
        .find_map(|s| match s {
            Stmt::FunctionDef(f) if f.name.as_str() == function => Some(f),
            _ => None,
        })
        .ok_or_else(|| SchemaError::NoFunction(function.into()))?;
    let decorator = f
        .decorator_list
        .iter()
        .find(|d| {
            let target = match &d.expression {
                Expr::Call(c) => &*c.func,
                e => e,
            };
            m.qualname(target)
                .is_some_and(|q| q == "prefect.flow" || q == "flow" || q == "prefect.flows.flow")
        })
        .ok_or_else(|| SchemaError::NotAFlow(function.into()))?;
    let kwarg = |name: &str| match &decorator.expression {
        Expr::Call(c) => c
            .arguments
            .keywords
            .iter()
            .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == name))
            .map(|k| &k.value),
        _ => None,
    };
    let name = match kwarg("name") {
        Some(Expr::StringLiteral(s)) => s.value.to_str().to_string(),
        _ => function.replace('_', "-"),
    };
    let docstring = f.body.first().and_then(|s| match s {
        Stmt::Expr(e) => match &*e.value {
            Expr::StringLiteral(s) => Some(s.value.to_str().to_string()),
            _ => None,
        },
        _ => None,
    });
    let doc = docstring.as_deref().map(cleandoc);
    let description = match kwarg("description") {
        Some(Expr::StringLiteral(s)) => Some(s.value.to_str().to_string()),
        _ => doc.clone(),
    };
    let arg_docs = doc.as_deref().map(google_args).unwrap_or_default();
    let schema = m.parameters(&f.parameters, &arg_docs);
    Ok(FlowInfo {
        name,
        description,
        schema,
        open: f.parameters.kwarg.is_some(),
    })
}

/// The functions in `source` decorated with `@flow`, for a hint when an entrypoint names another one.
pub fn flow_functions(source: &str) -> Vec<String> {
    let Ok(parsed) = ruff_python_parser::parse_module(source) else {
        return Vec::new();
    };
    parsed
        .syntax()
        .body
        .iter()
        .filter_map(|s| match s {
            Stmt::FunctionDef(f)
                if f.decorator_list.iter().any(|d| {
                    let target = match &d.expression {
                        Expr::Call(c) => &*c.func,
                        e => e,
                    };
                    matches!(target, Expr::Name(n) if n.id.as_str() == "flow")
                        || matches!(target, Expr::Attribute(a) if a.attr.as_str() == "flow")
                }) =>
            {
                Some(f.name.as_str().to_string())
            }
            _ => None,
        })
        .collect()
}

fn collect<'a>(stmt: &'a Stmt, m: &mut Module<'a>) {
    match stmt {
        Stmt::Import(i) => {
            for a in &i.names {
                let local = a.asname.as_ref().unwrap_or(&a.name).as_str().to_string();
                m.aliases.insert(local, a.name.as_str().to_string());
            }
        }
        Stmt::ImportFrom(i) => {
            let module = i.module.as_ref().map(|m| m.as_str()).unwrap_or("");
            for a in &i.names {
                let local = a.asname.as_ref().unwrap_or(&a.name).as_str().to_string();
                m.aliases
                    .insert(local, format!("{module}.{}", a.name.as_str()));
            }
        }
        Stmt::ClassDef(c) => {
            let is_enum = c.arguments.as_ref().is_some_and(|args| {
                args.args.iter().any(|b| {
                    m.qualname(b)
                        .is_some_and(|q| q.starts_with("enum.") && q.ends_with("Enum"))
                })
            });
            if is_enum {
                let mut members = Vec::new();
                for s in c.body.iter() {
                    if let Stmt::Assign(a) = s
                        && let [Expr::Name(n)] = a.targets.as_slice()
                        && let Some(v) = literal(&a.value, m)
                    {
                        members.push((n.id.to_string(), v));
                    }
                }
                m.enums.insert(c.name.as_str().to_string(), members);
            }
        }
        Stmt::Assign(a) => {
            if let [Expr::Name(n)] = a.targets.as_slice() {
                m.constants.insert(n.id.to_string(), &a.value);
            }
        }
        _ => {}
    }
}

impl Module<'_> {
    /// The qualified name an expression refers to (`typing.Optional`, `datetime.date`, `str`).
    fn qualname(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Name(n) => Some(
                self.aliases
                    .get(n.id.as_str())
                    .cloned()
                    .unwrap_or_else(|| n.id.to_string()),
            ),
            Expr::Attribute(a) => Some(format!("{}.{}", self.qualname(&a.value)?, a.attr.as_str())),
            _ => None,
        }
    }

    fn parameters(&self, p: &ast::Parameters, docs: &HashMap<String, String>) -> Value {
        /// A parameter in Python's order: positional-only, regular, `*args`, keyword-only, `**kwargs`.
        enum Param<'p> {
            Named(&'p ast::ParameterWithDefault),
            VarArgs(&'p ast::Parameter),
            KwArgs(&'p ast::Parameter),
        }
        let ordered = p
            .posonlyargs
            .iter()
            .chain(p.args.iter())
            .map(Param::Named)
            .chain(p.vararg.as_deref().map(Param::VarArgs))
            .chain(p.kwonlyargs.iter().map(Param::Named))
            .chain(p.kwarg.as_deref().map(Param::KwArgs));
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut definitions = Map::new();
        for (position, param) in ordered.enumerate() {
            let (name, mut prop) = match param {
                Param::Named(a) => {
                    let mut prop =
                        self.annotation(a.parameter.annotation.as_deref(), &mut definitions);
                    match a.default.as_deref() {
                        // A default we cannot evaluate still makes the parameter optional.
                        Some(d) => {
                            if let Some(v) = self.default_value(d) {
                                prop.insert("default".into(), v);
                            }
                        }
                        None => required.push(Value::String(a.parameter.name.to_string())),
                    }
                    (a.parameter.name.as_str(), prop)
                }
                Param::VarArgs(v) => {
                    let items =
                        Value::Object(self.annotation(v.annotation.as_deref(), &mut definitions));
                    (
                        v.name.as_str(),
                        json!({"type": "array", "items": items, "default": []})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    )
                }
                Param::KwArgs(k) => {
                    let values = match k.annotation.as_deref() {
                        Some(a) => additional(self.annotation(Some(a), &mut definitions)),
                        None => Value::Bool(true),
                    };
                    (
                        k.name.as_str(),
                        json!({"type": "object", "additionalProperties": values, "default": {}})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    )
                }
            };
            prop.insert("title".into(), Value::String(name.into()));
            prop.insert("position".into(), json!(position));
            if let Some(d) = docs.get(name) {
                prop.insert("description".into(), Value::String(d.clone()));
            }
            properties.insert(name.into(), Value::Object(prop));
        }
        let mut schema = json!({"title": "Parameters", "type": "object", "properties": properties});
        if !required.is_empty() {
            schema["required"] = Value::Array(required);
        }
        if !definitions.is_empty() {
            schema["definitions"] = Value::Object(definitions);
        }
        schema
    }

    /// The schema of an annotation, as a JSON object (`{}` is "any").
    fn annotation(&self, ann: Option<&Expr>, defs: &mut Map<String, Value>) -> Map<String, Value> {
        let Some(ann) = ann else { return Map::new() };
        let v = self.type_schema(ann, defs);
        v.as_object().cloned().unwrap_or_default()
    }

    fn type_schema(&self, e: &Expr, defs: &mut Map<String, Value>) -> Value {
        // Forward references: `x: "int"`.
        if let Expr::StringLiteral(s) = e {
            return match ruff_python_parser::parse_expression(s.value.to_str()) {
                Ok(p) => self.type_schema(p.expr(), defs),
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
            self.union_members(e, defs, &mut members);
            return any_of(members);
        }
        if let Expr::Subscript(s) = e {
            return self.generic(s, defs);
        }
        let Some(q) = self.qualname(e) else {
            return json!({});
        };
        if let Some(members) = self.enums.get(&q) {
            defs.insert(q.clone(), enum_definition(&q, members));
            return json!({"$ref": format!("#/definitions/{q}")});
        }
        simple(short(&q)).unwrap_or_else(|| json!({}))
    }

    fn union_members(&self, e: &Expr, defs: &mut Map<String, Value>, out: &mut Vec<Value>) {
        match e {
            Expr::BinOp(b) if matches!(b.op, ast::Operator::BitOr) => {
                self.union_members(&b.left, defs, out);
                self.union_members(&b.right, defs, out);
            }
            other => out.push(self.type_schema(other, defs)),
        }
    }

    fn generic(&self, s: &ast::ExprSubscript, defs: &mut Map<String, Value>) -> Value {
        let base = self.qualname(&s.value).unwrap_or_default();
        let args: Vec<&Expr> = match &*s.slice {
            Expr::Tuple(t) => t.elts.iter().collect(),
            other => vec![other],
        };
        match short(&base) {
            "Optional" => any_of(vec![
                self.type_schema(args[0], defs),
                json!({"type": "null"}),
            ]),
            "Union" => {
                let mut members = Vec::new();
                for a in &args {
                    self.union_members(a, defs, &mut members);
                }
                any_of(members)
            }
            "Annotated" => self.type_schema(args[0], defs),
            "list" | "List" | "Sequence" | "Iterable" => {
                json!({"type": "array", "items": self.type_schema(args[0], defs)})
            }
            "set" | "Set" | "frozenset" | "FrozenSet" => {
                json!({"type": "array", "items": self.type_schema(args[0], defs), "uniqueItems": true})
            }
            "dict" | "Dict" | "Mapping" => {
                let v = args
                    .get(1)
                    .map(|a| self.type_schema(a, defs))
                    .unwrap_or(json!({}));
                json!({"type": "object", "additionalProperties": additional(v.as_object().cloned().unwrap_or_default())})
            }
            "tuple" | "Tuple" => {
                if args.len() == 2 && matches!(args[1], Expr::EllipsisLiteral(_)) {
                    return json!({"type": "array", "items": self.type_schema(args[0], defs)});
                }
                let items: Vec<Value> = args.iter().map(|a| self.type_schema(a, defs)).collect();
                json!({"type": "array", "prefixItems": items, "minItems": items.len(), "maxItems": items.len()})
            }
            "Literal" => {
                let values: Vec<Value> = args.iter().filter_map(|a| literal(a, self)).collect();
                let kind = if values.iter().all(Value::is_string) {
                    Some("string")
                } else if values.iter().all(Value::is_boolean) {
                    Some("boolean")
                } else if values.iter().all(|v| v.is_i64() || v.is_u64()) {
                    Some("integer")
                } else {
                    None
                };
                let mut out = json!({"enum": values});
                if let Some(k) = kind {
                    out["type"] = json!(k);
                }
                out
            }
            _ => json!({}),
        }
    }

    /// A default the schema can show, if it is something we can evaluate without running the module.
    fn default_value(&self, e: &Expr) -> Option<Value> {
        if let Expr::Attribute(a) = e
            && let Some(owner) = self.qualname(&a.value)
            && let Some(members) = self.enums.get(&owner)
        {
            return members
                .iter()
                .find(|(n, _)| n == a.attr.as_str())
                .map(|(_, v)| v.clone());
        }
        if let Expr::Call(c) = e {
            let q = self.qualname(&c.func)?;
            let nums: Option<Vec<i64>> = c
                .arguments
                .args
                .iter()
                .map(|a| literal(a, self)?.as_i64())
                .collect();
            let nums = nums?;
            return match q.as_str() {
                "datetime.date" if nums.len() == 3 => Some(json!(format!(
                    "{:04}-{:02}-{:02}",
                    nums[0], nums[1], nums[2]
                ))),
                "datetime.datetime" if nums.len() >= 3 => {
                    let g = |i: usize| nums.get(i).copied().unwrap_or(0);
                    Some(json!(format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                        g(0),
                        g(1),
                        g(2),
                        g(3),
                        g(4),
                        g(5)
                    )))
                }
                _ => None,
            };
        }
        literal(e, self)
    }
}

/// Python literals as JSON: numbers, strings, bytes, booleans, None, and lists/tuples/dicts/sets of them;
/// names of module constants with such values.
fn literal(e: &Expr, m: &Module<'_>) -> Option<Value> {
    Some(match e {
        Expr::StringLiteral(s) => Value::String(s.value.to_str().to_string()),
        Expr::BytesLiteral(b) => Value::String(
            String::from_utf8_lossy(
                &b.value
                    .iter()
                    .flat_map(|p| p.as_slice().to_vec())
                    .collect::<Vec<u8>>(),
            )
            .into_owned(),
        ),
        Expr::BooleanLiteral(b) => Value::Bool(b.value),
        Expr::NoneLiteral(_) => Value::Null,
        Expr::NumberLiteral(n) => match &n.value {
            ast::Number::Int(i) => json!(i.as_i64()?),
            ast::Number::Float(f) => json!(f),
            ast::Number::Complex { .. } => return None,
        },
        Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => match literal(&u.operand, m)? {
            Value::Number(n) if n.is_i64() => json!(-n.as_i64()?),
            Value::Number(n) => json!(-n.as_f64()?),
            _ => return None,
        },
        Expr::List(l) => Value::Array(
            l.elts
                .iter()
                .map(|x| literal(x, m))
                .collect::<Option<_>>()?,
        ),
        Expr::Tuple(t) => Value::Array(
            t.elts
                .iter()
                .map(|x| literal(x, m))
                .collect::<Option<_>>()?,
        ),
        Expr::Set(s) => Value::Array(
            s.elts
                .iter()
                .map(|x| literal(x, m))
                .collect::<Option<_>>()?,
        ),
        Expr::Dict(d) => {
            let mut out = Map::new();
            for item in &d.items {
                let Value::String(k) = literal(item.key.as_ref()?, m)? else {
                    return None;
                };
                out.insert(k, literal(&item.value, m)?);
            }
            Value::Object(out)
        }
        Expr::Name(n) => return m.constants.get(n.id.as_str()).and_then(|c| literal(c, m)),
        _ => return None,
    })
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
fn additional(v: Map<String, Value>) -> Value {
    if v.is_empty() {
        Value::Bool(true)
    } else {
        Value::Object(v)
    }
}

fn any_of(members: Vec<Value>) -> Value {
    // "any" in a union makes the union "any"; pydantic collapses a one-member union.
    if members
        .iter()
        .any(|m| m.as_object().is_some_and(Map::is_empty))
    {
        return json!({});
    }
    match members.len() {
        1 => members.into_iter().next().unwrap_or(json!({})),
        _ => json!({"anyOf": members}),
    }
}

fn enum_definition(name: &str, members: &[(String, Value)]) -> Value {
    let values: Vec<Value> = members.iter().map(|(_, v)| v.clone()).collect();
    let mut out = json!({"title": name, "enum": values});
    if values.iter().all(Value::is_string) {
        out["type"] = json!("string");
    } else if values.iter().all(|v| v.is_i64()) {
        out["type"] = json!("integer");
    }
    out
}

#[cfg(test)]
mod tests;
