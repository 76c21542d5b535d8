//! writ's integration tests, in one test binary (linking the cloud SDKs
//! once instead of once per file). Each module is one area; the helpers
//! (`binary`, `support`, and the local servers `gh`, `http`, `kube`,
//! `moto`, `prism`) are shared by all.

// Tests state what they expect by unwrapping and panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binary;
mod gcp;
mod gh;
mod http;
mod kube;
mod moto;
mod prism;
mod support;

mod action;
mod aws;
mod cli;
mod credentials;
mod deploy;
mod example;
mod gcp_iam;
mod gcp_provider;
mod github;
mod github_contract;
mod graph;
mod iam;
mod import;
mod kubernetes;
mod lsp;
mod plans;
mod properties;
mod rbac;
mod schemas;
mod serve;
mod tidy;
mod ui;
mod usage;
