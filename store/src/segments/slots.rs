//! The per-message part of a run of the location index (`locations.rs`):
//! where each record starts, relative to the run's first, and its tag (0:
//! gone, else references + 1).
//!
//! Runs whose records are all of one size (a publisher of fixed-size
//! messages, the common case of one queue and one producer) keep one byte a
//! message, the tag, and that size once; any other run keeps four: the
//! distance (24 bits) and the tag. A run turns from the first form into the
//! second the first time a record of another size joins it.

/// Slots of the records of one run, in id order.
pub(super) enum Slots {
    /// Every record `record` bytes long (header included), back to back.
    Even { record: u32, tags: Vec<u8> },
    /// Per record: distance from the run's start << 8 | tag.
    Uneven(Vec<u32>),
}

impl Slots {
    /// A run's first record, `record` bytes long.
    pub(super) fn first(record: u32, tag: u32) -> Slots {
        Slots::Even {
            record,
            tags: vec![tag as u8],
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            Slots::Even { tags, .. } => tags.len(),
            Slots::Uneven(slots) => slots.len(),
        }
    }

    pub(super) fn tag(&self, at: usize) -> u32 {
        match self {
            Slots::Even { tags, .. } => u32::from(tags[at]),
            Slots::Uneven(slots) => slots[at] & 0xff,
        }
    }

    pub(super) fn set_tag(&mut self, at: usize, tag: u32) {
        match self {
            Slots::Even { tags, .. } => tags[at] = tag as u8,
            Slots::Uneven(slots) => slots[at] = (slots[at] & !0xff) | tag,
        }
    }

    /// Where record `at` starts, from the run's start.
    pub(super) fn distance(&self, at: usize) -> u32 {
        match self {
            Slots::Even { record, .. } => at as u32 * record,
            Slots::Uneven(slots) => slots[at] >> 8,
        }
    }

    /// Appends a record starting `distance` from the run's start (right
    /// after the last one) and `record` bytes long.
    pub(super) fn push(&mut self, distance: u32, record: u32, tag: u32) {
        if let Slots::Even { record: size, tags } = self {
            if *size == record {
                tags.push(tag as u8);
                return;
            }
            let size = *size;
            let uneven = tags
                .iter()
                .enumerate()
                .map(|(i, &t)| (i as u32 * size) << 8 | u32::from(t))
                .collect();
            *self = Slots::Uneven(uneven);
        }
        if let Slots::Uneven(slots) = self {
            slots.push(distance << 8 | tag);
        }
    }

    /// Gives back what the vectors grew ahead of need (the run is sealed).
    pub(super) fn shrink_to_fit(&mut self) {
        match self {
            Slots::Even { tags, .. } => tags.shrink_to_fit(),
            Slots::Uneven(slots) => slots.shrink_to_fit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_records_keep_a_byte_each_until_one_of_another_size_comes() {
        let mut slots = Slots::first(26, 2);
        slots.push(26, 26, 1);
        slots.push(52, 26, 3);
        assert!(matches!(&slots, Slots::Even { tags, .. } if tags.len() == 3));
        assert_eq!((slots.distance(2), slots.tag(2)), (52, 3));
        slots.push(78, 40, 1);
        assert!(matches!(slots, Slots::Uneven(_)));
        let read: Vec<(u32, u32)> = (0..4).map(|at| (slots.distance(at), slots.tag(at))).collect();
        assert_eq!(read, [(0, 2), (26, 1), (52, 3), (78, 1)]);
        slots.set_tag(1, 0);
        assert_eq!((slots.distance(1), slots.tag(1)), (26, 0));
    }
}
