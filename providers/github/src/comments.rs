//! Pull-request comments: one sticky comment per project (found again by a
//! hidden marker and edited in place), apply results, and the pull requests
//! a commit belongs to.

use crate::client::{Method, Repository};
use crate::GitHub;
use serde_json::{json, Value};
use writ_provider_core::ProviderError;

/// GitHub refuses comment bodies longer than this (characters).
pub const COMMENT_LIMIT: usize = 65_536;

/// A comment on a pull request, as writ needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
    pub url: String,
}

/// What a sticky comment call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Created(Comment),
    Updated(Comment),
}

impl Posted {
    pub fn comment(&self) -> &Comment {
        match self {
            Posted::Created(c) | Posted::Updated(c) => c,
        }
    }
}

impl GitHub {
    /// Every comment on a pull request, page by page (100 a page).
    pub async fn comments(
        &self,
        repo: &Repository,
        pull: u64,
    ) -> Result<Vec<Comment>, ProviderError> {
        let mut page = format!("/repos/{repo}/issues/{pull}/comments?per_page=100");
        let mut comments = Vec::new();
        for _ in 0..1000 {
            let (found, next) = self.comments_page(repo, pull, &page).await?;
            comments.extend(found);
            match next {
                Some(next) => page = next,
                None => return Ok(comments),
            }
        }
        Err(ProviderError::permanent(format!(
            "listing the comments of {repo}#{pull}: more than 1,000 pages"
        )))
    }

    /// One page of comments (`page`: the first page's path, or the address
    /// a `Link` header gave), and the address of the next page, if any.
    pub async fn comments_page(
        &self,
        repo: &Repository,
        pull: u64,
        page: &str,
    ) -> Result<(Vec<Comment>, Option<String>), ProviderError> {
        let what = format!("listing the comments of {repo}#{pull}");
        let answer = self.request(Method::Get, page, None, &what).await?;
        let list = answer.json()?;
        let items = list.as_array().ok_or_else(|| {
            ProviderError::permanent(format!("{what}: GitHub sent something other than a list"))
        })?;
        Ok((
            items.iter().filter_map(comment_of).collect(),
            answer.next_page(),
        ))
    }

    /// Posts a new comment.
    pub async fn create_comment(
        &self,
        repo: &Repository,
        pull: u64,
        body: &str,
    ) -> Result<Comment, ProviderError> {
        let what = format!("commenting on {repo}#{pull}");
        let path = format!("/repos/{repo}/issues/{pull}/comments");
        self.write_comment(Method::Post, &path, body, &what).await
    }

    /// Replaces the body of a comment.
    pub async fn update_comment(
        &self,
        repo: &Repository,
        id: u64,
        body: &str,
    ) -> Result<Comment, ProviderError> {
        let what = format!("updating comment {id} in {repo}");
        let path = format!("/repos/{repo}/issues/comments/{id}");
        self.write_comment(Method::Patch, &path, body, &what).await
    }

    async fn write_comment(
        &self,
        method: Method,
        path: &str,
        body: &str,
        what: &str,
    ) -> Result<Comment, ProviderError> {
        let answer = self
            .request(method, path, Some(&json!({"body": body})), what)
            .await?;
        comment_of(&answer.json()?).ok_or_else(|| {
            ProviderError::permanent(format!("{what}: GitHub's answer holds no comment"))
        })
    }

    /// Keeps one comment carrying `marker` on the pull request: edits the
    /// newest one that this token may edit, or posts one when there is none.
    /// Comments with the marker that the token may not edit (someone else
    /// wrote the marker) are skipped, never deleted.
    pub async fn upsert_comment(
        &self,
        repo: &Repository,
        pull: u64,
        marker: &str,
        body: &str,
    ) -> Result<Posted, ProviderError> {
        let mut candidates: Vec<Comment> = self
            .comments(repo, pull)
            .await?
            .into_iter()
            .filter(|c| c.body.contains(marker))
            .collect();
        candidates.sort_by_key(|c| std::cmp::Reverse(c.id));
        for candidate in candidates {
            if candidate.body == body {
                return Ok(Posted::Updated(candidate));
            }
            match self.update_comment(repo, candidate.id, body).await {
                Ok(comment) => return Ok(Posted::Updated(comment)),
                Err(error) if matches!(error.status, Some(403 | 404)) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(Posted::Created(
            self.create_comment(repo, pull, body).await?,
        ))
    }

    /// The numbers of the pull requests a commit belongs to (for a merge
    /// commit on the default branch: the pull request it merged).
    pub async fn pulls_of_commit(
        &self,
        repo: &Repository,
        sha: &str,
    ) -> Result<Vec<u64>, ProviderError> {
        let what = format!("finding the pull request of commit {sha} in {repo}");
        let answer = self
            .request(
                Method::Get,
                &format!("/repos/{repo}/commits/{sha}/pulls?per_page=100"),
                None,
                &what,
            )
            .await?;
        let list = answer.json()?;
        Ok(list
            .as_array()
            .map(|pulls| {
                pulls
                    .iter()
                    .filter_map(|p| p.get("number").and_then(Value::as_u64))
                    .collect()
            })
            .unwrap_or_default())
    }
}

fn comment_of(value: &Value) -> Option<Comment> {
    Some(Comment {
        id: value.get("id")?.as_u64()?,
        body: value
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        url: value
            .get("html_url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    })
}
