//! What every storage backend must do, written once against the `Storage`
//! interface and run against each implementation (the embedded SQLite one
//! here; a scaled backend runs the same functions).

use sync_server::storage::sqlite::SqliteStorage;
use sync_server::storage::{ConsoleSession, Role, Storage};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Console sessions: any instance finds an open one, none finds an expired
/// or closed one.
fn sessions(s: &dyn Storage) {
    let open = ConsoleSession {
        id_hash: "a".repeat(64),
        token_hash: "b".repeat(64),
        csrf: "fld_csrf".into(),
        expires_ms: now_ms() + 60_000,
    };
    s.open_session(&open).unwrap();
    assert_eq!(s.session(&open.id_hash).unwrap(), Some(open.clone()));
    let expired = ConsoleSession {
        id_hash: "c".repeat(64),
        expires_ms: now_ms() - 1,
        ..open.clone()
    };
    s.open_session(&expired).unwrap();
    assert_eq!(s.session(&expired.id_hash).unwrap(), None);
    assert_eq!(s.session(&"d".repeat(64)).unwrap(), None);
    s.close_session(&open.id_hash).unwrap();
    assert_eq!(s.session(&open.id_hash).unwrap(), None);
}

/// Leases: one holder at a time; the holder renews; a lapsed lease is
/// anyone's; a released one too.
fn leases(s: &dyn Storage) {
    let t = 1_000_000;
    assert!(s.take_lease("nightly", "a", t, t + 100).unwrap());
    assert!(!s.take_lease("nightly", "b", t + 50, t + 150).unwrap());
    assert!(
        s.take_lease("nightly", "a", t + 60, t + 200).unwrap(),
        "renewal"
    );
    assert!(!s.take_lease("nightly", "b", t + 150, t + 250).unwrap());
    assert!(s.take_lease("other-job", "b", t + 150, t + 250).unwrap());
    assert!(
        s.take_lease("nightly", "b", t + 200, t + 300).unwrap(),
        "lapsed"
    );
    s.release_lease("nightly", "a").unwrap(); // not a's any more: no effect
    assert!(!s.take_lease("nightly", "a", t + 210, t + 310).unwrap());
    s.release_lease("nightly", "b").unwrap();
    assert!(s.take_lease("nightly", "a", t + 220, t + 320).unwrap());
}

/// Identity: a user and a token find their principal; a disabled user's
/// token does not.
fn identity(s: &dyn Storage) {
    let u = s
        .create_user(
            "孙",
            Role::Collector,
            Some("甲公司"),
            &["330109001001001".into()],
        )
        .unwrap();
    s.add_user_token(&"e".repeat(64), &u.id).unwrap();
    let p = s.principal(&"e".repeat(64)).unwrap().unwrap();
    assert_eq!((p.user.name.as_str(), p.user.role), ("孙", Role::Collector));
    assert!(s.set_user_disabled(&u.id, true).unwrap());
    assert!(s.principal(&"e".repeat(64)).unwrap().is_none());
    assert!(s.principal(&"f".repeat(64)).unwrap().is_none());
}

fn suite(s: &dyn Storage) {
    sessions(s);
    leases(s);
    identity(s);
}

#[test]
fn sqlite_meets_the_storage_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(&dir.path().join("server")).unwrap();
    suite(&s);
}
