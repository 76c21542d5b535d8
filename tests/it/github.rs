//! writ in GitHub Actions, end to end through the binary and the real
//! `octocrab` client, against a local GitHub API (tests/gh): the sticky plan
//! comment, the job summary and step outputs, annotations, and a guarded
//! apply (`--expect`) that reports on the merged pull request. Applies run
//! against the local Kubernetes API server (tests/kube).

use crate::binary::text;
use crate::gh::FakeGitHub;
use std::path::{Path, PathBuf};
use std::process::Output;

const REPO: &str = "acme/infra";

const SOURCE: &str = r#"provider aws prod {
  account = "123456789012"
}

agent exporter {
  owner = "team-billing"
  ttl = 1h
  runs_on aws.prod service "lambda.amazonaws.com"
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/*"
}
"#;

fn scratch(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("github")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// A project planned against an empty recorded state: no credentials.
fn project(root: &Path, name: &str, source: &str) -> PathBuf {
    let folder = root.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("main.writ"), source).unwrap();
    std::fs::write(
        folder.join("snapshot.json"),
        r#"{"format_version": 1, "providers": {}}"#,
    )
    .unwrap();
    std::fs::write(
        folder.join("writ.toml"),
        format!("[project]\nname = \"{name}\"\nsnapshot = \"snapshot.json\"\n"),
    )
    .unwrap();
    folder
}

/// Runs writ as a GitHub Actions job would, with the workflow's token.
fn writ(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = crate::binary::command();
    // GitHub's answers are kept under the tests' own folder, not the home.
    command
        .args(args)
        .env("GITHUB_TOKEN", crate::gh::TOKEN)
        .env(
            "WRIT_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("writ-cache"),
        );
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("writ runs")
}

fn plan_comment(github: &FakeGitHub, folder: &Path, pull: &str) -> Output {
    writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--comment",
            "--repo",
            REPO,
            "--pr",
            pull,
            "--github-api",
            &github.api(),
        ],
        &[],
    )
}

#[test]
fn the_first_plan_posts_a_comment_and_later_plans_update_it_in_place() {
    let github = FakeGitHub::start(REPO, &[7]);
    // Someone else's comments come first, over more than one page.
    for i in 0..120 {
        github.add_comment(7, "octocat", &format!("review note {i}"));
    }
    let root = scratch("sticky");
    let folder = project(&root, "acme", SOURCE);
    let first = plan_comment(&github, &folder, "7");
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(
        text(&first).contains("posted the plan comment on acme/infra#7"),
        "{}",
        text(&first)
    );
    let ours: Vec<_> = github
        .comments(7)
        .into_iter()
        .filter(|c| c.login == "github-actions[bot]")
        .collect();
    assert_eq!(ours.len(), 1);
    assert!(
        ours[0]
            .body
            .starts_with("<!-- writ:plan project=acme -->\n## writ plan: `acme`"),
        "{}",
        ours[0].body
    );
    assert!(ours[0].body.contains("2 to create"), "{}", ours[0].body);

    // A push that changes the plan: the same comment is edited.
    std::fs::write(
        folder.join("main.writ"),
        SOURCE.replace("s3:GetObject", "s3:GetObject, s3:ListBucket"),
    )
    .unwrap();
    let second = plan_comment(&github, &folder, "7");
    assert!(
        text(&second).contains("updated the plan comment"),
        "{}",
        text(&second)
    );
    let after: Vec<_> = github
        .comments(7)
        .into_iter()
        .filter(|c| c.login == "github-actions[bot]")
        .collect();
    assert_eq!(after.len(), 1, "no second comment");
    assert_eq!(after[0].id, ours[0].id);
    assert!(after[0].body.contains("s3:ListBucket"), "{}", after[0].body);
    // The comments were read page by page (120 of others: two pages of 100).
    let log = github.log();
    let lists = log.iter().filter(|r| r.method == "GET").count();
    assert_eq!(lists, 4, "two listings of two pages each");
    assert!(
        log.iter()
            .filter(|r| r.method == "GET")
            .all(|r| r.path.contains("/issues/7/comments")),
        "only the pull request's comments are read: {log:?}"
    );
    assert_eq!(github.comments(7).len(), 121);
}

#[test]
fn a_push_that_breaks_the_source_replaces_the_plan_comment() {
    let github = FakeGitHub::start(REPO, &[11]);
    let root = scratch("broken");
    let folder = project(&root, "acme", SOURCE);
    plan_comment(&github, &folder, "11");
    std::fs::write(
        folder.join("main.writ"),
        SOURCE.replace("owner = ", "ownr = "),
    )
    .unwrap();
    let output = plan_comment(&github, &folder, "11");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let comments = github.comments(11);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("No plan: the source has errors"),
        "{}",
        comments[0].body
    );
}

#[test]
fn a_plan_without_changes_says_so() {
    let github = FakeGitHub::start(REPO, &[3]);
    let root = scratch("no-changes");
    let folder = project(
        &root,
        "acme",
        "provider aws prod {\n  account = \"123456789012\"\n}\n",
    );
    let output = plan_comment(&github, &folder, "3");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let comments = github.comments(3);
    assert!(
        comments[0].body.contains("No changes"),
        "{}",
        comments[0].body
    );
}

#[test]
fn two_projects_keep_two_comments() {
    let github = FakeGitHub::start(REPO, &[9]);
    let root = scratch("two-projects");
    let acme = project(&root, "acme", SOURCE);
    let billing = project(&root, "billing", &SOURCE.replace("exporter", "invoicer"));
    for _ in 0..2 {
        for folder in [&acme, &billing] {
            let output = plan_comment(&github, folder, "9");
            assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        }
    }
    let comments = github.comments(9);
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert!(comments.iter().any(|c| c.body.contains("project=acme")));
    assert!(comments.iter().any(|c| c.body.contains("project=billing")));
}

#[test]
fn a_marker_written_by_someone_else_is_left_alone() {
    let github = FakeGitHub::start(REPO, &[4]);
    let theirs = github.add_comment(4, "octocat", "quoting it: <!-- writ:plan project=acme -->");
    let root = scratch("foreign-marker");
    let folder = project(&root, "acme", SOURCE);
    for _ in 0..2 {
        let output = plan_comment(&github, &folder, "4");
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    }
    let comments = github.comments(4);
    assert_eq!(
        comments.len(),
        2,
        "one of theirs, one of ours: {comments:#?}"
    );
    let kept = comments.iter().find(|c| c.id == theirs).unwrap();
    assert_eq!(kept.body, "quoting it: <!-- writ:plan project=acme -->");
}

#[test]
fn a_huge_plan_is_cut_at_a_section_boundary_and_points_at_the_full_plan() {
    let github = FakeGitHub::start(REPO, &[5]);
    let mut source = String::from("provider aws prod {\n  account = \"123456789012\"\n}\n");
    for i in 0..400 {
        source.push_str(&format!(
            "agent agent_{i} {{\n  owner = \"team-{i}\"\n  ttl = 1h\n  runs_on aws.prod service \"lambda.amazonaws.com\"\n  aws.prod allow s3:GetObject, s3:PutObject, s3:ListBucket on \"arn:aws:s3:::bucket-{i}-with-a-long-name\", \"arn:aws:s3:::bucket-{i}-with-a-long-name/*\"\n}}\n"
        ));
    }
    let root = scratch("huge");
    let folder = project(&root, "acme", &source);
    let summary = root.join("summary.md");
    let output = writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--comment",
            "--repo",
            REPO,
            "--pr",
            "5",
            "--github-api",
            &github.api(),
        ],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let body = &github.comments(5)[0].body;
    assert!(body.chars().count() <= 65_536, "{}", body.len());
    assert!(
        body.contains("sections left out to stay within GitHub's comment limit"),
        "{body}"
    );
    assert!(body.contains("job summary"), "{body}");
    assert_eq!(
        body.matches("<details").count(),
        body.matches("</details>").count()
    );
    assert_eq!(
        body.matches("```").count() % 2,
        0,
        "no code block left open"
    );
    // The job summary has the whole plan.
    let full = std::fs::read_to_string(&summary).unwrap();
    assert!(
        full.len() > body.len() * 2,
        "{} vs {}",
        full.len(),
        body.len()
    );
    assert!(full.contains("agent_399"));
}

#[test]
fn actions_files_get_the_summary_and_the_outputs() {
    let root = scratch("outputs");
    let folder = project(&root, "acme", SOURCE);
    let (summary, outputs) = (root.join("summary.md"), root.join("outputs.txt"));
    std::fs::write(&outputs, "earlier=1\n").unwrap();
    let output = writ(
        &["plan", folder.to_str().unwrap()],
        &[
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(std::fs::read_to_string(&summary)
        .unwrap()
        .contains("## writ plan: `acme`"));
    assert_eq!(
        std::fs::read_to_string(&outputs).unwrap(),
        "earlier=1\nhas_changes=true\nprivilege_gain=true\ndeletes=0\nreplaces=0\nadopts=0\n"
    );
}

#[test]
fn rate_limited_and_failing_calls_are_retried() {
    let github = FakeGitHub::start(REPO, &[6]);
    github.secondary_limit_next(2, 1);
    let root = scratch("rate-limited");
    let folder = project(&root, "acme", SOURCE);
    let started = std::time::Instant::now();
    let output = plan_comment(&github, &folder, "6");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        started.elapsed().as_secs() >= 2,
        "retry-after was waited out"
    );
    assert_eq!(github.comments(6).len(), 1);
    let refused = github.log().iter().filter(|r| r.status == 403).count();
    assert_eq!(refused, 2);

    github.fail_next(2);
    let output = plan_comment(&github, &folder, "6");
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(github.comments(6).len(), 1);
}

#[test]
fn github_failures_give_a_clear_error_and_never_show_the_token() {
    let github = FakeGitHub::start(REPO, &[8]);
    let root = scratch("failures");
    let folder = project(&root, "acme", SOURCE);
    let run = |pull: &str, env: &[(&str, &str)]| -> (Option<i32>, String) {
        let output = writ(
            &[
                "plan",
                folder.to_str().unwrap(),
                "--comment",
                "--repo",
                REPO,
                "--pr",
                pull,
                "--github-api",
                &github.api(),
            ],
            env,
        );
        let shown = text(&output);
        assert!(
            !shown.contains(crate::gh::TOKEN),
            "the token is never printed: {shown}"
        );
        (output.status.code(), shown)
    };
    let (code, shown) = run("8", &[("GITHUB_TOKEN", "ghs_wrong")]);
    assert_eq!(code, Some(1));
    assert!(
        shown.contains("401")
            && shown.contains("Bad credentials")
            && shown.contains("GITHUB_TOKEN"),
        "{shown}"
    );
    assert!(!shown.contains("ghs_wrong"), "{shown}");

    let (code, shown) = run("8", &[("GITHUB_TOKEN", "")]);
    assert_eq!(code, Some(1));
    assert!(shown.contains("no GitHub token"), "{shown}");

    let (code, shown) = run("404", &[]);
    assert_eq!(code, Some(1));
    assert!(
        shown.contains("acme/infra#404") && shown.contains("not found"),
        "{shown}"
    );

    github.exhaust_primary_limit();
    let (code, shown) = run("8", &[]);
    assert_eq!(code, Some(1));
    assert!(
        shown.contains("rate limit is exhausted for the next 60 minutes"),
        "{shown}"
    );

    // Nothing listens there: a network failure, retried, then reported.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--comment",
            "--repo",
            REPO,
            "--pr",
            "8",
            "--github-api",
            &format!("http://127.0.0.1:{closed}"),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("cannot reach GitHub"),
        "{}",
        text(&output)
    );
}

#[test]
fn the_pull_request_and_repository_come_from_the_actions_environment() {
    let github = FakeGitHub::start(REPO, &[12]);
    let root = scratch("environment");
    let folder = project(&root, "acme", SOURCE);
    let event = root.join("event.json");
    std::fs::write(
        &event,
        r#"{"action": "synchronize", "number": 12, "pull_request": {"number": 12}}"#,
    )
    .unwrap();
    let output = writ(
        &["plan", folder.to_str().unwrap(), "--comment"],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", REPO),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", &github.api()),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(github.comments(12).len(), 1);
}

#[test]
fn check_prints_findings_as_workflow_commands() {
    let output = writ(
        &["check", "tests/ui/unknown_name.writ", "--format", "github"],
        &[],
    );
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    let commands: Vec<&str> = shown.lines().filter(|l| l.starts_with("::")).collect();
    assert!(!commands.is_empty(), "{shown}");
    for command in commands {
        assert!(
            command.starts_with("::error file=tests/ui/unknown_name.writ,line="),
            "{command}"
        );
        assert!(
            command.contains(",title=writ%3A%3Aunknown_name::"),
            "{command}"
        );
    }
    // In Actions, plan prints them too (on standard error), beside the report.
    let root = scratch("annotations");
    let folder = project(
        &root,
        "acme",
        &SOURCE.replace("ttl = 1h", "ttl = 1h\n  aws.prod allow s3:* on \"*\""),
    );
    let output = writ(
        &["plan", folder.to_str().unwrap()],
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_WORKSPACE", root.to_str().unwrap()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("::warning file=acme/main.writ,line="),
        "{stderr}"
    );
}

/// A project applied to the local cluster, as the apply workflow would.
fn cluster_project(root: &Path, cluster: &crate::kube::FakeCluster, source: &str) -> PathBuf {
    let folder = root.join("acme");
    cluster.write_project(&folder, source);
    folder
}

const CLUSTER_SOURCE: &str = r#"provider kubernetes prod {
  cluster = "prod"
}

agent exporter {
  owner = "team-billing"
  ttl = 1h
  runs_on kubernetes.prod namespace "billing" service_account "exporter"
  kubernetes.prod allow get on "configmaps" in namespace "billing"
}
"#;

const SECOND_AGENT: &str = r#"
agent reporter {
  owner = "team-reporting"
  ttl = 1h
  runs_on kubernetes.prod namespace "billing" service_account "reporter"
}
"#;

#[test]
fn apply_expect_applies_exactly_the_reviewed_plan_and_reports_on_the_merged_pull_request() {
    let cluster = crate::kube::FakeCluster::start();
    cluster.add_namespace("billing");
    let github = FakeGitHub::start(REPO, &[21]);
    github.add_commit("5e1f", &[21]);
    let root = scratch("expect");
    let folder = cluster_project(&root, &cluster, CLUSTER_SOURCE);
    let reviewed = root.join("plan.json");
    let planned = writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--out",
            reviewed.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    let env = [
        ("GITHUB_REPOSITORY", REPO),
        ("GITHUB_SHA", "5e1f"),
        ("GITHUB_API_URL", &github.api() as &str),
    ];
    let applied = writ(
        &[
            "apply",
            folder.to_str().unwrap(),
            "--expect",
            reviewed.to_str().unwrap(),
            "--auto-approve",
            "--comment",
        ],
        &env,
    );
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert!(
        text(&applied).contains("Apply complete: 3 of 3 changes made."),
        "{}",
        text(&applied)
    );
    let comments = github.comments(21);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("✅ writ apply: `acme`"),
        "{}",
        comments[0].body
    );
    assert!(
        comments[0].body.contains("3 of 3 changes made"),
        "{}",
        comments[0].body
    );
    assert!(
        comments[0]
            .body
            .contains("create `kubernetes.prod/namespaces/billing/roles/writ-exporter`"),
        "{}",
        comments[0].body
    );
}

#[test]
fn apply_expect_refuses_a_plan_with_one_change_more_or_less_and_says_why() {
    let cluster = crate::kube::FakeCluster::start();
    cluster.add_namespace("billing");
    let github = FakeGitHub::start(REPO, &[22]);
    github.add_commit("77aa", &[22]);
    let root = scratch("expect-refused");
    let folder = cluster_project(&root, &cluster, CLUSTER_SOURCE);
    let reviewed = root.join("plan.json");
    writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--out",
            reviewed.to_str().unwrap(),
        ],
        &[],
    );
    let env = [
        ("GITHUB_REPOSITORY", REPO),
        ("GITHUB_SHA", "77aa"),
        ("GITHUB_API_URL", &github.api() as &str),
    ];

    // One change more: the merged source has an agent the review did not see.
    std::fs::write(
        folder.join("main.writ"),
        format!("{CLUSTER_SOURCE}{SECOND_AGENT}"),
    )
    .unwrap();
    let refused = writ(
        &[
            "apply",
            folder.to_str().unwrap(),
            "--expect",
            reviewed.to_str().unwrap(),
            "--comment",
        ],
        &env,
    );
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(shown.contains("the saved plan is out of date"), "{shown}");
    assert!(
        shown.contains("serviceaccounts/reporter: needed now, not in the saved plan"),
        "{shown}"
    );
    assert!(
        cluster.names("serviceaccounts").is_empty(),
        "nothing applied"
    );
    let comment = &github.comments(22)[0].body;
    assert!(
        comment.contains("❌ writ apply") && comment.contains("**Refused**"),
        "{comment}"
    );
    assert!(
        comment.contains("needed now, not in the saved plan"),
        "{comment}"
    );

    // One change less: the reviewed plan had both agents, the merge only one.
    let both = root.join("both.json");
    writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--out",
            both.to_str().unwrap(),
        ],
        &[],
    );
    std::fs::write(folder.join("main.writ"), CLUSTER_SOURCE).unwrap();
    let refused = writ(
        &[
            "apply",
            folder.to_str().unwrap(),
            "--expect",
            both.to_str().unwrap(),
        ],
        &[],
    );
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("serviceaccounts/reporter: in the saved plan, no longer needed"),
        "{shown}"
    );
    assert!(
        cluster.names("serviceaccounts").is_empty(),
        "nothing applied"
    );
}

/// The `args:` of the writ steps of an example workflow, in order.
fn workflow_args(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("args: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_example_workflows_run_as_written() {
    let cluster = crate::kube::FakeCluster::start();
    cluster.add_namespace("billing");
    let github = FakeGitHub::start(REPO, &[31]);
    github.add_commit("abc123", &[31]);
    let root = scratch("workflows");
    let infra = cluster_project(&root, &cluster, CLUSTER_SOURCE);
    std::fs::rename(&infra, root.join("infra")).unwrap();
    let event = root.join("event.json");
    std::fs::write(&event, r#"{"number": 31, "pull_request": {"number": 31}}"#).unwrap();
    let (summary, outputs) = (root.join("summary.md"), root.join("outputs.txt"));
    let run = |args: &str, extra: &[(&str, &str)]| -> Output {
        let mut command = crate::binary::command();
        command
            .args(args.split_whitespace())
            .current_dir(&root)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", &root)
            .env("GITHUB_REPOSITORY", REPO)
            .env("GITHUB_API_URL", github.api())
            .env("GITHUB_TOKEN", crate::gh::TOKEN)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("GITHUB_OUTPUT", &outputs);
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    // The pull request's workflow.
    let plan_steps = workflow_args("examples/github-actions/writ-plan.yml");
    assert_eq!(plan_steps.len(), 2, "{plan_steps:?}");
    for args in &plan_steps {
        let output = run(args, &[("GITHUB_EVENT_PATH", event.to_str().unwrap())]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "writ {args}:\n{}",
            text(&output)
        );
    }
    assert!(root.join("writ-plan.json").exists());
    assert_eq!(github.comments(31).len(), 1);
    assert!(std::fs::read_to_string(&outputs)
        .unwrap()
        .contains("has_changes=true"));
    // The merge's workflow, with the plan artifact in the workspace.
    let apply_steps = workflow_args("examples/github-actions/writ-apply.yml");
    assert_eq!(apply_steps.len(), 1, "{apply_steps:?}");
    let output = run(&apply_steps[0], &[("GITHUB_SHA", "abc123")]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "writ {}:\n{}",
        apply_steps[0],
        text(&output)
    );
    let comments = github.comments(31);
    assert_eq!(comments.len(), 2);
    assert!(
        comments[1]
            .body
            .contains("**Apply complete**: 3 of 3 changes made."),
        "{}",
        comments[1].body
    );
}

/// A project whose agent deploys from GitHub Actions, with GitHub read live
/// from the local API.
fn deploying_project(root: &Path, github: &FakeGitHub) -> PathBuf {
    let folder = root.join("deploys");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("main.writ"),
        "provider aws prod {\n  account = \"123456789012\"\n}\n\nprovider github acme {\n  org = \"acme\"\n}\n\nagent deployer {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" environment \"production\" ref \"refs/heads/main\"\n  aws.prod allow s3:PutObject on \"arn:aws:s3:::acme-releases/*\"\n}\n\nagent releaser {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" workflow \".github/workflows/release.yml\" ref \"refs/heads/main\"\n  github.acme allow contents:write on \"acme/app\"\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-releases/*\"\n}\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("writ.toml"),
        format!(
            "[project]\nname = \"deploys\"\n\n[provider.github.acme]\napi_url = \"{}\"\n",
            github.api()
        ),
    )
    .unwrap();
    folder
}

/// Reads GitHub into a snapshot, then plans against it: the plan's JSON.
fn read_and_plan(folder: &Path, snapshot: &Path) -> serde_json::Value {
    let output = writ(
        &[
            "snapshot",
            folder.to_str().unwrap(),
            "--only",
            "github.acme",
            "--out",
            snapshot.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let output = writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--snapshot",
            snapshot.to_str().unwrap(),
            "--format",
            "json",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    serde_json::from_slice(&output.stdout).expect("the plan is JSON")
}

#[test]
fn github_repositories_are_read_and_bind_the_trust_of_their_workflows() {
    let github = FakeGitHub::start(REPO, &[]);
    // GitHub spells it otherwise, and its organisation's template puts ids
    // in `sub`, as repositories made after mid-2026 do by default.
    github.add_repository("Acme/App", 912_345_678);
    github.set_repository_template("Acme/App", serde_json::json!({"use_default": false}));
    github.set_org_template(serde_json::json!({
        "include_claim_keys": ["repo", "context"],
        "use_immutable_subject": true
    }));
    // Its long-lived credentials: an old deploy key that can push, a newer
    // read-only one, and secrets, one named like an AWS key.
    github.add_deploy_key(
        "Acme/App",
        serde_json::json!({"id": 11, "key": "ssh-ed25519 AAAA", "title": "jenkins", "read_only": false,
            "created_at": "2021-03-01T10:00:00Z", "last_used": "2026-11-20T08:00:00Z", "verified": true,
            "url": "", "added_by": "octocat"}),
    );
    github.add_deploy_key(
        "Acme/App",
        serde_json::json!({"id": 12, "key": "ssh-ed25519 BBBB", "title": "mirror", "read_only": true,
            "created_at": "2026-10-01T10:00:00Z", "last_used": null, "verified": true, "url": "", "added_by": "octocat"}),
    );
    for (index, name) in ["AWS_SECRET_ACCESS_KEY", "NPM_TOKEN"].iter().enumerate() {
        let _ = index;
        github.add_secret(
            "Acme/App",
            serde_json::json!({"name": name, "created_at": "2020-01-0{index}T00:00:00Z", "updated_at": "2020-06-01T00:00:00Z"}),
        );
    }
    github.add_file(
        "acme/app",
        ".github/workflows/release.yml",
        Some("refs/heads/main"),
        "on: push\npermissions:\n  contents: write\njobs:\n  release:\n    runs-on: ubuntu-latest\n    steps: []\n",
    );
    github.add_installation(serde_json::json!({
        "id": 77, "app_id": 7, "app_slug": "release-bot", "target_type": "Organization",
        "repository_selection": "all", "permissions": {"contents": "write", "secrets": "write", "metadata": "read"},
        "created_at": "2025-02-01T00:00:00Z", "suspended_at": null
    }));
    github.add_personal_token(serde_json::json!({
        "id": 31, "token_id": 9, "token_name": "laptop", "owner": {"login": "octocat", "id": 1},
        "repository_selection": "all", "repositories_url": "",
        "permissions": {"repository": {"contents": "write"}, "organization": {}},
        "access_granted_at": "2024-03-01T00:00:00Z", "token_expired": false,
        "token_expires_at": null, "token_last_used_at": "2026-11-01T00:00:00Z"
    }));
    let root = scratch("bind");
    let folder = deploying_project(&root, &github);
    // Read into a snapshot, and planned against it.
    let snapshot = root.join("state.json");
    let plan = read_and_plan(&folder, &snapshot);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let repository = state["providers"]["github.acme"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "github_repository")
        .expect("the repository");
    assert_eq!(repository["kind"], "github_repository", "{state:#}");
    assert_eq!(repository["address"], "github.acme/repos/Acme/App");
    assert_eq!(repository["attributes"]["id"], 912_345_678);
    assert_eq!(
        repository["attributes"]["oidc_subject"]["source"],
        "organization"
    );
    assert_eq!(
        repository["attributes"]["oidc_subject"]["use_immutable_subject"],
        true
    );
    // The trust is the repository's, by id.
    let role = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "aws.prod/role/deployer")
        .expect("the role");
    let equals = &role["after"]["assume_role_policy"]["Statement"][0]["Condition"]["StringEquals"];
    let claim = |key: &str| equals[format!("token.actions.githubusercontent.com:{key}")].clone();
    assert_eq!(claim("repository_id"), serde_json::json!(["912345678"]));
    assert_eq!(claim("repository"), serde_json::json!(["Acme/App"]));
    assert_eq!(
        claim("sub"),
        serde_json::json!(["repo:Acme@4412/App@912345678:environment:production"])
    );
    assert_eq!(claim("ref"), serde_json::json!(["refs/heads/main"]));
    assert!(plan.get("notes").is_none(), "{:#}", plan["notes"]);
    // The credentials are listed, flagged, never changed.
    let unmanaged = plan["unmanaged"].as_array().unwrap();
    let entry = |address: &str| {
        unmanaged
            .iter()
            .find(|u| u["address"] == address)
            .unwrap_or_else(|| panic!("{address} in {unmanaged:#?}"))
            .clone()
    };
    let jenkins = entry("github.acme/repos/Acme/App/keys/11");
    assert_eq!(jenkins["flags"], serde_json::json!(["can push"]));
    assert_eq!(
        jenkins["stale"], false,
        "used recently, and no maximum key age is set"
    );
    assert!(entry("github.acme/repos/Acme/App/keys/12")["flags"].is_null());
    let aws_key = entry("github.acme/repos/Acme/App/actions/secrets/AWS_SECRET_ACCESS_KEY");
    assert_eq!(
        aws_key["flags"],
        serde_json::json!(["a long-lived AWS key beside OIDC"])
    );
    assert!(entry("github.acme/repos/Acme/App/actions/secrets/NPM_TOKEN")["flags"].is_null());
    // Requests: the organisation, the repository, its template, the
    // organisation's (deferred to), its keys and secrets.
    let paths: Vec<String> = github.log().iter().map(|l| l.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/orgs/acme",
            "/orgs/acme/installations",
            "/orgs/acme/personal-access-tokens",
            "/repos/acme/app",
            "/repos/acme/app/actions/oidc/customization/sub",
            "/orgs/acme/actions/oidc/customization/sub",
            "/repos/Acme/App/keys",
            "/repos/Acme/App/actions/secrets",
            "/repos/acme/app/actions/permissions/workflow",
            "/repos/acme/app/environments/production",
            "/repos/acme/app/contents/.github/workflows/release.yml",
        ],
        "{paths:?}"
    );
    let token = entry("github.acme/personal-access-tokens/31");
    assert_eq!(
        token["flags"],
        serde_json::json!(["never expires", "writes to every repository"])
    );
    let app = entry("github.acme/installations/77");
    assert_eq!(
        app["flags"],
        serde_json::json!(["secrets:write", "writes to every repository"])
    );
    // Without GitHub's state, the plan says the trust is by name only.
    let empty = root.join("empty.json");
    std::fs::write(&empty, r#"{"format_version": 1, "providers": {}}"#).unwrap();
    let output = writ(
        &[
            "plan",
            folder.to_str().unwrap(),
            "--snapshot",
            empty.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains(
            "GitHub repository `acme/app` was not read, and no trust in AWS is bound to it yet"
        ),
        "{}",
        text(&output)
    );
}

#[test]
fn credentials_the_token_may_not_read_are_said_not_to_be_inventoried() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/app", 5);
    github.forbid("keys");
    github.forbid("secrets");
    github.forbid("installations");
    github.forbid("tokens");
    github.forbid("settings");
    github.add_file(
        "acme/app",
        ".github/workflows/release.yml",
        Some("refs/heads/main"),
        "on: push\npermissions:\n  contents: write\njobs:\n  release:\n    runs-on: ubuntu-latest\n    steps: []\n",
    );

    let root = scratch("github-unread");
    let folder = deploying_project(&root, &github);
    let snapshot = root.join("state.json");
    let plan = read_and_plan(&folder, &snapshot);
    assert_eq!(
        plan["notes"],
        serde_json::json!([
            "the App installations of `github.acme` were not read (the token needs an organisation owner's `Administration: read`), so they are not inventoried",
            "the fine-grained personal access tokens with access to `github.acme` were not read (only a GitHub App's token may list them), so they are not inventoried",
            "the deploy keys (the token needs `Administration: read`) of GitHub repository `acme/app` were not read, so they are not inventoried",
            "the Actions secrets (the token needs `Secrets: read`) of GitHub repository `acme/app` were not read, so they are not inventoried",
            "the Actions settings (the token needs `Administration: read`) of GitHub repository `acme/app` were not read, so writ does not set them"
        ])
    );
    // What could not be read is not set.
    assert!(
        !plan["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "github_actions_settings"),
        "{plan:#}"
    );
}

#[test]
fn workflows_are_held_to_their_agents_github_grants() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/app", 5);
    let root = scratch("github-workflows");
    let folder = deploying_project(&root, &github);
    let snapshot = root.join("state.json");
    let plan = |release: Option<&str>| {
        let github = github.clone();
        if let Some(text) = release {
            github.add_file(
                "acme/app",
                ".github/workflows/release.yml",
                Some("refs/heads/main"),
                text,
            );
        }
        let plan = read_and_plan(&folder, &snapshot);
        plan["notes"].as_array().cloned().unwrap_or_default()
    };
    // Not in the repository at the pinned ref.
    let notes = plan(None);
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().contains("`releaser` runs as workflow `.github/workflows/release.yml` of `acme/app`, which is not there at `refs/heads/main`")),
        "{notes:#?}"
    );
    // Asking for what the agent declares (and the OIDC token): nothing to say.
    let notes = plan(Some("name: release\non: push\npermissions:\n  contents: write\n  id-token: write\njobs:\n  release:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make release\n"));
    assert!(notes.is_empty(), "{notes:#?}");
    // A job that asks for more, and one with no permissions anywhere.
    let notes = plan(Some("name: release\non: push\njobs:\n  release:\n    runs-on: ubuntu-latest\n    permissions:\n      contents: write\n      pull-requests: write\n      id-token: write\n    steps: []\n  notify:\n    runs-on: ubuntu-latest\n    steps: []\n"));
    let notes: Vec<&str> = notes.iter().filter_map(|n| n.as_str()).collect();
    assert!(
        notes.contains(&"workflow `.github/workflows/release.yml` of `acme/app` (job `release`) asks for `pull_requests: write`, beyond what `releaser` declares there (`contents:write`): narrow its `permissions:`, or grant them"),
        "{notes:#?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("workflow `.github/workflows/release.yml` of `acme/app` (job `notify`) declares no `permissions:`")),
        "{notes:#?}"
    );
    // A file that is not YAML is said, and the rest is still read.
    let notes = plan(Some("on: [push\njobs: {"));
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap()
            .contains("cannot be read as a workflow (it is not YAML writ can read")),
        "{notes:#?}"
    );
    // `write-all` at the top, for every job.
    let notes = plan(Some("on: push\npermissions: write-all\njobs:\n  release:\n    runs-on: ubuntu-latest\n    steps: []\n"));
    assert!(
        notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("asks for `actions: write`")),
        "{notes:#?}"
    );
}

#[test]
fn a_missing_token_or_repository_is_a_clear_error() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/other", 1);
    let root = scratch("github-errors");
    let folder = deploying_project(&root, &github);
    let output = writ(
        &[
            "snapshot",
            folder.to_str().unwrap(),
            "--only",
            "github.acme",
        ],
        &[("GITHUB_TOKEN", "")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("no GitHub token in `GITHUB_TOKEN`"),
        "{}",
        text(&output)
    );
    let output = writ(
        &[
            "snapshot",
            folder.to_str().unwrap(),
            "--only",
            "github.acme",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("reading repository `acme/app`: GitHub answered 404"),
        "{}",
        text(&output)
    );
    // A listing whose next page is on another server: the token is not
    // sent there, and the read fails, saying why.
    github.add_repository("acme/app", 5);
    github.link_elsewhere();
    let output = writ(
        &[
            "snapshot",
            folder.to_str().unwrap(),
            "--only",
            "github.acme",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("GitHub's answer links to `http://127.0.0.2:9/repos/acme/app/keys?per_page=100&page=2`, outside http://127.0.0.1:"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_second_read_of_an_unchanged_organisation_is_answered_from_the_cache() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/app", 5);
    github.add_file(
        "acme/app",
        ".github/workflows/release.yml",
        Some("refs/heads/main"),
        "on: push\npermissions:\n  contents: write\njobs: {}\n",
    );
    github.set_environment(
        "acme/app",
        "production",
        serde_json::json!({"protected_branches": false, "custom_branch_policies": true}),
        &["main"],
        serde_json::json!([]),
    );
    let root = scratch("github-cache");
    let folder = deploying_project(&root, &github);
    let cache = root.join("cache");
    let snapshot = |name: &str| {
        let out = root.join(name);
        let output = writ(
            &[
                "snapshot",
                folder.to_str().unwrap(),
                "--only",
                "github.acme",
                "--out",
                out.to_str().unwrap(),
            ],
            &[("WRIT_CACHE_DIR", cache.to_str().unwrap())],
        );
        assert_eq!(output.status.code(), Some(0), "{}", text(&output));
        std::fs::read_to_string(out).unwrap()
    };
    let cold = snapshot("cold.json");
    let first: Vec<u16> = github.log().iter().map(|l| l.status).collect();
    assert!(first.iter().all(|s| *s == 200), "{first:?}");
    let warm = snapshot("warm.json");
    assert_eq!(cold, warm, "the same state, from the cache");
    let second: Vec<u16> = github
        .log()
        .iter()
        .skip(first.len())
        .map(|l| l.status)
        .collect();
    assert_eq!(second.len(), first.len(), "the same requests");
    assert!(
        second.iter().all(|s| *s == 304),
        "every answer unchanged: {second:?}"
    );
    // What is kept is the user's alone.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let folder = cache.join("github");
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{folder:?}");
        for entry in std::fs::read_dir(&folder).unwrap() {
            let mode = entry.unwrap().metadata().unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    // A change is seen: the template's answer is new.
    github.set_repository_template("acme/app", serde_json::json!({"use_default": false, "include_claim_keys": ["repo", "context", "job_workflow_ref"]}));
    let changed = snapshot("changed.json");
    assert!(changed.contains("job_workflow_ref"), "{changed}");
}

#[test]
fn the_actions_settings_of_repositories_agents_run_in_are_set_and_kept() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/app", 5);
    github.add_file(
        "acme/app",
        ".github/workflows/release.yml",
        Some("refs/heads/main"),
        "on: push\npermissions:\n  contents: write\njobs: {}\n",
    );
    let root = scratch("github-settings");
    let folder = deploying_project(&root, &github);
    let path = folder.to_str().unwrap();
    // Planned live: GitHub's defaults (a writable token, approvals by
    // Actions) are set to what writ governs.
    let output = writ(
        &["plan", path, "--only", "github.acme", "--format", "json"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "github_actions_settings")
        .unwrap_or_else(|| panic!("{plan:#}"))
        .clone();
    assert_eq!(
        change["address"],
        "github.acme/repos/acme/app/actions/permissions/workflow"
    );
    assert_eq!(change["actions"], serde_json::json!(["update"]));
    assert!(
        change["reason"]
            .as_str()
            .unwrap()
            .starts_with("governed attributes"),
        "{change:#}"
    );
    // Applied: GitHub holds it, and the next plan has nothing to do.
    let output = writ(
        &["apply", path, "--only", "github.acme", "--auto-approve"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        github.actions_settings("acme/app"),
        serde_json::json!({"default_workflow_permissions": "read", "can_approve_pull_request_reviews": false})
    );
    let output = writ(
        &["plan", path, "--only", "github.acme", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Without the agent, the settings stay: governed, never deleted.
    std::fs::write(
        folder.join("main.writ"),
        "provider aws prod {\n  account = \"123456789012\"\n}\n\nprovider github acme {\n  org = \"acme\"\n}\n",
    )
    .unwrap();
    let output = writ(
        &["plan", path, "--only", "github.acme", "--detailed-exitcode"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

/// A project of App agents (`source`), with GitHub read from `github`.
fn app_project(root: &Path, github: &FakeGitHub, source: &str) -> PathBuf {
    let folder = root.join("apps");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("main.writ"), source).unwrap();
    std::fs::write(
        folder.join("writ.toml"),
        format!(
            "[project]\nname = \"apps\"\n\n[provider.github.acme]\napi_url = \"{}\"\n",
            github.api()
        ),
    )
    .unwrap();
    folder
}

#[test]
fn an_app_agent_is_held_to_its_installation() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/app", 5);
    github.add_installation(serde_json::json!({
        "id": 78, "app_id": 8, "app_slug": "release-bot", "target_type": "Organization",
        "repository_selection": "all",
        "permissions": {"contents": "write", "secrets": "write", "metadata": "read"},
        "created_at": "2025-02-01T00:00:00Z", "suspended_at": null
    }));
    let root = scratch("github-app");
    let folder = app_project(
        &root,
        &github,
        "provider github acme {\n  org = \"acme\"\n}\n\n/// Cuts releases.\nagent release_bot {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme app \"release-bot\"\n  github.acme allow contents:write, issues:write on \"acme/app\"\n}\n\nagent ghost {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme app \"not-installed\"\n  github.acme allow contents:read on \"acme/app\"\n}\n",
    );
    let plan = read_and_plan(&folder, &root.join("state.json"));
    let notes: Vec<&str> = plan["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes.contains(&"GitHub App `release-bot`, which `release_bot` runs as, holds `secrets: write` beyond the grants of the agents that run as it: reduce them in the App's settings, or grant them"),
        "{notes:#?}"
    );
    assert!(
        notes.contains(&"`release_bot` declares `issues: write`, which GitHub App `release-bot`'s installation does not hold: its tokens cannot do it"),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n
                .starts_with("`ghost` runs as GitHub App `not-installed`, which is not installed")),
        "{notes:#?}"
    );
    assert!(
        notes.contains(&"GitHub App `release-bot` is installed on every repository of `github.acme`, while `release_bot`'s grants name `acme/app`: select only those in the installation's settings"),
        "{notes:#?}"
    );
}

#[test]
fn the_brake_says_it_cannot_stop_an_app_agent_in_github() {
    let github = FakeGitHub::start(REPO, &[]);
    let root = scratch("github-app-revoke");
    let folder = app_project(
        &root,
        &github,
        "provider github acme {\n  org = \"acme\"\n}\n\nagent release_bot {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme app \"release-bot\"\n  github.acme allow contents:write on \"acme/app\"\n}\n",
    );
    // Not cut off everywhere: the brake fails, and says what to do.
    let output = writ(&["revoke", "release_bot", folder.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("it runs as GitHub App `release-bot`, whose installation keeps its tokens, and writ.toml holds no key of the App to suspend it with"),
        "{}",
        text(&output)
    );
}

#[test]
fn environments_agents_deploy_through_admit_only_the_refs_they_pin() {
    let github = FakeGitHub::start(REPO, &[]);
    github.add_repository("acme/app", 5);
    // Made by hand: every branch may deploy, one reviewer, a wait.
    let rules = serde_json::json!([
        {"id": 1, "node_id": "GA_1", "type": "wait_timer", "wait_timer": 15},
        {"id": 2, "node_id": "GA_2", "type": "required_reviewers", "prevent_self_review": true,
         "reviewers": [{"type": "User", "reviewer": {"id": 7, "login": "octocat"}}]}
    ]);
    github.set_environment(
        "acme/app",
        "Production",
        serde_json::Value::Null,
        &[],
        rules.clone(),
    );
    let rules_env = serde_json::json!({"protection_rules": rules.clone()});
    assert_eq!(kept_rules(&rules_env).len(), 2);
    github.set_admins_bypass("acme/app", "production", false);
    let root = scratch("github-environments");
    let folder = deploying_project(&root, &github);
    // A second agent deploys to `staging`, which does not exist yet, and
    // pins no ref.
    let mut source = std::fs::read_to_string(folder.join("main.writ")).unwrap();
    source.push_str("\nagent stager {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" environment \"staging\"\n  aws.prod allow s3:GetObject on \"arn:aws:s3:::acme-staging/*\"\n}\n");
    std::fs::write(folder.join("main.writ"), source).unwrap();
    let path = folder.to_str().unwrap();
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", path, "--only", "github.acme"];
        args.extend_from_slice(extra);
        writ(&args, &[])
    };
    let output = plan(&["--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let planned: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let environment = |address: &str| {
        planned["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["address"] == address)
            .unwrap_or_else(|| panic!("{address} in {planned:#}"))
            .clone()
    };
    let production = environment("github.acme/repos/acme/app/environments/production");
    assert_eq!(production["kind"], "github_environment");
    assert_eq!(production["actions"], serde_json::json!(["update"]));
    assert_eq!(
        production["reason"],
        "governed attributes: only `refs/heads/main` may deploy to environment `production`, the refs its agents pin"
    );
    let staging = environment("github.acme/repos/acme/app/environments/staging");
    assert_eq!(staging["actions"], serde_json::json!(["create"]));
    assert_eq!(
        staging["after"]["deployment_branch_policy"],
        serde_json::json!({"protected_branches": true, "custom_branch_policies": false})
    );
    // Applied: the policy and its one pattern are set, and what writ does
    // not govern (the reviewer, the wait, the self-review rule) is kept.
    let output = writ(
        &["apply", path, "--only", "github.acme", "--auto-approve"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let live = github.environment("acme/app", "production").unwrap();
    assert_eq!(
        live["deployment_branch_policy"],
        serde_json::json!({"protected_branches": false, "custom_branch_policies": true})
    );
    let patterns: Vec<(&str, &str)> = live["branch_policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["type"].as_str().unwrap()))
        .collect();
    assert_eq!(patterns, [("main", "branch")]);
    assert_eq!(kept_rules(&live), kept_rules(&rules_env), "{live:#}");
    assert_eq!(live["can_admins_bypass"], false, "{live:#}");
    assert_eq!(
        github.environment("acme/app", "staging").unwrap()["deployment_branch_policy"],
        serde_json::json!({"protected_branches": true, "custom_branch_policies": false})
    );
    let output = plan(&["--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Someone lets every branch deploy again, by a pattern: drift, which
    // the next apply takes back.
    github.set_environment(
        "acme/app",
        "production",
        serde_json::json!({"protected_branches": false, "custom_branch_policies": true}),
        &["main", "*"],
        rules.clone(),
    );
    let output = writ(
        &[
            "drift",
            path,
            "--only",
            "github.acme",
            "--detailed-exitcode",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("  ! github.acme/repos/acme/app/environments/production: [branch_policies] governed attribute: only `refs/heads/main` may deploy"),
        "{report}"
    );
    let output = writ(
        &["apply", path, "--only", "github.acme", "--auto-approve"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let live = github.environment("acme/app", "production").unwrap();
    assert_eq!(
        live["branch_policies"].as_array().unwrap().len(),
        1,
        "{live:#}"
    );
    assert_eq!(kept_rules(&live), kept_rules(&rules_env), "{live:#}");
    let output = plan(&["--detailed-exitcode"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // A token that may not read environments: said, and nothing planned.
    github.forbid("environments");
    let output = plan(&["--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let planned: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(
        !planned["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "github_environment"),
        "{planned:#}"
    );
    assert!(
        planned.to_string().contains("the environments (the token needs `Actions: read`) of GitHub repository `acme/app` were not read, so writ does not set which refs may deploy to them"),
        "{planned:#}"
    );
}

/// An environment's protection rules as GitHub applies them: the wait,
/// the self-review rule, and the reviewers by kind and id.
fn kept_rules(environment: &serde_json::Value) -> Vec<String> {
    let mut found: Vec<String> = environment["protection_rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|rule| match rule["type"].as_str()? {
            "wait_timer" => Some(format!("wait {}", rule["wait_timer"])),
            "required_reviewers" => Some(format!(
                "reviewers {:?}, prevent self review {}",
                rule["reviewers"]
                    .as_array()?
                    .iter()
                    .map(|r| format!("{} {}", r["type"], r["reviewer"]["id"]))
                    .collect::<Vec<_>>(),
                rule["prevent_self_review"]
            )),
            _ => None,
        })
        .collect();
    found.sort();
    found
}

/// The status GitHub answers `GET path` with, as `token` asks it.
fn status_as(github: &FakeGitHub, token: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", github.port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A project of one App agent, with the App's key in writ.toml.
fn keyed_app_project(root: &Path, github: &FakeGitHub, grants: &str) -> PathBuf {
    let folder = app_project(
        root,
        github,
        &format!("provider github acme {{\n  org = \"acme\"\n}}\n\nagent release_bot {{\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme app \"release-bot\"\n{grants}}}\n\nagent changelog_bot {{\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme app \"release-bot\"\n  github.acme allow contents:read on \"acme/app\"\n}}\n\nagent deployer {{\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" ref \"refs/heads/main\"\n}}\n"),
    );
    std::fs::write(folder.join("app.pem"), crate::gh::APP_KEY).unwrap();
    let toml = std::fs::read_to_string(folder.join("writ.toml")).unwrap();
    std::fs::write(
        folder.join("writ.toml"),
        format!(
            "{toml}app_id = {}\nprivate_key_file = \"app.pem\"\n",
            crate::gh::APP_ID
        ),
    )
    .unwrap();
    folder
}

/// Takes the agent's block out of the project's `main.writ`.
fn drop_agent(folder: &Path, agent: &str) {
    let source = std::fs::read_to_string(folder.join("main.writ")).unwrap();
    let cut = source.find(&format!("agent {agent}")).unwrap();
    let end = cut + source[cut..].find("}\n").unwrap() + 2;
    std::fs::write(
        folder.join("main.writ"),
        format!("{}{}", &source[..cut], &source[end..]),
    )
    .unwrap();
}

fn installed_app(github: &FakeGitHub) {
    github.add_repository("acme/app", 5);
    github.add_repository("acme/site", 6);
    github.add_installation(serde_json::json!({
        "id": 78, "app_id": crate::gh::APP_ID, "app_slug": "release-bot", "target_type": "Organization",
        "account": {"login": "acme", "id": 4412},
        "repository_selection": "all",
        "permissions": {"contents": "write", "issues": "write", "secrets": "write", "metadata": "read"},
        "created_at": "2025-02-01T00:00:00Z", "suspended_at": null
    }));
}

#[test]
fn writ_token_mints_exactly_what_the_grants_declare_and_the_brake_suspends_the_app() {
    let github = FakeGitHub::start(REPO, &[]);
    installed_app(&github);
    let root = scratch("github-token");
    let folder = keyed_app_project(
        &root,
        &github,
        "  github.acme allow contents:write, issues:read on \"acme/app\"\n",
    );
    let path = folder.to_str().unwrap();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Standard output is the token alone, for `GH_TOKEN=$(writ token …)`.
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(
        token.starts_with("ghs_minted") && !token.contains('\n'),
        "{stdout:?}"
    );
    assert_eq!(
        github.token_requests(),
        [
            serde_json::json!({"permissions": {"contents": "write", "issues": "read"}, "repositories": ["app"]})
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("a token of App `release-bot` for `release_bot`, until 20")
            && stderr.contains("Z: contents:write, issues:read on app"),
        "{stderr}"
    );
    assert_eq!(status_as(&github, token, "/repos/acme/app"), 200);
    // The brake suspends the installation: the token stops working, every
    // agent of the App is named, and no token is minted until lifted.
    let output = writ(&["revoke", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("revoked `release_bot` in github.acme: suspended App `release-bot`'s installation (id 78); its tokens no longer work"),
        "{said}"
    );
    assert!(
        said.contains(
            "note: `changelog_bot` runs as App `release-bot` too, and is stopped with it"
        ),
        "{said}"
    );
    assert_eq!(status_as(&github, token, "/repos/acme/app"), 403);
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(output.stdout.is_empty());
    assert!(
        text(&output).contains("App `release-bot`'s installation is suspended"),
        "{}",
        text(&output)
    );
    // An Actions agent's revoke names its workflows' trust, and needs no
    // App.
    let output = writ(&["revoke", "deployer", path, "--only", "github.acme"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("note: `deployer` runs_on `github.acme repo \"acme/app\" ref \"refs/heads/main\"`: its workflows reach the cloud through the trust the cloud providers close"),
        "{}",
        text(&output)
    );
    // An agent the source does not declare: GitHub cannot be said to be
    // done.
    let output = writ(&["revoke", "ghost", path, "--only", "github.acme"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output)
            .contains("could not revoke `ghost` in github.acme: the source does not declare it"),
        "{}",
        text(&output)
    );
    // Lifting for one agent would let the App's other agent run again:
    // refused, and said.
    let output = writ(&["revoke", "release_bot", path, "--lift"], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("could not lift `release_bot` in github.acme: App `release-bot`'s installation is also what `changelog_bot` runs as"),
        "{}",
        text(&output)
    );
    assert_eq!(status_as(&github, token, "/repos/acme/app"), 403);
    // With one agent left to run as it, lifted.
    drop_agent(&folder, "changelog_bot");
    let output = writ(&["revoke", "release_bot", path, "--lift"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(
        text(&output).contains("lifted `release_bot` in github.acme: App `release-bot`'s installation (id 78) is no longer suspended"),
        "{}",
        text(&output)
    );
    assert_eq!(status_as(&github, token, "/repos/acme/app"), 200);
    // A server that mints more than asked: the token is not handed out,
    // and is revoked at once.
    github.widen_next_token();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(output.stdout.is_empty());
    assert!(
        text(&output).contains("GitHub minted a token that holds more than asked (`administration: write`): not handed out; revoked at once"),
        "{}",
        text(&output)
    );
}

#[test]
fn writ_token_refuses_what_one_token_cannot_hold_exactly() {
    let github = FakeGitHub::start(REPO, &[]);
    installed_app(&github);
    let root = scratch("github-token-refusals");
    // Different permissions on two repositories: one token would give
    // each repository the other's.
    let folder = keyed_app_project(
        &root,
        &github,
        "  github.acme allow contents:write on \"acme/app\"\n  github.acme allow issues:write on \"acme/site\"\n",
    );
    let path = folder.to_str().unwrap();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("give different permissions on different repositories (`acme/app` (contents:write); `acme/site` (issues:write)), and a token holds all of its permissions on all of its repositories: ask for one repository's token (`writ token --repository`, or `repository` in a request to `writ serve`)"),
        "{}",
        text(&output)
    );
    assert!(github.token_requests().is_empty(), "nothing minted");
    let output = writ(
        &["token", "release_bot", path, "--repository", "acme/site"],
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(
        github.token_requests(),
        [serde_json::json!({"permissions": {"issues": "write"}, "repositories": ["site"]})]
    );
    // A permission the installation lacks: refused before asking.
    std::fs::write(
        folder.join("main.writ"),
        "provider github acme {\n  org = \"acme\"\n}\n\nagent release_bot {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme app \"release-bot\"\n  github.acme allow pull_requests:write on \"acme/app\"\n}\n\nagent deployer {\n  owner = \"team-platform\"\n  ttl = 1h\n  runs_on github.acme repo \"acme/app\" ref \"refs/heads/main\"\n}\n",
    )
    .unwrap();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("`release_bot` declares `pull_requests: write`, which App `release-bot`'s installation does not hold"),
        "{}",
        text(&output)
    );
    assert_eq!(github.token_requests().len(), 1, "nothing more minted");
    // Not an App agent.
    let output = writ(&["token", "deployer", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("`deployer` does not run as a GitHub App"),
        "{}",
        text(&output)
    );
    // A key that does not parse, and one that is not the App's.
    std::fs::write(folder.join("app.pem"), "not a key\n").unwrap();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains(
            "is not a PEM private key: a GitHub App's key begins `-----BEGIN RSA PRIVATE KEY-----`"
        ),
        "{}",
        text(&output)
    );
    let mut other = crate::gh::APP_KEY.replace("BEGIN RSA PRIVATE KEY", "BEGIN PRIVATE KEY");
    other = other.replace("END RSA PRIVATE KEY", "END PRIVATE KEY");
    std::fs::write(folder.join("app.pem"), other).unwrap();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("is not an RSA private key in PKCS#8"),
        "{}",
        text(&output)
    );
    // No key in writ.toml at all.
    let toml = std::fs::read_to_string(folder.join("writ.toml")).unwrap();
    let without: String = toml
        .lines()
        .filter(|l| !l.starts_with("app_id") && !l.starts_with("private_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(folder.join("writ.toml"), without).unwrap();
    let output = writ(&["token", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("writ.toml holds no App credentials for `github.acme`: add `app_id` and `private_key_file`"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_selected_installation_is_held_to_the_repositories_its_agents_are_granted() {
    let github = FakeGitHub::start(REPO, &[]);
    installed_app(&github);
    github.add_repository("acme/docs", 7);
    // Installed on two repositories, read with the App's key.
    let mut listed = github.installations();
    listed[0]["repository_selection"] = serde_json::json!("selected");
    github.set_installations(listed);
    github.select_repositories(78, &["acme/app", "acme/site"]);
    let root = scratch("github-app-selected");
    let folder = keyed_app_project(
        &root,
        &github,
        "  github.acme allow contents:write on \"acme/app\"\n  github.acme allow contents:write on \"acme/docs\"\n",
    );
    let plan = read_and_plan(&folder, &root.join("state.json"));
    let notes: Vec<&str> = plan["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes.contains(&"GitHub App `release-bot`'s installation reaches `acme/site`, which no grant of the agents that run as it names: remove it from the installation's repositories (GitHub lets only a person's token change them, so writ does not)"),
        "{notes:#?}"
    );
    assert!(
        notes.contains(&"`release_bot`'s grants name `acme/docs`, which GitHub App `release-bot`'s installation does not reach: its tokens cannot; add it to the installation's repositories"),
        "{notes:#?}"
    );
    // Read with a token that may only read metadata.
    assert_eq!(
        github.token_requests(),
        [serde_json::json!({"permissions": {"metadata": "read"}})]
    );
}

/// `writ serve --reconcile-every` reads App installations: once `writ
/// revoke` suspends the App's, every agent that runs as it is refused by
/// the server, and served again once the suspension is lifted.
#[test]
fn the_serve_watch_refuses_the_agents_of_a_suspended_app() {
    let github = FakeGitHub::start(REPO, &[]);
    installed_app(&github);
    let root = scratch("serve-app");
    let folder = keyed_app_project(
        &root,
        &github,
        "  github.acme allow contents:write on \"acme/app\"\n",
    );
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("writ-cache");
    let env = [
        ("GITHUB_TOKEN", crate::gh::TOKEN),
        ("WRIT_CACHE_DIR", cache.to_str().unwrap()),
    ];
    let server = crate::serve::Server::start_with(&folder, &env, &["--reconcile-every", "1s"]);
    let ask = |agent: &str, action: &str| {
        server.post(
            "/access/v1/evaluation",
            &serde_json::json!({"subject": {"type": "agent", "id": agent}, "action": {"name": action},
                    "resource": {"type": "github.acme", "id": "acme/app"}}),
        )["decision"]
            .clone()
    };
    let until = |allowed: bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while ask("release_bot", "contents:write") != allowed
            || ask("changelog_bot", "contents:read") != allowed
        {
            assert!(std::time::Instant::now() < deadline, "never {allowed}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    until(true);
    let path = folder.to_str().unwrap();
    let output = writ(&["revoke", "release_bot", path], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    // Both agents of the App: it has no tokens.
    until(false);
    // Lifted once the App has one agent left (as the brake's own test).
    drop_agent(&folder, "changelog_bot");
    let output = writ(&["revoke", "release_bot", path, "--lift"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ask("release_bot", "contents:write") != true {
        assert!(std::time::Instant::now() < deadline, "never served again");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// `writ serve` hands a workflow of the App agent's repository the App's
/// installation token, narrowed as `writ token` narrows it (one
/// repository's when asked), and none once the installation is suspended.
#[test]
fn writ_serve_issues_an_app_agent_its_narrowed_installation_token() {
    use crate::credentials::{ask, Issuer};
    let github = FakeGitHub::start(REPO, &[]);
    installed_app(&github);
    let issuer = Issuer::start();
    let root = scratch("serve-app-token");
    let folder = keyed_app_project(
        &root,
        &github,
        "  runs_on github.acme repo \"acme/app\" ref \"refs/heads/main\"\n  github.acme allow contents:write, issues:read on \"acme/app\"\n  github.acme allow contents:read on \"acme/site\"\n",
    );
    let toml = std::fs::read_to_string(folder.join("writ.toml")).unwrap();
    std::fs::write(
        folder.join("writ.toml"),
        format!(
            "{toml}\n[serve]\ncredentials = true\ngithub_oidc_issuer = \"{}\"\n",
            issuer.url
        ),
    )
    .unwrap();
    let server = crate::serve::Server::start_with(&folder, &[], &[]);
    let proof =
        serde_json::json!({"type": "github_actions", "token": issuer.token(serde_json::json!({}))});
    // The grants give different permissions on two repositories, which one
    // token cannot hold: refused, as `writ token` refuses it.
    let (status, answer) = ask(
        &server,
        &serde_json::json!({"proof": proof, "provider": "github.acme", "agent": "release_bot"}),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("one repository's token"),
        "{answer}"
    );
    let (status, issued) = ask(
        &server,
        &serde_json::json!({"proof": proof, "provider": "github.acme", "agent": "release_bot", "repository": "app"}),
    );
    assert_eq!(status, 200, "{issued}");
    assert!(issued["credentials"]["token"]
        .as_str()
        .unwrap()
        .starts_with("ghs_minted"));
    assert_eq!(
        issued["credentials"]["repositories"],
        serde_json::json!(["app"])
    );
    let (status, site) = ask(
        &server,
        &serde_json::json!({"proof": proof, "provider": "github.acme", "agent": "release_bot", "repository": "site"}),
    );
    assert_eq!(status, 200, "{site}");
    assert_eq!(
        github.token_requests(),
        [
            serde_json::json!({"permissions": {"contents": "write", "issues": "read"}, "repositories": ["app"]}),
            serde_json::json!({"permissions": {"contents": "read"}, "repositories": ["site"]}),
        ]
    );
    // The App proves itself with a JWT signed with its key, meant for
    // writ (`aud`): its agents get their tokens; a JWT meant for GitHub
    // (no `aud`), or signed with another key, proves nothing.
    let app_jwt = |key: &aws_lc_rs::signature::RsaKeyPair, audience: Option<&str>, alg: &str| {
        let now = jiff::Timestamp::now().as_second();
        let mut claims = serde_json::json!({"iss": crate::gh::APP_ID.to_string(), "iat": now - 30, "exp": now + 300});
        if let Some(audience) = audience {
            claims["aud"] = serde_json::json!(audience);
        }
        crate::credentials::sign_jwt(key, &serde_json::json!({"alg": alg, "typ": "JWT"}), &claims)
    };
    let app_key = crate::credentials::rsa_key(crate::gh::APP_KEY);
    let app_proof = |jwt: String| serde_json::json!({"type": "github_app", "provider": "github.acme", "token": jwt});
    let (status, changelog) = ask(
        &server,
        &serde_json::json!({"proof": app_proof(app_jwt(&app_key, Some("writ"), "PS256")), "provider": "github.acme", "agent": "changelog_bot"}),
    );
    assert_eq!(status, 200, "{changelog}");
    assert_eq!(changelog["agent"], "changelog_bot");
    assert_eq!(
        github.token_requests().last().unwrap(),
        &serde_json::json!({"permissions": {"contents": "read"}, "repositories": ["app"]})
    );
    let other = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    for (jwt, says) in [
        (app_jwt(&app_key, None, "PS256"), "not meant for writ"),
        // What GitHub takes (RS256) is no proof here.
        (app_jwt(&app_key, Some("writ"), "RS256"), "PS256"),
        (
            app_jwt(&other, Some("writ"), "PS256"),
            "not signed with the App's key",
        ),
    ] {
        let (status, answer) = ask(
            &server,
            &serde_json::json!({"proof": app_proof(jwt), "provider": "github.acme", "agent": "changelog_bot"}),
        );
        assert_eq!(status, 401, "{answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{answer}");
    }
    let requests = github.token_requests().len();

    // The job is `deployer` too: it must say which.
    let (status, answer) = ask(
        &server,
        &serde_json::json!({"proof": proof, "provider": "github.acme"}),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("several agents"),
        "{answer}"
    );
    // Suspended, the installation gives nothing.
    let output = writ(&["revoke", "release_bot", folder.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let (status, answer) = ask(
        &server,
        &serde_json::json!({"proof": proof, "provider": "github.acme", "agent": "release_bot", "repository": "app"}),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("installation is suspended"),
        "{answer}"
    );
    assert_eq!(github.token_requests().len(), requests);
}
