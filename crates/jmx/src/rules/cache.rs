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

use std::sync::Arc;
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::Cache;

use super::RuleSet;
use super::automaton::{Pass, PatternSet};
use super::evaluate::{Attribute, Inputs, Outcome, first_match_sequential, prepare};
use super::pattern::Scratch;

/// Entries unused this long are dropped.
const IDLE_LIMIT: Duration = Duration::from_secs(600);
/// How often the idle sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What is remembered of one attribute.
#[derive(Debug)]
struct Entry {
    outcome: Outcome,
    /// Conditions under which `outcome` still holds for another value.
    guards: Box<[Guard]>,
    /// Minutes since the cache was created, at last use.
    used: u32,
}

/// "No pattern of `patterns` matches into the value", checked from `state` in `lane`.
#[derive(Debug)]
struct Guard {
    lane: usize,
    state: LazyStateID,
    /// The lane cache's clear count when `state` was saved; states die with a clear.
    generation: usize,
    patterns: PatternSet,
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

/// Per-module evaluation state: the remembered results and the automaton caches.
#[derive(Debug)]
pub struct MatchCache {
    entries: HashMap<Box<str>, Entry, foldhash::fast::RandomState>,
    lanes: Vec<Cache>,
    inputs: Inputs,
    scratch: Scratch,
    pass: Pass,
    started: Instant,
    swept: Instant,
}

impl MatchCache {
    /// An empty cache for `rules`.
    pub fn new(rules: &RuleSet) -> Self {
        let now = Instant::now();
        Self {
            entries: HashMap::default(),
            lanes: rules.automaton.caches(),
            inputs: Inputs::default(),
            scratch: Scratch::default(),
            pass: Pass::default(),
            started: now,
            swept: now,
        }
    }

    /// Number of remembered attributes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops entries unused for [`IDLE_LIMIT`]; cheap to call often.
    pub fn sweep(&mut self) {
        if self.swept.elapsed() < SWEEP_EVERY {
            return;
        }
        self.swept = Instant::now();
        let now = self.minutes();
        let limit = (IDLE_LIMIT.as_secs() / 60) as u32;
        self.entries
            .retain(|_, e| now.saturating_sub(e.used) <= limit);
    }

    fn minutes(&self) -> u32 {
        (self.started.elapsed().as_secs() / 60) as u32
    }

    /// The rules' outcome for `attribute`. `cacheable` is false when the outcome depends on
    /// more than the pattern input (labels from other attributes).
    pub fn evaluate(
        &mut self,
        rules: &RuleSet,
        attribute: &Attribute<'_>,
        cacheable: bool,
    ) -> (Outcome, Source) {
        let snake_needed = rules.rules.iter().any(|r| r.snake_case);
        self.inputs.prepare(attribute, snake_needed);
        let value = attribute.value.text();
        if cacheable && let Some(outcome) = self.reuse(rules, value) {
            return (outcome, Source::Cached);
        }
        let (outcome, guards) = self.work_out(rules, attribute, value);
        match guards {
            Some(guards) if cacheable => {
                let used = self.minutes();
                self.entries.insert(
                    self.inputs.key.as_str().into(),
                    Entry {
                        outcome: outcome.clone(),
                        guards,
                        used,
                    },
                );
                (outcome, Source::Evaluated)
            }
            _ => (outcome, Source::Uncacheable),
        }
    }

    /// The remembered outcome, if it holds for `value`.
    fn reuse(&mut self, rules: &RuleSet, value: &str) -> Option<Outcome> {
        let now = self.minutes();
        let entry = self.entries.get_mut(self.inputs.key.as_str())?;
        if !entry.guards.is_empty() {
            if value.contains('\n') {
                return None;
            }
            for guard in &entry.guards {
                let cache = &mut self.lanes[guard.lane];
                if cache.clear_count() != guard.generation {
                    return None;
                }
                let lane = &rules.automaton.lanes()[guard.lane];
                match lane.tail_touches(cache, guard.state, value.as_bytes(), &guard.patterns) {
                    Ok(false) => {}
                    Ok(true) | Err(_) => return None,
                }
            }
        }
        entry.used = now;
        Some(entry.outcome.clone())
    }

    /// Runs the rules; also returns the guards under which the outcome may be reused, or
    /// `None` if it may not.
    fn work_out(
        &mut self,
        rules: &RuleSet,
        attribute: &Attribute<'_>,
        value: &str,
    ) -> (Outcome, Option<Box<[Guard]>>) {
        let automaton = &rules.automaton;
        // An input with a line break defeats the `.*` around patterns: match rule by rule.
        let line_break = value.contains('\n') || self.inputs.key.contains('\n');
        let mut passes: Vec<Option<(PatternSet, PatternSet, Option<LazyStateID>)>> =
            Vec::with_capacity(automaton.lanes().len());
        if !line_break {
            for (index, lane) in automaton.lanes().iter().enumerate() {
                let key = if lane.snake_case {
                    &self.inputs.snake_key
                } else {
                    &self.inputs.key
                };
                let mut input = Vec::with_capacity(key.len() + value.len() + 9);
                input.extend_from_slice(key.as_bytes());
                input.extend_from_slice(b": ");
                input.extend_from_slice(if lane.cache {
                    b"<cache>"
                } else {
                    value.as_bytes()
                });
                let result = lane.run(&mut self.lanes[index], &input, key.len(), &mut self.pass);
                passes.push(result.ok().map(|()| {
                    (
                        std::mem::take(&mut self.pass.in_key),
                        std::mem::take(&mut self.pass.in_value),
                        self.pass.resume,
                    )
                }));
            }
        }

        // The first matching rule, and whether each rule's verdict holds for any value.
        let mut first = None;
        let mut reusable = !line_break;
        for (index, rule) in rules.rules.iter().enumerate() {
            let Some(pattern) = &rule.pattern else {
                first = Some(index);
                break;
            };
            let lane_answer = automaton
                .placement(index)
                .and_then(|(lane, id)| passes.get(lane)?.as_ref().map(|p| (p, id)));
            let (matched, value_free) = match lane_answer {
                Some(((in_key, in_value, _), id)) => {
                    let in_key = in_key.contains(id);
                    (
                        in_key || in_value.contains(id),
                        rule.cache || !in_value.contains(id),
                    )
                }
                None => {
                    let input = self.inputs.full_for(rule, value);
                    (pattern.is_match(input), rule.cache)
                }
            };
            if matched {
                first = Some(index);
                // A match must not hinge on the value, nor may captured groups reach into it.
                let key_only = match lane_answer {
                    Some(((in_key, _, _), id)) => in_key.contains(id),
                    None => false,
                };
                reusable &= rule.cache || (key_only && (!rule.uses_groups() || value_free));
                break;
            }
            reusable &= value_free || lane_answer.is_some();
        }
        let outcome = match first {
            Some(index) => prepare(rules, index, attribute, &mut self.inputs, &mut self.scratch),
            None => Outcome::Unmatched,
        };
        if !reusable {
            return (outcome, None);
        }

        // Guards: every non-cache rule before the match, and the match itself if it uses groups.
        let limit = first.unwrap_or(rules.rules.len());
        let mut guards: Vec<Guard> = Vec::new();
        for (index, rule) in rules.rules.iter().enumerate().take(limit + 1) {
            if rule.cache || rule.pattern.is_none() || index > limit {
                continue;
            }
            if Some(index) == first && !rule.uses_groups() {
                continue;
            }
            let Some((lane, id)) = automaton.placement(index) else {
                return (outcome, None);
            };
            let Some(Some((_, _, Some(state)))) = passes.get(lane) else {
                return (outcome, None);
            };
            match guards.iter_mut().find(|g| g.lane == lane) {
                Some(guard) => guard.patterns.insert(id),
                None => {
                    let mut patterns = automaton.lanes()[lane].pattern_set();
                    patterns.insert(id);
                    guards.push(Guard {
                        lane,
                        state: *state,
                        generation: self.lanes[lane].clear_count(),
                        patterns,
                    });
                }
            }
        }
        (outcome, Some(guards.into_boxed_slice()))
    }
}

/// The exact, uncached evaluation: jmx_exporter's loop over the rules. Used by tests to check
/// the cached path against.
pub fn evaluate_uncached(rules: &RuleSet, attribute: &Attribute<'_>) -> Outcome {
    let mut inputs = Inputs::default();
    inputs.prepare(attribute, true);
    let mut scratch = Scratch::default();
    match first_match_sequential(rules, &mut inputs, attribute.value.text(), 0) {
        Some(index) => prepare(rules, index, attribute, &mut inputs, &mut scratch),
        None => Outcome::Unmatched,
    }
}

/// Shared ownership of a rule set's cache.
pub type SharedCache = Arc<std::sync::Mutex<MatchCache>>;
