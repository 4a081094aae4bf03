//! The index of a dictionary column under construction ([`Interner`]): which entry number a
//! value already has in this batch. An open-addressing table of entry numbers over the
//! column's own entry data: a lookup hashes the value once and compares it with at most the
//! entries whose hash tag matches; a new entry copies nothing but its bytes into the data,
//! and nothing is allocated per entry.

/// Multiplier of the hash (FxHash's).
const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// Smallest table (slots).
const MIN_SLOTS: usize = 64;

/// Value numbers of one dictionary column; see the module docs.
#[derive(Clone, Debug, Default)]
pub(super) struct Interner {
    /// Per slot: 0 when empty, else the value's hash tag (high 32 bits) and its entry
    /// number + 1 (low 32 bits).
    slots: Vec<u64>,
    /// Entries in the table.
    len: usize,
    /// `64 - log2(slots.len())`: the hash's top bits pick the slot.
    shift: u32,
}

impl Interner {
    /// Forgets every entry (a new batch), keeping the table's memory.
    pub(super) fn clear(&mut self) {
        self.slots.fill(0);
        self.len = 0;
    }

    /// The entry number of `value`, appending it to `offsets` and `data` (the column's
    /// entries: `n + 1` offsets into `data`) when it is new. The entries must be the ones this
    /// interner numbered since it was cleared. Panics when the data passes 4 GiB.
    #[inline]
    pub(super) fn intern(
        &mut self,
        value: &[u8],
        offsets: &mut Vec<u32>,
        data: &mut Vec<u8>,
    ) -> u32 {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow(offsets, data);
        }
        let h = hash(value);
        let tag = h & !0xffff_ffff;
        let mask = self.slots.len() - 1;
        let mut i = (h >> self.shift) as usize;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                let key = (offsets.len() - 1) as u32;
                data.extend_from_slice(value);
                offsets.push(u32::try_from(data.len()).expect("column data under 4 GiB"));
                self.slots[i] = tag | u64::from(key + 1);
                self.len += 1;
                return key;
            }
            if slot & !0xffff_ffff == tag {
                let key = (slot as u32) - 1;
                let (start, end) = (offsets[key as usize], offsets[key as usize + 1]);
                if super::build::bytes_eq(&data[start as usize..end as usize], value) {
                    return key;
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Doubles the table (at least [`MIN_SLOTS`]) and puts every entry back.
    #[cold]
    fn grow(&mut self, offsets: &[u32], data: &[u8]) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        self.slots.clear();
        self.slots.resize(size, 0);
        self.shift = 64 - size.trailing_zeros();
        let mask = size - 1;
        for (key, w) in offsets.windows(2).enumerate() {
            let h = hash(&data[w[0] as usize..w[1] as usize]);
            let mut i = (h >> self.shift) as usize;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (h & !0xffff_ffff) | (key as u64 + 1);
        }
    }
}

/// A 64-bit hash of `bytes`, eight at a time (the tail folded bytewise: a short `memcpy` is a
/// libcall on wasm32); its high bits are the well-mixed ones.
#[inline]
fn hash(bytes: &[u8]) -> u64 {
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let word = u64::from_le_bytes(c.try_into().unwrap_or_default());
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let word = tail.iter().fold(0u64, |w, &x| (w << 8) | u64::from(x));
        h = (h.rotate_left(5) ^ word).wrapping_mul(K);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_an_entry_across_growth_and_clears() {
        let (mut offsets, mut data) = (vec![0u32], Vec::new());
        let mut interner = Interner::default();
        let values: Vec<String> = (0..500).map(|i| format!("station {}", i % 300)).collect();
        for round in 0..2 {
            let keys: Vec<u32> = values
                .iter()
                .map(|v| interner.intern(v.as_bytes(), &mut offsets, &mut data))
                .collect();
            assert_eq!(offsets.len() - 1, 300, "round {round}");
            for (v, &k) in values.iter().zip(&keys) {
                let (a, b) = (
                    offsets[k as usize] as usize,
                    offsets[k as usize + 1] as usize,
                );
                assert_eq!(&data[a..b], v.as_bytes());
            }
            assert_eq!(keys[0], keys[300]);
            interner.clear();
            offsets.truncate(1);
            data.clear();
        }
        // The empty value and values that differ only in length or the tail.
        for v in [
            &b""[..],
            b"\0",
            b"\0\0",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefghi",
        ] {
            interner.intern(v, &mut offsets, &mut data);
        }
        assert_eq!(offsets.len() - 1, 6);
        assert_eq!(interner.intern(b"\0", &mut offsets, &mut data), 1);
    }
}
