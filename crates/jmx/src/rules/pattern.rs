//! Rule patterns: Java regular expressions, run with Rust's engines.
//!
//! jmx_exporter compiles a rule's `pattern` P as `^.*(?:P).*$` and requires a full match of
//! the pattern input, so patterns are unanchored and the greedy `.*` in front decides which
//! occurrence the groups capture. The same wrapping here gives the same groups: the `regex`
//! crate's leftmost-first semantics follow a backtracking engine's preferences.
//!
//! Java's dialect is translated where it differs: `\w`, `\d`, `\s` and their negations are
//! ASCII in Java (Unicode in Rust), `\Q…\E` quotes, `\uXXXX` is `\x{XXXX}`, and `\<`, `\>` are
//! plain characters. Patterns the `regex` crate cannot run (lookaround, backreferences,
//! possessive quantifiers, atomic groups) fall back to `fancy-regex`, for that rule only.

use std::sync::Mutex;

use memchr::memmem::FinderRev;
use regex::{CaptureLocations, Regex};
use regex_automata::hybrid::dfa::{Cache as DfaCache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::captures::Captures;
use regex_automata::{Anchored, Input, MatchKind, meta};

use super::sequence::Sequence;
use super::template::Spans;

/// A compiled rule pattern.
#[derive(Debug)]
pub struct Pattern {
    /// As written in the configuration.
    pub source: String,
    /// Translated to Rust's dialect, not wrapped; what the rule-set automaton is built from.
    pub translated: String,
    engine: Engine,
    names: Vec<(usize, String)>,
    groups: usize,
}

#[derive(Debug)]
enum Engine {
    Regex(Regex, Box<Groups>),
    Fancy(Box<fancy_regex::Regex>),
}

/// Finds groups without running the wrapped regex, whose leading `.*` makes a backtracking
/// engine retry the pattern at every split point.
///
/// The greedy `^.*` picks the last position where P can start a match (the rest is eaten by
/// the trailing `.*`), and P then matches there as it would anchored. So: a reverse automaton
/// for `P.*`, anchored at the end, stops at the last such start; P runs anchored from there.
#[derive(Debug)]
struct Groups {
    reverse: DFA,
    reverse_cache: Mutex<DfaCache>,
    /// The fast matcher from the start on, for patterns of its shape.
    sequence: Option<Sequence>,
    /// A searcher for the sequence's leading literal, built once rather than per input.
    prefix: Option<FinderRev<'static>>,
    anchored: meta::Regex,
}

impl Groups {
    fn build(translated: &str) -> Option<Self> {
        let reverse = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .unicode_word_boundary(true),
            )
            .thompson(
                thompson::Config::new()
                    .reverse(true)
                    .which_captures(thompson::WhichCaptures::None),
            )
            .build(&format!("(?:{translated}).*"))
            .ok()?;
        let anchored = meta::Regex::new(translated).ok()?;
        let reverse_cache = Mutex::new(reverse.create_cache());
        let sequence = Sequence::new(translated);
        let prefix = sequence
            .as_ref()
            .and_then(Sequence::literal_prefix)
            .map(|literal| FinderRev::new(literal).into_owned());
        Some(Self {
            reverse,
            reverse_cache,
            sequence,
            prefix,
            anchored,
        })
    }

    /// Group spans of the full-match semantics, or `None` if there is no match or the
    /// automaton gave up (the caller then uses the wrapped regex).
    fn find(&self, input: &str, out: &mut Vec<Option<(usize, usize)>>) -> Option<bool> {
        // `^.*` and `.*$` stop at line breaks, which the reverse automaton does not know on
        // its own; such rare inputs go to the wrapped regex.
        if input.contains('\n') {
            return None;
        }
        if let Some(found) = self.find_from_prefix(input, out) {
            return Some(found);
        }
        let start = {
            let mut cache = self.reverse_cache.lock().ok()?;
            let search = Input::new(input).anchored(Anchored::Yes).earliest(true);
            match self.reverse.try_search_rev(&mut cache, &search) {
                Ok(Some(found)) => found.offset(),
                Ok(None) => return Some(false),
                Err(_) => return None,
            }
        };
        if let Some(sequence) = &self.sequence
            && sequence.captures(input, start, out) == Ok(true)
        {
            return Some(true);
        }
        let mut captures = Captures::all(self.anchored.group_info().clone());
        let search = Input::new(input).range(start..).anchored(Anchored::Yes);
        self.anchored.search_captures(&search, &mut captures);
        if !captures.is_match() {
            return None;
        }
        out.clear();
        // Group 0 is the whole input, as the wrapped pattern matches all of it.
        out.push(Some((0, input.len())));
        for group in 1..captures.group_len() {
            out.push(captures.get_group(group).map(|span| (span.start, span.end)));
        }
        Some(true)
    }
}

impl Groups {
    /// The groups found by trying the pattern where its leading literal occurs, last
    /// occurrence first: the last start that matches is the one the greedy `^.*` leaves.
    /// `None` when that does not apply (no leading literal, many occurrences) or the
    /// sequence gave up. The input has no line break.
    fn find_from_prefix(&self, input: &str, out: &mut Vec<Option<(usize, usize)>>) -> Option<bool> {
        /// Starts tried before the reverse automaton is cheaper.
        const MOST_STARTS: usize = 4;
        let (sequence, prefix) = (self.sequence.as_ref()?, self.prefix.as_ref()?);
        let mut end = input.len();
        for _ in 0..MOST_STARTS {
            let Some(start) = prefix.rfind(&input.as_bytes()[..end]) else {
                return Some(false);
            };
            if sequence.captures(input, start, out).ok()? {
                return Some(true);
            }
            // Occurrences may overlap: the next one may end inside this one.
            end = start + prefix.needle().len() - 1;
        }
        // Yet more starts: the reverse automaton finds the right one faster.
        match prefix.rfind(&input.as_bytes()[..end]) {
            Some(_) => None,
            None => Some(false),
        }
    }
}

/// Reusable capture storage for [`Pattern::captures`].
#[derive(Debug, Default)]
pub struct Scratch {
    locations: Option<CaptureLocations>,
    spans: Vec<Option<(usize, usize)>>,
}

impl Pattern {
    /// Compiles a pattern; the error says why the regex is not valid.
    pub fn compile(source: &str) -> Result<Self, String> {
        let translated = translate(source)?;
        let wrapped = format!("^.*(?:{translated}).*$");
        let (engine, groups, names) = match Regex::new(&wrapped) {
            Ok(regex) => match Groups::build(&translated) {
                Some(finder) => {
                    let names = named_groups(regex.capture_names());
                    let groups = regex.captures_len() - 1;
                    (Engine::Regex(regex, Box::new(finder)), groups, names)
                }
                None => return Err("the pattern cannot be compiled for group search".into()),
            },
            Err(plain_error) => match fancy_regex::Regex::new(&wrapped) {
                Ok(regex) => {
                    let names = named_groups(regex.capture_names());
                    let groups = regex.captures_len() - 1;
                    (Engine::Fancy(Box::new(regex)), groups, names)
                }
                Err(_) => return Err(first_line(&plain_error.to_string())),
            },
        };
        Ok(Self {
            source: source.to_owned(),
            translated,
            engine,
            names,
            groups,
        })
    }

    /// Number of capture groups.
    pub fn groups(&self) -> usize {
        self.groups
    }

    /// Named groups (index, name).
    pub fn names(&self) -> &[(usize, String)] {
        &self.names
    }

    /// Whether the pattern needs the backtracking fallback.
    pub fn is_fallback(&self) -> bool {
        matches!(self.engine, Engine::Fancy(_))
    }

    /// Whether the whole input matches (jmx_exporter's `Matcher.matches()`).
    pub fn is_match(&self, input: &str) -> bool {
        match &self.engine {
            Engine::Regex(regex, _) => regex.is_match(input),
            // A pattern that blows the backtracking limit counts as no match.
            Engine::Fancy(regex) => regex.is_match(input).unwrap_or(false),
        }
    }

    /// Matches the whole input, returning the group spans (group 0 first).
    pub fn captures<'s>(&self, input: &str, scratch: &'s mut Scratch) -> Option<&'s Spans> {
        scratch.spans.clear();
        match &self.engine {
            Engine::Regex(regex, finder) => {
                match finder.find(input, &mut scratch.spans) {
                    Some(true) => return Some(&scratch.spans),
                    Some(false) => return None,
                    None => scratch.spans.clear(),
                }
                let locations = scratch
                    .locations
                    .get_or_insert_with(|| regex.capture_locations());
                if locations.len() != regex.captures_len() {
                    *locations = regex.capture_locations();
                }
                regex.captures_read(locations, input)?;
                scratch
                    .spans
                    .extend((0..locations.len()).map(|i| locations.get(i)));
            }
            Engine::Fancy(regex) => {
                let captures = regex.captures(input).ok()??;
                scratch.spans.extend(
                    (0..captures.len()).map(|i| captures.get(i).map(|m| (m.start(), m.end()))),
                );
            }
        }
        Some(&scratch.spans)
    }
}

fn named_groups<'a>(names: impl Iterator<Item = Option<&'a str>>) -> Vec<(usize, String)> {
    names
        .enumerate()
        .filter_map(|(i, name)| name.map(|n| (i, n.to_owned())))
        .collect()
}

fn first_line(text: &str) -> String {
    // regex's errors draw the pattern with a caret over several lines; the last line says why.
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

const WORD: &str = "0-9A-Za-z_";
const DIGIT: &str = "0-9";
const SPACE: &str = r"\t\n\x0B\x0C\r ";

/// Rewrites the parts of Java's regex dialect that Rust reads differently.
pub fn translate(java: &str) -> Result<String, String> {
    let mut out = String::with_capacity(java.len() + 16);
    let mut chars = java.chars().peekable();
    // Depth of character classes (Java allows nested ones, as does Rust).
    let mut class_depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(escaped) = chars.next() else {
                    return Err("the pattern ends with a lone '\\'".into());
                };
                let in_class = class_depth > 0;
                let class = |set: &str, negated: bool| match (in_class, negated) {
                    (false, false) => format!("[{set}]"),
                    (false, true) => format!("[^{set}]"),
                    (true, false) => set.to_owned(),
                    (true, true) => format!("[^{set}]"),
                };
                match escaped {
                    'w' => out.push_str(&class(WORD, false)),
                    'W' => out.push_str(&class(WORD, true)),
                    'd' => out.push_str(&class(DIGIT, false)),
                    'D' => out.push_str(&class(DIGIT, true)),
                    's' => out.push_str(&class(SPACE, false)),
                    'S' => out.push_str(&class(SPACE, true)),
                    'Q' => {
                        let mut quoted = String::new();
                        loop {
                            match chars.next() {
                                None => break,
                                Some('\\') if chars.peek() == Some(&'E') => {
                                    chars.next();
                                    break;
                                }
                                Some(q) => quoted.push(q),
                            }
                        }
                        out.push_str(&regex::escape(&quoted));
                    }
                    'u' => {
                        let hex: String = chars.by_ref().take(4).collect();
                        if hex.len() != 4 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                            return Err(format!("\\u{hex} needs four hex digits"));
                        }
                        out.push_str(&format!("\\x{{{hex}}}"));
                    }
                    'e' => out.push_str(r"\x1B"),
                    'a' => out.push_str(r"\x07"),
                    'Z' => out.push_str(r"(?:\n?\z)"),
                    // Java escapes any non-letter to mean itself; Rust reads `\<` and `\>` as
                    // word boundaries and refuses some others.
                    c if !c.is_ascii_alphanumeric() => {
                        if c.is_ascii() && regex_syntax_meta(c) {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                // `[]…]` and `[^]…]`: Rust also reads a leading `]` as a literal.
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Characters that must stay escaped to stay literal.
fn regex_syntax_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn compile(source: &str) -> Pattern {
        Pattern::compile(source).unwrap_or_else(|e| panic!("{source}: {e}"))
    }

    fn groups(source: &str, input: &str) -> Option<Vec<String>> {
        let pattern = compile(source);
        let mut scratch = Scratch::default();
        let spans = pattern.captures(input, &mut scratch)?;
        Some(
            spans
                .iter()
                .skip(1)
                .map(|s| s.map(|(a, b)| input[a..b].to_owned()).unwrap_or_default())
                .collect(),
        )
    }

    #[test]
    fn patterns_are_unanchored_full_matches() {
        let input = "kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec><>Count: 42";
        assert_eq!(
            groups(r"kafka.(\w+)<type=(.+), name=(.+)PerSec\w*><>Count", input),
            Some(vec![
                "server".into(),
                "BrokerTopicMetrics".into(),
                "MessagesIn".into()
            ])
        );
        assert!(compile("Count").is_match(input));
        assert!(!compile("^Count").is_match(input));
        assert!(compile(": 42$").is_match(input));
    }

    #[test]
    fn the_greedy_prefix_picks_the_last_occurrence() {
        // As in Java: `^.*(?:(\d+)).*$` captures only the final digit.
        assert_eq!(groups(r"(\d+)", "abc123"), Some(vec!["3".into()]));
    }

    #[test]
    fn java_classes_are_ascii() {
        assert!(!compile(r"^\w+$").is_match("åäö"));
        assert!(compile(r"^\w+$").is_match("abc_1"));
        assert!(!compile(r"^\d$").is_match("٣"));
        assert!(compile(r"^[\w.]+$").is_match("a.b"));
        assert!(compile(r"^[^\s]+$").is_match("a"));
    }

    #[test]
    fn java_only_syntax_is_translated() {
        assert!(compile(r"\Qa.b*\E").is_match("xa.b*y"));
        assert!(!compile(r"^\Qa.b\E$").is_match("axb"));
        assert!(compile(r"^\u0041$").is_match("A"));
        assert!(compile(r"^\<type\=x\>$").is_match("<type=x>"));
        assert!(compile(r"(?<kind>\w+)=").is_match("type=x"));
        assert_eq!(compile(r"(?<kind>\w+)=").names(), &[(1, "kind".to_owned())]);
    }

    #[test]
    fn lookaround_falls_back_to_backtracking() {
        // From jmx_exporter's Cassandra example.
        let pattern =
            compile(r"org.apache.cassandra.metrics<type=(\w+), name=((?!scope)\S*)><>Count");
        assert!(pattern.is_fallback());
        let input =
            "org.apache.cassandra.metrics<type=Client, name=connectedNativeClients><>Count: 3";
        assert!(pattern.is_match(input));
        let mut scratch = Scratch::default();
        let spans = pattern.captures(input, &mut scratch).unwrap_or_default();
        let (a, b) = spans[2].unwrap_or_default();
        assert_eq!(&input[a..b], "connectedNativeClients");
        assert!(!compile("plain").is_fallback());
    }

    /// Asserts that the group search finds what the wrapped regex finds; tells whether it
    /// matched.
    fn assert_same_groups(source: &str, regex: &Regex, finder: &Groups, input: &str) -> bool {
        let mut locations = regex.capture_locations();
        let wrapped = regex.captures_read(&mut locations, input).map(|_| {
            (0..locations.len())
                .map(|i| locations.get(i))
                .collect::<Vec<_>>()
        });
        let mut spans = Vec::new();
        let found = match finder.find(input, &mut spans) {
            Some(true) => Some(spans),
            Some(false) => None,
            // Inputs with line breaks are left to the wrapped regex.
            None if input.contains('\n') => return false,
            None => panic!("{source} gave up on {input:?}"),
        };
        assert_eq!(found, wrapped, "{source} on {input:?}");
        found.is_some()
    }

    /// The reverse-then-anchored group search must agree with the wrapped regex.
    #[test]
    fn group_search_agrees_with_the_wrapped_regex() {
        let patterns = [
            r"kafka.(\w+)<type=(.+), name=(.+)PerSec\w*, (.+)=(.+)><>Count",
            r"kafka.(\w+)<type=(.+), name=(.+)><>(\d+)thPercentile",
            r"(\d+)",
            r"(.*)",
            r"(a|ab)(c|bcd)(d*)",
            r"<(.*?)>",
            r"^(\w+)\.(\w+)",
            r"(x)?y",
            r": (\d+)$",
            r"\b(\w)",
            r"(?<first>\w+)=(\w*)",
            r"a(\s*?)(\w*)",
        ];
        let inputs = [
            "kafka.server<type=BrokerTopicMetrics, name=BytesInPerSec, topic=orders><>Count: 7",
            "kafka.network<type=RequestMetrics, name=TotalTimeMs, request=Produce><>99thPercentile: 9.0",
            "abcd",
            "y xy zy",
            "app<type=Pool, name=a=b><>Count: 12",
            "",
            "no digits here",
            "a.b<c><>d: 1.5E9",
            "å<ä=ö>: 1",
            "xa\nb",
        ];
        for source in patterns {
            let pattern = compile(source);
            let Engine::Regex(regex, finder) = &pattern.engine else {
                panic!("{source} fell back");
            };
            for input in inputs {
                assert_same_groups(source, regex, finder, input);
            }
        }
    }

    /// Every pattern of the shipped and example rule files, on realistic pattern inputs and
    /// on thousands of mutations of them: the group search (fast sequence matcher first,
    /// general engine after) must find exactly what the wrapped regex finds.
    #[test]
    fn group_search_agrees_on_every_shipped_pattern() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = [
            "benches/kafka-50-rules.yml",
            "tests/fixtures/jmx_exporter-kafka-kraft-3_0_0.yml",
            "../../deploy/emr/jmx/hadoop-namenode.yml",
            "../../deploy/emr/jmx/hadoop-datanode.yml",
            "../../deploy/emr/jmx/hadoop-resourcemanager.yml",
            "../../deploy/emr/jmx/hadoop-nodemanager.yml",
        ];
        let mut sources = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
            let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap_or_default();
            let rules = yaml.get("rules").and_then(|r| r.as_sequence()).cloned();
            for rule in rules.unwrap_or_default() {
                if let Some(pattern) = rule.get("pattern").and_then(|p| p.as_str()) {
                    sources.push(pattern.to_owned());
                }
            }
        }
        assert!(sources.len() > 90, "{} patterns", sources.len());
        let seeds = [
            "kafka.server<type=BrokerTopicMetrics, name=BytesInPerSec, topic=orders><>Count: 7",
            "kafka.server<type=BrokerTopicMetrics, name=MessagesInPerSec, topic=a, partition=2><>Count: 3",
            "kafka.log<type=Log, name=LogEndOffset, topic=orders, partition=17><>Value: 12345",
            "kafka.cluster<type=Partition, name=UnderReplicated, topic=t_1, partition=0><>Value: 0",
            "kafka.network<type=RequestMetrics, name=TotalTimeMs, request=Produce><>99thPercentile: 9.0",
            "kafka.server<type=app-info, id=1><>version: 3.0.0",
            "kafka.controller<type=KafkaController, name=ActiveControllerCount><>Value: 1",
            "Hadoop<service=NameNode, name=FSNamesystem><>capacity_total: 1.0E12",
            "Hadoop<service=NameNode, name=RpcActivityForPort8020><>rpc_queue_time_avg_time: 0.5",
            "Hadoop<service=DataNode, name=DataNodeActivity-dn1-9866><>bytes_written: 42",
            "Hadoop<service=ResourceManager, name=QueueMetrics, q0=root, q1=default><>AppsRunning: 2",
            "Hadoop<service=NodeManager, name=JvmMetrics><>mem_heap_used_m: 12.5",
            "java.lang<type=Memory><HeapMemoryUsage>used: 1024",
        ];
        let tokens = [
            "",
            ",",
            ", ",
            "=",
            "<",
            ">",
            "><>",
            ":",
            ": ",
            " ",
            "_",
            "-",
            ".",
            "1",
            "99",
            "é",
            "ö",
            "Count",
            "Value",
            "PerSec",
            "name=",
            "type=",
            "topic=",
            "partition=",
            "Special",
            "Rare",
            // A second start for patterns with a leading literal, and line breaks, which
            // send the search to the reverse automaton.
            "kafka.",
            "Hadoop<service=",
            "\n",
        ];
        // A fixed xorshift, so a failure reproduces.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % bound as u64) as usize
        };
        let mut inputs: Vec<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..400 {
            let mut input = seeds[random(seeds.len())].to_owned();
            for _ in 0..1 + random(3) {
                let mut at = random(input.len() + 1);
                while !input.is_char_boundary(at) {
                    at -= 1;
                }
                let mut cut = (at + random(4)).min(input.len());
                while !input.is_char_boundary(cut) {
                    cut += 1;
                }
                input.replace_range(at..cut, tokens[random(tokens.len())]);
            }
            inputs.push(input);
        }
        let (mut fast, mut matched) = (0, 0);
        for source in &sources {
            let pattern = compile(source);
            let Engine::Regex(regex, finder) = &pattern.engine else {
                continue;
            };
            for input in &inputs {
                if assert_same_groups(source, regex, finder, input) {
                    matched += 1;
                    fast += usize::from(finder.sequence.is_some());
                }
            }
        }
        // The comparison means something only if many inputs match, through the fast path.
        assert!(
            matched > 300 && fast * 10 > matched * 9,
            "{matched} matches, {fast} fast"
        );
    }

    #[test]
    fn invalid_patterns_say_why() {
        let error = Pattern::compile("a(b").unwrap_err();
        assert!(error.contains("unclosed group"), "{error}");
    }
}
