//! Create Static IP Address Pool / its Properties: where the addresses come from (a network
//! site's subnet or a VM network's VM subnet), the range, reserved and VIP addresses, default
//! gateways with a metric or automatic, DNS servers and suffixes, WINS servers and NetBIOS.

use std::collections::BTreeSet;

use iced::widget::{checkbox, column, container, pick_list, radio, row, space, text};
use iced::{Alignment, Element, Length};
use uuid::Uuid;

use super::form::{self, Choice, FieldErrors};
use crate::fabric::model::{
    Fabric, FabricObject, Gateway, Id, IpPool, PoolScope, PoolSettings, VmNetworkIsolation,
};
use crate::fabric::validate::{Field, validate_object};
use crate::ui::widget::style;

pub const NAME_INPUT: &str = "ip-pool-name";
pub const DESCRIPTION_INPUT: &str = "ip-pool-description";
pub const START_INPUT: &str = "ip-pool-range-start";
pub const END_INPUT: &str = "ip-pool-range-end";
pub const RESERVED_INPUT: &str = "ip-pool-reserved";
pub const VIPS_INPUT: &str = "ip-pool-vips";
pub const DNS_INPUT: &str = "ip-pool-dns-servers";
pub const SUFFIX_INPUT: &str = "ip-pool-dns-suffix";
pub const SEARCH_INPUT: &str = "ip-pool-search-suffixes";
pub const WINS_INPUT: &str = "ip-pool-wins";
pub const OWNER_LIST: &str = "ip-pool-owner";
pub const SUBNET_LIST: &str = "ip-pool-subnet";
pub fn gateway_input(row: usize) -> String {
    format!("ip-pool-gateway-{row}")
}
pub fn metric_input(row: usize) -> String {
    format!("ip-pool-metric-{row}")
}

pub const FIELDS: &[Field] = &[
    Field::Name,
    Field::Description,
    Field::NetworkSite,
    Field::VmNetwork,
    Field::Subnet,
    Field::VmSubnet,
    Field::RangeStart,
    Field::RangeEnd,
    Field::ReservedAddresses,
    Field::VipAddresses,
    Field::DefaultGateway,
    Field::DnsServers,
    Field::DnsSuffix,
    Field::DnsSearchSuffixes,
    Field::WinsServers,
];

/// Where the pool takes its addresses from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    NetworkSite,
    VmNetwork,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayText {
    pub address: String,
    pub metric: String,
    pub automatic: bool,
}

#[derive(Debug, Clone)]
pub struct Form {
    id: Id,
    pub name: String,
    pub description: String,
    pub source: Source,
    /// The site or VM network.
    pub owner: Option<Id>,
    pub subnet: Option<String>,
    pub range_start: String,
    pub range_end: String,
    pub reserved: String,
    pub vips: String,
    pub gateways: Vec<GatewayText>,
    pub dns_servers: String,
    pub dns_suffix: String,
    pub dns_search_suffixes: String,
    pub wins_servers: String,
    pub netbios: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Name(String),
    Description(String),
    Source(Source),
    Owner(Choice),
    Subnet(String),
    RangeStart(String),
    RangeEnd(String),
    Reserved(String),
    Vips(String),
    GatewayAddress(usize, String),
    GatewayMetric(usize, String),
    GatewayAutomatic(usize, bool),
    AddGateway,
    RemoveGateway(usize),
    DnsServers(String),
    DnsSuffix(String),
    DnsSearchSuffixes(String),
    WinsServers(String),
    NetBios(bool),
}

/// Sites as "Logical network ▸ Site", sorted.
pub fn site_choices(fabric: &Fabric) -> Vec<Choice> {
    Choice::sorted(fabric.network_sites.values().map(|s| {
        let network = fabric
            .logical_networks
            .get(&s.logical_network)
            .map(|l| l.name.as_str())
            .unwrap_or("?");
        (s.id, format!("{network} ▸ {}", s.name))
    }))
}

/// VM networks that have VM subnets (network virtualization).
pub fn vm_network_choices(fabric: &Fabric) -> Vec<Choice> {
    Choice::sorted(
        fabric
            .vm_networks
            .values()
            .filter(|v| {
                v.isolation == VmNetworkIsolation::NetworkVirtualization && !v.vm_subnets.is_empty()
            })
            .map(|v| (v.id, v.name.clone())),
    )
}

fn to_text<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    form::join(items)
}

impl Form {
    pub fn create(fabric: &Fabric, site: Option<Id>) -> Self {
        let site = site.filter(|s| fabric.network_sites.contains_key(s));
        let subnet = site
            .and_then(|s| fabric.network_sites.get(&s))
            .and_then(|s| s.subnets.iter().map(|p| p.subnet).min())
            .map(|n| n.to_string());
        Form {
            id: Uuid::new_v4(),
            name: String::new(),
            description: String::new(),
            source: Source::NetworkSite,
            owner: site,
            subnet,
            range_start: String::new(),
            range_end: String::new(),
            reserved: String::new(),
            vips: String::new(),
            gateways: Vec::new(),
            dns_servers: String::new(),
            dns_suffix: String::new(),
            dns_search_suffixes: String::new(),
            wins_servers: String::new(),
            netbios: false,
        }
    }

    pub fn edit(pool: &IpPool) -> Self {
        let (source, owner) = match &pool.scope {
            PoolScope::Site { site, .. } => (Source::NetworkSite, *site),
            PoolScope::VmSubnet { vm_network, .. } => (Source::VmNetwork, *vm_network),
        };
        Form {
            id: pool.id,
            name: pool.name.clone(),
            description: pool.description.clone(),
            source,
            owner: Some(owner),
            subnet: Some(pool.scope.subnet().to_string()),
            range_start: pool.range_start.to_string(),
            range_end: pool.range_end.to_string(),
            reserved: to_text(&pool.settings.reserved),
            vips: to_text(&pool.settings.vips),
            gateways: pool
                .settings
                .gateways
                .iter()
                .map(|g| GatewayText {
                    address: g.address().to_string(),
                    metric: g.metric().map(|m| m.to_string()).unwrap_or_default(),
                    automatic: g.metric().is_none(),
                })
                .collect(),
            dns_servers: to_text(&pool.settings.dns_servers),
            dns_suffix: pool.settings.dns_suffix.clone(),
            dns_search_suffixes: pool.settings.dns_search_suffixes.join(", "),
            wins_servers: to_text(&pool.settings.wins_servers),
            netbios: pool.settings.netbios_enabled,
        }
    }

    /// The subnets the chosen site or VM network offers.
    /// The subnets the chosen site or VM network offers, IPv4 before IPv6, in address order.
    pub fn subnet_choices(&self, fabric: &Fabric) -> Vec<String> {
        let Some(owner) = self.owner else {
            return Vec::new();
        };
        let mut nets: Vec<ipnet::IpNet> = match self.source {
            Source::NetworkSite => fabric
                .network_sites
                .get(&owner)
                .map(|s| s.subnets.iter().map(|p| p.subnet).collect())
                .unwrap_or_default(),
            Source::VmNetwork => fabric
                .vm_networks
                .get(&owner)
                .map(|v| v.vm_subnets.clone())
                .unwrap_or_default(),
        };
        nets.sort();
        nets.iter().map(|n| n.to_string()).collect()
    }

    pub fn update(&mut self, message: Message, fabric: &Fabric) -> &'static str {
        match message {
            Message::Name(v) => form::typed(&mut self.name, v, "Name"),
            Message::Description(v) => form::typed(&mut self.description, v, "Description"),
            Message::Source(s) => {
                if self.source != s {
                    self.source = s;
                    self.owner = None;
                    self.subnet = None;
                }
                self.owner_field()
            }
            Message::Owner(c) => {
                self.owner = Some(c.id);
                self.subnet = self.subnet_choices(fabric).into_iter().next();
                self.owner_field()
            }
            Message::Subnet(s) => {
                self.subnet = Some(s);
                self.subnet_field()
            }
            Message::RangeStart(v) => form::typed(&mut self.range_start, v, "Range start"),
            Message::RangeEnd(v) => form::typed(&mut self.range_end, v, "Range end"),
            Message::Reserved(v) => form::typed(&mut self.reserved, v, "Reserved addresses"),
            Message::Vips(v) => form::typed(&mut self.vips, v, "VIP addresses"),
            Message::GatewayAddress(i, v) => {
                form::edit_row(&mut self.gateways, i, |g| g.address = v);
                "Default gateway"
            }
            Message::GatewayMetric(i, v) => {
                form::edit_row(&mut self.gateways, i, |g| g.metric = v);
                "Default gateway"
            }
            Message::GatewayAutomatic(i, on) => {
                form::edit_row(&mut self.gateways, i, |g| g.automatic = on);
                "Default gateway"
            }
            Message::AddGateway => {
                self.gateways.push(GatewayText {
                    automatic: true,
                    ..GatewayText::default()
                });
                "Default gateway"
            }
            Message::RemoveGateway(i) => {
                form::remove_row(&mut self.gateways, i);
                "Default gateway"
            }
            Message::DnsServers(v) => form::typed(&mut self.dns_servers, v, "DNS servers"),
            Message::DnsSuffix(v) => form::typed(&mut self.dns_suffix, v, "DNS suffix"),
            Message::DnsSearchSuffixes(v) => {
                form::typed(&mut self.dns_search_suffixes, v, "DNS search suffixes")
            }
            Message::WinsServers(v) => form::typed(&mut self.wins_servers, v, "WINS servers"),
            Message::NetBios(on) => {
                self.netbios = on;
                "NetBIOS"
            }
        }
    }

    fn owner_field(&self) -> &'static str {
        match self.source {
            Source::NetworkSite => "Network site",
            Source::VmNetwork => "VM network",
        }
    }

    fn subnet_field(&self) -> &'static str {
        match self.source {
            Source::NetworkSite => "Subnet",
            Source::VmNetwork => "VM subnet",
        }
    }

    pub fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        let mut errors = FieldErrors::default();
        let start = form::parse_ip("Range start", &self.range_start)
            .map_err(|e| errors.add("Range start", e));
        let end =
            form::parse_ip("Range end", &self.range_end).map_err(|e| errors.add("Range end", e));
        let list = |errors: &mut FieldErrors, field: &'static str, text: &str| {
            form::parse_ip_list(field, text).unwrap_or_else(|e| {
                errors.add(field, e);
                Vec::new()
            })
        };
        let reserved: BTreeSet<_> = list(&mut errors, "Reserved addresses", &self.reserved)
            .into_iter()
            .collect();
        let vips: BTreeSet<_> = list(&mut errors, "VIP addresses", &self.vips)
            .into_iter()
            .collect();
        let dns_servers = list(&mut errors, "DNS servers", &self.dns_servers);
        let wins_servers = list(&mut errors, "WINS servers", &self.wins_servers);
        let mut gateways = Vec::new();
        for g in &self.gateways {
            let Ok(address) = form::parse_ip("Default gateway", &g.address)
                .map_err(|e| errors.add("Default gateway", e))
            else {
                continue;
            };
            if g.automatic {
                gateways.push(Gateway::Automatic { address });
            } else {
                match form::parse_number("Metric", &g.metric, 0, 9999) {
                    Ok(metric) => gateways.push(Gateway::Address { address, metric }),
                    Err(e) => errors.add(
                        "Default gateway",
                        format!("{e} It is the metric of gateway {address}; or tick Automatic."),
                    ),
                }
            }
        }
        let search: Vec<String> = form::split_list(&self.dns_search_suffixes)
            .map(str::to_string)
            .collect();
        let (owner_field, subnet_field) = (self.owner_field(), self.subnet_field());
        let Some(owner) = form::required(
            self.owner,
            &mut errors,
            owner_field,
            "Choose where the pool takes its addresses from.",
        ) else {
            return (None, errors);
        };
        let Some(subnet) = form::required(
            self.subnet.as_deref().and_then(|s| s.parse().ok()),
            &mut errors,
            subnet_field,
            &format!(
                "Choose one of the {} subnets.",
                if self.source == Source::NetworkSite {
                    "network site's"
                } else {
                    "VM network's"
                }
            ),
        ) else {
            return (None, errors);
        };
        let scope = match self.source {
            Source::NetworkSite => PoolScope::Site {
                site: owner,
                subnet,
            },
            Source::VmNetwork => PoolScope::VmSubnet {
                vm_network: owner,
                subnet,
            },
        };
        let range_known = start.is_ok() && end.is_ok();
        let placeholder = ipnet::IpNet::network(&subnet);
        let object = FabricObject::IpPool(IpPool {
            id: self.id,
            name: self.name.trim().to_string(),
            description: self.description.trim().to_string(),
            scope,
            range_start: start.unwrap_or(placeholder),
            range_end: end.unwrap_or(placeholder),
            settings: PoolSettings {
                reserved,
                vips,
                gateways,
                dns_servers,
                dns_suffix: self.dns_suffix.trim().to_string(),
                dns_search_suffixes: search,
                wins_servers,
                netbios_enabled: self.netbios,
            },
        });
        let problems: Vec<_> = validate_object(fabric, &object)
            .into_iter()
            // With a range that did not parse, range-relative checks would judge a placeholder.
            .filter(|e| {
                range_known
                    || !matches!(
                        e.field,
                        Field::RangeStart
                            | Field::RangeEnd
                            | Field::ReservedAddresses
                            | Field::VipAddresses
                    )
            })
            .collect();
        errors.add_validation(&problems, FIELDS);
        (range_known.then_some(object), errors)
    }

    pub fn view<'a>(&'a self, fabric: &'a Fabric, errors: &FieldErrors) -> Element<'a, Message> {
        let owners = match self.source {
            Source::NetworkSite => site_choices(fabric),
            Source::VmNetwork => vm_network_choices(fabric),
        };
        let (owner_field, subnet_field) = (self.owner_field(), self.subnet_field());
        let source = row![
            radio(
                "Network site",
                Source::NetworkSite,
                Some(self.source),
                Message::Source
            )
            .text_size(style::TEXT)
            .size(14),
            radio(
                "VM network (VM subnet)",
                Source::VmNetwork,
                Some(self.source),
                Message::Source
            )
            .text_size(style::TEXT)
            .size(14),
        ]
        .spacing(16);
        let mut gateways = column![].spacing(4);
        for (i, g) in self.gateways.iter().enumerate() {
            gateways = gateways.push(
                row![
                    form::row_input(
                        gateway_input(i),
                        "Gateway address",
                        &g.address,
                        move |v| Message::GatewayAddress(i, v),
                        false,
                        Length::FillPortion(3),
                    ),
                    if g.automatic {
                        container(text("Metric: automatic").size(style::SMALL))
                            .width(Length::FillPortion(2))
                            .into()
                    } else {
                        form::row_input(
                            metric_input(i),
                            "Metric",
                            &g.metric,
                            move |v| Message::GatewayMetric(i, v),
                            false,
                            Length::FillPortion(2),
                        )
                    },
                    checkbox(g.automatic)
                        .label("Automatic")
                        .text_size(style::SMALL)
                        .size(14)
                        .on_toggle(move |on| Message::GatewayAutomatic(i, on)),
                    form::list_button("Remove", [3, 8], Message::RemoveGateway(i)),
                ]
                .spacing(6)
                .align_y(Alignment::Center),
            );
        }
        gateways = gateways.push(form::list_button(
            "Add gateway",
            [3, 10],
            Message::AddGateway,
        ));

        let two = |a: Element<'a, Message>, b: Element<'a, Message>| -> Element<'a, Message> {
            row![
                container(a).width(Length::FillPortion(1)),
                container(b).width(Length::FillPortion(1))
            ]
            .spacing(16)
            .into()
        };
        column![
            two(
                form::text_field(
                    "Name",
                    NAME_INPUT,
                    "e.g. Backend pool",
                    &self.name,
                    Message::Name,
                    errors,
                ),
                form::text_field(
                    "Description",
                    DESCRIPTION_INPUT,
                    "Optional",
                    &self.description,
                    Message::Description,
                    errors,
                ),
            ),
            form::field("Addresses from", source, &[]),
            two(
                form::field(
                    owner_field,
                    form::choice_list(
                        OWNER_LIST,
                        owners,
                        self.owner,
                        Message::Owner,
                        Some(if self.source == Source::NetworkSite {
                            "Choose a network site"
                        } else {
                            "Choose a VM network"
                        }),
                    ),
                    errors.get(owner_field),
                ),
                form::field(
                    subnet_field,
                    container(
                        pick_list(
                            self.subnet_choices(fabric),
                            self.subnet.clone(),
                            Message::Subnet
                        )
                        .placeholder("Choose a subnet")
                        .text_size(style::TEXT)
                        .padding(5)
                        .style(form::pick_style)
                        .width(Length::Fill),
                    )
                    .id(SUBNET_LIST),
                    errors.get(subnet_field),
                ),
            ),
            two(
                form::text_field(
                    "Range start",
                    START_INPUT,
                    "e.g. 10.1.0.10",
                    &self.range_start,
                    Message::RangeStart,
                    errors,
                ),
                form::text_field(
                    "Range end",
                    END_INPUT,
                    "e.g. 10.1.0.200",
                    &self.range_end,
                    Message::RangeEnd,
                    errors,
                ),
            ),
            two(
                form::text_field(
                    "Reserved addresses",
                    RESERVED_INPUT,
                    "Comma-separated",
                    &self.reserved,
                    Message::Reserved,
                    errors,
                ),
                form::text_field(
                    "VIP addresses",
                    VIPS_INPUT,
                    "Comma-separated",
                    &self.vips,
                    Message::Vips,
                    errors,
                ),
            ),
            form::field("Default gateway", gateways, errors.get("Default gateway")),
            two(
                form::text_field(
                    "DNS servers",
                    DNS_INPUT,
                    "Comma-separated",
                    &self.dns_servers,
                    Message::DnsServers,
                    errors,
                ),
                form::text_field(
                    "DNS suffix",
                    SUFFIX_INPUT,
                    "e.g. corp.contoso.com",
                    &self.dns_suffix,
                    Message::DnsSuffix,
                    errors,
                ),
            ),
            two(
                form::text_field(
                    "DNS search suffixes",
                    SEARCH_INPUT,
                    "Comma-separated",
                    &self.dns_search_suffixes,
                    Message::DnsSearchSuffixes,
                    errors,
                ),
                form::text_field(
                    "WINS servers",
                    WINS_INPUT,
                    "Comma-separated, IPv4",
                    &self.wins_servers,
                    Message::WinsServers,
                    errors,
                ),
            ),
            row![
                space().width(form::LABEL_WIDTH + 8.0),
                checkbox(self.netbios)
                    .label("Enable NetBIOS over TCP/IP")
                    .text_size(style::TEXT)
                    .size(14)
                    .on_toggle(Message::NetBios),
            ],
        ]
        .spacing(10)
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fabric::model::{LogicalNetworkIsolation, NetworkSite, SubnetVlan};
    use crate::ui::test_fabric::{add_backend, with_seattle};

    fn fabric() -> (Fabric, Id) {
        let (mut f, _, g) = with_seattle();
        let ln = add_backend(&mut f, LogicalNetworkIsolation::OneConnected);
        let site = NetworkSite {
            id: Uuid::new_v4(),
            name: "Backend_Seattle".into(),
            logical_network: ln,
            host_groups: vec![g],
            subnets: vec![SubnetVlan {
                subnet: "10.1.0.0/24".parse().unwrap(),
                vlan: 10,
                secondary_vlan: None,
            }],
        };
        f.network_sites.insert(site.id, site.clone());
        (f, site.id)
    }

    #[test]
    fn a_range_outside_the_subnet_is_an_error_at_range_end() {
        let (f, site) = fabric();
        let mut form = Form::create(&f, Some(site));
        assert_eq!(form.subnet.as_deref(), Some("10.1.0.0/24"));
        for m in [
            Message::Name("Backend pool".into()),
            Message::RangeStart("10.1.0.10".into()),
            Message::RangeEnd("10.9.9.9".into()),
        ] {
            form.update(m, &f);
        }
        let (_, errors) = form.check(&f);
        assert!(
            errors.get("Range end")[0].contains("is outside subnet 10.1.0.0/24"),
            "{errors:?}"
        );
        form.update(Message::RangeEnd("10.1.0.200".into()), &f);
        form.update(Message::AddGateway, &f);
        form.update(Message::GatewayAddress(0, "10.1.0.1".into()), &f);
        form.update(Message::DnsServers("10.0.0.53, nope".into()), &f);
        let (_, errors) = form.check(&f);
        assert!(
            errors.get("DNS servers")[0].contains("\"nope\""),
            "{errors:?}"
        );
        form.update(Message::DnsServers("10.0.0.53".into()), &f);
        form.update(Message::GatewayAutomatic(0, false), &f);
        form.update(Message::GatewayMetric(0, "5".into()), &f);
        let (object, errors) = form.check(&f);
        assert!(errors.is_empty(), "{errors:?}");
        let Some(FabricObject::IpPool(p)) = object else {
            panic!("a pool")
        };
        assert_eq!(
            p.settings.gateways,
            vec![Gateway::Address {
                address: "10.1.0.1".parse().unwrap(),
                metric: 5
            }]
        );
    }

    #[test]
    fn an_unparsed_range_hides_range_relative_checks() {
        let (f, site) = fabric();
        let mut form = Form::create(&f, Some(site));
        form.update(Message::Name("p".into()), &f);
        form.update(Message::RangeStart("10.1.0.x".into()), &f);
        form.update(Message::RangeEnd("10.1.0.20".into()), &f);
        form.update(Message::Reserved("10.1.0.15".into()), &f);
        let (object, errors) = form.check(&f);
        assert!(object.is_none());
        assert!(errors.has("Range start"));
        assert!(!errors.has("Reserved addresses"), "{errors:?}");
    }
}
