//! The side-by-side view, the fabric dialogs and the preview, driven through iced_test's
//! simulator against a real store, a real engine and a real built-in IPAM server on a loopback
//! port. Run with ICED_TEST_BACKEND=tiny-skia.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use fabric_console::fabric::connection::ConnectionString;
use fabric_console::fabric::model::*;
use fabric_console::fabric::secrets::{MemorySecretStore, SecretStore};
use fabric_console::fabric::store::FabricStore;
use fabric_console::ipam::builtin::PROVIDER_ID;
use fabric_console::ipam::model::{SnapshotRead, SnapshotScope};
use fabric_console::ipam::provider::{Credentials, ProviderConfig};
use fabric_console::ipam::registry::ProviderRegistry;
use fabric_console::ipam_server::auth::Role;
use fabric_console::ipam_server::{self as server, RunningServer, ServerConfig};
use fabric_console::sync::compare::{RowKind, RowStatus};
use fabric_console::sync::engine::{Engine, EngineContext, EngineHandle};
use fabric_console::sync::plan::{Resolution, Side};
use fabric_console::sync::status::EngineEvent;
use fabric_console::sync::status::{EngineCommand, JobResult, JobTrigger};
use fabric_console::ui::dialog::admin::{self, Admin, Tab};
use fabric_console::ui::dialog::exchange;
use fabric_console::ui::dialog::preview::{self, Preview, PreviewState};
use fabric_console::ui::engine_events::EngineNotice;
use fabric_console::ui::preferences::Preferences;
use fabric_console::ui::screen::compare::{self, CompareScreen};
use fabric_console::ui::widget::focus::DialogKey;
use fabric_console::ui::{App, AppContext, Message};
use iced::{Element, Settings, Size, Task};
use iced_test::Simulator;
use iced_test::selector::{self, Candidate};
use ipnet::IpNet;
use serde_json::json;
use uuid::Uuid;

const WINDOW: Size = Size::new(1280.0, 800.0);

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}
fn net(s: &str) -> IpNet {
    s.parse().expect("subnet")
}

/// Runs a task the way iced would and returns the messages it produced.
fn run<M: Send + 'static>(runtime: &tokio::runtime::Runtime, task: Task<M>) -> Vec<M> {
    let Some(stream) = iced_test::runtime::task::into_stream(task) else {
        return Vec::new();
    };
    runtime.block_on(async {
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
    })
}

/// Builds a view, lets `f` use it, and returns what `f` gave and the messages it produced.
fn interact<M: Send + 'static, T>(
    view: Element<'_, M>,
    f: impl FnOnce(&mut Simulator<'_, M>) -> T,
) -> (T, Vec<M>) {
    let mut ui = Simulator::with_size(Settings::default(), WINDOW, view);
    let out = f(&mut ui);
    (out, ui.into_messages().collect())
}

fn texts(ui: &mut Simulator<'_, impl Send + 'static>) -> Vec<(String, Option<iced::Rectangle>)> {
    let mut out = Vec::new();
    let _ = ui.find(|c: Candidate<'_>| -> Option<()> {
        if let Candidate::Text {
            content,
            visible_bounds,
            ..
        } = c
        {
            out.push((content.to_string(), visible_bounds));
        }
        None
    });
    out
}

/// The centre of the last text equal to `label` on screen.
fn last_text_center(ui: &mut Simulator<'_, impl Send + 'static>, label: &str) -> iced::Point {
    texts(ui)
        .into_iter()
        .rev()
        .find(|(t, b)| t == label && b.is_some())
        .and_then(|(_, b)| b)
        .unwrap_or_else(|| panic!("no text {label:?}"))
        .center()
}

/// Opens the pick list inside the container `id` and chooses its option `index`: the menu opens
/// right under the list, one option per line.
fn choose<M: Send + 'static>(ui: &mut Simulator<'_, M>, id: &'static str, index: usize) {
    let list = ui.click(selector::id(id)).expect("pick list").bounds();
    let option = 13.0 * 1.3 + 10.0;
    let at = iced::Point::new(
        list.center_x(),
        list.y + list.height + option * (index as f32 + 0.5),
    );
    ui.point_at(at);
    ui.simulate([iced_test::core::Event::Mouse(
        iced::mouse::Event::CursorMoved { position: at },
    )]);
    ui.simulate(iced_test::simulator::click());
}

fn shows<M: Send + 'static>(view: Element<'_, M>, needle: &str) -> bool {
    interact(view, |ui| {
        texts(ui)
            .iter()
            .any(|(t, b)| t.contains(needle) && b.is_some())
    })
    .0
}

/// A console with a real store and engine, and a built-in IPAM server synced once.
struct Rig {
    runtime: tokio::runtime::Runtime,
    server: Option<RunningServer>,
    store: FabricStore,
    secrets: Arc<dyn SecretStore>,
    engine: EngineHandle,
    service: Id,
    token: String,
    ln: Id,
    site: Id,
    pool: Id,
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.runtime.block_on(s.shutdown());
        }
    }
}

fn fixture(store: &FabricStore) -> (Id, Id, Id, Id) {
    let f = store.fabric();
    let root = f.root_host_group().expect("root").id;
    let seattle = HostGroup {
        id: Uuid::new_v4(),
        name: "Seattle".into(),
        parent: Some(root),
    };
    let ln = LogicalNetwork {
        id: Uuid::new_v4(),
        name: "Backend".into(),
        description: String::new(),
        isolation: LogicalNetworkIsolation::OneConnected,
    };
    let site = NetworkSite {
        id: Uuid::new_v4(),
        name: "Backend_Seattle".into(),
        logical_network: ln.id,
        host_groups: vec![seattle.id],
        subnets: vec![
            SubnetVlan {
                subnet: net("10.1.0.0/24"),
                vlan: 10,
                secondary_vlan: None,
            },
            SubnetVlan {
                subnet: net("10.1.1.0/24"),
                vlan: 11,
                secondary_vlan: None,
            },
        ],
    };
    let pool = IpPool {
        id: Uuid::new_v4(),
        name: "Backend pool".into(),
        description: String::new(),
        scope: PoolScope::Site {
            site: site.id,
            subnet: net("10.1.0.0/24"),
        },
        range_start: ip("10.1.0.10"),
        range_end: ip("10.1.0.200"),
        settings: PoolSettings {
            reserved: BTreeSet::new(),
            vips: BTreeSet::new(),
            gateways: vec![Gateway::Address {
                address: ip("10.1.0.1"),
                metric: 1,
            }],
            dns_servers: vec![ip("10.0.0.53")],
            dns_suffix: "corp.contoso.com".into(),
            dns_search_suffixes: vec![],
            wins_servers: vec![],
            netbios_enabled: false,
        },
    };
    let ids = (seattle.id, ln.id, site.id, pool.id);
    store
        .apply(&[
            FabricChange::Put(FabricObject::HostGroup(seattle)),
            FabricChange::Put(FabricObject::LogicalNetwork(ln)),
            FabricChange::Put(FabricObject::NetworkSite(site)),
            FabricChange::Put(FabricObject::IpPool(pool)),
        ])
        .expect("fixture is valid");
    ids
}

fn rig() -> Rig {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime
        .block_on(server::start(ServerConfig::ephemeral()))
        .expect("IPAM server");
    let token = server.issue_token(Role::AsmAdministrator);
    let store = FabricStore::open_in_memory().expect("store");
    let (_, ln, site, pool) = fixture(&store);
    let account = RunAsAccount {
        id: Uuid::new_v4(),
        name: "IPAM administrator".into(),
        description: String::new(),
        user_name: "svc-ipam".into(),
    };
    let service = NetworkService {
        id: Uuid::new_v4(),
        name: "IPAM One".into(),
        description: String::new(),
        category: ServiceCategory::NetworkManager,
        manufacturer: "Fabric Console".into(),
        model: "Fabric Console IPAM Server".into(),
        connection: ConnectionString::parse(&server.addr().to_string()).expect("connection"),
        run_as: account.id,
        provider: PROVIDER_ID.into(),
        scope: HostGroupScope::All,
        sync_interval_secs: 300,
        tls_fingerprint: None,
        tls_ca_file: None,
        allow_cleartext: false,
        event_source: None,
        sync_on_change: true,
    };
    let secrets: Arc<dyn SecretStore> = Arc::new(MemorySecretStore::default());
    secrets.put(account.id, &token).expect("secret");
    store
        .apply(&[
            FabricChange::Put(FabricObject::RunAsAccount(account)),
            FabricChange::Put(FabricObject::NetworkService(service.clone())),
        ])
        .expect("service");
    let mut ctx = EngineContext::new(
        store.clone(),
        secrets.clone(),
        Arc::new(ProviderRegistry::default_registry()),
        None,
    );
    ctx.periodic = false;
    let engine = runtime
        .block_on(async { Engine::start(ctx) })
        .expect("engine");
    let rig = Rig {
        runtime,
        server: Some(server),
        store,
        secrets,
        engine,
        service: service.id,
        token,
        ln,
        site,
        pool,
    };
    let job = rig.sync();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    rig
}

impl Rig {
    fn sync(&self) -> fabric_console::sync::status::JobRecord {
        self.runtime
            .block_on(self.engine.sync_now(self.service, JobTrigger::Refresh))
            .expect("sync runs")
    }

    fn ipam(&self) -> fabric_console::ipam::model::IpamSnapshot {
        let server = self.server.as_ref().expect("server");
        let provider = ProviderRegistry::default_registry()
            .get(PROVIDER_ID)
            .expect("provider")
            .connect(ProviderConfig {
                connection: ConnectionString::parse(&server.addr().to_string())
                    .expect("connection"),
                credentials: Credentials {
                    user_name: "t".into(),
                    secret: self.token.clone(),
                },
                trust: fabric_console::fabric::model::TlsTrust::default(),
                service_name: "IPAM One".into(),
                event_source: None,
            })
            .expect("connect");
        match self
            .runtime
            .block_on(provider.snapshot(&SnapshotScope::All, None))
            .expect("snapshot")
        {
            SnapshotRead::Full(s) => s,
            SnapshotRead::Changes(_) => panic!("asked for a full snapshot"),
        }
    }

    /// An IPAM administrator's edit through the server's REST API.
    fn admin(&self, method: reqwest::Method, path: &str, body: Option<serde_json::Value>) {
        let url = format!(
            "{}/api/v1/{path}",
            self.server.as_ref().expect("server").base_url()
        );
        self.runtime.block_on(async {
            let mut req = reqwest::Client::new()
                .request(method, &url)
                .bearer_auth(&self.token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().await.expect("request");
            let status = resp.status();
            assert!(
                status.is_success(),
                "{path}: {status} {}",
                resp.text().await.unwrap_or_default()
            );
        });
    }

    /// The same pool edited differently on both sides: a conflict on its DNS suffix.
    fn make_conflict(&self) {
        let mut pool = self.store.fabric().ip_pools[&self.pool].clone();
        pool.settings.dns_suffix = "console.contoso.com".into();
        self.store
            .apply(&[FabricChange::Put(FabricObject::IpPool(pool))])
            .expect("console edit");
        let range = self
            .ipam()
            .ranges
            .into_iter()
            .find(|r| r.vmm_id == Some(self.pool))
            .expect("range");
        self.admin(
            reqwest::Method::PATCH,
            &format!("ranges/{}", range.id),
            Some(json!({"dns_suffix": "ipam.contoso.com"})),
        );
    }

    fn ctx<'a>(&'a self, fabric: &'a Arc<Fabric>) -> compare::Context<'a> {
        compare::Context {
            fabric,
            store: &self.store,
            engine: &self.engine,
        }
    }

    /// A compare screen with its first comparison loaded.
    fn compare_screen(&self) -> CompareScreen {
        let mut screen = CompareScreen::new(self.service, "IPAM One".into());
        let task = screen.load(&self.engine);
        let fabric = self.store.fabric();
        for m in run(&self.runtime, task) {
            let _ = screen.update(m, self.ctx(&fabric));
        }
        assert_eq!(screen.state, compare::LoadState::Ready);
        screen
    }

    /// Clicks in the compare view; events that ask for the engine are carried out like the console does.
    fn compare_interact(
        &self,
        screen: &mut CompareScreen,
        f: impl FnOnce(&mut Simulator<'_, compare::Message>),
    ) -> Vec<compare::Event> {
        let ((), messages) = interact(screen.view(), |ui| f(ui));
        let mut events = Vec::new();
        let fabric = self.store.fabric();
        for m in messages {
            let (task, event) = screen.update(m, self.ctx(&fabric));
            for m in run(&self.runtime, task) {
                let _ = screen.update(m, self.ctx(&fabric));
            }
            if let Some(compare::Event::Resolved { service, decisions }) = &event {
                for (key, resolution) in decisions {
                    self.engine.send(EngineCommand::ResolveConflict {
                        service: *service,
                        conflict: key.clone(),
                        resolution: *resolution,
                    });
                }
                let task = screen.load(&self.engine);
                for m in run(&self.runtime, task) {
                    let _ = screen.update(m, self.ctx(&fabric));
                }
            }
            events.extend(event);
        }
        events
    }
}

#[test]
fn the_side_by_side_view_aligns_both_sides_under_the_seed_mapping() {
    let r = rig();
    // An IPAM-side change to a subnet's VLAN: the row differs, the field is highlighted.
    let subnet = r
        .ipam()
        .subnets
        .into_iter()
        .find(|s| s.network == net("10.1.1.0/24"))
        .expect("subnet");
    r.admin(
        reqwest::Method::PATCH,
        &format!("subnets/{}", subnet.id),
        Some(json!({"vlan": 111})),
    );
    let mut screen = r.compare_screen();
    let view = screen.view();
    let (found, _) = interact(view, |ui| {
        let all = texts(ui);
        let has = |t: &str| all.iter().any(|(c, b)| c == t && b.is_some());
        (
            has("Logical network"),
            has("↔ Provider IP Address Space · VMM Logical Network"),
            has("↔ IP Address Range"),
            has("↔ Customer IP Address Space · VM Network"),
            has("VMM Logical Network"),
            has("In sync"),
            has("Differs"),
            all.iter()
                .filter(|(c, b)| c == "10.1.1.0/24" && b.is_some())
                .count(),
        )
    });
    assert!(
        found.0 && found.1 && found.2 && found.3,
        "the mapping heads the view: {found:?}"
    );
    assert!(found.4, "rows name the IPAM side's kind");
    assert!(found.5 && found.6, "status badges in words: {found:?}");
    assert_eq!(found.7, 2, "the subnet row holds both sides");
    let differs = screen
        .rows()
        .iter()
        .position(|r| r.status == RowStatus::Differs)
        .expect("a differing row");
    assert_eq!(screen.rows()[differs].changed, vec!["VLAN".to_string()]);

    // The status chips filter: only the differing row remains.
    r.compare_interact(&mut screen, |ui| {
        ui.click("Differs (1)").expect("chip");
    });
    assert_eq!(screen.visible_rows(), [differs]);
    // Selecting it shows both values with the changed field highlighted.
    r.compare_interact(&mut screen, |ui| {
        ui.click("IP Address Subnet").expect("the row");
    });
    assert_eq!(screen.selected, Some(differs));
    assert!(shows(screen.view(), "111"), "the IPAM value is shown");
    // Search narrows within the filter; no match says so.
    let all = format!("All ({})", screen.rows().len());
    r.compare_interact(&mut screen, |ui| {
        ui.click(all.as_str()).expect("chip");
    });
    r.compare_interact(&mut screen, |ui| {
        ui.click(selector::id(compare::SEARCH_INPUT))
            .expect("search box");
        ui.typewrite("backend pool");
    });
    let visible: Vec<RowKind> = screen
        .visible_rows()
        .iter()
        .map(|i| screen.rows()[*i].kind)
        .collect();
    assert_eq!(visible, vec![RowKind::Pool]);
}

#[test]
fn a_conflict_resolved_with_either_choice_is_applied_by_the_next_sync() {
    for (button, resolution, want) in [
        (
            "Keep console value",
            Resolution::KeepConsole,
            "console.contoso.com",
        ),
        ("Take IPAM values", Resolution::TakeIpam, "ipam.contoso.com"),
    ] {
        let r = rig();
        r.make_conflict();
        let job = r.sync();
        assert_eq!(job.counts.conflicts, 1, "{job:?}");
        let mut screen = r.compare_screen();
        let conflict_row = screen
            .rows()
            .iter()
            .position(|x| x.status == RowStatus::Conflict)
            .expect("conflict row");
        r.compare_interact(&mut screen, |ui| {
            ui.click("Conflict (1)").expect("chip");
        });
        r.compare_interact(&mut screen, |ui| {
            ui.click("IP Address Range").expect("the conflict row");
        });
        assert_eq!(screen.selected, Some(conflict_row));
        // Base, console and IPAM values of the field, with both choices.
        let (seen, _) = interact(screen.view(), |ui| {
            let all = texts(ui);
            [
                "corp.contoso.com",
                "console.contoso.com",
                "ipam.contoso.com",
                "Keep console value",
                "Take IPAM value",
                "Keep console values",
                "Take IPAM values",
            ]
            .iter()
            .all(|t| all.iter().any(|(c, b)| c == t && b.is_some()))
        });
        assert!(
            seen,
            "the conflict shows base, console and IPAM values and the choices"
        );
        let events = r.compare_interact(&mut screen, |ui| {
            ui.click(button).expect("choice");
        });
        assert!(
            events.iter().any(|e| matches!(e, compare::Event::Resolved { decisions, .. } if decisions.len() == 1 && decisions[0].1 == resolution)),
            "{events:?}"
        );
        assert_eq!(
            screen.decided.values().copied().collect::<Vec<_>>(),
            vec![resolution]
        );
        let job = r.sync();
        assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
        assert_eq!(r.store.fabric().ip_pools[&r.pool].settings.dns_suffix, want);
        let range = r
            .ipam()
            .ranges
            .into_iter()
            .find(|x| x.vmm_id == Some(r.pool))
            .expect("range");
        assert_eq!(range.settings.dns_suffix, want);
        let screen = r.compare_screen();
        assert!(
            screen.rows().iter().all(|x| x.status == RowStatus::InSync),
            "{:?}",
            screen.loaded().map(|l| &l.view.counts)
        );
    }
}

#[test]
fn an_orphaned_logical_network_offers_the_seed_deletion() {
    let r = rig();
    let space = r
        .ipam()
        .spaces
        .into_iter()
        .find(|s| s.vmm_id == Some(r.ln))
        .expect("space");
    r.admin(
        reqwest::Method::PATCH,
        &format!("address-spaces/{}", space.id),
        Some(json!({"vmm_logical_network": null})),
    );
    r.sync();
    let mut screen = r.compare_screen();
    let ln_row = screen
        .rows()
        .iter()
        .position(|x| x.kind == RowKind::LogicalNetwork && x.status == RowStatus::Orphaned)
        .expect("the orphaned logical network");
    r.compare_interact(&mut screen, |ui| {
        ui.click("Orphaned (5)").expect("chip");
    });
    r.compare_interact(&mut screen, |ui| {
        ui.click("Backend").expect("row");
    });
    assert_eq!(screen.selected, Some(ln_row));
    assert!(shows(
        screen.view(),
        "Its VMM Logical Network name was deleted on the IPAM server"
    ));
    r.compare_interact(&mut screen, |ui| {
        ui.click("Delete network sites and logical network...")
            .expect("button");
    });
    let confirm = screen.modal().expect("the confirmation");
    let (listed, messages) = interact(confirm, |ui| {
        let all = texts(ui);
        let listed = ["Backend_Seattle", "Backend pool"]
            .iter()
            .all(|t| all.iter().any(|(c, _)| c == t));
        ui.click("Delete").expect("Delete");
        listed
    });
    assert!(listed, "the confirmation lists what will be deleted");
    let fabric = r.store.fabric();
    let mut changed = None;
    for m in messages {
        let (task, _) = screen.update(m, r.ctx(&fabric));
        for m in run(&r.runtime, task) {
            if let (_, Some(compare::Event::FabricChanged(f, _))) = screen.update(m, r.ctx(&fabric))
            {
                changed = Some(f);
            }
        }
    }
    let changed = changed.expect("the deletion was saved");
    assert!(!changed.logical_networks.contains_key(&r.ln));
    assert!(changed.network_sites.is_empty() && changed.ip_pools.is_empty());
    let job = r.sync();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let s = r.ipam();
    assert!(
        s.subnets.is_empty() && s.ranges.is_empty(),
        "the next sync completes the deletion: {s:?}"
    );
}

#[test]
fn the_preview_lists_exactly_what_the_next_sync_does() {
    let r = rig();
    // Changes on both sides: a new pool in the console, a deleted range and a changed VLAN in IPAM.
    let mut site = r.store.fabric().network_sites[&r.site].clone();
    site.subnets.push(SubnetVlan {
        subnet: net("10.1.2.0/24"),
        vlan: 12,
        secondary_vlan: None,
    });
    r.store
        .apply(&[FabricChange::Put(FabricObject::NetworkSite(site))])
        .expect("site");
    let s = r.ipam();
    let range = s
        .ranges
        .iter()
        .find(|x| x.vmm_id == Some(r.pool))
        .expect("range");
    r.admin(
        reqwest::Method::DELETE,
        &format!("ranges/{}", range.id),
        None,
    );
    let subnet = s
        .subnets
        .iter()
        .find(|x| x.network == net("10.1.1.0/24"))
        .expect("subnet");
    r.admin(
        reqwest::Method::PATCH,
        &format!("subnets/{}", subnet.id),
        Some(json!({"vlan": 99})),
    );

    let mut screen = r.compare_screen();
    let events = r.compare_interact(&mut screen, |ui| {
        ui.click("Preview changes").expect("button");
    });
    assert!(
        events
            .iter()
            .any(|e| matches!(e, compare::Event::Preview(id) if *id == r.service))
    );
    // What the console does on that event: the engine's plan in the Preview dialog.
    let plan = r
        .runtime
        .block_on(r.engine.preview(r.service))
        .expect("preview");
    let mut dialog = Preview::new(r.service, "IPAM One".into());
    dialog.state = PreviewState::Ready(plan.summary.clone());
    let rows = preview::preview_rows(&plan.summary);
    assert!(!rows.is_empty());
    assert!(rows[0].2.delete > 0, "deletions first: {rows:?}");
    let (shown, _) = interact(dialog.view(), |ui| {
        let all = texts(ui);
        rows.iter()
            .all(|(_, kind, _)| all.iter().any(|(c, b)| c == kind.label() && b.is_some()))
    });
    assert!(shown, "every planned object type is listed");

    // Per object: the list the console shows under the counts, and its filter.
    let (view, plan_again) = r
        .runtime
        .block_on(r.engine.compare(r.service))
        .expect("compare");
    dialog.objects = Some(fabric_console::sync::review::review(
        "IPAM One",
        &view,
        &plan_again,
    ));
    let all = dialog.shown_objects();
    assert!(all.len() >= 2, "{all:?}");
    let vlan_line = "      VLAN: 11 → 99";
    assert!(
        all.iter()
            .any(|(_, lines)| lines.iter().any(|l| l == vlan_line)),
        "{all:?}"
    );
    let (_, typed) = interact(dialog.view(), |ui| {
        ui.click(iced_test::selector::id(preview::FILTER_INPUT))
            .expect("filter box");
        ui.typewrite("vlan");
    });
    for m in typed {
        let _ = dialog.update(m);
    }
    assert_eq!(dialog.filter, "vlan");
    let filtered = dialog.shown_objects();
    assert!(
        !filtered.is_empty() && filtered.len() < all.len(),
        "{filtered:?}"
    );
    assert!(
        filtered
            .iter()
            .all(|(_, lines)| lines.iter().any(|l| l.to_lowercase().contains("vlan")))
    );
    let (shown, _) = interact(dialog.view(), |ui| {
        texts(ui).iter().any(|(t, b)| t == vlan_line && b.is_some())
    });
    assert!(shown, "the filtered list shows the VLAN change");

    let job = r.sync();
    assert_eq!(job.result, JobResult::Succeeded, "{:?}", job.errors);
    let total = |side: Side| {
        rows.iter()
            .filter(|x| x.0 == side)
            .fold([0u32; 3], |mut t, x| {
                for (sum, n) in t.iter_mut().zip([x.2.delete, x.2.create, x.2.update]) {
                    *sum += n;
                }
                t
            })
    };
    let ipam = total(Side::Ipam);
    let console = total(Side::Console);
    let c = &job.counts;
    assert_eq!(
        [c.ipam_deleted, c.ipam_created, c.ipam_updated],
        ipam,
        "IPAM side: {c:?} vs {rows:?}"
    );
    assert_eq!(
        [c.console_deleted, c.console_created, c.console_updated],
        console,
        "console side: {c:?} vs {rows:?}"
    );
    assert!(r.sync().counts.total_changes() == 0);
}

// ---------------------------------------------------------------- fabric administration

struct Screen {
    runtime: tokio::runtime::Runtime,
    store: FabricStore,
    fabric: Arc<Fabric>,
    admin: Admin,
    site: Id,
}

fn admin_screen() -> Screen {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let store = FabricStore::open_in_memory().expect("store");
    let (_, _, site, _) = fixture(&store);
    let fabric = store.fabric();
    Screen {
        runtime,
        store,
        fabric,
        admin: Admin::default(),
        site,
    }
}

impl Screen {
    fn interact<T>(&mut self, f: impl FnOnce(&mut Simulator<'_, admin::Message>) -> T) -> T {
        let fabric = self.fabric.clone();
        let (out, messages) = {
            // The list above its details pane, as the Fabric workspace shows them.
            let mut layers: Vec<Element<'_, admin::Message>> = vec![
                iced::widget::column![
                    self.admin.list(&fabric, &Tab::ALL),
                    self.admin.details(&fabric)
                ]
                .into(),
            ];
            if let Some(m) = self.admin.modal(&fabric) {
                layers = vec![m];
            }
            interact(layers.remove(0), f)
        };
        for m in messages {
            self.send(m);
        }
        out
    }

    fn send(&mut self, m: admin::Message) {
        let (task, event) = self.admin.update(m, &self.fabric.clone(), &self.store);
        if let Some(admin::Event::FabricChanged(f, _)) = event {
            self.fabric = f;
        }
        for m in run(&self.runtime, task) {
            self.send(m);
        }
    }

    fn shows(&mut self, needle: &str) -> bool {
        self.interact(|ui| {
            texts(ui)
                .iter()
                .any(|(t, b)| t.contains(needle) && b.is_some())
        })
    }
}

#[test]
fn a_logical_network_created_in_its_dialog_appears_in_the_list() {
    let mut s = admin_screen();
    s.interact(|ui| {
        ui.click("Create Logical Network...").expect("create");
    });
    assert!(s.admin.object_dialog().is_some());
    assert!(s.shows("Create Logical Network"));
    s.interact(|ui| {
        ui.click(selector::id(admin::logical_network::NAME_INPUT))
            .expect("name");
        ui.typewrite("Corp-Frontend");
        // The radio sits at the left of its line: click the circle.
        let line = ui
            .find(selector::id(admin::logical_network::isolation_option(1)))
            .expect("isolation")
            .bounds();
        ui.point_at(iced::Point::new(line.x + 7.0, line.center_y()));
        ui.simulate(iced_test::simulator::click());
    });
    s.interact(|ui| {
        ui.click("OK").expect("OK");
    });
    assert!(
        s.admin.object_dialog().is_none(),
        "the dialog closes once saved"
    );
    let saved = s.store.fabric();
    let ln = saved
        .logical_networks
        .values()
        .find(|l| l.name == "Corp-Frontend")
        .expect("stored");
    assert_eq!(ln.isolation, LogicalNetworkIsolation::NetworkVirtualization);
    assert!(s.shows("Corp-Frontend"), "the list shows the new network");

    // A duplicate name is refused at the field while typing, and nothing is saved.
    s.interact(|ui| {
        ui.click("Create Logical Network...").expect("create");
    });
    s.interact(|ui| {
        ui.click(selector::id(admin::logical_network::NAME_INPUT))
            .expect("name");
        ui.typewrite("corp-frontend");
    });
    assert!(s.shows("Name \"corp-frontend\" is already used by another logical network"));
    s.interact(|ui| {
        ui.click("OK").expect("OK");
    });
    assert!(s.admin.object_dialog().is_some());
    assert_eq!(s.store.fabric().logical_networks.len(), 2);
}

#[test]
fn an_invalid_pool_shows_the_error_at_the_field_and_is_not_saved() {
    let mut s = admin_screen();
    let before = s.store.fabric();
    s.interact(|ui| {
        ui.click("IP Pools").expect("tab");
    });
    s.interact(|ui| {
        ui.click("Create IP Pool...").expect("create");
    });
    // Choose the network site in its list; its first subnet is chosen with it.
    s.interact(|ui| choose(ui, admin::ip_pool::OWNER_LIST, 0));
    assert_eq!(
        s.admin
            .object_dialog()
            .map(|d| matches!(&d.form, admin::Form::IpPool(p) if p.owner == Some(s.site))),
        Some(true)
    );
    s.interact(|ui| {
        ui.click(selector::id(admin::ip_pool::NAME_INPUT))
            .expect("name");
        ui.typewrite("Seattle pool");
        ui.click(selector::id(admin::ip_pool::START_INPUT))
            .expect("start");
        ui.typewrite("10.1.0.210");
        ui.click(selector::id(admin::ip_pool::END_INPUT))
            .expect("end");
        ui.typewrite("10.9.9.9");
    });
    const ERROR: &str =
        "Range end 10.9.9.9 is outside subnet 10.1.0.0/24. Choose an address inside the subnet.";
    let (end_box, error, next_box) = s.interact(|ui| {
        let end_box = ui
            .find(selector::id(admin::ip_pool::END_INPUT))
            .expect("end")
            .bounds();
        let next_box = ui
            .find(selector::id(admin::ip_pool::VIPS_INPUT))
            .expect("vips")
            .bounds();
        let error = texts(ui)
            .into_iter()
            .find(|(t, _)| t == ERROR)
            .and_then(|(_, b)| b);
        (end_box, error, next_box)
    });
    let error = error.expect("the error is shown");
    assert!(
        error.y >= end_box.y + end_box.height - 1.0 && error.y < next_box.y,
        "right under Range end: {error:?} {end_box:?}"
    );
    assert!(
        (error.x - end_box.x).abs() < 2.0,
        "aligned with the field: {error:?} {end_box:?}"
    );
    // The start overlaps nothing and is not marked.
    assert!(!s.shows("Range start 10.1.0.210"));
    s.interact(|ui| {
        ui.click("OK").expect("OK");
    });
    assert!(
        s.admin.object_dialog().is_some_and(|d| !d.saving),
        "not saved"
    );
    assert_eq!(*s.store.fabric(), *before, "nothing was saved");
    // An address that does not parse is named as typed.
    s.interact(|ui| {
        ui.click(selector::id(admin::ip_pool::DNS_INPUT))
            .expect("dns");
        ui.typewrite("10.0.0.53, dns1");
    });
    assert!(s.shows("DNS servers: \"dns1\" is not an IP address"));
    // Fixed, it saves and appears in the list.
    let dialog = s.admin.object_dialog_mut().expect("dialog");
    let fabric = s.fabric.clone();
    dialog.update(
        admin::FormMessage::IpPool(admin::ip_pool::Message::RangeEnd("10.1.0.250".into())),
        &fabric,
    );
    dialog.update(
        admin::FormMessage::IpPool(admin::ip_pool::Message::DnsServers("10.0.0.53".into())),
        &fabric,
    );
    s.interact(|ui| {
        ui.click("OK").expect("OK");
    });
    assert!(s.admin.object_dialog().is_none());
    assert!(
        s.store
            .fabric()
            .ip_pools
            .values()
            .any(|p| p.name == "Seattle pool" && p.range_end == ip("10.1.0.250"))
    );
    assert!(s.shows("Seattle pool"));
}

#[test]
fn delete_says_what_depends_and_deletes_it_all_at_once() {
    let mut s = admin_screen();
    s.interact(|ui| {
        ui.click("Backend").expect("row");
    });
    s.interact(|ui| {
        ui.click("Delete").expect("delete");
    });
    assert!(s.shows("These depend on it and are deleted with it (2)"));
    assert!(s.shows("Backend_Seattle") && s.shows("Backend pool"));
    s.interact(|ui| {
        ui.click("Cancel").expect("cancel");
    });
    assert_eq!(
        s.store.fabric().logical_networks.len(),
        1,
        "Cancel keeps it"
    );
    s.interact(|ui| {
        ui.click("Backend").expect("row");
    });
    s.interact(|ui| {
        ui.click("Delete").expect("delete");
    });
    s.interact(|ui| {
        ui.click("Delete").expect("confirm");
    });
    let f = s.store.fabric();
    assert!(f.logical_networks.is_empty() && f.network_sites.is_empty() && f.ip_pools.is_empty());
    // A host group used by a site cannot go, and says which site holds it.
    let mut s = admin_screen();
    s.interact(|ui| {
        ui.click("Host Groups").expect("tab");
    });
    s.interact(|ui| {
        ui.click("Seattle").expect("row");
    });
    s.interact(|ui| {
        ui.click("Delete").expect("delete");
    });
    assert!(s.shows("cannot be deleted while these use it"));
    assert!(s.shows("Backend_Seattle"));
}

// ---------------------------------------------------------------- in the console

/// The whole console on the rig's store, engine and IPAM server.
struct Console {
    rig: Rig,
    app: App,
    events: tokio::sync::broadcast::Receiver<EngineEvent>,
}

fn console() -> Console {
    let rig = rig();
    let events = rig.engine.subscribe();
    let ctx = AppContext::new(
        rig.store.clone(),
        rig.secrets.clone(),
        Arc::new(ProviderRegistry::default_registry()),
        rig.engine.clone(),
    );
    let mut app = App::with_context(ctx, Preferences::default());
    app.set_window_size(WINDOW);
    Console { rig, app, events }
}

impl Console {
    fn send(&mut self, m: Message) {
        let task = self.app.update(m);
        for m in run(&self.rig.runtime, task) {
            self.send(m);
        }
    }

    fn interact<T>(&mut self, f: impl FnOnce(&mut Simulator<'_, Message>) -> T) -> T {
        let (out, messages) = interact(self.app.view(), f);
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

    /// Clicks the last text equal to `label` (a menu over the tree, a row under a heading).
    fn click_last(&mut self, label: &str) {
        let label = label.to_string();
        self.interact(|ui| {
            let at = last_text_center(ui, &label);
            ui.point_at(at);
            ui.simulate(iced_test::simulator::click());
        });
    }

    fn right_click_last(&mut self, label: &str) {
        let label = label.to_string();
        self.interact(|ui| {
            let at = last_text_center(ui, &label);
            ui.point_at(at);
            ui.simulate([
                iced_test::core::Event::Mouse(iced::mouse::Event::CursorMoved { position: at }),
                iced_test::core::Event::Mouse(iced::mouse::Event::ButtonPressed(
                    iced::mouse::Button::Right,
                )),
                iced_test::core::Event::Mouse(iced::mouse::Event::ButtonReleased(
                    iced::mouse::Button::Right,
                )),
            ]);
        });
    }

    fn shows(&mut self, needle: &str) -> bool {
        let needle = needle.to_string();
        self.interact(|ui| {
            texts(ui)
                .iter()
                .any(|(t, b)| t.contains(needle.as_str()) && b.is_some())
        })
    }

    fn key(&mut self, key: DialogKey, captured: bool) {
        self.send(Message::DialogKey(key, captured));
    }

    /// Feeds engine events to the console until `done` says so (or 20 s pass).
    fn pump_until(&mut self, mut done: impl FnMut(&App) -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done(&self.app) {
            assert!(
                std::time::Instant::now() < deadline,
                "the engine did not get there in time"
            );
            let next = self.rig.runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(200), self.events.recv())
                    .await
            });
            if let Ok(Ok(event)) = next {
                self.send(Message::Engine(EngineNotice::Event(event)));
            }
        }
    }
}

#[test]
fn the_console_opens_the_side_by_side_view_and_a_decision_reaches_the_engine() {
    let mut c = console();
    c.rig.make_conflict();
    c.rig.sync();
    // Right-click the service's row ▸ Side-by-side view.
    c.right_click_last("IPAM One");
    assert!(c.app.context_menu_open());
    c.click_last("Side-by-side view");
    let screen = c.app.compare().expect("the side-by-side view is open");
    assert_eq!(
        screen.state,
        compare::LoadState::Ready,
        "the comparison loaded"
    );
    assert!(c.shows("Side-by-side: console ↔ IPAM One"));
    c.click("Conflict (1)");
    c.click("IP Address Range");
    c.click("Keep console value");
    let service = c.rig.service;
    assert!(c.app.commands().iter().any(|cmd| matches!(
        cmd,
        EngineCommand::ResolveConflict { service: s, resolution: Resolution::KeepConsole, .. } if *s == service
    )));
    assert!(
        c.shows("DNS suffix: keeping the console value"),
        "the decision stays in view until the sync"
    );
    // Refresh now: the sync applies the decision and the view reloads by itself.
    c.click("Refresh now");
    c.pump_until(|app| {
        app.compare().is_some_and(|s| {
            s.state == compare::LoadState::Ready
                && s.rows().iter().all(|r| r.status == RowStatus::InSync)
        })
    });
    assert_eq!(
        c.rig.store.fabric().ip_pools[&c.rig.pool]
            .settings
            .dns_suffix,
        "console.contoso.com"
    );
    // Preview changes opens the preview of the next sync.
    c.click("Preview changes");
    assert!(
        matches!(c.app.modal(), Some(fabric_console::ui::app::Modal::Preview(p)) if matches!(p.state, PreviewState::Ready(_)))
    );
    assert!(c.shows("Nothing to do: the console and the IPAM server are in sync."));
    c.send(Message::Key(fabric_console::ui::app::KeyAction::Escape));
    assert!(c.app.modal().is_none());
    // Enter presses the preview's default button, Close.
    c.click("Preview changes");
    assert!(c.app.modal().is_some());
    c.send(Message::Key(fabric_console::ui::app::KeyAction::Submit));
    assert!(c.app.modal().is_none(), "Enter closed the preview");
    // Back to the list.
    c.click("◂ Network Service");
    assert!(c.app.compare().is_none());
}

#[test]
fn fabric_dialogs_open_from_the_fabric_pane_and_answer_enter_and_escape() {
    let mut c = console();
    c.click("Logical Networks");
    assert!(
        c.shows("Create Logical Network..."),
        "the fabric pane's node shows the administration list"
    );
    c.click("Create Logical Network...");
    c.interact(|ui| {
        ui.click(selector::id(admin::logical_network::NAME_INPUT))
            .expect("name");
        ui.typewrite("Storage");
    });
    // Enter saves (the name box does not keep Enter).
    c.key(DialogKey::Submit, false);
    assert!(
        !c.app.admin().is_modal(),
        "Enter saved and closed the dialog"
    );
    assert!(
        c.app
            .fabric()
            .logical_networks
            .values()
            .any(|l| l.name == "Storage")
    );
    assert!(c.shows("Storage"));
    assert!(c.shows("Logical network \"Storage\" was created."));
    // Escape cancels, even when the name box has the key.
    c.click("Create Logical Network...");
    c.interact(|ui| {
        ui.click(selector::id(admin::logical_network::NAME_INPUT))
            .expect("name");
        ui.typewrite("Never saved");
    });
    c.key(DialogKey::Cancel, true);
    assert!(!c.app.admin().is_modal());
    assert!(
        !c.app
            .fabric()
            .logical_networks
            .values()
            .any(|l| l.name == "Never saved")
    );
    // Delete asks and says what depends on the selected network.
    c.click("Backend");
    c.send(Message::Key(
        fabric_console::ui::app::KeyAction::RemoveSelected,
    ));
    assert!(c.shows("These depend on it and are deleted with it (2)"));
    c.key(DialogKey::Cancel, false);
    assert!(
        c.app
            .fabric()
            .logical_networks
            .values()
            .any(|l| l.name == "Backend")
    );
    // Host groups live under Servers.
    c.click("Servers");
    assert!(c.shows("Create Host Group..."));
}

#[test]
fn export_and_import_from_the_ribbon_with_a_typed_path_and_every_problem_listed() {
    let mut c = console();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("fabric.json");
    // Export...: no file chooser answers on this machine's desktop, so a path is typed.
    let _ = c.app.update(Message::Ribbon(
        fabric_console::ui::widget::ribbon::Message::Action(
            fabric_console::ui::widget::ribbon::Action::Export,
        ),
    ));
    assert!(c.app.exchange().is_some());
    c.send(Message::Exchange(exchange::Message::Picked(
        exchange::Picked::Unavailable(
            "the desktop's file chooser service (xdg-desktop-portal) is not running".into(),
        ),
    )));
    assert!(c.shows("No file chooser answered: the desktop's file chooser service (xdg-desktop-portal) is not running. Type the file's full path instead."));
    let path = file.display().to_string();
    c.interact(|ui| {
        ui.click(selector::id(exchange::PATH_INPUT)).expect("path");
        ui.typewrite(&path);
    });
    c.key(DialogKey::Submit, false);
    assert!(
        c.app.exchange().is_none(),
        "{:?}",
        c.app.exchange().map(|x| &x.stage)
    );
    assert!(c.shows("The fabric was exported to"));
    let text = std::fs::read_to_string(&file).expect("written");
    assert!(!text.contains(&c.rig.token), "no secret in the export");

    // Import... of a broken file: every problem is listed and nothing changes.
    let broken = dir.path().join("broken.json");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    doc["version"] = json!(7);
    if let Some(pools) = doc["fabric"]["ip_pools"].as_object_mut() {
        for p in pools.values_mut() {
            p["range_end"] = json!("10.9.9.9");
        }
    }
    std::fs::write(&broken, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    let before = c.rig.store.fabric();
    let _ = c.app.update(Message::Ribbon(
        fabric_console::ui::widget::ribbon::Message::Action(
            fabric_console::ui::widget::ribbon::Action::Import,
        ),
    ));
    c.send(Message::Exchange(exchange::Message::Picked(
        exchange::Picked::File(broken.clone()),
    )));
    assert!(
        c.shows("The fabric was not imported: 2 problems in"),
        "{:?}",
        c.app.exchange().map(|x| &x.stage)
    );
    assert!(c.shows("The file's version is 7"));
    assert!(c.shows("Range end 10.9.9.9 is outside subnet 10.1.0.0/24"));
    assert_eq!(*c.rig.store.fabric(), *before, "nothing changed");
    c.key(DialogKey::Cancel, false);
    assert!(c.app.exchange().is_none());

    // Import... of a good file: confirmed, replaced, and the engine follows its services.
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let ln = c.rig.ln.to_string();
    doc["fabric"]["logical_networks"][&ln]["description"] = json!("imported");
    let good = dir.path().join("good.json");
    std::fs::write(&good, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    let _ = c.app.update(Message::Ribbon(
        fabric_console::ui::widget::ribbon::Message::Action(
            fabric_console::ui::widget::ribbon::Action::Import,
        ),
    ));
    c.send(Message::Exchange(exchange::Message::Picked(
        exchange::Picked::File(good),
    )));
    assert!(c.shows("is a valid fabric export with"));
    c.click("Replace the fabric");
    assert!(c.app.exchange().is_none());
    assert_eq!(
        c.rig.store.fabric().logical_networks[&c.rig.ln].description,
        "imported"
    );
    assert!(c.shows("The fabric was imported from"));
    assert!(
        c.app
            .commands()
            .iter()
            .any(|cmd| matches!(cmd, EngineCommand::UpdateService(s) if s.id == c.rig.service))
    );
}

/// Runs the widget operations of the tasks the given keys return, in order, on one live widget
/// tree of the console (as the runtime does), and says which widget has the focus after each.
fn focus_after(c: &mut Console, keys: &[DialogKey]) -> Vec<Option<iced::widget::Id>> {
    use iced_test::core::renderer::Headless;
    use iced_test::core::widget::operation::Outcome;
    use iced_test::runtime::user_interface::{Cache, UserInterface};
    let tasks: Vec<Task<Message>> = keys
        .iter()
        .map(|k| c.app.update(Message::DialogKey(*k, false)))
        .collect();
    let backend = std::env::var("ICED_TEST_BACKEND").ok();
    let mut renderer = futures::executor::block_on(iced::Renderer::new(
        iced::Font::with_name("Fira Sans"),
        iced::Pixels(16.0),
        backend.as_deref(),
    ))
    .expect("headless renderer");
    let mut ui = UserInterface::build(c.app.view(), WINDOW, Cache::default(), &mut renderer);
    let mut focused = Vec::new();
    for task in tasks {
        // Each operation is run and dropped before the next is asked for: a widget task ends
        // only when its operation is gone.
        if let Some(mut stream) = iced_test::runtime::task::into_stream(task) {
            use futures::StreamExt;
            while let Some(action) = c.rig.runtime.block_on(stream.next()) {
                if let iced_test::runtime::Action::Widget(mut op) = action {
                    loop {
                        ui.operate(&renderer, op.as_mut());
                        match op.finish() {
                            Outcome::Chain(next) => op = next,
                            _ => break,
                        }
                    }
                }
            }
        }
        let mut find = iced_test::Selector::find(selector::is_focused());
        ui.operate(
            &renderer,
            &mut iced_test::core::widget::operation::black_box(&mut find),
        );
        let id = match iced_test::core::widget::Operation::finish(&find) {
            Outcome::Some(Some(
                iced_test::selector::Target::TextInput { id, .. }
                | iced_test::selector::Target::Focusable { id, .. },
            )) => id,
            _ => None,
        };
        focused.push(id);
    }
    focused
}

#[test]
fn tab_moves_through_the_open_dialog_only() {
    let mut c = console();
    // The side-by-side view's search box is on the screen under the dialog.
    c.right_click_last("IPAM One");
    c.click_last("Side-by-side view");
    assert!(c.app.compare().is_some());
    c.click("Logical Networks");
    c.click("Create Logical Network...");
    let name = iced::widget::Id::new(admin::logical_network::NAME_INPUT);
    let description = iced::widget::Id::new(admin::logical_network::DESCRIPTION_INPUT);
    let seen = focus_after(
        &mut c,
        &[DialogKey::Next, DialogKey::Next, DialogKey::Previous],
    );
    assert_eq!(
        seen,
        vec![Some(name.clone()), Some(description), Some(name)]
    );

    // With the side-by-side view open and no dialog, Ctrl+F goes to its search box; Tab stays
    // inside a dialog opened over it.
    let mut c = console();
    c.right_click_last("IPAM One");
    c.click_last("Side-by-side view");
    let seen = focus_after(&mut c, &[DialogKey::Find]);
    assert_eq!(
        seen,
        vec![Some(iced::widget::Id::new(compare::SEARCH_INPUT))]
    );
    c.send(Message::Key(
        fabric_console::ui::app::KeyAction::AddNetworkService,
    ));
    assert!(c.app.wizard().is_some());
    let seen = focus_after(
        &mut c,
        &[
            DialogKey::Next,
            DialogKey::Next,
            DialogKey::Next,
            DialogKey::Next,
        ],
    );
    let search = iced::widget::Id::new(compare::SEARCH_INPUT);
    assert!(
        seen.iter().all(|f| f.as_ref() != Some(&search)),
        "Tab never leaves the wizard: {seen:?}"
    );
    assert!(
        seen.iter().any(|f| f.is_some()),
        "Tab reaches the wizard's fields: {seen:?}"
    );
}

// ---------------------------------------------------------------- addresses granted from pools

#[test]
fn a_pool_grants_and_revokes_addresses_in_its_details() {
    use fabric_console::ui::dialog::admin::grants::{ADDRESS_INPUT, HOLDER_INPUT};
    let mut s = admin_screen();
    s.send(admin::Message::Tab(Tab::IpPools));
    let pool = *s.fabric.ip_pools.keys().next().expect("the fixture's pool");
    s.send(admin::Message::Select(pool));
    assert!(s.shows("Granted addresses (0)"));

    // The next free address, to a VM adapter.
    s.interact(|ui| {
        ui.click(selector::id(HOLDER_INPUT)).expect("holder");
        ui.typewrite("web-01/eth0");
        ui.click("Grant").expect("grant");
    });
    assert!(s.shows("Granted addresses (1)"), "the list shows the grant");
    assert!(s.shows("Granted 10.1.0.10 to web-01/eth0."));
    assert!(s.shows("10.1.0.10"));
    assert_eq!(s.store.grants(Some(pool)).unwrap().len(), 1);

    // A taken address is refused at the form, naming its holder; nothing is granted.
    s.interact(|ui| {
        ui.click(selector::id(HOLDER_INPUT)).expect("holder");
        ui.typewrite("web-02/eth0");
        ui.click(selector::id(ADDRESS_INPUT)).expect("address");
        ui.typewrite("10.1.0.10");
        ui.click("Grant").expect("grant");
    });
    assert!(
        s.interact(|ui| texts(ui)
            .iter()
            .any(|(t, _)| t.contains("already granted to web-01/eth0"))),
        "the refusal names the holder"
    );
    assert_eq!(s.store.grants(Some(pool)).unwrap().len(), 1);

    // The usage column of the list counts it.
    assert!(s.shows("  1 %"), "1 of 191 addresses used rounds to 1 %");

    s.interact(|ui| {
        ui.click("Revoke").expect("revoke");
    });
    assert!(s.shows("Granted addresses (0)"));
    assert!(s.store.grants(Some(pool)).unwrap().is_empty());
}

#[test]
fn addresses_in_use_on_the_ipam_side_are_listed_and_never_granted() {
    use fabric_console::ui::dialog::admin::grants::{ADDRESS_INPUT, HOLDER_INPUT};
    let mut s = admin_screen();
    let pool = *s.fabric.ip_pools.keys().next().expect("the fixture's pool");
    // As a sync records what the IPAM server holds in the pool (the service is gone from this
    // fabric: the list says so rather than name a server).
    s.store
        .replace_ipam_held(
            uuid::Uuid::new_v4(),
            &[(pool, "10.1.0.10".parse().unwrap(), "printer-3".into())],
        )
        .unwrap();
    s.send(admin::Message::Tab(Tab::IpPools));
    s.send(admin::Message::Select(pool));
    assert!(s.shows("In use on the IPAM side (1)"));
    assert!(s.shows("printer-3"));
    assert!(s.shows("Never granted by the console"));

    // Asked for, it is refused naming its holder; the next free address skips it.
    s.interact(|ui| {
        ui.click(selector::id(HOLDER_INPUT)).expect("holder");
        ui.typewrite("web-01/eth0");
        ui.click(selector::id(ADDRESS_INPUT)).expect("address");
        ui.typewrite("10.1.0.10");
        ui.click("Grant").expect("grant");
    });
    assert!(
        s.interact(|ui| texts(ui)
            .iter()
            .any(|(t, _)| t.contains("is in use on the IPAM side (printer-3)"))),
        "the refusal names the holder"
    );
    assert!(s.store.grants(Some(pool)).unwrap().is_empty());
    s.send(admin::Message::Grants(
        fabric_console::ui::dialog::admin::grants::GrantMessage::Address(String::new()),
    ));
    s.interact(|ui| {
        ui.click("Grant").expect("grant");
    });
    let granted = s.store.grants(Some(pool)).unwrap();
    assert_eq!(granted.len(), 1, "the next free address is granted");
    assert_ne!(granted[0].address.to_string(), "10.1.0.10");
    assert!(s.shows(&format!("Granted {} to web-01/eth0.", granted[0].address)));
}

#[test]
fn the_near_exhaustion_filter_keeps_only_full_ranges() {
    use fabric_console::fabric::store::{Consumer, GrantRequest};
    let mut s = admin_screen();
    // A second, small pool in the site's other subnet, 10 of its 11 addresses granted.
    let mut spare = s.fabric.ip_pools.values().next().unwrap().clone();
    spare.id = Uuid::new_v4();
    spare.name = "Spare pool".into();
    spare.scope = PoolScope::Site {
        site: s.site,
        subnet: net("10.1.1.0/24"),
    };
    spare.range_start = ip("10.1.1.10");
    spare.range_end = ip("10.1.1.20");
    spare.settings.gateways = vec![Gateway::Address {
        address: ip("10.1.1.1"),
        metric: 1,
    }];
    s.fabric = s
        .store
        .apply(&[FabricChange::Put(FabricObject::IpPool(spare.clone()))])
        .unwrap();
    let requests: Vec<GrantRequest> = (0..10)
        .map(|i| GrantRequest {
            pool: spare.id,
            address: None,
            holder: format!("vm-{i}/eth0"),
            consumer: Consumer::VmAdapter,
        })
        .collect();
    s.store.grant_batch(&requests).unwrap();
    s.send(admin::Message::Tab(Tab::IpPools));
    assert!(s.shows(" 91 %"), "10 of 11 used");
    assert!(s.shows("Backend pool") && s.shows("Spare pool"));
    s.interact(|ui| {
        ui.click("Near exhaustion").expect("filter");
    });
    assert!(s.shows("Spare pool"));
    assert!(!s.shows("Backend pool"), "a pool with room is filtered out");
    assert!(s.shows("1 of 2 static IP address pools near exhaustion (≥ 80 % used)"));
    // The site holding both pools: 10 of 202 addresses, far from full.
    s.send(admin::Message::Tab(Tab::NetworkSites));
    assert!(s.shows("None of the network sites is 80 % used or more."));
}

#[test]
fn a_pool_edit_that_would_reserve_a_granted_address_is_refused_in_its_dialog() {
    use fabric_console::fabric::store::{Consumer, GrantRequest};
    let mut s = admin_screen();
    let pool = *s.fabric.ip_pools.keys().next().expect("the fixture's pool");
    s.store
        .grant(&GrantRequest {
            pool,
            address: Some(ip("10.1.0.50")),
            holder: "vm-x/eth0".into(),
            consumer: Consumer::VmAdapter,
        })
        .unwrap();
    s.send(admin::Message::Tab(Tab::IpPools));
    s.send(admin::Message::Open(pool));
    assert!(s.admin.object_dialog().is_some());
    s.interact(|ui| {
        ui.click(selector::id(admin::ip_pool::RESERVED_INPUT))
            .expect("reserved");
        ui.typewrite("10.1.0.50");
    });
    s.interact(|ui| {
        ui.click("OK").expect("OK");
    });
    assert!(
        s.admin.object_dialog().is_some(),
        "the dialog stays open with the refusal"
    );
    assert!(
        s.interact(|ui| texts(ui)
            .iter()
            .any(|(t, _)| t.contains("10.1.0.50 (vm-x/eth0)") && t.contains("Revoke"))),
        "the refusal names the grant and what to do"
    );
    assert!(
        s.store.fabric().ip_pools[&pool]
            .settings
            .reserved
            .is_empty(),
        "nothing was saved"
    );
}
