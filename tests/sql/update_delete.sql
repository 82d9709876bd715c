-- UPDATE and DELETE with predicates of every kind, RETURNING, the row counts of their command
-- tags, UPDATEs that change the shard key (the row moves to its new shard), and failures that
-- must leave every shard untouched.

CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (12288);
CREATE TABLE sh4 PARTITION OF studt FOR VALUES FROM (12288) TO (16384);
INSERT INTO studt VALUES (1, 'alice', 90), (2, 'bob', 72), (3, 'carol', 65), (5, 'dave', NULL), (100, 'eve', 50), (4095, 'frank', 50), (4096, 'gina', 81), (4200, 'bart', 40), (5000, 'hank', 33), (6000, NULL, 77), (8191, 'ivy', 100), (8192, 'jack', 0), (9001, 'kim', 65), (12000, 'liam', NULL), (12288, 'mona', 59), (15000, 'ned', 72), (16383, 'olga', 88);

-- UPDATE: one shard, several, all, none.
UPDATE studt SET stud_marks = stud_marks + 5 WHERE stud_id < 100;
UPDATE studt SET stud_marks = 1 WHERE stud_id = 99;
UPDATE studt SET stud_name = upper(stud_name), stud_marks = NULL WHERE stud_name LIKE 'b%' RETURNING *;
UPDATE studt SET stud_marks = stud_marks * 2 WHERE stud_marks BETWEEN 50 AND 70 OR stud_name IN ('dave', 'ned') RETURNING stud_id, stud_marks;
UPDATE studt SET stud_marks = coalesce(stud_marks, 0);
UPDATE studt SET stud_name = stud_name || '!' WHERE stud_name IS NOT NULL AND NOT stud_id BETWEEN 1000 AND 10000 RETURNING stud_name AS new_name, length(stud_name) AS len;
UPDATE studt SET stud_marks = CASE WHEN stud_marks > 100 THEN 100 ELSE stud_marks END WHERE stud_id IN (3, 100, 4095, 9001, 12288) RETURNING stud_id, stud_marks;
UPDATE studt s SET stud_marks = s.stud_marks - 1 WHERE s.stud_name ILIKE '%A%' RETURNING s.stud_id;
SELECT * FROM studt ORDER BY stud_id;

-- An UPDATE of the shard key moves the row to its new shard.
UPDATE studt SET stud_id = 9000 WHERE stud_id = 5 RETURNING *;
SELECT * FROM studt WHERE stud_id = 5;
SELECT * FROM studt WHERE stud_id = 9000;
SELECT count(*) FROM studt WHERE stud_id BETWEEN 8192 AND 12287;
SELECT count(*) FROM studt WHERE stud_id BETWEEN 0 AND 4095;
-- Several rows move at once, from sh2 to sh3.
UPDATE studt SET stud_id = stud_id + 5000 WHERE stud_id BETWEEN 4096 AND 5000 RETURNING stud_id, stud_name;
-- A move within one shard.
UPDATE studt SET stud_id = 7 WHERE stud_id = 3;
SELECT * FROM studt ORDER BY stud_id;
-- error 23505 the new key is taken in the other shard
UPDATE studt SET stud_id = 8192 WHERE stud_id = 9000;
-- error 23514 the new key fits no shard
UPDATE studt SET stud_id = 20000 WHERE stud_id = 9000;
SELECT * FROM studt WHERE stud_id IN (9000, 8192, 20000) ORDER BY stud_id;

-- Failing UPDATEs change nothing, in any shard.
-- error 22012 the division fails on one row of one shard
UPDATE studt SET stud_marks = 100 / (stud_id - 8192);
-- error 22P02
UPDATE studt SET stud_marks = 'lots' WHERE stud_id = 1;
-- error 42703
UPDATE studt SET nosuch = 1 WHERE stud_id = 1;
-- error 42703
UPDATE studt SET stud_marks = 1 WHERE nosuch = 1;
-- error 22003
UPDATE studt SET stud_marks = stud_marks * 1000000000 WHERE stud_id = 1;
SELECT * FROM studt ORDER BY stud_id;

-- DELETE: by key, by predicates on other columns, with RETURNING, matching nothing.
DELETE FROM studt WHERE stud_id = 8192 RETURNING stud_name;
DELETE FROM studt WHERE stud_marks = 0 AND stud_name IS NULL;
DELETE FROM studt WHERE stud_name ILIKE '%a%' AND NOT stud_marks > 80 RETURNING *;
DELETE FROM studt WHERE stud_id IN (1, 2, 12288) RETURNING stud_id;
DELETE FROM studt WHERE stud_id = 424242;
DELETE FROM studt WHERE stud_id > 100000;
DELETE FROM studt WHERE stud_marks IS NULL OR stud_marks < 0;
SELECT * FROM studt ORDER BY stud_id;
-- error 42P01
DELETE FROM nosuch WHERE stud_id = 1;
-- error 22012
DELETE FROM studt WHERE stud_marks / 0 = 1;
SELECT count(*) FROM studt;
DELETE FROM studt;
SELECT count(*) FROM studt;
-- The table still works after being emptied.
INSERT INTO studt VALUES (4096, 'back', 1);
UPDATE studt SET stud_marks = 2 RETURNING *;

-- A NOT NULL column.
CREATE TABLE people (id INT PRIMARY KEY, name TEXT NOT NULL, age INT);
INSERT INTO people VALUES (1, 'ann', 30), (2, 'ben', 40);
-- error 23502
UPDATE people SET name = NULL WHERE id = 2;
UPDATE people SET age = age + 1 RETURNING *;
DELETE FROM people WHERE age > 40 RETURNING name;
SELECT * FROM people;

-- TRUNCATE empties tables, a partitioned one over all its shards.
TRUNCATE people;
SELECT count(*) FROM people;
TRUNCATE TABLE studt;
SELECT count(*) FROM studt;
INSERT INTO studt VALUES (7, 'after truncate', 1);
SELECT * FROM studt;
