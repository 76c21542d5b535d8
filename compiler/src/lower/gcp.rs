//! Lowering to GCP: for each GCP provider (one project), a service account
//! per agent that holds access there, and writ's part of the allow policy
//! of every resource its grants name.
//!
//! - **Service accounts**: id `writ-` and the agent's name within GCP's
//!   rules (6 to 30 characters, `[a-z][-a-z0-9]*[a-z0-9]`: lower case, `_`
//!   as `-`), with a stable hash where the name does not fit
//!   ([`account_id`]); two agents whose ids would be the same are an error. Service accounts take no labels: the
//!   description records the project and agent
//!   ([`crate::ownership::gcp::record`]).
//! - **Bindings**: each grant's role, for the agent's service account, on
//!   the resource it names. A project, a storage bucket and a service
//!   account have allow policies of their own, and are bound directly. Any
//!   other resource of the project (a BigQuery dataset, a bucket pattern,
//!   an object prefix) is bound on the project, with an IAM Condition on
//!   `resource.name`: the name and what is under it (`==`, or `startsWith`
//!   the name and `/`) as a role bound on it would hold, `startsWith` for a
//!   pattern that ends in its only `*`, nothing else (IAM Conditions compare
//!   names no other way).
//!   GCP then grants the role only on what the name matches, and never
//!   where a service does not report `resource.name`.
//! - **Conditions** (`when`) become CEL, and an agent with `expires` has
//!   `request.time < timestamp("DATE")` on every binding: GCP itself ends
//!   the access on that date, whether or not anyone applies again.
//! - **Workload identity** (`runs_on gcp.P workload_pool "POOL" subject
//!   "S"`): `roles/iam.workloadIdentityUser` on the agent's service
//!   account, for exactly that principal. Its address names the project's
//!   number, which only GCP knows: [`bind`] puts it in from the observed
//!   project, or leaves the binding out and says so.
//! - **Delegation**: a delegate's service account gives its parent's
//!   `roles/iam.serviceAccountTokenCreator`, so the parent can mint the
//!   delegate's short-lived tokens, and nothing else.
//!
//! Every policy is written at version 3 (conditions). Pure: nothing here
//! reads live state.

use super::Desired;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::model::{Agent, AgentId, Model, ProviderId, ProviderSettings, WorkloadKind};
use crate::ownership;
use crate::resource::{Resource, ResourceKind};
use crate::syntax::ast::ConditionOp;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The role a workload identity principal is given on a service account.
pub const WORKLOAD_IDENTITY_USER: &str = "roles/iam.workloadIdentityUser";
/// The role a parent is given on its delegate's service account.
pub const TOKEN_CREATOR: &str = "roles/iam.serviceAccountTokenCreator";
/// Stands for the project's number in a principal, until [`bind`] knows it.
const PROJECT_NUMBER: &str = "PROJECT_NUMBER";
/// The attributes `when` may name on a GCP grant: those IAM Conditions
/// evaluate as strings.
const CONDITION_KEYS: &[&str] = &[
    "resource.name",
    "resource.type",
    "resource.service",
    "request.host",
    "request.path",
    "destination.ip",
];

/// The id of an agent's service account: `writ-` and its name, lower case,
/// `_` as `-`; where that is not a valid id of 6 to 30 characters, the
/// name cut short and a hash of the whole name, so that it stays stable
/// and tells long names apart.
pub fn account_id(agent: &str) -> String {
    fitted(ownership::gcp::ID_PREFIX, agent, 6, 30)
}

/// The id of the workload identity pool writ makes for the project's
/// GitHub workloads, by the same rules (4 to 32 characters).
pub fn pool_id(project: &str) -> String {
    fitted(ownership::gcp::ID_PREFIX, project, 4, 32)
}

/// The id of the pool's provider for one GitHub owner's tokens.
pub fn github_provider_id(owner: &str) -> String {
    fitted("github-", owner, 4, 32)
}

/// `prefix` and `name` (lower case, `-` for anything but a letter or a
/// digit) as an id of `min` to `max` characters; where that does not fit,
/// the name cut short and a hash of the whole name, so that ids stay stable
/// and long names stay apart.
fn fitted(prefix: &str, whole: &str, min: usize, max: usize) -> String {
    let mut name: String = whole
        .chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' | '-' => c,
            _ => '-',
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name.trim_matches('-');
    let id = format!("{prefix}{name}");
    // `a_b` and `a-b`, `Ab` and `ab`, come out the same: a collision the
    // lowering reports.
    if (min..=max).contains(&id.len()) && !id.ends_with('-') && !name.is_empty() {
        return id;
    }
    let hash = &crate::policy::digest(&json!(whole))[..6];
    let room = max - prefix.len() - hash.len() - 1;
    let cut: String = name.chars().take(room).collect();
    let cut = cut.trim_end_matches('-');
    if cut.is_empty() {
        format!("{prefix}{hash}")
    } else {
        format!("{prefix}{cut}-{hash}")
    }
}

/// A string as a CEL literal.
fn literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `key like pattern` in CEL, if IAM Conditions can say it: one name (no
/// wildcard), a prefix (one `*`, at the end) or a suffix (one `*`, at the
/// start). `?`, and `*` elsewhere, cannot.
fn like(key: &str, pattern: &str) -> Option<String> {
    if !crate::pattern::has_wildcard(pattern) {
        return Some(format!("{key} == {}", literal(pattern)));
    }
    if pattern.contains('?') {
        return None;
    }
    let stars = pattern.matches('*').count();
    match (stars, pattern.strip_suffix('*'), pattern.strip_prefix('*')) {
        (1, Some(prefix), _) => Some(format!("{key}.startsWith({})", literal(prefix))),
        (1, None, Some(suffix)) => Some(format!("{key}.endsWith({})", literal(suffix))),
        _ => None,
    }
}

/// The resources a grant on `name` holds on, as a condition on
/// `resource.name`: the resource and everything under it, as a role bound
/// on it would (see [`crate::access::resource_matches`]). A pattern that
/// ends in its only `*` already takes in what is under what it matches.
fn within(name: &str) -> Option<String> {
    if crate::pattern::has_wildcard(name) {
        return like("resource.name", name);
    }
    Some(format!(
        "resource.name == {} || resource.name.startsWith({})",
        literal(name),
        literal(&format!("{name}/"))
    ))
}

/// Where a grant's resource is bound: on the resource itself, or on the
/// project with a condition on `resource.name`.
enum Target {
    Direct(String),
    Project(String),
}

/// The resource a grant names, as GCP binds it; `Err` says why it cannot.
fn target(project: &str, resource: &str) -> Result<Target, String> {
    let name = resource
        .strip_prefix("//")
        .and_then(|r| r.split_once('/').map(|(_, path)| path))
        .unwrap_or(resource);
    let parts: Vec<&str> = name.split('/').collect();
    let wild = crate::pattern::has_wildcard(name);
    match parts.as_slice() {
        ["projects", p] if *p == project && !wild => Ok(Target::Direct(name.to_string())),
        ["projects", "_", "buckets", bucket] if !crate::pattern::has_wildcard(bucket) => {
            Ok(Target::Direct(name.to_string()))
        }
        ["projects", p, "serviceAccounts", account]
            if *p == project && !crate::pattern::has_wildcard(account) =>
        {
            if !account.ends_with(&format!("@{project}.iam.gserviceaccount.com")) {
                return Err(format!(
                    "`{resource}` is not a service account of project `{project}` by its email (`NAME@{project}.iam.gserviceaccount.com`): writ binds only on those"
                ));
            }
            Ok(Target::Direct(name.to_string()))
        }
        ["projects", "-", ..] => Err(format!(
            "`{resource}` names its project as `-`: write `projects/{project}/…`, as writ compares names"
        )),
        // Anything else of this project, and buckets (whose names are
        // global): on the project, for the names the pattern matches.
        ["projects", p, ..] if (*p == project || *p == "_") && parts.len() > 2 => {
            Ok(Target::Project(name.to_string()))
        }
        ["projects", p, ..] if *p != project => Err(format!(
            "`{resource}` is in project `{p}`, not in `{project}`, the project of this provider: declare a provider for it"
        )),
        _ => Err(format!(
            "`{resource}` is not a resource writ can bind in project `{project}`: name the project (`projects/{project}`), a bucket (`projects/_/buckets/NAME`), a service account (`projects/{project}/serviceAccounts/EMAIL`), or anything else of the project by its full name (`projects/{project}/datasets/NAME`)"
        )),
    }
}

/// Bindings by role and condition (expression, title), with their
/// members: GCP tells bindings apart by the whole condition.
/// For each agent's attribute, the CEL of each of its GitHub workloads,
/// and the agent.
type GithubAgents = BTreeMap<String, (Vec<String>, AgentId)>;

type Bindings = BTreeMap<(String, Option<(String, String)>), BTreeSet<String>>;

/// The title of the conditions writ writes.
pub const CONDITION_TITLE: &str = "writ";

struct GcpLowering<'a> {
    model: &'a Model,
    project: &'a str,
    provider: ProviderId,
    gcp_project: String,
    /// Policies by the resource they are on.
    policies: BTreeMap<String, Bindings>,
    /// The agents with a service account here, with its email.
    emails: BTreeMap<AgentId, String>,
    /// GitHub workloads, by the repositories' owner: for each agent's
    /// attribute, the CEL of each of its workloads there, and the agent.
    /// Keyed by the owner in lower case (GitHub's names are case-blind),
    /// with its first spelling.
    github: BTreeMap<String, (String, GithubAgents)>,
    diagnostics: Vec<Diagnostic>,
}

impl GcpLowering<'_> {
    fn address(&self) -> String {
        self.model.providers[self.provider].address()
    }

    /// Does the agent get a service account in this provider?
    fn has_account(&self, agent: &Agent) -> bool {
        email(self.model, self.provider, agent).is_some()
    }

    fn bind(&mut self, on: &str, role: &str, condition: Option<String>, member: String) {
        self.policies
            .entry(on.to_string())
            .or_default()
            .entry((
                role.to_string(),
                condition.map(|c| (c, CONDITION_TITLE.to_string())),
            ))
            .or_default()
            .insert(member);
    }

    /// The CEL of an agent's `expires`, if it has one.
    fn expiry(agent: &Agent) -> Option<String> {
        agent
            .expires
            .map(|date| format!("request.time < timestamp(\"{date}T00:00:00Z\")"))
    }

    fn run(mut self, desired: &mut Desired) {
        let mut ids: BTreeMap<String, &str> = BTreeMap::new();
        for (id, agent) in self.model.agents.iter().enumerate() {
            if !self.has_account(agent) {
                continue;
            }
            let account = account_id(&agent.name);
            if let Some(other) = ids.insert(account.clone(), &agent.name) {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        format!(
                            "agents `{other}` and `{}` would have the same GCP service account id `{account}` in `{}`",
                            agent.name,
                            self.address()
                        ),
                        Label::new(agent.span, "second agent"),
                    )
                    .with_help("rename one of them: ids are `writ-` and the name, cut to 30 characters"),
                );
                continue;
            }
            // The record, with its digest and room for a revocation's time,
            // must fit GCP's 256 characters.
            let longest =
                ownership::gcp::record_with_digest(self.project, &agent.name, &"0".repeat(16))
                    .len()
                    + ownership::gcp::REVOKED_MARK.len()
                    + "2026-01-01T00:00:00Z".len();
            if longest > ownership::gcp::DESCRIPTION_LIMIT {
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::Unsupported,
                        format!(
                            "the record of `{}` in `{}` would be {longest} characters: GCP keeps 256 in a service account's description",
                            agent.name,
                            self.address()
                        ),
                        Label::new(agent.span, "name too long for GCP's record"),
                    )
                    .with_help("shorten the agent's (or the project's) name"),
                );
                continue;
            }
            let email = format!("{account}@{}.iam.gserviceaccount.com", self.gcp_project);
            self.emails.insert(id, email.clone());
            desired.resources.push(Resource {
                address: format!("{}/serviceAccounts/{account}", self.address()),
                provider: self.address(),
                kind: ResourceKind::GcpServiceAccount,
                agent: Some(agent.name.clone()),
                attributes: BTreeMap::from([
                    ("account_id".to_string(), json!(account)),
                    ("email".to_string(), json!(email)),
                    (
                        "display_name".to_string(),
                        json!(format!("writ: {}", agent.name)
                            .chars()
                            .take(100)
                            .collect::<String>()),
                    ),
                    (
                        "description".to_string(),
                        json!(ownership::gcp::record(self.project, &agent.name)),
                    ),
                    // Frozen: it keeps its account, which mints nothing.
                    ("disabled".to_string(), json!(agent.frozen)),
                ])
                .into(),
            });
        }
        for (id, agent) in self.model.agents.iter().enumerate() {
            let Some(email) = self.emails.get(&id).cloned() else {
                continue;
            };
            // Frozen: its service account kept, holding nothing.
            if agent.frozen {
                continue;
            }
            let member = format!("serviceAccount:{email}");
            let own = format!("projects/{}/serviceAccounts/{email}", self.gcp_project);
            let expiry = Self::expiry(agent);
            let provider = self.provider;
            for grant in agent.grants.iter().filter(|g| g.provider == provider) {
                let mut conditions: Vec<String> = Vec::new();
                let mut ok = true;
                for condition in &grant.conditions {
                    match self.condition(condition) {
                        Ok(cel) => conditions.push(cel),
                        Err(why) => {
                            self.diagnostics.push(
                                Diagnostic::new(Code::Unsupported, why, Label::new(grant.span, "cannot be lowered to an IAM Condition"))
                                    .with_help(format!("IAM Conditions take {} compared with `==`, `!=`, `in`, or `like` a name, a prefix (`x*`) or a suffix (`*x`)", CONDITION_KEYS.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))),
                            );
                            ok = false;
                        }
                    }
                }
                for role in &grant.actions {
                    if crate::pattern::has_wildcard(role) {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::Unsupported,
                                format!("`{role}` is a pattern: GCP binds one role at a time"),
                                Label::new(grant.span, "a role pattern"),
                            )
                            .with_help("name each role"),
                        );
                        ok = false;
                    }
                }
                if !ok {
                    continue;
                }
                for resource in &grant.resources {
                    let (on, on_name) = match target(&self.gcp_project, resource) {
                        Ok(Target::Direct(on)) => (on, None),
                        Ok(Target::Project(name)) => match within(&name) {
                            Some(cel) => (format!("projects/{}", self.gcp_project), Some(cel)),
                            None => {
                                self.diagnostics.push(
                                    Diagnostic::new(
                                        Code::Unsupported,
                                        format!("`{resource}` cannot be bound: IAM Conditions match a resource's name exactly, or by a prefix (a pattern that ends in `*`)"),
                                        Label::new(grant.span, "not a name or a prefix"),
                                    )
                                    .with_help("name the resource, or end the pattern with its only `*`"),
                                );
                                continue;
                            }
                        },
                        Err(why) => {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::Unsupported,
                                    why,
                                    Label::new(grant.span, "cannot be bound"),
                                )
                                .with_help("see docs/gcp.md for the resources writ binds"),
                            );
                            continue;
                        }
                    };
                    let all: Vec<&String> =
                        on_name.iter().chain(&conditions).chain(&expiry).collect();
                    let condition = (!all.is_empty()).then(|| {
                        all.iter()
                            .map(|c| {
                                if all.len() > 1 {
                                    format!("({c})")
                                } else {
                                    (*c).clone()
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(" && ")
                    });
                    for role in &grant.actions {
                        self.bind(&on, role, condition.clone(), member.clone());
                    }
                }
            }
            for workload in &agent.runs_on {
                let settings = &self.model.providers[workload.provider].settings;
                match (&workload.kind, settings) {
                    (WorkloadKind::GcpWorkloadIdentity { pool, subject }, _)
                        if workload.provider == provider =>
                    {
                        let principal = format!(
                            "principal://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{pool}/subject/{subject}"
                        );
                        self.bind(&own, WORKLOAD_IDENTITY_USER, expiry.clone(), principal);
                    }
                    // GKE: the cluster's service account, through the
                    // cluster project's workload pool.
                    (
                        WorkloadKind::KubernetesServiceAccount {
                            namespace,
                            service_account,
                        },
                        ProviderSettings::Kubernetes {
                            workload_pool: Some(pool),
                            ..
                        },
                    ) => {
                        let member = gke_member(pool, namespace, service_account);
                        self.bind(&own, WORKLOAD_IDENTITY_USER, expiry.clone(), member);
                    }
                    // GitHub: through writ's pool, as the attribute its
                    // owner's provider maps to "true" for this agent's
                    // workloads.
                    (
                        WorkloadKind::GithubActions {
                            repository,
                            workflow,
                            git_ref,
                            environment,
                        },
                        _,
                    ) => {
                        let owner = repository.split('/').next().unwrap_or_default();
                        let attribute = github_attribute(&agent.name);
                        self.github
                            .entry(owner.to_ascii_lowercase())
                            .or_insert_with(|| (owner.to_string(), BTreeMap::new()))
                            .1
                            .entry(attribute.clone())
                            .or_insert_with(|| (Vec::new(), id))
                            .0
                            .push(github_predicate(
                                repository,
                                workflow.as_deref(),
                                git_ref.as_deref(),
                                environment.as_deref(),
                            ));
                        let member = format!(
                            "principalSet://iam.googleapis.com/projects/{PROJECT_NUMBER}/locations/global/workloadIdentityPools/{}/attribute.{attribute}/true",
                            pool_id(self.project)
                        );
                        self.bind(&own, WORKLOAD_IDENTITY_USER, expiry.clone(), member);
                    }
                    _ => {}
                }
            }
            // The parent mints this delegate's tokens.
            let minting_parent = agent
                .parent
                .filter(|p| !self.model.agents[*p].frozen)
                .and_then(|p| self.emails.get(&p))
                .cloned();
            if let Some(parent_email) = minting_parent {
                self.bind(
                    &own,
                    TOKEN_CREATOR,
                    expiry.clone(),
                    format!("serviceAccount:{parent_email}"),
                );
            }
        }
        self.github_pool(desired);
        let provider = self.address();
        for (on, bindings) in std::mem::take(&mut self.policies) {
            desired.resources.push(Resource {
                address: format!("{provider}/iam/{on}"),
                provider: provider.clone(),
                kind: ResourceKind::GcpIamPolicy,
                agent: None,
                attributes: BTreeMap::from([
                    ("resource".to_string(), json!(on)),
                    ("bindings".to_string(), bindings_json(&bindings)),
                ])
                .into(),
            });
        }
        desired.diagnostics.append(&mut self.diagnostics);
    }

    /// Writ's workload identity pool, with a provider for each owner of
    /// repositories that agents run in: GitHub's issuer, the owner pinned
    /// by the attribute condition, and an attribute per agent, "true" for
    /// a token of one of the agent's workloads.
    fn github_pool(&mut self, desired: &mut Desired) {
        if self.github.is_empty() {
            return;
        }
        let provider = self.address();
        let pool = pool_id(self.project);
        let record = ownership::gcp::shared_record(self.project);
        let pool_address = format!("{provider}/workloadIdentityPools/{pool}");
        let cut = |text: String| text.chars().take(32).collect::<String>();
        desired.resources.push(Resource {
            address: pool_address.clone(),
            provider: provider.clone(),
            kind: ResourceKind::GcpWorkloadIdentityPool,
            agent: None,
            attributes: BTreeMap::from([
                ("pool_id".to_string(), json!(pool)),
                (
                    "display_name".to_string(),
                    json!(cut(format!("writ: {}", self.project))),
                ),
                ("description".to_string(), json!(record)),
                ("disabled".to_string(), json!(false)),
            ])
            .into(),
        });
        for (owner, agents) in std::mem::take(&mut self.github).into_values() {
            let mut mapping = serde_json::Map::new();
            mapping.insert("google.subject".into(), json!("assertion.sub"));
            for (count, (attribute, (predicates, id))) in agents.iter().enumerate() {
                let agent = &self.model.agents[*id];
                let any = if predicates.len() == 1 {
                    predicates[0].clone()
                } else {
                    predicates
                        .iter()
                        .map(|p| format!("({p})"))
                        .collect::<Vec<_>>()
                        .join(" || ")
                };
                let expression = format!("({any}) ? \"true\" : \"false\"");
                let problem = if count >= GITHUB_ATTRIBUTES {
                    Some(format!("GCP maps at most {GITHUB_ATTRIBUTES} custom attributes in a workload identity pool provider: writ's provider for `{owner}` in `{provider}` has one per agent, and `{}` is one too many", agent.name))
                } else if expression.len() + REPOSITORY_ID_ROOM * predicates.len() > 2048 {
                    Some(format!("the workloads of `{}` in `{owner}` make an attribute mapping of {} characters, and binding their repositories by id adds up to {} more: GCP takes 2,048", agent.name, expression.len(), REPOSITORY_ID_ROOM * predicates.len()))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::Unsupported,
                            problem,
                            Label::new(agent.span, "cannot be trusted from GitHub in GCP"),
                        )
                        .with_help("run fewer agents, or fewer workloads of this agent, from this owner's repositories in this GCP project"),
                    );
                    continue;
                }
                mapping.insert(format!("attribute.{attribute}"), json!(expression));
            }
            let id = github_provider_id(&owner);
            desired.resources.push(Resource {
                address: format!("{pool_address}/providers/{id}"),
                provider: provider.clone(),
                kind: ResourceKind::GcpWorkloadIdentityPoolProvider,
                agent: None,
                attributes: BTreeMap::from([
                    ("pool_id".to_string(), json!(pool)),
                    ("provider_id".to_string(), json!(id)),
                    (
                        "display_name".to_string(),
                        json!(cut(format!("GitHub: {owner}"))),
                    ),
                    ("description".to_string(), json!(record)),
                    ("disabled".to_string(), json!(false)),
                    ("issuer_uri".to_string(), json!(GITHUB_ISSUER)),
                    (
                        "attribute_condition".to_string(),
                        json!(format!("assertion.repository_owner == {}", literal(&owner))),
                    ),
                    ("attribute_mapping".to_string(), Value::Object(mapping)),
                ])
                .into(),
            });
        }
    }

    /// One `when` condition in CEL.
    fn condition(&self, condition: &crate::model::Condition) -> Result<String, String> {
        let key = condition.key.as_str();
        if !CONDITION_KEYS.contains(&key) {
            return Err(format!(
                "`{key}` is not an attribute IAM Conditions compare as a string"
            ));
        }
        let value = |v: &String| literal(v);
        Ok(match condition.op {
            ConditionOp::Equals => format!("{key} == {}", value(&condition.values[0])),
            ConditionOp::NotEquals => format!("{key} != {}", value(&condition.values[0])),
            ConditionOp::In => format!(
                "{key} in [{}]",
                condition
                    .values
                    .iter()
                    .map(value)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ConditionOp::Like => like(key, &condition.values[0]).ok_or_else(|| {
                format!(
                    "`{key} like \"{}\"` is neither one name, a prefix nor a suffix",
                    condition.values[0]
                )
            })?,
            _ => return Err(format!("`{}` has no IAM Condition", condition.op.as_str())),
        })
    }
}

/// GitHub Actions' OIDC issuer.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";

/// What binding one workload's repository by id adds to a mapping
/// (` && assertion.repository_id == ""` and a 20-digit id at most).
const REPOSITORY_ID_ROOM: usize = 53;

/// How many custom attributes GCP maps in one pool provider.
const GITHUB_ATTRIBUTES: usize = 50;

/// The attribute a pool provider maps, for the agent's GitHub workloads:
/// `writ_` and its service account's id after `writ-` (`[a-z0-9_]`, as GCP
/// requires; as unique as the ids).
pub fn github_attribute(agent: &str) -> String {
    let id = account_id(agent);
    let name = id.strip_prefix(ownership::gcp::ID_PREFIX).unwrap_or(&id);
    format!("writ_{}", name.replace('-', "_"))
}

/// The CEL, over a GitHub Actions token's claims, of a workload that runs
/// in `repository` (and, as pinned, that workflow file, that ref, that
/// environment): each pin its own claim, as the AWS trust checks them
/// (`environment` only where the job names one, so never a missing key);
/// a ref pinned without an environment also refuses environment and pull
/// request jobs, as the AWS trust's `sub` does.
pub fn github_predicate(
    repository: &str,
    workflow: Option<&str>,
    git_ref: Option<&str>,
    environment: Option<&str>,
) -> String {
    let mut parts = vec![format!("assertion.repository == {}", literal(repository))];
    if let Some(environment) = environment {
        parts.push(format!(
            "\"environment\" in assertion && assertion.environment == {}",
            literal(environment)
        ));
    }
    if let Some(git_ref) = git_ref {
        parts.push(format!("assertion.ref == {}", literal(git_ref)));
        if environment.is_none() {
            // As the AWS trust's `sub` of `repo:R:ref:X` does: not a job in
            // an environment (its `sub` names the environment), nor one of
            // a pull request (`sub` `repo:R:pull_request`; a
            // `pull_request_target` run carries the base branch's ref, and
            // anyone may open one from a fork).
            parts.push(
                "!(\"environment\" in assertion) && \"event_name\" in assertion && !(assertion.event_name in [\"pull_request\", \"pull_request_target\"])".to_string(),
            );
        }
    }
    if let Some(workflow) = workflow {
        parts.push(match git_ref {
            Some(git_ref) => format!(
                "assertion.job_workflow_ref == {}",
                literal(&format!("{repository}/{workflow}@{git_ref}"))
            ),
            None => format!(
                "assertion.job_workflow_ref.startsWith({})",
                literal(&format!("{repository}/{workflow}@"))
            ),
        });
    }
    parts.join(" && ")
}

/// The member GKE gives a Kubernetes service account of a cluster whose
/// workload pool is `pool`.
pub fn gke_member(pool: &str, namespace: &str, service_account: &str) -> String {
    format!("serviceAccount:{pool}[{namespace}/{service_account}]")
}

/// The email of the agent's service account in the GCP provider, if it has
/// one there (grants or a `runs_on` in it).
pub fn email(model: &Model, provider: ProviderId, agent: &Agent) -> Option<String> {
    let ProviderSettings::Gcp { project } = &model.providers[provider].settings else {
        return None;
    };
    let has = !agent.retired
        && (agent.grants.iter().any(|g| g.provider == provider)
            || agent.runs_on.iter().any(|w| w.provider == provider));
    has.then(|| {
        format!(
            "{}@{project}.iam.gserviceaccount.com",
            account_id(&agent.name)
        )
    })
}

/// Bindings as a policy holds them: sorted by role and condition, each
/// condition with writ's title.
fn bindings_json(bindings: &Bindings) -> Value {
    Value::Array(
        bindings
            .iter()
            .map(|((role, condition), members)| {
                let mut binding = json!({"role": role, "members": members});
                if let Some((expression, title)) = condition {
                    binding["condition"] = json!({"title": title, "expression": expression});
                }
                binding
            })
            .collect(),
    )
}

pub(super) fn lower_all(model: &Model, project: &str, desired: &mut Desired) {
    for (provider_id, provider) in model.providers.iter().enumerate() {
        if let ProviderSettings::Gcp {
            project: gcp_project,
        } = &provider.settings
        {
            GcpLowering {
                model,
                project,
                provider: provider_id,
                gcp_project: gcp_project.clone(),
                policies: BTreeMap::new(),
                emails: BTreeMap::new(),
                github: BTreeMap::new(),
                diagnostics: Vec::new(),
            }
            .run(desired);
        }
    }
    record_digests(desired);
}

/// The resources whose allow policies the source binds on in the GCP
/// provider `address`: what a live read of it must look at.
pub fn policy_resources(model: &Model, address: &str) -> Vec<String> {
    let mut scratch = Desired::default();
    for (provider_id, provider) in model.providers.iter().enumerate() {
        if let ProviderSettings::Gcp {
            project: gcp_project,
        } = &provider.settings
        {
            if provider.address() == address {
                GcpLowering {
                    model,
                    project: "",
                    provider: provider_id,
                    gcp_project: gcp_project.clone(),
                    policies: BTreeMap::new(),
                    emails: BTreeMap::new(),
                    github: BTreeMap::new(),
                    diagnostics: Vec::new(),
                }
                .run(&mut scratch);
            }
        }
    }
    scratch
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
        .filter_map(|r| r.string("resource").map(str::to_string))
        .collect()
}

/// A binding's key in [`Bindings`], as read.
fn key_of(binding: &Value) -> (String, Option<(String, String)>) {
    (
        binding["role"].as_str().unwrap_or_default().to_string(),
        binding["condition"]["expression"].as_str().map(|e| {
            (
                e.to_string(),
                binding["condition"]["title"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        }),
    )
}

/// Keeps what is not this project's out of its plan, and this project's
/// out of what is not its own:
/// - a service account is this project's when its description records
///   this project and the agent its id is made from
///   ([`ownership::gcp::is_projects`]), or when the source declares it and
///   it does not exist yet;
/// - what another writ project's accounts (same id prefix) hold on a
///   policy, and everything on such an account's own policy, is put in
///   the desired state as read, so that no plan of this project changes
///   it;
/// - an account the source declares that exists and is not this
///   project's is a conflict (the plan says so): nothing is bound for it.
///
/// Returns what the plan must say.
fn keep_others(desired: &mut Desired, observed: &[Resource]) -> Vec<String> {
    let project = desired.project.clone();
    let live: BTreeMap<&str, &Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
        .filter_map(|r| Some((r.string("email")?, r)))
        .collect();
    let is_ours = |r: &Resource| {
        ownership::gcp::is_projects(
            r.string("account_id").unwrap_or_default(),
            r.string("description").unwrap_or_default(),
            &project,
        )
    };
    let mut ours: BTreeSet<String> = BTreeSet::new();
    let mut conflicted: BTreeSet<String> = BTreeSet::new();
    for account in desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
    {
        let Some(email) = account.string("email") else {
            continue;
        };
        match live.get(email) {
            Some(found) if !is_ours(found) => {
                conflicted.insert(email.to_string());
            }
            _ => {
                ours.insert(email.to_string());
            }
        }
    }
    for (email, found) in &live {
        if is_ours(found) {
            ours.insert((*email).to_string());
        }
    }
    let writs = |email: &str| email.starts_with(ownership::gcp::ID_PREFIX);
    let foreign_member = |member: &str| {
        member
            .strip_prefix("serviceAccount:")
            .is_some_and(|email| writs(email) && !ours.contains(email))
    };
    let account_of = |resource: &str| {
        resource
            .split_once("/serviceAccounts/")
            .map(|(_, email)| email.to_string())
    };
    let mut notes: Vec<String> = conflicted
        .iter()
        .map(|email| format!("service account `{email}` exists and is not this project's (its description does not record it): writ binds nothing for it"))
        .collect();
    // Nothing bound for a conflicted account, nor on its own policy.
    unbind(desired, |member| {
        member
            .strip_prefix("serviceAccount:")
            .is_some_and(|email| conflicted.contains(email))
    });
    desired.resources.retain(|r| {
        r.kind != ResourceKind::GcpIamPolicy
            || !r
                .string("resource")
                .and_then(account_of)
                .is_some_and(|email| conflicted.contains(&email))
    });
    let mut index_of: BTreeMap<String, usize> = desired
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == ResourceKind::GcpIamPolicy)
        .map(|(i, r)| (r.address.clone(), i))
        .collect();
    for policy in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
    {
        let resource = policy.string("resource").unwrap_or_default();
        // Another project's account's own policy is all its project's.
        let whole =
            account_of(resource).is_some_and(|email| writs(&email) && !ours.contains(&email));
        let mut kept: Bindings = BTreeMap::new();
        for binding in policy
            .attribute("bindings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for member in binding["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if whole || foreign_member(member) {
                    kept.entry(key_of(binding))
                        .or_default()
                        .insert(member.to_string());
                }
            }
        }
        if kept.is_empty() {
            continue;
        }
        let index = match index_of.get(&policy.address) {
            Some(index) => *index,
            None => {
                desired.resources.push(Resource {
                    address: policy.address.clone(),
                    provider: policy.provider.clone(),
                    kind: ResourceKind::GcpIamPolicy,
                    agent: None,
                    attributes: BTreeMap::from([
                        ("resource".to_string(), json!(resource)),
                        ("bindings".to_string(), json!([])),
                    ])
                    .into(),
                });
                index_of.insert(policy.address.clone(), desired.resources.len() - 1);
                desired.resources.len() - 1
            }
        };
        let target = &mut desired.resources[index];
        let mut all: Bindings = BTreeMap::new();
        for binding in target
            .attribute("bindings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let members = all.entry(key_of(binding)).or_default();
            for member in binding["members"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                members.insert(member.to_string());
            }
        }
        for (key, members) in kept {
            all.entry(key).or_default().extend(members);
        }
        target
            .attributes
            .insert("bindings".to_string(), bindings_json(&all));
    }
    desired.resources.sort_by(|a, b| a.address.cmp(&b.address));
    notes.sort();
    notes
}

/// Takes the members `gone` names out of every desired policy, and the
/// bindings they leave empty.
fn unbind(desired: &mut Desired, gone: impl Fn(&str) -> bool) {
    for policy in desired
        .resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
    {
        if let Some(Value::Array(bindings)) = policy.attributes.get_mut("bindings") {
            for binding in bindings.iter_mut() {
                if let Some(Value::Array(members)) = binding.get_mut("members") {
                    members.retain(|m| !m.as_str().is_some_and(&gone));
                }
            }
            bindings.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
        }
    }
}

/// An account `writ revoke` cut off stays so until lifted: the plan keeps
/// it disabled, with the revocation in its description, and binds nothing
/// for it.
fn keep_revoked(desired: &mut Desired, observed: &[Resource]) -> Vec<String> {
    let mut revoked: BTreeSet<String> = BTreeSet::new();
    let mut notes = Vec::new();
    let live_accounts: BTreeMap<&str, &Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
        .map(|r| (r.address.as_str(), r))
        .collect();
    for account in desired
        .resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
    {
        let Some(live) = live_accounts.get(account.address.as_str()) else {
            continue;
        };
        let description = live.string("description").unwrap_or_default().to_string();
        if !ownership::gcp::is_revoked(&description)
            || !ownership::gcp::is_projects(
                live.string("account_id").unwrap_or_default(),
                &description,
                &desired.project,
            )
        {
            continue;
        }
        account
            .attributes
            .insert("description".to_string(), json!(description));
        account
            .attributes
            .insert("disabled".to_string(), json!(true));
        if let Some(email) = account.string("email") {
            revoked.insert(format!("serviceAccount:{email}"));
            notes.push(format!(
                "`{}` is revoked in `{}` (its service account is disabled and bound to nothing) until `writ revoke --lift`",
                account.agent.as_deref().unwrap_or("?"),
                account.provider
            ));
        }
    }
    unbind(desired, |member| revoked.contains(member));
    desired.resources.retain(|r| {
        r.kind != ResourceKind::GcpIamPolicy
            || r.attribute("bindings")
                .and_then(Value::as_array)
                .is_some_and(|b| !b.is_empty())
    });
    notes
}

/// Binds writ's GitHub pool providers to repositories and owners by id:
/// each `assertion.repository == "R"` in a mapping gains
/// `assertion.repository_id == "ID"`, and the condition
/// `assertion.repository_owner_id == "ID"`, so that a repository or
/// organisation deleted and made again under the same name is not trusted.
/// The id the live provider is bound to comes first, whether or not GitHub
/// was read this time (never handed over to a new one of the same name:
/// the plan says so); else GitHub's, read. Names take GitHub's spelling
/// (the claims carry it). A repository bound by neither is trusted by name
/// only, and the plan says so. Returns what the plan must say.
fn bind_github_ids(desired: &mut Desired, observed: &[Resource]) -> Vec<String> {
    // GitHub's spelling of each repository, its id and its owner's id.
    let mut repositories: BTreeMap<String, (String, u64, u64)> = BTreeMap::new();
    for repository in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GithubRepository)
    {
        let id = |key: &str| repository.attribute(key).and_then(Value::as_u64);
        if let (Some(name), Some(id), Some(owner)) =
            (repository.string("name"), id("id"), id("owner_id"))
        {
            repositories.insert(name.to_ascii_lowercase(), (name.to_string(), id, owner));
        }
    }
    let live: BTreeMap<&str, &Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpWorkloadIdentityPoolProvider)
        .map(|r| (r.address.as_str(), r))
        .collect();
    // Each project's deleted providers, as read.
    let deleted: BTreeMap<&str, &Value> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpProject)
        .filter_map(|r| Some((r.provider.as_str(), r.attribute("deleted_pool_providers")?)))
        .collect();
    let mut notes = Vec::new();
    // Pools that could not be read are not planned: writ cannot see what
    // its provider is bound to, nor who else is in its pool.
    let unread: BTreeSet<String> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpProject && r.attribute("pools_unread").is_some())
        .map(|r| r.provider.clone())
        .collect();
    desired.resources.retain(|r| {
        let pool = matches!(
            r.kind,
            ResourceKind::GcpWorkloadIdentityPool | ResourceKind::GcpWorkloadIdentityPoolProvider
        );
        if pool && unread.contains(&r.provider) {
            notes.push(format!(
                "`{}` is not planned: the workload identity pools of `{}` were not read",
                r.address, r.provider
            ));
            false
        } else {
            true
        }
    });
    for provider in desired
        .resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::GcpWorkloadIdentityPoolProvider)
    {
        let address = provider.address.clone();
        // The live provider's texts (its mappings and condition); else, for
        // one deleted (within GCP's 30 days), what it was bound to.
        let was_deleted = deleted
            .get(provider.provider.as_str())
            .and_then(|d| d.get(&address));
        let was = |key: &str| -> Option<&Value> {
            match live.get(address.as_str()) {
                Some(live) => live.attribute(key),
                None => was_deleted?.get(key),
            }
        };
        let mut live_texts: Vec<String> = Vec::new();
        if let Some(Value::Object(map)) = was("attribute_mapping") {
            live_texts.extend(map.values().filter_map(Value::as_str).map(str::to_string));
        }
        if let Some(condition) = was("attribute_condition").and_then(Value::as_str) {
            live_texts.push(condition.to_string());
        }
        // The id `clause` is bound to in the live provider, if it is.
        let bound = |clause: &str, key: &str| -> Option<String> {
            let lead = format!("{clause} && {key} == \"");
            live_texts.iter().find_map(|text| {
                let start = text.find(&lead)? + lead.len();
                let digits: String = text[start..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                (!digits.is_empty()).then_some(digits)
            })
        };
        // Each repository's id: the live one first (never handed over to a
        // repository made again under the same name), else GitHub's.
        let mut owner: Option<(String, u64)> = None;
        let mut unbound: BTreeSet<String> = BTreeSet::new();
        if let Some(Value::Object(mapping)) = provider.attributes.get_mut("attribute_mapping") {
            for expression in mapping.values_mut() {
                let Some(text) = expression.as_str().map(str::to_string) else {
                    continue;
                };
                const LEAD: &str = "assertion.repository == \"";
                // Names as GitHub spells them need no escaping: a clause
                // ends at the next quote.
                // Only names GitHub could give a repository: text that
                // merely looks like a clause inside a pinned value is none.
                let names: BTreeSet<String> = text
                    .match_indices(LEAD)
                    .filter_map(|(at, _)| {
                        let rest = &text[at + LEAD.len()..];
                        Some(rest[..rest.find('"')?].to_string())
                    })
                    .filter(|name| {
                        crate::facts::github::is_repository(name) && !name.contains(['*', '?'])
                    })
                    .collect();
                let mut rewritten = text.clone();
                // First every name as GitHub spells it, then each id once.
                let mut spelled_names: BTreeSet<String> = BTreeSet::new();
                for name in names {
                    let found = repositories.get(&name.to_ascii_lowercase());
                    // GitHub's spelling, which the claims carry: as read, else
                    // as the live provider has it.
                    let spelled = match found {
                        Some((spelled, _, _)) => spelled.clone(),
                        None => live_texts
                            .iter()
                            .flat_map(|text| {
                                text.match_indices(LEAD).filter_map(|(at, _)| {
                                    let rest = &text[at + LEAD.len()..];
                                    Some(rest[..rest.find('"')?].to_string())
                                })
                            })
                            .find(|live| live.eq_ignore_ascii_case(&name))
                            .unwrap_or_else(|| name.clone()),
                    };
                    if spelled != name {
                        for (from, to) in [
                            (format!("{LEAD}{name}\""), format!("{LEAD}{spelled}\"")),
                            (
                                format!("assertion.job_workflow_ref == \"{name}/"),
                                format!("assertion.job_workflow_ref == \"{spelled}/"),
                            ),
                            (
                                format!("assertion.job_workflow_ref.startsWith(\"{name}/"),
                                format!("assertion.job_workflow_ref.startsWith(\"{spelled}/"),
                            ),
                        ] {
                            rewritten = rewritten.replace(&from, &to);
                        }
                    }
                    spelled_names.insert(spelled);
                }
                for spelled in spelled_names {
                    let found = repositories.get(&spelled.to_ascii_lowercase());
                    let clause = format!("{LEAD}{spelled}\"");
                    let id = match (bound(&clause, "assertion.repository_id"), found) {
                        (Some(old), Some((_, id, _))) if old != id.to_string() => {
                            notes.push(format!("GitHub repository `{spelled}` now has id {id}, but writ's GCP pool provider `{address}` is bound to id {old}: the repository was made again under the same name. It stays bound to the old id, and no job of the new repository may act as writ's service accounts; if the new repository is the one to trust, delete the provider and plan again"));
                            Some(old)
                        }
                        (Some(old), _) => Some(old),
                        (None, Some((_, id, _))) => Some(id.to_string()),
                        (None, None) => None,
                    };
                    if let Some((_, _, owner_id)) = found {
                        let login = spelled.split('/').next().unwrap_or_default().to_string();
                        owner = Some((login, *owner_id));
                    }
                    match id {
                        Some(id) => {
                            rewritten = rewritten.replace(
                                &clause,
                                &format!("{clause} && assertion.repository_id == \"{id}\""),
                            );
                        }
                        None => {
                            unbound.insert(spelled);
                        }
                    }
                }
                *expression = json!(rewritten);
            }
        }
        for name in unbound {
            notes.push(format!("GitHub repository `{name}` was not read, so writ's GCP pool provider `{address}` trusts it by name only: a repository deleted and made again under that name would be trusted too; plan with GitHub connected to bind it by id"));
        }
        if let Some(Value::String(condition)) = provider.attributes.get_mut("attribute_condition") {
            const LEAD: &str = "assertion.repository_owner == \"";
            let written = condition
                .strip_prefix(LEAD)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default()
                .to_string();
            // GitHub's spelling of the owner: as read, else as live.
            let live_login = live_texts
                .iter()
                .filter_map(|text| text.strip_prefix(LEAD)?.split('"').next())
                .find(|login| login.eq_ignore_ascii_case(&written))
                .map(str::to_string);
            let login = owner
                .as_ref()
                .map(|(login, _)| login.clone())
                .or(live_login);
            if let Some(login) = login.filter(|l| *l != written && l.eq_ignore_ascii_case(&written))
            {
                *condition = format!("{LEAD}{login}\"");
            }
            let clause = condition.clone();
            let id = match (bound(&clause, "assertion.repository_owner_id"), &owner) {
                (Some(old), Some((_, id))) if old != id.to_string() => {
                    notes.push(format!("the GitHub owner of `{address}` now has id {id}, but writ's GCP pool provider is bound to id {old}: it was made again under the same name, and stays untrusted until the provider is deleted"));
                    Some(old)
                }
                (Some(old), _) => Some(old),
                (None, Some((_, id))) => Some(id.to_string()),
                (None, None) => None,
            };
            if let Some(id) = id {
                *condition = format!("{clause} && assertion.repository_owner_id == \"{id}\"");
            }
        }
    }
    notes
}

/// Puts the project's number, read from GCP, into the workload identity
/// principals of `desired`; where the project was not read, leaves those
/// bindings out, and says so. Returns what the plan must say.
pub fn bind(desired: &mut Desired, observed: &[Resource]) -> Vec<String> {
    let mut said = keep_others(desired, observed);
    said.extend(keep_revoked(desired, observed));
    said.extend(bind_github_ids(desired, observed));
    // The project each provider's service accounts are in.
    let projects: BTreeMap<&str, &str> = desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
        .filter_map(|r| {
            let domain = r.string("email")?.split_once('@')?.1;
            Some((
                r.provider.as_str(),
                domain.strip_suffix(".iam.gserviceaccount.com")?,
            ))
        })
        .collect();
    // A number read from the very project the provider names, digits only.
    let numbers: BTreeMap<&str, &str> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpProject)
        .filter(|r| projects.get(r.provider.as_str()).copied() == r.string("id"))
        .filter_map(|r| Some((r.provider.as_str(), r.string("number")?)))
        .filter(|(_, n)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        .collect();
    let mut notes = Vec::new();
    let placeholder = format!("projects/{PROJECT_NUMBER}/");
    for policy in desired
        .resources
        .iter_mut()
        .filter(|r| r.kind == ResourceKind::GcpIamPolicy)
    {
        let number = numbers.get(policy.provider.as_str()).copied();
        let Some(Value::Array(bindings)) = policy.attributes.get_mut("bindings") else {
            continue;
        };
        for binding in bindings.iter_mut() {
            let Some(Value::Array(members)) = binding.get_mut("members") else {
                continue;
            };
            let mut kept = Vec::new();
            for member in members.drain(..) {
                match (member.as_str(), number) {
                    (Some(text), Some(number)) if text.contains(&placeholder) => {
                        kept.push(json!(
                            text.replace(&placeholder, &format!("projects/{number}/"))
                        ));
                    }
                    (Some(text), None) if text.contains(&placeholder) => {
                        notes.push(format!("the number of GCP project `{}` was not read, so `{}` is not planned for `{}`", policy.provider, WORKLOAD_IDENTITY_USER, text.rsplit("/workloadIdentityPools/").next().unwrap_or(text)));
                    }
                    _ => kept.push(member),
                }
            }
            kept.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            *members = kept;
        }
        bindings.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
    }
    desired.resources.retain(|r| {
        r.kind != ResourceKind::GcpIamPolicy
            || r.attribute("bindings")
                .and_then(Value::as_array)
                .is_some_and(|b| !b.is_empty())
    });
    record_digests(desired);
    notes.sort();
    notes.dedup();
    said.extend(notes);
    said
}

/// Writes into each service account's record the digest of what writ sets
/// for its agent ([`ownership::gcp::digest`]), once the plan's bindings are
/// final. A revoked account keeps its record as read.
fn record_digests(desired: &mut Desired) {
    let agents: BTreeSet<String> = desired
        .resources
        .iter()
        .filter(|r| r.kind == ResourceKind::GcpServiceAccount)
        .filter_map(|r| r.string("email").map(str::to_string))
        .collect();
    let digests: Vec<(usize, String)> = desired
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kind == ResourceKind::GcpServiceAccount)
        .filter(|(_, r)| !ownership::gcp::is_revoked(r.string("description").unwrap_or_default()))
        .filter_map(|(index, account)| {
            let digest = ownership::gcp::digest(
                account,
                desired.resources.iter().filter(|r| {
                    r.kind == ResourceKind::GcpIamPolicy && r.provider == account.provider
                }),
                &agents,
            );
            let agent = account.agent.as_deref()?;
            Some((
                index,
                ownership::gcp::record_with_digest(&desired.project, agent, &digest),
            ))
        })
        .collect();
    for (index, description) in digests {
        desired.resources[index]
            .attributes
            .insert("description".to_string(), json!(description));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_follow_gcps_rules_and_stay_apart() {
        assert_eq!(account_id("loader"), "writ-loader");
        let valid = |id: &str| {
            (6..=30).contains(&id.len())
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && !id.ends_with('-')
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        for name in [
            "warehouse_loader",
            "a",
            "Billing",
            "a_very_long_agent_name_that_does_not_fit",
            "x__y",
            "_",
        ] {
            let id = account_id(name);
            assert!(valid(&id), "{name} → {id}");
            assert_eq!(id, account_id(name), "stable");
        }
        assert_eq!(account_id("warehouse_loader"), "writ-warehouse-loader");
        // The same id: reported as a collision where both are agents.
        assert_eq!(account_id("a_b"), account_id("a-b"));
        assert_ne!(
            account_id("a_very_long_agent_name_that_does_not_fit"),
            account_id("a_very_long_agent_name_that_does_not_fit_either")
        );
    }

    #[test]
    fn like_patterns_become_iam_conditions_only_where_iam_can_say_them() {
        assert_eq!(
            like("resource.name", "a/b").as_deref(),
            Some("resource.name == \"a/b\"")
        );
        assert_eq!(
            like("resource.name", "projects/_/buckets/x/objects/2026/*").as_deref(),
            Some("resource.name.startsWith(\"projects/_/buckets/x/objects/2026/\")")
        );
        assert_eq!(
            like("resource.name", "*.csv").as_deref(),
            Some("resource.name.endsWith(\".csv\")")
        );
        assert_eq!(like("resource.name", "a*b"), None);
        assert_eq!(like("resource.name", "a?"), None);
        assert_eq!(like("resource.name", "*a*"), None);
        assert_eq!(literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }

    fn github_desired() -> Desired {
        let mut sources = crate::SourceMap::new();
        sources.add(
            "main.writ",
            concat!(
                "provider gcp data {\n  project = \"acme-data-1\"\n}\n",
                "provider github acme {\n  org = \"acme\"\n}\n",
                "agent publisher {\n  owner = \"t\"\n  ttl = 1h\n",
                "  runs_on github.acme repo \"acme/app\" ref \"refs/heads/main\"\n",
                "  gcp.data allow roles/viewer on \"projects/acme-data-1\"\n}\n",
            )
            .to_string(),
        );
        let checked = crate::check(
            &sources,
            &crate::CheckOptions {
                today: crate::values::Date::parse("2026-12-01").unwrap(),
            },
        );
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        super::super::lower(&checked.model, "acme")
    }

    fn repository(name: &str, id: u64, owner: u64) -> Resource {
        Resource {
            address: format!("github.acme/repos/{name}"),
            provider: "github.acme".into(),
            kind: ResourceKind::GithubRepository,
            agent: None,
            attributes: BTreeMap::from([
                ("name".to_string(), json!(name)),
                ("id".to_string(), json!(id)),
                ("owner_id".to_string(), json!(owner)),
            ])
            .into(),
        }
    }

    fn pool_provider(desired: &Desired) -> &Resource {
        desired
            .resources
            .iter()
            .find(|r| r.kind == ResourceKind::GcpWorkloadIdentityPoolProvider)
            .expect("writ's provider")
    }

    fn mapping(provider: &Resource) -> String {
        provider.attribute("attribute_mapping").unwrap()["attribute.writ_publisher"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn pool_providers_are_bound_by_id_and_never_handed_over() {
        // GitHub read: its spelling, the repository's and owner's ids.
        let mut desired = github_desired();
        let said = bind_github_ids(&mut desired, &[repository("Acme/App", 42, 7)]);
        assert!(said.is_empty(), "{said:?}");
        let bound = pool_provider(&desired).clone();
        assert!(
            mapping(&bound).contains(
                "assertion.repository == \"Acme/App\" && assertion.repository_id == \"42\""
            ),
            "{}",
            mapping(&bound)
        );
        assert_eq!(
            bound.string("attribute_condition"),
            Some(
                "assertion.repository_owner == \"Acme\" && assertion.repository_owner_id == \"7\""
            )
        );
        // GitHub not read this time: the live binding stands, unchanged.
        let mut desired = github_desired();
        let said = bind_github_ids(&mut desired, std::slice::from_ref(&bound));
        assert!(said.is_empty(), "{said:?}");
        assert_eq!(pool_provider(&desired).attributes, bound.attributes);
        // Made again under the same name: the old ids stay, and the plan
        // says so.
        let mut desired = github_desired();
        let said = bind_github_ids(
            &mut desired,
            &[bound.clone(), repository("Acme/App", 99, 8)],
        );
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(mapping(pool_provider(&desired)).contains("assertion.repository_id == \"42\""));
        assert!(!mapping(pool_provider(&desired)).contains("\"99\""));
        assert!(pool_provider(&desired)
            .string("attribute_condition")
            .unwrap()
            .ends_with("assertion.repository_owner_id == \"7\""));
        // Deleted by someone (GCP keeps it 30 days), and GitHub reporting a
        // new repository under the name: the ids it was bound to stay.
        let project = |extra: (&str, Value)| Resource {
            address: "gcp.data/project".into(),
            provider: "gcp.data".into(),
            kind: ResourceKind::GcpProject,
            agent: None,
            attributes: BTreeMap::from([
                ("id".to_string(), json!("acme-data-1")),
                (extra.0.to_string(), extra.1),
            ])
            .into(),
        };
        let was = json!({bound.address.clone(): {
            "attribute_mapping": bound.attribute("attribute_mapping").unwrap(),
            "attribute_condition": bound.attribute("attribute_condition").unwrap(),
        }});
        let mut desired = github_desired();
        let said = bind_github_ids(
            &mut desired,
            &[
                project(("deleted_pool_providers", was)),
                repository("Acme/App", 99, 8),
            ],
        );
        assert_eq!(said.len(), 2, "{said:?}");
        assert_eq!(pool_provider(&desired).attributes, bound.attributes);
        // Pools not read: neither the pool nor its provider is planned.
        let mut desired = github_desired();
        let said = bind_github_ids(&mut desired, &[project(("pools_unread", json!("403")))]);
        assert!(
            desired.resources.iter().all(|r| !matches!(
                r.kind,
                ResourceKind::GcpWorkloadIdentityPool
                    | ResourceKind::GcpWorkloadIdentityPoolProvider
            )),
            "{said:?}"
        );
        assert_eq!(said.len(), 2, "{said:?}");
        // Neither: trusted by name only, and said.
        let mut desired = github_desired();
        let said = bind_github_ids(&mut desired, &[]);
        assert!(
            said.len() == 1 && said[0].contains("trusts it by name only"),
            "{said:?}"
        );
        assert!(!mapping(pool_provider(&desired)).contains("repository_id"));
    }
}
