//! The command line, as clap sees it. Names and flags here are the public
//! interface: add, never rename.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".field"))
        .unwrap_or_else(|| PathBuf::from(".field"))
}

#[derive(Parser, Debug)]
#[command(
    name = "field",
    version,
    about = "Digital city management field work: the collector's device, offline first."
)]
pub struct Cli {
    /// The device home (holds device.db). Also FIELD_HOME.
    #[arg(long, global = true, env = "FIELD_HOME", default_value_os_t = default_home())]
    pub home: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Trust the CA certificates in this PEM file beside the system's (a
    /// city's own CA). Also FIELD_CA_FILE.
    #[arg(long, global = true, env = "FIELD_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Allow plain http:// to a server on another machine (tokens travel in
    /// clear text: a trusted network only). Also FIELD_ALLOW_HTTP=1.
    #[arg(long, global = true)]
    pub allow_http: bool,
    /// The language of what the server writes for people (workbooks):
    /// `zh` (default) or `en`. Also FIELD_LANG.
    #[arg(long, global = true, env = "FIELD_LANG", default_value = "zh")]
    pub lang: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create this device's store with a fresh actor id.
    Init {
        #[arg(long)]
        collector: String,
    },
    /// Grid cells: import (checked to tile the city) and list.
    #[command(subcommand)]
    Grid(GridCmd),
    /// The GPS track: import GPX, add a fix, list.
    #[command(subcommand)]
    Track(TrackCmd),
    /// Record the start or end of a shift (a test case: the attendance record).
    Shift {
        edge: ShiftEdge,
        /// RFC 3339 time (default: now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long, requires = "lat", allow_hyphen_values = true)]
        lon: Option<f64>,
        #[arg(long, requires = "lon", allow_hyphen_values = true)]
        lat: Option<f64>,
    },
    /// Cases: report, edit, list, show.
    #[command(subcommand)]
    Case(CaseCmd),
    /// Hash of this device's merged state: equal on replicas holding the same changes.
    Digest,
    /// The category catalog this device holds: list it, or search by code
    /// prefix or by Chinese or English name.
    #[command(subcommand)]
    Catalog(CatalogCmd),
    /// Change bundles: merge two devices by file, with no server.
    #[command(subcommand)]
    Changes(ChangesCmd),
    /// Trade a one-time enrolment code for this device's token.
    Enroll {
        #[arg(long, env = "FIELD_SERVER")]
        server: String,
        #[arg(long)]
        code: String,
        /// A name for this handset, shown to the center.
        #[arg(long)]
        name: Option<String>,
    },
    /// Push what the server lacks, pull what this device lacks, upload photos.
    Sync,
    /// Pending changes and photos, last sync, server; the store's size and
    /// what pruning would free.
    Status {
        /// Days confirmed bytes stay on the handset (for "would free").
        #[arg(long, env = "FIELD_RETENTION_DAYS", default_value_t = field_core::store::DEFAULT_RETENTION_DAYS)]
        retention_days: u32,
    },
    /// Drops the bytes the center confirmed more than the retention ago:
    /// photo bytes the server acknowledged and the recorder's raw fixes
    /// already pushed. The merged state, the log and every hash stay;
    /// nothing unsynced is ever pruned.
    Prune {
        #[arg(long, env = "FIELD_RETENTION_DAYS", default_value_t = field_core::store::DEFAULT_RETENTION_DAYS)]
        retention_days: u32,
        /// Count only.
        #[arg(long)]
        dry_run: bool,
    },
    /// Special surveys in this device's cells.
    #[command(subcommand)]
    Survey(SurveyCmd),
    /// Tasks from the center: list, answer.
    #[command(subcommand)]
    Task(TaskCmd),
    /// Center staff: collectors, devices, grid, catalog, cases (over HTTP).
    Center(CenterArgs),
    /// Run a throw-away two-device patrol day and merge it by bundles.
    Demo {
        /// Keep the demo's homes in this directory instead of a temporary one.
        #[arg(long)]
        keep: Option<PathBuf>,
        /// Keep the server (and its web console) running until Ctrl-C; the
        /// default when standard output is a terminal.
        #[arg(long, conflicts_with = "no_serve")]
        serve: bool,
        /// Exit as soon as the day is assessed (the default when output is
        /// piped or --json).
        #[arg(long)]
        no_serve: bool,
    },
    /// Benchmarks that print a table.
    #[command(subcommand)]
    Bench(BenchCmd),
}

#[derive(Args, Debug)]
pub struct CenterArgs {
    /// Server URL (default: the one this device enrolled with).
    #[arg(long, env = "FIELD_SERVER", global = true)]
    pub server: Option<String>,
    /// Staff token (default: this device's token; or the admin.token file's).
    #[arg(long, env = "FIELD_TOKEN", global = true)]
    pub token: Option<String>,
    /// The language asked of the server (set from the global `--lang`).
    #[arg(skip)]
    pub lang: String,
    #[command(subcommand)]
    pub command: CenterCmd,
}

#[derive(Subcommand, Debug)]
pub enum CenterCmd {
    /// Collectors: add (prints a one-time enrolment code), list.
    #[command(subcommand)]
    Collector(CollectorCmd),
    /// Any user (reviewer, admin, collector): add, list.
    #[command(subcommand)]
    User(UserCmd),
    /// Devices: revoke a device's token.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// The caller's own token: rotate.
    #[command(subcommand)]
    Token(TokenCmd),
    /// Red-line violations (三条高压线): record, revoke, list.
    #[command(subcommand)]
    Violation(ViolationCmd),
    /// Certification (上岗证): record an attempt, show a collector's standing.
    #[command(subcommand)]
    Cert(CertCmd),
    /// Training sessions: add, list.
    #[command(subcommand)]
    Training(TrainingCmd),
    /// The center's own figures: resolution and timely resolution per
    /// department and category.
    Figures {
        /// A day, ISO week, month or quarter.
        #[arg(long)]
        period: String,
    },
    /// The audit log: who did what to which account or reference data, when (admins).
    Audit {
        /// Newest entries to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// The city's grid: import (checked to tile) for every device.
    #[command(subcommand)]
    Grid(CenterImportCmd),
    /// The category catalog: import for every device.
    #[command(subcommand)]
    Catalog(CenterImportCmd),
    /// Cases as the center sees them, and the review decisions.
    #[command(subcommand)]
    Case(CenterCaseCmd),
    /// Verification and check tasks.
    #[command(subcommand)]
    Task(CenterTaskCmd),
    /// Special surveys: create, list, report.
    #[command(subcommand)]
    Survey(CenterSurveyCmd),
    /// A collector's day as an SVG map: cells coloured by covered share, the track over them.
    Map {
        #[arg(long)]
        collector: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        day: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// The city's assessment configuration (versioned TOML).
    #[command(subcommand)]
    Config(ConfigCmd),
    /// The assessment: the four rates and the rest, per collector or company.
    Report {
        /// A day (YYYY-MM-DD) or a month (YYYY-MM).
        #[arg(long)]
        period: String,
        #[arg(long, conflicts_with = "company")]
        collector: Option<String>,
        #[arg(long)]
        company: Option<String>,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
        /// List the records behind every number.
        #[arg(long)]
        explain: bool,
        /// Write the report as an XLSX workbook to FILE (Chinese column
        /// heads by default; `--lang en`).
        #[arg(long, value_name = "FILE")]
        xlsx: Option<PathBuf>,
        /// With --xlsx: the settlement (a company's quarter) instead.
        #[arg(long, requires = "xlsx")]
        settlement: bool,
    },
    /// Citizens' channels (Open311 GeoReport v2 API keys): add, list, revoke.
    #[command(subcommand)]
    Channel(ChannelCmd),
    /// External findings (center checks, citizens, media …) for the miss rate.
    #[command(subcommand)]
    Finding(FindingCmd),
    /// Test cases (shift marks), with a flag when sent from outside the assigned cells.
    Shifts {
        /// Only the flagged ones.
        #[arg(long)]
        flagged: bool,
    },
    /// The server's state digests.
    Digest,
}

#[derive(Subcommand, Debug)]
pub enum CollectorCmd {
    Add {
        name: String,
        #[arg(long)]
        company: Option<String>,
        /// Assigned cell codes, comma-separated.
        #[arg(long, value_delimiter = ',')]
        cells: Vec<String>,
        /// First day the cells are assigned (YYYY-MM-DD; default today in
        /// the city's zone): no day before it is assessed.
        #[arg(long)]
        from: Option<String>,
    },
    List,
    /// A new one-time enrolment code for an existing collector (another handset).
    Code {
        name_or_id: String,
    },
    /// Cells a collector covers from a date (a past day is assessed on that day's cells).
    Assign {
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        cells: Vec<String>,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    Add {
        name: String,
        #[arg(long, default_value = "reviewer")]
        role: String,
        #[arg(long)]
        company: Option<String>,
        #[arg(long, value_delimiter = ',')]
        cells: Vec<String>,
    },
    /// Users with their role, devices, unused codes and whether disabled.
    List {
        /// Only this role: collector, reviewer or admin.
        #[arg(long)]
        role: Option<String>,
    },
    /// Disable a user: their tokens, console sessions and unused codes stop
    /// working at once (admins only; not the last admin).
    Disable { name_or_id: String },
    /// Enable a disabled user again (their devices work again).
    Enable { name_or_id: String },
    /// Revoke a user's unused enrolment codes (all, or `--code C`).
    RevokeCodes {
        name_or_id: String,
        #[arg(long)]
        code: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ViolationCmd {
    /// Record a violation against a collector, with its evidence.
    Record {
        #[arg(long)]
        collector: String,
        /// bribery, false_information or at_fault_dispute.
        #[arg(long)]
        kind: String,
        /// When it happened (RFC 3339; default now).
        #[arg(long)]
        at: Option<String>,
        /// A case behind it (repeat for several).
        #[arg(long = "case")]
        cases: Vec<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Revoke a violation (kept in history with the reason).
    Revoke {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Violations, revoked ones marked.
    List {
        #[arg(long)]
        collector: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertCmd {
    /// One attempt at the three tests.
    Attempt {
        #[arg(long)]
        collector: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// The tests passed, comma-separated: theory,video,field.
        #[arg(long, value_delimiter = ',')]
        passed: Vec<String>,
    },
    /// A collector's attempts, certificate and its validity.
    Show { collector: String },
}

#[derive(Subcommand, Debug)]
pub enum TrainingCmd {
    Add {
        /// YYYY-MM-DD.
        #[arg(long)]
        date: String,
        #[arg(long)]
        topic: String,
        /// Collector names, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        attendees: Vec<String>,
        /// company (counts toward the monthly quota) or center.
        #[arg(long, default_value = "company")]
        by: String,
    },
    List,
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Replace the token used for this command (the admin token, a staff
    /// member's API token) with a new one, printed once; the old one stops
    /// working. Offline: `sync-server rotate-admin-token --data DIR`.
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum DeviceCmd {
    /// Revoke a device (its actor id, as `center collector list` shows).
    Revoke { actor: String },
}

#[derive(Subcommand, Debug)]
pub enum CenterImportCmd {
    Import { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum CenterCaseCmd {
    /// The review queue, newest first, with flags and likely duplicates.
    List {
        #[arg(long)]
        status: Option<String>,
        /// A subclass code or its prefix (`BJ01`).
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        cell: Option<String>,
        /// The collector's name.
        #[arg(long)]
        collector: Option<String>,
        /// any, conflict, reused_photo, far_from_track, exif_time.
        #[arg(long)]
        flag: Option<String>,
        /// At most this many (0: all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        /// Write every matching case as an XLSX workbook to FILE.
        #[arg(long, value_name = "FILE")]
        xlsx: Option<PathBuf>,
    },
    Show {
        id: String,
    },
    /// Register a reported case as valid.
    Register {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject with a reason: wrong_category, wrong_location, duplicate, false_report, out_of_scope, bad_photo, other.
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        /// The text of reason `other`.
        #[arg(long)]
        text: Option<String>,
        /// With `--reason false_report`: also record a false-information
        /// red-line violation against the collector.
        #[arg(long)]
        record_violation: bool,
    },
    /// Dispatch a registered case to a department.
    Dispatch {
        id: String,
        #[arg(long = "to")]
        department: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Record the department's answer.
    Handled {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Close a handled case after a check task confirmed it (or approve a quick fix).
    Close {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Send a handled case back to its department.
    Rework {
        id: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CenterTaskCmd {
    /// Send a verification or check task to a collector.
    Create {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        case: Option<String>,
        /// Collector name or id.
        #[arg(long)]
        to: String,
        /// From now (30m, 2h) or an RFC 3339 time; default the city's for
        /// the kind and cell (verify 30 min; check 1 h, 2 h in rural cells).
        #[arg(long)]
        due: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        lon: Option<f64>,
        #[arg(long, allow_hyphen_values = true)]
        lat: Option<f64>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Tasks with their timeliness (on time, late, overdue, open).
    List {
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CenterSurveyCmd {
    /// A campaign over some cells and categories for a date range.
    Create {
        name: String,
        #[arg(long, value_delimiter = ',', required = true)]
        cells: Vec<String>,
        #[arg(long, value_delimiter = ',', required = true)]
        categories: Vec<String>,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: String,
    },
    List,
    /// Cases reported under a survey, by category and by cell.
    Report {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// The version in force, as TOML.
    Show,
    /// Set one dotted key (`patrol.patrol_start "07:00:00"`, `fees.某公司 424000`).
    Set { key: String, value: String },
    /// Replace the whole configuration from a TOML file.
    Import { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum ChannelCmd {
    /// Open a channel; prints its API key once.
    Add {
        name: String,
        /// Requests it may send an hour (default 600).
        #[arg(long)]
        per_hour: Option<u32>,
        /// Send the collector of the request's cell a verification task due
        /// this many hours later.
        #[arg(long)]
        verify_within_hours: Option<u32>,
    },
    List,
    /// Revoke a channel's key (by name or id): its next request is refused.
    Revoke {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum FindingCmd {
    Add {
        /// center_check, citizen, industry, media or leader.
        #[arg(long)]
        source: String,
        #[arg(long)]
        category: String,
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        #[arg(long)]
        at: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Bulk import from CSV with a header: source,category,lon,lat,at[,note] (all or nothing).
    Import { file: PathBuf },
    /// Every finding recorded (citizens' requests through Open311 among them).
    List,
}

#[derive(Subcommand, Debug)]
pub enum SurveyCmd {
    /// Surveys in this device's cells (report under one with `case report --survey ID`).
    List,
}

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// Tasks addressed to this device's collector.
    List,
    /// Answer a task, offline if need be; it syncs with the next `field sync`.
    Answer {
        id: String,
        #[arg(long)]
        result: String,
        #[arg(long, num_args = 1.., required = true)]
        photo: Vec<PathBuf>,
        #[arg(long)]
        note: Option<String>,
        /// RFC 3339 answer time (default: now).
        #[arg(long)]
        at: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ShiftEdge {
    Start,
    End,
}

#[derive(Subcommand, Debug)]
pub enum GridCmd {
    /// Import a GeoJSON FeatureCollection of cells (properties code, zone, name).
    Import { file: PathBuf },
    /// List the cells held.
    List,
}

#[derive(Subcommand, Debug)]
pub enum TrackCmd {
    /// Import every track point of a GPX 1.0/1.1 file (all or nothing).
    Import { file: PathBuf },
    /// Add one fix as the location service delivers it.
    Add {
        #[arg(long, allow_hyphen_values = true)]
        lon: f64,
        #[arg(long, allow_hyphen_values = true)]
        lat: f64,
        /// RFC 3339 time of the fix.
        #[arg(long)]
        at: String,
        /// Horizontal accuracy in metres.
        #[arg(long, allow_hyphen_values = true)]
        accuracy: Option<f64>,
        /// Speed in m/s.
        #[arg(long, allow_hyphen_values = true)]
        speed: Option<f64>,
    },
    /// Points held per device, or every point with --points.
    List {
        #[arg(long)]
        points: bool,
    },
    /// Write every track point held to a file: GeoJSON (flat properties),
    /// CSV or GPX 1.1 — by --format, else by the file's extension.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum)]
        format: Option<crate::export::Format>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaseCmd {
    /// Report a case; prints its id. The cell is resolved from the location.
    Report(ReportArgs),
    /// Edit your own case while it is still reported.
    Edit {
        id: String,
        #[arg(long)]
        desc: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[arg(long = "add-photo")]
        add_photo: Vec<PathBuf>,
        #[arg(long = "remove-photo")]
        remove_photo: Vec<String>,
    },
    /// List cases (newest first), optionally only those with a status,
    /// a category (code or prefix) or reported on a day (city time).
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// YYYY-MM-DD, in the city's time zone.
        #[arg(long)]
        day: Option<chrono::NaiveDate>,
    },
    /// Show a case with its history (an id or a unique prefix of one).
    Show { id: String },
    /// Write the cases held to a file: GeoJSON (a point each, flat
    /// properties), CSV or GPX waypoints — by --format, else by extension.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum)]
        format: Option<crate::export::Format>,
    },
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// BJ0101 / SJ0201 (CJ/T 214) or 06010 (GB/T 47678.5).
    #[arg(long)]
    pub category: String,
    #[arg(long, allow_hyphen_values = true)]
    pub lon: f64,
    #[arg(long, allow_hyphen_values = true)]
    pub lat: f64,
    #[arg(long)]
    pub desc: String,
    /// Photo file(s) of the problem.
    #[arg(long, num_args = 1.., required = true)]
    pub photo: Vec<PathBuf>,
    /// RFC 3339 report time (default: now).
    #[arg(long)]
    pub at: Option<String>,
    /// Fixed on the spot (举手之劳); needs --after-photo.
    #[arg(long, requires = "after_photo")]
    pub quick_fix: bool,
    #[arg(long = "after-photo", requires = "quick_fix")]
    pub after_photo: Vec<PathBuf>,
    /// Special survey id the case is reported under.
    #[arg(long)]
    pub survey: Option<String>,
    /// Report even though the position is outside every cell of this
    /// device's grid (refused otherwise: usually a wrong position).
    #[arg(long)]
    pub outside: bool,
}

#[derive(Subcommand, Debug)]
pub enum ChangesCmd {
    /// Write the changes applied after CURSOR (all by default) to a bundle file.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        since: Option<u64>,
    },
    /// Merge a bundle file into this device (idempotent).
    Import { file: PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// The assessment of a generated city month (50 collectors, 2,500 cells,
    /// points every 5 s in patrol hours) from the server store, against a
    /// plain scan of the same points; then one day's rollup refreshed after a late sync.
    Assess {
        #[arg(long, default_value_t = 50)]
        collectors: usize,
        #[arg(long, default_value_t = 30)]
        days: usize,
        /// Seconds between points.
        #[arg(long, default_value_t = 5)]
        every: i64,
        /// Also assess the same city from `postgres` (beside the embedded
        /// run, with the ratio): needs `--database`.
        #[arg(long, value_enum, default_value_t = BenchBackend::Sqlite)]
        backend: BenchBackend,
        /// An empty PostgreSQL database for `--backend postgres`.
        #[arg(long, env = "FIELD_PG_DATABASE")]
        database: Option<String>,
    },
    /// The web console at a city's scale over real HTTP: the review queue
    /// over 100,000 cases (pages, filters) and the map of 2,500 cells with
    /// 50 collectors' tracks of a day.
    Console {
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
        #[arg(long, default_value_t = 50)]
        collectors: usize,
        /// Also time the map and the queue in headless Chromium (needs
        /// `chromium` and `chromedriver` on PATH).
        #[arg(long)]
        browser: bool,
    },
    /// Sync against a real server on loopback: a collector-day from scratch,
    /// a no-op sync, a 1-case sync over small and large histories, and many
    /// devices at once.
    Sync {
        /// Devices syncing a day each at once.
        #[arg(long, default_value_t = 50)]
        devices: usize,
        /// Cases already on the server for the large-history measurement.
        #[arg(long, default_value_t = 100_000)]
        history: usize,
        /// Also run the many-devices sync on `postgres` (beside the embedded
        /// run, with the ratio): needs `--database`.
        #[arg(long, value_enum, default_value_t = BenchBackend::Sqlite)]
        backend: BenchBackend,
        /// An empty PostgreSQL database for `--backend postgres`
        /// (`postgres://USER@HOST:PORT/DB`; default $FIELD_PG_DATABASE).
        #[arg(long, env = "FIELD_PG_DATABASE")]
        database: Option<String>,
        /// Server instances sharing that database; devices take turns
        /// among them.
        #[arg(long, default_value_t = 2)]
        instances: usize,
    },
    /// The device store: track inserts vs plain rusqlite, remote change apply, cell lookup.
    Store {
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        #[arg(long, default_value_t = 100_000)]
        changes: usize,
        #[arg(long, default_value_t = 10_000)]
        cells: usize,
        #[arg(long, default_value_t = 1_000_000)]
        lookups: usize,
    },
}

/// Where a bench's server keeps its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchBackend {
    /// The embedded default only.
    Sqlite,
    /// The embedded default and PostgreSQL with several instances.
    Postgres,
}

#[derive(Subcommand, Debug)]
pub enum CatalogCmd {
    /// Every subclass, by code.
    List,
    /// Subclasses whose code starts with QUERY (`SJ01`, `01`), then those
    /// whose name holds it (`井盖`, `manhole`).
    Search {
        query: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}
