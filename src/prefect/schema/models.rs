//! pydantic models and dataclasses as parameter types: the definition `model_json_schema` writes (fields with
//! pydantic's titles, defaults, `Field(...)` descriptions and constraints, `required`, the class docstring),
//! from the class's source, base classes first.

use super::scope::{Found, Scope, World};
use super::types::Types;
use ruff_python_ast::{self as ast, Expr, Stmt};
use serde_json::{Map, Value, json};

const MODEL_BASES: [&str; 4] = [
    "pydantic.BaseModel",
    "pydantic.main.BaseModel",
    "pydantic_settings.BaseSettings",
    "prefect.BaseModel",
];
const DATACLASS: [&str; 3] = [
    "dataclasses.dataclass",
    "pydantic.dataclasses.dataclass",
    "dataclass",
];
/// `Field(...)` keyword → JSON schema key (pydantic's constraints for numbers, strings and sequences).
const CONSTRAINTS: [(&str, &str); 7] = [
    ("ge", "minimum"),
    ("gt", "exclusiveMinimum"),
    ("le", "maximum"),
    ("lt", "exclusiveMaximum"),
    ("pattern", "pattern"),
    ("multiple_of", "multipleOf"),
    ("examples", "examples"),
];

/// A pydantic model (through its bases, also the project's own) or a dataclass.
pub fn is_model(w: &World<'_>, scope: &'static Scope, c: &ast::StmtClassDef) -> bool {
    is_dataclass(w, scope, c) || is_base_model(w, scope, c, 0)
}

fn is_dataclass(w: &World<'_>, scope: &'static Scope, c: &ast::StmtClassDef) -> bool {
    c.decorator_list.iter().any(|d| {
        let target = match &d.expression {
            Expr::Call(call) => &*call.func,
            e => e,
        };
        w.external(scope, target)
            .is_some_and(|q| DATACLASS.contains(&q))
    })
}

fn is_base_model(w: &World<'_>, scope: &'static Scope, c: &ast::StmtClassDef, hops: usize) -> bool {
    hops < 8
        && c.arguments.as_ref().is_some_and(|a| {
            a.args.iter().any(|b| match w.resolve(scope, b) {
                Some(Found::External(q)) => MODEL_BASES.contains(&q),
                Some(Found::Class(s, parent)) => is_base_model(w, s, parent, hops + 1),
                _ => false,
            })
        })
}

/// One field: its name (or alias), schema, and whether it is required.
struct Field {
    name: String,
    schema: Map<String, Value>,
    required: bool,
}

/// The definition of a model or dataclass, or `None` when its fields cannot be read.
pub fn definition(
    t: &mut Types<'_, '_>,
    scope: &'static Scope,
    c: &ast::StmtClassDef,
) -> Option<Value> {
    let mut fields: Vec<Field> = Vec::new();
    collect_fields(t, scope, c, &mut fields, 0)?;
    let mut properties = Map::new();
    let mut required = Vec::new();
    for f in fields {
        if f.required {
            required.push(Value::String(f.name.clone()));
        }
        properties.insert(f.name, Value::Object(f.schema));
    }
    let mut out = json!({"properties": properties, "title": c.name.as_str(), "type": "object"});
    if !required.is_empty() {
        out["required"] = Value::Array(required);
    }
    if let Some(d) = super::enums::class_doc(c) {
        out["description"] = json!(d);
    }
    Some(out)
}

fn collect_fields(
    t: &mut Types<'_, '_>,
    scope: &'static Scope,
    c: &ast::StmtClassDef,
    out: &mut Vec<Field>,
    hops: usize,
) -> Option<()> {
    if hops > 8 {
        return None;
    }
    // Base classes' fields first (pydantic and dataclasses both order them so).
    if let Some(args) = &c.arguments {
        for b in args.args.iter() {
            if let Some(Found::Class(s, parent)) = t.world.resolve(scope, b)
                && is_model(t.world, s, parent)
            {
                collect_fields(t, s, parent, out, hops + 1)?;
            }
        }
    }
    for stmt in c.body.iter() {
        let Stmt::AnnAssign(a) = stmt else { continue };
        let Expr::Name(n) = &*a.target else { continue };
        let name = n.id.as_str();
        if name.starts_with('_') || is_class_var(t.world, scope, &a.annotation) {
            continue;
        }
        let field = field(t, scope, name, &a.annotation, a.value.as_deref());
        out.retain(|f| f.name != field.name);
        out.push(field);
    }
    Some(())
}

/// The value of `Model(a=1)` written as a default: the model's fields with their defaults, `a` replaced,
/// as pydantic writes a default instance into the schema. `None` when a field has no stated default and
/// is not given, a default is built by a factory, or an argument is positional or unknown.
pub fn instance(
    w: &World<'_>,
    caller: &'static Scope,
    scope: &'static Scope,
    c: &ast::StmtClassDef,
    call: &ast::ExprCall,
) -> Option<Value> {
    if !call.arguments.args.is_empty() {
        return None;
    }
    let mut fields: Vec<(String, Option<Value>)> = Vec::new();
    defaults(w, scope, c, &mut fields, 0)?;
    for k in call.arguments.keywords.iter() {
        let name = k.arg.as_ref()?.as_str();
        let slot = fields.iter_mut().find(|(n, _)| n == name)?;
        slot.1 = Some(w.value(caller, &k.value)?);
    }
    let mut out = Map::new();
    for (name, value) in fields {
        out.insert(name, value?);
    }
    Some(Value::Object(out))
}

/// Each field and its default (`None`: the field has none), base classes first; `None` when a default is
/// there but unknown.
fn defaults(
    w: &World<'_>,
    scope: &'static Scope,
    c: &ast::StmtClassDef,
    out: &mut Vec<(String, Option<Value>)>,
    hops: usize,
) -> Option<()> {
    if hops > 8 {
        return None;
    }
    if let Some(args) = &c.arguments {
        for b in args.args.iter() {
            if let Some(Found::Class(s, parent)) = w.resolve(scope, b)
                && is_model(w, s, parent)
            {
                defaults(w, s, parent, out, hops + 1)?;
            }
        }
    }
    for stmt in c.body.iter() {
        let Stmt::AnnAssign(a) = stmt else { continue };
        let Expr::Name(n) = &*a.target else { continue };
        let name = n.id.as_str();
        if name.starts_with('_') || is_class_var(w, scope, &a.annotation) {
            continue;
        }
        let value = match a.value.as_deref() {
            None => None,
            Some(Expr::Call(f)) if is_field_call(w, scope, &f.func) => {
                let kw = f
                    .arguments
                    .keywords
                    .iter()
                    .find(|k| k.arg.as_ref().is_some_and(|x| x.as_str() == "default"));
                match f.arguments.args.first().or(kw.map(|k| &k.value)) {
                    None | Some(Expr::EllipsisLiteral(_)) => None,
                    Some(d) => Some(w.value(scope, d)?),
                }
            }
            Some(d) => Some(w.value(scope, d)?),
        };
        out.retain(|(n, _)| n != name);
        out.push((name.to_string(), value));
    }
    Some(())
}

fn is_class_var(w: &World<'_>, scope: &'static Scope, ann: &Expr) -> bool {
    let base = match ann {
        Expr::Subscript(s) => &*s.value,
        e => e,
    };
    w.external(scope, base)
        .is_some_and(|q| q.ends_with("ClassVar"))
}

fn field(
    t: &mut Types<'_, '_>,
    scope: &'static Scope,
    name: &str,
    annotation: &Expr,
    value: Option<&Expr>,
) -> Field {
    let ty = t.of(scope, annotation);
    let mut schema = ty.as_object().cloned().unwrap_or_default();
    let mut required = value.is_none();
    let mut prop_name = name.to_string();
    let mut title = Some(title_of(name));
    // pydantic leaves the title off a field whose type is a reference (or an optional reference).
    if refers(&ty) {
        title = None;
    }
    match value {
        Some(Expr::Call(call)) if is_field_call(t.world, scope, &call.func) => {
            let kw = |k: &str| {
                call.arguments
                    .keywords
                    .iter()
                    .find(|x| x.arg.as_ref().is_some_and(|a| a.as_str() == k))
                    .map(|x| &x.value)
            };
            let default = call.arguments.args.first().or_else(|| kw("default"));
            required = match default {
                Some(Expr::EllipsisLiteral(_)) => true,
                Some(d) => {
                    if let Some(v) = t.world.value(scope, d) {
                        schema.insert("default".into(), v);
                    }
                    false
                }
                None => kw("default_factory").is_none(),
            };
            if let Some(Value::String(d)) = kw("description").and_then(|e| t.world.value(scope, e))
            {
                schema.insert("description".into(), json!(d));
            }
            if let Some(Value::String(a)) = kw("alias").and_then(|e| t.world.value(scope, e)) {
                prop_name = a;
            }
            if let Some(Value::String(tt)) = kw("title").and_then(|e| t.world.value(scope, e)) {
                title = Some(tt);
            }
            for (k, key) in CONSTRAINTS {
                if let Some(v) = kw(k).and_then(|e| t.world.value(scope, e)) {
                    schema.insert(key.into(), v);
                }
            }
            let is_array = schema.get("type").is_some_and(|t| t == "array");
            for (k, arr, text) in [
                ("min_length", "minItems", "minLength"),
                ("max_length", "maxItems", "maxLength"),
            ] {
                if let Some(v) = kw(k).and_then(|e| t.world.value(scope, e)) {
                    schema.insert((if is_array { arr } else { text }).into(), v);
                }
            }
        }
        Some(d) => {
            if let Some(v) = t.world.value(scope, d) {
                schema.insert("default".into(), v);
            }
        }
        None => {}
    }
    if let Some(title) = title {
        schema.insert("title".into(), json!(title));
    }
    Field {
        name: prop_name,
        schema,
        required,
    }
}

fn is_field_call(w: &World<'_>, scope: &'static Scope, func: &Expr) -> bool {
    w.external(scope, func).is_some_and(|q| {
        matches!(
            q,
            "pydantic.Field" | "pydantic.fields.Field" | "dataclasses.field" | "field" | "Field"
        )
    })
}

/// A schema that is a `$ref`, or `anyOf` a `$ref` and null.
fn refers(ty: &Value) -> bool {
    if ty.get("$ref").is_some() {
        return true;
    }
    match ty.get("anyOf").and_then(Value::as_array) {
        Some(m) => {
            m.len() == 2
                && m.iter().any(|x| x.get("$ref").is_some())
                && m.iter().any(|x| x == &json!({"type": "null"}))
        }
        None => false,
    }
}

/// pydantic's default field title: `start_date` → `Start Date` (`str.title()` of the name with `_` → ` `).
pub fn title_of(name: &str) -> String {
    let spaced = name.replace('_', " ");
    let mut out = String::with_capacity(spaced.len());
    let mut prev_cased = false;
    for ch in spaced.chars() {
        if ch.is_alphabetic() {
            if prev_cased {
                out.extend(ch.to_lowercase());
            } else {
                out.extend(ch.to_uppercase());
            }
            prev_cased = true;
        } else {
            out.push(ch);
            prev_cased = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn titles_as_python_title_case() {
        assert_eq!(super::title_of("start_date"), "Start Date");
        assert_eq!(super::title_of("x"), "X");
        assert_eq!(super::title_of("dbt2x"), "Dbt2X");
        assert_eq!(super::title_of("HTTPPort"), "Httpport");
    }
}
