//! Finds the programs the tests run: the `tessera` binary under test and PostgreSQL's own
//! programs (`initdb`, `postgres`, `psql`). A missing program is a loud failure that says how
//! to get it, never a silently skipped test.

use std::path::{Path, PathBuf};

/// The path of the `tessera` binary under test.
///
/// `TESSERA_BIN` when set (scripts/test.sh sets it), otherwise the more recently built of
/// `target/release/tessera` and `target/debug/tessera` of this workspace, so that a fresh
/// `cargo build -p tessera` is not shadowed by an old release build. Panics with instructions
/// when neither exists.
pub fn tessera_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("TESSERA_BIN") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TESSERA_BIN is set to {} but no such file exists; build it with \
             `cargo build --release -p tessera` or run scripts/test.sh",
            path.display()
        );
        return path;
    }
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("target");
    let candidates = [
        target.join("release").join("tessera"),
        target.join("debug").join("tessera"),
    ];
    let newest = candidates
        .iter()
        .filter(|c| c.is_file())
        .max_by_key(|c| std::fs::metadata(c).and_then(|m| m.modified()).ok());
    if let Some(path) = newest {
        return path.clone();
    }
    panic!(
        "no tessera binary found: TESSERA_BIN is unset and neither {} nor {} exists. \
         Build it first (`cargo build --release -p tessera`) or run scripts/test.sh, \
         which builds it and sets TESSERA_BIN.",
        candidates[0].display(),
        candidates[1].display()
    );
}

/// The directory holding PostgreSQL's server programs (`initdb`, `postgres`).
///
/// `PG_BIN_DIR` when set, otherwise the newest `/usr/lib/postgresql/*/bin` (Debian's layout).
/// Panics, telling to run scripts/test.sh (which installs PostgreSQL), when `initdb` is not
/// there.
pub fn pg_bin_dir() -> PathBuf {
    let dir = match std::env::var_os("PG_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => newest_debian_pg_bin_dir().unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin")),
    };
    let initdb = dir.join("initdb");
    assert!(
        initdb.is_file(),
        "PostgreSQL's initdb was not found at {} (PG_BIN_DIR={:?}). The differential tests need a \
         real PostgreSQL server: run scripts/test.sh, which installs it and sets PG_BIN_DIR.",
        initdb.display(),
        std::env::var_os("PG_BIN_DIR")
    );
    dir
}

/// The `psql` program: `PG_BIN_DIR/psql` when it exists, otherwise `psql` on the `PATH`.
pub fn psql_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN_DIR") {
        let candidate = PathBuf::from(dir).join("psql");
        if candidate.is_file() {
            return candidate;
        }
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let candidate = dir.join("psql");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("psql was not found on the PATH nor in PG_BIN_DIR: run scripts/test.sh, which installs it");
}

/// `/usr/lib/postgresql/<version>/bin` of the highest installed version, if any.
fn newest_debian_pg_bin_dir() -> Option<PathBuf> {
    let entries = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}
