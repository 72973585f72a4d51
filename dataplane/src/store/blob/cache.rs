//! A bounded in-memory cache of message bodies, in front of a remote blob store (S3).
//!
//! Blobs are content-addressed and never change, so a cached body is never stale: no
//! invalidation is needed between replicas, and a body deleted by another replica's orphan
//! collection is one no message references any more. Each replica keeps its own cache.
//!
//! Bodies enter on upload (a message just appended or delivered is the likeliest to be
//! fetched next: a client's header FETCH of its new mail) and on a whole-body read; ranged
//! reads are served from a cached body when there is one, and are not cached themselves.
//! Bodies larger than an eighth of the capacity are not cached, so one large attachment
//! cannot evict the working set. Eviction is quick_cache's CLOCK-Pro by weight (octets).

use bytes::Bytes;
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::BlobId;

/// Default capacity of the body cache of an S3 blob store: 64 MiB.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Bookkeeping octets counted per entry on top of the body (key, entry), so that many tiny
/// bodies cannot exceed the capacity by much.
const ENTRY_OVERHEAD: u64 = 128;

/// Weight of an entry: its body's length plus [`ENTRY_OVERHEAD`].
#[derive(Clone, Copy, Debug)]
struct Octets;

impl Weighter<BlobId, Bytes> for Octets {
    fn weight(&self, _id: &BlobId, body: &Bytes) -> u64 {
        body.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Bodies by address, at most `capacity` octets in all. Shared by the clones of a store.
pub struct BodyCache {
    bodies: Cache<BlobId, Bytes, Octets>,
    capacity: u64,
    max_body: usize,
}

impl std::fmt::Debug for BodyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyCache")
            .field("capacity", &self.capacity)
            .field("cached_octets", &self.bodies.weight())
            .field("bodies", &self.bodies.len())
            .finish()
    }
}

impl BodyCache {
    /// A cache of at most `capacity` octets; `None` when `capacity` is 0 (no cache).
    pub fn new(capacity: u64) -> Option<Self> {
        if capacity == 0 {
            return None;
        }
        // quick_cache sizes its tables from an estimated entry count: assume 16 KiB bodies.
        let estimated = usize::try_from(capacity / (16 * 1024))
            .unwrap_or(usize::MAX)
            .max(16);
        Some(BodyCache {
            bodies: Cache::with_weighter(estimated, capacity, Octets),
            capacity,
            max_body: usize::try_from(capacity / 8).unwrap_or(usize::MAX),
        })
    }

    /// The cached body of `id`.
    pub fn get(&self, id: &BlobId) -> Option<Bytes> {
        self.bodies.get(id)
    }

    /// At most `len` octets of the cached body of `id` from octet `start` (fewer when the
    /// body ends first, none past its end), as [`super::BlobStore::get_range`] answers;
    /// `None` when the body is not cached.
    pub fn get_range(&self, id: &BlobId, start: u64, len: u64) -> Option<Bytes> {
        let body = self.bodies.get(id)?;
        let from = usize::try_from(start).unwrap_or(usize::MAX).min(body.len());
        let to = from
            .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
            .min(body.len());
        Some(body.slice(from..to))
    }

    /// Caches `body` as the body of `id` (its SHA-256, which the caller has checked or
    /// computed), unless it is larger than an eighth of the capacity.
    pub fn insert(&self, id: &BlobId, body: &Bytes) {
        if body.len() <= self.max_body {
            self.bodies.insert(id.clone(), body.clone());
        }
    }

    /// Forgets the body of `id` (it was deleted here).
    pub fn remove(&self, id: &BlobId) {
        self.bodies.remove(id);
    }

    /// Octets held now (bodies plus bookkeeping), at most the capacity.
    pub fn weight(&self) -> u64 {
        self.bodies.weight()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize, fill: u8) -> (BlobId, Bytes) {
        let b = Bytes::from(vec![fill; n]);
        (BlobId::of(&b), b)
    }

    #[test]
    fn zero_capacity_is_no_cache() {
        assert!(BodyCache::new(0).is_none());
    }

    #[test]
    fn a_cached_body_is_served_whole_and_by_range() {
        let c = BodyCache::new(1 << 20).expect("cache");
        let b = Bytes::from_static(b"Subject: x\r\n\r\nhello");
        let id = BlobId::of(&b);
        assert_eq!(c.get(&id), None);
        assert_eq!(c.get_range(&id, 0, 4), None);
        c.insert(&id, &b);
        assert_eq!(c.get(&id).as_deref(), Some(&b[..]));
        // (start, len) -> expected slice, as BlobStore::get_range answers.
        for (start, len, want) in [
            (0, 7, &b"Subject"[..]),
            (14, 100, b"hello"),
            (19, 1, b""),
            (400, 1, b""),
            (0, 0, b""),
            (2, u64::MAX, &b[2..]),
            (u64::MAX, 1, b""),
        ] {
            assert_eq!(
                c.get_range(&id, start, len).as_deref(),
                Some(want),
                "{start} {len}"
            );
        }
        c.remove(&id);
        assert_eq!(c.get(&id), None);
    }

    #[test]
    fn bodies_above_an_eighth_of_the_capacity_are_not_cached() {
        let c = BodyCache::new(8 * 1024).expect("cache");
        let (small, sb) = body(1000, 1);
        let (big, bb) = body(1025, 2);
        c.insert(&small, &sb);
        c.insert(&big, &bb);
        assert!(c.get(&small).is_some());
        assert!(c.get(&big).is_none());
    }

    #[test]
    fn the_capacity_bounds_what_is_held() {
        let cap = 64 * 1024;
        let c = BodyCache::new(cap).expect("cache");
        for i in 0..200u8 {
            let (id, b) = body(4000, i);
            c.insert(&id, &b);
            assert!(c.weight() <= cap, "weight {} after {i}", c.weight());
        }
        assert!(
            c.weight() > cap / 2,
            "the cache holds something: {}",
            c.weight()
        );
    }
}
