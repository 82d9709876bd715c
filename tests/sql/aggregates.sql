-- Aggregates across shards: COUNT(*), COUNT(col), COUNT(DISTINCT col), SUM, AVG, MIN, MAX,
-- on every numeric type and on empty inputs; GROUP BY and HAVING; aggregates with ORDER BY and
-- LIMIT.

CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (12288);
CREATE TABLE sh4 PARTITION OF studt FOR VALUES FROM (12288) TO (16384);
INSERT INTO studt VALUES (1, 'alice', 90), (2, 'bob', 72), (3, 'carol', 65), (5, 'dave', NULL), (100, 'eve', 50), (4095, 'frank', 50), (4096, 'gina', 81), (5000, 'hank', 33), (6000, NULL, 77), (8191, 'ivy', 100), (8192, 'jack', 0), (9000, 'kim', 65), (12000, 'liam', NULL), (12288, 'mona', 59), (15000, 'ned', 72), (16383, 'olga', 88), (16000, 'alice', 65);

SELECT count(*) FROM studt;
SELECT count(stud_marks), count(stud_name), count(stud_id) FROM studt;
SELECT count(DISTINCT stud_marks), count(DISTINCT stud_name) FROM studt;
SELECT sum(stud_marks), avg(stud_marks), min(stud_marks), max(stud_marks) FROM studt;
SELECT min(stud_name), max(stud_name), min(stud_id), max(stud_id) FROM studt;
SELECT count(*) AS n, sum(stud_marks) AS total FROM studt;

-- One shard, several shards, no shard.
SELECT count(*), sum(stud_marks), avg(stud_marks) FROM studt WHERE stud_id BETWEEN 4096 AND 8191;
SELECT count(*), min(stud_marks), max(stud_marks) FROM studt WHERE stud_id > 4000 AND stud_id < 13000;
SELECT count(*), count(stud_marks), sum(stud_marks), avg(stud_marks), min(stud_id), max(stud_name) FROM studt WHERE stud_id < 0;
SELECT count(*) FROM studt WHERE stud_marks IS NULL;

-- Result types: sum(int) is bigint, sum(bigint) and avg are numeric, float aggregates are
-- floats.
SELECT sum(stud_id::bigint), avg(stud_id::bigint), sum(stud_id::smallint), avg(stud_id::smallint) FROM studt;
SELECT sum(stud_marks::float8), avg(stud_marks::float8), sum(stud_marks::real), max(stud_marks::float8) FROM studt;
SELECT sum(stud_marks::numeric(6,2)), avg(stud_marks::numeric), min(stud_marks::numeric / 3) FROM studt;

-- Expressions of aggregates and aggregates of expressions.
SELECT count(*) * 2, sum(stud_marks) / count(stud_marks), max(stud_marks) - min(stud_marks) FROM studt;
SELECT sum(stud_marks + 1), max(length(stud_name)), min(coalesce(stud_marks, -1)), count(nullif(stud_marks, 65)) FROM studt;
SELECT sum(CASE WHEN stud_marks >= 60 THEN 1 ELSE 0 END) AS passed FROM studt;

-- GROUP BY.
SELECT stud_marks, count(*) FROM studt GROUP BY stud_marks;
SELECT stud_name, count(*), sum(stud_marks) FROM studt GROUP BY stud_name ORDER BY stud_name NULLS FIRST;
SELECT stud_id / 4096 AS bucket, count(*), sum(stud_marks), avg(stud_marks), min(stud_name), max(stud_marks) FROM studt GROUP BY bucket ORDER BY bucket;
SELECT stud_id / 4096, count(*) FROM studt GROUP BY 1 ORDER BY 1 DESC;
SELECT stud_marks % 2 AS parity, count(DISTINCT stud_name), count(stud_marks) FROM studt GROUP BY stud_marks % 2;
SELECT stud_marks >= 60 AS passed, count(*) FROM studt GROUP BY stud_marks >= 60;
SELECT stud_name, stud_marks FROM studt GROUP BY stud_name, stud_marks HAVING count(*) = 1 ORDER BY stud_name, stud_marks;

-- HAVING.
SELECT stud_id / 4096 AS bucket, count(*) FROM studt GROUP BY 1 HAVING count(*) > 3 ORDER BY 1;
SELECT stud_id / 4096 AS bucket, avg(stud_marks) FROM studt GROUP BY stud_id / 4096 HAVING avg(stud_marks) > 60;
SELECT stud_marks, count(*) FROM studt GROUP BY stud_marks HAVING count(*) > 1 AND stud_marks > 50;
SELECT stud_name FROM studt GROUP BY stud_name HAVING max(stud_marks) IS NULL;
SELECT count(*) FROM studt HAVING count(*) > 100;

-- Aggregates with ORDER BY and LIMIT.
SELECT stud_marks, count(*) AS n FROM studt GROUP BY stud_marks ORDER BY n DESC, stud_marks NULLS FIRST LIMIT 3;
SELECT stud_id / 4096 AS bucket, sum(stud_marks) AS total FROM studt GROUP BY 1 ORDER BY total DESC, bucket LIMIT 2;

-- Errors.
-- error 42803 a column that is neither grouped nor aggregated
SELECT stud_name, count(*) FROM studt;
-- error 42803 an aggregate in WHERE
SELECT stud_id FROM studt WHERE count(*) > 1;
-- error 42883 sum of text
SELECT sum(stud_name) FROM studt;
