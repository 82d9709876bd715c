//! The course's HTTP API, translated into SQL on the table `studt` keyed by `stud_id`: each
//! endpoint checks its payload, runs one statement through [`Engine`] (so a table made by
//! `/init` is the one psql sees, and the other way round) and answers in the course's shapes.
//!
//! JSON field names match columns case-insensitively (`Stud_id` is the column `stud_id`);
//! answers spell columns with a leading capital, as the course does. The course's `Number` is
//! `integer`, its `String` is `text`. Tessera places replicas itself: `/init` gives the table as
//! many replicas per shard as the most-listed shard has servers, and `/status` reports the real
//! placement by node (`node1`, `node2`...).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeMap;

use tessera_types::schema::{ClusterMap, NodeState, ShardBounds, Table};
use tessera_types::text::parse_text;
use tessera_types::{DataType, Value};

use super::{json_kind, json_object, json_response, Api, ApiError, ApiResult, Engine};

/// The course's table and its key.
const TABLE: &str = "studt";
const KEY: &str = "stud_id";

/// A field of a JSON object: its exact name first, then any spelling of it.
fn field<'a>(obj: &'a Map<String, Json>, name: &str) -> Option<&'a Json> {
    obj.get(name)
        .or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn required<'a>(obj: &'a Map<String, Json>, name: &str) -> Result<&'a Json, ApiError> {
    field(obj, name).ok_or_else(|| ApiError::bad(format!("the payload needs the field \"{name}\"")))
}

fn integer(v: &Json, what: &str) -> Result<i64, ApiError> {
    v.as_i64()
        .ok_or_else(|| ApiError::bad(format!("{what} must be an integer, not {}", describe(v))))
}

fn object<'a>(v: &'a Json, what: &str) -> Result<&'a Map<String, Json>, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::bad(format!("{what} must be an object, not {}", describe(v))))
}

fn array<'a>(v: &'a Json, what: &str) -> Result<&'a Vec<Json>, ApiError> {
    v.as_array()
        .ok_or_else(|| ApiError::bad(format!("{what} must be an array, not {}", describe(v))))
}

fn string<'a>(v: &'a Json, what: &str) -> Result<&'a str, ApiError> {
    v.as_str()
        .ok_or_else(|| ApiError::bad(format!("{what} must be a string, not {}", describe(v))))
}

/// A JSON value for messages: its kind, and the value itself when short.
fn describe(v: &Json) -> String {
    let text = v.to_string();
    if text.len() <= 40 {
        format!("{} ({text})", json_kind(v))
    } else {
        json_kind(v).to_string()
    }
}

/// A name usable as an SQL identifier without quotes, lower-cased as SQL folds it.
fn identifier(name: &str, what: &str) -> Result<String, ApiError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63;
    if !ok {
        return Err(ApiError::bad(format!(
            "{what} \"{name}\" is not a usable name: use letters, digits and _, starting with a letter, at most 63 characters"
        )));
    }
    Ok(name.to_ascii_lowercase())
}

/// A column as the course spells it: `stud_id` is `Stud_id`.
fn course_name(column: &str) -> String {
    let mut chars = column.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The course's `Number` or `String` for a column type.
fn course_dtype(ty: &DataType) -> &'static str {
    match ty {
        DataType::Int2
        | DataType::Int4
        | DataType::Int8
        | DataType::Float4
        | DataType::Float8
        | DataType::Numeric(_) => "Number",
        _ => "String",
    }
}

/// A JSON value as a parameter of the column's type, converted as PostgreSQL converts text
/// input (so `"12"` and `12` both fit an integer column, `12.5` does not).
fn param(v: &Json, table: &Table, column: usize) -> Result<(Value, DataType), ApiError> {
    let col = &table.columns[column];
    let text = match v {
        Json::Null => return Ok((Value::Null, col.ty)),
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        other => {
            return Err(ApiError::bad(format!(
                "{} must be a single value, not {}",
                course_name(&col.name),
                json_kind(other)
            )))
        }
    };
    let value = parse_text(&text, col.ty)
        .map_err(|e| ApiError::bad(format!("{}: {}", course_name(&col.name), crate::error::Error::Exec(e))))?;
    Ok((value, col.ty))
}

/// A value as the course's JSON: numbers as numbers, text as strings.
fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int2(n) => json!(n),
        Value::Int4(n) => json!(n),
        Value::Int8(n) => json!(n),
        Value::Float4(f) => json!(f),
        Value::Float8(f) => json!(f),
        Value::Numeric(d) => d
            .to_string()
            .parse::<serde_json::Number>()
            .map(Json::Number)
            .unwrap_or_else(|_| Json::String(d.to_string())),
        other => other.to_text().map(Json::String).unwrap_or(Json::Null),
    }
}

/// The course's table with the index of its key column.
fn studt(map: &ClusterMap) -> Result<(Table, usize), ApiError> {
    let table = map.table_by_name(TABLE).ok_or_else(|| {
        ApiError::bad(format!(
            "there is no table {TABLE} yet: POST /init first (or create it with CREATE TABLE {TABLE} in psql)"
        ))
    })?;
    let key = table.column_index(KEY).ok_or_else(|| {
        ApiError::bad(format!(
            "table {TABLE} has no column {KEY}, which the HTTP API reads by"
        ))
    })?;
    Ok((table.clone(), key))
}

/// The column a payload field names.
fn column_of(table: &Table, name: &str) -> Result<usize, ApiError> {
    table.column_index(&name.to_ascii_lowercase()).ok_or_else(|| {
        let known: Vec<String> = table.columns.iter().map(|c| course_name(&c.name)).collect();
        ApiError::bad(format!("unknown field \"{name}\": {TABLE} has {}", known.join(", ")))
    })
}

/// Live nodes: the course's `N`.
fn live_nodes(map: &ClusterMap) -> usize {
    map.nodes.values().filter(|n| n.state == NodeState::Alive).count()
}

fn success(body: Json) -> ApiResult {
    Ok(json_response(StatusCode::OK, &body))
}

/// One shard of an `/init` or `/add` payload.
struct ShardSpec {
    name: String,
    low: i64,
    size: i64,
}

fn shard_specs(v: &Json, what: &str) -> Result<Vec<ShardSpec>, ApiError> {
    let mut specs: Vec<ShardSpec> = Vec::new();
    for (i, s) in array(v, what)?.iter().enumerate() {
        let at = format!("{what}[{i}]");
        let s = object(s, &at)?;
        let name = identifier(string(required(s, "Shard_id")?, &format!("{at}.Shard_id"))?, "Shard_id")?;
        let low = integer(required(s, "Stud_id_low")?, &format!("{at}.Stud_id_low"))?;
        let size = integer(required(s, "Shard_size")?, &format!("{at}.Shard_size"))?;
        if size <= 0 {
            return Err(ApiError::bad(format!("{at}.Shard_size must be positive, not {size}")));
        }
        let fits = |v: i64| i32::try_from(v).is_ok();
        if !fits(low) || !low.checked_add(size).is_some_and(fits) {
            return Err(ApiError::bad(format!(
                "{at}: Stud_id_low {low} and Shard_size {size} go beyond the integer range of Stud_id"
            )));
        }
        if specs.iter().any(|p| p.name == name) {
            return Err(ApiError::bad(format!("shard \"{name}\" appears twice")));
        }
        specs.push(ShardSpec { name, low, size });
    }
    Ok(specs)
}

/// `CREATE TABLE <shard> PARTITION OF studt ...` for each shard; on a failure, the shards made
/// by this call are dropped again, so a refused request leaves nothing behind.
async fn create_shards(engine: &Engine, specs: &[ShardSpec]) -> Result<(), ApiError> {
    for (i, s) in specs.iter().enumerate() {
        let sql = format!(
            "CREATE TABLE {} PARTITION OF {TABLE} FOR VALUES FROM ({}) TO ({})",
            s.name,
            s.low,
            s.low + s.size
        );
        if let Err(e) = engine.run(&sql, Vec::new()).await {
            for made in &specs[..i] {
                let _ = engine
                    .run(&format!("DROP TABLE IF EXISTS {}", made.name), Vec::new())
                    .await;
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// `POST /init`: creates `studt` with the payload's columns, range-sharded on `Stud_id` into
/// the payload's shards, each with as many replicas as the most-listed shard's server count.
pub async fn init(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let n = integer(required(&obj, "N")?, "N")?;
    if n < 1 {
        return Err(ApiError::bad(format!("N must be at least 1, not {n}")));
    }
    let schema = object(required(&obj, "schema")?, "schema")?;
    let columns = array(required(schema, "columns")?, "schema.columns")?;
    let dtypes = array(required(schema, "dtypes")?, "schema.dtypes")?;
    if columns.is_empty() || columns.len() != dtypes.len() {
        return Err(ApiError::bad(format!(
            "schema.columns and schema.dtypes must be non-empty and of the same length, not {} and {}",
            columns.len(),
            dtypes.len()
        )));
    }
    let mut defs = Vec::new();
    for (i, (c, t)) in columns.iter().zip(dtypes).enumerate() {
        let name = identifier(string(c, &format!("schema.columns[{i}]"))?, "column")?;
        let ty = match string(t, &format!("schema.dtypes[{i}]"))? {
            t if t.eq_ignore_ascii_case("number") => "integer",
            t if t.eq_ignore_ascii_case("string") => "text",
            other => {
                return Err(ApiError::bad(format!(
                    "schema.dtypes[{i}] is \"{other}\": the types are \"Number\" and \"String\""
                )))
            }
        };
        if defs.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::bad(format!(
                "column \"{name}\" appears twice in schema.columns"
            )));
        }
        defs.push((name, ty));
    }
    match defs.iter().find(|(n, _)| n == KEY) {
        Some((_, "integer")) => {}
        Some(_) => {
            return Err(ApiError::bad(
                "Stud_id must be a \"Number\": the shards are ranges of it",
            ))
        }
        None => {
            return Err(ApiError::bad(
                "schema.columns must include Stud_id: the shards are ranges of it",
            ))
        }
    }
    let shards = shard_specs(required(&obj, "shards")?, "shards")?;
    if shards.is_empty() {
        return Err(ApiError::bad("shards must list at least one shard"));
    }
    let servers = object(required(&obj, "servers")?, "servers")?;
    if servers.len() as i64 > n {
        return Err(ApiError::bad(format!(
            "servers names {} servers but N is {n}",
            servers.len()
        )));
    }
    let mut copies: BTreeMap<&str, u32> = shards.iter().map(|s| (s.name.as_str(), 0)).collect();
    for (server, held) in servers {
        for s in array(held, &format!("servers.{server}"))? {
            let name = string(s, &format!("servers.{server}[]"))?.to_ascii_lowercase();
            match copies.get_mut(name.as_str()) {
                Some(count) => *count += 1,
                None => {
                    return Err(ApiError::bad(format!(
                        "servers.{server} lists shard \"{name}\", which shards does not define"
                    )))
                }
            }
        }
    }
    if let Some((name, _)) = copies.iter().find(|(_, c)| **c == 0) {
        return Err(ApiError::bad(format!(
            "shard \"{name}\" is on no server: list it under servers"
        )));
    }
    let replicas = copies.values().copied().max().unwrap_or(1);
    let column_sql: Vec<String> = defs
        .iter()
        .map(|(name, ty)| {
            if name == KEY {
                format!("{name} {ty} PRIMARY KEY")
            } else {
                format!("{name} {ty}")
            }
        })
        .collect();
    let create = format!(
        "CREATE TABLE {TABLE} ({}) PARTITION BY RANGE ({KEY}) WITH (replicas = {replicas})",
        column_sql.join(", ")
    );
    engine.run(&create, Vec::new()).await?;
    if let Err(e) = create_shards(&engine, &shards).await {
        let _ = engine.run(&format!("DROP TABLE IF EXISTS {TABLE}"), Vec::new()).await;
        return Err(e);
    }
    success(json!({"message": "Configured Database", "status": "success"}))
}

/// `GET /status`: `N` (live nodes), the schema, the shards and which node holds which.
pub async fn status(State(engine): Api) -> ApiResult {
    let map = engine.map();
    let (table, _) = studt(&map)?;
    let columns: Vec<String> = table.columns.iter().map(|c| course_name(&c.name)).collect();
    let dtypes: Vec<&str> = table.columns.iter().map(|c| course_dtype(&c.ty)).collect();
    let mut shards = Vec::new();
    let mut servers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for shard in map.shards_of(table.id) {
        let (low, size) = match &shard.bounds {
            ShardBounds::Range { from, to } => {
                let low = from.as_ref().and_then(Value::as_i64);
                let high = to.as_ref().and_then(Value::as_i64);
                (low, low.zip(high).and_then(|(l, h)| h.checked_sub(l)))
            }
            _ => (None, None),
        };
        shards.push(json!({"Stud_id_low": low, "Shard_id": shard.name, "Shard_size": size}));
        for r in &shard.replicas {
            servers
                .entry(format!("node{}", r.node))
                .or_default()
                .push(shard.name.clone());
        }
    }
    success(json!({
        "N": live_nodes(&map),
        "schema": {"columns": columns, "dtypes": dtypes},
        "shards": shards,
        "servers": servers,
    }))
}

/// `POST /add`: has the catalog's provisioner start `n` new servers (`tessera_add_nodes`: they
/// register, then take their share of replicas), then adds the payload's `new_shards` to
/// `studt`. Replicas are placed on the node ring, so the payload's `servers` names count the new
/// servers but do not choose where shards go. A cluster without a provisioner answers `n` > 0
/// with 501 (the catalog's 0A000) before anything changes.
pub async fn add(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let n = integer(required(&obj, "n")?, "n")?;
    if n < 0 {
        return Err(ApiError::bad(format!("n must not be negative, not {n}")));
    }
    let shards = match field(&obj, "new_shards") {
        Some(v) => shard_specs(v, "new_shards")?,
        None => Vec::new(),
    };
    let servers = match field(&obj, "servers") {
        Some(v) => object(v, "servers")?.clone(),
        None => Map::new(),
    };
    if n as usize > servers.len() {
        return Err(ApiError::bad(
            "<Error> Number of new servers (n) is greater than newly added instances",
        ));
    }
    if !shards.is_empty() {
        studt(&engine.map())?;
    }
    if n > 0 {
        // A cluster without a provisioner cannot do this at all: 501, as for any server.
        engine
            .run(&format!("SELECT tessera_add_nodes({n})"), Vec::new())
            .await
            .map_err(|e| {
                let mut e = ApiError::from(e);
                if e.sqlstate == Some("0A000") {
                    e.status = StatusCode::NOT_IMPLEMENTED;
                }
                e
            })?;
    }
    create_shards(&engine, &shards).await?;
    let names: Vec<&str> = shards.iter().map(|s| s.name.as_str()).collect();
    let mut added: Vec<String> = Vec::new();
    if n > 0 {
        added.push(format!("{n} server(s)"));
    }
    if !names.is_empty() {
        added.push(format!("shards {}", names.join(", ")));
    }
    let message = if added.is_empty() {
        "Nothing to add".to_string()
    } else {
        format!("Added {}", added.join(" and "))
    };
    success(json!({"N": live_nodes(&engine.map()), "message": message, "status": "successful"}))
}

/// `DELETE /rm`: takes `n` servers out of the cluster: those `servers` names (as `/status`
/// names them: `node3`), then, if `n` is larger, the live nodes holding the fewest replicas.
/// Each is drained (`tessera_remove_node`: its replicas move to the other nodes, then it
/// leaves the map); stopping its process is left to whoever started it. Refused as a whole,
/// before anything changes, when the nodes left could not hold every table's replicas.
pub async fn rm(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let n = integer(required(&obj, "n")?, "n")?;
    if n < 0 {
        return Err(ApiError::bad(format!("n must not be negative, not {n}")));
    }
    let servers = match field(&obj, "servers") {
        Some(v) => array(v, "servers")?.clone(),
        None => Vec::new(),
    };
    if servers.len() as i64 > n {
        return Err(ApiError::bad(
            "<Error> Length of server list is more than removable instances",
        ));
    }
    let map = engine.map();
    let alive: Vec<&tessera_types::schema::NodeInfo> = map
        .nodes
        .values()
        .filter(|node| node.state == NodeState::Alive)
        .collect();
    let mut chosen: Vec<u64> = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let name = string(s, &format!("servers[{i}]"))?;
        let id = name
            .strip_prefix("node")
            .and_then(|id| id.parse::<u64>().ok())
            .filter(|id| alive.iter().any(|node| node.id == *id))
            .ok_or_else(|| {
                ApiError::bad(format!(
                    "<Error> server \"{name}\" is not a live server (GET /status names them: node1, node2, ...)"
                ))
            })?;
        if !chosen.contains(&id) {
            chosen.push(id);
        }
    }
    let held = |id: u64| {
        map.shards
            .values()
            .flat_map(|s| &s.replicas)
            .filter(|r| r.node == id)
            .count()
    };
    let mut others: Vec<u64> = alive
        .iter()
        .map(|node| node.id)
        .filter(|id| !chosen.contains(id))
        .collect();
    others.sort_by_key(|id| (held(*id), std::cmp::Reverse(*id)));
    chosen.extend(others.into_iter().take((n as usize).saturating_sub(chosen.len())));
    let needed = map.tables.values().map(|t| t.replicas as usize).max().unwrap_or(0);
    if chosen.len() < n as usize || alive.len() - chosen.len() < needed.max(1) {
        return Err(ApiError::bad(format!(
            "<Error> cannot remove {n} of the {} live servers: {} must stay for the tables' {needed} replicas per shard",
            alive.len(),
            needed.max(1)
        )));
    }
    for id in &chosen {
        engine
            .run(&format!("SELECT tessera_remove_node({id})"), Vec::new())
            .await?;
    }
    let servers: Vec<String> = chosen.iter().map(|id| format!("node{id}")).collect();
    success(json!({
        "message": {"N": live_nodes(&engine.map()), "servers": servers},
        "status": "successful",
    }))
}

/// `POST /read`: every row with `low <= Stud_id <= high`, in key order, and the shards whose
/// ranges the query reached.
pub async fn read(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let range = object(required(&obj, "Stud_id")?, "Stud_id")?;
    let low = integer(required(range, "low")?, "Stud_id.low")?;
    let high = integer(required(range, "high")?, "Stud_id.high")?;
    if low > high {
        return Err(ApiError::bad(format!(
            "Stud_id.low ({low}) is greater than Stud_id.high ({high})"
        )));
    }
    let map = engine.map();
    let (table, key) = studt(&map)?;
    // A range beyond what the key's type holds reads the same rows as one clamped to it.
    let (min, max) = match table.columns[key].ty {
        DataType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        DataType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    let bound = |v: i64| param(&json!(v.clamp(min, max)), &table, key);
    let answer = if low > max || high < min {
        super::Answer {
            columns: Vec::new(),
            rows: Vec::new(),
        }
    } else {
        engine
            .run(
                &format!("SELECT * FROM {TABLE} WHERE {KEY} BETWEEN $1 AND $2 ORDER BY {KEY}"),
                vec![bound(low)?, bound(high)?],
            )
            .await?
    };
    let names: Vec<String> = answer.columns.iter().map(|c| course_name(&c.name)).collect();
    let data: Vec<Json> = answer
        .rows
        .iter()
        .map(|row| {
            let fields: Map<String, Json> = names.iter().cloned().zip(row.iter().map(to_json)).collect();
            Json::Object(fields)
        })
        .collect();
    let queried: Vec<&str> = map
        .shards_of(table.id)
        .into_iter()
        .filter(|s| match &s.bounds {
            ShardBounds::Range { from, to } => {
                let from = from.as_ref().and_then(Value::as_i64);
                let to = to.as_ref().and_then(Value::as_i64);
                from.is_none_or(|f| f <= high) && to.is_none_or(|t| t > low)
            }
            _ => true,
        })
        .map(|s| s.name.as_str())
        .collect();
    success(json!({"shards_queried": queried, "data": data, "status": "success"}))
}

/// `POST /write`: inserts the payload's rows in one statement (all or none); a field left out
/// gets the column's default.
pub async fn write(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let rows = array(required(&obj, "data")?, "data")?;
    if rows.is_empty() {
        return Err(ApiError::bad("data must hold at least one row"));
    }
    let (table, _) = studt(&engine.map())?;
    let mut params = Vec::new();
    let mut tuples = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let row = object(row, &format!("data[{i}]"))?;
        let mut given: Vec<Option<&Json>> = vec![None; table.columns.len()];
        for (name, v) in row {
            let c = column_of(&table, name).map_err(|e| ApiError::bad(format!("data[{i}]: {}", e.message)))?;
            given[c] = Some(v);
        }
        let mut slots = Vec::with_capacity(given.len());
        for (c, v) in given.iter().enumerate() {
            match v {
                Some(v) => {
                    params.push(param(v, &table, c).map_err(|e| ApiError::bad(format!("data[{i}]: {}", e.message)))?);
                    slots.push(format!("${}", params.len()));
                }
                None => slots.push("DEFAULT".to_string()),
            }
        }
        tuples.push(format!("({})", slots.join(", ")));
    }
    let sql = format!("INSERT INTO {TABLE} VALUES {}", tuples.join(", "));
    engine.run(&sql, params).await?;
    success(json!({"message": format!("{} Data entries added", rows.len()), "status": "success"}))
}

/// The payload's `Stud_id` as an integer.
fn stud_id(obj: &Map<String, Json>) -> Result<i64, ApiError> {
    integer(required(obj, "Stud_id")?, "Stud_id")
}

fn no_entry(id: i64) -> ApiError {
    ApiError::with_status(
        StatusCode::NOT_FOUND,
        format!("there is no data entry with Stud_id:{id}"),
    )
}

/// `PUT /update`: sets the payload's `data` fields on the row with `Stud_id` (a new `Stud_id`
/// moves the row to its new shard).
pub async fn update(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let id = stud_id(&obj)?;
    let data = object(required(&obj, "data")?, "data")?;
    if data.is_empty() {
        return Err(ApiError::bad("data must set at least one field"));
    }
    let (table, key) = studt(&engine.map())?;
    let mut params = vec![param(&json!(id), &table, key)?];
    let mut sets = Vec::new();
    for (name, v) in data {
        let c = column_of(&table, name)?;
        params.push(param(v, &table, c)?);
        sets.push(format!("{} = ${}", table.columns[c].name, params.len()));
    }
    let sql = format!(
        "UPDATE {TABLE} SET {} WHERE {KEY} = $1 RETURNING {KEY}",
        sets.join(", ")
    );
    if engine.run(&sql, params).await?.rows.is_empty() {
        return Err(no_entry(id));
    }
    success(json!({"message": format!("Data entry for Stud_id:{id} updated"), "status": "success"}))
}

/// `DELETE /del`: removes the row with `Stud_id` (from every replica of its shard).
pub async fn del(State(engine): Api, body: Bytes) -> ApiResult {
    let obj = json_object(&body)?;
    let id = stud_id(&obj)?;
    let (table, key) = studt(&engine.map())?;
    let params = vec![param(&json!(id), &table, key)?];
    let sql = format!("DELETE FROM {TABLE} WHERE {KEY} = $1 RETURNING {KEY}");
    if engine.run(&sql, params).await?.rows.is_empty() {
        return Err(no_entry(id));
    }
    success(json!({
        "message": format!("Data entry with Stud_id:{id} removed from all replicas"),
        "status": "success",
    }))
}
