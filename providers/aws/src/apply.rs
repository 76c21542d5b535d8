//! Carrying out one planned change. Each step is idempotent (a role that
//! already exists and is ours is brought to the wanted state; something
//! already gone counts as deleted), so an interrupted apply converges when
//! it is planned and applied again.

use crate::{call, AwsProvider, IamCode};
use aws_sdk_iam::types::Tag;
use serde_json::Value;
use std::collections::BTreeMap;
use writ_compiler::ownership;
use writ_compiler::plan::{Change, ChangeKind};
use writ_compiler::resource::ResourceKind;
use writ_provider_core::{ErrorClass, ProviderError};

type Attributes = BTreeMap<String, Value>;

fn text<'a>(attributes: &'a Attributes, name: &str) -> Option<&'a str> {
    attributes.get(name).and_then(Value::as_str)
}

fn document(attributes: &Attributes, name: &str) -> Result<String, ProviderError> {
    attributes
        .get(name)
        .filter(|v| !v.is_null())
        .map(|v| serde_json::to_string(v).unwrap_or_default())
        .ok_or_else(|| ProviderError::permanent(format!("the plan holds no `{name}` document")))
}

/// A list of names in the attributes (`attached_policies`), empty when
/// absent.
fn listed(attributes: &Attributes, key: &str) -> Vec<String> {
    attributes
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn tag_map(attributes: &Attributes) -> BTreeMap<String, String> {
    attributes
        .get("tags")
        .and_then(Value::as_object)
        .map(|tags| {
            tags.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `after` with a revocation the role carries now (its mark, the tags
/// `marks`, or only its session deny when `revoked` is set) kept: the
/// trust's deny and the mark. The plan keeps what it saw; this keeps a revoke that
/// landed after the plan was made, so that no apply reopens a role.
fn keep_live_revocation<'a>(
    after: &'a Attributes,
    marks: &[(String, String)],
    revoked: bool,
) -> std::borrow::Cow<'a, Attributes> {
    if marks.is_empty() && !revoked {
        return std::borrow::Cow::Borrowed(after);
    }
    let mut kept = after.clone();
    if let Some(Value::Array(statements)) = kept
        .get_mut("assume_role_policy")
        .and_then(|trust| trust.get_mut("Statement"))
    {
        if !statements.iter().any(ownership::aws::is_revoke_statement) {
            statements.push(ownership::aws::revoke_trust_statement());
        }
    }
    if let Some(Value::Object(tags)) = kept.get_mut("tags") {
        for (key, value) in marks {
            tags.entry(key.clone())
                .or_insert_with(|| Value::String(value.clone()));
        }
    }
    std::borrow::Cow::Owned(kept)
}

fn sdk_tags(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, ProviderError> {
    tags.iter()
        .map(|(key, value)| {
            Tag::builder()
                .key(key)
                .value(value)
                .build()
                .map_err(|e| ProviderError::permanent(format!("tag `{key}`: {e}")))
        })
        .collect()
}

/// For a delete: an object that is already gone counts as deleted.
fn gone_is_done<T>(result: Result<T, ProviderError>) -> Result<(), ProviderError> {
    match result {
        Ok(_) => Ok(()),
        Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => Ok(()),
        Err(error) => Err(error),
    }
}

/// What to untag and what to tag to go from one set of tags to another.
fn tag_changes(
    before: &Attributes,
    after: &Attributes,
) -> Result<(Vec<String>, Option<Vec<Tag>>), ProviderError> {
    let (old, new) = (tag_map(before), tag_map(after));
    let removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    // With nothing known of the old tags (an object found already made),
    // write them all.
    let tags = (old != new || before.is_empty())
        .then(|| sdk_tags(&new))
        .transpose()?;
    Ok((removed, tags))
}

/// Right after a role is created IAM may not yet accept it as a principal
/// (eventual consistency): that error, and only it, is worth retrying.
fn principal_not_ready(error: &ProviderError) -> bool {
    IamCode::of(error) == Some(IamCode::MalformedPolicyDocument)
        && error.message.contains("principal")
}

impl AwsProvider {
    pub(crate) async fn apply_change(&self, change: &Change) -> Result<(), ProviderError> {
        let empty = Attributes::new();
        let before = change.before.as_ref().unwrap_or(&empty);
        let after = change.after.as_ref().unwrap_or(&empty);
        let name = text(after, "name")
            .or_else(|| text(before, "name"))
            .unwrap_or_default();
        match (change.kind, change.kind_of_change()) {
            (ResourceKind::AwsRole, ChangeKind::Create) => self.create_role(after).await,
            (ResourceKind::AwsRole, ChangeKind::Update) => {
                // A revoke that landed after the plan was made is kept.
                let marks = self
                    .owned_role_at(name, text(after, "path"))
                    .await?
                    .unwrap_or_default();
                let after = keep_live_revocation(after, &marks, false);
                self.converge_role(name, before, &after).await
            }
            (ResourceKind::AwsRole, ChangeKind::Replace) => {
                // Deleting the role deletes a revocation with it, and a
                // replacement interrupted between the delete and the create
                // would leave the next plan to create the role open. Plans
                // never replace a revoked role; one revoked since the plan
                // was made is refused here.
                let marks = self
                    .owned_role_at(name, text(before, "path"))
                    .await?
                    .unwrap_or_default();
                if !marks.is_empty() || self.revocation_of(name).await?.is_some() {
                    return Err(ProviderError::new(
                        ErrorClass::Conflict,
                        Some("Revoked"),
                        format!("role `{name}` was revoked after this plan was made: writ does not replace a revoked role; plan again"),
                    ));
                }
                self.delete_role(name, text(before, "path")).await?;
                self.create_role(after).await
            }
            (ResourceKind::AwsRole, ChangeKind::Delete) => {
                self.delete_role(name, text(before, "path")).await
            }
            (ResourceKind::AwsRole, ChangeKind::Adopt) => {
                self.adopt_role(name, before, after).await
            }
            (ResourceKind::AwsManagedPolicy, ChangeKind::Adopt) => {
                Err(ProviderError::permanent(format!(
                    "`{}`: writ adopts roles, not managed policies",
                    change.address
                )))
            }
            (ResourceKind::AwsRolePolicy, ChangeKind::Delete) => {
                let role = text(before, "role").unwrap_or_default();
                self.ensure_owned_role(role).await?;
                self.delete_role_policy(role, name).await
            }
            (ResourceKind::AwsRolePolicy, _) => {
                let role = text(after, "role").unwrap_or_default();
                self.ensure_owned_role(role).await?;
                self.put_role_policy(role, name, &document(after, "policy")?)
                    .await
            }
            (ResourceKind::AwsManagedPolicy, ChangeKind::Create) => self.create_policy(after).await,
            (ResourceKind::AwsManagedPolicy, ChangeKind::Update) => {
                self.ensure_owned_policy(name).await?;
                self.converge_policy(name, before, after).await
            }
            (ResourceKind::AwsManagedPolicy, ChangeKind::Replace) => {
                self.delete_policy(name).await?;
                self.create_policy(after).await
            }
            (ResourceKind::AwsManagedPolicy, ChangeKind::Delete) => self.delete_policy(name).await,
            (
                ResourceKind::KubernetesServiceAccount
                | ResourceKind::KubernetesRole
                | ResourceKind::KubernetesRoleBinding
                | ResourceKind::KubernetesClusterRole
                | ResourceKind::KubernetesClusterRoleBinding
                | ResourceKind::KubernetesTokenSecret
                | ResourceKind::KubernetesInventory,
                _,
            ) => Err(ProviderError::permanent(format!(
                "`{}` is a Kubernetes object, not an AWS one",
                change.address
            ))),
            (
                ResourceKind::GithubRepository
                | ResourceKind::GithubDeployKey
                | ResourceKind::GithubActionsSecret
                | ResourceKind::GithubWorkflow
                | ResourceKind::GithubAppInstallation
                | ResourceKind::GithubActionsSettings
                | ResourceKind::GithubPersonalToken
                | ResourceKind::GithubEnvironment
                | ResourceKind::GcpServiceAccount
                | ResourceKind::GcpIamPolicy
                | ResourceKind::GcpProject
                | ResourceKind::GcpServiceAccountKey
                | ResourceKind::GcpWorkloadIdentityPool
                | ResourceKind::GcpWorkloadIdentityPoolProvider,
                _,
            ) => Err(ProviderError::permanent(format!(
                "`{}` is not an AWS object",
                change.address
            ))),
            (ResourceKind::AwsUser | ResourceKind::AwsAccessKey, _) => {
                Err(ProviderError::permanent(format!(
                    "`{}`: writ never changes IAM users or their keys",
                    change.address
                )))
            }
        }
    }

    /// Is the role writ's, for this project? `Ok(false)` when it does not
    /// exist; an error when it exists and is someone else's.
    pub(crate) async fn ensure_owned_role(&self, name: &str) -> Result<bool, ProviderError> {
        Ok(self.owned_role(name).await?.is_some())
    }

    /// [`Self::ensure_owned_role`], with the role's revocation mark as it
    /// is now: `Ok(None)` when it does not exist, else the tags by which
    /// `writ revoke` marked it (none if it did not).
    pub(crate) async fn owned_role(
        &self,
        name: &str,
    ) -> Result<Option<Vec<(String, String)>>, ProviderError> {
        self.owned_role_at(name, None).await
    }

    /// [`Self::owned_role`], and at the path the plan saw or wants (`path`,
    /// when it says): a role of that name elsewhere, even marked as the
    /// project's, is not the one the plan is about.
    pub(crate) async fn owned_role_at(
        &self,
        name: &str,
        path: Option<&str>,
    ) -> Result<Option<Vec<(String, String)>>, ProviderError> {
        let result = call!(self, "GetRole", self.client.get_role().role_name(name));
        let role = match result {
            Ok(output) => output,
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => return Ok(None),
            Err(error) => return Err(error),
        };
        let Some(role) = role.role() else {
            return Ok(None);
        };
        let tags = role.tags().iter().map(|t| (t.key(), t.value()));
        if path.is_some_and(|path| path != role.path()) {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                Some("NotOwned"),
                format!(
                    "role `{name}` is at path `{}`, not at `{}` as the plan says: refusing to change it; plan again",
                    role.path(),
                    path.unwrap_or_default()
                ),
            ));
        }
        if ownership::aws::owns(role.path(), tags, &self.project) {
            let marks = role
                .tags()
                .iter()
                .filter(|t| ownership::aws::is_revocation_tag(t.key()))
                .map(|t| (t.key().to_string(), t.value().to_string()))
                .collect();
            Ok(Some(marks))
        } else {
            Err(ProviderError::new(
                ErrorClass::Permanent,
                Some("NotOwned"),
                format!(
                    "role `{name}` (path `{}`) is not managed by writ project `{}`: refusing to change it",
                    role.path(),
                    self.project
                ),
            ))
        }
    }

    /// Takes over a role made outside writ, where it is (`adopts`): its
    /// ownership marks first (so the plan's changes to its policies find it
    /// writ's), then the rest as for an update. Only a role no writ project
    /// owns, at the path the plan adopted it at, without a permissions
    /// boundary it did not see, is taken; one this project adopted already
    /// (an interrupted apply) is brought to the plan's state.
    async fn adopt_role(
        &self,
        name: &str,
        before: &Attributes,
        after: &Attributes,
    ) -> Result<(), ProviderError> {
        let result = call!(self, "GetRole", self.client.get_role().role_name(name));
        let role = match result {
            Ok(output) => output.role,
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => None,
            Err(error) => return Err(error),
        };
        let Some(role) = role else {
            return Err(ProviderError::new(
                ErrorClass::Conflict,
                Some("NoSuchEntity"),
                format!("role `{name}` no longer exists: plan again"),
            ));
        };
        let refuse = |why: String| {
            Err(ProviderError::new(
                ErrorClass::Permanent,
                Some("NotOwned"),
                format!("role `{name}` {why}: refusing to adopt it; plan again"),
            ))
        };
        if role.path() != text(after, "path").unwrap_or("/") {
            return refuse(format!(
                "is at path `{}`, not where the plan adopts it",
                role.path()
            ));
        }
        let tag = |key: &str| {
            role.tags()
                .iter()
                .find(|t| t.key() == key)
                .map(|t| t.value())
        };
        let adopted_here = tag(ownership::aws::PROJECT_TAG) == Some(self.project.as_str())
            && tag(ownership::aws::ADOPTED_TAG) == Some("true");
        if let Some(other) = tag(ownership::aws::PROJECT_TAG).filter(|_| !adopted_here) {
            return refuse(format!(
                "is tagged as writ project `{other}`'s without this project's record of an adoption"
            ));
        }
        // What the plan saw is what is taken over: anything that changed
        // since (the trust, a boundary, what is attached, instance
        // profiles) could be something the plan did not judge.
        let boundary = role
            .permissions_boundary()
            .and_then(|b| b.permissions_boundary_arn());
        if boundary != text(before, "permissions_boundary") {
            return refuse("has another permissions boundary than the plan saw".to_string());
        }
        let trust = role
            .assume_role_policy_document()
            .map(crate::decode_document)
            .map(writ_compiler::policy::canonical_owned);
        let planned = before
            .get("assume_role_policy")
            .cloned()
            .map(writ_compiler::policy::canonical_owned);
        if trust != planned {
            return refuse("has another trust policy than the plan saw".to_string());
        }
        let listed = |key: &str| {
            let mut items = listed(before, key);
            items.sort();
            items
        };
        let attached = call!(
            self,
            "ListAttachedRolePolicies",
            self.client.list_attached_role_policies().role_name(name)
        )?;
        let mut live: Vec<String> = attached
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect();
        live.sort();
        if live != listed("attached_policies") || attached.is_truncated() {
            return refuse("has other attached policies than the plan saw".to_string());
        }
        let profiles = call!(
            self,
            "ListInstanceProfilesForRole",
            self.client
                .list_instance_profiles_for_role()
                .role_name(name)
        )?;
        let mut live: Vec<String> = profiles
            .instance_profiles()
            .iter()
            .map(|p| p.instance_profile_name().to_string())
            .collect();
        live.sort();
        if live != listed("instance_profiles") || profiles.is_truncated() {
            return refuse("is in other instance profiles than the plan saw".to_string());
        }
        if !adopted_here {
            // The record of the adoption, before anything else is changed.
            let wanted = tag_map(after);
            let marks: BTreeMap<String, String> = [
                ownership::aws::PROJECT_TAG,
                ownership::aws::AGENT_TAG,
                ownership::aws::ADOPTED_TAG,
            ]
            .into_iter()
            .filter_map(|key| Some((key.to_string(), wanted.get(key)?.clone())))
            .collect();
            call!(
                self,
                "TagRole",
                self.client
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(sdk_tags(&marks)?))
            )?;
        }
        // A revoke that landed meanwhile is kept.
        let marks = self
            .owned_role_at(name, text(after, "path"))
            .await?
            .unwrap_or_default();
        let after = keep_live_revocation(after, &marks, false);
        self.converge_role(name, before, &after).await
    }

    async fn create_role(&self, after: &Attributes) -> Result<(), ProviderError> {
        let name = text(after, "name").unwrap_or_default();
        let tags = tag_map(after);
        let request = self
            .client
            .create_role()
            .role_name(name)
            .path(text(after, "path").unwrap_or("/"))
            .assume_role_policy_document(document(after, "assume_role_policy")?)
            .max_session_duration(
                after
                    .get("max_session_duration")
                    .and_then(Value::as_i64)
                    .unwrap_or(3600) as i32,
            )
            .set_description(text(after, "description").map(str::to_string))
            .set_permissions_boundary(text(after, "permissions_boundary").map(str::to_string))
            .set_tags(Some(sdk_tags(&tags)?));
        match call!(self, "CreateRole", request.clone(), principal_not_ready) {
            Ok(_) => Ok(()),
            // Created by an earlier, interrupted apply: converge it instead.
            Err(error) if IamCode::of(&error) == Some(IamCode::EntityAlreadyExists) => {
                let marks = self
                    .owned_role_at(name, text(after, "path"))
                    .await?
                    .unwrap_or_default();
                let after = keep_live_revocation(after, &marks, false);
                self.converge_role(name, &Attributes::new(), &after).await
            }
            Err(error) => Err(error),
        }
    }

    /// Brings an existing role to `after`: trust, settings, boundary, tags.
    /// The tags (with the digest) come last, so an interruption leaves the
    /// digest stale and the next plan sees what is left to do.
    async fn converge_role(
        &self,
        name: &str,
        before: &Attributes,
        after: &Attributes,
    ) -> Result<(), ProviderError> {
        let differs = |key: &str| before.get(key) != after.get(key);
        // What only takes access away goes first (managed policies and
        // instance profiles attached outside writ), then the trust.
        // Managed policies attached outside writ are detached (never
        // deleted: they may be anyone's). The source attaches none.
        let key = "attached_policies";
        let (was, wanted) = (listed(before, key), listed(after, key));
        for arn in was.iter().filter(|arn| !wanted.contains(arn)) {
            gone_is_done(call!(
                self,
                "DetachRolePolicy",
                self.client
                    .detach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
            ))?;
        }
        // Instance profiles made outside writ lose the role (the profiles
        // themselves are left: they may be anyone's).
        let key = "instance_profiles";
        let (was, wanted) = (listed(before, key), listed(after, key));
        for profile in was.iter().filter(|p| !wanted.contains(p)) {
            gone_is_done(call!(
                self,
                "RemoveRoleFromInstanceProfile",
                self.client
                    .remove_role_from_instance_profile()
                    .role_name(name)
                    .instance_profile_name(profile)
            ))?;
        }
        if differs("assume_role_policy") {
            call!(
                self,
                "UpdateAssumeRolePolicy",
                self.client
                    .update_assume_role_policy()
                    .role_name(name)
                    .policy_document(document(after, "assume_role_policy")?),
                principal_not_ready
            )?;
        }
        if differs("max_session_duration") || differs("description") {
            call!(
                self,
                "UpdateRole",
                self.client
                    .update_role()
                    .role_name(name)
                    .set_max_session_duration(
                        after
                            .get("max_session_duration")
                            .and_then(Value::as_i64)
                            .map(|v| v as i32)
                    )
                    .set_description(text(after, "description").map(str::to_string))
            )?;
        }
        if differs("permissions_boundary") {
            match text(after, "permissions_boundary") {
                Some(arn) => {
                    call!(
                        self,
                        "PutRolePermissionsBoundary",
                        self.client
                            .put_role_permissions_boundary()
                            .role_name(name)
                            .permissions_boundary(arn)
                    )?;
                }
                None => {
                    let result = call!(
                        self,
                        "DeleteRolePermissionsBoundary",
                        self.client
                            .delete_role_permissions_boundary()
                            .role_name(name)
                    );
                    match result {
                        Ok(_) => {}
                        Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => {}
                        Err(error) => return Err(error),
                    }
                }
            }
        }
        let (removed, tags) = tag_changes(before, after)?;
        if !removed.is_empty() {
            call!(
                self,
                "UntagRole",
                self.client
                    .untag_role()
                    .role_name(name)
                    .set_tag_keys(Some(removed.clone()))
            )?;
        }
        if let Some(tags) = tags {
            call!(
                self,
                "TagRole",
                self.client
                    .tag_role()
                    .role_name(name)
                    .set_tags(Some(tags.clone()))
            )?;
        }
        Ok(())
    }

    pub(crate) async fn put_role_policy(
        &self,
        role: &str,
        name: &str,
        document: &str,
    ) -> Result<(), ProviderError> {
        call!(
            self,
            "PutRolePolicy",
            self.client
                .put_role_policy()
                .role_name(role)
                .policy_name(name)
                .policy_document(document)
        )?;
        Ok(())
    }

    pub(crate) async fn delete_role_policy(
        &self,
        role: &str,
        name: &str,
    ) -> Result<(), ProviderError> {
        gone_is_done(call!(
            self,
            "DeleteRolePolicy",
            self.client
                .delete_role_policy()
                .role_name(role)
                .policy_name(name)
        ))
    }

    /// Deletes a role of ours, with what must go first: its inline
    /// policies, attached policies and instance profile memberships.
    async fn delete_role(&self, name: &str, path: Option<&str>) -> Result<(), ProviderError> {
        if self.owned_role_at(name, path).await?.is_none() {
            return Ok(());
        }
        let inline = call!(
            self,
            "ListRolePolicies",
            self.client.list_role_policies().role_name(name)
        )?;
        // The revocation's session deny goes last, right before the role:
        // a delete that stops halfway leaves the role revoked.
        for policy in inline
            .policy_names()
            .iter()
            .filter(|p| p.as_str() != ownership::aws::REVOKE_POLICY)
        {
            self.delete_role_policy(name, policy).await?;
        }
        let attached = call!(
            self,
            "ListAttachedRolePolicies",
            self.client.list_attached_role_policies().role_name(name)
        )?;
        for policy in attached.attached_policies() {
            if let Some(arn) = policy.policy_arn() {
                call!(
                    self,
                    "DetachRolePolicy",
                    self.client
                        .detach_role_policy()
                        .role_name(name)
                        .policy_arn(arn)
                )?;
            }
        }
        let profiles = call!(
            self,
            "ListInstanceProfilesForRole",
            self.client
                .list_instance_profiles_for_role()
                .role_name(name)
        )?;
        for profile in profiles.instance_profiles() {
            call!(
                self,
                "RemoveRoleFromInstanceProfile",
                self.client
                    .remove_role_from_instance_profile()
                    .role_name(name)
                    .instance_profile_name(profile.instance_profile_name())
            )?;
        }
        if inline
            .policy_names()
            .iter()
            .any(|p| p == ownership::aws::REVOKE_POLICY)
        {
            self.delete_role_policy(name, ownership::aws::REVOKE_POLICY)
                .await?;
        }
        gone_is_done(call!(
            self,
            "DeleteRole",
            self.client.delete_role().role_name(name)
        ))
    }

    /// Is the managed policy writ's? `Ok(false)` when it does not exist.
    async fn ensure_owned_policy(&self, name: &str) -> Result<bool, ProviderError> {
        let arn = self.policy_arn(name);
        let policy = match call!(self, "GetPolicy", self.client.get_policy().policy_arn(&arn)) {
            Ok(output) => output,
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => return Ok(false),
            Err(error) => return Err(error),
        };
        let tags = call!(
            self,
            "ListPolicyTags",
            self.client.list_policy_tags().policy_arn(&arn)
        )?;
        let path = policy.policy().and_then(|p| p.path()).unwrap_or("/");
        let tags = tags.tags().iter().map(|t| (t.key(), t.value()));
        if ownership::aws::owns(path, tags, &self.project) {
            Ok(true)
        } else {
            Err(ProviderError::new(
                ErrorClass::Permanent,
                Some("NotOwned"),
                format!(
                    "policy `{arn}` is not managed by writ project `{}`: refusing to change it",
                    self.project
                ),
            ))
        }
    }

    async fn create_policy(&self, after: &Attributes) -> Result<(), ProviderError> {
        let name = text(after, "name").unwrap_or_default();
        let request = self
            .client
            .create_policy()
            .policy_name(name)
            .path(text(after, "path").unwrap_or("/"))
            .policy_document(document(after, "policy")?)
            .set_description(text(after, "description").map(str::to_string))
            .set_tags(Some(sdk_tags(&tag_map(after))?));
        match call!(self, "CreatePolicy", request.clone()) {
            Ok(_) => Ok(()),
            Err(error) if IamCode::of(&error) == Some(IamCode::EntityAlreadyExists) => {
                self.ensure_owned_policy(name).await?;
                self.converge_policy(name, &Attributes::new(), after).await
            }
            Err(error) => Err(error),
        }
    }

    /// A new default version of the document (deleting the oldest other
    /// version when IAM's limit of five is reached), then the tags.
    async fn converge_policy(
        &self,
        name: &str,
        before: &Attributes,
        after: &Attributes,
    ) -> Result<(), ProviderError> {
        let arn = self.policy_arn(name);
        if before.get("policy") != after.get("policy") {
            let versions = call!(
                self,
                "ListPolicyVersions",
                self.client.list_policy_versions().policy_arn(&arn)
            )?;
            let mut others: Vec<_> = versions
                .versions()
                .iter()
                .filter(|v| !v.is_default_version())
                .collect();
            if versions.versions().len() >= 5 {
                others.sort_by_key(|v| v.create_date().map(|d| d.secs()));
                if let Some(oldest) = others.first().and_then(|v| v.version_id()) {
                    call!(
                        self,
                        "DeletePolicyVersion",
                        self.client
                            .delete_policy_version()
                            .policy_arn(&arn)
                            .version_id(oldest)
                    )?;
                }
            }
            call!(
                self,
                "CreatePolicyVersion",
                self.client
                    .create_policy_version()
                    .policy_arn(&arn)
                    .policy_document(document(after, "policy")?)
                    .set_as_default(true)
            )?;
        }
        let (removed, tags) = tag_changes(before, after)?;
        if !removed.is_empty() {
            call!(
                self,
                "UntagPolicy",
                self.client
                    .untag_policy()
                    .policy_arn(&arn)
                    .set_tag_keys(Some(removed.clone()))
            )?;
        }
        if let Some(tags) = tags {
            call!(
                self,
                "TagPolicy",
                self.client
                    .tag_policy()
                    .policy_arn(&arn)
                    .set_tags(Some(tags.clone()))
            )?;
        }
        Ok(())
    }

    async fn delete_policy(&self, name: &str) -> Result<(), ProviderError> {
        if !self.ensure_owned_policy(name).await? {
            return Ok(());
        }
        let arn = self.policy_arn(name);
        let versions = call!(
            self,
            "ListPolicyVersions",
            self.client.list_policy_versions().policy_arn(&arn)
        )?;
        for version in versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
        {
            if let Some(id) = version.version_id() {
                call!(
                    self,
                    "DeletePolicyVersion",
                    self.client
                        .delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(id)
                )?;
            }
        }
        gone_is_done(call!(
            self,
            "DeletePolicy",
            self.client.delete_policy().policy_arn(&arn)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role() -> Attributes {
        BTreeMap::from([
            (
                "assume_role_policy".to_string(),
                serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}),
            ),
            (
                "tags".to_string(),
                serde_json::json!({"writ:project": "acme"}),
            ),
        ])
    }

    #[test]
    fn an_apply_keeps_a_revocation_made_after_its_plan() {
        let after = role();
        assert_eq!(*keep_live_revocation(&after, &[], false), after);
        let marks = [
            (
                ownership::aws::REVOKED_TAG.to_string(),
                "2026-11-29T07:00:00Z".to_string(),
            ),
            (
                ownership::aws::REVOKED_BY_TAG.to_string(),
                "oncall".to_string(),
            ),
        ];
        let kept = keep_live_revocation(&after, &marks, false);
        let statements = kept["assume_role_policy"]["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert!(statements.iter().any(ownership::aws::is_revoke_statement));
        assert_eq!(
            kept["tags"][ownership::aws::REVOKED_TAG],
            "2026-11-29T07:00:00Z"
        );
        assert_eq!(kept["tags"][ownership::aws::REVOKED_BY_TAG], "oncall");
        // Only the session deny left (an older revoke): the trust closes.
        let kept = keep_live_revocation(&after, &[], true);
        assert!(kept["assume_role_policy"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .any(ownership::aws::is_revoke_statement));
        assert!(kept["tags"].get(ownership::aws::REVOKED_TAG).is_none());
        // Kept once, however often.
        let twice = keep_live_revocation(&kept, &marks[..1], true);
        assert_eq!(
            twice["assume_role_policy"]["Statement"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }
}
