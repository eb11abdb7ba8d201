-- v2: the station registry. Each import is a whole new version; earlier
-- versions stay readable (a quick-count sample names the version it was
-- drawn from).
CREATE TABLE registry_versions (
    version     INTEGER PRIMARY KEY,
    imported_at BIGINT NOT NULL,
    digest      TEXT NOT NULL,
    stations    BIGINT NOT NULL,
    added       BIGINT NOT NULL,
    changed     BIGINT NOT NULL,
    removed     BIGINT NOT NULL
);
CREATE TABLE registry_stations (
    version           INTEGER NOT NULL REFERENCES registry_versions(version),
    id                TEXT NOT NULL,
    name              TEXT NOT NULL,
    region            TEXT NOT NULL,
    district          TEXT NOT NULL,
    address           TEXT NOT NULL,
    registered_voters BIGINT NOT NULL,
    latitude          DOUBLE PRECISION,
    longitude         DOUBLE PRECISION,
    PRIMARY KEY (version, id)
);
