//! From SQL text to bound statements: parsing (sqlparser, PostgreSQL dialect), name
//! resolution and typing against the cluster map, with PostgreSQL's implicit casts made explicit
//! and constants folded. The result says *what* to compute; `plan.rs` decides *where*.
//!
//! - `names.rs`: identifiers, type names, the column names PostgreSQL gives expressions.
//! - `expr.rs`: the expression binder (scopes, types, coercions, functions, parameters).
//! - `select.rs`: SELECT, with aggregates, GROUP BY, HAVING, ORDER BY, DISTINCT, LIMIT.
//! - `dml.rs`: INSERT (with ON CONFLICT), UPDATE and DELETE.
//! - `ddl.rs`: CREATE TABLE (with partitioning), PARTITION OF, DROP TABLE.
//! - `admin.rs`: the admin functions (`SELECT tessera_move_replica(...)`), sent to the catalog.
//! - `statement.rs`: the entry point, dispatching every kind of statement.

pub mod admin;
pub mod ddl;
pub mod dml;
pub mod expr;
pub mod names;
pub mod role;
pub mod select;
pub mod statement;

use tessera_types::fragment::{AggCall, OnConflict};
use tessera_types::rpc::DdlRequest;
use tessera_types::schema::{ShardId, TableId};
use tessera_types::{DataType, Expr, Row};

/// A column of a statement's result.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputColumn {
    pub name: String,
    pub ty: DataType,
}

/// The table a statement reads or writes; `shard` is set when a partition was named directly.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRef {
    pub table: TableId,
    pub shard: Option<ShardId>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub expr: Expr,
    pub descending: bool,
    pub nulls_first: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectBody {
    /// One output row per input row.
    Plain { projections: Vec<Expr>, distinct: bool },
    /// Rows grouped by `group_by` (over the table row); `aggregates` are computed per group;
    /// `having` and `projections` read the aggregate row: group values, then aggregate results.
    Aggregate {
        group_by: Vec<Expr>,
        aggregates: Vec<(AggCall, DataType)>,
        having: Option<Expr>,
        projections: Vec<Expr>,
        distinct: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectPlan {
    /// `None` for SELECT without FROM.
    pub from: Option<TableRef>,
    /// The WHERE clause, over the table row.
    pub filter: Option<Expr>,
    pub body: SelectBody,
    /// Sort keys, over the same row the projections read.
    pub order_by: Vec<OrderKey>,
    pub limit: Option<u64>,
    pub offset: u64,
    pub columns: Vec<OutputColumn>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InsertPlan {
    pub target: TableRef,
    /// Complete rows in table column order, values already of the column types.
    pub rows: Vec<Row>,
    pub on_conflict: Option<OnConflict>,
    pub returning: Vec<Expr>,
    pub columns: Vec<OutputColumn>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    pub target: TableRef,
    pub filter: Option<Expr>,
    pub assignments: Vec<(usize, Expr)>,
    pub returning: Vec<Expr>,
    pub columns: Vec<OutputColumn>,
    /// The partition key is assigned: rows may move to other shards.
    pub moves_rows: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeletePlan {
    pub target: TableRef,
    pub filter: Option<Expr>,
    pub returning: Vec<Expr>,
    pub columns: Vec<OutputColumn>,
}

/// A statement after binding.
#[derive(Debug, Clone)]
pub enum Bound {
    Select(SelectPlan),
    /// A query answered in the router while binding (catalog queries, `pg_catalog.rs`).
    Rows {
        columns: Vec<OutputColumn>,
        rows: Vec<Row>,
    },
    Insert(InsertPlan),
    Update(UpdatePlan),
    Delete(DeletePlan),
    /// `TRUNCATE`: every row of each table deleted (inside a transaction block, as part of it).
    Truncate(Vec<DeletePlan>),
    /// `COPY ... FROM STDIN`.
    CopyIn(Box<crate::copy::CopyIn>),
    /// `COPY ... TO STDOUT` of a query (a table's is `SELECT * FROM` it).
    CopyOut {
        query: Box<Bound>,
        options: crate::copy::format::Options,
    },
    /// Schema change, with its command tag.
    Ddl {
        request: DdlRequest,
        tag: &'static str,
    },
    Begin,
    Commit,
    Rollback,
    /// `SAVEPOINT name`, `RELEASE SAVEPOINT name`, `ROLLBACK TO SAVEPOINT name`.
    Savepoint(String),
    Release(String),
    RollbackTo(String),
    /// `SET name = value` (`None` resets to the default).
    Set {
        name: String,
        value: Option<String>,
        /// `SET` or `RESET`.
        tag: &'static str,
    },
    Show {
        name: String,
    },
    Explain(Box<Bound>),
    /// Statements Tessera accepts and ignores, with the tag and notice to answer
    /// (`VACUUM`, `ANALYZE`, `DISCARD`...).
    NoOp {
        tag: &'static str,
        notice: Option<String>,
    },
    /// An admin function (`admin.rs`), whose bigint answer is one row of column `column`.
    Admin {
        request: tessera_types::rpc::AdminRequest,
        column: String,
    },
    /// An empty query string.
    Empty,
}

impl Bound {
    /// The result columns, for Describe.
    pub fn output_columns(&self) -> Vec<OutputColumn> {
        match self {
            Bound::Select(p) => p.columns.clone(),
            Bound::Rows { columns, .. } => columns.clone(),
            Bound::Insert(p) => p.columns.clone(),
            Bound::Update(p) => p.columns.clone(),
            Bound::Delete(p) => p.columns.clone(),
            Bound::Show { name } => vec![OutputColumn {
                name: name.clone(),
                ty: DataType::Text,
            }],
            Bound::Explain(_) => vec![OutputColumn {
                name: "QUERY PLAN".into(),
                ty: DataType::Text,
            }],
            Bound::Admin { column, .. } => vec![OutputColumn {
                name: column.clone(),
                ty: DataType::Int8,
            }],
            _ => Vec::new(),
        }
    }
}
