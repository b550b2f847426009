//! How field values read in conflicts and the side-by-side view.

use std::collections::BTreeSet;

use ipnet::IpNet;
use uuid::Uuid;

/// Text of a field value for conflicts and previews.
pub trait FieldText {
    fn text(&self) -> String;
}

impl FieldText for String {
    fn text(&self) -> String {
        self.clone()
    }
}

/// Values that read as they display.
macro_rules! displayed {
    ($($t:ty),*) => {
        $(impl FieldText for $t {
            fn text(&self) -> String {
                self.to_string()
            }
        })*
    };
}
displayed!(u16, std::net::IpAddr, IpNet, Uuid);

impl FieldText for bool {
    fn text(&self) -> String {
        if *self { "Enabled" } else { "Disabled" }.into()
    }
}
impl FieldText for Option<u16> {
    fn text(&self) -> String {
        self.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
    }
}
impl<T: std::fmt::Display> FieldText for BTreeSet<T> {
    fn text(&self) -> String {
        join(self.iter())
    }
}
impl FieldText for Vec<std::net::IpAddr> {
    fn text(&self) -> String {
        join(self.iter())
    }
}
impl FieldText for Vec<String> {
    fn text(&self) -> String {
        join(self.iter())
    }
}
impl FieldText for Vec<crate::fabric::model::Gateway> {
    fn text(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .map(|g| match g.metric() {
                Some(m) => format!("{} (metric {m})", g.address()),
                None => format!("{} (automatic metric)", g.address()),
            })
            .collect();
        if parts.is_empty() {
            "—".into()
        } else {
            parts.join(", ")
        }
    }
}

fn join<T: std::fmt::Display>(it: impl Iterator<Item = T>) -> String {
    let v: Vec<String> = it.map(|x| x.to_string()).collect();
    if v.is_empty() {
        "—".into()
    } else {
        v.join(", ")
    }
}
