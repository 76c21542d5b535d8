//! A local Kubernetes API server for tests: the part of the protocol writ
//! and `kubectl` use, kept faithful to the real one where it matters.
//!
//! - Resources: core `v1` serviceaccounts, secrets and namespaces;
//!   `rbac.authorization.k8s.io/v1` roles, rolebindings, clusterroles and
//!   clusterrolebindings; `coordination.k8s.io/v1` leases; discovery (`/api`, `/apis`, the resource lists,
//!   `/version`) for kubectl.
//! - Lists across all namespaces or one; `labelSelector` (`=`, `==`, `!=`,
//!   `in`, `notin`, exists, `!`exists) and `fieldSelector` (`metadata.name`,
//!   `metadata.namespace`, and `type` for secrets; anything else is 400);
//!   `limit`/`continue` pagination with `remainingItemCount`, and 410 Gone
//!   for an expired continue token; metadata-only answers
//!   (`as=PartialObjectMetadataList` / `as=PartialObjectMetadata`) when the
//!   client asks for them.
//! - Writes: `POST` (409 `AlreadyExists`, 404 for a missing namespace, 422
//!   for an invalid name or a binding without `roleRef`), `PUT` (409
//!   `Conflict` on a stale `resourceVersion`, 422 on a changed `roleRef`,
//!   400 when the body names another object), `DELETE` with `uid` and
//!   `resourceVersion` preconditions (409) and 404 `NotFound`; only
//!   `application/json` bodies (415 otherwise); a bearer token is required
//!   (401), unless anonymous requests are allowed.
//! - Tokens: `create` on `tokenreviews` (authenticated for a token the
//!   cluster issued, unexpired, meant for an audience asked) and on
//!   `serviceaccounts/token` (TokenRequest: 404 for a missing service
//!   account, 422 under ten minutes).
//! - Every answer carries a `Status` object in the shape the API sends.
//!
//! Test hooks: seeding and reading objects directly, a writer racing the
//! client (its next `PUT`s see the object changed underneath), throttling
//! (429 with `Retry-After`), expiring continue tokens, and a request log.

use crate::http::{Reply as HttpReply, Request};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

pub const TOKEN: &str = "writ-test-token";

/// What the server knows about one resource type.
struct Type {
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    group: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
}

const TYPES: &[Type] = &[
    Type {
        plural: "serviceaccounts",
        singular: "serviceaccount",
        kind: "ServiceAccount",
        group: "",
        namespaced: true,
        short: &["sa"],
    },
    Type {
        plural: "secrets",
        singular: "secret",
        kind: "Secret",
        group: "",
        namespaced: true,
        short: &[],
    },
    Type {
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        group: "",
        namespaced: false,
        short: &["ns"],
    },
    Type {
        plural: "roles",
        singular: "role",
        kind: "Role",
        group: "rbac.authorization.k8s.io",
        namespaced: true,
        short: &[],
    },
    Type {
        plural: "rolebindings",
        singular: "rolebinding",
        kind: "RoleBinding",
        group: "rbac.authorization.k8s.io",
        namespaced: true,
        short: &[],
    },
    Type {
        plural: "clusterroles",
        singular: "clusterrole",
        kind: "ClusterRole",
        group: "rbac.authorization.k8s.io",
        namespaced: false,
        short: &[],
    },
    Type {
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        group: "coordination.k8s.io",
        namespaced: true,
        short: &[],
    },
    Type {
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        kind: "ClusterRoleBinding",
        group: "rbac.authorization.k8s.io",
        namespaced: false,
        short: &[],
    },
];

impl Type {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            "v1".to_string()
        } else {
            format!("{}/v1", self.group)
        }
    }

    fn is_binding(&self) -> bool {
        self.plural.ends_with("bindings")
    }

    /// `roles.rbac.authorization.k8s.io`, as errors name a resource.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn type_of(plural: &str) -> Option<&'static Type> {
    TYPES.iter().find(|t| t.plural == plural)
}

/// One request, as the log keeps it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub accept: String,
}

#[derive(Default)]
struct State {
    /// (plural, namespace or "", name) → object, in etcd's key order.
    objects: BTreeMap<(String, String, String), Value>,
    revision: u64,
    /// Continue tokens made at or before this revision answer 410 Gone.
    expired_before: u64,
    /// The next this many `PUT`s to an existing object find it changed by
    /// another writer first.
    races: usize,
    /// The next this many requests are answered 429.
    throttles: usize,
    /// Writes to this resource (a plural) are forbidden, as RBAC forbids
    /// them to a caller without the verb.
    forbidden: Option<String>,
    /// When the log reaches this length, every continue token expires.
    expire_at: Option<usize>,
    /// Requests without credentials are served (as `system:anonymous` on a
    /// server with anonymous access and generous RBAC); a wrong token
    /// still gets 401.
    anonymous: bool,
    log: Vec<Logged>,
    /// Service account tokens the cluster issued: token → who, for which
    /// audiences, until when (seconds since the epoch), bound to which pod.
    tokens: BTreeMap<String, Token>,
    /// The bodies of the TokenRequests made.
    token_requests: Vec<Value>,
}

/// A token: namespace, service account, audiences, end (seconds since
/// the epoch), the pod it is bound to.
type Token = (String, String, Vec<String>, i64, Option<String>);

/// The audience of a token issued without one: the API server's own.
pub const API_AUDIENCE: &str = "https://kubernetes.default.svc";

/// A TokenReview's or TokenRequest's `spec.audiences`: the API server's
/// own when none are given.
fn audiences_of(body: &Value) -> Vec<String> {
    body["spec"]["audiences"]
        .as_array()
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_else(|| vec![API_AUDIENCE.to_string()])
}

#[derive(Clone)]
pub struct FakeCluster {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// An answer: status, body.
type Reply = (u16, Value);

fn status(code: u16, reason: &str, message: String, details: Value) -> Reply {
    (
        code,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": reason,
            "details": details, "code": code
        }),
    )
}

fn not_found(t: &Type, name: &str) -> Reply {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", t.qualified()),
        json!({"name": name, "group": t.group, "kind": t.plural}),
    )
}

/// The answer for a path the server does not serve.
fn no_such_resource() -> Reply {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource".into(),
        json!({}),
    )
}

fn bad_request(message: String) -> Reply {
    status(400, "BadRequest", message, json!({}))
}

fn invalid(t: &Type, name: &str, field: &str, message: &str) -> Reply {
    let kind = if t.group.is_empty() {
        t.kind.to_string()
    } else {
        format!("{}.{}", t.kind, t.group)
    };
    status(
        422,
        "Invalid",
        format!("{kind} \"{name}\" is invalid: {field}: {message}"),
        json!({"name": name, "group": t.group, "kind": t.kind,
               "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}]}),
    )
}

fn conflict(t: &Type, name: &str, why: &str) -> Reply {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{name}\": {why}",
            t.qualified()
        ),
        json!({"name": name, "group": t.group, "kind": t.plural}),
    )
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<String> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// A DNS-1123 subdomain, as object names must be.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// One requirement of a label selector.
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    Absent(String),
}

fn parse_label_selector(text: &str) -> Result<Vec<Requirement>, String> {
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let mut requirements = Vec::new();
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(|| {
                    format!("unable to parse requirement: found '{rest}', expected: '('")
                })?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let requirement = if let Some((key, value)) = part.split_once("!=") {
            Requirement::NotEquals(key.trim().into(), value.trim().into())
        } else if let Some((key, value)) = part.split_once("==") {
            Requirement::Equals(key.trim().into(), value.trim().into())
        } else if let Some((key, value)) = part.split_once('=') {
            Requirement::Equals(key.trim().into(), value.trim().into())
        } else if let Some((key, rest)) = part.split_once(" notin ") {
            Requirement::NotIn(key.trim().into(), set(rest)?)
        } else if let Some((key, rest)) = part.split_once(" in ") {
            Requirement::In(key.trim().into(), set(rest)?)
        } else if let Some(key) = part.strip_prefix('!') {
            Requirement::Absent(key.trim().into())
        } else if part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            Requirement::Exists(part.into())
        } else {
            return Err(format!("unable to parse requirement: {part}"));
        };
        requirements.push(requirement);
    }
    Ok(requirements)
}

fn labels_match(requirements: &[Requirement], object: &Value) -> bool {
    let label = |key: &str| {
        object["metadata"]["labels"]
            .get(key)
            .and_then(Value::as_str)
    };
    requirements.iter().all(|r| match r {
        Requirement::Equals(k, v) => label(k) == Some(v),
        Requirement::NotEquals(k, v) => label(k) != Some(v),
        Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        Requirement::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
        Requirement::Exists(k) => label(k).is_some(),
        Requirement::Absent(k) => label(k).is_none(),
    })
}

/// (field, value, equal?) requirements of a field selector.
fn parse_field_selector(t: &Type, text: &str) -> Result<Vec<(String, String, bool)>, Reply> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
            (f, v, false)
        } else if let Some((f, v)) = part.split_once("==") {
            (f, v, true)
        } else if let Some((f, v)) = part.split_once('=') {
            (f, v, true)
        } else {
            return Err(bad_request(format!(
                "invalid selector: '{text}'; can't understand '{part}'"
            )));
        };
        let supported = matches!(field, "metadata.name" | "metadata.namespace")
            || (t.plural == "secrets" && field == "type");
        if !supported {
            return Err(bad_request(format!(
                "\"{field}\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
            )));
        }
        out.push((field.to_string(), value.to_string(), equal));
    }
    Ok(out)
}

fn fields_match(requirements: &[(String, String, bool)], object: &Value) -> bool {
    requirements.iter().all(|(field, value, equal)| {
        let actual = match field.as_str() {
            "metadata.name" => object["metadata"]["name"].as_str(),
            "metadata.namespace" => object["metadata"]["namespace"].as_str(),
            _ => object["type"].as_str(),
        }
        .unwrap_or("");
        (actual == value) == *equal
    })
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl FakeCluster {
    pub fn start() -> FakeCluster {
        let state = Arc::new(Mutex::new(State::default()));
        let mut cluster = FakeCluster { port: 0, state };
        for namespace in ["default", "kube-system"] {
            cluster.add_namespace(namespace);
        }
        let server = cluster.clone();
        cluster.port = crate::http::serve(Arc::new(move |request: &Request| {
            let (status, body) = server.handle(request);
            let reply = HttpReply::json(status, &body);
            if status == 429 {
                reply.with_header("Retry-After", "0")
            } else {
                reply
            }
        }));
        cluster
    }

    pub fn server(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig for this server, with context `fake`.
    pub fn write_kubeconfig(&self, file: &Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: writ\ncurrent-context: fake\nusers:\n- name: writ\n  user:\n    token: {TOKEN}\n",
            self.server()
        );
        std::fs::write(file, text).expect("kubeconfig written");
    }

    /// A writ project `acme` in `folder` whose `kubernetes.prod` is this
    /// server, connected through a kubeconfig with context `fake`.
    pub fn write_project(&self, folder: &Path, source: &str) {
        std::fs::create_dir_all(folder).expect("project folder");
        std::fs::write(folder.join("main.writ"), source).expect("source written");
        self.write_kubeconfig(&folder.join("kubeconfig.yaml"));
        std::fs::write(
            folder.join("writ.toml"),
            "[project]\nname = \"acme\"\n\n[provider.kubernetes.prod]\ncontext = \"fake\"\nkubeconfig = \"kubeconfig.yaml\"\ninventory_namespace = \"default\"\n",
        )
        .expect("writ.toml written");
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A token of the service account, as the kubelet projects one into
    /// its pods (bound to a pod of it): for `audiences`, good for
    /// `seconds` from now (a negative number: expired).
    pub fn token_for(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[&str],
        seconds: i64,
    ) -> String {
        let pod = Some(format!("{name}-7d9f-abcde"));
        self.make_token(namespace, name, audiences, seconds, pod)
    }

    /// A token of the service account bound to no pod, as TokenRequest
    /// makes one for whoever may `create` `serviceaccounts/token`.
    pub fn unbound_token_for(&self, namespace: &str, name: &str, audiences: &[&str]) -> String {
        self.make_token(namespace, name, audiences, 600, None)
    }

    fn make_token(
        &self,
        namespace: &str,
        name: &str,
        audiences: &[&str],
        seconds: i64,
        pod: Option<String>,
    ) -> String {
        let mut state = self.state();
        let token = format!("kt-{namespace}-{name}-{}", state.tokens.len() + 1);
        state.tokens.insert(
            token.clone(),
            (
                namespace.to_string(),
                name.to_string(),
                audiences.iter().map(|a| a.to_string()).collect(),
                jiff::Timestamp::now().as_second() + seconds,
                pod,
            ),
        );
        token
    }

    /// The bodies of the TokenRequests the cluster answered.
    pub fn token_requests(&self) -> Vec<Value> {
        self.state().token_requests.clone()
    }

    /// Who the cluster says holds `token`, for `audience`.
    pub fn holder(&self, token: &str, audience: &str) -> Option<String> {
        let state = self.state();
        let (namespace, name, audiences, until, _) = state.tokens.get(token)?;
        (audiences.iter().any(|a| a == audience) && *until > jiff::Timestamp::now().as_second())
            .then(|| format!("{namespace}/{name}"))
    }

    /// `create` on `tokenreviews`: authenticated when the token is one the
    /// cluster issued, not expired, and meant for one of the audiences
    /// asked (the API server's own when none is asked).
    fn token_review(state: &State, body: &Value) -> Reply {
        let token = body["spec"]["token"].as_str().unwrap_or_default();
        let asked = audiences_of(body);
        let status = match state.tokens.get(token) {
            None => {
                json!({"authenticated": false, "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]"})
            }
            Some((_, _, _, until, _)) if *until <= jiff::Timestamp::now().as_second() => {
                json!({"authenticated": false, "error": "[invalid bearer token, service account token has expired]"})
            }
            Some((namespace, name, audiences, _, pod)) => {
                let common: Vec<&String> = audiences.iter().filter(|a| asked.contains(a)).collect();
                if common.is_empty() {
                    json!({"authenticated": false, "error": format!("[invalid bearer token, token audiences {audiences:?} is invalid for the target audiences {asked:?}]")})
                } else {
                    let mut user = json!({
                        "username": format!("system:serviceaccount:{namespace}:{name}"),
                        "uid": format!("uid-{namespace}-{name}"),
                        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{namespace}"), "system:authenticated"],
                    });
                    // A bound token names its pod, as the API server says.
                    if let Some(pod) = pod {
                        user["extra"] = json!({
                            "authentication.kubernetes.io/pod-name": [pod],
                            "authentication.kubernetes.io/pod-uid": [format!("uid-{pod}")],
                        });
                    }
                    json!({"authenticated": true, "user": user, "audiences": common})
                }
            }
        };
        (
            201,
            json!({"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "metadata": {"creationTimestamp": null}, "spec": body["spec"], "status": status}),
        )
    }

    /// `create` on `serviceaccounts/token`: a token of an existing service
    /// account, for ten minutes at least (an hour unless asked).
    fn token_request(state: &mut State, namespace: &str, name: &str, body: &Value) -> Reply {
        let key = (
            "serviceaccounts".to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        if !state.objects.contains_key(&key) {
            return status(
                404,
                "NotFound",
                format!("serviceaccounts \"{name}\" not found"),
                json!({"name": name, "kind": "serviceaccounts"}),
            );
        }
        if body["kind"] != "TokenRequest" {
            return bad_request("the body is not a TokenRequest".to_string());
        }
        let seconds = body["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
        if seconds < 600 {
            return status(
                422,
                "Invalid",
                format!("TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
                json!({"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest", "causes": [{"reason": "FieldValueInvalid", "field": "spec.expirationSeconds"}]}),
            );
        }
        let audiences = audiences_of(body);
        state.token_requests.push(body.clone());
        let token = format!("kt-{namespace}-{name}-{}", state.tokens.len() + 1);
        let until = jiff::Timestamp::now().as_second() + seconds;
        // Bound to a pod only when asked (`boundObjectRef`).
        let bound = &body["spec"]["boundObjectRef"];
        let pod = (bound["kind"] == "Pod")
            .then(|| bound["name"].as_str().map(str::to_string))
            .flatten();
        state.tokens.insert(
            token.clone(),
            (
                namespace.to_string(),
                name.to_string(),
                audiences.clone(),
                until,
                pod,
            ),
        );
        let expires = jiff::Timestamp::from_second(until)
            .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        (
            201,
            json!({
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": now_rfc3339()},
                "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": null},
                "status": {"token": token, "expirationTimestamp": expires},
            }),
        )
    }

    pub fn add_namespace(&self, name: &str) {
        self.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}, "status": {"phase": "Active"}}));
    }

    /// Stores an object as given (for setting up what exists "outside writ"),
    /// with a fresh uid and resourceVersion.
    pub fn insert(&self, mut object: Value) {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let t = TYPES
            .iter()
            .find(|t| t.kind == kind)
            .expect("a kind the fake serves");
        let mut state = self.state();
        state.revision += 1;
        let revision = state.revision;
        let metadata = &mut object["metadata"];
        metadata["uid"] = json!(format!("00000000-0000-4000-8000-{revision:012}"));
        metadata["resourceVersion"] = json!(revision.to_string());
        if metadata.get("creationTimestamp").is_none() {
            metadata["creationTimestamp"] = json!(now_rfc3339());
        }
        let namespace = metadata["namespace"].as_str().unwrap_or("").to_string();
        let name = metadata["name"].as_str().unwrap_or("").to_string();
        state
            .objects
            .insert((t.plural.to_string(), namespace, name), object);
    }

    pub fn get(&self, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        self.state()
            .objects
            .get(&(plural.to_string(), namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// Removes a stored object as another client would.
    pub fn remove(&self, plural: &str, namespace: &str, name: &str) {
        let mut state = self.state();
        state.revision += 1;
        state
            .objects
            .remove(&(plural.to_string(), namespace.to_string(), name.to_string()));
    }

    /// Changes a stored object as another writer would (new resourceVersion).
    pub fn edit(&self, plural: &str, namespace: &str, name: &str, change: impl FnOnce(&mut Value)) {
        let mut state = self.state();
        state.revision += 1;
        let revision = state.revision;
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        let object = state
            .objects
            .get_mut(&key)
            .expect("the object to edit exists");
        change(object);
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
    }

    /// Names of the stored objects of a type (namespace/name, or name).
    pub fn names(&self, plural: &str) -> Vec<String> {
        self.state()
            .objects
            .keys()
            .filter(|(p, _, _)| p == plural)
            .map(|(_, ns, name)| {
                if ns.is_empty() {
                    name.clone()
                } else {
                    format!("{ns}/{name}")
                }
            })
            .collect()
    }

    /// The next `count` `PUT`s to an existing object find it changed by
    /// someone else first, so their resourceVersion is stale.
    pub fn race_next_writes(&self, count: usize) {
        self.state().races = count;
    }

    /// The next `count` requests are answered 429 with `Retry-After: 0`.
    pub fn throttle_next(&self, count: usize) {
        self.state().throttles = count;
    }

    /// Forbids every write to one resource (`rolebindings`), as RBAC does
    /// to a caller that lacks the verb; `None` allows them again.
    pub fn forbid_writes_to(&self, plural: Option<&str>) {
        self.state().forbidden = plural.map(str::to_string);
    }

    /// Serves requests that carry no credentials. kubectl, like every
    /// client-go program, sends no bearer token over plain HTTP.
    pub fn allow_anonymous(&self) {
        self.state().anonymous = true;
    }

    /// The `count`th request from now finds every continue token expired.
    pub fn expire_continue_tokens_at(&self, count: usize) {
        let mut state = self.state();
        state.expire_at = Some(state.log.len() + count);
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    pub fn clear_log(&self) {
        self.state().log.clear();
    }

    fn handle(&self, request: &Request) -> Reply {
        let (method, headers, body) = (request.method.as_str(), &request.headers, &request.body);
        let path = request.path();
        let query = request.query();
        let accept = headers.get("accept").cloned().unwrap_or_default();
        let mut state = self.state();
        state.log.push(Logged {
            method: method.to_string(),
            path: path.to_string(),
            query: query.clone(),
            accept: accept.clone(),
        });
        if state.expire_at == Some(state.log.len()) {
            state.expired_before = state.revision;
            state.revision += 1;
        }
        let credentials = headers.get("authorization");
        let allowed = match credentials {
            Some(value) => value == &format!("Bearer {TOKEN}"),
            None => state.anonymous,
        };
        if !allowed {
            return status(401, "Unauthorized", "Unauthorized".into(), json!({}));
        }
        if state.throttles > 0 {
            state.throttles -= 1;
            return status(
                429,
                "TooManyRequests",
                "the server has received too many requests and has asked us to try again later"
                    .into(),
                json!({"retryAfterSeconds": 0}),
            );
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let Some(plural) = &state.forbidden {
            if method != "GET" && segments.contains(&plural.as_str()) {
                let verb = match method {
                    "POST" => "create",
                    "DELETE" => "delete",
                    "PATCH" => "patch",
                    _ => "update",
                };
                return status(
                    403,
                    "Forbidden",
                    format!(
                        "{plural} is forbidden: User \"writ\" cannot {verb} resource \"{plural}\""
                    ),
                    json!({"kind": plural}),
                );
            }
        }
        // Discovery.
        match segments.as_slice() {
            ["version"] => {
                return (
                    200,
                    json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0-writ-fake", "platform": "linux/amd64"}),
                )
            }
            ["api"] => {
                return (
                    200,
                    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": request.header("host").unwrap_or("127.0.0.1")}]}),
                )
            }
            ["apis"] => {
                return (
                    200,
                    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                        {"name": "rbac.authorization.k8s.io", "versions": [{"groupVersion": "rbac.authorization.k8s.io/v1", "version": "v1"}], "preferredVersion": {"groupVersion": "rbac.authorization.k8s.io/v1", "version": "v1"}},
                        {"name": "coordination.k8s.io", "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}], "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}}]}),
                )
            }
            ["api", "v1"] => return (200, resource_list("")),
            ["apis", "rbac.authorization.k8s.io", "v1"] => {
                return (200, resource_list("rbac.authorization.k8s.io"))
            }
            ["apis", "coordination.k8s.io", "v1"] => {
                return (200, resource_list("coordination.k8s.io"))
            }
            _ => {}
        }
        // Tokens: reviewed, and issued for service accounts.
        match (method, segments.as_slice()) {
            ("POST", ["apis", "authentication.k8s.io", "v1", "tokenreviews"]) => {
                return match serde_json::from_slice::<Value>(body) {
                    Ok(body) => FakeCluster::token_review(&state, &body),
                    Err(e) => bad_request(format!("the body is not JSON: {e}")),
                };
            }
            ("POST", ["api", "v1", "namespaces", ns, "serviceaccounts", name, "token"]) => {
                let (ns, name) = (ns.to_string(), name.to_string());
                return match serde_json::from_slice::<Value>(body) {
                    Ok(body) => FakeCluster::token_request(&mut state, &ns, &name, &body),
                    Err(e) => bad_request(format!("the body is not JSON: {e}")),
                };
            }
            _ => {}
        }
        let (group, rest) = match segments.as_slice() {
            ["api", "v1", rest @ ..] => ("", rest),
            ["apis", "rbac.authorization.k8s.io", "v1", rest @ ..] => {
                ("rbac.authorization.k8s.io", rest)
            }
            ["apis", "coordination.k8s.io", "v1", rest @ ..] => ("coordination.k8s.io", rest),
            _ => return no_such_resource(),
        };
        let (namespace, plural, name) = match rest {
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
            ["namespaces", name] => (None, "namespaces", Some(*name)),
            [plural] => (None, *plural, None),
            [plural, name] => (None, *plural, Some(*name)),
            _ => return no_such_resource(),
        };
        let Some(t) = type_of(plural).filter(|t| t.group == group) else {
            return no_such_resource();
        };
        if namespace.is_some() && !t.namespaced {
            return no_such_resource();
        }
        let metadata_only = accept.contains("as=PartialObjectMetadata");
        let body_json = || -> Result<Value, Reply> {
            let content_type = headers
                .get("content-type")
                .map(String::as_str)
                .unwrap_or("");
            if !content_type.starts_with("application/json") {
                return Err(status(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf; got {content_type:?}"), json!({})));
            }
            serde_json::from_slice(body)
                .map_err(|e| bad_request(format!("the object provided is unrecognized: {e}")))
        };
        match (method, name) {
            ("GET", None) => state.list(t, namespace, &query, metadata_only),
            ("GET", Some(name)) => match state.objects.get(&key(t, namespace, name)) {
                Some(object) if metadata_only => (200, partial(object)),
                Some(object) => (200, object.clone()),
                None => not_found(t, name),
            },
            ("POST", None) => match body_json() {
                Ok(object) => state.create(t, namespace, object),
                Err(reply) => reply,
            },
            ("PUT", Some(name)) => match body_json() {
                Ok(object) => state.replace(t, namespace, name, object),
                Err(reply) => reply,
            },
            ("DELETE", Some(name)) => {
                let options: Value = if body.is_empty() {
                    json!({})
                } else {
                    match body_json() {
                        Ok(options) => options,
                        Err(reply) => return reply,
                    }
                };
                state.delete(t, namespace, name, &options)
            }
            _ => status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource".into(),
                json!({}),
            ),
        }
    }
}

fn key(t: &Type, namespace: Option<&str>, name: &str) -> (String, String, String) {
    (
        t.plural.to_string(),
        if t.namespaced {
            namespace.unwrap_or("").to_string()
        } else {
            String::new()
        },
        name.to_string(),
    )
}

fn partial(object: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]})
}

fn resource_list(group: &str) -> Value {
    let resources: Vec<Value> = TYPES
        .iter()
        .filter(|t| t.group == group)
        .map(|t| {
            json!({
                "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                "kind": t.kind, "shortNames": t.short,
                "verbs": ["create", "delete", "get", "list", "update"]
            })
        })
        .collect();
    let group_version = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

impl State {
    fn list(
        &self,
        t: &Type,
        namespace: Option<&str>,
        query: &BTreeMap<String, String>,
        metadata_only: bool,
    ) -> Reply {
        let labels = match parse_label_selector(
            query.get("labelSelector").map(String::as_str).unwrap_or(""),
        ) {
            Ok(labels) => labels,
            Err(message) => return bad_request(message),
        };
        let fields = match parse_field_selector(
            t,
            query.get("fieldSelector").map(String::as_str).unwrap_or(""),
        ) {
            Ok(fields) => fields,
            Err(reply) => return reply,
        };
        let limit: usize = query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
        // A continue token: the revision the list started at and the last key sent.
        let (revision, after) = match query.get("continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let Some((revision, after)) = unhex(token).and_then(|t| {
                    let (r, rest) = t.split_once('|')?;
                    Some((r.parse::<u64>().ok()?, rest.to_string()))
                }) else {
                    return bad_request("continue key is not valid: illegal base64 data".into());
                };
                if revision <= self.expired_before {
                    return status(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into(), json!({}));
                }
                (revision, Some(after))
            }
            None => (self.revision, None),
        };
        let mut items = Vec::new();
        let mut more = 0usize;
        let mut last = None;
        for ((plural, ns, name), object) in &self.objects {
            if plural != t.plural {
                continue;
            }
            if let Some(namespace) = namespace {
                if ns != namespace {
                    continue;
                }
            }
            let position = format!("{ns}/{name}");
            if after.as_ref().is_some_and(|a| &position <= a) {
                continue;
            }
            if !labels_match(&labels, object) || !fields_match(&fields, object) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                more += 1;
                continue;
            }
            last = Some(position);
            let mut item = if metadata_only {
                partial(object)
            } else {
                object.clone()
            };
            if !metadata_only {
                if let Value::Object(map) = &mut item {
                    map.remove("kind");
                    map.remove("apiVersion");
                }
            }
            items.push(item);
        }
        let mut list_meta = Map::new();
        list_meta.insert("resourceVersion".into(), json!(revision.to_string()));
        if more > 0 {
            let token = hex(&format!("{revision}|{}", last.unwrap_or_default()));
            list_meta.insert("continue".into(), json!(token));
            list_meta.insert("remainingItemCount".into(), json!(more));
        }
        let (kind, api_version) = if metadata_only {
            (
                "PartialObjectMetadataList".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (format!("{}List", t.kind), t.api_version())
        };
        (
            200,
            json!({"kind": kind, "apiVersion": api_version, "metadata": list_meta, "items": items}),
        )
    }

    /// Checks what every write checks: kind, names, the body's namespace.
    fn validate(
        &self,
        t: &Type,
        namespace: Option<&str>,
        object: &Value,
        name: &str,
    ) -> Result<(), Reply> {
        if object["kind"].as_str().is_some_and(|k| k != t.kind)
            || object["apiVersion"]
                .as_str()
                .is_some_and(|v| v != t.api_version())
        {
            return Err(bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({})",
                object["apiVersion"].as_str().unwrap_or(""),
                t.api_version()
            )));
        }
        if !valid_name(name) {
            return Err(invalid(t, name, "metadata.name", "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"));
        }
        if let Some(namespace) = namespace {
            if object["metadata"]["namespace"]
                .as_str()
                .is_some_and(|n| n != namespace)
            {
                return Err(bad_request("the namespace of the provided object does not match the namespace sent on the request".into()));
            }
            if !self.objects.contains_key(&(
                "namespaces".to_string(),
                String::new(),
                namespace.to_string(),
            )) {
                return Err(not_found(type_of("namespaces").unwrap(), namespace));
            }
        }
        if t.is_binding() {
            let role_ref = &object["roleRef"];
            let kind_ok = matches!(role_ref["kind"].as_str(), Some("Role" | "ClusterRole"));
            if !kind_ok || role_ref["name"].as_str().unwrap_or("").is_empty() {
                return Err(invalid(
                    t,
                    name,
                    "roleRef",
                    "Unsupported value: roleRef must name a Role or ClusterRole",
                ));
            }
            if role_ref["apiGroup"].as_str() != Some("rbac.authorization.k8s.io") {
                return Err(invalid(
                    t,
                    name,
                    "roleRef.apiGroup",
                    "Unsupported value: supported values: \"rbac.authorization.k8s.io\"",
                ));
            }
            for subject in object["subjects"].as_array().into_iter().flatten() {
                if subject["kind"].as_str() == Some("ServiceAccount")
                    && subject["namespace"].as_str().unwrap_or("").is_empty()
                {
                    return Err(invalid(t, name, "subjects[0].namespace", "Required value"));
                }
            }
        }
        if matches!(t.plural, "roles" | "clusterroles") {
            for rule in object["rules"].as_array().into_iter().flatten() {
                if rule["verbs"].as_array().is_none_or(|v| v.is_empty()) {
                    return Err(invalid(
                        t,
                        name,
                        "rules[0].verbs",
                        "Required value: verbs must contain at least one value",
                    ));
                }
            }
        }
        Ok(())
    }

    fn stamp(&mut self, object: &mut Value, t: &Type, namespace: Option<&str>) {
        self.revision += 1;
        object["kind"] = json!(t.kind);
        object["apiVersion"] = json!(t.api_version());
        object["metadata"]["resourceVersion"] = json!(self.revision.to_string());
        if let (true, Some(namespace)) = (t.namespaced, namespace) {
            object["metadata"]["namespace"] = json!(namespace);
        }
        if let Value::Object(metadata) = &mut object["metadata"] {
            // Empty maps are not kept, as the real server drops them.
            for key in ["labels", "annotations"] {
                if metadata
                    .get(key)
                    .is_some_and(|m| m.as_object().is_some_and(|m| m.is_empty()) || m.is_null())
                {
                    metadata.remove(key);
                }
            }
        }
    }

    fn create(&mut self, t: &Type, namespace: Option<&str>, mut object: Value) -> Reply {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if let Err(reply) = self.validate(t, namespace, &object, &name) {
            return reply;
        }
        let key = key(t, namespace, &name);
        if self.objects.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", t.qualified()),
                json!({"name": name, "group": t.group, "kind": t.plural}),
            );
        }
        self.stamp(&mut object, t, namespace);
        let revision = self.revision;
        object["metadata"]["uid"] = json!(format!("00000000-0000-4000-8000-{revision:012}"));
        object["metadata"]["creationTimestamp"] = json!(now_rfc3339());
        if let Value::Object(metadata) = &mut object["metadata"] {
            metadata.remove("generation");
        }
        self.objects.insert(key, object.clone());
        (201, object)
    }

    fn replace(
        &mut self,
        t: &Type,
        namespace: Option<&str>,
        name: &str,
        mut object: Value,
    ) -> Reply {
        if object["metadata"]["name"].as_str() != Some(name) {
            return bad_request("the name of the object does not match the name on the URL".into());
        }
        if let Err(reply) = self.validate(t, namespace, &object, name) {
            return reply;
        }
        let key = key(t, namespace, name);
        if self.races > 0 && self.objects.contains_key(&key) {
            // Someone else writes it first.
            self.races -= 1;
            self.revision += 1;
            let revision = self.revision.to_string();
            let current = self.objects.get_mut(&key).unwrap();
            current["metadata"]["resourceVersion"] = json!(revision);
            current["metadata"]["annotations"]["example.com/other-writer"] = json!("was here");
        }
        let Some(current) = self.objects.get(&key) else {
            return not_found(t, name);
        };
        let sent = object["metadata"]["resourceVersion"].as_str().unwrap_or("");
        if !sent.is_empty()
            && sent
                != current["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
        {
            return conflict(t, name, "the object has been modified; please apply your changes to the latest version and try again");
        }
        if t.is_binding() && object["roleRef"] != current["roleRef"] {
            return invalid(t, name, "roleRef", "Invalid value: cannot change roleRef");
        }
        let (uid, created) = (
            current["metadata"]["uid"].clone(),
            current["metadata"]["creationTimestamp"].clone(),
        );
        self.stamp(&mut object, t, namespace);
        object["metadata"]["uid"] = uid;
        object["metadata"]["creationTimestamp"] = created;
        self.objects.insert(key, object.clone());
        (200, object)
    }

    fn delete(&mut self, t: &Type, namespace: Option<&str>, name: &str, options: &Value) -> Reply {
        let key = key(t, namespace, name);
        let Some(current) = self.objects.get(&key) else {
            return not_found(t, name);
        };
        let preconditions = &options["preconditions"];
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            if let Some(wanted) = preconditions[field].as_str() {
                let actual = current["metadata"][field].as_str().unwrap_or("");
                if wanted != actual {
                    return conflict(t, name, &format!("Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"));
                }
            }
        }
        let uid = current["metadata"]["uid"].clone();
        self.objects.remove(&key);
        self.revision += 1;
        (
            200,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "group": t.group, "kind": t.plural, "uid": uid}}),
        )
    }
}
