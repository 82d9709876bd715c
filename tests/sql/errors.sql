-- Errors and their SQLSTATEs: syntax 42601, unknown table 42P01, unknown column 42703, bad
-- input 22P02, type mismatch 42804 / 42883, division by zero 22012, duplicate key 23505,
-- NOT NULL 23502, no partition 23514, out of range 22003. After each error the connection
-- goes on serving the next statement.

CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
CREATE TABLE people (id INT PRIMARY KEY, name TEXT NOT NULL, age INT);
INSERT INTO studt VALUES (1, 'alice', 90), (4096, 'bob', 72);
INSERT INTO people VALUES (1, 'ann', 30);

-- Syntax errors.
-- error 42601
SELEC 1;
-- error 42601
SELECT * FROM;
-- error 42601
SELECT * FROM studt WHERE;
-- error 42601
INSERT INTO studt VALUES (1, 'x', 1;
-- error 42601
SELECT 1 +;
-- error 42601 an unterminated string
SELECT 'abc;
-- error 42601
UPDATE studt stud_marks = 1;
-- error 42601
CREATE TABLE;
SELECT 'after syntax errors';

-- Unknown tables.
-- error 42P01
SELECT * FROM nosuch;
-- error 42P01
INSERT INTO nosuch VALUES (1);
-- error 42P01
UPDATE nosuch SET a = 1;
-- error 42P01
DELETE FROM nosuch;
-- error 42P01
DROP TABLE nosuch;

-- Unknown columns.
-- error 42703
SELECT nosuch FROM studt;
-- error 42703
SELECT * FROM studt WHERE nosuch = 1;
-- error 42703
SELECT stud_id FROM studt ORDER BY nosuch;
-- error 42703
INSERT INTO studt (stud_id, nosuch) VALUES (2, 2);
-- error 42703
UPDATE studt SET stud_marks = 1 WHERE nosuch > 0;
-- error 42703
INSERT INTO studt VALUES (3, 'x', 1) RETURNING nosuch;

-- Bad input for a type.
-- error 22P02
SELECT 'abc'::int;
-- error 22P02
SELECT * FROM studt WHERE stud_id = 'abc';
-- error 22P02
INSERT INTO studt VALUES ('x', 'name', 1);
-- error 22P02
SELECT 'maybe'::boolean;
-- error 22P02
SELECT '1.5.5'::numeric;

-- Type mismatches.
-- error 42804 a boolean into an integer column
INSERT INTO studt VALUES (true, 'x', 1);
-- error 42804 WHERE needs a boolean
SELECT * FROM studt WHERE stud_marks;
-- error 42804 CASE branches of incompatible types
SELECT CASE WHEN true THEN 1 ELSE 'a'::text END;
-- error 42883 no operator text + integer
SELECT 'a'::text + 1;
-- error 42883 no operator text = integer
SELECT * FROM studt WHERE stud_name = 5;
-- error 42883 no function lower(integer)
SELECT lower(5);
-- error 42883 no such function
SELECT nosuchfunc(1);
-- error 42883 no operator boolean > integer
SELECT true > 1;

-- Division by zero.
-- error 22012
SELECT 1 / 0;
-- error 22012
SELECT stud_marks / 0 FROM studt;
-- error 22012
SELECT 5 % 0;
-- error 22012
SELECT 1.5 / 0;
-- error 22012
SELECT * FROM studt WHERE stud_marks / (stud_id - 4096) > 0;

-- Out of range.
-- error 22003
SELECT 2147483647 + 1;
-- error 22003
SELECT 32767::smallint + 1::smallint;
-- error 22003
SELECT (-9223372036854775808)::bigint - 1;

-- Constraint violations.
-- error 23505
INSERT INTO studt VALUES (1, 'dup', 1);
-- error 23505
INSERT INTO studt VALUES (4096, 'dup', 1);
-- error 23502
INSERT INTO people VALUES (2, NULL, 3);
-- error 23502 the column is left out and has no default
INSERT INTO people (id, age) VALUES (2, 3);
-- error 23502
UPDATE people SET name = NULL;
-- error 23514
INSERT INTO studt VALUES (20000, 'x', 1);
-- error 42P07
CREATE TABLE people (id INT PRIMARY KEY);

-- Nothing was written by the failed statements, and the connection still works.
SELECT * FROM studt ORDER BY stud_id;
SELECT * FROM people;
SELECT 'still usable';

-- A constant that would fail is not evaluated when it is never reached.
SELECT CASE WHEN true THEN 1 ELSE 1/0 END, coalesce(1, 1/0);
SELECT true OR 1/0 = 1;
-- error 22012 but it is when it is reached
SELECT CASE WHEN false THEN 1 ELSE 1/0 END;
-- error 2201W
SELECT 1 LIMIT -1;
-- error 2201X
SELECT 1 OFFSET -1;
SELECT 1;
