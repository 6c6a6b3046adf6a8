//! The schema the MySQL corpus tests run against, and the SELECT-only
//! user `ro` (password `ro-password`) they run statements as.

/// The schema the corpus runs against (database `appdb`).
pub const SCHEMA: &str = "
CREATE TABLE t (id INT PRIMARY KEY, a INT, b VARCHAR(20), name VARCHAR(20), j JSON, d DATETIME);
CREATE TABLE u (id INT PRIMARY KEY, t_id INT, x INT);
CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(20), email VARCHAR(40));
CREATE TABLE orders (id INT PRIMARY KEY, uid INT, total INT);
CREATE TABLE ft (id INT PRIMARY KEY, b VARCHAR(40), FULLTEXT KEY (b)) ENGINE = InnoDB;
CREATE SEQUENCE s;
INSERT INTO t VALUES (1, 1, 'a', 'n1', '{\"k\": 1}', '2024-01-01'), (2, 2, 'it''s', 'n2', NULL, NULL), (3, NULL, 'q', 'n3', '[]', NOW());
INSERT INTO u VALUES (1, 1, 1), (2, 2, 2), (3, 9, NULL);
INSERT INTO users VALUES (1, 'n1', 'a@example.com');
INSERT INTO orders VALUES (1, 1, 20);
INSERT INTO ft VALUES (1, 'x y z');
CREATE USER 'ro'@'localhost' IDENTIFIED BY 'ro-password';
GRANT SELECT ON appdb.* TO 'ro'@'localhost';
";
