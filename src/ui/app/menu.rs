//! The network service context menu and the ribbon's Add Resources dropdown.

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
        }
    }
}

pub(super) const MENU_WIDTH: f32 = 190.0;
pub(super) const MENU_ITEM_HEIGHT: f32 = 26.0;

/// A context menu (a service's actions) or the ribbon's Add Resources dropdown.
#[derive(Debug, Clone, Copy)]
pub(super) struct ContextMenu {
    pub(super) service: Option<Id>,
    pub(super) position: Point,
}

impl ContextMenu {
    pub(super) fn items(&self) -> &'static [MenuItem] {
        match self.service {
            Some(_) => &MenuItem::ALL,
            None => &[MenuItem::AddNetworkService],
        }
    }
}

impl App {
    /// Opens a menu at the cursor, kept inside the window.
    pub(super) fn open_menu(&mut self, service: Option<Id>, at: Point) {
        let mut menu = ContextMenu {
            service,
            position: at,
        };
        let height = MENU_ITEM_HEIGHT * menu.items().len() as f32 + 10.0;
        let x = at.x.min(self.window.width - MENU_WIDTH - 4.0).max(0.0);
        let y = at.y.min(self.window.height - height - 4.0).max(0.0);
        menu.position = Point::new(x, y);
        self.context_menu = Some(menu);
    }
}
