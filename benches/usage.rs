//! `writ usage` on large logs (issue 17), end to end with the release
//! binary on the example project: 1,000,000 CloudTrail records (1.67 GB
//! of JSON, in files of 10,000 records: CloudTrail writes many small files) and
//! 1,000,000 Kubernetes audit events (JSON lines). Goals: CloudTrail in
//! under 10 s, audit in under 5 s, on one core, at bounded memory (the
//! peak resident memory is reported: it must not grow with the logs).
//!
//! Run: `cargo bench --bench usage` (`WRIT_BENCH_RECORDS=100000` for a
//! smaller run). The logs are written once to the temporary folder.

// A benchmark stops at the first thing that is not as it expects.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/child.rs"]
mod child;

use std::io::Write;
use std::path::{Path, PathBuf};

fn records() -> usize {
    std::env::var("WRIT_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

/// One CloudTrail record of an S3 data event by the example's bot, with
/// the fields CloudTrail writes (about 1 kB).
fn cloudtrail(i: usize) -> String {
    let day = 1 + i % 28;
    let denied = if i.is_multiple_of(50) {
        r#""errorCode":"AccessDenied","errorMessage":"Access Denied","#
    } else {
        ""
    };
    format!(
        concat!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"AssumedRole","principalId":"AROAEXAMPLE:bot-{s}","#,
            r#""arn":"arn:aws:sts::123456789012:assumed-role/billing_bot/bot-{s}","accountId":"123456789012","accessKeyId":"ASIAEXAMPLE{s:08}","#,
            r#""sessionContext":{{"sessionIssuer":{{"type":"Role","principalId":"AROAEXAMPLE","arn":"arn:aws:iam::123456789012:role/writ/acme/billing_bot","#,
            r#""accountId":"123456789012","userName":"billing_bot"}},"attributes":{{"creationDate":"2026-11-{d:02}T01:00:00Z","mfaAuthenticated":"false"}}}}}},"#,
            r#""eventTime":"2026-11-{d:02}T02:{m:02}:{m:02}Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","#,
            r#""sourceIPAddress":"10.0.{a}.{b}","userAgent":"[aws-sdk-rust/1.3.0 os/linux lang/rust]",{denied}"#,
            r#""requestParameters":{{"bucketName":"acme-invoices","Host":"acme-invoices.s3.us-east-1.amazonaws.com","key":"2026/11/inv-{i}.pdf"}},"#,
            r#""responseElements":null,"additionalEventData":{{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":0,"#,
            r#""AuthenticationMethod":"AuthHeader","x-amz-id-2":"EXAMPLEid2EXAMPLEid2EXAMPLE=","bytesTransferredOut":48213}},"#,
            r#""requestID":"REQ{i:012}","eventID":"{i:08x}-0000-4000-8000-000000000000","readOnly":true,"#,
            r#""resources":[{{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::acme-invoices/2026/11/inv-{i}.pdf"}},"#,
            r#"{{"accountId":"123456789012","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::acme-invoices"}}],"#,
            r#""eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"123456789012","sharedEventID":"{i:08x}-1111-4000-8000-000000000000","#,
            r#""eventCategory":"Data","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"acme-invoices.s3.us-east-1.amazonaws.com"}}}}"#
        ),
        s = i % 1000,
        d = day,
        m = i % 60,
        a = i % 250,
        b = i % 200,
        i = i,
        denied = denied,
    )
}

/// One audit event of the example's log shipper (about 600 bytes).
fn audit(i: usize) -> String {
    format!(
        concat!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{i:08x}-0000-4000-8000-000000000000","#,
            r#""stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns-{n}/pods/pod-{i}/log","verb":"get","#,
            r#""user":{{"username":"system:serviceaccount:observability:log-shipper","uid":"0b5f0c6e-0000-4000-8000-000000000000","#,
            r#""groups":["system:serviceaccounts","system:serviceaccounts:observability","system:authenticated"]}},"#,
            r#""sourceIPs":["10.0.0.{b}"],"userAgent":"fluent-bit/3.0","objectRef":{{"resource":"pods","namespace":"ns-{n}","name":"pod-{i}","#,
            r#""apiVersion":"v1","subresource":"log"}},"responseStatus":{{"metadata":{{}},"code":200}},"#,
            r#""requestReceivedTimestamp":"2026-11-{d:02}T03:00:00.000000Z","stageTimestamp":"2026-11-{d:02}T03:00:00.010000Z","#,
            r#""annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC"}}}}"#
        ),
        i = i,
        n = i % 40,
        b = i % 200,
        d = 1 + i % 28,
    )
}

/// The logs, written once: (CloudTrail folder, audit log).
fn logs(count: usize) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("writ-bench-usage-{count}"));
    let trail = root.join("trail");
    let audit_log = root.join("audit.log");
    if root.join("done").exists() {
        return (trail, audit_log);
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&trail).unwrap();
    let per_file = 10_000.min(count);
    for (file, start) in (0..count).step_by(per_file).enumerate() {
        let out = std::fs::File::create(trail.join(format!("trail-{file:03}.json"))).unwrap();
        let mut out = std::io::BufWriter::new(out);
        out.write_all(b"{\"Records\":[").unwrap();
        for i in start..(start + per_file).min(count) {
            if i > start {
                out.write_all(b",").unwrap();
            }
            out.write_all(cloudtrail(i).as_bytes()).unwrap();
        }
        out.write_all(b"]}\n").unwrap();
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(&audit_log).unwrap());
    for i in 0..count {
        out.write_all(audit(i).as_bytes()).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.flush().unwrap();
    std::fs::write(root.join("done"), "").unwrap();
    (trail, audit_log)
}

fn size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    } else {
        std::fs::metadata(path).unwrap().len()
    }
}

/// `writ usage` of the example on a log.
fn usage(log: &Path) -> std::process::Command {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_writ"));
    command
        .arg("usage")
        .arg(&example)
        .arg("--from")
        .arg(log)
        .arg("--format")
        .arg("json")
        .env("WRIT_TODAY", "2026-11-29");
    command
}

fn main() {
    let count = records();
    let (trail, audit_log) = logs(count);
    println!("writ usage, the release binary (best of three; peak resident memory):");
    for (name, log) in [("CloudTrail", &trail), ("Kubernetes audit", &audit_log)] {
        let (wall, rss) = child::best_of_three(|| usage(log));
        println!(
            "{name}: {count} records, {:.0} MB: {:.2} s, {:.0} MiB peak",
            size(log) as f64 / 1e6,
            wall.as_secs_f64(),
            rss as f64 / (1 << 20) as f64
        );
    }
}
