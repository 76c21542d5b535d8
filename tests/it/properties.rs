//! Properties that must hold for every input, not just the examples:
//! the front end never panics, formatting is idempotent and keeps meaning,
//! and pattern containment agrees with brute force.

use proptest::prelude::*;
use std::path::{Path, PathBuf};
use writ_compiler::format::format_file;
use writ_compiler::pattern;
use writ_compiler::syntax::parse_file;
use writ_compiler::FileId;

/// The AST's Debug text with every span removed: two files mean the same
/// when these are equal.
fn meaning(text: &str) -> Option<String> {
    let parsed = parse_file(FileId(0), text).ok()?;
    let debug = format!("{parsed:?}");
    let mut out = String::with_capacity(debug.len());
    let mut rest = debug.as_str();
    while let Some(start) = rest.find("Span { file:") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push('_');
        rest = &rest[end..];
    }
    out.push_str(rest);
    Some(out)
}

/// Formats `text` and checks the two formatting properties on it.
fn assert_format_properties(name: &str, text: &str) {
    let Ok(parsed) = parse_file(FileId(0), text) else {
        return;
    };
    let once = format_file(text, &parsed);
    let reparsed = parse_file(FileId(0), &once).unwrap_or_else(|e| {
        panic!(
            "{name}: formatted text does not parse: {}\n{once}",
            e.message
        )
    });
    assert_eq!(
        meaning(text),
        meaning(&once),
        "{name}: formatting changed the meaning\n{once}"
    );
    let twice = format_file(&once, &reparsed);
    assert_eq!(once, twice, "{name}: formatting is not idempotent");
    let comments = |t: &str| t.matches("//").count() + t.matches("/*").count();
    assert_eq!(
        comments(text),
        comments(&once),
        "{name}: formatting lost a comment\n{once}"
    );
}

fn writ_files(folder: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            writ_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "writ") {
            out.push(path);
        }
    }
}

fn corpus() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    writ_files(&root.join("examples"), &mut files);
    writ_files(&root.join("tests/ui"), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn formatting_every_example_and_ui_case_is_idempotent_and_keeps_meaning() {
    let corpus = corpus();
    assert!(corpus.len() > 25);
    for (name, text) in &corpus {
        assert_format_properties(name, text);
    }
}

/// Lowers a program and plans it against a snapshot made of exactly what
/// it lowers to: nothing may change and nothing may drift, whatever order
/// or shape the snapshot's JSON takes.
fn assert_no_changes_against_itself(name: &str, text: &str) -> bool {
    let sources = crate::support::sources(name, text);
    let checked = crate::support::check(&sources);
    if checked.has_errors() {
        return false;
    }
    let desired = writ_compiler::lower::lower(&checked.model, "proj");
    // Through the snapshot format and back, with statements reversed, as a
    // live API may return them.
    let mut observed: Vec<writ_compiler::resource::Resource> = desired.resources.clone();
    for resource in &mut observed {
        for document in ["policy", "assume_role_policy"] {
            if let Some(serde_json::Value::Object(doc)) = resource.attributes.get_mut(document) {
                if let Some(serde_json::Value::Array(statements)) = doc.get_mut("Statement") {
                    statements.reverse();
                }
            }
        }
    }
    let json = writ_compiler::snapshot::Snapshot::from_resources(observed).to_json();
    let snapshot =
        writ_compiler::snapshot::Snapshot::parse(&json).expect("a snapshot writ wrote parses");
    let observed: Vec<_> = snapshot.resources().cloned().collect();
    let options = writ_compiler::plan::PlanOptions {
        today: crate::support::today(),
        max_key_age_days: Some(90),
    };
    let plan = writ_compiler::plan::plan(&desired, &observed, &options);
    assert!(!plan.has_changes(), "{name}: {:#?}", plan.changes);
    // Nothing there but what writ makes: no access beyond the source, and
    // a plan from a snapshot need not check the source again to say so.
    assert!(
        !writ_compiler::graph::may_hold_undeclared(&desired, &observed),
        "{name}"
    );
    let mut graph = writ_compiler::graph::Graph::identities(&checked.model, "proj");
    graph.observe(&checked.model, &desired, &observed);
    assert_eq!(graph.undeclared(&checked.model), Vec::new(), "{name}");
    assert!(plan.drift.is_empty(), "{name}: {:#?}", plan.drift);
    assert!(
        plan.permission_delta.is_empty(),
        "{name}: {:#?}",
        plan.permission_delta
    );
    true
}

#[test]
fn planning_every_example_and_ui_case_against_itself_shows_no_changes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    writ_files(&root.join("tests/plans"), &mut files);
    let mut all: Vec<(String, String)> = corpus();
    all.extend(files.into_iter().map(|p| {
        (
            p.display().to_string(),
            std::fs::read_to_string(&p).unwrap(),
        )
    }));
    // The example as one project: its files refer to each other.
    let example: String = corpus()
        .iter()
        .filter(|(n, _)| n.contains("examples"))
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    all.push(("examples/acme".to_string(), example));
    let planned = all
        .iter()
        .filter(|(name, text)| assert_no_changes_against_itself(name, text))
        .count();
    assert!(planned >= 20, "only {planned} files were planned");
}

#[test]
fn the_example_project_is_already_formatted() {
    for (name, text) in corpus().iter().filter(|(n, _)| n.contains("examples")) {
        let parsed = parse_file(FileId(0), text).unwrap();
        assert_eq!(
            &format_file(text, &parsed),
            text,
            "{name} is not in canonical form"
        );
    }
}

const VOCABULARY: &[&str] = &[
    "provider",
    "scope",
    "agent",
    "guardrail",
    "test",
    "aws",
    "prod",
    "kubernetes",
    "github",
    "gcp",
    ".",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    "=",
    "==",
    "!=",
    "allow",
    "deny",
    "on",
    "in",
    "namespace",
    "cluster",
    "named",
    "when",
    "and",
    "like",
    "include",
    "can",
    "cannot",
    "runs_on",
    "delegates",
    "expect",
    "@waive",
    "owner",
    "ttl",
    "expires",
    "parent",
    "frozen",
    "max_depth",
    "max_ttl",
    "\"arn:aws:s3:::b/*\"",
    "\"*\"",
    "\"x\"",
    "s3:GetObject",
    "s3:*",
    "get",
    "1h",
    "15m",
    "0h",
    "2027-06-30",
    "2027-02-30",
    "12",
    "true",
    "bot",
    "reader",
    "// c\n",
    "/* b */",
    "/// d\n",
    "\n",
    " ",
    "\"unterminated",
    "*",
    "?",
    "aws.prod",
    "aws.*",
    "1x",
    "ü",
    "\t",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCABULARY), 0..60)
        .prop_map(|tokens| tokens.join(" "))
}

/// A small but valid program, with comments and odd whitespace sprinkled
/// where a user might put them.
fn program() -> impl Strategy<Value = String> {
    let comment = prop::sample::select(vec!["", "", " // note", " /* inline */"]);
    let grant = (
        prop::sample::select(vec![
            "s3:GetObject",
            "s3:ListBucket",
            "s3:Get*",
            "iam:PassRole",
        ]),
        prop::sample::select(vec!["arn:aws:s3:::b/*", "arn:aws:s3:::b", "*"]),
        prop::option::of(prop::sample::select(vec![
            "aws:SourceVpc == \"v\"",
            "s3:prefix in [\"a\", \"b\"]",
        ])),
        comment.clone(),
    )
        .prop_map(|(action, resource, condition, comment)| {
            let mut line = format!("aws.prod   allow {action} on \"{resource}\"");
            if let Some(condition) = condition {
                line.push_str(&format!("\n      when {condition}"));
            }
            line.push_str(comment);
            line
        });
    let agent = (
        "[a-z][a-z_]{0,8}",
        prop::sample::select(vec!["15m", "1h", "90m", "4h"]),
        prop::collection::vec(grant.clone(), 0..4),
        any::<bool>(),
        comment.clone(),
    )
        .prop_map(|(name, ttl, grants, blank, comment)| {
            let mut text = format!(
                "/// agent {name}\nagent {name} {{{comment}\n owner = \"team\"\n\tttl = {ttl}\n"
            );
            if blank {
                text.push('\n');
            }
            for grant in grants {
                text.push_str(&format!("    {grant}\n"));
            }
            text.push_str("  delegates {\n max_depth = 2 // depth\n  can s\n }\n}\n");
            text
        });
    let scope = prop::collection::vec(grant, 0..3).prop_map(|grants| {
        let mut text = String::from("// a scope\nscope s {\n");
        for grant in grants {
            text.push_str(&format!("{grant}\n"));
        }
        text.push_str("  include t\n}\n\nscope t {}\n");
        text
    });
    (scope, prop::collection::vec(agent, 1..4)).prop_map(|(scope, agents)| {
        format!(
            "provider aws prod {{ account = \"123456789012\" }}\n\n{scope}\n{}\n/* trailing */\n",
            agents.join("\n\n\n")
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_front_end_never_panics_on_arbitrary_text(text in any::<String>()) {
        let sources = crate::support::sources("fuzz.writ", &text);
        let _ = crate::support::findings(&sources);
    }

    #[test]
    fn the_front_end_never_panics_on_token_soup(text in token_soup()) {
        let sources = crate::support::sources("soup.writ", &text);
        let _ = crate::support::findings(&sources);
        assert_format_properties("soup", &text);
    }

    #[test]
    fn the_front_end_never_panics_on_mutated_examples(
        file in 0usize..1000,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0usize..3, prop::sample::select(VOCABULARY)), 1..6),
    ) {
        let corpus = corpus();
        let (_, original) = &corpus[file % corpus.len()];
        let mut text = original.clone();
        for (index, kind, token) in edits {
            let mut at = index.index(text.len() + 1);
            while !text.is_char_boundary(at) { at -= 1; }
            match kind {
                0 => text.insert_str(at, token),
                1 => { let end = (at + 4).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, ""); } }
                _ => text.insert(at, '\n'),
            }
        }
        let sources = crate::support::sources("mutated.writ", &text);
        let _ = crate::support::findings(&sources);
        assert_format_properties("mutated", &text);
    }

    #[test]
    fn planning_against_the_desired_state_itself_shows_no_changes(text in program()) {
        // Agent names are random and may collide; such programs are skipped
        // (proptest fails the test if it has to skip too many).
        prop_assume!(assert_no_changes_against_itself("generated", &text));
    }

    #[test]
    fn formatting_generated_programs_is_idempotent_and_keeps_meaning(text in program()) {
        prop_assert!(parse_file(FileId(0), &text).is_ok(), "generated program does not parse:\n{}", text);
        assert_format_properties("generated", &text);
        let sources = crate::support::sources("generated.writ", &text);
        let _ = crate::support::findings(&sources);
    }
}

/// Every pattern over `{a, b, *, ?}` of up to `max` tokens.
fn all_patterns(max: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..max {
        let mut next = Vec::new();
        for p in &frontier {
            for c in ['a', 'b', '*', '?'] {
                next.push(format!("{p}{c}"));
            }
        }
        all.extend(next.iter().cloned());
        frontier = next;
    }
    all
}

/// Every string over `{a, b, c}` of up to `max` characters; `c` stands for
/// any character that no pattern names.
fn all_strings(max: usize) -> Vec<String> {
    let mut all = vec![String::new()];
    let mut frontier = vec![String::new()];
    for _ in 0..max {
        let mut next = Vec::new();
        for s in &frontier {
            for c in ['a', 'b', 'c'] {
                next.push(format!("{s}{c}"));
            }
        }
        all.extend(next.iter().cloned());
        frontier = next;
    }
    all
}

#[test]
fn containment_and_intersection_agree_with_brute_force_enumeration() {
    // Patterns of up to 4 tokens; strings of up to 9 characters are long
    // enough to tell any two such patterns apart.
    let patterns = all_patterns(4);
    let strings = all_strings(9);
    let matched: Vec<Vec<bool>> = patterns
        .iter()
        .map(|p| strings.iter().map(|s| pattern::matches(p, s)).collect())
        .collect();
    let mut checked = 0;
    for (i, outer) in patterns.iter().enumerate() {
        for (j, inner) in patterns.iter().enumerate() {
            let contained = matched[j]
                .iter()
                .zip(&matched[i])
                .all(|(&m_inner, &m_outer)| !m_inner || m_outer);
            assert_eq!(
                pattern::contains(outer, inner),
                contained,
                "contains({outer:?}, {inner:?})"
            );
            let meet = matched[j].iter().zip(&matched[i]).any(|(&a, &b)| a && b);
            assert_eq!(
                pattern::intersects(outer, inner),
                meet,
                "intersects({outer:?}, {inner:?})"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, patterns.len() * patterns.len());
}

/// ARN patterns as IAM reads them: `*` stays within the partition, service,
/// region and account, crosses `:` and `/` in the resource, and a short
/// pattern ending in `*` stands for the segments it leaves out.
#[test]
fn arn_matching_containment_and_intersection_agree_with_brute_force() {
    let mut patterns = vec![
        "*".to_string(),
        "arn:*".to_string(),
        "arn:aws:*".to_string(),
        "arn:aws:s3:*".to_string(),
        "arn:aws:s3:::b*".to_string(),
        "arn:aws:s3".to_string(),
    ];
    for partition in ["aws", "a*", "*", "?ws"] {
        for service in ["s3", "*"] {
            for region in ["", "*"] {
                for account in ["1", "*", "?"] {
                    for resource in ["b", "b/*", "*", "b:*", "*:x", "?"] {
                        patterns.push(format!(
                            "arn:{partition}:{service}:{region}:{account}:{resource}"
                        ));
                    }
                }
            }
        }
    }
    // `*` is the resource of a request for an action that acts on no
    // resource in particular.
    let mut arns = vec!["*".to_string()];
    for partition in ["aws", "bws", "ab", "a", "x"] {
        for service in ["s3", "x"] {
            for region in ["", "r"] {
                for account in ["", "1", "2", "12"] {
                    for resource in ["", "b", "x", "b/c", "b:c", "b:x", "c:x", "bb", "b/:x"] {
                        arns.push(format!(
                            "arn:{partition}:{service}:{region}:{account}:{resource}"
                        ));
                    }
                }
            }
        }
    }
    // What IAM's reading says, segment by segment, written out here apart
    // from the library's: the fixed segments must each match within
    // themselves, the resource as a whole.
    let iam_matches = |pattern: &str, arn: &str| -> bool {
        if pattern == "*" {
            return true;
        }
        let mut p: Vec<&str> = pattern.splitn(6, ':').collect();
        if p.len() < 6 {
            if !pattern.ends_with('*') {
                return false;
            }
            p.resize(6, "*");
        }
        let a: Vec<&str> = arn.splitn(6, ':').collect();
        p.iter().zip(&a).all(|(p, a)| pattern::matches(p, a))
    };
    let matched: Vec<Vec<bool>> = patterns
        .iter()
        .map(|p| arns.iter().map(|a| iam_matches(p, a)).collect())
        .collect();
    for (i, outer) in patterns.iter().enumerate() {
        for (arn_index, arn) in arns.iter().enumerate() {
            assert_eq!(
                pattern::arn_matches(outer, arn),
                matched[i][arn_index],
                "{outer} matches {arn}"
            );
        }
        for (j, inner) in patterns.iter().enumerate() {
            let contained = matched[j]
                .iter()
                .zip(&matched[i])
                .all(|(&m_inner, &m_outer)| !m_inner || m_outer);
            assert_eq!(
                pattern::arn_contains(outer, inner),
                contained,
                "arn_contains({outer}, {inner})"
            );
            let meet = matched[j].iter().zip(&matched[i]).any(|(&a, &b)| a && b);
            assert_eq!(
                pattern::arn_intersects(outer, inner),
                meet,
                "arn_intersects({outer}, {inner})"
            );
        }
    }
    // The cases that motivated it.
    assert!(!pattern::arn_matches(
        "arn:aws:iam::12*:role/x",
        "arn:aws:iam::123:4:role/x"
    ));
    assert!(pattern::arn_matches(
        "arn:aws:iam::*:role/x*",
        "arn:aws:iam::123456789012:role/x/y/z"
    ));
    assert!(!pattern::arn_intersects(
        "arn:*:dynamodb:*:*:table/*",
        "arn:aws:s3:::b/*"
    ));
}

/// Found by the mutation property: a comment inside a grant that runs over
/// two lines, then a blank line and another comment. The first format
/// moves the inner comment after the grant; the second must keep the
/// blank line between the two comments.
#[test]
fn a_comment_moved_out_of_a_statement_keeps_the_blank_line_after_it() {
    let text = "provider aws prod {\n  account = \"123456789012\"\n}\n\nagent a {\n  owner = \"t\"\n  ttl = 1h\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n// inside\n    when aws:RequestedRegion == \"us-east-1\"\n\n  // next\n  aws.prod allow s3:PutObject on \"arn:aws:s3:::b/*\"\n}\n";
    assert_format_properties("moved comment", text);
    let parsed = parse_file(FileId(0), text).unwrap();
    let once = format_file(text, &parsed);
    assert!(once.contains("  // inside\n\n  // next\n"), "{once}");
}

/// The workspace's files, each parsed with its text's hash.
fn parse_workspace(files: &[String]) -> Vec<(writ_compiler::Parsed, u64)> {
    use std::hash::{Hash, Hasher};
    files
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            text.hash(&mut hasher);
            (parse_file(FileId(index as u32), text), hasher.finish())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// An editor's checks, reusing what the last one kept, find exactly
    /// what a check from nothing finds, edit after edit: the example
    /// project and a UI case, one file edited at a time.
    #[test]
    fn checking_again_after_edits_finds_what_checking_afresh_finds(
        case in 0usize..1000,
        edits in prop::collection::vec(
            (0usize..100, any::<prop::sample::Index>(), 0usize..4, prop::sample::select(VOCABULARY)),
            1..8,
        ),
    ) {
        let corpus = corpus();
        let mut files: Vec<String> = corpus
            .iter()
            .filter(|(name, _)| name.contains("examples/acme"))
            .map(|(_, text)| text.clone())
            .collect();
        let ui: Vec<&(String, String)> = corpus.iter().filter(|(name, _)| name.contains("tests/ui")).collect();
        files.push(ui[case % ui.len()].1.clone());
        let options = writ_compiler::CheckOptions { today: writ_compiler::values::Date::parse("2026-11-29").unwrap() };
        let mut memo = writ_compiler::Memo::default();
        let check = |files: &[String], memo: &mut writ_compiler::Memo| {
            let parsed = parse_workspace(files);
            let (model, found) = writ_compiler::check_incremental(parsed.iter().map(|(p, h)| (p, *h)), &options, memo);
            let (fresh_model, fresh) = writ_compiler::check_parsed(parsed.iter().map(|(p, _)| p), &options);
            prop_assert_eq!(format!("{found:#?}"), format!("{fresh:#?}"));
            prop_assert_eq!(format!("{model:#?}"), format!("{fresh_model:#?}"));
            Ok(())
        };
        check(&files, &mut memo)?;
        prop_assert!(memo.len() > 10, "the example's bodies are kept");
        for (file, index, kind, token) in edits {
            let count = files.len();
            let text = &mut files[file % count];
            let mut at = index.index(text.len() + 1);
            while !text.is_char_boundary(at) { at -= 1; }
            match kind {
                0 => text.insert_str(at, token),
                1 => { let end = (at + 4).min(text.len()); if text.is_char_boundary(end) { text.replace_range(at..end, ""); } }
                2 => text.insert(at, '\n'),
                // A whole line said again: a duplicate, or a field set twice.
                _ => {
                    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                    let end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
                    let line = text[start..end].to_string();
                    text.insert_str(start, &line);
                }
            }
            check(&files, &mut memo)?;
        }
    }
}

/// Checks a workspace with the memo and afresh; the same findings and
/// model, or the difference.
fn check_both(files: &[String], memo: &mut writ_compiler::Memo) -> Vec<writ_compiler::Diagnostic> {
    let options = writ_compiler::CheckOptions {
        today: writ_compiler::values::Date::parse("2026-11-29").unwrap(),
    };
    let parsed = parse_workspace(files);
    let (model, found) =
        writ_compiler::check_incremental(parsed.iter().map(|(p, h)| (p, *h)), &options, memo);
    let (fresh_model, fresh) = writ_compiler::check_parsed(parsed.iter().map(|(p, _)| p), &options);
    assert_eq!(format!("{found:#?}"), format!("{fresh:#?}"));
    assert_eq!(format!("{model:#?}"), format!("{fresh_model:#?}"));
    found
}

/// The cases random edits rarely reach: a scope changed in one file under
/// an agent, unchanged in another, whose `delegates` copies its grants; a
/// file added before the others (every file's id moves); a file that stops
/// parsing and parses again.
#[test]
fn checking_again_after_a_scope_a_new_file_or_a_broken_one_finds_what_checking_afresh_finds() {
    let providers = "provider aws prod {\n  account = \"123456789012\"\n}\n".to_string();
    let scope = |action: &str| {
        format!("scope reads {{\n  aws.prod allow {action} on \"arn:aws:s3:::b/*\"\n}}\n")
    };
    let agents = "agent parent {\n  owner = \"team\"\n  ttl = 1h\n  can reads\n  delegates {\n    max_depth = 1\n    can reads\n  }\n}\n\nagent child {\n  owner = \"team\"\n  ttl = 1h\n  parent = parent\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n}\n".to_string();
    let mut memo = writ_compiler::Memo::default();
    let mut files = vec![providers.clone(), scope("s3:GetObject"), agents.clone()];
    assert!(check_both(&files, &mut memo).iter().all(|d| !d.is_error()));
    // The scope narrowed: the child's grant is now beyond its parent's
    // ceiling, though neither agent's file changed.
    files[1] = scope("s3:ListBucket");
    let found = check_both(&files, &mut memo);
    assert!(found.iter().any(|d| d.is_error()), "{found:#?}");
    files[1] = scope("s3:GetObject");
    assert!(check_both(&files, &mut memo).iter().all(|d| !d.is_error()));
    // A file before the others: every id moves.
    files.insert(0, "// Nothing but a comment.\n".to_string());
    check_both(&files, &mut memo);
    files.insert(0, providers.replace("prod", "staging"));
    check_both(&files, &mut memo);
    // The agents' file broken as it is typed in, and mended.
    let kept = memo.len();
    let last = files.len() - 1;
    files[last] = agents.replace("ttl = 1h\n  parent", "ttl = \n  parent");
    check_both(&files, &mut memo);
    files[last] = agents.clone();
    check_both(&files, &mut memo);
    assert_eq!(memo.len(), kept, "the bodies from before it broke are kept");
    // The scope's file removed: the agents' use of it is unknown.
    files.remove(3);
    let found = check_both(&files, &mut memo);
    assert!(
        found
            .iter()
            .any(|d| d.code == writ_compiler::Code::UnknownName),
        "{found:#?}"
    );
}

const TIGHTEN_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:Get*",
    "s3:*",
];
const TIGHTEN_RESOURCES: &[&str] = &[
    "arn:aws:s3:::a/*",
    "arn:aws:s3:::b/*",
    "arn:aws:s3:::a",
    "arn:aws:s3:::*",
    "arn:aws:s3:::*/*",
    "*",
];
const REQUEST_ACTIONS: &[&str] = &[
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:DeleteObject",
    "s3:GetObjectTagging",
];
const REQUEST_RESOURCES: &[&str] = &[
    "arn:aws:s3:::a/x",
    "arn:aws:s3:::b/y",
    "arn:aws:s3:::a",
    "arn:aws:s3:::b",
    "arn:aws:s3:::c/z/w",
];

fn allowed(model: &writ_compiler::model::Model, action: &str, resource: &str) -> bool {
    writ_compiler::eval::evaluate(
        model,
        0,
        &writ_compiler::eval::Request {
            provider: 0,
            action,
            resource,
            placement: &writ_compiler::model::Placement::None,
            name: None,
            context: None,
        },
    )
    .is_allowed()
}

proptest! {
    // A third of random grants are ones the checker refuses, and skipped.
    #![proptest_config(ProptestConfig { max_global_rejects: 100_000, ..ProptestConfig::with_cases(64) })]

    /// `writ tighten`'s rewrite of random grants, against random logged
    /// requests: the result checks, allows every request the source
    /// allowed and the logs recorded, and allows nothing the source did
    /// not.
    #[test]
    fn tightening_keeps_what_was_used_and_widens_nothing(
        grants in prop::collection::vec(
            (prop::collection::vec(prop::sample::select(TIGHTEN_ACTIONS), 1..3), prop::sample::select(TIGHTEN_RESOURCES)),
            1..5,
        ),
        used in prop::collection::vec((prop::sample::select(REQUEST_ACTIONS), prop::sample::select(REQUEST_RESOURCES)), 0..8),
    ) {
        let mut text = String::from("provider aws prod {\n  account = \"123456789012\"\n}\n\nagent bot {\n  owner = \"team\"\n  ttl = 1h\n");
        for (actions, resource) in &grants {
            let mut actions = actions.clone();
            actions.dedup();
            text.push_str(&format!("  aws.prod allow {} on \"{resource}\"\n", actions.join(", ")));
        }
        text.push_str("}\n");
        let options = writ_compiler::CheckOptions { today: writ_compiler::values::Date::parse("2026-11-29").unwrap() };
        let sources = crate::support::sources("bot.writ", &text);
        let before = writ_compiler::check(&sources, &options);
        // Grants the checker refuses (an object action on a bucket) are
        // not a source to tighten.
        prop_assume!(!before.has_errors());
        let model = &before.model;
        let mut tally = writ_compiler::usage::Tally::new(model, "proj", 0);
        for (action, resource) in &used {
            tally.add(&writ_compiler::usage::Use {
                agent: 0,
                provider: 0,
                action: action.to_string(),
                resource: Some(resource.to_string()),
                placement: writ_compiler::model::Placement::None,
                name: None,
                time: 1_000,
                denied: false,
                data: true,
            });
        }
        let report = tally.report();
        let tightenings = writ_compiler::usage::tightenings(model, &report);
        let tree = before.files[0].as_ref().unwrap();
        let mine: Vec<&writ_compiler::usage::Tightening> = tightenings.iter().collect();
        let (edited, _) = writ::commands::tighten::edit(&text, tree, &mine);
        let parsed = parse_file(FileId(0), &edited);
        prop_assert!(parsed.is_ok(), "{edited}");
        let formatted = format_file(&edited, parsed.as_ref().unwrap());
        let after = writ_compiler::check(&crate::support::sources("bot.writ", &formatted), &options);
        prop_assert!(!after.has_errors(), "{formatted}\n{:#?}", after.diagnostics);
        for (action, resource) in &used {
            if allowed(model, action, resource) {
                prop_assert!(allowed(&after.model, action, resource), "lost {action} on {resource}:\n{text}\n->\n{formatted}");
            }
        }
        for action in REQUEST_ACTIONS {
            for resource in REQUEST_RESOURCES {
                if allowed(&after.model, action, resource) {
                    prop_assert!(allowed(model, action, resource), "widened {action} on {resource}:\n{text}\n->\n{formatted}");
                }
            }
        }
    }
}
