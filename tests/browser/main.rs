//! The console in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, both from Debian: `scripts/test` installs them). A
//! reviewer signs in, filters the queue, registers one case and rejects
//! another with a reason, sees the city map drawn (cells, a track, case
//! markers) and a collector's report with its four rates. Screenshots of
//! each page land in `target/browser-artefacts/`.
//!
//! Without chromedriver the test says SKIPPED, unless
//! `FIELD_BROWSER_REQUIRED` is set (as `scripts/test` does): then it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use field_e2e::server::Server;
use field_e2e::{gpx_track, grid_geojson, png};

const TOP_ROW: [&str; 3] = ["330109001001001", "330109001001002", "330109001001003"];
const DAY: &str = "2025-11-26";

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// chromedriver on a loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver and returns once it says it is listening.
    fn start(program: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut child = Command::new(program)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("chromedriver starts");
        let out = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(out).lines();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) if line.contains("started successfully") => break,
                Some(Ok(line)) => seen.push(line),
                _ => panic!("chromedriver stopped before listening: {seen:?}"),
            }
        }
        // Keep draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn artefacts() -> PathBuf {
    let dir = std::env::var_os("FIELD_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artefacts")
        });
    std::fs::create_dir_all(&dir).expect("artefacts directory");
    dir
}

/// Notes how long the test has run at each step, in
/// `target/browser-artefacts/timings.txt` (for reading a slow CI run).
fn mark(step: &str) {
    use std::io::Write;
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let start = START.get_or_init(std::time::Instant::now);
    let line = format!("{:8.2} s  {step}\n", start.elapsed().as_secs_f64());
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(artefacts().join("timings.txt"))
        .and_then(|mut f| f.write_all(line.as_bytes()));
}

async fn shot(c: &Client, name: &str) {
    mark(name);
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(artefacts().join(name), png).expect("screenshot saved");
}

async fn find(c: &Client, css: &str) -> Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

/// Runs `act` (a click or a submit that loads a new page) and returns once
/// the old page is gone (its root element no longer answers) and the new one
/// has loaded. WebDriver's own
/// wait covers `goto`, not a navigation a form starts.
async fn navigating<F, Fut>(c: &Client, act: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let old = c.find(Locator::Css("html")).await.expect("a page");
    act().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match old.tag_name().await {
            // Stale, or (mid-navigation) "node does not belong to the
            // document": either way the old page is gone.
            Err(_) => break,
            Ok(_) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the page did not change"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Loaded: images and scripts included (the `load` event has fired).
    until(c, "return document.readyState === 'complete'").await;
}

/// Polls a script until it returns true (20 s at most).
async fn until(c: &Client, script: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = c.execute(script, vec![]).await;
        if matches!(v, Ok(serde_json::Value::Bool(true))) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never true: {script}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn text(c: &Client, css: &str) -> String {
    find(c, css).await.text().await.expect("text")
}

async fn count(c: &Client, css: &str) -> usize {
    c.find_all(Locator::Css(css)).await.expect("find_all").len()
}

struct World {
    server: Server,
    reviewer_token: String,
    collector_token: String,
    /// Reported in this order: a `<script>` description, a poster, a lid in another cell.
    cases: Vec<String>,
}

/// A 3×3 grid, one collector on its top row with a morning's track and
/// three cases with photos, one reviewer.
fn world() -> World {
    let server = Server::start();
    server.import_grid(&grid_geojson(false));
    let d = server.enrolled_device(&server.add_user("赵", "collector", &TOP_ROW));
    let reviewer = server.enrolled_device(&server.add_user("审核", "reviewer", &[]));
    let gpx = d.file("day.gpx", gpx_track(2000).as_bytes());
    d.ok(&["track", "import", gpx.to_str().expect("path")]);
    let mut cases = Vec::new();
    for (i, (desc, lon, at)) in [
        (
            "<script>window.__xss=1</script> lid",
            "120.2605",
            "09:00:00",
        ),
        ("poster on a pole", "120.2612", "09:10:00"),
        ("lid missing", "120.2625", "09:20:00"),
    ]
    .into_iter()
    .enumerate()
    {
        let photo = d.file(&format!("p{i}.png"), &png(40 + i as u32));
        let at = format!("{DAY}T{at}+08:00");
        let id = d.report(("BJ0101", lon, "30.1895"), desc, &photo, Some(&at));
        cases.push(id);
    }
    d.ok(&["sync"]);
    World {
        reviewer_token: reviewer.token(),
        collector_token: d.token(),
        server,
        cases,
    }
}

/// A browser whose `Accept-Language` asks for `lang` first.
async fn connect(driver: &Driver, chromium: &Path, profile: &Path, lang: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1200",
                format!("--user-data-dir={}", profile.display()),
                format!("--lang={lang}"),
            ],
            "prefs": { "intl.accept_languages": lang },
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a WebDriver session in headless Chromium")
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/console/queue"))
        .await
        .expect("goto");
    // No session: the queue sends the browser to sign in.
    assert!(
        c.current_url()
            .await
            .expect("url")
            .path()
            .ends_with("/console/sign-in")
    );
    let form = c
        .form(Locator::Css("form[action='/console/sign-in']"))
        .await
        .expect("form");
    form.set_by_name("token", token).await.expect("token typed");
    navigating(c, || async { form.submit().await.expect("signed in") }).await;
}

async fn scenario(c: &Client, w: &World) {
    let base = w.server.url.trim_end_matches('/').to_string();

    // The browser asks for English first: the console answers in English.
    c.goto(&format!("{base}/console/sign-in"))
        .await
        .expect("sign-in page");
    assert_eq!(
        find(c, "html")
            .await
            .attr("lang")
            .await
            .expect("attr")
            .as_deref(),
        Some("en")
    );
    // A collector's token is refused.
    sign_in(c, &base, &w.collector_token).await;
    assert!(text(c, "p.error").await.contains("collector"));
    shot(c, "00-collector-refused.png").await;

    // The reviewer signs in and lands on the queue.
    sign_in(c, &base, &w.reviewer_token).await;
    assert!(text(c, "#count").await.starts_with("3 cases"));
    assert_eq!(count(c, "#queue tr[data-case]").await, 3);
    // The `<script>` a collector typed is text: shown, never run.
    let desc = text(c, &format!("tr[data-case='{}'] td.desc", w.cases[0])).await;
    assert!(desc.starts_with("<script>"), "{desc}");
    let ran = c
        .execute("return window.__xss === 1", vec![])
        .await
        .expect("js");
    assert_eq!(ran, serde_json::json!(false));
    // Thumbnails load through the session.
    let loaded = c
        .execute(
            "return Array.from(document.querySelectorAll('img.thumb')).filter(i => i.complete && i.naturalWidth > 0).length",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(loaded, serde_json::json!(3));
    shot(c, "01-queue.png").await;

    // Filter by cell: the third case is in the third cell.
    let form = c.form(Locator::Css("form#filters")).await.expect("filters");
    form.set_by_name("cell", TOP_ROW[2])
        .await
        .expect("cell typed");
    navigating(c, || async { form.submit().await.expect("filtered") }).await;
    assert!(text(c, "#count").await.starts_with("1 case ·"));
    // Reported at 09:20 in Shanghai: shown in the city's time, not UTC.
    let row = text(c, &format!("tr[data-case='{}']", w.cases[2])).await;
    assert!(row.contains("2025-11-26 09:20:00"), "{row}");
    let rows = c
        .find_all(Locator::Css("#queue tr[data-case]"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].attr("data-case").await.expect("attr").as_deref(),
        Some(w.cases[2].as_str())
    );
    shot(c, "02-queue-filtered.png").await;

    // Register it from the queue row; the queue comes back with its filter.
    let register = find(
        c,
        &format!("tr[data-case='{}'] button.register", w.cases[2]),
    )
    .await;
    navigating(c, || async { register.click().await.expect("register") }).await;
    let status = text(c, &format!("tr[data-case='{}'] td.status", w.cases[2])).await;
    assert_eq!(status, "registered");
    assert!(
        c.current_url()
            .await
            .expect("url")
            .query()
            .unwrap_or("")
            .contains("cell=")
    );

    // Reject the poster with a reason, from its case page.
    c.goto(&format!("{base}/console/cases/{}", w.cases[1]))
        .await
        .expect("case page");
    // The case's place on the map of its day, marked.
    find(c, "svg#map[data-ready='1']").await;
    assert_eq!(count(c, "svg#map circle.highlight").await, 1);
    find(
        c,
        "form.reject select[name='reason'] option[value='wrong_category']",
    )
    .await
    .click()
    .await
    .expect("reason");
    let reject = find(c, "form.reject button").await;
    navigating(c, || async { reject.click().await.expect("reject") }).await;
    assert_eq!(text(c, "#status").await, "rejected");
    assert!(text(c, "#history").await.contains("wrong_category"));
    // A rejected case offers no more actions.
    assert_eq!(count(c, "div.actions form").await, 0);
    shot(c, "03-case-rejected.png").await;

    // The map of the day: nine cells, the collector's track, three cases.
    c.goto(&format!("{base}/console/map?day={DAY}"))
        .await
        .expect("map");
    find(c, "svg#map[data-ready='1']").await;
    assert_eq!(count(c, "svg#map path.cell").await, 9);
    let tracks = c
        .find_all(Locator::Css("svg#map path.track"))
        .await
        .expect("tracks");
    assert_eq!(tracks.len(), 1);
    assert_eq!(
        tracks[0]
            .attr("data-collector")
            .await
            .expect("attr")
            .as_deref(),
        Some("赵")
    );
    assert_eq!(count(c, "svg#map circle.case").await, 3);
    // Drawn, not only present: the track has a real extent on screen.
    let extent = c
        .execute(
            "const b = document.querySelector('svg#map path.track').getBBox(); return b.width * b.height > 100",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(extent, serde_json::json!(true));
    // The top row was walked: some of its windows are covered.
    let covered = find(c, &format!("svg#map path.cell[data-code='{}']", TOP_ROW[0]))
        .await
        .attr("data-covered")
        .await
        .expect("attr")
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a number of windows");
    assert!(covered > 0, "covered windows in the walked cell");
    assert!(
        text(c, "#map-status")
            .await
            .starts_with("9 cells · 1 tracks · 3 cases")
    );
    shot(c, "04-map.png").await;

    // The collector's month: the four rates and the daily chart.
    c.goto(&format!(
        "{base}/console/report?collector=%E8%B5%B5&period=2025-11"
    ))
    .await
    .expect("report");
    for cell in ["td.coverage", "td.miss", "td.timeliness", "td.error"] {
        let t = text(c, &format!("section.report {cell}")).await;
        assert!(t.contains('(') && t.contains('/'), "{cell}: {t}");
    }
    assert!(text(c, "section.report td.coverage").await.contains('%'));
    assert!(count(c, "svg#chart polyline.series").await >= 1);
    // The explain lists name what counted: the rejection made above.
    let erroneous = text(c, "table.explain[data-list='erroneous_cases']").await;
    assert!(erroneous.contains("reason: wrong_category"), "{erroneous}");
    assert!(erroneous.contains(&w.cases[1]), "{erroneous}");
    assert!(text(c, "table.rates").await.contains("Coverage"));
    shot(c, "05-report.png").await;

    dashboard(c, &base, "City dashboard", "Total", "en").await;
}

/// The wall screen: today's figures, the heat map, and a refresh that
/// rewrites them in place without reloading.
async fn dashboard(c: &Client, base: &str, title: &str, total: &str, lang: &str) {
    c.goto(&format!("{base}/console/dashboard"))
        .await
        .expect("dashboard");
    assert_eq!(text(c, "h1").await, title);
    find(c, "svg#map[data-ready='1']").await;
    assert_eq!(count(c, "svg#map path.cell").await, 9);
    assert!(
        text(c, "#dash-classes tr[data-class='*']")
            .await
            .starts_with(total)
    );
    for id in [
        "dash-coverage",
        "dash-on-post",
        "dash-off-post",
        "dash-reported",
        "dash-tasks-due",
        "dash-tasks-late",
    ] {
        assert!(!text(c, &format!("#{id}")).await.is_empty(), "{id}");
    }
    let page = c.find(Locator::Css("html")).await.expect("page");
    c.execute("window.fieldDashboardRefresh(); return true", vec![])
        .await
        .expect("refresh");
    until(
        c,
        "return document.getElementById('dash').dataset.refreshed === '1'",
    )
    .await;
    // The same page, not a reload: the old root element still answers.
    assert!(page.tag_name().await.is_ok(), "refreshed in place");
    shot(c, &format!("06-dashboard-{lang}.png")).await;
}

/// The same console asked for in Chinese: every page in Chinese words.
async fn chinese(c: &Client, w: &World) {
    let base = w.server.url.trim_end_matches('/').to_string();
    sign_in(c, &base, &w.reviewer_token).await;
    assert_eq!(
        find(c, "html")
            .await
            .attr("lang")
            .await
            .expect("attr")
            .as_deref(),
        Some("zh-CN")
    );
    assert_eq!(text(c, "h1").await, "案卷受理");
    assert!(
        text(c, "#count").await.starts_with("共 3 件案卷"),
        "{}",
        text(c, "#count").await
    );
    let head = text(c, "#queue tr").await;
    assert!(
        head.contains("上报时间") && head.contains("采集员"),
        "{head}"
    );
    // The case registered and the case rejected in the English pass.
    assert_eq!(
        text(c, &format!("tr[data-case='{}'] td.status", w.cases[2])).await,
        "立案"
    );
    assert_eq!(
        text(c, &format!("tr[data-case='{}'] td.status", w.cases[1])).await,
        "不予立案"
    );
    // Times on the city's clock, in the Chinese way of writing them.
    let row = text(c, &format!("tr[data-case='{}']", w.cases[2])).await;
    assert!(row.contains("2025年11月26日 09:20:00"), "{row}");
    shot(c, "zh-01-queue.png").await;

    c.goto(&format!("{base}/console/cases/{}", w.cases[0]))
        .await
        .expect("case");
    find(c, "svg#map[data-ready='1']").await;
    assert!(text(c, "#map-status").await.contains("个网格"));
    assert!(
        text(c, "h2:last-of-type").await.contains("处理记录")
            || text(c, "body").await.contains("处理记录")
    );
    let register = c
        .execute(
            "return document.querySelector('form.register button').textContent",
            vec![],
        )
        .await
        .expect("js");
    assert_eq!(register, serde_json::json!("立案"));
    shot(c, "zh-02-case.png").await;

    c.goto(&format!("{base}/console/map?day={DAY}"))
        .await
        .expect("map");
    find(c, "svg#map[data-ready='1']").await;
    assert!(
        text(c, "#map-status")
            .await
            .starts_with("9 个网格 · 1 条轨迹 · 3 件案卷")
    );
    assert!(text(c, "p.legend").await.contains("轨迹"));
    shot(c, "zh-03-map.png").await;

    c.goto(&format!(
        "{base}/console/report?collector=%E8%B5%B5&period=2025-11"
    ))
    .await
    .expect("report");
    let rates = text(c, "table.rates").await;
    for word in ["覆盖率", "漏报率", "及时率", "差错率"] {
        assert!(rates.contains(word), "{word}: {rates}");
    }
    assert!(text(c, "#report-xlsx").await.contains("XLSX"));
    shot(c, "zh-04-report.png").await;

    dashboard(c, &base, "城市运行大屏", "合计", "zh").await;

    // A choice remembered: switching to English sticks over Accept-Language.
    let en = find(c, "#lang a[lang='en']").await;
    navigating(c, || async { en.click().await.expect("switch") }).await;
    assert_eq!(text(c, "h1").await, "City dashboard");
    c.goto(&format!("{base}/console/queue"))
        .await
        .expect("queue");
    assert_eq!(text(c, "h1").await, "Review queue");
}

#[test]
fn a_reviewer_works_the_console_in_headless_chromium() {
    let required = std::env::var_os("FIELD_BROWSER_REQUIRED").is_some();
    let driver = find_program("CHROMEDRIVER", &["chromedriver"]);
    let chromium = find_program(
        "CHROMIUM",
        &["chromium", "chromium-browser", "google-chrome"],
    );
    let (Some(driver), Some(chromium)) = (driver, chromium) else {
        assert!(
            !required,
            "chromium and chromedriver are needed: scripts/test installs them (apt-get install chromium chromium-driver)"
        );
        eprintln!("SKIPPED: no chromium/chromedriver on PATH (scripts/test installs them)");
        return;
    };
    let _ = std::fs::remove_file(artefacts().join("timings.txt"));
    mark("start");
    let world = world();
    mark("server, collector, track and cases ready");
    let driver = Driver::start(&driver);
    mark("chromedriver listening");
    let profile = tempfile::tempdir().expect("profile dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let zh_profile = tempfile::tempdir().expect("profile dir");
    rt.block_on(async {
        let c = connect(&driver, &chromium, profile.path(), "en-US,en").await;
        mark("browser session open");
        scenario(&c, &world).await;
        c.close().await.expect("session closed");
        let c = connect(&driver, &chromium, zh_profile.path(), "zh-CN,zh").await;
        mark("a Chinese browser session open");
        chinese(&c, &world).await;
        c.close().await.expect("session closed");
    });
}
