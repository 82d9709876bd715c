-- INSERT: one row and many (spread over every shard in one statement), column lists in any
-- order, DEFAULT, expressions, RETURNING, ON CONFLICT DO NOTHING / DO UPDATE with EXCLUDED,
-- and rows that fit no partition.

CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (12288);
CREATE TABLE sh4 PARTITION OF studt FOR VALUES FROM (12288) TO (16384);

INSERT INTO studt VALUES (1, 'alice', 90);
-- One statement, rows in all four shards.
INSERT INTO studt VALUES (2, 'bob', 72), (4096, 'carol', 65), (8200, 'dave', NULL), (12288, 'erin', 88), (16383, 'frank', 50);
-- Column lists in another order, and omitted columns.
INSERT INTO studt (stud_marks, stud_id) VALUES (40, 3);
INSERT INTO studt (stud_id, stud_name) VALUES (5000, 'gina'), (9000, NULL);
-- Literals that Postgres converts to the column types on assignment.
INSERT INTO studt VALUES ('11', 'quoted id', '5');
INSERT INTO studt VALUES (12.6, 'rounded id', 7.5);
-- Expressions in VALUES.
INSERT INTO studt VALUES (20 + 1, 'ex' || 'pr', 3 * 11);
SELECT * FROM studt ORDER BY stud_id;

-- RETURNING: columns, *, expressions and aliases; rows from several shards.
INSERT INTO studt VALUES (30, 'hank', 61) RETURNING stud_id;
INSERT INTO studt VALUES (31, 'ivan', 62), (4100, 'judy', 63), (8300, 'kim', 64) RETURNING *;
INSERT INTO studt (stud_id, stud_name) VALUES (32, 'leo') RETURNING stud_id * 2 AS doubled, upper(stud_name) AS name, stud_marks;

-- DEFAULT and column defaults.
CREATE TABLE events (id INT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'note', score INT DEFAULT 10, flag BOOLEAN DEFAULT true) PARTITION BY RANGE (id);
CREATE TABLE events_a PARTITION OF events FOR VALUES FROM (0) TO (100);
CREATE TABLE events_b PARTITION OF events FOR VALUES FROM (100) TO (200);
INSERT INTO events VALUES (1, DEFAULT, DEFAULT, DEFAULT);
INSERT INTO events (id, score) VALUES (2, DEFAULT), (150, 3);
INSERT INTO events (id, kind) VALUES (3, 'alert') RETURNING *;
INSERT INTO events VALUES (4, 'calc', 1 + 2, NOT true) RETURNING id, score * 2 AS double_score, upper(kind);
INSERT INTO events (id, flag, kind) VALUES (151, NULL, DEFAULT) RETURNING kind, flag, score;
SELECT * FROM events ORDER BY id;

-- Duplicate keys, and ON CONFLICT.
-- error 23505
INSERT INTO studt VALUES (1, 'dup', 0);
INSERT INTO studt VALUES (1, 'dup', 0) ON CONFLICT (stud_id) DO NOTHING;
INSERT INTO studt VALUES (1, 'dup', 0) ON CONFLICT DO NOTHING;
INSERT INTO studt VALUES (1, 'dup', 0), (7, 'new', 70), (4096, 'dup', 0), (4097, 'new2', 71) ON CONFLICT (stud_id) DO NOTHING RETURNING stud_id, stud_name;
INSERT INTO studt VALUES (1, 'alice2', 95) ON CONFLICT (stud_id) DO UPDATE SET stud_name = EXCLUDED.stud_name, stud_marks = EXCLUDED.stud_marks;
INSERT INTO studt VALUES (2, 'ignored', 10), (4096, 'ignored', 10), (40, 'fresh', 10) ON CONFLICT (stud_id) DO UPDATE SET stud_marks = studt.stud_marks + EXCLUDED.stud_marks RETURNING *;
INSERT INTO studt VALUES (8200, 'dave', 1) ON CONFLICT (stud_id) DO UPDATE SET stud_marks = coalesce(studt.stud_marks, 0) + EXCLUDED.stud_marks, stud_name = studt.stud_name || '+' RETURNING stud_id, stud_name, stud_marks;
-- error 21000 one statement may not update the same row twice
INSERT INTO studt VALUES (3, 'x', 1), (3, 'y', 2) ON CONFLICT (stud_id) DO UPDATE SET stud_marks = EXCLUDED.stud_marks;
SELECT * FROM studt ORDER BY stud_id;

-- ON CONFLICT on a composite key.
CREATE TABLE enrol (stud_id INT, course TEXT, grade INT, PRIMARY KEY (stud_id, course)) PARTITION BY RANGE (stud_id);
CREATE TABLE enrol_1 PARTITION OF enrol FOR VALUES FROM (0) TO (4096);
CREATE TABLE enrol_2 PARTITION OF enrol FOR VALUES FROM (4096) TO (8192);
INSERT INTO enrol VALUES (1, 'math', 3), (1, 'art', 4), (5000, 'math', 5);
INSERT INTO enrol VALUES (1, 'math', 1), (1, 'bio', 2), (5000, 'math', 2) ON CONFLICT (stud_id, course) DO UPDATE SET grade = EXCLUDED.grade + enrol.grade;
SELECT * FROM enrol ORDER BY stud_id, course;

-- A row that fits no partition, alone or among rows that fit: nothing is written.
-- error 23514
INSERT INTO studt VALUES (16384, 'too high', 1);
-- error 23514
INSERT INTO studt VALUES (-1, 'too low', 1);
-- error 23514
INSERT INTO studt VALUES (50, 'fits', 1), (4150, 'fits', 1), (99999, 'does not', 1);
SELECT count(*) FROM studt WHERE stud_id IN (50, 4150, 99999, 16384, -1);
-- A duplicate among rows for several shards: nothing is written either.
-- error 23505
INSERT INTO studt VALUES (51, 'new', 1), (4151, 'new', 1), (12300, 'new', 1), (8200, 'dup', 1);
SELECT count(*) FROM studt WHERE stud_id IN (51, 4151, 12300);
SELECT count(*) FROM studt;
