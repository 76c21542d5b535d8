//! Kubernetes RBAC facts: verbs, and the built-in API resources with their
//! groups and scope. A resource of a group not listed here is taken to be a
//! custom resource and accepted as written.

pub const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "impersonate",
    "bind",
    "escalate",
    "*",
];

/// Verbs that `resourceNames` cannot restrict: a rule naming resources with
/// them would grant more (or other) than written.
pub const VERBS_UNRESTRICTABLE_BY_NAME: &[&str] = &["create", "list", "watch", "deletecollection"];

/// Verbs that let a subject widen access.
pub const ESCALATION_VERBS: &[&str] = &["escalate", "bind", "impersonate"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceScope {
    Namespaced,
    Cluster,
}

/// `(resource, group, scope)`; the core group is `""`.
const RESOURCES: &[(&str, &str, ResourceScope)] = {
    use ResourceScope::{Cluster as C, Namespaced as N};
    &[
        ("bindings", "", N),
        ("componentstatuses", "", C),
        ("configmaps", "", N),
        ("endpoints", "", N),
        ("events", "", N),
        ("limitranges", "", N),
        ("namespaces", "", C),
        ("nodes", "", C),
        ("persistentvolumeclaims", "", N),
        ("persistentvolumes", "", C),
        ("pods", "", N),
        ("podtemplates", "", N),
        ("replicationcontrollers", "", N),
        ("resourcequotas", "", N),
        ("secrets", "", N),
        ("serviceaccounts", "", N),
        ("services", "", N),
        (
            "mutatingwebhookconfigurations",
            "admissionregistration.k8s.io",
            C,
        ),
        (
            "validatingwebhookconfigurations",
            "admissionregistration.k8s.io",
            C,
        ),
        (
            "validatingadmissionpolicies",
            "admissionregistration.k8s.io",
            C,
        ),
        (
            "validatingadmissionpolicybindings",
            "admissionregistration.k8s.io",
            C,
        ),
        ("customresourcedefinitions", "apiextensions.k8s.io", C),
        ("apiservices", "apiregistration.k8s.io", C),
        ("controllerrevisions", "apps", N),
        ("daemonsets", "apps", N),
        ("deployments", "apps", N),
        ("replicasets", "apps", N),
        ("statefulsets", "apps", N),
        ("selfsubjectreviews", "authentication.k8s.io", C),
        ("tokenreviews", "authentication.k8s.io", C),
        ("localsubjectaccessreviews", "authorization.k8s.io", N),
        ("selfsubjectaccessreviews", "authorization.k8s.io", C),
        ("selfsubjectrulesreviews", "authorization.k8s.io", C),
        ("subjectaccessreviews", "authorization.k8s.io", C),
        ("horizontalpodautoscalers", "autoscaling", N),
        ("cronjobs", "batch", N),
        ("jobs", "batch", N),
        ("certificatesigningrequests", "certificates.k8s.io", C),
        ("leases", "coordination.k8s.io", N),
        ("endpointslices", "discovery.k8s.io", N),
        ("events", "events.k8s.io", N),
        ("flowschemas", "flowcontrol.apiserver.k8s.io", C),
        (
            "prioritylevelconfigurations",
            "flowcontrol.apiserver.k8s.io",
            C,
        ),
        ("ingressclasses", "networking.k8s.io", C),
        ("ingresses", "networking.k8s.io", N),
        ("networkpolicies", "networking.k8s.io", N),
        ("runtimeclasses", "node.k8s.io", C),
        ("poddisruptionbudgets", "policy", N),
        ("clusterrolebindings", "rbac.authorization.k8s.io", C),
        ("clusterroles", "rbac.authorization.k8s.io", C),
        ("rolebindings", "rbac.authorization.k8s.io", N),
        ("roles", "rbac.authorization.k8s.io", N),
        ("priorityclasses", "scheduling.k8s.io", C),
        ("csidrivers", "storage.k8s.io", C),
        ("csinodes", "storage.k8s.io", C),
        ("csistoragecapacities", "storage.k8s.io", N),
        ("storageclasses", "storage.k8s.io", C),
        ("volumeattachments", "storage.k8s.io", C),
    ]
};

/// Subresources of built-in resources.
const SUBRESOURCES: &[(&str, &str)] = &[
    ("pods", "log"),
    ("pods", "exec"),
    ("pods", "attach"),
    ("pods", "portforward"),
    ("pods", "proxy"),
    ("pods", "eviction"),
    ("pods", "status"),
    ("pods", "ephemeralcontainers"),
    ("pods", "binding"),
    ("services", "proxy"),
    ("services", "status"),
    ("nodes", "proxy"),
    ("nodes", "status"),
    ("namespaces", "status"),
    ("namespaces", "finalize"),
    ("serviceaccounts", "token"),
    ("persistentvolumeclaims", "status"),
    ("persistentvolumes", "status"),
    ("replicationcontrollers", "scale"),
    ("replicationcontrollers", "status"),
    ("deployments", "scale"),
    ("deployments", "status"),
    ("statefulsets", "scale"),
    ("statefulsets", "status"),
    ("replicasets", "scale"),
    ("replicasets", "status"),
    ("daemonsets", "status"),
    ("jobs", "status"),
    ("cronjobs", "status"),
    ("horizontalpodautoscalers", "status"),
    ("certificatesigningrequests", "approval"),
    ("certificatesigningrequests", "status"),
    ("customresourcedefinitions", "status"),
    ("ingresses", "status"),
    ("poddisruptionbudgets", "status"),
];

/// A resource written as `resource[.group][/subresource]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRef {
    pub resource: String,
    pub group: String,
    pub subresource: Option<String>,
}

impl ResourceRef {
    pub fn parse(text: &str) -> Option<ResourceRef> {
        let (main, subresource) = match text.split_once('/') {
            Some((main, sub)) => (main, Some(sub.to_string())),
            None => (text, None),
        };
        let (resource, group) = match main.split_once('.') {
            Some((resource, group)) => (resource, group),
            None => (main, ""),
        };
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.*".contains(c))
        };
        if !valid(resource)
            || (!group.is_empty() && !valid(group))
            || subresource.as_deref().is_some_and(|s| !valid(s))
        {
            return None;
        }
        Some(ResourceRef {
            resource: resource.to_string(),
            group: group.to_string(),
            subresource,
        })
    }

    /// `resource/sub` as RBAC rules write it (without the group).
    pub fn rule_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        }
    }
}

/// What the catalogue says of a resource reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceCheck {
    Known(ResourceScope),
    /// A group writ does not know: a custom resource, accepted as written.
    Custom,
    /// A wildcard resource or group.
    Wildcard,
    /// The group is built in, but has no such resource (with a suggestion).
    UnknownResource {
        suggestion: Option<String>,
    },
    /// The resource exists, but in another group.
    WrongGroup {
        suggestion: String,
    },
    UnknownSubresource {
        suggestion: Option<String>,
    },
}

pub fn check_resource(reference: &ResourceRef) -> ResourceCheck {
    if reference.resource.contains('*') || reference.group.contains('*') {
        return ResourceCheck::Wildcard;
    }
    let group_is_builtin =
        reference.group.is_empty() || RESOURCES.iter().any(|(_, g, _)| *g == reference.group);
    if !group_is_builtin {
        return ResourceCheck::Custom;
    }
    let found = RESOURCES
        .iter()
        .find(|(r, g, _)| *r == reference.resource && *g == reference.group);
    let Some((_, _, scope)) = found else {
        if let Some((resource, group, _)) =
            RESOURCES.iter().find(|(r, _, _)| *r == reference.resource)
        {
            return ResourceCheck::WrongGroup {
                suggestion: display(resource, group, reference.subresource.as_deref()),
            };
        }
        let in_group = RESOURCES
            .iter()
            .filter(|(_, g, _)| *g == reference.group)
            .map(|(r, _, _)| *r);
        let suggestion = crate::suggest::closest(&reference.resource, in_group)
            .map(|r| display(r, &reference.group, reference.subresource.as_deref()));
        return ResourceCheck::UnknownResource { suggestion };
    };
    if let Some(sub) = &reference.subresource {
        if sub != "*"
            && !SUBRESOURCES
                .iter()
                .any(|(r, s)| *r == reference.resource && s == sub)
        {
            let subs = SUBRESOURCES
                .iter()
                .filter(|(r, _)| *r == reference.resource)
                .map(|(_, s)| *s);
            let suggestion = crate::suggest::closest(sub, subs)
                .map(|s| display(&reference.resource, &reference.group, Some(s)));
            return ResourceCheck::UnknownSubresource { suggestion };
        }
    }
    ResourceCheck::Known(*scope)
}

fn display(resource: &str, group: &str, subresource: Option<&str>) -> String {
    let mut out = resource.to_string();
    if !group.is_empty() {
        out.push('.');
        out.push_str(group);
    }
    if let Some(sub) = subresource {
        out.push('/');
        out.push_str(sub);
    }
    out
}

/// Names that Kubernetes accepts for namespaces and service accounts
/// (RFC 1123 labels and subdomains).
pub fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

pub fn is_dns_subdomain(text: &str) -> bool {
    !text.is_empty() && text.len() <= 253 && text.split('.').all(is_dns_label)
}

/// How a Kubernetes provider is declared, and how an agent runs there.
pub const RULES: super::KindRules = super::KindRules {
    fields: &["cluster", "oidc_issuer"],
    identity: "cluster",
    example: "cluster = \"prod\"",
    valid_identity: |value| !value.trim().is_empty(),
    invalid_identity: ("a cluster name cannot be empty", "name the cluster"),
    runs_on: &["namespace", "service_account"],
    runs_on_required: &["namespace", "service_account"],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_checked_against_their_groups() {
        let check = |text: &str| check_resource(&ResourceRef::parse(text).unwrap());
        assert_eq!(
            check("pods"),
            ResourceCheck::Known(ResourceScope::Namespaced)
        );
        assert_eq!(check("nodes"), ResourceCheck::Known(ResourceScope::Cluster));
        assert_eq!(
            check("deployments.apps/scale"),
            ResourceCheck::Known(ResourceScope::Namespaced)
        );
        assert_eq!(
            check("deployments"),
            ResourceCheck::WrongGroup {
                suggestion: "deployments.apps".into()
            }
        );
        assert_eq!(
            check("deploymnets.apps"),
            ResourceCheck::UnknownResource {
                suggestion: Some("deployments.apps".into())
            }
        );
        assert_eq!(check("widgets.example.com"), ResourceCheck::Custom);
        assert_eq!(
            check("pods/logs"),
            ResourceCheck::UnknownSubresource {
                suggestion: Some("pods/log".into())
            }
        );
        assert!(ResourceRef::parse("Pods").is_none());
    }
}
