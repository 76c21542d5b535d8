//! The order in which a plan's changes are carried out.

use super::{Change, ChangeKind, Plan};
use crate::resource::ResourceKind;
use serde_json::Value;
use std::borrow::Cow;

/// The `Sid` of the statement a role's trust holds while it moves from one
/// set of principals to another (see [`apply_order`]): nobody new may
/// assume the role until its new policies are written.
pub const HOLD_TRUST_SID: &str = "WritHeldDuringApply";

/// The order in which a plan's changes are carried out: first every change
/// that gives nobody anything (deletions, narrowing updates), then every
/// change that does; within each group, nothing is referred to before it
/// exists or deleted while still referred to: managed policies (boundaries)
/// first; then roles, a parent before the delegates whose trust names it;
/// then inline policies; then role updates; then deletions: inline
/// policies, roles, and managed policies last of all. In a cluster: service
/// accounts, roles, then bindings; deleted in reverse.
///
/// One case no order of the plan's own changes makes safe: a role whose
/// trust moves (it gains principals and loses others) while its policies
/// widen. Trust first, the new principals would hold the old policies;
/// policies first, the old principals the new ones. So before anything
/// else its trust is held to the statements both versions share (or, with
/// none, closed to everyone), an extra step the plan does not list; the
/// new trust is written after the new policies.
pub fn apply_order(plan: &Plan) -> Vec<Cow<'_, Change>> {
    let mut steps: Vec<Cow<'_, Change>> = plan
        .changes
        .iter()
        .filter(|role| super::delta::trust_moves(role))
        .filter(|role| {
            let policies = format!("{}/policy/", role.address);
            plan.changes.iter().any(|policy| {
                policy.kind == ResourceKind::AwsRolePolicy
                    && policy.address.starts_with(&policies)
                    && super::delta::widens(policy)
            })
        })
        .filter_map(hold_trust)
        .map(Cow::Owned)
        .collect();
    steps.extend(ordered(plan).into_iter().map(Cow::Borrowed));
    steps
}

/// The step that holds a role's trust to what its old and new trust
/// policies share, from the role as it is: `None` when the plan does not
/// say what the role is now.
fn hold_trust(role: &Change) -> Option<Change> {
    let statements = |side: Option<&std::collections::BTreeMap<String, Value>>| -> Vec<Value> {
        side.and_then(|a| a.get("assume_role_policy"))
            .and_then(|t| t.get("Statement"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let before = role.before.as_ref()?;
    let (old, new) = (statements(Some(before)), statements(role.after.as_ref()));
    // What both share, and every deny it had (a deny only takes away).
    let mut held: Vec<Value> = old
        .iter()
        .filter(|s| new.contains(s) || s["Effect"] == "Deny")
        .cloned()
        .collect();
    if !held.iter().any(|s| s["Effect"] == "Allow") {
        // The revocation's deny, under a name of its own: a held role is
        // not a revoked one.
        let mut closed = crate::ownership::aws::revoke_trust_statement();
        closed["Sid"] = Value::String(HOLD_TRUST_SID.to_string());
        held.push(closed);
    }
    let mut after = before.clone();
    let trust = after.get_mut("assume_role_policy")?;
    trust["Statement"] = Value::Array(held);
    Some(Change {
        after: Some(after),
        actions: vec![super::Action::Update],
        changed_paths: vec!["assume_role_policy".to_string()],
        replace_because: None,
        reason: "holds the trust to what its old and new versions share until the new policies are written".to_string(),
        ..role.clone()
    })
}

/// The plan's own changes in order (see [`apply_order`]).
fn ordered(plan: &Plan) -> Vec<&Change> {
    // What takes access away goes first (deletions and narrowing updates,
    // in dependency order), then what gives access: an apply that stops
    // partway has then removed what it meant to, and not yet added.
    // Managed policies (boundaries) are deleted last all the same: a role
    // may still name one until it is updated.
    // Adoptions before all else: the changes to an adopted role's
    // policies need it to be writ's. Before them, the boundaries they may
    // name (a boundary made gives nobody anything).
    let adopts = plan
        .changes
        .iter()
        .any(|c| c.kind_of_change() == ChangeKind::Adopt);
    let (front, others): (Vec<&Change>, Vec<&Change>) = plan.changes.iter().partition(|c| {
        c.kind_of_change() == ChangeKind::Adopt
            || (adopts
                && c.kind == ResourceKind::AwsManagedPolicy
                && c.kind_of_change() == ChangeKind::Create)
    });
    let mut ordered: Vec<&Change> = front;
    ordered.sort_by_key(|c| (c.kind_of_change() == ChangeKind::Adopt, c.address.clone()));
    let (first, rest): (Vec<&Change>, Vec<&Change>) = others.into_iter().partition(|c| {
        let boundary_gone =
            c.kind == ResourceKind::AwsManagedPolicy && c.kind_of_change() == ChangeKind::Delete;
        !boundary_gone && !super::delta::widens(c)
    });
    ordered.extend(order_within(first));
    ordered.extend(order_within(rest));
    ordered
}

/// Does the change of a GCP service account write only the digest in its
/// record?
fn records_digest_only(change: &Change) -> bool {
    let (Some(before), Some(after)) = (&change.before, &change.after) else {
        return false;
    };
    let text = |side: &std::collections::BTreeMap<String, serde_json::Value>| {
        side.get("description")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let others = |side: &std::collections::BTreeMap<String, serde_json::Value>| {
        side.iter()
            .filter(|(k, _)| *k != "description")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    others(before) == others(after)
        && crate::ownership::gcp::same_but_digest(&text(before), &text(after))
}

/// [`apply_order`] within one group of changes.
fn order_within(changes: Vec<&Change>) -> Vec<&Change> {
    let phase = |change: &Change| -> u8 {
        match (change.kind, change.kind_of_change()) {
            (ResourceKind::AwsManagedPolicy, ChangeKind::Delete) => 7,
            (ResourceKind::AwsManagedPolicy, _) => 0,
            (ResourceKind::AwsRole, ChangeKind::Create | ChangeKind::Replace) => 1,
            (ResourceKind::AwsRolePolicy, ChangeKind::Delete) => 5,
            (ResourceKind::AwsRolePolicy, _) => 2,
            (ResourceKind::AwsRole, ChangeKind::Update) => 3,
            (ResourceKind::AwsRole, ChangeKind::Delete) => 6,
            // Kubernetes: what a binding names exists before it, and is
            // deleted after it (bindings, then roles, then service accounts).
            (ResourceKind::KubernetesServiceAccount, ChangeKind::Delete) => 7,
            (ResourceKind::KubernetesServiceAccount, _) => 0,
            (
                ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole,
                ChangeKind::Delete,
            ) => 6,
            (ResourceKind::KubernetesRole | ResourceKind::KubernetesClusterRole, _) => 2,
            (
                ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding,
                ChangeKind::Delete,
            ) => 5,
            (
                ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding,
                _,
            ) => 3,
            // GCP: a service account exists before a binding names it, and
            // is deleted after its bindings are gone.
            (ResourceKind::GcpServiceAccount, ChangeKind::Delete) => 7,
            // Only its record's digest: written once the bindings it counts
            // are, so that an apply cut short leaves no record of what was
            // not done (which the next plan would take for drift).
            (ResourceKind::GcpServiceAccount, ChangeKind::Update)
                if records_digest_only(change) =>
            {
                5
            }
            (ResourceKind::GcpServiceAccount, _) => 0,
            // A pool before its providers, and both before a binding names
            // the pool; deleted after.
            (ResourceKind::GcpWorkloadIdentityPool, ChangeKind::Delete) => 7,
            (ResourceKind::GcpWorkloadIdentityPool, _) => 0,
            (ResourceKind::GcpWorkloadIdentityPoolProvider, ChangeKind::Delete) => 6,
            (ResourceKind::GcpWorkloadIdentityPoolProvider, _) => 1,
            // Governed GitHub settings last: a token that may not set them
            // holds nothing back.
            (kind, _) if kind.is_governed() => 8,
            _ => 4,
        }
    };
    let mut ordered: Vec<&Change> = changes;
    ordered.sort_by_key(|c| (phase(c), c.address.clone()));
    // Among new roles, those whose trust names another new role go after it.
    let new_roles: Vec<&Change> = ordered.iter().copied().filter(|c| phase(c) == 1).collect();
    // A role's ARN ends in `:role<path><name>`; a trust document that
    // contains that, closed by a quote, names the role.
    let arn_suffix = |change: &Change| -> Option<String> {
        let after = change.after.as_ref()?;
        let path = after.get("path")?.as_str()?;
        let name = after.get("name")?.as_str()?;
        Some(format!(":role{path}{name}\""))
    };
    let trusted_roles = |change: &Change| -> Vec<String> {
        let Some(document) = change
            .after
            .as_ref()
            .and_then(|a| a.get("assume_role_policy"))
        else {
            return Vec::new();
        };
        let text = document.to_string();
        new_roles
            .iter()
            .filter(|other| other.address != change.address)
            .filter(|other| arn_suffix(other).is_some_and(|suffix| text.contains(&suffix)))
            .map(|other| other.address.clone())
            .collect()
    };
    let mut placed: Vec<&Change> = Vec::new();
    let mut waiting: Vec<&Change> = new_roles.clone();
    while !waiting.is_empty() {
        let before = waiting.len();
        let mut next = Vec::new();
        for change in waiting {
            let ready = trusted_roles(change)
                .iter()
                .all(|needed| placed.iter().any(|p| &p.address == needed));
            if ready {
                placed.push(change);
            } else {
                next.push(change);
            }
        }
        if next.len() == before {
            // A cycle cannot come out of lowering; keep the rest in order.
            placed.extend(next);
            break;
        }
        waiting = next;
    }
    let mut result: Vec<&Change> = ordered.iter().copied().filter(|c| phase(c) == 0).collect();
    result.extend(placed);
    result.extend(ordered.iter().copied().filter(|c| phase(c) > 1));
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{plan_of_changes, Action};
    use serde_json::{json, Value};

    fn change(
        address: &str,
        kind: ResourceKind,
        actions: Vec<Action>,
        after: Option<Value>,
    ) -> Change {
        Change {
            address: address.to_string(),
            provider: "aws.prod".to_string(),
            kind,
            agent: None,
            actions,
            before: None,
            after: after.map(|a| serde_json::from_value(a).unwrap()),
            changed_paths: Vec::new(),
            replace_because: None,
            reason: String::new(),
        }
    }

    #[test]
    fn what_takes_access_away_comes_first_then_boundaries_and_parents() {
        let role = |name: &str, trusts: Option<&str>| {
            let trust = trusts.map_or(json!({}), |parent| {
                json!({"Statement": [{"Principal": {"AWS": [format!("arn:aws:iam::1:role/writ/p/{parent}")]}}]})
            });
            change(
                &format!("aws.prod/role/{name}"),
                ResourceKind::AwsRole,
                vec![Action::Create],
                Some(json!({"name": name, "path": "/writ/p/", "assume_role_policy": trust})),
            )
        };
        let plan = plan_of_changes(vec![
            role("a_child", Some("z_parent")),
            role("z_parent", None),
            change(
                "aws.prod/role/z_parent/policy/writ-access",
                ResourceKind::AwsRolePolicy,
                vec![Action::Create],
                Some(json!({})),
            ),
            change(
                "aws.prod/policy/z_parent-delegates",
                ResourceKind::AwsManagedPolicy,
                vec![Action::Create],
                Some(json!({})),
            ),
            change(
                "aws.prod/policy/old-delegates",
                ResourceKind::AwsManagedPolicy,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/old",
                ResourceKind::AwsRole,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/old/policy/writ-access",
                ResourceKind::AwsRolePolicy,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/kept",
                ResourceKind::AwsRole,
                vec![Action::Update],
                Some(json!({})),
            ),
        ]);
        let steps = apply_order(&plan);
        let order: Vec<&str> = steps.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            order,
            vec![
                // Taking away: an update that gains nothing, deletions.
                "aws.prod/role/kept",
                "aws.prod/role/old/policy/writ-access",
                "aws.prod/role/old",
                // Giving: boundaries, parents before children, policies.
                "aws.prod/policy/z_parent-delegates",
                "aws.prod/role/z_parent",
                "aws.prod/role/a_child",
                "aws.prod/role/z_parent/policy/writ-access",
                // A boundary goes once nothing can name it.
                "aws.prod/policy/old-delegates",
            ]
        );
    }

    #[test]
    fn an_adoption_goes_first_after_the_boundary_it_names() {
        let plan = plan_of_changes(vec![
            change(
                "aws.prod/role/legacy/policy/deploy",
                ResourceKind::AwsRolePolicy,
                vec![Action::Delete],
                None,
            ),
            change(
                "aws.prod/role/legacy/policy/writ-access",
                ResourceKind::AwsRolePolicy,
                vec![Action::Create],
                Some(json!({})),
            ),
            change(
                "aws.prod/role/legacy",
                ResourceKind::AwsRole,
                vec![Action::Adopt],
                Some(json!({"name": "legacy", "path": "/ci/"})),
            ),
            change(
                "aws.prod/policy/parent-delegates",
                ResourceKind::AwsManagedPolicy,
                vec![Action::Create],
                Some(json!({})),
            ),
        ]);
        let order: Vec<String> = apply_order(&plan)
            .iter()
            .map(|c| c.address.clone())
            .collect();
        assert_eq!(
            order,
            [
                "aws.prod/policy/parent-delegates",
                "aws.prod/role/legacy",
                "aws.prod/role/legacy/policy/deploy",
                "aws.prod/role/legacy/policy/writ-access",
            ]
        );
    }

    #[test]
    fn a_narrowing_update_goes_before_a_widening_one() {
        let policy = |address: &str, before: &str, after: &str| Change {
            before: Some(
                serde_json::from_value(json!({"policy": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": before}]}}))
                .unwrap(),
            ),
            ..change(
                address,
                ResourceKind::AwsRolePolicy,
                vec![Action::Update],
                Some(json!({"policy": {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": after}]}})),
            )
        };
        let plan = plan_of_changes(vec![
            policy(
                "aws.prod/role/a/policy/writ-access",
                "arn:aws:s3:::b/x/*",
                "arn:aws:s3:::b/*",
            ),
            policy(
                "aws.prod/role/z/policy/writ-access",
                "arn:aws:s3:::b/*",
                "arn:aws:s3:::b/x/*",
            ),
        ]);
        let steps = apply_order(&plan);
        let order: Vec<&str> = steps.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            order,
            [
                "aws.prod/role/z/policy/writ-access",
                "aws.prod/role/a/policy/writ-access"
            ]
        );
    }
}

#[cfg(test)]
mod hold_tests {
    use super::*;
    use crate::plan::{plan_of_changes, Action};
    use serde_json::json;

    fn attributes(value: Value) -> Option<std::collections::BTreeMap<String, Value>> {
        Some(serde_json::from_value(value).unwrap())
    }

    fn from(sub: &str) -> Value {
        json!({"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"token.actions.githubusercontent.com:sub": sub}}})
    }

    fn role(before: Vec<Value>, after: Vec<Value>) -> Change {
        let trust = |statements: Vec<Value>| {
            attributes(json!({"name": "bot", "path": "/writ/p/",
                "assume_role_policy": {"Version": "2012-10-17", "Statement": statements}}))
        };
        Change {
            address: "aws.prod/role/bot".into(),
            provider: "aws.prod".into(),
            kind: ResourceKind::AwsRole,
            agent: Some("bot".into()),
            actions: vec![Action::Update],
            before: trust(before),
            after: trust(after),
            changed_paths: vec!["assume_role_policy".into()],
            replace_because: None,
            reason: String::new(),
        }
    }

    fn policy(resource: (&str, &str)) -> Change {
        let document = |r: &str| {
            attributes(json!({"policy": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": r}]}}))
        };
        Change {
            address: "aws.prod/role/bot/policy/writ-access".into(),
            kind: ResourceKind::AwsRolePolicy,
            before: document(resource.0),
            after: document(resource.1),
            changed_paths: vec!["policy".into()],
            ..role(vec![], vec![])
        }
    }

    fn statements(change: &Change) -> Value {
        change.after.as_ref().unwrap()["assume_role_policy"]["Statement"].clone()
    }

    #[test]
    fn a_trust_that_moves_while_policies_widen_is_held_to_what_both_share_first() {
        let (main, release, tags) = (
            from("repo:a/b:ref:refs/heads/main"),
            from("repo:a/b:ref:refs/heads/release"),
            from("repo:a/b:ref:refs/tags/v1"),
        );
        let wider = policy(("arn:aws:s3:::d/r/*", "arn:aws:s3:::d/*"));
        // Moved from `main` to `release`: nothing shared, so closed.
        let plan = plan_of_changes(vec![
            role(vec![main.clone()], vec![release.clone()]),
            wider.clone(),
        ]);
        let order = apply_order(&plan);
        let addresses: Vec<&str> = order.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            addresses,
            [
                "aws.prod/role/bot",
                "aws.prod/role/bot/policy/writ-access",
                "aws.prod/role/bot"
            ]
        );
        assert!(matches!(order[0], Cow::Owned(_)));
        let held = statements(&order[0]);
        assert_eq!(held.as_array().unwrap().len(), 1, "{held}");
        assert_eq!(held[0]["Sid"], HOLD_TRUST_SID);
        assert_eq!(held[0]["Effect"], "Deny");
        assert_eq!(statements(&order[2]), json!([release.clone()]));
        // A statement both versions have stays open throughout.
        let plan = plan_of_changes(vec![
            role(
                vec![tags.clone(), main.clone()],
                vec![tags.clone(), release.clone()],
            ),
            wider.clone(),
        ]);
        assert_eq!(statements(&apply_order(&plan)[0]), json!([tags.clone()]));
        // No hold when the trust only narrows or only widens, or when no
        // policy widens: the order alone is safe then.
        for changes in [
            vec![
                role(vec![main.clone(), release.clone()], vec![main.clone()]),
                wider.clone(),
            ],
            vec![
                role(vec![main.clone()], vec![main.clone(), release.clone()]),
                wider.clone(),
            ],
            vec![
                role(vec![main.clone()], vec![release.clone()]),
                policy(("arn:aws:s3:::d/*", "arn:aws:s3:::d/r/*")),
            ],
        ] {
            let plan = plan_of_changes(changes);
            assert!(
                apply_order(&plan)
                    .iter()
                    .all(|c| matches!(c, Cow::Borrowed(_))),
                "{plan:#?}"
            );
        }
    }
}

#[cfg(test)]
mod kubernetes_order_tests {
    use super::*;
    use crate::plan::{plan_of_changes, Action};

    #[test]
    fn bindings_come_after_what_they_name_and_go_before_it() {
        let change = |address: &str, kind: ResourceKind, action: Action| Change {
            address: address.to_string(),
            provider: "kubernetes.prod".to_string(),
            kind,
            agent: None,
            actions: vec![action],
            before: None,
            after: None,
            changed_paths: Vec::new(),
            replace_because: None,
            reason: String::new(),
        };
        let plan = plan_of_changes(vec![
            change(
                "k/a-binding",
                ResourceKind::KubernetesRoleBinding,
                Action::Create,
            ),
            change("k/b-role", ResourceKind::KubernetesRole, Action::Create),
            change(
                "k/c-account",
                ResourceKind::KubernetesServiceAccount,
                Action::Create,
            ),
            change(
                "k/d-account",
                ResourceKind::KubernetesServiceAccount,
                Action::Delete,
            ),
            change(
                "k/e-role",
                ResourceKind::KubernetesClusterRole,
                Action::Delete,
            ),
            change(
                "k/f-binding",
                ResourceKind::KubernetesClusterRoleBinding,
                Action::Delete,
            ),
        ]);
        let steps = apply_order(&plan);
        let order: Vec<&str> = steps.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            order,
            vec![
                // Deleted first (what names comes before what is named)...
                "k/f-binding",
                "k/e-role",
                "k/d-account",
                // ...then made (what is named before what names it).
                "k/c-account",
                "k/b-role",
                "k/a-binding",
            ]
        );
    }
}
