//! Carrying out one planned change, idempotently and only on what the
//! project owns.
//!
//! - create: `POST`; if the object already exists and is the project's (an
//!   earlier apply made it, and its reply was lost), it is converged as an
//!   update; if it is anyone else's, the change is refused;
//! - update: read, check the labels, `PUT` with the `resourceVersion` read;
//!   a conflict (someone wrote in between) reads again and retries; a binding
//!   whose live `roleRef` differs is replaced, since the API forbids the edit;
//! - delete: read the metadata, check ownership, `DELETE` with the
//!   `resourceVersion` and `uid` read as preconditions, so an object
//!   recreated or changed meanwhile is never deleted blindly; already gone
//!   counts as done;
//! - a token Secret is deleted only if it is a service-account token of one
//!   of the project's service accounts; its data is never read.

use crate::kinds::{to_object, token_account, Kind, TOKEN_SECRET_SELECTOR};
use crate::{KubernetesProvider, Reason, CONFLICT_ATTEMPTS};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Preconditions};
use serde_json::Value;
use std::collections::BTreeMap;
use writ_compiler::ownership::kubernetes::{self as marks, MANAGED_BY, MANAGER, PROJECT_LABEL};
use writ_compiler::plan::{Change, ChangeKind};
use writ_provider_core::{ErrorClass, ProviderError};

type Attributes = BTreeMap<String, Value>;

/// The object a change is about, by kind, namespace and name.
pub(crate) struct Target<'a> {
    pub kind: Kind,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub address: &'a str,
}

impl<'a> Target<'a> {
    fn of(kind: Kind, attributes: &'a Attributes, address: &'a str) -> Target<'a> {
        let text = |key: &str| attributes.get(key).and_then(Value::as_str);
        Target {
            kind,
            namespace: text("namespace").filter(|_| kind.namespaced()),
            name: text("name").unwrap_or_default(),
            address,
        }
    }
}

/// `current` with what writ sets on a service account (labels,
/// annotations, its fields writ models) taken from `wanted`, and the rest
/// (image pull secrets, secrets) kept as it is.
fn with_what_writ_sets(mut current: DynamicObject, wanted: &DynamicObject) -> DynamicObject {
    current.metadata.labels = wanted.metadata.labels.clone();
    current.metadata.annotations = wanted.metadata.annotations.clone();
    if let (Some(data), Some(set)) = (current.data.as_object_mut(), wanted.data.as_object()) {
        for (key, value) in set {
            data.insert(key.clone(), value.clone());
        }
    }
    current
}

fn refused(address: &str, why: &str) -> ProviderError {
    ProviderError::new(
        ErrorClass::Permanent,
        Some("NotOwned"),
        format!("{address}: {why}; writ changes only objects labelled `{MANAGED_BY}: {MANAGER}` and `{PROJECT_LABEL}` for this project"),
    )
}

fn unproven(address: &str) -> ProviderError {
    ProviderError::new(
        ErrorClass::Permanent,
        Some("NotOwned"),
        format!("{address}: labelled as this project's, but writ did not make it (its name is not one writ gives and its UID is not in writ's inventory record); refusing to delete it"),
    )
}

pub(crate) async fn apply(
    provider: &KubernetesProvider,
    change: &Change,
) -> Result<(), ProviderError> {
    let Some(kind) = Kind::of(change.kind) else {
        return Err(ProviderError::permanent(format!(
            "{}: a {} is not a Kubernetes object",
            change.address,
            change.kind.as_str()
        )));
    };
    let missing = || {
        ProviderError::permanent(format!(
            "{}: the plan has no attributes for this change",
            change.address
        ))
    };
    // A revoke that landed after the plan was made: the agent's account
    // and bindings are not given back (read fresh, not from this run's
    // copy of the record).
    let gives_access = matches!(kind, Kind::ServiceAccount) || kind.is_binding();
    if gives_access && change.kind_of_change() != ChangeKind::Delete {
        if let Some(agent) = &change.agent {
            let stored = provider.read_inventory().await?;
            if stored.record.revoked.contains_key(agent) {
                return Err(ProviderError::new(
                    ErrorClass::Conflict,
                    Some("Revoked"),
                    format!(
                        "{}: `{agent}` was revoked after this plan was made; writ does not give it back its service account or bindings: plan again",
                        change.address
                    ),
                ));
            }
        }
    }
    let made = match change.kind_of_change() {
        ChangeKind::Adopt if kind == Kind::ServiceAccount => {
            let after = change.after.as_ref().ok_or_else(missing)?;
            provider
                .adopt(&Target::of(kind, after, &change.address), after)
                .await?
        }
        ChangeKind::Adopt => {
            return Err(ProviderError::permanent(format!(
                "{}: writ adopts service accounts, not {}s",
                change.address,
                change.kind.noun()
            )))
        }
        ChangeKind::Create => {
            let after = change.after.as_ref().ok_or_else(missing)?;
            if kind == Kind::TokenSecret {
                return Err(ProviderError::permanent(format!(
                    "{}: writ never creates long-lived token Secrets",
                    change.address
                )));
            }
            provider
                .create(&Target::of(kind, after, &change.address), after)
                .await?
        }
        ChangeKind::Update => {
            let after = change.after.as_ref().ok_or_else(missing)?;
            provider
                .update(&Target::of(kind, after, &change.address), after)
                .await?
        }
        ChangeKind::Replace => {
            let after = change.after.as_ref().ok_or_else(missing)?;
            let before = change.before.as_ref().unwrap_or(after);
            provider
                .delete(&Target::of(kind, before, &change.address))
                .await?;
            provider
                .create(&Target::of(kind, after, &change.address), after)
                .await?
        }
        ChangeKind::Delete => {
            let before = change.before.as_ref().ok_or_else(missing)?;
            provider
                .delete(&Target::of(kind, before, &change.address))
                .await?;
            None
        }
    };
    // The service accounts writ made go into the inventory record, its
    // proof that they are writ's once the source no longer names them.
    if kind == Kind::ServiceAccount {
        if let Some(uid) = made {
            provider.note_made(uid, change.address.clone());
        }
    }
    Ok(())
}

impl KubernetesProvider {
    pub(crate) fn api(&self, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = kind.api_resource();
        match namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// Labelled as the project's, and shown to be writ's: its name is one
    /// writ gives (Roles and bindings), or its UID is in the inventory
    /// record (service accounts). What a delete or a revoke requires; a
    /// create or update of an object the source declares needs the labels
    /// only.
    pub(crate) async fn is_proven(
        &self,
        kind: Kind,
        metadata: &ObjectMeta,
    ) -> Result<bool, ProviderError> {
        if !self.is_ours(metadata) {
            return Ok(false);
        }
        let agent = metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(marks::AGENT_LABEL));
        let name = metadata.name.as_deref().unwrap_or_default();
        if agent.is_some_and(|agent| {
            marks::follows_scheme(kind.resource_kind(), &self.project, agent, name)
        }) {
            return Ok(true);
        }
        let Some(uid) = &metadata.uid else {
            return Ok(false);
        };
        Ok(self.made_in_this_run(uid) || self.inventory().await?.objects.contains_key(uid))
    }

    pub(crate) fn is_ours(&self, metadata: &ObjectMeta) -> bool {
        let label = |name: &str| {
            metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(name))
                .map(String::as_str)
        };
        !marks::is_reserved(
            metadata.namespace.as_deref(),
            metadata.name.as_deref().unwrap_or_default(),
        ) && marks::owns(label, &self.project)
    }

    /// `POST`s the object; converges it if it exists and is the project's.
    /// The UID of the object written.
    pub(crate) async fn create(
        &self,
        target: &Target<'_>,
        attributes: &Attributes,
    ) -> Result<Option<String>, ProviderError> {
        match self.post(target, attributes).await {
            Err(error) if Reason::of(&error) == Some(Reason::AlreadyExists) => {
                self.update(target, attributes).await
            }
            other => other,
        }
    }

    async fn post(
        &self,
        target: &Target<'_>,
        attributes: &Attributes,
    ) -> Result<Option<String>, ProviderError> {
        let api = self.api(target.kind, target.namespace);
        let object = to_object(target.kind, attributes);
        let params = crate::writ_params();
        let what = format!("creating {}", target.address);
        match self.call(&what, || api.create(&params, &object)).await {
            Ok(created) => Ok(created.metadata.uid),
            Err(error) if Reason::of(&error) == Some(Reason::NotFound) && target.namespace.is_some() => {
                Err(ProviderError::permanent(format!(
                    "{}: namespace `{}` does not exist in `{}`; writ does not create namespaces: create it, or change `runs_on`/`in` in the source",
                    target.address,
                    target.namespace.unwrap_or_default(),
                    self.address
                )))
            }
            Err(error) => Err(error),
        }
    }

    /// Reads, checks ownership and writes with the `resourceVersion` read;
    /// retries after a conflict. Creates the object if it is gone. The UID
    /// of the object written.
    pub(crate) async fn update(
        &self,
        target: &Target<'_>,
        attributes: &Attributes,
    ) -> Result<Option<String>, ProviderError> {
        let api = self.api(target.kind, target.namespace);
        let params = crate::writ_params();
        for _ in 0..CONFLICT_ATTEMPTS {
            let reading = format!("reading {}", target.address);
            let Some(current) = self.call(&reading, || api.get_opt(target.name)).await? else {
                match self.post(target, attributes).await {
                    // Created by someone else just now: read it and decide.
                    Err(error) if Reason::of(&error) == Some(Reason::AlreadyExists) => continue,
                    other => return other,
                }
            };
            if !self.is_ours(&current.metadata) {
                return Err(refused(target.address, "the live object is not writ's"));
            }
            let mut object = to_object(target.kind, attributes);
            if target.kind == Kind::ServiceAccount {
                // What writ does not set (image pull secrets) is kept.
                object = with_what_writ_sets(current.clone(), &object);
            }
            if target.kind.is_binding() && current.data.get("roleRef") != object.data.get("roleRef")
            {
                // The API forbids changing roleRef: replace the binding.
                self.delete_exactly(target, &current.metadata).await?;
                match self.post(target, attributes).await {
                    Err(error) if Reason::of(&error) == Some(Reason::AlreadyExists) => continue,
                    other => return other,
                }
            }
            object.metadata.resource_version = current.metadata.resource_version.clone();
            let what = format!("updating {}", target.address);
            match self
                .call(&what, || api.replace(target.name, &params, &object))
                .await
            {
                Ok(written) => return Ok(written.metadata.uid),
                // Written by someone else since it was read: read again.
                Err(error) if error.class == ErrorClass::Conflict => continue,
                // Deleted since it was read: the next round creates it.
                Err(error) if Reason::of(&error) == Some(Reason::NotFound) => continue,
                Err(error) => return Err(error),
            }
        }
        Err(self.kept_changing(target))
    }

    /// Takes over a service account made outside writ (`adopts`): its
    /// labels and annotations become the plan's, and what writ does not
    /// set (image pull secrets, its UID and so its pods' tokens) is kept.
    /// Refused when another project or tool labels it as theirs.
    pub(crate) async fn adopt(
        &self,
        target: &Target<'_>,
        attributes: &Attributes,
    ) -> Result<Option<String>, ProviderError> {
        let api = self.api(target.kind, target.namespace);
        let params = crate::writ_params();
        let wanted = to_object(target.kind, attributes);
        for _ in 0..CONFLICT_ATTEMPTS {
            let reading = format!("reading {}", target.address);
            let Some(current) = self.call(&reading, || api.get_opt(target.name)).await? else {
                return Err(Reason::Conflict.error(
                    404,
                    format!(
                        "{}: the service account to adopt no longer exists: plan again",
                        target.address
                    ),
                ));
            };
            let manager = current
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(MANAGED_BY))
                .cloned();
            if !self.is_ours(&current.metadata) {
                if let Some(manager) = manager {
                    return Err(refused(
                        target.address,
                        &format!("it is labelled `{MANAGED_BY}: {manager}` since the plan was made, refusing to adopt it"),
                    ));
                }
            }
            let current = with_what_writ_sets(current, &wanted);
            let what = format!("adopting {}", target.address);
            match self
                .call(&what, || api.replace(target.name, &params, &current))
                .await
            {
                Ok(written) => return Ok(written.metadata.uid),
                Err(error) if error.class == ErrorClass::Conflict => continue,
                Err(error) => return Err(error),
            }
        }
        Err(self.kept_changing(target))
    }

    fn kept_changing(&self, target: &Target<'_>) -> ProviderError {
        Reason::Conflict.error(
            409,
            format!(
                "{}: the object kept changing while writ wrote it ({CONFLICT_ATTEMPTS} conflicts in a row); something else is writing it: find it, then plan again",
                target.address
            ),
        )
    }

    /// Deletes the object if it is the project's (a token Secret: if it is
    /// a token of one of the project's service accounts). Gone is done.
    pub(crate) async fn delete(&self, target: &Target<'_>) -> Result<(), ProviderError> {
        let api = self.api(target.kind, target.namespace);
        for _ in 0..CONFLICT_ATTEMPTS {
            let reading = format!("reading {}", target.address);
            let current = match self.call(&reading, || api.get_metadata(target.name)).await {
                Ok(current) => current,
                Err(error) if Reason::of(&error) == Some(Reason::NotFound) => return Ok(()),
                Err(error) => return Err(error),
            };
            if target.kind == Kind::TokenSecret {
                self.check_token_secret(target, &current.metadata).await?;
            } else if !self.is_ours(&current.metadata) {
                return Err(refused(target.address, "the live object is not writ's"));
            } else if !self.is_proven(target.kind, &current.metadata).await? {
                return Err(unproven(target.address));
            }
            match self.delete_exactly(target, &current.metadata).await {
                Err(error) if error.class == ErrorClass::Conflict => continue,
                Err(error) => return Err(error),
                Ok(()) => {
                    if target.kind == Kind::ServiceAccount {
                        if let Some(uid) = current.metadata.uid.clone() {
                            self.note_gone(uid);
                        }
                    }
                    return Ok(());
                }
            }
        }
        Err(self.kept_changing(target))
    }

    /// `DELETE` on condition that the object is still the one read.
    async fn delete_exactly(
        &self,
        target: &Target<'_>,
        metadata: &ObjectMeta,
    ) -> Result<(), ProviderError> {
        let api = self.api(target.kind, target.namespace);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: metadata.resource_version.clone(),
                uid: metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        let what = format!("deleting {}", target.address);
        match self.call(&what, || api.delete(target.name, &params)).await {
            Ok(_) => Ok(()),
            Err(error) if Reason::of(&error) == Some(Reason::NotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// A token Secret may go only if it is of the service-account-token type
    /// and belongs to a service account of this project.
    async fn check_token_secret(
        &self,
        target: &Target<'_>,
        metadata: &ObjectMeta,
    ) -> Result<(), ProviderError> {
        let account = token_account(metadata);
        let namespace = target.namespace.unwrap_or_default();
        let secrets = self.api(Kind::TokenSecret, Some(namespace));
        let params = ListParams::default().fields(&format!(
            "{TOKEN_SECRET_SELECTOR},metadata.name={}",
            target.name
        ));
        let what = format!("reading {}", target.address);
        let found = self.call(&what, || secrets.list_metadata(&params)).await?;
        if found.items.is_empty() {
            return Err(refused(
                target.address,
                "the Secret is not a service-account token",
            ));
        }
        let accounts = self.api(Kind::ServiceAccount, Some(namespace));
        let what = format!("reading service account {namespace}/{account}");
        let owner = match self.call(&what, || accounts.get_metadata(&account)).await {
            Ok(owner) => owner,
            Err(error) if Reason::of(&error) == Some(Reason::NotFound) => {
                return Err(refused(
                    target.address,
                    &format!("its service account `{account}` does not exist, so it is not writ's"),
                ))
            }
            Err(error) => return Err(error),
        };
        if !self
            .is_proven(Kind::ServiceAccount, &owner.metadata)
            .await?
        {
            return Err(refused(
                target.address,
                &format!("it is a token of service account `{account}`, which writ cannot show is its own (labelled as this project's, with its UID in writ's inventory record)"),
            ));
        }
        Ok(())
    }
}
