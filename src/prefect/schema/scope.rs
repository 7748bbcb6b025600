//! What a module's names refer to, across the project's own modules: `from lib.compat import flow` where
//! `lib/compat.py` says `from prefect import flow` is Prefect's `flow`; a pydantic model imported from
//! `.models` is that class; `FLOW_NAME` imported from `settings` is its string. Names from modules outside
//! the project (prefect, pydantic, typing, the standard library) resolve to their dotted names.

use crate::prefect::python::{Body, Sources};
use ruff_python_ast::{self as ast, Expr, Stmt};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// One module's top-level names.
#[derive(Default)]
pub struct Scope {
    /// The package relative imports start from (`a.b` for `a/b/c.py`).
    package: String,
    /// Local name → dotted name it was imported as (`dt` → `datetime.datetime`).
    aliases: HashMap<String, String>,
    pub classes: HashMap<String, &'static ast::StmtClassDef>,
    pub functions: HashMap<String, &'static ast::StmtFunctionDef>,
    /// Module-level `NAME = expr` (the last assignment wins, as at import).
    constants: HashMap<String, &'static Expr>,
}

/// What a name refers to.
#[derive(Clone, Copy)]
pub enum Found<'w> {
    /// Something outside the project, by its dotted name (`typing.Optional`, `prefect.flow`, `str`).
    External(&'w str),
    Class(&'w Scope, &'static ast::StmtClassDef),
    /// A function of the project (not a value a schema can use).
    Function,
    Const(&'w Scope, &'static Expr),
}

/// The project's modules, each summarised once, and the environment import-time code reads.
pub struct World<'s> {
    sources: &'s Sources,
    pub env: &'s BTreeMap<String, String>,
    modules: RefCell<HashMap<String, Option<&'static Scope>>>,
    /// Interned dotted names of external things (so `Found::External` can borrow).
    names: RefCell<Vec<&'static str>>,
}

/// How many imports deep a name is followed (re-exports of re-exports); cycles stop here too.
const MAX_HOPS: usize = 12;

impl<'s> World<'s> {
    pub fn new(sources: &'s Sources, env: &'s BTreeMap<String, String>) -> Self {
        Self {
            sources,
            env,
            modules: RefCell::new(HashMap::new()),
            names: RefCell::new(Vec::new()),
        }
    }

    /// The scope of a parsed body, as module `dotted` (empty when the file is not under a root).
    pub fn scope_of(&self, body: Body, dotted: &str, is_package: bool) -> &'static Scope {
        let package = if is_package {
            dotted.to_string()
        } else {
            dotted
                .rsplit_once('.')
                .map(|(p, _)| p.to_string())
                .unwrap_or_default()
        };
        let mut s = Scope {
            package,
            ..Scope::default()
        };
        for stmt in body {
            s.collect(stmt);
        }
        Box::leak(Box::new(s))
    }

    /// The scope of the file at `path` (the flow's own file).
    pub fn file_scope(&self, path: &Path, body: Body) -> &'static Scope {
        let dotted = self.sources.module_name(path).unwrap_or_default();
        let is_package = path.file_name().is_some_and(|n| n == "__init__.py");
        self.scope_of(body, &dotted, is_package)
    }

    /// The project's module `dotted`, if the project has it.
    pub fn module(&self, dotted: &str) -> Option<&'static Scope> {
        if let Some(hit) = self.modules.borrow().get(dotted) {
            return *hit;
        }
        // Remember "not found / being read" first: a cycle of imports ends here.
        self.modules.borrow_mut().insert(dotted.to_string(), None);
        let file = self.sources.module_file(dotted)?;
        let body = self.sources.parse(&file)?;
        let is_package = file.file_name().is_some_and(|n| n == "__init__.py");
        let scope = self.scope_of(body, dotted, is_package);
        self.modules
            .borrow_mut()
            .insert(dotted.to_string(), Some(scope));
        Some(scope)
    }

    fn intern(&self, s: String) -> &'static str {
        let s: &'static str = Box::leak(s.into_boxed_str());
        self.names.borrow_mut().push(s);
        s
    }

    /// What expression `e` in `scope` names.
    pub fn resolve(&self, scope: &'static Scope, e: &Expr) -> Option<Found<'static>> {
        self.resolve_hops(scope, e, 0)
    }

    fn resolve_hops(&self, scope: &'static Scope, e: &Expr, hops: usize) -> Option<Found<'static>> {
        match e {
            Expr::Name(n) => self.lookup(scope, n.id.as_str(), hops),
            Expr::Attribute(a) => match self.resolve_hops(scope, &a.value, hops)? {
                Found::External(q) => {
                    Some(self.dotted(&format!("{q}.{}", a.attr.as_str()), hops + 1))
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// A name in `scope`: its own definitions, then its imports (followed into the project's modules).
    fn lookup(&self, scope: &'static Scope, name: &str, hops: usize) -> Option<Found<'static>> {
        if hops > MAX_HOPS {
            return None;
        }
        if let Some(c) = scope.classes.get(name) {
            return Some(Found::Class(scope, c));
        }
        if scope.functions.contains_key(name) {
            return Some(Found::Function);
        }
        if let Some(c) = scope.constants.get(name) {
            // `flow = prefect.flow`, `Cfg = Config`: an alias by assignment.
            if matches!(c, Expr::Name(_) | Expr::Attribute(_))
                && let Some(f) = self.resolve_hops(scope, c, hops + 1)
            {
                return Some(f);
            }
            return Some(Found::Const(scope, c));
        }
        if let Some(q) = scope.aliases.get(name) {
            return Some(self.dotted(q, hops + 1));
        }
        Some(Found::External(self.intern(name.to_string())))
    }

    /// A dotted name: the longest prefix that is a project module, then the rest looked up in it.
    fn dotted(&self, q: &str, hops: usize) -> Found<'static> {
        let parts: Vec<&str> = q.split('.').collect();
        if hops <= MAX_HOPS {
            for i in (1..parts.len()).rev() {
                if i + 1 != parts.len() {
                    continue;
                }
                if let Some(m) = self.module(&parts[..i].join("."))
                    && let Some(found) = self.lookup_defined(m, parts[i], hops)
                {
                    return found;
                }
            }
        }
        Found::External(self.intern(q.to_string()))
    }

    /// Like `lookup`, but a name the module does not define or import is not found (rather than external).
    fn lookup_defined(
        &self,
        scope: &'static Scope,
        name: &str,
        hops: usize,
    ) -> Option<Found<'static>> {
        let known = scope.classes.contains_key(name)
            || scope.functions.contains_key(name)
            || scope.constants.contains_key(name)
            || scope.aliases.contains_key(name);
        if known {
            self.lookup(scope, name, hops)
        } else {
            None
        }
    }

    /// The dotted name `e` refers to when it is external (`typing.Optional`), for type names.
    pub fn external(&self, scope: &'static Scope, e: &Expr) -> Option<&'static str> {
        match self.resolve(scope, e)? {
            Found::External(q) => Some(q),
            _ => None,
        }
    }
}

impl Scope {
    fn collect(&mut self, stmt: &'static Stmt) {
        match stmt {
            Stmt::Import(i) => {
                for a in &i.names {
                    match &a.asname {
                        Some(local) => {
                            self.aliases
                                .insert(local.to_string(), a.name.as_str().to_string());
                        }
                        // `import a.b` binds `a`.
                        None => {
                            let top = a.name.as_str().split('.').next().unwrap_or_default();
                            self.aliases.insert(top.to_string(), top.to_string());
                        }
                    }
                }
            }
            Stmt::ImportFrom(i) => {
                let module = i.module.as_ref().map(|m| m.as_str()).unwrap_or("");
                let base = if i.level == 0 {
                    module.to_string()
                } else {
                    let mut pkg: Vec<&str> =
                        self.package.split('.').filter(|p| !p.is_empty()).collect();
                    for _ in 1..i.level {
                        pkg.pop();
                    }
                    if !module.is_empty() {
                        pkg.push(module);
                    }
                    pkg.join(".")
                };
                for a in &i.names {
                    let local = a.asname.as_ref().unwrap_or(&a.name).as_str().to_string();
                    let full = if base.is_empty() {
                        a.name.as_str().to_string()
                    } else {
                        format!("{base}.{}", a.name.as_str())
                    };
                    self.aliases.insert(local, full);
                }
            }
            Stmt::ClassDef(c) => {
                self.classes.insert(c.name.as_str().to_string(), c);
            }
            Stmt::FunctionDef(f) => {
                self.functions.insert(f.name.as_str().to_string(), f);
            }
            Stmt::Assign(a) => {
                if let [Expr::Name(n)] = a.targets.as_slice() {
                    self.constants.insert(n.id.to_string(), &a.value);
                }
            }
            Stmt::AnnAssign(a) => {
                if let (Expr::Name(n), Some(v)) = (&*a.target, &a.value) {
                    self.constants.insert(n.id.to_string(), v);
                }
            }
            // Definitions under `if TYPE_CHECKING:` / `try: import x except ImportError:` count as at import.
            Stmt::If(i) => {
                let rest = i.elif_else_clauses.iter().map(|c| c.body.as_slice());
                self.collect_branches(std::iter::once(i.body.as_slice()).chain(rest));
            }
            Stmt::Try(t) => {
                let handlers = t.handlers.iter().map(|h| match h {
                    ast::ExceptHandler::ExceptHandler(h) => h.body.as_slice(),
                });
                let branches = std::iter::once(t.body.as_slice())
                    .chain(handlers)
                    .chain([t.orelse.as_slice(), t.finalbody.as_slice()]);
                self.collect_branches(branches);
            }
            _ => {}
        }
    }

    /// The branches of an `if`/`elif`/`else` or `try`/`except`/`else`/`finally`, whichever runs: a name the
    /// first branch binds keeps that binding. A name any branch *imports* is that import, whatever stand-in
    /// another branch defines: the "works without the package installed" pattern (`if skip_prefect(): def
    /// flow(...)` / `else: from prefect import flow`, or `try: from prefect import flow` / `except
    /// ImportError: def flow(...)`) imports the real thing where the package is installed, and that is
    /// where `prefect deploy` and the workers run.
    fn collect_branches(&mut self, branches: impl Iterator<Item = &'static [Stmt]>) {
        let mut imported = Vec::new();
        for body in branches {
            let mut b = Scope {
                package: self.package.clone(),
                ..Scope::default()
            };
            for stmt in body {
                b.collect(stmt);
            }
            imported.extend(b.aliases.keys().cloned());
            self.merge_first_wins(b);
        }
        for name in imported {
            self.classes.remove(&name);
            self.functions.remove(&name);
            self.constants.remove(&name);
        }
    }

    /// `other`'s bindings added where this branch set has none yet.
    fn merge_first_wins(&mut self, other: Scope) {
        for (k, v) in other.aliases {
            self.aliases.entry(k).or_insert(v);
        }
        for (k, v) in other.classes {
            self.classes.entry(k).or_insert(v);
        }
        for (k, v) in other.functions {
            self.functions.entry(k).or_insert(v);
        }
        for (k, v) in other.constants {
            self.constants.entry(k).or_insert(v);
        }
    }
}
