-- Every supported column type: literals in and text out, NULLs, NOT NULL, DEFAULT, typmods
-- (numeric(p,s), varchar(n), char(n)), comparisons and casts, and the errors of bad values.

CREATE TABLE typed (
  id INT PRIMARY KEY,
  c_small SMALLINT,
  c_int INTEGER NOT NULL DEFAULT 7,
  c_big BIGINT,
  c_real REAL,
  c_double DOUBLE PRECISION,
  c_num NUMERIC(10,2),
  c_text TEXT DEFAULT 'none',
  c_varchar VARCHAR(8),
  c_char CHAR(4),
  c_bool BOOLEAN DEFAULT false,
  c_date DATE,
  c_ts TIMESTAMP,
  c_tstz TIMESTAMPTZ,
  c_uuid UUID,
  c_bytea BYTEA
) PARTITION BY RANGE (id);
CREATE TABLE typed_low PARTITION OF typed FOR VALUES FROM (MINVALUE) TO (100);
CREATE TABLE typed_high PARTITION OF typed FOR VALUES FROM (100) TO (MAXVALUE);

INSERT INTO typed VALUES (1, 32767, -2147483648, 9223372036854775807, 1.5, 0.1, 12345678.91, 'hello', 'abc', 'ab', true, '2024-02-29', '2024-02-29 13:45:10.123456', '2024-02-29 13:45:10.5+02', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\xdeadbeef');
INSERT INTO typed VALUES (150, -32768, 2147483647, -9223372036854775808, -0.25, 1e-5, -0.5, '', 'abcdefgh', 'abcd', false, '1999-12-31', '1970-01-01 00:00:00', '2024-06-01 12:00:00-07', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A12', '\x');
-- Only the key: the defaults fill c_int, c_text and c_bool, the rest is NULL.
INSERT INTO typed (id) VALUES (2);
-- Explicit NULLs where the column has a default.
INSERT INTO typed (id, c_text, c_bool) VALUES (151, NULL, NULL);
-- Values that the column's type rounds, pads or converts.
INSERT INTO typed (id, c_real, c_double, c_num, c_varchar, c_char, c_date, c_ts, c_tstz, c_bytea) VALUES (3, 3.4e38, 1.5e300, 1.005, 'trail   ', 'x', '2000-01-01', '2000-01-01 00:00:00.000001', '1999-12-31 23:59:59.999999+00', '\x00ff10');
INSERT INTO typed (id, c_num, c_real, c_double) VALUES (4, -1.005, 123456.789, 123456.789);
INSERT INTO typed (id, c_num, c_small, c_big) VALUES (5, 2.675, '12', '-42');
INSERT INTO typed (id, c_bool) VALUES (6, 'yes'), (7, 'off'), (8, 't'), (9, '0');

SELECT * FROM typed ORDER BY id;
SELECT id, c_char, length(c_char), c_varchar, length(c_varchar) FROM typed WHERE c_char IS NOT NULL ORDER BY id;

-- Comparisons of every type with literals.
SELECT id FROM typed WHERE c_small = 32767;
SELECT id FROM typed WHERE c_big < 0;
SELECT id FROM typed WHERE c_real > 1;
SELECT id FROM typed WHERE c_double <= 0.1;
SELECT id FROM typed WHERE c_num >= 1.01;
SELECT id FROM typed WHERE c_text = '';
SELECT id FROM typed WHERE c_varchar = 'abc';
SELECT id FROM typed WHERE c_char = 'ab';
SELECT id FROM typed WHERE c_bool;
SELECT id FROM typed WHERE NOT c_bool;
SELECT id FROM typed WHERE c_date > '2000-01-01';
SELECT id FROM typed WHERE c_date = '2024-02-29';
SELECT id FROM typed WHERE c_ts < '2000-01-01';
SELECT id FROM typed WHERE c_tstz > '2024-01-01 00:00:00+00';
SELECT id FROM typed WHERE c_tstz = '2024-02-29 11:45:10.5+00';
SELECT id FROM typed WHERE c_uuid = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12';
SELECT id FROM typed WHERE c_bytea = '\xdeadbeef';
SELECT id FROM typed WHERE c_bytea = '';

-- Casts between types.
SELECT id, c_int::bigint, c_small::int + 1, c_num::int, c_num::text, c_bool::text, c_date::text, c_ts::date, c_uuid::text FROM typed WHERE id IN (1, 150) ORDER BY id;
SELECT c_text::varchar(3), c_double::real, c_real::double precision FROM typed WHERE id = 1;
SELECT '42'::smallint, '42'::bigint, '2.50'::numeric, '2.50'::numeric(5,1), '1e3'::double precision, 'TRUE'::boolean, '2024-01-02'::date, '2024-01-02 03:04:05'::timestamp;
SELECT 'yes'::boolean, 'off'::boolean, 't'::boolean, '0'::boolean;
SELECT 3.7::int, (-2.5)::int, 2.5::int, 0.1 + 0.2, 0.1::float8 + 0.2::float8, 1::real / 3, 1::float8 / 3;
SELECT 10::numeric / 4, 1::numeric / 3, 7 / 2, -7 / 2, 7 % 3, -7 % 3;

-- Bad values are rejected with Postgres's SQLSTATEs, and nothing is written.
-- error 22003 smallint out of range
INSERT INTO typed (id, c_small) VALUES (20, 32768);
-- error 22003 numeric(10,2) holds at most 8 digits before the point
INSERT INTO typed (id, c_num) VALUES (20, 123456789.5);
-- error 22001 varchar(8)
INSERT INTO typed (id, c_varchar) VALUES (20, 'abcdefghi');
-- error 22001 char(4)
INSERT INTO typed (id, c_char) VALUES (20, 'abcde');
-- error 22P02 not a uuid
INSERT INTO typed (id, c_uuid) VALUES (20, 'not-a-uuid');
-- error 22P02 not a boolean
INSERT INTO typed (id, c_bool) VALUES (20, 'maybe');
-- error 22P02 not an integer
INSERT INTO typed (id, c_big) VALUES (20, '12abc');
-- error 22007 not a date
INSERT INTO typed (id, c_date) VALUES (20, 'garbage');
-- error 22008 a date that does not exist
INSERT INTO typed (id, c_date) VALUES (20, '2023-02-29');
-- error 22023 bad hex in bytea
INSERT INTO typed (id, c_bytea) VALUES (20, '\xzz');
-- error 23502 NOT NULL column with a default, given NULL
INSERT INTO typed (id, c_int) VALUES (20, NULL);
-- error 23502 NOT NULL by UPDATE
UPDATE typed SET c_int = NULL WHERE id = 1;
SELECT count(*) FROM typed;
SELECT count(*) FROM typed WHERE id = 20;

-- Updates of typed values with expressions.
UPDATE typed SET c_text = c_text || '!', c_num = c_num * 2, c_small = c_small - 1, c_bool = NOT c_bool WHERE id = 1 RETURNING c_text, c_num, c_small, c_bool;
UPDATE typed SET c_date = '2025-01-01', c_ts = '2025-01-01 10:00:00', c_tstz = '2025-01-01 10:00:00+05:30' WHERE id = 2 RETURNING c_date, c_ts, c_tstz;
SELECT id, c_text, c_num, c_date, c_tstz FROM typed WHERE id IN (1, 2) ORDER BY id;

-- Fractional seconds round to microseconds as PostgreSQL rounds them, carrying into the next
-- day when they must.
INSERT INTO typed (id, c_ts, c_tstz) VALUES (30, '2024-12-31 23:59:59.9999999', '2024-12-31 23:59:59.9999999+00');
INSERT INTO typed (id, c_ts) VALUES (31, '2024-01-01 00:00:00.1234565');
SELECT id, c_ts, c_tstz FROM typed WHERE id IN (30, 31) ORDER BY id;

-- char(n) drops its trailing blanks when it becomes text.
SELECT 'ab'::char(4) || 'c', length('ab'::char(4)::text), 'ab'::char(4)::varchar(4) || '|';
SELECT id, c_char || '|' FROM typed WHERE c_char IS NOT NULL ORDER BY id;
