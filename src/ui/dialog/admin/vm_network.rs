//! Create VM Network / VM Network Properties: name, logical network, isolation, and VM subnets
//! for network-virtualized networks. On the IPAM server it is a customer address space.

use iced::widget::{column, row};
use iced::{Alignment, Element, Length};
use uuid::Uuid;

use super::form::{self, Choice, FieldErrors};
use crate::fabric::model::{Fabric, FabricObject, Id, VmNetwork, VmNetworkIsolation};
use crate::fabric::validate::{Field, validate_object};
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "vm-network-name";
pub const DESCRIPTION_INPUT: &str = "vm-network-description";
pub const LOGICAL_NETWORK_LIST: &str = "vm-network-logical-network";
/// The isolation choices, in `VmNetworkIsolation::ALL` order.
pub fn isolation_option(index: usize) -> String {
    format!("vm-network-isolation-{index}")
}
pub const FIELDS: &[Field] = &[
    Field::Name,
    Field::Description,
    Field::LogicalNetwork,
    Field::Isolation,
    Field::VmSubnets,
];
pub fn vm_subnet_input(row: usize) -> String {
    format!("vm-network-subnet-{row}")
}

#[derive(Debug, Clone)]
pub struct Form {
    id: Id,
    pub name: String,
    pub description: String,
    pub logical_network: Option<Id>,
    pub isolation: VmNetworkIsolation,
    pub vm_subnets: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    Description(String),
    LogicalNetwork(Choice),
    Isolation(VmNetworkIsolation),
    VmSubnet(usize, String),
    AddVmSubnet,
    RemoveVmSubnet(usize),
}

impl Form {
    pub fn create(fabric: &Fabric, logical_network: Option<Id>) -> Self {
        Form {
            id: Uuid::new_v4(),
            name: String::new(),
            description: String::new(),
            logical_network: logical_network.filter(|l| fabric.logical_networks.contains_key(l)),
            isolation: VmNetworkIsolation::NoIsolation,
            vm_subnets: Vec::new(),
        }
    }

    pub fn edit(network: &VmNetwork) -> Self {
        Form {
            id: network.id,
            name: network.name.clone(),
            description: network.description.clone(),
            logical_network: Some(network.logical_network),
            isolation: network.isolation,
            vm_subnets: network.vm_subnets.iter().map(|n| n.to_string()).collect(),
        }
    }

    pub fn update(&mut self, message: Message) -> &'static str {
        match message {
            Message::Name(v) => form::typed(&mut self.name, v, "Name"),
            Message::Description(v) => form::typed(&mut self.description, v, "Description"),
            Message::LogicalNetwork(c) => {
                self.logical_network = Some(c.id);
                "Logical network"
            }
            Message::Isolation(i) => {
                self.isolation = i;
                if i == VmNetworkIsolation::NetworkVirtualization && self.vm_subnets.is_empty() {
                    self.vm_subnets.push(String::new());
                }
                "Isolation"
            }
            Message::VmSubnet(i, v) => {
                form::edit_row(&mut self.vm_subnets, i, |s| *s = v);
                "VM subnets"
            }
            Message::AddVmSubnet => {
                self.vm_subnets.push(String::new());
                "VM subnets"
            }
            Message::RemoveVmSubnet(i) => {
                form::remove_row(&mut self.vm_subnets, i);
                "VM subnets"
            }
        }
    }

    pub fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        let mut errors = FieldErrors::default();
        let virtualized = self.isolation == VmNetworkIsolation::NetworkVirtualization;
        let mut vm_subnets = Vec::new();
        // VM subnets only count for network virtualization; other isolations drop them.
        if virtualized {
            for s in &self.vm_subnets {
                match form::parse_cidr("VM subnet", s) {
                    Ok(n) => vm_subnets.push(n),
                    Err(e) => errors.add("VM subnets", e),
                }
            }
        }
        let Some(logical_network) = form::required(
            self.logical_network,
            &mut errors,
            "Logical network",
            "Choose the logical network this VM network uses.",
        ) else {
            return (None, errors);
        };
        let object = FabricObject::VmNetwork(VmNetwork {
            id: self.id,
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            logical_network,
            isolation: self.isolation,
            vm_subnets,
        });
        errors.add_validation(&validate_object(fabric, &object), FIELDS);
        // Pools drawn from a VM subnet that is being removed would be left without addresses.
        if let Some(old) = fabric.vm_networks.get(&self.id) {
            let kept: Vec<_> = match &object {
                FabricObject::VmNetwork(v) => v.vm_subnets.clone(),
                _ => Vec::new(),
            };
            for p in fabric.ip_pools.values() {
                if let crate::fabric::model::PoolScope::VmSubnet { vm_network, subnet } = &p.scope
                    && *vm_network == old.id
                    && !kept.contains(subnet)
                {
                    errors.add(
                        "VM subnets",
                        format!("VM subnet {subnet} holds the static IP address pool \"{}\". Delete the pool first or keep the VM subnet.", p.name),
                    );
                }
            }
        }
        (Some(object), errors)
    }

    pub fn view<'a>(&'a self, fabric: &'a Fabric, errors: &FieldErrors) -> Element<'a, Message> {
        let isolation = form::radio_column(
            &VmNetworkIsolation::ALL,
            VmNetworkIsolation::label,
            self.isolation,
            Message::Isolation,
            isolation_option,
        );
        let mut subnets = column![].spacing(4);
        let mut row_errors = form::RowErrors::new(errors, &["VM subnets"]);
        if self.isolation == VmNetworkIsolation::NetworkVirtualization {
            for (i, s) in self.vm_subnets.iter().enumerate() {
                subnets = row_errors.push_row(subnets, s, |mine| {
                    row![
                        form::row_input(
                            vm_subnet_input(i),
                            "e.g. 192.168.0.0/24",
                            s,
                            move |v| Message::VmSubnet(i, v),
                            !mine.is_empty(),
                            Length::Fill,
                        ),
                        form::list_button("Remove", [3, 8], Message::RemoveVmSubnet(i)),
                    ]
                    .spacing(6)
                    .align_y(Alignment::Center)
                    .into()
                });
            }
            subnets = subnets.push(form::list_button(
                "Add VM subnet",
                [3, 10],
                Message::AddVmSubnet,
            ));
        } else {
            subnets = subnets.push(style::hint(
                "VM subnets are used with network virtualization only.",
            ));
        }
        let rest = row_errors.rest();
        column![
            form::text_field("Name", NAME_INPUT, "e.g. Tenant A", &self.name, Message::Name, errors),
            form::text_field("Description", DESCRIPTION_INPUT, "Optional", &self.description, Message::Description, errors),
            form::logical_network_field(
                LOGICAL_NETWORK_LIST,
                fabric,
                self.logical_network,
                Message::LogicalNetwork,
                errors,
            ),
            form::field("Isolation", isolation, errors.get("Isolation")),
            form::field("VM subnets", subnets, &rest),
            style::hint("VM networks are managed here: the IPAM server monitors them as customer IP address spaces (VM Network field), and changes made there are put back."),
        ]
        .spacing(10)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::model::LogicalNetworkIsolation;
    use crate::ui::test_fabric::add_backend;

    #[test]
    fn vm_subnets_need_a_virtualized_logical_network() {
        let mut f = Fabric::new();
        let ln = add_backend(&mut f, LogicalNetworkIsolation::OneConnected);
        let mut form = Form::create(&f, Some(ln));
        form.update(Message::Name("Tenant A".into()));
        form.update(Message::Isolation(
            VmNetworkIsolation::NetworkVirtualization,
        ));
        form.update(Message::VmSubnet(0, "192.168.0.0/24".into()));
        let (_, errors) = form.check(&f);
        assert!(errors.has("Isolation"), "{errors:?}");
        form.update(Message::VmSubnet(0, "192.168.0/24".into()));
        let (_, errors) = form.check(&f);
        assert!(
            errors.get("VM subnets")[0].contains("is not a subnet"),
            "{errors:?}"
        );
        form.update(Message::Isolation(VmNetworkIsolation::NoIsolation));
        let (object, errors) = form.check(&f);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(matches!(object, Some(FabricObject::VmNetwork(v)) if v.vm_subnets.is_empty()));
    }
}
