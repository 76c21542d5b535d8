//! A local GCP API for tests: the part writ uses, answering as GCP does.
//!
//! - Resource Manager v3: `GET /v3/projects/{id}` (`name` is
//!   `projects/NUMBER`; 403 for a project the caller cannot see, as GCP
//!   answers for one that does not exist), `POST
//!   /v3/projects/{id}:getIamPolicy` and `:setIamPolicy`;
//! - IAM v1 service accounts: list (`pageSize`, at most 100, and
//!   `pageToken`), create (`accountId` checked against GCP's rule; 409
//!   `ALREADY_EXISTS`), get, patch (`updateMask`), delete, `:disable`,
//!   `:enable`, and `:getIamPolicy` (`options.requestedPolicyVersion`) and
//!   `:setIamPolicy` on one, and its user-managed keys (`GET …/keys`);
//! - Storage v1 bucket policies: `GET` and `PUT /storage/v1/b/{bucket}/iam`;
//! - IAM v1 workload identity pools and their providers: list (paged,
//!   `showDeleted`), get, create (409 while the id is taken, deleted or
//!   not), patch (`updateMask`), delete (kept, `DELETED`), `:undelete`,
//!   each a long-running operation polled until done; bodies checked as
//!   IAM checks them (ids, lengths, mapping keys, the condition GitHub's
//!   issuer requires);
//! - IAM Service Account Credentials v1 `generateAccessToken` (an enabled
//!   account, a required `scope`, a `lifetime` of an hour at most);
//! - Cloud Asset v1 `searchAllIamPolicies` in the project (`query`
//!   `policy:TEXT`), naming resources as Cloud Asset does (a project by its
//!   number, a service account by its unique id); 403 when the API is not
//!   enabled;
//! - every policy has an `etag`, new on each write; a write whose `etag` is
//!   not the current one is 409 `ABORTED` (Cloud Storage: 412), as a
//!   concurrent change is; a
//!   policy with conditions must be written at version 3 (400
//!   `INVALID_ARGUMENT`), and a service account member must exist (400);
//! - 401 `UNAUTHENTICATED` for a missing or unknown token; errors in GCP's
//!   `{"error": {"code", "message", "status"}}` form.
//!
//! Test hooks: quota (429) and outage (an HTML 503) answers, another
//! writer changing a policy between writ's read and
//! write, a binding added by hand, and a request log, which `discovery`
//! checks against Google's own description of these APIs.

pub mod discovery;

use crate::http::{Reply, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

pub const TOKEN: &str = "ya29.writ-test-token";

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    /// The path and query, as sent.
    pub target: String,
    /// The JSON body (`null` when none).
    pub body: Value,
    /// The project billed (`x-goog-user-project`), when named.
    pub user_project: Option<String>,
    pub status: u16,
}

#[derive(Default)]
struct State {
    project: String,
    number: String,
    /// The next requests answered with these statuses (429, 503, …).
    failures: Vec<u16>,
    /// Service accounts by email.
    accounts: BTreeMap<String, Value>,
    /// Policies by resource (`projects/P`, `projects/_/buckets/B`,
    /// `projects/P/serviceAccounts/EMAIL`): `version`, `etag`, `bindings`.
    policies: BTreeMap<String, Value>,
    /// Buckets that exist.
    buckets: Vec<String>,
    /// User-managed keys by service account.
    keys: BTreeMap<String, Vec<Value>>,
    /// The Cloud Asset API is not enabled.
    asset_disabled: bool,
    /// The next create finds the account made already (as a retried
    /// create whose first attempt went through would): 409.
    race_create: bool,
    next_etag: u64,
    /// Workload identity pools by id, and their providers by (pool, id),
    /// deleted ones included (state `DELETED`).
    pools: BTreeMap<String, Value>,
    pool_providers: BTreeMap<(String, String), Value>,
    /// Long-running operations by name, as they answer once done.
    operations: BTreeMap<String, Value>,
    next_operation: u64,
    /// Before the next write of this policy, another writer adds this
    /// binding (so writ's `etag` is stale).
    interloper: Option<(String, Value)>,
    log: Vec<Logged>,
}

#[derive(Clone)]
pub struct FakeGcp {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": status, "message": message, "status": code}}),
    )
}

impl FakeGcp {
    /// A server for project `id` (number `number`), with these buckets.
    pub fn start(id: &str, number: &str, buckets: &[&str]) -> FakeGcp {
        let state = Arc::new(Mutex::new(State {
            project: id.to_string(),
            number: number.to_string(),
            buckets: buckets.iter().map(|b| b.to_string()).collect(),
            ..State::default()
        }));
        let mut gcp = FakeGcp { port: 0, state };
        let server = gcp.clone();
        gcp.port = crate::http::serve(Arc::new(move |request: &Request| {
            let reply = server.handle(request);
            server.state().log.push(Logged {
                method: request.method.clone(),
                path: request.path().to_string(),
                target: request.target.clone(),
                body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
                user_project: request.header("x-goog-user-project").map(str::to_string),
                status: reply.status,
            });
            reply
        }));
        gcp
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next service account create meets the account made already,
    /// as asked: a first attempt that went through before its answer was
    /// lost.
    pub fn race_next_create(&self) {
        self.state().race_create = true;
    }

    /// The Cloud Asset API is not enabled in the project.
    pub fn disable_asset_search(&self) {
        self.state().asset_disabled = true;
    }

    /// The next requests are answered with these statuses, in order: a
    /// quota (429) or an outage (503) as GCP's front end gives them.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state().failures = statuses.to_vec();
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    /// A service account someone made (`description` as given).
    pub fn add_account(&self, account_id: &str, description: &str) {
        let mut state = self.state();
        let email = format!("{account_id}@{}.iam.gserviceaccount.com", state.project);
        let account = account_json(&state.project, &email, "", description);
        state.accounts.insert(email, account);
    }

    /// A user-managed key of a service account, made at `created`.
    pub fn add_key(&self, email: &str, id: &str, created: &str) {
        let mut state = self.state();
        let name = format!(
            "projects/{}/serviceAccounts/{email}/keys/{id}",
            state.project
        );
        state.keys.entry(email.to_string()).or_default().push(json!({
            "name": name, "validAfterTime": created, "validBeforeTime": "9999-12-31T23:59:59Z",
            "keyAlgorithm": "KEY_ALG_RSA_2048", "keyOrigin": "GOOGLE_PROVIDED", "keyType": "USER_MANAGED", "disabled": false,
        }));
    }

    /// A workload identity pool (`provider`: one of its providers), as
    /// IAM holds it, deleted or not.
    pub fn pool(&self, pool: &str, provider: Option<&str>) -> Option<Value> {
        let state = self.state();
        match provider {
            None => state.pools.get(pool).cloned(),
            Some(id) => state
                .pool_providers
                .get(&(pool.to_string(), id.to_string()))
                .cloned(),
        }
    }

    /// A provider someone added to a pool (`description` as given).
    pub fn add_pool_provider(&self, pool: &str, id: &str, description: &str) {
        let mut state = self.state();
        let name = format!(
            "projects/{}/locations/global/workloadIdentityPools/{pool}/providers/{id}",
            state.project
        );
        state.pool_providers.insert(
            (pool.to_string(), id.to_string()),
            json!({"name": name, "state": "ACTIVE", "description": description, "disabled": false,
                "attributeMapping": {"google.subject": "assertion.sub", "attribute.writ_publisher": "\"true\""},
                "oidc": {"issuerUri": "https://issuer.example.com"}}),
        );
    }

    /// A field of a pool's provider set by hand (as `gcloud … update-oidc`
    /// would).
    pub fn set_provider_field(&self, pool: &str, id: &str, path: &[&str], value: Value) {
        let mut state = self.state();
        if let Some(provider) = state
            .pool_providers
            .get_mut(&(pool.to_string(), id.to_string()))
        {
            let mut target = provider;
            for key in &path[..path.len() - 1] {
                target = &mut target[*key];
            }
            target[path[path.len() - 1]] = value;
        }
    }

    /// A pool someone deleted (within 30 days: its id still taken).
    pub fn delete_pool(&self, pool: &str) {
        if let Some(found) = self.state().pools.get_mut(pool) {
            found["state"] = json!("DELETED");
        }
    }

    /// The user-managed keys of a service account, as IAM holds them.
    pub fn keys(&self, email: &str) -> Vec<Value> {
        self.state().keys.get(email).cloned().unwrap_or_default()
    }

    pub fn account(&self, email: &str) -> Option<Value> {
        self.state().accounts.get(email).cloned()
    }

    /// A policy as GCP holds it (`None`: never written).
    pub fn policy(&self, resource: &str) -> Option<Value> {
        self.state().policies.get(resource).cloned()
    }

    /// A binding added by hand (or by another tool).
    pub fn add_binding(&self, resource: &str, binding: Value) {
        let mut state = self.state();
        state.next_etag += 1;
        let etag = format!("BwX{}", state.next_etag);
        let policy = state
            .policies
            .entry(resource.to_string())
            .or_insert_with(|| json!({"version": 1, "bindings": []}));
        policy["bindings"].as_array_mut().unwrap().push(binding);
        policy["etag"] = json!(etag);
        policy["version"] = json!(3);
    }

    /// Before writ's next write of `resource`'s policy, another writer
    /// adds `binding`.
    pub fn interleave(&self, resource: &str, binding: Value) {
        self.state().interloper = Some((resource.to_string(), binding));
    }

    fn read_policy(state: &mut State, resource: &str) -> Value {
        if !state.policies.contains_key(resource) {
            state.next_etag += 1;
            let etag = format!("BwX{}", state.next_etag);
            state.policies.insert(
                resource.to_string(),
                json!({"version": 1, "etag": etag, "bindings": []}),
            );
        }
        state.policies[resource].clone()
    }

    /// A policy write: the `etag` must be the current one, conditions need
    /// version 3, service account members must exist.
    fn write_policy(&self, resource: &str, policy: &Value) -> Result<Value, Reply> {
        let interloper = {
            let mut state = self.state();
            match state.interloper.take() {
                Some((target, binding)) if target == resource => Some(binding),
                other => {
                    state.interloper = other;
                    None
                }
            }
        };
        if let Some(binding) = interloper {
            self.add_binding(resource, binding);
        }
        let mut state = self.state();
        let current = Self::read_policy(&mut state, resource);
        if policy["etag"] != current["etag"] && resource.starts_with("projects/_/buckets/") {
            // Cloud Storage answers a stale `etag` with 412.
            return Err(error(412, "conditionNotMet", "Precondition Failed"));
        }
        if policy["etag"] != current["etag"] {
            return Err(error(
                409,
                "ABORTED",
                "There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.",
            ));
        }
        let bindings = policy["bindings"].as_array().cloned().unwrap_or_default();
        for binding in &bindings {
            if binding.get("condition").is_some() && policy["version"] != 3 {
                return Err(error(
                    400,
                    "INVALID_ARGUMENT",
                    "Conditions are only supported in policy version 3",
                ));
            }
            for member in binding["members"].as_array().into_iter().flatten() {
                if let Some(email) = member
                    .as_str()
                    .and_then(|m| m.strip_prefix("serviceAccount:"))
                {
                    if email.ends_with(&format!("@{}.iam.gserviceaccount.com", state.project))
                        && !state.accounts.contains_key(email)
                    {
                        return Err(error(
                            400,
                            "INVALID_ARGUMENT",
                            &format!("Service account {email} does not exist."),
                        ));
                    }
                }
            }
        }
        state.next_etag += 1;
        let written = json!({"version": policy["version"], "etag": format!("BwX{}", state.next_etag), "bindings": bindings});
        state.policies.insert(resource.to_string(), written.clone());
        Ok(written)
    }

    fn handle(&self, request: &Request) -> Reply {
        let failure = {
            let mut state = self.state();
            (!state.failures.is_empty()).then(|| state.failures.remove(0))
        };
        match failure {
            Some(429) => return error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Read requests' of service 'iam.googleapis.com'.",
            ),
            // The front end's own page, not JSON.
            Some(status) => {
                return Reply {
                    status,
                    headers: vec![("Content-Type".to_string(), "text/html".to_string())],
                    body: "<html><body>Service Unavailable</body></html>".to_string(),
                }
            }
            None => {}
        }
        if request.header("authorization") != Some(format!("Bearer {TOKEN}").as_str()) {
            return error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            );
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let path = request.path().to_string();
        let project = self.state().project.clone();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let method = request.method.as_str();
        match (method, segments.as_slice()) {
            ("GET", ["v3", "projects", id]) => {
                if *id != project {
                    return error(
                        403,
                        "PERMISSION_DENIED",
                        &format!("Permission denied on resource project {id}."),
                    );
                }
                let number = self.state().number.clone();
                Reply::json(
                    200,
                    &json!({"name": format!("projects/{number}"), "projectId": project, "state": "ACTIVE"}),
                )
            }
            ("GET", ["v1", "projects", call]) if call.ends_with(":searchAllIamPolicies") => {
                self.search(call.trim_end_matches(":searchAllIamPolicies"), request)
            }
            ("POST", ["v3", "projects", call]) => {
                let (id, verb) = call.split_once(':').unwrap_or((call, ""));
                if id != project {
                    return error(403, "PERMISSION_DENIED", "Permission denied.");
                }
                let resource = format!("projects/{id}");
                match verb {
                    "getIamPolicy" => {
                        Reply::json(200, &Self::read_policy(&mut self.state(), &resource))
                    }
                    "setIamPolicy" => match self.write_policy(&resource, &body["policy"]) {
                        Ok(policy) => Reply::json(200, &policy),
                        Err(reply) => reply,
                    },
                    _ => error(404, "NOT_FOUND", "Not found"),
                }
            }
            (_, ["storage", "v1", "b", bucket, "iam"]) => {
                if !self.state().buckets.iter().any(|b| b == bucket) {
                    return error(404, "NOT_FOUND", "The specified bucket does not exist.");
                }
                let resource = format!("projects/_/buckets/{bucket}");
                let shaped = |policy: Value| {
                    let mut policy = policy;
                    policy["kind"] = json!("storage#policy");
                    policy["resourceId"] = json!(resource.clone());
                    policy
                };
                match method {
                    "GET" => {
                        if request
                            .query()
                            .get("optionsRequestedPolicyVersion")
                            .map(String::as_str)
                            != Some("3")
                        {
                            return error(
                                400,
                                "INVALID_ARGUMENT",
                                "Policy version 3 must be requested for conditions",
                            );
                        }
                        Reply::json(
                            200,
                            &shaped(Self::read_policy(&mut self.state(), &resource)),
                        )
                    }
                    "PUT" => match self.write_policy(&resource, &body) {
                        Ok(policy) => Reply::json(200, &shaped(policy)),
                        Err(reply) => reply,
                    },
                    _ => error(405, "METHOD_NOT_ALLOWED", "Method not allowed"),
                }
            }
            (
                _,
                ["v1", "projects", id, "locations", "global", "workloadIdentityPools", rest @ ..],
            ) => {
                if *id != project {
                    return error(403, "PERMISSION_DENIED", "Permission denied.");
                }
                self.pools(method, rest, request, &body)
            }
            ("POST", ["v1", "projects", "-", "serviceAccounts", call])
                if call.ends_with(":generateAccessToken") =>
            {
                self.generate_access_token(call, &body)
            }
            (_, ["v1", "projects", id, "serviceAccounts", rest @ ..]) => {
                if *id != project {
                    return error(403, "PERMISSION_DENIED", "Permission denied.");
                }
                self.accounts(method, rest, request, &body)
            }
            _ => error(404, "NOT_FOUND", &format!("no route for {method} {path}")),
        }
    }

    /// Workload identity pools and their providers
    /// (`/v1/projects/P/locations/global/workloadIdentityPools…`): list
    /// (deleted ones only with `showDeleted`), get (deleted ones too),
    /// create (409 while the id is taken, deleted or not), patch
    /// (`updateMask`), delete (kept 30 days, state `DELETED`), undelete;
    /// each change a long-running operation, done when first looked at.
    fn pools(&self, method: &str, rest: &[&str], request: &Request, body: &Value) -> Reply {
        let project = self.state().project.clone();
        let parent = format!("projects/{project}/locations/global/workloadIdentityPools");
        let (last, verb) = match rest.last() {
            Some(last) => last.split_once(':').unwrap_or((last, "")),
            None => ("", ""),
        };
        let mut path: Vec<&str> = rest.to_vec();
        if let Some(end) = path.last_mut() {
            *end = last;
        }
        let query = request.query();
        match (method, path.as_slice(), verb) {
            // An operation, done.
            ("GET", [.., "operations", _], "") => {
                let name = format!("{parent}/{}", path.join("/"));
                match self.state().operations.get(&name) {
                    Some(operation) => Reply::json(200, operation),
                    None => error(404, "NOT_FOUND", "Operation not found"),
                }
            }
            ("GET", [] | [_, "providers"], "") => {
                let pool = path.first().copied();
                let state = self.state();
                let all: Vec<Value> = match pool {
                    None => state.pools.values().cloned().collect(),
                    Some(pool) => {
                        if !state.pools.contains_key(pool) {
                            return error(404, "NOT_FOUND", "Requested entity was not found.");
                        }
                        state
                            .pool_providers
                            .iter()
                            .filter(|((p, _), _)| p == pool)
                            .map(|(_, v)| v.clone())
                            .collect()
                    }
                };
                let shown: Vec<Value> = all
                    .into_iter()
                    .filter(|v| {
                        query.get("showDeleted").map(String::as_str) == Some("true")
                            || v["state"] != "DELETED"
                    })
                    .collect();
                let size = query
                    .get("pageSize")
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(50)
                    .clamp(1, 1000);
                let start = query
                    .get("pageToken")
                    .and_then(|t| t.parse::<usize>().ok())
                    .unwrap_or(0);
                let key = if pool.is_none() {
                    "workloadIdentityPools"
                } else {
                    "workloadIdentityPoolProviders"
                };
                let mut answer =
                    json!({key: shown.iter().skip(start).take(size).cloned().collect::<Vec<_>>()});
                if start + size < shown.len() {
                    answer["nextPageToken"] = json!((start + size).to_string());
                }
                Reply::json(200, &answer)
            }
            ("POST", [], "") | ("POST", [_, "providers"], "") => {
                let pool = path.first().map(|p| p.to_string());
                let (id, key) = match &pool {
                    None => (
                        query
                            .get("workloadIdentityPoolId")
                            .cloned()
                            .unwrap_or_default(),
                        None,
                    ),
                    Some(pool) => {
                        let id = query
                            .get("workloadIdentityPoolProviderId")
                            .cloned()
                            .unwrap_or_default();
                        (id.clone(), Some((pool.clone(), id)))
                    }
                };
                let valid = (4..=32).contains(&id.len())
                    && !id.starts_with("gcp-")
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !valid {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        "The ID must be 4 to 32 characters of [a-z0-9-], not starting with gcp-.",
                    );
                }
                if let Err(reply) = check_pool_body(body, key.is_some()) {
                    return reply;
                }
                let mut state = self.state();
                let name = match &pool {
                    None => format!("{parent}/{id}"),
                    Some(pool) => {
                        match state.pools.get(pool) {
                            None => {
                                return error(404, "NOT_FOUND", "Requested entity was not found.")
                            }
                            Some(p) if p["state"] == "DELETED" => {
                                return error(400, "FAILED_PRECONDITION", "The pool is deleted.")
                            }
                            Some(_) => {}
                        }
                        format!("{parent}/{pool}/providers/{id}")
                    }
                };
                let taken = match &key {
                    None => state.pools.contains_key(&id),
                    Some(key) => state.pool_providers.contains_key(key),
                };
                if taken {
                    return error(
                        409,
                        "ALREADY_EXISTS",
                        &format!("{name} already exists (a deleted one keeps its id for 30 days)."),
                    );
                }
                let mut object = body.clone();
                object["name"] = json!(name);
                object["state"] = json!("ACTIVE");
                match key {
                    None => state.pools.insert(id, object.clone()),
                    Some(key) => state.pool_providers.insert(key, object.clone()),
                };
                Reply::json(200, &Self::operation(&mut state, &name, object))
            }
            (_, [pool], _) | (_, [pool, "providers", _], _) => {
                let key = match path.as_slice() {
                    [_, "providers", id] => Some((pool.to_string(), id.to_string())),
                    _ => None,
                };
                let mut state = self.state();
                let name = match &key {
                    None => format!("{parent}/{pool}"),
                    Some((pool, id)) => format!("{parent}/{pool}/providers/{id}"),
                };
                let current = match &key {
                    None => state.pools.get(*pool).cloned(),
                    Some(key) => state.pool_providers.get(key).cloned(),
                };
                let Some(mut object) = current else {
                    return error(404, "NOT_FOUND", "Requested entity was not found.");
                };
                match (method, verb) {
                    ("GET", "") => return Reply::json(200, &object),
                    ("PATCH", "") => {
                        if object["state"] == "DELETED" {
                            return error(400, "FAILED_PRECONDITION", "The object is deleted.");
                        }
                        let mask = query.get("updateMask").cloned().unwrap_or_default();
                        let mut merged = object.clone();
                        for field in mask.split(',').filter(|f| !f.is_empty()) {
                            merged[field] = body.get(field).cloned().unwrap_or(Value::Null);
                        }
                        if let Err(reply) = check_pool_body(&merged, key.is_some()) {
                            return reply;
                        }
                        object = merged;
                    }
                    ("DELETE", "") => object["state"] = json!("DELETED"),
                    ("POST", "undelete") => {
                        if object["state"] != "DELETED" {
                            return error(400, "FAILED_PRECONDITION", "The object is not deleted.");
                        }
                        object["state"] = json!("ACTIVE");
                    }
                    _ => return error(404, "NOT_FOUND", "Not found"),
                }
                match key {
                    None => state.pools.insert(pool.to_string(), object.clone()),
                    Some(key) => state.pool_providers.insert(key, object.clone()),
                };
                Reply::json(200, &Self::operation(&mut state, &name, object))
            }
            _ => error(404, "NOT_FOUND", "Not found"),
        }
    }

    /// A long-running operation on `name`, not done yet; done, with
    /// `response`, when first looked at.
    fn operation(state: &mut State, name: &str, response: Value) -> Value {
        state.next_operation += 1;
        let operation = format!("{name}/operations/op{}", state.next_operation);
        state.operations.insert(
            operation.clone(),
            json!({"name": operation, "done": true, "response": response}),
        );
        json!({"name": operation, "done": false})
    }

    /// Cloud Asset's `searchAllIamPolicies` in the project, for the query
    /// writ sends (`policy:writ-`): every policy with a member that
    /// mentions it, named as Cloud Asset names resources (a project by its
    /// number, a service account by its unique id).
    fn search(&self, scope: &str, request: &Request) -> Reply {
        let state = self.state();
        if scope != state.project {
            return error(403, "PERMISSION_DENIED", "Permission denied.");
        }
        if state.asset_disabled {
            return error(403, "PERMISSION_DENIED", "Cloud Asset API has not been used in project before or it is disabled. Enable it by visiting the console, then retry.");
        }
        let query = request.query();
        let Some(needle) = query.get("query").and_then(|q| q.strip_prefix("policy:")) else {
            return error(400, "INVALID_ARGUMENT", "Invalid query.");
        };
        let mut results = Vec::new();
        for (resource, policy) in &state.policies {
            let mentions = policy["bindings"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|b| b["members"].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .any(|m| m.contains(needle));
            if !mentions {
                continue;
            }
            let parts: Vec<&str> = resource.split('/').collect();
            let (full, kind) = match parts.as_slice() {
                ["projects", _] => (
                    format!(
                        "//cloudresourcemanager.googleapis.com/projects/{}",
                        state.number
                    ),
                    "cloudresourcemanager.googleapis.com/Project",
                ),
                ["projects", "_", "buckets", _] => (
                    format!("//storage.googleapis.com/{resource}"),
                    "storage.googleapis.com/Bucket",
                ),
                ["projects", p, "serviceAccounts", email] => {
                    let unique = state
                        .accounts
                        .get(*email)
                        .and_then(|a| a["uniqueId"].as_str())
                        .unwrap_or("0");
                    (
                        format!("//iam.googleapis.com/projects/{p}/serviceAccounts/{unique}"),
                        "iam.googleapis.com/ServiceAccount",
                    )
                }
                _ => continue,
            };
            results.push(json!({
                "resource": full, "assetType": kind,
                "project": format!("projects/{}", state.number),
                "policy": {"bindings": policy["bindings"]},
            }));
        }
        Reply::json(200, &json!({"results": results}))
    }

    /// IAM Service Account Credentials' `generateAccessToken`: a token of
    /// an enabled account of the project, for `lifetime` (at most an
    /// hour, the default) and the `scope` asked, which is required.
    fn generate_access_token(&self, call: &str, body: &Value) -> Reply {
        let email = crate::http::percent_decode(call.trim_end_matches(":generateAccessToken"));
        let state = self.state();
        let Some(account) = state.accounts.get(&email) else {
            return error(
                404,
                "NOT_FOUND",
                &format!("Not found; Gaia id not found for email {email}"),
            );
        };
        if account["disabled"] == true {
            return error(400, "FAILED_PRECONDITION", "Precondition check failed.");
        }
        let scopes_given = body["scope"].as_array().is_some_and(|s| !s.is_empty());
        if !scopes_given {
            return error(400, "INVALID_ARGUMENT", "Scope required.");
        }
        let seconds = match body["lifetime"].as_str() {
            None => 3600,
            Some(text) => match text.strip_suffix('s').and_then(|n| n.parse::<i64>().ok()) {
                Some(n) if (1..=3600).contains(&n) => n,
                _ => {
                    return error(
                        400,
                        "INVALID_ARGUMENT",
                        "The lifetime must be between 1 and 3600 seconds.",
                    )
                }
            },
        };
        let expires = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(seconds))
            .unwrap()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        Reply::json(
            200,
            &json!({"accessToken": format!("ya29.sa-{}-{seconds}", email.split('@').next().unwrap_or_default()), "expireTime": expires}),
        )
    }

    fn accounts(&self, method: &str, rest: &[&str], request: &Request, body: &Value) -> Reply {
        let project = self.state().project.clone();
        match (method, rest) {
            ("GET", []) => {
                let query = request.query();
                let size = query
                    .get("pageSize")
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(100)
                    .clamp(1, 100);
                let start = query
                    .get("pageToken")
                    .and_then(|t| t.parse::<usize>().ok())
                    .unwrap_or(0);
                let state = self.state();
                let all: Vec<&Value> = state.accounts.values().collect();
                let page: Vec<Value> = all
                    .iter()
                    .skip(start)
                    .take(size)
                    .map(|a| (*a).clone())
                    .collect();
                let mut answer = json!({"accounts": page});
                if start + size < all.len() {
                    answer["nextPageToken"] = json!((start + size).to_string());
                }
                Reply::json(200, &answer)
            }
            ("POST", []) => {
                let id = body["accountId"].as_str().unwrap_or_default();
                let valid = (6..=30).contains(&id.len())
                    && id.starts_with(|c: char| c.is_ascii_lowercase())
                    && !id.ends_with('-')
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                if !valid {
                    return error(400, "INVALID_ARGUMENT", "Account ID must match [a-z]([-a-z0-9]*[a-z0-9]) and be 6 to 30 characters.");
                }
                let email = format!("{id}@{project}.iam.gserviceaccount.com");
                let mut state = self.state();
                if std::mem::take(&mut state.race_create) {
                    let account = account_json(
                        &project,
                        &email,
                        body["serviceAccount"]["displayName"]
                            .as_str()
                            .unwrap_or_default(),
                        body["serviceAccount"]["description"]
                            .as_str()
                            .unwrap_or_default(),
                    );
                    state.accounts.insert(email.clone(), account);
                }
                if state.accounts.contains_key(&email) {
                    return error(409, "ALREADY_EXISTS", &format!("Service account {id} already exists within project projects/{project}."));
                }
                let account = account_json(
                    &project,
                    &email,
                    body["serviceAccount"]["displayName"]
                        .as_str()
                        .unwrap_or_default(),
                    body["serviceAccount"]["description"]
                        .as_str()
                        .unwrap_or_default(),
                );
                state.accounts.insert(email, account.clone());
                Reply::json(200, &account)
            }
            ("GET", [email, "keys"]) => {
                let state = self.state();
                if !state.accounts.contains_key(*email) {
                    return error(404, "NOT_FOUND", "Not found");
                }
                let keys = state.keys.get(*email).cloned().unwrap_or_default();
                Reply::json(200, &json!({"keys": keys}))
            }
            ("POST", [email, "keys", call]) if call.ends_with(":disable") => {
                let id = call.trim_end_matches(":disable");
                let mut state = self.state();
                let found = state.keys.get_mut(*email).and_then(|keys| {
                    keys.iter_mut().find(|k| {
                        k["name"]
                            .as_str()
                            .is_some_and(|n| n.ends_with(&format!("/keys/{id}")))
                    })
                });
                match found {
                    Some(key) => {
                        key["disabled"] = json!(true);
                        Reply::json(200, &json!({}))
                    }
                    None => error(404, "NOT_FOUND", "Not found"),
                }
            }
            (_, [call]) => {
                let (email, verb) = call.split_once(':').unwrap_or((call, ""));
                let resource = format!("projects/{project}/serviceAccounts/{email}");
                if !self.state().accounts.contains_key(email) {
                    return error(
                        404,
                        "NOT_FOUND",
                        &format!(
                            "Service account projects/{project}/serviceAccounts/{email} not found."
                        ),
                    );
                }
                match (method, verb) {
                    ("GET", "") => Reply::json(200, &self.state().accounts[email]),
                    ("PATCH", "") => {
                        let mask = body["updateMask"].as_str().unwrap_or_default();
                        let mut state = self.state();
                        let account = state.accounts.get_mut(email).unwrap();
                        for field in mask.split(',').filter(|f| !f.is_empty()) {
                            account[field] = body["serviceAccount"][field].clone();
                        }
                        Reply::json(200, account)
                    }
                    ("DELETE", "") => {
                        let mut state = self.state();
                        state.accounts.remove(email);
                        state.policies.remove(&resource);
                        Reply::json(200, &json!({}))
                    }
                    ("POST", "disable" | "enable") => {
                        self.state().accounts.get_mut(email).unwrap()["disabled"] =
                            json!(verb == "disable");
                        Reply::json(200, &json!({}))
                    }
                    ("POST", "getIamPolicy") => {
                        if request
                            .query()
                            .get("options.requestedPolicyVersion")
                            .map(String::as_str)
                            != Some("3")
                        {
                            return error(
                                400,
                                "INVALID_ARGUMENT",
                                "Policy version 3 must be requested for conditions",
                            );
                        }
                        Reply::json(200, &Self::read_policy(&mut self.state(), &resource))
                    }
                    ("POST", "setIamPolicy") => match self.write_policy(&resource, &body["policy"])
                    {
                        Ok(policy) => Reply::json(200, &policy),
                        Err(reply) => reply,
                    },
                    _ => error(404, "NOT_FOUND", "Not found"),
                }
            }
            _ => error(404, "NOT_FOUND", "Not found"),
        }
    }
}

/// A service account's unique id: 21 digits, one per email.
/// What IAM refuses in a pool or provider: a display name over 32
/// characters, a description over 256; for a provider, a mapping without
/// `google.subject`, over 50 custom attributes, a key not
/// `attribute.[a-z0-9_]{1,100}`, an expression over 2,048 characters, a
/// condition over 4,096, an issuer not `https://`, and no condition for
/// GitHub's issuer (multi-tenant, so one is required).
fn check_pool_body(body: &Value, provider: bool) -> Result<(), Reply> {
    let refuse = |message: &str| Err(error(400, "INVALID_ARGUMENT", message));
    if body["displayName"]
        .as_str()
        .is_some_and(|n| n.chars().count() > 32)
    {
        return refuse("The display name cannot exceed 32 characters.");
    }
    if body["description"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 256)
    {
        return refuse("The description cannot exceed 256 characters.");
    }
    if !provider {
        return Ok(());
    }
    let mapping = body["attributeMapping"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if !mapping.contains_key("google.subject") {
        return refuse("The attribute mapping must include google.subject.");
    }
    let custom = mapping
        .keys()
        .filter(|k| k.starts_with("attribute."))
        .count();
    if custom > 50 {
        return refuse("At most 50 custom attributes may be mapped.");
    }
    for (key, expression) in &mapping {
        let valid_key = key == "google.subject"
            || key == "google.groups"
            || key.strip_prefix("attribute.").is_some_and(|a| {
                (1..=100).contains(&a.len())
                    && a.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if !valid_key {
            return refuse(&format!("Invalid attribute mapping key: {key}"));
        }
        if expression.as_str().is_none_or(|e| e.len() > 2048) {
            return refuse("An attribute mapping is a CEL expression of at most 2048 characters.");
        }
    }
    let condition = body["attributeCondition"].as_str().unwrap_or_default();
    if condition.len() > 4096 {
        return refuse("The attribute condition cannot exceed 4096 characters.");
    }
    let issuer = body["oidc"]["issuerUri"].as_str().unwrap_or_default();
    if !issuer.starts_with("https://") {
        return refuse("The OIDC issuer must be an HTTPS URL.");
    }
    if issuer == "https://token.actions.githubusercontent.com" && condition.is_empty() {
        return refuse("An attribute condition is required for this issuer: it is multi-tenant.");
    }
    Ok(())
}

fn unique_id(email: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    email.hash(&mut hasher);
    format!("1{:020}", hasher.finish())
}

fn account_json(project: &str, email: &str, display_name: &str, description: &str) -> Value {
    json!({
        "name": format!("projects/{project}/serviceAccounts/{email}"),
        "projectId": project,
        "uniqueId": unique_id(email),
        "email": email,
        "displayName": display_name,
        "description": description,
        "oauth2ClientId": "1",
        "disabled": false,
    })
}
