-- v8: the log's stored nodes, so that inclusion and consistency proofs
-- take O(log n) reads. The leaves are the records (leaf_hash(id) at
-- log_index); this holds the root of every perfect subtree at every
-- fourth level above them (level 4, 8, 12, ...), written in the
-- transaction that appends the leaf completing it. A database from
-- before this version is filled at open, from its records.
CREATE TABLE log_nodes (
    level SMALLINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);
