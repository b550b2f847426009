//! The fields of the fabric dialogs, shared by validation (which field a problem is on) and the
//! forms (where to show it), so neither compares label text.

use std::fmt;

macro_rules! fields {
    ($($variant:ident => $label:literal,)*) => {
        /// A field of a fabric object as its dialog shows it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $($variant,)*
        }

        impl Field {
            /// The label the dialog shows, which also starts every message about the field.
            pub fn label(self) -> &'static str {
                match self {
                    $(Field::$variant => $label,)*
                }
            }
        }
    };
}

fields! {
    Name => "Name",
    Description => "Description",
    Parent => "Parent",
    UserName => "User name",
    LogicalNetwork => "Logical network",
    Isolation => "Isolation",
    HostGroups => "Host groups",
    Subnet => "Subnet",
    Vlan => "VLAN",
    SecondaryVlan => "Secondary VLAN",
    NetworkSite => "Network site",
    VmNetwork => "VM network",
    VmSubnet => "VM subnet",
    VmSubnets => "VM subnets",
    RangeStart => "Range start",
    RangeEnd => "Range end",
    ReservedAddresses => "Reserved addresses",
    VipAddresses => "VIP addresses",
    DefaultGateway => "Default gateway",
    DnsServers => "DNS servers",
    DnsSuffix => "DNS suffix",
    DnsSearchSuffixes => "DNS search suffixes",
    WinsServers => "WINS servers",
    RunAsAccount => "Run As account",
    ConfigurationProvider => "Configuration provider",
    SyncInterval => "Sync interval",
    Certificate => "Certificate",
    EventSource => "IPAM change events",
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
