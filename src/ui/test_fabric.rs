//! Small fabrics the UI tests start from: the host group "Seattle" under "All Hosts" and the
//! logical network "Backend".

use uuid::Uuid;

use crate::fabric::model::{Fabric, HostGroup, Id, LogicalNetwork, LogicalNetworkIsolation};

/// A new fabric with the host group "Seattle" under the root: (fabric, root, Seattle).
pub fn with_seattle() -> (Fabric, Id, Id) {
    let mut fabric = Fabric::new();
    let root = fabric.root_host_group().map(|r| r.id).expect("root");
    let seattle = HostGroup {
        id: Uuid::new_v4(),
        name: "Seattle".into(),
        parent: Some(root),
    };
    let id = seattle.id;
    fabric.host_groups.insert(id, seattle);
    (fabric, root, id)
}

/// Adds the logical network "Backend" of this isolation; its id.
pub fn add_backend(fabric: &mut Fabric, isolation: LogicalNetworkIsolation) -> Id {
    let network = LogicalNetwork {
        id: Uuid::new_v4(),
        name: "Backend".into(),
        description: String::new(),
        isolation,
    };
    let id = network.id;
    fabric.logical_networks.insert(id, network);
    id
}
