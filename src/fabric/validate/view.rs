//! The fabric as the rules see it: the stored objects, optionally with one candidate put in place
//! of the stored object with its id (or beside them when new). No copy of the fabric is made, so
//! a dialog can check its candidate on every keystroke with the very rules the store runs.

use std::collections::HashSet;

use crate::fabric::model::{Fabric, FabricKind, FabricObject, HostGroup, Id, ObjectKind};

pub(super) struct View<'a> {
    pub fabric: &'a Fabric,
    candidate: Option<&'a FabricObject>,
}

impl<'a> View<'a> {
    pub fn whole(fabric: &'a Fabric) -> Self {
        View {
            fabric,
            candidate: None,
        }
    }

    pub fn with_candidate(fabric: &'a Fabric, candidate: &'a FabricObject) -> Self {
        View {
            fabric,
            candidate: Some(candidate),
        }
    }

    /// The candidate of kind `T`, when there is one.
    pub fn candidate<T: FabricKind>(&self) -> Option<&'a T> {
        self.candidate.and_then(T::of_object)
    }

    /// Whether problems on objects of `kind` are wanted: all kinds for the whole fabric, only the
    /// candidate's kind when checking a candidate.
    pub fn wants(&self, kind: ObjectKind) -> bool {
        self.candidate.is_none_or(|c| c.kind() == kind)
    }

    pub fn get<T: FabricKind>(&self, id: Id) -> Option<&'a T> {
        match self.candidate::<T>() {
            Some(c) if c.id() == id => Some(c),
            _ => T::all(self.fabric).get(&id),
        }
    }

    /// Every object of kind `T`, in id order, with the candidate in place (a new one comes last).
    pub fn all<T: FabricKind>(&self) -> impl Iterator<Item = &'a T> + 'a {
        let stored = T::all(self.fabric);
        let candidate = self.candidate::<T>();
        let added = candidate.filter(|c| !stored.contains_key(&c.id()));
        stored
            .values()
            .map(move |o| match candidate {
                Some(c) if c.id() == o.id() => c,
                _ => o,
            })
            .chain(added)
    }

    /// The objects whose problems are wanted: all of kind `T`, or only the candidate.
    pub fn subjects<T: FabricKind>(&self) -> impl Iterator<Item = &'a T> + 'a {
        let whole = self
            .candidate
            .is_none()
            .then(|| T::all(self.fabric).values());
        whole.into_iter().flatten().chain(self.candidate::<T>())
    }

    /// "All Hosts/Seattle/Rack 1", walking parents through the candidate; stops on cycles.
    pub fn host_group_path(&self, id: Id) -> String {
        let mut names = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = Some(id);
        while let Some(g) = cur {
            if !seen.insert(g) {
                break;
            }
            match self.get::<HostGroup>(g) {
                Some(h) => {
                    names.push(h.name.as_str());
                    cur = h.parent;
                }
                None => break,
            }
        }
        names.reverse();
        names.join("/")
    }
}
