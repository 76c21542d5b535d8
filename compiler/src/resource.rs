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
        }
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
    pub attributes: BTreeMap<String, Value>,
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
