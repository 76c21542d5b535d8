//! writ against a real implementation of the IAM API (moto, started by the
//! harness): plan, apply, drift and ownership, end to end through the
//! binary. moto validates less than AWS (it accepts malformed policies), so
//! negative cases about policy content are tested in the compiler.

use crate::binary::{apply, assert_no_changes, run, text, writ, writ_with};

use crate::moto::Moto;
use std::path::{Path, PathBuf};

const PROVIDERS: &str = r#"provider aws prod {
  account = "123456789012"
}

guardrail no_iam {
  deny aws.* iam:*, organizations:* on "*"
}
"#;

const EXPORTER: &str = r#"
agent exporter {
  owner = "team-finance"
  ttl = 1h
  runs_on aws.prod service "lambda.amazonaws.com"
  aws.prod allow s3:GetObject, s3:ListBucket on "arn:aws:s3:::acme-invoices", "arn:aws:s3:::acme-invoices/*"
  delegates {
    ttl = 15m
    aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/*"
  }
}

agent reader {
  owner = "team-finance"
  parent = exporter
  ttl = 15m
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-invoices/2026/*"
}
"#;

const REPORTER: &str = r#"
agent reporter {
  owner = "team-reporting"
  ttl = 2h
  runs_on aws.prod service "ecs-tasks.amazonaws.com"
  aws.prod allow s3:PutObject on "arn:aws:s3:::acme-reports/*"
}
"#;

/// A project folder pointing at one moto server.
fn project(name: &str, moto: &Moto, source: &str) -> PathBuf {
    project_at(name, &moto.endpoint(), source)
}

#[test]
fn a_fresh_account_converges_and_a_second_plan_is_empty() {
    let Some(moto) = Moto::start() else { return };
    let root = project("fresh", &moto, &format!("{PROVIDERS}{EXPORTER}{REPORTER}"));
    let first = writ(&root, &["plan", "--detailed-exitcode"]);
    assert_eq!(first.status.code(), Some(2), "{}", text(&first));
    let applied = apply(&root);
    assert!(
        applied.contains("Apply complete: 7 of 7 changes made."),
        "{applied}"
    );
    assert_no_changes(&root);
    // What was made is what the source says: the delegate's boundary and
    // its trust in its parent's role.
    let role = moto.iam("GetRole", &[("RoleName", "reader")]);
    assert!(role.contains("/writ/acme/"), "{role}");
    assert!(role.contains("exporter-delegates"), "{role}");
}

#[test]
fn a_policy_edited_outside_writ_is_drift_and_apply_restores_it() {
    let Some(moto) = Moto::start() else { return };
    let root = project("drift", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    apply(&root);
    moto.iam(
        "PutRolePolicy",
        &[
            ("RoleName", "exporter"),
            ("PolicyName", "writ-access"),
            ("PolicyDocument", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#),
        ],
    );
    let plan = writ(&root, &["plan", "--detailed-exitcode"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(2), "{shown}");
    assert!(shown.contains("Drift (changed outside writ"), "{shown}");
    assert!(
        shown.contains("restores the policy document changed outside writ"),
        "{shown}"
    );
    assert!(
        shown.contains("`exporter` loses aws.prod `s3:*` on `*`"),
        "{shown}"
    );
    apply(&root);
    assert_no_changes(&root);
}

#[test]
fn removing_an_agent_deletes_exactly_its_objects_and_nothing_unmanaged() {
    let Some(moto) = Moto::start() else { return };
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    // Things writ must never touch: a look-alike role outside its path, a
    // role of the same kind in another writ project, and a human.
    moto.iam(
        "CreateRole",
        &[
            ("RoleName", "reporter-legacy"),
            ("AssumeRolePolicyDocument", trust),
        ],
    );
    moto.iam(
        "CreateRole",
        &[
            ("RoleName", "payments_bot"),
            ("Path", "/writ/payments/"),
            ("AssumeRolePolicyDocument", trust),
            ("Tags.member.1.Key", "writ:project"),
            ("Tags.member.1.Value", "payments"),
        ],
    );
    moto.iam("CreateUser", &[("UserName", "alice")]);
    moto.iam("CreateAccessKey", &[("UserName", "alice")]);
    let root = project(
        "removal",
        &moto,
        &format!("{PROVIDERS}{EXPORTER}{REPORTER}"),
    );
    apply(&root);
    std::fs::write(root.join("main.writ"), format!("{PROVIDERS}{EXPORTER}")).unwrap();
    let plan = text(&writ(&root, &["plan", "--allow-mass-delete"]));
    assert!(
        plan.contains("- aws.prod/role/reporter (IAM role of `reporter`)"),
        "{plan}"
    );
    assert!(
        plan.contains("agent `reporter` was removed from the source"),
        "{plan}"
    );
    assert!(
        plan.contains("aws.prod/role/reporter-legacy: path `/`, not managed by writ"),
        "{plan}"
    );
    assert!(plan.contains("aws.prod/user/alice"), "{plan}");
    assert!(
        !plan.contains("payments_bot"),
        "another project's role is left out: {plan}"
    );
    // 2 of 7 objects: more than 25%, but one agent, under the breaker's
    // floor.
    let output = writ(&root, &["apply", "--auto-approve"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_no_changes(&root);
    for role in ["reporter-legacy", "payments_bot", "exporter", "reader"] {
        moto.iam("GetRole", &[("RoleName", role)]);
    }
    moto.iam("GetUser", &[("UserName", "alice")]);
    let listed = moto.iam("ListRoles", &[]);
    assert!(
        !listed.contains("<RoleName>reporter</RoleName>"),
        "{listed}"
    );
}

#[test]
fn writ_snapshot_records_what_plan_sees() {
    let Some(moto) = Moto::start() else { return };
    let root = project("snapshot", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    apply(&root);
    let file = root.join("recorded.json");
    let output = writ(&root, &["snapshot", "--out", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let recorded = std::fs::read_to_string(&file).unwrap();
    assert!(writ_compiler::snapshot::Snapshot::parse(&recorded).is_ok());
    let offline = writ(
        &root,
        &[
            "plan",
            "--snapshot",
            file.to_str().unwrap(),
            "--detailed-exitcode",
        ],
    );
    assert_eq!(offline.status.code(), Some(0), "{}", text(&offline));
}

#[test]
fn a_saved_plan_is_applied_only_while_it_is_still_current() {
    let Some(moto) = Moto::start() else { return };
    let root = project("saved-plan", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    apply(&root);
    std::fs::write(
        root.join("main.writ"),
        format!("{PROVIDERS}{EXPORTER}{REPORTER}"),
    )
    .unwrap();
    let saved = root.join("reviewed.json");
    let planned = writ(&root, &["plan", "--out", saved.to_str().unwrap()]);
    assert_eq!(planned.status.code(), Some(0), "{}", text(&planned));
    // Someone edits the live account after the plan was reviewed.
    moto.iam(
        "UpdateRole",
        &[("RoleName", "exporter"), ("MaxSessionDuration", "7200")],
    );
    let refused = run(&["apply", root.to_str().unwrap(), saved.to_str().unwrap()]);
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(shown.contains("the saved plan is out of date"), "{shown}");
    assert!(
        shown.contains("aws.prod/role/exporter: needed now, not in the saved plan"),
        "{shown}"
    );
    // A fresh, reviewed plan applies; off a terminal, with
    // `--auto-approve` (on one, writ asks, as for any apply).
    let planned = writ(&root, &["plan", "--out", saved.to_str().unwrap()]);
    assert_eq!(planned.status.code(), Some(0));
    let unconfirmed = run(&["apply", root.to_str().unwrap(), saved.to_str().unwrap()]);
    assert_eq!(unconfirmed.status.code(), Some(1), "{}", text(&unconfirmed));
    let applied = run(&[
        "apply",
        root.to_str().unwrap(),
        saved.to_str().unwrap(),
        "--auto-approve",
    ]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    assert_no_changes(&root);
}

#[test]
fn writ_drift_reports_only_drift() {
    let Some(moto) = Moto::start() else { return };
    let root = project("drift-command", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    apply(&root);
    let clean = writ(&root, &["drift", "--detailed-exitcode"]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    moto.iam(
        "TagRole",
        &[
            ("RoleName", "reader"),
            ("Tags.member.1.Key", "writ:owner"),
            ("Tags.member.1.Value", "mallory"),
        ],
    );
    let drifted = writ(&root, &["drift", "--detailed-exitcode"]);
    let shown = text(&drifted);
    assert_eq!(drifted.status.code(), Some(2), "{shown}");
    assert!(shown.contains("aws.prod/role/reader: changed outside writ since writ last applied it [tags.writ:owner]"), "{shown}");
    apply(&root);
    assert_eq!(
        writ(&root, &["drift", "--detailed-exitcode"]).status.code(),
        Some(0)
    );
}

#[test]
fn revoke_cuts_an_agent_off_survives_apply_and_lift_restores_it() {
    let Some(moto) = Moto::start() else { return };
    // A machine user the exporter signs in as, with a long-lived key; and a
    // person's user that someone tagged as the exporter's.
    moto.iam("CreateUser", &[("UserName", "exporter-ci")]);
    moto.iam("CreateAccessKey", &[("UserName", "exporter-ci")]);
    moto.iam(
        "CreateUser",
        &[
            ("UserName", "ana"),
            ("Tags.member.1.Key", "writ:project"),
            ("Tags.member.1.Value", "acme"),
            ("Tags.member.2.Key", "writ:agent"),
            ("Tags.member.2.Value", "exporter"),
        ],
    );
    moto.iam("CreateAccessKey", &[("UserName", "ana")]);
    let exporter = EXPORTER.replace(
        "  runs_on aws.prod service \"lambda.amazonaws.com\"\n",
        "  runs_on aws.prod service \"lambda.amazonaws.com\"\n  runs_on aws.prod user \"exporter-ci\"\n",
    );
    let root = project("revoke", &moto, &format!("{PROVIDERS}{exporter}{REPORTER}"));
    apply(&root);
    let trust = moto.iam("GetRole", &[("RoleName", "exporter")]);
    assert!(
        trust.contains("exporter-ci"),
        "the role trusts the user: {trust}"
    );

    let revoked = writ_with(
        &root,
        &["revoke", "exporter", "--include-delegates"],
        &[("WRIT_ACTOR", "oncall ana")],
    );
    let shown = text(&revoked);
    assert_eq!(revoked.status.code(), Some(0), "{shown}");
    assert!(shown.contains("revoked `exporter` in aws.prod"), "{shown}");
    assert!(shown.contains("revoked `reader` in aws.prod"), "{shown}");
    assert!(shown.contains("disabled access key"), "{shown}");
    let policy = moto.iam(
        "GetRolePolicy",
        &[("RoleName", "exporter"), ("PolicyName", "writ-revoke")],
    );
    // Every session denied everything, whenever it was issued.
    assert!(policy.contains("Deny"), "{policy}");
    assert!(!policy.contains("TokenIssueTime"), "{policy}");
    // Nobody may assume the roles again: the trust policy denies it, read
    // back by another client than writ's.
    for role in ["exporter", "reader"] {
        let shown = moto.iam("GetRole", &[("RoleName", role)]);
        assert!(shown.contains("WritRevoked"), "{shown}");
        // The document comes URL-encoded: look for what has no `:` in it.
        assert!(shown.contains("AssumeRoleWithWebIdentity"), "{shown}");
        assert!(shown.contains("writ:revoked-at"), "{shown}");
        // Who said they revoked it is kept with it.
        assert!(shown.contains("writ:revoked-by"), "{shown}");
        assert!(shown.contains("oncall ana"), "{shown}");
    }
    let keys = moto.iam("ListAccessKeys", &[("UserName", "exporter-ci")]);
    assert!(keys.contains("<Status>Inactive</Status>"), "{keys}");
    assert!(
        shown.contains("of IAM user `exporter-ci`"),
        "every disabled key named: {shown}"
    );
    // A tag is a claim anyone who may tag users can make: only the users
    // the source names lose their keys.
    let keys = moto.iam("ListAccessKeys", &[("UserName", "ana")]);
    assert!(keys.contains("<Status>Active</Status>"), "{keys}");
    // Only the named agent (and its delegate) were touched.
    assert!(
        !moto
            .try_iam(
                "GetRolePolicy",
                &[("RoleName", "reporter"), ("PolicyName", "writ-revoke")]
            )
            .0
    );

    // The revocation is neither drift nor a change, and apply keeps it.
    let plan = writ(&root, &["plan", "--detailed-exitcode"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{shown}");
    assert!(shown.contains("Revoked (kept by every apply"), "{shown}");
    apply(&root);
    assert!(
        moto.try_iam(
            "GetRolePolicy",
            &[("RoleName", "exporter"), ("PolicyName", "writ-revoke")]
        )
        .0
    );

    let lifted = writ(
        &root,
        &["revoke", "exporter", "--include-delegates", "--lift"],
    );
    assert_eq!(lifted.status.code(), Some(0), "{}", text(&lifted));
    assert!(
        !moto
            .try_iam(
                "GetRolePolicy",
                &[("RoleName", "exporter"), ("PolicyName", "writ-revoke")]
            )
            .0
    );
    assert!(
        !moto
            .try_iam(
                "GetRolePolicy",
                &[("RoleName", "reader"), ("PolicyName", "writ-revoke")]
            )
            .0
    );
    let shown = moto.iam("GetRole", &[("RoleName", "exporter")]);
    assert!(!shown.contains("WritRevoked"), "{shown}");
    assert!(!shown.contains("writ:revoked-at"), "{shown}");
    assert!(!shown.contains("writ:revoked-by"), "{shown}");
    assert_no_changes(&root);
}

#[test]
fn a_revocation_survives_freezing_and_unfreezing_and_a_plan_never_reopens_the_trust() {
    let Some(moto) = Moto::start() else { return };
    let root = project("revoke-freeze", &moto, &format!("{PROVIDERS}{REPORTER}"));
    apply(&root);
    let revoked = writ(&root, &["revoke", "reporter"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked));
    // Frozen, then unfrozen: the revocation stays through both applies.
    let frozen = REPORTER.replace("  ttl = 2h\n", "  ttl = 2h\n  frozen = true\n");
    std::fs::write(root.join("main.writ"), format!("{PROVIDERS}{frozen}")).unwrap();
    apply(&root);
    std::fs::write(root.join("main.writ"), format!("{PROVIDERS}{REPORTER}")).unwrap();
    apply(&root);
    assert_no_changes(&root);
    let shown = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(
        shown.contains("WritRevoked"),
        "the trust stays closed: {shown}"
    );
    assert!(
        moto.try_iam(
            "GetRolePolicy",
            &[("RoleName", "reporter"), ("PolicyName", "writ-revoke")]
        )
        .0,
        "the session deny stays"
    );
}

#[test]
fn a_revoke_interrupted_after_its_tag_is_listed_and_the_next_apply_closes_the_trust() {
    let Some(moto) = Moto::start() else { return };
    let root = project(
        "revoke-interrupted",
        &moto,
        &format!("{PROVIDERS}{REPORTER}"),
    );
    apply(&root);
    // `writ revoke` tags the role first; here it stopped right after.
    moto.iam(
        "TagRole",
        &[
            ("RoleName", "reporter"),
            ("Tags.member.1.Key", "writ:revoked-at"),
            ("Tags.member.1.Value", "2026-11-29T07:00:00Z"),
        ],
    );
    let planned = writ(&root, &["plan"]);
    let shown = text(&planned);
    assert!(shown.contains("which did not finish"), "{shown}");
    assert!(
        shown.contains("run `writ revoke reporter` again"),
        "{shown}"
    );
    assert!(
        shown.contains("closes the trust policy of a revoked role"),
        "{shown}"
    );
    apply(&root);
    assert_no_changes(&root);
    let shown = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(
        shown.contains("WritRevoked"),
        "the trust is closed: {shown}"
    );
    // Running the revoke again finishes it.
    let revoked = writ(&root, &["revoke", "reporter"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked));
    assert!(
        moto.try_iam(
            "GetRolePolicy",
            &[("RoleName", "reporter"), ("PolicyName", "writ-revoke")]
        )
        .0
    );
    let shown = text(&writ(&root, &["plan"]));
    assert!(!shown.contains("which did not finish"), "{shown}");
    assert_no_changes(&root);
}

#[test]
fn observing_a_thousand_managed_roles_takes_at_most_one_request_per_fifty() {
    let Some(moto) = Moto::start() else { return };
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    for i in 0..1000 {
        let name = format!("agent_{i}");
        moto.iam(
            "CreateRole",
            &[
                ("RoleName", &name),
                ("Path", "/writ/acme/"),
                ("AssumeRolePolicyDocument", trust),
                ("Tags.member.1.Key", "writ:project"),
                ("Tags.member.1.Value", "acme"),
                ("Tags.member.2.Key", "writ:agent"),
                ("Tags.member.2.Value", &name),
            ],
        );
        moto.iam(
            "PutRolePolicy",
            &[
                ("RoleName", &name),
                ("PolicyName", "writ-access"),
                ("PolicyDocument", policy),
            ],
        );
    }
    let root = project("thousand", &moto, PROVIDERS);
    let file = root.join("recorded.json");
    let output = writ(&root, &["snapshot", "--out", file.to_str().unwrap()]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    // "aws.prod: 2000 objects in N requests"
    let line = shown
        .lines()
        .find(|l| l.starts_with("aws.prod: ") && l.contains(" objects in "))
        .expect("a count of requests");
    let words: Vec<&str> = line.split_whitespace().collect();
    let objects: usize = words[1].parse().unwrap();
    let requests: usize = words[4].parse().unwrap();
    assert_eq!(objects, 2000, "{line}");
    assert!(
        requests <= 1000 / 50,
        "{requests} requests to observe 1,000 roles: {line}"
    );
    eprintln!("{line}");
}

/// A project whose `writ.toml` points at `endpoint` (a proxy, say).
fn project_at(name: &str, endpoint: &str, source: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("aws")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("main.writ"), source).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!("[project]\nname = \"acme\"\n\n[provider.aws.prod]\nregion = \"us-east-1\"\nendpoint_url = \"{endpoint}\"\n"),
    )
    .unwrap();
    root
}

#[test]
fn a_revoked_role_is_never_replaced_so_no_interrupted_replacement_can_reopen_it() {
    let Some(moto) = Moto::start() else { return };
    // The project's role, left by an earlier layout at another `/writ/`
    // path: plans replace it into `/writ/acme/`, by a delete and a create.
    moto.iam(
        "CreateRole",
        &[
            ("RoleName", "reporter"),
            ("Path", "/writ/legacy/"),
            (
                "AssumeRolePolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            ),
            ("Tags.member.1.Key", "writ:project"),
            ("Tags.member.1.Value", "acme"),
            ("Tags.member.2.Key", "writ:agent"),
            ("Tags.member.2.Value", "reporter"),
        ],
    );
    let root = project("revoke-replace", &moto, &format!("{PROVIDERS}{REPORTER}"));
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("-/+ aws.prod/role/reporter"),
        "replaced while open: {plan}"
    );
    let revoked = writ(&root, &["revoke", "reporter"]);
    assert_eq!(revoked.status.code(), Some(0), "{}", text(&revoked));
    // Revoked, it is converged where it is: a delete followed by a failed
    // create would lose the revocation, and the plan after would create
    // the role open.
    let plan = text(&writ(&root, &["plan"]));
    assert!(!plan.contains("-/+ aws.prod/role/reporter"), "{plan}");
    apply(&root);
    assert_no_changes(&root);
    let role = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(role.contains("<Path>/writ/legacy/</Path>"), "{role}");
    assert!(role.contains("WritRevoked"), "{role}");
    // Lifted, the replacement goes ahead.
    let lifted = writ(&root, &["revoke", "--lift", "reporter"]);
    assert_eq!(lifted.status.code(), Some(0), "{}", text(&lifted));
    apply(&root);
    assert_no_changes(&root);
    let role = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(role.contains("<Path>/writ/acme/</Path>"), "{role}");
    assert!(!role.contains("WritRevoked"), "{role}");
}

#[test]
fn an_apply_interrupted_by_faults_converges_on_the_next_run_with_nothing_lost_or_duplicated() {
    let Some(moto) = Moto::start() else { return };
    let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
    let root = project_at(
        "faults",
        &proxy.endpoint(),
        &format!("{PROVIDERS}{EXPORTER}{REPORTER}"),
    );
    // Throttling and dropped connections throughout; after 14 requests,
    // everything is refused: the apply stops halfway.
    proxy.refuse_after(14);
    let first = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&first);
    assert_eq!(first.status.code(), Some(1), "{shown}");
    assert!(shown.contains("Apply failed at"), "{shown}");
    assert!(proxy.throttled.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert!(proxy.dropped.load(std::sync::atomic::Ordering::SeqCst) > 0);

    proxy.heal();
    // The first run could not give its lock back (everything was refused):
    // the next is refused, naming it, and `writ unlock` releases it.
    let locked = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&locked);
    assert_eq!(locked.status.code(), Some(1), "{shown}");
    let holder = shown
        .split("holds the project's lock (")
        .nth(1)
        .and_then(|rest| rest.split(", until ").next())
        .unwrap_or_else(|| panic!("the holder is named: {shown}"));
    let released = writ(&root, &["unlock", "--holder", holder]);
    assert_eq!(released.status.code(), Some(0), "{}", text(&released));
    assert!(
        text(&released).contains("released the lock"),
        "{}",
        text(&released)
    );
    let second = writ(&root, &["apply", "--auto-approve"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_no_changes(&root);
    // Exactly one of each: three roles, one boundary, three inline policies.
    let roles = moto.iam("ListRoles", &[("PathPrefix", "/writ/acme/")]);
    assert_eq!(roles.matches("<RoleName>").count(), 3, "{roles}");
    let policies = moto.iam("ListPolicies", &[("Scope", "Local")]);
    assert_eq!(policies.matches("<PolicyName>").count(), 1, "{policies}");
    for role in ["exporter", "reader", "reporter"] {
        let inline = moto.iam("ListRolePolicies", &[("RoleName", role)]);
        assert_eq!(inline.matches("<member>").count(), 1, "{role}: {inline}");
    }
}

#[test]
fn a_managed_policy_attached_by_hand_is_drift_and_apply_detaches_it_without_deleting_it() {
    let Some(moto) = Moto::start() else { return };
    let root = project("attached", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    apply(&root);
    assert_no_changes(&root);
    // The commonest way access is widened by hand: a policy allowing
    // everything, attached to the agent's role.
    let created = moto.iam(
        "CreatePolicy",
        &[
            ("PolicyName", "backdoor"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            ),
        ],
    );
    assert!(created.contains("backdoor"), "{created}");
    let arn = "arn:aws:iam::123456789012:policy/backdoor";
    moto.iam(
        "AttachRolePolicy",
        &[("RoleName", "exporter"), ("PolicyArn", arn)],
    );
    let drift = writ(&root, &["drift", "--detailed-exitcode"]);
    let shown = text(&drift);
    assert_eq!(drift.status.code(), Some(2), "{shown}");
    assert!(
        shown.contains("aws.prod/role/exporter: changed outside writ since writ last applied it [attached_policies]"),
        "{shown}"
    );
    let plan = writ(&root, &["plan"]);
    let shown = text(&plan);
    assert!(
        shown.contains("restores the attached managed policies changed outside writ"),
        "{shown}"
    );
    // The account's own policy is read: the delta says what it allowed.
    assert!(
        shown.contains("`exporter` loses aws.prod `*` on `*`"),
        "the permission delta says what the policy allowed: {shown}"
    );
    apply(&root);
    assert_no_changes(&root);
    let attached = moto.iam("ListAttachedRolePolicies", &[("RoleName", "exporter")]);
    assert!(!attached.contains("backdoor"), "detached: {attached}");
    // Detached, never deleted: it is not writ's.
    let policy = moto.iam("GetPolicy", &[("PolicyArn", arn)]);
    assert!(policy.contains("backdoor"), "{policy}");
}

#[test]
fn an_instance_profile_or_a_boundary_set_by_hand_is_drift_and_apply_undoes_it() {
    let Some(moto) = Moto::start() else { return };
    let root = project("profiles", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    apply(&root);
    // An instance profile made by hand, holding the agent's role: EC2
    // instances started with it get the role's sessions.
    moto.iam(
        "CreateInstanceProfile",
        &[("InstanceProfileName", "handmade")],
    );
    moto.iam(
        "AddRoleToInstanceProfile",
        &[
            ("InstanceProfileName", "handmade"),
            ("RoleName", "exporter"),
        ],
    );
    let drift = writ(&root, &["drift", "--detailed-exitcode"]);
    let shown = text(&drift);
    assert_eq!(drift.status.code(), Some(2), "{shown}");
    assert!(shown.contains("[instance_profiles]"), "{shown}");
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("instance profile `handmade`"),
        "the delta names it: {plan}"
    );
    apply(&root);
    assert_no_changes(&root);
    let profile = moto.iam("GetInstanceProfile", &[("InstanceProfileName", "handmade")]);
    assert!(
        !profile.contains("<RoleName>exporter</RoleName>"),
        "the role left it: {profile}"
    );
    // A permissions boundary put on by hand (writ sets none on a parent).
    moto.iam(
        "PutRolePermissionsBoundary",
        &[
            ("RoleName", "exporter"),
            (
                "PermissionsBoundary",
                "arn:aws:iam::aws:policy/AdministratorAccess",
            ),
        ],
    );
    let drift = text(&writ(&root, &["drift"]));
    assert!(drift.contains("[permissions_boundary]"), "{drift}");
    apply(&root);
    assert_no_changes(&root);
    let role = moto.iam("GetRole", &[("RoleName", "exporter")]);
    assert!(!role.contains("PermissionsBoundary"), "{role}");
}

#[test]
fn revoke_works_with_a_broken_source_and_for_an_agent_the_source_no_longer_declares() {
    let Some(moto) = Moto::start() else { return };
    let root = project(
        "revoke-broken",
        &moto,
        &format!("{PROVIDERS}{EXPORTER}{REPORTER}"),
    );
    apply(&root);
    // Mid-incident, someone's edit broke a file of the source.
    std::fs::write(root.join("main.writ"), PROVIDERS).unwrap();
    std::fs::write(
        root.join("agents.writ"),
        format!("{EXPORTER}{REPORTER}\nagent broken {{\n  owner = \n}}\n"),
    )
    .unwrap();
    let revoked = writ(&root, &["revoke", "reporter"]);
    let shown = text(&revoked);
    assert_eq!(revoked.status.code(), Some(0), "{shown}");
    assert!(shown.contains("the source has errors"), "{shown}");
    assert!(shown.contains("revoked `reporter` in aws.prod"), "{shown}");
    let role = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(role.contains("WritRevoked"), "{role}");
    // And the agent was already taken out of the source: revoked by name.
    std::fs::write(root.join("agents.writ"), EXPORTER).unwrap();
    let revoked = writ(&root, &["revoke", "reporter", "--lift"]);
    let shown = text(&revoked);
    assert_eq!(revoked.status.code(), Some(0), "{shown}");
    assert!(shown.contains("declares no agent `reporter`"), "{shown}");
    assert!(
        shown.contains("lifted the revocation of `reporter` in aws.prod"),
        "{shown}"
    );
}

#[test]
fn revoke_carries_on_past_a_provider_it_cannot_reach_and_says_so() {
    let Some(moto) = Moto::start() else { return };
    let root = project("revoke-partial", &moto, &format!("{PROVIDERS}{REPORTER}"));
    apply(&root);
    // A cluster writ.toml has no connection for, a stale section for an
    // account the source no longer declares, and a GitHub organisation.
    let cluster = "provider kubernetes prod {\n  cluster = \"prod\"\n}\n\nprovider github acme {\n  org = \"acme\"\n}\n";
    std::fs::write(
        root.join("main.writ"),
        format!("{PROVIDERS}{cluster}{REPORTER}"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!("{toml}\n[provider.aws.old]\nregion = \"us-east-1\"\n"),
    )
    .unwrap();
    let revoked = writ(&root, &["revoke", "reporter"]);
    let shown = text(&revoked);
    assert_eq!(revoked.status.code(), Some(1), "not everywhere: {shown}");
    assert!(shown.contains("revoked `reporter` in aws.prod"), "{shown}");
    assert!(
        shown.contains("could not revoke in kubernetes.prod: no connection settings"),
        "{shown}"
    );
    assert!(
        shown.contains("note: nothing to revoke in github.acme"),
        "{shown}"
    );
    assert!(shown.contains("warning:"), "the stale section: {shown}");
    let role = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(role.contains("WritRevoked"), "{role}");
}

#[test]
fn live_providers_need_a_chosen_project_name_and_endpoints_that_keep_credentials_off_the_wire() {
    // No moto: both are refused before anything is sent.
    let root = project_at(
        "unnamed",
        "http://127.0.0.1:9",
        &format!("{PROVIDERS}{EXPORTER}"),
    );
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        toml.replace("[project]\nname = \"acme\"\n", ""),
    )
    .unwrap();
    let plan = writ(&root, &["plan"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("[project]\nname = \"unnamed\""),
        "the line to add: {shown}"
    );
    // Offline work needs no name: the folder's is used.
    assert_eq!(writ(&root, &["check"]).status.code(), Some(0));

    let root = project_at(
        "plain-http",
        "http://10.0.0.5:5000",
        &format!("{PROVIDERS}{EXPORTER}"),
    );
    let plan = writ(&root, &["plan"]);
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(1), "{shown}");
    assert!(shown.contains("plain HTTP"), "{shown}");
}

#[test]
fn writ_proves_the_account_first_and_a_profile_means_exactly_its_credentials() {
    let Some(moto) = Moto::start() else { return };
    // The source says another account: refused before anything is read or
    // written.
    let root = project(
        "wrong-account",
        &moto,
        &format!(
            "{}{EXPORTER}",
            PROVIDERS.replace("123456789012", "999999999999")
        ),
    );
    let applied = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&applied);
    assert_eq!(applied.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("the credentials are for account 123456789012")
            && shown.contains("declares account 999999999999"),
        "{shown}"
    );
    let roles = moto.iam("ListRoles", &[]);
    assert!(!roles.contains("<RoleName>exporter</RoleName>"), "{roles}");

    // A profile whose keys are a user's: with other keys in the
    // environment, the profile's are the ones used.
    moto.iam("CreateUser", &[("UserName", "profile-user")]);
    let key = moto.iam("CreateAccessKey", &[("UserName", "profile-user")]);
    let field = |name: &str| {
        let start = key.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        let end = key[start..].find('<').unwrap() + start;
        key[start..end].to_string()
    };
    let root = project("profile", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    let credentials = root.join("credentials");
    std::fs::write(
        &credentials,
        format!(
            "[writ-test]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            field("AccessKeyId"),
            field("SecretAccessKey")
        ),
    )
    .unwrap();
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        toml.replace(
            "region = \"us-east-1\"\n",
            "region = \"us-east-1\"\nprofile = \"writ-test\"\n",
        ),
    )
    .unwrap();
    let plan = writ_with(
        &root,
        &["plan"],
        &[("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap())],
    );
    let shown = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("against `aws.prod`: account 123456789012, as `arn:aws:iam::123456789012:user/profile-user`"),
        "the profile's keys, not the environment's: {shown}"
    );
}

#[test]
fn a_saved_plan_is_applied_only_where_and_as_it_was_made() {
    let Some(moto) = Moto::start() else { return };
    let root = project("saved-origin", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    // A plan made from a snapshot of an empty account: never applied live.
    std::fs::write(
        root.join("empty.json"),
        r#"{"format_version": 1, "providers": {}}"#,
    )
    .unwrap();
    let offline = root.join("offline.json");
    let made = writ(
        &root,
        &[
            "plan",
            "--snapshot",
            root.join("empty.json").to_str().unwrap(),
            "--out",
            offline.to_str().unwrap(),
        ],
    );
    assert_eq!(made.status.code(), Some(0), "{}", text(&made));
    let applied = writ(
        &root,
        &[
            "apply",
            "--auto-approve",
            "--expect",
            offline.to_str().unwrap(),
        ],
    );
    let shown = text(&applied);
    assert_eq!(applied.status.code(), Some(1), "{shown}");
    assert!(shown.contains("made from a snapshot"), "{shown}");
    // A plan made live, here, applies.
    let live = root.join("live.json");
    let made = writ(&root, &["plan", "--out", live.to_str().unwrap()]);
    assert!(
        text(&made).contains("against `aws.prod`: account 123456789012"),
        "{}",
        text(&made)
    );
    let saved = std::fs::read_to_string(&live).unwrap();
    assert!(saved.contains("\"writ_version\""), "{saved}");
    // Edited to say another account: refused.
    std::fs::write(
        root.join("elsewhere.json"),
        saved.replace("account 123456789012", "account 210987654321"),
    )
    .unwrap();
    let applied = writ(
        &root,
        &[
            "apply",
            "--auto-approve",
            "--expect",
            root.join("elsewhere.json").to_str().unwrap(),
        ],
    );
    assert!(
        text(&applied).contains("the plan was made against account 210987654321"),
        "{}",
        text(&applied)
    );
    let applied = writ(
        &root,
        &[
            "apply",
            "--auto-approve",
            "--expect",
            live.to_str().unwrap(),
        ],
    );
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
}

#[test]
fn a_digest_rewritten_to_hide_an_edit_is_still_reported_by_writ_drift() {
    let Some(moto) = Moto::start() else { return };
    let source = format!("{PROVIDERS}{EXPORTER}");
    let root = project("forged", &moto, &source);
    apply(&root);
    // Someone widens the role's policy, and rewrites its digest tag to
    // match, as anyone can: the digest is a public function of the content.
    let wide = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    moto.iam(
        "PutRolePolicy",
        &[
            ("RoleName", "exporter"),
            ("PolicyName", "writ-access"),
            ("PolicyDocument", &wide.to_string()),
        ],
    );
    let mut map = writ_compiler::SourceMap::new();
    map.add("main.writ", source);
    let checked = crate::support::check(&map);
    let desired = writ_compiler::lower::lower(&checked.model, "acme");
    let role = desired
        .resources
        .iter()
        .find(|r| r.address == "aws.prod/role/exporter")
        .unwrap();
    let mut inline = desired
        .resources
        .iter()
        .find(|r| r.address == "aws.prod/role/exporter/policy/writ-access")
        .unwrap()
        .clone();
    inline
        .attributes
        .insert("policy".into(), writ_compiler::policy::canonical(&wide));
    let forged = writ_compiler::ownership::content_digest(role, [&inline]);
    moto.iam(
        "TagRole",
        &[
            ("RoleName", "exporter"),
            ("Tags.member.1.Key", "writ:digest"),
            ("Tags.member.1.Value", &forged),
        ],
    );
    let drift = writ(&root, &["drift", "--detailed-exitcode"]);
    let shown = text(&drift);
    assert_eq!(drift.status.code(), Some(2), "{shown}");
    assert!(shown.contains("Not as the source says"), "{shown}");
    assert!(shown.contains("aws.prod/role/exporter"), "{shown}");
    apply(&root);
    assert_no_changes(&root);
    let drift = writ(&root, &["drift", "--detailed-exitcode"]);
    assert_eq!(drift.status.code(), Some(0), "{}", text(&drift));
}

#[test]
fn one_run_at_a_time_holds_the_lock_and_an_ended_lease_is_taken_over() {
    let Some(moto) = Moto::start() else { return };
    let root = project("lock", &moto, &format!("{PROVIDERS}{EXPORTER}"));
    let lock = |expires: &str| {
        moto.iam(
            "CreatePolicy",
            &[
                ("PolicyName", "writ-lock-acme"),
                ("Path", "/writ-lock/"),
                (
                    "PolicyDocument",
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#,
                ),
                ("Tags.member.1.Key", "writ:lock-holder"),
                ("Tags.member.1.Value", "ana on laptop, pid 7"),
                ("Tags.member.2.Key", "writ:lock-expires"),
                ("Tags.member.2.Value", expires),
            ],
        )
    };
    lock("2999-01-01T00:00:00Z");
    // `writ unlock` for a holder that holds nothing writes nothing.
    let unlocked = writ(&root, &["unlock", "--holder", "nobody"]);
    assert!(
        text(&unlocked).contains("aws.prod: no lock held by nobody"),
        "{}",
        text(&unlocked)
    );
    let policies = moto.iam("ListPolicies", &[("Scope", "Local")]);
    assert!(policies.contains("writ-lock-acme"), "{policies}");
    assert!(!policies.contains("writ-unfinished-acme"), "{policies}");
    // A plan made meanwhile says a run may be at work.
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("aws.prod: a run by ana on laptop, pid 7 holds the project's lock until 2999-01-01T00:00:00Z: it may be changing objects now"),
        "{plan}"
    );
    let refused = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&refused);
    assert_eq!(refused.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("another writ run holds the project's lock (ana on laptop, pid 7, until 2999-01-01T00:00:00Z)"),
        "{shown}"
    );
    let roles = moto.iam("ListRoles", &[]);
    assert!(
        !roles.contains("<RoleName>exporter</RoleName>"),
        "nothing written: {roles}"
    );
    // A lift waits its turn too; the brake itself does not.
    let lifted = writ(&root, &["revoke", "--lift", "exporter"]);
    assert_eq!(lifted.status.code(), Some(1), "{}", text(&lifted));
    // The lease ended (the run died): the next run takes the lock over, and
    // gives it back when done.
    moto.iam(
        "TagPolicy",
        &[
            (
                "PolicyArn",
                "arn:aws:iam::123456789012:policy/writ-lock/writ-lock-acme",
            ),
            ("Tags.member.1.Key", "writ:lock-expires"),
            ("Tags.member.1.Value", "2020-01-01T00:00:00Z"),
        ],
    );
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("a run by ana on laptop, pid 7 did not finish: its lock was never given back and its lease ended at 2020-01-01T00:00:00Z"),
        "{plan}"
    );
    // A run that takes it over records what the dead run may have left,
    // and the record outlives a run that converges nothing (a lift).
    let lifted = writ(&root, &["revoke", "--lift", "exporter"]);
    assert!(
        text(&lifted).contains("`exporter` has no role in aws.prod"),
        "{}",
        text(&lifted)
    );
    let plan = text(&writ(&root, &["plan"]));
    assert!(
        plan.contains("an earlier run stopped before it finished: the run of ana on laptop_ pid 7 never gave its lock back"),
        "{plan}"
    );
    let policies = moto.iam("ListPolicies", &[("Scope", "Local")]);
    assert!(!policies.contains("writ-lock-acme"), "released: {policies}");
    assert!(
        policies.contains("writ-unfinished-acme"),
        "recorded: {policies}"
    );
    // An apply that converges clears both.
    apply(&root);
    assert_no_changes(&root);
    assert!(!text(&writ(&root, &["plan"])).contains("Unfinished"));
    let policies = moto.iam("ListPolicies", &[("Scope", "Local")]);
    assert!(!policies.contains("writ-lock-acme"), "released: {policies}");
    assert!(
        !policies.contains("writ-unfinished-acme"),
        "cleared: {policies}"
    );

    // Two applies at once: never both at work; the state ends whole.
    let changed = format!("{PROVIDERS}{EXPORTER}").replace("team-finance", "team-billing");
    std::fs::write(root.join("main.writ"), changed).unwrap();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            crate::binary::command()
                .args(["apply", "--auto-approve"])
                .arg(&root)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<std::process::Output> = runs
        .into_iter()
        .map(|run| run.wait_with_output().unwrap())
        .collect();
    let shown: Vec<String> = outputs.iter().map(text).collect();
    assert!(outputs.iter().any(|o| o.status.success()), "{shown:#?}");
    // The other one finished first, found nothing to do, or was refused
    // by the lock: never both at work at once.
    for (output, shown) in outputs.iter().zip(&shown) {
        assert!(
            output.status.success() || shown.contains("holds the project's lock"),
            "{shown}"
        );
    }
    assert_no_changes(&root);
}

#[test]
fn a_conflict_holds_back_its_own_agent_and_no_other() {
    let Some(moto) = Moto::start() else { return };
    // Someone else's role already has the reporter's name.
    moto.iam(
        "CreateRole",
        &[
            ("RoleName", "reporter"),
            (
                "AssumeRolePolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
            ),
        ],
    );
    let root = project(
        "conflict-one",
        &moto,
        &format!("{PROVIDERS}{EXPORTER}{REPORTER}"),
    );
    let plan = writ(&root, &["plan"]);
    assert_eq!(
        plan.status.code(),
        Some(1),
        "a conflict fails the plan: {}",
        text(&plan)
    );
    let applied = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&applied);
    assert_eq!(applied.status.code(), Some(1), "{shown}");
    assert!(shown.contains("not applied for `reporter`"), "{shown}");
    // The exporter (and its delegate) were applied all the same; the other
    // role is as it was.
    let role = moto.iam("GetRole", &[("RoleName", "exporter")]);
    assert!(role.contains("/writ/acme/"), "{role}");
    let theirs = moto.iam("GetRole", &[("RoleName", "reporter")]);
    assert!(theirs.contains("ec2.amazonaws.com"), "{theirs}");
    assert!(!theirs.contains("writ:project"), "{theirs}");
}

/// What an agent's live objects let it do, for the prefix test: the
/// permission delta of a plan that wants nothing lists every claim as a
/// loss; against a version of the source, the claims that version does not
/// cover.
fn uncovered(
    desired: &writ_compiler::lower::Desired,
    observed: &[writ_compiler::resource::Resource],
    agent: &str,
) -> Vec<writ_compiler::plan::Access> {
    let options = writ_compiler::plan::PlanOptions {
        today: crate::support::today(),
        max_key_age_days: None,
    };
    writ_compiler::plan::plan(desired, observed, &options)
        .permission_delta
        .into_iter()
        .filter(|d| d.agent == agent)
        .flat_map(|d| d.losses)
        .collect()
}

/// A GitHub Actions agent on `acme/api`: trusted from the whole repository
/// (`ref` empty) or from one ref, allowed `s3:GetObject` on `resource`.
fn deployer(git_ref: Option<&str>, resource: &str) -> String {
    let github = "provider github acme {\n  org = \"acme\"\n}\n";
    let (waiver, pinned) = match git_ref {
        None => ("@waive(broad_trust, \"test\")\n  ", String::new()),
        Some(git_ref) => ("", format!(" ref \"{git_ref}\"")),
    };
    format!(
        "{PROVIDERS}{github}agent deployer {{\n  owner = \"team\"\n  ttl = 1h\n  {waiver}runs_on github.acme repo \"acme/api\"{pinned}\n  aws.prod allow s3:GetObject on \"{resource}\"\n}}\n"
    )
}

#[test]
fn an_apply_stopped_after_any_request_never_allows_more_than_before_or_after() {
    // Before: the whole repository may deploy, reading reports only.
    // After: only `main` may, reading everything. Halfway, the whole
    // repository reading everything would be more than either allows.
    every_prefix_allows_at_most_before_or_after(
        "prefix",
        &deployer(None, "arn:aws:s3:::data/reports/*"),
        &deployer(Some("refs/heads/main"), "arn:aws:s3:::data/*"),
    );
}

#[test]
fn a_role_moved_to_other_principals_while_its_policy_widens_is_held_closed_in_between() {
    // Before: `main` reads reports. After: `release` reads everything.
    // Trust first, `release` would read reports; policy first, `main`
    // would read everything: neither version allows either, so the trust
    // is held to what both share (nothing) until the policy is written.
    every_prefix_allows_at_most_before_or_after(
        "moved",
        &deployer(Some("refs/heads/main"), "arn:aws:s3:::data/reports/*"),
        &deployer(Some("refs/heads/release"), "arn:aws:s3:::data/*"),
    );
}

/// Applies `before`, then applies `after` through a proxy that refuses
/// everything after the `n`th request, for every `n` until the apply
/// completes; after each, every (who may become the agent, what it may
/// do) the account allows must be allowed by `before` or by `after`.
fn every_prefix_allows_at_most_before_or_after(name: &str, before: &str, after: &str) {
    let Some(first) = Moto::start() else { return };
    drop(first);
    let lowered = |text: &str| {
        let mut map = writ_compiler::SourceMap::new();
        map.add("main.writ", text.to_string());
        let checked = crate::support::check(&map);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        writ_compiler::lower::lower(&checked.model, "acme")
    };
    let (desired_before, desired_after) = (lowered(before), lowered(after));
    let nothing = writ_compiler::lower::Desired {
        project: "acme".into(),
        ..Default::default()
    };
    let mut prefixes = 0;
    for n in 1..=40 {
        let Some(moto) = Moto::start() else { return };
        let root = project(&format!("{name}-{n}"), &moto, before);
        apply(&root);
        let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
        proxy.heal();
        proxy.refuse_after(n);
        let direct = std::fs::read_to_string(root.join("writ.toml")).unwrap();
        std::fs::write(
            root.join("writ.toml"),
            direct.replace(&moto.endpoint(), &proxy.endpoint()),
        )
        .unwrap();
        std::fs::write(root.join("main.writ"), after).unwrap();
        let run = writ(&root, &["apply", "--auto-approve"]);
        // What the account holds now, read past the proxy.
        std::fs::write(root.join("writ.toml"), &direct).unwrap();
        let file = root.join("live.json");
        let read = writ(&root, &["snapshot", "--out", file.to_str().unwrap()]);
        assert_eq!(read.status.code(), Some(0), "{}", text(&read));
        let snapshot =
            writ_compiler::snapshot::Snapshot::parse(&std::fs::read_to_string(&file).unwrap())
                .unwrap();
        let observed: Vec<_> = snapshot.resources().cloned().collect();
        let live = uncovered(&nothing, &observed, "deployer");
        let not_before = uncovered(&desired_before, &observed, "deployer");
        let not_after = uncovered(&desired_after, &observed, "deployer");
        let is_trust = |a: &writ_compiler::plan::Access| a.action.starts_with("become the agent");
        // Every (who may become the agent, what it may do) the live objects
        // allow is allowed by the version before or by the version after.
        for who in live.iter().filter(|a| is_trust(a)) {
            for what in live.iter().filter(|a| !is_trust(a)) {
                let by = |missing: &[writ_compiler::plan::Access]| {
                    !missing.contains(who) && !missing.contains(what)
                };
                assert!(
                    by(&not_before) || by(&not_after),
                    "after {n} requests, {who} may do {what}, which neither version allows:\n{}",
                    text(&run)
                );
            }
        }
        prefixes += 1;
        if run.status.success() {
            assert_no_changes(&root);
            break;
        }
    }
    assert!(prefixes > 3, "the apply was cut at {prefixes} places only");
}

#[test]
fn an_apply_that_stops_partway_is_called_an_interrupted_apply_until_an_apply_finishes() {
    let Some(moto) = Moto::start() else { return };
    let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
    proxy.heal();
    let root = project_at(
        "unfinished",
        &proxy.endpoint(),
        &format!("{PROVIDERS}{EXPORTER}"),
    );
    apply(&root);
    // The exporter's policy widens; IAM refuses writing it.
    let wider = format!("{PROVIDERS}{EXPORTER}").replace(
        "allow s3:GetObject, s3:ListBucket",
        "allow s3:GetObject, s3:GetObjectVersion, s3:ListBucket",
    );
    std::fs::write(root.join("main.writ"), wider).unwrap();
    proxy.refuse_action(Some("PutRolePolicy"));
    let failed = writ(&root, &["apply", "--auto-approve"]);
    let shown = text(&failed);
    assert_eq!(failed.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("Apply failed at aws.prod/role/exporter/policy/"),
        "{shown}"
    );
    proxy.refuse_action(None);

    // The next plan says which run left what it finds, and calls what that
    // run left half-done its unfinished work, not an edit.
    let plan = writ(&root, &["plan"]);
    let shown = text(&plan);
    assert!(shown.contains("Unfinished runs:"), "{shown}");
    assert!(
        shown.contains("aws.prod: an earlier run stopped before it finished: ")
            && shown.contains("stopped at aws.prod/role/exporter/policy/"),
        "{shown}"
    );
    assert!(
        shown.contains("aws.prod/role/exporter: interrupted apply: not as writ left it"),
        "{shown}"
    );
    assert!(
        shown.contains("# update: restores the policy document an unfinished run left half-done"),
        "{shown}"
    );
    let json = writ(&root, &["plan", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let causes: Vec<&str> = plan["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["cause"].as_str().unwrap())
        .collect();
    assert!(!causes.is_empty(), "{plan:#}");
    assert!(causes.iter().all(|c| *c == "interrupted_apply"), "{plan:#}");
    assert_eq!(plan["unfinished"][0]["provider"], "aws.prod", "{plan:#}");
    assert_eq!(plan["unfinished"][0]["running"], false, "{plan:#}");
    assert_eq!(
        plan["unfinished"][0]["agents"],
        serde_json::json!(["exporter"]),
        "{plan:#}"
    );
    // Still reported by `writ drift`: the lock is a label, not a proof.
    let drift = writ(&root, &["drift", "--detailed-exitcode"]);
    let shown = text(&drift);
    assert_eq!(drift.status.code(), Some(2), "{shown}");
    assert!(shown.contains("Unfinished run in aws.prod"), "{shown}");
    assert!(shown.contains("interrupted apply"), "{shown}");

    // A revoke and lift in between keep the record: they finish no plan.
    let lifted = writ(&root, &["revoke", "--lift", "exporter"]);
    assert_eq!(lifted.status.code(), Some(0), "{}", text(&lifted));
    assert!(text(&writ(&root, &["plan"])).contains("Unfinished runs:"));

    // An apply that finishes clears it, lock and all.
    apply(&root);
    assert_no_changes(&root);
    let shown = text(&writ(&root, &["plan"]));
    assert!(!shown.contains("Unfinished"), "{shown}");
    let policies = moto.iam("ListPolicies", &[("Scope", "Local")]);
    assert!(!policies.contains("writ-lock-acme"), "{policies}");
    assert!(!policies.contains("writ-unfinished-acme"), "{policies}");
}

/// The observe line's request count: `aws.prod: N objects in R requests`.
fn observe_requests(shown: &str) -> usize {
    shown
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix("aws.prod: ")?;
            let (_, requests) = rest.split_once(" objects in ")?;
            requests.split(' ').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("an observe line: {shown}"))
}

#[test]
fn users_and_keys_come_from_the_credential_report_in_a_constant_number_of_requests() {
    let Some(moto) = Moto::start() else { return };
    let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
    proxy.heal();
    let root = project_at(
        "report",
        &proxy.endpoint(),
        &format!("{PROVIDERS}{EXPORTER}"),
    );
    let add_users = |from: usize, to: usize| {
        for i in from..to {
            let name = format!("human-{i:02}");
            moto.iam("CreateUser", &[("UserName", &name)]);
            moto.iam("CreateAccessKey", &[("UserName", &name)]);
        }
    };
    add_users(0, 3);
    let few = writ(&root, &["plan", "--format", "json"]);
    add_users(3, 30);
    let many = writ(&root, &["plan", "--format", "json"]);
    assert_eq!(
        observe_requests(&text(&few)),
        observe_requests(&text(&many)),
        "as many requests for 30 users as for 3: {}",
        text(&many)
    );
    let plan: serde_json::Value = serde_json::from_slice(&many.stdout).unwrap();
    let unmanaged = plan["unmanaged"].as_array().unwrap();
    let keys: Vec<&serde_json::Value> = unmanaged
        .iter()
        .filter(|u| u["kind"] == "aws_access_key")
        .collect();
    assert_eq!(keys.len(), 30, "{plan:#}");
    assert_eq!(
        unmanaged.iter().filter(|u| u["kind"] == "aws_user").count(),
        30
    );
    // Known by user and slot: the report does not give a key's ID, and
    // no finding needs it (no key is older than a maximum key age).
    let key = keys
        .iter()
        .find(|k| k["address"] == "aws.prod/access-key/human-07/1")
        .unwrap_or_else(|| panic!("{keys:#?}"));
    assert_eq!(key["name"], "key 1 of `human-07`");
    let detail = key["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("Active key of user `human-07`, ") && detail.ends_with(", never used"),
        "{key:#}"
    );

    // A report still being made is waited for, within the retry budget.
    proxy.answer(
        "GetCredentialReport",
        2,
        "404 Not Found",
        "ReportInProgress",
    );
    let waited = writ(&root, &["plan", "--format", "json"]);
    assert_eq!(waited.status.code(), Some(0), "{}", text(&waited));
    assert_eq!(
        observe_requests(&text(&waited)),
        observe_requests(&text(&many)) + 2,
        "{}",
        text(&waited)
    );
    assert!(String::from_utf8_lossy(&waited.stdout).contains("aws.prod/access-key/human-07/1"));

    // Keys older than the maximum key age are findings, named by their
    // IDs: one more request per user holding one, and only for those.
    let toml = std::fs::read_to_string(root.join("writ.toml")).unwrap();
    std::fs::write(
        root.join("writ.toml"),
        format!("{toml}max_key_age = \"30d\"\n"),
    )
    .unwrap();
    let later = writ_with(
        &root,
        &["plan", "--format", "json"],
        // Far enough ahead that keys made today are past the age.
        &[("WRIT_TODAY", "2099-01-01")],
    );
    let plan: serde_json::Value = serde_json::from_slice(&later.stdout).unwrap();
    let stale: Vec<&serde_json::Value> = plan["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "aws_access_key")
        .collect();
    assert_eq!(stale.len(), 30);
    for key in &stale {
        assert_eq!(key["stale"], true, "{key:#}");
        let address = key["address"].as_str().unwrap();
        let id = address.strip_prefix("aws.prod/access-key/").unwrap();
        assert!(!id.contains('/') && id == key["name"], "by its ID: {key:#}");
    }
    assert_eq!(
        observe_requests(&text(&later)),
        observe_requests(&text(&many)) + 30,
        "{}",
        text(&later)
    );
    std::fs::write(root.join("writ.toml"), &toml).unwrap();

    // No report to be had: user by user, each key by its ID.
    proxy.refuse_action(Some("GenerateCredentialReport"));
    let listed = writ(&root, &["plan", "--format", "json"]);
    assert_eq!(listed.status.code(), Some(0), "{}", text(&listed));
    let plan: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let ids: Vec<&str> = plan["unmanaged"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["kind"] == "aws_access_key")
        .map(|u| u["address"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 30);
    assert!(ids.iter().all(|a| !a.contains("/human-")), "by ID: {ids:?}");
    assert!(observe_requests(&text(&listed)) > observe_requests(&text(&many)) + 30);
}

const BUILDER: &str = r#"
agent builder {
  owner = "team-platform"
  ttl = 1h
  runs_on aws.prod service "codebuild.amazonaws.com"
  aws.prod allow sqs:* on "*"
  aws.prod allow dynamodb:DescribeTable on "*"
  aws.prod allow s3:GetObject on "arn:aws:s3:::acme-builds/*"
  aws.prod allow ec2:DescribeInstances on "*"
  aws.prod allow sns:ListTopics on "*"
}
"#;

/// IAM's last-accessed data, as the access advisor fake gives it for the
/// `builder` role: SQS tracked action by action (one used in the window,
/// one before it); DynamoDB never attempted; S3 attempted, but its tracked
/// actions leave out `GetObject`; EC2 attempted, with no action tracked;
/// SNS not listed (the live role's policies do not allow it).
fn builder_report() -> Vec<crate::moto::advisor::Service> {
    use crate::moto::advisor::Service;
    let sqs: Vec<(String, Option<&'static str>)> = writ_compiler::facts::aws::catalogue()
        .expand("sqs:*")
        .iter()
        .map(|(_, action)| {
            let last = match action.name.as_str() {
                "ListQueues" => Some("2026-11-20T08:00:00Z"),
                "GetQueueUrl" => Some("2026-03-01T08:00:00Z"),
                _ => None,
            };
            (format!("sqs:{}", action.name), last)
        })
        .collect();
    assert!(sqs.len() > 5, "the catalogue knows SQS");
    vec![
        Service {
            namespace: "sqs",
            last: Some("2026-11-20T08:00:00Z"),
            actions: Some(sqs),
        },
        Service {
            namespace: "dynamodb",
            last: None,
            actions: Some(vec![("dynamodb:DescribeTable".to_string(), None)]),
        },
        Service {
            namespace: "s3",
            last: Some("2026-11-25T08:00:00Z"),
            actions: Some(vec![("s3:CreateBucket".to_string(), None)]),
        },
        Service {
            namespace: "ec2",
            last: Some("2026-11-26T08:00:00Z"),
            actions: None,
        },
    ]
}

#[test]
fn iam_last_accessed_data_is_read_live_and_tightens_only_what_it_can_judge() {
    use crate::moto::advisor::{Outcome, Script};
    let Some(moto) = Moto::start() else { return };
    let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
    proxy.heal();
    let root = project_at(
        "last-accessed",
        &proxy.endpoint(),
        &format!("{PROVIDERS}{BUILDER}{REPORTER}"),
    );
    let builder = "arn:aws:iam::123456789012:role/writ/acme/builder";
    // Two polls in progress before the report is done; then pages of two
    // services, one poll throttled on the way.
    proxy.advisor.lock().unwrap().script(
        builder,
        Script {
            in_progress: 2,
            outcome: Outcome::Completed(builder_report()),
        },
    );
    // Not applied yet: no role, so nothing of IAM's to judge by.
    let early = writ(&root, &["usage", "--live", "--format", "json"]);
    let shown = text(&early);
    assert_eq!(early.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains("no role yet for `builder`, `reporter`"),
        "{shown}"
    );
    apply(&root);
    proxy.answer(
        "GetServiceLastAccessedDetails",
        1,
        "400 Bad Request",
        "Throttling",
    );
    let output = writ(&root, &["usage", "--live", "--format", "json"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect(&stdout);
    crate::schemas::assert_valid("docs/usage.schema.json", &report, "a report with --live");
    let agent = &report["agents"][0];
    assert_eq!(agent["agent"], "builder");
    let read = &agent["last_accessed"][0];
    assert_eq!(read["provider"], "aws.prod");
    assert_eq!(read["role"], builder);
    // Every page was read: four services, two a page.
    assert_eq!(read["services"].as_array().map(Vec::len), Some(4), "{read}");
    assert_eq!(
        agent["grants"][0]["attempted"],
        serde_json::json!({"sqs:ListQueues": "2026-11-20T08:00:00Z"})
    );
    // The reporter's role had no script: IAM lists no service it used.
    assert_eq!(
        report["agents"][1]["last_accessed"][0]["services"],
        serde_json::json!([])
    );
    let plain = text(&writ(&root, &["usage", "--live"]));
    assert!(
        plain.contains(&format!("IAM's last-accessed data of {builder} (made 2026-11-28T10:00:05Z): 4 services its policies allow"))
            && plain.contains("no use in the logs: aws.prod allow sqs:* on \"*\"")
            && plain.contains("attempted, says IAM: sqs:ListQueues (last 2026-11-20T08:00:00Z)")
            && plain.contains("no use recorded: aws.prod allow dynamodb:DescribeTable"),
        "{plain}"
    );
    {
        let advisor = proxy.advisor.lock().unwrap();
        // Two runs, each polling the builder's job twice in progress and
        // then reading its two pages, and the reporter's page once.
        assert_eq!(advisor.polled, 2 * (2 + 2 + 1));
        assert_eq!(advisor.generated, 4);
    }

    // `tighten` narrows `sqs:*` to what was attempted and removes the
    // DynamoDB grant; S3 (its `GetObject` is not tracked), EC2 (no action
    // tracked) and SNS (not in IAM's list) it cannot judge, and leaves.
    let diff = writ(&root, &["tighten", "--live"]);
    let shown = text(&diff);
    assert_eq!(diff.status.code(), Some(0), "{shown}");
    let stdout = String::from_utf8_lossy(&diff.stdout).to_string();
    assert!(
        stdout.contains("-  aws.prod allow sqs:* on \"*\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("+  aws.prod allow sqs:ListQueues on \"*\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("-  aws.prod allow dynamodb:DescribeTable"),
        "{stdout}"
    );
    for kept in ["s3:GetObject", "ec2:DescribeInstances", "sns:ListTopics"] {
        assert!(
            !stdout.contains(&format!("-  aws.prod allow {kept}")),
            "{stdout}"
        );
    }
    // The reporter's grant: its service is not among those IAM lists for
    // its role, so nothing is judged.
    assert!(!stdout.contains("s3:PutObject"), "{stdout}");
}

#[test]
fn a_failed_last_accessed_job_fails_the_command_with_iams_reason() {
    use crate::moto::advisor::{Outcome, Script};
    let Some(moto) = Moto::start() else { return };
    let proxy = crate::moto::proxy::FaultyProxy::start(moto.port);
    proxy.heal();
    let root = project_at(
        "last-accessed-failed",
        &proxy.endpoint(),
        &format!("{PROVIDERS}{REPORTER}"),
    );
    apply(&root);
    proxy.advisor.lock().unwrap().script(
        "arn:aws:iam::123456789012:role/writ/acme/reporter",
        Script {
            in_progress: 1,
            outcome: Outcome::Failed {
                code: "ServiceFailure",
                message: "The job could not be completed.",
            },
        },
    );
    for command in [&["usage", "--live"][..], &["tighten", "--live"][..]] {
        let output = writ(&root, command);
        let shown = text(&output);
        assert_eq!(output.status.code(), Some(1), "{shown}");
        assert!(
            shown.contains("IAM's last-accessed report for `arn:aws:iam::123456789012:role/writ/acme/reporter`")
                && shown.contains("failed: ServiceFailure: The job could not be completed."),
            "{shown}"
        );
    }
    // Neither reading logs nor `--live`: a usage error, which fails.
    let output = writ(&root, &["usage"]);
    let shown = text(&output);
    assert_eq!(output.status.code(), Some(1), "{shown}");
    assert!(shown.contains("--from <FILE>"), "{shown}");
}

/// An IAM user's own access is read with the account: its inline
/// policies, attached managed policies and groups, for the access graph.
#[test]
fn an_iam_users_own_policies_and_groups_are_observed() {
    let Some(moto) = Moto::start() else { return };
    moto.iam(
        "CreateUser",
        &[("UserName", "build-bot"), ("Path", "/machines/")],
    );
    moto.iam(
        "PutUserPolicy",
        &[
            ("UserName", "build-bot"),
            ("PolicyName", "artifacts"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::acme-artifacts/*"}]}"#,
            ),
        ],
    );
    moto.iam("CreateGroup", &[("GroupName", "builders")]);
    moto.iam(
        "AddUserToGroup",
        &[("GroupName", "builders"), ("UserName", "build-bot")],
    );
    moto.iam(
        "CreatePolicy",
        &[
            ("PolicyName", "ci-read"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#,
            ),
        ],
    );
    moto.iam(
        "AttachUserPolicy",
        &[
            ("UserName", "build-bot"),
            ("PolicyArn", "arn:aws:iam::123456789012:policy/ci-read"),
        ],
    );
    let root = project("user-access", &moto, PROVIDERS);
    let file = root.join("recorded.json");
    let output = writ(&root, &["snapshot", "--out", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let recorded: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let user = recorded["providers"]["aws.prod"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "aws.prod/user/build-bot")
        .expect("the user");
    let attributes = &user["attributes"];
    assert_eq!(
        attributes["policies"]["artifacts"]["Statement"][0]["Action"], "s3:PutObject",
        "{attributes}"
    );
    assert_eq!(attributes["groups"], serde_json::json!(["builders"]));
    assert_eq!(
        attributes["attached_policies"],
        serde_json::json!(["arn:aws:iam::123456789012:policy/ci-read"])
    );
}
