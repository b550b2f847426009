//! The console driven through iced_test's simulator, against a real store, a real engine and a
//! real built-in IPAM server on a loopback port. Run with ICED_TEST_BACKEND=tiny-skia.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::{
    Fabric, FabricChange, FabricObject, HostGroup, HostGroupScope, Id, NetworkService,
    RunAsAccount, ServiceCategory,
};
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::builtin;
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::{self as server, RunningServer, ServerConfig};
use fabric_console::sync::engine::{Engine, EngineContext};
use fabric_console::sync::status::{EngineCommand, EngineEvent, JobTrigger, SyncState};
use fabric_console::ui::app::Modal;
use fabric_console::ui::dialog::wizard::{self, Page};
use fabric_console::ui::engine_events::EngineNotice;
use fabric_console::ui::preferences::Preferences;
use fabric_console::ui::{App, AppContext, Message};
use iced::{Settings, Size, Task, mouse};
use iced_test::Simulator;
use iced_test::core::Event;
use iced_test::selector::{self, Candidate};
use tokio::sync::broadcast;
use uuid::Uuid;

const WINDOW: Size = Size::new(1280.0, 800.0);
const ACCOUNT: &str = "IPAM Service Account";

struct Console {
    runtime: tokio::runtime::Runtime,
    app: App,
    server: Option<RunningServer>,
    events: broadcast::Receiver<EngineEvent>,
    account: Id,
    seattle: Id,
    token: String,
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.shutdown());
        }
    }
}

fn console() -> Console {
    console_with_secrets(Arc::new(MemorySecretStore::new()))
}

fn console_with_secrets(secrets: Arc<dyn SecretStore>) -> Console {
    console_on(ServerConfig::ephemeral(), secrets)
}

fn console_on(server_config: ServerConfig, secrets: Arc<dyn SecretStore>) -> Console {
    console_over(
        server_config,
        secrets,
        FabricStore::open_in_memory().expect("store"),
    )
}

/// The console over `store` (a file another store can open too, as a second console would).
fn console_over(
    server_config: ServerConfig,
    secrets: Arc<dyn SecretStore>,
    store: FabricStore,
) -> Console {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime
        .block_on(server::start(server_config))
        .expect("built-in IPAM server");
    let token = server.issue_token(server::Role::AsmAdministrator);

    let mut fabric = Fabric::new();
    let root = fabric.root_host_group().map(|g| g.id).expect("root");
    let seattle = HostGroup {
        id: Uuid::new_v4(),
        name: "Seattle".into(),
        parent: Some(root),
    };
    fabric.host_groups.insert(seattle.id, seattle.clone());
    let account = RunAsAccount {
        id: Uuid::new_v4(),
        name: ACCOUNT.into(),
        description: "ASM administrator".into(),
        user_name: "ipam-svc".into(),
    };
    fabric.run_as_accounts.insert(account.id, account.clone());
    store.replace_all(fabric).expect("fabric");
    secrets.put(account.id, &token).expect("secret");

    let registry = Arc::new(ProviderRegistry::default_registry());
    let mut engine_ctx = EngineContext::new(store.clone(), secrets.clone(), registry.clone(), None);
    engine_ctx.periodic = false;
    let engine = runtime
        .block_on(async { Engine::start(engine_ctx) })
        .expect("engine");
    let events = engine.subscribe();
    let ctx = AppContext::new(store, secrets, registry, engine);
    let mut app = App::with_context(ctx, Preferences::default());
    app.set_window_size(WINDOW);
    Console {
        runtime,
        app,
        server: Some(server),
        events,
        account: account.id,
        seattle: seattle.id,
        token,
    }
}

impl Console {
    fn connection(&self) -> String {
        self.server
            .as_ref()
            .map(|s| s.connection_string())
            .unwrap_or_default()
    }

    /// Runs a task to completion the way iced would, feeding its messages back to update.
    fn run(&mut self, task: Task<Message>) {
        let Some(stream) = iced_test::runtime::task::into_stream(task) else {
            return;
        };
        let messages: Vec<Message> = self.runtime.block_on(async {
            use futures::StreamExt;
            stream
                .filter_map(|action| async move {
                    match action {
                        iced_test::runtime::Action::Output(m) => Some(m),
                        _ => None,
                    }
                })
                .collect()
                .await
        });
        for m in messages {
            self.send(m);
        }
    }

    fn send(&mut self, message: Message) {
        let task = self.app.update(message);
        self.run(task);
    }

    /// Builds the view, lets `interact` use it, then feeds the messages it produced to update.
    fn interact<T>(&mut self, interact: impl FnOnce(&mut Simulator<'_, Message>) -> T) -> T {
        let (out, messages) = {
            let mut ui = Simulator::with_size(Settings::default(), WINDOW, self.app.view());
            let out = interact(&mut ui);
            (out, ui.into_messages().collect::<Vec<_>>())
        };
        for m in messages {
            self.send(m);
        }
        out
    }

    fn click(&mut self, label: &str) {
        let label = label.to_string();
        self.interact(|ui| ui.click(label.as_str()).map(|_| ()))
            .unwrap_or_else(|e| panic!("cannot click {label:?}: {e}"));
    }

    /// Clicks the last text equal to `label` (menus are drawn over the tree, which may hold the same words).
    fn click_last(&mut self, label: &str) {
        let at = self.last_text_center(label);
        self.interact(|ui| {
            ui.point_at(at);
            ui.simulate(iced_test::simulator::click());
        });
    }

    fn type_into(&mut self, id: &'static str, value: &str) {
        self.interact(|ui| {
            ui.click(selector::id(id)).expect("text input");
            ui.typewrite(value);
        });
    }

    fn shows(&mut self, label: &str) -> bool {
        let label = label.to_string();
        self.interact(|ui| ui.find(label.as_str()).is_ok())
    }

    /// Every text on screen (and in text inputs) that contains `needle`.
    fn texts_containing(&mut self, needle: &str) -> usize {
        let needle = needle.to_string();
        self.interact(|ui| {
            let mut hits = 0usize;
            let _ = ui.find(|candidate: Candidate<'_>| -> Option<()> {
                match candidate {
                    Candidate::Text { content, .. } if content.contains(needle.as_str()) => {
                        hits += 1
                    }
                    Candidate::TextInput { state, .. }
                        if state.text().contains(needle.as_str()) =>
                    {
                        hits += 1
                    }
                    _ => {}
                }
                None
            });
            hits
        })
    }

    /// Right-clicks the last text equal to `label` (the grid row; the tree lists the name first).
    fn right_click(&mut self, label: &str) {
        let at = self.last_text_center(label);
        self.right_click_at(at);
    }

    fn right_click_at(&mut self, at: iced::Point) {
        self.interact(|ui| {
            ui.point_at(at);
            ui.simulate([
                Event::Mouse(mouse::Event::CursorMoved { position: at }),
                Event::Mouse(mouse::Event::ButtonPressed(mouse::Button::Right)),
                Event::Mouse(mouse::Event::ButtonReleased(mouse::Button::Right)),
            ]);
        });
    }

    fn last_text_center(&mut self, label: &str) -> iced::Point {
        self.last_text_center_where(label, |content, label| content == label)
    }

    /// Clicks the last text that contains `needle` (a long checkbox label, a notice).
    fn click_containing(&mut self, needle: &str) {
        let at = self.last_text_center_where(needle, |content, needle| content.contains(needle));
        self.interact(|ui| {
            ui.point_at(at);
            ui.simulate(iced_test::simulator::click());
        });
    }

    fn last_text_center_where(
        &mut self,
        label: &str,
        matches: fn(&str, &str) -> bool,
    ) -> iced::Point {
        let label = label.to_string();
        self.interact(|ui| {
            let mut last = None;
            let _ = ui.find(|candidate: Candidate<'_>| -> Option<()> {
                if let Candidate::Text {
                    content,
                    visible_bounds: Some(b),
                    ..
                } = candidate
                    && matches(content, label.as_str())
                {
                    last = Some(b);
                }
                None
            });
            last.unwrap_or_else(|| panic!("no text {label:?}")).center()
        })
    }

    /// Feeds engine events to the console until `done` says so (or 20 s pass).
    fn pump_until(&mut self, mut done: impl FnMut(&App) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(&self.app) {
            assert!(
                Instant::now() < deadline,
                "the engine did not get there in time"
            );
            let next = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(200), self.events.recv()).await
            });
            if let Ok(Ok(event)) = next {
                self.send(Message::Engine(EngineNotice::Event(event)));
            }
        }
    }

    fn add_service(&mut self, name: &str) -> Id {
        let service = NetworkService {
            id: Uuid::new_v4(),
            name: name.into(),
            description: String::new(),
            category: ServiceCategory::NetworkManager,
            manufacturer: builtin::MANUFACTURER.into(),
            model: builtin::MODEL.into(),
            connection: ConnectionString::parse(&self.connection()).expect("connection"),
            run_as: self.account,
            provider: builtin::PROVIDER_ID.into(),
            scope: HostGroupScope::All,
            sync_interval_secs: 300,
            tls_fingerprint: None,
            tls_ca_file: None,
            allow_cleartext: false,
            event_source: None,
            sync_on_change: true,
        };
        let id = service.id;
        let store = self.app.context().store.clone();
        let fabric = store
            .apply(&[FabricChange::Put(FabricObject::NetworkService(service))])
            .expect("service stored");
        // The console learns about it as after a sync: a fabric reload.
        self.send(Message::FabricReloaded(Ok(fabric)));
        id
    }

    fn wizard(&self) -> &wizard::Wizard {
        self.app.wizard().expect("the wizard is open")
    }

    /// Opens the wizard from the ribbon's Add Resources dropdown.
    fn open_wizard(&mut self) {
        self.click("Add Resources ▾");
        assert!(
            self.app.context_menu_open(),
            "Add Resources drops its menu down"
        );
        self.click_last("Network Service");
        assert!(
            self.app.wizard().is_some(),
            "Add Resources ▸ Network Service opens the wizard"
        );
    }

    /// Name, Manufacturer and Model, Credentials (Browse), Connection String, then Security.
    fn walk_to_security(&mut self, name: &str, connection: &str) {
        self.open_wizard();
        self.type_into(wizard::name::NAME_INPUT, name);
        self.click("Next");
        assert_eq!(self.wizard().page, Page::ManufacturerModel);
        self.click(builtin::MANUFACTURER);
        self.click(builtin::MODEL);
        self.click("Next");
        assert_eq!(self.wizard().page, Page::Credentials);
        self.click("Browse...");
        self.click(ACCOUNT);
        self.click("OK");
        self.click("Next");
        assert_eq!(self.wizard().page, Page::ConnectionString);
        self.type_into(wizard::connection::CONNECTION_INPUT, connection);
        self.click("Next");
        // Security: the console looked at the server without credentials.
        assert_eq!(self.wizard().page, Page::Security);
    }

    /// To the Provider page of the plain-HTTP test server on loopback.
    fn walk_to_provider(&mut self, name: &str) {
        let connection = self.connection();
        self.walk_to_security(name, &connection);
        assert!(
            self.texts_containing("offers only plain HTTP. It is this computer") > 0,
            "the built-in test server is plain HTTP on loopback"
        );
        self.click("Next");
        assert_eq!(self.wizard().page, Page::Provider);
    }

    fn run_test(&mut self) {
        self.click("Test");
        assert!(!self.wizard().is_testing(), "the test ran to its end");
    }
}

#[test]
fn the_wizard_adds_a_service_that_starts_syncing() {
    let mut c = console();
    c.walk_to_provider("IPAM One");
    c.run_test();
    assert!(c.shows("Passed"), "a good token passes the tests");
    assert!(c.shows("Implemented"));
    c.click("Next");
    assert_eq!(c.wizard().page, Page::HostGroup);
    c.click("Seattle");
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Summary);
    assert!(c.shows("All Hosts/Seattle"));
    assert!(c.shows(wizard::summary::SECRET_MASK));
    let token = c.token.clone();
    assert!(
        c.texts_containing(ACCOUNT) > 0,
        "the search sees the rendered text"
    );
    assert_eq!(
        c.texts_containing(&token),
        0,
        "the secret is never rendered"
    );
    c.click("Finish");

    assert!(c.app.modal().is_none(), "Finish closes the wizard");
    let service = c
        .app
        .fabric()
        .network_services
        .values()
        .find(|s| s.name == "IPAM One")
        .cloned()
        .expect("the service is in the store");
    assert_eq!(
        service.scope,
        HostGroupScope::Selected([c.seattle].into_iter().collect())
    );
    assert_eq!(
        c.app.selected_service(),
        Some(service.id),
        "the new service is selected"
    );
    let commands = c.app.commands();
    assert!(
        commands
            .iter()
            .any(|cmd| matches!(cmd, EngineCommand::AddService(s) if s.id == service.id))
    );
    assert!(commands.iter().any(|cmd| matches!(
        cmd,
        EngineCommand::RefreshNow { service: id, trigger: JobTrigger::FirstSync } if *id == service.id
    )));
    assert!(c.shows("IPAM One"), "the service is listed");
    c.pump_until(|app| {
        app.jobs()
            .iter()
            .any(|j| j.service == service.id && j.finished.is_some())
            && app.statuses().get(&service.id).is_some_and(|s| {
                !matches!(s.state, SyncState::Syncing { .. } | SyncState::NeverSynced)
            })
    });
    let job = c
        .app
        .jobs()
        .iter()
        .find(|j| j.service == service.id)
        .cloned();
    let status = c.app.statuses().get(&service.id).cloned();
    assert!(
        c.shows("In sync") || c.texts_containing("Warning") > 0,
        "job {job:?}, status {status:?}"
    );
}

#[test]
fn next_is_blocked_with_the_reason() {
    let mut c = console();
    c.open_wizard();
    assert!(c.shows("Type a name for the network service."));
    c.click("Next");
    assert_eq!(
        c.wizard().page,
        Page::Name,
        "Next does nothing while the name is empty"
    );

    c.type_into(wizard::name::NAME_INPUT, "IPAM Two");
    c.click("Next");
    c.click(builtin::MANUFACTURER);
    c.click("Next");
    c.click("Browse...");
    c.click(ACCOUNT);
    c.click("OK");
    c.click("Next");
    c.type_into(
        wizard::connection::CONNECTION_INPUT,
        "ipam1.contoso.com:99999",
    );
    assert!(c.shows("Connection string port \"99999\" is not a number from 1 to 65535"));
    c.click("Next");
    assert_eq!(c.wizard().page, Page::ConnectionString);

    c.type_into(wizard::connection::CONNECTION_INPUT, "");
    c.send(Message::Wizard(wizard::Message::Connection(
        wizard::connection::Message::Input("ipam1.contoso.com".into()),
    )));
    assert!(c.shows(&format!(
        "The default port {} of {} will be used.",
        builtin::DEFAULT_PORT,
        builtin::PROVIDER_NAME
    )));
    c.click("Next");
    // A server that cannot be reached: the Security page says so; it may be added to trust
    // only this computer's authorities, but not over plain HTTP, which needs the look first.
    assert_eq!(c.wizard().page, Page::Security);
    assert!(c.texts_containing("Cannot reach ipam1.contoso.com:48885") > 0);
    assert!(c.texts_containing("You can still add the service") > 0);
    c.click("Previous");
    c.send(Message::Wizard(wizard::Message::Connection(
        wizard::connection::Message::Input("http://ipam1.contoso.com".into()),
    )));
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Security);
    c.click("Next");
    assert_eq!(
        c.wizard().page,
        Page::Security,
        "plain HTTP unchecked, no Next"
    );
    c.click("Previous");
    let connection = c.connection();
    c.send(Message::Wizard(wizard::Message::Connection(
        wizard::connection::Message::Input(connection),
    )));
    c.click("Next");
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Provider);
    c.click("Next");
    assert_eq!(c.wizard().page, Page::HostGroup);
    assert!(c.shows("Select at least one host group, or All host groups."));
    c.click("Next");
    assert_eq!(c.wizard().page, Page::HostGroup, "no host group, no Next");

    c.click("Cancel");
    assert!(
        c.shows("Cancel the wizard?"),
        "Cancel asks before losing input"
    );
    c.click("Discard");
    assert!(c.app.modal().is_none());
}

#[test]
fn a_wrong_token_fails_the_test_and_names_the_cause() {
    let mut c = console();
    let account = c.account;
    let secrets = c.app.context().secrets.clone();
    secrets.put(account, "not-the-token").expect("secret");
    c.walk_to_provider("IPAM Three");
    c.run_test();
    assert!(c.shows("Failed"));
    assert!(c.texts_containing("insufficient permissions of the Run As account") > 0);
}

#[test]
fn right_click_refresh_sends_the_engine_a_refresh() {
    let mut c = console();
    let id = c.add_service("IPAM Four");
    c.right_click("IPAM Four");
    assert!(
        c.app.context_menu_open(),
        "right-click opens the context menu"
    );
    c.click_last("Refresh");
    assert!(!c.app.context_menu_open());
    assert!(c.app.commands().iter().any(|cmd| matches!(
        cmd,
        EngineCommand::RefreshNow { service, trigger: JobTrigger::Refresh } if *service == id
    )));
    c.pump_until(|app| {
        app.jobs()
            .iter()
            .any(|j| j.service == id && j.finished.is_some())
    });

    c.right_click("IPAM Four");
    c.send(Message::Key(fabric_console::ui::app::KeyAction::Escape));
    assert!(!c.app.context_menu_open(), "Escape closes the menu");
}

#[test]
fn remove_asks_then_removes() {
    let mut c = console();
    let id = c.add_service("IPAM Five");
    c.right_click("IPAM Five");
    c.click_last("Remove");
    assert!(matches!(c.app.modal(), Some(Modal::ConfirmRemove { .. })));
    c.click("No");
    assert!(
        c.app.fabric().network_services.contains_key(&id),
        "No keeps it"
    );
    c.right_click("IPAM Five");
    c.click_last("Remove");
    c.click("Yes");
    assert!(!c.app.fabric().network_services.contains_key(&id));
    assert!(
        c.app
            .commands()
            .iter()
            .any(|cmd| matches!(cmd, EngineCommand::RemoveService { service } if *service == id))
    );
    assert!(!c.shows("IPAM Five"));
}

#[test]
fn a_run_as_secret_typed_in_the_wizard_never_appears_in_the_summary() {
    let mut c = console();
    const SECRET: &str = "Pa55-w0rd-visible-nowhere";
    c.open_wizard();
    c.type_into(wizard::name::NAME_INPUT, "IPAM Six");
    c.click("Next");
    c.click(builtin::MANUFACTURER);
    c.click("Next");
    c.click("Create Run As Account...");
    c.type_into(
        fabric_console::ui::dialog::run_as_dialog::NAME_INPUT,
        "Six account",
    );
    c.type_into(fabric_console::ui::dialog::run_as_dialog::USER_INPUT, "six");
    c.type_into(
        fabric_console::ui::dialog::run_as_dialog::SECRET_INPUT,
        SECRET,
    );
    c.click("OK");
    let created = c
        .app
        .fabric()
        .run_as_accounts
        .values()
        .find(|a| a.name == "Six account")
        .map(|a| a.id)
        .expect("account stored");
    let stored = c.app.context().secrets.get(created).expect("secret store");
    assert_eq!(
        stored.as_deref(),
        Some(SECRET),
        "the secret went to the secret store"
    );
    c.click("Next");
    let connection = c.connection();
    c.type_into(wizard::connection::CONNECTION_INPUT, &connection);
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Security);
    c.click("Next");
    c.click("Next");
    c.click("All host groups");
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Summary);
    assert!(c.shows("Six account"));
    assert!(
        c.texts_containing("Six account") > 0,
        "the search sees the rendered text"
    );
    assert_eq!(c.texts_containing(SECRET), 0);
    assert_eq!(c.texts_containing("Pa55"), 0);
    assert!(!format!("{:?}", c.app.fabric()).contains(SECRET));
}

#[test]
fn settings_lists_providers_and_guards_used_accounts() {
    let mut c = console();
    c.add_service("IPAM Seven");
    c.click("Settings");
    assert!(c.shows("Configuration Providers"));
    assert!(c.shows(builtin::PROVIDER_NAME));
    c.click("Run As Accounts");
    c.click(ACCOUNT);
    assert!(c.texts_containing("cannot be deleted while IPAM Seven") > 0);
    assert!(c.texts_containing("kept in memory only") > 0);
}

#[test]
fn settings_says_the_secrets_are_in_an_owner_only_file_and_why() {
    use fabric_console::fabric::secrets::{FileReason, FileSecretStore, SECRETS_FILE};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut c = console_with_secrets(Arc::new(
        FileSecretStore::new(dir.path()).because(FileReason::NoKeyringAnswered),
    ));
    c.click("Settings");
    c.click("Run As Accounts");
    let path = dir.path().join(SECRETS_FILE).display().to_string();
    assert_eq!(c.texts_containing(&path), 1, "the file's path");
    assert_eq!(c.texts_containing("readable only by this user"), 1);
    assert_eq!(c.texts_containing("no system keyring"), 1);
    assert_eq!(
        c.texts_containing("system keyring (Secret Service), as items"),
        0
    );
}

#[test]
fn settings_draws_its_run_as_dialog_over_the_console() {
    use fabric_console::ui::dialog::run_as_dialog::{NAME_INPUT, SECRET_INPUT, USER_INPUT};
    use fabric_console::ui::widget::focus::DialogKey;
    let mut c = console();
    c.click("Settings");
    c.click("Run As Accounts");
    let on_screen = |c: &mut Console| {
        c.interact(|ui| {
            [NAME_INPUT, USER_INPUT, SECRET_INPUT]
                .into_iter()
                .filter(|id| ui.find(selector::id(*id)).is_ok())
                .count()
        })
    };
    assert_eq!(on_screen(&mut c), 0, "no dialog before the command");

    c.click("Create Run As Account...");
    assert!(c.shows("Create Run As Account"), "the dialog's title");
    assert!(c.shows("Name:"));
    assert!(c.shows("User name:"));
    assert_eq!(on_screen(&mut c), 3, "the dialog's boxes are drawn");
    assert!(c.shows("OK"));
    assert!(c.shows("Cancel"));
    c.click("Cancel");
    assert_eq!(on_screen(&mut c), 0, "Cancel closes the dialog");
    assert!(!c.shows("Create Run As Account"));

    // Escape closes it too, even when a text box had the key.
    c.click("Create Run As Account...");
    assert_eq!(on_screen(&mut c), 3);
    c.send(Message::DialogKey(DialogKey::Cancel, true));
    assert_eq!(on_screen(&mut c), 0, "Escape closes the dialog");

    // Properties opens the account; Enter saves it.
    c.click(ACCOUNT);
    // The toolbar's Properties (the ribbon's comes first).
    c.click_last("Properties");
    assert!(c.shows("Run As Account Properties"));
    assert_eq!(on_screen(&mut c), 3);
    c.type_into(USER_INPUT, "2");
    c.send(Message::DialogKey(DialogKey::Submit, false));
    assert_eq!(on_screen(&mut c), 0, "Enter saves and closes the dialog");
    assert_eq!(
        c.app.fabric().run_as_accounts[&c.account].user_name,
        "ipam-svc2",
        "Enter saved the account"
    );
}

#[test]
fn a_failed_job_names_the_server_and_what_to_do() {
    let mut c = console();
    // Nothing listens on port 9 of the loopback: the sync fails to connect.
    let id = c.add_service("IPAM Offline");
    let store = c.app.context().store.clone();
    let mut service = store.fabric().network_services[&id].clone();
    service.connection = ConnectionString::parse("127.0.0.1:9").expect("connection");
    let fabric = store
        .apply(&[FabricChange::Put(FabricObject::NetworkService(
            service.clone(),
        ))])
        .expect("stored");
    c.send(Message::FabricReloaded(Ok(fabric)));
    c.right_click("IPAM Offline");
    c.click_last("Refresh");
    c.pump_until(|app| {
        app.jobs()
            .iter()
            .any(|j| j.service == id && j.result == fabric_console::sync::status::JobResult::Failed)
    });
    c.click("Jobs");
    c.click_last("IPAM Offline");
    assert!(c.shows("Sync of IPAM Offline"));
    assert!(
        c.shows("IPAM Offline (127.0.0.1:9)"),
        "the detail names the server"
    );
    assert!(c.texts_containing("What to do: check that the IPAM server IPAM Offline") > 0);
    assert!(c.texts_containing("Cannot reach IPAM server IPAM Offline") > 0);
}

#[test]
fn double_click_opens_properties_and_saving_updates_the_engine() {
    let mut c = console();
    let id = c.add_service("IPAM Eight");
    let at = c.last_text_center("IPAM Eight");
    c.interact(|ui| {
        ui.point_at(at);
        ui.simulate(iced_test::simulator::click());
        ui.simulate(iced_test::simulator::click());
    });
    assert!(
        matches!(c.app.modal(), Some(Modal::Properties(_))),
        "double-click opens Properties"
    );
    c.type_into(
        fabric_console::ui::dialog::properties::NAME_INPUT,
        " (renamed)",
    );
    c.click("OK");
    assert!(c.app.modal().is_none());
    let saved = &c.app.fabric().network_services[&id];
    assert!(
        saved.name.ends_with("(renamed)"),
        "name was {:?}",
        saved.name
    );
    assert!(c.app.commands().iter().any(
        |cmd| matches!(cmd, EngineCommand::UpdateService(s) if s.id == id && s.name == saved.name)
    ));
}

#[test]
fn the_context_menu_stays_inside_the_window() {
    let mut c = console();
    c.add_service("IPAM Nine");
    c.app.set_window_size(Size::new(400.0, 240.0));
    c.right_click("IPAM Nine");
    let at = c.app.context_menu_position().expect("menu open");
    assert!(
        at.x + 190.0 <= 400.0 && at.y + 4.0 * 26.0 + 10.0 <= 240.0,
        "menu at {at:?}"
    );
    c.click_last("Properties");
    assert!(matches!(c.app.modal(), Some(Modal::Properties(_))));
    c.send(Message::Key(fabric_console::ui::app::KeyAction::Escape));
    assert!(c.app.modal().is_none(), "Escape closes Properties");
}

#[test]
fn the_security_page_pins_a_self_signed_certificate_on_first_contact() {
    let mut c = console_on(
        ServerConfig {
            tls: true,
            ..ServerConfig::ephemeral()
        },
        Arc::new(MemorySecretStore::new()),
    );
    let server = c.server.as_ref().expect("server");
    let fingerprint = server.tls_fingerprint().expect("TLS");
    // Typed as an administrator would: no scheme.
    let typed = server.addr().to_string();
    c.walk_to_security("IPAM TLS", &typed);
    assert!(
        c.texts_containing("offers HTTPS, but this computer does not trust its certificate") > 0
    );
    assert!(
        c.texts_containing(&fabric_console::ipam::tls::colons(&fingerprint)[..47]) > 0,
        "the fingerprint is shown to compare"
    );
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Security, "not trusted, no Next");
    c.click_containing("Trust exactly this certificate");
    assert!(c.texts_containing("only the pinned certificate is accepted") > 0);
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Provider);
    c.run_test();
    assert!(c.shows("Passed"), "the pinned server passes the tests");
    assert!(c.texts_containing("Encrypted: yes (TLS; only the pinned certificate") > 0);
    c.click("Next");
    c.click("All host groups");
    c.click("Next");
    assert_eq!(c.wizard().page, Page::Summary);
    c.click("Finish");
    let fabric = c.app.fabric();
    let service = fabric
        .network_services
        .values()
        .find(|s| s.name == "IPAM TLS")
        .expect("service added");
    assert_eq!(
        service.tls_fingerprint.as_deref(),
        Some(fingerprint.as_str())
    );
    assert_eq!(service.connection.to_string(), format!("https://{typed}"));
}

#[test]
fn arrow_keys_page_home_and_end_move_the_selection_in_the_lists() {
    use fabric_console::ui::app::KeyAction;
    use fabric_console::ui::widget::virtual_list::Step;
    let step = |c: &mut Console, s: Step| c.send(Message::Key(KeyAction::Step(s)));

    // The host groups list (All Hosts, Seattle and two more), in its name order.
    let mut c = console();
    let store = c.app.context().store.clone();
    let mut fabric = store.fabric().as_ref().clone();
    for name in ["Berlin", "Zurich"] {
        let g = HostGroup {
            id: Uuid::new_v4(),
            name: name.into(),
            parent: Some(c.seattle),
        };
        fabric.host_groups.insert(g.id, g);
    }
    store.replace_all(fabric).expect("fabric");
    c.send(Message::FabricReloaded(Ok(store.fabric())));
    c.click("Servers");
    let mut names: Vec<String> = c
        .app
        .fabric()
        .host_groups
        .values()
        .map(|g| g.name.clone())
        .collect();
    names.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names.len(), 4);
    let selected = |c: &Console| {
        c.app
            .admin()
            .selected
            .and_then(|id| c.app.fabric().host_groups.get(&id))
            .map(|g| g.name.clone())
    };
    assert_eq!(selected(&c), None);
    step(&mut c, Step::Down);
    assert_eq!(
        selected(&c).as_ref(),
        Some(&names[0]),
        "Down selects the first row"
    );
    step(&mut c, Step::Down);
    assert_eq!(selected(&c).as_ref(), Some(&names[1]));
    step(&mut c, Step::End);
    assert_eq!(
        selected(&c).as_ref(),
        names.last(),
        "End selects the last row"
    );
    assert!(
        c.texts_containing(names.last().unwrap()) >= 2,
        "the details pane shows the row the keys selected"
    );
    step(&mut c, Step::PageUp);
    step(&mut c, Step::Home);
    assert_eq!(
        selected(&c).as_ref(),
        Some(&names[0]),
        "Home selects the first row"
    );
    step(&mut c, Step::Up);
    assert_eq!(
        selected(&c).as_ref(),
        Some(&names[0]),
        "Up stops at the top"
    );

    // The network services grid, in its order (Network managers: a, then b).
    let second = c.add_service("ipam-keys-b");
    let first = c.add_service("ipam-keys-a");
    use fabric_console::ui::screen::fabric_workspace::{Message as FabricMessage, Node};
    c.send(Message::Fabric(FabricMessage::SelectNode(
        Node::NetworkService,
    )));
    step(&mut c, Step::Home);
    assert_eq!(c.app.selected_service(), Some(first));
    step(&mut c, Step::Down);
    assert_eq!(c.app.selected_service(), Some(second));
}

#[test]
fn right_click_on_an_administration_row_offers_its_properties_and_deletion() {
    let mut c = console();
    c.click("Servers");
    // The list's row (the tree names Seattle only once it is expanded; the details pane names
    // it once it is selected).
    let row = c.last_text_center("Seattle");
    c.right_click_at(row);
    assert!(
        c.app.context_menu_open(),
        "a right-click opens the row's menu"
    );
    assert_eq!(
        c.app
            .admin()
            .selected
            .and_then(|id| c.app.fabric().host_groups.get(&id))
            .map(|g| g.name.as_str()),
        Some("Seattle"),
        "the right-clicked row is selected"
    );
    assert!(c.shows("Delete..."));
    c.click_last("Properties");
    assert!(!c.app.context_menu_open());
    assert!(
        c.app.admin().object_dialog().is_some(),
        "Properties opens the host group's dialog"
    );
    c.send(Message::Key(fabric_console::ui::app::KeyAction::Escape));
    c.send(Message::DialogKey(
        fabric_console::ui::widget::focus::DialogKey::Cancel,
        false,
    ));
    assert!(c.app.admin().object_dialog().is_none());
    c.right_click_at(row);
    c.click_last("Delete...");
    assert!(
        c.texts_containing("Delete the host group \"Seattle\"") >= 1,
        "Delete asks before deleting"
    );
}

#[test]
fn dragging_a_column_border_resizes_the_column() {
    use fabric_console::ui::screen::fabric_workspace::{Message as FabricMessage, Node};
    let mut c = console();
    c.send(Message::Fabric(FabricMessage::SelectNode(
        Node::NetworkService,
    )));
    let before = c.interact(|ui| ui.find("Category").expect("header").bounds());
    // The border between Name and Category: left of Category's padding, in the middle of the
    // 7-pixel handle.
    let y = before.center_y();
    let at = iced::Point::new(before.x - 6.0 - 3.5, y);
    let to = iced::Point::new(at.x + 80.0, y);
    c.interact(|ui| {
        ui.point_at(at);
        ui.simulate([
            Event::Mouse(mouse::Event::CursorMoved { position: at }),
            Event::Mouse(mouse::Event::ButtonPressed(mouse::Button::Left)),
        ]);
    });
    c.interact(|ui| {
        ui.point_at(to);
        ui.simulate([
            Event::Mouse(mouse::Event::CursorMoved { position: to }),
            Event::Mouse(mouse::Event::ButtonReleased(mouse::Button::Left)),
        ]);
    });
    let after = c.interact(|ui| ui.find("Category").expect("header").bounds());
    assert!(
        (after.x - before.x - 80.0).abs() < 3.0,
        "Category starts 80 px further right: {} → {}",
        before.x,
        after.x
    );
    // Moving the pointer again after the release changes nothing.
    c.interact(|ui| {
        let far = iced::Point::new(to.x + 100.0, y);
        ui.point_at(far);
        ui.simulate([Event::Mouse(mouse::Event::CursorMoved { position: far })]);
    });
    let still = c.interact(|ui| ui.find("Category").expect("header").bounds());
    assert!((still.x - after.x).abs() < 0.5);
}

/// Two administrators edit one host group: the second save is refused, says what the first
/// one changed, and Reload shows their version; nothing is overwritten silently.
#[test]
fn a_save_over_another_consoles_save_is_refused_shows_their_change_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabric.db");
    let mut c = console_over(
        ServerConfig::ephemeral(),
        Arc::new(MemorySecretStore::new()),
        FabricStore::open(&path).unwrap(),
    );
    c.click("Servers");
    let row = c.last_text_center("Seattle");
    c.right_click_at(row);
    c.click_last("Properties");
    assert!(c.app.admin().object_dialog().is_some());
    // Meanwhile the other console renames it.
    let other = FabricStore::open(&path).unwrap();
    let mut group = other.fabric().host_groups[&c.seattle].clone();
    group.name = "Seattle North".into();
    other
        .apply(&[FabricChange::Put(FabricObject::HostGroup(group))])
        .unwrap();
    // This console's administrator renames it too and saves.
    c.type_into(
        fabric_console::ui::dialog::admin::host_group::NAME_INPUT,
        " West",
    );
    c.click("OK");
    let dialog = c
        .app
        .admin()
        .object_dialog()
        .expect("the dialog stays open");
    assert!(
        dialog
            .refused
            .as_deref()
            .is_some_and(|r| r.contains("Someone else saved the host group")),
        "{:?}",
        dialog.refused
    );
    assert!(c.shows("Reload"));
    assert!(
        c.texts_containing("\"Seattle North\"") >= 1,
        "their change is shown"
    );
    assert_eq!(
        other.reload().unwrap().host_groups[&c.seattle].name,
        "Seattle North",
        "their save was not overwritten"
    );
    c.click("Reload");
    let dialog = c.app.admin().object_dialog().expect("opened again");
    assert_eq!(dialog.form.name(), "Seattle North");
    assert!(dialog.refused.is_none());
    // Saved now, on top of their version.
    c.type_into(
        fabric_console::ui::dialog::admin::host_group::NAME_INPUT,
        " West",
    );
    c.click("OK");
    assert!(c.app.admin().object_dialog().is_none(), "saved");
    assert_eq!(
        other.reload().unwrap().host_groups[&c.seattle].name,
        "Seattle North West"
    );
}

/// Deleting what another console saved after the confirmation opened is refused; nothing goes.
#[test]
fn a_delete_of_what_another_console_just_saved_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fabric.db");
    let mut c = console_over(
        ServerConfig::ephemeral(),
        Arc::new(MemorySecretStore::new()),
        FabricStore::open(&path).unwrap(),
    );
    c.click("Servers");
    let row = c.last_text_center("Seattle");
    c.right_click_at(row);
    c.click_last("Delete...");
    let other = FabricStore::open(&path).unwrap();
    let mut group = other.fabric().host_groups[&c.seattle].clone();
    group.name = "Seattle North".into();
    other
        .apply(&[FabricChange::Put(FabricObject::HostGroup(group))])
        .unwrap();
    c.click_last("Delete");
    assert!(
        c.texts_containing("Someone else saved the host group") >= 1,
        "the refusal is shown"
    );
    assert!(
        other.reload().unwrap().host_groups.contains_key(&c.seattle),
        "nothing was deleted"
    );
}
