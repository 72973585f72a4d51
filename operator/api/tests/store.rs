//! The `api_keys` store and the bootstrap key, on SQLite and PostgreSQL.

mod common;

use common::Db;
use mcp_api::auth::Role;
use mcp_api::auth::key::ApiKey;
use mcp_api::bootstrap::{Bootstrap, BootstrapError, ensure_admin};
use mcp_api::store::{ApiKeyPatch, NewApiKey, StoreError};

fn new_key(name: &str, role: Role, expires_at: Option<i64>) -> (ApiKey, NewApiKey) {
    let key = ApiKey::generate().expect("rng");
    let new = NewApiKey {
        name: name.to_owned(),
        prefix: key.prefix().to_owned(),
        hash: key.hash(),
        role,
        expires_at,
    };
    (key, new)
}

async fn insert_list_get_update_delete(db: &Db) {
    let s = &db.store;
    let (admin_key, admin) = new_key("admin-1", Role::Admin, None);
    let (_, t1) = new_key("t1-ci", Role::TenantAdmin("t1".into()), Some(2_000_000_000));
    let (_, viewer) = new_key("viewer", Role::Viewer, None);
    let a = s.insert(&admin, 1_000).await.expect("insert admin");
    let b = s.insert(&t1, 1_001).await.expect("insert t1");
    let c = s.insert(&viewer, 1_002).await.expect("insert viewer");
    assert!(a.id < b.id && b.id < c.id);
    assert_eq!(a.role, Role::Admin);
    assert!(a.active);
    assert_eq!(a.created_at, 1_000);
    assert_eq!(a.last_used_at, None);
    assert_eq!(b.role, Role::TenantAdmin("t1".into()));
    assert_eq!(b.expires_at, Some(2_000_000_000));

    let all = s.list(None).await.expect("list");
    assert_eq!(
        all.iter().map(|r| r.id).collect::<Vec<_>>(),
        [a.id, b.id, c.id]
    );
    let of_t1 = s.list(Some("t1")).await.expect("list t1");
    assert_eq!(of_t1, vec![b.clone()]);
    assert!(s.list(Some("t2")).await.expect("list t2").is_empty());

    let found = s
        .by_prefix(admin_key.prefix())
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found, a);
    assert!(found.hash.matches(&admin_key));
    assert_eq!(s.get(c.id).await.expect("get"), Some(c.clone()));
    assert_eq!(s.get(9_999).await.expect("get"), None);
    assert_eq!(s.by_prefix("zzzzzzzz").await.expect("lookup"), None);

    // Unique name and prefix.
    let (_, dup_name) = new_key("admin-1", Role::Viewer, None);
    assert!(matches!(
        s.insert(&dup_name, 5).await,
        Err(StoreError::Conflict("name"))
    ));
    let mut dup_prefix = new_key("other", Role::Viewer, None).1;
    dup_prefix.prefix = a.prefix.clone();
    assert!(matches!(
        s.insert(&dup_prefix, 5).await,
        Err(StoreError::Conflict("prefix"))
    ));

    // Patch: each field alone, expiry removed with Some(None).
    let p = s
        .update(
            b.id,
            &ApiKeyPatch {
                active: Some(false),
                ..Default::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert!(!p.active);
    assert_eq!(p.name, "t1-ci");
    assert_eq!(p.expires_at, Some(2_000_000_000));
    let p = s
        .update(
            b.id,
            &ApiKeyPatch {
                name: Some("t1-deploy".into()),
                expires_at: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(
        (p.name.as_str(), p.active, p.expires_at),
        ("t1-deploy", false, None)
    );
    let p = s
        .update(
            b.id,
            &ApiKeyPatch {
                expires_at: Some(Some(3_000)),
                ..Default::default()
            },
        )
        .await
        .expect("update")
        .expect("exists");
    assert_eq!(p.expires_at, Some(3_000));
    assert!(matches!(
        s.update(
            b.id,
            &ApiKeyPatch {
                name: Some("viewer".into()),
                ..Default::default()
            }
        )
        .await,
        Err(StoreError::Conflict("name"))
    ));
    assert_eq!(
        s.update(9_999, &ApiKeyPatch::default())
            .await
            .expect("update"),
        None
    );

    assert!(s.delete(c.id).await.expect("delete"));
    assert!(!s.delete(c.id).await.expect("delete again"));
    assert_eq!(s.get(c.id).await.expect("get"), None);
    // Ids are not reused.
    let (_, again) = new_key("viewer", Role::Viewer, None);
    assert!(s.insert(&again, 6).await.expect("insert").id > c.id);
}

async fn last_use_is_written_at_most_once_a_minute(db: &Db) {
    let s = &db.store;
    let (_, k) = new_key("k", Role::Viewer, None);
    let r = s.insert(&k, 100).await.expect("insert");
    assert!(s.touch(r.id, 1_000, 60).await.expect("touch"));
    assert!(
        !s.touch(r.id, 1_030, 60).await.expect("touch"),
        "within the minute"
    );
    assert!(
        !s.touch(r.id, 1_059, 60).await.expect("touch"),
        "within the minute"
    );
    assert_eq!(
        s.get(r.id).await.expect("get").expect("row").last_used_at,
        Some(1_000)
    );
    assert!(s.touch(r.id, 1_060, 60).await.expect("touch"));
    assert_eq!(
        s.get(r.id).await.expect("get").expect("row").last_used_at,
        Some(1_060)
    );
}

async fn usable_admin_means_active_and_unexpired(db: &Db) {
    let s = &db.store;
    let now = mcp_api::store::now_secs();
    assert!(!s.has_usable_admin(now).await.expect("query"));
    let (_, v) = new_key("viewer", Role::Viewer, None);
    s.insert(&v, now).await.expect("insert");
    assert!(
        !s.has_usable_admin(now).await.expect("query"),
        "a viewer is no admin"
    );
    let (_, expired) = new_key("expired", Role::Admin, Some(now - 1));
    s.insert(&expired, now - 100).await.expect("insert");
    assert!(!s.has_usable_admin(now).await.expect("query"), "expired");
    let (_, inactive) = new_key("inactive", Role::Admin, None);
    let r = s.insert(&inactive, now).await.expect("insert");
    s.update(
        r.id,
        &ApiKeyPatch {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("update");
    assert!(!s.has_usable_admin(now).await.expect("query"), "inactive");
    assert!(!r.usable_at(now) || r.active);
    let (_, good) = new_key("good", Role::Admin, Some(now + 3_600));
    s.insert(&good, now).await.expect("insert");
    assert!(s.has_usable_admin(now).await.expect("query"));
}

async fn bootstrap_generates_once_then_leaves_alone(db: &Db) {
    let s = &db.store;
    let Bootstrap::Generated(key) = ensure_admin(s, None).await.expect("bootstrap") else {
        panic!("expected a generated key");
    };
    let r = s
        .by_prefix(key.prefix())
        .await
        .expect("lookup")
        .expect("stored");
    assert_eq!(r.role, Role::Admin);
    assert!(r.hash.matches(&key));
    assert_eq!(
        ensure_admin(s, None).await.expect("again"),
        Bootstrap::Present
    );
    // Deactivating the only admin key: the next start generates a new one.
    s.update(
        r.id,
        &ApiKeyPatch {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .expect("deactivate");
    assert!(
        matches!(ensure_admin(s, None).await.expect("recover"), Bootstrap::Generated(k) if k != key)
    );
}

#[cfg(unix)]
async fn bootstrap_from_file(db: &Db) {
    use std::os::unix::fs::PermissionsExt;
    let s = &db.store;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("key");
    let key = ApiKey::generate().expect("rng");
    std::fs::write(&file, format!("{}\n", key.expose())).expect("write");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = ensure_admin(s, Some(&file))
        .await
        .expect_err("world-readable");
    assert!(
        matches!(e, BootstrapError::WorldAccessible { mode: 0o644, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("chmod 600"), "{e}");
    assert!(!e.to_string().contains(key.expose()));
    assert!(
        s.list(None).await.expect("list").is_empty(),
        "nothing changed"
    );

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let prefix = key.prefix().to_owned();
    assert_eq!(
        ensure_admin(s, Some(&file)).await.expect("from file"),
        Bootstrap::FromFile {
            prefix: prefix.clone(),
            inserted: true
        }
    );
    assert_eq!(
        ensure_admin(s, Some(&file)).await.expect("again"),
        Bootstrap::FromFile {
            prefix: prefix.clone(),
            inserted: false
        }
    );
    let r = s.by_prefix(&prefix).await.expect("lookup").expect("stored");
    assert!(r.hash.matches(&key) && r.role == Role::Admin);

    // Same prefix, other secret: refused.
    let other = ApiKey::generate().expect("rng");
    let forged = format!("mcp_{prefix}_{}", &other.expose()[13..]);
    std::fs::write(&file, &forged).expect("write");
    let e = ensure_admin(s, Some(&file))
        .await
        .expect_err("prefix taken");
    assert!(matches!(e, BootstrapError::PrefixTaken { .. }), "{e}");

    for garbage in ["", "not a key", "mcp_short_x"] {
        std::fs::write(&file, garbage).expect("write");
        let e = ensure_admin(s, Some(&file)).await.expect_err(garbage);
        assert!(matches!(e, BootstrapError::Format { .. }), "{e}");
    }
    let e = ensure_admin(s, Some(&dir.path().join("missing")))
        .await
        .expect_err("missing");
    assert!(matches!(e, BootstrapError::Read { .. }), "{e}");
}

both_backends!(
    insert_list_get_update_delete,
    last_use_is_written_at_most_once_a_minute,
    usable_admin_means_active_and_unexpired,
    bootstrap_generates_once_then_leaves_alone,
    bootstrap_from_file,
);
