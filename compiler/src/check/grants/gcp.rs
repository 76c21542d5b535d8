//! GCP grants: resource names.

use super::super::{diagnostics, Checker};
use crate::diagnostic::{Code, Diagnostic, Label};
use crate::facts::gcp;
use crate::pattern;
use crate::syntax::ast;

impl<'a> Checker<'a> {
    /// A GCP role; `false` (reported) if the text cannot be one.
    pub(super) fn gcp_action(&mut self, action: &ast::Ident) -> bool {
        let text = action.text.as_str();
        if gcp::is_role_name(text) {
            return true;
        }
        self.report(
            Diagnostic::new(
                Code::UnknownAction,
                format!("`{text}` is not a GCP role"),
                Label::new(action.span, "expected a role name"),
            )
            .with_help("GCP grants name roles: `roles/storage.objectViewer`, `projects/P/roles/R` or `organizations/O/roles/R`"),
        );
        false
    }

    pub(super) fn gcp_resources(&mut self, grant: &ast::Grant, lint: bool) -> bool {
        let mut ok = true;
        for resource in &grant.resources {
            let text = resource.value.as_str();
            if text == "*" {
                if lint {
                    self.wildcard_resource(resource.span, "`\"*\"` is every resource");
                }
                continue;
            }
            if !gcp::is_resource_name(text) {
                self.report(
                    diagnostics::invalid_value(format!("`{text}` is not a GCP resource name"), resource.span, "invalid resource name")
                        .with_help("write a resource name such as `\"projects/my-project\"` or `\"projects/_/buckets/my-bucket\"`"),
                );
                ok = false;
            } else if lint && pattern::has_wildcard(text) {
                self.wildcard_resource(
                    resource.span,
                    "a wildcard resource name reaches every matching resource",
                );
            }
        }
        ok
    }
}
