//! Kubernetes: what writ says (`writ test`, `writ explain`, delegation
//! ceilings, guardrails) against what the lowered Roles and bindings let
//! the API server allow, on random cases.
//!
//! The oracle below is written from upstream RBAC, not from writ:
//! `k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go`
//! (`VerbMatches`, `APIGroupMatches`, `ResourceMatches`,
//! `ResourceNameMatches`) and the RBAC authorizer's rule resolution (a
//! RoleBinding grants its Role's rules in its namespace; a
//! ClusterRoleBinding grants its ClusterRole's rules everywhere, and alone
//! decides requests for cluster-scoped objects). It reads only the lowered
//! objects, as a cluster would.

use crate::support::Random;
use serde_json::Value;
use writ_compiler::eval::{self, Request};
use writ_compiler::facts::ProviderKind;
use writ_compiler::model::Placement;
use writ_compiler::resource::{Resource, ResourceKind};
use writ_compiler::{Code, SourceMap};

/// One request as the API server sees it.
#[derive(Debug, Clone)]
struct ApiRequest {
    verb: &'static str,
    group: &'static str,
    resource: &'static str,
    subresource: Option<&'static str>,
    /// `None`: a cluster-scoped request.
    namespace: Option<&'static str>,
    /// Empty for requests about no one object (list, create, …); for the
    /// others, empty asks about the resource as a whole (as `writ explain`
    /// without `--name` does): see [`cluster_allows`] and [`cluster_allows_every`].
    name: &'static str,
}

/// Verbs whose requests name no object, unless they are for a subresource
/// (a `create` of `serviceaccounts/token` names the account).
const NAMELESS: &[&str] = &["list", "watch", "create", "deletecollection"];

fn names_an_object(verb: &str, subresource: Option<&str>) -> bool {
    subresource.is_some() || !NAMELESS.contains(&verb)
}

impl ApiRequest {
    /// The resource as writ writes it.
    fn writ_resource(&self) -> String {
        let mut text = self.resource.to_string();
        if !self.group.is_empty() {
            text.push('.');
            text.push_str(self.group);
        }
        if let Some(sub) = self.subresource {
            text.push('/');
            text.push_str(sub);
        }
        text
    }
}

// ---- The oracle: upstream's rule matching, over lowered objects. ----

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// `VerbMatches`.
fn verb_matches(rule: &Value, verb: &str) -> bool {
    strings(&rule["verbs"])
        .iter()
        .any(|v| *v == "*" || *v == verb)
}

/// `APIGroupMatches`.
fn api_group_matches(rule: &Value, group: &str) -> bool {
    strings(&rule["api_groups"])
        .iter()
        .any(|g| *g == "*" || *g == group)
}

/// `ResourceMatches`: `*`; the combined `resource/subresource`; or
/// `*/subresource` when the request has that subresource.
fn resource_matches(rule: &Value, combined: &str, subresource: &str) -> bool {
    strings(&rule["resources"]).iter().any(|r| {
        *r == "*"
            || *r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// `ResourceNameMatches`: no names, or the request's name among them.
fn resource_name_matches(rule: &Value, name: &str) -> bool {
    let names = strings(&rule["resource_names"]);
    names.is_empty() || names.contains(&name)
}

fn rule_allows(rule: &Value, request: &ApiRequest) -> bool {
    let combined = match request.subresource {
        Some(sub) => format!("{}/{sub}", request.resource),
        None => request.resource.to_string(),
    };
    verb_matches(rule, request.verb)
        && api_group_matches(rule, request.group)
        && resource_matches(rule, &combined, request.subresource.unwrap_or_default())
        && resource_name_matches(rule, request.name)
}

/// Does the cluster allow `request` for the service account
/// `namespace/name`, given these objects? A request about "any object" is
/// allowed when it is for some object (the names grants use, and another).
fn cluster_allows(objects: &[Resource], account: (&str, &str), request: &ApiRequest) -> bool {
    if request.name.is_empty() && names_an_object(request.verb, request.subresource) {
        return OBJECT_NAMES.iter().chain(&["c"]).any(|name| {
            one_request_allowed(
                objects,
                account,
                &ApiRequest {
                    name,
                    ..request.clone()
                },
            )
        });
    }
    one_request_allowed(objects, account, request)
}

/// Does the cluster allow `request` for every object of its resource? For
/// a request about the whole resource, that is a request for an object no
/// grant names (a rule that matches it matches every name).
fn cluster_allows_every(objects: &[Resource], account: (&str, &str), request: &ApiRequest) -> bool {
    if request.name.is_empty() && names_an_object(request.verb, request.subresource) {
        return one_request_allowed(
            objects,
            account,
            &ApiRequest {
                name: "named-by-no-grant",
                ..request.clone()
            },
        );
    }
    one_request_allowed(objects, account, request)
}

fn one_request_allowed(objects: &[Resource], account: (&str, &str), request: &ApiRequest) -> bool {
    let text = |r: &Resource, key: &str| r.string(key).unwrap_or_default().to_string();
    let binds_account = |binding: &Resource| {
        binding
            .attribute("subjects")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["namespace"] == account.0
                    && s["name"] == account.1
            })
    };
    let rules_of = |kind: ResourceKind, namespace: Option<&str>, name: &str| -> Vec<Value> {
        objects
            .iter()
            .filter(|r| r.kind == kind && r.string("name") == Some(name))
            .filter(|r| namespace.is_none_or(|ns| r.string("namespace") == Some(ns)))
            .flat_map(|r| {
                r.attribute("rules")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    };
    for binding in objects.iter().filter(|r| binds_account(r)) {
        let role_ref = binding
            .attribute("role_ref")
            .cloned()
            .unwrap_or(Value::Null);
        let role_name = role_ref["name"].as_str().unwrap_or_default();
        let role_kind = role_ref["kind"].as_str().unwrap_or_default();
        let rules = match (binding.kind, role_kind) {
            // A RoleBinding counts only in its own namespace.
            (ResourceKind::KubernetesRoleBinding, kind) => {
                let namespace = text(binding, "namespace");
                if request.namespace != Some(namespace.as_str()) {
                    continue;
                }
                if kind == "Role" {
                    rules_of(ResourceKind::KubernetesRole, Some(&namespace), role_name)
                } else {
                    rules_of(ResourceKind::KubernetesClusterRole, None, role_name)
                }
            }
            (ResourceKind::KubernetesClusterRoleBinding, "ClusterRole") => {
                rules_of(ResourceKind::KubernetesClusterRole, None, role_name)
            }
            _ => continue,
        };
        if rules.iter().any(|rule| rule_allows(rule, request)) {
            return true;
        }
    }
    false
}

// ---- Random projects and requests. ----

const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "escalate",
    "bind",
    "impersonate",
];
const NAMED_VERBS: &[&str] = &["get", "update", "patch", "delete"];
/// Grant resources over the request universe below, every form RBAC reads.
const GRANT_RESOURCES: &[&str] = &[
    "*",
    "*.*",
    "*.apps",
    "pods",
    "pods/log",
    "pods/exec",
    "*/log",
    "*.apps/scale",
    "secrets",
    "secrets.*",
    "configmaps",
    "deployments.apps",
    "deployments.apps/scale",
    "deployments.*",
    "widgets.example.com",
    "roles.rbac.authorization.k8s.io",
];
const NAMESPACES: &[&str] = &["team-a", "team-b"];
const OBJECT_NAMES: &[&str] = &["a", "b"];
/// (group, resource, subresources) of the request universe.
const UNIVERSE: &[(&str, &str, &[&str])] = &[
    ("", "pods", &["log", "exec", "status"]),
    ("", "secrets", &[]),
    ("", "configmaps", &[]),
    ("apps", "deployments", &["scale", "status"]),
    ("apps", "replicasets", &["scale"]),
    ("example.com", "widgets", &[]),
    ("rbac.authorization.k8s.io", "roles", &[]),
    ("", "serviceaccounts", &["token"]),
];

fn random_grant(random: &mut Random) -> String {
    let mut verbs: Vec<&str> = Vec::new();
    let named = random.chance(25);
    let pool = if named { NAMED_VERBS } else { VERBS };
    if !named && random.chance(10) {
        verbs.push("*");
    } else {
        for _ in 0..1 + random.next() % 2 {
            let verb = *random.pick(pool);
            if !verbs.contains(&verb) {
                verbs.push(verb);
            }
        }
    }
    let mut resources: Vec<String> = Vec::new();
    for _ in 0..1 + random.next() % 2 {
        let resource = format!("\"{}\"", random.pick(GRANT_RESOURCES));
        if !resources.contains(&resource) {
            resources.push(resource);
        }
    }
    let mut text = format!(
        "kubernetes.prod allow {} on {}",
        verbs.join(", "),
        resources.join(", ")
    );
    if named {
        let names: Vec<String> = OBJECT_NAMES
            .iter()
            .filter(|_| random.chance(60))
            .map(|n| format!("\"{n}\""))
            .collect();
        if !names.is_empty() {
            text.push_str(&format!(" named {}", names.join(", ")));
        }
    }
    if random.chance(30) {
        text.push_str(" in cluster");
    } else {
        text.push_str(&format!(" in namespace \"{}\"", random.pick(NAMESPACES)));
    }
    text
}

const HEADER: &str = "provider kubernetes prod {\n  cluster = \"prod\"\n}\n\n";

fn agent(name: &str, extra: &str, grants: &[String]) -> String {
    let mut text = format!(
        "agent {name} {{\n  owner = \"team\"\n  ttl = 1h\n  runs_on kubernetes.prod namespace \"agents\" service_account \"{name}\"\n{extra}"
    );
    for grant in grants {
        text.push_str(&format!("  {grant}\n"));
    }
    text.push_str("}\n\n");
    text
}

struct Checked {
    model: writ_compiler::model::Model,
    objects: Vec<Resource>,
    codes: Vec<Code>,
}

fn check(source: &str) -> Checked {
    let mut sources = SourceMap::new();
    sources.add("rbac.writ", source);
    let checked = crate::support::check(&sources);
    let desired = writ_compiler::lower::lower(&checked.model, "acme");
    let codes = checked
        .diagnostics
        .iter()
        .chain(&desired.diagnostics)
        .filter(|d| d.is_error())
        .map(|d| d.code)
        .collect();
    Checked {
        model: checked.model,
        objects: desired.resources,
        codes,
    }
}

/// The request as writ's evaluator takes it, handed to `ask`.
fn as_writ_request<T>(
    model: &writ_compiler::model::Model,
    request: &ApiRequest,
    ask: impl FnOnce(&Request) -> T,
) -> T {
    let provider = model
        .provider_id(ProviderKind::Kubernetes, "prod")
        .expect("the provider");
    let placement = match request.namespace {
        Some(namespace) => Placement::Namespace(namespace.to_string()),
        None => Placement::Cluster,
    };
    let resource = request.writ_resource();
    ask(&Request {
        provider,
        action: request.verb,
        resource: &resource,
        placement: &placement,
        name: (!request.name.is_empty()).then_some(request.name),
        context: None,
    })
}

/// What writ's evaluator says of the request: allowed (for every object,
/// when it names none), and allowed for some object (what a `cannot`
/// without `named` and `explain` without `--name` also report).
fn writ_allows(
    model: &writ_compiler::model::Model,
    agent: &str,
    request: &ApiRequest,
) -> (bool, bool) {
    let agent = model.agent_id(agent).expect("the agent");
    as_writ_request(model, request, |request| {
        let every = eval::evaluate(model, agent, request).is_allowed();
        // Some object in the request's own placement: a narrower request
        // that narrows by name alone.
        let some = every
            || eval::reachable_elsewhere(model, agent, request)
                .iter()
                .any(|reach| reach.namespace.is_none());
        (every, some)
    })
}

/// Does writ say the request is allowed, or allowed more narrowly (in a
/// namespace, for a named object)? A `cannot` fails exactly then.
fn writ_reaches(model: &writ_compiler::model::Model, agent: &str, request: &ApiRequest) -> bool {
    let agent = model.agent_id(agent).expect("the agent");
    as_writ_request(model, request, |request| {
        eval::evaluate(model, agent, request).is_allowed()
            || !eval::reachable_elsewhere(model, agent, request).is_empty()
    })
}

/// The number of cases a test runs: `WRIT_RBAC_CASES`, else `default`.
fn cases(default: usize) -> usize {
    std::env::var("WRIT_RBAC_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn writs_evaluator_agrees_with_rbac_on_the_lowered_objects() {
    let mut random = Random(0x5eed_0001);
    let universe = every_request();
    let (mut projects, mut compared, mut allowed) = (0, 0, 0);
    let mut disagreements = Vec::new();
    // Each generated project is asked every request of the universe.
    while projects < cases(100) {
        let grants: Vec<String> = (0..1 + random.next() % 3)
            .map(|_| random_grant(&mut random))
            .collect();
        // Half the projects give `bot` a delegate running as the service
        // account `team-a/a`, whose tokens `bot` then mints.
        let source = if random.chance(50) {
            format!(
                "{HEADER}{}{}",
                agent("bot", "  delegates {\n    ttl = 1h\n  }\n", &grants),
                "agent helper {\n  owner = \"team\"\n  ttl = 1h\n  parent = bot\n  runs_on kubernetes.prod namespace \"team-a\" service_account \"a\"\n}\n"
            )
        } else {
            format!("{HEADER}{}", agent("bot", "", &grants))
        };
        let checked = check(&source);
        if !checked.codes.is_empty() {
            continue;
        }
        projects += 1;
        for request in &universe {
            let cluster = (
                cluster_allows_every(&checked.objects, ("agents", "bot"), request),
                cluster_allows(&checked.objects, ("agents", "bot"), request),
            );
            let writ = writ_allows(&checked.model, "bot", request);
            // Asked cluster-wide: is it allowed anywhere, in any namespace
            // and for any object? That is what a `cannot` must rule out.
            if request.namespace.is_none() {
                let cluster_anywhere =
                    [None, Some("team-a"), Some("team-b")]
                        .into_iter()
                        .any(|namespace| {
                            cluster_allows(
                                &checked.objects,
                                ("agents", "bot"),
                                &ApiRequest {
                                    namespace,
                                    ..request.clone()
                                },
                            )
                        });
                let writ_anywhere = writ_reaches(&checked.model, "bot", request);
                if cluster_anywhere != writ_anywhere && disagreements.len() < 5 {
                    disagreements.push(format!(
                        "{request:?} anywhere: RBAC {cluster_anywhere}, writ {writ_anywhere}\n{}",
                        grants.join("\n")
                    ));
                }
            }
            compared += 1;
            allowed += usize::from(cluster.1);
            if cluster != writ && disagreements.len() < 5 {
                let says = |(every, some): (bool, bool)| match (every, some) {
                    (true, _) => "allows",
                    (false, true) => "allows only some objects",
                    (false, false) => "denies",
                };
                disagreements.push(format!(
                    "{request:?}: RBAC {}, writ {}\n{}",
                    says(cluster),
                    says(writ),
                    grants.join("\n")
                ));
            }
        }
    }
    eprintln!(
        "RBAC oracle: {projects} projects, {compared} requests compared ({allowed} allowed), {} disagreements",
        disagreements.len()
    );
    assert!(
        allowed * 50 > compared,
        "too few allowed cases to mean anything: {allowed}"
    );
    assert!(
        disagreements.is_empty(),
        "writ and RBAC disagree:\n{}",
        disagreements.join("\n\n")
    );
}

/// Every request of the universe, in every namespace and cluster-wide.
fn every_request() -> Vec<ApiRequest> {
    let mut all = Vec::new();
    for &(group, resource, subresources) in UNIVERSE {
        let subs: Vec<Option<&'static str>> = std::iter::once(None)
            .chain(subresources.iter().map(|s| Some(*s)))
            .collect();
        for subresource in subs {
            for verb in VERBS {
                for namespace in [None, Some("team-a"), Some("team-b")] {
                    let names: &[&'static str] = if names_an_object(verb, subresource) {
                        &["", "a", "c"]
                    } else {
                        &[""]
                    };
                    for &name in names {
                        all.push(ApiRequest {
                            verb,
                            group,
                            resource,
                            subresource,
                            namespace,
                            name,
                        });
                    }
                }
            }
        }
    }
    all
}

#[test]
fn an_accepted_delegate_never_holds_more_than_its_parents_ceiling() {
    let mut random = Random(0x5eed_0002);
    let universe = every_request();
    let (mut accepted, mut refused) = (0, 0);
    let mut leaks = Vec::new();
    while accepted + refused < cases(300) {
        let ceiling = random_grant(&mut random);
        // Half the delegates are the ceiling itself or it narrowed to one
        // namespace (which must be accepted), half anything at all.
        let grant = match random.next() % 4 {
            0 => ceiling.clone(),
            1 => ceiling.replace(" in cluster", " in namespace \"team-a\""),
            _ => random_grant(&mut random),
        };
        // The ceiling, lowered as a grant of an agent of its own (in a
        // project of its own), is what the parent lets delegates hold, as
        // RBAC would read it.
        let source = format!(
            "{HEADER}{}{}",
            agent(
                "parent",
                &format!("  delegates {{\n    ttl = 1h\n    {ceiling}\n  }}\n"),
                &[]
            ),
            agent("child", "  parent = parent\n", std::slice::from_ref(&grant)),
        );
        let checked = check(&source);
        if checked.codes.contains(&Code::DelegationExceeds) {
            refused += 1;
            continue;
        }
        if !checked.codes.is_empty() {
            continue;
        }
        let bound = check(&format!(
            "{HEADER}{}",
            agent("bound", "", std::slice::from_ref(&ceiling))
        ));
        if !bound.codes.is_empty() {
            continue;
        }
        accepted += 1;
        for request in &universe {
            if cluster_allows(&checked.objects, ("agents", "child"), request)
                && !cluster_allows(&bound.objects, ("agents", "bound"), request)
                && leaks.len() < 5
            {
                leaks.push(format!(
                    "ceiling: {ceiling}\ndelegate: {grant}\nleaks {request:?}"
                ));
            }
        }
    }
    eprintln!("delegation: {accepted} delegates accepted and brute-forced over {} requests, {refused} refused", universe.len());
    assert!(
        accepted > 20 && refused > 20,
        "accepted {accepted}, refused {refused}"
    );
    assert!(
        leaks.is_empty(),
        "accepted delegates that hold more than the ceiling:\n{}",
        leaks.join("\n\n")
    );
}

/// A grant without its `named` part: what a `deny` of the same shape says.
fn without_names(grant: &str) -> String {
    match grant.split_once(" named ") {
        Some((head, rest)) => match rest.find(" in ") {
            Some(at) => format!("{head}{}", &rest[at..]),
            None => head.to_string(),
        },
        None => grant.to_string(),
    }
}

#[test]
fn a_guardrail_that_holds_is_never_broken_by_the_lowered_objects() {
    let mut random = Random(0x5eed_0003);
    let universe = every_request();
    let (mut holding, mut violated) = (0, 0);
    let mut breaches = Vec::new();
    while holding + violated < cases(300) {
        let grant = random_grant(&mut random);
        // The deny; and the same rule as a grant of an agent of its own, in
        // a project of its own, to read what it denies as RBAC reads a rule
        // (a deny `in cluster` applies everywhere, as a ClusterRoleBinding).
        let shape = without_names(&random_grant(&mut random));
        let deny = shape.replace("kubernetes.prod allow", "deny kubernetes.*");
        let checked = check(&format!(
            "{HEADER}guardrail g {{\n  {deny}\n}}\n\n{}",
            agent("bot", "", std::slice::from_ref(&grant))
        ));
        if checked.codes.iter().any(|c| *c != Code::GuardrailViolation) {
            continue;
        }
        if checked.codes.contains(&Code::GuardrailViolation) {
            violated += 1;
            continue;
        }
        let mirror = check(&format!(
            "{HEADER}{}",
            agent("mirror", "", std::slice::from_ref(&shape))
        ));
        assert!(mirror.codes.is_empty(), "{shape}: {:?}", mirror.codes);
        holding += 1;
        for request in &universe {
            if cluster_allows(&checked.objects, ("agents", "bot"), request)
                && cluster_allows(&mirror.objects, ("agents", "mirror"), request)
                && breaches.len() < 5
            {
                breaches.push(format!(
                    "deny: {deny}\ngrant: {grant}\nboth allow {request:?}"
                ));
            }
        }
    }
    eprintln!("guardrails: {holding} held and brute-forced over {} requests, {violated} reported as violated", universe.len());
    assert!(
        holding > 20 && violated > 20,
        "held {holding}, violated {violated}"
    );
    assert!(
        breaches.is_empty(),
        "guardrails reported as holding that the lowered objects break:\n{}",
        breaches.join("\n\n")
    );
}

/// `writ serve`'s decision engine decides as the evaluator on random
/// Kubernetes projects (verbs, resources with groups and subresources,
/// `named`, placements, a delegate whose tokens its parent mints), for
/// every request of the universe, in every placement and by name.
#[test]
fn the_decision_engine_decides_as_the_evaluator_on_kubernetes() {
    let mut random = Random(0x5eed_0019);
    let universe = every_request();
    let (mut projects, mut compared) = (0, 0);
    while projects < cases(100) {
        let grants: Vec<String> = (0..1 + random.next() % 3)
            .map(|_| random_grant(&mut random))
            .collect();
        let source = if random.chance(50) {
            format!(
                "{HEADER}{}{}",
                agent("bot", "  delegates {\n    ttl = 1h\n  }\n", &grants),
                "agent helper {\n  owner = \"team\"\n  ttl = 1h\n  parent = bot\n  runs_on kubernetes.prod namespace \"team-a\" service_account \"a\"\n}\n"
            )
        } else {
            format!("{HEADER}{}", agent("bot", "", &grants))
        };
        // Projects with findings too: the engine answers any model.
        let checked = check(&source);
        projects += 1;
        let model = &checked.model;
        let engine = writ_compiler::decide::Engine::new(model.clone());
        for agent in 0..model.agents.len() {
            for request in &universe {
                as_writ_request(model, request, |request| {
                    assert_eq!(
                        engine.decide(agent, request),
                        eval::evaluate(model, agent, request),
                        "{request:?} for agent {agent}:\n{source}"
                    );
                });
                compared += 1;
            }
        }
    }
    assert!(compared > 10_000, "{compared} requests compared");
}
