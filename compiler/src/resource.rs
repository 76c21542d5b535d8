//! One live object, provider-neutral: what lowering produces from the model
//! and what providers (or a snapshot) report from live state. Both sides
//! meet in this type, so the plan compares like with like.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The kinds of object writ manages or inventories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// An IAM role: name, path, trust policy, session length, boundary, tags.
    AwsRole,
    /// An inline policy of a role.
    AwsRolePolicy,
    /// A customer-managed policy (writ uses them as permissions boundaries).
    AwsManagedPolicy,
    /// An IAM user: never managed, only inventoried.
    AwsUser,
    /// An access key of an IAM user: never managed, only inventoried.
    AwsAccessKey,
    KubernetesServiceAccount,
    KubernetesRole,
    KubernetesRoleBinding,
    KubernetesClusterRole,
    KubernetesClusterRoleBinding,
    /// A Secret holding a long-lived service-account token: observed by its
    /// metadata only (the token itself is never read).
    KubernetesTokenSecret,
    /// A project's inventory record in a cluster (a Secret writ keeps): the
    /// service accounts writ made, by UID, and the agents revoked there.
    /// Read, never planned: only `writ apply` and `writ revoke` write it.
    KubernetesInventory,
    /// A GitHub repository an agent runs in, as its OIDC tokens name it:
    /// its id, its owner's id, and the subject template of its tokens. Read,
    /// never changed; plans bind the AWS trust of its workflows to it.
    GithubRepository,
    /// A deploy key of such a repository: a long-lived credential, only
    /// inventoried.
    GithubDeployKey,
    /// An Actions secret of such a repository, by name and dates (never its
    /// value): only inventoried.
    GithubActionsSecret,
    /// A workflow file an agent runs as: the `permissions:` it asks for,
    /// at the top and per job. Read, never changed.
    GithubWorkflow,
    /// A GitHub App installed in the organisation: its permissions and the
    /// repositories it reaches. Only inventoried.
    GithubAppInstallation,
    /// The Actions settings of a repository agents run in: its workflows'
    /// default token permissions, and whether Actions may approve pull
    /// requests. Governed, not owned: writ sets these attributes, never
    /// deletes the object.
    GithubActionsSettings,
    /// A member's fine-grained personal access token with access to the
    /// organisation: a long-lived credential, only inventoried.
    GithubPersonalToken,
    /// A deployment environment of a repository agents run in, as far as
    /// writ governs it: which branches and tags may deploy to it. Governed,
    /// not owned: writ sets its deployment branch policy (keeping its
    /// reviewers and wait timer), never deletes it.
    GithubEnvironment,
    /// A GCP service account: writ's, one per agent and GCP provider (its
    /// id starts `writ-`, its description records the project and agent),
    /// or anyone's, listed.
    GcpServiceAccount,
    /// Writ's part of one GCP resource's allow policy: the bindings that
    /// name writ's service accounts, by role and condition. Others' members
    /// and bindings on the same resource are never part of it.
    GcpIamPolicy,
    /// A GCP project as observed: its id and number (what workload
    /// identity principals name). Read, never changed.
    GcpProject,
    /// A user-managed key of one of writ's GCP service accounts: a
    /// long-lived credential, only inventoried.
    GcpServiceAccountKey,
    /// A GCP workload identity pool of writ's (its description records the
    /// project): where GitHub's tokens are exchanged for the right to act
    /// as writ's service accounts.
    GcpWorkloadIdentityPool,
    /// A provider of writ's pool for one GitHub owner's OIDC tokens: its
    /// attribute condition pins the owner, its mapping says which agents
    /// each token may act as.
    GcpWorkloadIdentityPoolProvider,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::AwsRole => "aws_role",
            ResourceKind::AwsRolePolicy => "aws_role_policy",
            ResourceKind::AwsManagedPolicy => "aws_managed_policy",
            ResourceKind::AwsUser => "aws_user",
            ResourceKind::AwsAccessKey => "aws_access_key",
            ResourceKind::KubernetesServiceAccount => "kubernetes_service_account",
            ResourceKind::KubernetesRole => "kubernetes_role",
            ResourceKind::KubernetesRoleBinding => "kubernetes_role_binding",
            ResourceKind::KubernetesClusterRole => "kubernetes_cluster_role",
            ResourceKind::KubernetesClusterRoleBinding => "kubernetes_cluster_role_binding",
            ResourceKind::KubernetesTokenSecret => "kubernetes_token_secret",
            ResourceKind::KubernetesInventory => "kubernetes_inventory",
            ResourceKind::GithubRepository => "github_repository",
            ResourceKind::GithubDeployKey => "github_deploy_key",
            ResourceKind::GithubActionsSecret => "github_actions_secret",
            ResourceKind::GithubWorkflow => "github_workflow",
            ResourceKind::GithubAppInstallation => "github_app_installation",
            ResourceKind::GithubActionsSettings => "github_actions_settings",
            ResourceKind::GithubPersonalToken => "github_personal_token",
            ResourceKind::GithubEnvironment => "github_environment",
            ResourceKind::GcpServiceAccount => "gcp_service_account",
            ResourceKind::GcpIamPolicy => "gcp_iam_policy",
            ResourceKind::GcpProject => "gcp_project",
            ResourceKind::GcpServiceAccountKey => "gcp_service_account_key",
            ResourceKind::GcpWorkloadIdentityPool => "gcp_workload_identity_pool",
            ResourceKind::GcpWorkloadIdentityPoolProvider => "gcp_workload_identity_pool_provider",
        }
    }

    pub fn is_kubernetes(self) -> bool {
        matches!(
            self,
            ResourceKind::KubernetesServiceAccount
                | ResourceKind::KubernetesRole
                | ResourceKind::KubernetesRoleBinding
                | ResourceKind::KubernetesClusterRole
                | ResourceKind::KubernetesClusterRoleBinding
                | ResourceKind::KubernetesTokenSecret
        )
    }

    /// In words, for plans: "role", "inline policy", …
    pub fn noun(self) -> &'static str {
        match self {
            ResourceKind::AwsRole => "IAM role",
            ResourceKind::AwsRolePolicy => "inline policy",
            ResourceKind::AwsManagedPolicy => "managed policy",
            ResourceKind::AwsUser => "IAM user",
            ResourceKind::AwsAccessKey => "access key",
            ResourceKind::KubernetesServiceAccount => "service account",
            ResourceKind::KubernetesRole => "Role",
            ResourceKind::KubernetesRoleBinding => "RoleBinding",
            ResourceKind::KubernetesClusterRole => "ClusterRole",
            ResourceKind::KubernetesClusterRoleBinding => "ClusterRoleBinding",
            ResourceKind::KubernetesTokenSecret => "token Secret",
            ResourceKind::KubernetesInventory => "inventory record",
            ResourceKind::GithubRepository => "GitHub repository",
            ResourceKind::GithubDeployKey => "deploy key",
            ResourceKind::GithubActionsSecret => "Actions secret",
            ResourceKind::GithubWorkflow => "workflow",
            ResourceKind::GithubAppInstallation => "App installation",
            ResourceKind::GithubActionsSettings => "Actions settings",
            ResourceKind::GithubPersonalToken => "personal access token",
            ResourceKind::GithubEnvironment => "environment",
            ResourceKind::GcpServiceAccount => "service account",
            ResourceKind::GcpIamPolicy => "IAM policy bindings",
            ResourceKind::GcpProject => "GCP project",
            ResourceKind::GcpServiceAccountKey => "service account key",
            ResourceKind::GcpWorkloadIdentityPool => "workload identity pool",
            ResourceKind::GcpWorkloadIdentityPoolProvider => "workload identity pool provider",
        }
    }

    /// Objects writ keeps no digest on of their own (governed GitHub
    /// settings; GCP policies and pools, which take no labels: a service
    /// account's record carries the digest of its agent's bindings): a
    /// difference from the source cannot be told apart, on the object
    /// itself, as an edit or a change of the source.
    pub fn keeps_no_digest(self) -> bool {
        self.is_governed()
            || matches!(
                self,
                ResourceKind::GcpIamPolicy
                    | ResourceKind::GcpWorkloadIdentityPool
                    | ResourceKind::GcpWorkloadIdentityPoolProvider
            )
    }

    /// Governed, not owned: writ sets the attributes it governs on an
    /// object others made and use, and never deletes it.
    pub fn is_governed(self) -> bool {
        matches!(
            self,
            ResourceKind::GithubActionsSettings | ResourceKind::GithubEnvironment
        )
    }

    /// Attributes whose change cannot be made in place: the object must be
    /// deleted and created again.
    pub fn forces_replacement(self, attribute: &str) -> bool {
        // Kubernetes forbids changing a binding's `roleRef`.
        matches!(
            (self, attribute),
            (ResourceKind::AwsRole, "path" | "name")
                | (
                    ResourceKind::AwsManagedPolicy,
                    "path" | "name" | "description"
                )
                | (ResourceKind::AwsRolePolicy, "role" | "name")
                | (
                    ResourceKind::KubernetesRoleBinding
                        | ResourceKind::KubernetesClusterRoleBinding,
                    "role_ref"
                )
        ) || (self.is_kubernetes() && matches!(attribute, "name" | "namespace"))
    }
}

/// Attributes that only observation knows (when an object was created, its
/// ARN): kept for the inventory, never compared, never part of a digest.
pub fn is_observed_only(attribute: &str) -> bool {
    matches!(attribute, "created" | "arn" | "uid")
}

/// An object's attributes: a map from name to canonical JSON, shared
/// rather than copied. An observed object that is exactly what the source
/// wants holds the desired object's map (see
/// [`crate::snapshot::Snapshot::parse_sharing`]), so a large estate is held
/// once, not twice; writing through it copies a shared map first.
#[derive(Clone, Default, PartialEq)]
pub struct Attributes(std::sync::Arc<BTreeMap<String, Value>>);

impl Serialize for Attributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Attributes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(deserializer).map(Attributes::from)
    }
}

impl Attributes {
    /// Do both hold the very same map (so, equal without looking)?
    pub fn shares(&self, other: &Attributes) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }

    /// The map, as a plain one of its own.
    pub fn to_map(&self) -> BTreeMap<String, Value> {
        (*self.0).clone()
    }
}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::ops::Deref for Attributes {
    type Target = BTreeMap<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Attributes {
    fn deref_mut(&mut self) -> &mut Self::Target {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl From<BTreeMap<String, Value>> for Attributes {
    fn from(map: BTreeMap<String, Value>) -> Attributes {
        Attributes(std::sync::Arc::new(map))
    }
}

impl<const N: usize> From<[(String, Value); N]> for Attributes {
    fn from(pairs: [(String, Value); N]) -> Attributes {
        Attributes::from(BTreeMap::from(pairs))
    }
}

impl FromIterator<(String, Value)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(pairs: I) -> Attributes {
        Attributes::from(pairs.into_iter().collect::<BTreeMap<String, Value>>())
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::collections::btree_map::Iter<'a, String, Value>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The strings of a JSON list (an attribute such as a rule's `verbs`);
/// what is not a list of strings reads as none.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// `aws.prod/role/billing_bot`: unique within a plan.
    pub address: String,
    /// The provider instance, `aws.prod`.
    pub provider: String,
    pub kind: ResourceKind,
    /// The agent this object belongs to, when writ manages it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Canonical attributes (see [`crate::policy`] for documents).
    pub attributes: Attributes,
}

impl Resource {
    /// The attributes writ sets and compares (without observed-only ones).
    pub fn compared_attributes(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.attributes
            .iter()
            .filter(|(key, _)| !is_observed_only(key))
    }

    /// Do two objects agree on every attribute writ compares?
    pub fn same_as(&self, other: &Resource) -> bool {
        if self.attributes.shares(&other.attributes) {
            return true;
        }
        let has_observed_only = |r: &Resource| r.attributes.keys().any(|k| is_observed_only(k));
        if !has_observed_only(self) && !has_observed_only(other) {
            // The common case (lowering never sets observation-only
            // attributes): compare the maps as they are.
            return self.attributes == other.attributes;
        }
        self.compared_attributes().eq(other.compared_attributes())
    }

    pub fn attribute(&self, name: &str) -> Option<&Value> {
        self.attributes.get(name)
    }

    pub fn string(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).and_then(Value::as_str)
    }

    /// One tag's value.
    pub fn tag(&self, name: &str) -> Option<&str> {
        self.attributes.get("tags")?.get(name)?.as_str()
    }

    /// The tags of an object that has them.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.attributes
            .get("tags")
            .and_then(Value::as_object)
            .map(|tags| {
                tags.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }
}
