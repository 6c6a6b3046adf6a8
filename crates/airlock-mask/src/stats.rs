//! [`MaskStats`]: how many values each detector masked. Filled by the
//! `mask_*` calls, merged per session or result set by the gateway, reported
//! in the audit record. Never holds any masked content.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Counts of masked matches per detector name.
///
/// Detector names are shared with the plan (`Arc<str>`), so counting a match
/// allocates only the first time a detector fires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskStats {
    counts: BTreeMap<Arc<str>, u64>,
}

impl MaskStats {
    /// An empty set of counts.
    pub fn new() -> MaskStats {
        MaskStats::default()
    }

    /// Adds `count` matches for `detector`.
    pub fn record(&mut self, detector: &str, count: u64) {
        if let Some(existing) = self.counts.get_mut(detector) {
            *existing = existing.saturating_add(count);
        } else {
            self.counts.insert(Arc::from(detector), count);
        }
    }

    pub(crate) fn record_shared(&mut self, detector: &Arc<str>) {
        if let Some(existing) = self.counts.get_mut(&**detector) {
            *existing = existing.saturating_add(1);
        } else {
            self.counts.insert(Arc::clone(detector), 1);
        }
    }

    /// Adds every count of `other` to `self`.
    pub fn merge(&mut self, other: &MaskStats) {
        for (name, count) in &other.counts {
            if let Some(existing) = self.counts.get_mut(name) {
                *existing = existing.saturating_add(*count);
            } else {
                self.counts.insert(Arc::clone(name), *count);
            }
        }
    }

    /// `(detector, count)` pairs in detector-name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> + '_ {
        self.counts.iter().map(|(name, count)| (&**name, *count))
    }

    /// The count for one detector (0 if it never fired).
    pub fn get(&self, detector: &str) -> u64 {
        self.counts.get(detector).copied().unwrap_or(0)
    }

    /// Sum over all detectors.
    pub fn total(&self) -> u64 {
        self.counts
            .values()
            .fold(0u64, |sum, count| sum.saturating_add(*count))
    }

    /// True when nothing was masked.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_merge_total() {
        let mut first = MaskStats::new();
        first.record("email", 2);
        first.record_shared(&Arc::from("card"));
        let mut second = MaskStats::new();
        second.record("email", 1);
        second.record("ssn", 4);
        first.merge(&second);
        assert_eq!(first.get("email"), 3);
        assert_eq!(first.get("card"), 1);
        assert_eq!(first.get("ssn"), 4);
        assert_eq!(first.get("phone"), 0);
        assert_eq!(first.total(), 8);
        let names: Vec<_> = first.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["card", "email", "ssn"]);
        assert!(MaskStats::new().is_empty());
    }
}
