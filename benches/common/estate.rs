//! A generated estate, shared by the benchmarks: teams of two agents (one
//! with a delegation ceiling, its delegate inside it) that run in a
//! cluster and hold AWS grants, in files of about 1,000 lines.

// Each benchmark uses what it needs of this.
#![allow(dead_code)]

use std::collections::BTreeMap;
use writ_compiler::lower::Desired;
use writ_compiler::ownership::kubernetes::Inventory;
use writ_compiler::resource::{Resource, ResourceKind};
use writ_compiler::SourceMap;

/// The providers and guardrails every estate starts with.
pub const HEADER: &str = r#"provider aws prod {
  account = "123456789012"
}

provider kubernetes prod {
  cluster = "prod"
  oidc_issuer = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
}

guardrail no_iam {
  deny aws.* iam:*, organizations:* on "*"
}

guardrail short_lived {
  max_ttl = 4h
}
"#;

/// One team's worth of writ: two scopes, an agent with a delegation
/// ceiling, and a delegate inside it. 31 lines, two agents.
pub fn unit(i: usize) -> String {
    format!(
        r#"/// Reads bucket {i}.
scope s{i}_read {{
  aws.prod allow s3:GetObject on "arn:aws:s3:::bucket-{i}/*"
  aws.prod allow s3:ListBucket on "arn:aws:s3:::bucket-{i}"
}}

scope s{i}_write {{
  include s{i}_read
  aws.prod allow s3:PutObject, s3:DeleteObject on "arn:aws:s3:::bucket-{i}/out/*"
    when aws:RequestedRegion == "us-east-1"
}}

agent a{i} {{
  owner = "team-{team}"
  ttl = 1h
  expires = 2027-06-30
  runs_on kubernetes.prod namespace "ns-{namespace}" service_account "a{i}"
  can s{i}_write
  delegates {{
    max_depth = 1
    ttl = 15m
    can s{i}_read
  }}
}}

agent d{i} {{
  owner = "team-{team}"
  parent = a{i}
  ttl = 15m
  can s{i}_read
}}
"#,
        team = i % 50,
        namespace = i % 100,
    )
}

/// `units` teams (twice as many agents) after [`HEADER`], in files of
/// about 30,000 characters (1,000 lines), as `(name, text)`.
pub fn files(units: usize) -> Vec<(String, String)> {
    let mut files = vec![("providers.writ".to_string(), HEADER.to_string())];
    let mut file = String::new();
    for i in 0..units {
        file.push_str(&unit(i));
        file.push('\n');
        if file.len() > 30_000 || i + 1 == units {
            files.push((
                format!("team-{}.writ", files.len() - 1),
                std::mem::take(&mut file),
            ));
        }
    }
    files
}

/// The same files, as a source map.
pub fn sources(units: usize) -> SourceMap {
    let mut sources = SourceMap::new();
    for (name, text) in files(units) {
        sources.add(name, text);
    }
    sources
}

/// What an apply of `desired` leaves in the providers: the objects, a UID
/// on each Kubernetes object, and per cluster the inventory record of the
/// service accounts writ made. A plan of `desired` against it is empty.
pub fn applied(desired: Desired) -> Vec<Resource> {
    let mut records: BTreeMap<String, Inventory> = BTreeMap::new();
    let mut resources = desired.resources;
    for resource in &mut resources {
        if !resource.kind.is_kubernetes() {
            continue;
        }
        let uid = format!("uid-{}", resource.address);
        resource
            .attributes
            .insert("uid".to_string(), serde_json::json!(uid));
        if resource.kind == ResourceKind::KubernetesServiceAccount {
            records
                .entry(resource.provider.clone())
                .or_default()
                .objects
                .insert(uid, resource.address.clone());
        }
    }
    for (provider, record) in records {
        resources.push(record.to_resource(&provider, "default", &desired.project));
    }
    resources
}
