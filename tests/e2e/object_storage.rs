//! Photos in an S3-compatible bucket: the blob layer's behaviour, the same
//! against a directory and against a real S3-protocol server (s3s-fs); and
//! a device's photos synced through a server whose blobs are in a bucket,
//! still there after the server restarts.

use std::sync::Arc;

use field_core::model::PhotoHash;
use field_e2e::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use field_e2e::server::Server;
use field_e2e::{CELLS, grid_geojson, jpeg_with_exif, png};
use sync_server::storage::blobs::s3::{BucketUrl, S3Objects};
use sync_server::storage::blobs::{Blobs, DirObjects, Objects, PARTIAL_LIFETIME};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What every home of blobs must do.
fn conformance(objects: Arc<dyn Objects>) {
    let home = objects.describe();
    // Objects: put whole, read back, listed under their folder, removed.
    assert_eq!(objects.get("a/b").unwrap(), None, "{home}");
    assert_eq!(objects.size("a/b").unwrap(), None, "{home}");
    objects.put("a/b", b"first").unwrap();
    objects.put("a/b", b"second").unwrap();
    objects.put("a/c", b"").unwrap();
    objects.put("z/1", b"elsewhere").unwrap();
    assert_eq!(objects.get("a/b").unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(objects.size("a/b").unwrap(), Some(6));
    let listed: Vec<(String, u64)> = objects
        .list("a/")
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    assert_eq!(listed, vec![("a/b".into(), 6), ("a/c".into(), 0)], "{home}");
    objects.delete("a/b").unwrap();
    objects.delete("a/b").unwrap();
    assert_eq!(objects.get("a/b").unwrap(), None);
    objects.delete("a/c").unwrap();
    objects.delete("z/1").unwrap();

    // A photo uploaded in chunks, resumed by a second instance over the
    // same objects, checked, kept once.
    let blobs = Blobs::open(objects.clone()).unwrap();
    let photo = jpeg_with_exif(3, "2025:11:26 09:20:00");
    let hash = PhotoHash::of(&photo);
    let total = photo.len() as u64;
    let half = photo.len() / 2;
    let ack = blobs.append(&hash, 0, total, &photo[..half]).unwrap();
    assert_eq!((ack.received, ack.complete), (half as u64, false), "{home}");
    // A chunk at another offset is answered with what is held.
    let ack = blobs.append(&hash, 5, total, &photo[5..]).unwrap();
    assert_eq!((ack.received, ack.complete), (half as u64, false));
    let other = Blobs::open(objects.clone()).unwrap();
    assert_eq!(other.received(&hash).unwrap(), half as u64);
    assert!(!other.exists(&hash).unwrap());
    let ack = other
        .append(&hash, half as u64, total, &photo[half..])
        .unwrap();
    assert_eq!((ack.received, ack.complete), (total, true), "{home}");
    assert_eq!(blobs.read(&hash).unwrap(), photo);
    assert_eq!(blobs.received(&hash).unwrap(), total);
    assert!(objects.list("partial/").unwrap().is_empty(), "{home}");
    // Again: already complete, nothing written.
    let ack = blobs.append(&hash, 0, total, &photo).unwrap();
    assert!(ack.complete);
    assert_eq!(blobs.hashes().unwrap(), vec![hash.clone()], "{home}");

    // Bytes that do not hash to their name are discarded, not kept.
    let forged = png(11);
    let claimed = PhotoHash::of(b"not these bytes");
    let e = blobs
        .append(&claimed, 0, forged.len() as u64, &forged)
        .unwrap_err()
        .to_string();
    assert!(e.contains("photo") && e.contains("hash"), "{e}");
    assert!(!blobs.exists(&claimed).unwrap());
    assert!(objects.list("partial/").unwrap().is_empty(), "{home}");

    // Thumbnail and EXIF time are made once and kept beside the photo.
    let thumb = blobs.thumbnail(&hash).unwrap();
    assert_eq!(&thumb[..2], &[0xFF, 0xD8], "a JPEG thumbnail");
    assert_eq!(
        objects.get(&format!("thumbs/{hash}.jpg")).unwrap(),
        Some(thumb)
    );
    let exif = blobs.exif_time(&hash).unwrap();
    assert_eq!(exif.datetime.as_deref(), Some("2025:11:26 09:20:00"));
    assert!(
        objects
            .size(&format!("exif/{hash}.json"))
            .unwrap()
            .is_some()
    );

    // A partial upload expires after its lifetime, not before.
    let late = png(12);
    let late_hash = PhotoHash::of(&late);
    blobs
        .append(&late_hash, 0, late.len() as u64, &late[..10])
        .unwrap();
    assert_eq!(Blobs::expire(objects.as_ref(), now_ms()).unwrap(), 0);
    assert_eq!(blobs.received(&late_hash).unwrap(), 10);
    let later = now_ms() + PARTIAL_LIFETIME.as_millis() as i64 + 60_000;
    assert_eq!(Blobs::expire(objects.as_ref(), later).unwrap(), 1, "{home}");
    assert_eq!(blobs.received(&late_hash).unwrap(), 0);
    // The complete photo is untouched by expiry.
    assert_eq!(blobs.read(&hash).unwrap(), photo);
}

#[test]
fn blobs_behave_the_same_in_a_directory_and_in_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    conformance(Arc::new(DirObjects::open(dir.path()).unwrap()));
    let Some(s3) = S3Server::start("conformance") else {
        return;
    };
    let url = BucketUrl::parse(&s3.url()).unwrap();
    conformance(Arc::new(
        S3Objects::open_with(url, Some((ACCESS_KEY, SECRET_KEY))).unwrap(),
    ));
    // Wrong credentials are refused when the server starts, not later.
    let url = BucketUrl::parse(&s3.url()).unwrap();
    assert!(S3Objects::open_with(url, Some((ACCESS_KEY, "wrong"))).is_err());
}

#[test]
fn a_server_keeps_its_photos_in_a_bucket_across_a_restart() {
    let Some(s3) = S3Server::start("city-photos") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with_bucket(&data, &s3);
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("zhao", "collector", &CELLS[..3]));
    let photo_bytes = png(21);
    let photo = d.file("p.png", &photo_bytes);
    let case = d.report(
        ("SJ0102", "120.2605", "30.1895"),
        "in the bucket",
        &photo,
        None,
    );
    d.ok(&["sync"]);
    let hash = PhotoHash::of(&photo_bytes);
    let key = format!("{}/{hash}", &hash.as_str()[..2]);
    assert!(s3.keys().contains(&key), "{:?}", s3.keys());
    assert!(!data.join("blobs").join(&key).exists(), "not on local disk");
    server.kill();

    let server = Server::start_with_bucket(&data, &s3);
    let mut admin = server.admin();
    assert_eq!(
        admin.get_bytes(&format!("/v1/photos/{hash}")).unwrap(),
        photo_bytes
    );
    let thumb = admin
        .get_bytes(&format!("/v1/photos/{hash}/thumb"))
        .unwrap();
    assert_eq!(&thumb[..2], &[0xFF, 0xD8]);
    assert!(s3.keys().contains(&format!("thumbs/{hash}.jpg")));
    let shown: serde_json::Value = admin
        .call::<(), serde_json::Value>("GET", &format!("/v1/center/cases/{case}"), None)
        .unwrap();
    assert_eq!(shown["case"]["photos"][0]["hash"], hash.as_str());
}

#[test]
fn a_citys_photos_move_into_a_bucket_and_nothing_is_lost() {
    let Some(s3) = S3Server::start("moved-city") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_on(&data, "127.0.0.1:0");
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("li", "collector", &CELLS[..3]));
    let photos: Vec<Vec<u8>> = (0..3).map(|i| png(40 + i)).collect();
    for (i, bytes) in photos.iter().enumerate() {
        let p = d.file(&format!("p{i}.png"), bytes);
        d.report(
            ("SJ0102", "120.2605", "30.1895"),
            &format!("case {i}"),
            &p,
            None,
        );
    }
    d.ok(&["sync"]);
    let before = server.digest();
    server.kill();

    let migrate = |expect_copied: u64| {
        let out = std::process::Command::new(field_e2e::server_bin())
            .args([
                "migrate",
                "--from",
                data.to_str().unwrap(),
                "--blobs",
                &s3.url(),
            ])
            .envs(s3.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(out["records"], serde_json::Value::Null, "photos only");
        let summary = out["photos"].clone();
        assert_eq!(summary["photos"], 3, "{summary}");
        assert_eq!(summary["copied"], expect_copied, "{summary}");
        assert_eq!(summary["verified"], 3, "{summary}");
        summary
    };
    migrate(3);
    // Again (an interrupted move resumed): nothing copied twice.
    let again = migrate(0);
    assert_eq!(again["already_there"], 3);

    let server = Server::start_with_bucket(&data, &s3);
    assert_eq!(server.digest(), before);
    let mut admin = server.admin();
    for bytes in &photos {
        let hash = PhotoHash::of(bytes);
        assert_eq!(
            &admin.get_bytes(&format!("/v1/photos/{hash}")).unwrap(),
            bytes
        );
    }
    // Records to a database that cannot be reached: refused, naming it
    // (with the server stopped: a move never runs beside one).
    drop(server);
    let out = std::process::Command::new(field_e2e::server_bin())
        .args([
            "migrate",
            "--from",
            data.to_str().unwrap(),
            "--to",
            "postgres://x/y",
        ])
        .args(["--blobs", &s3.url()])
        .envs(s3.env())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("target database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
