//! A flow's parameter schema, from its source, without Python: the same JSON schema Prefect 3.9 computes
//! (`utilities/callables.py::parameter_schema`, pydantic v2) for builtin types, `Optional`/unions, parametrised
//! `list`/`dict`/`tuple`/`set`, `Literal`, dates, type aliases, the project's own Enums, pydantic models and
//! dataclasses (followed through imports of the project's modules), defaults (also import-time ones read from
//! the environment), Google-style `Args:` descriptions and positions. What it cannot type precisely is "any"
//! (`{}`), never an error: the worker validates against the schema, so too loose is safe and too strict is not.
//! Also finds the flow's name (`@flow(name=...)`, a literal or a constant; else the function name with `_` →
//! `-`) and description. `@flow` is recognised however it was imported (`from lib.compat import flow`).

mod enums;
mod eval;
mod models;
pub mod scope;
mod types;

use super::docstring::{cleandoc, google_args};
use super::python::Body;
use ruff_python_ast::{self as ast, Expr, Stmt};
use scope::{Found, Scope, World};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use types::Types;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FlowInfo {
    pub name: String,
    pub description: Option<String>,
    pub schema: Value,
    /// The function takes `**kwargs`: any parameter name is accepted.
    pub open: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[cfg(test)]
    #[error("not valid Python: {0}")]
    Syntax(String),
    #[error("has no function `{0}`")]
    NoFunction(String),
    #[error("function `{0}` is not decorated with @flow")]
    NotAFlow(String),
    #[error(
        "`@flow(name=...)` of `{0}` is computed at import; flowship cannot know the flow's name"
    )]
    ComputedName(String),
}

/// Qualified names under which Prefect exports `flow`.
const FLOW_DECORATORS: [&str; 3] = ["prefect.flow", "prefect.flows.flow", "prefect.main.flow"];

/// A flow in a source of its own (no project around it): tests, and files outside any root.
#[cfg(test)]
pub fn flow_info(source: &str, function: &str) -> Result<FlowInfo, SchemaError> {
    let body = super::python::parse_source(source).map_err(SchemaError::Syntax)?;
    let sources = super::python::Sources::with_roots(Vec::new());
    let env = std::collections::BTreeMap::new();
    let world = World::new(&sources, &env);
    let scope = world.scope_of(body, "", false);
    flow_in(&world, scope, function)
}

/// The flow `object` (`function` or `Class.method`) of the module `body`, with `world` to follow imports.
pub fn flow_in(
    world: &World<'_>,
    scope: &'static Scope,
    object: &str,
) -> Result<FlowInfo, SchemaError> {
    let f = function_of(scope, object).ok_or_else(|| SchemaError::NoFunction(object.into()))?;
    let decorator = f
        .decorator_list
        .iter()
        .find(|d| is_flow_decorator(world, scope, &d.expression))
        .ok_or_else(|| SchemaError::NotAFlow(object.into()))?;
    let kwarg = |name: &str| match &decorator.expression {
        Expr::Call(c) => c
            .arguments
            .keywords
            .iter()
            .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == name))
            .map(|k| &k.value),
        _ => None,
    };
    let function = f.name.as_str();
    let name = match kwarg("name") {
        None | Some(Expr::NoneLiteral(_)) => function.replace('_', "-"),
        Some(e) => match world.value(scope, e) {
            Some(Value::String(s)) => s,
            _ => return Err(SchemaError::ComputedName(object.into())),
        },
    };
    let docstring = f.body.first().and_then(|s| match s {
        Stmt::Expr(e) => match &*e.value {
            Expr::StringLiteral(s) => Some(s.value.to_str().to_string()),
            _ => None,
        },
        _ => None,
    });
    let doc = docstring.as_deref().map(cleandoc);
    let description = match kwarg("description").and_then(|e| world.value(scope, e)) {
        Some(Value::String(s)) => Some(s),
        _ => doc.clone(),
    };
    let arg_docs = doc.as_deref().map(google_args).unwrap_or_default();
    let schema = parameters(world, scope, &f.parameters, &arg_docs);
    Ok(FlowInfo {
        name,
        description,
        schema,
        open: f.parameters.kwarg.is_some(),
    })
}

/// `function`, or `Class.method`.
fn function_of(scope: &Scope, object: &str) -> Option<&'static ast::StmtFunctionDef> {
    match object.split_once('.') {
        None => scope.functions.get(object).copied(),
        Some((class, method)) => scope.classes.get(class)?.body.iter().find_map(|s| match s {
            Stmt::FunctionDef(f) if f.name.as_str() == method => Some(f),
            _ => None,
        }),
    }
}

fn is_flow_decorator(world: &World<'_>, scope: &'static Scope, e: &Expr) -> bool {
    let target = match e {
        Expr::Call(c) => &*c.func,
        e => e,
    };
    // A `flow` from a module outside the project (an internal library re-exporting Prefect's) counts too:
    // Prefect would import it; refusing it here would be stricter than the tool we replace.
    matches!(world.resolve(scope, target), Some(Found::External(q))
        if FLOW_DECORATORS.contains(&q) || q == "flow" || q.ends_with(".flow"))
}

/// The functions of a module decorated with `@flow` (however imported), for a hint.
pub fn flows_in(world: &World<'_>, scope: &'static Scope, body: Body) -> Vec<String> {
    body.iter()
        .filter_map(|s| match s {
            Stmt::FunctionDef(f)
                if f.decorator_list
                    .iter()
                    .any(|d| is_flow_decorator(world, scope, &d.expression)) =>
            {
                Some(f.name.as_str().to_string())
            }
            _ => None,
        })
        .collect()
}

/// The `Parameters` object Prefect builds from a signature.
fn parameters(
    world: &World<'_>,
    scope: &'static Scope,
    p: &ast::Parameters,
    docs: &HashMap<String, String>,
) -> Value {
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
    let mut types = Types::new(world);
    let mut properties = Map::new();
    let mut required = Vec::new();
    let annotation = |types: &mut Types<'_, '_>, a: Option<&Expr>| -> Map<String, Value> {
        a.map(|a| types.of(scope, a))
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default()
    };
    for (position, param) in ordered.enumerate() {
        let (name, mut prop) = match param {
            Param::Named(a) => {
                let mut prop = annotation(&mut types, a.parameter.annotation.as_deref());
                match a.default.as_deref() {
                    // A default we cannot evaluate still makes the parameter optional.
                    Some(d) => {
                        if let Some(v) = world.value(scope, d) {
                            prop.insert("default".into(), v);
                        }
                    }
                    None => required.push(Value::String(a.parameter.name.to_string())),
                }
                (a.parameter.name.as_str(), prop)
            }
            Param::VarArgs(v) => {
                let items = Value::Object(annotation(&mut types, v.annotation.as_deref()));
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
                    Some(a) => types::additional(annotation(&mut types, Some(a))),
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
    if !types.defs.is_empty() {
        schema["definitions"] = Value::Object(types.defs);
    }
    schema
}

#[cfg(test)]
mod tests;
