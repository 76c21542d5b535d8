//! Ownership, written once: the marks writ puts on the objects it makes
//! (tags, labels, annotations, paths, policy names), how it tells its own
//! objects from other projects' and from everyone else's, and the digest of
//! what it set. Lowering puts the marks, the planner reads them, and every
//! provider checks them again right before it writes.
//!
//! An IAM role or managed policy is a project's when it sits under `/writ/`
//! and is tagged `writ:project = <project>`; an inline policy is when its
//! role is. A Kubernetes object is when it is labelled
//! `app.kubernetes.io/managed-by: writ` and `writ.dev/project: <project>`.
//! Anything else is listed, never changed.

use crate::policy;
use crate::resource::{Resource, ResourceKind};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

/// The marks on GCP service accounts, which take no labels: the id's prefix,
/// and a record in the description.
pub mod gcp {
    /// Every writ service account's id starts so.
    pub const ID_PREFIX: &str = "writ-";

    /// The description writ gives an agent's service account: its record of
    /// ownership, `writ project=PROJECT agent=AGENT`.
    pub fn record(project: &str, agent: &str) -> String {
        format!("writ project={project} agent={agent}")
    }

    /// The record with the digest of what writ sets for the agent
    /// ([`digest`]): `writ project=PROJECT agent=AGENT digest=HEX`.
    pub fn record_with_digest(project: &str, agent: &str, digest: &str) -> String {
        format!("{} digest={digest}", record(project, agent))
    }

    /// The digest a record carries, if it does.
    pub fn read_digest(description: &str) -> Option<&str> {
        read(description)?;
        description
            .split_whitespace()
            .find_map(|word| word.strip_prefix("digest="))
            .filter(|d| !d.is_empty())
    }

    /// Are two records the same but for their digests (and a lift's mark)?
    pub fn same_but_digest(one: &str, other: &str) -> bool {
        let words = |text: &str| -> Vec<String> {
            text.split(' ')
                .filter(|w| !w.starts_with("digest=") && *w != "lifted")
                .map(str::to_string)
                .collect()
        };
        words(one) == words(other)
    }

    /// The record without what `writ revoke` (or a lift) added to it.
    pub fn unrevoked(description: &str) -> &str {
        let record = description
            .split_once(REVOKED_MARK)
            .map_or(description, |(record, _)| record);
        record.strip_suffix(LIFTED_MARK).unwrap_or(record)
    }

    /// The digest of what writ sets for one agent in a GCP project: its
    /// service account (but the description, which carries the digest),
    /// and every binding of writ's that names the account, or is on its own
    /// policy for anyone but another of this project's agents (`agents`,
    /// their accounts' emails), from `policies` (writ's part of each).
    /// Lowering records it; the plan computes it again from what it reads:
    /// a difference is an edit made outside writ.
    pub fn digest<'a>(
        account: &crate::resource::Resource,
        policies: impl IntoIterator<Item = &'a crate::resource::Resource>,
        agents: &std::collections::BTreeSet<String>,
    ) -> String {
        let email = account.string("email").unwrap_or_default();
        let member = format!("serviceAccount:{email}");
        let own = format!("/serviceAccounts/{email}");
        let mut hasher = crate::policy::Digester::new();
        for (key, value) in account.compared_attributes() {
            if key != "description" {
                hasher.value(key);
                hasher.value(value);
            }
        }
        let mut held = std::collections::BTreeSet::new();
        for policy in policies {
            let on = policy.string("resource").unwrap_or_default();
            let is_own = on.ends_with(&own);
            for binding in policy
                .attribute("bindings")
                .and_then(serde_json::Value::as_array)
                .into_iter()
                .flatten()
            {
                for m in binding["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str)
                {
                    // On its own policy, who may act as it; another of
                    // this project's agents' accounts there (a parent that
                    // mints its tokens) is that agent's to record, so that
                    // revoking one agent is no edit of another.
                    let other_agent = m
                        .strip_prefix("serviceAccount:")
                        .is_some_and(|e| e != email && agents.contains(e));
                    if m == member || (is_own && !other_agent) {
                        held.insert((
                            on.to_string(),
                            binding["role"].as_str().unwrap_or_default().to_string(),
                            binding["condition"]["expression"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            m.to_string(),
                        ));
                    }
                }
            }
        }
        for entry in &held {
            hasher.value(entry);
        }
        hasher.finish()
    }

    /// Is the account this project's: its description writ's record for
    /// this project, and the agent recorded the one its id is made from?
    pub fn is_projects(account_id: &str, description: &str, project: &str) -> bool {
        read(description).is_some_and(|(owner, agent)| {
            owner == project && account_id == crate::lower::gcp::account_id(agent)
        })
    }

    /// The description writ gives the objects of a project that belong to
    /// no one agent (a workload identity pool and its providers):
    /// `writ project=PROJECT`.
    pub fn shared_record(project: &str) -> String {
        format!("writ project={project}")
    }

    /// The project a shared record names ([`shared_record`]), if it is one.
    pub fn read_shared(description: &str) -> Option<&str> {
        let project = description.strip_prefix("writ project=")?;
        (!project.is_empty() && !project.contains(char::is_whitespace)).then_some(project)
    }

    /// The mark `writ revoke --lift` leaves on the record: the digest was
    /// made with the bindings the revocation took away, which the next
    /// apply gives back (and writes the record anew).
    pub const LIFTED_MARK: &str = " lifted";

    /// Was the account lifted, and not applied since?
    pub fn is_lifted(description: &str) -> bool {
        read(description).is_some() && description.split(' ').any(|w| w == "lifted")
    }

    /// The longest description GCP keeps on a service account.
    pub const DESCRIPTION_LIMIT: usize = 256;

    /// The mark `writ revoke` adds to the record.
    pub const REVOKED_MARK: &str = " revoked-at=";

    /// Was the account cut off by `writ revoke` (and not lifted)?
    pub fn is_revoked(description: &str) -> bool {
        read(description).is_some() && description.contains(REVOKED_MARK)
    }

    /// The project and agent a description records, if it is writ's record.
    pub fn read(description: &str) -> Option<(&str, &str)> {
        let rest = description.strip_prefix("writ project=")?;
        let (project, agent) = rest.split_once(" agent=")?;
        let agent = agent.split_whitespace().next()?;
        (!project.is_empty() && !project.contains(' ')).then_some((project, agent))
    }
}

/// The marks on AWS IAM objects.
pub mod aws {
    /// Every project's objects sit under this path; one project's under
    /// [`path`].
    pub const PATH_ROOT: &str = "/writ/";
    pub const PROJECT_TAG: &str = "writ:project";
    pub const AGENT_TAG: &str = "writ:agent";
    pub const OWNER_TAG: &str = "writ:owner";
    /// The digest of what writ set (see [`super::content_digest`]).
    pub const DIGEST_TAG: &str = "writ:digest";
    /// On a role writ adopted (`adopts`), which keeps the path it was made
    /// with: with [`PROJECT_TAG`], the record of the adoption. The source
    /// must still declare it for a plan to change the role (see
    /// [`super::ownership`]).
    pub const ADOPTED_TAG: &str = "writ:adopted";
    /// The inline policy writ writes on each role.
    pub const ACCESS_POLICY: &str = "writ-access";
    /// The inline policy `writ revoke` puts on a role: it denies every
    /// session issued before the revocation. Plans keep it (it is not drift)
    /// until `writ revoke --lift` removes it.
    pub const REVOKE_POLICY: &str = "writ-revoke";
    /// The tag `writ revoke` writes on a role first (when it was revoked):
    /// it marks the role revoked even if what follows is interrupted.
    pub const REVOKED_TAG: &str = "writ:revoked-at";
    /// Who ran `writ revoke`, as they said (written with [`REVOKED_TAG`]
    /// when known).
    pub const REVOKED_BY_TAG: &str = "writ:revoked-by";

    /// Is this tag part of a revocation's mark (kept until lifted, never
    /// drift)?
    pub fn is_revocation_tag(key: &str) -> bool {
        key == REVOKED_TAG || key == REVOKED_BY_TAG
    }

    /// A tag value IAM accepts (at most 256 of letters, digits, spaces and
    /// `_.:/=+-@`), from who said they revoked.
    pub fn tag_value(text: &str) -> String {
        text.chars()
            .map(|c| {
                if c.is_alphanumeric() || " _.:/=+-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(256)
            .collect()
    }
    /// The `Sid` of the statement `writ revoke` adds to a role's trust
    /// policy: nobody may assume the role until the revocation is lifted.
    pub const REVOKE_TRUST_SID: &str = "WritRevoked";

    /// The trust statement of a revoked role: a deny, for every principal,
    /// of assuming it (any way) and of starting a session on it.
    pub fn revoke_trust_statement() -> serde_json::Value {
        serde_json::json!({
            "Sid": REVOKE_TRUST_SID,
            "Effect": "Deny",
            // Every principal: `{"AWS": "*"}` names AWS principals, and
            // writ's roles are assumed by federated ones too.
            "Principal": "*",
            "Action": [
                "sts:AssumeRole",
                "sts:AssumeRoleWithSAML",
                "sts:AssumeRoleWithWebIdentity",
                "sts:SetSourceIdentity",
                "sts:TagSession"
            ]
        })
    }

    /// Is this trust statement the one `writ revoke` adds?
    pub fn is_revoke_statement(statement: &serde_json::Value) -> bool {
        statement.get("Sid").and_then(serde_json::Value::as_str) == Some(REVOKE_TRUST_SID)
            && statement.get("Effect").and_then(serde_json::Value::as_str) == Some("Deny")
    }

    /// Room to leave in a role's trust policy for the revocation statement,
    /// in characters of JSON without white space.
    pub fn revoke_trust_room() -> usize {
        revoke_trust_statement().to_string().len() + 1
    }

    /// The path under which writ keeps a project's IAM objects.
    pub fn path(project: &str) -> String {
        format!("{PATH_ROOT}{project}/")
    }

    /// Is an IAM role or managed policy, with this path and these tags, the
    /// project's? The rule the planner and the provider's write-time
    /// re-check share. (A role an earlier layout left at another `/writ/…`
    /// path is still the project's, and is replaced into the right one.)
    ///
    /// A role elsewhere is the project's when its tags record that the
    /// project adopted it ([`ADOPTED_TAG`]); the planner also asks that the
    /// source still adopt it there, the provider's re-check does not (it
    /// carries out a plan that did).
    pub fn owns<'a>(
        path: &str,
        tags: impl Iterator<Item = (&'a str, &'a str)>,
        project: &str,
    ) -> bool {
        let (mut ours, mut adopted) = (false, false);
        for (key, value) in tags {
            ours |= key == PROJECT_TAG && value == project;
            adopted |= key == ADOPTED_TAG && value == "true";
        }
        ours && (path.starts_with(PATH_ROOT) || adopted)
    }
}

/// The marks on Kubernetes objects.
pub mod kubernetes {
    use crate::resource::{Resource, ResourceKind};
    use serde::{Deserialize, Serialize};
    use serde_json::{json, Value};
    use std::collections::BTreeMap;

    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The value of [`MANAGED_BY`] on writ's objects.
    pub const MANAGER: &str = "writ";
    pub const PROJECT_LABEL: &str = "writ.dev/project";
    pub const AGENT_LABEL: &str = "writ.dev/agent";
    pub const OWNER_ANNOTATION: &str = "writ.dev/owner";
    pub const DIGEST_ANNOTATION: &str = "writ.dev/digest";
    /// Set by `writ revoke` on the agent's service accounts: plans keep the
    /// agent without bindings until `writ revoke --lift` removes it.
    pub const REVOKED_ANNOTATION: &str = "writ.dev/revoked-at";
    /// On a service account made outside writ that the source adopts
    /// (`adopts`): writ took it over where it was.
    pub const ADOPTED_ANNOTATION: &str = "writ.dev/adopted";

    /// Is an object with these labels the project's? `label` looks one up.
    /// Labels are a claim anyone who may edit an object can make: see
    /// [`is_reserved`] for what no label makes writ's.
    pub fn owns<'a>(label: impl Fn(&str) -> Option<&'a str>, project: &str) -> bool {
        label(MANAGED_BY) == Some(MANAGER) && label(PROJECT_LABEL) == Some(project)
    }

    /// Namespaces the cluster itself keeps.
    pub const RESERVED_NAMESPACES: &[&str] = &["kube-system", "kube-public", "kube-node-lease"];

    /// Objects writ never changes, whatever their labels say: anything in
    /// the cluster's own namespaces, and anything named `system:…` (the
    /// cluster's own roles and bindings).
    pub fn is_reserved(namespace: Option<&str>, name: &str) -> bool {
        namespace.is_some_and(|ns| RESERVED_NAMESPACES.contains(&ns)) || name.starts_with("system:")
    }

    /// Is it some writ project's (this one's or another's)?
    pub fn is_writs<'a>(label: impl Fn(&str) -> Option<&'a str>) -> bool {
        label(MANAGED_BY) == Some(MANAGER)
    }

    /// The label selector of one agent's objects in a project.
    pub fn agent_selector(project: &str, agent: &str) -> String {
        format!("{MANAGED_BY}={MANAGER},{PROJECT_LABEL}={project},{AGENT_LABEL}={agent}")
    }

    /// The label selector of a project's objects.
    pub fn project_selector(project: &str) -> String {
        format!("{MANAGED_BY}={MANAGER},{PROJECT_LABEL}={project}")
    }

    /// The name writ gives the Roles and RoleBindings of `agent`.
    pub fn namespaced_name(agent: &str) -> String {
        crate::lower::kubernetes::object_name(&["writ", agent])
    }

    /// The name writ gives the ClusterRoles and ClusterRoleBindings of
    /// `agent` (cluster-wide names are shared by projects).
    pub fn cluster_name(project: &str, agent: &str) -> String {
        crate::lower::kubernetes::object_name(&["writ", project, agent])
    }

    /// Does `name` follow writ's naming scheme for an RBAC object of
    /// `agent`? Service accounts are named by the source, not by writ: they
    /// are proven by the source declaring them or by the inventory record.
    pub fn follows_scheme(kind: ResourceKind, project: &str, agent: &str, name: &str) -> bool {
        match kind {
            ResourceKind::KubernetesRole | ResourceKind::KubernetesRoleBinding => {
                name == namespaced_name(agent)
            }
            ResourceKind::KubernetesClusterRole | ResourceKind::KubernetesClusterRoleBinding => {
                name == cluster_name(project, agent)
            }
            _ => false,
        }
    }

    /// The Secret in which writ keeps a project's inventory record in a
    /// cluster: the service accounts it made (by UID) and the agents
    /// `writ revoke` cut off. Only writ's own credentials should be able to
    /// write Secrets in its namespace (`inventory_namespace` in writ.toml).
    pub fn inventory_name(project: &str) -> String {
        crate::lower::kubernetes::object_name(&["writ-inventory", project])
    }

    /// The key of the Secret's `data` that holds the record, as JSON.
    pub const INVENTORY_KEY: &str = "inventory.json";

    /// A project's inventory record in one cluster.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Inventory {
        /// The UIDs of the service accounts writ created or converged, with
        /// their addresses. A service account the source no longer
        /// declares is writ's to delete only if its UID is here: a label
        /// alone proves nothing.
        #[serde(default)]
        pub objects: BTreeMap<String, String>,
        /// Agents `writ revoke` cut off in this cluster, until
        /// `writ revoke --lift`.
        #[serde(default)]
        pub revoked: BTreeMap<String, RevokedRecord>,
    }

    /// When an agent was revoked, and by whom if writ was told.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct RevokedRecord {
        pub at: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub by: Option<String>,
    }

    impl Inventory {
        /// The record as a snapshot resource (`kubernetes_inventory`).
        pub fn to_resource(&self, provider: &str, namespace: &str, project: &str) -> Resource {
            let name = inventory_name(project);
            let mut attributes = BTreeMap::new();
            attributes.insert("name".to_string(), json!(name));
            attributes.insert("namespace".to_string(), json!(namespace));
            attributes.insert("objects".to_string(), json!(self.objects));
            attributes.insert("revoked".to_string(), json!(self.revoked));
            Resource {
                address: crate::address::kubernetes(provider, "secrets", Some(namespace), &name),
                provider: provider.to_string(),
                kind: ResourceKind::KubernetesInventory,
                agent: None,
                attributes: attributes.into(),
            }
        }

        /// The record a snapshot resource holds.
        pub fn of_resource(resource: &Resource) -> Result<Inventory, String> {
            let field = |key: &str| resource.attribute(key).cloned().unwrap_or(json!({}));
            Ok(Inventory {
                objects: serde_json::from_value(field("objects"))
                    .map_err(|e| format!("{}: `objects`: {e}", resource.address))?,
                revoked: serde_json::from_value(field("revoked"))
                    .map_err(|e| format!("{}: `revoked`: {e}", resource.address))?,
            })
        }
    }

    /// A Role's or ClusterRole's rules (in writ's canonical shape) without
    /// the right to mint tokens for the service account `account`: the
    /// parent of a revoked delegate loses it. Other resources of a rule keep
    /// its names, and the token resource keeps the other names; a rule is
    /// never left without names (which RBAC reads as every name). `None`
    /// when nothing names that account.
    pub fn rules_without_minting(rules: &Value, account: &str) -> Option<Value> {
        const TOKEN: &str = "serviceaccounts/token";
        let strings = |rule: &Value, key: &str| crate::resource::strings(rule.get(key));
        let rules = rules.as_array()?;
        let mut changed = false;
        let mut out = Vec::new();
        for rule in rules {
            let groups = strings(rule, "api_groups");
            let resources = strings(rule, "resources");
            let names = strings(rule, "resource_names");
            // Lowering writes the right to mint as exactly this resource in
            // the core group; a wider rule is the parent's own grant.
            let mints = groups.iter().any(String::is_empty)
                && resources.iter().any(|r| r == TOKEN)
                && names.iter().any(|n| n == account);
            if !mints {
                out.push(rule.clone());
                continue;
            }
            changed = true;
            let others: Vec<&String> = resources.iter().filter(|r| *r != TOKEN).collect();
            if !others.is_empty() {
                let mut kept = rule.clone();
                kept["resources"] = json!(others);
                out.push(kept);
            }
            let rest: Vec<&String> = names.iter().filter(|n| *n != account).collect();
            if !rest.is_empty() {
                let mut kept = rule.clone();
                kept["resources"] = json!([TOKEN]);
                kept["resource_names"] = json!(rest);
                out.push(kept);
            }
        }
        changed.then_some(Value::Array(out))
    }
}

/// Whose an observed object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    Ours,
    /// Another writ project's: not ours to list or change.
    OtherProject,
    /// Labelled as this project's, but writ cannot show it made it (its
    /// name is not writ's, its UID is in no inventory record, the source
    /// does not declare it): listed, never changed.
    Unproven,
    Unmanaged,
}

/// What shows that an object is the project's, beyond the marks on it.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    /// The project's roles as (provider, name): an inline policy is the
    /// project's when its role is.
    pub roles: FxHashSet<(&'a str, &'a str)>,
    /// The UIDs in the project's inventory records, as (provider, UID).
    pub recorded: FxHashSet<(&'a str, &'a str)>,
    /// The addresses of the service accounts the source declares.
    pub declared: FxHashSet<&'a str>,
    /// The roles the source adopts (`adopts`), by address, with their path.
    pub adopted: FxHashMap<&'a str, &'a str>,
}

fn label<'a>(resource: &'a Resource, name: &str) -> Option<&'a str> {
    resource
        .attributes
        .get("labels")
        .and_then(|labels| labels.get(name))
        .and_then(Value::as_str)
}

/// Whose `resource` is, for `project`.
pub fn ownership(resource: &Resource, project: &str, evidence: &Evidence) -> Ownership {
    match resource.kind {
        ResourceKind::AwsRole | ResourceKind::AwsManagedPolicy => {
            let path = resource.string("path").unwrap_or("/");
            let tags = resource
                .attributes
                .get("tags")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
            let tag = |key: &str| {
                resource
                    .attributes
                    .get("tags")
                    .and_then(|t| t.get(key))
                    .and_then(Value::as_str)
            };
            if aws::owns(path, tags, project) {
                // Outside writ's path, only while the source adopts it
                // there: a tag alone hands nothing to writ. Until writ has
                // written its digest the adoption is not done: it is
                // planned again (checked, and applied only with
                // `--adopt`), whoever put the tags there.
                let declared = evidence.adopted.get(resource.address.as_str()) == Some(&path);
                if path.starts_with(aws::PATH_ROOT) || (declared && tag(aws::DIGEST_TAG).is_some())
                {
                    Ownership::Ours
                } else if declared {
                    Ownership::Unmanaged
                } else {
                    Ownership::Unproven
                }
            } else if (path.starts_with(aws::PATH_ROOT) && path != aws::path(project))
                || (tag(aws::ADOPTED_TAG).is_some()
                    && tag(aws::PROJECT_TAG).is_some_and(|p| p != project))
            {
                Ownership::OtherProject
            } else {
                Ownership::Unmanaged
            }
        }
        ResourceKind::AwsRolePolicy => {
            let role = resource.string("role").unwrap_or_default();
            if evidence.roles.contains(&(resource.provider.as_str(), role)) {
                Ownership::Ours
            } else {
                Ownership::OtherProject
            }
        }
        ResourceKind::AwsUser | ResourceKind::AwsAccessKey => Ownership::Unmanaged,
        ResourceKind::GcpServiceAccount => {
            let id = resource.string("account_id").unwrap_or_default();
            let description = resource.string("description").unwrap_or_default();
            match gcp::read(description) {
                // The record must name the agent the id is made from: an
                // edited description cannot hand an account to another.
                Some(_) if gcp::is_projects(id, description, project) => Ownership::Ours,
                Some(_) if id.starts_with(gcp::ID_PREFIX) => Ownership::OtherProject,
                _ => Ownership::Unmanaged,
            }
        }
        // Writ's part of a resource's policy: the bindings of writ's
        // service accounts, read so (see `lower::gcp::bind`).
        ResourceKind::GcpIamPolicy => Ownership::Ours,
        // A pool or provider is this project's when its description records
        // the project and it is in the project's pool (an edited description
        // cannot hand another's over). Anything else in the project's pool
        // (another record, or none) is listed and flagged, never changed:
        // it could map the attributes writ's bindings trust.
        ResourceKind::GcpWorkloadIdentityPool | ResourceKind::GcpWorkloadIdentityPoolProvider => {
            let in_ours = resource.string("pool_id").unwrap_or_default()
                == crate::lower::gcp::pool_id(project);
            match gcp::read_shared(resource.string("description").unwrap_or_default()) {
                Some(owner) if owner == project && in_ours => Ownership::Ours,
                Some(_) if !in_ours => Ownership::OtherProject,
                _ => Ownership::Unmanaged,
            }
        }
        // Governed, not owned: writ sets its attributes (and never deletes
        // it, see the plan's deletions).
        kind if kind.is_governed() => Ownership::Ours,
        _ if resource.kind.is_kubernetes() => {
            let label = |name: &str| label(resource, name);
            let name = resource.string("name").unwrap_or_default();
            if kubernetes::is_reserved(resource.string("namespace"), name) {
                // Labelled as writ's or not, the cluster's own objects are
                // listed, never changed.
                return Ownership::Unmanaged;
            }
            if !kubernetes::owns(label, project) {
                return if kubernetes::is_writs(label) {
                    Ownership::OtherProject
                } else {
                    Ownership::Unmanaged
                };
            }
            // Labels are a claim anyone who may edit the object can make.
            let recorded = resource.string("uid").is_some_and(|uid| {
                evidence
                    .recorded
                    .contains(&(resource.provider.as_str(), uid))
            });
            let proven = recorded
                || match resource.kind {
                    ResourceKind::KubernetesServiceAccount => {
                        evidence.declared.contains(resource.address.as_str())
                    }
                    kind => label(kubernetes::AGENT_LABEL).is_some_and(|agent| {
                        kubernetes::follows_scheme(kind, project, agent, name)
                    }),
                };
            if proven {
                Ownership::Ours
            } else {
                Ownership::Unproven
            }
        }
        _ => Ownership::Unmanaged,
    }
}

/// The agent an owned object belongs to: its tag or label, else what
/// lowering recorded, else (for an inline policy) its role's name.
pub fn agent_name(resource: &Resource) -> Option<&str> {
    resource
        .tag(aws::AGENT_TAG)
        .or_else(|| label(resource, kubernetes::AGENT_LABEL))
        .or_else(|| {
            (resource.kind == ResourceKind::GcpServiceAccount)
                .then(|| gcp::read(resource.string("description")?))
                .flatten()
                .filter(|(_, agent)| {
                    resource.string("account_id")
                        == Some(crate::lower::gcp::account_id(agent).as_str())
                })
                .map(|(_, agent)| agent)
        })
        .or(resource.agent.as_deref())
        .or_else(|| resource.string("role"))
}

/// [`agent_name`], owned.
pub fn agent_of(resource: &Resource) -> Option<String> {
    agent_name(resource).map(str::to_string)
}

/// The digest writ recorded on an object, if any.
pub fn recorded_digest(resource: &Resource) -> Option<&str> {
    resource.tag(aws::DIGEST_TAG).or_else(|| {
        resource
            .attributes
            .get("annotations")
            .and_then(|a| a.get(kubernetes::DIGEST_ANNOTATION))
            .and_then(Value::as_str)
    })
}

/// The digest of what writ sets on an object: its attributes without the
/// digest tag, and, for a role, its inline policies (by name). Documents
/// must be in canonical form, as lowering writes them and as the plan reads
/// them (see `plan::diff::normalised`).
pub fn content_digest<'a>(
    resource: &Resource,
    inline_policies: impl IntoIterator<Item = &'a Resource>,
) -> String {
    let mut hasher = policy::Digester::new();
    for (key, value) in resource.compared_attributes() {
        hasher.value(key);
        match (key.as_str(), value) {
            ("tags" | "annotations", Value::Object(entries)) => {
                for (name, entry) in entries.iter().filter(|(name, _)| {
                    *name != aws::DIGEST_TAG
                        && !aws::is_revocation_tag(name)
                        && *name != kubernetes::DIGEST_ANNOTATION
                        && *name != kubernetes::REVOKED_ANNOTATION
                }) {
                    hasher.value(name);
                    hasher.value(entry);
                }
            }
            // A revocation is not what writ applies from the source.
            ("assume_role_policy", Value::Object(document)) => {
                let mut document = document.clone();
                if let Some(Value::Array(statements)) = document.get_mut("Statement") {
                    statements.retain(|s| !aws::is_revoke_statement(s));
                }
                hasher.value(&Value::Object(document));
            }
            _ => hasher.value(value),
        }
    }
    // A revocation is not part of what writ applies from the source.
    let mut policies: Vec<(&str, &Value)> = inline_policies
        .into_iter()
        .filter_map(|inline| Some((inline.string("name")?, inline.attribute("policy")?)))
        .filter(|(name, _)| *name != aws::REVOKE_POLICY)
        .collect();
    policies.sort_by_key(|(name, _)| *name);
    hasher.bytes(b"inline policies");
    for (name, document) in policies {
        hasher.value(&name);
        hasher.value(document);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::kubernetes::*;
    use crate::resource::ResourceKind;
    use serde_json::json;

    #[test]
    fn a_revoked_delegate_loses_only_its_own_minting_right() {
        let rules = json!([
            {"api_groups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
             "resource_names": ["helper", "other"]},
            {"api_groups": [""], "resources": ["configmaps", "serviceaccounts/token"], "verbs": ["get"],
             "resource_names": ["helper"]},
            {"api_groups": [""], "resources": ["pods"], "verbs": ["get"]}
        ]);
        let kept = rules_without_minting(&rules, "helper").unwrap();
        assert_eq!(
            kept,
            json!([
                {"api_groups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
                 "resource_names": ["other"]},
                // The other resource keeps its names: never widened to every name.
                {"api_groups": [""], "resources": ["configmaps"], "verbs": ["get"],
                 "resource_names": ["helper"]},
                {"api_groups": [""], "resources": ["pods"], "verbs": ["get"]}
            ])
        );
        // The last name gone: the rule goes, never left without names.
        let only = json!([{"api_groups": [""], "resources": ["serviceaccounts/token"],
            "verbs": ["create"], "resource_names": ["helper"]}]);
        assert_eq!(rules_without_minting(&only, "helper").unwrap(), json!([]));
        assert!(rules_without_minting(&only, "nobody").is_none());
    }

    #[test]
    fn names_writ_gives_prove_rbac_objects_and_nothing_else() {
        use ResourceKind::*;
        assert!(follows_scheme(
            KubernetesRole,
            "acme",
            "job_runner",
            "writ-job-runner"
        ));
        assert!(follows_scheme(
            KubernetesClusterRoleBinding,
            "acme",
            "bot",
            "writ-acme-bot"
        ));
        assert!(!follows_scheme(
            KubernetesClusterRoleBinding,
            "acme",
            "bot",
            "writ-bot"
        ));
        assert!(!follows_scheme(
            KubernetesRoleBinding,
            "acme",
            "bot",
            "coredns"
        ));
        // Service accounts are named by the source: only the inventory
        // record or the source proves them.
        assert!(!follows_scheme(
            KubernetesServiceAccount,
            "acme",
            "bot",
            "bot"
        ));
    }

    #[test]
    fn an_inventory_record_round_trips_and_a_broken_one_is_an_error() {
        let mut record = Inventory::default();
        record.objects.insert(
            "u-1".into(),
            "kubernetes.prod/namespaces/a/serviceaccounts/b".into(),
        );
        record.revoked.insert(
            "bot".into(),
            RevokedRecord {
                at: "2026-11-29T09:00:00Z".into(),
                by: Some("ana".into()),
            },
        );
        let resource = record.to_resource("kubernetes.prod", "writ", "acme");
        assert_eq!(
            resource.address,
            "kubernetes.prod/namespaces/writ/secrets/writ-inventory-acme"
        );
        assert_eq!(Inventory::of_resource(&resource).unwrap(), record);
        let mut broken = resource.clone();
        broken
            .attributes
            .insert("revoked".into(), json!({"bot": {"when": 1}}));
        assert!(Inventory::of_resource(&broken).is_err());
    }
}
