//! The project's lock in a cluster: a `coordination.k8s.io/v1` Lease
//! `writ-lock-<project>` in the inventory namespace, with the holder in
//! `spec.holderIdentity` and the end of its lease in the annotation
//! `writ.dev/lock-expires` (RFC 3339; `renewTime` and
//! `leaseDurationSeconds` say the same for kubectl).
//!
//! A run that stops partway records it in the Lease: the annotations
//! `writ.dev/lock-interrupted` (who stopped where) and
//! `writ.dev/lock-interrupted-agents` (the agents it left, space-separated;
//! absent: any agent). The Lease then stays with no holder and its lease
//! ended, so the next run takes it with a `PUT` on the `resourceVersion`
//! read, as atomic as creating it. So does a run that takes over a Lease
//! whose run never gave it back. Plans read it (one request) and call what
//! such a run left half-done an interrupted apply; a run that converges
//! deletes the Lease.
//!
//! Creating the Lease takes the lock; renewing it, or taking over one whose
//! lease ended, is a `PUT` with the `resourceVersion` read, so of two runs
//! that try at once exactly one succeeds (the other gets 409).

use crate::{KubernetesProvider, Reason};
use kube::api::{ApiResource, DeleteParams, DynamicObject, Preconditions};
use serde_json::json;
use std::collections::BTreeMap;
use writ_compiler::ownership::kubernetes::{MANAGED_BY, MANAGER, PROJECT_LABEL};
use writ_provider_core::{ErrorClass, Held, Lease, LockRecord, ProviderError, Release, Unfinished};

const EXPIRES: &str = "writ.dev/lock-expires";
const INTERRUPTED: &str = "writ.dev/lock-interrupted";
const INTERRUPTED_AGENTS: &str = "writ.dev/lock-interrupted-agents";

/// The record of a run that stopped partway, if the Lease holds one.
fn record_of(lease: &DynamicObject) -> Option<Unfinished> {
    Some(Unfinished {
        what: annotation(lease, INTERRUPTED)?,
        agents: annotation(lease, INTERRUPTED_AGENTS).map(|list| {
            list.split(' ')
                .filter(|a| !a.is_empty())
                .map(str::to_string)
                .collect()
        }),
    })
}

/// Writes `record` into the Lease's annotations, over any earlier one.
fn set_record(lease: &mut DynamicObject, record: &Unfinished) {
    let annotations = lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.insert(INTERRUPTED.to_string(), record.what.clone());
    // A Lease's annotations hold 256 KiB in all: past 64 KiB of names, the
    // record covers every agent.
    match record.agents.as_ref().map(|agents| agents.join(" ")) {
        Some(list) if list.len() <= 64 << 10 => {
            annotations.insert(INTERRUPTED_AGENTS.to_string(), list)
        }
        _ => annotations.remove(INTERRUPTED_AGENTS),
    };
}

/// The Lease's holder, empty when none (a Lease kept only as a record).
fn holder_of(lease: &DynamicObject) -> &str {
    lease.data["spec"]["holderIdentity"]
        .as_str()
        .unwrap_or_default()
}

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

    /// A Lease of this project's, not yet made, its lease ending `until`.
    fn new_lease(&self, until: &str) -> DynamicObject {
        let mut fresh = DynamicObject::new(&self.lock_name(), &leases());
        fresh.metadata.namespace = Some(self.inventory_namespace.clone());
        self.labelled(fresh, until)
    }

    /// `object` labelled as the project's, its lease ending `until`.
    fn labelled(&self, mut object: DynamicObject, until: &str) -> DynamicObject {
        object.metadata.labels = Some(BTreeMap::from([
            (MANAGED_BY.to_string(), MANAGER.to_string()),
            (PROJECT_LABEL.to_string(), self.project.clone()),
        ]));
        object
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(EXPIRES.to_string(), until.to_string());
        object
    }

    fn lease_object(&self, lease: &Lease, object: DynamicObject) -> DynamicObject {
        let mut object = self.labelled(object, &lease.expires);
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
        let params = crate::writ_params();
        if !lease.renewing {
            let fresh = self.lease_object(lease, self.new_lease(&lease.expires));
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
        let held_by = holder_of(&current).to_string();
        let until = annotation(&current, EXPIRES).unwrap_or_default();
        if held_by != lease.holder && (lease.renewing || !Lease::ended(&until, &lease.now)) {
            return Err(Lease::held(&self.address, &held_by, &until));
        }
        // Ours (a renewal), or ended: write ours over exactly what was read.
        // A run that never gave the lock back is added to the record
        // first (it may have left any agent half-done).
        let mut current = current;
        if !held_by.is_empty() && held_by != lease.holder {
            let dead = LockRecord::abandoned(&held_by, &until);
            let record = match record_of(&current) {
                Some(earlier) => earlier.and(&dead),
                None => dead,
            };
            set_record(&mut current, &record);
        }
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

    /// The lock as it stands.
    pub(crate) async fn read_lock(&self) -> Result<LockRecord, ProviderError> {
        let name = self.lock_name();
        let api = self.lock_api();
        let Some(lease) = self
            .call("reading the project's lock", || api.get_opt(&name))
            .await?
        else {
            return Ok(LockRecord::default());
        };
        let holder = holder_of(&lease);
        Ok(LockRecord {
            held: (!holder.is_empty()).then(|| Held {
                holder: holder.to_string(),
                until: annotation(&lease, EXPIRES).unwrap_or_default(),
            }),
            unfinished: record_of(&lease),
        })
    }

    pub(crate) async fn release_lock(
        &self,
        holder: &str,
        release: Release<'_>,
    ) -> Result<bool, ProviderError> {
        // Twice at most: a record that meets a write by another run is
        // written again over what that run wrote.
        for _ in 0..2 {
            if let Some(released) = self.try_release(holder, release).await? {
                return Ok(released);
            }
        }
        Err(ProviderError::new(
            ErrorClass::Conflict,
            Some("Locked"),
            format!(
                "{}: the record of this unfinished run could not be written (the lock kept changing), so the next plans will call what it left drift",
                self.address
            ),
        ))
    }

    /// One attempt: `None` when a write met another run's.
    async fn try_release(
        &self,
        holder: &str,
        release: Release<'_>,
    ) -> Result<Option<bool>, ProviderError> {
        let name = self.lock_name();
        let api = self.lock_api();
        let params = crate::writ_params();
        let Some(mut current) = self
            .call("reading the project's lock", || api.get_opt(&name))
            .await?
        else {
            // Gone (released by `writ unlock`, or never taken): a run that
            // stopped still leaves its record, in a Lease of its own.
            let Release::Interrupted(record) = release else {
                return Ok(Some(false));
            };
            let mut fresh = self.new_lease(LockRecord::ENDED);
            fresh.data["spec"] = json!({});
            set_record(&mut fresh, record);
            return match self
                .call("recording the unfinished run", || {
                    api.create(&params, &fresh)
                })
                .await
            {
                Ok(_) => Ok(Some(false)),
                Err(error) if Reason::of(&error) == Some(Reason::AlreadyExists) => Ok(None),
                Err(error) => Err(error),
            };
        };
        let ours = holder_of(&current) == holder;
        let record = match release {
            Release::Interrupted(record) => Some(record.clone()),
            Release::Unchanged if ours => record_of(&current),
            _ => None,
        };
        if let Some(record) = record {
            // Kept as the record, with no holder and its lease ended; when
            // the lock is no longer ours, the record is added to the Lease
            // of the run that holds it now: this run did stop.
            set_record(&mut current, &record);
            if ours {
                current
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(EXPIRES.to_string(), LockRecord::ENDED.to_string());
                current.data["spec"] = json!({});
            }
            return match self
                .call("recording the unfinished run in the project's lock", || {
                    api.replace(&name, &params, &current)
                })
                .await
            {
                Ok(_) => Ok(Some(ours)),
                Err(error) if error.class == ErrorClass::Conflict => Ok(None),
                Err(error) => Err(error),
            };
        }
        if !ours {
            return Ok(Some(false));
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
            Ok(_) => Ok(Some(true)),
            Err(error) if Reason::of(&error) == Some(Reason::NotFound) => Ok(Some(false)),
            // Taken over since it was read: no longer ours to release.
            Err(error) if error.class == ErrorClass::Conflict => Ok(Some(false)),
            Err(error) => Err(error),
        }
    }
}
