//! The samples of one answer, kept compact until their families are written.
//!
//! A dense answer (every value of every bean a sample) gives a sample for every 40 bytes
//! of JSON. Held as its rule result, a sample cost about 140 bytes plus its place in the
//! metric model's tables, several times the answer it came from. Here a sample is written
//! from a row of 24 bytes: its value and four numbers into tables of what samples share, its family, its
//! label set (a bean's samples nearly always share one) and the two parts of its origin
//! (the bean's key, kept as text end to end, and the attribute's name, wanted only for the
//! `_objectname` label of samples that collide). The rule results themselves are left to
//! the match cache, which keeps them only within its bounds.
//!
//! While the answer is walked (and held), a sample is 16 bytes: its family, attribute and
//! value, with the labels and bean key kept once for each run of samples that shares them.
//! The pieces of an answer walked in parallel are kept apart until [`Samples::into_rows`],
//! which a probe calls once it has let go of the answer.

use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};

use crate::rules::evaluate::{Labels, Prepared};

/// One sample as the walk keeps it: its family, attribute and value. Its labels and bean
/// key are those of the [`Run`] it is in.
#[derive(Debug, Clone, Copy)]
struct Compact {
    family: u32,
    attribute: u32,
    value: f64,
}

/// Samples one after another with the same labels and bean (a bean's, mostly).
#[derive(Debug, Clone, Copy)]
struct Run {
    /// The first sample's place.
    start: u32,
    labels: u32,
    bean: u32,
}

/// One sample as it is written: its value, and where its parts are in the [`Tables`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Row {
    pub(crate) family: u32,
    labels: u32,
    bean: u32,
    attribute: u32,
    pub(crate) value: f64,
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

/// What the samples of an answer share: families, label sets and origins.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    families: Vec<Family>,
    /// Places in `families`, hashed by name.
    by_name: HashTable<u32>,
    hasher: foldhash::fast::FixedState,
    labels: Vec<Labels>,
    /// The beans of the samples' origins (`domain<props>`), end to end, and where each
    /// ends.
    bean_keys: String,
    bean_key_ends: Vec<u32>,
    /// The rest of the origins: path into composites and attribute name.
    attributes: Vec<(Arc<str>, Arc<str>)>,
    /// Places in `attributes`, by the addresses of the shared path and name (the rules'
    /// interner gives each text one copy, so an address stands for its text).
    attribute_places: HashMap<(usize, usize), u32, foldhash::fast::FixedState>,
    /// Family and attribute places by the addresses of a result's name, path and attribute:
    /// one lookup a sample. The name is held here (path and attribute in `attributes`), so
    /// no address is reused for other text while it is a key.
    places: HashMap<Addresses, (Arc<str>, u32, u32), foldhash::fast::FixedState>,
    /// The bean of the last sample (the same shared text for every attribute of a bean).
    last_bean: Option<Arc<str>>,
}

/// The samples of one answer in answer order, as the walk makes them: 16 bytes a sample
/// and 12 a run of samples sharing labels and bean key.
#[derive(Debug, Default)]
pub struct Samples {
    samples: Vec<Compact>,
    runs: Vec<Run>,
    tables: Tables,
    /// The samples of the pieces of the answer after this one, not merged yet.
    later: Vec<Samples>,
}

/// The samples of an answer as they are written: a row of 24 bytes each, with the tables
/// they share.
#[derive(Debug, Default)]
pub struct Rows {
    rows: Vec<Row>,
    tables: Tables,
}

/// One sample, read back.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    tables: &'a Tables,
    row: Row,
}

impl<'a> SampleRef<'a> {
    pub(crate) fn new(tables: &'a Tables, row: Row) -> Self {
        Self { tables, row }
    }

    /// The family name as the rules made it (before `_total` is added to counters).
    pub fn name(&self) -> &'a str {
        &self.tables.families[self.row.family as usize].first.name
    }

    /// The labels, sorted by name.
    pub fn labels(&self) -> &'a Labels {
        &self.tables.labels[self.row.labels as usize]
    }

    /// The value.
    pub fn value(&self) -> f64 {
        self.row.value
    }

    /// The pattern input without the value, as the `_objectname` label shows it.
    pub fn object_name(&self) -> String {
        let row = &self.row;
        let (path, attribute) = &self.tables.attributes[row.attribute as usize];
        format!("{}{path}{attribute}", self.tables.bean_key(row.bean))
    }
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len() + self.later.iter().map(Samples::len).sum::<usize>()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The samples in answer order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = SampleRef<'_>> + '_> {
        let own = self.rows().map(|row| SampleRef::new(&self.tables, row));
        Box::new(own.chain(self.later.iter().flat_map(Samples::iter)))
    }

    /// This piece's samples as rows, in answer order.
    fn rows(&self) -> impl Iterator<Item = Row> + '_ {
        self.runs.iter().enumerate().flat_map(move |(place, run)| {
            let end = self
                .runs
                .get(place + 1)
                .map_or(self.samples.len(), |next| next.start as usize);
            self.samples[run.start as usize..end]
                .iter()
                .map(move |sample| Row {
                    family: sample.family,
                    labels: run.labels,
                    bean: run.bean,
                    attribute: sample.attribute,
                    value: sample.value,
                })
        })
    }

    /// Adds a sample of `prepared` with `value`.
    pub fn push(&mut self, prepared: &Arc<Prepared>, value: f64) {
        let tables = &mut self.tables;
        let origin = &prepared.origin;
        let key = (
            address(&prepared.name),
            address(&origin.path),
            address(&origin.attribute),
        );
        let (family, attribute) = match tables.places.get(&key) {
            Some(&(_, family, attribute)) => {
                let counted = &mut tables.families[family as usize];
                counted.samples += 1;
                counted.mixed |= counted.first.kind != prepared.kind;
                (family, attribute)
            }
            None => {
                let family = tables.family(prepared);
                let attribute = tables.attribute(&origin.path, &origin.attribute);
                let name = Arc::clone(&prepared.name);
                tables.places.insert(key, (name, family, attribute));
                (family, attribute)
            }
        };
        let labels = tables.place_labels(&prepared.labels);
        let bean = tables.place_bean_key(&origin.bean);
        match self.runs.last() {
            Some(run) if run.labels == labels && run.bean == bean => {}
            _ => self.runs.push(Run {
                start: self.samples.len() as u32,
                labels,
                bean,
            }),
        }
        self.samples.push(Compact {
            family,
            attribute,
            value,
        });
    }

    /// Adds the samples of `later`, which came after these in the answer; they are copied
    /// in by [`Samples::into_rows`].
    pub fn append(&mut self, mut later: Samples) {
        if self.samples.is_empty() && self.later.is_empty() {
            *self = later;
            return;
        }
        let theirs = std::mem::take(&mut later.later);
        self.later.push(later);
        self.later.extend(theirs);
    }

    /// The samples as rows, each piece let go as soon as it is in.
    pub fn into_rows(mut self) -> Rows {
        let mut rows = Vec::with_capacity(self.len());
        rows.extend(self.rows());
        let mut merged = Rows {
            rows,
            tables: std::mem::take(&mut self.tables),
        };
        for piece in std::mem::take(&mut self.later) {
            merged.merge_piece(piece);
        }
        merged
    }
}

impl Rows {
    /// The families, in the order their first samples came.
    pub(crate) fn families(&self) -> &[Family] {
        &self.tables.families
    }

    fn merge_piece(&mut self, later: Samples) {
        let tables = &mut self.tables;
        let families: Vec<u32> = later
            .tables
            .families
            .iter()
            .map(|family| {
                // Counted once more by `family`: the first of `later`'s samples.
                let place = tables.family(&family.first);
                let merged = &mut tables.families[place as usize];
                merged.mixed |= family.mixed;
                merged.samples += family.samples - 1;
                place
            })
            .collect();
        let attributes: Vec<u32> = later
            .tables
            .attributes
            .iter()
            .map(|(path, name)| tables.attribute(path, name))
            .collect();
        let labels = tables.labels.len() as u32;
        let (beans, text) = (
            tables.bean_key_ends.len() as u32,
            tables.bean_keys.len() as u32,
        );
        tables.labels.extend(later.tables.labels.iter().cloned());
        tables.bean_keys.push_str(&later.tables.bean_keys);
        tables
            .bean_key_ends
            .extend(later.tables.bean_key_ends.iter().map(|end| end + text));
        self.rows.extend(later.rows().map(|row| Row {
            family: families[row.family as usize],
            labels: row.labels + labels,
            bean: row.bean + beans,
            attribute: attributes[row.attribute as usize],
            value: row.value,
        }));
    }

    /// The rows, to be put in the order they are written and let go as they are, and the
    /// tables to read them with.
    pub(crate) fn split(&mut self) -> (&mut Vec<Row>, &Tables) {
        (&mut self.rows, &self.tables)
    }
}

impl Tables {
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

    /// The place of `labels`: the last label set if it is this same shared one (a bean's
    /// samples come one after another and share their labels), else a new one.
    fn place_labels(&mut self, labels: &Labels) -> u32 {
        match self.labels.last() {
            Some(last) if Arc::ptr_eq(last, labels) => {}
            _ => self.labels.push(Arc::clone(labels)),
        }
        self.labels.len() as u32 - 1
    }

    /// The place of bean `key`: the last one if it is the same, else a new one.
    fn place_bean_key(&mut self, key: &Arc<str>) -> u32 {
        let last = self.bean_key_ends.len().checked_sub(1);
        if let Some(last) = last
            && (self.last_bean.as_ref().is_some_and(|b| Arc::ptr_eq(b, key))
                || self.bean_key(last as u32) == &**key)
        {
            return last as u32;
        }
        self.last_bean = Some(Arc::clone(key));
        self.bean_keys.push_str(key);
        self.bean_key_ends.push(self.bean_keys.len() as u32);
        self.bean_key_ends.len() as u32 - 1
    }

    fn bean_key(&self, place: u32) -> &str {
        let place = place as usize;
        let start = match place {
            0 => 0,
            _ => self.bean_key_ends[place - 1] as usize,
        };
        &self.bean_keys[start..self.bean_key_ends[place] as usize]
    }

    fn attribute(&mut self, path: &Arc<str>, name: &Arc<str>) -> u32 {
        let attributes = &mut self.attributes;
        *self
            .attribute_places
            .entry((address(path), address(name)))
            .or_insert_with(|| {
                attributes.push((Arc::clone(path), Arc::clone(name)));
                attributes.len() as u32 - 1
            })
    }

    /// The family at `place`.
    pub(crate) fn family_at(&self, place: u32) -> &Family {
        &self.families[place as usize]
    }
}

/// The addresses of a result's name, path and attribute.
type Addresses = (usize, usize, usize);

/// The address of a shared text, which stands for the text while the text is held.
fn address(text: &Arc<str>) -> usize {
    Arc::as_ptr(text).cast::<u8>() as usize
}
