//! writ's GitHub crate, on `octocrab`. `client` is the connection every
//! part shares; `comments` is what writ needs from GitHub to work through
//! pull requests: one sticky comment per project on a pull request (found
//! again by a hidden marker and edited in place), apply results, and the
//! pull requests a commit belongs to. `state` is GitHub as a provider of
//! identity state: the repositories agents run in, as their workflows'
//! OIDC tokens name them. `app` is a GitHub App's own credentials: its
//! JWT, its installation's tokens, narrowed, and its suspension.
//!
//! Every request goes through writ's retry budget (octocrab's own retry
//! layer is not built): 5xx answers and network failures are retried with
//! backoff; rate limits, primary (`x-ratelimit-remaining: 0`) and secondary
//! (`retry-after`), are waited out when the wait is short, and reported with
//! the time to try again when it is not. The token is sent, never printed.

// A library never prints: what it has to say goes to its caller.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod app;
mod client;
pub mod comments;
pub mod oidc;
mod state;

pub use client::{GitHub, Repository};
pub use comments::{Comment, Posted, COMMENT_LIMIT};
pub use state::{Connection, Environment, GithubState, Governed, Workflow};
