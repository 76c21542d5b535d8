//! The emergency brake: `writ revoke` denies every session an agent's roles
//! issued before now, and disables the access keys of IAM users tagged as
//! the agent's. Plans keep the revocation until it is lifted.

use crate::{call, decode_document, AwsProvider, IamCode};
use aws_sdk_iam::types::{EntityType, StatusType};
use writ_compiler::ownership::aws::{AGENT_TAG, PROJECT_TAG, REVOKE_POLICY};
use writ_provider_core::{ProviderError, Revocation};

impl AwsProvider {
    /// `writ revoke`: the revocation on the agent's role, then its access
    /// keys disabled.
    pub(crate) async fn revoke_agent(&self, name: &str, now: &str) -> Revocation {
        let address = &self.address;
        let mut report = Revocation::default();
        match self.revoke_role(name, now).await {
            Ok(true) => report.said(format!(
                "revoked `{name}` in {address}: sessions issued before {now} are denied"
            )),
            Ok(false) => report.said(format!("`{name}` has no role in {address}")),
            Err(error) => report.failed(format!("could not revoke `{name}` in {address}: {error}")),
        }
        match self.disable_keys_of(name).await {
            Ok(keys) => {
                for key in keys {
                    report.said(format!(
                        "disabled access key {key} of `{name}` in {address}"
                    ));
                }
            }
            Err(error) => report.failed(format!(
                "could not disable the access keys of `{name}` in {address}: {error}"
            )),
        }
        report
    }

    /// `writ revoke --lift`: the revocation removed from the agent's role.
    pub(crate) async fn lift_agent(&self, name: &str) -> Revocation {
        let address = &self.address;
        let mut report = Revocation::default();
        match self.lift_role(name).await {
            Ok(true) => report.said(format!("lifted the revocation of `{name}` in {address}")),
            Ok(false) => report.said(format!("`{name}` has no role in {address}")),
            Err(error) => report.failed(format!(
                "could not lift the revocation of `{name}` in {address}: {error}"
            )),
        }
        report
    }

    /// Puts the revocation on a role of the project. `Ok(false)` when the
    /// role does not exist. `now` is an RFC 3339 time (UTC).
    async fn revoke_role(&self, role: &str, now: &str) -> Result<bool, ProviderError> {
        if !self.ensure_owned_role(role).await? {
            return Ok(false);
        }
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": [now]}}
            }]
        });
        self.put_role_policy(role, REVOKE_POLICY, &document.to_string())
            .await?;
        Ok(true)
    }

    /// Removes the revocation from a role of the project. `Ok(false)` when
    /// the role does not exist.
    async fn lift_role(&self, role: &str) -> Result<bool, ProviderError> {
        if !self.ensure_owned_role(role).await? {
            return Ok(false);
        }
        self.delete_role_policy(role, REVOKE_POLICY).await?;
        Ok(true)
    }

    /// The revocation on a role, if any, as a document to put back.
    pub(crate) async fn revocation_of(&self, role: &str) -> Result<Option<String>, ProviderError> {
        let result = call!(
            self,
            "GetRolePolicy",
            self.client
                .get_role_policy()
                .role_name(role)
                .policy_name(REVOKE_POLICY)
        );
        match result {
            Ok(output) => Ok(Some(decode_document(output.policy_document()).to_string())),
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Disables the active access keys of IAM users tagged `writ:project`
    /// and `writ:agent` as the agent's. Returns the keys disabled.
    async fn disable_keys_of(&self, agent: &str) -> Result<Vec<String>, ProviderError> {
        let mut users = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call!(
                self,
                "GetAccountAuthorizationDetails",
                self.client
                    .get_account_authorization_details()
                    .filter(EntityType::User)
                    .max_items(1000)
                    .set_marker(marker.clone())
            )?;
            for user in page.user_detail_list() {
                let tagged = |key: &str, value: &str| {
                    user.tags()
                        .iter()
                        .any(|t| t.key() == key && t.value() == value)
                };
                if tagged(PROJECT_TAG, &self.project) && tagged(AGENT_TAG, agent) {
                    users.extend(user.user_name().map(str::to_string));
                }
            }
            marker = crate::next_page(page.is_truncated(), page.marker());
            if marker.is_none() {
                break;
            }
        }
        let mut disabled = Vec::new();
        for user in users {
            let keys = call!(
                self,
                "ListAccessKeys",
                self.client.list_access_keys().user_name(&user)
            )?;
            for key in keys.access_key_metadata() {
                let (Some(id), Some(StatusType::Active)) = (key.access_key_id(), key.status())
                else {
                    continue;
                };
                call!(
                    self,
                    "UpdateAccessKey",
                    self.client
                        .update_access_key()
                        .user_name(&user)
                        .access_key_id(id)
                        .status(StatusType::Inactive)
                )?;
                disabled.push(id.to_string());
            }
        }
        Ok(disabled)
    }
}
