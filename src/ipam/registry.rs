//! The configuration providers this console really has (Settings ▸ Configuration Providers, and
//! the Add Network Service wizard's Manufacturer, Model and Provider lists).

use std::sync::Arc;

use super::builtin::BuiltinProviderFactory;
use super::provider::{ProviderDescriptor, ProviderFactory};

#[derive(Clone, Default)]
pub struct ProviderRegistry {
    factories: Vec<Arc<dyn ProviderFactory>>,
}

impl ProviderRegistry {
    /// Every provider that is implemented, in the order the wizard lists them.
    pub fn default_registry() -> Self {
        let mut registry = ProviderRegistry::default();
        registry.register(Arc::new(BuiltinProviderFactory::new()));
        registry.register(Arc::new(super::nautobot::NautobotProviderFactory::new()));
        registry.register(Arc::new(super::netbox::NetboxProviderFactory::new()));
        registry
    }

    /// Adds a provider; one with the same id replaces the earlier one.
    pub fn register(&mut self, factory: Arc<dyn ProviderFactory>) {
        let id = factory.descriptor().id.clone();
        match self.factories.iter().position(|f| f.descriptor().id == id) {
            Some(i) => self.factories[i] = factory,
            None => self.factories.push(factory),
        }
    }

    pub fn list(&self) -> Vec<ProviderDescriptor> {
        self.factories
            .iter()
            .map(|f| f.descriptor().clone())
            .collect()
    }

    pub fn get(&self, id: &str) -> Option<Arc<dyn ProviderFactory>> {
        self.factories
            .iter()
            .find(|f| f.descriptor().id == id)
            .cloned()
    }

    /// The providers for a manufacturer and model, as the wizard's Provider page offers them.
    pub fn by_manufacturer_model(
        &self,
        manufacturer: &str,
        model: &str,
    ) -> Vec<Arc<dyn ProviderFactory>> {
        self.factories
            .iter()
            .filter(|f| {
                let d = f.descriptor();
                d.manufacturer == manufacturer && d.model == model
            })
            .cloned()
            .collect()
    }

    /// Distinct manufacturers, in registration order.
    pub fn manufacturers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.factories {
            let m = &f.descriptor().manufacturer;
            if !out.contains(m) {
                out.push(m.clone());
            }
        }
        out
    }

    /// Distinct models of one manufacturer, in registration order.
    pub fn models(&self, manufacturer: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.factories {
            let d = f.descriptor();
            if d.manufacturer == manufacturer && !out.contains(&d.model) {
                out.push(d.model.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::builtin;

    #[test]
    fn default_registry_lists_the_builtin_provider_only_once() {
        let r = ProviderRegistry::default_registry();
        let list = r.list();
        let builtins = list.iter().filter(|d| d.id == builtin::PROVIDER_ID).count();
        assert_eq!(builtins, 1);
        assert!(r.get(builtin::PROVIDER_ID).is_some());
        // Only implemented providers are listed: no Windows Server IPAM provider yet.
        assert!(!r.manufacturers().contains(&"Microsoft".to_string()));
        assert!(r.models("Microsoft").is_empty());
        assert!(r.manufacturers().contains(&"Fabric Console".to_string()));
        assert_eq!(
            r.models("Fabric Console"),
            vec!["Fabric Console IPAM Server".to_string()]
        );
        assert_eq!(
            r.by_manufacturer_model("Fabric Console", "Fabric Console IPAM Server")
                .len(),
            1
        );
        let mut again = r.clone();
        again.register(Arc::new(builtin::BuiltinProviderFactory::new()));
        assert_eq!(again.list().len(), list.len());
    }
}
