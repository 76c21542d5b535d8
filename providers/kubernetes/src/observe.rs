//! Reading a cluster: every kind listed across all namespaces by the page.
//! Token Secrets are listed as metadata only (the server is asked for
//! `PartialObjectMetadataList`), so their data never reaches writ. The
//! project's inventory record is read last.

use crate::kinds::{to_resource, Kind, TOKEN_SECRET_SELECTOR};
use crate::KubernetesProvider;
use kube::api::{Api, DynamicObject, ListParams};
use writ_compiler::resource::Resource;
use writ_provider_core::ProviderError;

/// Stops a server that keeps sending `continue` tokens from looping forever.
const MAX_PAGES: usize = 100_000;

pub(crate) async fn observe(provider: &KubernetesProvider) -> Result<Vec<Resource>, ProviderError> {
    let mut resources = Vec::new();
    for kind in Kind::ALL {
        // A list that takes longer than the server keeps its snapshot gets
        // 410 Gone on the next page: start that kind again, once.
        let mut restarted = false;
        loop {
            let mut found = Vec::new();
            match list_kind(provider, kind, &mut found).await {
                Ok(()) => {
                    resources.extend(found);
                    break;
                }
                Err(error)
                    if crate::Reason::of(&error) == Some(crate::Reason::Expired) && !restarted =>
                {
                    restarted = true;
                }
                Err(error) => return Err(error),
            }
        }
    }
    // The project's inventory record: which service accounts writ made,
    // and which agents are revoked here. One request.
    let stored = provider.read_inventory().await?;
    if stored.object.is_some() {
        resources.push(provider.inventory_resource(&stored.record));
    }
    provider.remember_inventory(stored.record);
    resources.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(resources)
}

async fn list_kind(
    provider: &KubernetesProvider,
    kind: Kind,
    into: &mut Vec<Resource>,
) -> Result<(), ProviderError> {
    let api_resource = kind.api_resource();
    let api: Api<DynamicObject> = Api::all_with(provider.client.clone(), &api_resource);
    let mut continue_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut params = ListParams::default().limit(provider.page_size);
        if let Some(token) = &continue_token {
            params = params.continue_token(token);
        }
        let what = format!("listing {}", api_resource.plural);
        let next = if kind == Kind::TokenSecret {
            params = params.fields(TOKEN_SECRET_SELECTOR);
            let page = provider.call(&what, || api.list_metadata(&params)).await?;
            for item in &page.items {
                let object = DynamicObject {
                    types: None,
                    metadata: item.metadata.clone(),
                    data: serde_json::Value::Null,
                };
                into.extend(to_resource(&provider.address, kind, &object));
            }
            page.metadata.continue_
        } else {
            let page = provider.call(&what, || api.list(&params)).await?;
            for item in &page.items {
                into.extend(to_resource(&provider.address, kind, item));
            }
            page.metadata.continue_
        };
        match next.filter(|token| !token.is_empty()) {
            Some(token) if Some(&token) == continue_token.as_ref() => {
                return Err(ProviderError::permanent(format!(
                    "{}: listing {}: the server sent the same continue token twice",
                    provider.address, api_resource.plural
                )));
            }
            Some(token) => continue_token = Some(token),
            None => return Ok(()),
        }
    }
    Err(ProviderError::permanent(format!(
        "{}: listing {}: more than {MAX_PAGES} pages",
        provider.address, api_resource.plural
    )))
}
