//! The console's iced user interface: the Fabric workspace shell, the Network Service list, the
//! Add Network Service wizard, Settings and Jobs. It talks to the store and the engine only.

pub mod app;
pub mod context;
pub mod dialog;
pub mod engine_events;
pub mod metrics;
pub mod preferences;
pub mod screen;
pub mod startup;
#[cfg(test)]
pub(crate) mod test_fabric;
pub mod widget;

use std::sync::Arc;

pub use app::{App, Message};
pub use context::AppContext;
pub use startup::StartError;

use crate::fabric::secrets::{FileReason, FileSecretStore, SecretStore, open_secret_store};
use crate::paths::DataPaths;
use preferences::Preferences;

/// The reverse-DNS application id: the window's Wayland app id and X11 class, the .desktop
/// file's and the AppStream component's name, and the icons' name.
pub const APP_ID: &str = "io.github.fabricconsole.FabricConsole";

/// The window is never made smaller than this: the ribbon, the tree and a grid stay usable.
pub const MIN_WINDOW: iced::Size = iced::Size::new(900.0, 600.0);

/// The window icon: `assets/icons/window-64.rgba`, rendered from the application icon's SVG by
/// `scripts/icons.sh`.
pub fn window_icon() -> Option<iced::window::Icon> {
    const RGBA: &[u8] = include_bytes!("../../assets/icons/window-64.rgba");
    iced::window::icon::from_rgba(RGBA.to_vec(), 64, 64).ok()
}

/// The main window's settings: size, minimum size, icon and application id.
pub fn window_settings(size: iced::Size) -> iced::window::Settings {
    iced::window::Settings {
        size,
        min_size: Some(MIN_WINDOW),
        icon: window_icon(),
        exit_on_close_request: false,
        #[cfg(target_os = "linux")]
        platform_specific: iced::window::settings::PlatformSpecific {
            application_id: APP_ID.to_string(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The console as an iced application; `run` and the tests build it the same way.
pub fn application(
    context: AppContext,
    preferences: Preferences,
) -> iced::Application<impl iced::Program<State = App, Message = Message, Theme = iced::Theme>> {
    let size = preferences.window_size();
    iced::application(
        move || App::new(context.clone(), preferences.clone()),
        App::update,
        App::view,
    )
    .title(App::title)
    .subscription(App::subscription)
    .theme(App::theme)
    .window(window_settings(size))
    .font(lucide_icons::LUCIDE_FONT_BYTES)
    // No MSAA: the charts are drawn from axis-aligned rectangles and a thin line, and with MSAA
    // some Linux GPU drivers (llvmpipe among them) keep showing a chart after its screen was left
    // (stale multisample resolve). Rounded boxes and text are smoothed without it.
    .antialiasing(false)
}

/// Opens the console. The engine and the embedded IPAM server run on a tokio runtime of their
/// own that lives as long as the window; iced keeps its own executor for the UI's tasks.
///
/// `demo`: a fresh demo fabric in `<data dir>/demo/` (wiped at every start, secrets in a file
/// there), with the embedded IPAM server added as a network service and synced at once.
pub fn run(paths: &DataPaths, demo: bool) -> Result<(), StartError> {
    let (paths, secrets): (DataPaths, Arc<dyn SecretStore>) = if demo {
        let demo = startup::demo_paths(paths);
        // The previous demo's secrets go with its fabric.
        let _ = std::fs::remove_file(FileSecretStore::new(&demo.data_dir).path());
        (
            demo.clone(),
            Arc::new(FileSecretStore::new(&demo.data_dir).because(FileReason::Demo)),
        )
    } else {
        (paths.clone(), open_secret_store(&paths.data_dir))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fabric-engine")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let started = runtime.block_on(startup::start(&paths, secrets, demo))?;
    tracing::info!(
        embedded_ipam = %started.server.connection_string(),
        demo,
        "console starting"
    );
    let result = {
        // Engine calls made from the UI's tasks find this runtime too.
        let _guard = runtime.enter();
        application(started.context, started.preferences)
            .run()
            .map_err(|e| StartError::Window(e.to_string()))
    };
    runtime.block_on(started.server.shutdown());
    runtime.shutdown_timeout(std::time::Duration::from_secs(3));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_has_its_icon_minimum_size_and_application_id() {
        assert!(window_icon().is_some(), "64×64 RGBA icon");
        let s = window_settings(iced::Size::new(1200.0, 800.0));
        assert_eq!(s.min_size, Some(MIN_WINDOW));
        assert!(!s.exit_on_close_request);
        #[cfg(target_os = "linux")]
        assert_eq!(s.platform_specific.application_id, APP_ID);
    }

    /// The .desktop file and the AppStream metadata name the same application id as the window.
    #[test]
    fn desktop_files_name_the_application_id() {
        let desktop = include_str!("../../assets/io.github.fabricconsole.FabricConsole.desktop");
        assert!(desktop.contains(&format!("Icon={APP_ID}\n")));
        assert!(desktop.contains(&format!("StartupWMClass={APP_ID}\n")));
        let meta = include_str!("../../assets/io.github.fabricconsole.FabricConsole.metainfo.xml");
        assert!(meta.contains(&format!("<id>{APP_ID}</id>")));
        assert!(meta.contains(&format!(
            "<launchable type=\"desktop-id\">{APP_ID}.desktop</launchable>"
        )));
    }
}
