//! Reading an account: roles with their trust, inline policies, tags and
//! boundaries, writ's managed policies, IAM users and their access keys.
//! Whole-account calls by the page, not one call per role.

use crate::{call, decode_document, AwsProvider, IamCode};
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

/// A user's own access, as attributes: its inline policies by name
/// (`policies`), the managed policies attached to it and its groups (what
/// those allow is not read). Only those it has.
fn user_attributes(user: &aws_sdk_iam::types::UserDetail) -> Vec<(String, Value)> {
    let mut attributes = Vec::new();
    let policies: Map<String, Value> = user
        .user_policy_list()
        .iter()
        .filter_map(|p| {
            Some((
                p.policy_name()?.to_string(),
                p.policy_document().map_or(Value::Null, decode_document),
            ))
        })
        .collect();
    if !policies.is_empty() {
        attributes.push(("policies".to_string(), Value::Object(policies)));
    }
    let mut attached: Vec<&str> = user
        .attached_managed_policies()
        .iter()
        .filter_map(|p| p.policy_arn())
        .collect();
    attached.sort_unstable();
    if !attached.is_empty() {
        attributes.push(("attached_policies".to_string(), json!(attached)));
    }
    let mut groups: Vec<&str> = user.group_list().iter().map(String::as_str).collect();
    groups.sort_unstable();
    if !groups.is_empty() {
        attributes.push(("groups".to_string(), json!(groups)));
    }
    attributes
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
        // Each IAM user's own policies and groups, by name: what its keys
        // may do beside assuming roles.
        let mut user_access: HashMap<String, Vec<(String, Value)>> = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call!(
                self,
                "GetAccountAuthorizationDetails",
                self.client
                    .get_account_authorization_details()
                    .filter(EntityType::Role)
                    .filter(EntityType::User)
                    .filter(EntityType::LocalManagedPolicy)
                    .max_items(PAGE)
                    .set_marker(marker.clone())
            )?;
            for role in page.role_detail_list() {
                self.role(role, &settings, &mut resources)?;
            }
            for user in page.user_detail_list() {
                if let Some(name) = user.user_name() {
                    user_access.insert(name.to_string(), user_attributes(user));
                }
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
        for user in resources
            .iter_mut()
            .filter(|r| r.kind == ResourceKind::AwsUser)
        {
            let name = user.string("name").unwrap_or_default().to_string();
            for (key, value) in user_access.remove(&name).unwrap_or_default() {
                user.attributes.insert(key, value);
            }
        }
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

    /// A customer-managed policy: writ's (under `/writ/`) with their tags
    /// (one more call each), for the plan; someone else's only when attached
    /// to a role or user (what it allows, for the access graph and `writ
    /// import`), without tags; unattached ones are left out.
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
        let writs = path.starts_with("/writ/");
        if !writs && policy.attachment_count().unwrap_or(0) == 0 {
            return Ok(None);
        }
        let document = policy
            .policy_version_list()
            .iter()
            .find(|v| v.is_default_version())
            .and_then(|v| v.document())
            .map_or(Value::Null, decode_document);
        let mut attributes = BTreeMap::from([
            ("name".to_string(), json!(name)),
            ("path".to_string(), json!(path)),
            ("policy".to_string(), document),
            ("arn".to_string(), json!(arn)),
        ]);
        if writs {
            let tag_list = call!(
                self,
                "ListPolicyTags",
                self.client.list_policy_tags().policy_arn(arn)
            )?;
            attributes.insert(
                "description".to_string(),
                policy.description().map_or(Value::Null, |d| json!(d)),
            );
            attributes.insert("tags".to_string(), tags(tag_list.tags()));
            attributes.insert("created".to_string(), date(policy.create_date()));
        }
        Ok(Some(Resource {
            address: writ_compiler::address::aws_managed_policy(&self.address, name),
            provider: self.address.clone(),
            kind: ResourceKind::AwsManagedPolicy,
            agent: None,
            attributes: attributes.into(),
        }))
    }

    /// IAM users and their access keys: inventoried, never changed. Read
    /// from IAM's credential report, a constant number of requests however
    /// many users there are; each user's keys are listed only where a
    /// finding must name a key (an active key older than the maximum key
    /// age). When the report cannot be had (no permission, or IAM failing
    /// to make one within the run's retry budget), user by user.
    async fn users(&self, out: &mut Vec<Resource>) -> Result<(), ProviderError> {
        // A report that cannot be had, or read, is no inventory: then user
        // by user.
        let table = self
            .credential_report()
            .await
            .and_then(|report| credential_table(&report));
        match table {
            Ok(table) => self.users_from_report(&table, out).await,
            Err(_) => self.users_one_by_one(out).await,
        }
    }

    /// The credential report as CSV. IAM makes a new one only when the
    /// last is four hours old or more; until it is ready, reading it says
    /// so, and is tried again within the run's retry budget.
    async fn credential_report(&self) -> Result<String, ProviderError> {
        call!(
            self,
            "GenerateCredentialReport",
            self.client.generate_credential_report()
        )?;
        let not_ready = |error: &ProviderError| {
            matches!(
                error.code.as_deref(),
                Some("ReportInProgress" | "ReportNotPresent")
            )
        };
        let report = call!(
            self,
            "GetCredentialReport",
            self.client.get_credential_report(),
            not_ready
        )?;
        let content = report
            .content()
            .map(|blob| blob.as_ref().to_vec())
            .unwrap_or_default();
        String::from_utf8(content)
            .map_err(|_| ProviderError::permanent("the credential report is not UTF-8 text"))
    }

    async fn users_from_report(
        &self,
        table: &[ReportUser],
        out: &mut Vec<Resource>,
    ) -> Result<(), ProviderError> {
        for user in table {
            out.push(Resource {
                address: writ_compiler::address::aws_user(&self.address, &user.name),
                provider: self.address.clone(),
                kind: ResourceKind::AwsUser,
                agent: None,
                attributes: BTreeMap::from([
                    ("name".to_string(), json!(user.name)),
                    ("path".to_string(), json!(user.path)),
                    ("created".to_string(), json!(user.created)),
                ])
                .into(),
            });
            // Keys a finding names get their IDs, from the user's keys.
            let flagged = user.keys.iter().any(|key| {
                key.active
                    && self
                        .flag_keys_created_before
                        .as_deref()
                        .is_some_and(|cutoff| key.created.get(..10).unwrap_or("") < cutoff)
            });
            let listed = if flagged {
                match call!(
                    self,
                    "ListAccessKeys",
                    self.client.list_access_keys().user_name(&user.name)
                ) {
                    Ok(listed) => Some(listed),
                    // Deleted since the report was made: its keys keep
                    // their slots.
                    Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => None,
                    Err(error) => return Err(error),
                }
            } else {
                None
            };
            let ids: Vec<(String, String)> = if let Some(listed) = listed {
                listed
                    .access_key_metadata()
                    .iter()
                    .filter_map(|key| {
                        let created = date(key.create_date());
                        Some((
                            created.as_str()?.to_string(),
                            key.access_key_id()?.to_string(),
                        ))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            for key in &user.keys {
                // The report gives creation to the second; so does IAM. Two
                // keys made in the same second cannot be told apart: both
                // keep their slots rather than risk one ID for both.
                let mut same_second = ids
                    .iter()
                    .filter(|(created, _)| created.get(..19) == key.created.get(..19));
                let id = match (same_second.next(), same_second.next()) {
                    (Some((_, id)), None) => Some(id.clone()),
                    _ => None,
                };
                let mut attributes = BTreeMap::from([
                    ("user".to_string(), json!(user.name)),
                    ("slot".to_string(), json!(key.slot)),
                    (
                        "status".to_string(),
                        json!(if key.active { "Active" } else { "Inactive" }),
                    ),
                    ("created".to_string(), json!(key.created)),
                    ("last_used".to_string(), json!(key.last_used)),
                ]);
                let address = match &id {
                    Some(id) => {
                        attributes.insert("id".to_string(), json!(id));
                        format!("{}/access-key/{id}", self.address)
                    }
                    None => format!("{}/access-key/{}/{}", self.address, user.name, key.slot),
                };
                out.push(Resource {
                    address,
                    provider: self.address.clone(),
                    kind: ResourceKind::AwsAccessKey,
                    agent: None,
                    attributes: attributes.into(),
                });
            }
        }
        Ok(())
    }

    /// Users and keys one request (or two) at a time: when the credential
    /// report cannot be had.
    async fn users_one_by_one(&self, out: &mut Vec<Resource>) -> Result<(), ProviderError> {
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
                    address: writ_compiler::address::aws_user(&self.address, name),
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

/// One user of the credential report.
struct ReportUser {
    name: String,
    path: String,
    created: String,
    keys: Vec<ReportKey>,
}

/// One access key of the report: by slot (`1` or `2`), without its ID,
/// which the report does not give.
struct ReportKey {
    slot: u8,
    active: bool,
    created: String,
    last_used: Option<String>,
}

/// The report's rows, by its header's names; the root account's row left
/// out (it is no IAM user). A report without the columns writ reads is an
/// error rather than an inventory with nothing in it.
fn credential_table(report: &str) -> Result<Vec<ReportUser>, ProviderError> {
    let mut lines = report.lines().filter(|l| !l.trim().is_empty());
    let header = csv_fields(
        lines
            .next()
            .unwrap_or_default()
            .trim_start_matches('\u{feff}'),
    );
    let column = |name: &str| -> Result<usize, ProviderError> {
        header.iter().position(|h| h == name).ok_or_else(|| {
            ProviderError::permanent(format!("the credential report has no `{name}` column"))
        })
    };
    let (user, arn, created) = (
        column("user")?,
        column("arn")?,
        column("user_creation_time")?,
    );
    let mut slots = Vec::new();
    for slot in [1u8, 2] {
        slots.push((
            slot,
            column(&format!("access_key_{slot}_active"))?,
            column(&format!("access_key_{slot}_last_rotated"))?,
            column(&format!("access_key_{slot}_last_used_date"))?,
        ));
    }
    // `2014-09-01T22:28:48+00:00` as IAM's other replies write it.
    let instant = |text: &str| -> Option<String> {
        let text = text.trim();
        if text.is_empty() || text.contains('/') || !text.starts_with(|c: char| c.is_ascii_digit())
        {
            return None;
        }
        Some(
            text.strip_suffix("+00:00")
                .map_or_else(|| text.to_string(), |t| format!("{t}Z")),
        )
    };
    let mut users = Vec::new();
    for line in lines {
        let fields = csv_fields(line);
        let field = |index: usize| fields.get(index).map_or("", String::as_str);
        let name = field(user);
        if name.is_empty() || name == "<root_account>" {
            continue;
        }
        // `arn:aws:iam::123456789012:user/division/name`: the path between.
        let path = field(arn)
            .split_once(":user")
            .and_then(|(_, rest)| Some(&rest[..=rest.rfind('/')?]))
            .unwrap_or("/")
            .to_string();
        let keys = slots
            .iter()
            .filter_map(|&(slot, active, rotated, used)| {
                Some(ReportKey {
                    slot,
                    active: field(active) == "true",
                    created: instant(field(rotated))?,
                    last_used: instant(field(used)),
                })
            })
            .collect();
        users.push(ReportUser {
            name: name.to_string(),
            path,
            created: instant(field(created)).unwrap_or_default(),
            keys,
        });
    }
    Ok(users)
}

/// One CSV line's fields: commas separate, double quotes enclose a field
/// that holds them (IAM user names may hold commas), `""` is a quote.
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credential_report_is_read_by_its_header() {
        let report = "user,arn,user_creation_time,password_enabled,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date\n\
<root_account>,arn:aws:iam::1:root,2020-01-01T00:00:00+00:00,not_supported,false,N/A,N/A,false,N/A,N/A\n\
alice,arn:aws:iam::1:user/alice,2021-02-03T04:05:06+00:00,true,true,2021-02-03T04:05:07+00:00,2026-11-27T10:00:00+00:00,false,2022-01-01T00:00:00+00:00,N/A\n\
\"ops,ci\",arn:aws:iam::1:user/team/ops/\"ops,ci\",2020-05-05T00:00:00+00:00,false,false,N/A,N/A,false,N/A,N/A\n";
        let users = credential_table(report).unwrap();
        assert_eq!(users.len(), 2, "the root account is no user");
        let alice = &users[0];
        assert_eq!((alice.name.as_str(), alice.path.as_str()), ("alice", "/"));
        assert_eq!(alice.created, "2021-02-03T04:05:06Z");
        assert_eq!(alice.keys.len(), 2);
        assert!(alice.keys[0].active);
        assert_eq!(
            alice.keys[0].last_used.as_deref(),
            Some("2026-11-27T10:00:00Z")
        );
        assert_eq!((alice.keys[1].slot, alice.keys[1].active), (2, false));
        assert_eq!(alice.keys[1].last_used, None);
        assert_eq!(users[1].name, "ops,ci");
        assert_eq!(users[1].path, "/team/ops/");
        assert!(users[1].keys.is_empty());
        assert!(
            credential_table("user,arn\nalice,arn\n").is_err(),
            "columns missing"
        );
        // A byte-order mark before the header, and CRLF line ends.
        let marked = format!("\u{feff}{}", report.replace('\n', "\r\n"));
        assert_eq!(credential_table(&marked).unwrap().len(), 2);
    }
}
