//! Lowering to AWS IAM, per agent with AWS grants or an AWS `runs_on`, per
//! AWS provider:
//! - a role named after the agent under the path `/writ/<project>/`, tagged
//!   `writ:project`, `writ:agent`, `writ:owner` and `writ:digest`, trusting
//!   what its `runs_on` forms (and, for a delegate, its parent's role) say,
//!   with `MaxSessionDuration` = clamp(ttl, 1h, 12h);
//! - an inline policy `writ-access` holding its grants (merged without
//!   widening), the guardrails' denies and, with `expires`, a deny of
//!   everything from that date; or a deny-all when it is frozen;
//! - for a delegate, a permissions boundary: a managed policy holding its
//!   parent's `delegates` ceiling.

use super::Desired;
use crate::address;
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::ProviderKind;
use crate::model::{
    AdoptionKind, Agent, AgentId, Grant, Model, ProviderId, ProviderSettings, WorkloadKind,
};
use crate::ownership::{
    self,
    aws::{ACCESS_POLICY, ADOPTED_TAG, AGENT_TAG, DIGEST_TAG, OWNER_TAG, PROJECT_TAG},
};
use crate::policy;
use crate::resource::{Resource, ResourceKind};
use crate::syntax::ast::ConditionOp;
use crate::values::HOUR;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// GitHub Actions' OIDC issuer.
pub const GITHUB_OIDC: &str = "token.actions.githubusercontent.com";

/// IAM's limits, in characters of JSON without white space.
const INLINE_POLICIES_LIMIT: usize = 10_240;
const TRUST_POLICY_LIMIT: usize = 2_048;
const MANAGED_POLICY_LIMIT: usize = 6_144;
/// Room kept in a role's inline policies for `writ revoke`'s own (its name
/// and a deny of everything).
const REVOKE_POLICY_ROOM: usize = 256;

/// The path of an agent's role in an AWS provider: writ's own
/// (`/writ/PROJECT/`), or where an adopted role already is.
pub fn role_path(agent: &Agent, provider: ProviderId, project: &str) -> String {
    agent
        .adopts
        .iter()
        .find_map(|a| match &a.kind {
            AdoptionKind::AwsRole { path } if a.provider == provider => Some(path.clone()),
            _ => None,
        })
        .unwrap_or_else(|| ownership::aws::path(project))
}

fn boundary_name(parent: &str) -> String {
    format!("{parent}-delegates")
}

/// Lowers every AWS provider of the model.
pub(super) fn lower_all(model: &Model, project: &str, desired: &mut Desired) {
    // An IAM user is one agent's: `writ revoke` disables its keys, which
    // would cut off every other agent (or person) that signs in with it.
    let mut users: BTreeMap<(ProviderId, &str), &str> = BTreeMap::new();
    for agent in &model.agents {
        for workload in &agent.runs_on {
            let WorkloadKind::AwsUser { user } = &workload.kind else {
                continue;
            };
            match users.insert((workload.provider, user.as_str()), agent.name.as_str()) {
                Some(other) if other != agent.name => desired.diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        format!(
                            "IAM user `{user}` in `{}` is used by both `{other}` and `{}`: revoking one would disable the other's keys",
                            model.providers[workload.provider].address(),
                            agent.name
                        ),
                        Label::new(workload.span, "shares another agent's user"),
                    )
                    .with_help("give each agent an identity of its own"),
                ),
                _ => {}
            }
        }
    }
    for (provider_id, provider) in model.providers.iter().enumerate() {
        if provider.kind == ProviderKind::Aws {
            AwsLowering {
                model,
                project,
                provider: provider_id,
                desired,
            }
            .run();
        }
    }
}

struct AwsLowering<'a> {
    model: &'a Model,
    project: &'a str,
    provider: ProviderId,
    desired: &'a mut Desired,
}

impl AwsLowering<'_> {
    fn address(&self) -> String {
        self.model.providers[self.provider].address()
    }

    fn account(&self) -> (&str, &str) {
        match &self.model.providers[self.provider].settings {
            ProviderSettings::Aws {
                account, partition, ..
            } => (account, partition),
            _ => ("", "aws"),
        }
    }

    /// Does the agent get a role in this provider?
    fn has_role(&self, agent: &Agent) -> bool {
        !agent.retired
            && (agent.grants.iter().any(|g| g.provider == self.provider)
                || agent.runs_on.iter().any(|w| w.provider == self.provider))
    }

    fn role_arn(&self, agent: &Agent) -> String {
        let (account, partition) = self.account();
        format!(
            "arn:{partition}:iam::{account}:role{}{}",
            role_path(agent, self.provider, self.project),
            agent.name
        )
    }

    fn policy_arn(&self, name: &str) -> String {
        let (account, partition) = self.account();
        format!(
            "arn:{partition}:iam::{account}:policy{}{name}",
            ownership::aws::path(self.project)
        )
    }

    fn run(&mut self) {
        let provider = self.address();
        for agent in &self.model.agents {
            let Some((adoption, path)) = agent.adopts.iter().find_map(|a| match &a.kind {
                AdoptionKind::AwsRole { path } if a.provider == self.provider => Some((a, path)),
                _ => None,
            }) else {
                continue;
            };
            self.desired
                .adopted
                .insert(address::aws_role(&provider, &agent.name), path.clone());
            if !agent.retired && !self.has_role(agent) {
                self.desired.diagnostics.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "agent `{}` adopts a role in `{provider}` but has nothing there: writ keeps no role for it",
                            agent.name
                        ),
                        Label::new(adoption.span, "nothing to adopt it for"),
                    )
                    .with_help(format!(
                        "give `{}` a grant or a `runs_on` in `{provider}`, or remove the line",
                        agent.name
                    )),
                );
            }
        }
        let mut boundaries: BTreeSet<AgentId> = BTreeSet::new();
        for (id, agent) in self.model.agents.iter().enumerate() {
            if !self.has_role(agent) {
                continue;
            }
            let boundary = agent
                .parent
                .filter(|p| self.model.agents[*p].delegates.is_some());
            if let Some(parent) = boundary {
                boundaries.insert(parent);
            }
            self.role(id, boundary);
        }
        for parent in boundaries {
            self.boundary(parent);
        }
    }

    fn role(&mut self, id: AgentId, boundary: Option<AgentId>) {
        let agent = &self.model.agents[id];
        let provider = self.address();
        let trust = self.trust_policy(agent);
        let access = self.access_policy(agent);
        if trust["Statement"].as_array().is_some_and(Vec::is_empty) {
            let kubernetes = agent
                .runs_on
                .iter()
                .find(|w| matches!(w.kind, WorkloadKind::KubernetesServiceAccount { .. }));
            let app = agent
                .runs_on
                .iter()
                .find(|w| matches!(w.kind, WorkloadKind::GithubApp { .. }));
            let help = match (kubernetes, app) {
                (Some(workload), _) => format!(
                    "declare `oidc_issuer` on `{}` so that AWS can trust its service accounts",
                    self.model.providers[workload.provider].address()
                ),
                (None, Some(_)) => format!(
                    "a GitHub App's tokens cannot assume an AWS role: give `{}` a `runs_on` AWS can trust (a GitHub workflow, a Kubernetes service account, an AWS service), or move its AWS grants to an agent that has one",
                    agent.name
                ),
                (None, None) => format!(
                    "add a `runs_on` that says where `{}` authenticates from (a Kubernetes service account, a GitHub workflow, an AWS service)",
                    agent.name
                ),
            };
            self.desired.diagnostics.push(
                Diagnostic::new(
                    Code::MissingField,
                    format!(
                        "agent `{}` has access in `{provider}`, but nothing may assume its role",
                        agent.name
                    ),
                    Label::new(agent.span, "no trusted principal"),
                )
                .with_help(help),
            );
        }
        // Room is kept for what `writ revoke` adds, so that the brake
        // always fits.
        self.size_check(
            agent,
            &trust,
            TRUST_POLICY_LIMIT - ownership::aws::revoke_trust_room(),
            "trust policy",
        );
        self.size_check(
            agent,
            &access,
            INLINE_POLICIES_LIMIT - REVOKE_POLICY_ROOM,
            "inline policy",
        );
        let ttl = agent.ttl.seconds().clamp(HOUR, 12 * HOUR);
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), json!(agent.name));
        attributes.insert(
            "path".to_string(),
            json!(role_path(agent, self.provider, self.project)),
        );
        attributes.insert("assume_role_policy".to_string(), trust);
        attributes.insert("max_session_duration".to_string(), json!(ttl));
        attributes.insert(
            "permissions_boundary".to_string(),
            boundary.map_or(Value::Null, |parent| {
                json!(self.policy_arn(&boundary_name(&self.model.agents[parent].name)))
            }),
        );
        attributes.insert(
            "description".to_string(),
            json!(format!(
                "writ agent {} of project {}",
                agent.name, self.project
            )),
        );
        let mut tags = Map::new();
        tags.insert(PROJECT_TAG.into(), json!(self.project));
        tags.insert(AGENT_TAG.into(), json!(agent.name));
        tags.insert(OWNER_TAG.into(), json!(tag_value(&agent.owner)));
        if agent
            .adopts
            .iter()
            .any(|a| a.provider == self.provider && matches!(a.kind, AdoptionKind::AwsRole { .. }))
        {
            tags.insert(ADOPTED_TAG.into(), json!("true"));
        }
        attributes.insert("tags".to_string(), Value::Object(tags));
        // IAM refuses a policy without statements: an agent with nothing to
        // allow or deny gets no inline policy at all.
        let has_statements = access["Statement"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        let inline = Resource {
            address: address::aws_role_policy(&provider, &agent.name, ACCESS_POLICY),
            provider: provider.clone(),
            kind: ResourceKind::AwsRolePolicy,
            agent: Some(agent.name.clone()),
            attributes: BTreeMap::from([
                ("role".to_string(), json!(agent.name)),
                ("name".to_string(), json!(ACCESS_POLICY)),
                ("policy".to_string(), access),
            ])
            .into(),
        };
        let mut role = Resource {
            address: address::aws_role(&provider, &agent.name),
            provider: provider.clone(),
            kind: ResourceKind::AwsRole,
            agent: Some(agent.name.clone()),
            attributes: attributes.into(),
        };
        let inline = has_statements.then_some(inline);
        set_digest(&mut role, inline.as_slice());
        self.desired.resources.push(role);
        self.desired.resources.extend(inline);
    }

    fn size_check(&mut self, agent: &Agent, document: &Value, limit: usize, what: &str) {
        let size = policy::size(document);
        if size > limit {
            self.desired.diagnostics.push(
                Diagnostic::new(
                    Code::Unsupported,
                    format!(
                        "the {what} of `{}` in `{}` is {size} characters; IAM allows {limit}, with room kept for `writ revoke`",
                        agent.name,
                        self.address()
                    ),
                    Label::new(agent.span, "too large for IAM"),
                )
                .with_help("use wildcards in resources with care, merge grants into fewer resources, or split the agent"),
            );
        }
    }

    fn trust_policy(&self, agent: &Agent) -> Value {
        let (account, partition) = self.account();
        let mut statements = Vec::new();
        for workload in &agent.runs_on {
            let provider = &self.model.providers[workload.provider];
            match (&workload.kind, &provider.settings) {
                (WorkloadKind::AwsService { service }, _) if workload.provider == self.provider => {
                    statements.push(json!({
                        "Effect": "Allow",
                        "Principal": {"Service": [service]},
                        "Action": ["sts:AssumeRole"],
                    }));
                }
                (WorkloadKind::AwsUser { user }, _) if workload.provider == self.provider => {
                    statements.push(json!({
                        "Effect": "Allow",
                        "Principal": {"AWS": [format!("arn:{partition}:iam::{account}:user/{user}")]},
                        "Action": ["sts:AssumeRole"],
                    }));
                }
                (
                    WorkloadKind::KubernetesServiceAccount {
                        namespace,
                        service_account,
                    },
                    ProviderSettings::Kubernetes {
                        oidc_issuer: Some(issuer),
                        ..
                    },
                ) => {
                    let host = issuer.trim_start_matches("https://").trim_end_matches('/');
                    statements.push(json!({
                        "Effect": "Allow",
                        "Principal": {"Federated": [format!("arn:{partition}:iam::{account}:oidc-provider/{host}")]},
                        "Action": ["sts:AssumeRoleWithWebIdentity"],
                        "Condition": {"StringEquals": {
                            format!("{host}:sub"): [format!("system:serviceaccount:{namespace}:{service_account}")],
                            format!("{host}:aud"): ["sts.amazonaws.com"],
                        }},
                    }));
                }
                (
                    WorkloadKind::GithubActions {
                        repository,
                        workflow,
                        git_ref,
                        environment,
                    },
                    _,
                ) => {
                    let subject = match (environment, git_ref) {
                        (Some(environment), _) => {
                            format!("repo:{repository}:environment:{environment}")
                        }
                        (None, Some(git_ref)) => format!("repo:{repository}:ref:{git_ref}"),
                        (None, None) => format!("repo:{repository}:*"),
                    };
                    let mut equals = Map::new();
                    equals.insert(format!("{GITHUB_OIDC}:aud"), json!(["sts.amazonaws.com"]));
                    // Each pin also as the claim itself, which STS reads for
                    // GitHub: they hold whatever the repository's subject
                    // template makes of `sub`, and together, where `sub`
                    // carries only one (a job in an environment has
                    // `environment` in its `sub`, not its `ref`: without
                    // the `ref` claim, any branch allowed to use the
                    // environment could assume the role).
                    equals.insert(format!("{GITHUB_OIDC}:repository"), json!([repository]));
                    if let Some(environment) = environment {
                        equals.insert(format!("{GITHUB_OIDC}:environment"), json!([environment]));
                    }
                    if let Some(git_ref) = git_ref {
                        equals.insert(format!("{GITHUB_OIDC}:ref"), json!([git_ref]));
                    }
                    let mut like = Map::new();
                    if subject.ends_with('*') {
                        like.insert(format!("{GITHUB_OIDC}:sub"), json!([subject]));
                    } else {
                        equals.insert(format!("{GITHUB_OIDC}:sub"), json!([subject]));
                    }
                    if let Some(workflow) = workflow {
                        let pinned = match git_ref {
                            Some(git_ref) => format!("{repository}/{workflow}@{git_ref}"),
                            None => format!("{repository}/{workflow}@*"),
                        };
                        if pinned.ends_with('*') {
                            like.insert(format!("{GITHUB_OIDC}:job_workflow_ref"), json!([pinned]));
                        } else {
                            equals
                                .insert(format!("{GITHUB_OIDC}:job_workflow_ref"), json!([pinned]));
                        }
                    }
                    let mut condition = Map::new();
                    condition.insert("StringEquals".into(), Value::Object(equals));
                    if !like.is_empty() {
                        condition.insert("StringLike".into(), Value::Object(like));
                    }
                    statements.push(json!({
                        "Effect": "Allow",
                        "Principal": {"Federated": [format!("arn:{partition}:iam::{account}:oidc-provider/{GITHUB_OIDC}")]},
                        "Action": ["sts:AssumeRoleWithWebIdentity"],
                        "Condition": Value::Object(condition),
                    }));
                }
                _ => {}
            }
        }
        if let Some(parent) = agent.parent {
            let parent = &self.model.agents[parent];
            if self.has_role(parent) {
                statements.push(json!({
                    "Effect": "Allow",
                    "Principal": {"AWS": [self.role_arn(parent)]},
                    "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                    "Condition": {"Null": {"sts:SourceIdentity": ["false"]}},
                }));
            }
        }
        if let ProviderSettings::Aws {
            issuer: Some(issuer),
            ..
        } = &self.model.providers[self.provider].settings
        {
            // `writ serve` issues the agent's credentials: only as this
            // agent (the session's source identity, which no one can change
            // for the session's life, nor for sessions it chains to), and
            // tagged with writ's own tags only, the agent's name among
            // them. Two statements: `sts:TagSession` is not given the
            // source identity to compare.
            statements.push(json!({
                "Effect": "Allow",
                "Principal": {"AWS": [issuer]},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
                "Condition": {"StringEquals": {"sts:SourceIdentity": [agent.name]}},
            }));
            statements.push(json!({
                "Effect": "Allow",
                "Principal": {"AWS": [issuer]},
                "Action": ["sts:TagSession"],
                "Condition": {
                    "StringEquals": {"aws:RequestTag/writ:agent": [agent.name]},
                    "ForAllValues:StringLike": {"aws:TagKeys": ["writ:*"]},
                },
            }));
        }
        policy::canonical_owned(json!({"Version": policy::VERSION, "Statement": statements}))
    }

    /// The agent's grants in this provider as least-privilege statements,
    /// with the guardrails' denies and, for an agent with `expires`, a deny
    /// of everything from that date; a deny-all for a frozen agent.
    fn access_policy(&mut self, agent: &Agent) -> Value {
        if agent.frozen {
            return policy::canonical_owned(json!({
                "Version": policy::VERSION,
                "Statement": [{"Effect": "Deny", "Action": ["*"], "Resource": ["*"]}],
            }));
        }
        let grants: Vec<&Grant> = agent
            .grants
            .iter()
            .filter(|g| g.provider == self.provider)
            .collect();
        let mut statements = self.allow_statements(&grants, agent);
        if let Some(date) = agent.expires {
            // `expires` holds in AWS itself, whether or not anyone runs
            // writ on the day: from 00:00 UTC on the date, everything the
            // role's sessions do is denied.
            statements.push(json!({
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateGreaterThanEquals": {"aws:CurrentTime": [format!("{date}T00:00:00Z")]}},
            }));
        }
        for guardrail in &self.model.guardrails {
            for deny in &guardrail.denies {
                if deny.providers.selects(self.model, self.provider) {
                    statements.push(json!({
                        "Effect": "Deny",
                        "Action": deny.actions,
                        "Resource": deny.resources,
                    }));
                }
            }
        }
        policy::canonical_owned(json!({"Version": policy::VERSION, "Statement": statements}))
    }

    /// Statements for grants: actions merged where the resources and the
    /// conditions are the same, so that nothing is widened.
    fn allow_statements(&mut self, grants: &[&Grant], agent: &Agent) -> Vec<Value> {
        let mut merged: BTreeMap<(Vec<String>, String), (BTreeSet<String>, Value)> =
            BTreeMap::new();
        for grant in grants {
            let condition = match self.condition_block(grant, agent) {
                Some(condition) => condition,
                None => continue,
            };
            let mut resources = grant.resources.clone();
            resources.sort();
            resources.dedup();
            let key = (resources, condition.to_string());
            let entry = merged
                .entry(key)
                .or_insert_with(|| (BTreeSet::new(), condition));
            entry
                .0
                .extend(grant.actions.iter().map(|a| policy::canonical_action(a)));
        }
        merged
            .into_iter()
            .map(|((resources, _), (actions, condition))| {
                let mut statement =
                    json!({"Effect": "Allow", "Action": actions, "Resource": resources});
                if condition.as_object().is_some_and(|c| !c.is_empty()) {
                    statement["Condition"] = condition;
                }
                statement
            })
            .collect()
    }

    /// The IAM `Condition` block of a grant; `None` (with a diagnostic) when
    /// its terms cannot be written without widening it.
    fn condition_block(&mut self, grant: &Grant, agent: &Agent) -> Option<Value> {
        let mut block: BTreeMap<String, BTreeMap<&str, Vec<String>>> = BTreeMap::new();
        for condition in &grant.conditions {
            let operator = iam_operator(condition.op, &condition.key);
            let keys = block.entry(operator).or_default();
            if keys.contains_key(condition.key.as_str()) {
                self.desired.diagnostics.push(
                    Diagnostic::new(
                        Code::Unsupported,
                        format!(
                            "two `{}` conditions on `{}` in one grant of `{}`: IAM would allow either value",
                            condition.op.as_str(),
                            condition.key,
                            agent.name
                        ),
                        Label::new(grant.span, "conditions cannot be lowered without widening"),
                    )
                    .with_help("write one condition with `in [\"a\", \"b\"]` if either value is meant"),
                );
                return None;
            }
            keys.insert(&condition.key, condition.values.clone());
        }
        Some(serde_json::to_value(block).unwrap_or(Value::Null))
    }

    fn boundary(&mut self, parent: AgentId) {
        let agent = &self.model.agents[parent];
        let Some(ceiling) = &agent.delegates else {
            return;
        };
        let provider = self.address();
        let grants: Vec<&Grant> = ceiling
            .grants
            .iter()
            .filter(|g| g.provider == self.provider)
            .collect();
        let mut statements = self.allow_statements(&grants, agent);
        if statements.is_empty() {
            // A boundary that allows nothing: the delegates hold no AWS access.
            statements.push(json!({"Effect": "Deny", "Action": ["*"], "Resource": ["*"]}));
        }
        let document =
            policy::canonical_owned(json!({"Version": policy::VERSION, "Statement": statements}));
        self.size_check(
            agent,
            &document,
            MANAGED_POLICY_LIMIT,
            "delegation boundary",
        );
        let name = boundary_name(&agent.name);
        let mut tags = Map::new();
        tags.insert(PROJECT_TAG.into(), json!(self.project));
        tags.insert(AGENT_TAG.into(), json!(agent.name));
        let mut resource = Resource {
            address: address::aws_managed_policy(&provider, &name),
            provider,
            kind: ResourceKind::AwsManagedPolicy,
            agent: Some(agent.name.clone()),
            attributes: BTreeMap::from([
                ("name".to_string(), json!(name)),
                (
                    "path".to_string(),
                    json!(ownership::aws::path(self.project)),
                ),
                ("policy".to_string(), document),
                (
                    "description".to_string(),
                    json!(format!(
                        "writ: what the delegates of {} may at most hold",
                        agent.name
                    )),
                ),
                ("tags".to_string(), Value::Object(tags)),
            ])
            .into(),
        };
        set_digest(&mut resource, &[]);
        self.desired.resources.push(resource);
    }
}

/// IAM tag values allow letters, digits, spaces and `_ . : / = + - @`, up to
/// 256 characters; anything else becomes `-`.
fn tag_value(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(256)
        .collect()
}

fn set_digest(resource: &mut Resource, inline_policies: &[Resource]) {
    let digest = ownership::content_digest(resource, inline_policies);
    if let Some(Value::Object(tags)) = resource.attributes.get_mut("tags") {
        tags.insert(DIGEST_TAG.into(), json!(digest));
    }
}

/// The IAM operator a `when` lowers to, by the key's type: `==` and `in`
/// to `StringEquals`, `ArnEquals`, `NumericEquals`, `DateEquals`, `Bool` or
/// `IpAddress`; `!=` to the `Not` form; `like` to `StringLike` or
/// `ArnLike`; `<`, `<=`, `>`, `>=` to `NumericLessThan`, `DateLessThan`
/// and their kin. For a multivalued key (`aws:TagKeys`), `==`, `in` and `like`
/// hold when any of the request's values does (`ForAnyValue:`), and `!=`
/// when none of them is one of the values given (`ForAllValues:`, which
/// also holds when the request carries none).
pub fn iam_operator(op: ConditionOp, key: &str) -> String {
    use crate::facts::aws::KeyType;
    let found = crate::facts::aws::catalogue().condition_key(key);
    let kind = found.map_or(KeyType::String, |k| k.kind);
    let base = match (kind, op) {
        (KeyType::Arn, ConditionOp::NotEquals) => "ArnNotEquals",
        (KeyType::Arn, ConditionOp::Like) => "ArnLike",
        (KeyType::Arn, _) => "ArnEquals",
        (KeyType::Numeric, ConditionOp::NotEquals) => "NumericNotEquals",
        (KeyType::Numeric, ConditionOp::Less) => "NumericLessThan",
        (KeyType::Numeric, ConditionOp::LessOrEqual) => "NumericLessThanEquals",
        (KeyType::Numeric, ConditionOp::Greater) => "NumericGreaterThan",
        (KeyType::Numeric, ConditionOp::GreaterOrEqual) => "NumericGreaterThanEquals",
        (KeyType::Numeric, _) => "NumericEquals",
        (KeyType::Date, ConditionOp::NotEquals) => "DateNotEquals",
        (KeyType::Date, ConditionOp::Less) => "DateLessThan",
        (KeyType::Date, ConditionOp::LessOrEqual) => "DateLessThanEquals",
        (KeyType::Date, ConditionOp::Greater) => "DateGreaterThan",
        (KeyType::Date, ConditionOp::GreaterOrEqual) => "DateGreaterThanEquals",
        (KeyType::Date, _) => "DateEquals",
        (KeyType::Bool, _) => "Bool",
        (KeyType::IpAddress, ConditionOp::NotEquals) => "NotIpAddress",
        (KeyType::IpAddress, _) => "IpAddress",
        (KeyType::String, ConditionOp::NotEquals) => "StringNotEquals",
        (KeyType::String, ConditionOp::Like) => "StringLike",
        (KeyType::String, _) => "StringEquals",
    };
    match (found.is_some_and(|k| k.multivalued), op) {
        (false, _) => base.to_string(),
        (true, ConditionOp::NotEquals) => format!("ForAllValues:{base}"),
        (true, _) => format!("ForAnyValue:{base}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::values::Date;
    use crate::{CheckOptions, SourceMap};

    #[test]
    fn an_iam_user_is_one_agents() {
        let mut sources = SourceMap::new();
        let agent = |name: &str| {
            format!("agent {name} {{\n  owner = \"t\"\n  ttl = 1h\n  runs_on aws.prod user \"ci\"\n}}\n")
        };
        sources.add(
            "main.writ",
            format!(
                "provider aws prod {{\n  account = \"123456789012\"\n}}\n{}{}",
                agent("one"),
                agent("two")
            ),
        );
        let today = Date {
            year: 2026,
            month: 11,
            day: 28,
        };
        let checked = crate::check(&sources, &CheckOptions { today });
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let desired = super::super::lower(&checked.model, "acme");
        assert!(
            desired.diagnostics.iter().any(|d| d
                .message
                .contains("IAM user `ci` in `aws.prod` is used by both `one` and `two`")),
            "{:?}",
            desired.diagnostics
        );
    }
}
