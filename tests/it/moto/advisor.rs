//! A local fake of IAM's access advisor, the two operations moto does not
//! implement: `GenerateServiceLastAccessedDetails` starts a job for a role
//! that exists (asked of moto, as IAM knows its roles), and
//! `GetServiceLastAccessedDetails` answers it as IAM does: `IN_PROGRESS`
//! for a while, then `COMPLETED` page by page (`Marker`, `IsTruncated`:
//! the fake's pages are small, to make clients follow them) or `FAILED`
//! with an `Error`. What each role's report holds is scripted by the test.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

/// One service as a report lists it: its prefix, its last attempt, and
/// its tracked actions (`None`: IAM tracks no action of it).
#[derive(Clone)]
pub struct Service {
    pub namespace: &'static str,
    pub last: Option<&'static str>,
    pub actions: Option<Vec<(String, Option<&'static str>)>>,
}

/// How a role's job ends.
#[derive(Clone)]
pub enum Outcome {
    Completed(Vec<Service>),
    Failed {
        code: &'static str,
        message: &'static str,
    },
}

/// A role's report: polls answered `IN_PROGRESS` first, then the outcome.
#[derive(Clone)]
pub struct Script {
    pub in_progress: usize,
    pub outcome: Outcome,
}

struct Job {
    role: String,
    script: Script,
    polls: usize,
}

/// The advisor's state: scripts by role ARN, and the jobs started.
#[derive(Default)]
pub struct Advisor {
    scripts: HashMap<String, Script>,
    jobs: HashMap<String, Job>,
    pub generated: usize,
    pub polled: usize,
}

/// Services per page of a report.
const PAGE: usize = 2;
const CREATED: &str = "2026-11-28T10:00:00Z";
const COMPLETED: &str = "2026-11-28T10:00:05Z";

impl Advisor {
    pub fn script(&mut self, role_arn: &str, script: Script) {
        self.scripts.insert(role_arn.to_string(), script);
    }

    /// The reply to a request of one of the two operations, or `None` for
    /// any other request (moto answers it).
    pub fn answer(&mut self, request: &[u8], upstream: u16) -> Option<String> {
        let text = String::from_utf8_lossy(request);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let form: HashMap<String, String> = body
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect();
        match form.get("Action").map(String::as_str) {
            Some("GenerateServiceLastAccessedDetails") => Some(self.generate(&form, upstream)),
            Some("GetServiceLastAccessedDetails") => Some(self.get(&form)),
            _ => None,
        }
    }

    fn generate(&mut self, form: &HashMap<String, String>, upstream: u16) -> String {
        let Some(arn) = form.get("Arn") else {
            return error("400 Bad Request", "ValidationError", "Arn is required");
        };
        // `arn:aws:iam::ACCOUNT:role/PATH/NAME`: the role must be there,
        // at that path.
        let Some((path, name)) = arn
            .split_once(":role")
            .and_then(|(_, rest)| rest.rsplit_once('/'))
            .map(|(path, name)| (format!("{path}/"), name))
        else {
            return error(
                "400 Bad Request",
                "InvalidInput",
                "ARN is not an IAM entity's",
            );
        };
        if role_path(upstream, name).as_deref() != Some(path.as_str()) {
            return error(
                "404 Not Found",
                "NoSuchEntity",
                &format!("The role with name {name} cannot be found."),
            );
        }
        let script = self.scripts.get(arn).cloned().unwrap_or(Script {
            in_progress: 0,
            outcome: Outcome::Completed(Vec::new()),
        });
        self.generated += 1;
        let id = format!("examplef-1305-c245-eba4-{:012}", self.generated);
        self.jobs.insert(
            id.clone(),
            Job {
                role: arn.clone(),
                script,
                polls: 0,
            },
        );
        reply(
            "GenerateServiceLastAccessedDetails",
            &format!("<JobId>{id}</JobId>"),
        )
    }

    fn get(&mut self, form: &HashMap<String, String>) -> String {
        self.polled += 1;
        let Some(job) = form.get("JobId").and_then(|id| self.jobs.get_mut(id)) else {
            return error(
                "404 Not Found",
                "NoSuchEntity",
                "The request was rejected because it referenced a job that does not exist.",
            );
        };
        job.polls += 1;
        if job.polls <= job.script.in_progress {
            return reply(
                "GetServiceLastAccessedDetails",
                &format!("<JobStatus>IN_PROGRESS</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>{CREATED}</JobCreationDate><ServicesLastAccessed/><IsTruncated>false</IsTruncated>"),
            );
        }
        let services = match &job.script.outcome {
            Outcome::Failed { code, message } => {
                return reply(
                    "GetServiceLastAccessedDetails",
                    &format!("<JobStatus>FAILED</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>{CREATED}</JobCreationDate><JobCompletionDate>{COMPLETED}</JobCompletionDate><ServicesLastAccessed/><IsTruncated>false</IsTruncated><Error><Message>{message}</Message><Code>{code}</Code></Error>"),
                );
            }
            Outcome::Completed(services) => services,
        };
        let start: usize = form
            .get("Marker")
            .and_then(|m| m.strip_prefix("page-"))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let end = (start + PAGE).min(services.len());
        let mut members = String::new();
        for service in &services[start.min(end)..end] {
            members.push_str("<member>");
            members.push_str(&format!(
                "<ServiceName>{0}</ServiceName><ServiceNamespace>{0}</ServiceNamespace>",
                service.namespace
            ));
            match service.last {
                Some(last) => members.push_str(&format!(
                    "<LastAuthenticated>{last}</LastAuthenticated><LastAuthenticatedEntity>{}</LastAuthenticatedEntity><LastAuthenticatedRegion>us-east-1</LastAuthenticatedRegion><TotalAuthenticatedEntities>1</TotalAuthenticatedEntities>",
                    job.role
                )),
                None => members.push_str("<TotalAuthenticatedEntities>0</TotalAuthenticatedEntities>"),
            }
            if let Some(actions) = &service.actions {
                members.push_str("<TrackedActionsLastAccessed>");
                for (action, last) in actions {
                    // IAM names the action alone, without its service.
                    let name = action.split_once(':').map_or(action.as_str(), |(_, a)| a);
                    members.push_str(&format!("<member><ActionName>{name}</ActionName>"));
                    if let Some(last) = last {
                        members.push_str(&format!(
                            "<LastAccessedTime>{last}</LastAccessedTime><LastAccessedEntity>{}</LastAccessedEntity><LastAccessedRegion>us-east-1</LastAccessedRegion>",
                            job.role
                        ));
                    }
                    members.push_str("</member>");
                }
                members.push_str("</TrackedActionsLastAccessed>");
            }
            members.push_str("</member>");
        }
        let more = match end < services.len() {
            true => format!("<IsTruncated>true</IsTruncated><Marker>page-{end}</Marker>"),
            false => "<IsTruncated>false</IsTruncated>".to_string(),
        };
        reply(
            "GetServiceLastAccessedDetails",
            &format!("<JobStatus>COMPLETED</JobStatus><JobType>ACTION_LEVEL</JobType><JobCreationDate>{CREATED}</JobCreationDate><JobCompletionDate>{COMPLETED}</JobCompletionDate><ServicesLastAccessed>{members}</ServicesLastAccessed>{more}"),
        )
    }
}

/// The path of moto's role of this name, if it holds one.
fn role_path(upstream: u16, name: &str) -> Option<String> {
    let body = format!("Action=GetRole&Version=2010-05-08&RoleName={name}");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{upstream}\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let mut response = String::new();
    stream.write_all(request.as_bytes()).ok()?;
    stream.read_to_string(&mut response).ok()?;
    if !response.starts_with("HTTP/1.1 200") {
        return None;
    }
    let path = response.split_once("<Path>")?.1.split_once("</Path>")?.0;
    Some(path.to_string())
}

fn reply(operation: &str, result: &str) -> String {
    let body = format!(
        "<{operation}Response xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><{operation}Result>{result}</{operation}Result><ResponseMetadata><RequestId>advisor</RequestId></ResponseMetadata></{operation}Response>"
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn error(status: &str, code: &str, message: &str) -> String {
    let body = format!(
        "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>advisor</RequestId></ErrorResponse>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Form decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
