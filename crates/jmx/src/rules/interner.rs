//! One shared copy of each name, help text and label the rules produce.
//!
//! Rule outputs repeat far more than their inputs: 20 000 partitions of a Kafka broker give
//! 20 000 pattern inputs but a handful of family names and help texts, and topic and
//! partition labels that recur across families. Sharing them makes a first scrape cheaper (a
//! hash lookup instead of an allocation) and the remembered results smaller.

use std::sync::Arc;

use hashbrown::HashSet;

/// A set of shared strings.
#[derive(Debug, Default)]
pub struct Interner {
    strings: HashSet<Arc<str>, foldhash::fast::FixedState>,
}

impl Interner {
    /// The shared copy of `text`.
    pub fn get(&mut self, text: &str) -> Arc<str> {
        Arc::clone(self.strings.get_or_insert_with(text, |t| Arc::from(t)))
    }

    /// Drops the strings nothing else holds any more.
    pub fn sweep(&mut self) {
        self.strings.retain(|text| Arc::strong_count(text) > 1);
    }

    /// Number of strings held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// Whether no string is held.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_text_until_unused() {
        let mut interner = Interner::default();
        let first = interner.get("kafka_log_size");
        let second = interner.get("kafka_log_size");
        assert!(Arc::ptr_eq(&first, &second));
        let other = interner.get("topic");
        assert_eq!(interner.len(), 2);
        drop(other);
        interner.sweep();
        assert_eq!(interner.len(), 1);
        assert!(Arc::ptr_eq(&interner.get("kafka_log_size"), &first));
    }
}
