//! The questions asked of the graph: everything a workload reaches
//! (`--from`), every chain that reaches a resource (`--to`), and an agent's
//! neighbourhood (`--agent`).

use super::{candidate_actions, instances, EdgeKind, Graph, NodeKind, Witness};
use crate::access;
use crate::eval::{self, Request};
use crate::facts::{aws, kubernetes, ProviderKind};
use crate::model::{Model, Placement};
use std::collections::{BTreeSet, HashSet, VecDeque};

/// One step of a [`Tree`]: an edge at a depth. `expanded`: the edge's
/// target is reached here first (its own edges follow); otherwise it was
/// reached at this depth or less elsewhere in the tree, or the edge is
/// blocked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    pub depth: usize,
    pub edge: usize,
    pub expanded: bool,
}

/// Everything reachable from one node, hop by hop, each node expanded once
/// where it is reached by the fewest hops.
#[derive(Debug, Clone)]
pub struct Tree {
    pub root: usize,
    pub hops: Vec<Hop>,
}

/// A chain of edges, from where it starts to what it reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub edges: Vec<usize>,
    /// A request for the asked resource, through the chain's last grant,
    /// that the evaluator allows.
    pub allowed: Option<Witness>,
    /// When the evaluator denied the sample request tried: why (other
    /// requests in the pattern may still be allowed, so the chain stays).
    pub note: Option<String>,
}

/// What `--to` found: the resources of the graph that meet the query, and
/// every chain into them, fewest hops first.
#[derive(Debug, Clone)]
pub struct Found {
    pub query: String,
    pub resources: Vec<usize>,
    pub chains: Vec<Chain>,
    /// More chains than are listed.
    pub truncated: bool,
}

/// A part of the graph, to draw: nodes and edges by index, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    pub nodes: Vec<usize>,
    pub edges: Vec<usize>,
}

impl View {
    /// Where each node of the graph is in the view's order.
    pub fn positions(&self) -> std::collections::HashMap<usize, usize> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, i))
            .collect()
    }

    fn of_edges(
        graph: &Graph,
        start: Option<usize>,
        edges: impl IntoIterator<Item = usize>,
    ) -> View {
        let mut view = View::default();
        let mut seen_nodes = HashSet::new();
        let mut seen_edges = HashSet::new();
        if let Some(start) = start {
            seen_nodes.insert(start);
            view.nodes.push(start);
        }
        for edge in edges {
            if !seen_edges.insert(edge) {
                continue;
            }
            view.edges.push(edge);
            for node in [graph.edges[edge].from, graph.edges[edge].to] {
                if seen_nodes.insert(node) {
                    view.nodes.push(node);
                }
            }
        }
        view
    }
}

impl Tree {
    pub fn view(&self, graph: &Graph) -> View {
        View::of_edges(graph, Some(self.root), self.hops.iter().map(|h| h.edge))
    }
}

impl Found {
    pub fn view(&self, graph: &Graph) -> View {
        View::of_edges(
            graph,
            None,
            self.chains.iter().flat_map(|c| c.edges.iter().copied()),
        )
    }
}

impl Graph {
    /// The whole graph.
    pub fn whole(&self) -> View {
        View {
            nodes: (0..self.nodes.len()).collect(),
            edges: (0..self.edges.len()).collect(),
        }
    }

    /// An agent's neighbourhood: every chain into it, and everything it
    /// reaches.
    pub fn around(&self, agent: usize) -> (Vec<Vec<usize>>, bool, Tree) {
        let (chains, truncated) = self.chains(&[agent], |edge| self.edges[edge].to == agent);
        (chains, truncated, self.from(agent))
    }
}

/// At most this many chains are listed for one question.
pub const MAX_CHAINS: usize = 1000;

/// The providers in which credentials are held at a point of a chain.
pub type Held = BTreeSet<usize>;

impl Graph {
    /// What a question starting at a node holds: an agent, its own
    /// credentials everywhere; a service account, its cluster's; another
    /// workload, what its edges obtain.
    pub(crate) fn start(&self, node: usize) -> Held {
        match self.nodes[node].kind {
            NodeKind::Agent => (0..self.providers).collect(),
            NodeKind::ServiceAccount | NodeKind::AwsRole | NodeKind::AwsUser => {
                self.nodes[node].provider_id.into_iter().collect()
            }
            _ => Held::new(),
        }
    }

    /// What crossing an edge, holding `held`, gives; `None` when it cannot
    /// be crossed (blocked, or its provider's credentials are not held).
    pub fn cross(&self, edge: usize, held: &Held) -> Option<Held> {
        let e = &self.edges[edge];
        if !e.open() {
            return None;
        }
        match e.kind {
            EdgeKind::AuthenticatesAs => Some(e.obtains.iter().copied().collect()),
            EdgeKind::MayMintFor | EdgeKind::MayBecome => {
                let got: Held = e
                    .mints
                    .iter()
                    .filter(|(need, _)| held.contains(need))
                    .flat_map(|(_, obtained)| obtained.iter().copied())
                    .collect();
                (!got.is_empty()).then_some(got)
            }
            EdgeKind::MayDo => self.nodes[e.to]
                .provider_id
                .filter(|p| held.contains(p))
                .map(|_| Held::new()),
        }
    }

    /// Everything reachable from `start`, with the credentials each step
    /// holds, in breadth-first distance; blocked edges appear as leaves
    /// with why.
    pub fn from(&self, start: usize) -> Tree {
        let mut held: Vec<Option<Held>> = vec![None; self.nodes.len()];
        let mut parent_edge: Vec<Option<usize>> = vec![None; self.nodes.len()];
        held[start] = Some(self.start(start));
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            let have = held[node].clone().unwrap_or_default();
            for edge in self.sorted(&self.outgoing[node]) {
                let Some(got) = self.cross(edge, &have) else {
                    continue;
                };
                let target = self.edges[edge].to;
                if target == start {
                    continue;
                }
                let entry = match &mut held[target] {
                    Some(entry) => entry,
                    slot => {
                        parent_edge[target] = Some(edge);
                        slot.insert(Held::new())
                    }
                };
                if !got.is_subset(entry) || (entry.is_empty() && got.is_empty()) {
                    entry.extend(got);
                    queue.push_back(target);
                }
            }
        }
        let mut hops = Vec::new();
        self.preorder(start, 1, &held, &parent_edge, &mut hops);
        Tree { root: start, hops }
    }

    fn preorder(
        &self,
        node: usize,
        depth: usize,
        held: &[Option<Held>],
        parent_edge: &[Option<usize>],
        hops: &mut Vec<Hop>,
    ) {
        let have = held[node].clone().unwrap_or_default();
        for edge in self.sorted(&self.outgoing[node]) {
            let crossed = self.cross(edge, &have).is_some();
            if !crossed && self.edges[edge].open() {
                // Of a provider whose credentials are not held here.
                continue;
            }
            let target = self.edges[edge].to;
            let expanded = crossed && parent_edge[target] == Some(edge);
            hops.push(Hop {
                depth,
                edge,
                expanded,
            });
            if expanded {
                self.preorder(target, depth + 1, held, parent_edge, hops);
            }
        }
    }

    /// Edges in a stable order: by kind, then by their target's id.
    fn sorted(&self, edges: &[usize]) -> Vec<usize> {
        let mut edges = edges.to_vec();
        edges.sort_by(|&a, &b| {
            let (a, b) = (&self.edges[a], &self.edges[b]);
            (a.kind, &self.nodes[a.to].id, &self.nodes[a.from].id).cmp(&(
                b.kind,
                &self.nodes[b.to].id,
                &self.nodes[b.from].id,
            ))
        });
        edges
    }

    /// Where chains start: workloads, and agents nothing leads into.
    fn roots(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&n| {
                let kind = self.nodes[n].kind;
                kind.is_workload() || (kind == NodeKind::Agent && self.incoming[n].is_empty())
            })
            .collect()
    }

    /// Every chain, from where chains start, that ends in one of
    /// `targets` by an edge `accept`s (crossing each edge with the
    /// credentials held there); fewest hops first, at most [`MAX_CHAINS`]
    /// (and whether there were more). Only nodes from which some open
    /// edge leads to a target are walked.
    pub fn chains(
        &self,
        targets: &[usize],
        accept: impl Fn(usize) -> bool,
    ) -> (Vec<Vec<usize>>, bool) {
        let mut leads = vec![false; self.nodes.len()];
        let mut queue: VecDeque<usize> = targets.iter().copied().collect();
        for &target in targets {
            leads[target] = true;
        }
        while let Some(node) = queue.pop_front() {
            for &edge in &self.incoming[node] {
                let from = self.edges[edge].from;
                if self.edges[edge].open() && !leads[from] {
                    leads[from] = true;
                    queue.push_back(from);
                }
            }
        }
        let walk = Walk {
            leads: &leads,
            accept: &accept,
        };
        let mut chains = Vec::new();
        for root in self.roots().into_iter().filter(|&r| leads[r]) {
            let mut on_path = HashSet::from([root]);
            self.forward(
                root,
                self.start(root),
                &mut Vec::new(),
                &mut on_path,
                &walk,
                &mut chains,
            );
        }
        chains.sort_by(|a, b| {
            let words = |chain: &Vec<usize>| -> Vec<&str> {
                chain
                    .iter()
                    .map(|&e| self.nodes[self.edges[e].to].id.as_str())
                    .collect()
            };
            let first = |chain: &Vec<usize>| self.nodes[self.edges[chain[0]].from].id.as_str();
            (a.len(), first(a), words(a)).cmp(&(b.len(), first(b), words(b)))
        });
        chains.dedup();
        let truncated = chains.len() > MAX_CHAINS;
        chains.truncate(MAX_CHAINS);
        (chains, truncated)
    }

    fn forward(
        &self,
        node: usize,
        held: Held,
        path: &mut Vec<usize>,
        on_path: &mut HashSet<usize>,
        walk: &Walk<'_, impl Fn(usize) -> bool>,
        chains: &mut Vec<Vec<usize>>,
    ) {
        // Enough to sort and cut to the shortest.
        if chains.len() > 4 * MAX_CHAINS {
            return;
        }
        for edge in self.sorted(&self.outgoing[node]) {
            let target = self.edges[edge].to;
            if !walk.leads[target] {
                continue;
            }
            let Some(got) = self.cross(edge, &held) else {
                continue;
            };
            path.push(edge);
            if (walk.accept)(edge) {
                chains.push(path.clone());
            } else if self.edges[edge].kind != EdgeKind::MayDo && on_path.insert(target) {
                self.forward(target, got, path, on_path, walk, chains);
                on_path.remove(&target);
            }
            path.pop();
        }
    }

    /// Every chain that can reach `query`: an ARN or ARN pattern, a
    /// repository, a GCP resource, `k8s:PROVIDER/RESOURCE [in NAMESPACE]`,
    /// or any of them after a provider's address (`aws.prod arn:…`). A
    /// grant reaches it when its resource pattern meets the query and, for
    /// AWS, one of its actions acts on that kind of resource.
    pub fn to(&self, model: &Model, query: &str) -> Result<Found, String> {
        let target = Target::parse(model, query)?;
        let mut resources = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if node.kind == NodeKind::Resource && target.meets_node(model, node) {
                resources.push(index);
            }
        }
        let acts = |edge: usize| {
            let e = &self.edges[edge];
            e.kind == EdgeKind::MayDo && resources.contains(&e.to) && target.acted_on(model, e)
        };
        let (paths, truncated) = self.chains(&resources, acts);
        let chains = paths
            .into_iter()
            .map(|edges| {
                let last = &self.edges[edges[edges.len() - 1]];
                let (allowed, note) = match last.observed {
                    true => (
                        None,
                        Some("only the observed state holds this, not the source".to_string()),
                    ),
                    false => target.sample(model, last),
                };
                Chain {
                    edges,
                    allowed,
                    note,
                }
            })
            .collect();
        Ok(Found {
            query: query.to_string(),
            resources,
            chains,
            truncated,
        })
    }
}

/// What a walk for chains keeps to: the nodes that lead to a target, and
/// the test of a chain's last edge.
struct Walk<'a, F> {
    leads: &'a [bool],
    accept: &'a F,
}

/// A `--to` query, read.
struct Target {
    /// Only this provider's resources.
    provider: Option<usize>,
    /// Only resources of providers of this kind.
    kind: Option<ProviderKind>,
    resource: String,
    placement: Placement,
}

impl Target {
    fn parse(model: &Model, query: &str) -> Result<Target, String> {
        let query = query.trim();
        if query.is_empty() {
            return Err("`--to` needs a resource: an ARN, a repository, `k8s:PROVIDER/RESOURCE in NAMESPACE`".to_string());
        }
        if let Some(rest) = query.strip_prefix("k8s:") {
            let (provider, rest) = rest.split_once('/').ok_or_else(|| {
                format!("`{query}`: a Kubernetes resource is `k8s:PROVIDER/RESOURCE [in NAMESPACE]` (`k8s:prod/secrets in billing`)")
            })?;
            let provider_id = model
                .provider_id(ProviderKind::Kubernetes, provider)
                .ok_or_else(|| format!("`{query}`: no provider `kubernetes.{provider}`"))?;
            let (resource, placement) = match rest.split_once(" in ") {
                Some((resource, place)) => {
                    let place = place.trim();
                    let place = place.strip_prefix("namespace ").unwrap_or(place).trim();
                    if place.is_empty() || place.contains(char::is_whitespace) {
                        return Err(format!("`{query}`: after `in`, a namespace or `cluster`"));
                    }
                    if place == "cluster" {
                        (resource.trim(), Placement::Cluster)
                    } else {
                        (resource.trim(), Placement::Namespace(place.to_string()))
                    }
                }
                None => (rest.trim(), Placement::Cluster),
            };
            if kubernetes::ResourceRef::parse(resource).is_err() {
                return Err(format!(
                    "`{query}`: `{resource}` is not a Kubernetes resource as RBAC reads it (`secrets`, `deployments.apps`, `pods/log`)"
                ));
            }
            return Ok(Target {
                provider: Some(provider_id),
                kind: Some(ProviderKind::Kubernetes),
                resource: resource.to_string(),
                placement,
            });
        }
        // `aws.prod arn:…`: one provider's.
        if let Some((address, rest)) = query.split_once(' ') {
            let known = model.providers.iter().any(|p| p.address() == address);
            if !known && address.contains('.') && !address.contains(':') && !address.contains('/') {
                let addresses: Vec<String> = model.providers.iter().map(|p| p.address()).collect();
                let mut message = format!("`{query}`: no provider `{address}`");
                if let Some(closest) =
                    crate::suggest::closest(address, addresses.iter().map(String::as_str))
                {
                    message.push_str(&format!("; did you mean `{closest}`?"));
                }
                return Err(message);
            }
            if let Some(id) = model.providers.iter().position(|p| p.address() == address) {
                if model.providers[id].kind == ProviderKind::Kubernetes {
                    return Target::parse(
                        model,
                        &format!("k8s:{}/{}", model.providers[id].name, rest.trim()),
                    );
                }
                return Ok(Target {
                    provider: Some(id),
                    kind: Some(model.providers[id].kind),
                    resource: rest.trim().to_string(),
                    placement: Placement::None,
                });
            }
        }
        // A bare word (`secrets`) is no resource writ can place: saying
        // "nothing reaches" it would be an answer to another question.
        if query != "*" && !query.contains([':', '/']) {
            return Err(format!(
                "`{query}` is not a resource writ can read: write an ARN, a repository `OWNER/NAME`, a GCP resource name, or `k8s:PROVIDER/RESOURCE in NAMESPACE`"
            ));
        }
        Ok(Target {
            provider: None,
            kind: None,
            resource: query.to_string(),
            placement: Placement::None,
        })
    }

    fn meets_node(&self, model: &Model, node: &super::Node) -> bool {
        let (Some(provider), Some((pattern, placement))) = (node.provider_id, &node.resource)
        else {
            return false;
        };
        let kind = model.providers[provider].kind;
        if self.provider.is_some_and(|p| p != provider) {
            return false;
        }
        match self.kind {
            Some(wanted) if wanted != kind => return false,
            // Kubernetes resources are asked for as `k8s:…`.
            None if kind == ProviderKind::Kubernetes => return false,
            _ => {}
        }
        if kind == ProviderKind::Aws && !looks_like_arn(&self.resource) {
            return false;
        }
        access::placement_meets(placement, &self.placement)
            && access::resource_meets(kind, pattern, &self.resource)
    }

    /// Does a grant edge act on the asked resource? For AWS, an action
    /// acts on an ARN when a resource type it takes may be that ARN, or
    /// when the catalogue does not know it (it may). Others: yes.
    fn acted_on(&self, model: &Model, edge: &super::Edge) -> bool {
        // Observed only: the binding acts on what its rules name.
        let Some((agent, index)) = edge.grant else {
            return true;
        };
        let grant = &model.agents[agent].grants[index];
        if model.providers[grant.provider].kind != ProviderKind::Aws {
            return true;
        }
        edge.actions
            .iter()
            .any(|action| aws_action_acts_on(action, &self.resource))
    }

    /// A request for the asked resource through the chain's last grant:
    /// the first the evaluator allows, or why the first tried is denied.
    fn sample(&self, model: &Model, edge: &super::Edge) -> (Option<Witness>, Option<String>) {
        let Some((agent, index)) = edge.grant else {
            return (None, None);
        };
        let grant = &model.agents[agent].grants[index];
        let kind = model.providers[grant.provider].kind;
        let placement = match (&self.placement, &grant.placement) {
            (Placement::Namespace(n), _) => Placement::Namespace(n.clone()),
            (_, Placement::Namespace(n)) => Placement::Namespace(n.clone()),
            (_, other) => other.clone(),
        };
        let names = super::grant_names(grant);
        let mut first_denied = None;
        for action in grant
            .actions
            .iter()
            .filter(|a| kind != ProviderKind::Aws || aws_action_acts_on(a, &self.resource))
            .flat_map(|a| candidate_actions(kind, a, &self.resource))
        {
            if kind == ProviderKind::Aws && !aws_action_acts_on(&action, &self.resource) {
                continue;
            }
            for resource in instances(&self.resource) {
                if !grant
                    .resources
                    .iter()
                    .any(|r| access::resource_matches(kind, r, &resource))
                {
                    continue;
                }
                for name in &names {
                    let request = Request {
                        provider: grant.provider,
                        action: &action,
                        resource: &resource,
                        placement: &placement,
                        name: *name,
                        context: None,
                    };
                    let decision = eval::evaluate(model, agent, &request);
                    if decision.is_allowed() {
                        return (
                            Some(Witness {
                                action,
                                resource,
                                namespace: match &placement {
                                    Placement::Namespace(n) => Some(n.clone()),
                                    _ => None,
                                },
                                name: name.map(str::to_string),
                            }),
                            None,
                        );
                    }
                    if first_denied.is_none() {
                        first_denied = Some(format!(
                            "the request tried, {action} on {resource}, is denied: {}; other requests the pattern allows may not be",
                            eval::explain_decision(model, agent, &decision)
                        ));
                    }
                }
            }
        }
        (None, first_denied)
    }
}

/// Does the text read as an ARN pattern (or `*`)?
fn looks_like_arn(text: &str) -> bool {
    text == "*" || text.starts_with("arn:") || text.starts_with("arn*") || text.starts_with('*')
}

/// May an AWS action (pattern) act on the ARN (pattern)? By the resource
/// types the catalogue gives it; an action the catalogue does not know may.
pub(crate) fn aws_action_acts_on(action: &str, arn: &str) -> bool {
    let expanded = aws::catalogue().expand(action);
    if expanded.is_empty() {
        return true;
    }
    expanded.iter().any(|(service, action)| {
        if action.resource_types.is_empty() {
            return arn == "*";
        }
        action.resource_types.iter().any(|&index| {
            service
                .resource_types
                .get(index)
                .is_some_and(|t| arn == "*" || t.admits(arn))
        })
    })
}
