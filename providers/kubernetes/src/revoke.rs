//! `writ revoke` in a cluster. The revocation is recorded first in the
//! project's inventory record (so that plans keep the agent cut off until
//! `writ revoke --lift`, even if what follows is interrupted); then the
//! agent's bindings go, its parent's right to mint its tokens, the
//! long-lived token Secrets of its service accounts, and the service
//! accounts themselves: a token the TokenRequest API issued is bound to the
//! account's UID, so deleting the account voids every such token at once.
//! Bindings others made to those accounts are named, never touched.

use crate::apply::Target;
use crate::kinds::{to_object, to_resource, token_account, Kind, TOKEN_SECRET_SELECTOR};
use crate::{KubernetesProvider, Reason, CONFLICT_ATTEMPTS};
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;
use writ_compiler::ownership::content_digest;
use writ_compiler::ownership::kubernetes::{
    agent_selector, project_selector, rules_without_minting, RevokedRecord, DIGEST_ANNOTATION,
    REVOKED_ANNOTATION,
};
use writ_provider_core::{ErrorClass, ProviderError, Revocation, RevokeMark};

/// `namespace/name` of an object, in backquotes.
fn shown(object: &DynamicObject) -> String {
    format!(
        "`{}/{}`",
        object.metadata.namespace.as_deref().unwrap_or_default(),
        object.metadata.name.as_deref().unwrap_or_default()
    )
}

impl KubernetesProvider {
    fn agent_selector(&self, agent: &str) -> ListParams {
        ListParams::default().labels(&agent_selector(&self.project, agent))
    }

    async fn agent_objects(
        &self,
        kind: Kind,
        agent: &str,
    ) -> Result<Vec<DynamicObject>, ProviderError> {
        let api = self.api(kind, None);
        let params = self.agent_selector(agent);
        let what = format!("listing the {} of `{agent}`", kind.api_resource().plural);
        // Labels alone do not make an object writ's (one in `kube-system`,
        // or named `system:*`, never is): those are left alone.
        let listed = self.call(&what, || api.list(&params)).await?.items;
        Ok(listed
            .into_iter()
            .filter(|object| self.is_ours(&object.metadata))
            .collect())
    }

    /// Sets (or, with `None`, removes) the revocation mark on a service
    /// account, with the usual read, ownership check and conflict retry.
    async fn mark(
        &self,
        account: &DynamicObject,
        value: Option<&str>,
    ) -> Result<bool, ProviderError> {
        let name = account.metadata.name.clone().unwrap_or_default();
        let namespace = account.metadata.namespace.clone();
        let api = self.api(Kind::ServiceAccount, namespace.as_deref());
        let address = Kind::ServiceAccount.address(&self.address, namespace.as_deref(), &name);
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(mut current) = self
                .call(&format!("reading {address}"), || api.get_opt(&name))
                .await?
            else {
                return Ok(false);
            };
            if !self.is_ours(&current.metadata) {
                return Ok(false);
            }
            let annotations = current
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            let changed = match value {
                Some(value) => annotations
                    .insert(REVOKED_ANNOTATION.to_string(), value.to_string())
                    .is_none(),
                None => annotations.remove(REVOKED_ANNOTATION).is_some(),
            };
            if !changed {
                return Ok(false);
            }
            let params = crate::writ_params();
            match self
                .call(&format!("updating {address}"), || {
                    api.replace(&name, &params, &current)
                })
                .await
            {
                Ok(_) => return Ok(true),
                Err(error) if error.class == ErrorClass::Conflict => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Reason::Conflict.error(
            409,
            format!("{address}: the service account kept changing while writ marked it"),
        ))
    }

    /// `writ revoke` in this cluster, reported line by line.
    pub(crate) async fn revoke_agent(&self, name: &str, mark: &RevokeMark) -> Revocation {
        let address = &self.address;
        let mut report = Revocation::default();
        let (done, failed) = self.revoke_steps(name, mark).await;
        if done.is_empty() && failed.is_empty() {
            report.said(format!("`{name}` has nothing in {address}"));
            return report;
        }
        for step in done {
            report.said(format!("{address}: {step}"));
        }
        if failed.is_empty() {
            report.said(format!("revoked `{name}` in {address}: its service accounts are gone, so every token bound to them is void; plans keep them absent until `writ revoke --lift`"));
        }
        for failure in failed {
            report.failed(format!("could not revoke `{name}` in {address}: {failure}"));
        }
        report
    }

    /// `writ revoke --lift` in this cluster.
    pub(crate) async fn lift_agent(&self, name: &str) -> Revocation {
        let address = &self.address;
        let mut report = Revocation::default();
        let recorded = self
            .update_inventory(|record| record.revoked.remove(name).is_some())
            .await;
        let marked = self.lift_mark(name).await;
        match (recorded, marked) {
            (Ok(false), Ok(false)) => report.said(format!("`{name}` is not revoked in {address}")),
            (Ok(_), Ok(_)) => report.said(format!("lifted the revocation of `{name}` in {address}: `writ apply` creates its service accounts and bindings again")),
            (Err(error), _) | (_, Err(error)) => report.failed(format!("could not lift the revocation of `{name}` in {address}: {error}")),
        }
        report
    }

    /// Cuts `agent` off in this cluster: what was done and what failed, in
    /// words. The revocation is recorded first, so that an interrupted
    /// revoke is still known to every later plan; then every step is tried,
    /// whatever failed before it: one object writ may not touch must not
    /// leave the others in place.
    async fn revoke_steps(&self, agent: &str, mark: &RevokeMark) -> (Vec<String>, Vec<String>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let labelled = match self.agent_objects(Kind::ServiceAccount, agent).await {
            Ok(accounts) => accounts,
            Err(error) => {
                failed.push(format!("listing its service accounts: {error}"));
                Vec::new()
            }
        };
        let mut bindings = Vec::new();
        for kind in [Kind::RoleBinding, Kind::ClusterRoleBinding] {
            match self.agent_objects(kind, agent).await {
                Ok(found) => bindings.extend(found.into_iter().map(|b| (kind, b))),
                Err(error) => failed.push(format!(
                    "listing its {}s: {error}",
                    kind.api_resource().kind
                )),
            }
        }
        let already = match self.inventory().await {
            Ok(record) => record.revoked.get(agent).map(|r| r.at.clone()),
            Err(error) => {
                failed.push(format!("reading writ's inventory record: {error}"));
                None
            }
        };
        if labelled.is_empty() && bindings.is_empty() && already.is_none() && failed.is_empty() {
            // Nothing of the agent's here: no record of a revocation either.
            return (done, failed);
        }
        // 1. The record, before anything is deleted.
        let record = RevokedRecord {
            at: mark.at.clone(),
            by: mark.by.clone(),
        };
        match self
            .update_inventory(|inventory| {
                if inventory.revoked.contains_key(agent) {
                    return false;
                }
                inventory.revoked.insert(agent.to_string(), record.clone());
                true
            })
            .await
        {
            Ok(true) => done.push("recorded the revocation in writ's inventory record".to_string()),
            Ok(false) => done.push(format!(
                "already revoked at {}: finishing what is left",
                already.as_deref().unwrap_or("an earlier time")
            )),
            Err(error) => failed.push(format!(
                "recording the revocation (plans will not keep it): {error}"
            )),
        }
        // Only what writ can show it made is touched.
        let mut accounts = Vec::new();
        for account in labelled {
            match self.is_proven(Kind::ServiceAccount, &account.metadata).await {
                Ok(true) => accounts.push(account),
                Ok(false) => failed.push(format!(
                    "service account {} is labelled as `{agent}`'s, but its UID is not in writ's inventory record, so writ does not delete it; if it is writ's, delete it by hand",
                    shown(&account)
                )),
                Err(error) => failed.push(format!("checking service account {}: {error}", shown(&account))),
            }
        }
        // 2. Its bindings.
        for (kind, binding) in bindings {
            let name = binding.metadata.name.clone().unwrap_or_default();
            let namespace = binding.metadata.namespace.clone();
            let address = kind.address(&self.address, namespace.as_deref(), &name);
            let deleted = self
                .delete(&Target {
                    kind,
                    namespace: namespace.as_deref(),
                    name: &name,
                    address: &address,
                })
                .await;
            match deleted {
                Ok(()) => done.push(format!("deleted {} `{address}`", kind.api_resource().kind)),
                Err(error) => failed.push(format!("deleting `{address}`: {error}")),
            }
        }
        // 3. Its parent's right to mint its tokens.
        match self.drop_minting(&accounts).await {
            Ok(roles) => {
                for role in roles {
                    done.push(format!(
                        "removed the right to mint its tokens from `{role}`"
                    ));
                }
            }
            Err(error) => failed.push(format!("removing the right to mint its tokens: {error}")),
        }
        // 4. Long-lived tokens of its service accounts (before the accounts:
        //    a token is deleted only while writ can show its account is its
        //    own).
        for account in &accounts {
            self.delete_tokens(account, &mut done, &mut failed).await;
        }
        // 5. The service accounts: a new one would have a new UID, and
        //    every token bound to the old one is void.
        for account in &accounts {
            let name = account.metadata.name.clone().unwrap_or_default();
            let namespace = account.metadata.namespace.clone();
            let address = Kind::ServiceAccount.address(&self.address, namespace.as_deref(), &name);
            let deleted = self
                .delete(&Target {
                    kind: Kind::ServiceAccount,
                    namespace: namespace.as_deref(),
                    name: &name,
                    address: &address,
                })
                .await;
            match deleted {
                Ok(()) => done.push(format!("deleted service account {}", shown(account))),
                Err(error) => failed.push(format!("deleting `{address}`: {error}")),
            }
        }
        if let Err(error) = self.write_pending().await {
            failed.push(format!("updating writ's inventory record: {error}"));
        }
        // 6. What others bound to those accounts: left alone, named.
        match self.foreign_bindings(&accounts).await {
            Ok(found) => done.extend(found),
            Err(error) => failed.push(format!("listing bindings made outside writ: {error}")),
        }
        (done, failed)
    }

    async fn delete_tokens(
        &self,
        account: &DynamicObject,
        done: &mut Vec<String>,
        failed: &mut Vec<String>,
    ) {
        let account_name = account.metadata.name.clone().unwrap_or_default();
        let namespace = account.metadata.namespace.clone().unwrap_or_default();
        let secrets = self.api(Kind::TokenSecret, Some(&namespace));
        let params = ListParams::default().fields(TOKEN_SECRET_SELECTOR);
        let listed = match self
            .call(&format!("listing token Secrets in `{namespace}`"), || {
                secrets.list_metadata(&params)
            })
            .await
        {
            Ok(listed) => listed,
            Err(error) => {
                failed.push(format!("listing token Secrets in `{namespace}`: {error}"));
                return;
            }
        };
        for secret in listed.items {
            if token_account(&secret.metadata) != account_name {
                continue;
            }
            let name = secret.metadata.name.clone().unwrap_or_default();
            let address = Kind::TokenSecret.address(&self.address, Some(&namespace), &name);
            let deleted = self
                .delete(&Target {
                    kind: Kind::TokenSecret,
                    namespace: Some(&namespace),
                    name: &name,
                    address: &address,
                })
                .await;
            match deleted {
                Ok(()) => done.push(format!("deleted token Secret `{address}`")),
                Err(error) => failed.push(format!("deleting `{address}`: {error}")),
            }
        }
    }

    /// Removes, from the project's Roles, the rules that let a parent mint
    /// tokens for these service accounts. The Roles changed, by address.
    async fn drop_minting(&self, accounts: &[DynamicObject]) -> Result<Vec<String>, ProviderError> {
        let mut changed = Vec::new();
        if accounts.is_empty() {
            return Ok(changed);
        }
        let api = self.api(Kind::Role, None);
        let params = ListParams::default().labels(&project_selector(&self.project));
        let roles = self
            .call("listing the project's Roles", || api.list(&params))
            .await?
            .items;
        for role in roles {
            let namespace = role.metadata.namespace.clone().unwrap_or_default();
            let names: Vec<String> = accounts
                .iter()
                .filter(|a| a.metadata.namespace.as_deref() == Some(namespace.as_str()))
                .filter_map(|a| a.metadata.name.clone())
                .collect();
            if names.is_empty() || !self.is_proven(Kind::Role, &role.metadata).await? {
                continue;
            }
            let name = role.metadata.name.clone().unwrap_or_default();
            if self.rewrite_role(&namespace, &name, &names).await? {
                changed.push(Kind::Role.address(&self.address, Some(&namespace), &name));
            }
        }
        Ok(changed)
    }

    /// One Role without the minting rules for `accounts`, written with the
    /// `resourceVersion` read and its digest brought up to date (so that
    /// plans do not see drift). False if nothing named them.
    async fn rewrite_role(
        &self,
        namespace: &str,
        name: &str,
        accounts: &[String],
    ) -> Result<bool, ProviderError> {
        let api = self.api(Kind::Role, Some(namespace));
        let address = Kind::Role.address(&self.address, Some(namespace), name);
        let params = crate::writ_params();
        for _ in 0..CONFLICT_ATTEMPTS {
            let Some(mut current) = self
                .call(&format!("reading {address}"), || api.get_opt(name))
                .await?
            else {
                return Ok(false);
            };
            let Some(mut resource) = to_resource(&self.address, Kind::Role, &current) else {
                return Ok(false);
            };
            let mut changed = false;
            for account in accounts {
                let Some(rules) = resource.attribute("rules") else {
                    break;
                };
                if let Some(rules) = rules_without_minting(rules, account) {
                    resource.attributes.insert("rules".to_string(), rules);
                    changed = true;
                }
            }
            if !changed {
                return Ok(false);
            }
            let digest = content_digest(&resource, []);
            current.data["rules"] =
                to_object(Kind::Role, &resource.attributes).data["rules"].take();
            current
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(DIGEST_ANNOTATION.to_string(), digest);
            match self
                .call(&format!("updating {address}"), || {
                    api.replace(name, &params, &current)
                })
                .await
            {
                Ok(_) => return Ok(true),
                Err(error) if error.class == ErrorClass::Conflict => continue,
                Err(error) => return Err(error),
            }
        }
        Err(Reason::Conflict.error(
            409,
            format!("{address}: the Role kept changing while writ rewrote it"),
        ))
    }

    /// Bindings writ did not make that give these service accounts a role,
    /// in words. writ leaves them alone; a service account made again under
    /// the same name would get what they grant.
    async fn foreign_bindings(
        &self,
        accounts: &[DynamicObject],
    ) -> Result<Vec<String>, ProviderError> {
        let mut found = Vec::new();
        if accounts.is_empty() {
            return Ok(found);
        }
        let wanted: Vec<(String, String)> = accounts
            .iter()
            .map(|a| {
                (
                    a.metadata.namespace.clone().unwrap_or_default(),
                    a.metadata.name.clone().unwrap_or_default(),
                )
            })
            .collect();
        for kind in [Kind::RoleBinding, Kind::ClusterRoleBinding] {
            let api = self.api(kind, None);
            let plural = kind.api_resource().plural;
            let every = ListParams::default();
            let listed = self
                .call(&format!("listing {plural}"), || api.list(&every))
                .await?
                .items;
            for binding in listed {
                if self.is_proven(kind, &binding.metadata).await? {
                    continue;
                }
                let subjects = binding.data.get("subjects").and_then(Value::as_array);
                let binding_namespace = binding.metadata.namespace.clone().unwrap_or_default();
                for subject in subjects.into_iter().flatten() {
                    let field = |key: &str| subject.get(key).and_then(Value::as_str).unwrap_or("");
                    if field("kind") != "ServiceAccount" {
                        continue;
                    }
                    let namespace = match field("namespace") {
                        "" => binding_namespace.as_str(),
                        namespace => namespace,
                    };
                    if !wanted
                        .iter()
                        .any(|(ns, name)| ns == namespace && name == field("name"))
                    {
                        continue;
                    }
                    let role = binding
                        .data
                        .get("roleRef")
                        .and_then(|r| r.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("?");
                    let shown_binding = match &binding.metadata.namespace {
                        Some(ns) => format!(
                            "RoleBinding `{ns}/{}`",
                            binding.metadata.name.as_deref().unwrap_or_default()
                        ),
                        None => format!(
                            "ClusterRoleBinding `{}`",
                            binding.metadata.name.as_deref().unwrap_or_default()
                        ),
                    };
                    found.push(format!(
                        "left alone: {shown_binding}, which writ did not make, binds `{namespace}/{}` to `{role}`; a service account made again under that name would get it: delete it if it should go",
                        field("name")
                    ));
                }
            }
        }
        Ok(found)
    }

    /// Removes the revocation mark from the agent's service accounts; the
    /// next apply gives the agent its bindings back. True if any was marked.
    async fn lift_mark(&self, agent: &str) -> Result<bool, ProviderError> {
        let mut lifted = false;
        for account in self.agent_objects(Kind::ServiceAccount, agent).await? {
            lifted |= self.mark(&account, None).await?;
        }
        Ok(lifted)
    }
}
