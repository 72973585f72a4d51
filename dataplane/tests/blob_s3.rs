//! The S3 blob store against a real S3-compatible server: moto's server mode, started by
//! `e2e/services/s3.sh` (which exports `MCP_TEST_S3_ENDPOINT`, `MCP_TEST_S3_BUCKET`,
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, and enforces credentials). Every test uses
//! a fresh key prefix. Without the variables the tests pass with a notice, unless
//! `MCP_REQUIRE_S3=1` (as in `e2e/run-tests.sh`).

use std::collections::HashSet;
use std::time::Duration;

use mcp_dataplane::store::blob::{MULTIPART_THRESHOLD, PART_SIZE, S3BlobStore};
use mcp_dataplane::store::{BlobError, BlobId, BlobLocation, BlobStore, S3Settings};

/// Settings for the test server with a fresh prefix; `None` (with a notice) without one.
fn settings() -> Option<S3Settings> {
    let Ok(endpoint) = std::env::var("MCP_TEST_S3_ENDPOINT") else {
        if std::env::var("MCP_REQUIRE_S3").as_deref() == Ok("1") {
            panic!("MCP_REQUIRE_S3=1 but MCP_TEST_S3_ENDPOINT is not set");
        }
        eprintln!("S3 tests skipped: run `eval \"$(bash e2e/services/s3.sh start)\"` first");
        return None;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    Some(S3Settings {
        bucket: var("MCP_TEST_S3_BUCKET"),
        prefix: format!("rust-{:016x}/", rand::random::<u64>()),
        endpoint: Some(endpoint),
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned()),
        force_path_style: true,
        access_key_id: var("AWS_ACCESS_KEY_ID"),
        secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
        cache_bytes: mcp_dataplane::store::DEFAULT_CACHE_BYTES,
    })
}

async fn store(s: &S3Settings) -> BlobStore {
    BlobStore::open_at(&BlobLocation::S3(s.clone()))
        .await
        .expect("connect to the test S3 server")
}

/// A body of `len` octets that is not periodic at part boundaries.
fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 13)) as u8 ^ seed)
        .collect()
}

#[tokio::test]
async fn put_get_range_exists_delete() {
    let Some(s) = settings() else { return };
    let blobs = store(&s).await;
    let data = b"From: a@example.com\r\nSubject: s3\r\n\r\nHello, S3.\r\n";
    let id = blobs.put(data).await.expect("put");
    assert_eq!(id, BlobId::of(data));
    assert_eq!(blobs.put(data).await.expect("put again"), id, "idempotent");
    assert_eq!(blobs.get(&id).await.expect("get").as_ref(), data);
    assert!(blobs.exists(&id).await.expect("exists"));

    let n = data.len() as u64;
    // (start, len, expected octets): partial FETCH semantics, RFC 9051 §6.4.5.
    let ranges: &[(u64, u64, &[u8])] = &[
        (0, 4, b"From"),
        (6, 13, b"a@example.com"),
        (n - 3, 10, b".\r\n"),
        (n - 1, 1, b"\n"),
        (n, 5, b""),
        (n + 100, 1, b""),
        (0, 0, b""),
        (3, u64::MAX, &data[3..]),
        (u64::MAX - 1, u64::MAX, b""),
    ];
    for &(start, len, want) in ranges {
        let got = blobs.get_range(&id, start, len).await.expect("range");
        assert_eq!(got.as_ref(), want, "range {start}+{len}");
    }

    let missing = BlobId::of(b"never stored");
    let bogus = BlobId("../../etc/passwd".into());
    for bad in [&missing, &bogus] {
        assert!(matches!(blobs.get(bad).await, Err(BlobError::NotFound(_))));
        assert!(matches!(
            blobs.get_range(bad, 0, 10).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(matches!(
            blobs.get_range(bad, 0, 0).await,
            Err(BlobError::NotFound(_))
        ));
        assert!(!blobs.exists(bad).await.expect("exists"));
        assert!(matches!(
            blobs.delete(bad).await,
            Err(BlobError::NotFound(_))
        ));
    }

    blobs.delete(&id).await.expect("delete");
    assert!(!blobs.exists(&id).await.expect("exists"));
    assert!(matches!(blobs.get(&id).await, Err(BlobError::NotFound(_))));

    let empty = blobs.put(b"").await.expect("empty body");
    assert!(blobs.get(&empty).await.expect("get").is_empty());
    assert!(
        blobs
            .get_range(&empty, 0, 10)
            .await
            .expect("range")
            .is_empty()
    );
}

/// The body cache: what was written or read is served from memory (proved by deleting
/// the object behind the store's back), ranged reads included; a body deleted through the
/// store is forgotten; `cache_bytes: 0` reads S3 every time.
#[tokio::test]
async fn bodies_are_served_from_the_cache_unless_it_is_off() {
    let Some(good) = settings() else { return };
    for cache_bytes in [mcp_dataplane::store::DEFAULT_CACHE_BYTES, 0] {
        let s = S3Settings {
            cache_bytes,
            ..good.clone()
        };
        let store = S3BlobStore::connect(&s).await.expect("connect");
        let written = body(10_000, 7);
        let id = store.put(&written).await.expect("put");
        let raw = store.client().clone();
        let drop_object = || {
            raw.delete_object()
                .bucket(store.bucket())
                .key(store.key(&id))
                .send()
        };
        drop_object().await.expect("delete behind the store's back");
        let whole = store.get(&id).await;
        let part = store.get_range(&id, 100, 50).await;
        if cache_bytes > 0 {
            assert_eq!(whole.expect("cached").as_ref(), &written[..]);
            assert_eq!(part.expect("cached").as_ref(), &written[100..150]);
        } else {
            assert!(matches!(whole, Err(BlobError::NotFound(_))), "{whole:?}");
            assert!(matches!(part, Err(BlobError::NotFound(_))), "{part:?}");
        }
        // Read-through: a body found in S3 is cached by the read.
        let read = body(5_000, 9);
        let other = S3BlobStore::connect(&s).await.expect("connect");
        let rid = other.put(&read).await.expect("put");
        assert_eq!(store.get(&rid).await.expect("get").as_ref(), &read[..]);
        other.delete(&rid).await.expect("delete");
        let again = store.get(&rid).await;
        assert_eq!(again.is_ok(), cache_bytes > 0, "{again:?}");
        // Deleting through the store forgets the body.
        let id2 = store.put(&body(300, 3)).await.expect("put");
        store.delete(&id2).await.expect("delete");
        assert!(matches!(store.get(&id2).await, Err(BlobError::NotFound(_))));
    }
}

#[tokio::test]
async fn a_body_above_the_threshold_is_a_multipart_upload() {
    let Some(s) = settings() else { return };
    let blobs = store(&s).await;
    let data = body(MULTIPART_THRESHOLD + PART_SIZE / 2 + 12_345, 7);
    let id = blobs.put(&data).await.expect("put multipart");
    assert_eq!(id, BlobId::of(&data));
    assert_eq!(blobs.get(&id).await.expect("get").as_ref(), data.as_slice());

    // Across the part boundary.
    let start = PART_SIZE as u64 - 100;
    let got = blobs.get_range(&id, start, 200).await.expect("range");
    assert_eq!(got.as_ref(), &data[PART_SIZE - 100..PART_SIZE + 100]);

    // A multipart object's ETag ends in -<parts>.
    let direct = S3BlobStore::new(&s).expect("client");
    let head = direct
        .client()
        .head_object()
        .bucket(direct.bucket())
        .key(direct.key(&id))
        .send()
        .await
        .expect("head");
    assert_eq!(head.content_length(), Some(data.len() as i64));
    let etag = head.e_tag().unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-2"), "ETag {etag}");

    // Again: idempotent, the body is unchanged and no upload is left open.
    assert_eq!(blobs.put(&data).await.expect("put again"), id);
    let uploads = direct
        .client()
        .list_multipart_uploads()
        .bucket(direct.bucket())
        .prefix(&s.prefix)
        .send()
        .await
        .expect("list uploads");
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
}

#[tokio::test]
async fn orphan_collection_keeps_referenced_and_young_blobs() {
    let Some(s) = settings() else { return };
    let blobs = store(&s).await;
    let kept = blobs.put(b"referenced").await.expect("put");
    let orphan = blobs.put(b"orphan").await.expect("put");
    let direct = S3BlobStore::new(&s).expect("client");
    // Not blobs: other objects under the prefix, and a blob name under a sub-prefix.
    for key in [
        format!("{}notes.txt", s.prefix),
        format!("{}sub/{}", s.prefix, orphan.0),
    ] {
        direct
            .client()
            .put_object()
            .bucket(direct.bucket())
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
            .send()
            .await
            .expect("put other");
    }
    // An upload a crashed writer left behind.
    direct
        .client()
        .create_multipart_upload()
        .bucket(direct.bucket())
        .key(format!("{}{}", s.prefix, BlobId::of(b"crashed").0))
        .send()
        .await
        .expect("create upload");

    let referenced: HashSet<BlobId> = [kept.clone()].into();
    // Young orphans survive: their message may not be committed yet.
    let n = blobs
        .collect_orphans(&referenced, Duration::from_secs(3600))
        .await
        .expect("collect");
    assert_eq!(n, 0);
    assert!(blobs.exists(&orphan).await.expect("exists"));
    let open_uploads = || async {
        direct
            .client()
            .list_multipart_uploads()
            .bucket(direct.bucket())
            .prefix(&s.prefix)
            .send()
            .await
            .expect("list uploads")
            .uploads()
            .len()
    };
    // (Whether a young upload is kept cannot be checked here: moto reports every upload's
    // Initiated as a fixed date in 2010.)

    let n = blobs
        .collect_orphans(&referenced, Duration::ZERO)
        .await
        .expect("collect");
    assert_eq!(n, 1);
    assert!(!blobs.exists(&orphan).await.expect("exists"));
    assert!(blobs.exists(&kept).await.expect("exists"));
    assert_eq!(open_uploads().await, 0, "the stale upload is aborted");
    let listed = direct
        .client()
        .list_objects_v2()
        .bucket(direct.bucket())
        .prefix(&s.prefix)
        .send()
        .await
        .expect("list");
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort_unstable();
    let mut want = vec![
        format!("{}{}", s.prefix, kept.0),
        format!("{}notes.txt", s.prefix),
        format!("{}sub/{}", s.prefix, orphan.0),
    ];
    want.sort_unstable();
    assert_eq!(keys, want, "only the orphan blob is gone");
}

#[tokio::test]
async fn wrong_bucket_or_credentials_are_typed_errors_without_the_secret() {
    let Some(good) = settings() else { return };
    // (settings, what connect must say, what a PUT must say): S3 codes.
    let cases: Vec<(S3Settings, &str, Option<&str>)> = vec![
        (
            S3Settings {
                bucket: format!("no-such-bucket-{:08x}", rand::random::<u32>()),
                ..good.clone()
            },
            "NoSuchBucket",
            Some("NoSuchBucket"),
        ),
        (
            S3Settings {
                secret_access_key: "wrong-secret-value".into(),
                ..good.clone()
            },
            "AccessDenied",
            Some("SignatureDoesNotMatch"),
        ),
        (
            S3Settings {
                access_key_id: "AKIANOSUCHKEY0000000".into(),
                secret_access_key: "wrong-secret-value".into(),
                ..good.clone()
            },
            "AccessDenied",
            Some("InvalidAccessKeyId"),
        ),
    ];
    for (s, connect_code, put_code) in cases {
        let e = BlobStore::open_at(&BlobLocation::S3(s.clone()))
            .await
            .expect_err("connect must fail");
        assert_eq!(e.s3_code(), Some(connect_code), "{e}");
        let text = e.to_string();
        assert!(text.contains("HeadBucket"), "{text}");
        assert!(!text.contains("wrong-secret-value"), "{text}");
        assert!(!text.contains(&good.secret_access_key), "{text}");

        let unchecked = BlobStore::S3(S3BlobStore::new(&s).expect("client"));
        let e = unchecked.put(b"body").await.expect_err("put must fail");
        assert_eq!(e.s3_code(), put_code, "{e}");
        assert!(
            matches!(
                e,
                BlobError::S3 {
                    op: "PutObject",
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(!text.contains("wrong-secret-value"), "{text}");
        assert!(!text.contains(&good.secret_access_key), "{text}");
        // A read is an error too, not a missing blob.
        let e = unchecked.get(&BlobId::of(b"body")).await.expect_err("get");
        assert!(
            matches!(
                e,
                BlobError::S3 {
                    op: "GetObject",
                    ..
                }
            ),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_an_error_without_a_status() {
    let Some(good) = settings() else { return };
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let s = S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..good
    };
    let e = BlobStore::open_at(&BlobLocation::S3(s))
        .await
        .expect_err("connect must fail");
    match &e {
        BlobError::S3 { status, code, .. } => {
            assert_eq!((*status, code.as_deref()), (None, None), "{e}")
        }
        other => panic!("not an S3 error: {other:?}"),
    }
}

#[tokio::test]
async fn invalid_settings_fail_before_any_request() {
    let Some(good) = settings() else { return };
    let s = S3Settings {
        bucket: "Not_A_Bucket".into(),
        ..good
    };
    let e = BlobStore::open_at(&BlobLocation::S3(s))
        .await
        .expect_err("invalid");
    assert!(
        matches!(e, BlobError::Settings(ref s) if s.field == "bucket"),
        "{e:?}"
    );
}
