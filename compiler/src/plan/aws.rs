//! The AWS side of a plan: which role an inline policy belongs to, the
//! inventory of roles, users and access keys writ does not manage, and what
//! an IAM policy document allows (for the permission delta).

use super::{Access, Change, Claim, PlanOptions, Revoked, Sense, Term, Unmanaged};
use crate::lower::Desired;
use crate::ownership;
use crate::resource::{Resource, ResourceKind};
use crate::values::Date;
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) use crate::address::aws_role_of as role_of;

/// The objects an adoption of `role` replaces: its inline policies, and
/// the managed policies attached to it (as far as they were read), among
/// `observed`.
pub(crate) fn related<'a>(
    role: &Resource,
    observed: impl IntoIterator<Item = &'a Resource>,
) -> Vec<&'a Resource> {
    let name = role.string("name").unwrap_or_default();
    let attached: Vec<&str> = role
        .attribute("attached_policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    observed
        .into_iter()
        .filter(|r| r.provider == role.provider)
        .filter(|r| match r.kind {
            ResourceKind::AwsRolePolicy => r.string("role") == Some(name),
            ResourceKind::AwsManagedPolicy => {
                r.string("arn").is_some_and(|arn| attached.contains(&arn))
            }
            _ => false,
        })
        .collect()
}

/// What adopting `role` would take away that restricts it: a `Deny` in an
/// inline policy or an attached one writ would remove or detach, or an
/// attached policy whose document was not read (AWS's own, say a deny-all
/// quarantine), which may deny. Removing either could let the role do
/// more than before, and the permission delta could not say so.
pub(crate) fn restrictions_lost(role: &Resource, related: &[&Resource]) -> Option<String> {
    let denies = |document: &Value| {
        document["Statement"]
            .as_array()
            .map(|s| s.iter().collect::<Vec<_>>())
            .unwrap_or_else(|| vec![&document["Statement"]])
            .iter()
            .any(|s| s["Effect"] == "Deny")
    };
    for policy in related
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRolePolicy)
    {
        let name = policy.string("name").unwrap_or_default();
        // An adoption an apply began: its `writ-access` is writ's own.
        if name == ownership::aws::ACCESS_POLICY
            && role.tag(ownership::aws::ADOPTED_TAG) == Some("true")
        {
            continue;
        }
        match policy.attribute("policy") {
            Some(document) if !document.is_null() => {
                if denies(document) {
                    return Some(format!("its inline policy `{name}` holds a `Deny`, which writ would remove with the policy: writ denies only in guardrails; keep the role out of writ, or make the deny a guardrail and take it out of the policy first"));
                }
            }
            _ => {
                return Some(format!(
                "its inline policy `{name}` was not read, and may deny what writ would then allow"
            ))
            }
        }
    }
    for arn in role
        .attribute("attached_policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let document = related
            .iter()
            .find(|r| r.kind == ResourceKind::AwsManagedPolicy && r.string("arn") == Some(arn))
            .and_then(|r| r.attribute("policy"))
            .filter(|d| !d.is_null());
        match document {
            Some(document) if denies(document) => {
                return Some(format!("the attached policy `{arn}` holds a `Deny`, which writ would detach: keep the role out of writ, or make the deny a guardrail and detach the policy first"));
            }
            Some(_) => {}
            None => {
                return Some(format!("the attached policy `{arn}` was not read (AWS's own policies are not), and may deny what writ would then allow: detach it first (and see what the role then allows), or keep the role out of writ"));
            }
        }
    }
    None
}

/// Why writ may not adopt `observed` as the role `desired` (which the
/// source adopts): `None` when it may. Adoption never widens what the role
/// allows nor cuts off a workload writ cannot see: a permissions boundary
/// writ would remove, instance profiles EC2 instances use the role through,
/// and a trust admitting principals the role's does not (they would hold
/// its old policies until the new ones are written) keep it out.
pub(super) fn adoption_refused(
    observed: &Resource,
    desired: &Resource,
    related: &[&Resource],
) -> Option<String> {
    // Another project's, or tagged as writ's without the record of an
    // adoption: the provider would refuse it.
    if let Some(project) = observed.tag(ownership::aws::PROJECT_TAG) {
        let ours = desired.tag(ownership::aws::PROJECT_TAG) == Some(project)
            && observed.tag(ownership::aws::ADOPTED_TAG) == Some("true");
        if !ours {
            return Some(format!(
                "it is tagged `{}: {project}` without this project's record of an adoption; remove the tag first, or keep the role out of writ",
                ownership::aws::PROJECT_TAG
            ));
        }
    }
    if let Some(lost) = restrictions_lost(observed, related) {
        return Some(lost);
    }
    let (was, wants) = (
        observed.string("path").unwrap_or("/"),
        desired.string("path").unwrap_or("/"),
    );
    if was != wants {
        return Some(format!(
            "the role is at path `{was}`, not at `{wants}` where the source adopts it; IAM cannot move a role: write `adopts … role \"{was}{}\"`",
            observed.string("name").unwrap_or_default()
        ));
    }
    if let Some(boundary) = observed.string("permissions_boundary") {
        if desired.string("permissions_boundary") != Some(boundary) {
            return Some(format!(
                "the role has a permissions boundary (`{boundary}`) writ would remove, widening what it allows; remove the boundary first (and see what the role then allows), or keep the role out of writ"
            ));
        }
    }
    if let Some(profiles) = observed
        .attribute("instance_profiles")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    {
        let names: Vec<&str> = profiles.iter().filter_map(Value::as_str).collect();
        return Some(format!(
            "EC2 instances use the role through instance profile{} `{}`, which writ would take it out of; remove it from them first, or keep the role out of writ",
            if names.len() == 1 { "" } else { "s" },
            names.join("`, `")
        ));
    }
    if super::delta::trust_gains(observed, desired) {
        return Some(
            "the source's `runs_on` admits principals the role's trust does not, who would hold its old policies until writ writes the new ones: adopt it with the trust it has (as `writ import` writes it), then change `runs_on` in a later plan".to_string(),
        );
    }
    None
}

pub(super) fn inventory(
    resource: &Resource,
    project: &str,
    options: &PlanOptions,
) -> Option<Unmanaged> {
    let name = resource.string("name").unwrap_or_default().to_string();
    let date = |key: &str| {
        resource
            .string(key)
            .and_then(|d| Date::parse(d.get(..10)?).ok())
    };
    let days_since = |d: Date| options.today.days_since_epoch() - d.days_since_epoch();
    match resource.kind {
        ResourceKind::AwsRole => {
            let path = resource.string("path").unwrap_or("/");
            // Roles AWS itself keeps are not identities anyone declared.
            if path.starts_with("/aws-service-role/") || path.starts_with("/aws-reserved/") {
                return None;
            }
            let detail = if path == ownership::aws::path(project) {
                format!("in writ's path `{path}` but not tagged `writ:project = {project}`: not managed")
            } else {
                format!("path `{path}`, not managed by writ")
            };
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name,
                detail,
                age_days: date("created").map(days_since),
                stale: false,
                flags: Vec::new(),
            })
        }
        ResourceKind::AwsUser => Some(Unmanaged {
            address: resource.address.clone(),
            kind: resource.kind,
            name,
            detail: "IAM user: listed, never changed by writ".to_string(),
            age_days: date("created").map(days_since),
            stale: false,
            flags: Vec::new(),
        }),
        ResourceKind::AwsAccessKey => {
            let age = date("created").map(days_since);
            let last_used = date("last_used");
            let idle = last_used.map(days_since).or(age);
            let status = resource.string("status").unwrap_or("Active");
            let user = resource.string("user").unwrap_or("?");
            let mut detail = format!("{status} key of user `{user}`");
            if let Some(age) = age {
                detail.push_str(&format!(", {age} days old"));
            }
            match last_used {
                Some(date) => detail.push_str(&format!(", last used {date}")),
                None => detail.push_str(", never used"),
            }
            let stale = status == "Active"
                && options.max_key_age_days.is_some_and(|max| {
                    age.is_some_and(|a| a > max) || idle.is_some_and(|i| i > max)
                });
            if stale {
                detail.push_str(&format!(
                    "; older or idle longer than the maximum key age ({} days)",
                    options.max_key_age_days.unwrap_or_default()
                ));
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                // Read from the credential report, a key is known by its
                // user and slot until a finding needs its ID.
                name: match (resource.string("id"), resource.attribute("slot")) {
                    (Some(id), _) => id.to_string(),
                    (None, Some(slot)) => format!("key {slot} of `{user}`"),
                    (None, None) => name,
                },
                detail,
                age_days: age,
                stale,
                flags: Vec::new(),
            })
        }
        _ => None,
    }
}

/// `aws:RequestedRegion == "us-east-1"` from an IAM condition block.
fn describe_condition(block: &Value) -> Option<String> {
    let operators = block.as_object()?;
    let mut terms = Vec::new();
    for (operator, keys) in operators {
        let symbol = match operator.as_str() {
            "StringEquals" => "==",
            "StringNotEquals" => "!=",
            "StringLike" => "like",
            other => other,
        };
        for (key, values) in keys.as_object()? {
            let values: Vec<String> = match values {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or(v.to_string(), |s| format!("\"{s}\"")))
                    .collect(),
                other => vec![other.to_string()],
            };
            let value = if values.len() == 1 {
                values[0].clone()
            } else {
                format!("[{}]", values.join(", "))
            };
            let symbol = if values.len() > 1 && symbol == "==" {
                "in"
            } else {
                symbol
            };
            terms.push(format!("{key} {symbol} {value}"));
        }
    }
    (!terms.is_empty()).then(|| terms.join(" and "))
}

/// The terms of an IAM condition block, one per (operator, key).
fn terms_of(block: Option<&Value>) -> Vec<Term> {
    let mut terms = Vec::new();
    for (operator, keys) in block.and_then(Value::as_object).into_iter().flatten() {
        for (key, values) in keys.as_object().into_iter().flatten() {
            let mut values: Vec<String> = match values {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                    .collect(),
                other => vec![other.as_str().map_or(other.to_string(), str::to_string)],
            };
            values.sort();
            terms.push(Term {
                key: key.to_ascii_lowercase(),
                operator: operator.clone(),
                values,
            });
        }
    }
    terms.sort();
    terms
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// What an IAM policy document allows, as (action, resource, condition),
/// and what it denies (as [`Sense::Deny`] entries).
pub(super) fn allows(resource: &Resource) -> Vec<Claim> {
    let Some(document) = resource.attribute("policy") else {
        return Vec::new();
    };
    let statements = document["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for statement in statements {
        let sense = match statement["Effect"].as_str() {
            Some("Allow") => Sense::Allow,
            Some("Deny") => Sense::Deny,
            _ => continue,
        };
        let condition = statement.get("Condition").and_then(describe_condition);
        let terms = terms_of(statement.get("Condition"));
        for action in strings(&statement["Action"]) {
            for target in strings(&statement["Resource"]) {
                out.push(Claim {
                    access: Access {
                        provider: resource.provider.clone(),
                        action: action.clone(),
                        resource: target,
                        condition: condition.clone(),
                    },
                    terms: terms.clone(),
                    sense,
                });
            }
        }
    }
    out
}

/// Who may become the agent, from a role's trust policy: one entry per
/// principal and action of each statement (a deny as [`Sense::TrustDeny`]).
pub(super) fn trusts(resource: &Resource) -> Vec<Claim> {
    let Some(document) = resource.attribute("assume_role_policy") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for statement in document["Statement"].as_array().into_iter().flatten() {
        let sense = match statement["Effect"].as_str() {
            Some("Allow") => Sense::Trust,
            Some("Deny") => Sense::TrustDeny,
            _ => continue,
        };
        let principals: Vec<String> = match &statement["Principal"] {
            Value::String(everyone) => vec![everyone.clone()],
            Value::Object(kinds) => kinds
                .iter()
                .flat_map(|(kind, values)| {
                    strings(values)
                        .into_iter()
                        .map(move |value| format!("{kind} {value}"))
                })
                .collect(),
            _ => Vec::new(),
        };
        let condition = statement.get("Condition").and_then(describe_condition);
        let terms = terms_of(statement.get("Condition"));
        for principal in principals {
            for action in strings(&statement["Action"]) {
                out.push(Claim {
                    access: Access {
                        provider: resource.provider.clone(),
                        action: format!("become the agent ({action})"),
                        resource: principal.clone(),
                        condition: condition.clone(),
                    },
                    terms: terms.clone(),
                    sense,
                });
            }
        }
    }
    out
}

/// What the managed policies attached to a role give it, one entry a
/// policy: writ reads no policy's document but its own, so the entry says
/// which policy, not what it allows.
/// An instance profile that holds the role gives its sessions to EC2
/// instances started with the profile, as far as the role's trust lets
/// them.
pub(super) fn attached(resource: &Resource) -> Vec<Access> {
    let listed = |key: &str| {
        resource
            .attribute(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    };
    let policies = listed("attached_policies").map(|arn| Access {
        provider: resource.provider.clone(),
        action: "everything in the attached policy".to_string(),
        resource: arn.to_string(),
        condition: None,
    });
    let profiles = listed("instance_profiles").map(|name| Access {
        provider: resource.provider.clone(),
        action: "the role's sessions, for EC2 instances with the instance profile".to_string(),
        resource: format!("instance profile `{name}`"),
        condition: None,
    });
    policies.chain(profiles).collect()
}

/// The project's roles that `writ revoke` cut off, by address, with when
/// (from the role's tag; `None` for a revocation an earlier writ made,
/// which only had its inline policy).
pub(super) fn revoked_roles(
    desired: &Desired,
    observed: &[Resource],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let project = desired.project.as_str();
    let ours = |r: &Resource| {
        let tags = r
            .attribute("tags")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
        ownership::aws::owns(r.string("path").unwrap_or("/"), tags, project)
    };
    let mut revoked: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut owned_roles = BTreeMap::new();
    for role in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRole && ours(r))
    {
        owned_roles.insert(
            (
                role.provider.as_str(),
                role.string("name").unwrap_or_default(),
            ),
            role.address.as_str(),
        );
        let marks: BTreeMap<String, String> = role
            .tags()
            .into_iter()
            .filter(|(key, _)| ownership::aws::is_revocation_tag(key))
            .collect();
        if marks.contains_key(ownership::aws::REVOKED_TAG) {
            revoked.insert(role.address.clone(), marks);
        }
    }
    for policy in observed.iter().filter(|r| {
        r.kind == ResourceKind::AwsRolePolicy
            && r.string("name") == Some(ownership::aws::REVOKE_POLICY)
    }) {
        let role = policy.string("role").unwrap_or_default();
        if let Some(address) = owned_roles.get(&(policy.provider.as_str(), role)) {
            revoked.entry(address.to_string()).or_default();
        }
    }
    revoked
}

/// Roles `writ revoke` tagged but did not finish with (it stopped before
/// writing the session deny): plans keep the trust closed, and list them so
/// that someone runs the revoke again.
pub(super) fn interrupted_revocations(
    revoked: &BTreeMap<String, BTreeMap<String, String>>,
    observed: &[Resource],
    listed: &[Revoked],
) -> Vec<Revoked> {
    revoked
        .keys()
        .filter(|role| {
            !listed
                .iter()
                .any(|entry| crate::address::aws_role_of(&entry.address) == role.as_str())
        })
        .filter_map(|role| observed.iter().find(|r| &r.address == role))
        .map(|role| {
            let agent = ownership::agent_name(role).unwrap_or_default().to_string();
            Revoked {
                detail: format!(
                    "revoked with `writ revoke`, which did not finish: plans keep the trust closed to every principal, but sessions it issued before may not be denied yet; run `writ revoke {agent}` again"
                ),
                agent,
                address: role.address.clone(),
            }
        })
        .collect()
}

/// A revoked role whose observed trust lacks the deny gets it back: the
/// change says so rather than blame the source.
pub(super) fn explain_closed_trust(
    changes: &mut [Change],
    revoked: &BTreeMap<String, BTreeMap<String, String>>,
) {
    for change in changes.iter_mut().filter(|c| {
        c.kind == ResourceKind::AwsRole
            && revoked.contains_key(&c.address)
            && c.changed_paths.iter().any(|p| p == "assume_role_policy")
    }) {
        let open = change
            .before
            .as_ref()
            .and_then(|before| before.get("assume_role_policy"))
            .and_then(|trust| trust.get("Statement"))
            .and_then(Value::as_array)
            .is_some_and(|statements| !statements.iter().any(ownership::aws::is_revoke_statement));
        if open {
            change.reason = "closes the trust policy of a revoked role: it denies every principal until `writ revoke --lift`".to_string();
        }
    }
}

/// The desired state with revoked roles kept revoked: the trust policy's
/// deny and the tag stay until `writ revoke --lift` removes them. A revoked
/// role is never replaced (it keeps its live path): deleting it would
/// delete its revocation, and a replacement interrupted between the delete
/// and the create would leave the next plan to create it open.
pub(super) fn keep_revoked(
    desired: &mut Desired,
    revoked: &BTreeMap<String, BTreeMap<String, String>>,
    observed: &[Resource],
) {
    let live_paths: BTreeMap<&str, &str> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRole && revoked.contains_key(&r.address))
        .filter_map(|r| Some((r.address.as_str(), r.string("path")?)))
        .collect();
    let mut moved = Vec::new();
    for (index, role) in desired.resources.iter_mut().enumerate() {
        let Some(live) = live_paths.get(role.address.as_str()) else {
            continue;
        };
        if role.kind == ResourceKind::AwsRole && role.string("path") != Some(live) {
            role.attributes
                .insert("path".to_string(), Value::String(live.to_string()));
            moved.push(index);
        }
    }
    for index in moved {
        // The digest covers the path: count it again, with the role's
        // inline policies.
        let role = &desired.resources[index];
        let name = role.string("name").unwrap_or_default();
        let inline: Vec<&Resource> = desired
            .resources
            .iter()
            .filter(|r| {
                r.kind == ResourceKind::AwsRolePolicy
                    && r.provider == role.provider
                    && r.string("role") == Some(name)
            })
            .collect();
        let digest = ownership::content_digest(role, inline);
        if let Some(Value::Object(tags)) = desired.resources[index].attributes.get_mut("tags") {
            tags.insert(
                ownership::aws::DIGEST_TAG.to_string(),
                Value::String(digest),
            );
        }
    }
    for role in desired
        .resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::AwsRole && revoked.contains_key(&r.address))
    {
        if let Some(Value::Object(trust)) = role.attributes.get_mut("assume_role_policy") {
            let statements = trust
                .entry("Statement")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(statements) = statements {
                if !statements.iter().any(ownership::aws::is_revoke_statement) {
                    statements.push(ownership::aws::revoke_trust_statement());
                }
            }
        }
        if let Some(trust) = role.attributes.get("assume_role_policy") {
            let canonical = crate::policy::canonical(trust);
            role.attributes
                .insert("assume_role_policy".to_string(), canonical);
        }
        if let (Some(marks), Some(Value::Object(tags))) =
            (revoked.get(&role.address), role.attributes.get_mut("tags"))
        {
            for (key, value) in marks {
                tags.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
}
