//! The samples of one answer, kept compact until their families are written.
//!
//! A dense answer (every value of every bean a sample) gives a sample for every 40 bytes
//! of JSON. Held as its rule result, a sample cost about 140 bytes plus its place in the
//! metric model's tables, several times the answer it came from. Here a sample is a row of
//! 24 bytes: its value and four numbers into tables of what samples share, its family, its
//! label set (a bean's samples nearly always share one) and the two parts of its origin
//! (the bean's key and the attribute's name, wanted only for the `_objectname` label of
//! samples that collide). The rule results themselves are left to the match cache, which
//! keeps them only within its bounds.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::rules::evaluate::{Labels, Prepared};

/// One sample: its value, and where its parts are in the tables.
#[derive(Debug, Clone, Copy)]
struct Row {
    family: u32,
    labels: u32,
    bean: u32,
    attribute: u32,
    value: f64,
}

/// What the samples of one name have in common.
#[derive(Debug)]
pub(crate) struct Family {
    /// The rule result of the family's first sample in answer order: its name, and the
    /// type and help the family takes from it.
    pub(crate) first: Arc<Prepared>,
    /// Whether a later sample's type differs from the first's.
    pub(crate) mixed: bool,
    /// Number of samples.
    pub(crate) samples: usize,
}

/// The samples of one answer in answer order.
#[derive(Debug, Default)]
pub struct Samples {
    rows: Vec<Row>,
    families: Vec<Family>,
    /// Places in `families`, hashed by name.
    by_name: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    labels: Vec<Labels>,
    beans: Vec<Arc<str>>,
    attributes: Vec<Arc<str>>,
    /// Places in `attributes`, by the address of the shared name (the rules' interner
    /// gives each name one copy, so an address stands for its text).
    attribute_places: HashMap<usize, u32, foldhash::fast::FixedState>,
}

/// One sample, read back.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    samples: &'a Samples,
    row: Row,
}

impl<'a> SampleRef<'a> {
    /// The family name as the rules made it (before `_total` is added to counters).
    pub fn name(&self) -> &'a str {
        &self.samples.families[self.row.family as usize].first.name
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> &'a Labels {
        &self.samples.labels[self.row.labels as usize]
    }

    /// The value.
    pub fn value(&self) -> f64 {
        self.row.value
    }

    /// The pattern input without the value, as the `_objectname` label shows it.
    pub fn object_name(&self) -> String {
        let row = &self.row;
        format!(
            "{}{}",
            self.samples.beans[row.bean as usize], self.samples.attributes[row.attribute as usize]
        )
    }
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The samples in answer order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SampleRef<'_>> + '_ {
        self.rows
            .iter()
            .map(|&row| SampleRef { samples: self, row })
    }

    /// The families, in the order their first samples came.
    pub(crate) fn families(&self) -> &[Family] {
        &self.families
    }

    /// Adds a sample of `prepared` with `value`.
    pub fn push(&mut self, prepared: &Arc<Prepared>, value: f64) {
        let family = self.family(prepared);
        let labels = place_shared(&mut self.labels, &prepared.labels);
        let bean = place_shared(&mut self.beans, &prepared.origin.bean_key);
        let attribute = self.attribute(&prepared.origin.attribute);
        self.rows.push(Row {
            family,
            labels,
            bean,
            attribute,
            value,
        });
    }

    /// Appends the samples of `later`, which came after these in the answer.
    pub fn append(&mut self, later: Samples) {
        if self.families.is_empty() {
            *self = later;
            return;
        }
        let families: Vec<u32> = later
            .families
            .into_iter()
            .map(|family| {
                // Counted once more by `family`: the first of `later`'s samples.
                let place = self.family(&family.first);
                let merged = &mut self.families[place as usize];
                merged.mixed |= family.mixed;
                merged.samples += family.samples - 1;
                place
            })
            .collect();
        let attributes: Vec<u32> = later
            .attributes
            .iter()
            .map(|name| self.attribute(name))
            .collect();
        let (labels, beans) = (self.labels.len() as u32, self.beans.len() as u32);
        self.labels.extend(later.labels);
        self.beans.extend(later.beans);
        self.rows.extend(later.rows.iter().map(|row| Row {
            family: families[row.family as usize],
            labels: row.labels + labels,
            bean: row.bean + beans,
            attribute: attributes[row.attribute as usize],
            value: row.value,
        }));
    }

    /// The place of `prepared`'s family, made for it if it is the first of its name.
    fn family(&mut self, prepared: &Arc<Prepared>) -> u32 {
        let hash = self.hasher.hash_one(&*prepared.name);
        let families = &mut self.families;
        if let Some(&place) = self
            .by_name
            .find(hash, |&p| families[p as usize].first.name == prepared.name)
        {
            let family = &mut families[place as usize];
            family.mixed |= family.first.kind != prepared.kind;
            family.samples += 1;
            return place;
        }
        let place = families.len() as u32;
        families.push(Family {
            first: Arc::clone(prepared),
            mixed: false,
            samples: 1,
        });
        let hasher = &self.hasher;
        self.by_name.insert_unique(hash, place, |&p| {
            hasher.hash_one(&*families[p as usize].first.name)
        });
        place
    }

    fn attribute(&mut self, name: &Arc<str>) -> u32 {
        let attributes = &mut self.attributes;
        *self
            .attribute_places
            .entry(Arc::as_ptr(name).cast::<u8>() as usize)
            .or_insert_with(|| {
                attributes.push(Arc::clone(name));
                attributes.len() as u32 - 1
            })
    }

    /// Row indices grouped by family: for each family, its rows in answer order.
    pub(crate) fn by_family(&self) -> (Vec<u32>, Vec<std::ops::Range<usize>>) {
        let mut ranges = vec![0..0; self.families.len()];
        for row in &self.rows {
            ranges[row.family as usize].end += 1;
        }
        let mut start = 0;
        for range in &mut ranges {
            let count = range.end;
            *range = start..start;
            start += count;
        }
        let mut order = vec![0u32; self.rows.len()];
        for (index, row) in self.rows.iter().enumerate() {
            let range = &mut ranges[row.family as usize];
            order[range.end] = index as u32;
            range.end += 1;
        }
        (order, ranges)
    }

    /// The sample at `index` (of [`Samples::iter`]'s order).
    pub(crate) fn get(&self, index: u32) -> SampleRef<'_> {
        SampleRef {
            samples: self,
            row: self.rows[index as usize],
        }
    }
}

/// The place of `item` in `table`: the last one if it is that same shared value (a bean's
/// samples come one after another and share their labels and key), else a new one.
fn place_shared<T: ?Sized>(table: &mut Vec<Arc<T>>, item: &Arc<T>) -> u32 {
    match table.last() {
        Some(last) if Arc::ptr_eq(last, item) => {}
        _ => table.push(Arc::clone(item)),
    }
    table.len() as u32 - 1
}
