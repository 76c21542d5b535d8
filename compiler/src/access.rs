//! What one grant means for another, per provider kind. Three questions,
//! each answered exactly:
//! - *matches*: does a grant pattern allow one concrete request?
//! - *covers*: is everything one pattern allows also allowed by another?
//!   (delegation ceilings)
//! - *meets*: is there anything both allow? (guardrail denies)
//!
//! AWS actions compare without case, everything else with it. GitHub
//! permission levels are ordered: `contents:write` includes `contents:read`.

use crate::facts::{github, kubernetes, ProviderKind};
use crate::model::{Grant, Placement};
use crate::pattern;

fn fold(kind: ProviderKind, action: &str) -> std::borrow::Cow<'_, str> {
    if kind.actions_ignore_case() {
        std::borrow::Cow::Owned(action.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(action)
    }
}

fn github_parts(action: &str) -> Option<(&str, u8)> {
    let (permission, level) = action.split_once(':')?;
    Some((permission, github::level_rank(level)?))
}

/// GCP's basic roles that hold (nearly) every other role's permissions:
/// `roles/owner` all of them, `roles/editor` all but what only an owner
/// may do. Read as holding every role, but `roles/owner` for the editor:
/// writ may then say a request is allowed that GCP refuses, never the
/// other way round.
fn gcp_holds(granted: &str, requested: &str) -> bool {
    match granted {
        "roles/owner" => true,
        "roles/editor" => requested != "roles/owner",
        _ => false,
    }
}

pub fn action_matches(kind: ProviderKind, pattern_text: &str, action: &str) -> bool {
    match kind {
        ProviderKind::Github => action_covers(kind, pattern_text, action),
        ProviderKind::Gcp => {
            gcp_holds(pattern_text, action) || pattern::matches(pattern_text, action)
        }
        _ => pattern::matches(&fold(kind, pattern_text), &fold(kind, action)),
    }
}

pub fn action_covers(kind: ProviderKind, outer: &str, inner: &str) -> bool {
    match kind {
        ProviderKind::Github => match (github_parts(outer), github_parts(inner)) {
            (Some((outer_permission, outer_rank)), Some((inner_permission, inner_rank))) => {
                pattern::contains(outer_permission, inner_permission) && outer_rank >= inner_rank
            }
            _ => outer == inner,
        },
        // A ceiling holds a role only when it surely holds its permissions:
        // the owner holds every role; the editor, itself and the viewer.
        ProviderKind::Gcp => {
            outer == "roles/owner"
                || (outer == "roles/editor" && matches!(inner, "roles/editor" | "roles/viewer"))
                || pattern::contains(outer, inner)
        }
        _ => pattern::contains(&fold(kind, outer), &fold(kind, inner)),
    }
}

/// For a deny: does the granted action reach what the deny forbids?
pub fn action_meets(kind: ProviderKind, granted: &str, denied: &str) -> bool {
    match kind {
        ProviderKind::Github => match (github_parts(granted), github_parts(denied)) {
            (Some((granted_permission, granted_rank)), Some((denied_permission, denied_rank))) => {
                pattern::intersects(granted_permission, denied_permission)
                    && granted_rank >= denied_rank
            }
            _ => granted == denied,
        },
        // Granting a basic role grants what a denied role would.
        ProviderKind::Gcp => gcp_holds(granted, denied) || pattern::intersects(granted, denied),
        _ => pattern::intersects(&fold(kind, granted), &fold(kind, denied)),
    }
}

/// Does a grant's resource allow the request's? Kubernetes resources are
/// compared as RBAC compares them (see [`kubernetes::ResourceRef`]), AWS
/// ARNs segment by segment as IAM does (see [`pattern::arn_matches`]), GCP
/// names by the resource hierarchy (a role on a bucket holds on its
/// objects), the rest as patterns.
pub fn resource_matches(kind: ProviderKind, pattern_text: &str, resource: &str) -> bool {
    match kind {
        ProviderKind::Kubernetes => {
            match (
                kubernetes::ResourceRef::parse(pattern_text),
                kubernetes::ResourceRef::parse(resource),
            ) {
                (Ok(grant), Ok(request)) if request.is_concrete() => {
                    grant.matches(&request.requested())
                }
                // The checker refuses what cannot be read; never allow it.
                _ => false,
            }
        }
        ProviderKind::Aws => pattern::arn_matches(pattern_text, resource),
        // A role bound on a resource holds on everything under it.
        ProviderKind::Gcp => {
            let resource = gcp_name(resource);
            gcp_reach(gcp_name(pattern_text))
                .iter()
                .any(|p| pattern::matches(p, resource))
        }
        // GitHub names owners and repositories without regard to case.
        ProviderKind::Github => pattern::matches(
            &pattern_text.to_ascii_lowercase(),
            &resource.to_ascii_lowercase(),
        ),
    }
}

/// Does `outer` allow every resource `inner` allows? (Delegation.)
pub fn resource_covers(kind: ProviderKind, outer: &str, inner: &str) -> bool {
    match kind {
        ProviderKind::Kubernetes => {
            match (
                kubernetes::ResourceRef::parse(outer),
                kubernetes::ResourceRef::parse(inner),
            ) {
                (Ok(outer), Ok(inner)) => outer.covers(&inner),
                // Unreadable: not covered, so the delegate is refused.
                _ => false,
            }
        }
        ProviderKind::Aws => pattern::arn_contains(outer, inner),
        ProviderKind::Github => {
            pattern::contains(&outer.to_ascii_lowercase(), &inner.to_ascii_lowercase())
        }
        // Everything the inner binding reaches must be within what the
        // outer one does: a project holds only what is named under it here
        // (a bucket's name does not say its project).
        ProviderKind::Gcp => {
            let outer = gcp_within(gcp_name(outer));
            gcp_within(gcp_name(inner))
                .iter()
                .all(|i| outer.iter().any(|o| pattern::contains(o, i)))
        }
    }
}

/// Is there a resource both allow? (Guardrails.)
pub fn resource_meets(kind: ProviderKind, a: &str, b: &str) -> bool {
    match kind {
        ProviderKind::Kubernetes => {
            match (
                kubernetes::ResourceRef::parse(a),
                kubernetes::ResourceRef::parse(b),
            ) {
                (Ok(a), Ok(b)) => a.meets(&b),
                // Unreadable: they may meet, so the guardrail reports it.
                _ => true,
            }
        }
        ProviderKind::Aws => pattern::arn_intersects(a, b),
        ProviderKind::Github => {
            pattern::intersects(&a.to_ascii_lowercase(), &b.to_ascii_lowercase())
        }
        ProviderKind::Gcp => {
            let (a, b) = (gcp_reach(gcp_name(a)), gcp_reach(gcp_name(b)));
            a.iter()
                .any(|a| b.iter().any(|b| pattern::intersects(a, b)))
        }
    }
}

/// A GCP resource name without its service (`//storage.googleapis.com/`).
fn gcp_name(text: &str) -> &str {
    text.strip_prefix("//")
        .and_then(|rest| rest.split_once('/').map(|(_, path)| path))
        .unwrap_or(text)
}

/// What a role bound on `name` (a pattern) holds on, as GCP's resource
/// hierarchy has it: the resource, everything under it, and, for a
/// project, buckets too (a bucket's name, `projects/_/buckets/B`, does not
/// say which project holds it: any may).
fn gcp_reach(name: &str) -> Vec<String> {
    let mut reach = gcp_within(name);
    if name.split('/').count() == 2 && name.starts_with("projects/") {
        reach.push("projects/_/*".to_string());
    }
    reach
}

/// The part of [`gcp_reach`] the name itself shows: the resource and
/// everything named under it.
fn gcp_within(name: &str) -> Vec<String> {
    vec![name.to_string(), format!("{name}/*")]
}

/// Do the names of a grant (`named`; none: every object) allow the object
/// `name`? RBAC's `resourceNames` are literal; a request without a name is
/// about the resource as a whole, which only a grant without names allows
/// (see [`crate::eval::reachable_elsewhere`] for the objects it does not).
pub fn names_match(names: &[String], name: Option<&str>) -> bool {
    match name {
        Some(name) => names.is_empty() || names.iter().any(|n| n == name),
        // RBAC matches a rule with `resourceNames` only for a request
        // about one of those objects: never for the resource as a whole
        // (a list, a watch, a create).
        None => names.is_empty(),
    }
}

/// A cluster-wide grant covers every namespace; a namespace grant only its own.
pub fn placement_covers(outer: &Placement, inner: &Placement) -> bool {
    match (outer, inner) {
        (Placement::None, Placement::None) | (Placement::Cluster, _) => true,
        (Placement::Namespace(a), Placement::Namespace(b)) => a == b,
        _ => false,
    }
}

pub fn placement_meets(a: &Placement, b: &Placement) -> bool {
    match (a, b) {
        (Placement::Namespace(x), Placement::Namespace(y)) => x == y,
        _ => true,
    }
}

/// Does `outer` allow everything `inner` allows for one (action, resource)
/// pair of `inner`? Conditions of `outer` must all be present in `inner`
/// (a condition narrows, so the inner grant must be at least as narrow), and
/// named resources must be within the outer names.
pub fn grant_covers_pair(
    kind: ProviderKind,
    outer: &Grant,
    inner: &Grant,
    action: &str,
    resource: &str,
) -> bool {
    outer.provider == inner.provider
        && placement_covers(&outer.placement, &inner.placement)
        && outer
            .conditions
            .iter()
            .all(|condition| inner.conditions.contains(condition))
        && (outer.resource_names.is_empty()
            || (!inner.resource_names.is_empty()
                && inner
                    .resource_names
                    .iter()
                    .all(|name| outer.resource_names.contains(name))))
        && outer.actions.iter().any(|a| action_covers(kind, a, action))
        && outer
            .resources
            .iter()
            .any(|r| resource_covers(kind, r, resource))
}

/// The first (action, resource) pair of `grant` that no grant of `ceiling`
/// covers, if any.
pub fn first_uncovered<'a>(
    kind: ProviderKind,
    ceiling: &[Grant],
    grant: &'a Grant,
) -> Option<(&'a str, &'a str)> {
    for action in &grant.actions {
        for resource in &grant.resources {
            let covered = ceiling
                .iter()
                .any(|outer| grant_covers_pair(kind, outer, grant, action, resource));
            if !covered {
                return Some((action, resource));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcps_basic_roles_hold_the_others() {
        let gcp = ProviderKind::Gcp;
        // What an owner or editor is granted, they may do.
        assert!(action_matches(
            gcp,
            "roles/owner",
            "roles/storage.objectViewer"
        ));
        assert!(action_matches(gcp, "roles/editor", "roles/storage.admin"));
        assert!(!action_matches(gcp, "roles/editor", "roles/owner"));
        assert!(!action_matches(gcp, "roles/viewer", "roles/storage.admin"));
        // A guardrail against a role meets a basic role that holds it.
        assert!(action_meets(gcp, "roles/owner", "roles/storage.admin"));
        assert!(action_meets(
            gcp,
            "roles/editor",
            "roles/iam.serviceAccountUser"
        ));
        assert!(!action_meets(gcp, "roles/storage.admin", "roles/owner"));
        // A ceiling holds a role only when it surely holds it.
        assert!(action_covers(gcp, "roles/owner", "roles/editor"));
        assert!(action_covers(gcp, "roles/editor", "roles/viewer"));
        assert!(!action_covers(gcp, "roles/editor", "roles/storage.admin"));
        assert!(!action_covers(gcp, "roles/storage.admin", "roles/editor"));
    }

    #[test]
    fn github_levels_are_ordered() {
        let github = ProviderKind::Github;
        assert!(action_covers(github, "contents:write", "contents:read"));
        assert!(!action_covers(github, "contents:read", "contents:write"));
        assert!(action_meets(
            github,
            "administration:admin",
            "administration:write"
        ));
        assert!(!action_meets(
            github,
            "administration:read",
            "administration:write"
        ));
        assert!(action_matches(github, "issues:write", "issues:read"));
    }

    #[test]
    fn aws_actions_ignore_case() {
        let aws = ProviderKind::Aws;
        assert!(action_matches(aws, "s3:get*", "S3:GetObject"));
        assert!(action_covers(aws, "S3:*", "s3:getobject"));
        assert!(action_meets(aws, "*", "iam:PassRole"));
        assert!(!action_meets(aws, "s3:*", "iam:*"));
    }
}
