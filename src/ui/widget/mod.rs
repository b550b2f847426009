//! Pieces of view shared by screens and dialogs: grids, lists, the ribbon, keyboard focus, styles.

pub mod chart;
pub mod focus;
pub mod grid;
pub mod host_group_tree;
pub mod ribbon;
pub mod style;
pub mod virtual_list;
