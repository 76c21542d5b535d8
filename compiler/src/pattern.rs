//! Glob patterns with `*` (any run of characters, possibly empty) and `?`
//! (exactly one character), as IAM writes them: matching, containment and
//! intersection. Delegation ceilings, guardrails and the evaluator rest on
//! these three questions, so they are answered exactly, not approximately.
//!
//! Case: callers fold case first where the provider is case-insensitive
//! (AWS actions); resources are compared as written.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    Any,
    Star,
}

fn tokens(pattern: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        let token = match c {
            '*' => Token::Star,
            '?' => Token::Any,
            other => Token::Char(other),
        };
        // Consecutive stars mean the same as one.
        if token == Token::Star && out.last() == Some(&Token::Star) {
            continue;
        }
        out.push(token);
    }
    out
}

pub fn has_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// Does `pattern` match the literal string `text`?
pub fn matches(pattern: &str, text: &str) -> bool {
    if !has_wildcard(pattern) {
        return pattern == text;
    }
    if pattern.is_ascii() && text.is_ascii() {
        return glob(pattern.as_bytes(), text.as_bytes(), b'*', b'?');
    }
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    glob(&pattern, &text, '*', '?')
}

/// [`matches`], for a pattern already in lower case against a text of any
/// case (an AWS action as a request spells it): allocation-free for ASCII
/// text, as the decision engine needs.
pub fn matches_folded(folded_pattern: &str, text: &str) -> bool {
    if folded_pattern.is_ascii() && text.is_ascii() {
        if !has_wildcard(folded_pattern) {
            return folded_pattern.eq_ignore_ascii_case(text);
        }
        return glob_folded(folded_pattern.as_bytes(), text.as_bytes());
    }
    matches(folded_pattern, &text.to_ascii_lowercase())
}

/// [`glob`] over ASCII, folding the text's case as it goes.
fn glob_folded(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t].to_ascii_lowercase() => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    backtrack = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Greedy matching with backtracking to the last star: linear in practice,
/// and allocation-free.
fn glob<T: Copy + PartialEq>(pattern: &[T], text: &[T], star: T, any: T) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(&c) if c == star => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == any || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    backtrack = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == star)
}

/// Is every string that `inner` matches also matched by `outer`?
///
/// Decided exactly: a breadth-first search for a word that `inner` accepts
/// and `outer` rejects, over pairs of (a position in `inner`, the set of
/// positions `outer` can be in). The alphabet is the literal characters of
/// both patterns plus one symbol standing for every other character. Should
/// the search grow past a bound (only contrived patterns do), the answer is
/// "not contained", which is the safe answer for a ceiling.
pub fn contains(outer: &str, inner: &str) -> bool {
    if !has_wildcard(inner) {
        return matches(outer, inner);
    }
    if !has_wildcard(outer) {
        // A literal covers only itself, and a pattern with a wildcard matches
        // more than one string.
        return false;
    }
    if outer == inner {
        return true;
    }
    // The common shape, `prefix*`: it holds what surely starts with `prefix`,
    // which is what `inner`'s literal start says (past it, a wildcard can
    // always be given a character that differs).
    if let Some(prefix) = star_suffixed(outer) {
        return literal_start(inner).starts_with(prefix);
    }
    let outer = tokens(outer);
    let inner = tokens(inner);
    let mut alphabet: Vec<Option<char>> = outer
        .iter()
        .chain(inner.iter())
        .filter_map(|token| match token {
            Token::Char(c) => Some(Some(*c)),
            _ => None,
        })
        .collect();
    alphabet.sort_unstable();
    alphabet.dedup();
    // `None` is "any character that no pattern names".
    alphabet.push(None);

    let start_outer = closure(&outer, vec![0]);
    let start_inner = closure(&inner, vec![0]);
    let mut seen = std::collections::HashSet::new();
    let mut queue = std::collections::VecDeque::new();
    for position in start_inner {
        if seen.insert((position, start_outer.clone())) {
            queue.push_back((position, start_outer.clone()));
        }
    }
    const LIMIT: usize = 200_000;
    while let Some((inner_position, outer_set)) = queue.pop_front() {
        if inner_position == inner.len() && !outer_set.contains(&outer.len()) {
            return false;
        }
        if seen.len() > LIMIT {
            return false;
        }
        for symbol in &alphabet {
            let inner_next = step(&inner, &[inner_position], *symbol);
            if inner_next.is_empty() {
                continue;
            }
            let outer_next = step(&outer, &outer_set, *symbol);
            for position in inner_next {
                if seen.insert((position, outer_next.clone())) {
                    queue.push_back((position, outer_next.clone()));
                }
            }
        }
    }
    true
}

/// `prefix` when the pattern is `prefix*`: its only wildcard a final run of
/// stars.
fn star_suffixed(pattern: &str) -> Option<&str> {
    let prefix = pattern.trim_end_matches('*');
    (prefix.len() < pattern.len() && !has_wildcard(prefix)).then_some(prefix)
}

/// The pattern's text before its first wildcard.
fn literal_start(pattern: &str) -> &str {
    &pattern[..pattern.find(['*', '?']).unwrap_or(pattern.len())]
}

/// Does some string that `pattern` matches start with `prefix`? Reading
/// both together: a literal must agree, `?` takes any character, and a
/// star takes the rest of `prefix` (what follows it matches something).
fn can_start_with(pattern: &str, prefix: &str) -> bool {
    let mut tokens = pattern.chars();
    for wanted in prefix.chars() {
        match tokens.next() {
            Some('*') => return true,
            Some('?') => {}
            Some(c) if c == wanted => {}
            _ => return false,
        }
    }
    true
}

/// The positions reachable from `positions` by letting stars match nothing.
fn closure(pattern: &[Token], mut positions: Vec<usize>) -> Vec<usize> {
    let mut index = 0;
    while index < positions.len() {
        let position = positions[index];
        if pattern.get(position) == Some(&Token::Star) && !positions.contains(&(position + 1)) {
            positions.push(position + 1);
        }
        index += 1;
    }
    positions.sort_unstable();
    positions.dedup();
    positions
}

/// The positions after reading one character (`None`: a character that no
/// pattern names), closed over empty stars.
fn step(pattern: &[Token], positions: &[usize], symbol: Option<char>) -> Vec<usize> {
    let mut next = Vec::new();
    for &position in positions {
        match pattern.get(position) {
            Some(Token::Star) => next.push(position),
            Some(Token::Any) => next.push(position + 1),
            Some(Token::Char(c)) if Some(*c) == symbol => next.push(position + 1),
            _ => {}
        }
    }
    closure(pattern, next)
}

/// Is there a string that both patterns match?
pub fn intersects(a: &str, b: &str) -> bool {
    if !has_wildcard(a) {
        return matches(b, a);
    }
    if !has_wildcard(b) {
        return matches(a, b);
    }
    if let Some(prefix) = star_suffixed(a) {
        return can_start_with(b, prefix);
    }
    if let Some(prefix) = star_suffixed(b) {
        return can_start_with(a, prefix);
    }
    let a = tokens(a);
    let b = tokens(b);
    let mut memo = vec![None; (a.len() + 1) * (b.len() + 1)];
    meet(&a, &b, 0, 0, &mut memo)
}

fn meet(a: &[Token], b: &[Token], i: usize, j: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let key = i * (b.len() + 1) + j;
    if let Some(known) = memo[key] {
        return known;
    }
    let result = match (a.get(i), b.get(j)) {
        (None, None) => true,
        (Some(Token::Star), _) => {
            meet(a, b, i + 1, j, memo) || (j < b.len() && meet(a, b, i, j + 1, memo))
        }
        (_, Some(Token::Star)) => {
            meet(a, b, i, j + 1, memo) || (i < a.len() && meet(a, b, i + 1, j, memo))
        }
        (None, Some(_)) | (Some(_), None) => false,
        (Some(Token::Char(x)), Some(Token::Char(y))) => x == y && meet(a, b, i + 1, j + 1, memo),
        (Some(_), Some(_)) => meet(a, b, i + 1, j + 1, memo),
    };
    memo[key] = Some(result);
    result
}

/// ARN patterns as IAM reads them: an ARN is six `:`-separated segments,
/// `arn:partition:service:region:account:resource`. In the partition,
/// service, region and account, `*` and `?` stay within their segment; in
/// the resource, which may hold `:` and `/`, they match anything. A pattern
/// of fewer segments whose last character is `*` covers the segments it
/// leaves out (`arn:aws:s3:::*`, `arn:aws:*`), as IAM reads it; one of
/// fewer segments otherwise matches no ARN. `*` alone is every resource.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ArnPattern<'a> {
    /// The five fixed segments (the first is `arn` or a pattern of it).
    fixed: [&'a str; 5],
    resource: &'a str,
}

/// The segments of an ARN pattern; `None` when it can match no ARN.
fn arn_segments(text: &str) -> Option<ArnPattern<'_>> {
    let mut parts = text.splitn(6, ':');
    // A short pattern: a trailing `*` stands for the rest of the ARN.
    let mut fixed = ["*"; 5];
    for slot in &mut fixed {
        match parts.next() {
            Some(part) => *slot = part,
            None => {
                return text.ends_with('*').then_some(ArnPattern {
                    fixed,
                    resource: "*",
                })
            }
        }
    }
    match parts.next() {
        Some(resource) => Some(ArnPattern { fixed, resource }),
        None => text.ends_with('*').then_some(ArnPattern {
            fixed,
            resource: "*",
        }),
    }
}

/// Does the ARN pattern match the ARN (or text) `arn`?
pub fn arn_matches(pattern: &str, arn: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (Some(p), Some(a)) = (arn_segments(pattern), arn_segments(arn)) else {
        return false;
    };
    // A concrete ARN's own segments are its text.
    p.fixed.iter().zip(&a.fixed).all(|(p, a)| matches(p, a)) && matches(p.resource, a.resource)
}

/// Does every ARN `inner` matches also match `outer`?
pub fn arn_contains(outer: &str, inner: &str) -> bool {
    if outer == "*" {
        return true;
    }
    if inner == "*" {
        return false;
    }
    let Some(i) = arn_segments(inner) else {
        // Matches no ARN: contained in anything.
        return true;
    };
    let Some(o) = arn_segments(outer) else {
        return false;
    };
    o.fixed.iter().zip(&i.fixed).all(|(o, i)| contains(o, i)) && contains(o.resource, i.resource)
}

/// Is there an ARN both patterns match?
pub fn arn_intersects(a: &str, b: &str) -> bool {
    if a == "*" {
        return arn_segments(b).is_some() || b == "*";
    }
    if b == "*" {
        return arn_segments(a).is_some();
    }
    let (Some(a), Some(b)) = (arn_segments(a), arn_segments(b)) else {
        return false;
    };
    a.fixed.iter().zip(&b.fixed).all(|(x, y)| intersects(x, y))
        && intersects(a.resource, b.resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_follows_iam_globs() {
        assert!(matches("s3:Get*", "s3:GetObject"));
        assert!(matches("*", ""));
        assert!(matches("a?c", "abc"));
        assert!(!matches("a?c", "ac"));
        assert!(matches("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/x/y"));
        assert!(!matches("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket"));
        assert!(matches("*a*b*", "xxaxxbxx"));
    }

    #[test]
    fn containment_of_wildcards() {
        assert!(contains("s3:*", "s3:Get*"));
        assert!(contains("*", "anything*"));
        assert!(!contains("s3:Get*", "s3:*"));
        assert!(contains("a*", "a?"));
        assert!(!contains("a?", "a*"));
        assert!(contains("*b", "a*b"));
        assert!(!contains("*b", "a*"));
        assert!(contains("a*b*", "a*b*c"));
        assert!(contains("?*", "*?"));
        assert!(!contains("?*", "*"));
    }

    #[test]
    fn intersection_of_wildcards() {
        assert!(intersects("s3:*", "*Object"));
        assert!(!intersects("s3:*", "iam:*"));
        assert!(intersects("*", "iam:PassRole"));
        assert!(!intersects("a?", "abc"));
    }
}
