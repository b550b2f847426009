//! Host groups: one root named "All Hosts", parents that exist, no parent loops.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Field, Rule, ValidationError, View, problem};
use crate::fabric::model::{HostGroup, Id, ObjectKind, ROOT_HOST_GROUP};

fn missing_root_error() -> ValidationError {
    problem(
        ObjectKind::HostGroup,
        Uuid::nil(),
        ROOT_HOST_GROUP,
        Field::Parent,
        Rule::RootHostGroup,
        format!(
            "Parent: no host group sits at the top of the tree. Add the root host group \"{ROOT_HOST_GROUP}\"."
        ),
    )
}

fn extra_root_error(g: &HostGroup) -> ValidationError {
    let message = if g.name == ROOT_HOST_GROUP {
        format!(
            "Parent is empty, but another \"{ROOT_HOST_GROUP}\" host group is already the root. Choose a parent host group."
        )
    } else {
        format!(
            "Parent is empty: only \"{ROOT_HOST_GROUP}\" sits at the top of the tree. Choose a parent host group."
        )
    };
    problem(
        ObjectKind::HostGroup,
        g.id,
        &g.name,
        Field::Parent,
        Rule::RootHostGroup,
        message,
    )
}

/// Exactly one parentless host group, and it is named "All Hosts"; of several parentless
/// "All Hosts" groups, the one with the lowest id is the root.
pub(super) fn check_root_host_group(view: &View<'_>, out: &mut Vec<ValidationError>) {
    let roots: Vec<&HostGroup> = view
        .all::<HostGroup>()
        .filter(|g| g.parent.is_none())
        .collect();
    let canonical = roots
        .iter()
        .filter(|g| g.name == ROOT_HOST_GROUP)
        .map(|g| g.id)
        .min();
    if canonical.is_none() {
        out.push(missing_root_error());
    }
    for g in roots {
        if Some(g.id) != canonical {
            out.push(extra_root_error(g));
        }
    }
}

pub(super) fn check_parent_exists(view: &View<'_>, g: &HostGroup) -> Option<ValidationError> {
    let parent = g.parent?;
    if view.get::<HostGroup>(parent).is_some() {
        return None;
    }
    Some(problem(
        ObjectKind::HostGroup,
        g.id,
        &g.name,
        Field::Parent,
        Rule::ReferenceMissing,
        format!("Parent host group {parent} does not exist. Choose an existing parent host group."),
    ))
}

fn cycle_error(view: &View<'_>, g: &HostGroup) -> ValidationError {
    let parent_name = g
        .parent
        .and_then(|p| view.get::<HostGroup>(p))
        .map(|p| p.name.as_str())
        .unwrap_or("");
    problem(
        ObjectKind::HostGroup,
        g.id,
        &g.name,
        Field::Parent,
        Rule::ParentCycle,
        format!(
            "Parent \"{parent_name}\" is inside this host group, which makes a loop. Choose a parent that is not below this host group."
        ),
    )
}

/// No host group is its own ancestor. Linear: each group's parent chain is walked once. With a
/// candidate, only its own chain is walked: a loop through it starts at it.
pub(super) fn check_host_group_cycles(view: &View<'_>, out: &mut Vec<ValidationError>) {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        OnPath(usize),
        Done,
    }
    let mut state: HashMap<Id, State> = HashMap::new();
    for start in view.subjects::<HostGroup>().map(|g| g.id) {
        if state.contains_key(&start) {
            continue;
        }
        let mut path: Vec<Id> = Vec::new();
        let mut cur = Some(start);
        while let Some(id) = cur {
            match state.get(&id) {
                Some(State::Done) => break,
                Some(State::OnPath(pos)) => {
                    for member in &path[*pos..] {
                        if let Some(g) = view.get::<HostGroup>(*member) {
                            out.push(cycle_error(view, g));
                        }
                    }
                    break;
                }
                None => {}
            }
            let Some(g) = view.get::<HostGroup>(id) else {
                break;
            };
            state.insert(id, State::OnPath(path.len()));
            path.push(id);
            cur = g.parent;
        }
        for id in path {
            state.insert(id, State::Done);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;

    #[test]
    fn exactly_one_root_named_all_hosts() {
        let errors = broken(|f| object_mut(&mut f.host_groups, ROOT).name = "Everything".into());
        assert!(
            errors
                .iter()
                .any(|e| e.rule == Rule::RootHostGroup && e.object.is_nil())
        );
        expect(&errors, Rule::RootHostGroup, ROOT, "Parent");
        let errors = broken(|f| object_mut(&mut f.host_groups, DUBLIN).parent = None);
        expect(&errors, Rule::RootHostGroup, DUBLIN, "Parent");
        let errors = broken(|f| {
            let g = group(98, ROOT_HOST_GROUP, None);
            f.host_groups.insert(g.id, g);
        });
        expect(&errors, Rule::RootHostGroup, 98, "Parent");
        assert!(!has(&errors, Rule::RootHostGroup, ROOT, "Parent"));
        let errors = validate_fabric(&Fabric::default());
        assert!(errors.iter().any(|e| e.rule == Rule::RootHostGroup));
        clean(&validate_fabric(&Fabric::new()));
    }

    #[test]
    fn parent_must_exist() {
        let errors = broken(|f| object_mut(&mut f.host_groups, RACK_A).parent = Some(id(777)));
        expect(&errors, Rule::ReferenceMissing, RACK_A, "Parent");
        clean(&broken(|f| {
            object_mut(&mut f.host_groups, RACK_A).parent = Some(id(DUBLIN))
        }));
    }

    #[test]
    fn parents_form_no_cycle() {
        let errors = broken(|f| object_mut(&mut f.host_groups, SEATTLE).parent = Some(id(RACK_A)));
        expect(&errors, Rule::ParentCycle, SEATTLE, "Parent");
        expect(&errors, Rule::ParentCycle, RACK_A, "Parent");
        let errors = broken(|f| object_mut(&mut f.host_groups, DUBLIN).parent = Some(id(DUBLIN)));
        expect(&errors, Rule::ParentCycle, DUBLIN, "Parent");
        // Moving Rack A under Dublin makes no loop.
        clean(&broken(|f| {
            object_mut(&mut f.host_groups, RACK_A).parent = Some(id(DUBLIN))
        }));
    }
}
