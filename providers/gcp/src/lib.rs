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
//! by default), else from Application Default Credentials
//! ([`application_default_token`]): it is sent, never printed.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod pools;

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
    /// The project billed for the requests' quota
    /// (`x-goog-user-project`), when not the credentials' own.
    pub quota_project: Option<String>,
}

/// An access token from Application Default Credentials, found as
/// Google's client libraries find them: the key file
/// `GOOGLE_APPLICATION_CREDENTIALS` names, gcloud's
/// (`gcloud auth application-default login`), or the metadata server of
/// the machine writ runs on.
pub async fn application_default_token() -> Result<String, ProviderError> {
    let credentials = google_cloud_auth::credentials::Builder::default()
        .with_scopes(["https://www.googleapis.com/auth/cloud-platform"])
        .build_access_token_credentials()
        .map_err(|e| {
            ProviderError::permanent(format!("no Application Default Credentials: {e}"))
        })?;
    let token = tokio::time::timeout(Duration::from_secs(30), credentials.access_token())
        .await
        .map_err(|_| {
            ProviderError::permanent(
                "Application Default Credentials gave no access token in 30 s".to_string(),
            )
        })?
        .map_err(|e| {
            ProviderError::permanent(format!(
                "Application Default Credentials gave no access token: {e}"
            ))
        })?;
    Ok(token.token)
}

/// The APIs' addresses.
struct Endpoints {
    iam: String,
    /// IAM Service Account Credentials: short-lived tokens.
    credentials: String,
    crm: String,
    storage: String,
    asset: String,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// One `provider gcp NAME` of the source, connected.
pub struct GcpProvider {
    address: String,
    /// The writ project, as service accounts' records name it.
    project: String,
    gcp_project: String,
    endpoints: Endpoints,
    token: String,
    quota_project: Option<String>,
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
        project: &str,
        gcp_project: &str,
        settings: GcpSettings,
        resources: Vec<String>,
        retrier: &Retrier,
    ) -> Result<GcpProvider, ProviderError> {
        if settings.token.trim().is_empty() {
            return Err(ProviderError::permanent("the GCP access token is empty"));
        }
        if let Some(quota) = &settings.quota_project {
            if !writ_compiler::facts::gcp::is_project_id(quota) {
                return Err(ProviderError::permanent(format!(
                    "`quota_project = \"{quota}\"` is not a GCP project id (6 to 30 lowercase letters, digits and hyphens, starting with a letter)"
                )));
            }
        }
        let endpoints = match &settings.endpoint_url {
            Some(base) => {
                let base = base.trim_end_matches('/');
                Endpoints {
                    iam: base.to_string(),
                    credentials: base.to_string(),
                    crm: base.to_string(),
                    storage: base.to_string(),
                    asset: base.to_string(),
                }
            }
            None => Endpoints {
                iam: "https://iam.googleapis.com".into(),
                credentials: "https://iamcredentials.googleapis.com".into(),
                crm: "https://cloudresourcemanager.googleapis.com".into(),
                storage: "https://storage.googleapis.com".into(),
                asset: "https://cloudasset.googleapis.com".into(),
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
            project: project.to_string(),
            gcp_project: gcp_project.to_string(),
            endpoints,
            token: settings.token,
            quota_project: settings.quota_project,
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
                if let Some(quota) = &self.quota_project {
                    request = request.header("x-goog-user-project", quota);
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
                if (200..300).contains(&status) {
                    return if bytes.is_empty() {
                        Ok(Value::Null)
                    } else {
                        serde_json::from_slice(&bytes).map_err(|e| {
                            ProviderError::permanent(format!(
                                "{what}: GCP sent an answer that is not JSON: {e}"
                            ))
                        })
                    };
                }
                // An error's body may be a proxy's HTML: classed by status.
                let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
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

    /// Is the member writ's on `resource`'s policy: one of writ's service
    /// accounts, or, on a writ account's own policy, a workload identity
    /// principal or a GKE service account (who may act as the account)?
    /// People and groups never are.
    fn writs_on(&self, resource: &str, member: &str) -> bool {
        if self.writ_member(member) {
            return true;
        }
        let own = matches!(Target::of(resource, &self.gcp_project), Target::ServiceAccount(email) if self.is_writs(&email));
        own && (member.starts_with("principal://iam.googleapis.com/")
            || member.starts_with("principalSet://iam.googleapis.com/")
            || member
                .strip_prefix("serviceAccount:")
                .is_some_and(|m| m.contains(".svc.id.goog[")))
    }

    /// Writ's part of a policy: its members, in bindings as writ compares
    /// them (sorted members; a condition's title and expression).
    fn writs_part(&self, resource: &str, policy: &Value) -> Vec<Value> {
        let mut bindings: Vec<Value> = Vec::new();
        for binding in policy["bindings"].as_array().into_iter().flatten() {
            let mut members: Vec<&str> = binding["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter(|m| self.writs_on(resource, m))
                .collect();
            if members.is_empty() {
                continue;
            }
            members.sort_unstable();
            members.dedup();
            let mut kept = json!({"role": binding_role(binding), "members": members});
            if let Some((expression, title)) = condition_of(binding) {
                kept["condition"] = json!({"title": title, "expression": expression});
            }
            bindings.push(kept);
        }
        bindings.sort_by_key(binding_key);
        bindings
    }

    /// Carries out the plan's change to `resource`'s policy: of the
    /// bindings it read for writ (`before`: role, condition and member,
    /// each) those it no longer wants are taken out, and those it wants and
    /// did not read are put in; nothing else is touched (a member someone
    /// added or removed since the plan stays so, for the next plan to see).
    /// Read, change, write with the read's `etag`, and read again when
    /// someone wrote in between.
    async fn converge_policy(
        &self,
        resource: &str,
        before: &[Value],
        wanted: &[Value],
    ) -> Result<(), ProviderError> {
        let (was, now) = (triples(before), triples(wanted));
        let take_out: Vec<&Triple> = was.iter().filter(|t| !now.contains(t)).collect();
        let put_in: Vec<&Triple> = now.iter().filter(|t| !was.contains(t)).collect();
        if take_out.is_empty() && put_in.is_empty() {
            return Ok(());
        }
        let mut attempt: u64 = 0;
        loop {
            attempt += 1;
            let mut policy = self.get_policy(resource).await?;
            let Some(object) = policy.as_object_mut() else {
                return Err(ProviderError::permanent(format!(
                    "reading the IAM policy of `{resource}`: GCP's answer is not a policy"
                )));
            };
            let read: Vec<Value> = object
                .get("bindings")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut bindings: Vec<Value> = Vec::new();
            for binding in read {
                let Some(map) = binding.as_object() else {
                    continue;
                };
                let (role, condition) = (binding_role(&binding), condition_of(&binding));
                let members: Vec<Value> = binding["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|m| {
                        !take_out.iter().any(|(r, c, taken)| {
                            *r == role && *c == condition && m.as_str() == Some(taken.as_str())
                        })
                    })
                    .cloned()
                    .collect();
                if members.is_empty() {
                    continue;
                }
                let mut map = map.clone();
                map.insert("members".to_string(), Value::Array(members));
                bindings.push(Value::Object(map));
            }
            for (role, condition, member) in &put_in {
                let same = bindings
                    .iter_mut()
                    .find(|b| binding_role(b) == *role && condition_of(b) == *condition)
                    .and_then(Value::as_object_mut);
                match same {
                    Some(binding) => {
                        let members = binding
                            .entry("members")
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Value::Array(members) = members {
                            if !members.iter().any(|m| m.as_str() == Some(member.as_str())) {
                                members.push(json!(member));
                            }
                        }
                    }
                    None => {
                        let mut binding = json!({"role": role, "members": [member]});
                        if let Some((expression, title)) = condition {
                            binding["condition"] =
                                json!({"title": title, "expression": expression});
                        }
                        bindings.push(binding);
                    }
                }
            }
            object.insert("bindings".to_string(), Value::Array(bindings));
            object.insert("version".to_string(), json!(3));
            match self.set_policy(resource, policy).await {
                Ok(()) => return Ok(()),
                // Someone wrote the policy since it was read (409; Cloud
                // Storage: 412).
                Err(error)
                    if matches!(error.status, Some(409 | 412))
                        && attempt < ETAG_ATTEMPTS as u64 => {}
                // A service account made moments ago is not yet known to
                // every part of IAM.
                Err(error)
                    if error.status == Some(400)
                        && error.message.contains("does not exist")
                        && attempt < ETAG_ATTEMPTS as u64 =>
                {
                    tokio::time::sleep(Duration::from_secs(2 * attempt)).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Cloud Asset's search of the project's allow policies for writ's
    /// accounts (`searchAllIamPolicies`, `policy:writ-`). `Err` only for a
    /// failure to retry; a search that could not be made (the API not
    /// enabled, no permission) says why in [`Search::unsearched`].
    async fn search_elsewhere(
        &self,
        number: Option<&str>,
        emails: &BTreeMap<String, String>,
    ) -> Result<Search, ProviderError> {
        let mut readable = Vec::new();
        let mut other = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/v1/projects/{}:searchAllIamPolicies?query=policy%3Awrit-&pageSize=500",
                self.endpoints.asset, self.gcp_project
            );
            if let Some(token) = &token {
                url.push_str(&format!("&pageToken={}", encoded(token)));
            }
            let page = match self
                .call(
                    http::Method::GET,
                    &url,
                    None,
                    "searching the project's IAM policies for writ's service accounts",
                )
                .await
            {
                Ok(page) => page,
                Err(error) if matches!(error.status, Some(403 | 404)) => {
                    return Ok(Search {
                        readable,
                        other,
                        unsearched: Some(error.message),
                    });
                }
                Err(error) => return Err(error),
            };
            for result in page["results"].as_array().into_iter().flatten() {
                let Some(full) = result["resource"].as_str() else {
                    continue;
                };
                let holds = result["policy"]["bindings"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|b| b["members"].as_array().into_iter().flatten())
                    .filter_map(Value::as_str)
                    .any(|m| self.writ_member(m));
                if !holds {
                    continue;
                }
                let name = full
                    .strip_prefix("//")
                    .and_then(|rest| rest.split_once('/').map(|(_, path)| path))
                    .unwrap_or(full);
                // Cloud Asset names a project by its number, and a service
                // account by its unique id: writ's names are the id and the
                // email.
                let parts: Vec<&str> = name.split('/').collect();
                let name = match parts.as_slice() {
                    ["projects", p] if Some(*p) == number => {
                        format!("projects/{}", self.gcp_project)
                    }
                    ["projects", p, "serviceAccounts", id]
                        if *p == self.gcp_project || Some(*p) == number =>
                    {
                        match emails
                            .get(*id)
                            .map(String::as_str)
                            .or(id.contains('@').then_some(*id))
                        {
                            Some(email) => {
                                format!("projects/{}/serviceAccounts/{email}", self.gcp_project)
                            }
                            None => {
                                other.push(full.to_string());
                                continue;
                            }
                        }
                    }
                    _ => name.to_string(),
                };
                match Target::of(&name, &self.gcp_project) {
                    Target::Other => other.push(full.to_string()),
                    _ => readable.push(name),
                }
            }
            token = page["nextPageToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        Ok(Search {
            readable,
            other,
            unsearched: None,
        })
    }

    /// Sets an account's description (and display name, when given).
    async fn describe(
        &self,
        email: &str,
        description: &str,
        display_name: Option<&Value>,
        what: &str,
    ) -> Result<(), ProviderError> {
        let body = match display_name {
            Some(name) => json!({
                "serviceAccount": {"displayName": name, "description": description},
                "updateMask": "displayName,description",
            }),
            None => {
                json!({"serviceAccount": {"description": description}, "updateMask": "description"})
            }
        };
        self.call(
            http::Method::PATCH,
            &self.account_url(email),
            Some(&body),
            what,
        )
        .await?;
        Ok(())
    }

    /// Enables an account, or disables it (no new tokens, by any means).
    async fn set_enabled(&self, email: &str, enabled: bool) -> Result<(), ProviderError> {
        let verb = if enabled { "enable" } else { "disable" };
        self.call(
            http::Method::POST,
            &format!("{}:{verb}", self.account_url(email)),
            Some(&json!({})),
            &format!("{verb}ing service account `{email}`"),
        )
        .await?;
        Ok(())
    }

    /// The project, as Resource Manager has it.
    async fn read_project(&self) -> Result<Value, ProviderError> {
        self.call(
            http::Method::GET,
            &format!("{}/v3/projects/{}", self.endpoints.crm, self.gcp_project),
            None,
            &format!("reading project `{}`", self.gcp_project),
        )
        .await
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
    fn check_ours(&self, found: &Value, address: &str) -> Result<(), ProviderError> {
        let description = found["description"].as_str().unwrap_or_default();
        let email = found["email"].as_str().unwrap_or_default();
        let id = email.split('@').next().unwrap_or_default();
        if ownership::gcp::is_projects(id, description, &self.project) {
            Ok(())
        } else {
            Err(ProviderError::permanent(format!(
                "`{address}`: the service account is not writ project `{}`'s (its description does not record it): writ will not change it",
                self.project
            )))
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
        if change.actions.contains(&Action::Delete) && change.after.is_none() {
            let Some(found) = self.account(&email).await? else {
                return Ok(());
            };
            self.check_ours(&found, &change.address)?;
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
                self.check_ours(&found, &change.address)?;
                found
            }
            None => match self
                .call(
                    http::Method::POST,
                    &self.accounts_url(),
                    Some(&json!({
                        "accountId": account_id,
                        "serviceAccount": {"displayName": after.get("display_name"), "description": after.get("description")},
                    })),
                    &format!("creating service account `{email}`"),
                )
                .await
            {
                Ok(created) => created,
                // Made meanwhile (a retried create that had gone through,
                // or another run): carried on only if it is this project's.
                Err(error) if error.status == Some(409) => {
                    let found = self.account(&email).await?.ok_or(error)?;
                    self.check_ours(&found, &change.address)?;
                    found
                }
                Err(error) => return Err(error),
            },
        };
        if found["displayName"] != after["display_name"]
            || found["description"] != after["description"]
        {
            self.describe(
                &email,
                after
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                Some(after.get("display_name").unwrap_or(&Value::Null)),
                &format!("updating service account `{email}`"),
            )
            .await?;
        }
        let disabled = after
            .get("disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if found["disabled"].as_bool().unwrap_or(false) != disabled {
            self.set_enabled(&email, !disabled).await?;
        }
        Ok(())
    }
}

impl GcpProvider {
    /// `generateAccessToken` for the agent's service account, for exactly
    /// `seconds` (`lifetime`) and the scopes asked; nothing is made, so a
    /// failed attempt may be tried again.
    async fn access_token(
        &self,
        request: &writ_provider_core::Issue,
    ) -> Result<writ_provider_core::Issued, ProviderError> {
        let email = &request.identity;
        if !self.is_writs(email) {
            return Err(ProviderError::permanent(format!(
                "{}: `{email}` is not one of writ's service accounts in `{}`",
                self.address, self.gcp_project
            )));
        }
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{}:generateAccessToken",
            self.endpoints.credentials,
            encoded(email)
        );
        let body = serde_json::json!({
            "scope": request.scopes,
            "lifetime": format!("{}s", request.seconds),
        });
        let what = format!("issuing an access token of `{email}`");
        let answer = self
            .call(http::Method::POST, &url, Some(&body), &what)
            .await?;
        match (
            answer["accessToken"].as_str(),
            answer["expireTime"].as_str(),
        ) {
            (Some(token), Some(expires)) if !token.is_empty() => Ok(writ_provider_core::Issued {
                credentials: serde_json::json!({"access_token": token}),
                expires_at: expires.to_string(),
            }),
            _ => Err(ProviderError::permanent(format!(
                "{}: {what}: the answer holds no token or no expiry",
                self.address
            ))),
        }
    }

    fn agent_email(&self, agent: &str) -> String {
        format!(
            "{}@{}.iam.gserviceaccount.com",
            writ_compiler::lower::gcp::account_id(agent),
            self.gcp_project
        )
    }

    /// `writ revoke`: the revocation written into the account's record
    /// first (so that an interrupted revoke is still known, and later
    /// plans keep it), then the account disabled (no new tokens, by any
    /// means), then its member taken out of every policy writ reads (so
    /// that a token already issued holds nothing writ gave).
    async fn cut_off(
        &self,
        agent: &str,
        mark: &RevokeMark,
        report: &mut Revocation,
    ) -> Result<(), ProviderError> {
        let email = self.agent_email(agent);
        let Some(found) = self.account(&email).await? else {
            report.said(format!(
                "{}: nothing to revoke for `{agent}`: it has no service account there",
                self.address
            ));
            return Ok(());
        };
        self.check_ours(&found, &email)?;
        // The record as it was (its digest kept), and the revocation.
        let record = ownership::gcp::unrevoked(found["description"].as_str().unwrap_or_default());
        let mut description = format!("{record}{}{}", ownership::gcp::REVOKED_MARK, mark.at);
        if let Some(by) = &mark.by {
            description.push_str(&format!(" revoked-by={}", by.replace(' ', "_")));
        }
        // GCP keeps 256 characters: who revoked is cut short, never the
        // record or the time.
        let description: String = description
            .chars()
            .take(ownership::gcp::DESCRIPTION_LIMIT)
            .collect();
        self.describe(
            &email,
            &description,
            None,
            &format!("marking service account `{email}` revoked"),
        )
        .await?;
        self.set_enabled(&email, false).await?;
        // Its user-managed keys too: a disabled account's keys mint
        // nothing, and stay disabled after a lift (a leaked key is often
        // why an agent is revoked).
        let listed = self
            .call(
                http::Method::GET,
                &format!("{}/keys?keyTypes=USER_MANAGED", self.account_url(&email)),
                None,
                &format!("listing the keys of service account `{email}`"),
            )
            .await?;
        let mut keys = 0;
        for key in listed["keys"].as_array().into_iter().flatten() {
            let Some(id) = key["name"].as_str().and_then(|n| n.rsplit('/').next()) else {
                continue;
            };
            if key["disabled"].as_bool() == Some(true) {
                continue;
            }
            self.call(
                http::Method::POST,
                &format!("{}/keys/{}:disable", self.account_url(&email), encoded(id)),
                Some(&json!({})),
                &format!("disabling key `{id}` of service account `{email}`"),
            )
            .await?;
            keys += 1;
        }
        let member = format!("serviceAccount:{email}");
        let mut resources = self.resources.clone();
        resources.push(format!("projects/{}", self.gcp_project));
        // And wherever Cloud Asset finds writ's accounts bound.
        let project = self.read_project().await?;
        let number = number_of(&project);
        let search = self.search_elsewhere(number, &BTreeMap::new()).await?;
        resources.extend(search.readable);
        resources.sort();
        resources.dedup();
        let mut emptied = 0;
        for resource in resources {
            let policy = match self.get_policy(&resource).await {
                Ok(policy) => policy,
                Err(error) if error.status == Some(404) => continue,
                Err(error) => return Err(error),
            };
            let held: Vec<Value> = self
                .writs_part(&resource, &policy)
                .into_iter()
                .filter_map(|mut binding| {
                    let members: Vec<Value> = binding["members"]
                        .as_array()?
                        .iter()
                        .filter(|m| m.as_str() == Some(member.as_str()))
                        .cloned()
                        .collect();
                    (!members.is_empty()).then(|| {
                        binding["members"] = Value::Array(members);
                        binding
                    })
                })
                .collect();
            if !held.is_empty() {
                self.converge_policy(&resource, &held, &[]).await?;
                emptied += 1;
            }
        }
        let keys = match keys {
            0 => String::new(),
            1 => ", its user-managed key disabled".to_string(),
            n => format!(", its {n} user-managed keys disabled"),
        };
        report.said(format!(
            "revoked `{agent}` in {}: service account `{email}` disabled (it gets no new tokens){keys}, and taken out of {emptied} polic{}; kept so by every plan until `writ revoke --lift`",
            self.address,
            if emptied == 1 { "y" } else { "ies" }
        ));
        Ok(())
    }

    /// `writ revoke --lift`: the record restored and the account enabled;
    /// the next apply gives its bindings back.
    async fn restore(&self, agent: &str, report: &mut Revocation) -> Result<(), ProviderError> {
        let email = self.agent_email(agent);
        let Some(found) = self.account(&email).await? else {
            report.said(format!(
                "{}: nothing to lift for `{agent}`: it has no service account there",
                self.address
            ));
            return Ok(());
        };
        self.check_ours(&found, &email)?;
        if !ownership::gcp::is_revoked(found["description"].as_str().unwrap_or_default()) {
            report.said(format!("{}: `{agent}` is not revoked there", self.address));
            return Ok(());
        }
        // Marked lifted until the next apply writes the record anew: its
        // digest counts the bindings that apply gives back.
        let lifted = format!(
            "{}{}",
            ownership::gcp::unrevoked(found["description"].as_str().unwrap_or_default()),
            ownership::gcp::LIFTED_MARK
        );
        self.describe(
            &email,
            &lifted,
            None,
            &format!("clearing the revocation of service account `{email}`"),
        )
        .await?;
        self.set_enabled(&email, true).await?;
        report.said(format!(
            "lifted `{agent}` in {}: service account `{email}` enabled (its user-managed keys stay disabled: enable one by hand if it must be used again); the next apply gives its bindings back",
            self.address
        ));
        Ok(())
    }
}

/// What Cloud Asset's search found.
struct Search {
    /// Resources with a binding of writ's that writ can read and write
    /// (projects, buckets, service accounts by email).
    readable: Vec<String>,
    /// Those it cannot, by Cloud Asset's full name (for the plan to say).
    other: Vec<String>,
    /// Why nothing was searched, when so.
    unsearched: Option<String>,
}

/// A project's number, from its Resource Manager name (`projects/NUMBER`).
fn number_of(project: &Value) -> Option<&str> {
    project["name"]
        .as_str()
        .and_then(|n| n.strip_prefix("projects/"))
}

/// Text for a query parameter: unreserved characters as they are, the rest
/// percent-encoded.
fn encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A binding's place in writ's order: role, then condition (none first).
fn binding_key(binding: &Value) -> (String, Option<(String, String)>) {
    (binding_role(binding), condition_of(binding))
}

fn binding_role(binding: &Value) -> String {
    binding["role"].as_str().unwrap_or_default().to_string()
}

/// A binding's condition, as GCP tells bindings apart: expression and
/// title.
fn condition_of(binding: &Value) -> Option<(String, String)> {
    let condition = binding.get("condition")?;
    Some((
        condition["expression"].as_str()?.to_string(),
        condition["title"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Role, condition and member.
type Triple = (String, Option<(String, String)>, String);

fn triples(bindings: &[Value]) -> Vec<Triple> {
    let mut found = Vec::new();
    for binding in bindings {
        for member in binding["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            found.push((
                binding_role(binding),
                condition_of(binding),
                member.to_string(),
            ));
        }
    }
    found
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
            let found = self.read_project().await?;
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
            let project = self.read_project().await?;
            let number = number_of(&project);
            found.push(record(
                format!("{}/project", self.address),
                ResourceKind::GcpProject,
                vec![("id", json!(self.gcp_project)), ("number", json!(number))],
            ));
            // Service accounts, by the page.
            let mut writs = Vec::new();
            // Unique id → email, for Cloud Asset's names.
            let mut unique_ids: BTreeMap<String, String> = BTreeMap::new();
            let mut token: Option<String> = None;
            loop {
                let url = match &token {
                    Some(token) => {
                        format!(
                            "{}?pageSize=100&pageToken={}",
                            self.accounts_url(),
                            encoded(token)
                        )
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
                    if let Some(unique) = account["uniqueId"].as_str() {
                        unique_ids.insert(unique.to_string(), email.to_string());
                    }
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
            // The user-managed keys of writ's accounts: long-lived
            // credentials of agents, inventoried.
            for email in &writs {
                let listed = self
                    .call(
                        http::Method::GET,
                        &format!("{}/keys?keyTypes=USER_MANAGED", self.account_url(email)),
                        None,
                        &format!("listing the keys of service account `{email}`"),
                    )
                    .await?;
                let id = email.split('@').next().unwrap_or_default();
                for key in listed["keys"].as_array().into_iter().flatten() {
                    let Some(key_id) = key["name"].as_str().and_then(|n| n.rsplit('/').next())
                    else {
                        continue;
                    };
                    found.push(record(
                        format!("{}/serviceAccounts/{id}/keys/{key_id}", self.address),
                        ResourceKind::GcpServiceAccountKey,
                        vec![
                            ("account", json!(email)),
                            ("id", json!(key_id)),
                            ("created", key["validAfterTime"].clone()),
                            ("expires", key["validBeforeTime"].clone()),
                            (
                                "disabled",
                                json!(key["disabled"].as_bool().unwrap_or(false)),
                            ),
                        ],
                    ));
                }
            }
            // Where else writ's accounts hold roles in the project: a
            // binding the source dropped on a resource it no longer names
            // is found so, and planned away.
            let number = found
                .first()
                .and_then(|p| p.string("number"))
                .map(str::to_string);
            let search = self
                .search_elsewhere(number.as_deref(), &unique_ids)
                .await?;
            // Said on the project's record: why the search was not made,
            // and the resources it found that writ cannot change.
            if let Some(project) = found.first_mut() {
                if let Some(why) = &search.unsearched {
                    project
                        .attributes
                        .insert("unsearched".to_string(), json!(why));
                }
                if !search.other.is_empty() {
                    project
                        .attributes
                        .insert("bound_elsewhere".to_string(), json!(search.other));
                }
            }
            // Writ's workload identity pools, and the providers in them;
            // credentials that may not list pools (no agent runs in GitHub
            // Actions, say) leave them unread, and the plan says so.
            match self.observe_pools().await {
                Ok(pools) => {
                    found.extend(pools.found);
                    if !pools.deleted.is_empty() {
                        if let Some(project) = found.first_mut() {
                            project.attributes.insert(
                                "deleted_pool_providers".to_string(),
                                Value::Object(pools.deleted),
                            );
                        }
                    }
                }
                Err(error) if error.status == Some(403) => {
                    if let Some(project) = found.first_mut() {
                        project
                            .attributes
                            .insert("pools_unread".to_string(), json!(error.message));
                    }
                }
                Err(error) => return Err(error),
            }
            // Writ's part of each policy the source binds on, the project's,
            // and each writ service account's own.
            let mut resources: Vec<String> = self.resources.clone();
            resources.push(format!("projects/{}", self.gcp_project));
            resources.extend(search.readable);
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
                ResourceKind::GcpWorkloadIdentityPool
                | ResourceKind::GcpWorkloadIdentityPoolProvider => self.apply_pool(change).await,
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
        mark: &'a RevokeMark,
        _users: &'a [String],
    ) -> BoxFuture<'a, Revocation> {
        Box::pin(async move {
            let mut report = Revocation::default();
            if let Err(error) = self.cut_off(agent, mark, &mut report).await {
                report.failed(format!(
                    "could not revoke `{agent}` in {}: {error}",
                    self.address
                ));
            }
            report
        })
    }

    fn issue<'a>(
        &'a self,
        request: &'a writ_provider_core::Issue,
    ) -> BoxFuture<'a, Result<writ_provider_core::Issued, ProviderError>> {
        Box::pin(self.access_token(request))
    }

    fn lift<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, Revocation> {
        Box::pin(async move {
            let mut report = Revocation::default();
            if let Err(error) = self.restore(agent, &mut report).await {
                report.failed(format!(
                    "could not lift `{agent}` in {}: {error}",
                    self.address
                ));
            }
            report
        })
    }
}
