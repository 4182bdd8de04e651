//! Where every stored message's record is and how many hold it: the
//! segment store's in-memory index, one to four bytes a message.
//!
//! Ids are handed out in order and each record is appended right after the
//! one before, so the records of consecutive ids mostly lie back to back
//! in one segment. A [`Run`] is such a stretch: the segment, where its
//! first record starts, and per id a slot (`slots.rs`): a tag (0 for gone,
//! else references + 1), and the record's distance from that start (24
//! bits beside the tag in a `u32`) unless every record of the run has the
//! same size, when the tag alone is a byte. A record's length is the
//! distance to the next one (the last one's, to the run's end). A run ends where that stops holding: another segment,
//! a record that is not next in the file (compaction copies in between),
//! or 16 MiB from the run's start.
//!
//! What does not fit a run (records copied by compaction, found twice when
//! the store opens, or held more than [`MAX_TAGGED_REFS`] times) is kept
//! whole in `moved`, a hash map that stays small: compaction copies only
//! what is left of mostly-garbage segments. An id is in at most one of the
//! two places. Lookups of ids in order (a queue reading back, a stream
//! replaying) walk one run's vector instead of hashing into a map of every
//! message.

use std::collections::{BTreeMap, HashMap};

use super::slots::Slots;
use super::{Location, RECORD_HEADER};

/// Distances from a run's start fit 24 bits.
const MAX_DISTANCE: u32 = (1 << 24) - 1;
/// References a run's tag can count (tag 255); more go to `moved`.
const MAX_TAGGED_REFS: u32 = 254;

/// Records of consecutive ids back to back in one segment.
struct Run {
    segment: u32,
    /// Where the first record starts in the segment.
    base: u32,
    /// Where the last record ends.
    end: u32,
    /// Per id from the run's first: where its record starts and its tag.
    slots: Slots,
    /// Slots whose tag is not 0.
    present: usize,
}

impl Run {
    fn tag(&self, at: usize) -> u32 {
        self.slots.tag(at)
    }

    fn set_tag(&mut self, at: usize, tag: u32) {
        self.slots.set_tag(at, tag);
    }

    /// Clears slot `at`, returning what it held.
    fn take(&mut self, at: usize) -> Option<Location> {
        let location = self.location(at)?;
        self.set_tag(at, 0);
        self.present -= 1;
        Some(location)
    }

    /// The record at slot `at`, if it is present.
    fn location(&self, at: usize) -> Option<Location> {
        let tag = self.tag(at);
        if tag == 0 {
            return None;
        }
        let pos = self.base + self.slots.distance(at);
        let next = if at + 1 < self.slots.len() {
            self.base + self.slots.distance(at + 1)
        } else {
            self.end
        };
        Some(Location {
            segment: self.segment,
            pos,
            len: next - pos - RECORD_HEADER as u32,
            refs: tag - 1,
        })
    }
}

#[derive(Default)]
pub(super) struct Locations {
    /// Runs by their first id; their id ranges do not overlap.
    runs: BTreeMap<u64, Run>,
    /// One past the highest id ever put in a run: only ids from here on
    /// start or extend one.
    top: u64,
    moved: HashMap<u64, Location>,
    len: usize,
}

impl Locations {
    /// How many records are present.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The run holding `id`'s slot, and the slot's index, whether or not
    /// the record is present.
    fn slot(&self, id: u64) -> Option<(&Run, usize)> {
        let (&first, run) = self.runs.range(..=id).next_back()?;
        let at = usize::try_from(id - first).ok()?;
        (at < run.slots.len()).then_some((run, at))
    }

    /// The same, to change, with the run's first id (to drop it by).
    fn slot_mut(&mut self, id: u64) -> Option<(u64, &mut Run, usize)> {
        let (&first, run) = self.runs.range_mut(..=id).next_back()?;
        let at = usize::try_from(id - first).ok()?;
        (at < run.slots.len()).then_some((first, run, at))
    }

    pub(super) fn get(&self, id: u64) -> Option<Location> {
        match self.slot(id).and_then(|(run, at)| run.location(at)) {
            Some(location) => Some(location),
            None => self.moved.get(&id).copied(),
        }
    }

    /// Records `id` at `location` (a new append, a record found when
    /// opening, or a compaction copy: a later place replaces an earlier).
    pub(super) fn insert(&mut self, id: u64, location: Location) {
        if id >= self.top && location.refs <= MAX_TAGGED_REFS && self.push(id, location) {
            self.len += 1;
            return;
        }
        let replaced = self.take_from_run(id).is_some() | self.moved.insert(id, location).is_some();
        if !replaced {
            self.len += 1;
        }
    }

    /// Records the unreferenced records of `segment` found when the store
    /// opens, (id, position, payload length) in file order: as [`insert`]
    /// each, but records that extend the last run are appended to it in
    /// one pass (a restart reads millions).
    ///
    /// [`insert`]: Self::insert
    pub(super) fn insert_found(&mut self, segment: u32, records: &[(u64, u32, u32)]) {
        let mut rest = records;
        while let Some(&(id, pos, len)) = rest.first() {
            let extended = self.extend_last_run(segment, rest);
            if extended > 0 {
                rest = &rest[extended..];
                continue;
            }
            self.insert(
                id,
                Location {
                    segment,
                    pos,
                    len,
                    refs: 0,
                },
            );
            rest = &rest[1..];
        }
    }

    /// Appends the leading records of `records` that continue the last run
    /// (next id, same segment, right after its end); returns how many.
    fn extend_last_run(&mut self, segment: u32, records: &[(u64, u32, u32)]) -> usize {
        let Some(mut last) = self.runs.last_entry() else {
            return 0;
        };
        let first = *last.key();
        let run = last.get_mut();
        let mut taken = 0;
        for &(id, pos, len) in records {
            let distance = pos.wrapping_sub(run.base);
            let end = u64::from(pos) + RECORD_HEADER + u64::from(len);
            let continues = id >= self.top
                && first + run.slots.len() as u64 == id
                && run.segment == segment
                && run.end == pos
                && distance <= MAX_DISTANCE;
            let Ok(end) = u32::try_from(end) else {
                break;
            };
            if !continues {
                break;
            }
            run.slots.push(distance, end - pos, 1);
            run.end = end;
            run.present += 1;
            self.top = id + 1;
            taken += 1;
        }
        self.len += taken;
        taken
    }

    /// Appends `id` to the last run, or starts a run with it. False if its
    /// place cannot be written as a distance.
    fn push(&mut self, id: u64, location: Location) -> bool {
        let end = location.pos as u64 + RECORD_HEADER + u64::from(location.len);
        let Ok(end) = u32::try_from(end) else {
            return false;
        };
        let tag = location.refs + 1;
        if let Some((&first, run)) = self.runs.iter_mut().next_back() {
            let distance = location.pos.wrapping_sub(run.base);
            if first + run.slots.len() as u64 == id
                && run.segment == location.segment
                && run.end == location.pos
                && distance <= MAX_DISTANCE
            {
                run.slots.push(distance, end - location.pos, tag);
                run.end = end;
                run.present += 1;
                self.top = id + 1;
                return true;
            }
            // Sealed: give back what the vector grew ahead of need.
            run.slots.shrink_to_fit();
        }
        self.runs.insert(
            id,
            Run {
                segment: location.segment,
                base: location.pos,
                end,
                slots: Slots::first(end - location.pos, tag),
                present: 1,
            },
        );
        self.top = id + 1;
        true
    }

    /// Clears `id`'s slot in its run (dropping the run when nothing in it
    /// is left), returning what it held.
    fn take_from_run(&mut self, id: u64) -> Option<Location> {
        let (first, run, at) = self.slot_mut(id)?;
        let location = run.take(at)?;
        if run.present == 0 {
            self.runs.remove(&first);
        }
        Some(location)
    }

    /// One more holder of `id`. False if it is not stored.
    pub(super) fn add_ref(&mut self, id: u64) -> bool {
        if let Some((first, run, at)) = self.slot_mut(id) {
            match run.tag(at) {
                0 => {}
                tag if tag - 1 < MAX_TAGGED_REFS => {
                    run.set_tag(at, tag + 1);
                    return true;
                }
                _ => {
                    // Held more often than a tag counts: kept whole.
                    let taken = run.take(at);
                    if run.present == 0 {
                        self.runs.remove(&first);
                    }
                    if let Some(location) = taken {
                        let refs = location.refs + 1;
                        self.moved.insert(id, Location { refs, ..location });
                    }
                    return true;
                }
            }
        }
        match self.moved.get_mut(&id) {
            Some(location) => {
                location.refs = location.refs.saturating_add(1);
                true
            }
            None => false,
        }
    }

    /// At open: one more holder of every id in each range `(first, count)`
    /// of `ranges`, if every one of them is present; otherwise nothing
    /// changes and the answer is false. Walks runs, not ids one by one.
    pub(super) fn add_refs_to_all(&mut self, ranges: &[(u64, u64)]) -> bool {
        if !ranges.iter().all(|&(first, count)| self.all_present(first, count)) {
            return false;
        }
        for &(first, count) in ranges {
            let mut one_by_one = Vec::new();
            let end = first.saturating_add(count);
            let mut id = first;
            while id < end {
                let Some((_, run, at)) = self.slot_mut(id) else {
                    one_by_one.push(id);
                    id += 1;
                    continue;
                };
                let upto = (at as u64 + (end - id)).min(run.slots.len() as u64) as usize;
                for i in at..upto {
                    match run.tag(i) {
                        tag if tag != 0 && tag - 1 < MAX_TAGGED_REFS => run.set_tag(i, tag + 1),
                        _ => one_by_one.push(id + (i - at) as u64),
                    }
                }
                id += (upto - at) as u64;
            }
            for id in one_by_one {
                self.add_ref(id);
            }
        }
        true
    }

    /// Whether every id of `first..first + count` is present.
    fn all_present(&self, first: u64, count: u64) -> bool {
        let end = first.saturating_add(count);
        let mut id = first;
        while id < end {
            let Some((run, at)) = self.slot(id) else {
                if !self.moved.contains_key(&id) {
                    return false;
                }
                id += 1;
                continue;
            };
            let upto = (at as u64 + (end - id)).min(run.slots.len() as u64) as usize;
            for i in at..upto {
                if run.tag(i) == 0 && !self.moved.contains_key(&(id + (i - at) as u64)) {
                    return false;
                }
            }
            id += (upto - at) as u64;
        }
        true
    }

    /// A holder of `id` lets go. When none is left the record is forgotten
    /// and its place returned, so its segment can count it gone.
    pub(super) fn release(&mut self, id: u64) -> Option<Location> {
        if let Some((first, run, at)) = self.slot_mut(id) {
            match run.tag(at) {
                0 => {}
                tag if tag > 2 => {
                    run.set_tag(at, tag - 1);
                    return None;
                }
                _ => {
                    let location = run.take(at);
                    if run.present == 0 {
                        self.runs.remove(&first);
                    }
                    self.len -= 1;
                    return location.map(|location| Location { refs: 0, ..location });
                }
            }
        }
        let location = self.moved.get_mut(&id)?;
        location.refs = location.refs.saturating_sub(1);
        if location.refs > 0 {
            return None;
        }
        self.len -= 1;
        self.moved.remove(&id)
    }

    /// Forgets every record nobody holds (once the store has opened and
    /// every index entry claimed its record); returns how many went.
    pub(super) fn drop_unreferenced(&mut self) -> usize {
        let before = self.len;
        for run in self.runs.values_mut() {
            for at in 0..run.slots.len() {
                if run.tag(at) == 1 {
                    run.take(at);
                }
            }
        }
        self.runs.retain(|_, run| run.present > 0);
        self.moved.retain(|_, location| location.refs > 0);
        self.len = self.runs.values().map(|run| run.present).sum::<usize>() + self.moved.len();
        before - self.len
    }

    /// Every present record's place.
    pub(super) fn each(&self, mut visit: impl FnMut(Location)) {
        for run in self.runs.values() {
            for at in 0..run.slots.len() {
                if let Some(location) = run.location(at) {
                    visit(location);
                }
            }
        }
        self.moved.values().copied().for_each(visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(segment: u32, pos: u32, len: u32, refs: u32) -> Location {
        Location {
            segment,
            pos,
            len,
            refs,
        }
    }

    fn same(a: Option<Location>, b: Location) {
        let a = a.expect("present");
        assert_eq!((a.segment, a.pos, a.len, a.refs), (b.segment, b.pos, b.len, b.refs));
    }

    #[test]
    fn back_to_back_records_share_a_run_and_keep_their_lengths() {
        let mut l = Locations::default();
        let mut pos = 8;
        for (id, len) in [(1u64, 10u32), (2, 0), (3, 300), (4, 5)] {
            l.insert(id, at(1, pos, len, 1));
            pos += 16 + len;
        }
        assert_eq!(l.runs.len(), 1);
        assert_eq!(l.len(), 4);
        same(l.get(1), at(1, 8, 10, 1));
        same(l.get(2), at(1, 34, 0, 1));
        same(l.get(3), at(1, 50, 300, 1));
        same(l.get(4), at(1, 366, 5, 1));
        assert!(l.get(5).is_none());
        assert!(l.get(0).is_none());
    }

    #[test]
    fn a_new_segment_or_a_gap_starts_a_run() {
        let mut l = Locations::default();
        l.insert(1, at(1, 8, 10, 1));
        l.insert(2, at(2, 8, 10, 1));
        l.insert(3, at(2, 100, 10, 1));
        l.insert(7, at(2, 126, 10, 1));
        assert_eq!(l.runs.len(), 4);
        same(l.get(3), at(2, 100, 10, 1));
        same(l.get(7), at(2, 126, 10, 1));
    }

    #[test]
    fn references_count_up_and_the_last_release_returns_the_place() {
        let mut l = Locations::default();
        l.insert(1, at(1, 8, 10, 1));
        l.insert(2, at(1, 34, 10, 1));
        assert!(l.add_ref(1));
        assert!(!l.add_ref(9));
        assert!(l.release(1).is_none());
        same(l.release(1), at(1, 8, 10, 0));
        assert!(l.get(1).is_none());
        assert!(l.release(1).is_none());
        assert_eq!(l.len(), 1);
        same(l.release(2), at(1, 34, 10, 0));
        assert!(l.runs.is_empty());
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn many_references_move_the_record_out_of_its_run() {
        let mut l = Locations::default();
        l.insert(1, at(1, 8, 10, 1));
        for _ in 0..300 {
            assert!(l.add_ref(1));
        }
        same(l.get(1), at(1, 8, 10, 301));
        for _ in 0..300 {
            assert!(l.release(1).is_none());
        }
        same(l.release(1), at(1, 8, 10, 0));
        assert_eq!(l.len(), 0);
    }

    #[test]
    fn a_compaction_copy_replaces_the_first_place() {
        let mut l = Locations::default();
        l.insert(1, at(1, 8, 10, 1));
        l.insert(2, at(1, 34, 10, 2));
        l.insert(3, at(2, 8, 10, 1));
        l.insert(2, at(2, 34, 10, 2));
        assert_eq!(l.len(), 3);
        same(l.get(2), at(2, 34, 10, 2));
        same(l.get(1), at(1, 8, 10, 1));
        l.release(2);
        same(l.release(2), at(2, 34, 10, 0));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn unreferenced_records_go_at_the_end_of_recovery() {
        let mut l = Locations::default();
        for id in 1..=5u64 {
            l.insert(id, at(1, 8 + 26 * (id as u32 - 1), 10, 0));
        }
        l.insert(3, at(2, 8, 10, 0));
        assert!(l.add_ref(2));
        assert!(l.add_ref(3));
        assert_eq!(l.drop_unreferenced(), 3);
        assert_eq!(l.len(), 2);
        same(l.get(2), at(1, 34, 10, 1));
        same(l.get(3), at(2, 8, 10, 1));
        let mut seen = Vec::new();
        l.each(|location| seen.push(location.pos));
        seen.sort_unstable();
        assert_eq!(seen, vec![8, 34]);
    }

    #[test]
    fn records_found_at_open_make_the_same_runs_as_one_by_one() {
        let found = [
            (1u64, 8u32, 10u32),
            (2, 34, 0),
            (3, 50, 300),
            (9, 366, 4),
            (10, 386, 1),
            (2, 403, 0),
        ];
        let mut bulk = Locations::default();
        bulk.insert_found(1, &found[..3]);
        bulk.insert_found(2, &found[3..]);
        let mut single = Locations::default();
        for (i, &(id, pos, len)) in found.iter().enumerate() {
            single.insert(id, at(if i < 3 { 1 } else { 2 }, pos, len, 0));
        }
        assert_eq!(bulk.len(), single.len());
        assert_eq!(bulk.runs.len(), single.runs.len());
        for id in 0..12 {
            let (a, b) = (bulk.get(id), single.get(id));
            assert_eq!(a.is_some(), b.is_some(), "id {id}");
            if let Some(b) = b {
                same(a, b);
            }
        }
        same(bulk.get(2), at(2, 403, 0, 0));
    }

    #[test]
    fn ranges_are_held_all_or_nothing() {
        let mut l = Locations::default();
        let found: Vec<(u64, u32, u32)> = (1..=6u64).map(|id| (id, 8 + 26 * (id as u32 - 1), 10)).collect();
        l.insert_found(1, &found);
        l.insert(9, at(2, 8, 10, 0));
        l.insert(3, at(2, 34, 10, 0)); // a compaction copy: kept whole
        assert!(!l.add_refs_to_all(&[(1, 2), (5, 3)]), "7 is not stored");
        assert_eq!(l.get(1).map(|x| x.refs), Some(0), "nothing changed");
        assert!(l.add_refs_to_all(&[(1, 6), (9, 1)]));
        for id in [1, 2, 3, 4, 5, 6, 9] {
            assert_eq!(l.get(id).map(|x| x.refs), Some(1), "id {id}");
        }
        assert!(l.add_refs_to_all(&[(2, 1)]));
        assert_eq!(l.get(2).map(|x| x.refs), Some(2));
    }

    #[test]
    fn a_run_ends_sixteen_mebibytes_from_its_start() {
        let mut l = Locations::default();
        l.insert(1, at(1, 8, 20 << 20, 1));
        l.insert(2, at(1, 8 + 16 + (20 << 20), 10, 1));
        assert_eq!(l.runs.len(), 2);
        same(l.get(1), at(1, 8, 20 << 20, 1));
        same(l.get(2), at(1, 8 + 16 + (20 << 20), 10, 1));
    }
}
