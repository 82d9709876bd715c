-- Point and range predicates on the shard key reach only the overlapping shards.
SELECT * FROM studt WHERE stud_id = 5
SELECT * FROM studt WHERE stud_id = 4096
SELECT stud_name FROM studt WHERE stud_id BETWEEN 1000 AND 9000 ORDER BY stud_id LIMIT 50
SELECT * FROM studt WHERE stud_id < 4096
SELECT * FROM studt WHERE stud_id > 12287
SELECT * FROM studt WHERE stud_id IN (1, 5000, 16000)
SELECT * FROM studt WHERE stud_id = 1 OR stud_id = 13000
SELECT * FROM studt WHERE stud_id >= 100 AND stud_id < 200 AND stud_marks > 50
SELECT * FROM studt WHERE stud_id < 10 AND stud_id > 20
-- Predicates on other columns, or OR with a non-key predicate, fan out to every shard.
SELECT * FROM studt WHERE stud_marks > 50
SELECT * FROM studt WHERE stud_id = 1 OR stud_marks = 2
-- A partition named directly is one shard.
SELECT * FROM sh2
-- Pushdown: DISTINCT, top-N, partial aggregates.
SELECT DISTINCT stud_marks FROM studt
SELECT stud_name FROM studt ORDER BY stud_marks DESC LIMIT 10 OFFSET 5
SELECT count(*), avg(stud_marks), count(DISTINCT stud_name) FROM studt WHERE stud_id < 8192
SELECT stud_marks, count(*) FROM studt GROUP BY stud_marks HAVING count(*) > 1 ORDER BY 2 DESC
-- Hash partitions: equality and IN reach the partitions holding those keys.
SELECT * FROM hashed WHERE k = 42
SELECT * FROM hashed WHERE k IN (1, 2, 3)
SELECT * FROM hashed WHERE k > 10
-- Writes.
INSERT INTO studt VALUES (1, 'a', 1), (5000, 'b', 2), (5001, 'c', 3)
UPDATE studt SET stud_marks = 0 WHERE stud_id = 7
UPDATE studt SET stud_id = 9000 WHERE stud_id = 7
DELETE FROM studt WHERE stud_marks IS NULL
SELECT * FROM plain WHERE a = 3
