//! The admin functions, called as `SELECT tessera_move_replica('sh1', 2, 4)` from any client:
//! they change where shards live, through the catalog, which carries the change out as tasks
//! (`SELECT * FROM tessera.tasks` shows their progress). Each returns one bigint:
//!
//! - `tessera_move_replica(shard text, from_node bigint, to_node bigint)`: the move's task id;
//! - `tessera_set_replicas(table text, replicas int)`: how many replicas will be added or
//!   removed to get there;
//! - `tessera_remove_node(node bigint)`: how many replicas will move off the node before it
//!   leaves the cluster;
//! - `tessera_add_node(addr text)`: waits (up to 30 s) until the node started at `addr` has
//!   registered, then moves its share of replicas to it, one at a time; returns how many;
//! - `tessera_add_node()` and `tessera_add_nodes(count int)`: the same for nodes the
//!   catalog's provisioner starts (`--provisioner process` or `docker`);
//! - `tessera_rebalance()`: the same without a new node: how many replicas will move until no
//!   live node holds more than one replica more than another;
//! - `tessera_split_shard(table text, shard text, at [, name text])`: splits a range shard at
//!   the partition key value `at` while writes go on, and returns the split's task id once the
//!   new shard (named `name`, by default `<shard>_<at>`) serves the rows from `at` up.
//!
//! Arguments are constants (literals or parameters are not mixed with columns: there is no
//! table to read).

use sqlparser::ast;
use tessera_types::rpc::AdminRequest;

use crate::error::{Error, Result};
use crate::sql::expr::string_value;
use crate::sql::names::object_parts;
use crate::sql::Bound;

/// The names of the admin functions, with the types they take (for error messages).
const FUNCTIONS: [(&str, &str); 7] = [
    ("tessera_move_replica", "text, bigint, bigint"),
    ("tessera_set_replicas", "text, integer"),
    ("tessera_remove_node", "bigint"),
    ("tessera_add_node", "text, or nothing"),
    ("tessera_add_nodes", "integer"),
    ("tessera_rebalance", ""),
    ("tessera_split_shard", "text, text, a partition key value [, text]"),
];

/// An argument as the admin functions take it.
enum Arg {
    Text(String),
    Int(i64),
}

impl Arg {
    fn type_name(&self) -> &'static str {
        match self {
            Arg::Text(_) => "unknown",
            Arg::Int(_) => "integer",
        }
    }
}

/// Binds `SELECT tessera_xxx(...)` (nothing else in the query), or returns `None` when the
/// query is not a call of an admin function.
pub fn bind_admin(q: &ast::Query) -> Option<Result<Bound>> {
    let ast::SetExpr::Select(select) = q.body.as_ref() else {
        return None;
    };
    let [item] = select.projection.as_slice() else {
        return None;
    };
    let (f, alias) = match item {
        ast::SelectItem::UnnamedExpr(ast::Expr::Function(f)) => (f, None),
        ast::SelectItem::ExprWithAlias {
            expr: ast::Expr::Function(f),
            alias,
        } => (f, Some(crate::sql::names::ident(alias))),
        _ => return None,
    };
    let parts = object_parts(&f.name);
    let name = match parts.as_slice() {
        [name] | [_, name] => name.clone(),
        _ => return None,
    };
    let (_, signature) = FUNCTIONS.iter().find(|(n, _)| *n == name)?;
    if !select.from.is_empty() || select.selection.is_some() || q.order_by.is_some() || q.limit_clause.is_some() {
        return Some(Err(Error::Unsupported(format!(
            "{name}() is called on its own: SELECT {name}({signature})"
        ))));
    }
    Some(bind_call(&name, f, signature).map(|request| Bound::Admin {
        request,
        column: alias.unwrap_or(name),
    }))
}

fn bind_call(name: &str, f: &ast::Function, signature: &str) -> Result<AdminRequest> {
    let args = arguments(name, f)?;
    let undefined = || {
        let given: Vec<&str> = args.iter().map(Arg::type_name).collect();
        Error::UndefinedFunction(format!("{name}({}) (it takes {signature})", given.join(", ")))
    };
    Ok(match (name, args.as_slice()) {
        ("tessera_move_replica", [Arg::Text(shard), Arg::Int(from), Arg::Int(to)]) => AdminRequest::MoveReplica {
            shard: shard.clone(),
            from: node_id(*from)?,
            to: node_id(*to)?,
        },
        ("tessera_set_replicas", [Arg::Text(table), Arg::Int(replicas)]) => AdminRequest::SetReplicas {
            table: table.clone(),
            replicas: *replicas,
        },
        ("tessera_remove_node", [Arg::Int(node)]) => AdminRequest::RemoveNode { node: node_id(*node)? },
        ("tessera_add_node", [Arg::Text(addr)]) => AdminRequest::AddNode { addr: addr.clone() },
        ("tessera_add_node", []) => AdminRequest::ProvisionNodes { count: 1 },
        ("tessera_add_nodes", [Arg::Int(count)]) => AdminRequest::ProvisionNodes { count: *count },
        ("tessera_rebalance", []) => AdminRequest::Rebalance,
        ("tessera_split_shard", [Arg::Text(table), Arg::Text(shard), at, rest @ ..]) if rest.len() <= 1 => {
            let name = match rest {
                [Arg::Text(name)] => Some(name.clone()),
                [] => None,
                _ => return Err(undefined()),
            };
            AdminRequest::SplitShard {
                table: table.clone(),
                shard: shard.clone(),
                at: match at {
                    Arg::Int(n) => tessera_types::Value::Int8(*n),
                    Arg::Text(s) => tessera_types::Value::Text(s.clone()),
                },
                name,
            }
        }
        _ => return Err(undefined()),
    })
}

fn node_id(n: i64) -> Result<u64> {
    u64::try_from(n).ok().filter(|n| *n > 0).ok_or_else(|| {
        Error::Exec(tessera_types::ExecError::other(
            "22023",
            format!("node {n} does not exist"),
        ))
    })
}

/// The constant arguments of an admin function call.
fn arguments(name: &str, f: &ast::Function) -> Result<Vec<Arg>> {
    let list = match &f.args {
        ast::FunctionArguments::List(list) => &list.args[..],
        ast::FunctionArguments::None => &[],
        ast::FunctionArguments::Subquery(_) => {
            return Err(Error::Unsupported(format!("{name}() takes constant arguments")))
        }
    };
    list.iter()
        .map(|a| {
            let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(e)) = a else {
                return Err(Error::Unsupported(format!("{name}() takes its arguments by position")));
            };
            constant(e).ok_or_else(|| Error::Unsupported(format!("{name}() takes constant arguments, not {e}")))
        })
        .collect()
}

fn constant(e: &ast::Expr) -> Option<Arg> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok().map(Arg::Int),
            other => string_value(other).map(|s| Arg::Text(s.to_string())),
        },
        ast::Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => match constant(expr)? {
            Arg::Int(n) => Some(Arg::Int(-n)),
            Arg::Text(_) => None,
        },
        ast::Expr::Cast { expr, .. } | ast::Expr::Nested(expr) => constant(expr),
        _ => None,
    }
}
