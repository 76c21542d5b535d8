//! Addresses: how plans, snapshots and providers name every object
//! (`aws.prod/role/billing_bot`, `kubernetes.prod/namespaces/billing/roles/
//! writ-exporter`). Lowering names what it makes with them, providers name
//! what they read with them, and the planner joins the two sides on them,
//! so the scheme is written once, here.

/// An IAM role.
pub fn aws_role(provider: &str, role: &str) -> String {
    format!("{provider}/role/{role}")
}

/// An inline policy of a role.
pub fn aws_role_policy(provider: &str, role: &str, policy: &str) -> String {
    format!("{provider}/role/{role}/policy/{policy}")
}

/// A customer-managed policy.
pub fn aws_managed_policy(provider: &str, policy: &str) -> String {
    format!("{provider}/policy/{policy}")
}

/// An IAM user (listed, never managed).
pub fn aws_user(provider: &str, user: &str) -> String {
    format!("{provider}/user/{user}")
}

/// The role address an address belongs to: itself for a role, the role for
/// one of its inline policies.
pub fn aws_role_of(address: &str) -> &str {
    // The role's name comes after `/role/` and has no `/` in it (IAM's
    // rule); it may itself be `policy`.
    let Some(start) = address.find("/role/") else {
        return address;
    };
    let name = start + "/role/".len();
    match address[name..].find("/policy/") {
        Some(end) => &address[..name + end],
        None => address,
    }
}

/// A Kubernetes object of the resource `plural` (`roles`), in `namespace`
/// or, for a cluster-scoped one, in the whole cluster.
pub fn kubernetes(provider: &str, plural: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{provider}/namespaces/{namespace}/{plural}/{name}"),
        None => format!("{provider}/{plural}/{name}"),
    }
}

/// A service account.
pub fn kubernetes_service_account(provider: &str, namespace: &str, name: &str) -> String {
    kubernetes(provider, "serviceaccounts", Some(namespace), name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_documented() {
        assert_eq!(aws_role("aws.prod", "bot"), "aws.prod/role/bot");
        let policy = aws_role_policy("aws.prod", "bot", "writ-access");
        assert_eq!(policy, "aws.prod/role/bot/policy/writ-access");
        assert_eq!(aws_role_of(&policy), "aws.prod/role/bot");
        assert_eq!(aws_role_of("aws.prod/policy/p"), "aws.prod/policy/p");
        // An agent may be called `policy`.
        let named_policy = aws_role_policy("aws.prod", "policy", "writ-access");
        assert_eq!(aws_role_of(&named_policy), "aws.prod/role/policy");
        assert_eq!(aws_role_of("aws.prod/role/policy"), "aws.prod/role/policy");
        assert_eq!(
            kubernetes_service_account("k.prod", "billing", "exporter"),
            "k.prod/namespaces/billing/serviceaccounts/exporter"
        );
        assert_eq!(
            kubernetes("k.prod", "clusterroles", None, "writ-acme-x"),
            "k.prod/clusterroles/writ-acme-x"
        );
    }
}
