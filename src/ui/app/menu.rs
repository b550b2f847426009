//! The network service context menu, the administration lists' context menu and the ribbon's
//! Add Resources dropdown.

use super::*;

/// Items of the network service context menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuItem {
    Refresh,
    Preview,
    /// The side-by-side view of the console and the IPAM server.
    Compare,
    Remove,
    Properties,
    /// Add Resources ▸ Network Service.
    AddNetworkService,
    /// An administration list's row: its properties, an object created in it, its deletion.
    ObjectProperties,
    ObjectCreateIn(admin::Tab),
    ObjectDelete,
}

impl MenuItem {
    pub const ALL: [MenuItem; 5] = [
        MenuItem::Refresh,
        MenuItem::Preview,
        MenuItem::Compare,
        MenuItem::Remove,
        MenuItem::Properties,
    ];
    pub fn label(self) -> &'static str {
        match self {
            MenuItem::Refresh => "Refresh",
            MenuItem::Preview => "Preview changes",
            MenuItem::Compare => "Side-by-side view",
            MenuItem::Remove => "Remove",
            MenuItem::Properties => "Properties",
            MenuItem::AddNetworkService => "Network Service",
            MenuItem::ObjectProperties => "Properties",
            MenuItem::ObjectCreateIn(tab) => tab.create_label(),
            MenuItem::ObjectDelete => "Delete...",
        }
    }
}

pub(super) const MENU_WIDTH: f32 = 190.0;
pub(super) const MENU_ITEM_HEIGHT: f32 = 26.0;

/// What a context menu is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MenuFor {
    /// A network service's actions.
    Service(Id),
    /// The ribbon's Add Resources dropdown.
    AddResources,
    /// A row of an administration list of this kind.
    Object(admin::Tab),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct ContextMenu {
    pub(super) target: MenuFor,
    pub(super) position: Point,
}

impl ContextMenu {
    pub(super) fn items(&self) -> Vec<MenuItem> {
        match self.target {
            MenuFor::Service(_) => MenuItem::ALL.to_vec(),
            MenuFor::AddResources => vec![MenuItem::AddNetworkService],
            MenuFor::Object(tab) => {
                let mut items = vec![MenuItem::ObjectProperties];
                items.extend(tab.inner().map(MenuItem::ObjectCreateIn));
                items.push(MenuItem::ObjectDelete);
                items
            }
        }
    }
}

impl App {
    /// Opens a menu at the cursor, kept inside the window.
    pub(super) fn open_menu(&mut self, target: MenuFor, at: Point) {
        let mut menu = ContextMenu {
            target,
            position: at,
        };
        let height = MENU_ITEM_HEIGHT * menu.items().len() as f32 + 10.0;
        let x = at.x.min(self.window.width - MENU_WIDTH - 4.0).max(0.0);
        let y = at.y.min(self.window.height - height - 4.0).max(0.0);
        menu.position = Point::new(x, y);
        self.context_menu = Some(menu);
    }
}
