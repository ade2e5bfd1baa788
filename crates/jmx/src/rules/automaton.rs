//! Every rule pattern in one lazy DFA per kind of pattern input, so one pass over an input
//! tells which rules match, instead of one regex run per rule.
//!
//! Rules are grouped in lanes by the input they see: attribute name plain or snake-cased,
//! and value or `<cache>`. A lane's automaton runs each pattern unanchored and reports every
//! pattern that matches anywhere, which for a `^.*(?:P).*$` rule is exactly "the rule
//! matches" (the inputs it runs on have no line breaks).
//!
//! The same pass splits the answer at the end of the key part (`…attrName:`): a pattern
//! that matches only within the key matches whatever the value, and one that has no match
//! reaching into `: value` cannot be changed by it. That is what lets a cached result be
//! reused for a new value after a few automaton steps over the value alone (see
//! [`super::cache`]).

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::start;
use regex_automata::{Anchored, MatchKind};

use super::Rule;

/// Memory each lane's lazy DFA may use for its states, per cache.
const CACHE_CAPACITY: usize = 2 << 20;

/// The lanes of a rule set.
#[derive(Debug, Default)]
pub struct Automaton {
    lanes: Vec<Lane>,
    /// For each rule: its lane and pattern id there, if its pattern is in one.
    placement: Vec<Option<(usize, u32)>>,
    /// Whether every rule with a pattern is in a lane, so the lanes alone tell the first
    /// matching rule.
    complete: bool,
    /// The first rule without a pattern (it matches everything).
    first_unconditional: Option<usize>,
    /// The first rule that is matched against values (not `cache`) and is in no lane: no
    /// result that depends on it can be reused.
    first_unguarded: usize,
}

/// One automaton and the rules it holds.
#[derive(Debug)]
pub struct Lane {
    /// Whether its rules match the snake-cased attribute name.
    pub snake_case: bool,
    /// Whether its rules match `<cache>` instead of the value.
    pub cache: bool,
    dfa: DFA,
    /// Pattern id → rule index.
    rules: Vec<usize>,
}

/// A set of pattern ids of one lane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatternSet(Vec<u64>);

impl PatternSet {
    fn with_len(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    /// Adds `id`.
    pub fn insert(&mut self, id: u32) {
        self.0[id as usize / 64] |= 1 << (id % 64);
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.0
            .get(id as usize / 64)
            .is_some_and(|word| word & (1 << (id % 64)) != 0)
    }

    /// The lowest id in this set or in `other`.
    pub fn first_of_either(&self, other: &PatternSet) -> Option<u32> {
        self.0
            .iter()
            .zip(&other.0)
            .enumerate()
            .find_map(|(word, (a, b))| {
                let both = a | b;
                (both != 0).then(|| word as u32 * 64 + both.trailing_zeros())
            })
    }

    fn clear(&mut self) {
        self.0.iter_mut().for_each(|w| *w = 0);
    }
}

/// What one pass over an input found.
#[derive(Debug, Default)]
pub struct Pass {
    /// Patterns with a match that ends within the key part.
    pub in_key: PatternSet,
    /// Patterns with a match reaching into `: value`.
    pub in_value: PatternSet,
    /// The state after the key and its `:`, to resume from for another value.
    pub resume: Option<LazyStateID>,
}

/// The automaton gave up (a non-ASCII byte with a Unicode word boundary in a pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaveUp;

impl Automaton {
    /// Builds the lanes for `rules`. A lane whose automaton cannot be built is left out, and
    /// its rules are then matched one by one.
    pub fn build(rules: &[Rule]) -> Self {
        let mut automaton = Self {
            lanes: Vec::new(),
            placement: vec![None; rules.len()],
            complete: false,
            first_unconditional: rules.iter().position(|r| r.pattern.is_none()),
            first_unguarded: rules.len(),
        };
        for snake_case in [false, true] {
            for cache in [false, true] {
                let members: Vec<usize> = rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.snake_case == snake_case && r.cache == cache)
                    .filter(|(_, r)| r.pattern.as_ref().is_some_and(|p| !p.is_fallback()))
                    .map(|(i, _)| i)
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let patterns: Vec<&str> = members
                    .iter()
                    .filter_map(|&i| rules[i].pattern.as_ref().map(|p| p.translated.as_str()))
                    .collect();
                let built = DFA::builder()
                    .configure(
                        DFA::config()
                            .match_kind(MatchKind::All)
                            .unicode_word_boundary(true)
                            .cache_capacity(CACHE_CAPACITY)
                            .skip_cache_capacity_check(true),
                    )
                    .thompson(thompson::Config::new().which_captures(thompson::WhichCaptures::None))
                    .build_many(&patterns);
                let dfa = match built {
                    Ok(dfa) => dfa,
                    Err(error) => {
                        tracing::debug!(err = %error, "Rule automaton not built; rules are matched one by one.");
                        continue;
                    }
                };
                let lane = automaton.lanes.len();
                for (id, &rule) in members.iter().enumerate() {
                    automaton.placement[rule] = Some((lane, id as u32));
                }
                automaton.lanes.push(Lane {
                    snake_case,
                    cache,
                    dfa,
                    rules: members,
                });
            }
        }
        let unplaced = |(i, rule): &(usize, &Rule)| {
            rule.pattern.is_some() && automaton.placement[*i].is_none()
        };
        automaton.complete = !rules.iter().enumerate().any(|r| unplaced(&r));
        automaton.first_unguarded = rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| !rule.cache)
            .find(unplaced)
            .map_or(rules.len(), |(i, _)| i);
        automaton
    }

    /// Whether every rule with a pattern is in a lane.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// The first rule without a pattern.
    pub fn first_unconditional(&self) -> Option<usize> {
        self.first_unconditional
    }

    /// The first rule matched against values that is in no lane (the number of rules if
    /// there is none).
    pub fn first_unguarded(&self) -> usize {
        self.first_unguarded
    }

    /// The lanes.
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Where rule `index` is: (lane, pattern id).
    pub fn placement(&self, index: usize) -> Option<(usize, u32)> {
        self.placement.get(index).copied().flatten()
    }

    /// One search cache per lane, for one thread of evaluation at a time.
    pub fn caches(&self) -> Vec<Cache> {
        self.lanes
            .iter()
            .map(|lane| lane.dfa.create_cache())
            .collect()
    }
}

impl Lane {
    /// An empty pattern set sized for this lane.
    fn pattern_set(&self) -> PatternSet {
        PatternSet::with_len(self.rules.len())
    }

    /// The rule index of each pattern id, in rule order: the lowest id that matches is the
    /// lane's first matching rule.
    pub fn rules(&self) -> &[usize] {
        &self.rules
    }

    /// Runs over `input`, whose key part (up to and including the `:` after the attribute
    /// name) is `input[..=key_len]`.
    pub fn run(
        &self,
        cache: &mut Cache,
        input: &[u8],
        key_len: usize,
        pass: &mut Pass,
    ) -> Result<(), GaveUp> {
        if pass.in_key.0.len() != self.rules.len().div_ceil(64) {
            pass.in_key = self.pattern_set();
            pass.in_value = self.pattern_set();
        }
        pass.in_key.clear();
        pass.in_value.clear();
        pass.resume = None;
        let config = start::Config::new().anchored(Anchored::No);
        let mut state = self.dfa.start_state(cache, &config).map_err(|_| GaveUp)?;
        for (at, &byte) in input.iter().enumerate() {
            state = self
                .dfa
                .next_state(cache, state, byte)
                .map_err(|_| GaveUp)?;
            if state.is_quit() {
                return Err(GaveUp);
            }
            // Matches show one byte late: after byte `at`, a match state means a match
            // ending at `at`. Ends up to `key_len` (the `:`) lie within the key.
            if state.is_match() {
                let set = if at <= key_len {
                    &mut pass.in_key
                } else {
                    &mut pass.in_value
                };
                self.collect(cache, state, set);
            }
            if at == key_len {
                pass.resume = Some(state);
            }
        }
        state = self.dfa.next_eoi_state(cache, state).map_err(|_| GaveUp)?;
        if state.is_match() {
            let set = if input.len() <= key_len {
                &mut pass.in_key
            } else {
                &mut pass.in_value
            };
            self.collect(cache, state, set);
        }
        Ok(())
    }

    /// Resumes from a state saved by [`Lane::run`] over ` value` for a new value, and tells
    /// whether any pattern that `watched` picks has a match reaching into it.
    pub fn tail_touches(
        &self,
        cache: &mut Cache,
        mut state: LazyStateID,
        value: &[u8],
        watched: impl Fn(u32) -> bool,
    ) -> Result<bool, GaveUp> {
        let hits = |cache: &Cache, state: LazyStateID| {
            (0..self.dfa.match_len(cache, state))
                .any(|i| watched(self.dfa.match_pattern(cache, state, i).as_u32()))
        };
        for &byte in std::iter::once(&b' ').chain(value) {
            state = self
                .dfa
                .next_state(cache, state, byte)
                .map_err(|_| GaveUp)?;
            if state.is_quit() {
                return Err(GaveUp);
            }
            if state.is_match() && hits(cache, state) {
                return Ok(true);
            }
        }
        state = self.dfa.next_eoi_state(cache, state).map_err(|_| GaveUp)?;
        Ok(state.is_match() && hits(cache, state))
    }

    fn collect(&self, cache: &Cache, state: LazyStateID, set: &mut PatternSet) {
        for i in 0..self.dfa.match_len(cache, state) {
            set.insert(self.dfa.match_pattern(cache, state, i).as_u32());
        }
    }
}
