#!/usr/bin/env bash
# Runs Tessera's whole test suite: the one verification gate, the same locally and in CI
# (.ci/run calls this script).
#
#   1. installs what the tests need when it is missing: Debian packages (psql, the real
#      PostgreSQL server the differential tests compare against, kill, setpriv, python3 with
#      venv, a JDK and pgjdbc for the JDBC driver test), a virtualenv under the target
#      directory with the Python drivers the driver tests use (psycopg 3, psycopg2, asyncpg,
#      SQLAlchemy 2; exported as TESSERA_PYTHON), the pgjdbc jar's path (exported as
#      TESSERA_JDBC_JAR), Node with Debian's node-pg unpacked under the target directory
#      (exported as TESSERA_NODE_PATH), and the rustfmt and clippy components;
#   2. cargo fmt --check, then clippy with warnings as errors;
#   3. builds the release binary the end-to-end tests start (exported as TESSERA_BIN) and,
#      when a Docker engine is reachable, the Docker image from it (docker/build-image.sh,
#      exported as TESSERA_IMAGE) for the compose fault test; without an engine it says loudly
#      that the compose test is skipped;
#   4. runs every test of the workspace in release mode (cargo-nextest if installed).
#
# Exits non-zero at the first failure. Needs a Rust toolchain; installing packages needs root
# or sudo.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() {
    printf '\n==> %s\n' "$*"
}

fail() {
    printf 'scripts/test.sh: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        fail "need root (or sudo) to run: $*"
    fi
}

# True when DIR holds PostgreSQL's server programs.
is_pg_bin_dir() {
    [ -n "$1" ] && [ -x "$1/initdb" ] && [ -x "$1/postgres" ] && [ -x "$1/pg_ctl" ]
}

# Prints the directory with initdb, postgres and pg_ctl, or nothing.
find_pg_bin_dir() {
    local dir
    if [ -n "${PG_BIN_DIR:-}" ] && is_pg_bin_dir "$PG_BIN_DIR"; then
        echo "$PG_BIN_DIR"
        return
    fi
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if is_pg_bin_dir "$dir"; then
            echo "$dir"
            return
        fi
    fi
    # Debian's layout, newest version first.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -V -r); do
        if is_pg_bin_dir "$dir"; then
            echo "$dir"
            return
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dir="$(dirname "$(command -v initdb)")"
        if is_pg_bin_dir "$dir"; then
            echo "$dir"
        fi
    fi
}

section "Test dependencies"
# What the tests run besides cargo: psql, PostgreSQL's server programs, `kill` (procps) to send
# signals, and `setpriv` (util-linux; its own package from Debian 13) to run PostgreSQL as an
# unprivileged user and to tie child processes to the test that started them.
packages=()
command -v psql >/dev/null 2>&1 || packages+=(postgresql-client)
[ -n "$(find_pg_bin_dir)" ] || packages+=(postgresql)
type -P kill >/dev/null 2>&1 || packages+=(procps)
type -P setpriv >/dev/null 2>&1 || packages+=(setpriv)
# Python 3 with venv (and ensurepip, which Debian ships apart) for the Python driver tests.
if ! command -v python3 >/dev/null 2>&1; then
    packages+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    packages+=(python3-venv)
fi
# A JDK and pgjdbc (Debian's jar) for the JDBC driver test, which compiles and runs
# tests/java/TesseraJdbcTest.java with javac and java from $JAVA_HOME/bin, or the PATH.
has_jdk_program() {
    if [ -n "${JAVA_HOME:-}" ]; then
        [ -x "$JAVA_HOME/bin/$1" ]
    else
        type -P "$1" >/dev/null 2>&1
    fi
}
{ has_jdk_program javac && has_jdk_program java; } || packages+=(default-jdk-headless)
# Node.js for the node-pg driver test (node-pg itself is unpacked below).
command -v node >/dev/null 2>&1 || packages+=(nodejs)
TESSERA_JDBC_JAR="${TESSERA_JDBC_JAR:-/usr/share/java/postgresql.jar}"
[ -f "$TESSERA_JDBC_JAR" ] || packages+=(libpostgresql-jdbc-java)
# Compose for the compose fault test, when there is a Docker engine to run it on.
docker_reason=""
if ! command -v docker >/dev/null 2>&1; then
    docker_reason="the docker program is not installed"
elif ! docker_error="$(docker info --format '{{.ServerVersion}}' 2>&1 >/dev/null)"; then
    docker_reason="\`docker info\` failed: $(printf '%s\n' "$docker_error" | grep -m1 . || true)"
elif ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
    packages+=(docker-compose)
fi
if [ "${#packages[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null 2>&1 ||
        fail "missing ${packages[*]} and there is no apt-get to install them; install them and rerun"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    # Before Debian 13, setpriv is part of util-linux.
    if [[ " ${packages[*]} " == *" setpriv "* ]] && ! apt-cache show setpriv >/dev/null 2>&1; then
        packages=("${packages[@]/#setpriv/util-linux}")
    fi
    echo "installing: ${packages[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${packages[@]}"
fi
command -v psql >/dev/null 2>&1 || fail "psql is still missing after installing postgresql-client"
PG_BIN_DIR="$(find_pg_bin_dir)"
[ -n "$PG_BIN_DIR" ] || fail "no directory with initdb, postgres and pg_ctl found after installing postgresql"
export PG_BIN_DIR
echo "psql:       $(command -v psql)"
echo "PG_BIN_DIR: $PG_BIN_DIR"
{ has_jdk_program javac && has_jdk_program java; } ||
    fail "javac or java is still missing after installing default-jdk-headless (JAVA_HOME=${JAVA_HOME:-unset})"
[ -f "$TESSERA_JDBC_JAR" ] ||
    fail "the pgjdbc jar $TESSERA_JDBC_JAR is still missing after installing libpostgresql-jdbc-java"
export TESSERA_JDBC_JAR
echo "TESSERA_JDBC_JAR: $TESSERA_JDBC_JAR ($(if [ -n "${JAVA_HOME:-}" ]; then "$JAVA_HOME/bin/javac" -version; else javac -version; fi 2>&1))"

target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
target_dir="${target_dir:-$PWD/target}"

# The Python drivers for tests/tests/driver_{psycopg,psycopg2,asyncpg,sqlalchemy}.rs, in a
# virtualenv of their own under the target directory (the system's Python is left alone), made
# once and reused while it imports them all; what is missing is installed into it.
python_venv="$target_dir/python-venv"
python_drivers=('psycopg[binary]>=3.1,<4' 'psycopg2-binary>=2.9,<3' 'asyncpg>=0.29,<1' 'sqlalchemy>=2,<3')
python_imports='import psycopg, psycopg2, asyncpg, sqlalchemy; assert sqlalchemy.__version__.startswith("2.")'
if ! "$python_venv/bin/python" -c "$python_imports" >/dev/null 2>&1; then
    if ! "$python_venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        echo "creating $python_venv"
        python3 -m venv --clear "$python_venv"
    fi
    echo "installing into $python_venv: ${python_drivers[*]}"
    "$python_venv/bin/python" -m pip install --quiet --disable-pip-version-check "${python_drivers[@]}"
fi
python_versions="$("$python_venv/bin/python" -c 'import psycopg, psycopg2, asyncpg, sqlalchemy
print(f"psycopg {psycopg.__version__}, psycopg2 {psycopg2.__version__.split()[0]}, asyncpg {asyncpg.__version__}, SQLAlchemy {sqlalchemy.__version__}")')" ||
    fail "the Python drivers do not import in $python_venv after installing them"
TESSERA_PYTHON="$python_venv/bin/python"
export TESSERA_PYTHON
echo "TESSERA_PYTHON: $TESSERA_PYTHON ($python_versions)"

# node-pg for tests/tests/driver_node_pg.rs: Debian's package and the three it needs, unpacked
# under the target directory rather than installed (their Debian dependencies want Debian's own
# nodejs, which a machine with another Node cannot install), and exported as TESSERA_NODE_PATH.
command -v node >/dev/null 2>&1 || fail "node is still missing after installing nodejs"
node_root="$target_dir/node-pg"
TESSERA_NODE_PATH="$node_root/usr/share/nodejs"
if ! NODE_PATH="$TESSERA_NODE_PATH" node -e 'require("pg")' >/dev/null 2>&1; then
    node_packages=(node-pg node-split2 node-xtend node-readable-stream)
    debs="$(mktemp -d)"
    echo "unpacking into $node_root: ${node_packages[*]}"
    if ! (cd "$debs" && apt-get download "${node_packages[@]}"); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update
        (cd "$debs" && apt-get download "${node_packages[@]}") || fail "cannot download ${node_packages[*]}"
    fi
    mkdir -p "$node_root"
    for deb in "$debs"/*.deb; do
        dpkg-deb -x "$deb" "$node_root"
    done
    rm -rf "$debs"
fi
node_pg_version="$(NODE_PATH="$TESSERA_NODE_PATH" node -e 'console.log(require("pg/package.json").version)')" ||
    fail "node-pg does not load from $TESSERA_NODE_PATH after unpacking it"
export TESSERA_NODE_PATH
echo "TESSERA_NODE_PATH: $TESSERA_NODE_PATH (node $(node --version), node-pg $node_pg_version)"

# rustup component NAME provides `cargo SUBCOMMAND`.
for pair in rustfmt:fmt clippy:clippy; do
    component="${pair%%:*}" subcommand="${pair##*:}"
    if ! cargo "$subcommand" --version >/dev/null 2>&1; then
        command -v rustup >/dev/null 2>&1 || fail "cargo $subcommand is missing and there is no rustup to add $component"
        echo "adding the $component component"
        rustup component add "$component"
    fi
done
cargo --version

section "Format (cargo fmt --all --check)"
cargo fmt --all --check

section "Lints (cargo clippy --workspace --all-targets -- -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

section "Release binary (cargo build --release -p tessera)"
cargo build --release -p tessera
TESSERA_BIN="$target_dir/release/tessera"
[ -x "$TESSERA_BIN" ] || fail "the release binary is not at $TESSERA_BIN"
export TESSERA_BIN
echo "TESSERA_BIN: $TESSERA_BIN"

if [ -z "$docker_reason" ]; then
    section "Docker image (docker/build-image.sh)"
    docker/build-image.sh --tag tessera:latest
    TESSERA_IMAGE=tessera:latest
    export TESSERA_IMAGE
    echo "TESSERA_IMAGE: $TESSERA_IMAGE"
else
    section "Docker image"
    echo "SKIPPED: compose fault test: no Docker engine reachable ($docker_reason)" >&2
fi

if cargo nextest --version >/dev/null 2>&1; then
    section "Tests (cargo nextest run --workspace --release)"
    cargo nextest run --workspace --release
    section "Doc tests (cargo test --workspace --release --doc)"
    cargo test --workspace --release --doc
else
    section "Tests (cargo test --workspace --release)"
    cargo test --workspace --release
fi

section "All checks passed"
