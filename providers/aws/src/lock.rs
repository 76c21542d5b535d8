//! The project's lock in an account: a customer-managed policy
//! `writ-lock-<project>` under `/writ-lock/` (outside `/writ/`, so plans
//! never see it), tagged with who holds it and until when. It is attached
//! to nothing and allows only `sts:GetCallerIdentity`, so it grants nothing
//! even if someone attaches it.
//!
//! A run that stops partway gives the lock back with its lease ended and
//! the tag `writ:lock-interrupted` saying what happened; plans read it (one
//! request) and call what that run left half-done an interrupted apply.
//! The policy goes when a run converges.
//!
//! Creating a policy is atomic: the run whose `CreatePolicy` succeeds holds
//! the lock. A lock whose lease has ended is taken over by rewriting its
//! tags and reading them back; IAM has no compare-and-swap, so two runs that
//! take over the same ended lease within the same moment could both
//! believe they hold it (the read-back narrows that window to a request).

use crate::{call, AwsProvider, IamCode};
use aws_sdk_iam::types::Tag;
use writ_compiler::ownership::aws::PROJECT_TAG;
use writ_provider_core::{ErrorClass, Lease, LockRecord, ProviderError, Release};

const HOLDER_TAG: &str = "writ:lock-holder";
const EXPIRES_TAG: &str = "writ:lock-expires";
const INTERRUPTED_TAG: &str = "writ:lock-interrupted";
const PATH: &str = "/writ-lock/";
const DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#;

fn tag(key: &str, value: &str) -> Result<Tag, ProviderError> {
    Tag::builder()
        .key(key)
        .value(writ_compiler::ownership::aws::tag_value(value))
        .build()
        .map_err(|e| ProviderError::permanent(format!("a lock tag: {e}")))
}

impl AwsProvider {
    fn lock_name(&self) -> String {
        format!("writ-lock-{}", self.project)
    }

    fn lock_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:policy{PATH}{}",
            self.partition,
            self.account,
            self.lock_name()
        )
    }

    /// Who holds the lock, until when, and what a run that stopped partway
    /// recorded, if the lock exists.
    pub(crate) async fn read_lock(&self) -> Result<Option<LockRecord>, ProviderError> {
        match call!(
            self,
            "ListPolicyTags",
            self.client.list_policy_tags().policy_arn(self.lock_arn())
        ) {
            Ok(tags) => {
                let find = |key: &str| {
                    tags.tags()
                        .iter()
                        .find(|t| t.key() == key)
                        .map(|t| t.value().to_string())
                };
                Ok(Some(LockRecord {
                    holder: find(HOLDER_TAG).unwrap_or_default(),
                    until: find(EXPIRES_TAG).unwrap_or_default(),
                    interrupted: find(INTERRUPTED_TAG),
                }))
            }
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn write_lease(&self, lease: &Lease) -> Result<(), ProviderError> {
        call!(
            self,
            "TagPolicy",
            self.client
                .tag_policy()
                .policy_arn(self.lock_arn())
                .tags(tag(HOLDER_TAG, &lease.holder)?)
                .tags(tag(EXPIRES_TAG, &lease.expires)?)
        )?;
        Ok(())
    }

    pub(crate) async fn take_lock(&self, lease: &Lease) -> Result<(), ProviderError> {
        let holder = writ_compiler::ownership::aws::tag_value(&lease.holder);
        if lease.renewing {
            return match self.read_lock().await? {
                Some(lock) if lock.holder == holder => self.write_lease(lease).await,
                Some(lock) => Err(Lease::held(&self.address, &lock.holder, &lock.until)),
                None => Err(Lease::lost(&self.address)),
            };
        }
        // Twice at most: a lock released between our create and our read is
        // tried once more; anything stranger is an error, never a loop.
        for _ in 0..2 {
            match self.try_take(lease, &holder).await? {
                Some(taken) => return taken,
                None => continue,
            }
        }
        Err(ProviderError::new(
            ErrorClass::Conflict,
            Some("Locked"),
            format!(
                "{}: the lock `{}` can be neither created nor read (a policy of that name elsewhere in the account?); remove it, or run again",
                self.address,
                self.lock_name()
            ),
        ))
    }

    /// One attempt: `None` when the lock vanished between two calls.
    async fn try_take(
        &self,
        lease: &Lease,
        holder: &str,
    ) -> Result<Option<Result<(), ProviderError>>, ProviderError> {
        let created = call!(
            self,
            "CreatePolicy",
            self.client
                .create_policy()
                .policy_name(self.lock_name())
                .path(PATH)
                .policy_document(DOCUMENT)
                .description("writ's lock for this project: who applies now (see its tags)")
                .tags(tag(PROJECT_TAG, &self.project)?)
                .tags(tag(HOLDER_TAG, &lease.holder)?)
                .tags(tag(EXPIRES_TAG, &lease.expires)?)
        );
        match created {
            Ok(_) => return Ok(Some(Ok(()))),
            Err(error) if IamCode::of(&error) == Some(IamCode::EntityAlreadyExists) => {}
            Err(error) => return Err(error),
        }
        let Some(lock) = self.read_lock().await? else {
            return Ok(None);
        };
        if lock.holder != holder && !Lease::ended(&lock.until, &lease.now) {
            return Ok(Some(Err(Lease::held(
                &self.address,
                &lock.holder,
                &lock.until,
            ))));
        }
        // Ended (or ours from before): write our lease, then read it back.
        self.write_lease(lease).await?;
        Ok(Some(match self.read_lock().await? {
            Some(now) if now.holder == holder => Ok(()),
            Some(now) => Err(Lease::held(&self.address, &now.holder, &now.until)),
            None => Err(Lease::lost(&self.address)),
        }))
    }

    pub(crate) async fn release_lock(
        &self,
        holder: &str,
        release: Release<'_>,
    ) -> Result<bool, ProviderError> {
        let holder = writ_compiler::ownership::aws::tag_value(holder);
        let lock = match self.read_lock().await? {
            Some(lock) if lock.holder == holder => lock,
            // Someone else's now (ours ended and was taken over), or gone.
            _ => return Ok(false),
        };
        let record = match release {
            Release::Interrupted(what) => Some(what.to_string()),
            Release::Unchanged => lock.interrupted,
            Release::Converged => None,
        };
        if let Some(record) = record {
            // Kept, its lease ended, as the record of a run that stopped.
            call!(
                self,
                "TagPolicy",
                self.client
                    .tag_policy()
                    .policy_arn(self.lock_arn())
                    .tags(tag(EXPIRES_TAG, LockRecord::ENDED)?)
                    .tags(tag(INTERRUPTED_TAG, &record)?)
            )?;
            return Ok(true);
        }
        let deleted = call!(
            self,
            "DeletePolicy",
            self.client.delete_policy().policy_arn(self.lock_arn())
        );
        match deleted {
            Err(error) if IamCode::of(&error) != Some(IamCode::NoSuchEntity) => Err(error),
            _ => Ok(true),
        }
    }
}
