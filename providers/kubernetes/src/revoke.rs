//! `writ revoke` in a cluster: the agent's service accounts are marked
//! revoked (so that plans keep the agent cut off until the mark is lifted),
//! and its bindings and the long-lived token Secrets of its service accounts
//! are deleted. Tokens already issued by the TokenRequest API cannot be
//! recalled; they expire with their ttl, and without bindings they carry no
//! access writ granted.

use crate::apply::Target;
use crate::kinds::{token_account, Kind, TOKEN_SECRET_SELECTOR};
use crate::{KubernetesProvider, Reason, CONFLICT_ATTEMPTS};
use kube::api::{DynamicObject, ListParams, PostParams};
use writ_compiler::ownership::kubernetes::{agent_selector, REVOKED_ANNOTATION};
use writ_provider_core::{ErrorClass, ProviderError, Revocation};

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
            let params = PostParams {
                field_manager: Some("writ".to_string()),
                ..PostParams::default()
            };
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
    pub(crate) async fn revoke_agent(&self, name: &str, now: &str) -> Revocation {
        let address = &self.address;
        let mut report = Revocation::default();
        let (done, failed) = self.revoke_steps(name, now).await;
        if done.is_empty() && failed.is_empty() {
            report.said(format!("`{name}` has no service account in {address}"));
            return report;
        }
        for step in done {
            report.said(format!("{address}: {step}"));
        }
        if failed.is_empty() {
            report.said(format!("revoked `{name}` in {address}: tokens already issued expire with their ttl and carry no access writ granted"));
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
        match self.lift_mark(name).await {
            Ok(true) => report.said(format!("lifted the revocation of `{name}` in {address}: `writ apply` gives its bindings back")),
            Ok(false) => report.said(format!("`{name}` is not revoked in {address}")),
            Err(error) => report.failed(format!("could not lift the revocation of `{name}` in {address}: {error}")),
        }
        report
    }

    /// Cuts `agent` off in this cluster: what was done and what failed, in
    /// words. Every step is tried, whatever failed before it: one object
    /// writ may not touch must not leave the others in place.
    async fn revoke_steps(&self, agent: &str, now: &str) -> (Vec<String>, Vec<String>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        let accounts = match self.agent_objects(Kind::ServiceAccount, agent).await {
            Ok(accounts) => accounts,
            Err(error) => {
                failed.push(format!("listing its service accounts: {error}"));
                Vec::new()
            }
        };
        for account in &accounts {
            let shown = format!(
                "`{}/{}`",
                account.metadata.namespace.as_deref().unwrap_or_default(),
                account.metadata.name.as_deref().unwrap_or_default()
            );
            match self.mark(account, Some(now)).await {
                Ok(true) => done.push(format!("marked service account {shown} revoked")),
                Ok(false) => {}
                Err(error) => failed.push(format!("marking service account {shown}: {error}")),
            }
        }
        for kind in [Kind::RoleBinding, Kind::ClusterRoleBinding] {
            let bindings = match self.agent_objects(kind, agent).await {
                Ok(bindings) => bindings,
                Err(error) => {
                    failed.push(format!(
                        "listing its {}s: {error}",
                        kind.api_resource().kind
                    ));
                    continue;
                }
            };
            for binding in bindings {
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
                    Ok(()) => {
                        done.push(format!("deleted {} `{address}`", kind.api_resource().kind))
                    }
                    Err(error) => failed.push(format!("deleting `{address}`: {error}")),
                }
            }
        }
        for account in &accounts {
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
                    continue;
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
        (done, failed)
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
