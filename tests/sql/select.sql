-- SELECT: every WHERE operator, arithmetic, ||, CASE, casts, the common functions,
-- projections with aliases, ORDER BY in all its forms, LIMIT, OFFSET, DISTINCT, and SELECT
-- without FROM.

CREATE TABLE studt (stud_id INT PRIMARY KEY, stud_name TEXT, stud_marks INT) PARTITION BY RANGE (stud_id);
CREATE TABLE sh1 PARTITION OF studt FOR VALUES FROM (0) TO (4096);
CREATE TABLE sh2 PARTITION OF studt FOR VALUES FROM (4096) TO (8192);
CREATE TABLE sh3 PARTITION OF studt FOR VALUES FROM (8192) TO (12288);
CREATE TABLE sh4 PARTITION OF studt FOR VALUES FROM (12288) TO (16384);
INSERT INTO studt VALUES (1, 'alice', 90), (2, 'bob', 72), (3, 'Carol', 65), (5, 'dave', NULL), (100, 'Eve', 50), (4095, 'frank', 50), (4096, 'gina', 81), (5000, 'hank', 33), (6000, NULL, 77), (8191, 'ivy', 100), (8192, 'jack', 0), (9000, 'Kim', 65), (12000, 'liam', NULL), (12288, 'mona', 59), (15000, 'ned', 72), (16383, 'olga_b', 88);

SELECT * FROM studt ORDER BY stud_id;
SELECT * FROM studt;
SELECT * FROM studt WHERE stud_id < 0;

-- Comparison operators, on the shard key and on other columns.
SELECT stud_id, stud_name FROM studt WHERE stud_id = 4096;
SELECT stud_id FROM studt WHERE stud_id <> 4096;
SELECT stud_id FROM studt WHERE stud_id != 1;
SELECT stud_id FROM studt WHERE stud_id < 4096;
SELECT stud_id FROM studt WHERE stud_id <= 4096;
SELECT stud_id FROM studt WHERE stud_id > 12000;
SELECT stud_id FROM studt WHERE stud_id >= 12000;
SELECT stud_id FROM studt WHERE stud_marks = 65;
SELECT stud_id FROM studt WHERE stud_marks <> 50;
SELECT stud_id FROM studt WHERE stud_marks < 60;
SELECT stud_id FROM studt WHERE stud_name > 'hank';
SELECT stud_id FROM studt WHERE 4096 <= stud_id;

-- BETWEEN, IN, IS [NOT] NULL.
SELECT stud_id FROM studt WHERE stud_id BETWEEN 100 AND 9000;
SELECT stud_id FROM studt WHERE stud_id NOT BETWEEN 100 AND 9000;
SELECT stud_id FROM studt WHERE stud_marks BETWEEN 50 AND 72;
SELECT stud_id FROM studt WHERE stud_id IN (1, 4096, 9999, 16383);
SELECT stud_id FROM studt WHERE stud_name IN ('alice', 'Kim', 'nobody');
SELECT stud_id FROM studt WHERE stud_marks NOT IN (50, 65, 72);
SELECT stud_id FROM studt WHERE stud_id NOT IN (1, NULL);
SELECT stud_id FROM studt WHERE stud_marks IS NULL;
SELECT stud_id FROM studt WHERE stud_name IS NOT NULL AND stud_marks IS NOT NULL;

-- LIKE and ILIKE.
SELECT stud_name FROM studt WHERE stud_name LIKE 'a%';
SELECT stud_name FROM studt WHERE stud_name LIKE '%a%';
SELECT stud_name FROM studt WHERE stud_name LIKE '_o_';
SELECT stud_name FROM studt WHERE stud_name LIKE 'olga\_b';
SELECT stud_name FROM studt WHERE stud_name NOT LIKE '%a%';
SELECT stud_name FROM studt WHERE stud_name ILIKE 'c%';
SELECT stud_name FROM studt WHERE stud_name ILIKE '%I%';
SELECT stud_name FROM studt WHERE stud_name NOT ILIKE 'k%';

-- AND, OR, NOT and three-valued logic.
SELECT stud_id FROM studt WHERE stud_marks > 60 AND stud_id > 4000;
SELECT stud_id FROM studt WHERE stud_marks > 85 OR stud_id = 3;
SELECT stud_id FROM studt WHERE NOT (stud_marks > 60);
SELECT stud_id FROM studt WHERE NOT (stud_id < 5000 OR stud_marks < 70) AND stud_name IS NOT NULL;
SELECT stud_id FROM studt WHERE (stud_marks > 60) IS NOT TRUE;
SELECT stud_id, stud_marks > 60 AS passed, stud_marks > 60 OR stud_id < 10 AS either FROM studt ORDER BY stud_id;

-- Arithmetic, concatenation, CASE and casts in projections.
SELECT stud_id, stud_marks + 5, stud_marks * 2 - 1, stud_marks / 3, stud_marks % 7, -stud_marks, stud_id / 2.0 FROM studt ORDER BY stud_id;
SELECT stud_name || '-' || stud_id, stud_id || '', 'id ' || stud_id::text AS label FROM studt ORDER BY stud_id;
SELECT stud_id, CASE WHEN stud_marks >= 80 THEN 'A' WHEN stud_marks >= 60 THEN 'B' ELSE 'C' END AS grade FROM studt ORDER BY stud_id;
SELECT stud_id, CASE stud_id % 2 WHEN 0 THEN 'even' ELSE 'odd' END, CASE WHEN stud_marks IS NULL THEN 0 END FROM studt ORDER BY stud_id;
SELECT stud_id::text, stud_marks::numeric / 4, CAST(stud_id AS bigint) * 1000000000, stud_marks::float8 / 3, stud_marks::text::int + 1 FROM studt ORDER BY stud_id;
SELECT stud_id FROM studt WHERE stud_id::text LIKE '4%';
SELECT stud_id FROM studt WHERE stud_marks + 10 > 95;

-- Functions.
SELECT stud_id, lower(stud_name), upper(stud_name), length(stud_name), substr(stud_name, 2), substr(stud_name, 2, 3) FROM studt ORDER BY stud_id;
SELECT stud_id, coalesce(stud_marks, 0), coalesce(stud_name, 'unknown'), nullif(stud_marks, 50), abs(stud_marks - 70) FROM studt ORDER BY stud_id;
SELECT stud_id FROM studt WHERE lower(stud_name) = 'carol' OR upper(stud_name) = 'KIM';
SELECT stud_id FROM studt WHERE length(stud_name) > 4;
SELECT trim('  pad  '), length(trim('  pad  ')), substr('hello', 0, 3), substr('hello', 4, 10), substr('hello', 9);
SELECT abs(-7), abs(-7.5), abs(3), round(2.5), round(-2.5), round(3.14159, 2), round(1234.5, -2), round(2.5::float8), round(3.5::float8);
SELECT coalesce(NULL, NULL, 'z'), coalesce(1, 2), nullif(1, 1), nullif(1, 2), nullif('a', 'b');
SELECT lower('MiXeD'), upper('MiXeD'), length(''), length('four');

-- Aliases, qualified names and *.
SELECT stud_id AS id, stud_name name FROM studt WHERE stud_id < 5 ORDER BY id;
SELECT s.stud_id, s.stud_marks FROM studt s WHERE s.stud_marks > 85 ORDER BY s.stud_id;
SELECT studt.stud_name FROM studt WHERE studt.stud_id = 1;
SELECT *, stud_marks * 2 AS doubled FROM studt WHERE stud_id > 12000 ORDER BY stud_id;

-- ORDER BY expressions, positions, aliases, ASC/DESC, NULLS FIRST/LAST.
SELECT stud_id, stud_marks FROM studt ORDER BY stud_marks, stud_id;
SELECT stud_id, stud_marks FROM studt ORDER BY stud_marks DESC, stud_id;
SELECT stud_id, stud_marks FROM studt ORDER BY stud_marks ASC NULLS FIRST, stud_id DESC;
SELECT stud_id, stud_marks FROM studt ORDER BY stud_marks DESC NULLS LAST, stud_id ASC;
SELECT stud_id, stud_marks FROM studt ORDER BY stud_marks * -1, stud_id;
SELECT stud_id, stud_name FROM studt ORDER BY 2 DESC, 1;
SELECT stud_id, stud_name FROM studt ORDER BY stud_name NULLS FIRST;
SELECT stud_id, stud_marks * 2 AS dbl FROM studt ORDER BY dbl DESC NULLS LAST, stud_id;
SELECT stud_name FROM studt ORDER BY stud_id DESC;
SELECT stud_id FROM studt ORDER BY stud_id % 4096, stud_id;
SELECT stud_id, stud_name FROM studt ORDER BY length(stud_name) DESC NULLS LAST, stud_name;

-- LIMIT and OFFSET.
SELECT stud_id FROM studt ORDER BY stud_id LIMIT 3;
SELECT stud_id FROM studt ORDER BY stud_id DESC LIMIT 3;
SELECT stud_id FROM studt ORDER BY stud_id LIMIT 3 OFFSET 2;
SELECT stud_id FROM studt ORDER BY stud_id OFFSET 14;
SELECT stud_id FROM studt ORDER BY stud_id OFFSET 100;
SELECT stud_id FROM studt ORDER BY stud_id LIMIT 0;
SELECT stud_id, stud_marks FROM studt ORDER BY stud_marks DESC NULLS LAST, stud_id LIMIT 5;
SELECT stud_id FROM studt WHERE stud_id BETWEEN 1000 AND 13000 ORDER BY stud_id LIMIT 2 OFFSET 1;

-- DISTINCT.
SELECT DISTINCT stud_marks FROM studt;
SELECT DISTINCT stud_marks FROM studt ORDER BY stud_marks NULLS FIRST;
SELECT DISTINCT stud_id / 4096 AS shard_no FROM studt ORDER BY 1;
SELECT DISTINCT stud_marks % 2, stud_marks > 60 FROM studt;
SELECT DISTINCT stud_marks FROM studt ORDER BY stud_marks DESC NULLS LAST LIMIT 3;

-- SELECT without FROM.
SELECT 1;
SELECT 1 AS one, 'two' AS two, NULL AS nothing;
SELECT 1 + 2 * 3, (1 + 2) * 3, 'x' || 'y', NULL IS NULL, 2 > 1, 'abc' LIKE 'a%';
SELECT -5 / 2, 5.0 / 2, 9 % 4, 1 = 1 AND NULL, 1 = 2 AND NULL, NULL OR true;
