-- Transactions whose writes stay in one shard (transactions that write to a second shard are
-- refused by design; tests/tests/transactions.rs covers that): BEGIN ... COMMIT, ROLLBACK, a
-- failed statement aborting the transaction, reads of the transaction's own writes, and the
-- implicit transaction of a query string with several statements.

CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
INSERT INTO studt VALUES (4096, 'other shard', 1);

-- COMMIT makes every write visible, and the transaction sees its own writes before.
BEGIN;
INSERT INTO studt VALUES (1, 'a', 10);
INSERT INTO studt VALUES (2, 'b', 20), (3, 'c', 30);
SELECT * FROM studt ORDER BY stud_id;
UPDATE studt SET stud_marks = 11 WHERE stud_id = 1;
DELETE FROM studt WHERE stud_id = 3;
SELECT * FROM studt WHERE stud_id < 4096 ORDER BY stud_id;
SELECT count(*), sum(stud_marks) FROM studt;
COMMIT;
SELECT * FROM studt ORDER BY stud_id;

-- ROLLBACK discards every write.
BEGIN;
DELETE FROM studt WHERE stud_id = 1;
INSERT INTO studt VALUES (3, 'c again', 30);
UPDATE studt SET stud_name = 'changed' WHERE stud_id = 2;
SELECT * FROM studt ORDER BY stud_id;
ROLLBACK;
SELECT * FROM studt ORDER BY stud_id;

-- A failed statement aborts the transaction; COMMIT then rolls it back.
BEGIN;
INSERT INTO studt VALUES (4, 'd', 40);
-- error 23505
INSERT INTO studt VALUES (1, 'dup', 0);
-- error 25P02 the transaction is aborted
SELECT * FROM studt;
-- error 25P02
INSERT INTO studt VALUES (5, 'e', 50);
COMMIT;
SELECT * FROM studt ORDER BY stud_id;

-- A failed statement, then ROLLBACK.
BEGIN;
UPDATE studt SET stud_marks = 0 WHERE stud_id = 2;
-- error 22012
SELECT 1 / 0;
ROLLBACK;
SELECT * FROM studt WHERE stud_id = 2;

-- A transaction in the other shard, with reads of every shard.
BEGIN;
INSERT INTO studt VALUES (5000, 'x', 1);
UPDATE studt SET stud_marks = stud_marks + 1 WHERE stud_id >= 4096;
SELECT * FROM studt ORDER BY stud_id;
COMMIT;
SELECT * FROM studt ORDER BY stud_id;

-- Transactions that only read.
BEGIN;
SELECT count(*) FROM studt;
SELECT stud_id FROM studt WHERE stud_id > 1000 ORDER BY stud_id;
COMMIT;
BEGIN;
ROLLBACK;

-- The implicit transaction of a query string with several statements: all or nothing.
INSERT INTO studt VALUES (6, 'f', 60); INSERT INTO studt VALUES (7, 'g', 70); SELECT count(*) FROM studt WHERE stud_id IN (6, 7);
-- error 23505
INSERT INTO studt VALUES (8, 'h', 80); INSERT INTO studt VALUES (1, 'dup', 0);
SELECT count(*) FROM studt WHERE stud_id = 8;
-- error 22012
UPDATE studt SET stud_marks = 99 WHERE stud_id = 6; SELECT 1 / 0;
SELECT stud_marks FROM studt WHERE stud_id = 6;
-- An explicit transaction inside one query string.
BEGIN; INSERT INTO studt VALUES (9, 'i', 90); UPDATE studt SET stud_marks = 91 WHERE stud_id = 9; COMMIT;
BEGIN; DELETE FROM studt WHERE stud_id = 9; ROLLBACK;
SELECT * FROM studt WHERE stud_id = 9;

-- COMMIT and ROLLBACK outside a transaction only warn.
COMMIT;
ROLLBACK;

-- A transaction on an unpartitioned table (one shard).
CREATE TABLE counters (name TEXT PRIMARY KEY, n INT NOT NULL);
INSERT INTO counters VALUES ('a', 0), ('b', 0);
BEGIN;
UPDATE counters SET n = n + 1 WHERE name = 'a';
UPDATE counters SET n = n + 10;
-- error 23502
UPDATE counters SET n = NULL WHERE name = 'b';
ROLLBACK;
BEGIN;
UPDATE counters SET n = n + 1 WHERE name = 'a';
UPDATE counters SET n = n + 10 RETURNING *;
COMMIT;
SELECT * FROM counters ORDER BY name;
SELECT * FROM studt ORDER BY stud_id;
