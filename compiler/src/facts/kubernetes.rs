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

/// The resources writ knows, as a grant names them (`pods`,
/// `deployments.apps`), with their scope: for an editor's completion and
/// hover.
pub fn known_resources() -> impl Iterator<Item = (String, ResourceScope)> {
    RESOURCES.iter().map(|(resource, group, scope)| {
        let name = if group.is_empty() {
            (*resource).to_string()
        } else {
            format!("{resource}.{group}")
        };
        (name, *scope)
    })
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

/// A resource as a grant writes it, `resource[.group][/subresource]`, typed
/// as RBAC reads a rule: `group` is `""` (the core group), one group, or
/// `"*"` (every group, the core group included); `resource` is one resource
/// or `"*"` (every resource of those groups, with all their subresources);
/// `subresource` is one subresource (`"*/log"`: that subresource of every
/// resource). RBAC compares the rest literally, so partial wildcards
/// (`secret*`), `pods/*`, empty parts and trailing dots are refused by
/// [`ResourceRef::parse`] rather than given a meaning RBAC would not give
/// them.
///
/// `"*"` alone is every resource of the core group, which is what RBAC does
/// with `resources: ["*"]` under `apiGroups: [""]`; `"*.*"` is every
/// resource of every group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    pub resource: String,
    pub group: String,
    pub subresource: Option<String>,
}

/// Why a resource cannot be read as RBAC would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceError {
    /// A part is empty (`"pods."`, `".apps"`, `"pods/"`, `"a..b"`).
    Empty,
    /// Not lower-case letters, digits, `-` and `.`.
    Characters,
    /// A `*` or `?` inside a name: RBAC matches names literally.
    PartialWildcard,
    /// `pods/*`: RBAC has no "every subresource of one resource".
    EverySubresource,
    /// More than one `/`.
    Slashes,
}

impl ResourceError {
    /// What is wrong, in words, and what to write instead.
    pub fn explain(&self, text: &str) -> (String, String) {
        match self {
            ResourceError::Empty => (
                format!("`{text}` has an empty part"),
                "write `resource[.group][/subresource]` with no empty part, as in `\"deployments.apps\"` or `\"pods/log\"`".to_string(),
            ),
            ResourceError::Characters => (
                format!("`{text}` is not a Kubernetes resource"),
                "write `resource[.group][/subresource]` in lower case, as in `\"deployments.apps\"` or `\"pods/log\"`".to_string(),
            ),
            ResourceError::PartialWildcard => (
                format!("`{text}`: RBAC matches resource and group names literally, so a `*` or `?` inside a name matches nothing"),
                "name the resource (`\"secrets\"`), or use `*` alone for a whole part (`\"*\"` is every core resource, `\"*.apps\"` every resource of `apps`, `\"*.*\"` every resource)".to_string(),
            ),
            ResourceError::EverySubresource => (
                format!("`{text}`: RBAC cannot grant every subresource of one resource"),
                "name the subresources (`\"pods/log\"`, `\"pods/exec\"`), or write `\"*/log\"` for one subresource of every resource".to_string(),
            ),
            ResourceError::Slashes => (
                format!("`{text}` has more than one `/`"),
                "write `resource[.group][/subresource]`".to_string(),
            ),
        }
    }
}

/// One concrete request's resource, as RBAC sees it: group, resource and
/// subresource, with no wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requested<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
}

/// The resource part of a grant, as a set of (resource, subresource).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part<'a> {
    /// `*`: every resource, with or without a subresource.
    All,
    /// One resource, or one subresource of it.
    One(&'a str, Option<&'a str>),
    /// `*/sub`: one subresource of every resource.
    EveryResources(&'a str),
}

impl ResourceRef {
    pub fn parse(text: &str) -> Result<ResourceRef, ResourceError> {
        let mut halves = text.split('/');
        let main = halves.next().unwrap_or_default();
        let subresource = halves.next();
        if halves.next().is_some() {
            return Err(ResourceError::Slashes);
        }
        let (resource, group) = match main.split_once('.') {
            Some((resource, group)) => (resource, Some(group)),
            None => (main, None),
        };
        let name = |part: &str| -> Result<(), ResourceError> {
            if part.is_empty() {
                return Err(ResourceError::Empty);
            }
            if part == "*" {
                return Ok(());
            }
            if part.contains(['*', '?']) {
                return Err(ResourceError::PartialWildcard);
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(ResourceError::Characters);
            }
            Ok(())
        };
        name(resource)?;
        if let Some(group) = group {
            if group != "*" {
                for label in group.split('.') {
                    name(label)?;
                    if label == "*" {
                        return Err(ResourceError::PartialWildcard);
                    }
                }
            }
        }
        if let Some(sub) = subresource {
            if sub == "*" {
                return Err(ResourceError::EverySubresource);
            }
            name(sub)?;
        }
        Ok(ResourceRef {
            resource: resource.to_string(),
            group: group.unwrap_or_default().to_string(),
            subresource: subresource.map(str::to_string),
        })
    }

    /// Does this name one concrete resource (no `*`)?
    pub fn is_concrete(&self) -> bool {
        self.resource != "*" && self.group != "*"
    }

    /// `resource/sub` as RBAC rules write it (without the group).
    pub fn rule_resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.resource),
            None => self.resource.clone(),
        }
    }

    /// The request this concrete resource is.
    pub fn requested(&self) -> Requested<'_> {
        Requested {
            group: &self.group,
            resource: &self.resource,
            subresource: self.subresource.as_deref(),
        }
    }

    fn part(&self) -> Part<'_> {
        match (self.resource.as_str(), self.subresource.as_deref()) {
            ("*", None) => Part::All,
            ("*", Some(sub)) => Part::EveryResources(sub),
            (resource, sub) => Part::One(resource, sub),
        }
    }

    /// Does a rule with this resource allow the request? RBAC's own rule:
    /// the group `*` or equal; the resource `*` (any resource, any
    /// subresource), equal with its subresource, or `*/sub` with that
    /// subresource.
    pub fn matches(&self, request: &Requested) -> bool {
        (self.group == "*" || self.group == request.group)
            && match self.part() {
                Part::All => true,
                Part::One(resource, sub) => {
                    resource == request.resource && sub == request.subresource
                }
                Part::EveryResources(sub) => request.subresource == Some(sub),
            }
    }

    /// Does this allow every request `inner` allows? (Delegation.)
    pub fn covers(&self, inner: &ResourceRef) -> bool {
        let group = self.group == "*" || self.group == inner.group;
        group
            && match (self.part(), inner.part()) {
                (Part::All, _) => true,
                (Part::One(a, x), Part::One(b, y)) => a == b && x == y,
                (Part::EveryResources(s), Part::One(_, Some(t))) => s == t,
                (Part::EveryResources(s), Part::EveryResources(t)) => s == t,
                _ => false,
            }
    }

    /// Is there a request both allow? (Guardrails.)
    pub fn meets(&self, other: &ResourceRef) -> bool {
        let group = self.group == "*" || other.group == "*" || self.group == other.group;
        group
            && match (self.part(), other.part()) {
                (Part::All, _) | (_, Part::All) => true,
                (Part::One(a, x), Part::One(b, y)) => a == b && x == y,
                (Part::EveryResources(s), Part::One(_, Some(t)))
                | (Part::One(_, Some(t)), Part::EveryResources(s)) => s == t,
                (Part::EveryResources(s), Part::EveryResources(t)) => s == t,
                _ => false,
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
    if reference.resource == "*" || reference.group == "*" {
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
        if !SUBRESOURCES
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
    fields: &["cluster", "oidc_issuer", "workload_pool"],
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
        assert_eq!(ResourceRef::parse("Pods"), Err(ResourceError::Characters));
    }

    #[test]
    fn resources_rbac_would_read_otherwise_are_refused() {
        for (text, error) in [
            ("secrets.", ResourceError::Empty),
            (".apps", ResourceError::Empty),
            ("pods./exec", ResourceError::Empty),
            ("pods/", ResourceError::Empty),
            ("a..b", ResourceError::Empty),
            ("secret*", ResourceError::PartialWildcard),
            ("deployments.app?", ResourceError::PartialWildcard),
            ("deployments.apps.*", ResourceError::PartialWildcard),
            ("*.*.io", ResourceError::PartialWildcard),
            ("pods/*", ResourceError::EverySubresource),
            ("pods/log/x", ResourceError::Slashes),
        ] {
            assert_eq!(ResourceRef::parse(text), Err(error), "{text}");
        }
        for text in [
            "*",
            "*.*",
            "*.apps",
            "secrets.*",
            "*/log",
            "*.apps/scale",
            "widgets.example.com",
        ] {
            assert!(ResourceRef::parse(text).is_ok(), "{text}");
        }
    }

    /// Every request of a small universe, and every way to write a grant
    /// over it: `covers` and `meets` must be exactly subset and overlap.
    #[test]
    fn covers_and_meets_are_exact_over_every_request() {
        let groups = ["", "apps", "x.io"];
        let resources = ["pods", "secrets", "deployments"];
        let subs = [None, Some("log"), Some("scale")];
        let mut universe = Vec::new();
        for group in groups {
            for resource in resources {
                for sub in subs {
                    universe.push(Requested {
                        group,
                        resource,
                        subresource: sub,
                    });
                }
            }
        }
        let mut specs = Vec::new();
        for group in ["", ".apps", ".x.io", ".*"] {
            for resource in ["pods", "secrets", "*"] {
                for sub in ["", "/log", "/scale"] {
                    specs.push(ResourceRef::parse(&format!("{resource}{group}{sub}")).unwrap());
                }
            }
        }
        let allowed = |spec: &ResourceRef| -> Vec<bool> {
            universe
                .iter()
                .map(|request| spec.matches(request))
                .collect()
        };
        for a in &specs {
            let in_a = allowed(a);
            assert!(in_a.iter().any(|x| *x), "{a:?} allows nothing");
            for b in &specs {
                let in_b = allowed(b);
                let subset = in_b.iter().zip(&in_a).all(|(b, a)| !b || *a);
                let overlap = in_a.iter().zip(&in_b).any(|(a, b)| *a && *b);
                assert_eq!(a.covers(b), subset, "{a:?} covers {b:?}");
                assert_eq!(a.meets(b), overlap, "{a:?} meets {b:?}");
            }
        }
    }
}
