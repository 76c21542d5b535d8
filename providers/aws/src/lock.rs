//! The project's lock in an account: a customer-managed policy
//! `writ-lock-<project>` under `/writ-lock/` (outside `/writ/`, so plans
//! never see it), tagged with who holds it and until when. It is attached
//! to nothing and allows only `sts:GetCallerIdentity`, so it grants nothing
//! even if someone attaches it.
//!
//! Creating a policy is atomic: the run whose `CreatePolicy` succeeds holds
//! the lock. A lock whose lease has ended (its run was killed) is taken
//! over by rewriting its tags and reading them back; IAM has no
//! compare-and-swap, so two runs that take over the same ended lease within
//! the same moment could both believe they hold it (the read-back narrows
//! that window to a request).
//!
//! A run that stops partway records it in a second policy beside the lock,
//! `writ-unfinished-<project>`, tagged with who stopped where and which
//! agents it left (`writ:unfinished`, `writ:unfinished-agents-N`), and
//! deletes the lock as usual, so taking the lock stays atomic. So does a
//! run that takes over a lock whose run never gave it back. Plans read both
//! (two requests) and call what such a run left half-done an interrupted
//! apply; a run that converges deletes the record.
//!
//! Every tag write names the project (`writ:project`), so an identity
//! allowed to tag only its project's objects may write them.

use crate::{call, AwsProvider, IamCode};
use aws_sdk_iam::types::Tag;
use writ_compiler::ownership::aws::PROJECT_TAG;
use writ_provider_core::{ErrorClass, Held, Lease, LockRecord, ProviderError, Release, Unfinished};

const HOLDER_TAG: &str = "writ:lock-holder";
const EXPIRES_TAG: &str = "writ:lock-expires";
const UNFINISHED_TAG: &str = "writ:unfinished";
/// `writ:unfinished-agents-1`, `-2`, …: the agents left, space-separated,
/// in tag values of at most 256 characters.
const AGENTS_TAG: &str = "writ:unfinished-agents-";
/// IAM allows 50 tags on a policy; the rest say "any agent".
const MOST_AGENT_TAGS: usize = 40;
const PATH: &str = "/writ-lock/";
const DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity","Resource":"*"}]}"#;

fn tag(key: &str, value: &str) -> Result<Tag, ProviderError> {
    Tag::builder()
        .key(key)
        .value(writ_compiler::ownership::aws::tag_value(value))
        .build()
        .map_err(|e| ProviderError::permanent(format!("a lock tag: {e}")))
}

/// The record's tags: what happened, and the agents in as many tags as
/// they need (none when there are too many to name: any agent).
fn record_tags(record: &Unfinished) -> Result<Vec<Tag>, ProviderError> {
    let mut tags = vec![tag(UNFINISHED_TAG, &record.what)?];
    let Some(agents) = &record.agents else {
        return Ok(tags);
    };
    let mut chunks: Vec<String> = Vec::new();
    let mut chunk = String::new();
    for agent in agents {
        if !chunk.is_empty() && chunk.len() + 1 + agent.len() > 256 {
            chunks.push(std::mem::take(&mut chunk));
        }
        if !chunk.is_empty() {
            chunk.push(' ');
        }
        chunk.push_str(agent);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    if chunks.is_empty() || chunks.len() > MOST_AGENT_TAGS || agents.iter().any(|a| a.len() > 256) {
        return Ok(tags);
    }
    for (index, chunk) in chunks.iter().enumerate() {
        tags.push(tag(&format!("{AGENTS_TAG}{}", index + 1), chunk)?);
    }
    Ok(tags)
}

impl AwsProvider {
    fn lock_name(&self) -> String {
        format!("writ-lock-{}", self.project)
    }

    fn lock_path_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:policy{PATH}{name}",
            self.partition, self.account
        )
    }

    fn lock_arn(&self) -> String {
        self.lock_path_arn(&self.lock_name())
    }

    fn record_arn(&self) -> String {
        self.lock_path_arn(&format!("writ-unfinished-{}", self.project))
    }

    /// A policy's tags, if it exists.
    async fn policy_tags(&self, arn: String) -> Result<Option<Vec<Tag>>, ProviderError> {
        match call!(
            self,
            "ListPolicyTags",
            self.client.list_policy_tags().policy_arn(&arn)
        ) {
            Ok(tags) => Ok(Some(tags.tags().to_vec())),
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Deletes the lock or the record; one already gone counts as deleted.
    async fn delete_lock_policy(&self, arn: String) -> Result<(), ProviderError> {
        match call!(
            self,
            "DeletePolicy",
            self.client.delete_policy().policy_arn(&arn)
        ) {
            Err(error) if IamCode::of(&error) != Some(IamCode::NoSuchEntity) => Err(error),
            _ => Ok(()),
        }
    }

    /// Who holds the lock and until when, if it exists.
    async fn read_lease(&self) -> Result<Option<Held>, ProviderError> {
        Ok(self.policy_tags(self.lock_arn()).await?.map(|tags| {
            let find = |key: &str| {
                tags.iter()
                    .find(|t| t.key() == key)
                    .map(|t| t.value().to_string())
                    .unwrap_or_default()
            };
            Held {
                holder: find(HOLDER_TAG),
                until: find(EXPIRES_TAG),
            }
        }))
    }

    /// The record of a run that stopped partway, if there is one.
    async fn read_record(&self) -> Result<Option<Unfinished>, ProviderError> {
        Ok(self.policy_tags(self.record_arn()).await?.map(|tags| {
            let find = |key: &str| {
                tags.iter()
                    .find(|t| t.key() == key)
                    .map(|t| t.value().to_string())
            };
            let mut agents: Vec<String> = Vec::new();
            for index in 1.. {
                let Some(chunk) = find(&format!("{AGENTS_TAG}{index}")) else {
                    break;
                };
                agents.extend(
                    chunk
                        .split(' ')
                        .filter(|a| !a.is_empty())
                        .map(str::to_string),
                );
            }
            Unfinished {
                what: find(UNFINISHED_TAG).unwrap_or_default(),
                agents: (!agents.is_empty()).then_some(agents),
            }
        }))
    }

    /// The lock and the record, as plans read them.
    pub(crate) async fn read_lock(&self) -> Result<LockRecord, ProviderError> {
        Ok(LockRecord {
            held: self.read_lease().await?,
            unfinished: self.read_record().await?,
        })
    }

    /// Writes the record of a run that stopped partway, over any earlier
    /// one (what it did not finish, this run did not either).
    async fn write_record(&self, record: &Unfinished) -> Result<(), ProviderError> {
        let tags = record_tags(record)?;
        let created = call!(
            self,
            "CreatePolicy",
            self.client
                .create_policy()
                .policy_name(format!("writ-unfinished-{}", self.project))
                .path(PATH)
                .policy_document(DOCUMENT)
                .description("writ's record of an apply that stopped partway (see its tags)")
                .set_tags(Some(
                    std::iter::once(tag(PROJECT_TAG, &self.project)?)
                        .chain(tags.iter().cloned())
                        .collect(),
                ))
        );
        match created {
            Ok(_) => return Ok(()),
            Err(error) if IamCode::of(&error) == Some(IamCode::EntityAlreadyExists) => {}
            Err(error) => return Err(error),
        }
        // Replaced: the old agents' tags go first, then the new ones.
        let old: Vec<String> = self
            .policy_tags(self.record_arn())
            .await?
            .unwrap_or_default()
            .iter()
            .map(|t| t.key().to_string())
            .filter(|k| k.starts_with(AGENTS_TAG))
            .collect();
        if !old.is_empty() {
            call!(
                self,
                "UntagPolicy",
                self.client
                    .untag_policy()
                    .policy_arn(self.record_arn())
                    .set_tag_keys(Some(old.clone()))
            )?;
        }
        call!(
            self,
            "TagPolicy",
            self.client
                .tag_policy()
                .policy_arn(self.record_arn())
                .set_tags(Some(
                    std::iter::once(tag(PROJECT_TAG, &self.project)?)
                        .chain(tags.iter().cloned())
                        .collect(),
                ))
        )?;
        Ok(())
    }

    async fn write_lease(&self, lease: &Lease) -> Result<(), ProviderError> {
        call!(
            self,
            "TagPolicy",
            self.client
                .tag_policy()
                .policy_arn(self.lock_arn())
                .tags(tag(PROJECT_TAG, &self.project)?)
                .tags(tag(HOLDER_TAG, &lease.holder)?)
                .tags(tag(EXPIRES_TAG, &lease.expires)?)
        )?;
        Ok(())
    }

    pub(crate) async fn take_lock(&self, lease: &Lease) -> Result<(), ProviderError> {
        let holder = writ_compiler::ownership::aws::tag_value(&lease.holder);
        if lease.renewing {
            return match self.read_lease().await? {
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
        let Some(lock) = self.read_lease().await? else {
            return Ok(None);
        };
        if lock.holder != holder && !Lease::ended(&lock.until, &lease.now) {
            return Ok(Some(Err(Lease::held(
                &self.address,
                &lock.holder,
                &lock.until,
            ))));
        }
        // Its run never gave it back: what that run may have left (any
        // agent) is added to the record, then the lease is ours. A record
        // that cannot be written must not keep the project locked: this is
        // the one write that is only tried.
        if lock.holder != holder {
            let dead = LockRecord::abandoned(&lock.holder, &lock.until);
            let record = match self.read_record().await {
                Ok(Some(earlier)) => earlier.and(&dead),
                _ => dead,
            };
            let _ = self.write_record(&record).await;
        }
        self.write_lease(lease).await?;
        Ok(Some(match self.read_lease().await? {
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
        let ours = matches!(self.read_lease().await?, Some(lock) if lock.holder == holder);
        // Recorded even when the lock is no longer ours: the run did stop.
        // Written or not, the lock is given back; a record that could not be
        // written is the error, after.
        let mut unrecorded = None;
        match release {
            Release::Interrupted(record) => unrecorded = self.write_record(record).await.err(),
            Release::Converged if ours => self.delete_lock_policy(self.record_arn()).await?,
            _ => {}
        }
        if ours {
            self.delete_lock_policy(self.lock_arn()).await?;
        }
        // Not ours: someone else's now (ours ended and was taken over), or
        // gone.
        let released = ours;
        match unrecorded {
            Some(error) => Err(ProviderError::new(
                error.class,
                error.code.as_deref(),
                format!(
                    "{}: the record of this unfinished run could not be written, so the next plans will call what it left drift: {}",
                    self.address, error.message
                ),
            )),
            None => Ok(released),
        }
    }
}
