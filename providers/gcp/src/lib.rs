//! writ's GCP provider: one project. It reads the project (its number),
//! its service accounts (by the page), and writ's part of the allow policy
//! of every resource the source binds on and of writ's service accounts;
//! it creates, updates and deletes writ's service accounts, and writes
//! writ's bindings by read-modify-write with the policy's `etag`: one read
//! and one write per resource for all of its bindings, others' members and
//! bindings kept exactly as read, a stale `etag` (409) read again.
//!
//! Thin REST calls (IAM v1, Resource Manager v3, Storage v1) on hyper's
//! client, as JSON; every request goes through writ's retry budget (429
//! and 5xx retried). The access token comes from the binary (an
//! environment variable that `writ.toml` names, `GOOGLE_OAUTH_ACCESS_TOKEN`
//! by default): it is sent, never printed.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use writ_compiler::ownership;
use writ_compiler::plan::{Action, Change, Identity};
use writ_compiler::resource::{Resource, ResourceKind};
use writ_provider_core::{
    error_chain, BoxFuture, ErrorClass, Provider, ProviderError, RequestStats, Requester, Retrier,
    Revocation, RevokeMark,
};

/// How to reach GCP.
pub struct GcpSettings {
    /// One address for every API (a local server in tests); `None`:
    /// Google's own.
    pub endpoint_url: Option<String>,
    /// An OAuth access token (`gcloud auth print-access-token`).
    pub token: String,
}

/// The APIs' addresses.
struct Endpoints {
    iam: String,
    crm: String,
    storage: String,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One `provider gcp NAME` of the source, connected.
pub struct GcpProvider {
    address: String,
    gcp_project: String,
    endpoints: Endpoints,
    token: String,
    client: HttpClient,
    requests: Requester,
    /// The resources whose policies the source binds on.
    resources: Vec<String>,
}

/// How many times a read-modify-write starts again on a stale `etag`.
const ETAG_ATTEMPTS: usize = 5;

impl GcpProvider {
    /// Connects (sending nothing yet) to `gcp_project`, for the policies of
    /// `resources`.
    pub fn connect(
        address: &str,
        gcp_project: &str,
        settings: GcpSettings,
        resources: Vec<String>,
        retrier: &Retrier,
    ) -> Result<GcpProvider, ProviderError> {
        if settings.token.trim().is_empty() {
            return Err(ProviderError::permanent("the GCP access token is empty"));
        }
        let endpoints = match &settings.endpoint_url {
            Some(base) => {
                let base = base.trim_end_matches('/');
                Endpoints {
                    iam: base.to_string(),
                    crm: base.to_string(),
                    storage: base.to_string(),
                }
            }
            None => Endpoints {
                iam: "https://iam.googleapis.com".into(),
                crm: "https://cloudresourcemanager.googleapis.com".into(),
                storage: "https://storage.googleapis.com".into(),
            },
        };
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| {
                ProviderError::permanent(format!("cannot read the system's certificate roots: {e}"))
            })?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(GcpProvider {
            address: address.to_string(),
            gcp_project: gcp_project.to_string(),
            endpoints,
            token: settings.token,
            client,
            requests: Requester::new(retrier, 4),
            resources,
        })
    }

    /// One request, with retries; `what` names it in errors.
    async fn call(
        &self,
        method: http::Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, ProviderError> {
        let payload = body.map(Value::to_string).unwrap_or_default();
        self.requests
            .send(|| async {
                let mut request = http::Request::builder()
                    .method(method.clone())
                    .uri(url)
                    .header(http::header::AUTHORIZATION, format!("Bearer {}", self.token))
                    .header(http::header::ACCEPT, "application/json");
                if body.is_some() {
                    request = request.header(http::header::CONTENT_TYPE, "application/json");
                }
                let request = request
                    .body(Full::new(Bytes::from(payload.clone())))
                    .map_err(|e| ProviderError::permanent(format!("{what}: {e}")))?;
                let sent = tokio::time::timeout(Duration::from_secs(30), self.client.request(request))
                    .await
                    .map_err(|_| {
                        ProviderError::new(ErrorClass::Transient, None, format!("{what}: GCP did not answer in 30 s"))
                    })?
                    .map_err(|e| {
                        ProviderError::new(
                            ErrorClass::Transient,
                            None,
                            format!("{what}: cannot reach GCP at {url}: {}", error_chain(&e)),
                        )
                    })?;
                let status = sent.status().as_u16();
                let bytes = sent
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| {
                        ProviderError::new(ErrorClass::Transient, None, format!("{what}: the answer was cut off: {e}"))
                    })?
                    .to_bytes();
                let answer: Value = if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).map_err(|e| {
                        ProviderError::permanent(format!("{what}: GCP sent an answer that is not JSON: {e}"))
                    })?
                };
                if (200..300).contains(&status) {
                    return Ok(answer);
                }
                let message = answer["error"]["message"].as_str().unwrap_or("no message");
                let code = answer["error"]["status"].as_str();
                let class = match status {
                    429 | 500..=599 => ErrorClass::Transient,
                    _ => ErrorClass::Permanent,
                };
                let hint = match status {
                    401 => ": the access token was refused (expired?); get a new one (`gcloud auth print-access-token`)",
                    403 => ": the credentials may not do this; see docs/gcp.md for the roles writ needs",
                    _ => "",
                };
                Err(ProviderError::new(
                    class,
                    code,
                    format!("{what}: GCP answered {status} {}: {message}{hint}", code.unwrap_or("")),
                )
                .with_status(status))
            })
            .await
    }

    fn accounts_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/serviceAccounts",
            self.endpoints.iam, self.gcp_project
        )
    }

    /// Is `email` the address of a writ service account of this project?
    fn is_writs(&self, email: &str) -> bool {
        email.starts_with(ownership::gcp::ID_PREFIX)
            && email.ends_with(&format!("@{}.iam.gserviceaccount.com", self.gcp_project))
    }

    /// Is the member one of writ's service accounts?
    fn writ_member(&self, member: &str) -> bool {
        member
            .strip_prefix("serviceAccount:")
            .is_some_and(|email| self.is_writs(email))
    }

    /// The policy of `resource` (version 3), as GCP holds it.
    async fn get_policy(&self, resource: &str) -> Result<Value, ProviderError> {
        let what = format!("reading the IAM policy of `{resource}`");
        let options = json!({"options": {"requestedPolicyVersion": 3}});
        match Target::of(resource, &self.gcp_project) {
            Target::Project(p) => {
                self.call(
                    http::Method::POST,
                    &format!("{}/v3/projects/{p}:getIamPolicy", self.endpoints.crm),
                    Some(&options),
                    &what,
                )
                .await
            }
            Target::Bucket(b) => {
                self.call(
                    http::Method::GET,
                    &format!(
                        "{}/storage/v1/b/{b}/iam?optionsRequestedPolicyVersion=3",
                        self.endpoints.storage
                    ),
                    None,
                    &what,
                )
                .await
            }
            Target::ServiceAccount(email) => {
                self.call(
                    http::Method::POST,
                    &format!(
                        "{}:getIamPolicy?options.requestedPolicyVersion=3",
                        self.account_url(&email)
                    ),
                    None,
                    &what,
                )
                .await
            }
            Target::Other => Err(ProviderError::permanent(format!(
                "{what}: writ binds only on projects, buckets and service accounts"
            ))),
        }
    }

    async fn set_policy(&self, resource: &str, policy: Value) -> Result<(), ProviderError> {
        let what = format!("writing the IAM policy of `{resource}`");
        match Target::of(resource, &self.gcp_project) {
            Target::Project(p) => {
                self.call(
                    http::Method::POST,
                    &format!("{}/v3/projects/{p}:setIamPolicy", self.endpoints.crm),
                    Some(&json!({"policy": policy})),
                    &what,
                )
                .await?;
            }
            Target::Bucket(b) => {
                self.call(
                    http::Method::PUT,
                    &format!("{}/storage/v1/b/{b}/iam", self.endpoints.storage),
                    Some(&policy),
                    &what,
                )
                .await?;
            }
            Target::ServiceAccount(email) => {
                self.call(
                    http::Method::POST,
                    &format!("{}:setIamPolicy", self.account_url(&email)),
                    Some(&json!({"policy": policy})),
                    &what,
                )
                .await?;
            }
            Target::Other => {
                return Err(ProviderError::permanent(format!(
                    "{what}: writ binds only on projects, buckets and service accounts"
                )))
            }
        }
        Ok(())
    }

    fn account_url(&self, email: &str) -> String {
        format!("{}/{email}", self.accounts_url())
    }

    /// Is the whole policy of `resource` writ's? (A writ service account's
    /// own policy: who may act as it.)
    fn whole_policy_is_writs(&self, resource: &str) -> bool {
        matches!(Target::of(resource, &self.gcp_project), Target::ServiceAccount(email) if self.is_writs(&email))
    }

    /// Writ's part of a policy: its members, in bindings as writ compares
    /// them (sorted members; a condition's title and expression).
    fn writs_part(&self, resource: &str, policy: &Value) -> Vec<Value> {
        let whole = self.whole_policy_is_writs(resource);
        let mut bindings: Vec<Value> = Vec::new();
        for binding in policy["bindings"].as_array().into_iter().flatten() {
            let mut members: Vec<&str> = binding["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|m| whole || self.writ_member(m))
                .collect();
            if members.is_empty() {
                continue;
            }
            members.sort_unstable();
            members.dedup();
            let mut kept = json!({"role": binding["role"], "members": members});
            if let Some(condition) = binding["condition"].as_object() {
                kept["condition"] = json!({"title": condition.get("title"), "expression": condition.get("expression")});
            }
            bindings.push(kept);
        }
        bindings.sort_by_key(binding_key);
        bindings
    }

    /// Carries out the plan's change to `resource`'s policy: the bindings
    /// it read (`before`: role, condition and member, each) are taken out
    /// and the ones it wants put in, and nothing else is touched (a member
    /// someone added since the plan stays, for the next plan to see). Read,
    /// change, write with the read's `etag`, and read again when someone
    /// wrote in between.
    async fn converge_policy(
        &self,
        resource: &str,
        before: &[Value],
        wanted: &[Value],
    ) -> Result<(), ProviderError> {
        let triples = |bindings: &[Value]| -> Vec<(Value, Value, Value)> {
            let mut found = Vec::new();
            for binding in bindings {
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
        let taken_out = triples(before);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut policy = self.get_policy(resource).await?;
            let mut bindings: Vec<Value> = Vec::new();
            for mut binding in policy["bindings"].as_array().cloned().unwrap_or_default() {
                let (role, condition) = (
                    binding["role"].clone(),
                    binding["condition"]["expression"].clone(),
                );
                let members: Vec<Value> = binding["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| {
                        !taken_out.contains(&(role.clone(), condition.clone(), (*m).clone()))
                    })
                    .cloned()
                    .collect();
                if members.is_empty() {
                    continue;
                }
                binding["members"] = Value::Array(members);
                bindings.push(binding);
            }
            for want in wanted {
                let same = bindings.iter_mut().find(|b| {
                    b["role"] == want["role"]
                        && b["condition"]["expression"] == want["condition"]["expression"]
                });
                match same {
                    Some(binding) => {
                        let mut members: Vec<Value> =
                            binding["members"].as_array().cloned().unwrap_or_default();
                        for member in want["members"].as_array().into_iter().flatten() {
                            if !members.contains(member) {
                                members.push(member.clone());
                            }
                        }
                        binding["members"] = Value::Array(members);
                    }
                    None => bindings.push(want.clone()),
                }
            }
            policy["bindings"] = Value::Array(bindings);
            policy["version"] = json!(3);
            match self.set_policy(resource, policy).await {
                Ok(()) => return Ok(()),
                // Someone wrote the policy since it was read.
                Err(error)
                    if matches!(error.status, Some(409 | 412)) && attempt < ETAG_ATTEMPTS => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// A service account, as GCP holds it; `None` when there is none.
    async fn account(&self, email: &str) -> Result<Option<Value>, ProviderError> {
        match self
            .call(
                http::Method::GET,
                &self.account_url(email),
                None,
                &format!("reading service account `{email}`"),
            )
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.status == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Refuses to change a service account that is not this project's.
    fn check_ours(
        &self,
        found: &Value,
        change: &Change,
        project: &str,
    ) -> Result<(), ProviderError> {
        let description = found["description"].as_str().unwrap_or_default();
        match ownership::gcp::read(description) {
            Some((owner, _)) if owner == project => Ok(()),
            _ => Err(ProviderError::permanent(format!(
                "`{}`: the service account is not writ project `{project}`'s (its description does not say so): writ will not change it",
                change.address
            ))),
        }
    }

    async fn apply_account(&self, change: &Change) -> Result<(), ProviderError> {
        let attributes = change.after.as_ref().or(change.before.as_ref());
        let text = |key: &str| {
            attributes
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let (email, account_id) = (text("email"), text("account_id"));
        // The project the change belongs to, from writ's own record.
        let project = ownership::gcp::read(&text("description"))
            .map(|(p, _)| p.to_string())
            .unwrap_or_default();
        if change.actions.contains(&Action::Delete) && change.after.is_none() {
            let Some(found) = self.account(&email).await? else {
                return Ok(());
            };
            self.check_ours(&found, change, &project)?;
            match self
                .call(
                    http::Method::DELETE,
                    &self.account_url(&email),
                    None,
                    &format!("deleting service account `{email}`"),
                )
                .await
            {
                Err(error) if error.status == Some(404) => return Ok(()),
                other => {
                    other?;
                }
            }
            return Ok(());
        }
        let after = change.after.as_ref().ok_or_else(|| {
            ProviderError::permanent(format!("`{}`: nothing to set", change.address))
        })?;
        let found = match self.account(&email).await? {
            Some(found) => {
                self.check_ours(&found, change, &project)?;
                found
            }
            None => self
                .call(
                    http::Method::POST,
                    &self.accounts_url(),
                    Some(&json!({
                        "accountId": account_id,
                        "serviceAccount": {"displayName": after.get("display_name"), "description": after.get("description")},
                    })),
                    &format!("creating service account `{email}`"),
                )
                .await?,
        };
        if found["displayName"] != after["display_name"]
            || found["description"] != after["description"]
        {
            self.call(
                http::Method::PATCH,
                &self.account_url(&email),
                Some(&json!({
                    "serviceAccount": {"displayName": after.get("display_name"), "description": after.get("description")},
                    "updateMask": "displayName,description",
                })),
                &format!("updating service account `{email}`"),
            )
            .await?;
        }
        let disabled = after
            .get("disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if found["disabled"].as_bool().unwrap_or(false) != disabled {
            let verb = if disabled { "disable" } else { "enable" };
            self.call(
                http::Method::POST,
                &format!("{}:{verb}", self.account_url(&email)),
                Some(&json!({})),
                &format!("{verb}ing service account `{email}`"),
            )
            .await?;
        }
        Ok(())
    }
}

/// A binding's place in writ's order: role, then condition (none first).
fn binding_key(binding: &Value) -> (String, Option<String>) {
    (
        binding["role"].as_str().unwrap_or_default().to_string(),
        binding["condition"]["expression"]
            .as_str()
            .map(str::to_string),
    )
}

/// Where a policy is read and written.
enum Target {
    Project(String),
    Bucket(String),
    ServiceAccount(String),
    Other,
}

impl Target {
    fn of(resource: &str, project: &str) -> Target {
        let parts: Vec<&str> = resource.split('/').collect();
        match parts.as_slice() {
            ["projects", p] => Target::Project((*p).to_string()),
            ["projects", "_", "buckets", b] => Target::Bucket((*b).to_string()),
            ["projects", p, "serviceAccounts", email] if *p == project => {
                Target::ServiceAccount((*email).to_string())
            }
            _ => Target::Other,
        }
    }
}

impl Provider for GcpProvider {
    fn address(&self) -> &str {
        &self.address
    }

    fn stats(&self) -> RequestStats {
        self.requests.stats()
    }

    fn identify(&self) -> BoxFuture<'_, Result<Identity, ProviderError>> {
        Box::pin(async move {
            let what = format!("reading project `{}`", self.gcp_project);
            let found = self
                .call(
                    http::Method::GET,
                    &format!("{}/v3/projects/{}", self.endpoints.crm, self.gcp_project),
                    None,
                    &what,
                )
                .await?;
            if found["projectId"].as_str() != Some(self.gcp_project.as_str()) {
                return Err(ProviderError::permanent(format!(
                    "{what}: GCP answers for `{}`, not the project the source names",
                    found["projectId"].as_str().unwrap_or("?")
                )));
            }
            Ok(Identity {
                provider: self.address.clone(),
                place: format!(
                    "project {} ({})",
                    self.gcp_project,
                    found["name"].as_str().unwrap_or("?")
                ),
                caller: None,
            })
        })
    }

    fn observe(&self) -> BoxFuture<'_, Result<Vec<Resource>, ProviderError>> {
        Box::pin(async move {
            let mut found = Vec::new();
            let record =
                |address: String, kind: ResourceKind, attributes: Vec<(&str, Value)>| Resource {
                    address,
                    provider: self.address.clone(),
                    kind,
                    agent: None,
                    attributes: attributes
                        .into_iter()
                        .map(|(k, v)| (k.to_string(), v))
                        .collect::<BTreeMap<_, _>>()
                        .into(),
                };
            let project = self
                .call(
                    http::Method::GET,
                    &format!("{}/v3/projects/{}", self.endpoints.crm, self.gcp_project),
                    None,
                    &format!("reading project `{}`", self.gcp_project),
                )
                .await?;
            let number = project["name"]
                .as_str()
                .and_then(|n| n.strip_prefix("projects/"));
            found.push(record(
                format!("{}/project", self.address),
                ResourceKind::GcpProject,
                vec![("id", json!(self.gcp_project)), ("number", json!(number))],
            ));
            // Service accounts, by the page.
            let mut writs = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let url = match &token {
                    Some(token) => {
                        format!("{}?pageSize=100&pageToken={token}", self.accounts_url())
                    }
                    None => format!("{}?pageSize=100", self.accounts_url()),
                };
                let page = self
                    .call(
                        http::Method::GET,
                        &url,
                        None,
                        "listing the project's service accounts",
                    )
                    .await?;
                for account in page["accounts"].as_array().into_iter().flatten() {
                    let Some(email) = account["email"].as_str() else {
                        continue;
                    };
                    let id = email.split('@').next().unwrap_or_default();
                    if self.is_writs(email) {
                        writs.push(email.to_string());
                    }
                    found.push(record(
                        format!("{}/serviceAccounts/{id}", self.address),
                        ResourceKind::GcpServiceAccount,
                        vec![
                            ("account_id", json!(id)),
                            ("email", json!(email)),
                            (
                                "display_name",
                                account.get("displayName").cloned().unwrap_or(json!("")),
                            ),
                            (
                                "description",
                                account.get("description").cloned().unwrap_or(json!("")),
                            ),
                            (
                                "disabled",
                                json!(account["disabled"].as_bool().unwrap_or(false)),
                            ),
                        ],
                    ));
                }
                token = page["nextPageToken"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
            // Writ's part of each policy the source binds on, the project's,
            // and each writ service account's own.
            let mut resources: Vec<String> = self.resources.clone();
            resources.push(format!("projects/{}", self.gcp_project));
            resources.extend(
                writs
                    .iter()
                    .map(|email| format!("projects/{}/serviceAccounts/{email}", self.gcp_project)),
            );
            resources.sort();
            resources.dedup();
            for resource in resources {
                let policy = match self.get_policy(&resource).await {
                    Ok(policy) => policy,
                    // A bucket or account the source names that does not
                    // exist (yet): nothing of writ's on it.
                    Err(error) if error.status == Some(404) => continue,
                    Err(error) => return Err(error),
                };
                let part = self.writs_part(&resource, &policy);
                if part.is_empty() {
                    continue;
                }
                found.push(record(
                    format!("{}/iam/{resource}", self.address),
                    ResourceKind::GcpIamPolicy,
                    vec![
                        ("resource", json!(resource)),
                        ("bindings", Value::Array(part)),
                    ],
                ));
            }
            Ok(found)
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            match change.kind {
                ResourceKind::GcpServiceAccount => self.apply_account(change).await,
                ResourceKind::GcpIamPolicy => {
                    let attributes = change.after.as_ref().or(change.before.as_ref());
                    let resource = attributes
                        .and_then(|a| a.get("resource"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            ProviderError::permanent(format!("`{}`: no resource", change.address))
                        })?;
                    let bindings = |side: Option<&BTreeMap<String, Value>>| -> Vec<Value> {
                        side.and_then(|a| a.get("bindings"))
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                    };
                    self.converge_policy(
                        resource,
                        &bindings(change.before.as_ref()),
                        &bindings(change.after.as_ref()),
                    )
                    .await
                }
                _ => Err(ProviderError::permanent(format!(
                    "`{}` is not a GCP object writ changes",
                    change.address
                ))),
            }
        })
    }

    fn revoke<'a>(
        &'a self,
        agent: &'a str,
        _mark: &'a RevokeMark,
        _users: &'a [String],
    ) -> BoxFuture<'a, Revocation> {
        Box::pin(async move {
            let mut report = Revocation::default();
            report.failed(format!(
                "could not revoke `{agent}` in {}: this version of writ cannot revoke in GCP yet: disable its service account by hand (`gcloud iam service-accounts disable`)",
                self.address
            ));
            report
        })
    }

    fn lift<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, Revocation> {
        Box::pin(async move {
            let mut report = Revocation::default();
            report.failed(format!(
                "could not lift `{agent}` in {}: this version of writ cannot revoke in GCP yet",
                self.address
            ));
            report
        })
    }
}
