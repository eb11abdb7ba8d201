use super::*;
use crate::identity::FileKeyStore;
use crate::media::CHUNK;
use crate::media::PhotoTags;

struct Fx {
    dir: tempfile::TempDir,
    store: Store,
}

fn fx() -> Fx {
    let dir = tempfile::tempdir().unwrap();
    let keys = FileKeyStore::open_or_create(dir.path().join("device.kek")).unwrap();
    let store = Store::open(&dir.path().join("data"), &keys).unwrap();
    Fx { dir, store }
}

fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn file(fx: &Fx, name: &str, data: &[u8]) -> PathBuf {
    let p = fx.dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn media_files(fx: &Fx) -> Vec<PathBuf> {
    std::fs::read_dir(fx.dir.path().join("data").join(MEDIA_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn imports_round_trip_at_every_chunk_boundary_and_are_stored_once() {
    let fx = fx();
    for (i, n) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1_000_003]
        .into_iter()
        .enumerate()
    {
        let data = bytes(n, i as u8);
        let src = file(&fx, &format!("in-{i}"), &data);
        let seen = std::cell::Cell::new(0);
        let m = fx
            .store
            .import_media(
                &src,
                "video/mp4",
                PhotoTags::Remove,
                Some(&|done, total| {
                    assert_eq!(total, n as u64);
                    seen.set(done);
                }),
            )
            .unwrap();
        assert_eq!(seen.get(), n as u64, "progress reaches the end");
        assert_eq!(m.sha256, Sha256Digest::of(&data));
        assert_eq!((m.bytes, m.new), (n as u64, true));
        let mut back = Vec::new();
        fx.store.read_media(&m.sha256, &mut back).unwrap();
        assert!(back == data, "{n} bytes read back");
        // Reading from any offset gives the rest.
        for at in [0, n / 2, n.saturating_sub(1), n] {
            let mut r = fx.store.media_reader(&m.sha256).unwrap();
            r.seek(at as u64).unwrap();
            let mut rest = Vec::new();
            while r.read_into(&mut rest, 10_000).unwrap() > 0 {}
            assert!(rest == data[at..], "{n} bytes from {at}");
        }
    }
    let count = media_files(&fx).len();
    let again = file(&fx, "again", &bytes(3 * CHUNK, 5));
    let m = fx
        .store
        .import_media(&again, "video/mp4", PhotoTags::Remove, None)
        .unwrap();
    assert!(!m.new, "the same bytes are stored once");
    assert_eq!(media_files(&fx).len(), count);
    assert_eq!(fx.store.media().unwrap().len(), count);
    assert!(
        fx.store
            .media()
            .unwrap()
            .windows(2)
            .all(|w| w[0].bytes <= w[1].bytes)
    );
}

#[test]
fn an_imported_file_is_not_readable_on_disk() {
    let fx = fx();
    let mut data = bytes(5 * CHUNK, 9);
    let marker = b"EVIDENCE-MARKER-ballot-stuffing-clip";
    for at in [0, CHUNK - 10, 4 * CHUNK + 77] {
        data[at..at + marker.len()].copy_from_slice(marker);
    }
    let src = file(&fx, "clip.mp4", &data);
    let m = fx
        .store
        .import_media(&src, "video/mp4", PhotoTags::Remove, None)
        .unwrap();
    std::fs::remove_file(&src).unwrap();
    let mut files = vec![fx.dir.path().join("data")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let b = std::fs::read(&p).unwrap();
        for needle in [
            &marker[..],
            m.sha256.as_bytes(),
            m.sha256.to_string().as_bytes(),
        ] {
            assert!(
                !b.windows(needle.len()).any(|w| w == needle),
                "{} readable in {}",
                String::from_utf8_lossy(needle),
                p.display()
            );
        }
    }
}

#[test]
fn a_flipped_or_missing_chunk_on_disk_is_reported_not_read() {
    let fx = fx();
    let data = bytes(4 * CHUNK + 100, 3);
    let m = fx
        .store
        .import_media(&file(&fx, "v", &data), "video/mp4", PhotoTags::Remove, None)
        .unwrap();
    let path = media_files(&fx).pop().unwrap();
    let good = std::fs::read(&path).unwrap();

    let mut flipped = good.clone();
    let in_third_chunk = 24 + 2 * (CHUNK + crate::at_rest::OVERHEAD) + 500;
    flipped[in_third_chunk] ^= 0x01;
    std::fs::write(&path, &flipped).unwrap();
    match fx.store.read_media(&m.sha256, &mut Vec::new()) {
        Err(MediaError::Corrupt { sha256, offset }) => {
            assert_eq!((sha256, offset), (m.sha256, 2 * CHUNK as u64))
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }

    // The last chunk dropped: the file now ends on a chunk not marked last.
    std::fs::write(
        &path,
        &good[..good.len() - (100 + crate::at_rest::OVERHEAD)],
    )
    .unwrap();
    assert!(matches!(
        fx.store.read_media(&m.sha256, &mut Vec::new()),
        Err(MediaError::Corrupt { .. })
    ));
    // Two chunks swapped.
    let mut swapped = good.clone();
    let c = CHUNK + crate::at_rest::OVERHEAD;
    let (a, b) = (24..24 + c, 24 + c..24 + 2 * c);
    let first = swapped[a.clone()].to_vec();
    swapped.copy_within(b.clone(), a.start);
    swapped[b].copy_from_slice(&first);
    std::fs::write(&path, &swapped).unwrap();
    assert!(matches!(
        fx.store.read_media(&m.sha256, &mut Vec::new()),
        Err(MediaError::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn bad_imports_are_typed_errors_and_store_nothing() {
    let fx = fx();
    let missing = fx.dir.path().join("nope.jpg");
    assert!(matches!(
        fx.store
            .import_media(&missing, "image/jpeg", PhotoTags::Remove, None),
        Err(MediaError::Unreadable { .. })
    ));
    let huge = fx.dir.path().join("huge.mp4");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(MAX_MEDIA_BYTES + 1)
        .unwrap();
    assert!(matches!(
        fx.store
            .import_media(&huge, "video/mp4", PhotoTags::Remove, None),
        Err(MediaError::TooLarge { .. })
    ));
    let ok = file(&fx, "ok", b"x");
    assert!(matches!(
        fx.store
            .import_media(&ok, "not a mime", PhotoTags::Remove, None),
        Err(MediaError::BadMime(_))
    ));
    assert!(fx.store.media().unwrap().is_empty());
    let leftovers = std::fs::read_dir(fx.dir.path().join("data").join(MEDIA_DIR))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "no partial copy left behind");
}

#[test]
fn a_jpeg_loses_its_location_tags_unless_kept_and_the_hash_is_of_what_is_stored() {
    let fx = fx();
    let (with, without) = crate::media::jpeg_test_photo();
    let src = file(&fx, "IMG_0001.jpg", &with);
    let m = fx
        .store
        .import_media(&src, "image/jpeg", PhotoTags::Remove, None)
        .unwrap();
    assert_eq!(
        (m.sha256, m.bytes),
        (Sha256Digest::of(&without), without.len() as u64)
    );
    let mut back = Vec::new();
    fx.store.read_media(&m.sha256, &mut back).unwrap();
    assert_eq!(back, without);
    assert!(!back.windows(10).any(|w| w == b"GPS-MARKER"));

    let kept = fx
        .store
        .import_media(&src, "image/jpeg", PhotoTags::Keep, None)
        .unwrap();
    assert_eq!(
        kept.sha256,
        Sha256Digest::of(&with),
        "kept on purpose: the file as it is"
    );
    // A video is never rewritten, whatever it holds.
    let v = fx
        .store
        .import_media(&src, "video/mp4", PhotoTags::Remove, None)
        .unwrap();
    assert_eq!(v.sha256, Sha256Digest::of(&with));
    // A "JPEG" that is not one is refused, not stored with its tags.
    let fake = file(&fx, "fake.jpg", b"GIF89a GPS-MARKER");
    assert!(matches!(
        fx.store
            .import_media(&fake, "image/jpeg", PhotoTags::Remove, None),
        Err(MediaError::BadJpeg { .. })
    ));
}
