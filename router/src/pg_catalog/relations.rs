//! The `pg_catalog` and `information_schema` relations, computed from the cluster map: every
//! table is a relation in schema `public` (a partitioned one, `relkind = 'p'`, with one
//! partition per shard), its primary key an index and a constraint, its columns attributes,
//! its DEFAULTs attrdefs. Built-in types, the one database, the one role (the session's user)
//! and the schemas complete them. Relations that describe features Tessera does not have
//! (policies, publications, triggers...) exist with their columns and no rows, so that the
//! queries psql and drivers send about them simply find nothing.
//!
//! OIDs are a pure function of the map (`table_oid`, `shard_oid`), so every router gives the
//! same answers.

use tessera_types::datatype::ArrayElem;
use tessera_types::schema::{ClusterMap, PartitionMethod, Shard, Table};
use tessera_types::DataType;

use super::datum::Datum;

pub const NS_PG_CATALOG: i64 = 11;
pub const NS_PUBLIC: i64 = 2200;
pub const NS_INFORMATION_SCHEMA: i64 = 13_000;
pub const NS_TESSERA: i64 = 13_100;
pub const ROLE_OID: i64 = 10;
pub const DATABASE_OID: i64 = 16_383;
/// Access methods, as PostgreSQL numbers them.
const AM_HEAP: i64 = 2;
const AM_BTREE: i64 = 403;

/// What the relations are computed from.
pub struct Source<'a> {
    pub map: &'a ClusterMap,
    pub user: &'a str,
    pub database: &'a str,
    /// The session's settings (name, value), for pg_settings.
    pub settings: &'a [(String, String)],
}

/// The roles (oid, name, superuser, may log in): the session's own first, under `ROLE_OID`
/// (also when the router lets anyone in under a name that is no role), then the catalog's.
fn roles<'a>(src: &Source<'a>) -> Vec<(i64, &'a str, bool, bool)> {
    let own = src.map.roles.get(src.user);
    let mut roles = vec![(
        ROLE_OID,
        src.user,
        own.is_none_or(|r| r.superuser),
        own.is_none_or(|r| r.login),
    )];
    let others = src.map.roles.values().filter(|r| r.name != src.user);
    for (i, r) in others.enumerate() {
        roles.push((ROLE_OID + 16_384 + i as i64, r.name.as_str(), r.superuser, r.login));
    }
    roles
}

/// A computed relation: its columns (name, type) and rows.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    pub columns: Vec<(String, DataType)>,
    pub rows: Vec<Vec<Datum>>,
}

/// Builds a relation from a column list like `"oid:oid relname:name relhasindex:bool"`.
/// Types: bool, int2, int4, int8, oid, float4, float8, text, name, char (PostgreSQL's
/// one-byte "char"), and arrays (`oid[]`, `text[]`...; also int2vector and oidvector), which
/// travel as text. A column a row does not set is false, zero or NULL by its type.
struct Builder {
    columns: Vec<(String, DataType)>,
    defaults: Vec<Datum>,
    rows: Vec<Vec<Datum>>,
}

impl Builder {
    fn new(spec: &str) -> Builder {
        let mut columns = Vec::new();
        let mut defaults = Vec::new();
        for item in spec.split_whitespace() {
            let (name, ty) = item.split_once(':').unwrap_or((item, "text"));
            let (ty, default) = match ty {
                "bool" => (DataType::Bool, Datum::Bool(false)),
                "int2" => (DataType::Int2, Datum::Int(0)),
                "int4" => (DataType::Int4, Datum::Int(0)),
                "int8" => (DataType::Int8, Datum::Int(0)),
                "oid" | "regproc" => (DataType::Oid, Datum::Int(0)),
                "float4" => (DataType::Float4, Datum::Float(0.0)),
                "float8" => (DataType::Float8, Datum::Float(0.0)),
                "name" => (DataType::Name, Datum::Null),
                "timestamptz" => (DataType::TimestampTz, Datum::Null),
                "oid[]" => (DataType::Array(ArrayElem::Oid), Datum::Null),
                "int2[]" => (DataType::Array(ArrayElem::Int2), Datum::Null),
                "text[]" | "char[]" => (DataType::Array(ArrayElem::Text), Datum::Null),
                _ => (DataType::Text, Datum::Null),
            };
            columns.push((name.to_string(), ty));
            defaults.push(default);
        }
        Builder {
            columns,
            defaults,
            rows: Vec::new(),
        }
    }

    fn row(&mut self, values: Vec<(&str, Datum)>) {
        let mut row = self.defaults.clone();
        for (name, value) in values {
            match self.columns.iter().position(|(c, _)| c == name) {
                Some(i) => row[i] = value,
                None => debug_assert!(false, "catalog column {name} does not exist"),
            }
        }
        self.rows.push(row);
    }

    fn build(self) -> Relation {
        Relation {
            columns: self.columns,
            rows: self.rows,
        }
    }
}

fn int(i: i64) -> Datum {
    Datum::Int(i)
}

fn text(s: impl Into<String>) -> Datum {
    Datum::Text(s.into())
}

fn boolean(b: bool) -> Datum {
    Datum::Bool(b)
}

pub fn table_oid(t: &Table) -> i64 {
    16_384 + 4 * t.id as i64
}

pub fn shard_oid(s: &Shard) -> i64 {
    1_000_000 + 4 * s.id as i64
}

/// A user relation as pg_class sees it: a table (partitioned or not) or a partition.
pub struct UserRel<'a> {
    pub oid: i64,
    pub name: String,
    pub table: &'a Table,
    /// `Some` for a partition.
    pub shard: Option<&'a Shard>,
}

impl UserRel<'_> {
    pub fn partitioned(&self) -> bool {
        self.shard.is_none() && self.table.partitioning.is_some()
    }

    pub fn index_oid(&self) -> i64 {
        self.oid + 1
    }

    pub fn constraint_oid(&self) -> i64 {
        self.oid + 2
    }

    pub fn index_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    pub fn parent_oid(&self) -> Option<i64> {
        self.shard.map(|_| table_oid(self.table))
    }

    pub fn bound(&self) -> Option<String> {
        self.shard.map(|s| s.bounds.describe())
    }

    fn attrdef_oid(&self, attnum: usize) -> i64 {
        self.oid * 100 + attnum as i64
    }
}

/// Every table and partition, tables first in id order, each followed by its partitions.
pub fn user_rels(map: &ClusterMap) -> Vec<UserRel<'_>> {
    let mut out = Vec::new();
    for t in map.tables.values() {
        out.push(UserRel {
            oid: table_oid(t),
            name: t.name.clone(),
            table: t,
            shard: None,
        });
        if t.partitioning.is_some() {
            for s in map.shards_of(t.id) {
                out.push(UserRel {
                    oid: shard_oid(s),
                    name: s.name.clone(),
                    table: t,
                    shard: Some(s),
                });
            }
        }
    }
    out
}

/// A built-in type: (oid, name, array type oid, element oid, category, length).
type TypeRow = (i64, &'static str, i64, i64, &'static str, i64);

/// The types pg_type lists: every type a column can have, the catalog's own, and their arrays.
const TYPES: &[TypeRow] = &[
    (16, "bool", 1000, 0, "B", 1),
    (17, "bytea", 1001, 0, "U", -1),
    (18, "char", 1002, 0, "Z", 1),
    (19, "name", 1003, 0, "S", 64),
    (20, "int8", 1016, 0, "N", 8),
    (21, "int2", 1005, 0, "N", 2),
    (22, "int2vector", 1006, 21, "A", -1),
    (23, "int4", 1007, 0, "N", 4),
    (24, "regproc", 1008, 0, "N", 4),
    (25, "text", 1009, 0, "S", -1),
    (26, "oid", 1028, 0, "N", 4),
    (30, "oidvector", 1013, 26, "A", -1),
    (700, "float4", 1021, 0, "N", 4),
    (701, "float8", 1022, 0, "N", 8),
    (705, "unknown", 0, 0, "X", -2),
    (1042, "bpchar", 1014, 0, "S", -1),
    (1043, "varchar", 1015, 0, "S", -1),
    (1082, "date", 1182, 0, "D", 4),
    (1114, "timestamp", 1115, 0, "D", 8),
    (1184, "timestamptz", 1185, 0, "D", 8),
    (1700, "numeric", 1231, 0, "N", -1),
    (2205, "regclass", 2210, 0, "N", 4),
    (2206, "regtype", 2211, 0, "N", 4),
    (2950, "uuid", 2951, 0, "U", 16),
    (1000, "_bool", 0, 16, "A", -1),
    (1001, "_bytea", 0, 17, "A", -1),
    (1002, "_char", 0, 18, "A", -1),
    (1003, "_name", 0, 19, "A", -1),
    (1005, "_int2", 0, 21, "A", -1),
    (1007, "_int4", 0, 23, "A", -1),
    (1009, "_text", 0, 25, "A", -1),
    (1014, "_bpchar", 0, 1042, "A", -1),
    (1015, "_varchar", 0, 1043, "A", -1),
    (1016, "_int8", 0, 20, "A", -1),
    (1021, "_float4", 0, 700, "A", -1),
    (1022, "_float8", 0, 701, "A", -1),
    (1028, "_oid", 0, 26, "A", -1),
    (1115, "_timestamp", 0, 1114, "A", -1),
    (1182, "_date", 0, 1082, "A", -1),
    (1185, "_timestamptz", 0, 1184, "A", -1),
    (1231, "_numeric", 0, 1700, "A", -1),
    (2951, "_uuid", 0, 2950, "A", -1),
];

/// The name of the built-in type with this OID, as regtype prints it.
pub fn type_name(oid: i64) -> Option<String> {
    if let Some(t) = DataType::from_oid(oid as u32) {
        return Some(t.name().to_string());
    }
    let (_, name, _, elem, _, _) = TYPES.iter().find(|t| t.0 == oid)?;
    if *elem != 0 {
        return type_name(*elem).map(|e| format!("{e}[]"));
    }
    Some(match *name {
        "char" => "\"char\"".into(),
        other => other.to_string(),
    })
}

/// The OID of a type named as SQL names it (`integer`, `int4`, `character varying`...).
pub fn type_oid(name: &str) -> Option<i64> {
    let name = name.trim().trim_start_matches("pg_catalog.").to_ascii_lowercase();
    if let Some(elem) = name.strip_suffix("[]") {
        let e = type_oid(elem)?;
        return TYPES.iter().find(|t| t.0 == e).map(|t| t.2).filter(|a| *a != 0);
    }
    if let Some((oid, ..)) = TYPES.iter().find(|t| t.1 == name) {
        return Some(*oid);
    }
    if let Some(t) = TYPES
        .iter()
        .find(|t| DataType::from_oid(t.0 as u32).is_some_and(|d| d.name() == name))
    {
        return Some(t.0);
    }
    Some(match name.as_str() {
        "integer" | "int" => 23,
        "smallint" => 21,
        "bigint" => 20,
        "boolean" => 16,
        "real" => 700,
        "double precision" => 701,
        "character varying" => 1043,
        "character" => 1042,
        "\"char\"" => 18,
        "decimal" => 1700,
        _ => return None,
    })
}

/// `format_type(oid, typmod)`.
pub fn format_type(oid: i64, typmod: i64) -> Option<String> {
    let base = DataType::from_oid(oid as u32);
    match base {
        Some(DataType::Numeric(_)) if typmod >= 4 => {
            let t = typmod - 4;
            Some(format!("numeric({},{})", t >> 16, t & 0xffff))
        }
        Some(DataType::Varchar(_)) if typmod >= 4 => Some(format!("character varying({})", typmod - 4)),
        Some(DataType::Char(_)) if typmod >= 4 => Some(format!("character({})", typmod - 4)),
        Some(DataType::Char(_)) => Some("bpchar".into()),
        _ => type_name(oid),
    }
}

/// Column storage as PostgreSQL reports it: plain for fixed-length types, extended otherwise.
fn storage(ty: DataType) -> &'static str {
    if ty.typlen() > 0 {
        "p"
    } else {
        "x"
    }
}

fn collation(ty: DataType) -> i64 {
    if ty.is_string() && ty != DataType::Name {
        100
    } else if ty == DataType::Name {
        950
    } else {
        0
    }
}

/// A column DEFAULT as `pg_get_expr` prints it: PostgreSQL shows a constant with the cast
/// that gives it the column's type (`'x'::character varying`, `'-1'::integer`) and
/// parenthesizes operators.
fn deparse_default(sql: &str, ty: DataType) -> String {
    use sqlparser::ast::{Expr, UnaryOperator, Value as V};
    let Ok(e) = sqlparser::parser::Parser::new(&sqlparser::dialect::PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
    else {
        return sql.to_string();
    };
    let type_name = match ty {
        DataType::Char(_) => "bpchar".to_string(),
        other => other.without_modifiers().name().to_string(),
    };
    match &e {
        Expr::Value(v) => match &v.value {
            V::SingleQuotedString(s) => format!("'{}'::{type_name}", s.replace('\'', "''")),
            _ => sql.to_string(),
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } if matches!(expr.as_ref(), Expr::Value(_)) => format!("'-{expr}'::{type_name}"),
        Expr::BinaryOp { .. } => format!("({e})"),
        _ => sql.to_string(),
    }
}

/// `pg_get_partition_constraintdef` of a partition, worded as PostgreSQL words it.
pub fn partition_constraint(rel: &UserRel) -> Option<String> {
    let shard = rel.shard?;
    let p = rel.table.partitioning.as_ref()?;
    let col = &rel.table.columns[p.column];
    let literal = |v: &tessera_types::Value| -> String {
        let text = v.to_text().unwrap_or_default();
        if col.ty.is_integer() {
            text
        } else {
            let type_name = match col.ty {
                DataType::Char(_) => "bpchar".to_string(),
                other => other.without_modifiers().name().to_string(),
            };
            format!("'{}'::{type_name}", text.replace('\'', "''"))
        }
    };
    Some(match &shard.bounds {
        tessera_types::schema::ShardBounds::Range { from, to } => {
            let mut parts = vec![format!("({} IS NOT NULL)", col.name)];
            if let Some(f) = from {
                parts.push(format!("({} >= {})", col.name, literal(f)));
            }
            if let Some(t) = to {
                parts.push(format!("({} < {})", col.name, literal(t)));
            }
            format!("({})", parts.join(" AND "))
        }
        tessera_types::schema::ShardBounds::Hash { modulus, remainder } => format!(
            "satisfies_hash_partition('{}'::oid, {modulus}, {remainder}, {})",
            table_oid(rel.table),
            col.name
        ),
        tessera_types::schema::ShardBounds::All => return None,
    })
}

/// `pg_get_partkeydef`.
pub fn partition_key_def(t: &Table) -> Option<String> {
    let p = t.partitioning.as_ref()?;
    let method = match p.method {
        PartitionMethod::Range => "RANGE",
        PartitionMethod::Hash => "HASH",
    };
    Some(format!("{method} ({})", t.columns[p.column].name))
}

fn pkey_columns(t: &Table) -> String {
    t.primary_key
        .iter()
        .map(|&i| t.columns[i].name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `pg_get_indexdef` of a relation's primary key index.
pub fn index_def(rel: &UserRel) -> String {
    let only = if rel.partitioned() { "ONLY " } else { "" };
    format!(
        "CREATE UNIQUE INDEX {} ON {only}public.{} USING btree ({})",
        rel.index_name(),
        rel.name,
        pkey_columns(rel.table)
    )
}

/// `pg_get_constraintdef` of a relation's primary key.
pub fn constraint_def(rel: &UserRel) -> String {
    format!("PRIMARY KEY ({})", pkey_columns(rel.table))
}

/// The names this module knows, by schema.
pub const PG_CATALOG_RELATIONS: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_index",
    "pg_constraint",
    "pg_inherits",
    "pg_partitioned_table",
    "pg_database",
    "pg_roles",
    "pg_user",
    "pg_authid",
    "pg_auth_members",
    "pg_settings",
    "pg_db_role_setting",
    "pg_description",
    "pg_shdescription",
    "pg_proc",
    "pg_am",
    "pg_attrdef",
    "pg_collation",
    "pg_tablespace",
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_trigger",
    "pg_rewrite",
    "pg_extension",
    "pg_enum",
    "pg_range",
    "pg_views",
    "pg_matviews",
    "pg_sequence",
    "pg_sequences",
    "pg_tables",
    "pg_indexes",
    "pg_depend",
    "pg_foreign_table",
    "pg_foreign_server",
    "pg_foreign_data_wrapper",
    "pg_event_trigger",
    "pg_stat_activity",
    "pg_locks",
    "pg_cursors",
    "pg_prepared_xacts",
    "pg_opclass",
    "pg_operator",
    "pg_cast",
    "pg_language",
    "pg_conversion",
    "pg_default_acl",
    "pg_init_privs",
];

pub const INFORMATION_SCHEMA_RELATIONS: &[&str] = &[
    "tables",
    "columns",
    "schemata",
    "table_constraints",
    "key_column_usage",
    "referential_constraints",
    "constraint_column_usage",
    "views",
    "sequences",
    "routines",
    "check_constraints",
    "triggers",
];

/// The relation `schema.name`, or `None` if there is no such catalog relation.
pub fn relation(src: &Source, schema: &str, name: &str) -> Option<Relation> {
    match schema {
        "pg_catalog" => pg_catalog(src, name),
        "information_schema" => information_schema(src, name),
        _ => None,
    }
}

fn namespaces() -> [(i64, &'static str); 4] {
    [
        (NS_PG_CATALOG, "pg_catalog"),
        (NS_PUBLIC, "public"),
        (NS_INFORMATION_SCHEMA, "information_schema"),
        (NS_TESSERA, "tessera"),
    ]
}

pub fn namespace_name(oid: i64) -> Option<&'static str> {
    namespaces().into_iter().find(|(o, _)| *o == oid).map(|(_, n)| n)
}

pub fn namespace_oid(name: &str) -> Option<i64> {
    namespaces().into_iter().find(|(_, n)| *n == name).map(|(o, _)| o)
}

fn pg_catalog(src: &Source, name: &str) -> Option<Relation> {
    let map = src.map;
    let rels = user_rels(map);
    Some(match name {
        "pg_namespace" => {
            let mut b = Builder::new("oid:oid nspname:name nspowner:oid nspacl:text[]");
            for (oid, n) in namespaces() {
                b.row(vec![
                    ("oid", int(oid)),
                    ("nspname", text(n)),
                    ("nspowner", int(ROLE_OID)),
                ]);
            }
            b.build()
        }
        "pg_class" => {
            let mut b = Builder::new(
                "oid:oid relname:name relnamespace:oid reltype:oid reloftype:oid relowner:oid relam:oid \
                 relfilenode:oid reltablespace:oid relpages:int4 reltuples:float4 relallvisible:int4 \
                 reltoastrelid:oid relhasindex:bool relisshared:bool relpersistence:char relkind:char \
                 relnatts:int2 relchecks:int2 relhasrules:bool relhastriggers:bool relhassubclass:bool \
                 relrowsecurity:bool relforcerowsecurity:bool relispopulated:bool relreplident:char \
                 relispartition:bool relrewrite:oid relfrozenxid:int8 relminmxid:int8 relacl:text[] \
                 reloptions:text[] relpartbound:text",
            );
            for r in &rels {
                let has_pk = !r.table.primary_key.is_empty();
                b.row(vec![
                    ("oid", int(r.oid)),
                    ("relname", text(r.name.clone())),
                    ("relnamespace", int(NS_PUBLIC)),
                    ("relowner", int(ROLE_OID)),
                    ("relam", int(if r.partitioned() { 0 } else { AM_HEAP })),
                    ("relfilenode", int(if r.partitioned() { 0 } else { r.oid })),
                    ("reltuples", Datum::Float(-1.0)),
                    ("relhasindex", boolean(has_pk)),
                    ("relpersistence", text("p")),
                    ("relkind", text(if r.partitioned() { "p" } else { "r" })),
                    ("relnatts", int(r.table.columns.len() as i64)),
                    ("relhassubclass", boolean(r.partitioned())),
                    ("relispopulated", boolean(true)),
                    ("relreplident", text("d")),
                    ("relispartition", boolean(r.shard.is_some())),
                    ("relpartbound", r.bound().map_or(Datum::Null, text)),
                ]);
                if has_pk {
                    b.row(vec![
                        ("oid", int(r.index_oid())),
                        ("relname", text(r.index_name())),
                        ("relnamespace", int(NS_PUBLIC)),
                        ("relowner", int(ROLE_OID)),
                        ("relam", int(AM_BTREE)),
                        ("relfilenode", int(if r.partitioned() { 0 } else { r.index_oid() })),
                        ("reltuples", Datum::Float(-1.0)),
                        ("relpersistence", text("p")),
                        ("relkind", text(if r.partitioned() { "I" } else { "i" })),
                        ("relnatts", int(r.table.primary_key.len() as i64)),
                        ("relispopulated", boolean(true)),
                        ("relreplident", text("n")),
                        ("relispartition", boolean(r.shard.is_some())),
                    ]);
                }
            }
            b.build()
        }
        "pg_attribute" => {
            let mut b = Builder::new(
                "attrelid:oid attname:name atttypid:oid attstattarget:int4 attlen:int2 attnum:int2 \
                 attndims:int4 attcacheoff:int4 atttypmod:int4 attbyval:bool attalign:char attstorage:char \
                 attcompression:char attnotnull:bool atthasdef:bool atthasmissing:bool attidentity:char \
                 attgenerated:char attisdropped:bool attislocal:bool attinhcount:int4 attcollation:oid \
                 attacl:text[] attoptions:text[] attfdwoptions:text[] attmissingval:text",
            );
            for r in &rels {
                let mut attribute = |relid: i64, num: usize, col: &tessera_types::schema::ColumnDef, pk: bool| {
                    let ty = col.ty;
                    b.row(vec![
                        ("attrelid", int(relid)),
                        ("attname", text(col.name.clone())),
                        ("atttypid", int(i64::from(ty.oid()))),
                        ("attstattarget", int(-1)),
                        ("attlen", int(i64::from(ty.typlen()))),
                        ("attnum", int(num as i64)),
                        ("attcacheoff", int(-1)),
                        ("atttypmod", int(i64::from(ty.typmod()))),
                        ("attbyval", boolean(ty.typlen() > 0 && ty.typlen() <= 8)),
                        ("attalign", text(if ty.typlen() == 8 { "d" } else { "i" })),
                        ("attstorage", text(storage(ty))),
                        ("attcompression", text("")),
                        ("attnotnull", boolean(col.not_null || pk)),
                        ("atthasdef", boolean(col.default.is_some() && relid != r.index_oid())),
                        ("attidentity", text("")),
                        ("attgenerated", text("")),
                        ("attislocal", boolean(r.shard.is_none())),
                        ("attinhcount", int(i64::from(r.shard.is_some()))),
                        ("attcollation", int(collation(ty))),
                    ]);
                };
                for (i, col) in r.table.columns.iter().enumerate() {
                    attribute(r.oid, i + 1, col, r.table.primary_key.contains(&i));
                }
                for (i, &c) in r.table.primary_key.iter().enumerate() {
                    attribute(r.index_oid(), i + 1, &r.table.columns[c], true);
                }
            }
            b.build()
        }
        "pg_attrdef" => {
            let mut b = Builder::new("oid:oid adrelid:oid adnum:int2 adbin:text");
            for r in &rels {
                for (i, col) in r.table.columns.iter().enumerate() {
                    if let Some(d) = &col.default {
                        b.row(vec![
                            ("oid", int(r.attrdef_oid(i + 1))),
                            ("adrelid", int(r.oid)),
                            ("adnum", int(i as i64 + 1)),
                            ("adbin", text(deparse_default(d, col.ty))),
                        ]);
                    }
                }
            }
            b.build()
        }
        "pg_type" => {
            let mut b = Builder::new(
                "oid:oid typname:name typnamespace:oid typowner:oid typlen:int2 typbyval:bool typtype:char \
                 typcategory:char typispreferred:bool typisdefined:bool typdelim:char typrelid:oid \
                 typsubscript:regproc typelem:oid typarray:oid typinput:regproc typoutput:regproc \
                 typreceive:regproc typsend:regproc typmodin:regproc typmodout:regproc typanalyze:regproc \
                 typalign:char typstorage:char typnotnull:bool typbasetype:oid typtypmod:int4 typndims:int4 \
                 typcollation:oid typdefaultbin:text typdefault:text typacl:text[]",
            );
            for &(oid, name, array, elem, category, len) in TYPES {
                b.row(vec![
                    ("oid", int(oid)),
                    ("typname", text(name)),
                    ("typnamespace", int(NS_PG_CATALOG)),
                    ("typowner", int(ROLE_OID)),
                    ("typlen", int(len)),
                    ("typbyval", boolean((1..=8).contains(&len))),
                    ("typtype", text(if oid == 705 { "p" } else { "b" })),
                    ("typcategory", text(category)),
                    (
                        "typispreferred",
                        boolean(matches!(name, "text" | "float8" | "bool" | "timestamptz")),
                    ),
                    ("typisdefined", boolean(true)),
                    ("typdelim", text(",")),
                    ("typelem", int(elem)),
                    ("typarray", int(array)),
                    ("typalign", text(if len == 8 { "d" } else { "i" })),
                    ("typstorage", text(if len > 0 { "p" } else { "x" })),
                    ("typtypmod", int(-1)),
                    (
                        "typcollation",
                        int(if matches!(name, "text" | "varchar" | "bpchar") {
                            100
                        } else {
                            0
                        }),
                    ),
                ]);
            }
            b.build()
        }
        "pg_index" => {
            let mut b = Builder::new(
                "indexrelid:oid indrelid:oid indnatts:int2 indnkeyatts:int2 indisunique:bool \
                 indnullsnotdistinct:bool indisprimary:bool indisexclusion:bool indimmediate:bool \
                 indisclustered:bool indisvalid:bool indcheckxmin:bool indisready:bool indislive:bool \
                 indisreplident:bool indkey:int2vector indcollation:oidvector indclass:oidvector \
                 indoption:int2vector indexprs:text indpred:text",
            );
            for r in rels.iter().filter(|r| !r.table.primary_key.is_empty()) {
                let keys: Vec<String> = r.table.primary_key.iter().map(|i| (i + 1).to_string()).collect();
                let n = keys.len() as i64;
                b.row(vec![
                    ("indexrelid", int(r.index_oid())),
                    ("indrelid", int(r.oid)),
                    ("indnatts", int(n)),
                    ("indnkeyatts", int(n)),
                    ("indisunique", boolean(true)),
                    ("indisprimary", boolean(true)),
                    ("indimmediate", boolean(true)),
                    ("indisvalid", boolean(true)),
                    ("indisready", boolean(true)),
                    ("indislive", boolean(true)),
                    ("indkey", text(keys.join(" "))),
                    ("indoption", text(vec!["0"; keys.len()].join(" "))),
                ]);
            }
            b.build()
        }
        "pg_constraint" => {
            let mut b = Builder::new(
                "oid:oid conname:name connamespace:oid contype:char condeferrable:bool condeferred:bool \
                 convalidated:bool conrelid:oid contypid:oid conindid:oid conparentid:oid confrelid:oid \
                 confupdtype:char confdeltype:char confmatchtype:char conislocal:bool coninhcount:int4 \
                 connoinherit:bool conkey:int2[] confkey:int2[] conpfeqop:oid[] conppeqop:oid[] \
                 conffeqop:oid[] confdelsetcols:int2[] conexclop:oid[] conbin:text",
            );
            for r in rels.iter().filter(|r| !r.table.primary_key.is_empty()) {
                let parent = rels
                    .iter()
                    .find(|p| r.shard.is_some() && p.shard.is_none() && p.table.id == r.table.id)
                    .map_or(0, |p| p.constraint_oid());
                b.row(vec![
                    ("oid", int(r.constraint_oid())),
                    ("conname", text(r.index_name())),
                    ("connamespace", int(NS_PUBLIC)),
                    ("contype", text("p")),
                    ("convalidated", boolean(true)),
                    ("conrelid", int(r.oid)),
                    ("conindid", int(r.index_oid())),
                    ("conparentid", int(parent)),
                    ("confupdtype", text(" ")),
                    ("confdeltype", text(" ")),
                    ("confmatchtype", text(" ")),
                    ("conislocal", boolean(r.shard.is_none())),
                    ("coninhcount", int(i64::from(r.shard.is_some()))),
                    ("connoinherit", boolean(r.shard.is_none() && !r.partitioned())),
                    (
                        "conkey",
                        Datum::Array(r.table.primary_key.iter().map(|i| int(*i as i64 + 1)).collect()),
                    ),
                ]);
            }
            b.build()
        }
        "pg_inherits" => {
            let mut b = Builder::new("inhrelid:oid inhparent:oid inhseqno:int4 inhdetachpending:bool");
            for r in &rels {
                if let Some(parent) = r.parent_oid() {
                    b.row(vec![
                        ("inhrelid", int(r.oid)),
                        ("inhparent", int(parent)),
                        ("inhseqno", int(1)),
                    ]);
                    if !r.table.primary_key.is_empty() {
                        b.row(vec![
                            ("inhrelid", int(r.index_oid())),
                            ("inhparent", int(parent + 1)),
                            ("inhseqno", int(1)),
                        ]);
                    }
                }
            }
            b.build()
        }
        "pg_partitioned_table" => {
            let mut b = Builder::new(
                "partrelid:oid partstrat:char partnatts:int2 partdefid:oid partattrs:int2vector \
                 partclass:oidvector partcollation:oidvector partexprs:text",
            );
            for t in map.tables.values() {
                if let Some(p) = &t.partitioning {
                    b.row(vec![
                        ("partrelid", int(table_oid(t))),
                        (
                            "partstrat",
                            text(match p.method {
                                PartitionMethod::Range => "r",
                                PartitionMethod::Hash => "h",
                            }),
                        ),
                        ("partnatts", int(1)),
                        ("partattrs", text((p.column + 1).to_string())),
                        ("partcollation", text(collation(t.columns[p.column].ty).to_string())),
                    ]);
                }
            }
            b.build()
        }
        "pg_database" => {
            let mut b = Builder::new(
                "oid:oid datname:name datdba:oid encoding:int4 datlocprovider:char datistemplate:bool \
                 datallowconn:bool datconnlimit:int4 datfrozenxid:int8 datminmxid:int8 dattablespace:oid \
                 datcollate:text datctype:text daticulocale:text datcollversion:text datacl:text[]",
            );
            b.row(vec![
                ("oid", int(DATABASE_OID)),
                ("datname", text(src.database)),
                ("datdba", int(ROLE_OID)),
                ("encoding", int(6)),
                ("datlocprovider", text("c")),
                ("datallowconn", boolean(true)),
                ("datconnlimit", int(-1)),
                ("dattablespace", int(1663)),
                ("datcollate", text("C")),
                ("datctype", text("C")),
            ]);
            b.build()
        }
        "pg_roles" | "pg_authid" => {
            let mut b = Builder::new(
                "oid:oid rolname:name rolsuper:bool rolinherit:bool rolcreaterole:bool rolcreatedb:bool \
                 rolcanlogin:bool rolreplication:bool rolconnlimit:int4 rolpassword:text \
                 rolvaliduntil:timestamptz rolbypassrls:bool rolconfig:text[]",
            );
            for (oid, name, superuser, login) in roles(src) {
                b.row(vec![
                    ("oid", int(oid)),
                    ("rolname", text(name)),
                    ("rolsuper", boolean(superuser)),
                    ("rolinherit", boolean(true)),
                    ("rolcreaterole", boolean(superuser)),
                    ("rolcreatedb", boolean(superuser)),
                    ("rolcanlogin", boolean(login)),
                    ("rolreplication", boolean(superuser)),
                    ("rolbypassrls", boolean(superuser)),
                    ("rolconnlimit", int(-1)),
                    ("rolpassword", text("********")),
                ]);
            }
            b.build()
        }
        "pg_user" => {
            let mut b = Builder::new(
                "usename:name usesysid:oid usecreatedb:bool usesuper:bool userepl:bool usebypassrls:bool \
                 passwd:text valuntil:timestamptz useconfig:text[]",
            );
            for (oid, name, superuser, _) in roles(src).into_iter().filter(|r| r.3) {
                b.row(vec![
                    ("usename", text(name)),
                    ("usesysid", int(oid)),
                    ("usecreatedb", boolean(superuser)),
                    ("usesuper", boolean(superuser)),
                    ("passwd", text("********")),
                ]);
            }
            b.build()
        }
        "pg_auth_members" => Builder::new("oid:oid roleid:oid member:oid grantor:oid admin_option:bool").build(),
        "pg_settings" => {
            let mut b = Builder::new(
                "name:text setting:text unit:text category:text short_desc:text extra_desc:text \
                 context:text vartype:text source:text min_val:text max_val:text enumvals:text[] \
                 boot_val:text reset_val:text sourcefile:text sourceline:int4 pending_restart:bool",
            );
            for (name, value) in src.settings {
                b.row(vec![
                    ("name", text(name.clone())),
                    ("setting", text(value.clone())),
                    ("context", text("user")),
                    ("vartype", text("string")),
                    ("source", text("session")),
                    ("boot_val", text(value.clone())),
                    ("reset_val", text(value.clone())),
                ]);
            }
            b.build()
        }
        "pg_db_role_setting" => Builder::new("setdatabase:oid setrole:oid setconfig:text[]").build(),
        "pg_description" => Builder::new("objoid:oid classoid:oid objsubid:int4 description:text").build(),
        "pg_shdescription" => Builder::new("objoid:oid classoid:oid description:text").build(),
        "pg_proc" => Builder::new(
            "oid:oid proname:name pronamespace:oid proowner:oid prolang:oid procost:float4 prorows:float4 \
             provariadic:oid prosupport:regproc prokind:char prosecdef:bool proleakproof:bool \
             proisstrict:bool proretset:bool provolatile:char proparallel:char pronargs:int2 \
             pronargdefaults:int2 prorettype:oid proargtypes:oidvector proallargtypes:oid[] \
             proargmodes:char[] proargnames:text[] proargdefaults:text protrftypes:oid[] prosrc:text \
             probin:text prosqlbody:text proconfig:text[] proacl:text[]",
        )
        .build(),
        "pg_am" => {
            let mut b = Builder::new("oid:oid amname:name amhandler:regproc amtype:char");
            for (oid, n, t) in [(AM_HEAP, "heap", "t"), (AM_BTREE, "btree", "i"), (405, "hash", "i")] {
                b.row(vec![("oid", int(oid)), ("amname", text(n)), ("amtype", text(t))]);
            }
            b.build()
        }
        "pg_collation" => {
            let mut b = Builder::new(
                "oid:oid collname:name collnamespace:oid collowner:oid collprovider:char \
                 collisdeterministic:bool collencoding:int4 collcollate:text collctype:text \
                 colliculocale:text collversion:text",
            );
            for (oid, n, p) in [(100, "default", "d"), (950, "C", "c"), (951, "POSIX", "c")] {
                b.row(vec![
                    ("oid", int(oid)),
                    ("collname", text(n)),
                    ("collnamespace", int(NS_PG_CATALOG)),
                    ("collowner", int(ROLE_OID)),
                    ("collprovider", text(p)),
                    ("collisdeterministic", boolean(true)),
                    ("collencoding", int(-1)),
                ]);
            }
            b.build()
        }
        "pg_tablespace" => {
            let mut b = Builder::new("oid:oid spcname:name spcowner:oid spcacl:text[] spcoptions:text[]");
            for (oid, n) in [(1663, "pg_default"), (1664, "pg_global")] {
                b.row(vec![
                    ("oid", int(oid)),
                    ("spcname", text(n)),
                    ("spcowner", int(ROLE_OID)),
                ]);
            }
            b.build()
        }
        "pg_tables" => {
            let mut b = Builder::new(
                "schemaname:name tablename:name tableowner:name tablespace:name hasindexes:bool \
                 hasrules:bool hastriggers:bool rowsecurity:bool",
            );
            for r in &rels {
                b.row(vec![
                    ("schemaname", text("public")),
                    ("tablename", text(r.name.clone())),
                    ("tableowner", text(src.user)),
                    ("hasindexes", boolean(!r.table.primary_key.is_empty())),
                ]);
            }
            b.build()
        }
        "pg_indexes" => {
            let mut b = Builder::new("schemaname:name tablename:name indexname:name tablespace:name indexdef:text");
            for r in rels.iter().filter(|r| !r.table.primary_key.is_empty()) {
                b.row(vec![
                    ("schemaname", text("public")),
                    ("tablename", text(r.name.clone())),
                    ("indexname", text(r.index_name())),
                    ("indexdef", text(index_def(r))),
                ]);
            }
            b.build()
        }
        "pg_policy" => Builder::new(
            "oid:oid polname:name polrelid:oid polcmd:char polpermissive:bool polroles:oid[] polqual:text \
             polwithcheck:text",
        )
        .build(),
        "pg_statistic_ext" => Builder::new(
            "oid:oid stxrelid:oid stxname:name stxnamespace:oid stxowner:oid stxstattarget:int4 \
             stxkeys:int2vector stxkind:char[] stxexprs:text",
        )
        .build(),
        "pg_publication" => Builder::new(
            "oid:oid pubname:name pubowner:oid puballtables:bool pubinsert:bool pubupdate:bool \
             pubdelete:bool pubtruncate:bool pubviaroot:bool",
        )
        .build(),
        "pg_publication_rel" => Builder::new("oid:oid prpubid:oid prrelid:oid prqual:text prattrs:int2vector").build(),
        "pg_publication_namespace" => Builder::new("oid:oid pnpubid:oid pnnspid:oid").build(),
        "pg_trigger" => Builder::new(
            "oid:oid tgrelid:oid tgparentid:oid tgname:name tgfoid:oid tgtype:int2 tgenabled:char \
             tgisinternal:bool tgconstrrelid:oid tgconstrindid:oid tgconstraint:oid tgdeferrable:bool \
             tginitdeferred:bool tgnargs:int2 tgattr:int2vector tgargs:text tgqual:text \
             tgoldtable:name tgnewtable:name",
        )
        .build(),
        "pg_rewrite" => Builder::new(
            "oid:oid rulename:name ev_class:oid ev_type:char ev_enabled:char is_instead:bool ev_qual:text \
             ev_action:text",
        )
        .build(),
        "pg_extension" => Builder::new(
            "oid:oid extname:name extowner:oid extnamespace:oid extrelocatable:bool extversion:text \
             extconfig:oid[] extcondition:text[]",
        )
        .build(),
        "pg_enum" => Builder::new("oid:oid enumtypid:oid enumsortorder:float4 enumlabel:name").build(),
        "pg_range" => Builder::new(
            "rngtypid:oid rngsubtype:oid rngmultitypid:oid rngcollation:oid rngsubopc:oid \
             rngcanonical:regproc rngsubdiff:regproc",
        )
        .build(),
        "pg_views" => Builder::new("schemaname:name viewname:name viewowner:name definition:text").build(),
        "pg_matviews" => Builder::new(
            "schemaname:name matviewname:name matviewowner:name tablespace:name hasindexes:bool \
             ispopulated:bool definition:text",
        )
        .build(),
        "pg_sequence" => Builder::new(
            "seqrelid:oid seqtypid:oid seqstart:int8 seqincrement:int8 seqmax:int8 seqmin:int8 \
             seqcache:int8 seqcycle:bool",
        )
        .build(),
        "pg_sequences" => Builder::new(
            "schemaname:name sequencename:name sequenceowner:name data_type:text start_value:int8 \
             min_value:int8 max_value:int8 increment_by:int8 cycle:bool cache_size:int8 last_value:int8",
        )
        .build(),
        "pg_depend" => Builder::new(
            "classid:oid objid:oid objsubid:int4 refclassid:oid refobjid:oid refobjsubid:int4 deptype:char",
        )
        .build(),
        "pg_foreign_table" => Builder::new("ftrelid:oid ftserver:oid ftoptions:text[]").build(),
        "pg_foreign_server" => Builder::new(
            "oid:oid srvname:name srvowner:oid srvfdw:oid srvtype:text srvversion:text srvacl:text[] \
             srvoptions:text[]",
        )
        .build(),
        "pg_foreign_data_wrapper" => Builder::new(
            "oid:oid fdwname:name fdwowner:oid fdwhandler:oid fdwvalidator:oid fdwacl:text[] fdwoptions:text[]",
        )
        .build(),
        "pg_event_trigger" => {
            Builder::new("oid:oid evtname:name evtevent:name evtowner:oid evtfoid:oid evtenabled:char").build()
        }
        "pg_stat_activity" => Builder::new(
            "datid:oid datname:name pid:int4 usesysid:oid usename:name application_name:text \
             client_addr:text client_port:int4 backend_start:timestamptz state:text query:text",
        )
        .build(),
        "pg_locks" => {
            Builder::new("locktype:text database:oid relation:oid pid:int4 mode:text granted:bool fastpath:bool")
                .build()
        }
        "pg_prepared_xacts" => {
            Builder::new("transaction:int8 gid:text prepared:timestamptz owner:name database:name").build()
        }
        "pg_opclass" => Builder::new(
            "oid:oid opcmethod:oid opcname:name opcnamespace:oid opcowner:oid opcfamily:oid opcintype:oid \
             opcdefault:bool opckeytype:oid",
        )
        .build(),
        "pg_operator" => Builder::new(
            "oid:oid oprname:name oprnamespace:oid oprowner:oid oprkind:char oprleft:oid oprright:oid \
             oprresult:oid oprcode:regproc",
        )
        .build(),
        "pg_cast" => {
            Builder::new("oid:oid castsource:oid casttarget:oid castfunc:oid castcontext:char castmethod:char").build()
        }
        "pg_language" => {
            let mut b = Builder::new(
                "oid:oid lanname:name lanowner:oid lanispl:bool lanpltrusted:bool lanplcallfoid:oid \
                 laninline:oid lanvalidator:oid lanacl:text[]",
            );
            for (oid, n) in [(12, "internal"), (13, "c"), (14, "sql")] {
                b.row(vec![
                    ("oid", int(oid)),
                    ("lanname", text(n)),
                    ("lanowner", int(ROLE_OID)),
                ]);
            }
            b.build()
        }
        "pg_conversion" => Builder::new(
            "oid:oid conname:name connamespace:oid conowner:oid conforencoding:int4 contoencoding:int4 \
             conproc:regproc condefault:bool",
        )
        .build(),
        "pg_default_acl" => {
            Builder::new("oid:oid defaclrole:oid defaclnamespace:oid defaclobjtype:char defaclacl:text[]").build()
        }
        "pg_init_privs" => Builder::new("objoid:oid classoid:oid objsubid:int4 privtype:char initprivs:text[]").build(),
        _ => return None,
    })
}

/// information_schema's spelling of a type.
fn sql_type_name(ty: DataType) -> &'static str {
    match ty {
        DataType::Char(_) => "character",
        DataType::Varchar(_) => "character varying",
        DataType::Name => "name",
        other => other.name(),
    }
}

fn information_schema(src: &Source, name: &str) -> Option<Relation> {
    let rels = user_rels(src.map);
    let tables = || rels.iter().filter(|r| r.shard.is_none() || r.partitioned());
    let yes_no = |b: bool| text(if b { "YES" } else { "NO" });
    Some(match name {
        "tables" => {
            let mut b = Builder::new(
                "table_catalog:name table_schema:name table_name:name table_type:text \
                 self_referencing_column_name:name reference_generation:text user_defined_type_catalog:name \
                 user_defined_type_schema:name user_defined_type_name:name is_insertable_into:text \
                 is_typed:text commit_action:text",
            );
            for r in &rels {
                b.row(vec![
                    ("table_catalog", text(src.database)),
                    ("table_schema", text("public")),
                    ("table_name", text(r.name.clone())),
                    ("table_type", text("BASE TABLE")),
                    ("is_insertable_into", yes_no(true)),
                    ("is_typed", yes_no(false)),
                ]);
            }
            b.build()
        }
        "columns" => {
            let mut b = Builder::new(
                "table_catalog:name table_schema:name table_name:name column_name:name ordinal_position:int4 \
                 column_default:text is_nullable:text data_type:text character_maximum_length:int4 \
                 character_octet_length:int4 numeric_precision:int4 numeric_precision_radix:int4 \
                 numeric_scale:int4 datetime_precision:int4 interval_type:text interval_precision:int4 \
                 character_set_catalog:name character_set_schema:name character_set_name:name \
                 collation_catalog:name collation_schema:name collation_name:name domain_catalog:name \
                 domain_schema:name domain_name:name udt_catalog:name udt_schema:name udt_name:name \
                 scope_catalog:name scope_schema:name scope_name:name maximum_cardinality:int4 \
                 dtd_identifier:name is_self_referencing:text is_identity:text identity_generation:text \
                 identity_start:text identity_increment:text identity_maximum:text identity_minimum:text \
                 identity_cycle:text is_generated:text generation_expression:text is_updatable:text",
            );
            for r in &rels {
                for (i, col) in r.table.columns.iter().enumerate() {
                    let ty = col.ty;
                    let null = |v: Option<i64>| v.map_or(Datum::Null, int);
                    let (precision, radix, scale) = match ty {
                        DataType::Int2 => (Some(16), Some(2), Some(0)),
                        DataType::Int4 => (Some(32), Some(2), Some(0)),
                        DataType::Int8 => (Some(64), Some(2), Some(0)),
                        DataType::Float4 => (Some(24), Some(2), None),
                        DataType::Float8 => (Some(53), Some(2), None),
                        DataType::Numeric(Some((p, s))) => (Some(i64::from(p)), Some(10), Some(i64::from(s))),
                        DataType::Numeric(None) => (None, Some(10), None),
                        _ => (None, None, None),
                    };
                    let length = match ty {
                        DataType::Varchar(Some(n)) | DataType::Char(Some(n)) => Some(i64::from(n)),
                        _ => None,
                    };
                    let pk = r.table.primary_key.contains(&i);
                    b.row(vec![
                        ("table_catalog", text(src.database)),
                        ("table_schema", text("public")),
                        ("table_name", text(r.name.clone())),
                        ("column_name", text(col.name.clone())),
                        ("ordinal_position", int(i as i64 + 1)),
                        ("column_default", col.default.clone().map_or(Datum::Null, text)),
                        ("is_nullable", yes_no(!(col.not_null || pk))),
                        ("data_type", text(sql_type_name(ty))),
                        ("character_maximum_length", null(length)),
                        ("character_octet_length", null(length.map(|n| n * 4))),
                        ("numeric_precision", null(precision)),
                        ("numeric_precision_radix", null(radix)),
                        ("numeric_scale", null(scale)),
                        (
                            "datetime_precision",
                            null(
                                matches!(ty, DataType::Date | DataType::Timestamp | DataType::TimestampTz)
                                    .then_some(if ty == DataType::Date { 0 } else { 6 }),
                            ),
                        ),
                        ("udt_catalog", text(src.database)),
                        ("udt_schema", text("pg_catalog")),
                        (
                            "udt_name",
                            text(
                                TYPES
                                    .iter()
                                    .find(|t| t.0 == i64::from(ty.oid()))
                                    .map_or("text", |t| t.1),
                            ),
                        ),
                        ("dtd_identifier", text((i + 1).to_string())),
                        ("is_self_referencing", yes_no(false)),
                        ("is_identity", yes_no(false)),
                        ("identity_cycle", yes_no(false)),
                        ("is_generated", text("NEVER")),
                        ("is_updatable", yes_no(true)),
                    ]);
                }
            }
            b.build()
        }
        "schemata" => {
            let mut b = Builder::new(
                "catalog_name:name schema_name:name schema_owner:name default_character_set_catalog:name \
                 default_character_set_schema:name default_character_set_name:name sql_path:text",
            );
            for (_, n) in namespaces() {
                b.row(vec![
                    ("catalog_name", text(src.database)),
                    ("schema_name", text(n)),
                    ("schema_owner", text(src.user)),
                ]);
            }
            b.build()
        }
        "table_constraints" => {
            let mut b = Builder::new(
                "constraint_catalog:name constraint_schema:name constraint_name:name table_catalog:name \
                 table_schema:name table_name:name constraint_type:text is_deferrable:text \
                 initially_deferred:text enforced:text nulls_distinct:text",
            );
            for r in tables().filter(|r| !r.table.primary_key.is_empty()) {
                b.row(vec![
                    ("constraint_catalog", text(src.database)),
                    ("constraint_schema", text("public")),
                    ("constraint_name", text(r.index_name())),
                    ("table_catalog", text(src.database)),
                    ("table_schema", text("public")),
                    ("table_name", text(r.name.clone())),
                    ("constraint_type", text("PRIMARY KEY")),
                    ("is_deferrable", yes_no(false)),
                    ("initially_deferred", yes_no(false)),
                    ("enforced", yes_no(true)),
                ]);
            }
            b.build()
        }
        "key_column_usage" => {
            let mut b = Builder::new(
                "constraint_catalog:name constraint_schema:name constraint_name:name table_catalog:name \
                 table_schema:name table_name:name column_name:name ordinal_position:int4 \
                 position_in_unique_constraint:int4",
            );
            for r in tables() {
                for (i, &c) in r.table.primary_key.iter().enumerate() {
                    b.row(vec![
                        ("constraint_catalog", text(src.database)),
                        ("constraint_schema", text("public")),
                        ("constraint_name", text(r.index_name())),
                        ("table_catalog", text(src.database)),
                        ("table_schema", text("public")),
                        ("table_name", text(r.name.clone())),
                        ("column_name", text(r.table.columns[c].name.clone())),
                        ("ordinal_position", int(i as i64 + 1)),
                    ]);
                }
            }
            b.build()
        }
        "referential_constraints" => Builder::new(
            "constraint_catalog:name constraint_schema:name constraint_name:name \
             unique_constraint_catalog:name unique_constraint_schema:name unique_constraint_name:name \
             match_option:text update_rule:text delete_rule:text",
        )
        .build(),
        "constraint_column_usage" => Builder::new(
            "table_catalog:name table_schema:name table_name:name column_name:name constraint_catalog:name \
             constraint_schema:name constraint_name:name",
        )
        .build(),
        "views" => Builder::new(
            "table_catalog:name table_schema:name table_name:name view_definition:text check_option:text \
             is_updatable:text is_insertable_into:text",
        )
        .build(),
        "sequences" => Builder::new(
            "sequence_catalog:name sequence_schema:name sequence_name:name data_type:text \
             numeric_precision:int4 start_value:text minimum_value:text maximum_value:text increment:text \
             cycle_option:text",
        )
        .build(),
        "routines" => Builder::new(
            "specific_catalog:name specific_schema:name specific_name:name routine_catalog:name \
             routine_schema:name routine_name:name routine_type:text data_type:text",
        )
        .build(),
        "check_constraints" => {
            Builder::new("constraint_catalog:name constraint_schema:name constraint_name:name check_clause:text")
                .build()
        }
        "triggers" => Builder::new(
            "trigger_catalog:name trigger_schema:name trigger_name:name event_manipulation:text \
             event_object_catalog:name event_object_schema:name event_object_table:name action_statement:text",
        )
        .build(),
        _ => return None,
    })
}

/// The OIDs PostgreSQL gives its own catalogs (what `'pg_catalog.pg_class'::regclass` is).
const CATALOG_OIDS: &[(&str, i64)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_authid", 1260),
    ("pg_database", 1262),
    ("pg_tablespace", 1213),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_depend", 2608),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_inherits", 2611),
    ("pg_namespace", 2615),
    ("pg_rewrite", 2618),
    ("pg_trigger", 2620),
    ("pg_sequence", 2224),
    ("pg_extension", 3079),
    ("pg_policy", 3256),
    ("pg_partitioned_table", 3350),
    ("pg_statistic_ext", 3381),
    ("pg_collation", 3456),
    ("pg_enum", 3501),
    ("pg_range", 3541),
    ("pg_publication", 6104),
];

/// The OID of the catalog relation `name` (of `pg_catalog`).
pub fn catalog_rel_oid(name: &str) -> Option<i64> {
    if let Some((_, oid)) = CATALOG_OIDS.iter().find(|(n, _)| *n == name) {
        return Some(*oid);
    }
    PG_CATALOG_RELATIONS
        .iter()
        .position(|n| *n == name)
        .map(|i| 12_500 + i as i64)
}

/// The name of the catalog relation with this OID.
pub fn catalog_rel_name(oid: i64) -> Option<&'static str> {
    PG_CATALOG_RELATIONS
        .iter()
        .copied()
        .find(|n| catalog_rel_oid(n) == Some(oid))
}

/// The relation with this OID, or whose primary key index or constraint has it.
pub fn rel_by_oid(map: &ClusterMap, oid: i64) -> Option<(UserRel<'_>, RelPart)> {
    user_rels(map).into_iter().find_map(|r| {
        let part = if r.oid == oid {
            RelPart::Relation
        } else if r.index_oid() == oid && !r.table.primary_key.is_empty() {
            RelPart::Index
        } else if r.constraint_oid() == oid && !r.table.primary_key.is_empty() {
            RelPart::Constraint
        } else {
            return None;
        };
        Some((r, part))
    })
}

/// Which object of a user relation an OID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelPart {
    Relation,
    Index,
    Constraint,
}

/// The OID of the relation (or index) called `name` in `public`.
pub fn rel_oid_by_name(map: &ClusterMap, name: &str) -> Option<i64> {
    user_rels(map).into_iter().find_map(|r| {
        if r.name == name {
            Some(r.oid)
        } else if r.index_name() == name && !r.table.primary_key.is_empty() {
            Some(r.index_oid())
        } else {
            None
        }
    })
}
