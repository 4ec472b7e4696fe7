//! Rules over the resolve graph: layering between workspace crates, banned
//! external crates per layer, and cycles.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use cargo_metadata::{DependencyKind, NodeDep, PackageId};

use super::{Architecture, Graph, Layer, Rule, Violation, Workspace, package_key};

pub(super) fn check(
    architecture: &Architecture,
    workspace: &Workspace<'_>,
    graph: &Graph<'_>,
    violations: &mut Vec<Violation>,
) {
    layering(workspace, graph, violations);
    banned_crates(architecture, workspace, graph, violations);
    cycles(workspace, graph, violations);
}

/// Dev-dependencies never reach the shipped artefact, so layering ignores
/// them; build dependencies run code at build time and count.
pub(super) fn is_linked(dep: &NodeDep) -> bool {
    // Cargo older than 1.41 leaves dep_kinds empty; such edges are normal.
    dep.dep_kinds.is_empty()
        || dep
            .dep_kinds
            .iter()
            .any(|info| info.kind != DependencyKind::Development)
}

fn layering(workspace: &Workspace<'_>, graph: &Graph<'_>, violations: &mut Vec<Violation>) {
    for (id, member) in &workspace.members {
        let Some(layer) = member.layer else { continue };
        let Some(node) = graph.node(id) else { continue };
        for dep in node.deps.iter().filter(|dep| is_linked(dep)) {
            let Some(target) = workspace.member(&dep.pkg) else {
                continue;
            };
            // An unclassified target is already reported on its own.
            let Some(target_layer) = target.layer else {
                continue;
            };
            let wires_in = member.composition_root_files.is_some()
                && matches!(
                    target_layer,
                    Layer::Infrastructure | Layer::Bff | Layer::Runtime
                );
            if !layer.may_depend_on(target_layer) && !wires_in {
                violations.push(Violation::new(
                    member.name.clone(),
                    target.name.clone(),
                    Rule::LayerDependency,
                    format!(
                        "{} (a {layer} crate depends on a {target_layer} crate)",
                        layer.dependency_explanation()
                    ),
                ));
            }
        }
    }
}

/// Walks each member's normal and build closure breadth first, so the path
/// reported is a shortest one. Other crates with a known layer (members and
/// framework crates) are not entered: each is checked under its own layer.
/// A banned crate is not entered either, so one banned framework yields one
/// finding rather than one per crate it pulls in.
fn banned_crates(
    architecture: &Architecture,
    workspace: &Workspace<'_>,
    graph: &Graph<'_>,
    violations: &mut Vec<Violation>,
) {
    for (&start, member) in &workspace.members {
        let Some(layer) = member.layer else { continue };
        let Some(banned) = architecture.banned_for(layer) else {
            continue;
        };
        let rule = Rule::banned_crate(layer);
        let mut parents: HashMap<&PackageId, &PackageId> = HashMap::new();
        let mut seen: HashSet<&PackageId> = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        let mut hits = Vec::new();
        while let Some(id) = queue.pop_front() {
            let Some(node) = graph.node(id) else { continue };
            for dep in node.deps.iter().filter(|dep| is_linked(dep)) {
                if workspace.member(&dep.pkg).is_some() || !seen.insert(&dep.pkg) {
                    continue;
                }
                parents.insert(&dep.pkg, id);
                if banned.contains(&package_key(&graph.name(&dep.pkg))) {
                    hits.push(&dep.pkg);
                } else {
                    queue.push_back(&dep.pkg);
                }
            }
        }
        for hit in hits {
            let mut path = vec![graph.name(hit)];
            let mut current = hit;
            while let Some(&parent) = parents.get(current) {
                path.push(graph.name(parent));
                current = parent;
            }
            path.reverse();
            let offending = if path.len() <= 2 {
                graph.name(hit)
            } else {
                path.join(" -> ")
            };
            violations.push(Violation::new(
                member.name.clone(),
                offending,
                rule,
                rule.explanation(),
            ));
        }
    }
}

/// Cargo rejects cycles of normal dependencies but accepts ones closed by a
/// dev-dependency; those still tangle the layers, so every edge counts here.
fn cycles(workspace: &Workspace<'_>, graph: &Graph<'_>, violations: &mut Vec<Violation>) {
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (id, member) in &workspace.members {
        let targets = edges.entry(member.name.as_str()).or_default();
        let Some(node) = graph.node(id) else { continue };
        for dep in &node.deps {
            if let Some(target) = workspace.member(&dep.pkg) {
                targets.insert(target.name.as_str());
            }
        }
    }
    for component in strongly_connected(&edges) {
        let Some(&start) = component.iter().next() else {
            continue;
        };
        let closes_on_itself = edges.get(start).is_some_and(|to| to.contains(start));
        if component.len() < 2 && !closes_on_itself {
            continue;
        }
        let cycle = cycle_through(start, &component, &edges);
        violations.push(Violation::new(
            start,
            cycle.join(" -> "),
            Rule::NoCycles,
            format!(
                "{} (cycle members: {})",
                Rule::NoCycles.explanation(),
                component.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}

/// Tarjan's algorithm; workspaces are small, so recursion depth is no concern.
fn strongly_connected<'a>(edges: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<BTreeSet<&'a str>> {
    struct State<'a> {
        next_index: usize,
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: HashSet<&'a str>,
        components: Vec<BTreeSet<&'a str>>,
    }

    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        state: &mut State<'a>,
    ) {
        state.index.insert(node, state.next_index);
        state.low.insert(node, state.next_index);
        state.next_index += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        for &next in edges.get(node).into_iter().flatten() {
            if !state.index.contains_key(next) {
                visit(next, edges, state);
                let next_low = state.low.get(next).copied().unwrap_or(usize::MAX);
                lower(state, node, next_low);
            } else if state.on_stack.contains(next) {
                let next_index = state.index.get(next).copied().unwrap_or(usize::MAX);
                lower(state, node, next_index);
            }
        }
        if state.low.get(node) == state.index.get(node) {
            let mut component = BTreeSet::new();
            while let Some(member) = state.stack.pop() {
                state.on_stack.remove(member);
                component.insert(member);
                if member == node {
                    break;
                }
            }
            state.components.push(component);
        }
    }

    fn lower<'a>(state: &mut State<'a>, node: &'a str, candidate: usize) {
        if let Some(low) = state.low.get_mut(node) {
            *low = (*low).min(candidate);
        }
    }

    let mut state = State {
        next_index: 0,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: HashSet::new(),
        components: Vec::new(),
    };
    for &node in edges.keys() {
        if !state.index.contains_key(node) {
            visit(node, edges, &mut state);
        }
    }
    state.components
}

/// A shortest walk from `start` back to itself inside its component.
fn cycle_through<'a>(
    start: &'a str,
    component: &BTreeSet<&'a str>,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) -> Vec<&'a str> {
    let mut parents: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for &next in edges.get(node).into_iter().flatten() {
            if !component.contains(next) {
                continue;
            }
            if next == start {
                let mut cycle = vec![start, node];
                let mut current = node;
                while let Some(&parent) = parents.get(current) {
                    cycle.push(parent);
                    current = parent;
                }
                cycle.reverse();
                return cycle;
            }
            if !parents.contains_key(next) {
                parents.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    vec![start, start]
}
