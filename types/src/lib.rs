//! The types Tessera's router, shard nodes and catalog share: SQL data types and values (with
//! PostgreSQL's text and binary formats), bound expressions and their evaluation, the
//! order-preserving key encoding, PostgreSQL-compatible hash partitioning, cluster metadata,
//! the fragments a shard executes, and the RPC messages and transport between processes.
//!
//! Nothing here does I/O except `rpc::transport`.

pub mod aggregate;
pub mod auth;
pub mod binary;
pub mod cast;
pub mod datatype;
pub mod error;
pub mod eval;
pub mod expr;
pub mod fragment;
pub mod hashpart;
pub mod key;
pub mod metrics;
pub mod ring;
pub mod rpc;
pub mod scan;
pub mod schema;
pub mod text;
pub mod value;

pub use datatype::DataType;
pub use error::{ExecError, ExecResult};
pub use expr::Expr;
pub use value::{Row, Value};
