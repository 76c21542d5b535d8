//! The permission delta: what each agent may do before and after the plan,
//! as (provider, action, resource, condition) sets; gains and losses are
//! their differences.

use super::aws::role_of;
use super::join::Row;
use super::{Access, AgentDelta, Claim, Term};
use crate::ownership::agent_name;
use crate::pattern;
use crate::resource::{Resource, ResourceKind};
use std::collections::{BTreeMap, BTreeSet};

/// What each agent's inline access policies allow, as (provider, action,
/// resource, condition) sets; gains and losses are their differences.
pub(super) fn permission_delta(rows: &[Row], conflicted: &BTreeSet<&str>) -> Vec<AgentDelta> {
    // What grants access: AWS inline policies and the managed policies
    // attached to a role, Kubernetes Roles.
    let grants_access = |r: &Resource| {
        matches!(
            r.kind,
            ResourceKind::AwsRolePolicy
                | ResourceKind::KubernetesRole
                | ResourceKind::KubernetesClusterRole
        ) || r.kind == ResourceKind::AwsRole
    };
    let wanted = |row: &Row| -> bool {
        row.desired.is_some_and(|r| {
            grants_access(r) && (conflicted.is_empty() || !conflicted.contains(role_of(&r.address)))
        })
    };
    // Only agents with a policy that is new, gone or different can gain or
    // lose access; the rest (nearly all, in a large estate) are skipped.
    let mut touched: BTreeSet<&str> = BTreeSet::new();
    for row in rows {
        if let Some(observed) = row.owned().or(row.adopting()).filter(|r| grants_access(r)) {
            if !row.identical {
                touched.extend(
                    agent_name(observed)
                        .or_else(|| row.adopting().and(row.desired?.agent.as_deref())),
                );
            }
        }
        if wanted(row) && row.owned().is_none() {
            touched.extend(row.desired.and_then(|r| r.agent.as_deref()));
        }
    }
    let mut before: BTreeMap<String, BTreeSet<Claim>> = BTreeMap::new();
    let mut after: BTreeMap<String, BTreeSet<Claim>> = BTreeMap::new();
    gcp_claims(rows, &mut before, &mut after);
    if touched.is_empty() && before.is_empty() && after.is_empty() {
        return Vec::new();
    }
    // The account's own managed policies, read with their documents: what
    // one attached to a role allows, where known.
    let documents: BTreeMap<&str, &Resource> = rows
        .iter()
        .filter_map(|row| row.observed)
        .filter(|r| r.kind == ResourceKind::AwsManagedPolicy)
        .filter(|r| r.attribute("policy").is_some_and(|p| !p.is_null()))
        .filter_map(|r| Some((r.string("arn")?, r)))
        .collect();
    let observed_allows = |resource: &Resource| -> Vec<Claim> {
        if resource.kind != ResourceKind::AwsRole {
            return allows(resource);
        }
        let mut out = super::aws::trusts(resource);
        for access in super::aws::attached(resource) {
            match documents.get(access.resource.as_str()) {
                Some(policy) => out.extend(super::aws::allows(policy)),
                None => out.push(Claim::from(access)),
            }
        }
        out
    };
    for row in rows {
        if let Some(observed) = row.owned().or(row.adopting()).filter(|r| grants_access(r)) {
            // An adopted role has no marks yet: its agent is the source's.
            let agent =
                agent_name(observed).or_else(|| row.adopting().and(row.desired?.agent.as_deref()));
            if let Some(agent) = agent.filter(|a| touched.contains(a)) {
                before
                    .entry(agent.to_string())
                    .or_default()
                    .extend(observed_allows(observed));
            }
        }
        if let Some(resource) = row.desired.filter(|_| wanted(row)) {
            if let Some(agent) = resource.agent.as_deref().filter(|a| touched.contains(a)) {
                after
                    .entry(agent.to_string())
                    .or_default()
                    .extend(allows(resource));
            }
        }
    }
    let agents: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let empty = BTreeSet::new();
    agents
        .into_iter()
        .filter_map(|agent| {
            let old = before.get(agent).unwrap_or(&empty);
            let new = after.get(agent).unwrap_or(&empty);
            let (gains, losses) = compare(old, new);
            (!gains.is_empty() || !losses.is_empty()).then(|| AgentDelta {
                agent: agent.clone(),
                gains,
                losses,
            })
        })
        .collect()
}

/// What GCP policies that change give each agent, before and after: a
/// member that is an agent's service account holds the binding's role on
/// the policy's resource (under its condition); a workload identity
/// principal on an agent's own account may become the agent.
fn gcp_claims(
    rows: &[Row],
    before: &mut BTreeMap<String, BTreeSet<Claim>>,
    after: &mut BTreeMap<String, BTreeSet<Claim>>,
) {
    let changed: Vec<&Row> = rows
        .iter()
        .filter(|row| !row.identical)
        .filter(|row| {
            row.desired
                .or(row.observed)
                .is_some_and(|r| r.kind == ResourceKind::GcpIamPolicy)
        })
        .collect();
    let pools_changed = rows.iter().any(|row| {
        !row.identical
            && row
                .desired
                .or(row.observed)
                .is_some_and(|r| r.kind == ResourceKind::GcpWorkloadIdentityPoolProvider)
    });
    if changed.is_empty() && !pools_changed {
        return;
    }
    // Whose each service account is.
    let mut agents: BTreeMap<String, String> = BTreeMap::new();
    for row in rows {
        for account in [row.desired, row.owned()].into_iter().flatten() {
            if account.kind != ResourceKind::GcpServiceAccount {
                continue;
            }
            let agent = account.agent.as_deref().or_else(|| agent_name(account));
            if let (Some(email), Some(agent)) = (account.string("email"), agent) {
                agents.insert(email.to_string(), agent.to_string());
            }
        }
    }
    let claims = |policy: &Resource, into: &mut BTreeMap<String, BTreeSet<Claim>>| {
        let on = policy.string("resource").unwrap_or_default();
        let owner = on
            .split_once("/serviceAccounts/")
            .and_then(|(_, email)| agents.get(email));
        for binding in policy
            .attribute("bindings")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
        {
            let role = binding["role"].as_str().unwrap_or_default();
            let condition = binding["condition"]["expression"]
                .as_str()
                .map(str::to_string);
            for member in binding["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.as_str())
            {
                let agent_of = member
                    .strip_prefix("serviceAccount:")
                    .and_then(|email| agents.get(email));
                let (agent, action, resource) = match agent_of {
                    Some(agent) => (agent, role.to_string(), on.to_string()),
                    // Someone else on an agent's own account: a workload
                    // identity principal, a GKE service account, a parent.
                    None => match owner {
                        Some(agent) => (
                            agent,
                            format!("become the agent ({role})"),
                            member.to_string(),
                        ),
                        None => continue,
                    },
                };
                into.entry(agent.clone())
                    .or_default()
                    .insert(Claim::from(Access {
                        provider: policy.provider.clone(),
                        action,
                        resource,
                        condition: condition.clone(),
                    }));
            }
        }
    };
    for row in changed {
        if let Some(observed) = row.owned().or(row.adopting()) {
            claims(observed, before);
        }
        if let Some(desired) = row.desired {
            claims(desired, after);
        }
    }
    // Writ's GitHub pool providers: which jobs may become each agent (its
    // attribute's mapping, under the provider's condition).
    let by_attribute: BTreeMap<String, &String> = agents
        .iter()
        .filter_map(|(email, agent)| {
            let id = email.split('@').next()?;
            let name = id.strip_prefix(crate::ownership::gcp::ID_PREFIX)?;
            Some((format!("attribute.writ_{}", name.replace('-', "_")), agent))
        })
        .collect();
    let pool_claims = |provider: &Resource, into: &mut BTreeMap<String, BTreeSet<Claim>>| {
        let condition = provider.string("attribute_condition").map(str::to_string);
        for (key, expression) in provider
            .attribute("attribute_mapping")
            .and_then(serde_json::Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(agent) = by_attribute.get(key) else {
                continue;
            };
            into.entry((*agent).clone())
                .or_default()
                .insert(Claim::from(Access {
                    provider: provider.provider.clone(),
                    action: "become the agent (GitHub Actions jobs)".to_string(),
                    resource: expression.as_str().unwrap_or_default().to_string(),
                    condition: condition.clone(),
                }));
        }
    };
    for row in rows.iter().filter(|row| !row.identical) {
        let is_pool_provider =
            |r: &&Resource| r.kind == ResourceKind::GcpWorkloadIdentityPoolProvider;
        if let Some(observed) = row.owned().filter(is_pool_provider) {
            pool_claims(observed, before);
        }
        if let Some(desired) = row.desired.filter(is_pool_provider) {
            pool_claims(desired, after);
        }
    }
}

/// Does carrying out `change` give anyone access they did not have (or take
/// a deny away)? A delete never does; a create of something that grants
/// access always does; an update when its object's claims gain.
pub(super) fn widens(change: &super::Change) -> bool {
    use super::ChangeKind;
    let side = |attributes| claims_of(change, attributes, allows);
    match change.kind_of_change() {
        // Taking ownership lets nobody new in (see
        // `aws::adoption_refused`); what it holds changes with its policies.
        ChangeKind::Delete | ChangeKind::Adopt => false,
        ChangeKind::Create | ChangeKind::Replace => true,
        ChangeKind::Update => {
            if matches!(
                change.kind,
                ResourceKind::KubernetesRoleBinding | ResourceKind::KubernetesClusterRoleBinding
            ) {
                // A binding gives its role to its subjects: one more subject,
                // or another role, is a gain.
                let field = |side: Option<&BTreeMap<String, serde_json::Value>>, key: &str| {
                    side.and_then(|a| a.get(key)).cloned()
                };
                let subjects = |side| {
                    field(side, "subjects")
                        .and_then(|s| s.as_array().cloned())
                        .unwrap_or_default()
                };
                let (was, now) = (
                    subjects(change.before.as_ref()),
                    subjects(change.after.as_ref()),
                );
                return now.iter().any(|s| !was.contains(s))
                    || field(change.before.as_ref(), "role_ref")
                        != field(change.after.as_ref(), "role_ref");
            }
            if change.kind == ResourceKind::GcpWorkloadIdentityPoolProvider {
                // Another mapping or condition may let other tokens in.
                return true;
            }
            if change.kind == ResourceKind::GcpIamPolicy {
                // A member given a role (under a condition) it did not have
                // is a gain, and needs its service account made first.
                let triples = |side: Option<&BTreeMap<String, serde_json::Value>>| {
                    let mut found = Vec::new();
                    for binding in side
                        .and_then(|a| a.get("bindings"))
                        .and_then(serde_json::Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        for member in binding["members"].as_array().into_iter().flatten() {
                            found.push((
                                binding["role"].clone(),
                                binding["condition"]["expression"].clone(),
                                member.clone(),
                            ));
                        }
                    }
                    found
                };
                let was = triples(change.before.as_ref());
                return triples(change.after.as_ref())
                    .iter()
                    .any(|t| !was.contains(t));
            }
            let (old, new) = (side(change.before.as_ref()), side(change.after.as_ref()));
            !compare(&old, &new).0.is_empty()
        }
    }
}

/// The claims (`read` of the object) of one side of a change: before or
/// after; none for a side that does not exist.
fn claims_of(
    change: &super::Change,
    attributes: Option<&BTreeMap<String, serde_json::Value>>,
    read: fn(&Resource) -> Vec<Claim>,
) -> BTreeSet<Claim> {
    let Some(attributes) = attributes else {
        return BTreeSet::new();
    };
    let resource = Resource {
        address: change.address.clone(),
        provider: change.provider.clone(),
        kind: change.kind,
        agent: change.agent.clone(),
        attributes: attributes.clone().into(),
    };
    read(&resource).into_iter().collect()
}

/// Does `change` (a role's update) both give the trust something and take
/// something from it: the role moves from one set of principals to another?
/// Does `after`'s trust let in someone `before`'s does not?
pub(super) fn trust_gains(before: &Resource, after: &Resource) -> bool {
    let trust = |r: &Resource| -> BTreeSet<Claim> { super::aws::trusts(r).into_iter().collect() };
    !compare(&trust(before), &trust(after)).0.is_empty()
}

pub(super) fn trust_moves(change: &super::Change) -> bool {
    let trust = |attributes| claims_of(change, attributes, super::aws::trusts);
    if change.kind != ResourceKind::AwsRole || change.kind_of_change() != super::ChangeKind::Update
    {
        return false;
    }
    let (gains, losses) = compare(
        &trust(change.before.as_ref()),
        &trust(change.after.as_ref()),
    );
    !gains.is_empty() && !losses.is_empty()
}

/// Gains and losses by meaning: a gain is something the agent may do (or
/// someone may become it) after that nothing before covered, or a deny
/// before that nothing after covers; losses the other way round. Narrowing
/// a resource or adding a condition is never a gain.
fn compare(old: &BTreeSet<Claim>, new: &BTreeSet<Claim>) -> (Vec<Access>, Vec<Access>) {
    let uncovered = |from: &BTreeSet<Claim>, by: &BTreeSet<Claim>, deny: bool| -> Vec<Claim> {
        from.iter()
            .filter(|a| a.sense.is_deny() == deny)
            .filter(|a| !by.iter().any(|b| covers(b, a)))
            .cloned()
            .collect()
    };
    let marked = |claim: Claim, words: &str| {
        let mut access = claim.access;
        access.action = format!("{} ({words})", access.action);
        access
    };
    // A deny matters only where something is allowed that it would block.
    let blocks = |deny: &Claim, allowed: &BTreeSet<Claim>| {
        allowed
            .iter()
            .filter(|a| a.sense == deny.sense.denied() && a.access.provider == deny.access.provider)
            .any(|a| overlaps(&deny.access, &a.access))
    };
    let mut gains: Vec<Access> = uncovered(new, old, false)
        .into_iter()
        .map(|c| c.access)
        .collect();
    gains.extend(
        uncovered(old, new, true)
            .into_iter()
            .filter(|d| blocks(d, new))
            .map(|a| marked(a, "no longer denied")),
    );
    let mut losses: Vec<Access> = uncovered(old, new, false)
        .into_iter()
        .map(|c| c.access)
        .collect();
    losses.extend(
        uncovered(new, old, true)
            .into_iter()
            .filter(|d| blocks(d, old))
            .map(|a| marked(a, "now denied")),
    );
    (gains, losses)
}

/// Could one request be both `a`'s and `b`'s (action and resource)?
fn overlaps(a: &Access, b: &Access) -> bool {
    pattern::intersects(
        &a.action.to_ascii_lowercase(),
        &b.action.to_ascii_lowercase(),
    ) && if a.resource.starts_with("arn:") && b.resource.starts_with("arn:") {
        pattern::arn_intersects(&a.resource, &b.resource)
    } else {
        pattern::intersects(&a.resource, &b.resource)
    }
}

/// Does `outer` allow (or deny) everything `inner` does?
fn covers(outer_claim: &Claim, inner_claim: &Claim) -> bool {
    let (outer, inner) = (&outer_claim.access, &inner_claim.access);
    // IAM actions ignore case; Kubernetes verbs do not.
    let action = |access: &Access| {
        if access.provider.starts_with("aws.") {
            access.action.to_ascii_lowercase()
        } else {
            access.action.clone()
        }
    };
    outer.provider == inner.provider
        && outer_claim.sense == inner_claim.sense
        && pattern::contains(&action(outer), &action(inner))
        && if outer.resource.starts_with("arn:") && inner.resource.starts_with("arn:") {
            pattern::arn_contains(&outer.resource, &inner.resource)
        } else {
            pattern::contains(&outer.resource, &inner.resource)
        }
        && condition_covers(outer_claim, inner_claim)
}

/// Is `inner`'s condition at least as strict as `outer`'s?
fn condition_covers(outer: &Claim, inner: &Claim) -> bool {
    if outer.terms.is_empty() && inner.terms.is_empty() {
        // No IAM condition: none, or a Kubernetes placement.
        return match (&outer.access.condition, &inner.access.condition) {
            (None, _) => true,
            (Some(o), Some(i)) => o == i || i.starts_with(&format!("{o}, named ")),
            (Some(_), None) => false,
        };
    }
    outer.terms.iter().all(|t| {
        inner
            .terms
            .iter()
            .any(|u| u.key == t.key && term_covers(t, u))
    })
}

/// Does the condition term `t` let through everything `u` lets through?
fn term_covers(t: &Term, u: &Term) -> bool {
    let like = |op: &str| op == "StringLike" || op == "ArnLike";
    if t.operator == u.operator && t.operator.contains("Not") {
        // A negated term: the more values it excludes, the stricter.
        return t.values.iter().all(|v| u.values.contains(v));
    }
    // Exactly these: `…IgnoreCase` and `…IfExists` variants are wider.
    if like(&t.operator) && (t.operator == u.operator || u.operator == "StringEquals") {
        let arn = t.operator == "ArnLike";
        return u.values.iter().all(|v| {
            t.values.iter().any(|p| match (arn, like(&u.operator)) {
                (true, true) => pattern::arn_contains(p, v),
                (true, false) => pattern::arn_matches(p, v),
                (false, true) => pattern::contains(p, v),
                (false, false) => pattern::matches(p, v),
            })
        });
    }
    t.operator == u.operator && u.values.iter().all(|v| t.values.contains(v))
}

/// What one object that grants access allows.
fn allows(resource: &Resource) -> Vec<Claim> {
    match resource.kind {
        ResourceKind::AwsRolePolicy => super::aws::allows(resource),
        ResourceKind::AwsRole => {
            let mut out: Vec<Claim> = super::aws::attached(resource)
                .into_iter()
                .map(Claim::from)
                .collect();
            out.extend(super::aws::trusts(resource));
            out
        }
        _ if resource.kind.is_kubernetes() => super::kubernetes::allows(resource)
            .into_iter()
            .map(Claim::from)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(statements: serde_json::Value) -> Resource {
        Resource {
            address: "aws.prod/role/bot/policy/writ-access".into(),
            provider: "aws.prod".into(),
            kind: ResourceKind::AwsRolePolicy,
            agent: Some("bot".into()),
            attributes: [(
                "policy".to_string(),
                json!({"Version": "2012-10-17", "Statement": statements}),
            )]
            .into(),
        }
    }

    fn trust(condition: serde_json::Value) -> Resource {
        Resource {
            address: "aws.prod/role/bot".into(),
            provider: "aws.prod".into(),
            kind: ResourceKind::AwsRole,
            agent: Some("bot".into()),
            attributes: [(
                "assume_role_policy".to_string(),
                json!({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": condition}]}),
            )]
            .into(),
        }
    }

    fn delta(before: &Resource, after: &Resource) -> (Vec<Access>, Vec<Access>) {
        let set = |r: &Resource| allows(r).into_iter().collect::<BTreeSet<Claim>>();
        compare(&set(before), &set(after))
    }

    #[test]
    fn narrowing_is_never_a_gain() {
        let wide = policy(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}]),
        );
        let narrow = policy(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/reports/*"}]),
        );
        let (gains, losses) = delta(&wide, &narrow);
        assert!(gains.is_empty(), "{gains:?}");
        assert_eq!(losses.len(), 1);
        let (gains, _) = delta(&narrow, &wide);
        assert_eq!(gains.len(), 1, "widening is");
        // A condition added narrows; removed, it widens.
        let conditional = policy(
            json!([{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}}]),
        );
        assert!(delta(&wide, &conditional).0.is_empty());
        assert_eq!(delta(&conditional, &wide).0.len(), 1);
        // An action pattern: `s3:Get*` covers `s3:GetObject`, in any case.
        let get_all = policy(
            json!([{"Effect": "Allow", "Action": "S3:Get*", "Resource": "arn:aws:s3:::bucket/*"}]),
        );
        assert!(delta(&get_all, &wide).0.is_empty());
        // A deny lifted over what is still allowed is a gain.
        let denied = policy(json!([
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/secret/*"}]));
        let (gains, _) = delta(&denied, &wide);
        assert_eq!(gains.len(), 1, "{gains:?}");
        assert!(gains[0].action.contains("no longer denied"));
    }

    #[test]
    fn a_wider_trust_is_a_gain_and_a_narrower_one_is_not() {
        let main_only = trust(json!({"StringEquals": {
            "token.actions.githubusercontent.com:sub": "repo:acme/api:ref:refs/heads/main"}}));
        let whole_repo = trust(json!({"StringLike": {
            "token.actions.githubusercontent.com:sub": "repo:acme/api:*"}}));
        let (gains, losses) = delta(&main_only, &whole_repo);
        assert_eq!(
            gains.len(),
            1,
            "anyone in the repository may now become the agent"
        );
        assert!(gains[0].action.contains("become the agent"));
        assert_eq!(losses.len(), 0, "the main branch still may: {losses:?}");
        let (gains, losses) = delta(&whole_repo, &main_only);
        assert!(gains.is_empty(), "{gains:?}");
        assert_eq!(losses.len(), 1);
        // Another repository entirely: a gain and a loss.
        let other = trust(json!({"StringEquals": {
            "token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}}));
        let (gains, losses) = delta(&main_only, &other);
        assert_eq!((gains.len(), losses.len()), (1, 1));
    }
}
