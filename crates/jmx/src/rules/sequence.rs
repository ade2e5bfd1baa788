//! A small backtracker for the shape rule patterns nearly always have: literals, repeated
//! character classes (`\w+`, `.*`, `[^,]+`), groups and alternatives of those.
//!
//! Finding a rule's groups is most of the cost of a first scrape. The general engine
//! (regex-automata's bounded backtracker) records every (state, position) pair it visits;
//! on `type=(.+), name=(.+), topic=(.+)` that is thousands of steps for one attribute. Here a
//! repeated class that a literal follows only hands on the positions where that literal
//! starts, so the same match costs a few comparisons per group.
//!
//! Patterns with anything else (anchors, word boundaries, repeated groups) are not taken,
//! and a match needing more than a bounded number of steps gives up; both go to the general
//! engine. Both engines follow the same priorities (greedy repeats try the longest run
//! first, alternatives in order), so they find the same groups; a test compares them.

use regex_syntax::hir::{Class, ClassUnicode, Hir, HirKind};
use smallvec::SmallVec;

/// Continuations tried before giving the match to the general engine.
const STEP_LIMIT: u32 = 20_000;

/// A pattern in the shape this module runs.
#[derive(Debug)]
pub struct Sequence {
    nodes: Vec<Node>,
    groups: usize,
    /// The same pattern as literals and the repeats between them, when it has that shape.
    skeleton: Option<Skeleton>,
}

/// The shape nearly every rule pattern has: `L0 R1 L1 R2 L2 … Rn [Ln]`, literals with a
/// greedy, unbounded repeat of one class (maybe a group) between each two. A literal may
/// hold single-character classes (`kafka.server`, whose `.` is any character).
///
/// Such a pattern needs no backtracking. Greedy repeats make the first match the one whose
/// literals sit as far right as they can, and where each can sit is found from the right:
/// `Ln` at its last occurrence, `Ln-1` at its last occurrence that still leaves `Rn` its
/// minimum before `Ln`, and so on. That placement only assumed each repeat takes any text;
/// one pass from the left then checks each repeat's class over what it was given, and the
/// backtracker decides if one does not fit. Only ASCII inputs are placed this way, so that
/// every character is one byte.
#[derive(Debug)]
struct Skeleton {
    head: Box<[Atom]>,
    gaps: Vec<Gap>,
}

/// A repeat and the literal after it.
#[derive(Debug)]
struct Gap {
    group: Option<usize>,
    class: CharSet,
    min: u32,
    /// Empty only after the last repeat, which then takes the longest run it can.
    literal: Box<[Atom]>,
}

/// One character of a literal: a byte, or a class of ASCII characters.
#[derive(Debug, Clone, Copy)]
enum Atom {
    Byte(u8),
    Class(u128),
}

impl Atom {
    fn matches(self, byte: u8) -> bool {
        match self {
            Atom::Byte(b) => b == byte,
            Atom::Class(set) => byte < 0x80 && set >> byte & 1 == 1,
        }
    }
}

#[derive(Debug)]
enum Node {
    Literal(Box<[u8]>),
    /// A character class repeated `min..=max` times (`max` none: unbounded).
    Repeat {
        class: CharSet,
        min: u32,
        max: Option<u32>,
        greedy: bool,
    },
    Group {
        index: usize,
        nodes: Vec<Node>,
    },
    Alternation(Vec<Vec<Node>>),
}

/// A character class as an ASCII bitmap, plus whether it takes every non-ASCII character
/// (`.`, `[^,]`) or none (`\w`, `[a-z]`). Classes in between are not taken.
#[derive(Debug, Clone, Copy)]
struct CharSet {
    ascii: u128,
    non_ascii: bool,
}

/// The match needed more steps than allowed, or the pattern and input disagree with what
/// the caller established; the general engine decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GaveUp;

impl Sequence {
    /// The sequence for `pattern` (in Rust's dialect, as the `regex` crate compiles it), or
    /// `None` if it has a part this module does not run.
    pub fn new(pattern: &str) -> Option<Self> {
        let hir = regex_syntax::ParserBuilder::new()
            .build()
            .parse(pattern)
            .ok()?;
        let mut nodes = Vec::new();
        let mut groups = 0;
        lower(&hir, &mut nodes, &mut groups)?;
        let skeleton = Skeleton::new(&nodes);
        Some(Self {
            nodes,
            groups,
            skeleton,
        })
    }

    /// The literal every match starts with, if the pattern starts with one.
    pub fn literal_prefix(&self) -> Option<&[u8]> {
        match self.nodes.first() {
            Some(Node::Literal(literal)) if !literal.is_empty() => Some(literal),
            _ => None,
        }
    }

    /// Matches the pattern anchored at `start`, ending where the rest of the input is one
    /// line (what follows is taken by the `.*$` jmx_exporter wraps a pattern in). Fills
    /// `spans` with the group spans, group 0 being the whole input.
    pub fn captures(
        &self,
        input: &str,
        start: usize,
        spans: &mut Vec<Option<(usize, usize)>>,
    ) -> Result<bool, GaveUp> {
        spans.clear();
        spans.resize(self.groups + 1, None);
        let input = input.as_bytes();
        let last_line = memchr::memrchr(b'\n', input).map_or(0, |at| at + 1);
        if last_line == 0
            && let Some(skeleton) = &self.skeleton
        {
            match skeleton.captures(input, start, spans) {
                Some(true) => {
                    spans[0] = Some((0, input.len()));
                    return Ok(true);
                }
                Some(false) => return Ok(false),
                None => spans.iter_mut().for_each(|span| *span = None),
            }
        }
        let mut run = Run {
            input,
            spans,
            steps: 0,
            one_line: last_line == 0,
        };
        let matched = sequence(&self.nodes, None, &mut run, start, &mut |_, end| {
            Ok(end >= last_line)
        })?;
        if matched {
            run.spans[0] = Some((0, input.len()));
        }
        Ok(matched)
    }
}

impl Skeleton {
    fn new(nodes: &[Node]) -> Option<Self> {
        let mut nodes = nodes.iter().peekable();
        let literal = |nodes: &mut std::iter::Peekable<std::slice::Iter<'_, Node>>| {
            let mut atoms = Vec::new();
            loop {
                match nodes.peek() {
                    Some(Node::Literal(bytes)) => {
                        atoms.extend(bytes.iter().map(|&b| Atom::Byte(b)))
                    }
                    Some(Node::Repeat {
                        class,
                        min: 1,
                        max: Some(1),
                        ..
                    }) => atoms.push(Atom::Class(class.ascii)),
                    _ => break,
                }
                nodes.next();
            }
            atoms.into_boxed_slice()
        };
        let head = literal(&mut nodes);
        let mut gaps = Vec::new();
        while let Some(node) = nodes.next() {
            let (group, repeat) = match node {
                Node::Group { index, nodes } if nodes.len() == 1 => (Some(*index), &nodes[0]),
                Node::Repeat { .. } => (None, node),
                _ => return None,
            };
            let &Node::Repeat {
                class,
                min,
                max: None,
                greedy: true,
            } = repeat
            else {
                return None;
            };
            let literal = literal(&mut nodes);
            // Two repeats in a row share their text in ways the placement does not know.
            if literal.is_empty() && nodes.peek().is_some() {
                return None;
            }
            gaps.push(Gap {
                group,
                class,
                min,
                literal,
            });
        }
        (!gaps.is_empty()).then_some(Self { head, gaps })
    }

    /// The groups of the match from `start` in a one-line `input`, into `spans`; `None`
    /// when the input is not ASCII or a repeat's class does not take what the placement
    /// gave it.
    fn captures(
        &self,
        input: &[u8],
        start: usize,
        spans: &mut [Option<(usize, usize)>],
    ) -> Option<bool> {
        if !input.is_ascii() {
            return None;
        }
        if !matches_at(input, start, &self.head) {
            return Some(false);
        }
        let from = start + self.head.len();
        // Where each literal starts, placed from the right.
        let mut starts: SmallVec<[usize; 16]> = SmallVec::from_elem(0, self.gaps.len());
        let mut limit = input.len();
        for (gap, at) in self.gaps.iter().zip(starts.iter_mut()).rev() {
            *at = if gap.literal.is_empty() {
                limit
            } else {
                match rfind(&input[from..limit], &gap.literal) {
                    Some(found) => from + found,
                    None => return Some(false),
                }
            };
            // The literal before this repeat ends by here.
            match at.checked_sub(gap.min as usize) {
                Some(end) if end >= from => limit = end,
                _ => return Some(false),
            }
        }
        let mut at = from;
        for (gap, &literal_at) in self.gaps.iter().zip(&starts) {
            let end = if gap.literal.is_empty() {
                gap.class.longest_run(input, at, true)
            } else {
                literal_at
            };
            let text = &input[at..end];
            if text.len() < gap.min as usize || !text.iter().all(|&b| gap.class.ascii >> b & 1 == 1)
            {
                return None;
            }
            if let Some(group) = gap.group {
                spans[group] = Some((at, end));
            }
            at = end + gap.literal.len();
        }
        Some(true)
    }
}

/// Whether `atoms` match `input` at `at`.
fn matches_at(input: &[u8], at: usize, atoms: &[Atom]) -> bool {
    input.get(at..at + atoms.len()).is_some_and(|bytes| {
        atoms
            .iter()
            .zip(bytes)
            .all(|(atom, &byte)| atom.matches(byte))
    })
}

/// The last place `atoms` (not empty) match in `haystack`, found from the last of their
/// plain bytes with a vectorised search.
fn rfind(haystack: &[u8], atoms: &[Atom]) -> Option<usize> {
    let mut upper = haystack.len().checked_sub(atoms.len())? + 1;
    let anchor = atoms.iter().position(|atom| matches!(atom, Atom::Byte(_)));
    let Some((offset, Atom::Byte(byte))) = anchor.map(|i| (i, atoms[i])) else {
        return (0..upper).rev().find(|&at| matches_at(haystack, at, atoms));
    };
    while let Some(found) = memchr::memrchr(byte, &haystack[offset..offset + upper]) {
        if matches_at(haystack, found, atoms) {
            return Some(found);
        }
        upper = found;
    }
    None
}

/// Appends the nodes for `hir` to `out`; `None` if it has an unsupported part.
fn lower(hir: &Hir, out: &mut Vec<Node>, groups: &mut usize) -> Option<()> {
    match hir.kind() {
        HirKind::Empty => {}
        HirKind::Literal(literal) => out.push(Node::Literal(literal.0.clone())),
        HirKind::Class(Class::Unicode(class)) => out.push(Node::Repeat {
            class: CharSet::new(class)?,
            min: 1,
            max: Some(1),
            greedy: true,
        }),
        HirKind::Repetition(repetition) => {
            let class = match repetition.sub.kind() {
                HirKind::Class(Class::Unicode(class)) => CharSet::new(class)?,
                HirKind::Literal(literal) if literal.0.len() == 1 && literal.0[0] < 0x80 => {
                    CharSet::byte(literal.0[0])
                }
                _ => return None,
            };
            out.push(Node::Repeat {
                class,
                min: repetition.min,
                max: repetition.max,
                greedy: repetition.greedy,
            });
        }
        HirKind::Capture(capture) => {
            let index = capture.index as usize;
            *groups = (*groups).max(index);
            let mut nodes = Vec::new();
            lower(&capture.sub, &mut nodes, groups)?;
            out.push(Node::Group { index, nodes });
        }
        HirKind::Concat(parts) => {
            for part in parts {
                lower(part, out, groups)?;
            }
        }
        HirKind::Alternation(branches) => {
            let mut lowered = Vec::with_capacity(branches.len());
            for branch in branches {
                let mut nodes = Vec::new();
                lower(branch, &mut nodes, groups)?;
                lowered.push(nodes);
            }
            out.push(Node::Alternation(lowered));
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Look(_) => return None,
    }
    Some(())
}

impl CharSet {
    fn byte(byte: u8) -> Self {
        Self {
            ascii: 1 << byte,
            non_ascii: false,
        }
    }

    fn new(class: &ClassUnicode) -> Option<Self> {
        const SURROGATES: u32 = 0xE000 - 0xD800;
        const NON_ASCII: u32 = 0x10_FFFF - 0x80 + 1 - SURROGATES;
        let mut ascii = 0u128;
        let mut non_ascii = 0u32;
        for range in class.ranges() {
            let (start, end) = (u32::from(range.start()), u32::from(range.end()));
            for c in start..=end.min(0x7F) {
                ascii |= 1 << c;
            }
            let (low, high) = (start.max(0x80), end);
            if low <= high {
                // Ranges never hold surrogates, but may span their gap.
                let gap = if low < 0xD800 && high > 0xDFFF {
                    SURROGATES
                } else {
                    0
                };
                non_ascii += high - low + 1 - gap;
            }
        }
        let non_ascii = match non_ascii {
            0 => false,
            NON_ASCII => true,
            _ => return None,
        };
        Some(Self { ascii, non_ascii })
    }

    /// Where the longest run of the class from `at` ends; `one_line` says the input has no
    /// line break.
    fn longest_run(&self, input: &[u8], at: usize, one_line: bool) -> usize {
        const DOT: u128 = !(1 << b'\n');
        if self.ascii == DOT && self.non_ascii {
            if one_line {
                return input.len();
            }
            return memchr::memchr(b'\n', &input[at..]).map_or(input.len(), |n| at + n);
        }
        let mut end = at;
        while let Some(len) = self.take(&input[end..]) {
            end += len;
        }
        end
    }

    /// The length of the character at the start of `bytes` if the class takes it.
    fn take(&self, bytes: &[u8]) -> Option<usize> {
        let &first = bytes.first()?;
        if first < 0x80 {
            (self.ascii >> first & 1 == 1).then_some(1)
        } else if self.non_ascii {
            Some(match first {
                0xF0.. => 4,
                0xE0.. => 3,
                _ => 2,
            })
        } else {
            None
        }
    }
}

struct Run<'a> {
    input: &'a [u8],
    spans: &'a mut Vec<Option<(usize, usize)>>,
    steps: u32,
    /// Whether the input has no line break (so `.` takes everything).
    one_line: bool,
}

impl Run<'_> {
    fn step(&mut self) -> Result<(), GaveUp> {
        self.steps += 1;
        if self.steps > STEP_LIMIT {
            return Err(GaveUp);
        }
        Ok(())
    }
}

type Next<'k> = dyn FnMut(&mut Run<'_>, usize) -> Result<bool, GaveUp> + 'k;

/// Matches `nodes` from `at`, then whatever `next` wants from where they end. `then` is
/// the literal known to follow the nodes, if any.
fn sequence(
    nodes: &[Node],
    then: Option<&[u8]>,
    run: &mut Run<'_>,
    at: usize,
    next: &mut Next<'_>,
) -> Result<bool, GaveUp> {
    let Some((first, rest)) = nodes.split_first() else {
        return next(run, at);
    };
    // A literal right after a repeat: ends where it does not start are not worth a try.
    let followed_by = match rest.first() {
        Some(Node::Literal(literal)) => Some(&literal[..]),
        Some(_) => None,
        None => then,
    };
    node(first, followed_by, run, at, &mut |run, end| {
        sequence(rest, then, run, end, next)
    })
}

fn node(
    node: &Node,
    followed_by: Option<&[u8]>,
    run: &mut Run<'_>,
    at: usize,
    next: &mut Next<'_>,
) -> Result<bool, GaveUp> {
    run.step()?;
    match node {
        Node::Literal(literal) => {
            if run.input[at..].starts_with(literal) {
                next(run, at + literal.len())
            } else {
                Ok(false)
            }
        }
        Node::Group { index, nodes } => {
            let index = *index;
            sequence(nodes, followed_by, run, at, &mut |run, end| {
                let before = run.spans[index].replace((at, end));
                if next(run, end)? {
                    return Ok(true);
                }
                run.spans[index] = before;
                Ok(false)
            })
        }
        Node::Alternation(branches) => {
            for branch in branches {
                if sequence(branch, followed_by, run, at, next)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        Node::Repeat {
            class,
            min,
            max,
            greedy,
        } => repeat(*class, *min, *max, *greedy, followed_by, run, at, next),
    }
}

#[allow(clippy::too_many_arguments)]
fn repeat(
    class: CharSet,
    min: u32,
    max: Option<u32>,
    greedy: bool,
    followed_by: Option<&[u8]>,
    run: &mut Run<'_>,
    at: usize,
    next: &mut Next<'_>,
) -> Result<bool, GaveUp> {
    let input = run.input;
    if greedy
        && max.is_none()
        && min <= 1
        && let Some(literal) = followed_by
    {
        // The usual case, `(.+), name=`: try the ends where the literal starts, from the
        // last one back, found with a vectorised search instead of a step per character.
        let end = class.longest_run(input, at, run.one_line);
        let shortest = match min {
            0 => at,
            _ if end == at => return Ok(false),
            _ => at + class.take(&input[at..]).unwrap_or(1),
        };
        let mut upper = (end + 1).min(input.len());
        while shortest < upper {
            let Some(offset) = memchr::memrchr(literal[0], &input[shortest..upper]) else {
                break;
            };
            let candidate = shortest + offset;
            if input[candidate..].starts_with(literal) {
                run.step()?;
                if next(run, candidate)? {
                    return Ok(true);
                }
            }
            upper = candidate;
        }
        return Ok(false);
    }
    // The longest run the class allows, up to `max` characters.
    let (mut end, mut count) = (at, 0u32);
    while max.is_none_or(|max| count < max) {
        let Some(len) = class.take(&input[end..]) else {
            break;
        };
        end += len;
        count += 1;
    }
    if count < min {
        return Ok(false);
    }
    let worth_trying =
        |end: usize| followed_by.is_none_or(|literal| input[end..].starts_with(literal));
    if greedy {
        loop {
            if worth_trying(end) {
                run.step()?;
                if next(run, end)? {
                    return Ok(true);
                }
            }
            if count == min {
                return Ok(false);
            }
            // Back one character.
            end -= 1;
            while input[end] & 0xC0 == 0x80 {
                end -= 1;
            }
            count -= 1;
        }
    } else {
        let (longest, most) = (end, count);
        let (mut end, mut count) = (at, 0u32);
        loop {
            if count >= min && worth_trying(end) {
                run.step()?;
                if next(run, end)? {
                    return Ok(true);
                }
            }
            if count == most || end >= longest {
                return Ok(false);
            }
            end += class.take(&input[end..]).ok_or(GaveUp)?;
            count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn groups(pattern: &str, input: &str, start: usize) -> Option<Vec<Option<&'static str>>> {
        let sequence = Sequence::new(pattern).unwrap();
        let mut spans = Vec::new();
        let input: &'static str = Box::leak(input.to_owned().into_boxed_str());
        sequence
            .captures(input, start, &mut spans)
            .unwrap()
            .then(|| {
                spans[1..]
                    .iter()
                    .map(|s| s.map(|(a, b)| &input[a..b]))
                    .collect()
            })
    }

    #[test]
    fn greedy_groups_take_the_last_separator_that_lets_the_rest_match() {
        assert_eq!(
            groups(
                "(.+), name=(.+)><>Value",
                "type=Log, name=Size, topic=a, name=x><>Value: 1",
                0
            ),
            Some(vec![Some("type=Log, name=Size, topic=a"), Some("x")])
        );
        assert_eq!(groups("(.+?),", "a,b,c", 0), Some(vec![Some("a")]));
        assert_eq!(
            groups("(a|ab)(c|bcd)", "abcd", 0),
            Some(vec![Some("a"), Some("bcd")])
        );
        assert_eq!(groups("x(y)", "zz", 0), None);
    }

    #[test]
    fn the_match_leaves_one_line_for_the_wrapping_dot_star() {
        // The first end the lazy repeat offers leaves a line break after the match.
        assert_eq!(
            groups(r"a([\t\n ]*?)([a-z]*)", "a\nb", 0),
            Some(vec![Some("\n"), Some("b")])
        );
        assert_eq!(groups(r"a([a-z]*)", "ab\nc", 0), None);
    }

    #[test]
    fn unsupported_shapes_are_refused() {
        assert!(Sequence::new(r"^a").is_none());
        assert!(Sequence::new(r"\ba").is_none());
        assert!(Sequence::new(r"(ab)+").is_none());
        // Some but not all non-ASCII characters.
        assert!(Sequence::new(r"[a-é]+").is_none());
        assert!(Sequence::new(r"[^,]+=(.*)").is_some());
    }

    #[test]
    fn classes_step_over_whole_characters() {
        assert_eq!(
            groups("(.)(.+)", "åäö", 0),
            Some(vec![Some("å"), Some("äö")])
        );
        assert_eq!(groups(r"([^,]+),", "é,x", 0), Some(vec![Some("é")]));
        assert_eq!(groups(r"([0-9A-Za-z_]+)", "åb", 0), None);
    }

    /// The placement from the right must find what backtracking finds, or leave the input
    /// to it; on the shapes it takes and inputs that trip each of its checks.
    #[test]
    fn skeleton_placement_agrees_with_backtracking() {
        let patterns = [
            // As rule patterns come here: `\\w` and `\\d` rewritten to Java's ASCII classes.
            "kafka.([0-9A-Za-z_]+)<type=(.+), name=(.+), (.+)=(.+), (.+)=(.+)><>Value",
            "kafka.([0-9A-Za-z_]+)<type=(.+), name=(.+)PerSec[0-9A-Za-z_]*, (.+)=(.+)><>Count",
            "a(.*)b(.*)",
            "x([a-z-]+)",
            "([0-9A-Za-z_]+)=(.{2,}),",
            "([^,]+),([0-9]+)",
            "k(.+)k",
            "[a-z].(.+)[0-9]",
        ];
        let inputs = [
            "kafka.log<type=Log, name=Size, topic=orders-1, partition=7><>Value: 12",
            "kafka.log<type=Log, name=Size, topic=o=r, ders, partition=7><>Value: 12",
            "kafka.server<type=BrokerTopicMetrics, name=BytesInPerSec, topic=t><>Count: 3",
            "kafka.server<type=B, name=XPerSecond, a=b><>Count",
            "kafka.lo g<type=Log, name=Size, topic=a, partition=1><>Value: 1",
            "ab",
            "aébé",
            "xab-cD",
            "xAB",
            "x",
            "ab=é,",
            "ab=c,",
            "a=bc,d=e,",
            "é=bc,",
            "a,1,b,c",
            "a,b",
            "kk",
            "kéké",
            "kxk",
            "ab.c9",
            "a9",
            "z..9",
        ];
        for pattern in patterns {
            let with = Sequence::new(pattern).unwrap();
            assert!(with.skeleton.is_some(), "{pattern}");
            let mut without = Sequence::new(pattern).unwrap();
            without.skeleton = None;
            for input in inputs {
                for start in [0, input.find(['a', 'k', 'x']).unwrap_or(0)] {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    let expected = without.captures(input, start, &mut b);
                    let got = with.captures(input, start, &mut a);
                    assert_eq!(got, expected, "{pattern} on {input:?} from {start}");
                    if got == Ok(true) {
                        assert_eq!(a, b, "{pattern} on {input:?} from {start}");
                    }
                }
            }
        }
        // Shapes it leaves to backtracking.
        for pattern in ["(.+)(.+)x", "(a|b)c", "(.+?),", "a(x.+)b", "a.{1,3}b"] {
            assert!(
                Sequence::new(pattern).unwrap().skeleton.is_none(),
                "{pattern}"
            );
        }
    }

    #[test]
    fn runaway_matches_give_up() {
        let sequence = Sequence::new("(.*)(.*)(.*)(.*)(.*)x").unwrap();
        let input = "a".repeat(200);
        let mut spans = Vec::new();
        assert_eq!(sequence.captures(&input, 0, &mut spans), Err(GaveUp));
    }
}
