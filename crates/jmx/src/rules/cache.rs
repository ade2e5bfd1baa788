//! Rule results remembered per attribute, so a steady scrape costs a hash lookup and a few
//! automaton steps per attribute instead of a run of the rules.
//!
//! jmx_exporter matches every rule against `key: value` on every scrape (its own `cache: true`
//! gives that up for rules whose patterns ignore the value). Here a result is reused only
//! when it provably cannot differ for the new value:
//!
//! - the rule that matched did so within the key part (or has no pattern, or is a `cache`
//!   rule), so it matches whatever the value;
//! - no earlier rule, and not the matching rule if it uses capture groups, has a match
//!   reaching into the value, checked by resuming the automaton after the key.
//!
//! Otherwise the rules run again, exactly as the first time. The cache is shared by all
//! targets of a module (the result depends only on the pattern input), and entries unused
//! for ten minutes are dropped.
//!
//! A bean's results are remembered from the second answer it is in on; the first time only
//! a hash of its name is kept. A target that answers with new names every time (by mistake
//! or to exhaust memory) then costs eight bytes a bean instead of a remembered result per
//! attribute, and so does the first probe of a large answer, where a probe's memory peaks.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::{HashSet, HashTable};
use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::Cache;
use smallvec::SmallVec;

use super::RuleSet;
use super::attribute_table::AttributeTable;
use super::automaton::Pass;
use super::evaluate::{Attribute, Inputs, Outcome, Workspace, first_match_sequential, prepare};
use crate::object_name::ObjectName;
use crate::walk::{WalkStats, read_bean};

/// Entries unused this long are dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(600);
/// How often the idle sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What one module's remembered results may hold, across its shards. A target that answers
/// with new bean or attribute names on every probe would otherwise grow the cache without
/// end (names are only forgotten after ten idle minutes); past either bound the shard
/// forgets everything at the start of the next pass and learns afresh. A Kafka broker of
/// 50 000 attributes stays far inside both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Remembered attribute results.
    pub entries: usize,
    /// Estimated bytes: bean names and a fixed cost per bean and per attribute.
    pub bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            entries: 400_000,
            bytes: 256 << 20,
        }
    }
}

impl Limits {
    /// This module's limits shared by `shards` shards.
    pub fn per_shard(self, shards: usize) -> Self {
        Self {
            entries: self.entries / shards.max(1),
            bytes: self.bytes / shards.max(1),
        }
    }
}

/// The estimated cost of a remembered attribute: its table entry, key and outcome (the rule
/// result it holds alone since samples stopped sharing them). Measured: an 8 MB NameNode-like
/// answer's 227 028 results and 16 600 beans grew the exporter by 67 MiB, 302 bytes a result
/// all told, which this and [`BEAN_BYTES`] account for.
const ATTRIBUTE_BYTES: usize = 272;
/// The estimated cost of a remembered bean beside its name: its entry, parsed name and place
/// in the index.
const BEAN_BYTES: usize = std::mem::size_of::<BeanEntry>() + 192;

/// Bean names seen once are kept for at least this long (and at most twice as long) waiting
/// to be seen again.
const SEEN_ONCE_FOR: Duration = Duration::from_secs(300);

/// Forgetting a whole shard is logged at most this often.
static FORGOTTEN: kiln_registry::LogLimiter =
    kiln_registry::LogLimiter::new(Duration::from_secs(60));

/// What is remembered of one attribute.
#[derive(Debug)]
pub struct Entry {
    outcome: Outcome,
    /// Conditions under which `outcome` still holds for another value: one per lane whose
    /// rules come before the match (at most two: plain and snake-cased names).
    guards: SmallVec<[Guard; 1]>,
    /// Minutes since the cache was created, at last use.
    used: u32,
}

/// "No watched pattern of `lane` matches into the value", checked from `state`.
///
/// The watched patterns are the lane's rules ahead of the matching one, which (pattern ids
/// being in rule order) are the ids below `below`, and the matching rule itself (`also`)
/// when its groups could reach into the value.
#[derive(Debug)]
struct Guard {
    lane: u32,
    state: LazyStateID,
    below: u32,
    also: Option<u32>,
    /// The lane cache's clear count when `state` was saved; states die with a clear.
    generation: usize,
}

impl Guard {
    fn watches(&self, id: u32) -> bool {
        id < self.below || self.also == Some(id)
    }
}

/// How an attribute's outcome was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Reused from the cache.
    Cached,
    /// Worked out (and remembered when it can be).
    Evaluated,
    /// Worked out; it cannot be reused for another value.
    Uncacheable,
}

/// The remembered attributes of one bean, keyed by their path within it.
pub type Attributes = AttributeTable<Entry>;

/// A bean's name: parsed if the module reads the bean, else just the text.
#[derive(Debug)]
enum BeanName {
    Read(Arc<ObjectName>),
    Skipped(Box<str>),
}

impl BeanName {
    fn as_str(&self) -> &str {
        match self {
            BeanName::Read(name) => name.as_str(),
            BeanName::Skipped(text) => text,
        }
    }
}

/// One bean seen: its name and its attributes.
#[derive(Debug)]
struct BeanEntry {
    name: BeanName,
    attributes: Attributes,
    used: u32,
    /// The bean that came after this one in the last answer. Bridges send beans in the same
    /// order scrape after scrape, so the next bean is found by one comparison, not a hash.
    next: Option<usize>,
}

impl BeanEntry {
    fn vacant() -> Self {
        Self {
            name: BeanName::Skipped(Box::default()),
            attributes: Attributes::default(),
            used: 0,
            next: None,
        }
    }
}

/// Per-module evaluation state: the remembered results and the automaton caches.
#[derive(Debug)]
pub struct MatchCache {
    beans: Vec<BeanEntry>,
    /// Places in `beans`, hashed by bean name.
    index: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    /// Places in `beans` freed by the idle sweep.
    free: Vec<usize>,
    /// The first bean of the last answer.
    first: Option<usize>,
    /// The bean opened last in this answer, and the one expected next.
    previous: Option<usize>,
    expected: Option<usize>,
    lanes: Vec<Cache>,
    passes: Vec<Pass>,
    inputs: Inputs,
    /// A lane's whole pattern input.
    lane_input: Vec<u8>,
    attribute_key: String,
    work: Workspace,
    started: Instant,
    swept: Instant,
    /// Minutes since `started`, as of the current pass.
    now: u32,
    limits: Limits,
    /// Remembered attribute results and their estimated bytes, kept up to date during a pass
    /// so that one large answer cannot take the cache past its limits before the pass ends.
    held: (usize, usize),
    /// Times this cache forgot everything for going past its limits.
    resets: u64,
    /// Hashes of the names of beans seen once and not remembered yet, in two generations:
    /// the newer one becomes the older one every [`SEEN_ONCE_FOR`], or when it holds as
    /// many names as the cache may remember results.
    seen_once: [HashSet<u64, foldhash::fast::FixedState>; 2],
    seen_since: Instant,
    /// Shared strings held after the last sweep.
    strings_swept: usize,
    /// Whether the bean open now has its results remembered (set by
    /// [`MatchCache::open_bean`]; a caller with an attribute table of its own has them
    /// remembered there).
    remembering: bool,
}

impl MatchCache {
    /// An empty cache for `rules`.
    pub fn new(rules: &RuleSet) -> Self {
        let now = Instant::now();
        Self {
            beans: Vec::new(),
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            free: Vec::new(),
            first: None,
            previous: None,
            expected: None,
            lanes: rules.automaton.caches(),
            passes: rules
                .automaton
                .lanes()
                .iter()
                .map(|_| Pass::default())
                .collect(),
            inputs: Inputs::default(),
            lane_input: Vec::new(),
            attribute_key: String::new(),
            work: Workspace::default(),
            started: now,
            swept: now,
            now: 0,
            limits: Limits::default(),
            held: (0, 0),
            resets: 0,
            seen_once: Default::default(),
            seen_since: now,
            strings_swept: 0,
            remembering: true,
        }
    }

    /// Bounds what this cache remembers (see [`Limits`]).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Times this cache forgot everything for going past its limits.
    pub fn resets(&self) -> u64 {
        self.resets
    }

    /// Remembered attribute results and their estimated bytes.
    fn footprint(&self) -> (usize, usize) {
        self.beans.iter().fold((0, 0), |(entries, bytes), bean| {
            (
                entries + bean.attributes.len(),
                bytes
                    + bean.name.as_str().len()
                    + BEAN_BYTES
                    + bean.attributes.len() * ATTRIBUTE_BYTES,
            )
        })
    }

    /// Forgets every bean and attribute (the automaton's own caches are bounded already).
    fn forget_all(&mut self) {
        self.held = (0, 0);
        self.beans = Vec::new();
        self.index = HashTable::new();
        self.free = Vec::new();
        self.first = None;
        self.previous = None;
        self.expected = None;
        self.work.strings.sweep();
        self.strings_swept = self.work.strings.len();
        self.resets += 1;
    }

    /// Ends a pass over one answer: a cache the answer took past its limits forgets now, so
    /// what it remembered is given back with the answer instead of at the next pass.
    pub fn finish_pass(&mut self) {
        self.forget_past_limits();
    }

    /// Forgets everything if past the limits.
    fn forget_past_limits(&mut self) {
        self.held = self.footprint();
        if self.past_limits() {
            self.forget_all_logged();
        }
    }

    fn past_limits(&self) -> bool {
        self.held.0 > self.limits.entries || self.held.1 > self.limits.bytes
    }

    fn forget_all_logged(&mut self) {
        let (entries, bytes) = self.held;
        if let Some(suppressed) = FORGOTTEN.check() {
            tracing::warn!(
                entries,
                bytes,
                suppressed,
                "The rule match cache went past its limits (a target answering with new names each time?); it starts afresh."
            );
        }
        self.forget_all();
    }

    /// Starts a pass over one answer: notes the time for the idle sweep, and sweeps.
    pub fn start_pass(&mut self) {
        self.now = (self.started.elapsed().as_secs() / 60) as u32;
        self.forget_past_limits();
        self.previous = None;
        self.expected = self.first;
        if self.swept.elapsed() >= SWEEP_EVERY {
            self.swept = Instant::now();
            let (now, limit) = (self.now, (IDLE_LIMIT.as_secs() / 60) as u32);
            for (place, bean) in self.beans.iter_mut().enumerate() {
                if bean.name.as_str().is_empty() {
                    continue;
                }
                if now.saturating_sub(bean.used) > limit {
                    let hash = self.hasher.hash_one(bean.name.as_str());
                    if let Ok(entry) = self.index.find_entry(hash, |&p| p == place) {
                        entry.remove();
                    }
                    // An empty key matches no bean name; links to it just miss.
                    *bean = BeanEntry::vacant();
                    self.free.push(place);
                } else {
                    bean.attributes
                        .retain(|e| now.saturating_sub(e.used) <= limit);
                }
            }
            self.work.strings.sweep();
            self.strings_swept = self.work.strings.len();
        } else {
            self.sweep_strings_if_grown();
        }
    }

    /// Drops the shared strings nothing else holds if there are many more than after the
    /// last sweep: a large answer's labels, which only its samples held (beans seen once,
    /// results forgotten), go once the answer is written rather than at the next sweep.
    pub fn sweep_strings_if_grown(&mut self) {
        if self.work.strings.len() > 2 * self.strings_swept + 4096 {
            self.work.strings.sweep();
            self.strings_swept = self.work.strings.len();
        }
    }

    /// Opens a bean: its parsed name and remembered attributes, or `None` for a bean the
    /// module leaves out or whose name does not parse (counted in `stats` the first time).
    /// Hand the attributes back with [`MatchCache::close_bean`].
    pub fn open_bean(
        &mut self,
        rules: &RuleSet,
        name: &str,
        stats: &mut WalkStats,
    ) -> Option<(Arc<ObjectName>, Attributes)> {
        let expected = self
            .expected
            .filter(|&place| self.beans[place].name.as_str() == name);
        let place = match expected {
            Some(place) => Some(place),
            None => self.find_or_add(rules, name),
        };
        self.remembering = place.is_some();
        let Some(place) = place else {
            // Seen for the first time: walked, not remembered.
            let parsed = read_bean(rules, name, stats)?;
            return Some((Arc::new(parsed), Attributes::default()));
        };
        match self.previous {
            Some(previous) => self.beans[previous].next = Some(place),
            None => self.first = Some(place),
        }
        self.previous = Some(place);
        let bean = &mut self.beans[place];
        self.expected = bean.next;
        bean.used = self.now;
        let BeanName::Read(parsed) = &bean.name else {
            return None;
        };
        Some((Arc::clone(parsed), std::mem::take(&mut bean.attributes)))
    }

    /// The place of the bean named `name`, made for it if it was seen before; `None` the
    /// first time.
    fn find_or_add(&mut self, rules: &RuleSet, name: &str) -> Option<usize> {
        let hash = self.hasher.hash_one(name);
        if let Some(place) = self.find(hash, name) {
            return Some(place);
        }
        if !self.seen_before(hash) {
            return None;
        }
        // Its name was counted when it was seen first, if it does not parse.
        let bean = BeanEntry {
            name: match read_bean(rules, name, &mut WalkStats::default()) {
                Some(parsed) => BeanName::Read(Arc::new(parsed)),
                None => BeanName::Skipped(name.into()),
            },
            attributes: Attributes::default(),
            used: self.now,
            next: None,
        };
        let place = match self.free.pop() {
            Some(place) => {
                self.beans[place] = bean;
                place
            }
            None => {
                self.beans.push(bean);
                self.beans.len() - 1
            }
        };
        self.held.1 += name.len() + BEAN_BYTES;
        let (beans, hasher) = (&self.beans, &self.hasher);
        self.index
            .insert_unique(hash, place, |&p| hasher.hash_one(beans[p].name.as_str()));
        Some(place)
    }

    /// Whether a bean whose name hashes to `hash` was seen before (and is now taken off
    /// the list of names seen once); if not, it is put on it.
    fn seen_before(&mut self, hash: u64) -> bool {
        if self.seen_once.iter_mut().any(|seen| seen.remove(&hash)) {
            return true;
        }
        let [newer, older] = &mut self.seen_once;
        if newer.len() >= self.limits.entries.max(1) || self.seen_since.elapsed() >= SEEN_ONCE_FOR {
            *older = std::mem::take(newer);
            self.seen_since = Instant::now();
        }
        self.seen_once[0].insert(hash);
        false
    }

    /// Makes room for `beans` beans, so the pass that remembers a big answer's beans does
    /// not rehash as it goes (the pass before it, which only makes their names known, leaves
    /// the room untouched: address space, not memory).
    pub fn reserve(&mut self, beans: usize) {
        let more = beans.saturating_sub(self.index.len());
        self.beans.reserve(more);
        let (entries, hasher) = (&self.beans, &self.hasher);
        self.index
            .reserve(more, |&p| hasher.hash_one(entries[p].name.as_str()));
    }

    /// Puts back the attributes taken by [`MatchCache::open_bean`].
    pub fn close_bean(&mut self, name: &str, mut attributes: Attributes) {
        attributes.shrink_to_fit();
        let place = self
            .previous
            .filter(|&place| self.beans[place].name.as_str() == name)
            .or_else(|| self.find(self.hasher.hash_one(name), name));
        if let Some(place) = place {
            self.beans[place].attributes = attributes;
        }
    }

    /// The place of the bean named `name`, whose hash is `hash`.
    fn find(&self, hash: u64, name: &str) -> Option<usize> {
        self.index
            .find(hash, |&place| self.beans[place].name.as_str() == name)
            .copied()
    }

    /// Number of remembered attributes.
    pub fn len(&self) -> usize {
        self.beans.iter().map(|b| b.attributes.len()).sum()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The rules' outcome for `attribute` of a bean opened with
    /// [`MatchCache::open_bean`]. `cacheable` is false when the outcome depends on more than
    /// the pattern input (labels from other attributes).
    pub fn evaluate(
        &mut self,
        rules: &RuleSet,
        attributes: &mut Attributes,
        attribute: &Attribute<'_>,
        cacheable: bool,
    ) -> (Outcome, Source) {
        let value = attribute.value.text();
        let cacheable = cacheable && self.remembering;
        if cacheable {
            attribute.write_path(&mut self.attribute_key);
            if let Some(entry) = attributes.get_mut(self.attribute_key.as_str())
                && let Some(outcome) = self.reuse(rules, entry, value)
            {
                return (outcome, Source::Cached);
            }
        }
        self.inputs.prepare(attribute, rules.any_snake_case);
        let (outcome, guards) = self.work_out(rules, attribute, value);
        match guards {
            Some(guards) if cacheable => {
                let entry = Entry {
                    outcome: outcome.clone(),
                    guards,
                    used: self.now,
                };
                let key = self.work.strings.get(&self.attribute_key);
                attributes.insert_shared(key, entry);
                self.held.0 += 1;
                self.held.1 += ATTRIBUTE_BYTES;
                if self.past_limits() {
                    // Past the limits part way through an answer: everything goes at once
                    // (the bean open now loses its results when it is closed).
                    self.forget_all_logged();
                }
                (outcome, Source::Evaluated)
            }
            _ => (outcome, Source::Uncacheable),
        }
    }

    /// The remembered outcome, if it holds for `value`.
    fn reuse(&mut self, rules: &RuleSet, entry: &mut Entry, value: &str) -> Option<Outcome> {
        if !entry.guards.is_empty() {
            if value.contains('\n') {
                return None;
            }
            for guard in &entry.guards {
                let cache = &mut self.lanes[guard.lane as usize];
                if cache.clear_count() != guard.generation {
                    return None;
                }
                let lane = &rules.automaton.lanes()[guard.lane as usize];
                match lane
                    .tail_touches(cache, guard.state, value.as_bytes(), |id| guard.watches(id))
                {
                    Ok(false) => {}
                    Ok(true) | Err(_) => return None,
                }
            }
        }
        entry.used = self.now;
        Some(entry.outcome.clone())
    }

    /// Runs the rules; also returns the guards under which the outcome may be reused, or
    /// `None` if it may not.
    fn work_out(
        &mut self,
        rules: &RuleSet,
        attribute: &Attribute<'_>,
        value: &str,
    ) -> (Outcome, Option<SmallVec<[Guard; 1]>>) {
        let automaton = &rules.automaton;
        // An input with a line break defeats the `.*` around patterns: match rule by rule.
        let line_break = value.contains('\n') || self.inputs.key.contains('\n');
        let mut ran = [false; 4];
        if !line_break {
            let input = &mut self.lane_input;
            for (index, lane) in automaton.lanes().iter().enumerate() {
                let key = if lane.snake_case {
                    &self.inputs.snake_key
                } else {
                    &self.inputs.key
                };
                input.clear();
                input.extend_from_slice(key.as_bytes());
                input.extend_from_slice(b": ");
                input.extend_from_slice(if lane.cache {
                    b"<cache>"
                } else {
                    value.as_bytes()
                });
                let pass = &mut self.passes[index];
                ran[index] = lane
                    .run(&mut self.lanes[index], input, key.len(), pass)
                    .is_ok();
            }
        }
        let (first, reusable) = if !line_break
            && automaton.complete()
            && ran[..automaton.lanes().len()].iter().all(|&r| r)
        {
            first_from_passes(rules, &self.passes)
        } else {
            self.first_rule_by_rule(rules, &ran, value, line_break)
        };
        let guards = if reusable {
            self.guards(rules, first, &ran)
        } else {
            None
        };
        let outcome = match first {
            Some(index) => prepare(rules, index, attribute, &mut self.inputs, &mut self.work),
            None => Outcome::Unmatched,
        };
        (outcome, guards)
    }

    /// The first matching rule, and whether its verdict (and every earlier rule's) holds
    /// for any value; rule by rule, for inputs the lanes could not answer alone.
    fn first_rule_by_rule(
        &mut self,
        rules: &RuleSet,
        ran: &[bool; 4],
        value: &str,
        line_break: bool,
    ) -> (Option<usize>, bool) {
        let automaton = &rules.automaton;
        let mut reusable = !line_break;
        for (index, rule) in rules.rules.iter().enumerate() {
            let Some(pattern) = &rule.pattern else {
                return (Some(index), reusable);
            };
            let answer = automaton
                .placement(index)
                .and_then(|(lane, id)| ran[lane].then(|| (&self.passes[lane], id)));
            let (matched, key_only, value_free) = match answer {
                Some((pass, id)) => {
                    let (in_key, in_value) = (pass.in_key.contains(id), pass.in_value.contains(id));
                    (in_key || in_value, in_key, rule.cache || !in_value)
                }
                None => {
                    let input = self.inputs.full_for(rule, value);
                    (pattern.is_match(input), false, rule.cache)
                }
            };
            if matched {
                // A match must not hinge on the value, nor may captured groups reach into it.
                reusable &= rule.cache || (key_only && (!rule.uses_groups() || value_free));
                return (Some(index), reusable);
            }
            reusable &= value_free || answer.is_some();
        }
        (None, reusable)
    }

    /// The guards for an outcome decided by rule `first` (none: no rule matched): every
    /// rule before it that sees the value, and `first` itself if its groups do. `None` if
    /// one of them is in no lane or its lane did not run.
    fn guards(
        &self,
        rules: &RuleSet,
        first: Option<usize>,
        ran: &[bool; 4],
    ) -> Option<SmallVec<[Guard; 1]>> {
        let automaton = &rules.automaton;
        let limit = first.unwrap_or(rules.rules.len());
        let grouped = first.filter(|&index| {
            let rule = &rules.rules[index];
            !rule.cache && rule.pattern.is_some() && rule.uses_groups()
        });
        if automaton.first_unguarded() < grouped.map_or(limit, |index| index + 1) {
            return None;
        }
        let grouped = grouped.and_then(|index| automaton.placement(index));
        let mut guards = SmallVec::new();
        for (index, lane) in automaton.lanes().iter().enumerate() {
            if lane.cache {
                continue;
            }
            let below = lane.rules().partition_point(|&rule| rule < limit) as u32;
            let also = grouped.filter(|&(l, _)| l == index).map(|(_, id)| id);
            if below == 0 && also.is_none() {
                continue;
            }
            let state = self.passes[index].resume.filter(|_| ran[index])?;
            guards.push(Guard {
                lane: index as u32,
                state,
                below,
                also,
                generation: self.lanes[index].clear_count(),
            });
        }
        Some(guards)
    }
}

/// The first matching rule from the lanes' passes alone (every patterned rule is in a lane
/// and every lane ran), and whether its verdict holds for any value. Pattern ids are in
/// rule order, so each lane's lowest matching id is its first matching rule.
fn first_from_passes(rules: &RuleSet, passes: &[Pass]) -> (Option<usize>, bool) {
    let automaton = &rules.automaton;
    let mut first = automaton.first_unconditional();
    for (lane, pass) in automaton.lanes().iter().zip(passes) {
        if let Some(id) = pass.in_key.first_of_either(&pass.in_value) {
            let index = lane.rules()[id as usize];
            if first.is_none_or(|f| index < f) {
                first = Some(index);
            }
        }
    }
    let reusable = match first.and_then(|index| Some((index, automaton.placement(index)?))) {
        Some((index, (lane, id))) => {
            let rule = &rules.rules[index];
            let pass = &passes[lane];
            let (in_key, in_value) = (pass.in_key.contains(id), pass.in_value.contains(id));
            rule.cache || (in_key && (!rule.uses_groups() || !in_value))
        }
        // No rule matched, or a rule without a pattern: nothing hinges on the value.
        None => true,
    };
    (first, reusable)
}

/// The exact, uncached evaluation: jmx_exporter's loop over the rules. Used by tests to check
/// the cached path against.
pub fn evaluate_uncached(rules: &RuleSet, attribute: &Attribute<'_>) -> Outcome {
    let mut inputs = Inputs::default();
    inputs.prepare(attribute, true);
    match first_match_sequential(rules, &mut inputs, attribute.value.text(), 0) {
        Some(index) => prepare(
            rules,
            index,
            attribute,
            &mut inputs,
            &mut Workspace::default(),
        ),
        None => Outcome::Unmatched,
    }
}
