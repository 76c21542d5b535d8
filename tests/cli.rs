//! End-to-end tests of the `writ` binary: exit codes, output formats, and
//! clear errors for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn writ(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WRIT_TODAY", "2026-11-28")
        .env_remove("NO_COLOR")
        .output()
        .expect("writ runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("UTF-8 output")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("UTF-8 output")
}

/// A fresh project folder with the given files.
fn project(name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    root
}

const PROVIDER: &str = "provider aws prod {\n  account = \"123456789012\"\n}\n";

#[test]
fn checking_the_example_shows_its_intended_warnings_and_succeeds() {
    let output = writ(&["check", "examples/acme", "--format", "plain"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("writ::wildcard_resource"), "{text}");
    assert!(text.contains("writ::expired"), "{text}");
    assert!(
        text.ends_with("checked 6 files: 0 errors, 2 warnings\n"),
        "{text}"
    );
    // Plain output has neither colour nor box drawing.
    assert!(!text.contains('\u{1b}'));
    assert!(
        !text.chars().any(|c| ('\u{2500}'..='\u{257f}').contains(&c)),
        "{text}"
    );
}

#[test]
fn deny_warnings_makes_warnings_fail() {
    let output = writ(&["check", "examples/acme", "--deny-warnings"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn human_output_has_no_colour_when_not_on_a_terminal() {
    let output = writ(&["check", "examples/acme"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(!stdout(&output).contains('\u{1b}'));
}

#[test]
fn json_output_is_one_object_per_finding_with_positions() {
    let output = writ(&["check", "examples/acme", "--format", "json"]);
    assert_eq!(output.status.code(), Some(0));
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let findings = findings.as_array().expect("an array");
    assert_eq!(findings.len(), 2);
    let expired = findings
        .iter()
        .find(|f| f["code"] == "writ::expired")
        .expect("the expired finding");
    assert_eq!(expired["severity"], "warning");
    assert_eq!(expired["file"], "examples/acme/teams/platform.writ");
    assert_eq!(expired["line"], 41);
    assert_eq!(expired["column"], 13);
    assert!(expired["span"]["end"].as_u64() > expired["span"]["start"].as_u64());
    assert_eq!(expired["labels"][0]["primary"], true);
    assert!(expired["help"].as_str().unwrap().contains("expires"));
}

#[test]
fn errors_exit_one_and_every_finding_is_reported_in_source_order() {
    let root = project(
        "errors",
        &[(
            "main.writ",
            format!("{PROVIDER}agent a {{\n  ttl = 0h\n  can missing\n}}\nagent b {{\n  owner = \"t\"\n}}\n").as_bytes(),
        )],
    );
    let output = writ(&["check", root.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let lines: Vec<(u64, &str)> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["line"].as_u64().unwrap(), f["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (4, "writ::missing_field"),
            (5, "writ::invalid_value"),
            (6, "writ::unknown_name"),
            (8, "writ::missing_field"),
        ]
    );
}

#[test]
fn a_duplicate_in_another_file_points_at_both_files() {
    let scope = "scope reader {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n}\n";
    let root = project(
        "duplicate",
        &[
            ("a.writ", format!("{PROVIDER}{scope}").as_bytes()),
            ("nested/b.writ", scope.as_bytes()),
        ],
    );
    let output = writ(&["check", root.to_str().unwrap(), "--format", "plain"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("scope `reader` is defined more than once"),
        "{text}"
    );
    assert!(text.contains("nested/b.writ:1:7"), "{text}");
    assert!(text.contains("a.writ:4:7"), "{text}");
    assert!(text.contains("first defined here"), "{text}");
}

#[test]
fn a_missing_folder_is_a_clear_error_with_exit_two() {
    let output = writ(&["check", "no/such/folder"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read `no/such/folder`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_file_that_is_not_utf8_is_a_clear_error_with_exit_two() {
    let root = project("binary", &[("bad.writ", b"agent a {\xff\xfe}")]);
    let output = writ(&["check", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("is not UTF-8 text (invalid byte at offset 9)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_key_in_writ_toml_is_named() {
    let root = project(
        "config",
        &[
            ("main.writ", PROVIDER.as_bytes()),
            ("writ.toml", b"[provider.aws.prod]\nregon = \"us-east-1\"\n"),
        ],
    );
    let output = writ(&["check", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("unknown key `regon`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_empty_folder_and_a_wrong_file_are_usage_errors() {
    let root = project("empty", &[("README.md", b"nothing")]);
    let output = writ(&["check", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("no `.writ` files found"));
    let output = writ(&["check", root.join("README.md").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let output = writ(&["check", "--format", "xml"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn hidden_folders_and_target_are_skipped() {
    let broken = b"this does not parse";
    let root = project(
        "skipped",
        &[
            ("main.writ", PROVIDER.as_bytes()),
            (".git/x.writ", broken),
            ("target/y.writ", broken),
        ],
    );
    let output = writ(&["check", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("checked 1 file: no problems found"));
}

#[test]
fn writ_test_runs_the_example_tests() {
    let output = writ(&["test", "examples/acme"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.contains("test \"billing bot reads but never deletes invoices\" ... ok"),
        "{text}"
    );
    assert!(text.ends_with("15 passed, 0 failed\n"), "{text}");
}

#[test]
fn a_failing_expectation_fails_writ_test() {
    let root = project(
        "failing",
        &[(
            "main.writ",
            format!(
                "{PROVIDER}agent a {{\n  owner = \"t\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n}}\ntest \"t\" {{\n  expect a can aws.prod s3:PutObject on \"arn:aws:s3:::b/x\"\n}}\n"
            )
            .as_bytes(),
        )],
    );
    let output = writ(&["test", root.to_str().unwrap(), "--format", "plain"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("writ::test_failed"), "{text}");
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
}

#[test]
fn fmt_check_passes_on_the_example_and_fmt_rewrites_a_messy_file() {
    assert_eq!(
        writ(&["fmt", "--check", "examples/acme"]).status.code(),
        Some(0)
    );
    let messy = "provider  aws prod{account=\"123456789012\"}   // the account\nscope s{\naws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"}\n";
    let root = project("messy", &[("main.writ", messy.as_bytes())]);
    let path = root.to_str().unwrap();
    let output = writ(&["fmt", "--check", path]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("would reformat"));
    assert_eq!(
        std::fs::read_to_string(root.join("main.writ")).unwrap(),
        messy
    );
    assert_eq!(writ(&["fmt", path]).status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(root.join("main.writ")).unwrap(),
        "provider aws prod {\n  account = \"123456789012\"\n}  // the account\n\nscope s {\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n}\n"
    );
    assert_eq!(writ(&["fmt", "--check", path]).status.code(), Some(0));
}

#[test]
fn fmt_leaves_a_file_with_syntax_errors_alone() {
    let broken = "agent a {\n  owner = \n";
    let root = project("fmt-broken", &[("main.writ", broken.as_bytes())]);
    let output = writ(&["fmt", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(root.join("main.writ")).unwrap(),
        broken
    );
}

#[test]
fn explain_names_the_grant_or_the_rule_that_decides() {
    let output = writ(&[
        "explain",
        "invoice_reader",
        "aws.prod",
        "s3:GetObject",
        "arn:aws:s3:::acme-invoices/x.pdf",
        "--path",
        "examples/acme",
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ALLOWED"), "{text}");
    assert!(text.contains("scope `invoices_read`"), "{text}");
    let output = writ(&[
        "explain",
        "billing_bot",
        "aws.prod",
        "iam:CreateUser",
        "arn:aws:iam::123456789012:user/x",
        "--path",
        "examples/acme",
    ]);
    let text = stdout(&output);
    assert!(text.starts_with("DENIED"), "{text}");
    assert!(
        text.contains("guardrail `no_iam_admin` denies it"),
        "{text}"
    );
}
