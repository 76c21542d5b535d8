//! The project's lock in a cluster: a `coordination.k8s.io/v1` Lease
//! `writ-lock-<project>` in the inventory namespace, with the holder in
//! `spec.holderIdentity` and the end of its lease in the annotation
//! `writ.dev/lock-expires` (RFC 3339; `renewTime` and
//! `leaseDurationSeconds` say the same for kubectl).
//!
//! A run that stops partway gives the lock back with its lease ended and
//! the annotation `writ.dev/lock-interrupted` saying what happened; plans
//! read it (one request) and call what that run left half-done an
//! interrupted apply. The Lease goes when a run converges.
//!
//! Creating the Lease takes the lock; renewing it, or taking over one whose
//! lease ended, is a `PUT` with the `resourceVersion` read, so of two runs
//! that try at once exactly one succeeds (the other gets 409).

use crate::{KubernetesProvider, Reason};
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams, Preconditions};
use serde_json::json;
use std::collections::BTreeMap;
use writ_compiler::ownership::kubernetes::{MANAGED_BY, MANAGER, PROJECT_LABEL};
use writ_provider_core::{ErrorClass, Lease, LockRecord, ProviderError, Release};

const EXPIRES: &str = "writ.dev/lock-expires";
const INTERRUPTED: &str = "writ.dev/lock-interrupted";

fn annotation(object: &DynamicObject, key: &str) -> Option<String> {
    object.metadata.annotations.as_ref()?.get(key).cloned()
}

fn leases() -> ApiResource {
    ApiResource {
        group: "coordination.k8s.io".to_string(),
        version: "v1".to_string(),
        api_version: "coordination.k8s.io/v1".to_string(),
        kind: "Lease".to_string(),
        plural: "leases".to_string(),
    }
}

/// `2026-11-29T09:00:00Z` as a MicroTime, `2026-11-29T09:00:00.000000Z`.
fn micro(time: &str) -> String {
    match time.strip_suffix('Z') {
        Some(base) if !base.contains('.') => format!("{base}.000000Z"),
        _ => time.to_string(),
    }
}

impl KubernetesProvider {
    fn lock_name(&self) -> String {
        writ_compiler::lower::kubernetes::object_name(&["writ-lock", &self.project])
    }

    fn lock_api(&self) -> kube::Api<DynamicObject> {
        kube::Api::namespaced_with(self.client.clone(), &self.inventory_namespace, &leases())
    }

    fn lease_object(&self, lease: &Lease, mut object: DynamicObject) -> DynamicObject {
        object.metadata.labels = Some(BTreeMap::from([
            (MANAGED_BY.to_string(), MANAGER.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
        ]));
        object
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(EXPIRES.to_string(), lease.expires.clone());
        object.data["spec"] = json!({
            "holderIdentity": lease.holder,
            "leaseDurationSeconds": lease.seconds,
            "renewTime": micro(&lease.now),
        });
        object
    }

    pub(crate) async fn take_lock(&self, lease: &Lease) -> Result<(), ProviderError> {
        let name = self.lock_name();
        let api = self.lock_api();
        let params = PostParams {
            field_manager: Some("writ".to_string()),
            ..PostParams::default()
        };
        if !lease.renewing {
            let mut fresh = DynamicObject::new(&name, &leases());
            fresh.metadata.namespace = Some(self.inventory_namespace.clone());
            let fresh = self.lease_object(lease, fresh);
            match self
                .call("taking the project's lock", || api.create(&params, &fresh))
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) if Reason::of(&error) == Some(Reason::AlreadyExists) => {}
                Err(error) => return Err(error),
            }
        }
        let Some(current) = self
            .call("reading the project's lock", || api.get_opt(&name))
            .await?
        else {
            // Released between the two calls (or, renewing, lost): the run
            // is asked to start again rather than loop here.
            return Err(ProviderError::new(
                ErrorClass::Conflict,
                Some("Locked"),
                format!(
                    "{}: the project's lock was released or lost while writ took it; run again",
                    self.address
                ),
            ));
        };
        let held_by = current.data["spec"]["holderIdentity"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let until = annotation(&current, EXPIRES).unwrap_or_default();
        if held_by != lease.holder && (lease.renewing || !Lease::ended(&until, &lease.now)) {
            return Err(Lease::held(&self.address, &held_by, &until));
        }
        // Ours (a renewal), or ended: write ours over exactly what was read.
        let renewed = self.lease_object(lease, current);
        match self
            .call("renewing the project's lock", || {
                api.replace(&name, &params, &renewed)
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if error.class == ErrorClass::Conflict => Err(Lease::held(
                &self.address,
                "another run, which took it over at the same moment",
                "its lease",
            )),
            Err(error) => Err(error),
        }
    }

    /// The lock as it stands, if there is one.
    pub(crate) async fn read_lock(&self) -> Result<Option<LockRecord>, ProviderError> {
        let name = self.lock_name();
        let api = self.lock_api();
        let current = self
            .call("reading the project's lock", || api.get_opt(&name))
            .await?;
        Ok(current.map(|lock| LockRecord {
            holder: lock.data["spec"]["holderIdentity"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            until: annotation(&lock, EXPIRES).unwrap_or_default(),
            interrupted: annotation(&lock, INTERRUPTED),
        }))
    }

    pub(crate) async fn release_lock(
        &self,
        holder: &str,
        release: Release<'_>,
    ) -> Result<bool, ProviderError> {
        let name = self.lock_name();
        let api = self.lock_api();
        let Some(mut current) = self
            .call("reading the project's lock", || api.get_opt(&name))
            .await?
        else {
            return Ok(false);
        };
        if current.data["spec"]["holderIdentity"].as_str() != Some(holder) {
            return Ok(false);
        }
        let record = match release {
            Release::Interrupted(what) => Some(what.to_string()),
            Release::Unchanged => annotation(&current, INTERRUPTED),
            Release::Converged => None,
        };
        if let Some(record) = record {
            // Kept, its lease ended, as the record of a run that stopped;
            // written over exactly what was read.
            let annotations = current
                .metadata
                .annotations
                .get_or_insert_with(Default::default);
            annotations.insert(EXPIRES.to_string(), LockRecord::ENDED.to_string());
            annotations.insert(INTERRUPTED.to_string(), record);
            let params = PostParams {
                field_manager: Some("writ".to_string()),
                ..PostParams::default()
            };
            return match self
                .call(
                    "recording the interrupted run in the project's lock",
                    || api.replace(&name, &params, &current),
                )
                .await
            {
                Ok(_) => Ok(true),
                Err(error) if error.class == ErrorClass::Conflict => Ok(false),
                Err(error) => Err(error),
            };
        }
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: current.metadata.resource_version.clone(),
                uid: current.metadata.uid.clone(),
            }),
            ..DeleteParams::default()
        };
        match self
            .call("releasing the project's lock", || {
                api.delete(&name, &params)
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if Reason::of(&error) == Some(Reason::NotFound) => Ok(false),
            // Taken over since it was read: no longer ours to release.
            Err(error) if error.class == ErrorClass::Conflict => Ok(false),
            Err(error) => Err(error),
        }
    }
}
