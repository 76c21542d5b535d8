//! The API kinds writ reads and writes, and the translation between an API
//! object and writ's provider-neutral [`Resource`]: one code path for every
//! kind, on `DynamicObject`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use writ_compiler::resource::{Resource, ResourceKind};

/// The annotation that ties a token Secret to its service account.
pub const TOKEN_SA_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// The field selector for token Secrets.
pub const TOKEN_SECRET_SELECTOR: &str = "type=kubernetes.io/service-account-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ServiceAccount,
    Role,
    RoleBinding,
    ClusterRole,
    ClusterRoleBinding,
    TokenSecret,
}

impl Kind {
    /// In the order observe reads them.
    pub const ALL: [Kind; 6] = [
        Kind::ServiceAccount,
        Kind::Role,
        Kind::RoleBinding,
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::TokenSecret,
    ];

    pub fn of(kind: ResourceKind) -> Option<Kind> {
        Some(match kind {
            ResourceKind::KubernetesServiceAccount => Kind::ServiceAccount,
            ResourceKind::KubernetesRole => Kind::Role,
            ResourceKind::KubernetesRoleBinding => Kind::RoleBinding,
            ResourceKind::KubernetesClusterRole => Kind::ClusterRole,
            ResourceKind::KubernetesClusterRoleBinding => Kind::ClusterRoleBinding,
            ResourceKind::KubernetesTokenSecret => Kind::TokenSecret,
            _ => return None,
        })
    }

    pub fn resource_kind(self) -> ResourceKind {
        match self {
            Kind::ServiceAccount => ResourceKind::KubernetesServiceAccount,
            Kind::Role => ResourceKind::KubernetesRole,
            Kind::RoleBinding => ResourceKind::KubernetesRoleBinding,
            Kind::ClusterRole => ResourceKind::KubernetesClusterRole,
            Kind::ClusterRoleBinding => ResourceKind::KubernetesClusterRoleBinding,
            Kind::TokenSecret => ResourceKind::KubernetesTokenSecret,
        }
    }

    pub fn namespaced(self) -> bool {
        !matches!(self, Kind::ClusterRole | Kind::ClusterRoleBinding)
    }

    pub fn is_binding(self) -> bool {
        matches!(self, Kind::RoleBinding | Kind::ClusterRoleBinding)
    }

    pub fn api_resource(self) -> ApiResource {
        let (group, kind, plural) = match self {
            Kind::ServiceAccount => ("", "ServiceAccount", "serviceaccounts"),
            Kind::TokenSecret => ("", "Secret", "secrets"),
            Kind::Role => ("rbac.authorization.k8s.io", "Role", "roles"),
            Kind::RoleBinding => ("rbac.authorization.k8s.io", "RoleBinding", "rolebindings"),
            Kind::ClusterRole => ("rbac.authorization.k8s.io", "ClusterRole", "clusterroles"),
            Kind::ClusterRoleBinding => (
                "rbac.authorization.k8s.io",
                "ClusterRoleBinding",
                "clusterrolebindings",
            ),
        };
        ApiResource {
            group: group.to_string(),
            version: "v1".to_string(),
            api_version: if group.is_empty() {
                "v1".to_string()
            } else {
                format!("{group}/v1")
            },
            kind: kind.to_string(),
            plural: plural.to_string(),
        }
    }

    /// `kubernetes.prod/namespaces/billing/roles/writ-exporter`, as lowering
    /// writes addresses.
    pub fn address(self, provider: &str, namespace: Option<&str>, name: &str) -> String {
        let namespace = namespace.filter(|_| self.namespaced());
        writ_compiler::address::kubernetes(provider, &self.api_resource().plural, namespace, name)
    }
}

/// The service account a token Secret belongs to, from its annotation.
pub fn token_account(metadata: &ObjectMeta) -> String {
    metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TOKEN_SA_ANNOTATION))
        .cloned()
        .unwrap_or_default()
}

fn string_map(map: &Option<BTreeMap<String, String>>) -> Value {
    json!(map.clone().unwrap_or_default())
}

/// A list of strings, sorted and without repeats: RBAC reads them as sets.
fn string_set(value: Option<&Value>) -> Vec<String> {
    let mut items = writ_compiler::resource::strings(value);
    items.sort();
    items.dedup();
    items
}

/// A policy rule in writ's canonical shape (snake_case keys, sorted sets;
/// empty optional lists left out), with the key it is sorted by.
fn canonical_rule(rule: &Value) -> (Vec<Vec<String>>, Value) {
    let api_groups = string_set(rule.get("apiGroups"));
    let verbs = string_set(rule.get("verbs"));
    let resource_names = string_set(rule.get("resourceNames"));
    let resources = string_set(rule.get("resources"));
    let urls = string_set(rule.get("nonResourceURLs"));
    let mut out = Map::new();
    out.insert("api_groups".into(), json!(api_groups));
    out.insert("resources".into(), json!(resources));
    out.insert("verbs".into(), json!(verbs));
    if !resource_names.is_empty() {
        out.insert("resource_names".into(), json!(resource_names));
    }
    if !urls.is_empty() {
        out.insert("non_resource_urls".into(), json!(urls));
    }
    let key = vec![api_groups, verbs, resource_names, resources, urls];
    (key, Value::Object(out))
}

pub fn canonical_rules(rules: Option<&Value>) -> Value {
    let mut rules: Vec<(Vec<Vec<String>>, Value)> = rules
        .and_then(Value::as_array)
        .map(|rules| rules.iter().map(canonical_rule).collect())
        .unwrap_or_default();
    rules.sort_by(|a, b| a.0.cmp(&b.0));
    rules.dedup_by(|a, b| a.0 == b.0);
    Value::Array(rules.into_iter().map(|(_, rule)| rule).collect())
}

fn canonical_subject(subject: &Value) -> Value {
    let mut out = Map::new();
    for (from, to) in [
        ("kind", "kind"),
        ("name", "name"),
        ("namespace", "namespace"),
        ("apiGroup", "api_group"),
    ] {
        if let Some(text) = subject.get(from).and_then(Value::as_str) {
            if !text.is_empty() {
                out.insert(to.into(), json!(text));
            }
        }
    }
    Value::Object(out)
}

/// Subjects sorted by kind, namespace and name: their order means nothing.
pub fn canonical_subjects(subjects: Option<&Value>) -> Value {
    let mut subjects: Vec<Value> = subjects
        .and_then(Value::as_array)
        .map(|items| items.iter().map(canonical_subject).collect())
        .unwrap_or_default();
    let key = |s: &Value| {
        ["kind", "namespace", "name"]
            .map(|k| s.get(k).and_then(Value::as_str).unwrap_or("").to_string())
    };
    subjects.sort_by_key(key);
    subjects.dedup();
    Value::Array(subjects)
}

/// The common attributes of an object from its metadata.
fn common(kind: Kind, metadata: &ObjectMeta) -> BTreeMap<String, Value> {
    let mut attributes = BTreeMap::new();
    attributes.insert(
        "name".to_string(),
        json!(metadata.name.clone().unwrap_or_default()),
    );
    if kind.namespaced() {
        attributes.insert(
            "namespace".to_string(),
            json!(metadata.namespace.clone().unwrap_or_default()),
        );
    }
    if let Some(uid) = &metadata.uid {
        // Observed only: the proof, with writ's inventory record, that a
        // service account is writ's.
        attributes.insert("uid".to_string(), json!(uid));
    }
    if let Some(created) = &metadata.creation_timestamp {
        attributes.insert("created".to_string(), json!(created.0.to_string()));
    }
    attributes
}

/// A listed object as writ's [`Resource`], or `None` for an object without
/// a name (which the API never sends).
pub fn to_resource(provider: &str, kind: Kind, object: &DynamicObject) -> Option<Resource> {
    let metadata = &object.metadata;
    let name = metadata.name.as_deref()?;
    let mut attributes = common(kind, metadata);
    if kind != Kind::TokenSecret {
        attributes.insert("labels".to_string(), string_map(&metadata.labels));
        attributes.insert("annotations".to_string(), string_map(&metadata.annotations));
    }
    let data = &object.data;
    match kind {
        Kind::ServiceAccount => {
            if let Some(automount) = data
                .get("automountServiceAccountToken")
                .and_then(Value::as_bool)
            {
                attributes.insert(
                    "automount_service_account_token".to_string(),
                    json!(automount),
                );
            }
        }
        Kind::Role | Kind::ClusterRole => {
            attributes.insert("rules".to_string(), canonical_rules(data.get("rules")));
        }
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            let role_ref = data.get("roleRef").cloned().unwrap_or(Value::Null);
            let field = |key: &str| role_ref.get(key).and_then(Value::as_str).unwrap_or("");
            attributes.insert(
                "role_ref".to_string(),
                json!({"api_group": field("apiGroup"), "kind": field("kind"), "name": field("name")}),
            );
            attributes.insert(
                "subjects".to_string(),
                canonical_subjects(data.get("subjects")),
            );
        }
        Kind::TokenSecret => {
            attributes.insert(
                "service_account".to_string(),
                json!(token_account(metadata)),
            );
        }
    }
    Some(Resource {
        address: kind.address(provider, metadata.namespace.as_deref(), name),
        provider: provider.to_string(),
        kind: kind.resource_kind(),
        agent: None,
        attributes: attributes.into(),
    })
}

fn text<'a>(attributes: &'a BTreeMap<String, Value>, key: &str) -> &'a str {
    attributes.get(key).and_then(Value::as_str).unwrap_or("")
}

fn labels_of(attributes: &BTreeMap<String, Value>, key: &str) -> Option<BTreeMap<String, String>> {
    let map: BTreeMap<String, String> = attributes
        .get(key)?
        .as_object()?
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    Some(map)
}

/// A list of objects with their keys renamed from writ's to the API's
/// (`api_groups` → `apiGroups`); keys not named are dropped.
fn renamed(items: Option<&Value>, keys: &[(&str, &str)]) -> Vec<Value> {
    items
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let mut out = Map::new();
                    for (from, to) in keys {
                        if let Some(value) = item.get(*from) {
                            out.insert((*to).into(), value.clone());
                        }
                    }
                    Value::Object(out)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The API object for a planned resource's attributes (without a
/// `resourceVersion`: the caller sets one for a replace).
pub fn to_object(kind: Kind, attributes: &BTreeMap<String, Value>) -> DynamicObject {
    let api = kind.api_resource();
    let mut object = DynamicObject::new(text(attributes, "name"), &api);
    if kind.namespaced() {
        object.metadata.namespace = Some(text(attributes, "namespace").to_string());
    }
    object.metadata.labels = labels_of(attributes, "labels");
    object.metadata.annotations = labels_of(attributes, "annotations");
    let mut data = Map::new();
    match kind {
        Kind::ServiceAccount => {
            if let Some(automount) = attributes.get("automount_service_account_token") {
                data.insert("automountServiceAccountToken".into(), automount.clone());
            }
        }
        Kind::Role | Kind::ClusterRole => {
            let rules = renamed(
                attributes.get("rules"),
                &[
                    ("api_groups", "apiGroups"),
                    ("resources", "resources"),
                    ("verbs", "verbs"),
                    ("resource_names", "resourceNames"),
                    ("non_resource_urls", "nonResourceURLs"),
                ],
            );
            data.insert("rules".into(), Value::Array(rules));
        }
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            let role_ref = attributes.get("role_ref").cloned().unwrap_or(Value::Null);
            let field = |key: &str| role_ref.get(key).cloned().unwrap_or(json!(""));
            data.insert(
                "roleRef".into(),
                json!({"apiGroup": field("api_group"), "kind": field("kind"), "name": field("name")}),
            );
            let subjects = renamed(
                attributes.get("subjects"),
                &[
                    ("kind", "kind"),
                    ("name", "name"),
                    ("namespace", "namespace"),
                    ("api_group", "apiGroup"),
                ],
            );
            data.insert("subjects".into(), Value::Array(subjects));
        }
        Kind::TokenSecret => {}
    }
    object.data = Value::Object(data);
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_canonical_whatever_the_order() {
        let a = json!([
            {"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["list", "get", "get"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"], "resourceNames": []}
        ]);
        let b = json!([
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]}
        ]);
        assert_eq!(canonical_rules(Some(&a)), canonical_rules(Some(&b)));
        assert_eq!(
            canonical_rules(Some(&b))[0],
            json!({"api_groups": [""], "resources": ["configmaps", "pods"], "verbs": ["get", "list"]})
        );
    }

    #[test]
    fn an_object_and_its_resource_round_trip() {
        let attributes: BTreeMap<String, Value> = serde_json::from_value(json!({
            "name": "writ-exporter",
            "namespace": "billing",
            "labels": {"app.kubernetes.io/managed-by": "writ"},
            "annotations": {"writ.dev/owner": "team-billing"},
            "role_ref": {"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": "writ-exporter"},
            "subjects": [{"kind": "ServiceAccount", "name": "exporter", "namespace": "billing"}]
        }))
        .unwrap();
        let object = to_object(Kind::RoleBinding, &attributes);
        assert_eq!(
            object.data["roleRef"]["apiGroup"],
            "rbac.authorization.k8s.io"
        );
        let back = to_resource("kubernetes.prod", Kind::RoleBinding, &object).unwrap();
        assert_eq!(*back.attributes, attributes);
        assert_eq!(
            back.address,
            "kubernetes.prod/namespaces/billing/rolebindings/writ-exporter"
        );
    }
}
