//! `writ usage` on the example's logs (`examples/acme/usage/`: CloudTrail
//! records plain, gzipped and from `lookup-events`, and a Kubernetes audit
//! log), and on logs it cannot read.

use crate::binary;
use std::path::{Path, PathBuf};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme")
}

fn usage(args: &[&str]) -> std::process::Output {
    let mut all = vec!["usage"];
    all.extend_from_slice(args);
    binary::writ(&example(), &all)
}

/// Each grant with its use, from every kind of log; what is never used,
/// used beyond the grants, denied, or minted; and what was not counted,
/// with why (a duplicate, a record before the window, another role's, an
/// incomplete audit stage, an event writ cannot name).
#[test]
fn usage_of_the_example_from_its_logs() {
    let logs = example().join("usage");
    let logs = logs.to_str().unwrap();
    let text = usage(&["--from", logs]);
    assert!(text.status.success(), "{}", binary::text(&text));
    let text = String::from_utf8(text.stdout).unwrap();
    for expected in [
        "billing_bot (3 of 4 grants used)",
        "  2 uses, last 2026-11-21T02:00:00Z: aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-invoices/*\" (via reports_write > invoices_read)",
        "  never used: aws.prod allow s3:PutObject on \"arn:aws:s3:::acme-reports/*\" (via reports_write)",
        "  delegation: kubernetes.prod create on serviceaccounts/token in namespace billing named invoice-reader ×1",
        // In AWS, by the delegate's trust.
        "  delegation: aws.prod sts:AssumeRole on arn:aws:iam::123456789012:role/writ/acme/invoice_reader ×1",
        "  denied: aws.prod s3:DeleteObject on arn:aws:s3:::acme-invoices/2026/11/inv-2.pdf ×1",
        // The delegate's own, by its own role's sessions.
        "invoice_reader (1 of 2 grants used)",
        // From `lookup-events`, and an event without a resource.
        "  1 use, last 2026-11-26T10:00:00Z: aws.prod allow ecr:GetAuthorizationToken on \"*\"",
        // Allowed live, not by the source.
        "  used, but no grant allows it: aws.prod ses:SendBulkEmail on arn:aws:ses:us-east-1:123456789012:identity/acme.example ×1",
        "  denied: kubernetes.prod get on secrets in namespace kube-system named bootstrap-token ×1",
        "Events writ cannot name as an IAM action (not counted): s3.amazonaws.com:GetBucketIntelligentTieringConfiguration ×1",
        "1 read before (the same `eventID`)",
        "1 read before (the same `auditID`)",
        "1 before the window",
        "1 not a session of one of the project's roles",
        "1 not a completed request (audit stage)",
    ] {
        assert!(text.contains(expected), "no `{expected}` in:\n{text}");
    }
    insta::with_settings!({ snapshot_path => "../snapshots/usage", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("example_text", text);
        let json = usage(&["--from", logs, "--format", "json"]);
        insta::assert_snapshot!("example_json", String::from_utf8(json.stdout).unwrap());
        let markdown = usage(&["--from", logs, "--format", "markdown"]);
        insta::assert_snapshot!("example_markdown", String::from_utf8(markdown.stdout).unwrap());
    });
    // A shorter window: only the last days count.
    let recent = usage(&["--from", logs, "--since", "3d", "--format", "json"]);
    let recent: serde_json::Value = serde_json::from_slice(&recent.stdout).unwrap();
    assert_eq!(recent["since"], "2026-11-26T00:00:00Z");
    let bot = recent["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "billing_bot")
        .unwrap();
    let used: u64 = bot["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["uses"].as_u64().unwrap())
        .sum();
    assert_eq!(used, 1, "only the config map, on the 27th: {bot:#}");
}

/// A file that is not a log, a log cut short, a window writ cannot read:
/// clear errors, no report.
#[test]
fn logs_writ_cannot_read_are_errors() {
    let folder = std::env::temp_dir().join(format!("writ-usage-bad-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let cases = [
        (
            "plan.json",
            "{\"format_version\": 1}",
            "is not a CloudTrail log or a Kubernetes audit log",
        ),
        (
            "cut.json",
            "{\"Records\": [{\"eventName\": \"GetObject\"",
            "is not a CloudTrail log or a Kubernetes audit log",
        ),
        (
            "text.log",
            "hello\n",
            "is not a CloudTrail log or a Kubernetes audit log",
        ),
    ];
    for (name, text, said) in cases {
        let file = folder.join(name);
        std::fs::write(&file, text).unwrap();
        let output = usage(&["--from", file.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{name}: {}",
            binary::text(&output)
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.contains(said) && stderr.contains(name),
            "{name}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{name}");
    }
    let missing = usage(&["--from", folder.join("nowhere.json").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
    let window = usage(&[
        "--from",
        folder.join("plan.json").to_str().unwrap(),
        "--since",
        "ninety days",
    ]);
    assert_eq!(window.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&window.stderr).contains("`--since ninety days`"));
    let _ = std::fs::remove_dir_all(&folder);
}

/// `writ check --usage`: the grants nobody used, as warnings at the grant,
/// once per grant as written (a scope's, used by one agent that holds it,
/// is used), in the providers the logs cover only.
#[test]
fn check_with_usage_reports_unused_grants() {
    let logs = example().join("usage");
    let output = binary::writ(
        &example(),
        &[
            "check",
            "--usage",
            logs.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", binary::text(&output));
    let found: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let unused: Vec<&serde_json::Value> = found
        .iter()
        .filter(|d| d["code"] == "writ::unused_grant")
        .collect();
    let messages: Vec<&str> = unused
        .iter()
        .map(|d| d["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.contains(&"no agent used this grant in the logs of `aws.prod` from 2026-11-20 to 2026-11-26 (held by `billing_bot`)"),
        "{messages:#?}"
    );
    // The example's GitHub and GCP grants: no log of theirs was given.
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("dependency_bot") || m.contains("warehouse_loader")),
        "{messages:#?}"
    );
    // Used through the scope by the bot: not unused for its delegate.
    assert!(
        !messages.iter().any(|m| m.contains("`invoice_reader`")),
        "{messages:#?}"
    );
    // Retired: `writ::expired` says so instead.
    assert!(
        !messages.iter().any(|m| m.contains("legacy_exporter")),
        "{messages:#?}"
    );
    // Without logs, none; `--since` alone is a usage error.
    let plain = binary::writ(&example(), &["check", "--format", "json"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("unused_grant"));
    let since = binary::writ(&example(), &["check", "--since", "30d"]);
    assert_eq!(since.status.code(), Some(1));
}

/// `writ plan --usage`: each access an agent gains is noted with whether
/// it tried it in the logs; who may become the agent (a trust) is not an
/// access it tries.
#[test]
fn plans_note_whether_gained_access_was_tried() {
    let logs = example().join("usage");
    let output = binary::writ(
        &example(),
        &[
            "plan",
            "--usage",
            logs.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", binary::text(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let notes: Vec<&str> = plan["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .filter(|n| n.ends_with("(usage logs)"))
        .collect();
    assert!(notes.contains(&"`deployer` gains aws.prod `ecr:GetAuthorizationToken` on `*`, which it used once since 2026-08-31 (usage logs)"), "{notes:#?}");
    assert!(notes.contains(&"`deployer` gains aws.prod `ecr:GetDownloadUrlForLayer` on `arn:aws:ecr:us-east-1:123456789012:repository/services/*`, which it did not try since 2026-08-31 (usage logs)"), "{notes:#?}");
    assert!(
        !notes.iter().any(|n| n.contains("become the agent")),
        "{notes:#?}"
    );
    // Without logs, no such note.
    let plain = binary::writ(&example(), &["plan", "--format", "json"]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("(usage logs)"));
}

/// A `--from` that holds no record (an empty folder, a folder of digests
/// only) is an error, not a report of grants "never used".
#[test]
fn a_log_with_no_record_is_an_error() {
    let folder = std::env::temp_dir().join(format!("writ-usage-empty-{}", std::process::id()));
    let digests = folder.join("AWSLogs/123456789012/CloudTrail-Digest/us-east-1");
    std::fs::create_dir_all(&digests).unwrap();
    std::fs::write(digests.join("digest.json"), "{\"digestStartTime\": \"x\"}").unwrap();
    let output = usage(&["--from", folder.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", binary::text(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("holds no record"),
        "{}",
        binary::text(&output)
    );
    let _ = std::fs::remove_dir_all(&folder);
}

/// `writ tighten` on the example's logs: a diff of the source down to what
/// was used (grants nobody used removed, actions nobody used dropped), no
/// change to a grant marked `@keep` or one the logs cannot judge; with
/// `--write`, the files rewritten, and the result checks and allows every
/// request the logs recorded (so tightening again changes nothing).
#[test]
fn tighten_rewrites_the_source_down_to_what_was_used() {
    let logs = example().join("usage");
    let logs = logs.to_str().unwrap();
    let diff = binary::writ(&example(), &["tighten", "--from", logs]);
    assert!(diff.status.success(), "{}", binary::text(&diff));
    let diff = String::from_utf8(diff.stdout).unwrap();
    insta::with_settings!({ snapshot_path => "../snapshots/usage", prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("example_tighten_diff", diff);
    });
    // A copy, with one unused grant kept.
    let copy = std::env::temp_dir().join(format!("writ-tighten-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    crate::support::copy_tree(&example(), &copy);
    let reporting = copy.join("teams/reporting.writ");
    let text = std::fs::read_to_string(&reporting).unwrap();
    let kept = text.replacen(
        "  aws.prod allow access-analyzer:GetAnalyzer",
        "  @keep(\"the yearly audit\")\n  aws.prod allow access-analyzer:GetAnalyzer",
        1,
    );
    assert_ne!(kept, text);
    std::fs::write(&reporting, &kept).unwrap();
    let written = binary::writ(&copy, &["tighten", "--from", logs, "--write"]);
    assert!(written.status.success(), "{}", binary::text(&written));
    let after = std::fs::read_to_string(&reporting).unwrap();
    assert!(
        after.contains("@keep(\"the yearly audit\")\n  aws.prod allow access-analyzer:GetAnalyzer"),
        "{after}"
    );
    assert!(!after.contains("ses:SendRawEmail"), "{after}");
    let platform = std::fs::read_to_string(copy.join("teams/platform.writ")).unwrap();
    assert!(
        platform.contains(
            "kubernetes.prod allow patch on \"deployments.apps\" in namespace \"services\""
        ),
        "{platform}"
    );
    // The result checks, is formatted, and has nothing more to lose.
    let check = binary::writ(&copy, &["check"]);
    assert!(check.status.success(), "{}", binary::text(&check));
    let fmt = binary::writ(&copy, &["fmt", "--check"]);
    assert!(fmt.status.success(), "{}", binary::text(&fmt));
    let again = binary::writ(&copy, &["tighten", "--from", logs]);
    assert!(
        String::from_utf8_lossy(&again.stdout).starts_with("nothing to tighten"),
        "{}",
        binary::text(&again)
    );
    let _ = std::fs::remove_dir_all(&copy);
}
