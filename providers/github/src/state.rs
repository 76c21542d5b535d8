//! GitHub as a provider of identity state: the repositories agents run in,
//! as the OIDC tokens of their workflows name them. For each repository
//! the source governs, it reads the repository (its immutable id and its
//! owner's, and its name as GitHub spells it) and the subject template of
//! its Actions tokens (the repository's, or, when the repository defers to
//! it, the organisation's). Plans bind the AWS trust of the repository's
//! workflows to what is read here (`writ_compiler::lower::github`).
//!
//! The only objects it changes are the Actions settings writ governs in each
//! of those repositories (a read-only default token, no pull-request
//! approval by Actions), set whole with one `PUT`, never deleted; a
//! revocation is carried out by the cloud trust, which the AWS provider
//! closes.

use crate::client::{encoded, is_refusal, GitHub, Method, Repository};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use writ_compiler::plan::{Change, Identity};
use writ_compiler::resource::{strings, Resource, ResourceKind};
use writ_provider_core::{
    BoxFuture, Provider, ProviderError, RequestStats, Retrier, Revocation, RevokeMark,
};

/// How to reach GitHub.
pub struct Connection {
    /// `https://api.github.com`, or a GitHub Enterprise Server's `…/api/v3`.
    pub api: String,
    pub token: String,
    /// Where answers are kept by `ETag` (`None`: not kept).
    pub cache: Option<std::path::PathBuf>,
    /// The App whose key writ.toml names, if any: the repositories its
    /// installation reaches are read with it.
    pub app: Option<crate::app::AppClient>,
}

/// A workflow file an agent runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workflow {
    pub repository: Repository,
    /// From the repository's root: `.github/workflows/deploy.yml`.
    pub path: String,
    /// The ref the source pins (`refs/heads/main`); else the default branch.
    pub git_ref: Option<String>,
}

/// A deployment environment agents run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub repository: Repository,
    /// As the source writes it.
    pub name: String,
}

/// What the source governs in one organisation.
#[derive(Debug, Clone, Default)]
pub struct Governed {
    /// The repositories the source's agents run in.
    pub repositories: Vec<Repository>,
    /// The workflow files agents run as: repository, path, pinned ref.
    pub workflows: Vec<Workflow>,
    /// The deployment environments agents run in.
    pub environments: Vec<Environment>,
}

/// One `provider github NAME` of the source, connected.
pub struct GithubState {
    address: String,
    org: String,
    governed: Governed,
    client: GitHub,
    app: Option<crate::app::AppClient>,
}

impl GithubState {
    /// Connects (sending nothing yet) to the organisation `org` at `api`,
    /// for what the source governs there.
    pub fn connect(
        address: &str,
        org: &str,
        governed: Governed,
        connection: Connection,
        retrier: &Retrier,
    ) -> Result<GithubState, ProviderError> {
        let mut client = GitHub::connect(&connection.api, connection.token, retrier)?;
        if let Some(dir) = connection.cache {
            client = client.with_cache(dir);
        }
        Ok(GithubState {
            address: address.to_string(),
            org: org.to_string(),
            governed,
            client,
            app: connection.app,
        })
    }

    /// The organisation's subject template: its claim keys, and whether
    /// its tokens carry ids in `repo`.
    async fn organisation_template(&self) -> Result<(Vec<String>, bool), ProviderError> {
        let answer = self
            .client
            .request(
                Method::Get,
                &format!("/orgs/{}/actions/oidc/customization/sub", self.org),
                None,
                &format!(
                    "reading the OIDC subject template of organisation `{}`",
                    self.org
                ),
            )
            .await?
            .json()?;
        Ok((
            strings(Some(&answer["include_claim_keys"])),
            answer["use_immutable_subject"].as_bool().unwrap_or(false),
        ))
    }

    /// A workflow file, and what it asks for: its `permissions:`, at the
    /// top and per job (`null` where it sets none).
    async fn workflow(&self, workflow: &Workflow) -> Result<Resource, ProviderError> {
        let Workflow {
            repository,
            path,
            git_ref,
        } = workflow;
        let what = format!("reading workflow `{path}` of `{repository}`");
        let url = match git_ref {
            Some(git_ref) => format!(
                "/repos/{repository}/contents/{}?ref={}",
                encoded(path, true),
                encoded(git_ref, false)
            ),
            None => format!("/repos/{repository}/contents/{}", encoded(path, true)),
        };
        let mut attributes = vec![
            ("repository", json!(repository.to_string())),
            ("path", json!(path)),
            ("ref", json!(git_ref)),
        ];
        let address = format!(
            "{}/repos/{repository}/workflows/{}{}",
            self.address,
            path.trim_start_matches(".github/workflows/"),
            git_ref
                .as_deref()
                .map(|r| format!("@{r}"))
                .unwrap_or_default()
        );
        let answer = match self.client.request(Method::Get, &url, None, &what).await {
            Ok(answer) => answer.json()?,
            Err(error) if error.status == Some(404) => {
                attributes.push(("missing", json!(true)));
                return Ok(self.resource(address, ResourceKind::GithubWorkflow, attributes));
            }
            Err(error) if is_refusal(&error) => {
                attributes.push(("unread", json!(true)));
                return Ok(self.resource(address, ResourceKind::GithubWorkflow, attributes));
            }
            Err(error) => return Err(error),
        };
        // A file writ cannot read as a workflow is said in the plan, never
        // the end of the whole read: anyone who may push could write one.
        let mut unreadable = |why: String| {
            attributes.push(("unreadable", json!(why)));
            self.resource(
                address.clone(),
                ResourceKind::GithubWorkflow,
                attributes.clone(),
            )
        };
        if answer["type"].as_str() != Some("file") || answer["encoding"].as_str() != Some("base64")
        {
            return Ok(unreadable(
                "it is not a file GitHub sends whole (a folder, a link, or over 1 MB)".to_string(),
            ));
        }
        let content: String = answer["content"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        use base64::Engine as _;
        let Some(text) = base64::engine::general_purpose::STANDARD
            .decode(content.as_bytes())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
        else {
            return Ok(unreadable("it is not UTF-8 text".to_string()));
        };
        let document: Value = match serde_saphyr::from_str(&text) {
            Ok(document) => document,
            Err(error) => {
                let first = error.to_string();
                let first = first.lines().next().unwrap_or_default().to_string();
                return Ok(unreadable(format!("it is not YAML writ can read: {first}")));
            }
        };
        let jobs: serde_json::Map<String, Value> = document["jobs"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, job)| (id.clone(), job["permissions"].clone()))
            .collect();
        attributes.push(("permissions", document["permissions"].clone()));
        attributes.push(("jobs", Value::Object(jobs)));
        Ok(self.resource(address, ResourceKind::GithubWorkflow, attributes))
    }

    /// One listing of the organisation's (`route` under `/orgs/ORG/`), as
    /// records of `kind` at `ADDRESS/route/ID`, after a record of the
    /// listing itself at `ADDRESS/route`: `listed` (how many; none is then
    /// a finding of its own), or `unread` when the token may not list them.
    async fn organisation_listing(
        &self,
        route: &str,
        items: Option<&str>,
        what: &str,
        kind: ResourceKind,
        one: impl Fn(&Value) -> Vec<(&'static str, Value)>,
    ) -> Result<Vec<Resource>, ProviderError> {
        let listed = self
            .list(
                &format!("/orgs/{}/{route}", self.org),
                items,
                &format!("reading the {what} of organisation `{}`", self.org),
            )
            .await?;
        let record = format!("{}/{route}", self.address);
        let Some(listed) = listed else {
            return Ok(vec![self.resource(record, kind, [("unread", json!(true))])]);
        };
        let mut found =
            vec![self.resource(record.clone(), kind, [("listed", json!(listed.len()))])];
        found.extend(listed.iter().filter_map(|item| {
            let id = item["id"].as_u64()?;
            let mut attributes = vec![("id", json!(id))];
            attributes.extend(one(item));
            Some(self.resource(format!("{record}/{id}"), kind, attributes))
        }));
        Ok(found)
    }

    /// The Apps installed in the organisation. Reading them takes an
    /// organisation owner's token (`admin:read`; fine-grained:
    /// `Administration: read`).
    async fn installations(&self) -> Result<Vec<Resource>, ProviderError> {
        let mut found = self
            .organisation_listing(
                "installations",
                Some("installations"),
                "App installations",
                ResourceKind::GithubAppInstallation,
                |installation| {
                    vec![
                        ("app", installation["app_slug"].clone()),
                        (
                            "repository_selection",
                            installation["repository_selection"].clone(),
                        ),
                        ("permissions", installation["permissions"].clone()),
                        ("created", installation["created_at"].clone()),
                        ("suspended", json!(!installation["suspended_at"].is_null())),
                        ("app_id", installation["app_id"].clone()),
                    ]
                },
            )
            .await?;
        // The repositories a selected installation reaches are listed only
        // to the installation itself: read for the App whose key writ.toml
        // names.
        if let Some(app) = &self.app {
            for record in &mut found {
                let ours = record.attribute("app_id").and_then(Value::as_u64) == Some(app.app_id());
                let selected = record.string("repository_selection") == Some("selected");
                let suspended =
                    record.attribute("suspended").and_then(Value::as_bool) == Some(true);
                let Some(id) = record.attribute("id").and_then(Value::as_u64) else {
                    continue;
                };
                if ours && selected && !suspended {
                    let repositories = app.installation_repositories(id).await?;
                    record
                        .attributes
                        .insert("repositories".to_string(), json!(repositories));
                }
            }
        }
        Ok(found)
    }

    /// The fine-grained personal access tokens members granted access to
    /// the organisation. Only a GitHub App's token may list them.
    async fn personal_tokens(&self) -> Result<Vec<Resource>, ProviderError> {
        self.organisation_listing(
            "personal-access-tokens",
            None,
            "personal access tokens",
            ResourceKind::GithubPersonalToken,
            |grant| {
                vec![
                    ("name", grant["token_name"].clone()),
                    ("owner", grant["owner"]["login"].clone()),
                    (
                        "repository_selection",
                        grant["repository_selection"].clone(),
                    ),
                    ("permissions", grant["permissions"].clone()),
                    ("created", grant["access_granted_at"].clone()),
                    ("expires", grant["token_expires_at"].clone()),
                    ("expired", grant["token_expired"].clone()),
                    ("last_used", grant["token_last_used_at"].clone()),
                ]
            },
        )
        .await
    }

    /// Every item of a listing, page by page (`items` names the array in
    /// an object answer; `None`: the answer is the array). `Ok(None)` when
    /// the token may not read it (403, or 404 as GitHub hides it).
    async fn list(
        &self,
        path: &str,
        items: Option<&str>,
        what: &str,
    ) -> Result<Option<Vec<Value>>, ProviderError> {
        let mut found = Vec::new();
        let mut next = Some(format!("{path}?per_page=100"));
        while let Some(url) = next.take() {
            let answer = match self.client.request(Method::Get, &url, None, what).await {
                Ok(answer) => answer,
                Err(error) if is_refusal(&error) || error.status == Some(404) => return Ok(None),
                Err(error) => return Err(error),
            };
            let page = answer.json()?;
            let list = match items {
                Some(key) => page.get(key).cloned().unwrap_or(Value::Null),
                None => page,
            };
            let Value::Array(list) = list else {
                return Err(ProviderError::permanent(format!(
                    "{what}: GitHub's answer holds no list"
                )));
            };
            found.extend(list);
            next = answer.next_page();
        }
        Ok(Some(found))
    }

    /// The long-lived credentials of a repository: its deploy keys and the
    /// names of its Actions secrets; what the token may not read is named.
    async fn credentials(
        &self,
        name: &str,
        unread: &mut Vec<&'static str>,
    ) -> Result<Vec<Resource>, ProviderError> {
        let mut found = Vec::new();
        let keys = self
            .list(
                &format!("/repos/{name}/keys"),
                None,
                &format!("reading the deploy keys of `{name}`"),
            )
            .await?;
        match keys {
            Some(keys) => {
                for key in keys {
                    let Some(id) = key["id"].as_u64() else {
                        continue;
                    };
                    found.push(self.resource(
                        format!("{}/repos/{name}/keys/{id}", self.address),
                        ResourceKind::GithubDeployKey,
                        [
                            ("repository", json!(name)),
                            ("id", json!(id)),
                            ("title", key["title"].clone()),
                            ("read_only", key["read_only"].clone()),
                            ("created", key["created_at"].clone()),
                            ("last_used", key["last_used"].clone()),
                        ],
                    ));
                }
            }
            None => unread.push("deploy keys (the token needs `Administration: read`)"),
        }
        let secrets = self
            .list(
                &format!("/repos/{name}/actions/secrets"),
                Some("secrets"),
                &format!("reading the Actions secrets of `{name}`"),
            )
            .await?;
        match secrets {
            Some(secrets) => {
                for secret in secrets {
                    let Some(secret_name) = secret["name"].as_str() else {
                        continue;
                    };
                    found.push(self.resource(
                        format!(
                            "{}/repos/{name}/actions/secrets/{secret_name}",
                            self.address
                        ),
                        ResourceKind::GithubActionsSecret,
                        [
                            ("repository", json!(name)),
                            ("name", json!(secret_name)),
                            ("created", secret["created_at"].clone()),
                            ("updated", secret["updated_at"].clone()),
                        ],
                    ));
                }
            }
            None => unread.push("Actions secrets (the token needs `Secrets: read`)"),
        }
        Ok(found)
    }

    /// A deployment environment, as far as writ governs it: its
    /// deployment branch policy (`null`: every branch may deploy), and,
    /// when it names branches and tags, their patterns.
    async fn environment(&self, repository: &str, name: &str) -> Result<Read, ProviderError> {
        let route = format!("/repos/{repository}/environments/{}", encoded(name, false));
        let what = format!("reading environment `{name}` of `{repository}`");
        let answer = match self.client.request(Method::Get, &route, None, &what).await {
            Ok(answer) => answer.json()?,
            Err(error) if error.status == Some(404) => return Ok(Read::Missing),
            Err(error) if is_refusal(&error) => return Ok(Read::Refused),
            Err(error) => return Err(error),
        };
        let policy = answer["deployment_branch_policy"].clone();
        let mut attributes = vec![
            ("repository", json!(repository)),
            ("name", json!(name)),
            (
                "deployment_branch_policy",
                if policy.is_object() {
                    json!({
                        "protected_branches": policy["protected_branches"],
                        "custom_branch_policies": policy["custom_branch_policies"],
                    })
                } else {
                    Value::Null
                },
            ),
        ];
        if policy["custom_branch_policies"].as_bool() == Some(true) {
            let Some(listed) = self
                .list(
                    &format!("{route}/deployment-branch-policies"),
                    Some("branch_policies"),
                    &format!("reading the deployment branch policies of environment `{name}` of `{repository}`"),
                )
                .await?
            else {
                return Ok(Read::Refused);
            };
            attributes.push(("branch_policies", Value::Array(branch_policies(&listed))));
        }
        Ok(Read::Found(self.resource(
            format!(
                "{}/repos/{repository}/environments/{}",
                self.address,
                name.to_lowercase()
            ),
            ResourceKind::GithubEnvironment,
            attributes,
        )))
    }

    /// Sets an environment's deployment branch policy to `after`'s,
    /// keeping what writ does not govern (its reviewers, wait timer and
    /// self-review rule, read again just before, since GitHub's `PUT`
    /// sets the environment whole); then makes its branch and tag
    /// patterns exactly `after`'s, removing the extra ones first.
    async fn set_environment(&self, after: &Value) -> Result<(), ProviderError> {
        let (Some(repository), Some(name)) = (after["repository"].as_str(), after["name"].as_str())
        else {
            return Err(ProviderError::permanent(
                "an environment change names no repository or environment".to_string(),
            ));
        };
        let route = format!("/repos/{repository}/environments/{}", encoded(name, false));
        let what = format!("setting environment `{name}` of `{repository}`");
        let current = match self.client.request(Method::Get, &route, None, &what).await {
            Ok(answer) => answer.json()?,
            Err(error) if error.status == Some(404) => Value::Null,
            Err(error) => return Err(error),
        };
        let mut body = serde_json::Map::new();
        for rule in current["protection_rules"].as_array().into_iter().flatten() {
            match rule["type"].as_str() {
                Some("wait_timer") => {
                    body.insert("wait_timer".to_string(), rule["wait_timer"].clone());
                }
                Some("required_reviewers") => {
                    if let Some(prevent) = rule.get("prevent_self_review") {
                        body.insert("prevent_self_review".to_string(), prevent.clone());
                    }
                    let reviewers: Vec<Value> = rule["reviewers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|r| json!({"type": r["type"], "id": r["reviewer"]["id"]}))
                        .collect();
                    body.insert("reviewers".to_string(), Value::Array(reviewers));
                }
                _ => {}
            }
        }
        body.insert(
            "deployment_branch_policy".to_string(),
            after["deployment_branch_policy"].clone(),
        );
        // Whether admins may bypass the rules: GitHub reports it, and its
        // `PUT` takes it though its description does not list it (a server
        // that refuses the key is asked again without it).
        let bypass = current["can_admins_bypass"].as_bool();
        if let Some(bypass) = bypass {
            body.insert("can_admins_bypass".to_string(), json!(bypass));
        }
        match self
            .client
            .request(
                Method::Put,
                &route,
                Some(&Value::Object(body.clone())),
                &what,
            )
            .await
        {
            Err(error)
                if bypass.is_some()
                    && error.status == Some(422)
                    && error.message.contains("can_admins_bypass") =>
            {
                body.remove("can_admins_bypass");
                self.client
                    .request(Method::Put, &route, Some(&Value::Object(body)), &what)
                    .await?;
            }
            other => {
                other?;
            }
        }
        let Some(wanted) = after["branch_policies"].as_array() else {
            return Ok(());
        };
        let policies = format!("{route}/deployment-branch-policies");
        let listed = self
            .list(&policies, Some("branch_policies"), &what)
            .await?
            .ok_or_else(|| {
                ProviderError::permanent(format!(
                    "{what}: the token may not read its deployment branch policies (it needs `Actions: read`)"
                ))
            })?;
        let mut present = Vec::new();
        for policy in &listed {
            let kept = json!({"name": policy["name"], "type": policy["type"].as_str().unwrap_or("branch")});
            if wanted.contains(&kept) {
                present.push(kept);
            } else if let Some(id) = policy["id"].as_u64() {
                match self
                    .client
                    .request(Method::Delete, &format!("{policies}/{id}"), None, &what)
                    .await
                {
                    // Gone already (a retried request that had gone through).
                    Err(error) if error.status == Some(404) => {}
                    other => {
                        other?;
                    }
                }
            }
        }
        for policy in wanted.iter().filter(|p| !present.contains(p)) {
            match self
                .client
                .request(Method::Post, &policies, Some(policy), &what)
                .await
            {
                Ok(_) => {}
                // 303: the same pattern exists already (made meanwhile).
                Err(error) if error.status == Some(303) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn resource(
        &self,
        address: String,
        kind: ResourceKind,
        attributes: impl IntoIterator<Item = (&'static str, Value)>,
    ) -> Resource {
        Resource {
            address,
            provider: self.address.clone(),
            kind,
            agent: None,
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<BTreeMap<_, _>>()
                .into(),
        }
    }

    async fn repository(
        &self,
        repository: &Repository,
        organisation: &mut Option<(Vec<String>, bool)>,
    ) -> Result<Vec<Resource>, ProviderError> {
        let what = format!("reading repository `{repository}`");
        let found = self
            .client
            .request(Method::Get, &format!("/repos/{repository}"), None, &what)
            .await?
            .json()?;
        let (Some(name), Some(id), Some(owner_id)) = (
            found["full_name"].as_str(),
            found["id"].as_u64(),
            found["owner"]["id"].as_u64(),
        ) else {
            return Err(ProviderError::permanent(format!(
                "{what}: GitHub's answer has no `full_name`, `id` or `owner.id`"
            )));
        };
        // A repository renamed or transferred answers under its new name:
        // the trust must follow the repository the source names.
        if !name.eq_ignore_ascii_case(&repository.to_string()) {
            return Err(ProviderError::permanent(format!(
                "{what}: GitHub answers for `{name}`: the repository was renamed or transferred; write its new name in the source"
            )));
        }
        let template = self
            .client
            .request(
                Method::Get,
                &format!("/repos/{repository}/actions/oidc/customization/sub"),
                None,
                &format!("reading the OIDC subject template of `{repository}`"),
            )
            .await?
            .json()?;
        let keys = strings(Some(&template["include_claim_keys"]));
        let use_default = template["use_default"].as_bool().unwrap_or(keys.is_empty());
        // GitHub's own table: `use_default` → GitHub's template; keys →
        // them; neither → the organisation's, if it has one.
        let (source, keys, org_immutable) = if use_default {
            ("default", None, None)
        } else if !keys.is_empty() {
            ("repository", Some(keys), None)
        } else {
            if organisation.is_none() {
                *organisation = Some(self.organisation_template().await?);
            }
            match organisation {
                Some((keys, immutable)) if !keys.is_empty() => {
                    ("organization", Some(keys.clone()), Some(*immutable))
                }
                Some((_, immutable)) => ("default", None, Some(*immutable)),
                None => ("default", None, None),
            }
        };
        let immutable = template["use_immutable_subject"]
            .as_bool()
            .or(org_immutable)
            .unwrap_or(false);
        let mut oidc = json!({
            "source": source,
            "include_claim_keys": keys,
            "use_immutable_subject": immutable,
        });
        if let Some(prefix) = template["sub_claim_prefix"].as_str() {
            oidc["sub_claim_prefix"] = json!(prefix);
        }
        let mut unread = Vec::new();
        let mut found = self.credentials(name, &mut unread).await?;
        // The Actions settings writ governs, addressed as the source names
        // the repository.
        let declared = repository.to_string().to_ascii_lowercase();
        match self
            .client
            .request(
                Method::Get,
                &format!("/repos/{repository}/actions/permissions/workflow"),
                None,
                &format!("reading the Actions settings of `{repository}`"),
            )
            .await
        {
            Ok(answer) => {
                let settings = answer.json()?;
                found.push(self.resource(
                    format!(
                        "{}/repos/{declared}/actions/permissions/workflow",
                        self.address
                    ),
                    ResourceKind::GithubActionsSettings,
                    [
                        ("repository", json!(declared)),
                        (
                            "default_workflow_permissions",
                            settings["default_workflow_permissions"].clone(),
                        ),
                        (
                            "can_approve_pull_request_reviews",
                            settings["can_approve_pull_request_reviews"].clone(),
                        ),
                    ],
                ));
            }
            Err(error) if is_refusal(&error) || error.status == Some(404) => {
                unread.push("Actions settings (the token needs `Administration: read`)");
            }
            Err(error) => return Err(error),
        }
        let environments = self
            .governed
            .environments
            .iter()
            .filter(|e| e.repository.to_string().eq_ignore_ascii_case(&declared));
        for environment in environments {
            match self.environment(&declared, &environment.name).await? {
                Read::Found(record) => found.push(record),
                Read::Missing => {}
                Read::Refused => {
                    unread.push("environments (the token needs `Actions: read`)");
                    break;
                }
            }
        }
        let mut attributes = vec![
            ("name", json!(name)),
            ("id", json!(id)),
            ("owner_id", json!(owner_id)),
            ("oidc_subject", oidc),
        ];
        if !unread.is_empty() {
            attributes.push(("unread", json!(unread)));
        }
        found.insert(
            0,
            Resource {
                address: format!("{}/repos/{name}", self.address),
                provider: self.address.clone(),
                kind: ResourceKind::GithubRepository,
                agent: None,
                attributes: attributes
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect::<BTreeMap<_, _>>()
                    .into(),
            },
        );
        Ok(found)
    }
}

/// What reading one governed object found.
enum Read {
    Found(Resource),
    Missing,
    /// The token may not read it.
    Refused,
}

/// Branch and tag patterns as writ compares them: `{name, type}`, sorted.
fn branch_policies(listed: &[Value]) -> Vec<Value> {
    let mut policies: Vec<(String, String)> = listed
        .iter()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_string(),
                p["type"].as_str().unwrap_or("branch").to_string(),
            ))
        })
        .collect();
    policies.sort();
    policies.dedup();
    policies
        .into_iter()
        .map(|(name, kind)| json!({"name": name, "type": kind}))
        .collect()
}

impl Provider for GithubState {
    fn address(&self) -> &str {
        &self.address
    }

    fn stats(&self) -> RequestStats {
        self.client.stats()
    }

    fn identify(&self) -> BoxFuture<'_, Result<Identity, ProviderError>> {
        Box::pin(async move {
            let what = format!("reading organisation `{}`", self.org);
            let found = self
                .client
                .request(Method::Get, &format!("/orgs/{}", self.org), None, &what)
                .await?
                .json()?;
            let Some(login) = found["login"].as_str() else {
                return Err(ProviderError::permanent(format!(
                    "{what}: GitHub's answer names no organisation"
                )));
            };
            if !login.eq_ignore_ascii_case(&self.org) {
                return Err(ProviderError::permanent(format!(
                    "{what}: GitHub answers for `{login}`, not the organisation the source names"
                )));
            }
            Ok(Identity {
                provider: self.address.clone(),
                place: format!("organisation {login} at {}", self.client.api()),
                caller: None,
            })
        })
    }

    fn observe(&self) -> BoxFuture<'_, Result<Vec<Resource>, ProviderError>> {
        Box::pin(async move {
            let mut organisation = None;
            let mut found = self.installations().await?;
            found.extend(self.personal_tokens().await?);
            for repository in &self.governed.repositories {
                found.extend(self.repository(repository, &mut organisation).await?);
            }
            for workflow in &self.governed.workflows {
                found.push(self.workflow(workflow).await?);
            }
            Ok(found)
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            // The only GitHub objects writ changes are the Actions settings
            // and environments it governs, set to what the plan says
            // (idempotent); nothing is ever deleted.
            let after = change.after.as_ref();
            match (change.kind, after) {
                (ResourceKind::GithubActionsSettings, Some(after))
                    if !change
                        .actions
                        .contains(&writ_compiler::plan::Action::Delete) =>
                {
                    let repository =
                        after
                            .get("repository")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                ProviderError::permanent(format!(
                                    "`{}`: no repository to set",
                                    change.address
                                ))
                            })?;
                    // Only the settings the plan sets (a server without one
                    // is not sent it).
                    let body: serde_json::Map<String, Value> = [
                        "default_workflow_permissions",
                        "can_approve_pull_request_reviews",
                    ]
                    .into_iter()
                    .filter_map(|key| Some((key.to_string(), after.get(key)?.clone())))
                    .collect();
                    let body = Value::Object(body);
                    self.client
                        .request(
                            Method::Put,
                            &format!("/repos/{repository}/actions/permissions/workflow"),
                            Some(&body),
                            &format!("setting the Actions settings of `{repository}`"),
                        )
                        .await?;
                    Ok(())
                }
                (ResourceKind::GithubEnvironment, Some(after))
                    if !change
                        .actions
                        .contains(&writ_compiler::plan::Action::Delete) =>
                {
                    self.set_environment(&Value::Object(after.clone().into_iter().collect()))
                        .await
                }
                _ => Err(ProviderError::permanent(format!(
                    "`{}`: writ changes no such GitHub object",
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
            report.said(format!(
                "{}: nothing to revoke for `{agent}` in GitHub: its workflows reach the cloud through the trust the cloud providers close",
                self.address
            ));
            report
        })
    }

    fn lift<'a>(&'a self, agent: &'a str) -> BoxFuture<'a, Revocation> {
        Box::pin(async move {
            let mut report = Revocation::default();
            report.said(format!(
                "{}: nothing to lift for `{agent}` in GitHub",
                self.address
            ));
            report
        })
    }
}
