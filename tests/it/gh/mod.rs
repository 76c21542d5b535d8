//! A local GitHub REST API for tests: the part writ uses, answering as
//! GitHub does.
//!
//! - `GET /repos/{owner}/{repo}/issues/{number}/comments`: `per_page`
//!   (default 30, at most 100) and `page`, with a `Link` header (`next`,
//!   `last`, `prev`, `first`) of absolute addresses;
//! - `POST` to the same path (201; 404 for a pull request that does not
//!   exist; 422 for a missing, empty or too long body);
//! - `PATCH /repos/{owner}/{repo}/issues/comments/{id}` (200; 404; 403 when
//!   the token's user did not write the comment);
//! - `GET /repos/{owner}/{repo}/commits/{sha}/pulls` (422 for an unknown
//!   commit);
//! - `GET /orgs/{org}`, `GET /repos/{owner}/{repo}` (names matched without
//!   regard to case, answered as GitHub spells them; 404 for others), and
//!   the Actions OIDC subject templates, `GET
//!   /repos/{owner}/{repo}/actions/oidc/customization/sub` (`use_default`
//!   true until one is set) and `GET
//!   /orgs/{org}/actions/oidc/customization/sub`; a repository's deploy
//!   keys (`GET /repos/{owner}/{repo}/keys`, an array) and Actions secrets
//!   (`GET /repos/{owner}/{repo}/actions/secrets`, `{total_count,
//!   secrets}`), both paged by `per_page` and `page` with a `Link` header,
//!   and 403 for a token that may not read them; the organisation's App
//!   installations (`GET /orgs/{org}/installations`) and the fine-grained
//!   personal access tokens with access to it (`GET
//!   /orgs/{org}/personal-access-tokens`), each 403 unless allowed;
//!   each of these answers
//!   with an `ETag`, and a `304` with no body to `If-None-Match` when
//!   unchanged;
//! - deployment environments: `GET` and `PUT
//!   /repos/{owner}/{repo}/environments/{name}` (names without regard to
//!   case; `PUT` sets the environment whole: reviewers, wait timer and
//!   self-review rule not sent are removed, as the pessimistic reading of
//!   GitHub's description; 422 for a policy with both or neither kind),
//!   and its branch and tag patterns, `GET` (paged, `{total_count,
//!   branch_policies}`), `POST` (303 for a pattern it has; 404 when the
//!   environment takes no custom patterns) and `DELETE
//!   …/deployment-branch-policies/{id}`;
//! - a GitHub App's own endpoints, with its JWT (RS256, checked against
//!   the public half of `app-key.pem`, an `iss` of [`APP_ID`], `iat` in
//!   the past and `exp` at most ten minutes after it; 401 otherwise): `GET
//!   /orgs/{org}/installation`, `POST
//!   /app/installations/{id}/access_tokens` (201; 422 for a permission
//!   the installation lacks or a repository it does not reach; 403 when
//!   suspended), and `PUT`/`DELETE /app/installations/{id}/suspended`;
//!   `GET /installation/repositories` with such a token (the repositories
//!   an installation of selected ones reaches);
//!   the tokens it mints are accepted as the App's bot until the
//!   installation is suspended (403 then) or the token is revoked (`DELETE
//!   /installation/token`, 401 then);
//! - 401 `Bad credentials` for a missing or unknown token; only JSON bodies.
//!
//! Test hooks: secondary rate limits (403 with `retry-after`), an exhausted
//! primary rate limit (`x-ratelimit-remaining: 0`), server errors, and a
//! request log.

use crate::http::{Reply, Request};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The token of the workflow (`github-actions[bot]`).
pub const TOKEN: &str = "ghs_writtesttoken0000000000000000000000";
/// The token of a person (`octocat`), who may write comments too.
pub const OTHER_TOKEN: &str = "ghp_octocattoken000000000000000000000000";

const DOCS: &str = "https://docs.github.com/rest";

/// The id of the App whose key is `app-key.pem`.
pub const APP_ID: u64 = 8;
/// Its key, as GitHub issues it (PKCS#1 PEM).
pub const APP_KEY: &str = include_str!("app-key.pem");
/// Its public key (PKCS#1 `RSAPublicKey`, DER, in base64), made from the
/// key by `openssl rsa -RSAPublicKey_out`.
const APP_PUBLIC_KEY: &str = include_str!("app-key.pub.b64");

#[derive(Debug, Clone)]
pub struct StoredComment {
    pub id: u64,
    pub pull: u64,
    pub body: String,
    pub login: String,
}

#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Default)]
struct State {
    /// `http://127.0.0.1:PORT`, for the addresses in answers.
    base: String,
    repository: String,
    pulls: Vec<u64>,
    commits: BTreeMap<String, Vec<u64>>,
    comments: BTreeMap<u64, StoredComment>,
    next_id: u64,
    secondary_limits: usize,
    retry_after: u64,
    primary_exhausted: bool,
    server_errors: usize,
    log: Vec<Logged>,
    /// The organisation, as GitHub spells it, and its id.
    org: (String, u64),
    /// Repositories by lowercased `owner/name`: GitHub's spelling, id, and
    /// subject template (`None`: never set).
    repositories: BTreeMap<String, (String, u64, Option<Value>)>,
    org_template: Option<Value>,
    /// Deploy keys and Actions secrets by lowercased repository.
    deploy_keys: BTreeMap<String, Vec<Value>>,
    secrets: BTreeMap<String, Vec<Value>>,
    /// Listings answered 403 (`keys`, `secrets`, `contents`).
    forbidden: Vec<String>,
    /// Files by (lowercased repository, path, ref; `None`: the default
    /// branch).
    files: BTreeMap<(String, String, Option<String>), String>,
    /// The organisation's App installations.
    installations: Vec<Value>,
    /// Fine-grained personal access tokens granted access to it.
    personal_tokens: Vec<Value>,
    /// Actions settings by lowercased repository (unset: GitHub's own
    /// defaults for a repository of an organisation that set none).
    actions_settings: BTreeMap<String, Value>,
    /// Deployment environments by (lowercased repository, lowercased
    /// name): `name`, `protection_rules`, `deployment_branch_policy`, and
    /// `branch_policies` (`{id, name, type}`).
    environments: BTreeMap<(String, String), Value>,
    /// Installation tokens minted, with their installation's id.
    minted: BTreeMap<String, u64>,
    /// The body of each token request, in order.
    token_requests: Vec<Value>,
    /// The next token minted holds `administration: write` beyond what
    /// was asked (a misbehaving server, for writ's own check).
    widen_next_token: bool,
    /// The repositories of each installation of `selected` repositories.
    selected: BTreeMap<u64, Vec<String>>,
    /// Listings link their next page to another server.
    foreign_links: bool,
}

#[derive(Clone)]
pub struct FakeGitHub {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"message": message, "documentation_url": DOCS, "status": status.to_string()}),
    )
}

impl FakeGitHub {
    /// A server with one repository (`owner/name`) and these pull requests.
    pub fn start(repository: &str, pulls: &[u64]) -> FakeGitHub {
        let state = Arc::new(Mutex::new(State {
            repository: repository.to_string(),
            pulls: pulls.to_vec(),
            next_id: 1_000_000,
            ..State::default()
        }));
        let mut github = FakeGitHub { port: 0, state };
        let server = github.clone();
        github.port = crate::http::serve(Arc::new(move |request: &Request| {
            let reply = server.handle(request);
            server.state().log.push(Logged {
                method: request.method.clone(),
                path: request.path().to_string(),
                status: reply.status,
            });
            reply
        }));
        github.state().base = github.api();
        github
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A repository of the organisation, with its id.
    pub fn add_repository(&self, full_name: &str, id: u64) {
        let mut state = self.state();
        let owner = full_name.split('/').next().unwrap_or_default().to_string();
        state.org = (owner, 4412);
        state.repositories.insert(
            full_name.to_ascii_lowercase(),
            (full_name.to_string(), id, None),
        );
    }

    /// Sets a repository's OIDC subject template, as `PUT` would.
    pub fn set_repository_template(&self, full_name: &str, template: Value) {
        if let Some(entry) = self
            .state()
            .repositories
            .get_mut(&full_name.to_ascii_lowercase())
        {
            entry.2 = Some(template);
        }
    }

    /// A deploy key of a repository, as GitHub lists it.
    pub fn add_deploy_key(&self, full_name: &str, key: Value) {
        self.state()
            .deploy_keys
            .entry(full_name.to_ascii_lowercase())
            .or_default()
            .push(key);
    }

    /// An Actions secret of a repository (name and dates).
    pub fn add_secret(&self, full_name: &str, secret: Value) {
        self.state()
            .secrets
            .entry(full_name.to_ascii_lowercase())
            .or_default()
            .push(secret);
    }

    /// A file of a repository at a ref (`None`: the default branch).
    pub fn add_file(&self, full_name: &str, path: &str, git_ref: Option<&str>, text: &str) {
        self.state().files.insert(
            (
                full_name.to_ascii_lowercase(),
                path.to_string(),
                git_ref.map(str::to_string),
            ),
            text.to_string(),
        );
    }

    /// A repository's Actions settings, as `GET
    /// /repos/{owner}/{repo}/actions/permissions/workflow` answers.
    pub fn actions_settings(&self, full_name: &str) -> Value {
        self.state()
            .actions_settings
            .get(&full_name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| json!({"default_workflow_permissions": "write", "can_approve_pull_request_reviews": true}))
    }

    /// A fine-grained personal access token with access to the
    /// organisation, as GitHub lists it.
    pub fn add_personal_token(&self, grant: Value) {
        self.state().personal_tokens.push(grant);
    }

    /// A deployment environment of a repository, as someone set it by
    /// hand: its deployment branch policy (`null`: every branch), branch
    /// patterns, and protection rules as GitHub lists them.
    pub fn set_environment(
        &self,
        full_name: &str,
        name: &str,
        policy: Value,
        patterns: &[&str],
        protection_rules: Value,
    ) {
        let mut state = self.state();
        let policies: Vec<Value> = patterns
            .iter()
            .map(|p| {
                state.next_id += 1;
                json!({"id": state.next_id, "node_id": "BP", "name": p, "type": "branch"})
            })
            .collect();
        state.environments.insert(
            (full_name.to_ascii_lowercase(), name.to_lowercase()),
            json!({"name": name, "protection_rules": protection_rules, "deployment_branch_policy": policy, "branch_policies": policies}),
        );
    }

    /// A deployment environment as GitHub holds it.
    pub fn environment(&self, full_name: &str, name: &str) -> Option<Value> {
        self.state()
            .environments
            .get(&(full_name.to_ascii_lowercase(), name.to_lowercase()))
            .cloned()
    }

    /// The repositories an installation of selected repositories reaches.
    pub fn select_repositories(&self, installation: u64, repositories: &[&str]) {
        self.state().selected.insert(
            installation,
            repositories.iter().map(|r| r.to_string()).collect(),
        );
    }

    /// Listings link their next page to another server (as a hostile or
    /// broken proxy might).
    pub fn link_elsewhere(&self) {
        self.state().foreign_links = true;
    }

    /// The next token minted holds more than asked.
    pub fn widen_next_token(&self) {
        self.state().widen_next_token = true;
    }

    /// Sets whether admins may bypass an environment's rules.
    pub fn set_admins_bypass(&self, full_name: &str, name: &str, bypass: bool) {
        if let Some(environment) = self
            .state()
            .environments
            .get_mut(&(full_name.to_ascii_lowercase(), name.to_lowercase()))
        {
            environment["can_admins_bypass"] = json!(bypass);
        }
    }

    /// The bodies of the token requests so far.
    pub fn token_requests(&self) -> Vec<Value> {
        self.state().token_requests.clone()
    }

    /// The organisation's App installations, as GitHub lists them.
    pub fn installations(&self) -> Vec<Value> {
        self.state().installations.clone()
    }

    /// Replaces them.
    pub fn set_installations(&self, installations: Vec<Value>) {
        self.state().installations = installations;
    }

    /// An App installed in the organisation, as GitHub lists it.
    pub fn add_installation(&self, installation: Value) {
        self.state().installations.push(installation);
    }

    /// The token may not list `what` (`keys`, `secrets`, `contents`,
    /// `installations`).
    pub fn forbid(&self, what: &str) {
        self.state().forbidden.push(what.to_string());
    }

    /// Sets the organisation's OIDC subject template.
    pub fn set_org_template(&self, template: Value) {
        self.state().org_template = Some(template);
    }

    /// The pull requests a commit belongs to.
    pub fn add_commit(&self, sha: &str, pulls: &[u64]) {
        self.state().commits.insert(sha.to_string(), pulls.to_vec());
    }

    /// A comment written by someone, as it would be on the pull request.
    pub fn add_comment(&self, pull: u64, login: &str, body: &str) -> u64 {
        let mut state = self.state();
        state.next_id += 1;
        let id = state.next_id;
        state.comments.insert(
            id,
            StoredComment {
                id,
                pull,
                body: body.to_string(),
                login: login.to_string(),
            },
        );
        id
    }

    pub fn comments(&self, pull: u64) -> Vec<StoredComment> {
        self.state()
            .comments
            .values()
            .filter(|c| c.pull == pull)
            .cloned()
            .collect()
    }

    /// The next `count` requests meet a secondary rate limit.
    pub fn secondary_limit_next(&self, count: usize, retry_after: u64) {
        let mut state = self.state();
        state.secondary_limits = count;
        state.retry_after = retry_after;
    }

    /// Every request meets an exhausted primary rate limit, reset in an hour.
    pub fn exhaust_primary_limit(&self) {
        self.state().primary_exhausted = true;
    }

    /// The next `count` requests get a 502.
    pub fn fail_next(&self, count: usize) {
        self.state().server_errors = count;
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state().log.clone()
    }

    fn comment_json(base: &str, comment: &StoredComment, repository: &str) -> Value {
        json!({
            "id": comment.id,
            "node_id": format!("IC_{}", comment.id),
            "url": format!("{base}/repos/{repository}/issues/comments/{}", comment.id),
            "html_url": format!("https://github.com/{repository}/pull/{}#issuecomment-{}", comment.pull, comment.id),
            "issue_url": format!("{base}/repos/{repository}/issues/{}", comment.pull),
            "body": comment.body,
            "user": {"login": comment.login, "id": 1, "type": if comment.login.ends_with("[bot]") { "Bot" } else { "User" }},
            "author_association": "NONE",
            "created_at": "2026-11-28T12:00:00Z",
            "updated_at": "2026-11-28T12:00:00Z"
        })
    }

    /// The organisation, its repositories and their OIDC subject templates.
    fn identity_state(
        state: &State,
        path: &str,
        query: &BTreeMap<String, String>,
    ) -> Option<Reply> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (org, org_id) = &state.org;
        Some(match segments.as_slice() {
            ["orgs", name] if name.eq_ignore_ascii_case(org) => Reply::json(
                200,
                &json!({"login": org, "id": org_id, "node_id": "O_1", "type": "Organization"}),
            ),
            ["orgs", name, "actions", "oidc", "customization", "sub"]
                if name.eq_ignore_ascii_case(org) =>
            {
                Reply::json(
                    200,
                    state
                        .org_template
                        .as_ref()
                        .unwrap_or(&json!({"include_claim_keys": ["repo", "context"]})),
                )
            }
            ["orgs", name, "installations"] if name.eq_ignore_ascii_case(org) => {
                if state.forbidden.iter().any(|f| f == "installations") {
                    return Some(error(403, "You must be an organization owner."));
                }
                Reply::json(
                    200,
                    &json!({"total_count": state.installations.len(), "installations": state.installations}),
                )
            }
            ["orgs", name, "personal-access-tokens"] if name.eq_ignore_ascii_case(org) => {
                if state.forbidden.iter().any(|f| f == "tokens") {
                    return Some(error(403, "Resource not accessible by integration"));
                }
                Reply::json(200, &Value::Array(state.personal_tokens.clone()))
            }
            ["orgs", ..] => error(404, "Not Found"),
            ["repos", owner, name, rest @ ..]
                if !rest.starts_with(&["issues"]) && !rest.starts_with(&["commits"]) =>
            {
                let key = format!("{owner}/{name}").to_ascii_lowercase();
                let Some((full_name, id, template)) = state.repositories.get(&key) else {
                    return Some(error(404, "Not Found"));
                };
                match rest {
                    [] => Reply::json(
                        200,
                        &json!({
                            "id": id,
                            "node_id": format!("R_{id}"),
                            "name": full_name.split('/').nth(1),
                            "full_name": full_name,
                            "private": true,
                            "owner": {"login": org, "id": org_id, "type": "Organization"},
                            "default_branch": "main",
                        }),
                    ),
                    ["actions", "oidc", "customization", "sub"] => Reply::json(
                        200,
                        template.as_ref().unwrap_or(&json!({"use_default": true})),
                    ),
                    ["contents", file @ ..] => {
                        if state.forbidden.iter().any(|f| f == "contents") {
                            return Some(error(403, "Resource not accessible by integration"));
                        }
                        let file = file.join("/");
                        let git_ref = query.get("ref").cloned();
                        match state.files.get(&(key.clone(), file.clone(), git_ref)) {
                            Some(text) => {
                                use base64::Engine as _;
                                // GitHub wraps the encoding at 60 characters.
                                let encoded =
                                    base64::engine::general_purpose::STANDARD.encode(text);
                                let wrapped: Vec<String> = encoded
                                    .as_bytes()
                                    .chunks(60)
                                    .map(|c| String::from_utf8_lossy(c).into_owned())
                                    .collect();
                                Reply::json(
                                    200,
                                    &json!({
                                        "type": "file", "encoding": "base64", "size": text.len(),
                                        "name": file.rsplit('/').next(), "path": file,
                                        "content": wrapped.join("\n") + "\n",
                                        "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
                                    }),
                                )
                            }
                            None => error(404, "Not Found"),
                        }
                    }
                    ["actions", "permissions", "workflow"] => {
                        if state.forbidden.iter().any(|f| f == "settings") {
                            return Some(error(403, "Resource not accessible by integration"));
                        }
                        Reply::json(
                            200,
                            state.actions_settings.get(&key).unwrap_or(&json!({
                                "default_workflow_permissions": "write",
                                "can_approve_pull_request_reviews": true
                            })),
                        )
                    }
                    ["environments", environment] => {
                        if state.forbidden.iter().any(|f| f == "environments") {
                            return Some(error(403, "Resource not accessible by integration"));
                        }
                        let Some(found) = state
                            .environments
                            .get(&(key.clone(), environment.to_lowercase()))
                        else {
                            return Some(error(404, "Not Found"));
                        };
                        let mut rules = found["protection_rules"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        if found["deployment_branch_policy"].is_object() {
                            rules
                                .push(json!({"id": 3, "node_id": "GA_3", "type": "branch_policy"}));
                        }
                        Reply::json(
                            200,
                            &json!({
                                "id": 161_088_068, "node_id": "EN_1", "name": found["name"],
                                "url": format!("{}/repos/{full_name}/environments/{}", state.base, found["name"].as_str().unwrap_or_default()),
                                "html_url": format!("https://github.com/{full_name}/deployments"),
                                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                                "protection_rules": rules,
                                "can_admins_bypass": found["can_admins_bypass"].as_bool().unwrap_or(true),
                                "deployment_branch_policy": found["deployment_branch_policy"],
                            }),
                        )
                    }
                    ["environments", environment, "deployment-branch-policies"] => {
                        let Some(found) = state
                            .environments
                            .get(&(key.clone(), environment.to_lowercase()))
                        else {
                            return Some(error(404, "Not Found"));
                        };
                        let all = found["branch_policies"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        let (per_page, page) = paging(query);
                        let items: Vec<Value> = all
                            .iter()
                            .skip((page - 1) * per_page)
                            .take(per_page)
                            .cloned()
                            .collect();
                        let reply = Reply::json(
                            200,
                            &json!({"total_count": all.len(), "branch_policies": items}),
                        );
                        if page * per_page < all.len() {
                            reply.with_header(
                                "Link",
                                &format!(
                                    "<{}/repos/{full_name}/environments/{environment}/deployment-branch-policies?per_page={per_page}&page={}>; rel=\"next\"",
                                    state.base,
                                    page + 1
                                ),
                            )
                        } else {
                            reply
                        }
                    }
                    ["keys"] | ["actions", "secrets"] => {
                        let keys = rest == ["keys"];
                        if state
                            .forbidden
                            .iter()
                            .any(|f| f == if keys { "keys" } else { "secrets" })
                        {
                            return Some(error(403, "Resource not accessible by integration"));
                        }
                        let all = if keys {
                            &state.deploy_keys
                        } else {
                            &state.secrets
                        }
                        .get(&key)
                        .cloned()
                        .unwrap_or_default();
                        let (per_page, page) = paging(query);
                        let items: Vec<Value> = all
                            .iter()
                            .skip((page - 1) * per_page)
                            .take(per_page)
                            .cloned()
                            .collect();
                        let body = if keys {
                            Value::Array(items)
                        } else {
                            json!({"total_count": all.len(), "secrets": items})
                        };
                        let reply = Reply::json(200, &body);
                        if page * per_page < all.len() || state.foreign_links {
                            let route = if keys { "keys" } else { "actions/secrets" };
                            let base = if state.foreign_links {
                                "http://127.0.0.2:9"
                            } else {
                                state.base.as_str()
                            };
                            reply.with_header(
                                "Link",
                                &format!(
                                    "<{base}/repos/{full_name}/{route}?per_page={per_page}&page={}>; rel=\"next\"",
                                    page + 1
                                ),
                            )
                        } else {
                            reply
                        }
                    }
                    _ => error(404, "Not Found"),
                }
            }
            _ => return None,
        })
    }

    /// The App's own endpoints, with its JWT; `None` for other requests.
    fn app(&self, request: &Request) -> Option<Reply> {
        let path = request.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let is_app = matches!(
            segments.as_slice(),
            ["app", ..] | ["orgs", _, "installation"]
        );
        if !is_app {
            return None;
        }
        let jwt = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !valid_jwt(jwt) {
            return Some(error(401, "A JSON web token could not be decoded"));
        }
        let mut state = self.state();
        let installation = |state: &State, id: &str| {
            state
                .installations
                .iter()
                .position(|i| i["app_id"] == APP_ID && i["id"].as_u64() == id.parse::<u64>().ok())
        };
        Some(match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["orgs", org, "installation"]) => {
                match state.installations.iter().find(|i| {
                    i["app_id"] == APP_ID
                        && i["account"]["login"]
                            .as_str()
                            .unwrap_or(&state.org.0)
                            .eq_ignore_ascii_case(org)
                }) {
                    Some(found) => Reply::json(200, found),
                    None => error(404, "Not Found"),
                }
            }
            ("POST", ["app", "installations", id, "access_tokens"]) => {
                let Some(index) = installation(&state, id) else {
                    return Some(error(404, "Not Found"));
                };
                let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(json!({}));
                state.token_requests.push(body.clone());
                let found = state.installations[index].clone();
                if !found["suspended_at"].is_null() {
                    return Some(error(403, "This installation has been suspended"));
                }
                let rank = |l: &str| match l {
                    "read" => 1,
                    "write" => 2,
                    "admin" => 3,
                    _ => 0,
                };
                let held = found["permissions"].clone();
                let asked = body
                    .get("permissions")
                    .cloned()
                    .unwrap_or_else(|| held.clone());
                for (permission, level) in asked.as_object().into_iter().flatten() {
                    if rank(level.as_str().unwrap_or_default())
                        > rank(held[permission].as_str().unwrap_or_default())
                    {
                        return Some(Reply::json(
                            422,
                            &json!({"message": "The permissions requested are not granted to this installation.", "documentation_url": DOCS, "status": "422"}),
                        ));
                    }
                }
                let mut reached = Vec::new();
                for name in body["repositories"].as_array().into_iter().flatten() {
                    let full = format!("{}/{}", state.org.0, name.as_str().unwrap_or_default())
                        .to_ascii_lowercase();
                    match state.repositories.get(&full) {
                        Some((full_name, id, _)) => reached.push(json!({"id": id, "name": full_name.split('/').nth(1), "full_name": full_name})),
                        None => return Some(Reply::json(422, &json!({"message": "There is at least one repository that does not exist or is not accessible to the parent installation.", "documentation_url": DOCS, "status": "422"}))),
                    }
                }
                state.next_id += 1;
                let token = format!("ghs_minted{:030}", state.next_id);
                state
                    .minted
                    .insert(token.clone(), found["id"].as_u64().unwrap_or_default());
                let mut granted = asked.clone();
                if std::mem::take(&mut state.widen_next_token) {
                    granted["administration"] = json!("write");
                }
                let mut answer = json!({
                    "token": token,
                    // An hour from now, as GitHub's are.
                    "expires_at": jiff::Timestamp::now()
                        .checked_add(jiff::SignedDuration::from_secs(3600))
                        .unwrap()
                        .strftime("%Y-%m-%dT%H:%M:%SZ")
                        .to_string(),
                    "permissions": granted,
                    "repository_selection": if reached.is_empty() { found["repository_selection"].clone() } else { json!("selected") },
                });
                if !reached.is_empty() {
                    answer["repositories"] = Value::Array(reached);
                }
                Reply::json(201, &answer)
            }
            ("PUT" | "DELETE", ["app", "installations", id, "suspended"]) => {
                let Some(index) = installation(&state, id) else {
                    return Some(error(404, "Not Found"));
                };
                state.installations[index]["suspended_at"] = if request.method == "PUT" {
                    json!("2026-11-29T12:00:00Z")
                } else {
                    Value::Null
                };
                Reply {
                    status: 204,
                    headers: Vec::new(),
                    body: String::new(),
                }
            }
            _ => error(404, "Not Found"),
        })
    }

    fn handle(&self, request: &Request) -> Reply {
        if let Some(reply) = self.app(request) {
            return reply;
        }
        // A minted installation token acts as the App's bot, until its
        // installation is suspended.
        let minted = request
            .header("authorization")
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("token "))
            })
            .and_then(|token| {
                let state = self.state();
                let id = *state.minted.get(token)?;
                let suspended = state
                    .installations
                    .iter()
                    .any(|i| i["id"] == id && !i["suspended_at"].is_null());
                Some(suspended)
            });
        if minted == Some(true) {
            return error(403, "This installation has been suspended");
        }
        if minted == Some(false)
            && request.method == "GET"
            && request.path() == "/installation/repositories"
        {
            let state = self.state();
            let token = request
                .header("authorization")
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("token "))
                })
                .unwrap_or_default();
            let id = state.minted.get(token).copied().unwrap_or_default();
            let names: Vec<String> = match state.selected.get(&id) {
                Some(names) => names.clone(),
                None => state
                    .repositories
                    .values()
                    .map(|(name, _, _)| name.clone())
                    .collect(),
            };
            let repositories: Vec<Value> = names
                .iter()
                .filter_map(|name| {
                    let (full_name, id, _) = state.repositories.get(&name.to_ascii_lowercase())?;
                    Some(json!({"id": id, "name": full_name.split('/').nth(1), "full_name": full_name}))
                })
                .collect();
            return Reply::json(
                200,
                &json!({"total_count": repositories.len(), "repositories": repositories}),
            );
        }
        if minted.is_some() && request.method == "DELETE" && request.path() == "/installation/token"
        {
            let token = request
                .header("authorization")
                .and_then(|h| {
                    h.strip_prefix("Bearer ")
                        .or_else(|| h.strip_prefix("token "))
                })
                .unwrap_or_default()
                .to_string();
            self.state().minted.remove(&token);
            return Reply {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            };
        }
        let login = match request.header("authorization") {
            _ if minted == Some(false) => "release-bot[bot]",
            Some(value)
                if value == format!("Bearer {TOKEN}") || value == format!("token {TOKEN}") =>
            {
                "github-actions[bot]"
            }
            Some(value)
                if value == format!("Bearer {OTHER_TOKEN}")
                    || value == format!("token {OTHER_TOKEN}") =>
            {
                "octocat"
            }
            _ => return error(401, "Bad credentials"),
        };
        let mut state = self.state();
        if state.primary_exhausted {
            let reset = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                + 3600;
            return error(403, "API rate limit exceeded for installation ID 1.")
                .with_header("x-ratelimit-limit", "5000")
                .with_header("x-ratelimit-remaining", "0")
                .with_header("x-ratelimit-reset", &reset.to_string());
        }
        if state.secondary_limits > 0 {
            state.secondary_limits -= 1;
            let wait = state.retry_after.to_string();
            return error(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.")
                .with_header("retry-after", &wait);
        }
        if state.server_errors > 0 {
            state.server_errors -= 1;
            return error(502, "Server Error");
        }
        let repository = state.repository.clone();
        let base = state.base.clone();
        let path = request.path().to_string();
        if request.method == "GET" {
            if let Some(reply) = Self::identity_state(&state, &path, &request.query()) {
                // Every answer carries an `ETag` (of its body, pages' links
                // included); asked again with it, an unchanged one is a 304
                // with no body, as GitHub does.
                if reply.status != 200 {
                    return reply;
                }
                let mut digest = writ_compiler::policy::Digester::new();
                digest.bytes(reply.body.as_bytes());
                for (_, value) in &reply.headers {
                    digest.bytes(value.as_bytes());
                }
                let etag = format!("W/\"{}\"", digest.finish());
                if request.header("if-none-match") == Some(etag.as_str()) {
                    return Reply {
                        status: 304,
                        headers: vec![("ETag".to_string(), etag)],
                        body: String::new(),
                    };
                }
                return reply.with_header("ETag", &etag);
            }
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if let ["repos", owner, name, "environments", environment, rest @ ..] = segments.as_slice()
        {
            let key = format!("{owner}/{name}").to_ascii_lowercase();
            if !state.repositories.contains_key(&key) {
                return error(404, "Not Found");
            }
            if state.forbidden.iter().any(|f| f == "environment writes") {
                return error(403, "Resource not accessible by integration");
            }
            let body = serde_json::from_slice::<Value>(&request.body).unwrap_or(Value::Null);
            let env_key = (key, environment.to_lowercase());
            match (request.method.as_str(), rest) {
                ("PUT", []) => {
                    let policy = body["deployment_branch_policy"].clone();
                    if policy.is_object()
                        && policy["protected_branches"].as_bool()
                            == policy["custom_branch_policies"].as_bool()
                    {
                        return validation("deployment_branch_policy", "invalid", "protected_branches and custom_branch_policies cannot have the same value");
                    }
                    let mut rules = Vec::new();
                    if let Some(wait) = body["wait_timer"].as_u64().filter(|w| *w > 0) {
                        rules.push(json!({"id": 1, "node_id": "GA_1", "type": "wait_timer", "wait_timer": wait}));
                    }
                    if let Some(reviewers) = body["reviewers"].as_array().filter(|r| !r.is_empty())
                    {
                        let reviewers: Vec<Value> = reviewers
                            .iter()
                            .map(|r| json!({"type": r["type"], "reviewer": {"id": r["id"], "login": format!("reviewer-{}", r["id"])}}))
                            .collect();
                        rules.push(json!({"id": 2, "node_id": "GA_2", "type": "required_reviewers", "prevent_self_review": body["prevent_self_review"].as_bool().unwrap_or(false), "reviewers": reviewers}));
                    }
                    let kept = state
                        .environments
                        .get(&env_key)
                        .map(|e| e["branch_policies"].clone())
                        .unwrap_or(json!([]));
                    let bypass = body["can_admins_bypass"].as_bool().unwrap_or(true);
                    state.environments.insert(
                        env_key,
                        json!({"name": environment, "protection_rules": rules, "deployment_branch_policy": policy, "branch_policies": kept, "can_admins_bypass": bypass}),
                    );
                    return Reply::json(200, &json!({"name": environment}));
                }
                ("POST", ["deployment-branch-policies"]) => {
                    state.next_id += 1;
                    let id = state.next_id;
                    let Some(found) = state.environments.get_mut(&env_key) else {
                        return error(404, "Not Found");
                    };
                    if found["deployment_branch_policy"]["custom_branch_policies"].as_bool()
                        != Some(true)
                    {
                        return error(404, "Not Found");
                    }
                    let (Some(pattern), kind) = (
                        body["name"].as_str(),
                        body["type"].as_str().unwrap_or("branch"),
                    ) else {
                        return validation("name", "missing_field", "name is missing");
                    };
                    let policies = found["branch_policies"].as_array_mut().expect("a list");
                    if policies
                        .iter()
                        .any(|p| p["name"] == pattern && p["type"] == kind)
                    {
                        return Reply {
                            status: 303,
                            headers: Vec::new(),
                            body: String::new(),
                        };
                    }
                    let policy = json!({"id": id, "node_id": "BP", "name": pattern, "type": kind});
                    policies.push(policy.clone());
                    return Reply::json(200, &policy);
                }
                ("DELETE", ["deployment-branch-policies", id]) => {
                    let Some(found) = state.environments.get_mut(&env_key) else {
                        return error(404, "Not Found");
                    };
                    let policies = found["branch_policies"].as_array_mut().expect("a list");
                    let before = policies.len();
                    let id = id.parse::<u64>().ok();
                    policies.retain(|p| p["id"].as_u64() != id);
                    if policies.len() == before {
                        return error(404, "Not Found");
                    }
                    return Reply {
                        status: 204,
                        headers: Vec::new(),
                        body: String::new(),
                    };
                }
                _ => return error(404, "Not Found"),
            }
        }
        // `PUT /repos/{owner}/{repo}/actions/permissions/workflow`: 204, 422
        // for a level GitHub does not have, 403 without the permission.
        if let ("PUT", ["repos", owner, name, "actions", "permissions", "workflow"]) =
            (request.method.as_str(), segments.as_slice())
        {
            let key = format!("{owner}/{name}").to_ascii_lowercase();
            if !state.repositories.contains_key(&key) {
                return error(404, "Not Found");
            }
            if state.forbidden.iter().any(|f| f == "settings") {
                return error(403, "Resource not accessible by integration");
            }
            let Ok(value) = serde_json::from_slice::<Value>(&request.body) else {
                return error(400, "Problems parsing JSON");
            };
            let level = value["default_workflow_permissions"].as_str();
            if !matches!(level, None | Some("read" | "write"))
                || !(value["can_approve_pull_request_reviews"].is_null()
                    || value["can_approve_pull_request_reviews"].is_boolean())
            {
                return validation("default_workflow_permissions", "invalid", "invalid value");
            }
            let current = state
                .actions_settings
                .get(&key)
                .cloned()
                .unwrap_or_else(|| json!({"default_workflow_permissions": "write", "can_approve_pull_request_reviews": true}));
            let mut next = current;
            if let Some(level) = level {
                next["default_workflow_permissions"] = json!(level);
            }
            if let Some(approve) = value["can_approve_pull_request_reviews"].as_bool() {
                next["can_approve_pull_request_reviews"] = json!(approve);
            }
            state.actions_settings.insert(key, next);
            return Reply {
                status: 204,
                headers: Vec::new(),
                body: String::new(),
            };
        }
        let Some(rest) = path.strip_prefix(&format!("/repos/{repository}/")) else {
            return error(404, "Not Found");
        };
        let segments: Vec<&str> = rest.split('/').collect();
        let body = || -> Result<String, Reply> {
            if !request
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
            {
                return Err(error(415, "Unsupported 'Content-Type' header"));
            }
            let value: Value = serde_json::from_slice(&request.body)
                .map_err(|_| error(400, "Problems parsing JSON"))?;
            match value.get("body").and_then(Value::as_str) {
                None => Err(Reply::json(
                    422,
                    &json!({"message": "Invalid request.\n\n\"body\" wasn't supplied.", "documentation_url": DOCS, "status": "422"}),
                )),
                Some("") => Err(validation("body", "missing_field", "body cannot be blank")),
                Some(text) if text.chars().count() > 65_536 => Err(validation(
                    "body",
                    "custom",
                    "body is too long (maximum is 65536 characters)",
                )),
                Some(text) => Ok(text.to_string()),
            }
        };
        match (request.method.as_str(), segments.as_slice()) {
            ("GET", ["issues", number, "comments"]) => {
                let Some(pull) = number.parse::<u64>().ok().filter(|n| state.pulls.contains(n)) else {
                    return error(404, "Not Found");
                };
                let (per_page, page) = paging(&request.query());
                let all: Vec<&StoredComment> = state.comments.values().filter(|c| c.pull == pull).collect();
                let items: Vec<Value> = all
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|c| Self::comment_json(&base, c, &repository))
                    .collect();
                let last = all.len().div_ceil(per_page).max(1);
                let link = |p: usize, rel: &str| {
                    format!("<{base}/repos/{repository}/issues/{pull}/comments?per_page={per_page}&page={p}>; rel=\"{rel}\"")
                };
                let mut links = Vec::new();
                if page < last {
                    links.push(link(page + 1, "next"));
                    links.push(link(last, "last"));
                }
                if page > 1 {
                    links.push(link(1, "first"));
                    links.push(link(page - 1, "prev"));
                }
                let reply = Reply::json(200, &Value::Array(items));
                if links.is_empty() {
                    reply
                } else {
                    reply.with_header("Link", &links.join(", "))
                }
            }
            ("POST", ["issues", number, "comments"]) => {
                let Some(pull) = number.parse::<u64>().ok().filter(|n| state.pulls.contains(n)) else {
                    return error(404, "Not Found");
                };
                let text = match body() {
                    Ok(text) => text,
                    Err(reply) => return reply,
                };
                state.next_id += 1;
                let comment = StoredComment {
                    id: state.next_id,
                    pull,
                    body: text,
                    login: login.to_string(),
                };
                state.comments.insert(comment.id, comment.clone());
                Reply::json(201, &Self::comment_json(&base, &comment, &repository))
            }
            ("PATCH", ["issues", "comments", id]) => {
                let Some(id) = id.parse::<u64>().ok().filter(|id| state.comments.contains_key(id)) else {
                    return error(404, "Not Found");
                };
                if state.comments[&id].login != login {
                    return error(403, "Resource not accessible by integration");
                }
                let text = match body() {
                    Ok(text) => text,
                    Err(reply) => return reply,
                };
                let comment = state.comments.get_mut(&id).unwrap();
                comment.body = text;
                let comment = comment.clone();
                Reply::json(200, &Self::comment_json(&base, &comment, &repository))
            }
            ("GET", ["commits", sha, "pulls"]) => match state.commits.get(*sha) {
                Some(pulls) => Reply::json(
                    200,
                    &Value::Array(
                        pulls
                            .iter()
                            .map(|n| json!({"number": n, "state": "closed", "merged_at": "2026-11-28T12:00:00Z", "title": format!("Change {n}")}))
                            .collect(),
                    ),
                ),
                None => Reply::json(422, &json!({"message": format!("No commit found for SHA: {sha}"), "documentation_url": DOCS, "status": "422"})),
            },
            _ => error(404, "Not Found"),
        }
    }
}

/// `per_page` (default 30, at most 100) and `page` (from 1), as GitHub
/// reads them.
fn paging(query: &BTreeMap<String, String>) -> (usize, usize) {
    let number = |key: &str| query.get(key).and_then(|p| p.parse::<usize>().ok());
    (
        number("per_page").unwrap_or(30).clamp(1, 100),
        number("page").unwrap_or(1).max(1),
    )
}

fn validation(field: &str, code: &str, message: &str) -> Reply {
    Reply::json(
        422,
        &json!({
            "message": "Validation Failed",
            "errors": [{"resource": "IssueComment", "code": code, "field": field, "message": message}],
            "documentation_url": DOCS,
            "status": "422"
        }),
    )
}

/// Is `jwt` one the App signed with its key, valid now?
fn valid_jwt(jwt: &str) -> bool {
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = jwt.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return false;
    };
    let decode =
        |part: &str| -> Option<Value> { serde_json::from_slice(&url.decode(part).ok()?).ok() };
    let (Some(header), Some(claims), Ok(signature)) =
        (decode(header), decode(claims), url.decode(signature))
    else {
        return false;
    };
    let Ok(public) = base64::engine::general_purpose::STANDARD.decode(APP_PUBLIC_KEY.trim()) else {
        return false;
    };
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        public,
    );
    let signed = format!("{}.{}", parts[0], parts[1]);
    if key.verify(signed.as_bytes(), &signature).is_err() {
        return false;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (Some(iat), Some(exp)) = (claims["iat"].as_u64(), claims["exp"].as_u64()) else {
        return false;
    };
    header["alg"] == "RS256"
        && claims["iss"]
            .as_str()
            .and_then(|i| i.parse::<u64>().ok())
            .or(claims["iss"].as_u64())
            == Some(APP_ID)
        && iat <= now
        && now < exp
        && exp - iat <= 600
}
