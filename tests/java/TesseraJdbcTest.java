// pgjdbc (the PostgreSQL JDBC driver) against a Tessera router: a value of every supported type
// round-trips through PreparedStatement, batches, setAutoCommit(false)/commit/rollback,
// SQLException.getSQLState() for a duplicate key and for an aborted transaction, and what
// DatabaseMetaData says of the table.
//
// Compiled and run by tests/tests/driver_jdbc.rs, which starts a cluster and passes the router's
// address as TESSERA_ROUTER_ADDR=host:port:
//
//   javac -encoding UTF-8 -cp postgresql.jar -d OUT tests/java/TesseraJdbcTest.java
//   TESSERA_ROUTER_ADDR=127.0.0.1:5432 java -cp postgresql.jar:OUT TesseraJdbcTest
//
// Every check throws on failure and the program exits non-zero, printing what failed; it prints
// one line per section as it goes.
//
// pgjdbc uses the extended protocol: each PreparedStatement parameter is sent with the type OID
// of its setter (int2, int4, int8, float4, float8, numeric, varchar for setString, bool, date,
// timestamp, timestamptz, uuid, bytea; unspecified for setNull(OTHER)). Once a statement has run
// prepareThreshold (5) times it becomes a named server-side statement and pgjdbc asks for its
// results in binary for the types it can decode. setAutoCommit(false) makes it send BEGIN
// before the first statement. DatabaseMetaData runs queries on pg_catalog. Strings go in with
// setString and dates, timestamps and UUIDs with setObject and java.time/java.util types, so
// the URL needs no stringtype=unspecified. Any PostgreSQL gives the answers checked here, so the
// program also runs against PostgreSQL itself.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.UUID;

public final class TesseraJdbcTest {
    /** A failed check. */
    static final class CheckFailed extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CheckFailed(String message) {
            super(message);
        }
    }

    interface Step {
        void run() throws Exception;
    }

    interface Action {
        Object run() throws Exception;
    }

    /** How a column's values are bound and read. */
    enum Kind {
        INT2(Types.SMALLINT),
        INT4(Types.INTEGER),
        INT8(Types.BIGINT),
        FLOAT4(Types.REAL),
        FLOAT8(Types.DOUBLE),
        NUMERIC(Types.NUMERIC),
        STRING(Types.VARCHAR),
        BOOL(Types.BOOLEAN),
        DATE(Types.DATE),
        TIMESTAMP(Types.TIMESTAMP),
        TIMESTAMPTZ(Types.TIMESTAMP_WITH_TIMEZONE),
        UUID(Types.OTHER),
        BYTEA(Types.BINARY);

        final int sqlType;

        Kind(int sqlType) {
            this.sqlType = sqlType;
        }
    }

    // Unique names, so that a rerun against the same server does not collide with an earlier one.
    static final String TABLE = "drv_jdbc_" + UUID.randomUUID().toString().substring(0, 8);
    static final String LOW = TABLE + "_low";
    static final String HIGH = TABLE + "_high";

    static final String[] DDL = {
        "CREATE TABLE " + TABLE + " (id INTEGER PRIMARY KEY, small SMALLINT, n INTEGER, big BIGINT, r REAL, "
            + "f DOUBLE PRECISION, d NUMERIC(10,2), s TEXT, vc VARCHAR(20), ch CHAR(5), b BOOLEAN, day DATE, "
            + "ts TIMESTAMP, tstz TIMESTAMPTZ, u UUID, raw BYTEA) PARTITION BY RANGE (id)",
        "CREATE TABLE " + LOW + " PARTITION OF " + TABLE + " FOR VALUES FROM (MINVALUE) TO (100)",
        "CREATE TABLE " + HIGH + " PARTITION OF " + TABLE + " FOR VALUES FROM (100) TO (MAXVALUE)",
    };

    static final String[] COLUMNS = {
        "id", "small", "n", "big", "r", "f", "d", "s", "vc", "ch", "b", "day", "ts", "tstz", "u", "raw"
    };
    static final Kind[] KINDS = {
        Kind.INT4, Kind.INT2, Kind.INT4, Kind.INT8, Kind.FLOAT4, Kind.FLOAT8, Kind.NUMERIC, Kind.STRING,
        Kind.STRING, Kind.STRING, Kind.BOOL, Kind.DATE, Kind.TIMESTAMP, Kind.TIMESTAMPTZ, Kind.UUID, Kind.BYTEA
    };

    // What ResultSetMetaData says of each column: type name, precision, scale.
    static final List<String> RESULT_COLUMNS = List.of(
        "id int4 10 0", "small int2 5 0", "n int4 10 0", "big int8 19 0", "r float4 8 8", "f float8 17 17",
        "d numeric 10 2", "s text 2147483647 0", "vc varchar 20 0", "ch bpchar 5 0", "b bool 1 0",
        "day date 13 0", "ts timestamp 29 6", "tstz timestamptz 35 6", "u uuid 2147483647 0",
        "raw bytea 2147483647 0");

    // What DatabaseMetaData.getColumns says of each column: name, TYPE_NAME, DATA_TYPE,
    // COLUMN_SIZE, DECIMAL_DIGITS, NULLABLE (0: no NULLs, 1: NULLs), ORDINAL_POSITION.
    static final List<String> METADATA_COLUMNS = List.of(
        "id int4 4 10 0 0 1", "small int2 5 5 0 1 2", "n int4 4 10 0 1 3", "big int8 -5 19 0 1 4",
        "r float4 7 8 8 1 5", "f float8 8 17 17 1 6", "d numeric 2 10 2 1 7", "s text 12 2147483647 0 1 8",
        "vc varchar 12 20 0 1 9", "ch bpchar 1 5 0 1 10", "b bool -7 1 0 1 11", "day date 91 13 0 1 12",
        "ts timestamp 93 29 6 1 13", "tstz timestamptz 93 35 6 1 14", "u uuid 1111 2147483647 0 1 15",
        "raw bytea -2 2147483647 0 1 16");

    // One row in each shard with extreme and awkward values, and one of NULLs. Every REAL is
    // exactly representable as a float4. The CHAR(5) values fill the column, so they come back
    // unchanged.
    static final Object[][] SAMPLES = {
        {
            1, (short) 32767, Integer.MIN_VALUE, Long.MIN_VALUE, 3.25f, -0.1, new BigDecimal("12345678.90"),
            "h\u00e9llo, w\u00f6rld \u2713 'quoted' \"double\" \\ back; -- ? $1 not placeholders",
            "varchar value", "abcde", true, LocalDate.of(2024, 2, 29),
            LocalDateTime.of(2024, 2, 29, 13, 45, 10, 123456000),
            OffsetDateTime.of(2024, 2, 29, 13, 45, 10, 500000000, ZoneOffset.ofHours(2)),
            UUID.fromString("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
            new byte[] {0, 1, '\\', '\'', '"', (byte) 0xfe, (byte) 0xff},
        },
        {
            150, (short) -32768, Integer.MAX_VALUE, Long.MAX_VALUE, -1048576.5f, 0.1 + 0.2, new BigDecimal("-0.01"),
            "", "exactly twenty chars", "\u00fc \u2713 z", false, LocalDate.of(1999, 12, 31),
            LocalDateTime.of(1970, 1, 1, 0, 0), OffsetDateTime.of(1969, 7, 20, 20, 17, 40, 0, ZoneOffset.UTC),
            new UUID(0, 0), new byte[0],
        },
        {2, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null},
    };

    static Connection conn;
    static Connection other;

    // ---- checks ----

    static void check(boolean condition, String message) {
        if (!condition) {
            throw new CheckFailed(message);
        }
    }

    static void checkEq(Object got, Object expected, String what) {
        if (!Objects.equals(got, expected)) {
            throw new CheckFailed(what + ":\n  expected " + expected + "\n  got      " + got);
        }
    }

    /** Runs action, which must throw an SQLException with sqlState. */
    static SQLException expectError(String sqlState, String what, Action action) throws Exception {
        Object result;
        try {
            result = action.run();
        } catch (SQLException e) {
            checkEq(e.getSQLState(), sqlState, "SQLSTATE of " + what + " (" + e.getMessage() + ")");
            return e;
        }
        throw new CheckFailed(what + " succeeded (" + result + ") but must fail with SQLSTATE " + sqlState);
    }

    static boolean same(Object a, Object b) {
        if (a instanceof byte[] && b instanceof byte[]) {
            return Arrays.equals((byte[]) a, (byte[]) b);
        }
        if (a instanceof OffsetDateTime && b instanceof OffsetDateTime) {
            return ((OffsetDateTime) a).isEqual((OffsetDateTime) b);
        }
        return Objects.equals(a, b);
    }

    static String show(Object[] row) {
        List<String> parts = new ArrayList<>();
        for (Object v : row) {
            if (v instanceof byte[]) {
                parts.add(Arrays.toString((byte[]) v));
            } else {
                parts.add(v == null ? "null" : v + " (" + v.getClass().getSimpleName() + ")");
            }
        }
        return "[" + String.join(", ", parts) + "]";
    }

    static void checkRow(Object[] got, Object[] expected, String what) {
        boolean equal = got.length == expected.length;
        for (int i = 0; equal && i < got.length; i++) {
            equal = same(got[i], expected[i]);
        }
        if (!equal) {
            throw new CheckFailed(what + ":\n  expected " + show(expected) + "\n  got      " + show(got));
        }
    }

    // ---- binding and reading ----

    static void bind(PreparedStatement ps, int index, Kind kind, Object value) throws SQLException {
        if (value == null) {
            ps.setNull(index, kind.sqlType);
            return;
        }
        switch (kind) {
            case INT2: ps.setShort(index, (Short) value); break;
            case INT4: ps.setInt(index, (Integer) value); break;
            case INT8: ps.setLong(index, (Long) value); break;
            case FLOAT4: ps.setFloat(index, (Float) value); break;
            case FLOAT8: ps.setDouble(index, (Double) value); break;
            case NUMERIC: ps.setBigDecimal(index, (BigDecimal) value); break;
            case STRING: ps.setString(index, (String) value); break;
            case BOOL: ps.setBoolean(index, (Boolean) value); break;
            case BYTEA: ps.setBytes(index, (byte[]) value); break;
            default: ps.setObject(index, value); break; // DATE, TIMESTAMP, TIMESTAMPTZ, UUID
        }
    }

    static Object read(ResultSet rs, int index, Kind kind) throws SQLException {
        Object value;
        switch (kind) {
            case INT2: value = rs.getShort(index); break;
            case INT4: value = rs.getInt(index); break;
            case INT8: value = rs.getLong(index); break;
            case FLOAT4: value = rs.getFloat(index); break;
            case FLOAT8: value = rs.getDouble(index); break;
            case NUMERIC: value = rs.getBigDecimal(index); break;
            case STRING: value = rs.getString(index); break;
            case BOOL: value = rs.getBoolean(index); break;
            case DATE: value = rs.getObject(index, LocalDate.class); break;
            case TIMESTAMP: value = rs.getObject(index, LocalDateTime.class); break;
            case TIMESTAMPTZ: value = rs.getObject(index, OffsetDateTime.class); break;
            case UUID: value = rs.getObject(index, UUID.class); break;
            default: value = rs.getBytes(index); break; // BYTEA
        }
        return rs.wasNull() ? null : value;
    }

    static Object[] readRow(ResultSet rs) throws SQLException {
        Object[] row = new Object[COLUMNS.length];
        for (int i = 0; i < COLUMNS.length; i++) {
            row[i] = read(rs, i + 1, KINDS[i]);
        }
        return row;
    }

    static List<Integer> ids(Connection c, String where) throws SQLException {
        List<Integer> ids = new ArrayList<>();
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SELECT id FROM " + TABLE + " WHERE " + where + " ORDER BY id")) {
            while (rs.next()) {
                ids.add(rs.getInt(1));
            }
        }
        return ids;
    }

    static int update(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            for (int i = 0; i < params.length; i++) {
                ps.setObject(i + 1, params[i]);
            }
            return ps.executeUpdate();
        }
    }

    static void section(String name) {
        System.out.println("== " + name);
        System.out.flush();
    }

    static Connection connect() throws SQLException {
        String addr = System.getenv("TESSERA_ROUTER_ADDR");
        check(addr != null && !addr.isEmpty(), "TESSERA_ROUTER_ADDR (host:port of the router) is not set");
        String user = Objects.requireNonNullElse(System.getenv("TESSERA_USER"), "tessera");
        String database = Objects.requireNonNullElse(System.getenv("TESSERA_DATABASE"), "tessera");
        String url = "jdbc:postgresql://" + addr + "/" + database
            + "?sslmode=disable&connectTimeout=10&socketTimeout=60&ApplicationName=tessera-tests-jdbc";
        return DriverManager.getConnection(url, user, "");
    }

    // ---- the steps ----

    static void createTable() throws SQLException {
        section("create the range-partitioned table");
        try (Statement st = conn.createStatement()) {
            for (String statement : DDL) {
                checkEq(st.executeUpdate(statement), 0, "update count of " + statement.substring(0, 40) + "...");
            }
        }
    }

    static void everyTypeRoundTrips() throws Exception {
        section("PreparedStatement: insert a value of every type, NULLs included");
        String insert = "INSERT INTO " + TABLE + " (" + String.join(", ", COLUMNS) + ") VALUES (?"
            + ", ?".repeat(COLUMNS.length - 1) + ")";
        try (PreparedStatement ps = conn.prepareStatement(insert)) {
            for (Object[] sample : SAMPLES) {
                for (int i = 0; i < COLUMNS.length; i++) {
                    bind(ps, i + 1, KINDS[i], sample[i]);
                }
                checkEq(ps.executeUpdate(), 1, "update count of the INSERT of row " + sample[0]);
            }
        }

        section("read every row back, before and after pgjdbc prepares the statement on the server");
        String select = "SELECT " + String.join(", ", COLUMNS) + " FROM " + TABLE + " WHERE id = ?";
        try (PreparedStatement ps = conn.prepareStatement(select)) {
            // prepareThreshold is 5: the first runs use the unnamed statement and text results,
            // the later ones a named statement and binary results.
            for (int round = 0; round < 7; round++) {
                for (Object[] sample : SAMPLES) {
                    ps.setInt(1, (Integer) sample[0]);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "no row " + sample[0] + " in round " + round);
                        checkRow(readRow(rs), sample, "row " + sample[0] + " in round " + round);
                        check(!rs.next(), "more than one row " + sample[0]);
                        if (round == 0 && sample == SAMPLES[0]) {
                            ResultSetMetaData md = rs.getMetaData();
                            List<String> described = new ArrayList<>();
                            for (int i = 1; i <= md.getColumnCount(); i++) {
                                described.add(md.getColumnName(i) + " " + md.getColumnTypeName(i) + " "
                                    + md.getPrecision(i) + " " + md.getScale(i));
                            }
                            checkEq(described, RESULT_COLUMNS, "ResultSetMetaData: names, types, precision and scale");
                        }
                    }
                }
            }
        }
        checkEq(ids(conn, "TRUE"), List.of(1, 2, 150), "every id");

        section("a parameter of every type in WHERE");
        for (Object[] sample : new Object[][] {SAMPLES[0], SAMPLES[1]}) {
            for (int i = 0; i < COLUMNS.length; i++) {
                String where = "SELECT id FROM " + TABLE + " WHERE " + COLUMNS[i] + " = ?";
                try (PreparedStatement ps = conn.prepareStatement(where)) {
                    bind(ps, 1, KINDS[i], sample[i]);
                    List<Integer> got = new ArrayList<>();
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            got.add(rs.getInt(1));
                        }
                    }
                    String what = "ids with " + COLUMNS[i] + " = " + show(new Object[] {sample[i]});
                    checkEq(got, List.of((Integer) sample[0]), what);
                }
            }
        }
        checkEq(ids(conn, "s IS NULL AND u IS NULL AND raw IS NULL"), List.of(2), "ids with NULLs");

        section("numeric(10,2) rounds to its scale; char(5) pads");
        String set = "UPDATE " + TABLE + " SET d = ?, ch = ? WHERE id = ?";
        int updated = update(conn, set, new BigDecimal("2.345"), "ab", 2);
        checkEq(updated, 1, "update count");
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT d, ch, length(ch) FROM " + TABLE + " WHERE id = 2")) {
            check(rs.next(), "no row 2");
            checkEq(rs.getBigDecimal(1), new BigDecimal("2.35"), "d of row 2");
            checkEq(rs.getString(2), "ab   ", "ch of row 2");
            checkEq(rs.getInt(3), 2, "length(ch) of row 2");
        }
    }

    static void batches() throws Exception {
        section("addBatch/executeBatch, UPDATE and DELETE counts");
        try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + TABLE + " (id, s, big) VALUES (?, ?, ?)")) {
            for (int i = 10; i < 20; i++) {
                ps.setInt(1, i);
                ps.setString(2, "batch " + i);
                ps.setLong(3, i * 1000L);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            int[] ones = new int[10];
            Arrays.fill(ones, 1);
            checkEq(Arrays.toString(counts), Arrays.toString(ones), "update counts of the batch");
        }
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery(
                    "SELECT sum(big), count(*), min(s) FROM " + TABLE + " WHERE id BETWEEN 10 AND 19")) {
            check(rs.next(), "no aggregate row");
            checkEq(rs.getLong(1), 145000L, "sum of big");
            checkEq(rs.getLong(2), 10L, "count");
            checkEq(rs.getString(3), "batch 10", "min of s");
        }
        checkEq(update(conn, "UPDATE " + TABLE + " SET s = ? WHERE id IN (?, ?)", "updated", 10, 11), 2,
            "UPDATE count");
        checkEq(update(conn, "DELETE FROM " + TABLE + " WHERE id >= ? AND id < ?", 15, 20), 5, "DELETE count");
        checkEq(ids(conn, "id BETWEEN 10 AND 19"), List.of(10, 11, 12, 13, 14), "ids left");
    }

    static void transactions() throws Exception {
        section("setAutoCommit(false): commit keeps the rows, and only then do others see them");
        conn.setAutoCommit(false);
        String insert = "INSERT INTO " + TABLE + " (id, s) VALUES (?, ?)";
        update(conn, insert, 40, "committed");
        update(conn, insert, 41, "committed");
        update(conn, "UPDATE " + TABLE + " SET s = ? WHERE id = ?", "committed too", 41);
        checkEq(ids(conn, "id IN (40, 41)"), List.of(40, 41), "own writes before commit");
        checkEq(ids(other, "id IN (40, 41)"), List.of(), "another session before commit");
        conn.commit();
        checkEq(ids(other, "id IN (40, 41) AND s LIKE 'committed%'"), List.of(40, 41), "another session after commit");

        section("rollback discards the rows");
        update(conn, insert, 42, "rolled back");
        update(conn, "DELETE FROM " + TABLE + " WHERE id = ?", 40);
        checkEq(ids(conn, "id IN (40, 42)"), List.of(42), "own writes before rollback");
        conn.rollback();
        checkEq(ids(conn, "id IN (40, 42)"), List.of(40), "ids after rollback");
        conn.commit();
        conn.setAutoCommit(true);
        checkEq(ids(other, "id IN (40, 42)"), List.of(40), "another session after rollback");
    }

    static void errorsKeepTheConnectionUsable() throws Exception {
        section("a duplicate key is SQLSTATE 23505 and the connection stays usable");
        String insert = "INSERT INTO " + TABLE + " (id, s) VALUES (?, ?)";
        expectError("23505", "a duplicate key", () -> update(conn, insert, 1, "again"));
        expectError("23505", "a duplicate key in the high shard", () -> update(conn, insert, 150, "again"));
        try (Statement st = conn.createStatement()) {
            expectError("23505", "a duplicate key through a Statement",
                () -> st.executeUpdate("INSERT INTO " + TABLE + " (id) VALUES (2)"));
        }
        check(conn.isValid(10), "the connection is not valid after the errors");
        check(conn.getAutoCommit(), "autocommit is off after the errors");
        try (PreparedStatement ps = conn.prepareStatement("SELECT s FROM " + TABLE + " WHERE id = ?")) {
            ps.setInt(1, 150);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "no row 150 after the errors");
                checkEq(rs.getString(1), SAMPLES[1][7], "row 150 is unchanged");
            }
        }
        expectError("42P01", "an unknown table",
            () -> update(conn, "DELETE FROM drv_jdbc_no_such_table WHERE id = ?", 1));
        expectError("42601", "a syntax error", () -> update(conn, "SELEC 1"));
        checkEq(update(conn, insert, 5, "five"), 1, "INSERT after the errors");

        section("an error inside a transaction fails every statement with 25P02 until rollback");
        conn.setAutoCommit(false);
        update(conn, insert, 6, "six");
        expectError("23505", "a duplicate key in a transaction", () -> update(conn, insert, 6, "dup"));
        expectError("25P02", "a SELECT in the aborted transaction", () -> {
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT 1")) {
                return rs.next();
            }
        });
        expectError("25P02", "an INSERT in the aborted transaction", () -> update(conn, insert, 7, "seven"));
        expectError("25P02", "a prepared SELECT in the aborted transaction", () -> {
            try (PreparedStatement ps = conn.prepareStatement("SELECT s FROM " + TABLE + " WHERE id = ?")) {
                ps.setInt(1, 1);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next();
                }
            }
        });
        conn.rollback();
        conn.setAutoCommit(true);
        checkEq(ids(conn, "id IN (5, 6, 7)"), List.of(5), "ids after rollback");
    }

    static void databaseMetaData() throws Exception {
        DatabaseMetaData md = conn.getMetaData();
        section("DatabaseMetaData.getTables");
        List<String> tables = new ArrayList<>();
        try (ResultSet rs = md.getTables(null, "public", TABLE + "%", new String[] {"TABLE", "PARTITIONED TABLE"})) {
            while (rs.next()) {
                tables.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME") + " "
                    + rs.getString("TABLE_TYPE"));
            }
        }
        checkEq(tables,
            List.of("public." + TABLE + " PARTITIONED TABLE", "public." + HIGH + " TABLE", "public." + LOW + " TABLE"),
            "getTables(public, " + TABLE + "%, [TABLE, PARTITIONED TABLE])");
        tables.clear();
        try (ResultSet rs = md.getTables(null, null, TABLE + "%", new String[] {"INDEX"})) {
            while (rs.next()) {
                tables.add(rs.getString("TABLE_NAME"));
            }
        }
        checkEq(tables, List.of(HIGH + "_pkey", LOW + "_pkey"),
            "getTables(" + TABLE + "%, [INDEX]): the shards' indexes");

        section("DatabaseMetaData.getColumns");
        List<String> columns = new ArrayList<>();
        try (ResultSet rs = md.getColumns(null, "public", TABLE, "%")) {
            while (rs.next()) {
                String table = rs.getString("TABLE_NAME");
                check(TABLE.equals(table), "getColumns gave a column of " + table);
                columns.add(rs.getString("COLUMN_NAME") + " " + rs.getString("TYPE_NAME") + " " + rs.getInt("DATA_TYPE")
                    + " " + rs.getInt("COLUMN_SIZE") + " " + rs.getInt("DECIMAL_DIGITS") + " " + rs.getInt("NULLABLE")
                    + " " + rs.getInt("ORDINAL_POSITION"));
            }
        }
        checkEq(columns, METADATA_COLUMNS, "getColumns: name, type name, JDBC type, size, digits, nullable, position");

        section("DatabaseMetaData.getPrimaryKeys");
        List<String> keys = new ArrayList<>();
        try (ResultSet rs = md.getPrimaryKeys(null, "public", TABLE)) {
            while (rs.next()) {
                keys.add(rs.getString("TABLE_NAME") + " " + rs.getString("COLUMN_NAME") + " " + rs.getInt("KEY_SEQ")
                    + " " + rs.getString("PK_NAME"));
            }
        }
        checkEq(keys, List.of(TABLE + " id 1 " + TABLE + "_pkey"), "getPrimaryKeys");

        section("DatabaseMetaData.getIndexInfo");
        List<String> indexes = new ArrayList<>();
        try (ResultSet rs = md.getIndexInfo(null, "public", TABLE, false, false)) {
            while (rs.next()) {
                indexes.add(rs.getString("TABLE_NAME") + " " + rs.getString("INDEX_NAME") + " "
                    + rs.getString("COLUMN_NAME") + " " + rs.getInt("ORDINAL_POSITION")
                    + " non_unique=" + rs.getBoolean("NON_UNIQUE"));
            }
        }
        checkEq(indexes, List.of(TABLE + " " + TABLE + "_pkey id 1 non_unique=false"), "getIndexInfo");
        indexes.clear();
        try (ResultSet rs = md.getIndexInfo(null, "public", LOW, true, false)) {
            while (rs.next()) {
                indexes.add(rs.getString("INDEX_NAME") + " " + rs.getString("COLUMN_NAME"));
            }
        }
        checkEq(indexes, List.of(LOW + "_pkey id"), "getIndexInfo of the low shard, unique only");
    }

    static void dropTable() throws Exception {
        section("DROP TABLE drops the partitions too");
        try (Statement st = conn.createStatement()) {
            st.executeUpdate("DROP TABLE " + TABLE);
            for (String name : new String[] {TABLE, LOW, HIGH}) {
                expectError("42P01", "a SELECT from " + name + " after DROP TABLE",
                    () -> st.executeQuery("SELECT * FROM " + name));
            }
        }
    }

    public static void main(String[] args) throws Exception {
        System.out.println(org.postgresql.util.DriverInfo.DRIVER_FULL_NAME + ", Java "
            + System.getProperty("java.version"));
        try {
            conn = connect();
            other = connect();
            createTable();
        } catch (Exception e) {
            System.out.println("FAILED: cannot connect and create the table");
            e.printStackTrace(System.out);
            System.exit(1);
        }
        // Each step runs even when one before it failed, so that one run shows every problem; a
        // step after a failed one may fail only because of what the failed one left behind.
        String[] names = {
            "every type round-trips", "batches", "transactions", "errors keep the connection usable",
            "DatabaseMetaData", "DROP TABLE"
        };
        Step[] steps = {
            TesseraJdbcTest::everyTypeRoundTrips, TesseraJdbcTest::batches, TesseraJdbcTest::transactions,
            TesseraJdbcTest::errorsKeepTheConnectionUsable, TesseraJdbcTest::databaseMetaData,
            TesseraJdbcTest::dropTable
        };
        List<String> failed = new ArrayList<>();
        for (int i = 0; i < steps.length; i++) {
            try {
                steps[i].run();
            } catch (Exception e) {
                failed.add(names[i]);
                String kind = e instanceof CheckFailed ? "" : "an unexpected " + e.getClass().getSimpleName() + ": ";
                System.out.println("FAILED (" + names[i] + "): " + kind + e.getMessage());
                e.printStackTrace(System.out);
                // Leave the connection as the next step expects it: idle, in autocommit.
                try {
                    if (!conn.getAutoCommit()) {
                        conn.rollback();
                        conn.setAutoCommit(true);
                    }
                } catch (SQLException cleanup) {
                    System.out.println("(cannot reset the connection: " + cleanup + ")");
                }
            }
        }
        if (conn.isClosed() || other.isClosed()) {
            failed.add("connections stay open");
            System.out.println("FAILED: a connection closed");
        }
        conn.close();
        other.close();
        if (!failed.isEmpty()) {
            System.out.println("JDBC checks FAILED in: " + String.join(", ", failed));
            System.exit(1);
        }
        System.out.println("JDBC checks passed");
    }
}
