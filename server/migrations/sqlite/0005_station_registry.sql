-- v5: the station registry. Each import is a whole new version; earlier
-- versions stay readable (a quick-count sample names the version it was
-- drawn from).
CREATE TABLE registry_versions (
    version     INTEGER PRIMARY KEY,
    imported_at INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    stations    INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    changed     INTEGER NOT NULL,
    removed     INTEGER NOT NULL
);
CREATE TABLE registry_stations (
    version           INTEGER NOT NULL REFERENCES registry_versions(version),
    id                TEXT NOT NULL,
    name              TEXT NOT NULL,
    region            TEXT NOT NULL,
    district          TEXT NOT NULL,
    address           TEXT NOT NULL,
    registered_voters INTEGER NOT NULL,
    latitude          REAL,
    longitude         REAL,
    PRIMARY KEY (version, id)
) WITHOUT ROWID;
