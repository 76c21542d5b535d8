//! IAM's last-accessed data (the access advisor) for writ's roles: when
//! each role last attempted each service its policies allow, and each
//! tracked action. A report is a job: `GenerateServiceLastAccessedDetails`
//! starts it, `GetServiceLastAccessedDetails` is polled until it is done,
//! then read page by page.

use crate::{call, AwsProvider, IamCode};
use aws_sdk_iam::types::{AccessAdvisorUsageGranularityType, JobStatusType};
use std::time::Duration;
use writ_compiler::usage::{LastAccessed, ServiceAccess, TrackedAction};
use writ_provider_core::ProviderError;

/// How long a job may stay in progress before writ gives up on it.
const PATIENCE: Duration = Duration::from_secs(300);

/// The first wait between polls, doubled up to [`LONGEST_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(250);
const LONGEST_WAIT: Duration = Duration::from_secs(5);

impl AwsProvider {
    /// The last-accessed data of each role (by ARN), in order; `None` for
    /// a role that does not exist. Every job is started before any is
    /// polled, so they run side by side.
    pub async fn read_last_accessed(
        &self,
        roles: &[String],
    ) -> Result<Vec<Option<LastAccessed>>, ProviderError> {
        let mut jobs = Vec::with_capacity(roles.len());
        for role in roles {
            jobs.push(self.start_job(role).await?);
        }
        let mut found = Vec::with_capacity(roles.len());
        for (role, job) in roles.iter().zip(jobs) {
            found.push(match job {
                Some(job) => Some(self.finished_job(role, &job).await?),
                None => None,
            });
        }
        Ok(found)
    }

    /// Starts a role's report, at action level; `None` when IAM has no
    /// such role. Starting one twice (a retry) only makes a second job.
    async fn start_job(&self, role: &str) -> Result<Option<String>, ProviderError> {
        let started = call!(
            self,
            "GenerateServiceLastAccessedDetails",
            self.client
                .generate_service_last_accessed_details()
                .arn(role)
                .granularity(AccessAdvisorUsageGranularityType::ActionLevel)
        );
        match started {
            Ok(answer) => match answer.job_id() {
                Some(job) => Ok(Some(job.to_string())),
                None => Err(ProviderError::permanent(format!(
                    "GenerateServiceLastAccessedDetails for `{role}` answered no job id"
                ))),
            },
            Err(error) if IamCode::of(&error) == Some(IamCode::NoSuchEntity) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Polls a job until it is done, then reads every page of it.
    async fn finished_job(&self, role: &str, job: &str) -> Result<LastAccessed, ProviderError> {
        let mut waited = Duration::ZERO;
        let mut wait = FIRST_WAIT;
        let mut services = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = call!(
                self,
                "GetServiceLastAccessedDetails",
                self.client
                    .get_service_last_accessed_details()
                    .job_id(job)
                    .set_marker(marker.clone())
            )?;
            match page.job_status() {
                JobStatusType::Completed => {}
                JobStatusType::InProgress if marker.is_none() => {
                    if waited >= PATIENCE {
                        return Err(ProviderError::permanent(format!(
                            "IAM's last-accessed report for `{role}` (job {job}) is still in progress after {} s; try again later",
                            waited.as_secs()
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    waited += wait;
                    wait = (wait * 2).min(LONGEST_WAIT);
                    continue;
                }
                JobStatusType::InProgress => {
                    return Err(ProviderError::permanent(format!(
                        "IAM's last-accessed report for `{role}` (job {job}) went back to in progress while its pages were read; try again"
                    )));
                }
                JobStatusType::Failed => {
                    let why = page
                        .error()
                        .map(|e| format!("{}: {}", e.code(), e.message()))
                        .unwrap_or_else(|| "IAM gives no reason".to_string());
                    return Err(ProviderError::permanent(format!(
                        "IAM's last-accessed report for `{role}` (job {job}) failed: {why}"
                    )));
                }
                other => {
                    return Err(ProviderError::permanent(format!(
                        "IAM's last-accessed report for `{role}` (job {job}) is `{}`, which writ does not know",
                        other.as_str()
                    )));
                }
            }
            for service in page.services_last_accessed() {
                services.push(service_access(service));
            }
            match (page.is_truncated(), page.marker()) {
                (true, Some(next)) => marker = Some(next.to_string()),
                (true, None) => {
                    return Err(ProviderError::permanent(format!(
                    "GetServiceLastAccessedDetails for `{role}`: a truncated page without a marker"
                )))
                }
                (false, _) => {
                    return Ok(LastAccessed {
                        provider: self.address.clone(),
                        role: role.to_string(),
                        generated: page.job_completion_date().secs(),
                        services,
                    })
                }
            }
        }
    }
}

/// One service's entry, its tracked actions named as policies name them
/// (`s3:CreateBucket`: IAM gives the action's name alone).
fn service_access(service: &aws_sdk_iam::types::ServiceLastAccessed) -> ServiceAccess {
    let prefix = service.service_namespace();
    ServiceAccess {
        service: prefix.to_string(),
        last: service.last_authenticated().map(|t| t.secs()),
        actions: service
            .tracked_actions_last_accessed
            .as_ref()
            .map(|tracked| {
                tracked
                    .iter()
                    .filter_map(|action| {
                        let name = action.action_name()?;
                        Some(TrackedAction {
                            action: match name.contains(':') {
                                true => name.to_string(),
                                false => format!("{prefix}:{name}"),
                            },
                            last: action.last_accessed_time().map(|t| t.secs()),
                        })
                    })
                    .collect()
            }),
    }
}
