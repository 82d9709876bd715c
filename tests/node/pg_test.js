// node-pg (the `pg` package, Debian's node-pg, pure JavaScript) against a Tessera router: a
// value of every supported type goes in as a parameter (text format, and binary for bytea, as
// node-pg sends Buffers) and comes back, by unnamed and named prepared statements; a parameter
// of every type in WHERE; transactions that commit across two shards and roll back; errors with
// their SQLSTATE (23505, 25P02 until ROLLBACK, 42601) on a connection that stays usable; and a
// pool running queries concurrently.
//
// Run by tests/tests/driver_node_pg.rs, which starts a cluster and passes the router's address
// as TESSERA_ROUTER_ADDR=host:port, and the modules' directory as NODE_PATH. Every check throws
// on failure and the script exits non-zero, printing what failed; it prints one line per
// section as it goes.

"use strict";

const assert = require("assert");
const pg = require("pg");

// Dates and timestamps without a zone come back as PostgreSQL prints them, not as JavaScript
// Dates in the process's zone.
pg.types.setTypeParser(1082, (v) => v); // date
pg.types.setTypeParser(1114, (v) => v); // timestamp

const [host, port] = (() => {
  const addr = process.env.TESSERA_ROUTER_ADDR;
  assert.ok(addr, "TESSERA_ROUTER_ADDR (host:port of the router) is not set");
  const at = addr.lastIndexOf(":");
  return [addr.slice(0, at), Number(addr.slice(at + 1))];
})();
const config = { host, port, user: "tessera", database: "tessera", application_name: "tessera-tests-node-pg" };

// (column, SQL type, value in the low shard's row, value in the high shard's row), as node-pg
// returns them: int8 and numeric as strings, float4/float8 as numbers, bytea as a Buffer.
const TYPES = [
  ["id", "INTEGER PRIMARY KEY", 1, 150],
  ["small", "SMALLINT", 32767, -32768],
  ["n", "INTEGER", -2147483648, 2147483647],
  ["big", "BIGINT", "-9223372036854775808", "9223372036854775807"],
  ["r", "REAL", 3.25, -1048576.5],
  ["f", "DOUBLE PRECISION", -0.1, 0.1 + 0.2],
  ["d", "NUMERIC(10,2)", "12345678.90", "-0.01"],
  ["s", "TEXT", "héllo, wörld ✓ 'quoted' \"double\" \\ back; -- $1 ? :x not placeholders", ""],
  ["vc", "VARCHAR(20)", "varchar value", "exactly twenty chars"],
  ["ch", "CHAR(5)", "abcde", "ü ✓ z"],
  ["b", "BOOLEAN", true, false],
  ["day", "DATE", "2024-02-29", "1999-12-31"],
  ["ts", "TIMESTAMP", "2024-02-29 13:45:10.123456", "1970-01-01 00:00:00"],
  ["tstz", "TIMESTAMPTZ", new Date("2024-02-29T11:45:10.500Z"), new Date("1969-07-20T20:17:40Z")],
  ["u", "UUID", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "00000000-0000-0000-0000-000000000000"],
  ["raw", "BYTEA", Buffer.from([0x00, 0x01, 0x5c, 0x27, 0x22, 0xfe, 0xff]), Buffer.alloc(0)],
];
const COLUMNS = TYPES.map((t) => t[0]);
const LOW = TYPES.map((t) => t[2]);
const HIGH = TYPES.map((t) => t[3]);
const NULLS = [2, ...TYPES.slice(1).map(() => null)];
const SAMPLES = [LOW, HIGH, NULLS];

function section(name) {
  console.log(`== ${name}`);
}

function withId(row, id) {
  return [id, ...row.slice(1)];
}

// A returned row as an array in COLUMNS order, with Dates as their instants.
function asArray(row) {
  return COLUMNS.map((c) => (row[c] instanceof Date ? row[c].getTime() : row[c]));
}

function expected(row) {
  return row.map((v) => (v instanceof Date ? v.getTime() : v));
}

async function expectError(client, sqlstate, what, text, values) {
  try {
    await client.query(text, values);
  } catch (e) {
    assert.strictEqual(e.code, sqlstate, `${what}: SQLSTATE of ${e.message}`);
    return e;
  }
  throw new Error(`${what} succeeded but must fail with SQLSTATE ${sqlstate}`);
}

async function ids(client) {
  const res = await client.query("SELECT id FROM t ORDER BY id");
  return res.rows.map((r) => r.id);
}

async function main() {
  const client = new pg.Client(config);
  await client.connect();
  try {
    section("create the range-partitioned table");
    await client.query(`CREATE TABLE t (${TYPES.map((t) => `${t[0]} ${t[1]}`).join(", ")}) PARTITION BY RANGE (id)`);
    await client.query("CREATE TABLE t_low PARTITION OF t FOR VALUES FROM (MINVALUE) TO (100)");
    await client.query("CREATE TABLE t_high PARTITION OF t FOR VALUES FROM (100) TO (MAXVALUE)");

    section("insert a value of every type, NULLs included, unnamed and as a named prepared statement");
    const placeholders = COLUMNS.map((_, i) => `$${i + 1}`).join(", ");
    const insert = `INSERT INTO t (${COLUMNS.join(", ")}) VALUES (${placeholders})`;
    for (const [offset, name] of [[0, undefined], [10, "insert_t"]]) {
      for (const sample of SAMPLES) {
        const row = withId(sample, sample[0] + offset);
        const res = await client.query({ name, text: insert, values: row });
        assert.strictEqual(res.rowCount, 1, `rowCount of the INSERT of row ${row[0]}`);
      }
    }

    section("read every row back, unnamed and prepared");
    for (const name of [undefined, "select_t"]) {
      for (const offset of [0, 10]) {
        for (const sample of SAMPLES) {
          const row = withId(sample, sample[0] + offset);
          const res = await client.query({ name, text: `SELECT ${COLUMNS.join(", ")} FROM t WHERE id = $1`, values: [row[0]] });
          assert.strictEqual(res.rows.length, 1, `row ${row[0]}`);
          assert.deepStrictEqual(asArray(res.rows[0]), expected(row), `row ${row[0]} read back (statement ${name})`);
        }
      }
    }
    assert.deepStrictEqual(await ids(client), [1, 2, 11, 12, 150, 160], "every id");

    section("a parameter of every type in WHERE");
    const where = COLUMNS.slice(1).map((c, i) => `${c} = $${i + 1}`).join(" AND ");
    for (const sample of [LOW, HIGH]) {
      const res = await client.query(`SELECT id FROM t WHERE ${where} ORDER BY id`, sample.slice(1));
      assert.deepStrictEqual(res.rows.map((r) => r.id), [sample[0], sample[0] + 10], `rows matching sample ${sample[0]}`);
    }

    section("transactions: a rollback leaves nothing, a commit across two shards keeps both rows");
    await client.query("BEGIN");
    await client.query("INSERT INTO t (id, s) VALUES ($1, $2)", [50, "rolled back"]);
    await client.query("ROLLBACK");
    await client.query("BEGIN");
    await client.query("INSERT INTO t (id, s) VALUES ($1, $2), ($3, $4)", [51, "low", 170, "high"]);
    const inside = await client.query("SELECT count(*)::int AS n FROM t WHERE id IN (51, 170)");
    assert.strictEqual(inside.rows[0].n, 2, "the transaction sees its own rows");
    await client.query("COMMIT");
    assert.deepStrictEqual(await ids(client), [1, 2, 11, 12, 51, 150, 160, 170], "ids after the transactions");

    section("errors arrive as errors with their SQLSTATE");
    await expectError(client, "23505", "a duplicate key", "INSERT INTO t (id) VALUES ($1)", [1]);
    await expectError(client, "42601", "a syntax error", "SELEC 1");
    await client.query("BEGIN");
    await expectError(client, "23505", "a duplicate key in a transaction", "INSERT INTO t (id) VALUES ($1)", [150]);
    await expectError(client, "25P02", "a statement after the error", "SELECT 1");
    await client.query("ROLLBACK");
    const after = await client.query("SELECT count(*)::int AS n FROM t");
    assert.strictEqual(after.rows[0].n, 8, "the connection works after ROLLBACK, and nothing was added");
  } finally {
    await client.end();
  }

  section("a pool runs queries concurrently");
  const pool = new pg.Pool({ ...config, max: 4 });
  try {
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => pool.query("SELECT $1::int * 2 AS doubled, count(*)::int AS n FROM t WHERE id < $2", [i, 100])),
    );
    results.forEach((res, i) => {
      assert.deepStrictEqual(res.rows, [{ doubled: 2 * i, n: 5 }], `pooled query ${i}`);
    });
  } finally {
    await pool.end();
  }
  console.log("all node-pg checks passed");
}

main().catch((e) => {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
