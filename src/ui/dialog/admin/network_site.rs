//! Create Network Site / Network Site Properties: name, logical network, the host groups that
//! can use the site, and its subnet-VLAN pairs (with a secondary VLAN on private VLAN networks).

use std::collections::BTreeSet;

use iced::widget::{checkbox, column, container, row, scrollable, space, text};
use iced::{Alignment, Element, Length};
use uuid::Uuid;

use super::form::{self, Choice, FieldErrors, mentions};
use crate::fabric::model::{
    Fabric, FabricObject, Id, LogicalNetworkIsolation, MAX_VLAN, NetworkSite, SubnetVlan,
};
use crate::fabric::validate::{Field, validate_object};
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "network-site-name";
pub const LOGICAL_NETWORK_LIST: &str = "network-site-logical-network";
pub const FIELDS: &[Field] = &[
    Field::Name,
    Field::LogicalNetwork,
    Field::HostGroups,
    Field::Subnet,
    Field::Vlan,
    Field::SecondaryVlan,
];

/// Text boxes of the subnet-VLAN pairs, one id per row and column.
pub fn subnet_input(row: usize) -> String {
    format!("network-site-subnet-{row}")
}
pub fn vlan_input(row: usize) -> String {
    format!("network-site-vlan-{row}")
}
pub fn secondary_input(row: usize) -> String {
    format!("network-site-secondary-{row}")
}

/// One subnet-VLAN pair as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PairText {
    pub subnet: String,
    pub vlan: String,
    pub secondary: String,
}

#[derive(Debug, Clone)]
pub struct Form {
    id: Id,
    pub name: String,
    pub logical_network: Option<Id>,
    pub host_groups: BTreeSet<Id>,
    pub pairs: Vec<PairText>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    LogicalNetwork(Choice),
    HostGroup(Id, bool),
    Subnet(usize, String),
    Vlan(usize, String),
    Secondary(usize, String),
    AddPair,
    RemovePair(usize),
}

impl Form {
    pub fn create(fabric: &Fabric, logical_network: Option<Id>) -> Self {
        Form {
            id: Uuid::new_v4(),
            name: String::new(),
            logical_network: logical_network.filter(|l| fabric.logical_networks.contains_key(l)),
            host_groups: BTreeSet::new(),
            pairs: vec![PairText {
                vlan: "0".into(),
                ..PairText::default()
            }],
        }
    }

    pub fn edit(site: &NetworkSite) -> Self {
        Form {
            id: site.id,
            name: site.name.clone(),
            logical_network: Some(site.logical_network),
            host_groups: site.host_groups.iter().copied().collect(),
            pairs: site
                .subnets
                .iter()
                .map(|p| PairText {
                    subnet: p.subnet.to_string(),
                    vlan: p.vlan.to_string(),
                    secondary: p.secondary_vlan.map(|v| v.to_string()).unwrap_or_default(),
                })
                .collect(),
        }
    }

    fn private_vlan(&self, fabric: &Fabric) -> bool {
        self.logical_network
            .and_then(|l| fabric.logical_networks.get(&l))
            .is_some_and(|l| l.isolation == LogicalNetworkIsolation::PrivateVlan)
    }

    pub fn update(&mut self, message: Message) -> &'static str {
        match message {
            Message::Name(v) => form::typed(&mut self.name, v, "Name"),
            Message::LogicalNetwork(c) => {
                self.logical_network = Some(c.id);
                "Logical network"
            }
            Message::HostGroup(id, on) => {
                if on {
                    self.host_groups.insert(id);
                } else {
                    self.host_groups.remove(&id);
                }
                "Host groups"
            }
            Message::Subnet(i, v) => {
                form::edit_row(&mut self.pairs, i, |p| p.subnet = v);
                "Subnet"
            }
            Message::Vlan(i, v) => {
                form::edit_row(&mut self.pairs, i, |p| p.vlan = v);
                "VLAN"
            }
            Message::Secondary(i, v) => {
                form::edit_row(&mut self.pairs, i, |p| p.secondary = v);
                "Secondary VLAN"
            }
            Message::AddPair => {
                self.pairs.push(PairText {
                    vlan: "0".into(),
                    ..PairText::default()
                });
                "Subnet"
            }
            Message::RemovePair(i) => {
                form::remove_row(&mut self.pairs, i);
                "Subnet"
            }
        }
    }

    pub fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        let mut errors = FieldErrors::default();
        let private = self.private_vlan(fabric);
        let mut subnets = Vec::new();
        let mut unparsed_secondary: Vec<String> = Vec::new();
        for p in &self.pairs {
            let subnet = form::parse_cidr("Subnet", &p.subnet).map_err(|e| errors.add("Subnet", e));
            let of_subnet = if p.subnet.trim().is_empty() {
                String::new()
            } else {
                format!(" It is the VLAN of subnet {}.", p.subnet.trim())
            };
            let vlan = form::parse_number("VLAN", &p.vlan, 0, u32::from(MAX_VLAN))
                .map_err(|e| errors.add("VLAN", format!("{e}{of_subnet}")));
            // An empty secondary VLAN is left to validation, which names the subnet.
            let secondary = if private && !p.secondary.trim().is_empty() {
                form::parse_number("Secondary VLAN", &p.secondary, 0, u32::from(MAX_VLAN))
                    .map(|v| Some(v as u16))
                    .unwrap_or_else(|e| {
                        errors.add(
                            "Secondary VLAN",
                            format!(
                                "{e} It is the secondary VLAN of subnet {}.",
                                p.subnet.trim()
                            ),
                        );
                        unparsed_secondary.push(p.subnet.trim().to_string());
                        None
                    })
            } else {
                None
            };
            if let (Ok(subnet), Ok(vlan)) = (subnet, vlan) {
                subnets.push(SubnetVlan {
                    subnet,
                    vlan: vlan as u16,
                    secondary_vlan: secondary,
                });
            }
        }
        let Some(logical_network) = form::required(
            self.logical_network,
            &mut errors,
            "Logical network",
            "Choose the logical network this site belongs to.",
        ) else {
            return (None, errors);
        };
        let object = FabricObject::NetworkSite(NetworkSite {
            id: self.id,
            name: self.name.trim().to_string(),
            logical_network,
            host_groups: self.host_groups.iter().copied().collect(),
            subnets,
        });
        let problems: Vec<_> = validate_object(fabric, &object)
            .into_iter()
            .filter(|e| {
                e.field != Field::SecondaryVlan
                    || !unparsed_secondary.iter().any(|s| mentions(&e.message, s))
            })
            .collect();
        errors.add_validation(&problems, FIELDS);
        // A subnet that holds pools cannot go: the pools would be left without addresses.
        let kept: Vec<ipnet::IpNet> = match &object {
            FabricObject::NetworkSite(s) => s.subnets.iter().map(|p| p.subnet).collect(),
            _ => Vec::new(),
        };
        let unparsed = self.pairs.len() != kept.len();
        for p in fabric.pools_of_site(self.id) {
            let subnet = p.scope.subnet();
            if !kept.contains(&subnet) && !unparsed {
                errors.add(
                    "Subnet",
                    format!("Subnet {subnet} holds the static IP address pool \"{}\". Delete the pool first or keep the subnet.", p.name),
                );
            }
        }
        (Some(object), errors)
    }

    pub fn view<'a>(&'a self, fabric: &'a Fabric, errors: &FieldErrors) -> Element<'a, Message> {
        let private = self.private_vlan(fabric);

        // Host groups as an indented checklist, in tree order.
        let mut groups = column![].spacing(1);
        let mut stack: Vec<(Id, u16)> = fabric
            .root_host_group()
            .map(|r| (r.id, 0))
            .into_iter()
            .collect();
        while let Some((id, depth)) = stack.pop() {
            let Some(g) = fabric.host_groups.get(&id) else {
                continue;
            };
            groups = groups.push(row![
                space().width(f32::from(depth) * 16.0),
                checkbox(self.host_groups.contains(&id))
                    .label(g.name.clone())
                    .text_size(style::TEXT)
                    .size(14)
                    .on_toggle(move |on| Message::HostGroup(id, on)),
            ]);
            for child in fabric.host_group_children(id).into_iter().rev() {
                stack.push((child.id, depth + 1));
            }
        }
        let groups = container(
            scrollable(groups.padding(4).width(Length::Fill)).height(Length::Fixed(104.0)),
        )
        .width(Length::Fill)
        .style(style::pane);

        // Subnet-VLAN pairs, each with the errors that name its subnet right under it.
        let mut row_errors = form::RowErrors::new(errors, &["Subnet", "VLAN", "Secondary VLAN"]);
        let mut pairs = column![
            row![
                text("Subnet")
                    .size(style::SMALL)
                    .width(Length::FillPortion(3)),
                text("VLAN")
                    .size(style::SMALL)
                    .width(Length::FillPortion(1)),
                text(if private { "Secondary VLAN" } else { "" })
                    .size(style::SMALL)
                    .width(Length::FillPortion(1)),
                space().width(70),
            ]
            .spacing(6)
        ]
        .spacing(4);
        for (i, p) in self.pairs.iter().enumerate() {
            pairs = row_errors.push_row(pairs, &p.subnet, |mine| {
                // A box of this row: red when one of the row's errors is about its field.
                let cell = |id: String,
                            placeholder: &str,
                            value: &str,
                            on_input: fn(usize, String) -> Message,
                            field: &str,
                            portion: u16| {
                    form::row_input(
                        id,
                        placeholder,
                        value,
                        move |v| on_input(i, v),
                        mine.iter().any(|m| m.starts_with(field)),
                        Length::FillPortion(portion),
                    )
                };
                let mut line = row![
                    cell(
                        subnet_input(i),
                        "10.1.0.0/24",
                        &p.subnet,
                        Message::Subnet,
                        "Subnet",
                        3
                    ),
                    cell(vlan_input(i), "0", &p.vlan, Message::Vlan, "VLAN", 1),
                ]
                .spacing(6)
                .align_y(Alignment::Center);
                line = if private {
                    line.push(cell(
                        secondary_input(i),
                        "e.g. 11",
                        &p.secondary,
                        Message::Secondary,
                        "Secondary",
                        1,
                    ))
                } else {
                    line.push(space().width(Length::FillPortion(1)))
                };
                line.push(form::list_button("Remove", [3, 8], Message::RemovePair(i)).width(70))
                    .into()
            });
        }
        let rest = row_errors.rest();
        pairs = pairs.push(
            row![
                form::list_button("Add subnet", [3, 10], Message::AddPair),
                style::hint("Subnets in CIDR notation, VLAN 0 for untagged."),
            ]
            .spacing(8)
            .align_y(Alignment::Center),
        );

        column![
            form::text_field(
                "Name",
                NAME_INPUT,
                "e.g. Backend_Seattle",
                &self.name,
                Message::Name,
                errors,
            ),
            form::logical_network_field(
                LOGICAL_NETWORK_LIST,
                fabric,
                self.logical_network,
                Message::LogicalNetwork,
                errors,
            ),
            form::field("Host groups", groups, errors.get("Host groups")),
            form::field("Subnets and VLANs", pairs, &rest),
        ]
        .spacing(10)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::test_fabric::{add_backend, with_seattle};

    fn fabric() -> (Fabric, Id, Id) {
        let (mut f, _, g) = with_seattle();
        let ln = add_backend(&mut f, LogicalNetworkIsolation::PrivateVlan);
        (f, g, ln)
    }

    #[test]
    fn pairs_are_parsed_and_checked_per_row() {
        let (f, g, ln) = fabric();
        let mut form = Form::create(&f, Some(ln));
        form.update(Message::Name("Backend_Seattle".into()));
        let (_, errors) = form.check(&f);
        assert!(errors.has("Host groups"), "{errors:?}");
        assert!(
            errors.has("Subnet"),
            "an empty subnet is an error: {errors:?}"
        );
        form.update(Message::HostGroup(g, true));
        form.update(Message::Subnet(0, "10.1.0.1/24".into()));
        form.update(Message::Vlan(0, "10".into()));
        let (_, errors) = form.check(&f);
        assert!(
            errors.get("Secondary VLAN")[0].contains("10.1.0.1/24"),
            "{errors:?}"
        );
        assert!(
            errors.get("Subnet")[0].contains("Use 10.1.0.0/24"),
            "{errors:?}"
        );
        form.update(Message::Subnet(0, "10.1.0.0/24".into()));
        form.update(Message::Secondary(0, "11".into()));
        let (object, errors) = form.check(&f);
        assert!(errors.is_empty(), "{errors:?}");
        let Some(FabricObject::NetworkSite(site)) = object else {
            panic!("a site")
        };
        assert_eq!(
            site.subnets,
            vec![SubnetVlan {
                subnet: "10.1.0.0/24".parse().unwrap(),
                vlan: 10,
                secondary_vlan: Some(11)
            }]
        );
    }

    #[test]
    fn an_error_names_its_own_row_only() {
        assert!(mentions(
            "Subnet 10.1.0.0/24 overlaps subnet 10.1.0.0/25 of …",
            "10.1.0.0/24"
        ));
        assert!(!mentions("Subnet 10.1.0.0/24 overlaps …", "10.1.0.0/2"));
        assert!(!mentions("Subnet 110.1.0.0/24 overlaps …", "10.1.0.0/24"));
        assert!(mentions(
            "Subnet \"10.1.0.0\" has no prefix length. Add one, e.g. 10.1.0.0/24.",
            "10.1.0.0"
        ));
        assert!(!mentions("anything", ""));
    }
}
