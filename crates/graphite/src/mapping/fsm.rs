//! The glob matcher: a state machine over dot-separated components, with the same
//! ordering, backtracking and quirks as graphite_exporter's (statsd_exporter's mapper).
//!
//! Each glob rule adds a path of states, one per component; `*` is a transition of its own
//! that captures exactly one component (possibly empty). With ordering on (the default)
//! every matching path is explored and the rule added first wins. With
//! `glob_disable_ordering`, a literal beats `*` at every level, backtracking happens only
//! where a load-time check says it is needed, and the first final state found wins.
//!
//! Two quirks are kept because users' files depend on what upstream does with them: a
//! rule whose last state already exists (a duplicate pattern, or a prefix of an earlier
//! rule) never becomes that state's result, yet its position overwrites the state's
//! priority.

use std::collections::HashMap;

/// Transitions are looked up once per component of every new name: a fast hash.
type Transitions = HashMap<String, usize, foldhash::fast::RandomState>;

use regex::Regex;

#[derive(Debug, Default)]
struct State {
    transitions: Transitions,
    min_remaining: usize,
    max_remaining: usize,
    /// The rule (index into the mapper's rules) that ends here.
    result: Option<usize>,
    priority: usize,
}

/// The glob rules of one mapping file.
#[derive(Debug)]
pub(crate) struct Fsm {
    states: Vec<State>,
    rules_added: usize,
    backtracking: bool,
    ordering_disabled: bool,
}

/// Where a search may resume: a `*` transition not yet taken.
struct Cursor {
    state: usize,
    field: usize,
    capture_index: usize,
}

impl Fsm {
    pub(crate) fn new(ordering_disabled: bool) -> Self {
        Self {
            states: vec![State::default()],
            rules_added: 0,
            backtracking: !ordering_disabled,
            ordering_disabled,
        }
    }

    /// Adds a glob pattern ending in `rule`; returns its number of `*` captures.
    pub(crate) fn add(&mut self, pattern: &str, rule: usize) -> usize {
        let fields: Vec<&str> = pattern.split('.').collect();
        let mut current = 0;
        let mut captures = 0;
        for (i, field) in fields.iter().enumerate() {
            let remaining = fields.len() - i - 1;
            let next = match self.states[current].transitions.get(*field) {
                Some(&next) => {
                    let state = &mut self.states[next];
                    state.max_remaining = state.max_remaining.max(remaining);
                    state.min_remaining = state.min_remaining.min(remaining);
                    next
                }
                None => {
                    let next = self.states.len();
                    self.states.push(State {
                        min_remaining: remaining,
                        max_remaining: remaining,
                        result: (remaining == 0).then_some(rule),
                        ..State::default()
                    });
                    self.states[current]
                        .transitions
                        .insert((*field).to_owned(), next);
                    next
                }
            };
            if *field == "*" {
                captures += 1;
            }
            current = next;
        }
        self.states[current].priority = self.rules_added;
        self.rules_added += 1;
        captures
    }

    /// The state machine as a Graphviz graph (`--debug.dump-fsm`).
    pub(crate) fn dot(&self, rule_name: impl Fn(usize) -> String) -> String {
        let mut out = String::from("digraph g {\n  rankdir=LR;\n  node [shape=circle];\n");
        for (index, state) in self.states.iter().enumerate() {
            if let Some(rule) = state.result {
                out.push_str(&format!(
                    "  s{index} [shape=doublecircle, label=\"{}\"];\n",
                    rule_name(rule).replace('"', "\\\"")
                ));
            }
            let mut transitions: Vec<_> = state.transitions.iter().collect();
            transitions.sort();
            for (field, next) in transitions {
                out.push_str(&format!(
                    "  s{index} -> s{next} [label=\"{}\"];\n",
                    field.replace('"', "\\\"")
                ));
            }
        }
        out.push_str("}\n");
        out
    }

    /// Decides, once all rules are in, whether unordered matching must backtrack.
    pub(crate) fn finish(&mut self, patterns: &[&str]) {
        self.backtracking = needs_backtracking(patterns, self.ordering_disabled);
    }

    /// Finds the rule for `path` and fills `captures` with the winning path's `*` fields.
    pub(crate) fn lookup<'p>(&self, path: &'p str, captures: &mut Vec<&'p str>) -> Option<usize> {
        let fields: Vec<&str> = path.split('.').collect();
        let count = fields.len();
        let mut working: Vec<&str> = vec![""; count];
        let mut stack: Vec<Cursor> = Vec::new();
        let mut best: Option<usize> = None;
        let mut current = 0;
        let mut i = 0;
        let mut capture_index = 0;
        let mut resumed: Option<usize> = None;
        loop {
            loop {
                let state = match resumed.take() {
                    Some(state) => state,
                    None => {
                        let here = &self.states[current];
                        if here.transitions.is_empty() {
                            break;
                        }
                        let field = fields[i];
                        let left = count - i - 1;
                        let fits = |s: usize| {
                            let s = &self.states[s];
                            left <= s.max_remaining && left >= s.min_remaining
                        };
                        match here.transitions.get(field).copied().filter(|&s| fits(s)) {
                            Some(literal) => {
                                if self.backtracking
                                    && let Some(&star) = here.transitions.get("*")
                                    && fits(star)
                                {
                                    stack.push(Cursor {
                                        state: star,
                                        field: i,
                                        capture_index,
                                    });
                                }
                                literal
                            }
                            None => match here.transitions.get("*").copied().filter(|&s| fits(s)) {
                                Some(star) => {
                                    working[capture_index] = field;
                                    capture_index += 1;
                                    star
                                }
                                None => break,
                            },
                        }
                    }
                };
                let reached = &self.states[state];
                if reached.result.is_some() && i == count - 1 {
                    if self.ordering_disabled {
                        captures.clear();
                        captures.extend_from_slice(&working);
                        return reached.result;
                    }
                    if best.is_none_or(|b| self.states[b].priority > reached.priority) {
                        best = Some(state);
                        captures.clear();
                        captures.extend_from_slice(&working);
                    }
                    break;
                }
                i += 1;
                if i >= count {
                    break;
                }
                current = state;
            }
            let Some(cursor) = stack.pop() else { break };
            current = cursor.state;
            i = cursor.field;
            capture_index = cursor.capture_index + 1;
            working[capture_index - 1] = fields[i];
            resumed = Some(cursor.state);
        }
        best.and_then(|state| self.states[state].result)
    }
}

/// Upstream's load-time check: unordered matching needs backtracking when a rule with `*`
/// shares a prefix with another rule of the same length, unless one contains the other.
/// Ordered matching always backtracks. Warnings about rules that can never match are
/// logged here, as upstream does.
fn needs_backtracking(patterns: &[&str], ordering_disabled: bool) -> bool {
    let mut by_length: HashMap<usize, Vec<&str>> = HashMap::new();
    for pattern in patterns {
        by_length
            .entry(pattern.split('.').count())
            .or_default()
            .push(pattern);
    }
    let whole = |pattern: &str| {
        let source = regex::escape(pattern).replace(r"\*", "([^.]*)");
        Regex::new(&format!("^{source}$")).ok()
    };
    let mut needed = false;
    for rules in by_length.values().filter(|r| r.len() > 1) {
        let compiled: Vec<Option<Regex>> = rules.iter().map(|r| whole(r)).collect();
        for (i1, r1) in rules.iter().enumerate() {
            let Some(re1) = &compiled[i1] else { continue };
            if !r1.contains('*') {
                continue;
            }
            let mut this_needs = false;
            for (index, _) in r1.match_indices('*') {
                let prefix = &r1[..index];
                if rules
                    .iter()
                    .enumerate()
                    .any(|(i2, r2)| i2 != i1 && r2.starts_with(prefix))
                {
                    this_needs = true;
                }
            }
            for (i2, r2) in rules.iter().enumerate() {
                if i2 != i1 && re1.is_match(r2) {
                    if !ordering_disabled && i1 < i2 {
                        tracing::warn!(
                            first_match = r1,
                            second_match = r2,
                            "A glob match is a superset of a later one, so the later one never matches."
                        );
                    }
                    this_needs = false;
                }
            }
            for (i2, re2) in compiled.iter().enumerate() {
                if i2 != i1 && re2.as_ref().is_some_and(|re2| re2.is_match(r1)) {
                    this_needs = false;
                }
            }
            // Ordered matching always backtracks, so the warning would say nothing there.
            if this_needs && ordering_disabled {
                tracing::warn!(
                    r#match = r1,
                    "Backtracking is required because of this glob match; matching may be slower."
                );
            }
            needed |= this_needs;
        }
    }
    !ordering_disabled || needed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(patterns: &[&str], ordering_disabled: bool) -> Fsm {
        let mut fsm = Fsm::new(ordering_disabled);
        for (rule, pattern) in patterns.iter().enumerate() {
            fsm.add(pattern, rule);
        }
        fsm.finish(patterns);
        fsm
    }

    fn find<'p>(fsm: &Fsm, path: &'p str) -> Option<(usize, Vec<&'p str>)> {
        let mut captures = Vec::new();
        fsm.lookup(path, &mut captures).map(|rule| (rule, captures))
    }

    #[test]
    fn first_matching_rule_in_file_order_wins() {
        let fsm = build(&["a.*.c", "*.b.*", "a.b.c"], false);
        let (rule, captures) = find(&fsm, "a.b.c").unwrap();
        assert_eq!(rule, 0);
        assert_eq!(captures[0], "b");
        let (rule, captures) = find(&fsm, "x.b.y").unwrap();
        assert_eq!((rule, &captures[..2]), (1, &["x", "y"][..]));
        assert!(find(&fsm, "a.b").is_none());
        assert!(find(&fsm, "a.b.c.d").is_none());
    }

    #[test]
    fn unordered_prefers_literals() {
        let fsm = build(&["a.*.c", "a.b.c"], true);
        assert_eq!(find(&fsm, "a.b.c").unwrap().0, 1);
        let fsm = build(&["a.*.c", "a.b.c"], false);
        assert_eq!(find(&fsm, "a.b.c").unwrap().0, 0);
    }

    #[test]
    fn star_captures_an_empty_component() {
        let fsm = build(&["a.*.b"], false);
        assert_eq!(find(&fsm, "a..b").unwrap().1[0], "");
    }

    #[test]
    fn a_prefix_of_an_earlier_rule_never_matches() {
        let fsm = build(&["a.*.c", "a.*"], false);
        assert!(find(&fsm, "a.b").is_none());
        assert_eq!(find(&fsm, "a.b.c").unwrap().0, 0);
    }

    #[test]
    fn spark_shaped_rules() {
        let fsm = build(
            &[
                "*.*.executor.filesystem.*.*",
                "*.*.jvm.*.*",
                "*.*.executor.jvmGCTime.count",
                "*.*.jvm.pools.*.*",
                "*.*.executor.threadpool.*",
                "*.*.BlockManager.*.*",
                "DAGScheduler.*.*",
            ],
            false,
        );
        let (rule, captures) = find(&fsm, "app-1.driver.jvm.heap.used").unwrap();
        assert_eq!(
            (rule, &captures[..4]),
            (1, &["app-1", "driver", "heap", "used"][..])
        );
        // "jvm.pools.X.Y" has five components after the prefix, so only rule 3 fits.
        assert_eq!(
            find(&fsm, "app.1.jvm.pools.G1-Eden-Space.used").unwrap().0,
            3
        );
        assert_eq!(
            find(&fsm, "app.driver.BlockManager.memory.memUsed_MB")
                .unwrap()
                .0,
            5
        );
        // Spark prefixes DAGScheduler with the namespace and executor id.
        assert!(find(&fsm, "app.driver.DAGScheduler.stage.failedStages").is_none());
    }
}
