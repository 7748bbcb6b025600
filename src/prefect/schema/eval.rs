//! Values the source states without running it: Python literals, module constants (also imported ones),
//! Enum members, `date(2024, 1, 1)`, and what import-time code reads from the environment
//! (`int(os.getenv("N", "5"))`, `os.environ.get(...)`, `os.environ["X"]`), evaluated against the environment
//! flowship runs in, as Python would at `prefect deploy` time. Anything else is unknown (`None`): a default
//! that is unknown is left out of the schema, never guessed.

use super::enums;
use super::scope::{Found, World};
use ruff_python_ast::{self as ast, Expr};
use serde_json::{Map, Value, json};

/// How deep constants referring to constants are followed.
const MAX_DEPTH: usize = 16;

impl World<'_> {
    pub fn value(&self, scope: &'static super::scope::Scope, e: &Expr) -> Option<Value> {
        self.value_at(scope, e, 0)
    }

    fn value_at(
        &self,
        scope: &'static super::scope::Scope,
        e: &Expr,
        depth: usize,
    ) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        let v = |x: &Expr| self.value_at(scope, x, depth + 1);
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
            Expr::UnaryOp(u) if matches!(u.op, ast::UnaryOp::USub) => match v(&u.operand)? {
                Value::Number(n) if n.is_i64() => json!(-n.as_i64()?),
                Value::Number(n) => json!(-n.as_f64()?),
                _ => return None,
            },
            Expr::BinOp(b) if matches!(b.op, ast::Operator::Add) => {
                match (v(&b.left)?, v(&b.right)?) {
                    (Value::String(l), Value::String(r)) => Value::String(l + &r),
                    (Value::Number(l), Value::Number(r)) if l.is_i64() && r.is_i64() => {
                        json!(l.as_i64()?.checked_add(r.as_i64()?)?)
                    }
                    _ => return None,
                }
            }
            Expr::List(l) => Value::Array(l.elts.iter().map(v).collect::<Option<_>>()?),
            Expr::Tuple(t) => Value::Array(t.elts.iter().map(v).collect::<Option<_>>()?),
            Expr::Set(s) => Value::Array(s.elts.iter().map(v).collect::<Option<_>>()?),
            Expr::Dict(d) => {
                let mut out = Map::new();
                for item in &d.items {
                    let Value::String(k) = v(item.key.as_ref()?)? else {
                        return None;
                    };
                    out.insert(k, v(&item.value)?);
                }
                Value::Object(out)
            }
            Expr::Name(_) => match self.resolve(scope, e)? {
                Found::Const(s, c) => self.value_at(s, c, depth + 1)?,
                _ => return None,
            },
            Expr::Attribute(a) => self.member(scope, a, depth)?,
            // os.environ["X"]
            Expr::Subscript(s) if self.external(scope, &s.value) == Some("os.environ") => {
                let Value::String(k) = v(&s.slice)? else {
                    return None;
                };
                Value::String(self.env.get(&k)?.clone())
            }
            Expr::Call(c) => self.call(scope, c, depth)?,
            // `f"ingest_{PLATFORM}_{DB_NAME}"` of constants (a flow name built at import).
            Expr::FString(f) => {
                let mut out = String::new();
                for part in f.value.iter() {
                    match part {
                        ast::FStringPart::Literal(l) => out.push_str(&l.value),
                        ast::FStringPart::FString(fs) => {
                            for el in &fs.elements {
                                match el {
                                    ast::InterpolatedStringElement::Literal(l) => {
                                        out.push_str(&l.value)
                                    }
                                    ast::InterpolatedStringElement::Interpolation(i) => {
                                        if i.format_spec.is_some()
                                            || i.debug_text.is_some()
                                            || i.conversion != ast::ConversionFlag::None
                                        {
                                            return None;
                                        }
                                        match v(&i.expression)? {
                                            Value::String(s) => out.push_str(&s),
                                            Value::Number(n) => out.push_str(&n.to_string()),
                                            _ => return None,
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Value::String(out)
            }
            _ => return None,
        })
    }

    /// `Color.RED` → the member's value; `settings.NAME` → an imported module's constant.
    fn member(
        &self,
        scope: &'static super::scope::Scope,
        a: &ast::ExprAttribute,
        depth: usize,
    ) -> Option<Value> {
        // `Color.RED.value` (a default written as the member's value), `Color.RED.name`.
        if let Expr::Attribute(inner) = &*a.value
            && matches!(a.attr.as_str(), "value" | "name")
            && let Some(Found::Class(s, c)) = self.resolve(scope, &inner.value)
        {
            let (name, value) = enums::members(self, s, c)?
                .into_iter()
                .find(|(n, _)| n == inner.attr.as_str())?;
            return Some(match a.attr.as_str() {
                "name" => Value::String(name),
                _ => value,
            });
        }
        match self.resolve(scope, &a.value)? {
            Found::Class(s, c) => enums::members(self, s, c)?
                .into_iter()
                .find(|(n, _)| n == a.attr.as_str())
                .map(|(_, v)| v),
            Found::External(_) => match self.resolve(scope, &Expr::Attribute(a.clone()))? {
                Found::Const(s, c) => self.value_at(s, c, depth + 1),
                _ => None,
            },
            _ => None,
        }
    }

    fn call(
        &self,
        scope: &'static super::scope::Scope,
        c: &ast::ExprCall,
        depth: usize,
    ) -> Option<Value> {
        // `Flags()` / `Window(days=2)`: a default instance of a pydantic model or dataclass.
        if let Some(Found::Class(s, class)) = self.resolve(scope, &c.func)
            && super::models::is_model(self, s, class)
        {
            return super::models::instance(self, scope, s, class, c);
        }
        let q = self.external(scope, &c.func)?;
        let args: Vec<&Expr> = c.arguments.args.iter().collect();
        let kw = |name: &str| {
            c.arguments
                .keywords
                .iter()
                .find(|k| k.arg.as_ref().is_some_and(|a| a.as_str() == name))
                .map(|k| &k.value)
        };
        let v = |x: &Expr| self.value_at(scope, x, depth + 1);
        match q {
            "os.getenv" | "os.environ.get" => {
                let Value::String(name) = v(args.first()?)? else {
                    return None;
                };
                match self.env.get(&name) {
                    Some(val) => Some(Value::String(val.clone())),
                    None => match args.get(1).copied().or_else(|| kw("default")) {
                        Some(d) => v(d),
                        None => Some(Value::Null),
                    },
                }
            }
            "int" => match v(args.first()?)? {
                Value::String(s) => s.trim().parse::<i64>().ok().map(|i| json!(i)),
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().map(|f| f.trunc() as i64))
                    .map(|i| json!(i)),
                Value::Bool(b) => Some(json!(b as i64)),
                _ => None,
            },
            "float" => match v(args.first()?)? {
                Value::String(s) => s.trim().parse::<f64>().ok().map(|f| json!(f)),
                Value::Number(n) => n.as_f64().map(|f| json!(f)),
                _ => None,
            },
            "str" => match v(args.first()?)? {
                Value::String(s) => Some(Value::String(s)),
                Value::Number(n) => Some(Value::String(n.to_string())),
                _ => None,
            },
            "datetime.date" | "datetime.datetime" => {
                let nums: Vec<i64> = args.iter().map(|a| v(a)?.as_i64()).collect::<Option<_>>()?;
                let g = |i: usize| nums.get(i).copied().unwrap_or(0);
                match (q, nums.len()) {
                    ("datetime.date", 3) => {
                        Some(json!(format!("{:04}-{:02}-{:02}", g(0), g(1), g(2))))
                    }
                    ("datetime.datetime", 3..) => Some(json!(format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                        g(0),
                        g(1),
                        g(2),
                        g(3),
                        g(4),
                        g(5)
                    ))),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}
