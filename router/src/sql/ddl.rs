//! Binding schema changes into catalog requests: CREATE TABLE (columns, types, NOT NULL,
//! DEFAULT, PRIMARY KEY, `PARTITION BY RANGE|HASH`, `WITH (replicas = N)`), `CREATE TABLE ...
//! PARTITION OF ... FOR VALUES`, and DROP TABLE. The catalog validates what needs the whole
//! schema (name clashes, overlapping partitions).

use sqlparser::ast;
use tessera_types::rpc::DdlRequest;
use tessera_types::schema::{ColumnDef, PartitionMethod, Partitioning, ShardBounds};
use tessera_types::Expr;

use crate::error::{Error, Result};
use crate::sql::expr::{Coercion, Ctx, ExprBinder, Scope};
use crate::sql::names::{data_type, ident, object_parts, table_name};

fn plain_name(name: &ast::ObjectName) -> Result<String> {
    let (schema, name) = table_name(name)?;
    match schema.as_deref() {
        None | Some("public") => Ok(name),
        Some(other) => Err(Error::Unsupported(format!(
            "schema \"{other}\" is not supported; tables live in schema public"
        ))),
    }
}

pub fn bind_create_table(ctx: &Ctx, ct: &ast::CreateTable) -> Result<DdlRequest> {
    if ct.temporary {
        return Err(Error::Unsupported("temporary tables are not supported".into()));
    }
    if ct.query.is_some() {
        return Err(Error::Unsupported("CREATE TABLE ... AS is not supported yet".into()));
    }
    if ct.like.is_some() || ct.inherits.is_some() {
        return Err(Error::Unsupported(
            "CREATE TABLE ... LIKE/INHERITS is not supported".into(),
        ));
    }
    let name = plain_name(&ct.name)?;
    if let Some(parent) = &ct.partition_of {
        return bind_partition(ctx, name, parent, ct);
    }
    let mut columns: Vec<ColumnDef> = Vec::new();
    let mut primary_key: Vec<usize> = Vec::new();
    let mut pk_declared = false;
    for (i, c) in ct.columns.iter().enumerate() {
        let ty = data_type(&c.data_type)?;
        let col_name = ident(&c.name);
        let mut def = ColumnDef {
            name: col_name.clone(),
            ty,
            not_null: false,
            default: None,
        };
        for opt in &c.options {
            match &opt.option {
                ast::ColumnOption::Null => {}
                ast::ColumnOption::NotNull => def.not_null = true,
                ast::ColumnOption::Default(e) => {
                    // The default must make sense now, not only when a row is inserted.
                    let scope = Scope::empty();
                    let mut b = ExprBinder::new(ctx, &scope, "DEFAULT expressions");
                    let te = b.bind(e)?;
                    b.coerce(te, ty, Coercion::Assignment)?;
                    def.default = Some(e.to_string());
                }
                ast::ColumnOption::PrimaryKey(_) => {
                    if pk_declared {
                        return Err(multiple_pk(&name));
                    }
                    pk_declared = true;
                    primary_key = vec![i];
                }
                ast::ColumnOption::Unique(_) => {
                    return Err(Error::Unsupported(
                        "UNIQUE constraints are not supported yet (the primary key is unique)".into(),
                    ))
                }
                ast::ColumnOption::Check(_) => {
                    return Err(Error::Unsupported("CHECK constraints are not supported yet".into()))
                }
                ast::ColumnOption::ForeignKey(_) => {
                    return Err(Error::Unsupported("foreign keys are not supported yet".into()))
                }
                ast::ColumnOption::Collation(c)
                    if object_parts(c)
                        .last()
                        .is_some_and(|n| n == "C" || n == "default" || n == "c") => {}
                other => return Err(Error::Unsupported(format!("column option {other} is not supported"))),
            }
        }
        columns.push(def);
    }
    for c in &ct.constraints {
        match c {
            ast::TableConstraint::PrimaryKey(pk) => {
                if pk_declared {
                    return Err(multiple_pk(&name));
                }
                pk_declared = true;
                primary_key = key_columns(pk, &columns)?;
            }
            ast::TableConstraint::Unique(_) => {
                return Err(Error::Unsupported(
                    "UNIQUE constraints are not supported yet (the primary key is unique)".into(),
                ))
            }
            ast::TableConstraint::Check(_) => {
                return Err(Error::Unsupported("CHECK constraints are not supported yet".into()))
            }
            ast::TableConstraint::ForeignKey(_) => {
                return Err(Error::Unsupported("foreign keys are not supported yet".into()))
            }
            other => return Err(Error::Unsupported(format!("constraint {other} is not supported"))),
        }
    }
    for &i in &primary_key {
        columns[i].not_null = true;
    }
    let partitioning = match &ct.partition_by {
        None => None,
        Some(p) => Some(partition_spec(p, &columns)?),
    };
    let mut replicas = None;
    match &ct.table_options {
        ast::CreateTableOptions::None => {}
        ast::CreateTableOptions::With(opts) => {
            for o in opts {
                match o {
                    ast::SqlOption::KeyValue { key, value } if ident(key) == "replicas" => {
                        let n: u32 = match value {
                            ast::Expr::Value(v) => match &v.value {
                                ast::Value::Number(n, _) => n.parse().ok(),
                                _ => None,
                            },
                            _ => None,
                        }
                        .filter(|n| (1..=9).contains(n))
                        .ok_or_else(|| {
                            Error::InvalidParameter(format!("replicas must be an integer from 1 to 9, not {value}"))
                        })?;
                        replicas = Some(n);
                    }
                    // PostgreSQL's storage parameters tune its heap files, which Tessera does
                    // not have: accepted so that scripts written for PostgreSQL (pgbench -i's
                    // `WITH (fillfactor=100)`) run, and ignored.
                    ast::SqlOption::KeyValue { key, .. } if is_storage_parameter(&ident(key)) => {}
                    ast::SqlOption::KeyValue { key, .. } => {
                        return Err(Error::InvalidParameter(format!(
                            "unrecognized parameter \"{}\"",
                            ident(key)
                        )))
                    }
                    other => return Err(Error::Unsupported(format!("table option {other} is not supported"))),
                }
            }
        }
        other => return Err(Error::Unsupported(format!("table options {other} are not supported"))),
    }
    Ok(DdlRequest::CreateTable {
        name,
        columns,
        primary_key,
        partitioning,
        replicas,
        if_not_exists: ct.if_not_exists,
    })
}

/// The positions in `columns` of a PRIMARY KEY constraint's columns.
fn key_columns(pk: &ast::PrimaryKeyConstraint, columns: &[ColumnDef]) -> Result<Vec<usize>> {
    let mut key = Vec::new();
    for ic in &pk.columns {
        let ast::Expr::Identifier(id) = &ic.column.expr else {
            return Err(Error::Unsupported(
                "primary keys on expressions are not supported".into(),
            ));
        };
        let n = ident(id);
        let i = columns
            .iter()
            .position(|c| c.name == n)
            .ok_or_else(|| Error::UndefinedColumn(format!("{n}\" named in key")))?;
        if key.contains(&i) {
            return Err(Error::Exec(tessera_types::ExecError::other(
                "42701",
                format!("column \"{n}\" appears twice in primary key constraint"),
            )));
        }
        key.push(i);
    }
    Ok(key)
}

/// `ALTER TABLE name ADD [CONSTRAINT c] PRIMARY KEY (columns)`, the one ALTER TABLE there is.
pub fn bind_alter_table(ctx: &Ctx, at: &ast::AlterTable) -> Result<DdlRequest> {
    let name = plain_name(&at.name)?;
    let [ast::AlterTableOperation::AddConstraint {
        constraint: ast::TableConstraint::PrimaryKey(pk),
        ..
    }] = at.operations.as_slice()
    else {
        return Err(Error::Unsupported(
            "ALTER TABLE is not supported yet, except ADD PRIMARY KEY".into(),
        ));
    };
    let Some(table) = ctx.map.table_by_name(&name) else {
        return Err(Error::UndefinedTable(name));
    };
    if !table.primary_key.is_empty() {
        return Err(multiple_pk(&name));
    }
    Ok(DdlRequest::AddPrimaryKey {
        table: name,
        columns: key_columns(pk, &table.columns)?,
    })
}

fn multiple_pk(table: &str) -> Error {
    Error::Exec(tessera_types::ExecError::other(
        "42P16",
        format!("multiple primary keys for table \"{table}\" are not allowed"),
    ))
}

fn partition_spec(p: &ast::Expr, columns: &[ColumnDef]) -> Result<Partitioning> {
    let ast::Expr::Function(f) = p else {
        return Err(Error::Syntax(format!(
            "expected PARTITION BY RANGE (column) or HASH (column), found {p}"
        )));
    };
    let method = match object_parts(&f.name).last().map(String::as_str) {
        Some("range") => PartitionMethod::Range,
        Some("hash") => PartitionMethod::Hash,
        Some("list") => {
            return Err(Error::Unsupported(
                "PARTITION BY LIST is not supported yet; use RANGE or HASH".into(),
            ))
        }
        _ => return Err(Error::Syntax(format!("unrecognized partitioning strategy {}", f.name))),
    };
    let ast::FunctionArguments::List(list) = &f.args else {
        return Err(Error::Syntax("PARTITION BY needs a column list".into()));
    };
    let [ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(ast::Expr::Identifier(id)))] = list.args.as_slice()
    else {
        return Err(Error::Unsupported(
            "partitioning by several columns or by an expression is not supported yet".into(),
        ));
    };
    let name = ident(id);
    let column = columns
        .iter()
        .position(|c| c.name == name)
        .ok_or_else(|| Error::UndefinedColumn(format!("{name}\" named in partition key")))?;
    Ok(Partitioning { method, column })
}

fn bind_partition(ctx: &Ctx, name: String, parent: &ast::ObjectName, ct: &ast::CreateTable) -> Result<DdlRequest> {
    if !ct.columns.is_empty() || !ct.constraints.is_empty() {
        return Err(Error::Unsupported(
            "column definitions on a partition are not supported".into(),
        ));
    }
    if ct.partition_by.is_some() {
        return Err(Error::Unsupported("sub-partitioning is not supported".into()));
    }
    let parent_name = plain_name(parent)?;
    let table = ctx
        .map
        .table_by_name(&parent_name)
        .ok_or_else(|| Error::UndefinedTable(parent_name.clone()))?;
    let Some(part) = &table.partitioning else {
        return Err(Error::Exec(tessera_types::ExecError::other(
            "42809",
            format!("table \"{parent_name}\" is not partitioned"),
        )));
    };
    let key_ty = table.columns[part.column].ty;
    let bounds = match &ct.for_values {
        Some(ast::ForValues::From { from, to }) => {
            if part.method != PartitionMethod::Range {
                return Err(Error::Exec(tessera_types::ExecError::other(
                    "42P16",
                    "invalid bound specification for a hash partition",
                )));
            }
            let bound = |v: &[ast::PartitionBoundValue]| -> Result<Option<tessera_types::Value>> {
                match v {
                    [ast::PartitionBoundValue::MinValue] | [ast::PartitionBoundValue::MaxValue] => Ok(None),
                    [ast::PartitionBoundValue::Expr(e)] => {
                        let scope = Scope::empty();
                        let mut b = ExprBinder::new(ctx, &scope, "partition bound");
                        let te = b.bind(e)?;
                        let te = b.coerce(te, key_ty.without_modifiers(), Coercion::Assignment)?;
                        match te.expr {
                            Expr::Literal(v) if !v.is_null() => Ok(Some(v)),
                            Expr::Literal(_) => Err(Error::Exec(tessera_types::ExecError::other(
                                "22004",
                                "cannot use NULL in a partition bound",
                            ))),
                            _ => Err(Error::Syntax("a partition bound must be a constant".into())),
                        }
                    }
                    _ => Err(Error::Exec(tessera_types::ExecError::other(
                        "42P16",
                        "FROM and TO must specify exactly one value per partitioning column",
                    ))),
                }
            };
            ShardBounds::Range {
                from: bound(from)?,
                to: bound(to)?,
            }
        }
        Some(ast::ForValues::With { modulus, remainder }) => {
            if part.method != PartitionMethod::Hash {
                return Err(Error::Exec(tessera_types::ExecError::other(
                    "42P16",
                    "invalid bound specification for a range partition",
                )));
            }
            let m = u32::try_from(*modulus).map_err(|_| Error::InvalidParameter("modulus is too large".into()))?;
            let r = u32::try_from(*remainder).map_err(|_| Error::InvalidParameter("remainder is too large".into()))?;
            ShardBounds::Hash {
                modulus: m,
                remainder: r,
            }
        }
        Some(ast::ForValues::In(_)) => return Err(Error::Unsupported("list partitions are not supported yet".into())),
        Some(ast::ForValues::Default) => {
            return Err(Error::Unsupported("default partitions are not supported yet".into()))
        }
        None => return Err(Error::Syntax("PARTITION OF needs FOR VALUES".into())),
    };
    Ok(DdlRequest::CreatePartition {
        name,
        parent: parent_name,
        bounds,
        if_not_exists: ct.if_not_exists,
    })
}

pub fn bind_drop(object_type: &ast::ObjectType, if_exists: bool, names: &[ast::ObjectName]) -> Result<DdlRequest> {
    if *object_type != ast::ObjectType::Table {
        return Err(Error::Unsupported(format!("DROP {object_type} is not supported")));
    }
    let names = names.iter().map(plain_name).collect::<Result<Vec<_>>>()?;
    Ok(DdlRequest::DropTable { names, if_exists })
}

/// Whether `name` is one of PostgreSQL's table storage parameters.
fn is_storage_parameter(name: &str) -> bool {
    matches!(
        name,
        "fillfactor" | "toast_tuple_target" | "parallel_workers" | "user_catalog_table"
    ) || name.starts_with("autovacuum_")
        || name.starts_with("toast.")
        || name.starts_with("vacuum_")
        || name.starts_with("log_autovacuum")
}
