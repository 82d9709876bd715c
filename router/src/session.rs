//! A client session's state: who it is, its settings (`SET`), and its transaction: idle, in a
//! block (explicit `BEGIN`, or the implicit one around a multi-statement query string), or
//! failed (every statement refused until `ROLLBACK`). A transaction remembers the shards it has
//! written to: its COMMIT commits there (through two-phase commit when there are several).

use std::collections::BTreeMap;

use tessera_types::rpc::TxnId;
use tessera_types::schema::ShardId;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnStatus {
    Idle,
    InBlock,
    Failed,
}

#[derive(Debug, Clone)]
pub struct Txn {
    pub status: TxnStatus,
    /// True for the implicit transaction of a multi-statement query string.
    pub implicit: bool,
    pub id: TxnId,
    /// The shards this transaction wrote to, in the order it first did.
    pub write_shards: Vec<ShardId>,
    /// When it began (what `now()` returns), microseconds since 2000-01-01.
    pub start: i64,
    /// Write statements that succeeded in this transaction.
    pub writes: u64,
    /// Open savepoints, oldest first, with the write count when each was set.
    pub savepoints: Vec<(String, u64)>,
}

impl Txn {
    fn idle() -> Txn {
        Txn {
            status: TxnStatus::Idle,
            implicit: false,
            id: 0,
            write_shards: Vec::new(),
            start: 0,
            writes: 0,
            savepoints: Vec::new(),
        }
    }
}

/// Settings a client may SET and SHOW, with their defaults.
pub const DEFAULT_SETTINGS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("datestyle", "ISO, MDY"),
    ("default_table_access_method", "heap"),
    ("default_tablespace", ""),
    ("default_transaction_isolation", "read committed"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("lock_timeout", "0"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("max_identifier_length", "63"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", crate::SERVER_VERSION),
    ("server_version_num", "150000"),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("tessera.max_staleness", "1000"),
    ("tessera.read_consistency", "linearizable"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
];

/// Settings that tell the client about a change (ParameterStatus) when SET.
pub const REPORTED_SETTINGS: &[&str] = &[
    "application_name",
    "client_encoding",
    "datestyle",
    "integer_datetimes",
    "intervalstyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "standard_conforming_strings",
    "timezone",
];

pub struct Session {
    pub user: String,
    pub database: String,
    /// Whether the session logged in without a password (`--auth trust`): then a name that is
    /// no role has every right. Otherwise the session's rights are its role's, as the current
    /// map has them (`Session::superuser`).
    pub trusted: bool,
    pub txn: Txn,
    settings: BTreeMap<String, String>,
    /// What RESET returns a setting to when the client chose it at startup.
    startup: BTreeMap<String, String>,
}

/// The name PostgreSQL reports a setting under (`DateStyle`, `TimeZone`...).
pub fn reported_name(name: &str) -> &str {
    match name {
        "datestyle" => "DateStyle",
        "timezone" => "TimeZone",
        "intervalstyle" => "IntervalStyle",
        other => other,
    }
}

impl Session {
    /// Whether the session may change roles: its role is a superuser in `map` (which may have
    /// changed since the login), or it is no role and logged in under trust.
    pub fn superuser(&self, map: &tessera_types::schema::ClusterMap) -> bool {
        map.roles.get(&self.user).map_or(self.trusted, |r| r.superuser)
    }

    pub fn new(user: String, database: String) -> Session {
        let settings = DEFAULT_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Session {
            user,
            database,
            trusted: false,
            txn: Txn::idle(),
            settings,
            startup: BTreeMap::new(),
        }
    }

    /// Applies a setting the client sent at startup; RESET returns to it. A value Tessera
    /// does not support leaves the default in place.
    pub fn set_at_startup(&mut self, name: &str, value: String) {
        let name = name.to_ascii_lowercase();
        if self.set(&name, Some(value)).is_ok() {
            if let Some(v) = self.settings.get(&name).cloned() {
                self.startup.insert(name, v);
            }
        }
    }

    /// Sets a setting clients may not change (`is_superuser`), as the server reports it.
    pub fn set_reported(&mut self, name: &str, value: &str) {
        self.settings.insert(name.to_string(), value.to_string());
    }

    /// Every setting with its current value, by name.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn in_block(&self) -> bool {
        self.txn.status != TxnStatus::Idle
    }

    /// Starts a transaction block.
    pub fn begin(&mut self, implicit: bool, now: i64) {
        self.txn = Txn {
            status: TxnStatus::InBlock,
            implicit,
            id: rand::random(),
            write_shards: Vec::new(),
            start: now,
            writes: 0,
            savepoints: Vec::new(),
        };
    }

    pub fn end_txn(&mut self) {
        self.txn = Txn::idle();
    }

    /// `SAVEPOINT name`.
    pub fn savepoint(&mut self, name: String) -> Result<()> {
        if self.txn.status == TxnStatus::Idle {
            return Err(Error::NoTxn("SAVEPOINT can only be used in transaction blocks".into()));
        }
        self.txn.savepoints.push((name, self.txn.writes));
        Ok(())
    }

    fn find_savepoint(&self, name: &str) -> Result<usize> {
        self.txn
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Error::NoSavepoint(name.to_string()))
    }

    /// `RELEASE SAVEPOINT name`: forgets it and every later one.
    pub fn release(&mut self, name: &str) -> Result<()> {
        if self.txn.status == TxnStatus::Idle {
            return Err(Error::NoTxn(
                "RELEASE SAVEPOINT can only be used in transaction blocks".into(),
            ));
        }
        let i = self.find_savepoint(name)?;
        self.txn.savepoints.truncate(i);
        Ok(())
    }

    /// `ROLLBACK TO SAVEPOINT name`: the transaction goes on from the savepoint, failed or not.
    /// Undoing writes made since then is not supported yet: that is refused, and the block
    /// stays failed, so ROLLBACK undoes everything.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        if self.txn.status == TxnStatus::Idle {
            return Err(Error::NoTxn(
                "ROLLBACK TO SAVEPOINT can only be used in transaction blocks".into(),
            ));
        }
        let i = self.find_savepoint(name)?;
        if self.txn.writes > self.txn.savepoints[i].1 {
            return Err(Error::Unsupported(format!(
                "ROLLBACK TO SAVEPOINT cannot undo writes yet: this transaction wrote after SAVEPOINT {name}; \
                 roll back the whole transaction"
            )));
        }
        self.txn.savepoints.truncate(i + 1);
        self.txn.status = TxnStatus::InBlock;
        Ok(())
    }

    /// Marks the block failed after an error.
    pub fn fail(&mut self) {
        if self.txn.status == TxnStatus::InBlock {
            self.txn.status = TxnStatus::Failed;
        }
    }

    pub fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// Applies `SET name = value` (`None` resets); returns the value to report, if the client
    /// must be told.
    pub fn set(&mut self, name: &str, value: Option<String>) -> Result<Option<(String, String)>> {
        let name = name.to_ascii_lowercase();
        if name == "all" {
            for (k, v) in DEFAULT_SETTINGS {
                self.settings.insert(k.to_string(), v.to_string());
            }
            self.settings.extend(self.startup.clone());
            return Ok(None);
        }
        let default = self.startup.get(&name).cloned().or_else(|| {
            DEFAULT_SETTINGS
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        });
        let custom = name.contains('.');
        let Some(default) = default.or_else(|| custom.then(String::new)) else {
            return Err(Error::UnknownSetting(name));
        };
        let value = value.unwrap_or(default);
        let value = match name.as_str() {
            "timezone" => {
                let v = value.trim_matches('\'');
                if !(v.eq_ignore_ascii_case("utc")
                    || v.eq_ignore_ascii_case("etc/utc")
                    || v.eq_ignore_ascii_case("gmt")
                    || v == "0"
                    || v == "+00"
                    || v == "Z")
                {
                    return Err(Error::InvalidParameter(format!(
                        "invalid value for parameter \"TimeZone\": \"{v}\" (Tessera supports UTC only for now)"
                    )));
                }
                v.to_string()
            }
            "client_encoding" => {
                let v = value.to_ascii_uppercase().replace('-', "");
                if v != "UTF8" && v != "UNICODE" {
                    return Err(Error::InvalidParameter(format!(
                        "client encoding \"{value}\" is not supported; use UTF8"
                    )));
                }
                "UTF8".to_string()
            }
            "datestyle" => {
                if !value.to_ascii_uppercase().contains("ISO") {
                    return Err(Error::InvalidParameter(format!(
                        "DateStyle \"{value}\" is not supported; use ISO"
                    )));
                }
                "ISO, MDY".to_string()
            }
            "server_version"
            | "server_version_num"
            | "server_encoding"
            | "integer_datetimes"
            | "lc_collate"
            | "lc_ctype"
            | "max_identifier_length"
            | "is_superuser" => {
                return Err(Error::Exec(tessera_types::ExecError::other(
                    "55P02",
                    format!("parameter \"{name}\" cannot be changed"),
                )));
            }
            "tessera.read_consistency" => {
                let v = value.to_ascii_lowercase();
                if v != "linearizable" && v != "follower" {
                    return Err(Error::InvalidParameter(format!(
                        "invalid value for parameter \"tessera.read_consistency\": \"{value}\" (use linearizable or follower)"
                    )));
                }
                v
            }
            "tessera.max_staleness" => {
                let ms = value.trim_end_matches("ms").trim();
                if ms.parse::<u64>().is_err() {
                    return Err(Error::InvalidParameter(format!(
                        "invalid value for parameter \"tessera.max_staleness\": \"{value}\" (milliseconds)"
                    )));
                }
                ms.to_string()
            }
            "statement_timeout" | "idle_in_transaction_session_timeout" => {
                let ms = value.trim_end_matches("ms").trim();
                if ms.parse::<u64>().is_err() {
                    return Err(Error::InvalidParameter(format!(
                        "invalid value for parameter \"{name}\": \"{value}\" (milliseconds)"
                    )));
                }
                ms.to_string()
            }
            _ => value,
        };
        self.settings.insert(name.clone(), value.clone());
        if REPORTED_SETTINGS.contains(&name.as_str()) {
            return Ok(Some((reported_name(&name).to_string(), value)));
        }
        Ok(None)
    }

    /// How fresh this session's reads must be.
    pub fn read_consistency(&self) -> tessera_types::rpc::ReadConsistency {
        match self.setting("tessera.read_consistency") {
            Some("follower") => tessera_types::rpc::ReadConsistency::Follower {
                max_staleness_ms: self
                    .setting("tessera.max_staleness")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1000),
            },
            _ => tessera_types::rpc::ReadConsistency::Linearizable,
        }
    }

    pub fn show(&self, name: &str) -> Result<String> {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "transaction isolation level" => return Ok("read committed".into()),
            "all" => return Err(Error::Unsupported("SHOW ALL is not supported yet".into())),
            _ => {}
        }
        self.settings.get(&name).cloned().ok_or(Error::UnknownSetting(name))
    }
}
