//! Reading what agents did: AWS CloudTrail records and Kubernetes audit
//! events, read a line at a time (CloudTrail writes each file on one line;
//! a document written over several lines is read whole), each record put
//! to the compiler's usage tally and dropped.
//!
//! - CloudTrail: files in CloudTrail's `{"Records": […]}` form, plain or
//!   gzipped (as CloudTrail writes them to S3), or the output of `aws
//!   cloudtrail lookup-events` (`{"Events": [{"CloudTrailEvent": "…"}]}`).
//!   A request is the agent's when its session was issued by one of the
//!   project's roles (`userIdentity.sessionContext.sessionIssuer.arn`).
//!   Its action is `eventSource` and `eventName` as IAM names them (the
//!   catalogue says which exist; a few events are spelt otherwise); events
//!   writ cannot name are counted, by name, not guessed. Denied calls
//!   (`errorCode` `AccessDenied`, `UnauthorizedOperation`, …) are counted
//!   apart. A record seen twice (by `eventID`) counts once.
//! - Kubernetes audit: `audit.k8s.io/v1` `Event`s as JSON lines (the log
//!   backend) or an `EventList` (a webhook's batch). A request is the
//!   agent's when its user is a service account an agent runs as; only
//!   completed requests (`ResponseComplete`) count, once per `auditID`;
//!   a 403 is a denied attempt.
//!
//! A folder is read file by file, in name order.

use crate::error::CliError;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use writ_compiler::model::{AgentId, Model, Placement, ProviderId};
use writ_compiler::usage::{self, LastAccessed, Tally, Use};

/// Where usage is read from: the flags `writ usage` and `writ tighten`
/// share.
#[derive(Debug, Clone, clap::Args)]
pub struct Sources {
    /// A log: a CloudTrail file (plain or gzipped) or `lookup-events`
    /// output, a Kubernetes audit log (JSON lines or an `EventList`), or a
    /// folder of them. May be given more than once.
    #[arg(long, value_name = "FILE", required_unless_present = "live")]
    pub from: Vec<PathBuf>,
    /// Also read IAM's last-accessed data of each agent's role, live (when
    /// each service and tracked action was last attempted).
    #[arg(long)]
    pub live: bool,
    /// With `--live`: only these AWS providers (repeatable).
    #[arg(long = "only", value_name = "KIND.NAME", requires = "live")]
    pub only: Vec<String>,
    /// How far back to count, ending today (`90d`, `12h`).
    #[arg(long, default_value = "90d")]
    pub since: String,
}

/// Reads the logs at `files` against the model, counting the window
/// `since` (`90d`) back from the end of `today`: the usage report,
/// with IAM's last-accessed data, read before, for the agents it covers.
pub fn usage(
    model: &Model,
    project: &str,
    files: &[PathBuf],
    since: &str,
    today: writ_compiler::values::Date,
    last_accessed: Vec<(AgentId, ProviderId, LastAccessed)>,
) -> Result<writ_compiler::usage::Report, CliError> {
    let window = writ_compiler::values::Duration::parse(since)
        .map_err(|e| CliError::Message(format!("`--since {since}`: {e}")))?;
    let end = (today.days_since_epoch() + 1) * 86_400;
    let start = end - i64::try_from(window.0).unwrap_or(i64::MAX);
    let mut tally = Tally::new(model, project, start);
    for (agent, provider, access) in last_accessed {
        tally.last_accessed(agent, provider, access);
    }
    let mut seen = Seen::default();
    let context = Context { model, project };
    for file in files {
        let before = tally.records();
        read(file, &context, &mut tally, &mut seen)?;
        if tally.records() == before {
            return Err(CliError::Message(format!(
                "`{}` holds no record: name CloudTrail files (or the folder of a trail's `AWSLogs/…/CloudTrail/`) or a Kubernetes audit log",
                file.display()
            )));
        }
    }
    Ok(tally.report())
}

/// What to read logs against.
pub struct Context<'a> {
    pub model: &'a Model,
    pub project: &'a str,
}

/// Reads every log at `path` (a file, or a folder of them) into `tally`.
pub fn read(
    path: &Path,
    context: &Context,
    tally: &mut Tally,
    seen: &mut Seen,
) -> Result<(), CliError> {
    if path.is_dir() {
        // A trail's folders nest (`REGION/YYYY/MM/DD/`): every file under
        // it, but hidden ones and CloudTrail's digests (not records).
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| CliError::Message(format!("cannot read `{}`: {e}", path.display())))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|p| {
                p.file_name().is_some_and(|n| {
                    let name = n.to_string_lossy();
                    !name.starts_with('.') && name != "CloudTrail-Digest"
                })
            })
            .collect();
        entries.sort();
        for entry in entries {
            read(&entry, context, tally, seen)?;
        }
        return Ok(());
    }
    read_file(path, context, tally, seen)
}

/// The ids of the records counted, so that one read twice counts once.
#[derive(Default)]
pub struct Seen {
    ids: HashSet<u128>,
}

impl Seen {
    /// Whether the id is new (and now seen).
    fn first(&mut self, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        // 128 bits of two hashes: a collision is not worth a string each.
        use std::hash::{Hash, Hasher};
        let mut a = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut a);
        let mut b = std::collections::hash_map::DefaultHasher::new();
        (id, 0x5eed_u32).hash(&mut b);
        self.ids
            .insert((u128::from(a.finish()) << 64) | u128::from(b.finish()))
    }
}

fn read_file(
    path: &Path,
    context: &Context,
    tally: &mut Tally,
    seen: &mut Seen,
) -> Result<(), CliError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::Message(format!("cannot read `{shown}`: {e}")))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    // Gzip, by its magic number, whatever the file's name.
    let gzipped = reader
        .fill_buf()
        .map(|head| head.starts_with(&[0x1f, 0x8b]))
        .map_err(|e| CliError::Message(format!("cannot read `{shown}`: {e}")))?;
    let reader: Box<dyn Read> = if gzipped {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let mut reading = Reading {
        context,
        tally,
        seen,
        file: &shown,
    };
    let unreadable = |error: serde_json::Error| {
        CliError::Message(format!(
            "`{shown}` is not a CloudTrail log or a Kubernetes audit log: {error}"
        ))
    };
    let failed = |e: std::io::Error| CliError::Message(format!("cannot read `{shown}`: {e}"));
    // Line by line: an audit log holds one event a line, and CloudTrail
    // writes each file on one line. A value that does not end with its
    // line (a document written over many lines) is read whole.
    let mut line = Vec::new();
    let mut lines = 0usize;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).map_err(failed)? == 0 {
            return Ok(());
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines += 1;
        // The first value cut at its line's end (looked at before any of
        // its records is counted): the document is written over several
        // lines.
        if lines == 1 {
            if let Err(error) = serde_json::from_slice::<IgnoredAny>(&line) {
                if error.is_eof() {
                    reader.read_to_end(&mut line).map_err(failed)?;
                    return parse(&line, &mut reading).map_err(unreadable);
                }
            }
        }
        parse(&line, &mut reading).map_err(unreadable)?;
    }
}

/// One JSON value (and nothing else but white space), its records handed
/// to `reading`.
fn parse(text: &[u8], reading: &mut Reading) -> Result<(), serde_json::Error> {
    let mut json = serde_json::Deserializer::from_slice(text);
    TopSeed { reading }.deserialize(&mut json)?;
    json.end()
}

/// One top-level JSON value of a log, its records handed on as they are
/// read.
struct TopSeed<'r, 'a, 'b, 'm> {
    reading: &'r mut Reading<'a, 'b, 'm>,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a CloudTrail log (`Records` or `Events`), an audit `Event` or an `EventList`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // An audit event's fields, gathered as they come (its `kind` may
        // come anywhere).
        let mut event = AuditEvent::default();
        let mut records = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "Records" => {
                    records = true;
                    map.next_value_seed(Each {
                        reading: &mut *self.reading,
                        form: Form::Record,
                    })?;
                }
                "Events" => {
                    records = true;
                    map.next_value_seed(Each {
                        reading: &mut *self.reading,
                        form: Form::LookedUp,
                    })?;
                }
                "items" => {
                    records = true;
                    map.next_value_seed(Each {
                        reading: &mut *self.reading,
                        form: Form::Audit,
                    })?;
                }
                "auditID" => event.audit_id = map.next_value()?,
                "stage" => event.stage = map.next_value()?,
                "verb" => event.verb = map.next_value()?,
                "user" => event.user = map.next_value()?,
                "objectRef" => event.object = map.next_value()?,
                "responseStatus" => event.status = map.next_value()?,
                "stageTimestamp" => event.time = map.next_value()?,
                "annotations" => event.annotations = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // Not a list: one audit event.
        if !records {
            if event.audit_id.is_empty() && event.stage.is_empty() {
                return Err(serde::de::Error::custom(
                    "neither `Records`, `Events`, `items` nor an audit event's `auditID` and `stage`",
                ));
            }
            self.reading
                .audit(event)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Form {
    /// A CloudTrail record.
    Record,
    /// A record of `lookup-events`.
    LookedUp,
    /// An audit event.
    Audit,
}

/// A list of records, each handed on as it is read.
struct Each<'r, 'a, 'b, 'm> {
    reading: &'r mut Reading<'a, 'b, 'm>,
    form: Form,
}

impl<'de> DeserializeSeed<'de> for Each<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Each<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of records")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        match self.form {
            Form::Record => {
                while let Some(record) = seq.next_element::<CloudTrail>()? {
                    self.reading.cloudtrail(record);
                }
            }
            Form::LookedUp => {
                while let Some(looked_up) = seq.next_element::<LookedUp>()? {
                    let record =
                        serde_json::from_str::<CloudTrail>(&looked_up.event).map_err(|e| {
                            serde::de::Error::custom(format!(
                                "a `CloudTrailEvent` is not a CloudTrail record: {e}"
                            ))
                        })?;
                    self.reading.cloudtrail(record);
                }
            }
            Form::Audit => {
                while let Some(event) = seq.next_element::<AuditEvent>()? {
                    self.reading
                        .audit(event)
                        .map_err(serde::de::Error::custom)?;
                }
            }
        }
        Ok(())
    }
}

/// One record of `lookup-events`: the CloudTrail record, as a string.
#[derive(Deserialize)]
struct LookedUp {
    #[serde(rename = "CloudTrailEvent")]
    event: String,
}

/// The fields of a CloudTrail record writ reads.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct CloudTrail {
    #[serde(rename = "eventID")]
    event_id: String,
    /// The same call, as recorded in each account it touched.
    #[serde(rename = "sharedEventID")]
    shared_event_id: Option<String>,
    event_category: Option<String>,
    event_time: String,
    event_source: String,
    event_name: String,
    error_code: Option<String>,
    recipient_account_id: Option<String>,
    user_identity: Identity,
    resources: Vec<CloudTrailResource>,
    request_parameters: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct Identity {
    account_id: Option<String>,
    session_context: Option<SessionContext>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct SessionContext {
    session_issuer: Option<Issuer>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Issuer {
    arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CloudTrailResource {
    #[serde(rename = "ARN")]
    arn: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// The fields of an audit event writ reads.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct AuditEvent {
    #[serde(rename = "auditID")]
    audit_id: String,
    stage: String,
    verb: String,
    user: AuditUser,
    #[serde(rename = "objectRef")]
    object: Option<ObjectRef>,
    #[serde(rename = "responseStatus")]
    status: Option<Status>,
    #[serde(rename = "stageTimestamp")]
    time: Option<String>,
    annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuditUser {
    username: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ObjectRef {
    resource: String,
    subresource: String,
    namespace: String,
    name: String,
    api_group: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Status {
    code: u16,
}

struct Reading<'a, 'b, 'm> {
    context: &'a Context<'a>,
    tally: &'a mut Tally<'m>,
    seen: &'a mut Seen,
    file: &'b str,
}

impl Reading<'_, '_, '_> {
    fn cloudtrail(&mut self, record: CloudTrail) {
        let model = self.context.model;
        let issuer = record
            .user_identity
            .session_context
            .as_ref()
            .and_then(|c| c.session_issuer.as_ref())
            .and_then(|i| i.arn.as_deref());
        let Some(agent) =
            issuer.and_then(|arn| usage::agent_of_role(model, self.context.project, arn))
        else {
            self.tally
                .skip("not a session of one of the project's roles");
            return;
        };
        // The agent's account: its role's (the bucket owner's copy of a
        // cross-account call is recorded in the other account too).
        let account = issuer
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .or(record.user_identity.account_id.as_deref())
            .unwrap_or_default();
        let Some(provider) = usage::aws_provider(model, account) else {
            self.tally
                .skip("an AWS account no provider of the project names");
            return;
        };
        // One call, counted once: a cross-account call's copies share
        // an id.
        let id = record
            .shared_event_id
            .as_deref()
            .map(|shared| format!("{shared}/{}", record.event_name))
            .unwrap_or_else(|| record.event_id.clone());
        if !self.seen.first(&id) {
            self.tally.skip("read before (the same `eventID`)");
            return;
        }
        let Some(action) = iam_action(&record) else {
            let service = record
                .event_source
                .strip_suffix(".amazonaws.com")
                .unwrap_or(&record.event_source);
            self.tally.unmapped(
                agent,
                prefix_of(service),
                &format!("{}:{}", record.event_source, record.event_name),
            );
            return;
        };
        let Some(time) = seconds(&record.event_time) else {
            self.tally.skip("no readable `eventTime`");
            return;
        };
        let denied = record.error_code.as_deref().is_some_and(|code| {
            code.contains("AccessDenied")
                || code.contains("Unauthorized")
                || code.starts_with("AuthorizationError")
                || code == "InsufficientPrivilegesException"
        });
        // An S3 object's event names its bucket too: the object is what
        // the action is on.
        let objects = record
            .resources
            .iter()
            .any(|r| r.kind.as_deref() == Some("AWS::S3::Object"));
        let mut resources: Vec<String> = record
            .resources
            .iter()
            .filter(|r| !objects || r.kind.as_deref() == Some("AWS::S3::Object"))
            .filter_map(|r| r.arn.clone())
            .collect();
        if resources.is_empty() {
            resources.extend(s3_resource(&record));
        }
        let base = Use {
            agent,
            provider,
            action,
            resource: None,
            placement: Placement::None,
            name: None,
            time,
            denied,
            data: record.event_category.as_deref() == Some("Data"),
        };
        if resources.is_empty() {
            self.tally.add(&base);
        }
        for resource in resources {
            self.tally.add(&Use {
                resource: Some(resource),
                ..base.clone()
            });
        }
    }

    fn audit(&mut self, event: AuditEvent) -> Result<(), CliError> {
        if event.stage != "ResponseComplete" {
            self.tally.skip("not a completed request (audit stage)");
            return Ok(());
        }
        let Some((namespace, account)) = event
            .user
            .username
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
        else {
            self.tally.skip("not a service account's request");
            return Ok(());
        };
        let agents = usage::agents_of_account(self.context.model, namespace, account);
        if agents.is_empty() {
            self.tally.skip("not a service account an agent runs as");
            return Ok(());
        }
        if !self.seen.first(&event.audit_id) {
            self.tally.skip("read before (the same `auditID`)");
            return Ok(());
        }
        let Some(object) = event.object else {
            self.tally
                .skip("not a request about a resource (a path of the API server)");
            return Ok(());
        };
        let Some(time) = event.time.as_deref().and_then(seconds) else {
            return Err(CliError::Message(format!(
                "`{}`: audit event `{}` has no readable `stageTimestamp`",
                self.file, event.audit_id
            )));
        };
        let mut resource = object.resource.clone();
        if !object.api_group.is_empty() {
            resource = format!("{resource}.{}", object.api_group);
        }
        if !object.subresource.is_empty() {
            resource = format!("{resource}/{}", object.subresource);
        }
        let placement = if object.namespace.is_empty() {
            Placement::Cluster
        } else {
            Placement::Namespace(object.namespace.clone())
        };
        // Refused by RBAC, not by admission after RBAC allowed it.
        let denied = match event.annotations.get("authorization.k8s.io/decision") {
            Some(decision) => decision == "forbid",
            None => event.status.as_ref().is_some_and(|s| s.code == 403),
        };
        // The same account in two clusters: each agent that runs as it.
        for (agent, provider) in agents {
            self.tally.add(&Use {
                agent,
                provider,
                action: event.verb.clone(),
                resource: Some(resource.clone()),
                placement: placement.clone(),
                name: (!object.name.is_empty()).then(|| object.name.clone()),
                time,
                denied,
                // An audit log records every request at its level.
                data: true,
            });
        }
        Ok(())
    }
}

/// RFC 3339 to seconds since 1970.
fn seconds(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Events whose name is not the IAM action they are authorised as.
const RENAMED: &[(&str, &str, &str)] = &[
    ("s3", "ListObjects", "ListBucket"),
    ("s3", "ListObjectsV2", "ListBucket"),
    ("s3", "ListObjectVersions", "ListBucketVersions"),
    ("s3", "HeadObject", "GetObject"),
    ("s3", "HeadBucket", "ListBucket"),
    ("s3", "CreateMultipartUpload", "PutObject"),
    ("s3", "UploadPart", "PutObject"),
    ("s3", "UploadPartCopy", "PutObject"),
    ("s3", "CompleteMultipartUpload", "PutObject"),
    ("s3", "CopyObject", "PutObject"),
    ("s3", "DeleteObjects", "DeleteObject"),
    ("s3", "ListBuckets", "ListAllMyBuckets"),
    ("s3", "ListParts", "ListMultipartUploadParts"),
    ("s3", "ListMultipartUploads", "ListBucketMultipartUploads"),
    ("s3", "GetBucketLifecycle", "GetLifecycleConfiguration"),
    ("s3", "PutBucketLifecycle", "PutLifecycleConfiguration"),
    ("s3", "DeleteBucketLifecycle", "PutLifecycleConfiguration"),
    ("s3", "GetBucketEncryption", "GetEncryptionConfiguration"),
    ("s3", "PutBucketEncryption", "PutEncryptionConfiguration"),
    ("s3", "DeleteBucketEncryption", "PutEncryptionConfiguration"),
    (
        "s3",
        "GetObjectLockConfiguration",
        "GetBucketObjectLockConfiguration",
    ),
    ("s3", "DeleteBucketCors", "PutBucketCORS"),
    ("s3", "DeleteBucketTagging", "PutBucketTagging"),
    (
        "s3",
        "DeleteBucketReplication",
        "PutReplicationConfiguration",
    ),
    ("s3", "SelectObjectContent", "GetObject"),
    ("lambda", "Invoke", "InvokeFunction"),
    ("sqs", "SendMessageBatch", "SendMessage"),
    ("sqs", "DeleteMessageBatch", "DeleteMessage"),
    (
        "sqs",
        "ChangeMessageVisibilityBatch",
        "ChangeMessageVisibility",
    ),
    ("sns", "PublishBatch", "Publish"),
    ("kms", "ReEncrypt", "ReEncryptFrom"),
];

/// Services whose event source is not their IAM prefix.
const PREFIXES: &[(&str, &str)] = &[
    ("monitoring", "cloudwatch"),
    ("tagging", "tag"),
    ("rdsdata", "rds-data"),
];

/// The IAM prefix of a service as its event source names it.
fn prefix_of(service: &str) -> &str {
    PREFIXES
        .iter()
        .find(|(s, _)| *s == service)
        .map_or(service, |(_, p)| p)
}

/// The IAM action of a record, if the catalogue knows it. Lambda's
/// management events carry the API's version (`UpdateFunctionCode20150331v2`);
/// an S3 object event on a version is authorised as the `…Version` action.
fn iam_action(record: &CloudTrail) -> Option<String> {
    let service = record.event_source.strip_suffix(".amazonaws.com")?;
    let prefix = prefix_of(service);
    let mut event = record.event_name.as_str();
    if prefix == "lambda" {
        let bare = event.trim_end_matches(|c: char| c.is_ascii_digit() || c == 'v');
        // Only a date-like suffix: `UpdateFunctionCode20150331v2`.
        if event.len() - bare.len() >= 8 {
            event = bare;
        }
    }
    let mut name = RENAMED
        .iter()
        .find(|(p, e, _)| *p == prefix && *e == event)
        .map_or(event.to_string(), |(_, _, action)| action.to_string());
    let versioned = record
        .request_parameters
        .as_ref()
        .and_then(|p| p.get("versionId"))
        .is_some();
    if prefix == "s3" && versioned {
        let version = match name.as_str() {
            "GetObject" => Some("GetObjectVersion"),
            "DeleteObject" => Some("DeleteObjectVersion"),
            "GetObjectAcl" => Some("GetObjectVersionAcl"),
            "PutObjectAcl" => Some("PutObjectVersionAcl"),
            "GetObjectTagging" => Some("GetObjectVersionTagging"),
            "PutObjectTagging" => Some("PutObjectVersionTagging"),
            _ => None,
        };
        if let Some(version) = version {
            name = version.to_string();
        }
    }
    let catalogue = writ_compiler::facts::aws::catalogue();
    let action = catalogue.service(prefix)?.action(&name)?;
    Some(format!("{prefix}:{}", action.name))
}

/// S3 data events may name their object only in their parameters.
fn s3_resource(record: &CloudTrail) -> Option<String> {
    if record.event_source != "s3.amazonaws.com" {
        return None;
    }
    let parameters = record.request_parameters.as_ref()?;
    let bucket = parameters.get("bucketName")?.as_str()?;
    Some(
        match parameters.get("key").and_then(serde_json::Value::as_str) {
            Some(key) => format!("arn:aws:s3:::{bucket}/{key}"),
            None => format!("arn:aws:s3:::{bucket}"),
        },
    )
}
