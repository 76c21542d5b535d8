//! Reading an account: roles with their trust, inline policies, tags and
//! boundaries, writ's managed policies, IAM users and their access keys.
//! Whole-account calls by the page, not one call per role.

use crate::{call, decode_document, AwsProvider};
use aws_sdk_iam::types::EntityType;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use writ_compiler::resource::{Resource, ResourceKind};
use writ_provider_core::ProviderError;

/// The most IAM returns in one page.
const PAGE: i32 = 1000;

fn date(value: Option<&aws_sdk_iam::primitives::DateTime>) -> Value {
    value
        .and_then(|d| {
            d.fmt(aws_sdk_iam::primitives::DateTimeFormat::DateTime)
                .ok()
        })
        .map_or(Value::Null, Value::String)
}

fn tags(list: &[aws_sdk_iam::types::Tag]) -> Value {
    Value::Object(
        list.iter()
            .map(|t| (t.key().to_string(), Value::String(t.value().to_string())))
            .collect::<Map<String, Value>>(),
    )
}

impl AwsProvider {
    pub(crate) async fn observe_all(&self) -> Result<Vec<Resource>, ProviderError> {
        let mut resources = Vec::new();
        let settings = self.role_settings().await?;
        let mut marker: Option<String> = None;
        loop {
            let page = call!(
                self,
                "GetAccountAuthorizationDetails",
                self.client
                    .get_account_authorization_details()
                    .filter(EntityType::Role)
                    .filter(EntityType::LocalManagedPolicy)
                    .max_items(PAGE)
                    .set_marker(marker.clone())
            )?;
            for role in page.role_detail_list() {
                self.role(role, &settings, &mut resources)?;
            }
            for policy in page.policies() {
                if let Some(resource) = self.managed_policy(policy).await? {
                    resources.push(resource);
                }
            }
            marker = crate::next_page(
                "GetAccountAuthorizationDetails",
                page.is_truncated(),
                page.marker(),
                marker.as_deref(),
            )?;
            if marker.is_none() {
                break;
            }
        }
        self.users(&mut resources).await?;
        resources.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(resources)
    }

    /// `MaxSessionDuration` and `Description` by role name: the account
    /// authorization details leave them out, `ListRoles` has them.
    async fn role_settings(&self) -> Result<HashMap<String, (i32, Option<String>)>, ProviderError> {
        let mut settings = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call!(
                self,
                "ListRoles",
                self.client
                    .list_roles()
                    .max_items(PAGE)
                    .set_marker(marker.clone())
            )?;
            for role in page.roles() {
                settings.insert(
                    role.role_name().to_string(),
                    (
                        role.max_session_duration().unwrap_or(3600),
                        role.description().map(str::to_string),
                    ),
                );
            }
            marker = crate::next_page(
                "ListRoles",
                page.is_truncated(),
                page.marker(),
                marker.as_deref(),
            )?;
            if marker.is_none() {
                break;
            }
        }
        Ok(settings)
    }

    fn role(
        &self,
        role: &aws_sdk_iam::types::RoleDetail,
        settings: &HashMap<String, (i32, Option<String>)>,
        out: &mut Vec<Resource>,
    ) -> Result<(), ProviderError> {
        let Some(name) = role.role_name() else {
            return Ok(());
        };
        let (max_session, description) = settings.get(name).cloned().unwrap_or((3600, None));
        let mut attributes = BTreeMap::new();
        attributes.insert("name".to_string(), json!(name));
        attributes.insert("path".to_string(), json!(role.path().unwrap_or("/")));
        attributes.insert(
            "assume_role_policy".to_string(),
            role.assume_role_policy_document()
                .map_or(Value::Null, decode_document),
        );
        attributes.insert("max_session_duration".to_string(), json!(max_session));
        attributes.insert(
            "permissions_boundary".to_string(),
            role.permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn())
                .map_or(Value::Null, |arn| json!(arn)),
        );
        attributes.insert(
            "description".to_string(),
            description.map_or(Value::Null, Value::String),
        );
        attributes.insert("tags".to_string(), tags(role.tags()));
        // Managed policies attached to the role: writ attaches none, so any
        // here were attached outside writ, and widen what the role may do.
        let mut attached: Vec<&str> = role
            .attached_managed_policies()
            .iter()
            .filter_map(|p| p.policy_arn())
            .collect();
        attached.sort_unstable();
        if !attached.is_empty() {
            attributes.insert("attached_policies".to_string(), json!(attached));
        }
        // Instance profiles holding the role: writ makes none, so any here
        // were made outside writ, and let EC2 instances ask for the role's
        // sessions (as far as its trust lets them). Read with the role, at
        // no extra request.
        let mut profiles: Vec<&str> = role
            .instance_profile_list()
            .iter()
            .map(|p| p.instance_profile_name())
            .collect();
        profiles.sort_unstable();
        if !profiles.is_empty() {
            attributes.insert("instance_profiles".to_string(), json!(profiles));
        }
        attributes.insert("created".to_string(), date(role.create_date()));
        if let Some(arn) = role.arn() {
            attributes.insert("arn".to_string(), json!(arn));
        }
        for inline in role.role_policy_list() {
            let Some(policy_name) = inline.policy_name() else {
                continue;
            };
            out.push(Resource {
                address: writ_compiler::address::aws_role_policy(&self.address, name, policy_name),
                provider: self.address.clone(),
                kind: ResourceKind::AwsRolePolicy,
                agent: None,
                attributes: BTreeMap::from([
                    ("role".to_string(), json!(name)),
                    ("name".to_string(), json!(policy_name)),
                    (
                        "policy".to_string(),
                        inline
                            .policy_document()
                            .map_or(Value::Null, decode_document),
                    ),
                ])
                .into(),
            });
        }
        out.push(Resource {
            address: writ_compiler::address::aws_role(&self.address, name),
            provider: self.address.clone(),
            kind: ResourceKind::AwsRole,
            agent: None,
            attributes: attributes.into(),
        });
        Ok(())
    }

    /// A customer-managed policy. Only writ's (under `/writ/`) matter to the
    /// plan; their tags need one more call each, so others are skipped.
    async fn managed_policy(
        &self,
        policy: &aws_sdk_iam::types::ManagedPolicyDetail,
    ) -> Result<Option<Resource>, ProviderError> {
        let Some(arn) = policy.arn() else {
            return Ok(None);
        };
        // The name is the ARN's last part; some servers (moto) leave the
        // `PolicyName` element out of the account details.
        let name = policy
            .policy_name()
            .unwrap_or_else(|| arn.rsplit('/').next().unwrap_or(arn));
        let path = policy.path().unwrap_or("/");
        if !path.starts_with("/writ/") {
            return Ok(None);
        }
        let document = policy
            .policy_version_list()
            .iter()
            .find(|v| v.is_default_version())
            .and_then(|v| v.document())
            .map_or(Value::Null, decode_document);
        let tag_list = call!(
            self,
            "ListPolicyTags",
            self.client.list_policy_tags().policy_arn(arn)
        )?;
        Ok(Some(Resource {
            address: writ_compiler::address::aws_managed_policy(&self.address, name),
            provider: self.address.clone(),
            kind: ResourceKind::AwsManagedPolicy,
            agent: None,
            attributes: BTreeMap::from([
                ("name".to_string(), json!(name)),
                ("path".to_string(), json!(path)),
                ("policy".to_string(), document),
                (
                    "description".to_string(),
                    policy.description().map_or(Value::Null, |d| json!(d)),
                ),
                ("tags".to_string(), tags(tag_list.tags())),
                ("arn".to_string(), json!(arn)),
                ("created".to_string(), date(policy.create_date())),
            ])
            .into(),
        }))
    }

    /// IAM users and their access keys: inventoried, never changed.
    async fn users(&self, out: &mut Vec<Resource>) -> Result<(), ProviderError> {
        let mut marker: Option<String> = None;
        loop {
            let page = call!(
                self,
                "ListUsers",
                self.client
                    .list_users()
                    .max_items(PAGE)
                    .set_marker(marker.clone())
            )?;
            for user in page.users() {
                let name = user.user_name();
                out.push(Resource {
                    address: format!("{}/user/{name}", self.address),
                    provider: self.address.clone(),
                    kind: ResourceKind::AwsUser,
                    agent: None,
                    attributes: BTreeMap::from([
                        ("name".to_string(), json!(name)),
                        ("path".to_string(), json!(user.path())),
                        ("created".to_string(), date(Some(user.create_date()))),
                    ])
                    .into(),
                });
                let keys = call!(
                    self,
                    "ListAccessKeys",
                    self.client.list_access_keys().user_name(name)
                )?;
                for key in keys.access_key_metadata() {
                    let Some(id) = key.access_key_id() else {
                        continue;
                    };
                    let used = call!(
                        self,
                        "GetAccessKeyLastUsed",
                        self.client.get_access_key_last_used().access_key_id(id)
                    )?;
                    let last_used =
                        date(used.access_key_last_used().and_then(|u| u.last_used_date()));
                    out.push(Resource {
                        address: format!("{}/access-key/{id}", self.address),
                        provider: self.address.clone(),
                        kind: ResourceKind::AwsAccessKey,
                        agent: None,
                        attributes: BTreeMap::from([
                            ("id".to_string(), json!(id)),
                            ("user".to_string(), json!(name)),
                            (
                                "status".to_string(),
                                json!(key.status().map_or("Active", |s| s.as_str())),
                            ),
                            ("created".to_string(), date(key.create_date())),
                            ("last_used".to_string(), last_used),
                        ])
                        .into(),
                    });
                }
            }
            marker = crate::next_page(
                "ListUsers",
                page.is_truncated(),
                page.marker(),
                marker.as_deref(),
            )?;
            if marker.is_none() {
                break;
            }
        }
        Ok(())
    }
}
