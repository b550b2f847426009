//! Create Logical Network / Logical Network Properties: name, description and isolation.

use iced::Element;
use iced::widget::column;
use uuid::Uuid;

use super::form::{self, FieldErrors};
use crate::fabric::model::{Fabric, FabricObject, Id, LogicalNetwork, LogicalNetworkIsolation};
use crate::fabric::validate::{Field, validate_object};
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "logical-network-name";
pub const DESCRIPTION_INPUT: &str = "logical-network-description";
/// The isolation choices, in `LogicalNetworkIsolation::ALL` order.
pub fn isolation_option(index: usize) -> String {
    format!("logical-network-isolation-{index}")
}
pub const FIELDS: &[Field] = &[Field::Name, Field::Description, Field::Isolation];

#[derive(Debug, Clone)]
pub struct Form {
    id: Id,
    pub name: String,
    pub description: String,
    pub isolation: LogicalNetworkIsolation,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    Description(String),
    Isolation(LogicalNetworkIsolation),
}

impl Form {
    pub fn create() -> Self {
        Form {
            id: Uuid::new_v4(),
            name: String::new(),
            description: String::new(),
            isolation: LogicalNetworkIsolation::OneConnected,
        }
    }

    pub fn edit(network: &LogicalNetwork) -> Self {
        Form {
            id: network.id,
            name: network.name.clone(),
            description: network.description.clone(),
            isolation: network.isolation,
        }
    }

    pub fn update(&mut self, message: Message) -> &'static str {
        match message {
            Message::Name(v) => form::typed(&mut self.name, v, "Name"),
            Message::Description(v) => form::typed(&mut self.description, v, "Description"),
            Message::Isolation(i) => {
                self.isolation = i;
                "Isolation"
            }
        }
    }

    pub fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        let mut errors = FieldErrors::default();
        let object = FabricObject::LogicalNetwork(LogicalNetwork {
            id: self.id,
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            isolation: self.isolation,
        });
        errors.add_validation(&validate_object(fabric, &object), FIELDS);
        // Sites and VM networks depend on the isolation: say so before the store refuses.
        if let Some(old) = fabric.logical_networks.get(&self.id)
            && old.isolation != self.isolation
        {
            let pvlan_pairs = fabric
                .sites_of(self.id)
                .any(|s| s.subnets.iter().any(|p| p.secondary_vlan.is_some()));
            if pvlan_pairs && self.isolation != LogicalNetworkIsolation::PrivateVlan {
                errors.add(
                    "Isolation",
                    "Isolation: network sites of this logical network have secondary VLANs, which only private VLAN networks use. Remove them from the sites first.",
                );
            }
            let virtualized = fabric
                .vm_networks_of(self.id)
                .any(|v| !v.vm_subnets.is_empty());
            if virtualized && self.isolation != LogicalNetworkIsolation::NetworkVirtualization {
                errors.add(
                    "Isolation",
                    "Isolation: VM networks of this logical network use network virtualization. Change or delete those VM networks first.",
                );
            }
        }
        (Some(object), errors)
    }

    pub fn view<'a>(&'a self, _fabric: &Fabric, errors: &FieldErrors) -> Element<'a, Message> {
        let options = form::radio_column(
            &LogicalNetworkIsolation::ALL,
            LogicalNetworkIsolation::label,
            self.isolation,
            Message::Isolation,
            isolation_option,
        );
        column![
            form::text_field("Name", NAME_INPUT, "e.g. Corp-Backend", &self.name, Message::Name, errors),
            form::text_field("Description", DESCRIPTION_INPUT, "Optional", &self.description, Message::Description, errors),
            form::field("Isolation", options, errors.get("Isolation")),
            style::hint(
                "On the IPAM server this logical network becomes a provider IP address space; its subnets carry the name in the VMM Logical Network field."
            ),
        ]
        .spacing(10)
        .into()
    }
}
