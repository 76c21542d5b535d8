//! Contract: the requests writ sends to GitHub match GitHub's published
//! OpenAPI description (npm `@octokit/openapi`), as checked by Stoplight
//! Prism in mock mode, which answers a request outside the description
//! with an error instead of a documented example.

use writ_provider_core::Provider;
use writ_provider_core::{Retrier, RetryPolicy};
use writ_provider_github::{GitHub, GithubState, Repository};

#[test]
fn every_request_writ_sends_matches_githubs_openapi_description() {
    let Some(prism) = crate::prism::Prism::start() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    // One attempt: a refused request must show, not be retried.
    let policy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let client = GitHub::connect(
        &prism.api(),
        "ghs_contract".to_string(),
        &Retrier::new(policy),
    )
    .unwrap();
    let repo = Repository::parse("acme/infra").unwrap();
    runtime.block_on(async {
        let (comments, next) = client
            .comments_page(&repo, 7, "/repos/acme/infra/issues/7/comments?per_page=100")
            .await
            .expect("listing comments matches the description");
        assert!(!comments.is_empty(), "the documented example comes back");
        assert!(next.is_some(), "the documented Link header is read");
        let created = client
            .create_comment(
                &repo,
                7,
                "<!-- writ:plan project=acme -->\n## writ plan: `acme`\n",
            )
            .await
            .expect("creating a comment matches the description");
        client
            .update_comment(
                &repo,
                created.id,
                "<!-- writ:plan project=acme -->\nNo changes.",
            )
            .await
            .expect("updating a comment matches the description");
        client
            .pulls_of_commit(&repo, "6dcb09b5b57875f334f61aebed695e2e4193db5e")
            .await
            .expect("finding the pull requests of a commit matches the description");
        // The check has teeth: a request outside the description is refused.
        let refused = client
            .comments_page(
                &repo,
                7,
                "/repos/acme/infra/issues/7/comments?per_page=many",
            )
            .await;
        assert!(refused.is_err(), "prism validates requests");
    });
    // GitHub as a provider of identity state: the organisation, each
    // repository and its OIDC subject template, and the organisation's.
    // Prism answers with the description's examples (another organisation
    // and repository), which writ then refuses on its own: an error of
    // writ's (no status) is fine here, one of Prism's (a status) is not.
    let state = GithubState::connect(
        "github.acme",
        "octocat",
        writ_provider_github::Governed {
            repositories: vec![Repository::parse("octocat/Hello-World").unwrap()],
            workflows: vec![writ_provider_github::Workflow {
                repository: Repository::parse("octocat/Hello-World").unwrap(),
                path: ".github/workflows/deploy.yml".into(),
                git_ref: Some("refs/heads/main".into()),
            }],
            environments: vec![writ_provider_github::Environment {
                repository: Repository::parse("octocat/Hello-World").unwrap(),
                name: "production".into(),
            }],
        },
        writ_provider_github::Connection {
            api: prism.api(),
            token: "ghs_contract".to_string(),
            cache: None,
            app: None,
        },
        &Retrier::new(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }),
    )
    .unwrap();
    runtime.block_on(async {
        for result in [
            state.identify().await.map(|_| ()),
            state.observe().await.map(|_| ()),
        ] {
            if let Err(error) = result {
                assert!(
                    error.status.is_none(),
                    "a request outside GitHub's description: {error}"
                );
            }
        }
        assert!(
            state.stats().requests >= 3,
            "the organisation, the repository and its template were asked"
        );
        // Setting the Actions settings writ governs.
        let change = writ_compiler::plan::Change {
            address: "github.acme/repos/octocat/hello-world/actions/permissions/workflow".into(),
            provider: "github.acme".into(),
            kind: writ_compiler::resource::ResourceKind::GithubActionsSettings,
            agent: None,
            actions: vec![writ_compiler::plan::Action::Update],
            before: None,
            after: Some(std::collections::BTreeMap::from([
                (
                    "repository".to_string(),
                    serde_json::json!("octocat/hello-world"),
                ),
                (
                    "default_workflow_permissions".to_string(),
                    serde_json::json!("read"),
                ),
                (
                    "can_approve_pull_request_reviews".to_string(),
                    serde_json::json!(false),
                ),
            ])),
            changed_paths: Vec::new(),
            replace_because: None,
            reason: String::new(),
        };
        state
            .apply(&change)
            .await
            .expect("setting the Actions settings matches the description");
        // Setting an environment's deployment branch policy: read it, put
        // it back with its reviewers and the policy, then its patterns
        // (the description's example lists others: deleted, then added).
        let change = writ_compiler::plan::Change {
            address: "github.acme/repos/octocat/hello-world/environments/production".into(),
            kind: writ_compiler::resource::ResourceKind::GithubEnvironment,
            after: Some(std::collections::BTreeMap::from([
                (
                    "repository".to_string(),
                    serde_json::json!("octocat/hello-world"),
                ),
                ("name".to_string(), serde_json::json!("production")),
                (
                    "deployment_branch_policy".to_string(),
                    serde_json::json!({"protected_branches": false, "custom_branch_policies": true}),
                ),
                (
                    "branch_policies".to_string(),
                    serde_json::json!([{"name": "main", "type": "branch"}]),
                ),
            ])),
            ..change
        };
        state
            .apply(&change)
            .await
            .expect("setting an environment matches the description");
        // A GitHub App's own requests, with its JWT: its installation, a
        // narrowed token, suspension and its lifting.
        let key = writ_provider_github::app::AppKey::parse(
            crate::gh::APP_ID,
            crate::gh::APP_KEY,
            "the test key",
        )
        .expect("the test key parses");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let app = writ_provider_github::app::AppClient::connect(
            &prism.api(),
            "octocat",
            &key,
            now,
            &Retrier::new(RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            }),
        )
        .unwrap();
        let installation = app
            .installation()
            .await
            .expect("the installation request matches the description");
        app.token(
            installation.id,
            &writ_provider_github::app::TokenRequest {
                repositories: Some(vec!["Hello-World".into()]),
                permissions: std::collections::BTreeMap::from([(
                    "contents".to_string(),
                    "read".to_string(),
                )]),
            },
        )
        .await
        .expect("the token request matches the description");
        // The description's example links its next page to github.com,
        // which writ refuses to follow (its own error, no status).
        if let Err(error) = app.installation_repositories(installation.id).await {
            assert!(
                error.status.is_none(),
                "a request outside GitHub's description: {error}"
            );
        }
        app.revoke_token("ghs_contract")
            .await
            .expect("revoking a token matches the description");
        app.suspend(installation.id, true)
            .await
            .expect("suspending matches the description");
        app.suspend(installation.id, false)
            .await
            .expect("unsuspending matches the description");
        let asked = state.stats().requests;
        assert!(asked >= 8, "the environment was read, set and its patterns listed, deleted and added ({asked} requests)");
    });
}
