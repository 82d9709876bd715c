//! Bound expressions: the tree the router's binder produces from SQL, with columns resolved to
//! positions in an input row and implicit casts made explicit. The same tree is evaluated by
//! shard nodes (filters, projections, assignments) and by the router (merging, HAVING), so it is
//! plain serializable data. Evaluation is in `eval.rs`.

use serde::{Deserialize, Serialize};

use crate::datatype::DataType;
use crate::value::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// The value at this position of the input row.
    Column(usize),
    Literal(Value),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `expr IS [NOT] NULL`.
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    /// `expr IS [NOT] TRUE|FALSE`.
    IsBool {
        expr: Box<Expr>,
        value: bool,
        negated: bool,
    },
    /// `left IS [NOT] DISTINCT FROM right`.
    IsDistinct {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    /// `expr [NOT] IN (list)`.
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `expr [NOT] [I]LIKE pattern [ESCAPE escape]`.
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        case_insensitive: bool,
        negated: bool,
    },
    /// `CASE WHEN cond THEN result ... ELSE otherwise END` (the `CASE operand WHEN` form is
    /// rewritten into equality conditions by the binder).
    Case {
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    /// A conversion. `explicit` is true for `CAST`/`::`, false for the conversions an
    /// assignment applies (which refuse, rather than truncate, a too-long string).
    Cast {
        expr: Box<Expr>,
        to: DataType,
        explicit: bool,
    },
    Call {
        func: Func,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnaryOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

impl BinaryOp {
    pub fn symbol(&self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        }
    }

    pub fn is_comparison(&self) -> bool {
        matches!(
            self,
            BinaryOp::Eq | BinaryOp::NotEq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq
        )
    }

    /// The comparison with its operands swapped (`a < b` is `b > a`).
    pub fn flip(&self) -> BinaryOp {
        match self {
            BinaryOp::Lt => BinaryOp::Gt,
            BinaryOp::LtEq => BinaryOp::GtEq,
            BinaryOp::Gt => BinaryOp::Lt,
            BinaryOp::GtEq => BinaryOp::LtEq,
            other => *other,
        }
    }
}

/// Scalar functions shards and the router can evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    Lower,
    Upper,
    Length,
    OctetLength,
    Substr,
    Btrim,
    Ltrim,
    Rtrim,
    Abs,
    Round,
    Trunc,
    Ceil,
    Floor,
    Sign,
    Sqrt,
    Coalesce,
    Nullif,
    Greatest,
    Least,
    Concat,
    ConcatWs,
    Replace,
    Strpos,
    Left,
    Right,
    Repeat,
    Reverse,
    Lpad,
    Rpad,
    Md5,
    /// `date_part(field, source)` / `EXTRACT(field FROM source)`.
    DatePart,
    /// `date_trunc(field, source)`.
    DateTrunc,
}

impl Func {
    pub fn name(&self) -> &'static str {
        match self {
            Func::Lower => "lower",
            Func::Upper => "upper",
            Func::Length => "length",
            Func::OctetLength => "octet_length",
            Func::Substr => "substr",
            Func::Btrim => "btrim",
            Func::Ltrim => "ltrim",
            Func::Rtrim => "rtrim",
            Func::Abs => "abs",
            Func::Round => "round",
            Func::Trunc => "trunc",
            Func::Ceil => "ceil",
            Func::Floor => "floor",
            Func::Sign => "sign",
            Func::Sqrt => "sqrt",
            Func::Coalesce => "COALESCE",
            Func::Nullif => "NULLIF",
            Func::Greatest => "GREATEST",
            Func::Least => "LEAST",
            Func::Concat => "concat",
            Func::ConcatWs => "concat_ws",
            Func::Replace => "replace",
            Func::Strpos => "strpos",
            Func::Left => "left",
            Func::Right => "right",
            Func::Repeat => "repeat",
            Func::Reverse => "reverse",
            Func::Lpad => "lpad",
            Func::Rpad => "rpad",
            Func::Md5 => "md5",
            Func::DatePart => "date_part",
            Func::DateTrunc => "date_trunc",
        }
    }
}

impl Expr {
    pub fn lit(v: Value) -> Expr {
        Expr::Literal(v)
    }

    pub fn binary(op: BinaryOp, l: Expr, r: Expr) -> Expr {
        Expr::Binary(op, Box::new(l), Box::new(r))
    }

    /// Conjunction of a list of predicates (`None` for an empty list).
    pub fn and_all(mut preds: Vec<Expr>) -> Option<Expr> {
        let first = preds.pop()?;
        Some(
            preds
                .into_iter()
                .rev()
                .fold(first, |acc, p| Expr::binary(BinaryOp::And, p, acc)),
        )
    }

    /// Calls `f` on this expression and every sub-expression.
    pub fn walk(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Column(_) | Expr::Literal(_) => {}
            Expr::Unary(_, e)
            | Expr::IsNull { expr: e, .. }
            | Expr::IsBool { expr: e, .. }
            | Expr::Cast { expr: e, .. } => e.walk(f),
            Expr::Binary(_, l, r) | Expr::IsDistinct { left: l, right: r, .. } => {
                l.walk(f);
                r.walk(f);
            }
            Expr::InList { expr, list, .. } => {
                expr.walk(f);
                list.iter().for_each(|e| e.walk(f));
            }
            Expr::Like { expr, pattern, .. } => {
                expr.walk(f);
                pattern.walk(f);
            }
            Expr::Case { whens, otherwise } => {
                for (c, r) in whens {
                    c.walk(f);
                    r.walk(f);
                }
                if let Some(o) = otherwise {
                    o.walk(f);
                }
            }
            Expr::Call { args, .. } => args.iter().for_each(|e| e.walk(f)),
        }
    }

    /// Rewrites column references through `map` (used when a plan changes the row an
    /// expression reads).
    pub fn map_columns(&self, map: &dyn Fn(usize) -> Expr) -> Expr {
        let rewritten = self.try_rewrite::<std::convert::Infallible>(&mut |e| {
            Ok(match e {
                Expr::Column(i) => Some(map(*i)),
                _ => None,
            })
        });
        match rewritten {
            Ok(e) => e,
            Err(never) => match never {},
        }
    }

    /// Rebuilds the expression top-down: where `f` returns a replacement it is used as is,
    /// elsewhere the node is kept and its children are visited.
    pub fn try_rewrite<E>(&self, f: &mut dyn FnMut(&Expr) -> Result<Option<Expr>, E>) -> Result<Expr, E> {
        if let Some(replacement) = f(self)? {
            return Ok(replacement);
        }
        let mut r = |e: &Expr| -> Result<Box<Expr>, E> { Ok(Box::new(e.try_rewrite(f)?)) };
        Ok(match self {
            Expr::Column(i) => Expr::Column(*i),
            Expr::Literal(v) => Expr::Literal(v.clone()),
            Expr::Unary(op, e) => Expr::Unary(*op, r(e)?),
            Expr::Binary(op, a, b) => {
                let a = r(a)?;
                Expr::Binary(*op, a, r(b)?)
            }
            Expr::IsNull { expr, negated } => Expr::IsNull {
                expr: r(expr)?,
                negated: *negated,
            },
            Expr::IsBool { expr, value, negated } => Expr::IsBool {
                expr: r(expr)?,
                value: *value,
                negated: *negated,
            },
            Expr::IsDistinct { left, right, negated } => {
                let left = r(left)?;
                Expr::IsDistinct {
                    left,
                    right: r(right)?,
                    negated: *negated,
                }
            }
            Expr::InList { expr, list, negated } => {
                let expr = r(expr)?;
                let list = list.iter().map(|e| e.try_rewrite(f)).collect::<Result<_, _>>()?;
                Expr::InList {
                    expr,
                    list,
                    negated: *negated,
                }
            }
            Expr::Like {
                expr,
                pattern,
                escape,
                case_insensitive,
                negated,
            } => {
                let expr = r(expr)?;
                Expr::Like {
                    expr,
                    pattern: r(pattern)?,
                    escape: *escape,
                    case_insensitive: *case_insensitive,
                    negated: *negated,
                }
            }
            Expr::Case { whens, otherwise } => {
                let mut out = Vec::with_capacity(whens.len());
                for (c, v) in whens {
                    out.push((c.try_rewrite(f)?, v.try_rewrite(f)?));
                }
                let otherwise = match otherwise {
                    Some(o) => Some(Box::new(o.try_rewrite(f)?)),
                    None => None,
                };
                Expr::Case { whens: out, otherwise }
            }
            Expr::Cast { expr, to, explicit } => Expr::Cast {
                expr: r(expr)?,
                to: *to,
                explicit: *explicit,
            },
            Expr::Call { func, args } => Expr::Call {
                func: *func,
                args: args.iter().map(|e| e.try_rewrite(f)).collect::<Result<_, _>>()?,
            },
        })
    }

    /// Whether the expression reads any column.
    pub fn references_columns(&self) -> bool {
        let mut found = false;
        self.walk(&mut |e| found |= matches!(e, Expr::Column(_)));
        found
    }

    /// Renders the expression as SQL-like text for EXPLAIN, naming columns with `names`.
    pub fn display(&self, names: &dyn Fn(usize) -> String) -> String {
        let d = |e: &Expr| e.display(names);
        match self {
            Expr::Column(i) => names(*i),
            Expr::Literal(v) => match v {
                Value::Null => "NULL".into(),
                Value::Text(s) => format!("'{}'", s.replace('\'', "''")),
                other => other.to_text().unwrap_or_default(),
            },
            Expr::Unary(UnaryOp::Neg, e) => format!("(- {})", d(e)),
            Expr::Unary(UnaryOp::Not, e) => format!("(NOT {})", d(e)),
            Expr::Binary(op, l, r) => format!("({} {} {})", d(l), op.symbol(), d(r)),
            Expr::IsNull { expr, negated } => {
                format!("({} IS {}NULL)", d(expr), if *negated { "NOT " } else { "" })
            }
            Expr::IsBool { expr, value, negated } => format!(
                "({} IS {}{})",
                d(expr),
                if *negated { "NOT " } else { "" },
                if *value { "TRUE" } else { "FALSE" }
            ),
            Expr::IsDistinct { left, right, negated } => format!(
                "({} IS {}DISTINCT FROM {})",
                d(left),
                if *negated { "NOT " } else { "" },
                d(right)
            ),
            Expr::InList { expr, list, negated } => format!(
                "({} {}IN ({}))",
                d(expr),
                if *negated { "NOT " } else { "" },
                list.iter().map(d).collect::<Vec<_>>().join(", ")
            ),
            Expr::Like {
                expr,
                pattern,
                case_insensitive,
                negated,
                ..
            } => format!(
                "({} {}{} {})",
                d(expr),
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                d(pattern)
            ),
            Expr::Case { whens, otherwise } => {
                let mut s = "CASE".to_string();
                for (c, r) in whens {
                    s.push_str(&format!(" WHEN {} THEN {}", d(c), d(r)));
                }
                if let Some(o) = otherwise {
                    s.push_str(&format!(" ELSE {}", d(o)));
                }
                s.push_str(" END");
                s
            }
            Expr::Cast { expr, to, .. } => format!("{}::{}", d(expr), to.display_name()),
            Expr::Call { func, args } => {
                format!("{}({})", func.name(), args.iter().map(d).collect::<Vec<_>>().join(", "))
            }
        }
    }
}
