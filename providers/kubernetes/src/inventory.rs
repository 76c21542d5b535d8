//! The project's inventory record in a cluster: a Secret
//! `writ-inventory-<project>` in the namespace writ.toml names
//! (`inventory_namespace`, which `writ.toml` must name), holding the UIDs of the
//! service accounts writ made and the agents `writ revoke` cut off there.
//!
//! Labels are a claim anyone who may edit an object can make; the record is
//! writ's proof. It lives in a Secret so that the cluster's RBAC can keep it
//! to writ's own credentials (give nobody else `update` on Secrets in that
//! namespace). It is read once per run, changed with optimistic
//! concurrency (the `resourceVersion` read is sent back), and written once
//! at the end of an apply.

use crate::{KubernetesProvider, Reason, CONFLICT_ATTEMPTS};
use k8s_openapi::ByteString;
use kube::api::{ApiResource, DynamicObject};
use serde_json::json;
use std::collections::BTreeMap;
use writ_compiler::ownership::kubernetes::{
    inventory_name, Inventory, INVENTORY_KEY, MANAGED_BY, MANAGER, PROJECT_LABEL,
};
use writ_compiler::resource::Resource;
use writ_provider_core::{ErrorClass, ProviderError};

/// The record as read, with the object it came from (`None` when the
/// cluster has none yet).
pub(crate) struct Stored {
    pub object: Option<DynamicObject>,
    pub record: Inventory,
}

fn secrets() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".to_string(),
        api_version: "v1".to_string(),
        kind: "Secret".to_string(),
        plural: "secrets".to_string(),
    }
}

impl KubernetesProvider {
    fn inventory_api(&self) -> kube::Api<DynamicObject> {
        kube::Api::namespaced_with(self.client.clone(), &self.inventory_namespace, &secrets())
    }

    fn inventory_address(&self) -> String {
        writ_compiler::address::kubernetes(
            &self.address,
            "secrets",
            Some(&self.inventory_namespace),
            &inventory_name(&self.project),
        )
    }

    /// Reads the record from the cluster. A record writ cannot read, or a
    /// Secret of that name that is not writ's, is an error: revocations and
    /// ownership rest on it.
    pub(crate) async fn read_inventory(&self) -> Result<Stored, ProviderError> {
        let name = inventory_name(&self.project);
        let address = self.inventory_address();
        let api = self.inventory_api();
        let Some(object) = self
            .call(&format!("reading {address}"), || api.get_opt(&name))
            .await?
        else {
            return Ok(Stored {
                object: None,
                record: Inventory::default(),
            });
        };
        let labels = object.metadata.labels.clone().unwrap_or_default();
        let label = |key: &str| labels.get(key).map(String::as_str);
        if label(MANAGED_BY) != Some(MANAGER) || label(PROJECT_LABEL) != Some(&self.project) {
            return Err(ProviderError::new(
                ErrorClass::Permanent,
                Some("NotOwned"),
                format!("{address}: a Secret writ's inventory record would use exists, but it is not labelled as this project's; writ will not read or write it"),
            ));
        }
        let bytes: ByteString = object
            .data
            .get("data")
            .and_then(|data| data.get(INVENTORY_KEY))
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| {
                ProviderError::permanent(format!(
                    "{address}: `data.{INVENTORY_KEY}` is not base64: {e}"
                ))
            })?
            .unwrap_or(ByteString(b"{}".to_vec()));
        let record: Inventory = serde_json::from_slice(&bytes.0).map_err(|e| {
            ProviderError::permanent(format!(
                "{address}: writ cannot read its inventory record ({e}); it was edited by hand, or by a newer writ"
            ))
        })?;
        Ok(Stored {
            object: Some(object),
            record,
        })
    }

    /// The record as a snapshot resource.
    pub(crate) fn inventory_resource(&self, record: &Inventory) -> Resource {
        record.to_resource(&self.address, &self.inventory_namespace, &self.project)
    }

    /// Reads the record, applies `change` and writes it back if it changed,
    /// reading again after a conflict. Creates the Secret the first time.
    /// Returns whether anything changed.
    pub(crate) async fn update_inventory(
        &self,
        change: impl Fn(&mut Inventory) -> bool,
    ) -> Result<bool, ProviderError> {
        let name = inventory_name(&self.project);
        let address = self.inventory_address();
        let api = self.inventory_api();
        let params = crate::writ_params();
        for _ in 0..CONFLICT_ATTEMPTS {
            let Stored { object, mut record } = self.read_inventory().await?;
            if !change(&mut record) {
                *self.lock_cache() = Some(record);
                return Ok(false);
            }
            let text = serde_json::to_vec(&record).map_err(|e| {
                ProviderError::permanent(format!("{address}: cannot write the record: {e}"))
            })?;
            let data = serde_json::to_value(ByteString(text)).map_err(|e| {
                ProviderError::permanent(format!("{address}: cannot write the record: {e}"))
            })?;
            let written = match object {
                Some(mut current) => {
                    current.data["data"] = json!({ INVENTORY_KEY: data });
                    self.call(&format!("updating {address}"), || {
                        api.replace(&name, &params, &current)
                    })
                    .await
                }
                None => {
                    let mut fresh = DynamicObject::new(&name, &secrets());
                    fresh.metadata.namespace = Some(self.inventory_namespace.clone());
                    fresh.metadata.labels = Some(BTreeMap::from([
                        (MANAGED_BY.to_string(), MANAGER.to_string()),
                        (PROJECT_LABEL.to_string(), self.project.clone()),
                    ]));
                    fresh.data = json!({"type": "Opaque", "data": { INVENTORY_KEY: data }});
                    self.call(&format!("creating {address}"), || {
                        api.create(&params, &fresh)
                    })
                    .await
                }
            };
            match written {
                Ok(_) => {
                    *self.lock_cache() = Some(record);
                    return Ok(true);
                }
                // Written or created by another run since it was read.
                Err(error)
                    if error.class == ErrorClass::Conflict
                        || Reason::of(&error) == Some(Reason::NotFound) =>
                {
                    continue
                }
                Err(error) => return Err(error),
            }
        }
        Err(Reason::Conflict.error(
            409,
            format!("{address}: the inventory record kept changing while writ wrote it"),
        ))
    }

    /// The record, read once per run and kept up to date by this run's own
    /// writes.
    pub(crate) async fn inventory(&self) -> Result<Inventory, ProviderError> {
        if let Some(record) = self.lock_cache().clone() {
            return Ok(record);
        }
        let record = self.read_inventory().await?.record;
        *self.lock_cache() = Some(record.clone());
        Ok(record)
    }

    /// Keeps a record just read, for the rest of the run.
    pub(crate) fn remember_inventory(&self, record: Inventory) {
        *self.lock_cache() = Some(record);
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Option<Inventory>> {
        // A poisoned lock only means another task panicked mid-update of a
        // plain value: the value is still whole.
        self.inventory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a service account this run created or converged, written at
    /// the end of the apply ([`Self::write_pending`]).
    pub(crate) fn note_made(&self, uid: String, address: String) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Pending::Made(uid, address));
    }

    /// Did this run make the object with this UID (not yet written into
    /// the record)?
    pub(crate) fn made_in_this_run(&self, uid: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .any(|entry| matches!(entry, Pending::Made(made, _) if made == uid))
    }

    /// Notes a service account this run deleted.
    pub(crate) fn note_gone(&self, uid: String) {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Pending::Gone(uid));
    }

    /// Writes what this run made and deleted into the record, in one write.
    pub(crate) async fn write_pending(&self) -> Result<(), ProviderError> {
        let pending: Vec<Pending> = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if pending.is_empty() {
            return Ok(());
        }
        self.update_inventory(|record| {
            let mut changed = false;
            for entry in &pending {
                match entry {
                    Pending::Made(uid, address) => {
                        changed |= record.objects.get(uid) != Some(address);
                        record.objects.insert(uid.clone(), address.clone());
                    }
                    Pending::Gone(uid) => changed |= record.objects.remove(uid).is_some(),
                }
            }
            changed
        })
        .await
        .map(|_| ())
    }
}

/// A change to the record that waits for the end of the apply.
pub(crate) enum Pending {
    Made(String, String),
    Gone(String),
}
