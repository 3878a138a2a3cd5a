//! Sets of security identities: bitsets while compiling, then sparse or dense for lookups.

/// A fixed-size bitset over `n` identities (compile time only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Bits {
    words: Vec<u64>,
    n: usize,
}

impl Bits {
    pub fn empty(n: usize) -> Bits {
        Bits { words: vec![0; n.div_ceil(64)], n }
    }

    pub fn full(n: usize) -> Bits {
        let mut b = Bits { words: vec![u64::MAX; n.div_ceil(64)], n };
        b.trim();
        b
    }

    fn trim(&mut self) {
        let extra = self.words.len() * 64 - self.n;
        if extra > 0
            && let Some(last) = self.words.last_mut()
        {
            *last &= u64::MAX >> extra;
        }
    }

    pub fn set(&mut self, i: u32) {
        if let Some(w) = self.words.get_mut(i as usize / 64) {
            *w |= 1 << (i % 64);
        }
    }

    #[cfg(test)]
    pub fn get(&self, i: u32) -> bool {
        self.words.get(i as usize / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    pub fn and(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a &= b;
        }
    }

    pub fn or(&mut self, o: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&o.words) {
            *a |= b;
        }
    }

    pub fn not(&mut self) {
        for w in &mut self.words {
            *w = !*w;
        }
        self.trim();
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let t = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + t)
            })
        })
    }
}

/// A set of identities as stored in a snapshot: a sorted list when sparse, a bitset when
/// dense. Membership is a binary search or a bit test; neither allocates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IdSet {
    /// Sorted identity ids.
    Sparse(Box<[u32]>),
    /// One bit per identity.
    Dense(Box<[u64]>),
}

impl IdSet {
    pub fn from_bits(b: &Bits) -> IdSet {
        let count = b.count();
        // A sorted u32 list costs 32 bits per member; the bitset one bit per identity.
        if count * 32 < b.n.max(64) {
            IdSet::Sparse(b.iter().collect())
        } else {
            IdSet::Dense(b.words.clone().into_boxed_slice())
        }
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        match self {
            IdSet::Sparse(v) => {
                if v.len() <= 8 {
                    v.contains(&id)
                } else {
                    v.binary_search(&id).is_ok()
                }
            }
            IdSet::Dense(w) => w.get(id as usize / 64).is_some_and(|w| w >> (id % 64) & 1 == 1),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match self {
            IdSet::Sparse(v) => v.len(),
            IdSet::Dense(w) => w.iter().map(|w| w.count_ones() as usize).sum(),
        }
    }

    /// The members, ascending (compile time).
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let (sparse, dense): (&[u32], &[u64]) = match self {
            IdSet::Sparse(v) => (v, &[]),
            IdSet::Dense(w) => (&[], w),
        };
        sparse.iter().copied().chain(dense.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let t = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + t)
            })
        }))
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            IdSet::Sparse(v) => v.len() * 4,
            IdSet::Dense(w) => w.len() * 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_algebra() {
        let mut a = Bits::empty(130);
        a.set(0);
        a.set(129);
        let mut b = a.clone();
        b.not();
        assert_eq!(b.count(), 128);
        assert!(!b.get(0) && b.get(1) && !b.get(129));
        b.or(&a);
        assert_eq!(b, Bits::full(130));
        b.and(&a);
        assert_eq!(b.iter().collect::<Vec<_>>(), [0, 129]);
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut b = Bits::empty(1000);
        for i in (0..1000).step_by(3) {
            b.set(i);
        }
        let dense = IdSet::from_bits(&b);
        assert!(matches!(dense, IdSet::Dense(_)));
        let sparse = IdSet::Sparse(b.iter().collect());
        assert_eq!(dense.iter().collect::<Vec<_>>(), sparse.iter().collect::<Vec<_>>());
        assert_eq!(dense.len(), 334);
        assert_eq!(sparse.len(), 334);
        for i in 0..1000 {
            assert_eq!(dense.contains(i), sparse.contains(i));
            assert_eq!(dense.contains(i), i % 3 == 0);
        }
        let mut few = Bits::empty(1000);
        few.set(7);
        assert!(matches!(IdSet::from_bits(&few), IdSet::Sparse(_)));
    }
}
