//! The GitHub side of a plan: the long-lived credentials of the
//! repositories agents run in (deploy keys, Actions secrets), listed and
//! flagged, never changed; and what could not be read of them.

use super::{PlanOptions, Unmanaged};
use crate::facts::github::level_rank;
use crate::lower::Desired;
use crate::resource::{Resource, ResourceKind};
use crate::values::Date;
use serde_json::Value;
use std::collections::BTreeMap;

/// Secret names that hold long-lived AWS keys, as they are usually named.
fn looks_like_aws_key(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    name.contains("AWS")
        && (name.contains("ACCESS_KEY") || name.contains("SECRET") || name.ends_with("_KEY"))
}

/// The refs a desired environment lets deploy, as full refs
/// (`refs/heads/main`, `refs/tags/v1`); none when it takes protected
/// branches.
pub(super) fn environment_refs(environment: &Resource) -> Vec<String> {
    environment
        .attribute("branch_policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let name = p["name"].as_str()?;
            Some(match p["type"].as_str() {
                Some("tag") => format!("`refs/tags/{name}`"),
                _ => format!("`refs/heads/{name}`"),
            })
        })
        .collect()
}

pub(super) fn inventory(resource: &Resource, options: &PlanOptions) -> Option<Unmanaged> {
    let date = |key: &str| {
        resource
            .string(key)
            .and_then(|d| Date::parse(d.get(..10)?).ok())
    };
    let days_since = |d: Date| options.today.days_since_epoch() - d.days_since_epoch();
    let repository = resource.string("repository").unwrap_or("?");
    let over_age = |days: Option<i64>| {
        options
            .max_key_age_days
            .is_some_and(|max| days.is_some_and(|d| d > max))
    };
    match resource.kind {
        ResourceKind::GithubDeployKey => {
            let title = resource.string("title").unwrap_or_default();
            let age = date("created").map(days_since);
            let last_used = date("last_used");
            let idle = last_used.map(days_since).or(age);
            let read_only = resource
                .attribute("read_only")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let mut detail = format!(
                "deploy key `{title}` of `{repository}`, {}",
                if read_only { "read-only" } else { "read-write" }
            );
            if let Some(age) = age {
                detail.push_str(&format!(", {age} days old"));
            }
            match last_used {
                Some(date) => detail.push_str(&format!(", last used {date}")),
                None => detail.push_str(", never used"),
            }
            let stale = over_age(age) || over_age(idle);
            if stale {
                detail.push_str(&format!(
                    "; older or idle longer than the maximum key age ({} days)",
                    options.max_key_age_days.unwrap_or_default()
                ));
            }
            let mut flags = Vec::new();
            if !read_only {
                flags.push("can push".to_string());
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: title.to_string(),
                detail,
                age_days: age,
                stale,
                flags,
            })
        }
        ResourceKind::GithubActionsSecret => {
            let name = resource.string("name").unwrap_or_default();
            let set = date("updated").or_else(|| date("created"));
            let age = set.map(days_since);
            let mut detail = format!("Actions secret `{name}` of `{repository}`");
            if let Some(set) = set {
                detail.push_str(&format!(", set {set}"));
            }
            let mut flags = Vec::new();
            // The repository is one an agent runs in: its workflows reach
            // AWS with OIDC, and need no key.
            if looks_like_aws_key(name) {
                flags.push("a long-lived AWS key beside OIDC".to_string());
                detail.push_str(": named like a long-lived AWS key, in a repository whose workflows reach AWS with OIDC; remove it once nothing uses it, and disable the key");
            }
            let stale = !flags.is_empty() && over_age(age);
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: name.to_string(),
                detail,
                age_days: age,
                stale,
                flags,
            })
        }
        ResourceKind::GithubAppInstallation => {
            // The records of the listing itself.
            if is_listing_record(resource) {
                return None;
            }
            let app = resource.string("app").unwrap_or("?");
            let all = resource.string("repository_selection") == Some("all");
            let permissions: Vec<(String, String)> = resource
                .attribute("permissions")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect();
            let shown: Vec<String> = permissions
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            let mut detail = format!(
                "GitHub App `{app}`, installed on {} repositories",
                if all { "all" } else { "selected" }
            );
            if !shown.is_empty() {
                detail.push_str(&format!(", with {}", shown.join(", ")));
            }
            if resource.attribute("suspended").and_then(Value::as_bool) == Some(true) {
                detail.push_str(" (suspended)");
            }
            // What lets an App widen access, as the grant lint reads it.
            let mut flags: Vec<String> = permissions
                .iter()
                .filter(|(k, v)| {
                    crate::facts::github::ESCALATION
                        .iter()
                        .any(|(p, l)| p == k && level_rank(v) >= level_rank(l))
                })
                .map(|(k, v)| format!("{k}:{v}"))
                .collect();
            if all
                && permissions
                    .iter()
                    .any(|(_, v)| v == "write" || v == "admin")
            {
                flags.push("writes to every repository".to_string());
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: app.to_string(),
                detail,
                age_days: date("created").map(days_since),
                stale: false,
                flags,
            })
        }
        ResourceKind::GithubPersonalToken => {
            if is_listing_record(resource) {
                return None;
            }
            let name = resource.string("name").unwrap_or("?");
            let owner = resource.string("owner").unwrap_or("?");
            let age = date("created").map(days_since);
            let last_used = date("last_used");
            let idle = last_used.map(days_since).or(age);
            let expires = date("expires");
            let mut detail = format!("personal access token `{name}` of `{owner}`");
            match expires {
                Some(date) => detail.push_str(&format!(", expires {date}")),
                None => detail.push_str(", never expires"),
            }
            match last_used {
                Some(date) => detail.push_str(&format!(", last used {date}")),
                None => detail.push_str(", never used"),
            }
            let mut flags = Vec::new();
            if expires.is_none() {
                flags.push("never expires".to_string());
            }
            // Permissions are nested per kind (`repository`,
            // `organization`, `other`).
            let levels = |kind: &str| -> Vec<(String, String)> {
                resource
                    .attribute("permissions")
                    .and_then(|p| p.get(kind))
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            };
            let repository = levels("repository");
            let writes = repository
                .iter()
                .any(|(_, level)| matches!(level.as_str(), "write" | "admin"));
            if writes && resource.string("repository_selection") == Some("all") {
                flags.push("writes to every repository".to_string());
            }
            // What lets it widen access, as for installations.
            for (permission, level) in repository.iter().chain(&levels("organization")) {
                if crate::facts::github::ESCALATION
                    .iter()
                    .any(|(p, l)| p == permission && level_rank(level) >= level_rank(l))
                {
                    flags.push(format!("{permission}:{level}"));
                }
            }
            if resource.attribute("expired").and_then(Value::as_bool) == Some(true) {
                detail.push_str(" (expired)");
            }
            let stale = over_age(idle);
            if stale {
                detail.push_str(&format!(
                    "; idle longer than the maximum key age ({} days)",
                    options.max_key_age_days.unwrap_or_default()
                ));
            }
            Some(Unmanaged {
                address: resource.address.clone(),
                kind: resource.kind,
                name: name.to_string(),
                detail,
                age_days: age,
                stale,
                flags,
            })
        }
        _ => None,
    }
}

/// Is this the record of an organisation's listing (see the GitHub
/// provider), not an item of it?
fn is_listing_record(resource: &Resource) -> bool {
    resource.attribute("unread").is_some() || resource.attribute("listed").is_some()
}

/// What could not be read of the organisation and of the repositories (a
/// token without the permission), one note each.
pub(super) fn unread(observed: &[Resource]) -> Vec<String> {
    let mut notes = Vec::new();
    for resource in observed {
        let listing = match resource.kind {
            ResourceKind::GithubAppInstallation => "the App installations of",
            ResourceKind::GithubPersonalToken => {
                "the fine-grained personal access tokens with access to"
            }
            ResourceKind::GithubRepository => {
                let name = resource.string("name").unwrap_or("?");
                let unread = resource
                    .attribute("unread")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str);
                for what in unread {
                    let so = if what.starts_with("Actions settings") {
                        "writ does not set them"
                    } else if what.starts_with("environments") {
                        "writ does not set which refs may deploy to them"
                    } else {
                        "they are not inventoried"
                    };
                    notes.push(format!(
                        "the {what} of GitHub repository `{name}` were not read, so {so}"
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if resource.attribute("unread").is_some() {
            let needs = match resource.kind {
                ResourceKind::GithubAppInstallation => {
                    "the token needs an organisation owner's `Administration: read`"
                }
                _ => "only a GitHub App's token may list them",
            };
            notes.push(format!(
                "{listing} `{}` were not read ({needs}), so they are not inventoried",
                resource.provider
            ));
        }
    }
    notes
}

/// The scopes a workflow's token can have (`read-all` and `write-all`
/// give each of them), as grants name them.
const WORKFLOW_SCOPES: &[&str] = &[
    "actions",
    "attestations",
    "checks",
    "contents",
    "deployments",
    "discussions",
    "issues",
    "models",
    "packages",
    "pages",
    "pull_requests",
    "repository_projects",
    "security_events",
    "statuses",
];

/// The permissions a `permissions:` value gives: `read-all`, `write-all`,
/// `{}` (none), or permission → level (`pull-requests` is
/// `pull_requests`). `None` when the value is absent. A level writ does
/// not know is read as `write`, the most a workflow token can hold.
fn permissions_of(value: &Value) -> Option<BTreeMap<String, String>> {
    let all = |level: &str| {
        WORKFLOW_SCOPES
            .iter()
            .map(|name| (name.to_string(), level.to_string()))
            .collect()
    };
    match value {
        Value::Null => None,
        Value::String(text) if text.eq_ignore_ascii_case("read-all") => Some(all("read")),
        Value::String(_) => Some(all("write")),
        Value::Object(map) => Some(
            map.iter()
                .map(|(k, v)| {
                    let level = v.as_str().unwrap_or("write").to_ascii_lowercase();
                    let level = match level.as_str() {
                        "read" | "none" => level,
                        _ => "write".to_string(),
                    };
                    (k.to_ascii_lowercase().replace('-', "_"), level)
                })
                .filter(|(_, level)| level != "none")
                .collect(),
        ),
        _ => Some(all("write")),
    }
}

/// Findings on the workflows agents run as: one that asks for more than
/// its agent's GitHub grants declare, one that asks for nothing at all (and
/// so gets the repository's default token), one
/// that does not exist, one that could not be read.
pub(super) fn workflow_findings(desired: &Desired, observed: &[Resource]) -> Vec<String> {
    let mut notes = Vec::new();
    for grant in &desired.github_workflows {
        let Some(file) = observed.iter().find(|r| {
            r.kind == ResourceKind::GithubWorkflow
                && r.provider == grant.provider
                && r.string("repository")
                    .is_some_and(|n| n.eq_ignore_ascii_case(&grant.repository))
                && r.string("path") == Some(grant.workflow.as_str())
                && r.string("ref") == grant.git_ref.as_deref()
        }) else {
            // Read from GitHub, the repository is there but not its
            // workflow (a snapshot taken before writ read workflows).
            let repository_read = observed.iter().any(|r| {
                r.kind == ResourceKind::GithubRepository
                    && r.provider == grant.provider
                    && r.string("name")
                        .is_some_and(|n| n.eq_ignore_ascii_case(&grant.repository))
            });
            if repository_read {
                notes.push(format!(
                    "workflow `{}` of `{}` was not read: what it asks for is not checked against `{}`'s grants",
                    grant.workflow, grant.repository, grant.agent
                ));
            }
            continue;
        };
        let (agent, workflow, repository) = (&grant.agent, &grant.workflow, &grant.repository);
        let at = grant
            .git_ref
            .as_deref()
            .map_or("the default branch".to_string(), |r| format!("`{r}`"));
        let flag = |key: &str| file.attribute(key).and_then(Value::as_bool) == Some(true);
        if flag("missing") {
            notes.push(format!("`{agent}` runs as workflow `{workflow}` of `{repository}`, which is not there at {at}: the role trusts a workflow that does not exist"));
            continue;
        }
        if let Some(why) = file.string("unreadable") {
            notes.push(format!("workflow `{workflow}` of `{repository}` at {at} cannot be read as a workflow ({why}): what it asks for is not checked against `{agent}`'s grants"));
            continue;
        }
        if flag("unread") {
            notes.push(format!("workflow `{workflow}` of `{repository}` was not read (the token needs `Contents: read`): what it asks for is not checked against `{agent}`'s grants"));
            continue;
        }
        let top = file.attribute("permissions").and_then(permissions_of);
        let jobs: Vec<(String, Option<BTreeMap<String, String>>)> = file
            .attribute("jobs")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(job, value)| (job.clone(), permissions_of(value)))
            .collect();
        let mut asked: Vec<(String, Option<BTreeMap<String, String>>)> = jobs
            .into_iter()
            .map(|(job, own)| (format!(" (job `{job}`)"), own.or_else(|| top.clone())))
            .collect();
        if asked.is_empty() {
            asked.push((String::new(), top.clone()));
        }
        for (job, permissions) in asked {
            let Some(permissions) = permissions else {
                notes.push(format!("workflow `{workflow}` of `{repository}`{job} declares no `permissions:`: it gets the repository's default token (read-only where writ sets the Actions settings, whatever the repository says otherwise); declare what `{agent}` needs, as its grants say"));
                continue;
            };
            let beyond: Vec<String> = permissions
                .iter()
                // An OIDC `runs_on` is what asks for `id-token: write`.
                .filter(|(permission, _)| permission.as_str() != "id_token")
                .filter(|(permission, level)| {
                    level_rank(level)
                        > grant
                            .permissions
                            .get(*permission)
                            .and_then(|l| level_rank(l))
                })
                .map(|(permission, level)| format!("`{permission}: {level}`"))
                .collect();
            if !beyond.is_empty() {
                let declared = if grant.permissions.is_empty() {
                    "no GitHub grant".to_string()
                } else {
                    grant
                        .permissions
                        .iter()
                        .map(|(p, l)| format!("`{p}:{l}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                notes.push(format!("workflow `{workflow}` of `{repository}`{job} asks for {}, beyond what `{agent}` declares there ({declared}): narrow its `permissions:`, or grant them", beyond.join(", ")));
            }
        }
    }
    notes
}

/// Findings on the Apps agents run as, against their installations in the
/// organisation: a permission the installation holds beyond the agent's
/// grants (least privilege: reduce it in the App's settings), one the
/// grants declare that the installation lacks (the agent cannot do it), an
/// App that is not installed.
pub(super) fn app_findings(desired: &Desired, observed: &[Resource]) -> Vec<String> {
    let mut notes = Vec::new();
    // What every agent running as one App holds together: the App's
    // installation should hold no more than that union.
    let mut together: BTreeMap<(&str, &str), BTreeMap<String, String>> = BTreeMap::new();
    for grant in &desired.github_apps {
        let all = together
            .entry((grant.provider.as_str(), grant.slug.as_str()))
            .or_default();
        for (permission, level) in &grant.permissions {
            let entry = all.entry(permission.clone()).or_default();
            if level_rank(level) > level_rank(entry) {
                *entry = level.clone();
            }
        }
    }
    let mut said: std::collections::BTreeSet<(&str, &str)> = std::collections::BTreeSet::new();
    let mut said_selection: std::collections::BTreeSet<(&str, &str)> =
        std::collections::BTreeSet::new();
    for grant in &desired.github_apps {
        let (agent, slug) = (&grant.agent, &grant.slug);
        let installations: Vec<&Resource> = observed
            .iter()
            .filter(|r| {
                r.kind == ResourceKind::GithubAppInstallation && r.provider == grant.provider
            })
            .collect();
        // Read only when the listing's record says so (no GitHub provider,
        // or a token that may not list them, says nothing).
        if !installations
            .iter()
            .any(|r| r.attribute("listed").is_some())
        {
            continue;
        }
        let Some(installation) = installations
            .iter()
            .find(|r| r.string("app") == Some(slug.as_str()))
        else {
            notes.push(format!("`{agent}` runs as GitHub App `{slug}`, which is not installed in `{}`: it has no tokens there", grant.provider));
            continue;
        };
        if installation.attribute("suspended").and_then(Value::as_bool) == Some(true) {
            notes.push(format!("`{agent}` runs as GitHub App `{slug}`, whose installation in `{}` is suspended: it has no tokens there", grant.provider));
            continue;
        }
        let union = together
            .get(&(grant.provider.as_str(), slug.as_str()))
            .cloned()
            .unwrap_or_default();
        let held: BTreeMap<String, String> = installation
            .attribute("permissions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            // Every App may read metadata.
            .filter(|(k, _)| k != "metadata")
            .collect();
        let beyond: Vec<String> = held
            .iter()
            .filter(|(permission, level)| {
                level_rank(level) > union.get(*permission).and_then(|l| level_rank(l))
            })
            .map(|(permission, level)| format!("`{permission}: {level}`"))
            .collect();
        // Said once for the App, whichever agents run as it.
        if !beyond.is_empty() && said.insert((grant.provider.as_str(), slug.as_str())) {
            notes.push(format!("GitHub App `{slug}`, which `{agent}` runs as, holds {} beyond the grants of the agents that run as it: reduce them in the App's settings, or grant them", beyond.join(", ")));
        }
        let lacking: Vec<String> = grant
            .permissions
            .iter()
            .filter(|(permission, _)| permission.as_str() != "metadata")
            .filter(|(permission, level)| {
                level_rank(level) > held.get(*permission).and_then(|l| level_rank(l))
            })
            .map(|(permission, level)| format!("`{permission}: {level}`"))
            .collect();
        if !lacking.is_empty() {
            notes.push(format!("`{agent}` declares {}, which GitHub App `{slug}`'s installation does not hold: its tokens cannot do it", lacking.join(", ")));
        }
        // A selected installation, its repositories read with the App's
        // key: each it reaches that no agent of the App is granted, once
        // for the App, and each this agent is granted that it does not
        // reach.
        if let Some(reached) = installation
            .attribute("repositories")
            .and_then(Value::as_array)
        {
            let reached: Vec<&str> = reached.iter().filter_map(Value::as_str).collect();
            let patterns: Vec<&String> = desired
                .github_apps
                .iter()
                .filter(|g| g.provider == grant.provider && g.slug == *slug)
                .flat_map(|g| &g.repositories)
                .collect();
            let granted = |repository: &str| {
                patterns.iter().any(|p| {
                    crate::access::resource_matches(
                        crate::facts::ProviderKind::Github,
                        p,
                        repository,
                    )
                })
            };
            let extra: Vec<String> = reached
                .iter()
                .filter(|r| !granted(r))
                .map(|r| format!("`{r}`"))
                .collect();
            if !extra.is_empty() && said_selection.insert((grant.provider.as_str(), slug.as_str()))
            {
                notes.push(format!(
                    "GitHub App `{slug}`'s installation reaches {}, which no grant of the agents that run as it names: remove {} from the installation's repositories (GitHub lets only a person's token change them, so writ does not)",
                    extra.join(", "),
                    if extra.len() == 1 { "it" } else { "them" }
                ));
            }
            let unreached: Vec<String> = grant
                .repositories
                .iter()
                .filter(|p| !p.contains(['*', '?']))
                .filter(|p| !reached.iter().any(|r| r.eq_ignore_ascii_case(p)))
                .map(|p| format!("`{p}`"))
                .collect();
            if !unreached.is_empty() {
                notes.push(format!(
                    "`{agent}`'s grants name {}, which GitHub App `{slug}`'s installation does not reach: its tokens cannot; add {} to the installation's repositories",
                    unreached.join(", "),
                    if unreached.len() == 1 { "it" } else { "them" }
                ));
            }
        }
        // Installed on every repository, while the grants name some.
        let every = |pattern: &String| {
            pattern == "*" || pattern.split_once('/').is_some_and(|(_, name)| name == "*")
        };
        if installation.string("repository_selection") == Some("all")
            && !grant.repositories.iter().any(every)
        {
            let named: Vec<String> = grant
                .repositories
                .iter()
                .map(|r| format!("`{r}`"))
                .collect();
            notes.push(format!(
                "GitHub App `{slug}` is installed on every repository of `{}`, while `{agent}`'s grants name {}: select only those in the installation's settings",
                grant.provider,
                if named.is_empty() { "none".to_string() } else { named.join(", ") }
            ));
        }
    }
    notes
}

/// The words of a name, in lower case (`CI_LEGACY-key` → `ci`, `legacy`,
/// `key`).
fn words(name: &str) -> Vec<String> {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Words every AWS key secret has: a user named only with these says
/// nothing about which key a secret holds.
const KEY_WORDS: &[&str] = &["aws", "access", "key", "id", "secret"];

/// What an Actions secret named like an AWS key may hold, as writ can
/// tell without reading it: a key of an IAM user whose name is in the
/// secret's (word for word, beyond the words every key secret has), or an
/// active key made the day the secret was last set.
pub(crate) struct KeyHold<'a> {
    pub secret: &'a Resource,
    /// The IAM user whose key it may hold, and its provider.
    pub user: &'a str,
    pub provider: &'a str,
    /// The key, when matched by its day.
    pub key: Option<&'a Resource>,
}

/// Every [`KeyHold`] of the observed state.
pub(crate) fn key_holds(observed: &[Resource]) -> Vec<KeyHold<'_>> {
    let day = |r: &Resource, key: &str| r.string(key).and_then(|d| d.get(..10)).map(str::to_string);
    let users: Vec<&Resource> = observed
        .iter()
        .filter(|r| r.kind == ResourceKind::AwsUser)
        .collect();
    let keys: Vec<&Resource> = observed
        .iter()
        .filter(|r| {
            r.kind == ResourceKind::AwsAccessKey
                && r.string("status").unwrap_or("Active") == "Active"
        })
        .collect();
    let mut found = Vec::new();
    for secret in observed
        .iter()
        .filter(|r| r.kind == ResourceKind::GithubActionsSecret)
    {
        let name = secret.string("name").unwrap_or_default();
        if !looks_like_aws_key(name) {
            continue;
        }
        let secret_words = words(name);
        for user in &users {
            let user_words = words(user.string("name").unwrap_or_default());
            let telling = user_words.iter().any(|w| !KEY_WORDS.contains(&w.as_str()));
            let inside = !user_words.is_empty()
                && secret_words
                    .windows(user_words.len())
                    .any(|w| w == user_words.as_slice());
            if telling && inside {
                found.push(KeyHold {
                    secret,
                    user: user.string("name").unwrap_or_default(),
                    provider: &user.provider,
                    key: None,
                });
            }
        }
        let set = day(secret, "updated").or_else(|| day(secret, "created"));
        for key in &keys {
            // A key named by its id only (the inventory names the others
            // by user and slot).
            let (Some(_), Some(made)) = (key.string("id"), day(key, "created")) else {
                continue;
            };
            if set.as_deref() == Some(made.as_str()) {
                found.push(KeyHold {
                    secret,
                    user: key.string("user").unwrap_or("?"),
                    provider: &key.provider,
                    key: Some(key),
                });
            }
        }
    }
    found
}

/// Actions secrets named like AWS keys, against the IAM users and keys of
/// the AWS inventory ([`key_holds`]). Each match is said on both sides, as
/// what the secret may hold: disable the key, and the secret is empty.
pub(super) fn cross_reference(unmanaged: &mut [Unmanaged], observed: &[Resource]) {
    let keys: Vec<&Resource> = observed
        .iter()
        .filter(|r| {
            r.kind == ResourceKind::AwsAccessKey
                && r.string("status").unwrap_or("Active") == "Active"
        })
        .collect();
    // (secret address, what it may hold), (IAM address, which secret).
    let mut said: Vec<(String, String)> = Vec::new();
    let mut holds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for hold in key_holds(observed) {
        let name = hold.secret.string("name").unwrap_or_default();
        let repository = hold.secret.string("repository").unwrap_or("?");
        let user_name = hold.user;
        let list = holds.entry(hold.secret.address.as_str()).or_default();
        match hold.key {
            None => {
                list.push(format!(
                    "a key of IAM user `{user_name}` (its name is in the secret's)"
                ));
                let user_address = crate::address::aws_user(hold.provider, user_name);
                said.push((user_address, format!("its name is in Actions secret `{name}` of `{repository}`, which may hold one of its keys")));
                for key in keys.iter().filter(|k| k.string("user") == Some(user_name)) {
                    said.push((
                        key.address.clone(),
                        format!("Actions secret `{name}` of `{repository}` may hold it"),
                    ));
                }
            }
            Some(key) => {
                let made = key
                    .string("created")
                    .and_then(|d| d.get(..10))
                    .unwrap_or("?");
                list.push(format!(
                    "key `{}` of IAM user `{user_name}` (made the day the secret was set, {made})",
                    key.string("id").unwrap_or("?")
                ));
                said.push((key.address.clone(), format!("made the day Actions secret `{name}` of `{repository}` was set: the secret may hold it")));
            }
        }
    }
    for (secret, list) in holds {
        said.push((
            secret.to_string(),
            format!("it may hold {}", list.join(", or ")),
        ));
    }
    for entry in unmanaged.iter_mut() {
        let mut first = true;
        for (_, what) in said.iter().filter(|(address, _)| *address == entry.address) {
            if entry.detail.contains(what.as_str()) {
                continue;
            }
            entry.detail.push_str("; ");
            entry.detail.push_str(what);
            if first && entry.kind == ResourceKind::GithubActionsSecret {
                entry.flags.push("may hold an IAM user's key".to_string());
            }
            if first && entry.kind != ResourceKind::GithubActionsSecret {
                entry.flags.push("in a GitHub secret".to_string());
            }
            first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_key_names_are_recognised() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "PROD_AWS_KEY",
            "aws_secret",
        ] {
            assert!(looks_like_aws_key(name), "{name}");
        }
        for name in ["NPM_TOKEN", "AWS_REGION", "AWS_ROLE_ARN", "SLACK_SECRET"] {
            assert!(!looks_like_aws_key(name), "{name}");
        }
    }
}

#[cfg(test)]
mod cross_reference_tests {
    use super::*;

    fn resource(address: &str, kind: ResourceKind, attributes: serde_json::Value) -> Resource {
        Resource {
            address: address.to_string(),
            provider: address.split('/').next().unwrap_or_default().to_string(),
            kind,
            agent: None,
            attributes: serde_json::from_value::<BTreeMap<String, Value>>(attributes)
                .unwrap_or_default()
                .into(),
        }
    }

    fn listed(resource: &Resource) -> Unmanaged {
        Unmanaged {
            address: resource.address.clone(),
            kind: resource.kind,
            name: String::new(),
            detail: "listed".to_string(),
            age_days: None,
            stale: false,
            flags: Vec::new(),
        }
    }

    #[test]
    fn secrets_named_like_aws_keys_are_matched_with_the_users_and_keys_they_may_hold() {
        let observed = vec![
            resource(
                "github.acme/repos/acme/app/actions/secrets/CI_LEGACY_AWS_SECRET_ACCESS_KEY",
                ResourceKind::GithubActionsSecret,
                serde_json::json!({"repository": "acme/app", "name": "CI_LEGACY_AWS_SECRET_ACCESS_KEY", "updated": "2024-03-01T00:00:00Z"}),
            ),
            resource(
                "github.acme/repos/acme/app/actions/secrets/AWS_ACCESS_KEY_ID",
                ResourceKind::GithubActionsSecret,
                serde_json::json!({"repository": "acme/app", "name": "AWS_ACCESS_KEY_ID", "updated": "2025-06-02T10:00:00Z"}),
            ),
            resource(
                "github.acme/repos/acme/app/actions/secrets/NPM_TOKEN",
                ResourceKind::GithubActionsSecret,
                serde_json::json!({"repository": "acme/app", "name": "NPM_TOKEN", "updated": "2025-06-02T10:00:00Z"}),
            ),
            resource(
                "aws.prod/user/ci-legacy",
                ResourceKind::AwsUser,
                serde_json::json!({"name": "ci-legacy"}),
            ),
            // A user named only with words every key secret has matches none.
            resource(
                "aws.prod/user/aws-key",
                ResourceKind::AwsUser,
                serde_json::json!({"name": "aws-key"}),
            ),
            resource(
                "aws.prod/access-key/AKIA1",
                ResourceKind::AwsAccessKey,
                serde_json::json!({"id": "AKIA1", "user": "ci-legacy", "status": "Active", "created": "2020-09-01"}),
            ),
            resource(
                "aws.prod/access-key/AKIA2",
                ResourceKind::AwsAccessKey,
                serde_json::json!({"id": "AKIA2", "user": "deployer", "status": "Active", "created": "2025-06-02"}),
            ),
            resource(
                "aws.prod/access-key/AKIA3",
                ResourceKind::AwsAccessKey,
                serde_json::json!({"id": "AKIA3", "user": "old", "status": "Inactive", "created": "2025-06-02"}),
            ),
        ];
        let mut unmanaged: Vec<Unmanaged> = observed.iter().map(listed).collect();
        cross_reference(&mut unmanaged, &observed);
        let detail = |address: &str| {
            unmanaged
                .iter()
                .find(|u| u.address == address)
                .map(|u| (u.detail.clone(), u.flags.clone()))
                .unwrap()
        };
        assert_eq!(
            detail("github.acme/repos/acme/app/actions/secrets/CI_LEGACY_AWS_SECRET_ACCESS_KEY"),
            (
                "listed; it may hold a key of IAM user `ci-legacy` (its name is in the secret's)"
                    .to_string(),
                vec!["may hold an IAM user's key".to_string()]
            )
        );
        assert_eq!(
            detail("github.acme/repos/acme/app/actions/secrets/AWS_ACCESS_KEY_ID").0,
            "listed; it may hold key `AKIA2` of IAM user `deployer` (made the day the secret was set, 2025-06-02)"
        );
        assert_eq!(
            detail("github.acme/repos/acme/app/actions/secrets/NPM_TOKEN").0,
            "listed"
        );
        assert_eq!(
            detail("aws.prod/access-key/AKIA1"),
            ("listed; Actions secret `CI_LEGACY_AWS_SECRET_ACCESS_KEY` of `acme/app` may hold it".to_string(), vec!["in a GitHub secret".to_string()])
        );
        assert_eq!(
            detail("aws.prod/user/ci-legacy").0,
            "listed; its name is in Actions secret `CI_LEGACY_AWS_SECRET_ACCESS_KEY` of `acme/app`, which may hold one of its keys"
        );
        assert_eq!(detail("aws.prod/user/aws-key").0, "listed");
        assert_eq!(
            detail("aws.prod/access-key/AKIA3").0,
            "listed",
            "an inactive key holds nothing"
        );
    }
}
