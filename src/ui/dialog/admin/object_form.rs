//! What every fabric object's form offers its dialog, and the one `Form` that holds any of them:
//! adding a kind is one impl and one line in `object_forms!`.

use iced::Element;

use super::form::FieldErrors;
use super::{host_group, ip_pool, logical_network, network_site, vm_network};
use crate::fabric::model::{Fabric, FabricObject, ObjectKind};
use crate::fabric::validate::Field;

/// A create / properties form of one kind of fabric object.
pub trait ObjectForm {
    type Message;
    const KIND: ObjectKind;
    /// The field that has the focus when the dialog opens.
    const FIRST_INPUT: &'static str;
    /// The fields the store's validation problems are put back at.
    const FIELDS: &'static [Field];
    /// The name as typed.
    fn name(&self) -> &str;
    /// The object to save, when it can be built, and every problem of what is typed.
    fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors);
    /// Applies a message; returns the field it touched.
    fn update(&mut self, message: Self::Message, fabric: &Fabric) -> &'static str;
    fn view<'a>(&'a self, fabric: &'a Fabric, errors: &FieldErrors) -> Element<'a, Self::Message>;
}

// The pool form is large: the dialog boxes it, and the box is a form like any other.
impl<F: ObjectForm> ObjectForm for Box<F> {
    type Message = F::Message;
    const KIND: ObjectKind = F::KIND;
    const FIRST_INPUT: &'static str = F::FIRST_INPUT;
    const FIELDS: &'static [Field] = F::FIELDS;
    fn name(&self) -> &str {
        (**self).name()
    }
    fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
        (**self).check(fabric)
    }
    fn update(&mut self, message: Self::Message, fabric: &Fabric) -> &'static str {
        (**self).update(message, fabric)
    }
    fn view<'a>(&'a self, fabric: &'a Fabric, errors: &FieldErrors) -> Element<'a, Self::Message> {
        (**self).view(fabric, errors)
    }
}

/// Implements `ObjectForm` for a form module whose inherent methods already have its shape.
macro_rules! impl_object_form {
    ($module:ident, $kind:ident, |$f:ident, $m:ident, $fabric:ident| $update:expr) => {
        impl ObjectForm for $module::Form {
            type Message = $module::Message;
            const KIND: ObjectKind = ObjectKind::$kind;
            const FIRST_INPUT: &'static str = $module::NAME_INPUT;
            const FIELDS: &'static [Field] = $module::FIELDS;
            fn name(&self) -> &str {
                &self.name
            }
            fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
                $module::Form::check(self, fabric)
            }
            fn update(&mut self, $m: Self::Message, $fabric: &Fabric) -> &'static str {
                let $f = self;
                $update
            }
            fn view<'a>(
                &'a self,
                fabric: &'a Fabric,
                errors: &FieldErrors,
            ) -> Element<'a, Self::Message> {
                $module::Form::view(self, fabric, errors)
            }
        }
    };
}

impl_object_form!(host_group, HostGroup, |f, m, _fabric| {
    host_group::Form::update(f, m)
});
impl_object_form!(logical_network, LogicalNetwork, |f, m, _fabric| {
    logical_network::Form::update(f, m)
});
impl_object_form!(network_site, NetworkSite, |f, m, _fabric| {
    network_site::Form::update(f, m)
});
impl_object_form!(ip_pool, IpPool, |f, m, fabric| {
    ip_pool::Form::update(f, m, fabric)
});
impl_object_form!(vm_network, VmNetwork, |f, m, _fabric| {
    vm_network::Form::update(f, m)
});

/// The dialog's form and its message, one variant per kind, dispatched through `ObjectForm`.
macro_rules! object_forms {
    ($($variant:ident($form:ty)),* $(,)?) => {
        /// The dialog's form, one per kind.
        #[derive(Debug, Clone)]
        pub enum Form {
            $($variant($form),)*
        }

        #[derive(Debug, Clone)]
        pub enum FormMessage {
            $($variant(<$form as ObjectForm>::Message),)*
        }

        impl Form {
            pub fn kind(&self) -> ObjectKind {
                match self {
                    $(Form::$variant(_) => <$form as ObjectForm>::KIND,)*
                }
            }

            /// The name as typed.
            pub fn name(&self) -> &str {
                match self {
                    $(Form::$variant(f) => f.name(),)*
                }
            }

            /// The field that has the focus when the dialog opens.
            pub fn first_input(&self) -> &'static str {
                match self {
                    $(Form::$variant(_) => <$form as ObjectForm>::FIRST_INPUT,)*
                }
            }

            pub(super) fn check(&self, fabric: &Fabric) -> (Option<FabricObject>, FieldErrors) {
                match self {
                    $(Form::$variant(f) => f.check(fabric),)*
                }
            }

            pub(super) fn fields(&self) -> &'static [Field] {
                match self {
                    $(Form::$variant(_) => <$form as ObjectForm>::FIELDS,)*
                }
            }

            /// `None` when the message is for another kind's form.
            pub(super) fn update(
                &mut self,
                message: FormMessage,
                fabric: &Fabric,
            ) -> Option<&'static str> {
                match (self, message) {
                    $((Form::$variant(f), FormMessage::$variant(m)) => {
                        Some(ObjectForm::update(f, m, fabric))
                    })*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            pub(super) fn view<'a>(
                &'a self,
                fabric: &'a Fabric,
                errors: &FieldErrors,
            ) -> Element<'a, FormMessage> {
                match self {
                    $(Form::$variant(f) => ObjectForm::view(f, fabric, errors).map(FormMessage::$variant),)*
                }
            }
        }
    };
}

object_forms! {
    HostGroup(host_group::Form),
    LogicalNetwork(logical_network::Form),
    NetworkSite(network_site::Form),
    IpPool(Box<ip_pool::Form>),
    VmNetwork(vm_network::Form),
}
