//! scionproto's path sequences (`scion showpaths --sequence`, bwtestclient's `-sequence`):
//! a regular expression over the ASes of a path, each AS written as a hop predicate.
//!
//! `1-ff00:0:133#0 1-ff00:0:120#2,1 0 0 1-ff00:0:110#0`: a path of exactly five ASes, the
//! second entered by interface 2 and left by 1. Operators: `?` (at most once), `+` (at least
//! once), `*` (any number of times), `|` (either), `( )`. Precedence as in scionproto's
//! grammar: the postfix operators bind tightest, then `|`, then concatenation, so
//! `0 1-ff00:0:110|1-ff00:0:111 0` is `0 (1-ff00:0:110|1-ff00:0:111) 0`. Whitespace
//! separates tokens only where it must (`1 2` is two hops, `12` one). An empty sequence
//! matches every path; the same-AS path (no hops) matches only what can match nothing
//! (`0*`).
//!
//! Tokens follow scionproto's lexer (longest match): `0` is the wildcard and never starts a
//! number, so `01` is the two hops `0 1`.

use std::fmt;
use std::str::FromStr;

use super::hop::{hops_of, parse_as, Hop, HopPredicate, Ifaces};
use crate::scion::ScionPath;

/// Longest sequence text accepted (a bound on work and memory for API input).
pub const MAX_LEN: usize = 4096;
/// Deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    #[error("the sequence is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("parentheses nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("unexpected character {found:?} at {at}")]
    BadChar { at: usize, found: char },
    #[error("unexpected {found} at {at} ({expected})")]
    Unexpected {
        at: usize,
        found: String,
        expected: &'static str,
    },
    #[error("the sequence ends early ({expected})")]
    UnexpectedEnd { expected: &'static str },
    #[error("{what} {value:?} at {at} is out of range ({limit})")]
    OutOfRange {
        at: usize,
        what: &'static str,
        value: String,
        limit: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Zero,
    Num(String),
    /// `-0`.
    AnyAs,
    /// `-123` (decimal AS) or `-ff00:0:110`: the text after the dash.
    As(String),
    Hash,
    Comma,
    Question,
    Plus,
    Star,
    Or,
    LParen,
    RParen,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Zero => f.write_str("'0'"),
            Tok::Num(n) => write!(f, "'{n}'"),
            Tok::AnyAs => f.write_str("'-0'"),
            Tok::As(a) => write!(f, "'-{a}'"),
            Tok::Hash => f.write_str("'#'"),
            Tok::Comma => f.write_str("','"),
            Tok::Question => f.write_str("'?'"),
            Tok::Plus => f.write_str("'+'"),
            Tok::Star => f.write_str("'*'"),
            Tok::Or => f.write_str("'|'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
        }
    }
}

/// Length of a hex group at the start of `b` in scionproto's form: `0` alone, or a run of
/// hex digits not starting with 0.
fn hex_group(b: &[u8]) -> usize {
    match b.first() {
        Some(b'0') => 1,
        Some(c) if c.is_ascii_hexdigit() => b.iter().take_while(|c| c.is_ascii_hexdigit()).count(),
        _ => 0,
    }
}

/// Length of `hex:hex:hex` at the start of `b`, if it is there.
fn hex_as(b: &[u8]) -> Option<usize> {
    let mut n = 0;
    for group in 0..3 {
        if group > 0 {
            if b.get(n) != Some(&b':') {
                return None;
            }
            n += 1;
        }
        let g = hex_group(&b[n..]);
        if g == 0 {
            return None;
        }
        n += g;
    }
    Some(n)
}

fn lex(s: &str) -> Result<Vec<(usize, Tok)>, SequenceError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let single = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => Some(Tok::Hash),
            b',' => Some(Tok::Comma),
            b'?' => Some(Tok::Question),
            b'+' => Some(Tok::Plus),
            b'*' => Some(Tok::Star),
            b'|' => Some(Tok::Or),
            b'(' => Some(Tok::LParen),
            b')' => Some(Tok::RParen),
            b'0' => Some(Tok::Zero),
            _ => None,
        };
        if let Some(t) = single {
            out.push((i, t));
            i += 1;
            continue;
        }
        let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        match c {
            b'1'..=b'9' => {
                let n = digits(i);
                out.push((i, Tok::Num(s[i..i + n].to_string())));
                i += n;
            }
            b'-' => {
                // Longest of `-hex:hex:hex`, `-NUM`, `-0`, as scionproto's lexer picks.
                let rest = &b[i + 1..];
                let len = match (hex_as(rest), rest.first()) {
                    (Some(n), _) => n,
                    (None, Some(b'1'..=b'9')) => digits(i + 1),
                    (None, Some(b'0')) => 1,
                    _ => {
                        return Err(SequenceError::BadChar { at: i, found: '-' });
                    }
                };
                let text = &s[i + 1..i + 1 + len];
                let tok = if text == "0" {
                    Tok::AnyAs
                } else {
                    Tok::As(text.to_string())
                };
                out.push((i, tok));
                i += 1 + len;
            }
            _ => {
                let found = s[i..].chars().next().unwrap_or('?');
                return Err(SequenceError::BadChar { at: i, found });
            }
        }
    }
    Ok(out)
}

/// A parsed expression. Repeated postfix operators collapse into one (`x?*` is `x*`), so
/// the tree is never deeper than the parentheses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Hop(HopPredicate),
    Concat(Vec<Node>),
    Or(Vec<Node>),
    Repeat {
        inner: Box<Node>,
        min: u8,
        many: bool,
    },
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    depth: usize,
}

const HOP_START: &str = "expected a hop predicate or '('";

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(0, |(a, _)| *a)
    }

    fn unexpected(&self, expected: &'static str) -> SequenceError {
        match self.toks.get(self.pos) {
            Some((at, t)) => SequenceError::Unexpected {
                at: *at,
                found: t.to_string(),
                expected,
            },
            None => SequenceError::UnexpectedEnd { expected },
        }
    }

    fn starts_term(&self) -> bool {
        matches!(self.peek(), Some(Tok::Zero | Tok::Num(_) | Tok::LParen))
    }

    /// Concatenation, the loosest binding.
    fn sequence(&mut self) -> Result<Node, SequenceError> {
        let mut parts = vec![self.alternatives()?];
        while self.starts_term() {
            parts.push(self.alternatives()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Node::Concat(parts)
        })
    }

    fn alternatives(&mut self) -> Result<Node, SequenceError> {
        let mut alts = vec![self.postfix()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            alts.push(self.postfix()?);
        }
        Ok(if alts.len() == 1 {
            alts.remove(0)
        } else {
            Node::Or(alts)
        })
    }

    fn postfix(&mut self) -> Result<Node, SequenceError> {
        let mut node = self.primary()?;
        loop {
            let (min, many) = match self.peek() {
                Some(Tok::Question) => (0, false),
                Some(Tok::Plus) => (1, true),
                Some(Tok::Star) => (0, true),
                _ => return Ok(node),
            };
            self.pos += 1;
            node = match node {
                // (x{a,b}){c,d} for these three operators is x with the laxer of each bound.
                Node::Repeat {
                    inner,
                    min: m0,
                    many: k0,
                } => Node::Repeat {
                    inner,
                    min: m0.min(min),
                    many: k0 || many,
                },
                other => Node::Repeat {
                    inner: Box::new(other),
                    min,
                    many,
                },
            };
        }
    }

    fn primary(&mut self) -> Result<Node, SequenceError> {
        match self.peek() {
            Some(Tok::LParen) => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(SequenceError::TooDeep);
                }
                self.pos += 1;
                let inner = self.sequence()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(self.unexpected("expected ')'"));
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(inner)
            }
            Some(Tok::Zero | Tok::Num(_)) => self.hop().map(Node::Hop),
            _ => Err(self.unexpected(HOP_START)),
        }
    }

    fn number(&self, at: usize, what: &'static str, text: &str) -> Result<u16, SequenceError> {
        text.parse().map_err(|_| SequenceError::OutOfRange {
            at,
            what,
            value: text.chars().take(40).collect(),
            limit: "below 65536",
        })
    }

    /// `isd`, `isd as`, `isd as # if`, `isd as # if , if`.
    fn hop(&mut self) -> Result<HopPredicate, SequenceError> {
        let at = self.at();
        let isd = match self.peek() {
            Some(Tok::Zero) => 0,
            Some(Tok::Num(n)) => self.number(at, "ISD", &n.clone())?,
            _ => return Err(self.unexpected(HOP_START)),
        };
        self.pos += 1;
        let at = self.at();
        let asn = match self.peek() {
            Some(Tok::AnyAs) => 0,
            Some(Tok::As(a)) => parse_as(a).ok_or_else(|| SequenceError::OutOfRange {
                at,
                what: "AS",
                value: a.chars().take(40).collect(),
                limit: "a decimal below 2^32 or hex groups of at most 4 digits",
            })?,
            _ => {
                return Ok(HopPredicate {
                    isd,
                    ..HopPredicate::ANY
                })
            }
        };
        self.pos += 1;
        if self.peek() != Some(&Tok::Hash) {
            return Ok(HopPredicate {
                isd,
                asn,
                ifaces: Ifaces::Any,
            });
        }
        self.pos += 1;
        let first = self.iface()?;
        let ifaces = if self.peek() == Some(&Tok::Comma) {
            self.pos += 1;
            Ifaces::Pair(first, self.iface()?)
        } else {
            Ifaces::Either(first)
        };
        Ok(HopPredicate { isd, asn, ifaces })
    }

    fn iface(&mut self) -> Result<u16, SequenceError> {
        let at = self.at();
        let v = match self.peek() {
            Some(Tok::Zero) => 0,
            Some(Tok::Num(n)) => self.number(at, "interface", &n.clone())?,
            _ => return Err(self.unexpected("expected an interface number")),
        };
        self.pos += 1;
        Ok(v)
    }
}

/// A compiled path sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    text: String,
    /// The automaton; empty for the empty sequence, which matches every path.
    states: Vec<State>,
    entry: usize,
}

impl FromStr for Sequence {
    type Err = SequenceError;

    fn from_str(s: &str) -> Result<Self, SequenceError> {
        if s.len() > MAX_LEN {
            return Err(SequenceError::TooLong);
        }
        let toks = lex(s)?;
        let text = s.trim().to_string();
        if toks.is_empty() {
            return Ok(Sequence {
                text,
                states: Vec::new(),
                entry: 0,
            });
        }
        let mut p = Parser {
            toks,
            pos: 0,
            depth: 0,
        };
        let root = p.sequence()?;
        if p.pos < p.toks.len() {
            return Err(p.unexpected("expected a hop predicate, an operator or the end"));
        }
        let mut states = vec![State::Match];
        let entry = compile(&mut states, &root, 0);
        Ok(Sequence {
            text,
            states,
            entry,
        })
    }
}

impl fmt::Display for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A state of the compiled automaton (Thompson's construction: linear in the sequence's
/// size, and matching is linear in the path's length, whatever the nesting).
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Consume one hop that the predicate matches, then go on at the state given.
    Hop(HopPredicate, usize),
    /// Go on at both states without consuming anything.
    Split(usize, usize),
    Match,
}

/// Builds the automaton for `node` ending in `next`; returns the node's entry state.
fn compile(states: &mut Vec<State>, node: &Node, next: usize) -> usize {
    fn push(states: &mut Vec<State>, s: State) -> usize {
        states.push(s);
        states.len() - 1
    }
    match node {
        Node::Hop(p) => push(states, State::Hop(*p, next)),
        Node::Concat(parts) => parts
            .iter()
            .rev()
            .fold(next, |n, part| compile(states, part, n)),
        Node::Or(alts) => {
            let entries: Vec<usize> = alts.iter().map(|a| compile(states, a, next)).collect();
            let mut entry = entries[entries.len() - 1];
            for &e in entries[..entries.len() - 1].iter().rev() {
                entry = push(states, State::Split(e, entry));
            }
            entry
        }
        Node::Repeat {
            inner, many: false, ..
        } => {
            let e = compile(states, inner, next);
            push(states, State::Split(e, next))
        }
        Node::Repeat {
            inner,
            min,
            many: true,
        } => {
            // The loop state is patched once the inner entry is known.
            let lp = push(states, State::Split(next, next));
            let e = compile(states, inner, lp);
            states[lp] = State::Split(e, next);
            if *min == 0 {
                lp
            } else {
                e
            }
        }
    }
}

/// Adds `s` and every state reachable from it without consuming a hop.
fn close(states: &[State], s: usize, set: &mut [bool], list: &mut Vec<usize>) {
    let mut stack = vec![s];
    while let Some(s) = stack.pop() {
        if set[s] {
            continue;
        }
        set[s] = true;
        list.push(s);
        if let State::Split(a, b) = states[s] {
            stack.push(b);
            stack.push(a);
        }
    }
}

impl Sequence {
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// Whether the whole list of hops matches.
    pub fn matches_hops(&self, hops: &[Hop]) -> bool {
        let states = &self.states;
        if states.is_empty() {
            return true;
        }
        let mut set = vec![false; states.len()];
        let mut now = Vec::new();
        close(states, self.entry, &mut set, &mut now);
        for hop in hops {
            set.iter_mut().for_each(|b| *b = false);
            let mut next = Vec::new();
            for &s in &now {
                if let State::Hop(p, to) = &states[s] {
                    if p.matches_hop(hop) {
                        close(states, *to, &mut set, &mut next);
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            now = next;
        }
        now.iter().any(|&s| states[s] == State::Match)
    }

    /// Whether a path matches. A path with a malformed interface list matches no
    /// non-empty sequence.
    pub fn matches(&self, p: &ScionPath) -> bool {
        if self.is_empty() {
            return true;
        }
        hops_of(p).is_some_and(|h| self.matches_hops(&h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scion::parse_ia;

    /// Hops from scionproto's notation `IA#in,out` separated by spaces.
    fn hops(desc: &str) -> Vec<Hop> {
        desc.split_whitespace()
            .map(|h| {
                let (ia, ifs) = h.split_once('#').unwrap();
                let (i, e) = ifs.split_once(',').unwrap();
                Hop {
                    ia: parse_ia(ia).unwrap(),
                    ingress: i.parse().unwrap(),
                    egress: e.parse().unwrap(),
                }
            })
            .collect()
    }

    fn count(seq: &str, paths: &[&str]) -> usize {
        let s: Sequence = seq.parse().unwrap_or_else(|e| panic!("{seq}: {e}"));
        paths.iter().filter(|p| s.matches_hops(&hops(p))).count()
    }

    // Paths shaped like those of scionproto's test graph (private/xtest/graph), for the
    // cases of their sequence_test.go.
    const EMPTY: &[&str] = &[""];
    const P212_211: &[&str] = &[
        "2-ff00:0:212#0,1 2-ff00:0:211#2,0",
        "2-ff00:0:212#0,3 2-ff00:0:211#4,0",
    ];
    const P122_220: &[&str] = &[
        "1-ff00:0:122#0,1815 1-ff00:0:121#1518,1530 1-ff00:0:120#3015,3122 2-ff00:0:220#2231,0",
        "1-ff00:0:122#0,1816 1-ff00:0:121#1618,1531 1-ff00:0:120#3115,3123 2-ff00:0:220#2331,0",
    ];
    const P133_132: &[&str] = &["1-ff00:0:133#0,1019 1-ff00:0:132#1910,0"];
    const P133_131: &[&str] = &["1-ff00:0:133#0,1019 1-ff00:0:132#1910,1916 1-ff00:0:131#1619,0"];
    const P211_220: &[&str] = &[
        "2-ff00:0:211#0,2 2-ff00:0:221#3,5 2-ff00:0:220#6,0",
        "2-ff00:0:211#0,7 2-ff00:0:210#8,9 2-ff00:0:220#10,0",
        "2-ff00:0:211#0,11 2-ff00:0:210#12,13 2-ff00:0:220#14,0",
    ];
    const P133_110: &[&str] = &[
        "1-ff00:0:133#0,1018 1-ff00:0:122#1810,1815 1-ff00:0:121#1518,1530 1-ff00:0:120#3015,2911 1-ff00:0:110#1129,0",
        "1-ff00:0:133#0,1019 1-ff00:0:132#1910,1916 1-ff00:0:131#1619,1610 1-ff00:0:130#1016,1011 1-ff00:0:110#1110,0",
    ];

    #[test]
    fn scionproto_parse_cases() {
        assert!("0-0-0#0".parse::<Sequence>().is_err());
        assert!("0#0#0".parse::<Sequence>().is_err());
        assert!("0".parse::<Sequence>().is_ok());
        assert!("1#0".parse::<Sequence>().is_err());
        assert!("1-0".parse::<Sequence>().is_ok());
    }

    #[test]
    fn empty_path() {
        assert_eq!(count("0-0#0", EMPTY), 0);
        assert_eq!(count("0*", EMPTY), 1);
        assert_eq!(count("1-ff00:0:110#1,2*", EMPTY), 1);
        assert_eq!(count("0* 0*", EMPTY), 1);
        assert_eq!(count("0* 0?", EMPTY), 1);
        assert_eq!(count("0+", EMPTY), 0);
        assert_eq!(count("", EMPTY), 1, "the empty sequence matches everything");
    }

    #[test]
    fn wildcards_and_lengths() {
        assert_eq!(count("0-0#0", P212_211), 0);
        assert_eq!(count("0-0#0 0-0#0", P212_211), 2);
        assert_eq!(count("0-0#0 0-0#0 0-0#0 0-0#0", P122_220), 2);
        assert_eq!(count("0*", P212_211), 2);
        assert_eq!(count("0 0 0*", P212_211), 2);
        assert_eq!(count("0+", P212_211), 2);
        assert_eq!(count("0 0 0+", P212_211), 0);
        assert_eq!(count("0 0 0?", P212_211), 2);
        assert_eq!(count("0 0?", P212_211), 2);
        assert_eq!(count("0?", P212_211), 0);
        assert_eq!(count("0 0 0", P211_220), 3);
        assert_eq!(count("0 0", P211_220), 0);
    }

    #[test]
    fn explicit_hops() {
        assert_eq!(count("1-ff00:0:133#1019 1-ff00:0:132#1910", P133_132), 1);
        assert_eq!(count("0 1-ff00:0:132#1910,1916 0", P133_131), 1);
        assert_eq!(count("0 1-ff00:0:132#0,1916 0", P133_131), 1);
        assert_eq!(
            count(
                "1-ff00:0:122#1815 1-ff00:0:121#1518,1530 1-ff00:0:120#3015,3122 \
                 2-ff00:0:220#2231,2224 2-ff00:0:221#2422",
                &[
                    "1-ff00:0:122#0,1815 1-ff00:0:121#1518,1530 1-ff00:0:120#3015,3122 \
                   2-ff00:0:220#2231,2224 2-ff00:0:221#2422,0"
                ],
            ),
            1
        );
        let base = "1-ff00:0:133#1018 1-ff00:0:122#1810,1815 ";
        assert_eq!(
            count(
                &format!("{base}1-ff00:0:121#0,1530 1-ff00:0:120#3015,2911 1-ff00:0:110#1129"),
                P133_110
            ),
            1
        );
        assert_eq!(
            count(
                &format!("{base}1-ff00:0:121#1530,0 1-ff00:0:120#3015,2911 1-ff00:0:110#1129"),
                P133_110
            ),
            0,
            "reverse single wildcard"
        );
        assert_eq!(
            count(
                "1-ff00:0:133#1018 1-ff00:0:122#0,1815 1-ff00:0:121#0,1530 \
                 1-ff00:0:120#3015,0 1-ff00:0:110#1129",
                P133_110
            ),
            1
        );
        assert_eq!(
            count(
                "1-ff00:0:133#0 1 0-0#0 1-ff00:0:120#0 1-ff00:0:110#1129",
                P133_110
            ),
            1
        );
        assert_eq!(
            count("1-ff00:0:133#0 1-0#0 0-0#0 1-0#0 1-ff00:0:110#0", P133_110),
            2
        );
    }

    #[test]
    fn alternatives_and_precedence() {
        assert_eq!(count("0 2-ff00:0:221 0", P211_220), 1);
        assert_eq!(count("0 (2-ff00:0:221 | 2-ff00:0:210) 0", P211_220), 3);
        assert_eq!(count("0 (2-ff00:0:221 |64-12345) 0", P211_220), 1);
        // "Or has higher priority than concatenation"
        assert_eq!(count("0 2-ff00:0:221|64-12345 0", P211_220), 1);
        // "Question mark has higher priority than concatenation"
        assert_eq!(count("0 0 0 ?  ", P211_220), 3);
        assert_eq!(count("(0 0)?", P211_220), 0);
        assert_eq!(count("(0 0)? 0 0 0", P211_220), 3);
        assert_eq!(count("(0 0 0)+", P211_220), 3);
        assert_eq!(count("(0 0)+", P211_220), 0);
    }

    #[test]
    fn single_interfaces() {
        assert_eq!(count("0 1-ff00:0:132#1910 0", P133_131), 1);
        assert_eq!(count("0 1-ff00:0:132#1916 0", P133_131), 1);
        assert_eq!(count("0 1-ff00:0:132#1917 0", P133_131), 0);
        assert_eq!(count("0 1-ff00:0:132#1910,0 0", P133_131), 1);
        assert_eq!(count("0 1-ff00:0:132#1916,0 0", P133_131), 0);
        assert_eq!(count("0 1-ff00:0:132#0,1916 0", P133_131), 1);
        assert_eq!(count("0 1-ff00:0:132#0,1910 0", P133_131), 0);
    }

    #[test]
    fn documented_examples() {
        // PathPolicy.md: from 133 through ISD 1, maybe 2-ff00:0:1, to 2-ff00:0:233#1.
        let s = "1-ff00:0:133#1 1+ 2-ff00:0:1? 2-ff00:0:233#1";
        assert_eq!(
            count(
                s,
                &[
                    "1-ff00:0:133#0,1 1-ff00:0:120#2,3 2-ff00:0:233#1,0",
                    "1-ff00:0:133#0,1 1-ff00:0:120#2,3 1-ff00:0:121#2,3 2-ff00:0:1#4,5 2-ff00:0:233#1,0",
                ]
            ),
            2
        );
        assert_eq!(
            count(s, &["1-ff00:0:133#0,1 2-ff00:0:1#4,5 2-ff00:0:233#1,0"]),
            0,
            "1+ needs an ISD-1 AS"
        );
        // The brief's example: exactly through 110 entering on 2, leaving on 3.
        let s = "1-ff00:0:111#0 1-ff00:0:110#2,3 0*";
        assert_eq!(
            count(
                s,
                &[
                    "1-ff00:0:111#0,1 1-ff00:0:110#2,3 1-ff00:0:112#4,0",
                    "1-ff00:0:111#0,1 1-ff00:0:110#2,5 1-ff00:0:112#4,0",
                    "1-ff00:0:111#0,1 1-ff00:0:110#2,3",
                ]
            ),
            2
        );
    }

    #[test]
    fn lexer_follows_scionproto() {
        // `01` is two hops, `-12:0:1` a hex AS, `-12` a decimal one; whitespace between
        // tokens of a hop is allowed.
        assert_eq!(count("01", &["1-ff00:0:1#0,1 1-ff00:0:2#1,0"]), 1);
        assert_eq!(count("1-12:0:1 0", &["1-12:0:1#0,1 1-ff00:0:2#1,0"]), 1);
        assert_eq!(count("1-64512 0", &["1-64512#0,1 1-ff00:0:2#1,0"]), 1);
        assert_eq!(
            count("1 -ff00:0:1 # 1 , 0 0", &["1-ff00:0:1#0,1 1-ff00:0:2#1,0"]),
            0
        );
        assert_eq!(
            count("1 -ff00:0:1 # 0 , 1 0", &["1-ff00:0:1#0,1 1-ff00:0:2#1,0"]),
            1
        );
        // Repeated postfix operators.
        assert_eq!(count("0?* 0", P212_211), 2);
        assert_eq!(count("0+? ", P212_211), 2);
        assert_eq!(count("0?? 0", P212_211), 2);
        assert_eq!(count("0?? 0", EMPTY), 0);
    }

    #[test]
    fn errors_are_typed() {
        use SequenceError as E;
        let err = |s: &str| s.parse::<Sequence>().unwrap_err();
        assert!(matches!(err("x"), E::BadChar { at: 0, found: 'x' }));
        assert!(matches!(err("1-"), E::BadChar { at: 1, .. }));
        assert!(matches!(err("1-ff00"), E::BadChar { .. }));
        assert!(matches!(err("(0"), E::UnexpectedEnd { .. }));
        assert!(matches!(err("0)"), E::Unexpected { at: 1, .. }));
        assert!(matches!(err("?"), E::Unexpected { at: 0, .. }));
        assert!(matches!(err("0 | "), E::UnexpectedEnd { .. }));
        assert!(matches!(err("1-ff00:0:1#"), E::UnexpectedEnd { .. }));
        assert!(matches!(err("1-ff00:0:1#1,"), E::UnexpectedEnd { .. }));
        assert!(matches!(err("70000"), E::OutOfRange { what: "ISD", .. }));
        assert!(matches!(
            err("1-fffff:0:1"),
            E::OutOfRange { what: "AS", .. }
        ));
        assert!(matches!(
            err("1-4294967296"),
            E::OutOfRange { what: "AS", .. }
        ));
        assert!(matches!(
            err("1-1#99999"),
            E::OutOfRange {
                what: "interface",
                ..
            }
        ));
        assert!(matches!(err("ü"), E::BadChar { found: 'ü', .. }));
        assert_eq!(err(&"(".repeat(40)), E::TooDeep);
        assert_eq!(err(&"0 ".repeat(3000)), E::TooLong);
        assert!(err("(0").to_string().contains("')'"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "",
            " ",
            "()",
            "(",
            ")",
            "|",
            "0||0",
            "-",
            "--0",
            "1--0",
            "#",
            "1-0#",
            "1-0#,",
            "0*+?*",
            "1-0:0:0",
            "1-ffff:ffff:ffff#65535,65535",
            "(((0)))",
        ] {
            let _ = s.parse::<Sequence>();
        }
        let deep = format!("{}0{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(count(&deep, &["1-ff00:0:1#0,0"]), 1);
        // A long path against deeply nested repetition stays cheap (linear, not exponential).
        let long: String = (0..64).map(|i| format!("1-{}#1,1 ", i + 1)).collect();
        let nested = format!(
            "{}0{} (1|2)+ 0*",
            "(".repeat(MAX_DEPTH),
            ")*".repeat(MAX_DEPTH)
        );
        assert_eq!(count(&nested, &[long.as_str()]), 1);
        assert_eq!(
            count(&nested.replace("(1|2)", "(3|2)"), &[long.as_str()]),
            0
        );
    }
}
