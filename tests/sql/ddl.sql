-- DDL: range- and hash-partitioned tables (each partition is a shard), unpartitioned tables,
-- IF [NOT] EXISTS, DROP TABLE, and the DDL errors Postgres raises.

-- The course's table: four range shards of 4096 ids each.
CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (12288);
CREATE TABLE sh4 PARTITION OF studt FOR VALUES FROM (12288) TO (16384);

-- Rows on both edges of every shard boundary.
INSERT INTO studt VALUES (0, 'zero', 10), (4095, 'last of sh1', 20), (4096, 'first of sh2', 30), (8191, 'last of sh2', 40), (8192, 'first of sh3', 50), (12287, 'last of sh3', 60), (12288, 'first of sh4', 70), (16383, 'last of sh4', 80);
SELECT * FROM studt ORDER BY stud_id;
SELECT count(*) FROM studt WHERE stud_id >= 4096 AND stud_id < 8192;

-- error 42P07 the table exists
CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
-- IF NOT EXISTS on an existing table succeeds and changes nothing.
CREATE TABLE IF NOT EXISTS studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
SELECT count(*) FROM studt;

-- error 42P17 a partition overlapping sh1 and sh2
CREATE TABLE sh_overlap PARTITION OF studt FOR VALUES FROM (4000) TO (5000);
-- error 42P07 a partition named like an existing table
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (16384) TO (20480);
-- error 42P01 a partition of a table that does not exist
CREATE TABLE orphan PARTITION OF nosuch FOR VALUES FROM (0) TO (10);
-- error 0A000 the primary key must include the partition key
CREATE TABLE badkey (a INT PRIMARY KEY, b INT) PARTITION BY RANGE (b);

-- A new shard after the others, then rows in it.
CREATE TABLE sh5 PARTITION OF studt FOR VALUES FROM (16384) TO (20480);
INSERT INTO studt VALUES (16384, 'first of sh5', 90), (20479, 'last of sh5', 100);
SELECT stud_id, stud_name FROM studt WHERE stud_id > 16000 ORDER BY stud_id;

-- Open-ended ranges with MINVALUE and MAXVALUE, and a composite primary key that includes
-- the partition key.
CREATE TABLE enrol (stud_id INT, course TEXT, grade INT, PRIMARY KEY (stud_id, course)) PARTITION BY RANGE (stud_id);
CREATE TABLE enrol_low PARTITION OF enrol FOR VALUES FROM (MINVALUE) TO (1000);
CREATE TABLE enrol_high PARTITION OF enrol FOR VALUES FROM (1000) TO (MAXVALUE);
INSERT INTO enrol VALUES (-5, 'math', 3), (-5, 'art', 4), (999, 'math', 5), (1000, 'math', 2), (2000000000, 'art', 1);
-- error 23505 the composite key repeats
INSERT INTO enrol VALUES (999, 'math', 1);
SELECT * FROM enrol ORDER BY stud_id, course;

-- Hash partitioning with MODULUS 4: every remainder needs its partition.
CREATE TABLE accounts (acct_id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance NUMERIC(12,2) DEFAULT 0) PARTITION BY HASH (acct_id);
CREATE TABLE accounts_p0 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 0);
CREATE TABLE accounts_p1 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 1);
CREATE TABLE accounts_p2 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 2);
CREATE TABLE accounts_p3 PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 3);
-- error 42P17 a remainder that is taken
CREATE TABLE accounts_dup PARTITION OF accounts FOR VALUES WITH (MODULUS 4, REMAINDER 2);
INSERT INTO accounts (acct_id, owner) VALUES (1, 'ann'), (2, 'ben'), (3, 'cid'), (4, 'dee'), (5, 'eve'), (6, 'fay'), (7, 'gus'), (8, 'hal'), (9, 'ivy'), (10, 'jon');
INSERT INTO accounts VALUES (-1, 'neg', 12.5), (9000000000, 'big', 99.99);
SELECT * FROM accounts ORDER BY acct_id;
SELECT acct_id, owner FROM accounts WHERE acct_id = 7;
SELECT count(*), sum(balance) FROM accounts;

-- A table without PARTITION BY is one shard.
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT);
INSERT INTO settings VALUES ('mode', 'fast'), ('level', '3');
SELECT * FROM settings ORDER BY name;
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS fresh (id INT PRIMARY KEY);
INSERT INTO fresh VALUES (1), (2);
SELECT * FROM fresh;

-- DROP TABLE and DROP TABLE IF EXISTS.
DROP TABLE settings;
-- error 42P01 it is gone
SELECT * FROM settings;
-- error 42P01 dropping it twice
DROP TABLE settings;
DROP TABLE IF EXISTS settings;
DROP TABLE IF EXISTS nosuch, fresh;
-- error 42P01
SELECT * FROM fresh;
-- The name is free again, for a table of another shape that starts empty.
CREATE TABLE settings (name TEXT PRIMARY KEY, value INT NOT NULL);
SELECT count(*) FROM settings;
INSERT INTO settings VALUES ('level', 3);
SELECT * FROM settings;

-- Dropping a partitioned table drops its partitions, so their names are free again.
DROP TABLE accounts;
-- error 42P01
SELECT * FROM accounts;
CREATE TABLE accounts (acct_id BIGINT PRIMARY KEY, owner TEXT) PARTITION BY HASH (acct_id);
CREATE TABLE accounts_p0 PARTITION OF accounts FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE accounts_p1 PARTITION OF accounts FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO accounts VALUES (1, 'again'), (2, 'and again');
SELECT * FROM accounts ORDER BY acct_id;

-- The other tables were not touched.
SELECT count(*) FROM studt;
SELECT count(*) FROM enrol;

-- PostgreSQL's storage parameters are accepted (and have nothing to tune here).
CREATE TABLE tuned (id INT PRIMARY KEY, v TEXT) WITH (fillfactor = 90);
INSERT INTO tuned VALUES (1, 'a');
SELECT * FROM tuned;
DROP TABLE tuned;

-- A primary key added to a table without one (as pgbench -i does after loading): refused
-- while two rows share a key or a key value is null, and the table is unchanged; then added,
-- after which it is enforced.
CREATE TABLE keyless (id INT, note TEXT);
INSERT INTO keyless VALUES (1, 'a'), (2, 'b'), (2, 'twice');
-- error 23505 two rows share the key 2
ALTER TABLE keyless ADD PRIMARY KEY (id);
DELETE FROM keyless WHERE note = 'twice';
INSERT INTO keyless VALUES (NULL, 'none');
-- error 23502 a null key value
ALTER TABLE keyless ADD PRIMARY KEY (id);
DELETE FROM keyless WHERE id IS NULL;
SELECT * FROM keyless ORDER BY id;
ALTER TABLE keyless ADD PRIMARY KEY (id);
-- error 23505 the key is enforced
INSERT INTO keyless VALUES (1, 'again');
-- error 23502 and its column is NOT NULL
INSERT INTO keyless VALUES (NULL, 'none');
INSERT INTO keyless VALUES (3, 'c');
UPDATE keyless SET note = 'B' WHERE id = 2;
SELECT * FROM keyless ORDER BY id;
-- error 42P16 a second primary key
ALTER TABLE keyless ADD PRIMARY KEY (note);
-- error 42P01
ALTER TABLE nosuch ADD PRIMARY KEY (id);
DROP TABLE keyless;
