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
    assert!(text.contains("writ::ttl_not_enforced"), "{text}");
    assert!(
        text.ends_with("checked 6 files: 0 errors, 3 warnings\n"),
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
    assert_eq!(findings.len(), 3);
    let expired = findings
        .iter()
        .find(|f| f["code"] == "writ::expired")
        .expect("the expired finding");
    assert_eq!(expired["severity"], "warning");
    assert_eq!(expired["file"], "examples/acme/teams/platform.writ");
    assert_eq!(expired["line"], 42);
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
fn a_missing_folder_is_a_clear_error_that_fails_the_run() {
    let output = writ(&["check", "no/such/folder"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("cannot read `no/such/folder`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_file_that_is_not_utf8_is_a_clear_error_that_fails_the_run() {
    let root = project("binary", &[("bad.writ", b"agent a {\xff\xfe}")]);
    let output = writ(&["check", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
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
    assert_eq!(output.status.code(), Some(1));
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
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no `.writ` files found"));
    let output = writ(&["check", root.join("README.md").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let output = writ(&["check", "--format", "xml"]);
    assert_eq!(output.status.code(), Some(1));
    // For `plan`, 2 means "there are changes": a mistyped flag is not.
    let output = writ(&["plan", "--detailed-exitcod"]);
    assert_eq!(output.status.code(), Some(1));
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
    assert!(
        text.ends_with("4 tests passed, 0 failed (15 expectations)\n"),
        "{text}"
    );
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
    assert!(
        text.ends_with("0 tests passed, 1 failed (1 expectation)\n"),
        "{text}"
    );
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
    let again = writ(&["fmt", "--check", path]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), "1 file already formatted\n");
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

#[test]
fn plan_prints_the_examples_plan_from_its_snapshot() {
    let output = writ(&["plan", "examples/acme"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("writ plan for project `acme`"), "{text}");
    assert!(
        text.contains("Legend: + create   ~ update   -/+ replace   - delete"),
        "{text}"
    );
    assert!(
        text.contains("# delete: `legacy_exporter` expired on 2026-09-30"),
        "{text}"
    );
    assert!(text.contains("Drift (changed outside writ"), "{text}");
    assert!(text.contains("Unmanaged identities"), "{text}");
    // A cluster cannot end access on a date by itself: the plan says so.
    assert!(
        text.contains("`deployer` expires on 2027-03-31: Kubernetes RBAC has no time condition, so its access in `kubernetes.prod` ends only when `writ apply` runs on or after that date"),
        "{text}"
    );
    // The counts and what else to see, each once, on lines that fit 80
    // columns; then where the state came from, and the next command.
    assert!(
        text.contains("\nPlan: 3 to create, 13 to update, 2 to replace, 3 to delete, 11 unchanged.\n1 object drifted; 4 agents gain access.\n"),
        "{text}"
    );
    assert!(
        text.starts_with("writ plan for project `acme`\n  against the recorded snapshot `examples/acme/snapshot.json`, not the live providers\n"),
        "{text}"
    );
    assert!(
        text.trim_end()
            .ends_with("To see what it would do: writ plan examples/acme --live"),
        "{text}"
    );
}

#[test]
fn detailed_exitcode_says_whether_there_are_changes() {
    assert_eq!(
        writ(&["plan", "examples/acme", "--detailed-exitcode"])
            .status
            .code(),
        Some(2)
    );
    // A snapshot of exactly the desired state: no changes, exit 0.
    let lowered = writ(&["lower", "examples/acme"]);
    assert_eq!(lowered.status.code(), Some(0));
    let root = project("self-snapshot", &[("desired.json", &lowered.stdout)]);
    let snapshot = root.join("desired.json");
    let output = writ(&[
        "plan",
        "examples/acme",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--detailed-exitcode",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("No changes"));
}

#[test]
fn plan_writes_json_and_markdown() {
    let root = project("plan-out", &[]);
    std::fs::create_dir_all(&root).unwrap();
    let out = root.join("plan.json");
    let output = writ(&[
        "plan",
        "examples/acme",
        "--format",
        "markdown",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let markdown = stdout(&output);
    assert!(markdown.starts_with("## writ plan: `acme`"), "{markdown}");
    assert!(markdown.contains("> [!WARNING]"), "{markdown}");
    // Warnings from the checker go to standard error, not into the comment.
    assert!(!markdown.contains("writ::expired"));
    assert!(stderr(&output).contains("writ::expired"));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(plan["format_version"], 1);
    assert_eq!(plan["summary"]["create"], 3);
    let json = writ(&["plan", "examples/acme", "--format", "json"]);
    let printed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(printed, plan);
}

#[test]
fn a_malformed_or_wrong_version_snapshot_is_a_clear_error() {
    let root = project(
        "bad-snapshots",
        &[
            ("broken.json", b"{\n  \"format_version\": 1,\n  \"providers\": {\n    \"aws.prod\": {\"resources\": [{\"address\": 3}]}\n  }\n}\n"),
            ("future.json", b"{\"format_version\": 7, \"providers\": {}}"),
        ],
    );
    for (file, expected) in [("broken.json", "line 4"), ("future.json", "version 1")] {
        let path = root.join(file);
        let output = writ(&[
            "plan",
            "examples/acme",
            "--snapshot",
            path.to_str().unwrap(),
        ]);
        // Not 2: with --detailed-exitcode that would read as "changes".
        assert_eq!(output.status.code(), Some(1), "{file}");
        let error = stderr(&output);
        assert!(
            error.contains(file) && error.contains(expected),
            "{file}: {error}"
        );
    }
    let output = writ(&[
        "plan",
        "examples/acme",
        "--snapshot",
        "no/such.json",
        "--detailed-exitcode",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read `no/such.json`"));
}

#[test]
fn a_plan_that_deletes_most_managed_objects_is_refused_without_the_flag() {
    let lowered = writ(&["lower", "examples/acme"]);
    let only_provider = PROVIDER;
    let root = project(
        "mass-delete",
        &[
            ("main.writ", only_provider.as_bytes()),
            ("live.json", &lowered.stdout),
            ("writ.toml", b"[project]\nname = \"acme\"\n"),
        ],
    );
    let snapshot = root.join("live.json");
    let args = [
        "plan",
        root.to_str().unwrap(),
        "--snapshot",
        snapshot.to_str().unwrap(),
    ];
    let output = writ(&args);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("refusing a plan that deletes"),
        "{}",
        stderr(&output)
    );
    let mut allowed = args.to_vec();
    allowed.push("--allow-mass-delete");
    assert_eq!(writ(&allowed).status.code(), Some(0));
}

#[test]
fn a_source_with_errors_makes_no_plan() {
    let root = project(
        "plan-errors",
        &[("main.writ", b"agent a {\n  ttl = 1h\n}\n")],
    );
    let output = writ(&[
        "plan",
        root.to_str().unwrap(),
        "--snapshot",
        "examples/acme/snapshot.json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    // Findings go to standard error whatever the format: standard output
    // is the plan's alone, and there is none.
    assert_eq!(stdout(&output), "");
    let text = stderr(&output);
    assert!(
        text.contains("writ::missing_field") && text.contains("no plan"),
        "{text}"
    );
}

#[test]
fn a_writ_toml_section_for_an_undeclared_provider_is_an_error() {
    let root = project(
        "config-typo",
        &[
            ("main.writ", PROVIDER.as_bytes()),
            (
                "writ.toml",
                b"[provider.aws.prdo]\nregion = \"us-east-1\"\n",
            ),
        ],
    );
    let output = writ(&["check", root.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("`[provider.aws.prdo]`") && error.contains("declared: `aws.prod`"),
        "{error}"
    );
}

#[test]
fn explain_with_only_an_agent_describes_everything_about_it() {
    let output = writ(&["explain", "invoice_reader", "examples/acme"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("agent `invoice_reader` (examples/acme/teams/billing.writ:32:7)"),
        "{text}"
    );
    assert!(
        text.contains(
            "credentials live at most 15m when asked for so; AWS holds its role's sessions to 1h"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "runs on kubernetes.prod namespace \"billing\" service_account \"invoice-reader\""
        ),
        "{text}"
    );
    assert!(text.contains("a delegate of `billing_bot`"), "{text}");
    assert!(text.contains("aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-invoices/*\"\n      through scope `invoices_read`"), "{text}");
    assert!(
        text.contains("bounded by guardrail `no_iam_admin`"),
        "{text}"
    );
    let retired = stdout(&writ(&["explain", "legacy_exporter", "examples/acme"]));
    assert!(
        retired.contains("expired on 2026-09-30: it holds no access"),
        "{retired}"
    );
    assert_eq!(
        writ(&["explain", "nobody", "examples/acme"]).status.code(),
        Some(1)
    );
}

#[test]
fn explain_reads_kubernetes_resources_and_names_as_rbac_does() {
    let root = project(
        "explain_kubernetes",
        &[(
            "main.writ",
            b"provider kubernetes prod {\n  cluster = \"prod\"\n}\n\nguardrail no_exec {\n  deny kubernetes.* create on \"pods/exec\"\n}\n\nagent reader {\n  owner = \"team\"\n  ttl = 1h\n  runs_on kubernetes.prod namespace \"apps\" service_account \"reader\"\n  @waive(wildcard_resource, \"test\")\n  kubernetes.prod allow get on \"*\" in namespace \"apps\"\n  kubernetes.prod allow get on \"deployments.apps\" named \"web\" in namespace \"apps\"\n}\n",
        )],
    );
    let path = root.to_string_lossy().to_string();
    let explain = |resource: &str, extra: &[&str]| {
        let mut args = vec![
            "explain",
            "reader",
            "kubernetes.prod",
            "get",
            resource,
            &path,
            "--namespace",
            "apps",
        ];
        args.extend_from_slice(extra);
        let output = writ(&args);
        (output.status.code(), stdout(&output), stderr(&output))
    };
    // `"*"` is every resource of the core group, as the lowered Role says.
    let (_, text, _) = explain("secrets", &[]);
    assert!(text.starts_with("ALLOWED"), "{text}");
    let (_, text, _) = explain("replicasets.apps", &[]);
    assert!(text.starts_with("DENIED"), "{text}");
    // And all their subresources.
    let (_, text, _) = explain("pods/log", &[]);
    assert!(text.starts_with("ALLOWED"), "{text}");
    // `named` is a literal list: one object is allowed, another is not.
    let (_, text, _) = explain("configmaps", &["--name", "settings"]);
    assert!(text.starts_with("ALLOWED"), "{text}");
    let (_, text, _) = explain("configmaps", &["--name", "other"]);
    assert!(
        text.starts_with("ALLOWED"),
        "the `*` grant gives every configmap: {text}"
    );
    // A pattern is not one request.
    let (code, _, error) = explain("*.apps", &[]);
    assert_eq!(code, Some(1), "{error}");
    assert!(error.contains("not a pattern"), "{error}");
    let (code, _, error) = explain("secret*", &[]);
    assert_eq!(code, Some(1), "{error}");
    assert!(error.contains("literally"), "{error}");
}

#[test]
fn explain_says_a_kubernetes_guardrail_holds_only_at_compile_time() {
    let root = project(
        "explain_kubernetes_guardrail",
        &[(
            "main.writ",
            b"provider kubernetes prod {\n  cluster = \"prod\"\n}\n\nguardrail no_secrets {\n  deny kubernetes.* get on \"secrets\"\n}\n\nagent reader {\n  owner = \"team\"\n  ttl = 1h\n  runs_on kubernetes.prod namespace \"apps\" service_account \"reader\"\n  kubernetes.prod allow get on \"configmaps\" in namespace \"apps\"\n}\n",
        )],
    );
    let path = root.to_string_lossy().to_string();
    let output = writ(&[
        "explain",
        "reader",
        "kubernetes.prod",
        "get",
        "secrets",
        &path,
    ]);
    let text = stdout(&output);
    assert!(text.starts_with("DENIED"), "{text}");
    assert!(text.contains("RBAC has no deny"), "{text}");
}

#[test]
fn the_project_is_found_from_any_folder_inside_it() {
    // From a subfolder, as cargo finds its manifest: the whole project.
    let teams = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme/teams");
    let inside = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["check", "--format", "plain"])
        .current_dir(&teams)
        .env("WRIT_TODAY", "2026-11-28")
        .output()
        .expect("writ runs");
    assert_eq!(inside.status.code(), Some(0), "{}", stdout(&inside));
    assert!(
        stdout(&inside).ends_with("checked 6 files: 0 errors, 3 warnings\n"),
        "{}",
        stdout(&inside)
    );
    assert!(
        stderr(&inside).contains("project `acme` in `..` (the nearest folder with a writ.toml)"),
        "{}",
        stderr(&inside)
    );
    // Findings name the files as seen from where writ was run.
    assert!(
        stdout(&inside).contains("[billing.writ:3:3]"),
        "{}",
        stdout(&inside)
    );
    // A folder with no source and no project above says what a project is.
    let empty = project("empty", &[("notes.txt", b"nothing here")]);
    let output = writ(&["check", empty.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("a project is a folder of `.writ` files"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn check_finds_what_a_plan_would_refuse() {
    // AWS grants, and nothing that may become the agent: `plan` cannot
    // make its role, so `check` says so first.
    let root = project(
        "no-runs-on",
        &[(
            "main.writ",
            format!(
                "{PROVIDER}agent loner {{\n  owner = \"team\"\n  ttl = 1h\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n}}\n"
            )
            .as_bytes(),
        )],
    );
    let output = writ(&["check", root.to_str().unwrap(), "--format", "plain"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("nothing may assume its role"),
        "{}",
        stdout(&output)
    );
}

/// The rows of the exit-code table in docs/cli.md: command, and what exits
/// 2 ("never" for most).
fn exit_code_table() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md"))
        .expect("docs/cli.md");
    let table = text
        .split("## Exit codes")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("an exit-code section");
    table
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].trim_matches('`').to_string(), cells[3].to_string())
        })
        .collect()
}

#[test]
fn the_exit_code_table_holds_for_every_command() {
    use clap::CommandFactory;
    let table = exit_code_table();
    let listed: Vec<&str> = table.iter().map(|(c, _)| c.as_str()).collect();
    let cli = writ::cli::Cli::command();
    let commands: Vec<String> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    for command in &commands {
        assert!(
            listed.contains(&command.as_str()),
            "docs/cli.md has no exit codes for `{command}`"
        );
    }
    // A project whose writ.toml is wrong: a configuration error.
    let broken = project(
        "exit-codes-config",
        &[
            ("main.writ", PROVIDER.as_bytes()),
            ("writ.toml", b"[provider.aws.prod]\nregon = \"us-east-1\"\n"),
        ],
    );
    let broken = broken.to_str().unwrap();
    for (command, two) in &table {
        // What each command needs besides PATH.
        let (before, after): (&[&str], &[&str]) = match command.as_str() {
            "explain" | "revoke" | "token" => (&["billing_bot"], &[]),
            "unlock" => (&[], &["--holder", "someone"]),
            "apply" => (&[], &["--auto-approve"]),
            "usage" | "tighten" => (&[], &["--from", "examples/acme/usage"]),
            "import" => (&[], &["--from", "examples/acme/snapshot.json"]),
            // Serves until stopped: run with an address it cannot take.
            "serve" => (&[], &["--listen", "256.0.0.1:1"]),
            _ => (&[], &[]),
        };
        let run = |path: &str, extra: &[&str]| {
            let mut args = vec![command.as_str()];
            args.extend_from_slice(before);
            args.push(path);
            args.extend_from_slice(after);
            args.extend_from_slice(extra);
            writ(&args)
        };
        // A usage error.
        let output = run(broken, &["--no-such-flag"]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "writ {command} --no-such-flag: {}",
            stderr(&output)
        );
        // Help succeeds.
        assert_eq!(
            writ(&[command, "--help"]).status.code(),
            Some(0),
            "writ {command} --help"
        );
        // The language server tells the editor of a broken writ.toml, and
        // serves on (tests/it/lsp.rs); `init` writes a writ.toml where
        // there is none, and reads none.
        if command == "lsp" || command == "init" {
            continue;
        }
        // A configuration error.
        let output = run(broken, &[]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "writ {command} with a broken writ.toml: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("regon"),
            "writ {command}: {}",
            stderr(&output)
        );
        // Help succeeds.
        assert_eq!(
            writ(&[command, "--help"]).status.code(),
            Some(0),
            "writ {command} --help"
        );
        if two != "never" {
            // 2 is "there are changes", only: a mistyped flag beside
            // `--detailed-exitcode` is a failure.
            let output = run(broken, &["--detailed-exitcode", "--formt", "json"]);
            assert_eq!(
                output.status.code(),
                Some(1),
                "writ {command} --formt: {}",
                stderr(&output)
            );
        }
    }
    // `explain --exit-code`: 1 for DENIED, 0 for ALLOWED.
    let ask = |action: &str, resource: &str| {
        writ(&[
            "explain",
            "billing_bot",
            "aws.prod",
            action,
            resource,
            "examples/acme",
            "--exit-code",
        ])
        .status
        .code()
    };
    assert_eq!(
        ask("s3:GetObject", "arn:aws:s3:::acme-invoices/a.pdf"),
        Some(0)
    );
    assert_eq!(
        ask("s3:DeleteObject", "arn:aws:s3:::acme-invoices/a.pdf"),
        Some(1)
    );
}

#[test]
fn explain_checks_its_request_as_a_test_does() {
    // A misspelt action: the same finding, and did-you-mean, as in a test.
    let output = writ(&[
        "explain",
        "billing_bot",
        "aws.prod",
        "s3:GetObjekt",
        "arn:aws:s3:::acme-invoices/a.pdf",
        "examples/acme",
        "--color",
        "never",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("writ::unknown_action") && error.contains("did you mean `s3:GetObject`?"),
        "{error}"
    );
    // A misspelt agent.
    let output = writ(&["explain", "biling_bot", "examples/acme"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("did you mean `billing_bot`?"),
        "{}",
        stderr(&output)
    );
    // A `named` grant does not answer for the whole resource, and says so;
    // without a namespace, the answer says where it is granted.
    let ask = |extra: &[&str]| {
        let mut args = vec![
            "explain",
            "billing_bot",
            "kubernetes.prod",
            "get",
            "configmaps",
            "examples/acme",
        ];
        args.extend_from_slice(extra);
        stdout(&writ(&args))
    };
    let whole = ask(&["--namespace", "billing"]);
    assert!(whole.starts_with("DENIED"), "{whole}");
    assert!(
        whole.contains("allowed only more narrowly than asked:\n    for the object named `billing-config` (ask with `--name billing-config`)"),
        "{whole}"
    );
    let one = ask(&["--namespace", "billing", "--name", "billing-config"]);
    assert!(one.starts_with("ALLOWED"), "{one}");
    assert!(!one.contains("narrowly"), "{one}");
    let cluster = ask(&["--name", "billing-config"]);
    assert!(cluster.starts_with("DENIED"), "{cluster}");
    assert!(
        cluster.contains("in namespace `billing` (ask with `--namespace billing`)"),
        "{cluster}"
    );
    // JSON, for machines.
    let json: serde_json::Value =
        serde_json::from_str(&ask(&["--namespace", "billing", "--format", "json"])).expect("JSON");
    assert_eq!(json["decision"], "denied");
    assert_eq!(json["allowed_narrower"][0]["name"], "billing-config");
    assert_eq!(
        json["allowed_narrower"][0]["namespace"],
        serde_json::Value::Null
    );
    // A word the language would read as two adds nothing to the request.
    let output = writ(&[
        "explain",
        "billing_bot/**/",
        "aws.prod",
        "s3:GetObject",
        "arn:aws:s3:::acme-invoices/a.pdf",
        "examples/acme",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is not a request writ can read"),
        "{}",
        stderr(&output)
    );
    let output = writ(&[
        "explain",
        "billing_bot\u{feff}can\u{feff}aws.prod\u{feff}s3:GetObject\u{feff}on\u{feff}\"x\"}test\u{feff}\"t\"{expect\u{feff}billing_bot",
        "aws.prod",
        "s3:DeleteObject",
        "arn:aws:s3:::acme-invoices/a.pdf",
        "examples/acme",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(stdout(&output).is_empty(), "{}", stdout(&output));
    let json: serde_json::Value = serde_json::from_str(&stdout(&writ(&[
        "explain",
        "invoice_reader",
        "examples/acme",
        "--format",
        "json",
    ])))
    .expect("JSON");
    assert_eq!(json["delegate_of"], serde_json::json!(["billing_bot"]));
    assert_eq!(json["expires"], "2027-06-30");
}

#[test]
fn colour_follows_the_flag_and_the_environment() {
    let plan = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_writ"));
        command
            .args(["plan", "examples/acme"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("WRIT_TODAY", "2026-11-28")
            .env_remove("NO_COLOR");
        for (key, value) in env {
            command.env(key, value);
        }
        stdout(&command.output().expect("writ runs"))
    };
    assert!(plan(&["--color", "always"], &[]).contains("\u{1b}["));
    assert!(!plan(&["--color", "never"], &[]).contains("\u{1b}["));
    // `auto` is off when not on a terminal (as here).
    assert!(!plan(&[], &[]).contains("\u{1b}["));
    assert!(!plan(&["--color", "auto"], &[("TERM", "dumb")]).contains("\u{1b}["));
}

#[test]
fn fmt_check_shows_the_difference() {
    let root = project(
        "fmt-diff",
        &[(
            "main.writ",
            b"provider aws prod {\n    account = \"123456789012\"\n}\n",
        )],
    );
    let output = writ(&["fmt", root.to_str().unwrap(), "--check"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("-    account = \"123456789012\"\n+  account = \"123456789012\"\n"),
        "{text}"
    );
    assert!(
        text.contains("would reformat ") && text.trim_end().ends_with("main.writ"),
        "{text}"
    );
}

#[test]
fn the_getting_started_guide_works() {
    let root = project("getting-started", &[]);
    std::fs::create_dir_all(&root).expect("the project folder");
    let ran = walk_guide("docs/getting-started.md", &root, None);
    assert!(ran >= 5, "the guide runs {ran} commands");
}

/// Walks a guide as a reader would: each block named by a file is written
/// (a later block of the same name replaces it; `127.0.0.1:5000`, a local
/// IAM's address, becomes `endpoint`'s), each `sh` command is run in the
/// project (`sh fails` must exit 1, `sh setup` is the test's to do), and
/// what the `text` block after it shows must appear in its output, line
/// by line. Without `endpoint`, the walk stops at the `<!-- live` marker.
/// Returns how many commands ran.
fn walk_guide(guide: &str, root: &Path, endpoint: Option<&str>) -> usize {
    let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(guide))
        .expect("the guide");
    let guide = match endpoint {
        Some(_) => guide.as_str(),
        None => guide.split("<!-- live").next().unwrap_or_default(),
    };
    let mut blocks = Vec::new();
    let mut lines = guide.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let body: Vec<&str> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .collect();
        blocks.push((info.to_string(), body.join("\n") + "\n"));
    }
    let mut ran = 0;
    let mut last_output = String::new();
    for (info, body) in &blocks {
        let words: Vec<&str> = info.split_whitespace().collect();
        match words.as_slice() {
            ["sh", "setup"] => {}
            ["sh"] | ["sh", "fails"] => {
                let args: Vec<&str> = body.split_whitespace().skip(1).collect();
                let output = Command::new(env!("CARGO_BIN_EXE_writ"))
                    .args(&args)
                    .current_dir(root)
                    .env("WRIT_TODAY", "2026-11-28")
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing")
                    .env_remove("AWS_PROFILE")
                    .output()
                    .expect("writ runs");
                last_output = format!("{}{}", stdout(&output), stderr(&output));
                let expected = if words.len() == 2 { 1 } else { 0 };
                assert_eq!(
                    output.status.code(),
                    Some(expected),
                    "`{}`:\n{last_output}",
                    body.trim()
                );
                ran += 1;
            }
            ["text"] => {
                for line in body.lines().filter(|l| !l.trim().is_empty()) {
                    assert!(
                        last_output.contains(line),
                        "the guide shows `{line}`, writ printed:\n{last_output}"
                    );
                }
            }
            [_, file] => {
                let text = match endpoint {
                    Some(endpoint) => body.replace("127.0.0.1:5000", endpoint),
                    None => body.clone(),
                };
                std::fs::write(root.join(file), text).expect("write")
            }
            _ => {}
        }
    }
    ran
}

#[test]
fn the_tutorial_works() {
    // `cp -r examples/acme acme && cd acme`
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("tutorial")
        .join("acme");
    let _ = std::fs::remove_dir_all(&root);
    crate::support::copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme"),
        &root,
    );
    let moto = crate::moto::Moto::start();
    let endpoint = moto.as_ref().map(|m| format!("127.0.0.1:{}", m.port));
    let ran = walk_guide("docs/tutorial.md", &root, endpoint.as_deref());
    // Every command, the live part's five too when moto is here.
    let expected = if endpoint.is_some() { 19 } else { 14 };
    assert_eq!(ran, expected, "the tutorial runs {ran} commands");
}

#[test]
fn an_app_agent_with_aws_grants_is_told_why_nothing_may_assume_its_role() {
    let root = project(
        "app-aws",
        &[(
            "main.writ",
            format!(
                "{PROVIDER}provider github acme {{\n  org = \"acme\"\n}}\n\nagent app_bot {{\n  owner = \"team\"\n  ttl = 1h\n  runs_on github.acme app \"release-bot\"\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::b/*\"\n}}\n"
            )
            .as_bytes(),
        )],
    );
    let output = writ(&["check", root.to_str().unwrap(), "--format", "plain"]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("a GitHub App's tokens cannot assume an AWS role"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn drift_prints_markdown_when_asked() {
    let output = writ(&["drift", "examples/acme", "--format", "markdown"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("### writ drift for project `acme`\n\n"),
        "{text}"
    );
    assert!(text.contains("**Drift**: 1 changed outside writ"), "{text}");
    assert!(text.contains("- `aws.prod/role/"), "{text}");
    assert!(
        text.contains("`writ apply` restores what writ owns and governs."),
        "{text}"
    );
    // The example's estate outside writ (a key a secret may hold, a role
    // that trusts it) is not writ's to take away.
    assert!(
        text.trim_end().ends_with(
            "Access bound by objects writ does not own stays until it is removed where it was made."
        ),
        "{text}"
    );
}

#[test]
fn writ_init_starts_a_project_that_checks_and_never_writes_over_a_file() {
    let repository = Path::new(env!("CARGO_TARGET_TMPDIR")).join("init-repository");
    let _ = std::fs::remove_dir_all(&repository);
    std::fs::create_dir_all(repository.join(".git")).unwrap();
    std::fs::write(repository.join(".gitignore"), "/target").unwrap();
    let project = repository.join("infra");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_writ"))
            .args(args)
            .current_dir(&repository)
            .env("WRIT_TODAY", "2026-11-28")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("writ runs")
    };
    // Not on a terminal: nothing asked, the defaults taken.
    let made = run(&["init", "infra", "--provider", "aws,kubernetes"]);
    let shown = format!("{}{}", stdout(&made), stderr(&made));
    assert_eq!(made.status.code(), Some(0), "{shown}");
    for file in [
        "infra/writ.toml",
        "infra/providers.writ",
        "infra/agents.writ",
        ".github/workflows/writ-plan.yml",
        ".github/workflows/writ-apply.yml",
    ] {
        assert!(repository.join(file).is_file(), "no {file}: {shown}");
        assert!(
            shown.contains(&format!("wrote {}", Path::new(file).display())) || shown.contains(file),
            "{shown}"
        );
    }
    let settings = std::fs::read_to_string(project.join("writ.toml")).unwrap();
    assert!(
        settings.contains("[project]\nname = \"infra\""),
        "{settings}"
    );
    assert!(
        settings.contains("[provider.kubernetes.prod]"),
        "{settings}"
    );
    let agents = std::fs::read_to_string(project.join("agents.writ")).unwrap();
    assert!(agents.contains("expires = 2027-05-01"), "{agents}");
    // The workflows name the project's folder, and keep the cluster's step.
    let plan = std::fs::read_to_string(repository.join(".github/workflows/writ-plan.yml")).unwrap();
    assert!(plan.contains("args: check infra --format github"), "{plan}");
    assert!(plan.contains("paths: [\"infra/**\"]"), "{plan}");
    assert!(plan.contains("Kubernetes credentials"), "{plan}");
    let ignore = std::fs::read_to_string(repository.join(".gitignore")).unwrap();
    assert_eq!(
        ignore,
        "/target\n# writ's plan files: made by each run, not source\n/writ-plan.json\n"
    );
    // It checks, and is laid out as `writ fmt` lays it out.
    let checked = run(&["check", "infra"]);
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let formatted = run(&["fmt", "infra", "--check"]);
    assert_eq!(formatted.status.code(), Some(0), "{}", stderr(&formatted));
    // Again: every file kept as it is, the ignore entry not doubled.
    std::fs::write(project.join("agents.writ"), "// mine\n").unwrap();
    let again = run(&["init", "infra"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(
        stdout(&again).contains("kept infra/agents.writ (it exists)"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        std::fs::read_to_string(project.join("agents.writ")).unwrap(),
        "// mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(repository.join(".gitignore")).unwrap(),
        ignore
    );
    // Each kind of provider alone makes a project that checks.
    for kind in ["aws", "kubernetes", "github", "gcp"] {
        let folder = format!("only-{kind}");
        let made = run(&["init", &folder, "--provider", kind, "--name", "Only Me"]);
        assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
        let settings = std::fs::read_to_string(repository.join(&folder).join("writ.toml")).unwrap();
        assert!(settings.contains("name = \"only-me\""), "{settings}");
        let checked = run(&["check", &folder]);
        assert_eq!(
            checked.status.code(),
            Some(0),
            "{kind}: {}",
            stderr(&checked)
        );
    }
    // A repository of GitHub alone: no cloud credentials in its workflows;
    // a long name cut to what writ.toml takes.
    let lone = Path::new(env!("CARGO_TARGET_TMPDIR")).join("init-github-only");
    let _ = std::fs::remove_dir_all(&lone);
    std::fs::create_dir_all(lone.join(".git")).unwrap();
    let made = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args([
            "init",
            ".",
            "--provider",
            "github",
            "--name",
            &"x".repeat(80),
        ])
        .current_dir(&lone)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(made.status.code(), Some(0), "{}", stderr(&made));
    let plan = std::fs::read_to_string(lone.join(".github/workflows/writ-plan.yml")).unwrap();
    assert!(!plan.contains("configure-aws-credentials"), "{plan}");
    assert!(!plan.contains("update-kubeconfig"), "{plan}");
    assert!(plan.contains("args: check . --format github"), "{plan}");
    let settings = std::fs::read_to_string(lone.join("writ.toml")).unwrap();
    assert!(
        settings.contains(&format!("name = \"{}\"", "x".repeat(64))),
        "{settings}"
    );
    let checked = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["check", "."])
        .current_dir(&lone)
        .env("WRIT_TODAY", "2026-11-28")
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    // A provider writ does not know.
    let wrong = run(&["init", "other", "--provider", "azure"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        stderr(&wrong).contains("`azure` is not a provider writ knows"),
        "{}",
        stderr(&wrong)
    );
}

#[test]
fn the_language_references_example_checks_without_a_finding_and_its_tests_pass() {
    let reference =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/language.md"))
            .unwrap();
    let start = reference.find("```writ\n").expect("an example") + "```writ\n".len();
    let end = start + reference[start..].find("```").unwrap();
    let root = project(
        "language-reference",
        &[("main.writ", &reference.as_bytes()[start..end])],
    );
    let run = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_writ"))
            .args([command, root.to_str().unwrap()])
            .env("WRIT_TODAY", "2026-11-28")
            .output()
            .expect("writ runs")
    };
    let checked = run("check");
    assert_eq!(checked.status.code(), Some(0), "{}", stderr(&checked));
    let said = format!("{}{}", stdout(&checked), stderr(&checked));
    assert!(said.contains("no problems found"), "{said}");
    let tested = run("test");
    assert_eq!(tested.status.code(), Some(0), "{}", stdout(&tested));
    let formatted = Command::new(env!("CARGO_BIN_EXE_writ"))
        .args(["fmt", "--check", root.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(formatted.status.code(), Some(0), "{}", stdout(&formatted));
}
