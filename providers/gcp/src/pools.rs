//! Workload identity pools: writ's pool for GitHub's tokens and its
//! providers, one per owner of repositories (IAM v1
//! `projects.locations.workloadIdentityPools` and `…providers`).
//!
//! Every change is a long-running operation, polled until done. A deleted
//! pool or provider stays 30 days (its id taken): a create that meets one of
//! writ's, deleted, undeletes it and sets it as the source says.

use super::GcpProvider;
use serde_json::{json, Value};
use std::time::Duration;
use writ_compiler::ownership;
use writ_compiler::plan::{Action, Change};
use writ_compiler::resource::{Resource, ResourceKind};
use writ_provider_core::ProviderError;

/// What was read of the project's workload identity pools.
pub(super) struct Pools {
    /// The pools and providers, deleted ones left out.
    pub found: Vec<Resource>,
    /// This project's deleted providers, by address: their mapping and
    /// condition (what they were bound to).
    pub deleted: serde_json::Map<String, Value>,
}

/// How many times an operation is polled before writ gives up on it.
const POLLS: u32 = 40;

impl GcpProvider {
    fn pools_url(&self) -> String {
        format!(
            "{}/v1/projects/{}/locations/global/workloadIdentityPools",
            self.endpoints.iam, self.gcp_project
        )
    }

    fn v1(&self, name: &str) -> String {
        format!("{}/v1/{name}", self.endpoints.iam)
    }

    /// Every page of a list, the items under `key`.
    async fn pages(&self, url: &str, key: &str, what: &str) -> Result<Vec<Value>, ProviderError> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let join = if url.contains('?') { '&' } else { '?' };
            let page_url = match &token {
                Some(token) => {
                    format!("{url}{join}pageSize=50&pageToken={}", super::encoded(token))
                }
                None => format!("{url}{join}pageSize=50"),
            };
            let page = self.call(http::Method::GET, &page_url, None, what).await?;
            items.extend(page[key].as_array().into_iter().flatten().cloned());
            token = page["nextPageToken"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// The pools that carry a writ record (this project's and others'), or
    /// hold this project's pool id, and every provider in them: a provider
    /// someone added to writ's pool
    /// could map the attributes writ's bindings trust, so it is read (and
    /// listed as not writ's) too. Deleted ones are left out (they grant
    /// nothing, and a create that meets one undeletes it), but for what
    /// this project's deleted providers were bound to: a provider made again
    /// keeps the ids it had (see `lower::gcp::bind`).
    pub(super) async fn observe_pools(&self) -> Result<Pools, ProviderError> {
        let mut found = Vec::new();
        let mut deleted = serde_json::Map::new();
        let pools = self
            .pages(
                &format!("{}?showDeleted=true", self.pools_url()),
                "workloadIdentityPools",
                "listing the project's workload identity pools",
            )
            .await?;
        let ours = writ_compiler::lower::gcp::pool_id(&self.project);
        for pool in pools {
            let description = pool["description"].as_str().unwrap_or_default();
            let name = pool["name"].as_str().unwrap_or_default().to_string();
            let pool_id = last(&name).to_string();
            // Writ's records, and whatever holds this project's pool id (a
            // conflict the plan shows).
            if ownership::gcp::read_shared(description).is_none() && pool_id != ours {
                continue;
            }
            let pool_deleted = is_deleted(&pool);
            if pool_deleted && pool_id != ours {
                continue;
            }
            if !pool_deleted {
                found.push(self.resource(
                    format!("{}/workloadIdentityPools/{pool_id}", self.address),
                    ResourceKind::GcpWorkloadIdentityPool,
                    vec![
                        ("pool_id", json!(pool_id)),
                        ("display_name", text(&pool, "displayName")),
                        ("description", json!(description)),
                        (
                            "disabled",
                            json!(pool["disabled"].as_bool().unwrap_or(false)),
                        ),
                    ],
                ));
            }
            let providers = self
                .pages(
                    &format!("{}/providers?showDeleted=true", self.v1(&name)),
                    "workloadIdentityPoolProviders",
                    &format!("listing the providers of workload identity pool `{pool_id}`"),
                )
                .await?;
            for provider in &providers {
                let provider_id = last(provider["name"].as_str().unwrap_or_default());
                if pool_deleted || is_deleted(provider) {
                    // This project's own, deleted: what it was bound to.
                    let description = provider["description"].as_str().unwrap_or_default();
                    if pool_id == ours
                        && ownership::gcp::read_shared(description) == Some(self.project.as_str())
                    {
                        deleted.insert(
                            format!(
                                "{}/workloadIdentityPools/{pool_id}/providers/{provider_id}",
                                self.address
                            ),
                            json!({
                                "attribute_mapping": provider["attributeMapping"],
                                "attribute_condition": provider["attributeCondition"],
                            }),
                        );
                    }
                    continue;
                }
                let mut attributes = vec![
                    ("pool_id", json!(pool_id)),
                    ("provider_id", json!(provider_id)),
                    ("display_name", text(provider, "displayName")),
                    ("description", text(provider, "description")),
                    (
                        "disabled",
                        json!(provider["disabled"].as_bool().unwrap_or(false)),
                    ),
                    ("issuer_uri", text(&provider["oidc"], "issuerUri")),
                    ("attribute_condition", text(provider, "attributeCondition")),
                    (
                        "attribute_mapping",
                        match &provider["attributeMapping"] {
                            Value::Object(map) => Value::Object(map.clone()),
                            _ => json!({}),
                        },
                    ),
                ];
                // Only when set: writ sets none (the audience is then the
                // provider's own name), so any is a difference.
                if let Some(audiences) = provider["oidc"]["allowedAudiences"]
                    .as_array()
                    .filter(|a| !a.is_empty())
                {
                    attributes.push(("allowed_audiences", json!(audiences)));
                }
                // Keys uploaded in place of the issuer's: whoever holds them
                // signs tokens the provider takes. Writ sets none.
                if let Some(keys) = provider["oidc"]["jwksJson"]
                    .as_str()
                    .filter(|k| !k.is_empty())
                {
                    attributes.push(("jwks_json", json!(keys)));
                }
                if provider.get("saml").is_some()
                    || provider.get("aws").is_some()
                    || provider.get("x509").is_some()
                {
                    attributes.push(("not_oidc", json!(true)));
                }
                found.push(self.resource(
                    format!(
                        "{}/workloadIdentityPools/{pool_id}/providers/{provider_id}",
                        self.address
                    ),
                    ResourceKind::GcpWorkloadIdentityPoolProvider,
                    attributes,
                ));
            }
        }
        Ok(Pools { found, deleted })
    }

    fn resource(
        &self,
        address: String,
        kind: ResourceKind,
        attributes: Vec<(&str, Value)>,
    ) -> Resource {
        Resource {
            address,
            provider: self.address.clone(),
            kind,
            agent: None,
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into(),
        }
    }

    /// Waits for a long-running operation to be done; its error, if it
    /// ended in one.
    async fn finish(&self, operation: Value, what: &str) -> Result<(), ProviderError> {
        let mut operation = operation;
        let mut delay = Duration::from_millis(100);
        for _ in 0..POLLS {
            if operation["done"].as_bool() == Some(true) {
                if let Some(error) = operation.get("error").filter(|e| !e.is_null()) {
                    return Err(ProviderError::permanent(format!(
                        "{what}: GCP's operation ended in error {}: {}",
                        error["code"],
                        error["message"].as_str().unwrap_or("no message")
                    )));
                }
                return Ok(());
            }
            let Some(name) = operation["name"].as_str().map(str::to_string) else {
                return Err(ProviderError::permanent(format!(
                    "{what}: GCP answered neither a finished operation nor one to wait for"
                )));
            };
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
            operation = self
                .call(
                    http::Method::GET,
                    &self.v1(&name),
                    None,
                    &format!("{what} (waiting for operation `{name}`)"),
                )
                .await?;
        }
        Err(ProviderError::new(
            writ_provider_core::ErrorClass::Transient,
            None,
            format!("{what}: GCP's operation was not done after {POLLS} looks; run apply again"),
        ))
    }

    /// An object by its name, deleted ones included; `None` when there is
    /// none.
    async fn get_named(&self, name: &str, what: &str) -> Result<Option<Value>, ProviderError> {
        match self
            .call(http::Method::GET, &self.v1(name), None, what)
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.status == Some(404) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Refuses to change a pool or provider that is not this project's:
    /// its description must be this project's record, in writ's pool.
    fn check_pool_ours(&self, found: &Value, address: &str) -> Result<(), ProviderError> {
        let description = found["description"].as_str().unwrap_or_default();
        let name = found["name"].as_str().unwrap_or_default();
        let pool = name
            .split("/workloadIdentityPools/")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        if ownership::gcp::read_shared(description) == Some(self.project.as_str())
            && pool == writ_compiler::lower::gcp::pool_id(&self.project)
        {
            Ok(())
        } else {
            Err(ProviderError::permanent(format!(
                "`{address}`: it is not writ project `{}`'s (its description does not record it): writ will not change it",
                self.project
            )))
        }
    }

    /// Creates, updates or deletes a pool or a provider.
    pub(super) async fn apply_pool(&self, change: &Change) -> Result<(), ProviderError> {
        let attributes = change.after.as_ref().or(change.before.as_ref());
        let field = |key: &str| {
            attributes
                .and_then(|a| a.get(key))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let pool_id = field("pool_id");
        let pool_name = format!(
            "projects/{}/locations/global/workloadIdentityPools/{pool_id}",
            self.gcp_project
        );
        let is_provider = change.kind == ResourceKind::GcpWorkloadIdentityPoolProvider;
        let (name, what) = if is_provider {
            let id = field("provider_id");
            (
                format!("{pool_name}/providers/{id}"),
                format!("workload identity pool provider `{pool_id}/{id}`"),
            )
        } else {
            (
                pool_name.clone(),
                format!("workload identity pool `{pool_id}`"),
            )
        };
        let found = self.get_named(&name, &format!("reading {what}")).await?;
        if change.actions.contains(&Action::Delete) && change.after.is_none() {
            let Some(found) = found.filter(|f| !is_deleted(f)) else {
                return Ok(());
            };
            self.check_pool_ours(&found, &change.address)?;
            if is_provider {
                // Made inert first: GCP keeps a deleted provider 30 days,
                // and an undelete would bring back what it mapped.
                let disarming = format!("disabling {what} before deleting it");
                let url = format!(
                    "{}?updateMask={}",
                    self.v1(&name),
                    super::encoded("disabled,attributeMapping")
                );
                let body = json!({"disabled": true, "attributeMapping": {"google.subject": "assertion.sub"}});
                let operation = self
                    .call(http::Method::PATCH, &url, Some(&body), &disarming)
                    .await?;
                self.finish(operation, &disarming).await?;
            }
            let deleting = format!("deleting {what}");
            return match self
                .call(http::Method::DELETE, &self.v1(&name), None, &deleting)
                .await
            {
                Ok(operation) => self.finish(operation, &deleting).await,
                Err(error) if error.status == Some(404) => Ok(()),
                Err(error) => Err(error),
            };
        }
        let after = change.after.as_ref().ok_or_else(|| {
            ProviderError::permanent(format!("`{}`: nothing to set", change.address))
        })?;
        let mut body = json!({
            "displayName": after.get("display_name"),
            "description": after.get("description"),
            "disabled": after.get("disabled").and_then(Value::as_bool).unwrap_or(false),
        });
        let mut mask = "displayName,description,disabled".to_string();
        if is_provider {
            body["attributeMapping"] = after.get("attribute_mapping").cloned().unwrap_or(json!({}));
            body["attributeCondition"] = after
                .get("attribute_condition")
                .cloned()
                .unwrap_or(Value::Null);
            body["oidc"] = json!({"issuerUri": after.get("issuer_uri")});
            mask.push_str(",attributeMapping,attributeCondition,oidc");
        }
        let found = match found {
            Some(found) => found,
            None => {
                let creating = format!("creating {what}");
                let (parent, id_parameter, id) = if is_provider {
                    (
                        format!("{pool_name}/providers"),
                        "workloadIdentityPoolProviderId",
                        field("provider_id"),
                    )
                } else {
                    (
                        format!(
                            "projects/{}/locations/global/workloadIdentityPools",
                            self.gcp_project
                        ),
                        "workloadIdentityPoolId",
                        pool_id.clone(),
                    )
                };
                let url = format!(
                    "{}?{id_parameter}={}",
                    self.v1(&parent),
                    super::encoded(&id)
                );
                match self
                    .call(http::Method::POST, &url, Some(&body), &creating)
                    .await
                {
                    Ok(operation) => return self.finish(operation, &creating).await,
                    // There already (a retried create that had gone through,
                    // another run, or one deleted within 30 days): carried
                    // on below, only if it is this project's.
                    Err(error) if error.status == Some(409) => self
                        .get_named(&name, &format!("reading {what}"))
                        .await?
                        .ok_or(error)?,
                    Err(error) => return Err(error),
                }
            }
        };
        self.check_pool_ours(&found, &change.address)?;
        if is_deleted(&found) {
            let undeleting = format!("undeleting {what}");
            let operation = self
                .call(
                    http::Method::POST,
                    &format!("{}:undelete", self.v1(&name)),
                    Some(&json!({})),
                    &undeleting,
                )
                .await?;
            self.finish(operation, &undeleting).await?;
        }
        let updating = format!("updating {what}");
        let url = format!("{}?updateMask={}", self.v1(&name), super::encoded(&mask));
        let operation = self
            .call(http::Method::PATCH, &url, Some(&body), &updating)
            .await?;
        self.finish(operation, &updating).await
    }
}

fn is_deleted(object: &Value) -> bool {
    object["state"].as_str() == Some("DELETED")
}

fn last(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or_default()
}

fn text(object: &Value, key: &str) -> Value {
    json!(object[key].as_str().unwrap_or_default())
}
