//! How long parsing, resolving and checking take as projects grow.
//! Goal (issue 2): 100k lines in under 1 s on one core in release, and cost
//! growing linearly (10× the input, at most 11× the time).
//!
//! Run: `cargo bench --bench check`

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use divan::Bencher;
use writ_compiler::values::Date;
use writ_compiler::{CheckOptions, SourceMap};

fn main() {
    divan::main();
}

const OPTIONS: CheckOptions = CheckOptions {
    today: Date {
        year: 2026,
        month: 11,
        day: 28,
    },
};

/// One team's worth of writ: two scopes, an agent with a delegation
/// ceiling, and a delegate inside it. 31 lines.
fn unit(i: usize) -> String {
    format!(
        r#"/// Reads bucket {i}.
scope s{i}_read {{
  aws.prod allow s3:GetObject on "arn:aws:s3:::bucket-{i}/*"
  aws.prod allow s3:ListBucket on "arn:aws:s3:::bucket-{i}"
}}

scope s{i}_write {{
  include s{i}_read
  aws.prod allow s3:PutObject, s3:DeleteObject on "arn:aws:s3:::bucket-{i}/out/*"
    when aws:RequestedRegion == "us-east-1"
}}

agent a{i} {{
  owner = "team-{team}"
  ttl = 1h
  expires = 2027-06-30
  runs_on kubernetes.prod namespace "ns-{namespace}" service_account "a{i}"
  can s{i}_write
  delegates {{
    max_depth = 1
    ttl = 15m
    can s{i}_read
  }}
}}

agent d{i} {{
  owner = "team-{team}"
  parent = a{i}
  ttl = 15m
  can s{i}_read
}}
"#,
        team = i % 50,
        namespace = i % 100,
    )
}

/// A project of about `lines` lines, in files of about 1,000 lines each.
fn project(lines: usize) -> SourceMap {
    let header = r#"provider aws prod {
  account = "123456789012"
}

provider kubernetes prod {
  cluster = "prod"
}

guardrail no_iam {
  deny aws.* iam:*, organizations:* on "*"
}

guardrail short_lived {
  max_ttl = 4h
}
"#;
    let mut sources = SourceMap::new();
    sources.add("providers.writ", header);
    let units = lines.div_ceil(32);
    let mut file = String::new();
    let mut file_index = 0;
    for i in 0..units {
        file.push_str(&unit(i));
        file.push('\n');
        if file.len() > 30_000 || i + 1 == units {
            sources.add(format!("team-{file_index}.writ"), std::mem::take(&mut file));
            file_index += 1;
        }
    }
    sources
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn parse_and_check(bencher: Bencher, lines: usize) {
    let sources = project(lines);
    let checked = writ_compiler::check(&sources, &OPTIONS);
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
    bencher
        .counter(divan::counter::ItemsCount::new(lines))
        .bench(|| writ_compiler::check(&sources, &OPTIONS));
}

#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 10)]
fn parse_only(bencher: Bencher, lines: usize) {
    let sources = project(lines);
    bencher.bench(|| {
        sources
            .files()
            .filter(|(id, file)| writ_compiler::syntax::parse_file(*id, &file.text).is_ok())
            .count()
    });
}
