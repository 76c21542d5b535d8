//! Binding the AWS trust of GitHub workflows to the repositories as GitHub
//! observed them. Lowering names a repository by the name the source
//! writes; what GitHub puts in a job's OIDC token also depends on the
//! repository's immutable id and on its subject template (set on the
//! repository or its organisation, and since mid-2026 carrying ids by
//! default). Given the observed `github_repository` objects, each trust
//! statement for a workflow of one of them:
//!
//! - also requires the `repository_id` claim, so that a repository renamed,
//!   transferred or deleted and made again under the same name cannot
//!   inherit the role;
//! - names the repository as GitHub spells it (claims are compared
//!   case-sensitively; names are not);
//! - expects `sub` in the form the repository's template gives it, so that
//!   the role is usable, with a `*` for each part of the template that the
//!   source does not pin (which the other claim conditions still bound).
//!
//! Pure: the observed objects come from a provider or a snapshot.

use super::aws::GITHUB_OIDC;
use super::Desired;
use crate::ownership;
use crate::resource::{Resource, ResourceKind};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Each workflow an agent runs as (`runs_on github.P repo R workflow W`),
/// with what the agent's grants on `github.P` give it on `R`. Retired and
/// frozen agents hold nothing.
pub fn workflow_grants(model: &crate::model::Model) -> Vec<super::WorkflowGrant> {
    let mut found = Vec::new();
    for agent in &model.agents {
        for workload in &agent.runs_on {
            let crate::model::WorkloadKind::GithubActions {
                repository,
                workflow: Some(workflow),
                git_ref,
                ..
            } = &workload.kind
            else {
                continue;
            };
            let mut permissions: BTreeMap<String, String> = BTreeMap::new();
            if !agent.retired && !agent.frozen {
                let grants = agent.grants.iter().filter(|g| {
                    g.provider == workload.provider
                        && g.resources.iter().any(|r| {
                            crate::access::resource_matches(
                                crate::facts::ProviderKind::Github,
                                r,
                                repository,
                            )
                        })
                });
                for action in grants.flat_map(|g| &g.actions) {
                    let Some((permission, level)) = action.split_once(':') else {
                        continue;
                    };
                    let rank = crate::facts::github::level_rank;
                    let entry = permissions.entry(permission.to_string()).or_default();
                    if rank(level) > rank(entry) {
                        *entry = level.to_string();
                    }
                }
            }
            found.push(super::WorkflowGrant {
                agent: agent.name.clone(),
                provider: model.providers[workload.provider].address(),
                repository: repository.clone(),
                workflow: workflow.clone(),
                git_ref: git_ref.clone(),
                permissions,
            });
        }
    }
    found
}

/// The Actions settings writ governs in each repository agents run in: a
/// read-only default token for workflows, and no pull-request approval by
/// Actions. Addressed by the name the source writes, in lower case.
pub fn actions_settings(model: &crate::model::Model) -> Vec<Resource> {
    let mut found: BTreeMap<String, Resource> = BTreeMap::new();
    for agent in model.agents.iter().filter(|a| !a.retired && !a.frozen) {
        for workload in &agent.runs_on {
            let crate::model::WorkloadKind::GithubActions { repository, .. } = &workload.kind
            else {
                continue;
            };
            let provider = model.providers[workload.provider].address();
            let name = repository.to_ascii_lowercase();
            let address = format!("{provider}/repos/{name}/actions/permissions/workflow");
            found.entry(address.clone()).or_insert_with(|| Resource {
                address,
                provider,
                kind: ResourceKind::GithubActionsSettings,
                agent: None,
                attributes: BTreeMap::from([
                    ("repository".to_string(), json!(name)),
                    ("default_workflow_permissions".to_string(), json!("read")),
                    ("can_approve_pull_request_reviews".to_string(), json!(false)),
                ])
                .into(),
            });
        }
    }
    found.into_values().collect()
}

/// The deployment environments agents run in (`runs_on github.P repo R
/// environment E`), with the refs that may deploy to each: when every
/// agent that runs in it pins a ref, exactly those branches and tags (a
/// custom branch policy); otherwise protected branches only. Addressed by
/// repository and environment name in lower case (GitHub compares
/// environment names without regard to case).
pub fn environments(model: &crate::model::Model) -> Vec<Resource> {
    // Address → (provider, repository, name, refs; `None`: some agent pins
    // none).
    type Entry = (String, String, String, Option<Vec<(String, String)>>);
    let mut found: BTreeMap<String, Entry> = BTreeMap::new();
    for agent in model.agents.iter().filter(|a| !a.retired && !a.frozen) {
        for workload in &agent.runs_on {
            let crate::model::WorkloadKind::GithubActions {
                repository,
                environment: Some(environment),
                git_ref,
                ..
            } = &workload.kind
            else {
                continue;
            };
            let provider = model.providers[workload.provider].address();
            let repository = repository.to_ascii_lowercase();
            let address = format!(
                "{provider}/repos/{repository}/environments/{}",
                environment.to_lowercase()
            );
            let entry = found
                .entry(address)
                .or_insert_with(|| (provider, repository, environment.clone(), Some(Vec::new())));
            let policy = git_ref.as_deref().and_then(|r| {
                // Only branches and tags can deploy to an environment; a
                // policy's name is a pattern, and no git ref holds these.
                if r.contains(['*', '?', '[', '\\']) {
                    return None;
                }
                if let Some(branch) = r.strip_prefix("refs/heads/") {
                    Some((branch.to_string(), "branch".to_string()))
                } else {
                    r.strip_prefix("refs/tags/")
                        .map(|tag| (tag.to_string(), "tag".to_string()))
                }
            });
            match (&mut entry.3, policy) {
                (Some(policies), Some(policy)) => {
                    if !policies.contains(&policy) {
                        policies.push(policy);
                    }
                }
                // A ref that is no branch or tag can never deploy to an
                // environment (GitHub refuses its jobs): it widens nothing.
                (Some(_), None) if git_ref.is_some() => {}
                _ => entry.3 = None,
            }
        }
    }
    found
        .into_iter()
        .map(|(address, (provider, repository, name, refs))| {
            let mut attributes = BTreeMap::from([
                ("repository".to_string(), json!(repository)),
                ("name".to_string(), json!(name)),
            ]);
            match refs {
                Some(mut refs) => {
                    refs.sort();
                    attributes.insert(
                        "deployment_branch_policy".to_string(),
                        json!({"protected_branches": false, "custom_branch_policies": true}),
                    );
                    attributes.insert(
                        "branch_policies".to_string(),
                        Value::Array(
                            refs.into_iter()
                                .map(|(name, kind)| json!({"name": name, "type": kind}))
                                .collect(),
                        ),
                    );
                }
                None => {
                    attributes.insert(
                        "deployment_branch_policy".to_string(),
                        json!({"protected_branches": true, "custom_branch_policies": false}),
                    );
                }
            }
            Resource {
                address,
                provider,
                kind: ResourceKind::GithubEnvironment,
                agent: None,
                attributes: attributes.into(),
            }
        })
        .collect()
}

/// Each App an agent runs as (`runs_on github.P app "slug"`), with the
/// highest level of each permission its grants on `github.P` give.
/// Retired and frozen agents hold nothing.
pub fn app_grants(model: &crate::model::Model) -> Vec<super::AppGrant> {
    let mut found = Vec::new();
    for agent in &model.agents {
        for workload in &agent.runs_on {
            let crate::model::WorkloadKind::GithubApp { slug } = &workload.kind else {
                continue;
            };
            let mut permissions: BTreeMap<String, String> = BTreeMap::new();
            let mut repositories: Vec<String> = Vec::new();
            if !agent.retired && !agent.frozen {
                let grants = || {
                    agent
                        .grants
                        .iter()
                        .filter(|g| g.provider == workload.provider)
                };
                for resource in grants().flat_map(|g| &g.resources) {
                    if !repositories.contains(resource) {
                        repositories.push(resource.clone());
                    }
                }
                let actions = grants().flat_map(|g| &g.actions);
                for action in actions {
                    let Some((permission, level)) = action.split_once(':') else {
                        continue;
                    };
                    let rank = crate::facts::github::level_rank;
                    let entry = permissions.entry(permission.to_string()).or_default();
                    if rank(level) > rank(entry) {
                        *entry = level.to_string();
                    }
                }
            }
            found.push(super::AppGrant {
                agent: agent.name.clone(),
                provider: model.providers[workload.provider].address(),
                slug: slug.clone(),
                permissions,
                repositories,
            });
        }
    }
    found
}

/// What GitHub says of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// As GitHub spells it: `Acme/App`.
    pub name: String,
    pub id: u64,
    pub owner_id: u64,
    /// The claim keys of its tokens' `sub`, in order; `None`: GitHub's
    /// default (`repo`, `context`).
    pub claim_keys: Option<Vec<String>>,
    /// `sub`'s first part as GitHub reports it (`repo:acme@1/app@2`), when
    /// it does.
    pub prefix: Option<String>,
    /// Ids in the `repo` part (`repo:OWNER@ID/REPO@ID`).
    pub immutable: bool,
}

impl Repository {
    /// Reads an observed `github_repository` object; `None` when it lacks
    /// what a binding needs (a name and ids).
    pub fn from_resource(resource: &Resource) -> Option<Repository> {
        if resource.kind != ResourceKind::GithubRepository {
            return None;
        }
        let oidc = resource.attribute("oidc_subject");
        let text = |key: &str| {
            oidc.and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Some(Repository {
            name: resource.string("name")?.to_string(),
            id: resource.attribute("id")?.as_u64()?,
            owner_id: resource.attribute("owner_id")?.as_u64()?,
            claim_keys: oidc
                .and_then(|o| o.get("include_claim_keys"))
                .and_then(Value::as_array)
                .map(|keys| {
                    keys.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }),
            prefix: text("sub_claim_prefix"),
            immutable: oidc
                .and_then(|o| o.get("use_immutable_subject"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// The `repo` part of `sub`.
    fn repo_part(&self) -> String {
        if let Some(prefix) = &self.prefix {
            return prefix.clone();
        }
        if self.immutable {
            let (owner, name) = self.name.split_once('/').unwrap_or(("", &self.name));
            return format!("repo:{owner}@{}/{name}@{}", self.owner_id, self.id);
        }
        format!("repo:{}", self.name)
    }
}

/// A claim value as `sub` writes it: a `:` inside a value is `%3A`.
fn escaped(value: &str) -> String {
    value.replace(':', "%3A")
}

/// The pins of one trust statement, read from its claim conditions.
struct Pins {
    environment: Option<String>,
    git_ref: Option<String>,
    /// The workflow's path and ref, after `OWNER/REPO/`.
    workflow: Option<String>,
}

/// The `sub` a job pinned so carries, given the repository's template; `*`
/// where the source pins nothing.
fn subject(repository: &Repository, pins: &Pins) -> String {
    let context = match (&pins.environment, &pins.git_ref) {
        (Some(environment), _) => format!("environment:{}", escaped(environment)),
        (None, Some(git_ref)) => format!("ref:{}", escaped(git_ref)),
        (None, None) => "*".to_string(),
    };
    let default = ["repo".to_string(), "context".to_string()];
    let keys = repository.claim_keys.as_deref().unwrap_or(&default);
    let (owner, _) = repository.name.split_once('/').unwrap_or(("", ""));
    let parts: Vec<String> = keys
        .iter()
        .map(|key| match key.as_str() {
            "repo" => repository.repo_part(),
            "context" => context.clone(),
            "repository" => format!("repository:{}", escaped(&repository.name)),
            "repository_id" => format!("repository_id:{}", repository.id),
            "repository_owner" => format!("repository_owner:{}", escaped(owner)),
            "repository_owner_id" => format!("repository_owner_id:{}", repository.owner_id),
            "environment" => match &pins.environment {
                Some(environment) => format!("environment:{}", escaped(environment)),
                None => "environment:*".to_string(),
            },
            "ref" => match &pins.git_ref {
                Some(git_ref) => format!("ref:{}", escaped(git_ref)),
                None => "ref:*".to_string(),
            },
            "job_workflow_ref" => match &pins.workflow {
                Some(workflow) if !workflow.ends_with('*') => format!(
                    "job_workflow_ref:{}",
                    escaped(&format!("{}/{workflow}", repository.name))
                ),
                _ => "job_workflow_ref:*".to_string(),
            },
            other => format!("{other}:*"),
        })
        .collect();
    // Runs of `*` say nothing more than one.
    let mut text = parts.join(":");
    while text.contains("**") {
        text = text.replace("**", "*");
    }
    text
}

/// Sets one key of one condition operator.
fn set(conditions: &mut Map<String, Value>, operator: &str, key: String, value: Value) {
    let keys = conditions
        .entry(operator)
        .or_insert_with(|| Value::Object(Map::new()));
    if !keys.is_object() {
        *keys = Value::Object(Map::new());
    }
    if let Value::Object(keys) = keys {
        keys.insert(key, value);
    }
}

/// Is this statement one that trusts GitHub's Actions tokens?
fn trusts_github(statement: &Value) -> bool {
    statement["Principal"]["Federated"]
        .as_array()
        .is_some_and(|p| {
            p.iter().any(|p| {
                p.as_str()
                    .is_some_and(|p| p.ends_with(&format!("oidc-provider/{GITHUB_OIDC}")))
            })
        })
}

fn claim(key: &str) -> String {
    format!("{GITHUB_OIDC}:{key}")
}

/// A claim's first value under `operator`.
fn first(conditions: &Map<String, Value>, operator: &str, key: &str) -> Option<String> {
    conditions
        .get(operator)
        .and_then(|o| o.get(claim(key)))
        .and_then(|v| v.get(0))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// A claim's first value under either operator.
fn either(conditions: &Map<String, Value>, key: &str) -> Option<String> {
    first(conditions, "StringEquals", key).or_else(|| first(conditions, "StringLike", key))
}

/// The pins a statement's conditions hold, repository aside (compared
/// without regard to the repository's spelling).
fn pins_of(
    conditions: &Map<String, Value>,
    repository: &str,
) -> (Option<String>, Option<String>, Option<String>) {
    let workflow = either(conditions, "job_workflow_ref").map(|w| {
        w.get(repository.len() + 1..)
            .map(str::to_string)
            .unwrap_or(w)
    });
    (
        first(conditions, "StringEquals", "environment"),
        first(conditions, "StringEquals", "ref"),
        workflow,
    )
}

/// The live trust's GitHub statements, by repository (lowercased): their
/// conditions, as a bound trust holds them.
fn live_bindings(trust: Option<&Value>) -> BTreeMap<String, Vec<Map<String, Value>>> {
    let mut found: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    let Some(trust) = trust.map(crate::policy::canonical) else {
        return found;
    };
    for statement in trust["Statement"].as_array().into_iter().flatten() {
        if !trusts_github(statement) {
            continue;
        }
        let Some(conditions) = statement["Condition"].as_object() else {
            continue;
        };
        if let Some(repository) = first(conditions, "StringEquals", "repository") {
            found
                .entry(repository.to_ascii_lowercase())
                .or_default()
                .push(conditions.clone());
        }
    }
    found
}

/// Binds every desired AWS role's trust of GitHub workflows to the
/// repositories `observed` holds; for a repository not read this time,
/// keeps the binding the live role already has (so that a plan without
/// GitHub never loosens or breaks it), and never hands a role to a
/// repository with another id than the one it is bound to. Returns what
/// the plan must say.
pub fn bind(desired: &mut Desired, observed: &[Resource]) -> Vec<String> {
    // Governed settings and environments are planned only where GitHub
    // was read and they could be: writ does not set what it cannot compare
    // (the plan says what was not read), and a plan without GitHub plans
    // none.
    let readable = |what: &str| -> Vec<String> {
        observed
            .iter()
            .filter(|r| r.kind == ResourceKind::GithubRepository)
            .filter(|r| {
                !r.attribute("unread")
                    .and_then(Value::as_array)
                    .is_some_and(|u| {
                        u.iter()
                            .any(|w| w.as_str().is_some_and(|w| w.starts_with(what)))
                    })
            })
            .filter_map(|r| {
                Some(format!(
                    "{}/repos/{}/",
                    r.provider,
                    r.string("name")?.to_ascii_lowercase()
                ))
            })
            .collect()
    };
    let readable_settings = readable("Actions settings");
    let readable_environments = readable("environments");
    desired.resources.retain(|r| {
        let within =
            |prefixes: &[String]| prefixes.iter().any(|p| r.address.starts_with(p.as_str()));
        match r.kind {
            ResourceKind::GithubActionsSettings => within(&readable_settings),
            ResourceKind::GithubEnvironment => within(&readable_environments),
            _ => true,
        }
    });
    // A server that does not have a setting (an older GitHub Enterprise
    // Server without pull-request approvals by Actions) is not asked to
    // set it: it would be planned again on every run.
    let mut missing_settings = Vec::new();
    let observed_settings: BTreeMap<&str, &Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GithubActionsSettings)
        .map(|r| (r.address.as_str(), r))
        .collect();
    for settings in desired
        .resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::GithubActionsSettings)
    {
        if let Some(live) = observed_settings.get(settings.address.as_str()) {
            for key in [
                "default_workflow_permissions",
                "can_approve_pull_request_reviews",
            ] {
                if live.attribute(key).is_none_or(Value::is_null) {
                    settings.attributes.remove(key);
                    let repository = settings.string("repository").unwrap_or("?").to_string();
                    missing_settings.push(format!(
                        "GitHub does not report `{key}` for repository `{repository}` (an older GitHub Enterprise Server): writ does not set it"
                    ));
                }
            }
        }
    }
    let repositories: BTreeMap<String, Repository> = observed
        .iter()
        .filter_map(Repository::from_resource)
        .map(|r| (r.name.to_ascii_lowercase(), r))
        .collect();
    let live_roles: BTreeMap<&str, &Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsRole)
        .map(|r| (r.address.as_str(), r))
        .collect();
    let mut unbound: Vec<String> = Vec::new();
    let mut notes = missing_settings;
    let mut changed = Vec::new();
    for (index, role) in desired.resources.iter_mut().enumerate() {
        if role.kind != ResourceKind::AwsRole {
            continue;
        }
        let agent = role.agent.clone().unwrap_or_default();
        let live = live_bindings(
            live_roles
                .get(role.address.as_str())
                .and_then(|r| r.attribute("assume_role_policy")),
        );
        let Some(trust) = role.attributes.get_mut("assume_role_policy") else {
            continue;
        };
        let mut touched = false;
        let statements = trust
            .get_mut("Statement")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten();
        for statement in statements {
            if !trusts_github(statement) {
                continue;
            }
            let Some(conditions) = statement
                .get_mut("Condition")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let Some(named) = first(conditions, "StringEquals", "repository") else {
                continue;
            };
            let pins = pins_of(conditions, &named);
            // The live statement with the same pins, and the id it is
            // bound to.
            let kept = live
                .get(&named.to_ascii_lowercase())
                .and_then(|statements| {
                    statements.iter().find(|c| {
                        let repository = first(c, "StringEquals", "repository").unwrap_or_default();
                        pins_of(c, &repository) == pins
                            && first(c, "StringEquals", "repository_id").is_some()
                    })
                });
            // Every id a live statement of this repository is bound to,
            // whatever its pins.
            let bound_ids: Vec<String> = live
                .get(&named.to_ascii_lowercase())
                .into_iter()
                .flatten()
                .filter_map(|c| first(c, "StringEquals", "repository_id"))
                .collect();
            match (repositories.get(&named.to_ascii_lowercase()), kept) {
                (Some(repository), _)
                    if !bound_ids.is_empty() && !bound_ids.contains(&repository.id.to_string()) =>
                {
                    // Made again under the same name: never handed over.
                    let old = bound_ids[0].clone();
                    notes.push(format!(
                        "GitHub repository `{}` now has id {}, but the trust of `{agent}` is bound to id {old}: the repository was deleted, or renamed away, and made again. The trust stays bound to the old id, and no job of the new repository may assume the role; if the new repository is the one to trust, remove the `repository_id` condition from the role's trust in AWS, and the next plan binds it",
                        repository.name,
                        repository.id,
                    ));
                    match kept {
                        Some(kept) => *conditions = kept.clone(),
                        None => {
                            let (environment, git_ref, workflow) = pins.clone();
                            let old_id = old.parse().unwrap_or(0);
                            bind_statement(
                                conditions,
                                &Repository {
                                    id: old_id,
                                    ..repository.clone()
                                },
                                &Pins {
                                    environment,
                                    git_ref,
                                    workflow,
                                },
                            );
                        }
                    }
                    touched = true;
                }
                (Some(repository), _) => {
                    let (environment, git_ref, workflow) = pins.clone();
                    let context_kept = repository
                        .claim_keys
                        .as_ref()
                        .is_none_or(|keys| keys.iter().any(|k| k == "context"));
                    if !context_kept && environment.is_none() {
                        if let Some(git_ref) = &git_ref {
                            notes.push(format!(
                                "the OIDC subject template of GitHub repository `{}` does not carry a job's context: the trust of `{agent}` admits every job whose ref is `{git_ref}`, in an environment or not, `pull_request_target` runs included (STS reads no event claim); pin an `environment` to narrow it",
                                repository.name
                            ));
                        }
                    }
                    bind_statement(
                        conditions,
                        repository,
                        &Pins {
                            environment,
                            git_ref,
                            workflow,
                        },
                    );
                    touched = true;
                }
                (None, Some(kept)) => {
                    // Not read this time: the live binding stands.
                    *conditions = kept.clone();
                    touched = true;
                }
                (None, None) => {
                    if !unbound.contains(&named) {
                        unbound.push(named);
                    }
                }
            }
        }
        if touched {
            *trust = crate::policy::canonical_owned(trust.take());
            changed.push(index);
        }
    }
    // The digest says what writ made: it is the bound trust's.
    for index in changed {
        let role = &desired.resources[index];
        let inline: Vec<Resource> = desired
            .resources
            .iter()
            .filter(|r| {
                r.kind == ResourceKind::AwsRolePolicy
                    && r.provider == role.provider
                    && r.agent == role.agent
            })
            .cloned()
            .collect();
        let digest = ownership::content_digest(role, &inline);
        if let Some(Value::Object(tags)) = desired.resources[index].attributes.get_mut("tags") {
            tags.insert(ownership::aws::DIGEST_TAG.into(), json!(digest));
        }
    }
    unbound.sort();
    if !unbound.is_empty() {
        let names: Vec<String> = unbound.iter().map(|r| format!("`{r}`")).collect();
        let (noun, verb, their, them) = if names.len() == 1 {
            ("repository", "was", "its", "it")
        } else {
            ("repositories", "were", "their", "them")
        };
        notes.push(format!(
            "GitHub {noun} {} {verb} not read, and no trust in AWS is bound to {them} yet: the trust of {their} workflows names {them} by name only, and expects `sub` in GitHub's default form, so a repository whose subject template differs (ids in `sub`, the default for repositories made since mid-2026) refuses every job; read {them} with `[provider.github.NAME]` in writ.toml",
            names.join(", "),
        ));
    }
    notes
}

/// Binds one statement to the repository GitHub reports.
fn bind_statement(conditions: &mut Map<String, Value>, repository: &Repository, pins: &Pins) {
    let sub = subject(repository, pins);
    for operator in ["StringEquals", "StringLike"] {
        if let Some(Value::Object(keys)) = conditions.get_mut(operator) {
            keys.remove(&claim("sub"));
            if keys.contains_key(&claim("job_workflow_ref")) {
                if let Some(workflow) = &pins.workflow {
                    keys.insert(
                        claim("job_workflow_ref"),
                        json!([format!("{}/{workflow}", repository.name)]),
                    );
                }
            }
        }
    }
    set(
        conditions,
        "StringEquals",
        claim("repository"),
        json!([repository.name]),
    );
    set(
        conditions,
        "StringEquals",
        claim("repository_id"),
        json!([repository.id.to_string()]),
    );
    let operator = if sub.contains('*') {
        "StringLike"
    } else {
        "StringEquals"
    };
    set(conditions, operator, claim("sub"), json!([sub]));
    if conditions
        .get("StringLike")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
    {
        conditions.remove("StringLike");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repository(keys: Option<&[&str]>, immutable: bool) -> Repository {
        Repository {
            name: "Acme/App".into(),
            id: 42,
            owner_id: 7,
            claim_keys: keys.map(|k| k.iter().map(|s| s.to_string()).collect()),
            prefix: None,
            immutable,
        }
    }

    fn pins(environment: Option<&str>, git_ref: Option<&str>) -> Pins {
        Pins {
            environment: environment.map(str::to_string),
            git_ref: git_ref.map(str::to_string),
            workflow: Some(".github/workflows/deploy.yml@refs/heads/main".into()),
        }
    }

    #[test]
    fn subjects_follow_the_template() {
        let default = repository(None, false);
        assert_eq!(
            subject(&default, &pins(Some("production"), Some("refs/heads/main"))),
            "repo:Acme/App:environment:production"
        );
        assert_eq!(
            subject(&default, &pins(None, Some("refs/heads/main"))),
            "repo:Acme/App:ref:refs/heads/main"
        );
        assert_eq!(subject(&default, &pins(None, None)), "repo:Acme/App:*");
        assert_eq!(
            subject(
                &repository(None, true),
                &pins(None, Some("refs/heads/main"))
            ),
            "repo:Acme@7/App@42:ref:refs/heads/main"
        );
        // GitHub's documented example of a custom template.
        assert_eq!(
            subject(
                &repository(Some(&["repo", "context", "job_workflow_ref"]), false),
                &pins(Some("prod"), None)
            ),
            "repo:Acme/App:environment:prod:job_workflow_ref:Acme/App/.github/workflows/deploy.yml@refs/heads/main"
        );
        assert_eq!(
            subject(
                &repository(
                    Some(&["repository_owner_id", "repository_id", "actor"]),
                    false
                ),
                &pins(None, None)
            ),
            "repository_owner_id:7:repository_id:42:actor:*"
        );
        let prefixed = Repository {
            prefix: Some("repo:acme@7/app@42".into()),
            ..repository(None, true)
        };
        assert_eq!(
            subject(&prefixed, &pins(Some("prod"), None)),
            "repo:acme@7/app@42:environment:prod"
        );
    }
}

/// An installation token an App agent may be given: the App it runs as,
/// and exactly what its grants declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppToken {
    pub slug: String,
    /// Repository names, without the owner; `None`: every repository of
    /// the installation (a grant on `ORG/*`).
    pub repositories: Option<Vec<String>>,
    /// Permission → level.
    pub permissions: BTreeMap<String, String>,
}

/// What a token for `agent`, running as a GitHub App in `provider`
/// (`github.acme`), may hold: the agent's grants there, as one token
/// gives them. A token holds every one of its permissions on every one of
/// its repositories, so when the grants give different permissions on
/// different repositories, one token would hold more than declared: then
/// a token is for one repository (`repository`) at a time. Only what a
/// token can hold exactly is given; anything else is an error that says
/// why.
pub fn app_token(
    model: &crate::model::Model,
    agent: &str,
    provider: &str,
    repository: Option<&str>,
) -> Result<AppToken, String> {
    let Some(id) = model.agent_id(agent) else {
        return Err(format!("the source declares no agent `{agent}`"));
    };
    let agent = &model.agents[id];
    let name = &agent.name;
    let Some((provider_id, org)) =
        model
            .providers
            .iter()
            .enumerate()
            .find_map(|(i, p)| match &p.settings {
                crate::model::ProviderSettings::Github { org } if p.address() == provider => {
                    Some((i, org.clone()))
                }
                _ => None,
            })
    else {
        return Err(format!(
            "the source declares no GitHub provider `{provider}`"
        ));
    };
    let Some(slug) = agent.runs_on.iter().find_map(|w| match &w.kind {
        crate::model::WorkloadKind::GithubApp { slug } if w.provider == provider_id => {
            Some(slug.clone())
        }
        _ => None,
    }) else {
        return Err(format!(
            "`{name}` does not run as a GitHub App in `{provider}`: writ mints tokens only for App agents (`runs_on {provider} app \"SLUG\"`); a workflow gets its own from Actions"
        ));
    };
    if agent.retired {
        return Err(format!("`{name}` has expired: it is given no token"));
    }
    if agent.frozen {
        return Err(format!("`{name}` is frozen: it is given no token"));
    }
    // Each repository (pattern) the grants name, with the permissions
    // they give on it.
    let mut by_repository: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for grant in agent.grants.iter().filter(|g| g.provider == provider_id) {
        for resource in &grant.resources {
            let permissions = by_repository
                .entry(resource.to_ascii_lowercase())
                .or_default();
            for action in &grant.actions {
                let Some((permission, level)) = action.split_once(':') else {
                    continue;
                };
                let rank = crate::facts::github::level_rank;
                let entry = permissions.entry(permission.to_string()).or_default();
                if rank(level) > rank(entry) {
                    *entry = level.to_string();
                }
            }
        }
    }
    if by_repository.is_empty() {
        return Err(format!(
            "`{name}` has no grant on `{provider}`: a token would hold nothing it declares"
        ));
    }
    let org_lower = org.to_ascii_lowercase();
    let name_of = |pattern: &str| -> Result<Option<String>, String> {
        // `*`: every repository the App reaches.
        if pattern == "*" {
            return Ok(None);
        }
        let Some((owner, repo)) = pattern.split_once('/') else {
            return Err(format!("`{pattern}` names no repository"));
        };
        if owner != org_lower {
            return Err(format!(
                "`{name}`'s grant on `{pattern}` is outside organisation `{org}`, where `{provider}`'s App is installed: a token of it cannot reach there"
            ));
        }
        if repo == "*" {
            return Ok(None);
        }
        if repo.contains(['*', '?']) {
            return Err(format!(
                "`{name}`'s grant on `{pattern}` is a pattern: a token names its repositories, so grant them by name (or `{org}/*` for all)"
            ));
        }
        Ok(Some(repo.to_string()))
    };
    if let Some(wanted) = repository {
        let wanted = wanted.to_ascii_lowercase();
        let full = if wanted.contains('/') {
            wanted.clone()
        } else {
            format!("{org_lower}/{wanted}")
        };
        if !crate::facts::github::is_repository(&full) || full.contains(['*', '?']) {
            return Err(format!(
                "`--repository {wanted}` names no one repository: write `OWNER/NAME`, without wildcards"
            ));
        }
        let (owner, _) = full.split_once('/').unwrap_or_default();
        if owner != org_lower {
            return Err(format!("`{wanted}` is outside organisation `{org}`"));
        }
        let mut permissions: BTreeMap<String, String> = BTreeMap::new();
        for (pattern, given) in &by_repository {
            if crate::pattern::matches(pattern, &full) {
                for (permission, level) in given {
                    let rank = crate::facts::github::level_rank;
                    let entry = permissions.entry(permission.clone()).or_default();
                    if rank(level) > rank(entry) {
                        *entry = level.clone();
                    }
                }
            }
        }
        if permissions.is_empty() {
            return Err(format!("`{name}` has no grant on `{full}` in `{provider}`"));
        }
        let repo = full
            .split_once('/')
            .map(|(_, r)| r.to_string())
            .unwrap_or_default();
        return Ok(AppToken {
            slug,
            repositories: Some(vec![repo]),
            permissions,
        });
    }
    let mut shapes = by_repository.values();
    let first = shapes.next().cloned().unwrap_or_default();
    if shapes.any(|p| *p != first) {
        let each: Vec<String> = by_repository
            .iter()
            .map(|(repo, permissions)| {
                let given: Vec<String> = permissions
                    .iter()
                    .map(|(p, l)| format!("{p}:{l}"))
                    .collect();
                format!("`{repo}` ({})", given.join(", "))
            })
            .collect();
        return Err(format!(
            "`{name}`'s grants give different permissions on different repositories ({}), and a token holds all of its permissions on all of its repositories: ask for one repository's token (`writ token --repository`, or `repository` in a request to `writ serve`)",
            each.join("; ")
        ));
    }
    let mut repositories = Some(Vec::new());
    for pattern in by_repository.keys() {
        match (name_of(pattern)?, &mut repositories) {
            (Some(repo), Some(list)) => list.push(repo),
            (None, _) => repositories = None,
            (Some(_), None) => {}
        }
    }
    Ok(AppToken {
        slug,
        repositories,
        permissions: first,
    })
}
