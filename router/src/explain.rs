//! EXPLAIN: the distributed plan as text: which shards a statement reaches and on which nodes,
//! what each shard executes (key range, filter, output, pushed-down DISTINCT, sort, limit or
//! partial aggregates), and what the router does with the results.

use tessera_types::fragment::{AggFunc, ScanOutput, SortKey};
use tessera_types::schema::{ClusterMap, Shard, Table};
use tessera_types::Expr;

use crate::error::{Error, Result};
use crate::plan::{describe_hull, plan_select, prune, shard_for_row, Merge};
use crate::session::Session;
use crate::sql::{Bound as Stmt, TableRef};

fn table<'m>(map: &'m ClusterMap, r: &TableRef) -> Result<&'m Table> {
    map.tables
        .get(&r.table)
        .ok_or_else(|| Error::UndefinedTable(format!("#{}", r.table)))
}

fn expr_text(e: &Expr, table: &Table) -> String {
    e.display(&|i| {
        table
            .columns
            .get(i)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| format!("${i}"))
    })
}

fn shard_line(map: &ClusterMap, s: &Shard) -> String {
    let nodes: Vec<String> = s
        .replicas
        .iter()
        .map(|r| {
            format!(
                "node {} ({})",
                r.node,
                map.node_addr(r.node).unwrap_or("unknown address")
            )
        })
        .collect();
    let bounds = s.bounds.describe();
    let bounds = if bounds.is_empty() {
        String::new()
    } else {
        format!(" {bounds}")
    };
    format!("  -> Shard {} (id {}){bounds} on {}", s.name, s.id, nodes.join(", "))
}

fn sort_text(keys: &[SortKey], names: &[String]) -> String {
    keys.iter()
        .map(|k| {
            let name = names.get(k.column).cloned().unwrap_or_else(|| format!("#{}", k.column));
            format!(
                "{name}{}{}",
                if k.descending { " DESC" } else { "" },
                match (k.descending, k.nulls_first) {
                    (false, true) => " NULLS FIRST",
                    (true, false) => " NULLS LAST",
                    _ => "",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn agg_name(f: AggFunc) -> &'static str {
    match f {
        AggFunc::CountStar | AggFunc::Count => "count",
        AggFunc::CountDistinct => "count(DISTINCT)",
        AggFunc::Sum => "sum",
        AggFunc::Avg => "avg (as sum and count)",
        AggFunc::Min => "min",
        AggFunc::Max => "max",
        AggFunc::BoolAnd => "bool_and",
        AggFunc::BoolOr => "bool_or",
    }
}

pub fn explain(map: &ClusterMap, _session: &Session, stmt: &Stmt) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match stmt {
        Stmt::Select(plan) => {
            let Some(tref) = &plan.from else {
                out.push("Router: evaluate the select list (no table)".into());
                return Ok(out);
            };
            let t = table(map, tref)?;
            let shards = prune(map, t, tref, plan.filter.as_ref());
            let read = plan_select(plan, Some(t))?;
            let total = map.shards_of(t.id).len();
            out.push(format!(
                "Distributed SELECT on {}: {} of {} shards",
                t.name,
                shards.len(),
                total
            ));
            let names: Vec<String>;
            match &read.merge {
                Merge::Rows {
                    sort,
                    distinct,
                    offset,
                    limit,
                    ..
                } => {
                    let ScanOutput::Rows { projections, .. } = &read.fragment.output else {
                        return Ok(out);
                    };
                    names = projections.iter().map(|e| expr_text(e, t)).collect();
                    let mut r = if sort.is_empty() {
                        "Router: concatenate shard streams".to_string()
                    } else {
                        format!("Router: k-way merge ordered by {}", sort_text(sort, &names))
                    };
                    if *distinct {
                        r.push_str("; DISTINCT");
                    }
                    if *offset > 0 {
                        r.push_str(&format!("; OFFSET {offset}"));
                    }
                    if let Some(l) = limit {
                        r.push_str(&format!("; LIMIT {l} (stops reading shards once reached)"));
                    }
                    out.push(r);
                }
                Merge::Aggregate {
                    groups,
                    aggregates,
                    having,
                    sort,
                    limit,
                    ..
                } => {
                    names = Vec::new();
                    let mut r = format!(
                        "Router: merge partial aggregates ({}) over {} group column{}",
                        aggregates
                            .iter()
                            .map(|(f, _)| agg_name(*f))
                            .collect::<Vec<_>>()
                            .join(", "),
                        groups,
                        if *groups == 1 { "" } else { "s" }
                    );
                    if having.is_some() {
                        r.push_str("; HAVING");
                    }
                    if !sort.is_empty() {
                        r.push_str("; sort");
                    }
                    if let Some(l) = limit {
                        r.push_str(&format!("; LIMIT {l}"));
                    }
                    out.push(r);
                }
            }
            for s in shards {
                out.push(shard_line(map, s));
                let mut scan = format!("       Scan {}", t.name);
                if let Some(r) = describe_hull(t, plan.filter.as_ref()) {
                    scan.push_str(&format!(" ({r})"));
                }
                out.push(scan);
                if let Some(f) = &read.fragment.filter {
                    out.push(format!("       Filter: {}", expr_text(f, t)));
                }
                match &read.fragment.output {
                    ScanOutput::Rows {
                        distinct,
                        order_by,
                        limit,
                        ..
                    } => {
                        out.push(format!("       Output: {}", names.join(", ")));
                        if *distinct {
                            out.push("       Distinct".into());
                        }
                        if !order_by.is_empty() {
                            out.push(format!("       Sort: {}", sort_text(order_by, &names)));
                        }
                        if let Some(l) = limit {
                            out.push(format!("       Limit: {l}"));
                        }
                    }
                    ScanOutput::Aggregate { group_by, aggregates } => {
                        let aggs: Vec<String> = aggregates
                            .iter()
                            .map(|a| match a.func {
                                AggFunc::CountStar => "count(*)".to_string(),
                                f => format!("{}({})", agg_name(f), expr_text(&a.arg, t)),
                            })
                            .collect();
                        out.push(format!("       Partial aggregate: {}", aggs.join(", ")));
                        if !group_by.is_empty() {
                            out.push(format!(
                                "       Group by: {}",
                                group_by.iter().map(|e| expr_text(e, t)).collect::<Vec<_>>().join(", ")
                            ));
                        }
                    }
                }
            }
        }
        Stmt::Insert(plan) => {
            let t = table(map, &plan.target)?;
            out.push(format!(
                "Distributed INSERT into {}: {} row{}",
                t.name,
                plan.rows.len(),
                if plan.rows.len() == 1 { "" } else { "s" }
            ));
            let mut counts: Vec<(&Shard, usize)> = Vec::new();
            for row in &plan.rows {
                match shard_for_row(map, t, row) {
                    Some(s) => match counts.iter_mut().find(|(x, _)| x.id == s.id) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((s, 1)),
                    },
                    None => out.push("  (a row fits no partition: the insert would fail)".into()),
                }
            }
            for (s, n) in counts {
                out.push(shard_line(map, s));
                out.push(format!("       Insert {n} row{}", if n == 1 { "" } else { "s" }));
            }
        }
        Stmt::Update(_) | Stmt::Delete(_) => {
            let (tref, filter, kind) = match stmt {
                Stmt::Update(p) => (&p.target, p.filter.as_ref(), "UPDATE"),
                Stmt::Delete(p) => (&p.target, p.filter.as_ref(), "DELETE"),
                _ => return Ok(out),
            };
            let t = table(map, tref)?;
            let shards = prune(map, t, tref, filter);
            out.push(format!(
                "Distributed {kind} on {}: {} of {} shards",
                t.name,
                shards.len(),
                map.shards_of(t.id).len()
            ));
            let range = describe_hull(t, filter);
            let fragment_kind = match stmt {
                Stmt::Update(p) if p.moves_rows => "Update (rows whose partition key changes move to their new shard)",
                Stmt::Update(_) => "Update",
                _ => "Delete",
            };
            for s in shards {
                out.push(shard_line(map, s));
                out.push(format!(
                    "       {fragment_kind}{}",
                    range.as_ref().map(|r| format!(" ({r})")).unwrap_or_default()
                ));
                if let Some(f) = filter {
                    out.push(format!("       Filter: {}", expr_text(f, t)));
                }
            }
        }
        other => out.push(format!("Router: {}", describe_utility(other))),
    }
    Ok(out)
}

fn describe_utility(stmt: &Stmt) -> &'static str {
    match stmt {
        Stmt::Ddl { .. } => "schema change, executed by the catalog",
        Stmt::Begin | Stmt::Commit | Stmt::Rollback => "transaction control",
        Stmt::Set { .. } | Stmt::Show { .. } => "session setting",
        _ => "utility statement",
    }
}
