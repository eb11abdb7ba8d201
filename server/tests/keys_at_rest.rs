//! A seized coordinator laptop, or a copy of its data directory made while
//! the server was stopped, must not give up the keys that sign receipts,
//! open sealed records and serve TLS: they rest wrapped by a key that is
//! not in the directory.

mod support;

use std::path::Path;

use observer_server::coordinator::Coordinator;
use observer_server::coordinator::SetupError;
use observer_server::unlock::{Unlock, UnlockError};
use support::*;
use zeroize::Zeroizing;

/// Every byte of every file under `dir`.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(all_bytes(&path));
        } else {
            out.extend(std::fs::read(&path).unwrap());
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn locked(result: Result<Coordinator, SetupError>) -> String {
    match result {
        Err(SetupError::Unlock(e @ (UnlockError::Locked(_) | UnlockError::WrongKey(_)))) => {
            e.to_string()
        }
        Err(e) => panic!("expected the keys to stay locked, got {e}"),
        Ok(_) => panic!("the keys opened without their unlock key"),
    }
}

#[test]
fn a_copied_data_directory_gives_up_no_key_without_the_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("server"));
    let p = enrolled_phone(&dir.path().join("phone"), &server, "S-1");
    p.save(record("S-1", 0)).unwrap();
    observer_core::sync::sync(&p, &observer_core::sync::SyncOptions::default()).unwrap();
    let mut server = server;
    server.kill();

    let copy = dir.path().join("seized");
    copy_dir(&server.data, &copy);
    assert!(
        !copy.join("tls/key.der").exists(),
        "no TLS key in the clear"
    );
    assert!(
        !copy.join("coordinator.kek").exists(),
        "no key file beside the database"
    );
    // Nothing in the copy opens without the key file...
    let msg = locked(Coordinator::open(&copy, None));
    assert!(msg.contains("--key-file"), "{msg}");
    // ...nor with another one.
    let other = Unlock::KeyFile(dir.path().join("other.key"));
    observer_core::identity::FileKeyStore::open_or_create(dir.path().join("other.key")).unwrap();
    locked(Coordinator::open(&copy, Some(&other)));
    // With it, everything opens; and none of the secrets is anywhere in
    // the copy's bytes.
    let right = Unlock::KeyFile(key_file(&server.data));
    let c = Coordinator::open(&copy, Some(&right)).unwrap();
    let bytes = all_bytes(&copy);
    assert!(
        !contains(&bytes, &c.tls_key_der),
        "the TLS key rests wrapped"
    );
    assert!(
        !contains(&bytes, &c.seal.to_bytes()),
        "the sealing key rests wrapped"
    );
    assert!(
        !contains(&bytes, &std::fs::read(key_file(&server.data)).unwrap()[8..]),
        "the unlock key is not in the directory"
    );
    // A key file inside the data directory is refused at init.
    let inside = dir.path().join("inside");
    let out = std::process::Command::new(BIN)
        .args(["--data", inside.to_str().unwrap(), "--key-file"])
        .arg(inside.join("k.key"))
        .args(["init", "--url", "https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("inside the data directory"));
}

#[test]
fn a_passphrase_unlocks_the_keys_and_rekey_moves_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let phrase = Unlock::Passphrase(Zeroizing::new("seven words for the election night".into()));
    let c = Coordinator::init(&data, "https://127.0.0.1:1", "org", &phrase).unwrap();
    let public = c.key.public_key();
    drop(c);
    locked(Coordinator::open(&data, None));
    locked(Coordinator::open(
        &data,
        Some(&Unlock::Passphrase(Zeroizing::new("a wrong guess".into()))),
    ));
    let c = Coordinator::open(&data, Some(&phrase)).unwrap();
    assert_eq!(c.key.public_key(), public);
    // Rekey to a key file: the passphrase no longer opens them, the file does.
    let file = Unlock::KeyFile(dir.path().join("usb.key"));
    c.rekey(&file).unwrap();
    drop(c);
    locked(Coordinator::open(&data, Some(&phrase)));
    let c = Coordinator::open(&data, Some(&file)).unwrap();
    assert_eq!(c.key.public_key(), public, "the same keys, wrapped anew");
    // Through the command line, with the passphrase in the environment.
    let out = std::process::Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "rekey"])
        .env("OBSERVER_SERVER_KEY_FILE", dir.path().join("usb.key"))
        .env("OBSERVER_SERVER_NEW_PASSPHRASE", "another passphrase")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(BIN)
        .args(["--data", data.to_str().unwrap(), "devices"])
        .env("OBSERVER_SERVER_PASSPHRASE", "another passphrase")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A directory made before keys were protected (its keys wrapped by
/// `coordinator.kek` beside the database, its TLS key in the clear) still
/// opens, flagged; `rekey` moves it and shreds both files.
#[test]
fn a_legacy_directory_opens_flagged_and_rekey_moves_it() {
    use observer_core::identity::KeyStore as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let first = Unlock::KeyFile(dir.path().join("first.key"));
    let c = Coordinator::init(&data, "https://127.0.0.1:1", "org", &first).unwrap();
    // Rewrite it as the old layout was.
    let legacy =
        observer_core::identity::FileKeyStore::open_or_create(data.join("coordinator.kek"))
            .unwrap();
    let db = rusqlite::Connection::open(data.join("server.db")).unwrap();
    db.execute("DELETE FROM meta WHERE key IN ('unlock', 'tls_key')", [])
        .unwrap();
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'coordinator_key'",
        [c.key.wrap(&legacy).unwrap()],
    )
    .unwrap();
    db.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'seal_key'",
        [legacy.wrap(&c.seal.to_bytes()).unwrap()],
    )
    .unwrap();
    std::fs::write(data.join("tls/key.der"), &c.tls_key_der).unwrap();
    let public = c.key.public_key();
    drop((c, db));

    let old = Coordinator::open(&data, None).unwrap();
    assert!(old.legacy_keys);
    assert_eq!(old.key.public_key(), public);
    let new = Unlock::KeyFile(dir.path().join("usb.key"));
    old.rekey(&new).unwrap();
    assert!(!data.join("coordinator.kek").exists());
    assert!(!data.join("tls/key.der").exists());
    locked(Coordinator::open(&data, None));
    let c = Coordinator::open(&data, Some(&new)).unwrap();
    assert!(!c.legacy_keys);
    assert_eq!(c.key.public_key(), public);
}
