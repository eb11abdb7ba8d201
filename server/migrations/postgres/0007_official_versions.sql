-- v7: official results kept as versions. The election commission
-- publishes and corrects its figures more than once; each import is a
-- whole new version beside the earlier ones (who imported it, the file's
-- SHA-256, what changed), so a replaced figure is never lost. Results
-- imported before this are kept as version 1, by an unknown hand.
CREATE TABLE official_versions (
    version     INTEGER PRIMARY KEY,
    imported_at BIGINT NOT NULL,
    imported_by TEXT NOT NULL,
    source      TEXT NOT NULL,
    digest      TEXT,
    stations    BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    changed     BIGINT NOT NULL,
    removed     BIGINT NOT NULL
);
CREATE TABLE official_results (
    version INTEGER NOT NULL REFERENCES official_versions(version),
    station TEXT NOT NULL,
    region  TEXT,
    figures TEXT NOT NULL,
    PRIMARY KEY (version, station)
);
INSERT INTO official_versions
    SELECT 1, MAX(imported_at), 'unknown (imported before versions were kept)', '', NULL,
           COUNT(*), COUNT(*), 0, 0
    FROM official HAVING COUNT(*) > 0;
INSERT INTO official_results SELECT 1, station, region, figures FROM official;
DROP TABLE official;
