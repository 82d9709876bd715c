//! COPY: `COPY t [(columns)] FROM STDIN` loads the rows a client streams (psql's `\copy ...
//! from`, drivers' copy APIs, `pgbench -i`), and `COPY t | (query) TO STDOUT` streams a table
//! or a query's result back, in PostgreSQL's text, CSV and binary formats (`format.rs`).
//!
//! Loading (`load.rs`) decodes rows as their bytes arrive, sends each to its shard, and writes a
//! shard's rows in batches, each batch one write on the shard's primary, several in flight at
//! once, so the router holds a few batches whatever the input's size. Batches commit on their
//! own: a COPY that fails part way keeps the batches written before the failure, and its error
//! says how many rows that is. (Inside a transaction block, every batch joins the
//! transaction, and the usual one-shard rule applies.)
//!
//! COPY to or from a server file or program is refused: the data travels over the connection.

pub mod format;
pub mod load;

use sqlparser::ast;
use tessera_types::cast::cast;
use tessera_types::schema::Table;
use tessera_types::{Row, Value};

use crate::error::{Error, Result};
use crate::sql::dml::column_default;
use crate::sql::expr::Ctx;
use crate::sql::names::ident;
use crate::sql::select::resolve_table;
use crate::sql::{Bound, TableRef};
use format::{Format, Options};

/// A bound `COPY ... FROM STDIN`.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub table: Table,
    pub target: TableRef,
    /// The table columns the data's fields fill, in order.
    pub columns: Vec<usize>,
    /// A row of every column's DEFAULT, which the fields then overwrite.
    pub template: Row,
    pub options: Options,
}

fn unsupported(what: &str) -> Error {
    Error::Unsupported(format!("COPY {what} is not supported"))
}

fn options(options: &[ast::CopyOption], legacy: &[ast::CopyLegacyOption]) -> Result<Options> {
    let mut format = Format::Text;
    for o in options {
        if let ast::CopyOption::Format(f) = o {
            format = match ident(f).as_str() {
                "text" => Format::Text,
                "csv" => Format::Csv,
                "binary" => Format::Binary,
                other => {
                    return Err(Error::InvalidParameter(format!(
                        "COPY format \"{other}\" not recognized"
                    )));
                }
            };
        }
    }
    for o in legacy {
        match o {
            ast::CopyLegacyOption::Binary => format = Format::Binary,
            ast::CopyLegacyOption::Csv(_) => format = Format::Csv,
            _ => {}
        }
    }
    let mut out = Options::new(format);
    let one_byte = |c: char, what: &str| -> Result<u8> {
        u8::try_from(c)
            .ok()
            .filter(u8::is_ascii)
            .ok_or_else(|| Error::InvalidParameter(format!("COPY {what} must be a single one-byte character")))
    };
    for o in options {
        match o {
            ast::CopyOption::Format(_) | ast::CopyOption::Freeze(_) => {}
            ast::CopyOption::Delimiter(c) => out.delimiter = one_byte(*c, "delimiter")?,
            ast::CopyOption::Null(s) => out.null = s.clone(),
            ast::CopyOption::Header(h) => out.header = *h,
            ast::CopyOption::Quote(c) => out.quote = one_byte(*c, "quote")?,
            ast::CopyOption::Escape(c) => out.escape = one_byte(*c, "escape")?,
            ast::CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") || e.eq_ignore_ascii_case("utf-8") => {}
            ast::CopyOption::Encoding(e) => {
                return Err(Error::Unsupported(format!(
                    "COPY encoding {e} is not supported; use UTF8"
                )));
            }
            other => return Err(unsupported(&format!("option {other}"))),
        }
    }
    for o in legacy {
        match o {
            ast::CopyLegacyOption::Binary => {}
            ast::CopyLegacyOption::Csv(csv) => {
                for c in csv {
                    match c {
                        ast::CopyLegacyCsvOption::Header => out.header = true,
                        ast::CopyLegacyCsvOption::Quote(q) => out.quote = one_byte(*q, "quote")?,
                        ast::CopyLegacyCsvOption::Escape(e) => out.escape = one_byte(*e, "escape")?,
                        other => return Err(unsupported(&format!("option {other}"))),
                    }
                }
            }
            ast::CopyLegacyOption::Delimiter(c) => out.delimiter = one_byte(*c, "delimiter")?,
            ast::CopyLegacyOption::Null(s) => out.null = s.clone(),
            ast::CopyLegacyOption::Header => out.header = true,
            other => return Err(unsupported(&format!("option {other}"))),
        }
    }
    if out.format == Format::Binary && (out.header || out.delimiter != b'\t' || out.null != "\\N") {
        return Err(Error::Syntax(
            "cannot specify DELIMITER, NULL or HEADER in BINARY mode".into(),
        ));
    }
    if out.header && out.format == Format::Text {
        return Err(Error::Unsupported(
            "COPY HEADER is available only in CSV mode here".into(),
        ));
    }
    if out.delimiter == b'\n' || out.delimiter == b'\r' || out.delimiter == b'\\' {
        return Err(Error::InvalidParameter(
            "COPY delimiter cannot be newline, carriage return or backslash".into(),
        ));
    }
    Ok(out)
}

/// Binds a COPY statement.
pub fn bind_copy(
    ctx: &Ctx,
    source: &ast::CopySource,
    to: bool,
    target: &ast::CopyTarget,
    copy_options: &[ast::CopyOption],
    legacy: &[ast::CopyLegacyOption],
) -> Result<Bound> {
    match (to, target) {
        (false, ast::CopyTarget::Stdin) | (true, ast::CopyTarget::Stdout) => {}
        (_, ast::CopyTarget::File { .. } | ast::CopyTarget::Program { .. }) => {
            return Err(Error::Unsupported(
                "COPY to or from a server file or program is not supported; use COPY ... FROM STDIN or TO \
                 STDOUT (psql's \\copy)"
                    .into(),
            ))
        }
        (false, _) => return Err(Error::Syntax("COPY FROM takes STDIN here".into())),
        (true, _) => return Err(Error::Syntax("COPY TO takes STDOUT here".into())),
    }
    let options = options(copy_options, legacy)?;
    match source {
        ast::CopySource::Query(q) if to => Ok(Bound::CopyOut {
            query: Box::new(crate::sql::statement::bind_select(ctx, q)?),
            options,
        }),
        ast::CopySource::Query(_) => Err(Error::Syntax("COPY FROM cannot read a query".into())),
        ast::CopySource::Table { table_name, columns } => {
            let (table, target, _) = resolve_table(ctx, table_name)?;
            let columns: Vec<usize> = if columns.is_empty() {
                (0..table.columns.len()).collect()
            } else {
                let mut out = Vec::new();
                for c in columns {
                    let name = ident(c);
                    let i = table
                        .column_index(&name)
                        .ok_or_else(|| Error::UndefinedColumn(format!("{name}\" of relation \"{}", table.name)))?;
                    if out.contains(&i) {
                        return Err(Error::Exec(tessera_types::ExecError::other(
                            "42701",
                            format!("column \"{name}\" specified more than once"),
                        )));
                    }
                    out.push(i);
                }
                out
            };
            if to {
                let names: Vec<String> = columns
                    .iter()
                    .map(|&i| format!("\"{}\"", table.columns[i].name.replace('"', "\"\"")))
                    .collect();
                let sql = format!(
                    "SELECT {} FROM \"{}\"",
                    names.join(", "),
                    table_name_sql(ctx, &target, table)
                );
                let statements = crate::sql::statement::parse(&sql)?;
                let Some(ast::Statement::Query(q)) = statements.first() else {
                    return Err(Error::Internal(format!("COPY TO built an odd query: {sql}")));
                };
                return Ok(Bound::CopyOut {
                    query: Box::new(crate::sql::statement::bind_select(ctx, q)?),
                    options,
                });
            }
            let mut template = Vec::with_capacity(table.columns.len());
            for (i, col) in table.columns.iter().enumerate() {
                if columns.contains(&i) {
                    template.push(Value::Null);
                    continue;
                }
                let te = column_default(ctx, col)?;
                let v = match te.expr {
                    tessera_types::Expr::Literal(v) => v,
                    other => other.eval(&[])?,
                };
                template.push(cast(v, col.ty, false)?);
            }
            Ok(Bound::CopyIn(Box::new(CopyIn {
                table: table.clone(),
                target,
                columns,
                template,
                options,
            })))
        }
    }
}

/// The name COPY TO reads: the partition when one was named, the table otherwise.
fn table_name_sql(ctx: &Ctx, target: &TableRef, table: &Table) -> String {
    let name = match target.shard {
        Some(s) => ctx.map.shards.get(&s).map_or(table.name.clone(), |s| s.name.clone()),
        None => table.name.clone(),
    };
    name.replace('"', "\"\"")
}
