//! The emergency brake: `writ revoke` closes the trust of an agent's role,
//! denies every session it issued before now, and disables the access keys
//! of the IAM users the source says the agent runs as. Plans keep the
//! revocation until it is lifted.

use crate::{call, decode_document, AwsProvider, IamCode};
use aws_sdk_iam::types::StatusType;
use writ_compiler::ownership::aws::{
    is_revoke_statement, revoke_trust_statement, tag_value, REVOKED_BY_TAG, REVOKED_TAG,
    REVOKE_POLICY,
};
use writ_provider_core::{ProviderError, Revocation, RevokeMark};

impl AwsProvider {
    /// `writ revoke`: the revocation on the agent's role, then its access
    /// keys disabled.
    pub(crate) async fn revoke_agent(
        &self,
        name: &str,
        mark: &RevokeMark,
        users: &[String],
    ) -> Revocation {
        let address = &self.address;
        let now = &mark.at;
        let mut report = Revocation::default();
        match self.revoke_role(name, mark).await {
            Ok(true) => report.said(format!(
                "revoked `{name}` in {address} at {now}: nobody may assume its role, and every session of it is denied everything"
            )),
            Ok(false) => report.said(format!("`{name}` has no role in {address}")),
            Err(error) => report.failed(format!("could not revoke `{name}` in {address}: {error}")),
        }
        // Keys only of the users the source says the agent signs as: a tag
        // on a user is a claim anyone who may tag users can make.
        let (done, failed) = self.disable_keys(name, users).await;
        for line in done {
            report.said(line);
        }
        for line in failed {
            report.failed(format!("could not revoke `{name}` in {address}: {line}"));
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
    /// role does not exist. Four requests: the role read (whose it is, and
    /// its trust), the mark, the trust closed, the sessions denied.
    async fn revoke_role(&self, role: &str, mark: &RevokeMark) -> Result<bool, ProviderError> {
        let Some(trust) = self.owned_trust(role).await? else {
            return Ok(false);
        };
        // First the mark, so that a revocation interrupted after this point
        // is still known to every later plan, which then finishes it.
        let tag = |key: &str, value: &str| {
            aws_sdk_iam::types::Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| ProviderError::permanent(format!("a tag for `{role}`: {e}")))
        };
        let mut tags = vec![tag(REVOKED_TAG, &mark.at)?];
        if let Some(by) = &mark.by {
            tags.push(tag(REVOKED_BY_TAG, &tag_value(by))?);
        }
        call!(
            self,
            "TagRole",
            self.client
                .tag_role()
                .role_name(role)
                .set_tags(Some(tags.clone()))
        )?;
        // Nobody may assume the role any more: the pod, the job or the
        // parent that assumed it before cannot simply do so again.
        let closed = self.set_trust_deny(role, trust, true).await;
        // And every session is denied everything, those issued before and
        // any issued before the trust closed. (Not only sessions issued
        // before the revoke began, as `aws:TokenIssueTime` would say: one
        // issued in between would escape.) Tried even if the step above
        // failed, so that one failure does not leave the other door open.
        let document = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": ["*"], "Resource": ["*"]}]
        });
        let sessions = self
            .put_role_policy(role, REVOKE_POLICY, &document.to_string())
            .await;
        closed?;
        sessions?;
        Ok(true)
    }

    /// The trust policy of a role of the project, read with the ownership
    /// check: `None` when the role does not exist, an error when it is
    /// someone else's.
    async fn owned_trust(&self, role: &str) -> Result<Option<serde_json::Value>, ProviderError> {
        let result = call!(self, "GetRole", self.client.get_role().role_name(role));
        let output = match result {
            Ok(output) => output,
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => return Ok(None),
            Err(error) => return Err(error),
        };
        let Some(found) = output.role() else {
            return Ok(None);
        };
        let tags = found.tags().iter().map(|t| (t.key(), t.value()));
        if !writ_compiler::ownership::aws::owns(found.path(), tags, &self.project) {
            return Err(ProviderError::new(
                writ_provider_core::ErrorClass::Permanent,
                Some("NotOwned"),
                format!(
                    "role `{role}` (path `{}`) is not managed by writ project `{}`: refusing to change it",
                    found.path(),
                    self.project
                ),
            ));
        }
        Ok(Some(
            found
                .assume_role_policy_document()
                .map(decode_document)
                .unwrap_or_else(|| serde_json::json!({"Version": "2012-10-17", "Statement": []})),
        ))
    }

    /// Adds (or removes) the revocation statement of a role's trust policy,
    /// `trust` as just read.
    async fn set_trust_deny(
        &self,
        role: &str,
        mut trust: serde_json::Value,
        deny: bool,
    ) -> Result<(), ProviderError> {
        let statements = match trust.get_mut("Statement") {
            Some(serde_json::Value::Array(statements)) => statements,
            _ => {
                return Err(ProviderError::permanent(format!(
                    "the trust policy of `{role}` has no statements writ can read"
                )))
            }
        };
        let present = statements.iter().any(is_revoke_statement);
        if present == deny {
            return Ok(());
        }
        if deny {
            statements.push(revoke_trust_statement());
        } else {
            statements.retain(|s| !is_revoke_statement(s));
        }
        call!(
            self,
            "UpdateAssumeRolePolicy",
            self.client
                .update_assume_role_policy()
                .role_name(role)
                .policy_document(trust.to_string())
        )?;
        Ok(())
    }

    /// Removes the revocation from a role of the project. `Ok(false)` when
    /// the role does not exist.
    async fn lift_role(&self, role: &str) -> Result<bool, ProviderError> {
        let Some(trust) = self.owned_trust(role).await? else {
            return Ok(false);
        };
        self.set_trust_deny(role, trust, false).await?;
        self.delete_role_policy(role, REVOKE_POLICY).await?;
        // The mark last: until it is gone, plans keep what is left revoked.
        call!(
            self,
            "UntagRole",
            self.client
                .untag_role()
                .role_name(role)
                .tag_keys(REVOKED_TAG)
                .tag_keys(REVOKED_BY_TAG)
        )?;
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

    /// Disables the active access keys of these IAM users (`path/name` or
    /// `name`, as the source's `runs_on … user` names them), one by one:
    /// what was disabled and what failed, in words.
    async fn disable_keys(&self, agent: &str, users: &[String]) -> (Vec<String>, Vec<String>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for user in users {
            let name = user.rsplit('/').next().unwrap_or(user);
            let keys = match call!(
                self,
                "ListAccessKeys",
                self.client.list_access_keys().user_name(name)
            ) {
                Ok(keys) => keys,
                Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => {
                    done.push(format!(
                        "IAM user `{name}` (which `{agent}` runs as) does not exist in {}",
                        self.address
                    ));
                    continue;
                }
                Err(error) => {
                    failed.push(format!(
                        "listing the access keys of IAM user `{name}`: {error}"
                    ));
                    continue;
                }
            };
            for key in keys.access_key_metadata() {
                let (Some(id), Some(StatusType::Active)) = (key.access_key_id(), key.status())
                else {
                    continue;
                };
                match call!(
                    self,
                    "UpdateAccessKey",
                    self.client
                        .update_access_key()
                        .user_name(name)
                        .access_key_id(id)
                        .status(StatusType::Inactive)
                ) {
                    Ok(_) => done.push(format!(
                        "disabled access key {id} of IAM user `{name}` in {}",
                        self.address
                    )),
                    Err(error) => failed.push(format!(
                        "disabling access key {id} of IAM user `{name}`: {error}"
                    )),
                }
            }
        }
        (done, failed)
    }
}
