//! Interning of byte keys (group keys, turnstile identities) to dense `u32` ids, so the hot
//! path hashes a borrowed slice and allocates only for a key it has never seen; plus the fast
//! non-cryptographic hasher the maps use and the ordering of encoded keys.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub use sluice_plugin_sdk::columns::bytes_eq;

/// The Fx hash (as in rustc): fast, good enough for keys an attacker does not choose freely.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf));
        }
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.add(v);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// A `HashMap` using [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Byte keys ↔ dense ids, in first-seen order.
///
/// Looked up by the key's 64-bit hash, then one comparison with the stored key, eight bytes
/// at a time: cheaper than a map keyed by the bytes, whose comparisons are `memcmp` calls
/// (a byte loop on wasm32). Keys whose hash another key already has go to `collisions`.
#[derive(Default, Debug, Clone)]
pub struct Interner {
    by_hash: FxHashMap<u64, u32>,
    collisions: FxHashMap<Box<[u8]>, u32>,
    keys: Vec<Box<[u8]>>,
}

/// The hash an [`Interner`] files `key` under.
#[inline]
fn key_hash(key: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(key);
    h.write_usize(key.len());
    h.finish()
}

/// Inserts `hash → id` unless `hash` is taken; then returns the id that has it.
fn insert_new(map: &mut FxHashMap<u64, u32>, hash: u64, id: u32) -> Result<(), u32> {
    match map.entry(hash) {
        std::collections::hash_map::Entry::Occupied(e) => Err(*e.get()),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(id);
            Ok(())
        }
    }
}

impl Interner {
    /// The id of `key`, and whether it was new.
    #[inline]
    pub fn intern(&mut self, key: &[u8]) -> (u32, bool) {
        let hash = key_hash(key);
        if let Some(id) = self.lookup(hash, key) {
            return (id, false);
        }
        let id = self.keys.len() as u32;
        self.keys.push(key.into());
        if let Err(taken) = insert_new(&mut self.by_hash, hash, id) {
            debug_assert_ne!(taken, id);
            self.collisions.insert(key.into(), id);
        }
        (id, true)
    }

    /// The id of `key`, if it has one.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<u32> {
        self.lookup(key_hash(key), key)
    }

    #[inline]
    fn lookup(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let id = *self.by_hash.get(&hash)?;
        if bytes_eq(&self.keys[id as usize], key) {
            return Some(id);
        }
        self.collisions.get(key).copied()
    }

    /// The key of `id` (empty if unknown).
    pub fn key(&self, id: u32) -> &[u8] {
        self.keys.get(id as usize).map_or(&[], |k| k)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// All keys, by id.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.keys.iter().map(|k| &**k)
    }
}

/// Whether `key` is made of row-encoded `str` fields (`u32` length + UTF-8 bytes each).
pub fn is_text_key(key: &[u8]) -> bool {
    let mut r = sluice_plugin_sdk::RowReader::new(key);
    while r.remaining() > 0 {
        if r.str().is_err() {
            return false;
        }
    }
    true
}

/// Orders two keys made of row-encoded `str` fields (`u32` length + bytes each) as the tuples
/// of their strings, so `("A", "Z") < ("AB", "A")`.
pub fn cmp_encoded_keys(a: &[u8], b: &[u8]) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (split_field(a), split_field(b)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((fa, ra)), Some((fb, rb))) => match fa.cmp(fb) {
                Ordering::Equal => (a, b) = (ra, rb),
                other => return other,
            },
        }
    }
}

/// The first length-prefixed field of `key` and the rest; the whole (malformed) remainder as
/// one field if the length is wrong.
fn split_field(key: &[u8]) -> Option<(&[u8], &[u8])> {
    if key.is_empty() {
        return None;
    }
    let len = key.get(..4).map_or(usize::MAX, |l| {
        u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize
    });
    match key
        .get(4..)
        .and_then(|rest| rest.get(..len).map(|f| (f, &rest[len..])))
    {
        Some(split) => Some(split),
        None => Some((key, &[])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn enc(fields: &[&str]) -> Vec<u8> {
        let mut b = sluice_plugin_sdk::BatchBuilder::new();
        fields.iter().for_each(|f| b.put_str(f));
        b.data
    }

    #[test]
    fn interns_in_first_seen_order() {
        let mut i = Interner::default();
        assert_eq!(i.intern(b"b"), (0, true));
        assert_eq!(i.intern(b"a"), (1, true));
        assert_eq!(i.intern(b"b"), (0, false));
        assert_eq!((i.len(), i.key(1), i.key(9)), (2, &b"a"[..], &b""[..]));
        assert_eq!(i.keys().collect::<Vec<_>>(), vec![&b"b"[..], b"a"]);
        assert!(!i.is_empty());
        assert_eq!((i.get(b"a"), i.get(b"c")), (Some(1), None));
    }

    #[test]
    fn orders_keys_as_string_tuples() {
        let k = |f: &[&str]| enc(f);
        assert_eq!(
            cmp_encoded_keys(&k(&["A", "Z"]), &k(&["AB", "A"])),
            Ordering::Less
        );
        assert_eq!(cmp_encoded_keys(&k(&["B"]), &k(&["AB"])), Ordering::Greater);
        assert_eq!(
            cmp_encoded_keys(&k(&["A", "B"]), &k(&["A", "B"])),
            Ordering::Equal
        );
        assert_eq!(cmp_encoded_keys(&k(&["A"]), &k(&["A", ""])), Ordering::Less);
        assert_eq!(cmp_encoded_keys(&[9, 9], &k(&["A"])), Ordering::Less);
    }

    #[test]
    fn hash_collisions_fall_back_to_the_key() {
        let mut i = Interner::default();
        assert_eq!(i.intern(b"first"), (0, true));
        // Pretend "second" hashes like "first".
        let first = *i.by_hash.get(&key_hash(b"first")).unwrap();
        i.by_hash.insert(key_hash(b"second"), first);
        assert_eq!(i.intern(b"second"), (1, true));
        assert_eq!(i.intern(b"second"), (1, false));
        assert_eq!(
            (i.get(b"first"), i.get(b"second"), i.get(b"third")),
            (Some(0), Some(1), None)
        );
    }

    #[test]
    fn bytes_eq_compares_every_byte() {
        let a = b"0123456789abcdefXYZ";
        for len in 0..a.len() {
            assert!(bytes_eq(&a[..len], &a[..len]));
            for i in 0..len {
                let mut b = a[..len].to_vec();
                b[i] ^= 1;
                assert!(!bytes_eq(&a[..len], &b), "len {len}, byte {i}");
            }
        }
        assert!(!bytes_eq(b"ab", b"abc"));
    }

    #[test]
    fn text_keys() {
        assert!(is_text_key(&enc(&["59 ST", "é"])));
        assert!(is_text_key(&[]));
        assert!(!is_text_key(&[2, 0, 0, 0, 0xc3, 0x28]));
        assert!(!is_text_key(&[9, 0, 0, 0, b'a']));
    }

    #[test]
    fn hasher_tells_keys_apart() {
        let h = BuildHasherDefault::<FxHasher>::default();
        assert_ne!(h.hash_one(&b"R051"[..]), h.hash_one(&b"R052"[..]));
        assert_ne!(
            h.hash_one(&b"0123456789"[..]),
            h.hash_one(&b"0123456788"[..])
        );
        assert_eq!(h.hash_one(7u32), h.hash_one(7u32));
    }
}
