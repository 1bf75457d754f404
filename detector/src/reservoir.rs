//! Bounded sample stores: a ring of the most recent items, and a uniform reservoir of one tick.

use super::hash::Rng;

/// The last `capacity` items pushed (older ones are overwritten).
#[derive(Clone, Debug)]
pub(crate) struct Ring<T> {
    capacity: usize,
    items: Vec<T>,
    next: usize,
}

impl<T> Ring<T> {
    pub(crate) fn new(capacity: usize) -> Ring<T> {
        Ring {
            capacity: capacity.max(1),
            items: Vec::new(),
            next: 0,
        }
    }

    pub(crate) fn push(&mut self, item: T) {
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else {
            self.items[self.next] = item;
        }
        self.next = (self.next + 1) % self.capacity;
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// The items in no particular order.
    pub(crate) fn as_slice(&self) -> &[T] {
        &self.items
    }

    /// The items, oldest first.
    #[cfg(test)]
    pub(crate) fn iter_ordered(&self) -> impl Iterator<Item = &T> {
        let split = if self.items.len() < self.capacity {
            0
        } else {
            self.next
        };
        self.items[split..].iter().chain(self.items[..split].iter())
    }
}

/// A uniform sample of at most `capacity` of the items offered since the last `clear` (Vitter's
/// algorithm R).
#[derive(Clone, Debug)]
pub(crate) struct TickReservoir<T> {
    capacity: usize,
    items: Vec<T>,
    seen: u64,
}

impl<T> TickReservoir<T> {
    pub(crate) fn new(capacity: usize) -> TickReservoir<T> {
        TickReservoir {
            capacity,
            items: Vec::new(),
            seen: 0,
        }
    }

    pub(crate) fn offer(&mut self, item: T, rng: &mut Rng) {
        self.seen += 1;
        if self.items.len() < self.capacity {
            self.items.push(item);
        } else {
            let j = rng.below(self.seen) as usize;
            if j < self.capacity {
                self.items[j] = item;
            }
        }
    }

    pub(crate) fn items(&self) -> &[T] {
        &self.items
    }

    pub(crate) fn take(&mut self) -> Vec<T> {
        self.seen = 0;
        std::mem::take(&mut self.items)
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.seen = 0;
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest() {
        let mut r = Ring::new(3);
        for i in 0..5 {
            r.push(i);
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter_ordered().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn reservoir_is_bounded_and_uniform() {
        let mut rng = Rng::new(9);
        let mut hits = [0u32; 10];
        for _ in 0..2_000 {
            let mut r = TickReservoir::new(10);
            for i in 0..100u32 {
                r.offer(i, &mut rng);
            }
            assert_eq!(r.len(), 10);
            for i in r.take() {
                hits[(i / 10) as usize] += 1;
            }
        }
        // Each decile holds about a tenth of the 20 000 kept items.
        assert!(hits.iter().all(|h| (1_700..2_300).contains(h)), "{hits:?}");
    }
}
